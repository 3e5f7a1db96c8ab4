//! Integration tests: the real `mpc-node` binary on 127.0.0.1 with temporary directories,
//! driven over HTTP and through its CLI.

mod common;

use common::*;

#[test]
fn api_init_unseal_status_and_errors_over_http() {
    let d = NodeDir::new("");
    let node = d.start();
    let a = node.server();

    let st = status(&a);
    assert_eq!(st["state"], "uninitialized");
    assert_eq!(st["node_id"], "");
    assert_eq!(st["t"], 1);

    // Sealed-store commands before init.
    assert_err(&post(&a, "/sys/in-bkey", STRONG), "not initialised");
    assert_err(&post(&a, "/sys/re-bkey-init", STRONG), "not unsealed");

    // Weak passwords name what is missing.
    let e = assert_err(&post(&a, "/sys/init", "short"), "password rejected");
    assert!(e.contains("at least 12 characters"), "{e}");
    assert_err(&post(&a, "/sys/init", "alllowercase12!"), "upper-case");
    assert_err(&post(&a, "/sys/init", "NoDigitsHere!!"), "digit");
    assert_err(&post(&a, "/sys/init", "NoSpecial1234"), "special");
    assert!(!d.db().exists(), "a refused init must not create the store");

    // Body parsing: node.sh's unescaped quote, other shapes, unknown routes, big bodies.
    let e = assert_err(
        &http(
            &a,
            "POST",
            "/sys/init",
            "text/plain",
            &node_sh_body("Pass\"word-123"),
        ),
        "not valid JSON",
    );
    assert!(e.contains("must be JSON-escaped"));
    assert!(!e.contains("Pass"), "the error must not echo the password");
    assert_err(
        &http(
            &a,
            "POST",
            "/sys/init",
            "application/json",
            br#"{"password":"x"}"#,
        ),
        "body must be a JSON object",
    );
    assert_err(
        &http(&a, "POST", "/sys/init", "text/plain", b""),
        "empty body",
    );
    assert_err(
        &http(&a, "POST", "/sys/init", "text/plain", &vec![b' '; 70_000]),
        "larger than",
    );
    assert_err(&http(&a, "GET", "/sys/nope", "text/plain", b""), "no route");
    assert_err(&http(&a, "GET", "/sys/init", "text/plain", b""), "no route");

    // init (node.sh style: text/plain, pretty JSON).
    let (code, v) = post(&a, "/sys/init", STRONG);
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "ok");
    let node_id = v["data"]["node_id"].as_str().unwrap().to_owned();
    let pem = v["data"]["public_key"].as_str().unwrap().to_owned();
    assert_eq!(node_id.len(), 248);
    assert!(node_id.starts_with("sino"));
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let vk = mpc_wire::keys::verifying_key_from_node_id(&node_id).unwrap();
    assert_eq!(mpc_wire::keys::public_key_pem(&vk), pem);
    // Independently: "sino" + Base64(lowercase hex(DER SPKI)).
    let spki = mpc_wire::keys::spki_der(&vk);
    use base64::Engine as _;
    let expected = format!(
        "sino{}",
        base64::engine::general_purpose::STANDARD
            .encode(spki.iter().map(|b| format!("{b:02x}")).collect::<String>())
    );
    assert_eq!(node_id, expected);

    assert_err(&post(&a, "/sys/init", STRONG), "already initialised");
    let st = status(&a);
    assert_eq!(st["state"], "sealed");
    assert_eq!(st["node_id"], node_id.as_str());
    assert_eq!(st["public_key"], pem.as_str());

    // Wrong password, then an attempt inside the back-off, then the right one.
    let e = assert_err(
        &post(&a, "/sys/in-bkey", "Wrong-Password-1"),
        "wrong password",
    );
    assert!(e.contains("next attempt allowed in"), "{e}");
    assert_err(
        &post(&a, "/sys/in-bkey", STRONG),
        "too many failed attempts",
    );
    // Other requests are not blocked meanwhile.
    assert_eq!(status(&a)["state"], "sealed");
    wait_backoff(&e);
    // JSON with other whitespace and Content-Type works too.
    let body = format!("\t{{\"shard_bkey\" :\r\n \"{STRONG}\"}}  ");
    assert_ok(
        &http(
            &a,
            "POST",
            "/sys/in-bkey",
            "application/json",
            body.as_bytes(),
        ),
        "in-bkey success",
    );
    let st = status(&a);
    assert_eq!(st["state"], "unsealed");
    assert_eq!(st["node_id"], node_id.as_str());
    assert_err(&post(&a, "/sys/in-bkey", STRONG), "already unsealed");

    // The log file exists, is private, and holds no secret.
    let stderr = node.stop();
    assert!(!stderr.contains("panicked"), "{stderr}");
    let log = d.dir.path().join("logs/node.log");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("wrong password"), "{text}");
    for secret in [STRONG, "Wrong-Password-1", "short", "alllowercase12!"] {
        assert!(!text.contains(secret), "log contains a password");
    }
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("log lines are JSON");
    }
}

#[test]
fn cli_commands_reset_cmreset_and_restart() {
    let d = NodeDir::new("");
    let cfg = d.config();
    let cfg = cfg.to_str().unwrap();
    let node = d.start();
    let s = node.server();

    // Weak password through the CLI.
    let o = cli(&["init", "--server", &s, "--password-stdin"], "weakpass\n");
    assert_eq!(o.code, 1, "{o:?}");
    assert_eq!(o.json()["status"], "error");

    let o = cli(
        &["init", "--server", &s, "--password-stdin"],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    let node_id = o.json()["data"]["node_id"].as_str().unwrap().to_owned();

    let o = cli(&["info", "--server", &s], "");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["state"], "sealed");

    let o = cli(
        &["unseal", "--server", &s, "--password-stdin"],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"], "in-bkey success");

    // cmreset before reset is refused.
    let o = cli(
        &["cmreset", "--server", &s, "--password-stdin"],
        &format!("{STRONG2}\n"),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("re-bkey-init"), "{o:?}");

    // reset with a wrong current password, then the right one.
    let o = cli(
        &["reset", "--server", &s, "--password-stdin"],
        "Not-The-Password-1\n",
    );
    assert_eq!(o.code, 1, "{o:?}");
    wait_backoff(o.json()["error"].as_str().unwrap());
    let o = cli(
        &["reset", "--server", &s, "--password-stdin"],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"], "re-bkey-init success");
    // A weak new password is refused and cancels the change: cmreset needs a new reset.
    let o = cli(&["cmreset", "--server", &s, "--password-stdin"], "weak\n");
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("password change is cancelled"), "{o:?}");
    let o = cli(
        &["cmreset", "--server", &s, "--password-stdin"],
        &format!("{STRONG2}\n"),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("not started"), "{o:?}");
    let reset = || {
        let o = cli(
            &["reset", "--server", &s, "--password-stdin"],
            &format!("{STRONG}\n"),
        );
        assert_eq!(o.code, 0, "{o:?}");
    };
    reset();
    // The same password is refused (and cancels too).
    let o = cli(
        &["cmreset", "--server", &s, "--password-stdin"],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("same as the current"), "{o:?}");
    reset();
    let o = cli(
        &["cmreset", "--config", cfg, "--password-stdin"],
        &format!("{STRONG2}\n"),
    );
    // --config reads unseal-server-address (port 0 here), so it cannot reach the node: clear error.
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("cannot reach mpc-node"), "{o:?}");
    let o = cli(
        &["cmreset", "--server", &s, "--password-stdin"],
        &format!("{STRONG2}\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"], "re-bkey success");
    // Completes once: another cmreset needs another reset.
    let o = cli(
        &["cmreset", "--server", &s, "--password-stdin"],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("not started"), "{o:?}");

    // Restart: everything kept, node comes back sealed; old password refused, new accepted.
    node.stop();
    let node = d.start();
    let s = node.server();
    let st = status(&s);
    assert_eq!(st["state"], "sealed");
    assert_eq!(st["node_id"], node_id.as_str());
    let e = assert_err(&post(&s, "/sys/in-bkey", STRONG), "wrong password");
    wait_backoff(&e);
    assert_ok(&post(&s, "/sys/in-bkey", STRONG2), "in-bkey success");
    assert_eq!(status(&s)["node_id"], node_id.as_str());
    node.stop();
}

#[test]
fn cli_finds_the_node_through_its_config() {
    // A fixed free port so `--config` can be used.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = NodeDir::with_config(&format!(
        "[log.file]\nenable = false\n[mpc-service]\nprotocol = \"ws\"\naddress = \"127.0.0.1:9\"\n[storage]\ndb-file-path = \"asset.db\"\nunseal-server-address = \"0.0.0.0:{port}\"\n"
    ));
    let node = d.start();
    let cfg = d.config();
    let o = cli(&["info", "--config", cfg.to_str().unwrap()], "");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["state"], "uninitialized");
    // check: the port is in use now, which is a warning, not a failure.
    let o = cli(&["check", "--config", cfg.to_str().unwrap()], "");
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("is in use"), "{o:?}");
    node.stop();
}

#[test]
fn t2_n3_shares_from_passwords_generate() {
    let o = cli(&["passwords", "generate", "-t", "2", "-n", "3"], "");
    assert_eq!(o.code, 0, "{o:?}");
    let shares: Vec<String> = o.stdout.lines().map(str::to_owned).collect();
    assert_eq!(shares.len(), 3, "prints exactly the shares: {o:?}");
    // Independent combination: every pair rebuilds the same 16-character secret.
    let raw: Vec<Vec<u8>> = shares.iter().map(|s| b64(s)).collect();
    assert!(raw.iter().all(|r| r.len() == 17));
    let secret = independent_combine(&[raw[0].clone(), raw[1].clone()]);
    assert_eq!(secret.len(), 16);
    assert_eq!(
        independent_combine(&[raw[1].clone(), raw[2].clone()]),
        secret
    );
    assert_eq!(
        independent_combine(&[raw[2].clone(), raw[0].clone()]),
        secret
    );
    assert!(!o.stdout.contains(std::str::from_utf8(&secret).unwrap()));

    let d = NodeDir::new("t = 2\nn = 3\n");
    let node = d.start();
    let s = node.server();
    assert_eq!(status(&s)["t"], 2);

    // init over HTTP with shares 1 and 2, a duplicate in between.
    assert_ok(&post(&s, "/sys/init", &shares[0]), "1 of 2 shares received");
    assert_eq!(status(&s)["progress"]["have"], 1);
    assert_err(&post(&s, "/sys/init", &shares[0]), "duplicate share");
    assert_err(&post(&s, "/sys/init", "not base64!"), "Base64");
    let (code, v) = post(&s, "/sys/init", &shares[1]);
    assert_eq!(code, 200, "{v}");
    assert!(v["data"]["node_id"].as_str().unwrap().starts_with("sino"));

    // unseal with shares 3 + 1 over HTTP.
    assert_ok(
        &post(&s, "/sys/in-bkey", &shares[2]),
        "1 of 2 shares received",
    );
    assert_ok(&post(&s, "/sys/in-bkey", &shares[0]), "in-bkey success");
    node.stop();

    // Restart; unseal with shares 2 + 3 through the CLI.
    let node = d.start();
    let s = node.server();
    let o = cli(
        &["unseal", "--server", &s, "--password-stdin"],
        &format!("{}\n{}\n", shares[1], shares[2]),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("1 of 2 shares received"), "{o:?}");
    assert_eq!(o.json()["data"], "in-bkey success");

    // Share-set change: reset with 2 current shares, cmreset with 2 of a fresh set.
    let o = cli(
        &["reset", "--server", &s, "--password-stdin"],
        &format!("{}\n{}\n", shares[0], shares[2]),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"], "re-bkey-init success");
    let fresh = cli(&["passwords", "generate", "-t", "2", "-n", "3"], "");
    let fresh: Vec<&str> = fresh.stdout.lines().collect();
    let o = cli(
        &["cmreset", "--server", &s, "--password-stdin"],
        &format!("{}\n{}\n", fresh[0], fresh[2]),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"], "re-bkey success");
    node.stop();

    // Old shares refused, new ones (another subset) accepted.
    let node = d.start();
    let s = node.server();
    assert_ok(
        &post(&s, "/sys/in-bkey", &shares[0]),
        "1 of 2 shares received",
    );
    let e = assert_err(&post(&s, "/sys/in-bkey", &shares[1]), "wrong password");
    wait_backoff(&e);
    assert_ok(
        &post(&s, "/sys/in-bkey", fresh[1]),
        "1 of 2 shares received",
    );
    assert_ok(&post(&s, "/sys/in-bkey", fresh[2]), "in-bkey success");
    node.stop();
}

#[test]
fn passwords_generate_refuses_bad_parameters() {
    let o = cli(&["passwords", "generate", "-t", "3", "-n", "2"], "");
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("larger than"), "{o:?}");
    let o = cli(&["passwords", "generate", "-t", "1", "-n", "2"], "");
    assert_eq!(o.code, 1);
    let o = cli(&["passwords", "generate", "-t", "3", "-n", "5"], "");
    assert_eq!(o.code, 0);
    let raw: Vec<Vec<u8>> = o.stdout.lines().map(b64).collect();
    assert_eq!(raw.len(), 5);
    let s = independent_combine(&raw[0..3]);
    assert_eq!(
        independent_combine(&[raw[4].clone(), raw[1].clone(), raw[3].clone()]),
        s
    );
}

#[test]
fn backup_and_verify_backup() {
    let d = NodeDir::new("");
    let node = d.start();
    let s = node.server();
    let out = d.dir.path().join("backup.db");
    let outs = out.to_str().unwrap();

    let o = cli(&["backup", "--server", &s, "--out", outs], "");
    assert_eq!(o.code, 1, "uninitialised: {o:?}");
    let (_, v) = post(&s, "/sys/init", STRONG);
    let node_id = v["data"]["node_id"].as_str().unwrap().to_owned();
    let o = cli(&["backup", "--server", &s, "--out", outs], "");
    assert_eq!(o.code, 1, "sealed: {o:?}");
    assert!(o.stdout.contains("not unsealed"), "{o:?}");
    assert!(!out.exists());

    assert_ok(&post(&s, "/sys/in-bkey", STRONG), "in-bkey success");
    let o = cli(&["backup", "--server", &s, "--out", outs], "");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["engine"], "bolt");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // No temporary files left beside the store.
    let leftovers: Vec<_> = std::fs::read_dir(d.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // Refuses to overwrite.
    let o = cli(&["backup", "--server", &s, "--out", outs], "");
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("already exists"), "{o:?}");
    // The node keeps working.
    assert_eq!(status(&s)["state"], "unsealed");

    // verify-backup offline, while the node still runs and after it stopped.
    let o = cli(
        &["verify-backup", outs, "--password-stdin"],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    let j = o.json();
    assert_eq!(j["data"]["node_id"], node_id.as_str());
    assert_eq!(j["data"]["format_version"], 1);
    assert_eq!(j["data"]["keys"], 0);
    // The identity key (init) and the transport key (made at the first unseal).
    assert_eq!(j["data"]["tables"]["node_identity"], 2);
    assert_eq!(j["data"]["all_records_authentic"], true);
    node.stop();
    let o = cli(
        &["verify-backup", outs, "--password-stdin"],
        "Wrong-Password-1\n",
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("wrong password"), "{o:?}");
    let o = cli(
        &[
            "verify-backup",
            "/nonexistent/backup.db",
            "--password-stdin",
        ],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 1, "{o:?}");

    // The backup restores: a node started on it unseals with the same password and id.
    let r = NodeDir::new("");
    std::fs::copy(&out, r.db()).unwrap();
    let node = r.start();
    let s = node.server();
    assert_eq!(status(&s)["node_id"], node_id.as_str());
    assert_ok(&post(&s, "/sys/in-bkey", STRONG), "in-bkey success");
    node.stop();
}

/// Starts a node that must refuse to start; returns its stderr.
fn refused(d: &NodeDir) -> String {
    let e = match NodeProc::start(&d.config()) {
        Ok(_) => panic!("node started on a bad store"),
        Err(e) => e,
    };
    assert!(e.contains("exit status: Some(1)"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    e
}

fn initialised(d: &NodeDir) {
    let node = d.start();
    let s = node.server();
    assert_eq!(post(&s, "/sys/init", STRONG).0, 200);
    node.stop();
}

/// `reply` is the damaged-store error: names the file and says to restore it from a backup.
fn assert_damaged(reply: &(u16, serde_json::Value), d: &NodeDir, what: &str) {
    let e = assert_err(reply, "is damaged");
    assert!(
        e.contains(&d.db().display().to_string()),
        "{what}: the error must name the file: {e}"
    );
    assert!(e.contains("restore the file from a backup"), "{what}: {e}");
}

/// A damaged `asset.db` never takes the node down. Both engines: every 4 KiB block of the file
/// flipped in turn (the issue's attack, wherever the block falls), the first 64 bytes flipped,
/// cut in half, another file type. The real binary starts and stays up; a file it cannot trust
/// leaves it sealed, `in-bkey`, `seal-status` and `init` answer an error naming the file and
/// saying to restore it from a backup, and nothing is written to it. A flip that only hit free
/// pages is harmless: unseal authenticates every record before it succeeds. The restored file
/// unseals.
#[test]
fn damaged_store_keeps_the_node_up_sealed_and_unchanged() {
    for engine in ["bolt", "sgx"] {
        let storage = format!("engine = \"{engine}\"\n");
        let d = NodeDir::new(&storage);
        initialised(&d);
        let good = std::fs::read(d.db()).unwrap();
        // The rollback witness as it was with the good file (a case that unseals writes).
        let hwm = d.dir.path().join("asset.db.hwm");
        let good_hwm = std::fs::read(&hwm).unwrap();
        let flip = |from: usize, len: usize| {
            let mut bad = good.clone();
            for b in bad.iter_mut().skip(from).take(len) {
                *b ^= 0x5a;
            }
            bad
        };
        // (case, damage must be detected)
        let mut cases: Vec<(String, Vec<u8>, bool)> = (0..good.len())
            .step_by(4096)
            .map(|at| (format!("4 KiB flipped at {at}"), flip(at, 4096), false))
            .collect();
        cases.push((
            "4 KiB flipped in the middle".into(),
            flip((good.len() / 2).saturating_sub(2048), 4096),
            engine == "sgx",
        ));
        cases.push(("first 64 bytes flipped".into(), flip(0, 64), true));
        cases.push(("cut in half".into(), good[..good.len() / 2].to_vec(), true));
        cases.push((
            "another file type".into(),
            b"\x89PNG\r\n\x1a\n not a key store".to_vec(),
            true,
        ));
        let mut detected = 0;
        let total = cases.len();
        for (what, bad, must_detect) in cases {
            let what = format!("{engine}, {what}");
            std::fs::write(d.db(), &bad).unwrap();
            std::fs::write(&hwm, &good_hwm).unwrap();
            let node = d.start();
            let s = node.server();
            let unseal = post(&s, "/sys/in-bkey", STRONG);
            if unseal.0 == 200 && !must_detect {
                // Only free pages were hit: every record authenticated at unseal.
                assert_eq!(status(&s)["state"], "unsealed", "{what}");
                node.stop();
                continue;
            }
            detected += 1;
            assert_damaged(&unseal, &d, &what);
            assert_damaged(
                &http(&s, "GET", "/sys/seal-status", "text/plain", b""),
                &d,
                &what,
            );
            assert_damaged(&post(&s, "/sys/in-bkey", STRONG), &d, &what);
            assert_damaged(&post(&s, "/sys/init", STRONG), &d, &what);
            // Still up, and nothing was written.
            assert_damaged(
                &http(&s, "GET", "/sys/seal-status", "text/plain", b""),
                &d,
                &what,
            );
            node.stop();
            assert!(
                std::fs::read(d.db()).unwrap() == bad,
                "{what}: file changed"
            );
        }
        println!("{engine}: {detected} of {total} damaged files refused, the rest unsealed intact");
        assert!(
            detected >= 4,
            "{engine}: only {detected} damaged files detected"
        );

        // Restored from the good copy: works again.
        std::fs::write(d.db(), &good).unwrap();
        std::fs::write(&hwm, &good_hwm).unwrap();
        let node = d.start();
        assert_ok(
            &post(&node.server(), "/sys/in-bkey", STRONG),
            "in-bkey success",
        );
        node.stop();
    }
}

/// Slow and oversized clients of the real node's `/sys` API are dropped before any work:
/// 20 silent connections, 20 half-sent request heads (slowloris) and 20 half-sent bodies are
/// all closed within a generous bound (header and body read timeouts are 10 s), the node
/// answers meanwhile, and a body announced larger than the limit is refused unread.
#[test]
fn slow_clients_are_dropped_and_big_bodies_refused_unread() {
    use mpc_httpd::attack::{Slow, open, still_open_after};
    let d = NodeDir::new("");
    let node = d.start();
    let mut conns = open(node.addr, 20, Slow::Silent, "/sys/in-bkey");
    conns.extend(open(node.addr, 20, Slow::PartialHead, "/sys/in-bkey"));
    conns.extend(open(node.addr, 20, Slow::PartialBody, "/sys/in-bkey"));
    assert_eq!(conns.len(), 60);
    assert_eq!(status(&node.server())["state"], "uninitialized");
    assert_eq!(
        still_open_after(conns, std::time::Duration::from_secs(60)),
        0,
        "slow clients still connected after 60 s"
    );
    // Announced 100 MB, nothing sent: refused at once, with the node's error format.
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(node.addr).unwrap();
    c.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    c.write_all(b"POST /sys/init HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("larger than 65536 bytes"), "{reply}");
    assert!(!d.db().exists());
    assert_eq!(status(&node.server())["state"], "uninitialized");
    node.stop();
}

#[test]
fn rolled_back_store_and_engine_mismatch_are_refused() {
    let d = NodeDir::new("");
    initialised(&d);
    let old = std::fs::read(d.db()).unwrap();
    // Advance the store: a password change is a write.
    let node = d.start();
    let s = node.server();
    assert_ok(&post(&s, "/sys/in-bkey", STRONG), "in-bkey success");
    assert_ok(
        &post(&s, "/sys/re-bkey-init", STRONG),
        "re-bkey-init success",
    );
    assert_ok(&post(&s, "/sys/re-bkey", STRONG2), "re-bkey success");
    node.stop();
    let new = std::fs::read(d.db()).unwrap();
    std::fs::write(d.db(), &old).unwrap();
    let e = refused(&d);
    assert!(e.contains("rollback detected"), "{e}");
    assert_eq!(std::fs::read(d.db()).unwrap(), old);
    std::fs::write(d.db(), &new).unwrap();

    // The same file under engine = "sgx" is named as the other engine's store.
    let text = std::fs::read_to_string(d.config()).unwrap();
    std::fs::write(
        d.config(),
        text.replace("[storage]\n", "[storage]\nengine = \"sgx\"\n"),
    )
    .unwrap();
    let e = refused(&d);
    assert!(e.contains("engine"), "{e}");
    assert_eq!(std::fs::read(d.db()).unwrap(), new);
}

#[test]
fn missing_directory_and_bad_configs_are_refused_at_start() {
    let d = NodeDir::with_config(
        "[log.file]\nenable = false\n[mpc-service]\nprotocol = \"ws\"\naddress = \"127.0.0.1:9\"\n[storage]\ndb-file-path = \"no/such/dir/asset.db\"\nunseal-server-address = \"127.0.0.1:0\"\n",
    );
    let e = refused(&d);
    assert!(e.contains("does not exist"), "{e}");
    let o = cli(&["check", "--config", d.config().to_str().unwrap()], "");
    assert_eq!(o.code, 1);
    assert!(o.stdout.contains("FAIL  db directory"), "{o:?}");

    let cases = [
        ("[storage]\ncolour = 1\n", "unknown field"),
        ("[storage]\nt = \"2\"\n", "invalid type"),
        (
            "[storage]\nt = 3\nn = 2\n",
            "[storage] t: t = 3 is larger than n = 2",
        ),
        (
            "[storage]\nt = 0\n",
            "[storage] t: t = 0 must be at least 1",
        ),
        (
            "[log.stdout]\nlevel = 9\n",
            "[log.stdout] level: 9 is not a log level",
        ),
        (
            "[[callback.server]]\naddress = \"http://127.0.0.1:9\"\npublic-key-path = \"missing.pem\"\n",
            "public-key-path: cannot read",
        ),
        ("[app\n", "(line 1, column"),
    ];
    for (text, want) in cases {
        let d = NodeDir::with_config(text);
        let e = refused(&d);
        assert!(e.contains("config.toml"), "{text}: {e}");
        assert!(e.contains(want), "{text}: {e}");
        let o = cli(&["check", "--config", d.config().to_str().unwrap()], "");
        assert_eq!(o.code, 1, "{o:?}");
        assert!(o.stdout.contains(want), "{o:?}");
    }

    // A callback key that is not a P-256 public key.
    let d = NodeDir::with_config(
        "[[callback.server]]\naddress = \"http://127.0.0.1:9\"\npublic-key-path = \"cb.pem\"\n",
    );
    std::fs::write(d.dir.path().join("cb.pem"), "hello").unwrap();
    let e = refused(&d);
    assert!(e.contains("not a P-256 public key"), "{e}");
}

#[test]
fn check_and_help() {
    let d = NodeDir::new("");
    let o = cli(&["check", "--config", d.config().to_str().unwrap()], "");
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("ok    config"), "{o:?}");
    assert!(o.stdout.contains("ok    db directory"), "{o:?}");

    let o = cli(&["help"], "");
    assert_eq!(o.code, 0, "{o:?}");
    for c in [
        "start",
        "init",
        "unseal",
        "info",
        "reset",
        "cmreset",
        "check",
        "passwords",
        "backup",
        "verify-backup",
    ] {
        assert!(o.stdout.contains(c), "help lacks {c}: {}", o.stdout);
    }
    let o = cli(&["help", "verify-backup"], "");
    assert_eq!(o.code, 0);
    assert!(o.stdout.contains("--password-stdin"));

    // No node at the address: a clear error, exit 1.
    let o = cli(&["info", "--server", "127.0.0.1:9"], "");
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("cannot reach mpc-node"), "{o:?}");
}

#[test]
fn insecure_kdf_needs_the_exact_value() {
    let d = NodeDir::new("");
    let o = std::process::Command::new(BIN)
        .args(["start", "--config", d.config().to_str().unwrap()])
        .env("MPC_NODE_INSECURE_FAST_KDF", "1")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unrecognised value"));
}

#[test]
fn stdout_logging_follows_its_level() {
    let d = NodeDir::with_config(
        "[log.stdout]\nenable = true\nlevel = 4\n[log.file]\nenable = false\n[storage]\ndb-file-path = \"asset.db\"\nunseal-server-address = \"127.0.0.1:0\"\n",
    );
    let node = d.start();
    let s = node.server();
    assert_eq!(post(&s, "/sys/init", STRONG).0, 200);
    let e = assert_err(
        &post(&s, "/sys/in-bkey", "Wrong-Password-1"),
        "wrong password",
    );
    wait_backoff(&e);
    assert_ok(&post(&s, "/sys/in-bkey", STRONG), "in-bkey success");
    let out = node.stdout.clone();
    node.stop();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let lines = out.lock().unwrap().join("\n");
    assert!(
        lines.contains("INFO") && lines.contains("node unsealed"),
        "{lines}"
    );
    assert!(
        lines.contains("WARN") && lines.contains("unseal failed: wrong password"),
        "{lines}"
    );
    assert!(
        !lines.contains("DEBUG"),
        "level 4 shows no debug lines: {lines}"
    );
    assert!(!lines.contains(STRONG) && !lines.contains("Wrong-Password-1"));
    assert!(!lines.starts_with('{'), "stdout lines are human, not JSON");
    assert!(!d.dir.path().join("logs").exists());

    // level 2 (Error): no info or warn lines.
    let d = NodeDir::with_config(
        "[log.stdout]\nenable = true\nlevel = 2\n[log.file]\nenable = false\n[storage]\ndb-file-path = \"asset.db\"\nunseal-server-address = \"127.0.0.1:0\"\n",
    );
    let node = d.start();
    assert_eq!(post(&node.server(), "/sys/init", STRONG).0, 200);
    let out = node.stdout.clone();
    node.stop();
    assert!(out.lock().unwrap().is_empty(), "{:?}", out.lock().unwrap());
}

#[test]
fn verify_backup_detects_a_tampered_record() {
    let d = NodeDir::new("engine = \"sgx\"\n");
    initialised(&d);
    let o = cli(
        &[
            "verify-backup",
            d.db().to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["engine"], "sgx");

    // Flip one bit of the encrypted identity record.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.db()).unwrap()).unwrap();
    let table = doc["tables"]["node_identity"].as_object_mut().unwrap();
    let (_, blob) = table.iter_mut().next().unwrap();
    let mut raw = b64(blob.as_str().unwrap());
    let last = raw.len() - 1;
    raw[last] ^= 1;
    use base64::Engine as _;
    *blob = base64::engine::general_purpose::STANDARD
        .encode(&raw)
        .into();
    let tampered = d.dir.path().join("tampered.db");
    std::fs::write(&tampered, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let o = cli(
        &[
            "verify-backup",
            tampered.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(!o.stderr.contains("panicked"), "{o:?}");
    if !o.stdout.is_empty() {
        assert_eq!(o.json()["data"]["all_records_authentic"], false, "{o:?}");
    }
}

/// The platform task-signing key a node pinned changes only through the operator's
/// `mpc-node platform-key` command (unsealed store, loopback API, the current password),
/// survives a restart in
/// the sealed store, and every change is logged naming the previous and the new key.
#[test]
fn platform_key_changes_only_by_the_operator_command_and_is_logged() {
    use mpc_transport::signed::key_hex;
    let d = NodeDir::new("");
    let node = d.start();
    let s = node.server();
    let key = |b: u8| {
        *p256::ecdsa::SigningKey::from_slice(&[b; 32])
            .unwrap()
            .verifying_key()
    };
    let (k1, k2) = (key(0x41), key(0x42));
    let pem = |name: &str, k: &p256::ecdsa::VerifyingKey| {
        let p = d.dir.path().join(name);
        std::fs::write(&p, mpc_wire::keys::public_key_pem(k)).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let (f1, f2) = (pem("k1.pem", &k1), pem("k2.pem", &k2));
    let pw = format!("{STRONG}\n");
    let junk = d.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a key").unwrap();

    // Sealed (here: not even initialised): refused.
    let o = cli(
        &[
            "platform-key",
            "--server",
            &s,
            "--password-stdin",
            "pin",
            &f1,
        ],
        &pw,
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("not unsealed"), "{o:?}");
    assert_eq!(post(&s, "/sys/init", STRONG).0, 200);
    assert_ok(&post(&s, "/sys/in-bkey", STRONG), "in-bkey success");

    // Not a key, or a body of another shape: refused, nothing pinned.
    let o = cli(
        &[
            "platform-key",
            "--server",
            &s,
            "--password-stdin",
            "pin",
            junk.to_str().unwrap(),
        ],
        &pw,
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("not a P-256 public key PEM"), "{o:?}");
    assert_err(
        &http(
            &s,
            "POST",
            "/sys/platform-key",
            "application/json",
            br#"{"pin":"x","forget":true}"#,
        ),
        "body must be",
    );

    // Without the current password: refused, nothing pinned (a local process that reaches the
    // loopback API cannot re-pin the key).
    let o = cli(
        &[
            "platform-key",
            "--server",
            &s,
            "--password-stdin",
            "pin",
            &f1,
        ],
        "Wrong-Horse-99\n",
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("wrong password"), "{o:?}");
    // The store throttles after a wrong password (500 ms after the first).
    std::thread::sleep(std::time::Duration::from_millis(700));
    let no_pw = format!(
        "{{\"pin\":{}}}",
        serde_json::to_string(&std::fs::read_to_string(&f1).unwrap()).unwrap()
    );
    assert_err(
        &http(
            &s,
            "POST",
            "/sys/platform-key",
            "application/json",
            no_pw.as_bytes(),
        ),
        "the current password (or one current share) is required",
    );
    let o = cli(
        &[
            "platform-key",
            "--server",
            &s,
            "--password-stdin",
            "pin",
            &f1,
        ],
        &pw,
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["previous"], serde_json::Value::Null);
    assert_eq!(o.json()["data"]["pinned"], key_hex(&k1).as_str());

    // Kept sealed across a restart: the next change names it as the previous key.
    node.stop();
    let node = d.start();
    let s = node.server();
    let o = cli(
        &[
            "platform-key",
            "--server",
            &s,
            "--password-stdin",
            "pin",
            &f2,
        ],
        &pw,
    );
    assert_eq!(o.code, 1, "sealed after the restart: {o:?}");
    assert_ok(&post(&s, "/sys/in-bkey", STRONG), "in-bkey success");
    let o = cli(
        &[
            "platform-key",
            "--server",
            &s,
            "--password-stdin",
            "pin",
            &f2,
        ],
        &pw,
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["previous"], key_hex(&k1).as_str());
    assert_eq!(o.json()["data"]["pinned"], key_hex(&k2).as_str());
    let o = cli(
        &["platform-key", "--server", &s, "--password-stdin", "forget"],
        &pw,
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["previous"], key_hex(&k2).as_str());
    assert_eq!(o.json()["data"]["pinned"], serde_json::Value::Null);
    node.stop();

    let log = std::fs::read_to_string(d.dir.path().join("logs/node.log")).unwrap();
    assert_eq!(
        log.matches("operator pinned a new platform task-signing key")
            .count(),
        2,
        "{log}"
    );
    assert!(log.contains(&key_hex(&k2)), "{log}");
    assert_eq!(
        log.matches("operator removed the pinned platform task-signing key")
            .count(),
        1,
        "{log}"
    );
}

/// `mpc-node rotate-key` on the real binary: a wrong password is refused and changes nothing;
/// the current one re-encrypts every record under a fresh data key; the node keeps working and
/// unseals with the same password after a restart; a backup taken before, spliced onto the
/// rotated store with the old password, authenticates none of its records (sgx, where header
/// and records can be spliced by hand).
#[test]
fn rotate_key_locks_out_backups_taken_before() {
    let d = NodeDir::new("engine = \"sgx\"\n");
    let node = d.start();
    let s = node.server();
    assert_eq!(post(&s, "/sys/init", STRONG).0, 200);
    assert_ok(&post(&s, "/sys/in-bkey", STRONG), "in-bkey success");
    let old = d.dir.path().join("before.db");
    let o = cli(
        &["backup", "--server", &s, "--out", old.to_str().unwrap()],
        "",
    );
    assert_eq!(o.code, 0, "{o:?}");
    let before = std::fs::read(d.db()).unwrap();

    let o = cli(
        &["rotate-key", "--server", &s, "--password-stdin"],
        "Wrong-Password-1\n",
    );
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains("wrong password"), "{o:?}");
    assert!(
        std::fs::read(d.db()).unwrap() == before,
        "a refused rotation wrote"
    );
    // A wrong password is throttled like unseal (0.5 s before the next attempt is evaluated).
    std::thread::sleep(std::time::Duration::from_millis(700));

    let o = cli(
        &["rotate-key", "--server", &s, "--password-stdin"],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["rotated"], true, "{o:?}");
    // At least the identity and transport keys, the node id and the public key.
    assert!(o.json()["data"]["records"].as_u64().unwrap() >= 4, "{o:?}");
    assert_eq!(status(&s)["state"], "unsealed");
    node.stop();

    let node = d.start();
    assert_ok(
        &post(&node.server(), "/sys/in-bkey", STRONG),
        "in-bkey success",
    );
    node.stop();
    let o = cli(
        &[
            "verify-backup",
            d.db().to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{STRONG}\n"),
    );
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["data"]["all_records_authentic"], true);

    // The old backup's header (its wrapped data key) on today's records.
    let mut now: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.db()).unwrap()).unwrap();
    let then: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&old).unwrap()).unwrap();
    now["header"] = then["header"].clone();
    let spliced = d.dir.path().join("spliced.db");
    std::fs::write(&spliced, serde_json::to_string_pretty(&now).unwrap()).unwrap();
    let o = cli(
        &[
            "verify-backup",
            spliced.to_str().unwrap(),
            "--password-stdin",
        ],
        &format!("{STRONG}\n"),
    );
    assert_eq!(
        o.code, 1,
        "the old data key still opens the rotated records: {o:?}"
    );
    assert!(!o.stderr.contains("panicked"), "{o:?}");
}
