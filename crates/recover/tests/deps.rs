//! mpc-recover links no network code: its normal dependency tree (what the binary links) has
//! no networking crate and none of the workspace's networked crates.

use std::collections::BTreeSet;
use std::process::Command;

/// Crates that open sockets or speak a network protocol (and our crates that use them).
const NETWORKING: &[&str] = &[
    "tokio",
    "mio",
    "socket2",
    "hyper",
    "hyper-util",
    "h2",
    "http",
    "reqwest",
    "axum",
    "tower",
    "rustls",
    "tokio-rustls",
    "webpki-roots",
    "tungstenite",
    "tokio-tungstenite",
    "async-nats",
    "postgres",
    "tokio-postgres",
    "native-tls",
    "openssl",
    "ureq",
    "curl",
    "mpc-node",
    "mpc-httpd",
    "mpc-transport",
    "mpc-callback",
    "mpc-bus",
    "mpc-proxy",
    "mpc-coordinator",
    "mpc-platform",
    "mpc-devnet",
    "mpc-services",
];

#[test]
fn the_dependency_tree_has_no_networking_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "tree",
            "--manifest-path",
            manifest,
            "-p",
            "mpc-recover",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // The tree is really there.
    for expected in [
        "mpc-recover",
        "mpc-keystore",
        "mpc-tss",
        "key-share",
        "scrypt",
    ] {
        assert!(names.contains(expected), "{expected} missing from:\n{text}");
    }
    let found: Vec<&&str> = NETWORKING.iter().filter(|n| names.contains(**n)).collect();
    assert!(
        found.is_empty(),
        "networking crates linked: {found:?}\n{text}"
    );
}
