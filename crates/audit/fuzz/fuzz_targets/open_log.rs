//! `cargo +nightly fuzz run open_log`: any bytes as an existing log file: opening it either
//! refuses with an error or resumes, and an entry appended after resuming keeps the file's
//! tail a whole line whose `prev` is the resumed head.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpc_audit::AuditLog;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("mpc-audit-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("audit.log");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(mut log) = AuditLog::open(&path) else {
        return;
    };
    let head = log.head();
    let after = log
        .append(1, "fuzz", mpc_audit::Fields::new())
        .expect("appending to a resumed log");
    assert_eq!(after.seq, head.seq + 1);
    drop(log);
    let bytes = std::fs::read(&path).expect("read back");
    assert_eq!(bytes.last(), Some(&b'\n'));
});

