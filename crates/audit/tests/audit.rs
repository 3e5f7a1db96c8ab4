//! The audit log: the pinned format, resuming, torn lines, the writer thread, and `verify`
//! finding each kind of tampering.

use std::io::Write;
use std::path::Path;

use mpc_audit::{AuditLog, AuditWriter, Head, ProblemKind, verify, verify_file};
use serde_json::{Map, Value, json};

fn fields(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(path, text).unwrap();
}

/// A log of `n` entries.
fn log_of(dir: &Path, n: u64) -> (std::path::PathBuf, Head) {
    let path = dir.join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    let mut head = Head::EMPTY;
    for i in 1..=n {
        head = log
            .append(
                1_000 + i,
                "signature",
                fields(json!({"requestId": format!("r{i}")})),
            )
            .unwrap();
    }
    log.sync().unwrap();
    (path, head)
}

#[test]
fn the_format_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    log.append(
        1764900000000,
        "callback-decision",
        fields(json!({"requestId": "r-1", "decision": "approve"})),
    )
    .unwrap();
    log.append(1764900000001, "unsealed", Map::new()).unwrap();
    log.sync().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let first = r#"{"seq":1,"at":1764900000000,"prev":"0000000000000000000000000000000000000000000000000000000000000000","event":"callback-decision","fields":{"decision":"approve","requestId":"r-1"}}"#;
    let first_hash = hex::encode(mpc_audit::line_hash(first.as_bytes()));
    let second = format!(
        r#"{{"seq":2,"at":1764900000001,"prev":"{first_hash}","event":"unsealed","fields":{{}}}}"#
    );
    assert_eq!(text, format!("{first}\n{second}\n"));
    // The chain link is SHA-256 of the line's bytes; pinned so that other tools can check it
    // (`printf '%s' LINE | sha256sum`).
    assert_eq!(
        first_hash,
        "72bc5bf008ef160df0e39715b73b289a10bf44a2406b743b8065d1f577f11264"
    );
    let head = log.head();
    assert_eq!(head.seq, 2);
    assert_eq!(head.hash, mpc_audit::line_hash(second.as_bytes()));
    assert_eq!(head.to_string().parse::<Head>().unwrap(), head);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn an_intact_log_verifies_and_reopening_continues_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = log_of(dir.path(), 5);
    let r = verify_file(&path, Some(head)).unwrap();
    assert!(r.is_intact(), "{:?}", r.problems);
    assert_eq!((r.lines, r.head), (5, head));
    // Reopened (a restart): the chain goes on.
    let mut log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head(), head);
    let next = log.append(2_000, "unsealed", Map::new()).unwrap();
    log.sync().unwrap();
    assert_eq!(next.seq, 6);
    let r = verify_file(&path, Some(head)).unwrap();
    assert!(
        r.is_intact(),
        "an older head is still in the log: {:?}",
        r.problems
    );
    assert_eq!(r.head, next);
    // One writer per file: a second is refused after the wait; one that closes within the
    // wait is waited for (a restart in the same process).
    let e = AuditLog::open_waiting(&path, std::time::Duration::from_millis(200))
        .unwrap_err()
        .to_string();
    assert!(e.contains("in use"), "{e}");
    let closing = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(log);
    });
    let reopened = AuditLog::open_waiting(&path, std::time::Duration::from_secs(10)).unwrap();
    assert_eq!(reopened.head().seq, 6);
    closing.join().unwrap();
    drop(reopened);
    // An empty log is intact.
    let empty = dir.path().join("empty.log");
    drop(AuditLog::open(&empty).unwrap());
    let r = verify_file(&empty, None).unwrap();
    assert!(r.is_intact());
    assert_eq!(r.head, Head::EMPTY);
}

#[test]
fn verify_names_an_altered_a_removed_an_inserted_and_a_reordered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = log_of(dir.path(), 6);
    let original = lines(&path);

    // Altered: entry 3's request id; the break shows at line 4.
    let mut altered = original.clone();
    altered[2] = altered[2].replace("\"r3\"", "\"rX\"");
    write_lines(&path, &altered);
    let r = verify_file(&path, None).unwrap();
    assert_eq!(r.problem_count, 1, "{:?}", r.problems);
    assert_eq!(
        (r.problems[0].line, &r.problems[0].kind),
        (4, &ProblemKind::BrokenLink)
    );
    assert!(r.problems[0].to_string().contains("line 4"));

    // Removed: entry 3.
    let mut removed = original.clone();
    removed.remove(2);
    write_lines(&path, &removed);
    let r = verify_file(&path, None).unwrap();
    assert_eq!(
        r.problems[0].kind,
        ProblemKind::Sequence {
            expected: 3,
            found: 4
        }
    );
    assert_eq!(r.problems[0].line, 3);

    // Removed and renumbered (seq fixed by hand): the link still breaks.
    let mut renumbered = removed.clone();
    for (i, l) in renumbered.iter_mut().enumerate().skip(2) {
        let v: Value = serde_json::from_str(l).unwrap();
        let seq = v["seq"].as_u64().unwrap();
        *l = l.replacen(&format!("\"seq\":{seq}"), &format!("\"seq\":{}", i + 1), 1);
    }
    write_lines(&path, &renumbered);
    let r = verify_file(&path, None).unwrap();
    assert_eq!(
        (r.problems[0].line, &r.problems[0].kind),
        (3, &ProblemKind::BrokenLink)
    );

    // Reordered: entries 4 and 5 swapped.
    let mut reordered = original.clone();
    reordered.swap(3, 4);
    write_lines(&path, &reordered);
    let r = verify_file(&path, None).unwrap();
    assert!(!r.is_intact());
    assert_eq!(r.problems[0].line, 4);
    assert!(matches!(
        r.problems[0].kind,
        ProblemKind::Sequence {
            expected: 4,
            found: 5
        }
    ));

    // Inserted: a made-up line.
    let mut inserted = original.clone();
    inserted.insert(1, original[1].replace("\"r2\"", "\"forged\""));
    write_lines(&path, &inserted);
    let r = verify_file(&path, None).unwrap();
    assert!(!r.is_intact());
    assert_eq!(r.problems[0].line, 3);

    // Not an entry.
    let mut junk = original.clone();
    junk[1] = "{\"hello\":1}".into();
    write_lines(&path, &junk);
    let r = verify_file(&path, None).unwrap();
    assert!(matches!(r.problems[0].kind, ProblemKind::NotAnEntry(_)));
    assert_eq!(r.problems[0].line, 2);

    // The end cut off: consistent on its own, caught against the recorded head.
    let cut = original[..4].to_vec();
    write_lines(&path, &cut);
    assert!(verify_file(&path, None).unwrap().is_intact());
    let r = verify_file(&path, Some(head)).unwrap();
    assert_eq!(r.problem_count, 1);
    assert!(matches!(
        r.problems[0].kind,
        ProblemKind::HeadMismatch { .. }
    ));
    assert!(r.problems[0].to_string().contains("removed or changed"));
    // The last entry altered: likewise.
    let mut last = original.clone();
    last[5] = last[5].replace("\"r6\"", "\"r7\"");
    write_lines(&path, &last);
    assert!(verify_file(&path, None).unwrap().is_intact());
    assert!(!verify_file(&path, Some(head)).unwrap().is_intact());
}

#[test]
fn a_torn_last_line_is_cut_and_recorded_and_an_unreadable_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, head) = log_of(dir.path(), 3);
    // A crash mid-write: half a line at the end.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"seq\":4,\"at\":12").unwrap();
    drop(f);
    let r = verify_file(&path, None).unwrap();
    assert!(
        r.problems
            .iter()
            .any(|p| p.kind == ProblemKind::NoFinalNewline)
    );
    let log = AuditLog::open(&path).unwrap();
    assert_eq!(log.head().seq, 4);
    drop(log);
    let all = lines(&path);
    assert_eq!(all.len(), 4);
    assert!(
        all[3].contains("\"event\":\"audit-torn-line-removed\""),
        "{}",
        all[3]
    );
    assert!(all[3].contains("\"bytes\":16"), "{}", all[3]);
    let r = verify_file(&path, Some(head)).unwrap();
    assert!(r.is_intact(), "{:?}", r.problems);

    // A last complete line that is no entry: refused, naming the file.
    std::fs::write(&path, "not json\n").unwrap();
    let e = AuditLog::open(&path).unwrap_err().to_string();
    assert!(
        e.contains("audit.log") && e.contains("not an audit entry"),
        "{e}"
    );
}

#[test]
fn bad_entries_are_refused_and_long_lines_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let mut log = AuditLog::open(&path).unwrap();
    assert!(log.append(1, "Bad Event", Map::new()).is_err());
    assert!(log.append(1, "", Map::new()).is_err());
    let huge = "x".repeat(mpc_audit::MAX_LINE);
    let e = log
        .append(1, "signature", fields(json!({"blob": huge})))
        .unwrap_err();
    assert!(e.to_string().contains("more than"), "{e}");
    assert_eq!(log.head(), Head::EMPTY, "nothing was written");
    drop(log);
    // A verifier reading a huge line keeps its memory bounded and reports it.
    let mut text = "y".repeat(3 * mpc_audit::MAX_LINE);
    text.push('\n');
    let r = verify(std::io::Cursor::new(text.into_bytes()), None).unwrap();
    assert_eq!(r.lines, 1);
    assert_eq!(r.problems[0].kind, ProblemKind::TooLong);
}

#[test]
fn the_writer_thread_keeps_order_across_clones_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    let w = AuditWriter::spawn(AuditLog::open(&path).unwrap()).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    w.record("signature", fields(json!({"t": t, "i": i})))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let head = w.flush().unwrap();
    assert_eq!(head.seq, 1000);
    assert_eq!(w.head(), head);
    assert_eq!(w.failures(), 0);
    let r = verify_file(&path, Some(head)).unwrap();
    assert!(r.is_intact(), "{:?}", r.problems);
    // Each thread's entries in the order it recorded them.
    for t in 0..4 {
        let is: Vec<u64> = lines(&path)
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["fields"]["t"] == t)
            .map(|v| v["fields"]["i"].as_u64().unwrap())
            .collect();
        assert_eq!(is, (0..250).collect::<Vec<_>>());
    }
}
