//! The devnet keeps what the user edited: config files are written only when missing, kept
//! byte for byte on the next start, checked against what the devnet needs (a misfit names the
//! file, the line and the fix, and nothing is overwritten), and rewritten only on request
//! (`reset_config`, `mpc-devnet --reset-config`).

use std::path::Path;

use mpc_devnet::{Cluster, Options};

const EXE: &str = env!("CARGO_BIN_EXE_mpc-devnet");

fn opts(dir: &Path) -> Options {
    let mut o = Options::new(dir);
    o.exe = EXE.into();
    o.quiet = true;
    o.test_primes = true;
    o
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

/// Replaces the one line that starts with `prefix`.
fn edit_line(p: &Path, prefix: &str, new: &str) {
    let text = read(p);
    assert_eq!(
        text.lines().filter(|l| l.starts_with(prefix)).count(),
        1,
        "{prefix} in {p:?}"
    );
    let out: String = text
        .lines()
        .map(|l| {
            if l.starts_with(prefix) {
                format!("{new}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(p, out).unwrap();
}

fn line_number(p: &Path, prefix: &str) -> usize {
    read(p).lines().position(|l| l.starts_with(prefix)).unwrap() + 1
}

/// A P-256 public key PEM of a callback server of the user's own.
fn own_callback_key(path: &Path) {
    use p256::pkcs8::EncodePublicKey as _;
    let sk = p256::SecretKey::random(&mut rand_core::OsRng);
    let pem = sk
        .public_key()
        .to_public_key_pem(p256::pkcs8::LineEnding::LF)
        .unwrap();
    std::fs::write(path, pem).unwrap();
}

#[test]
fn edits_survive_the_next_start_and_reset_rewrites_them() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Cluster::prepare(&opts(tmp.path())).unwrap();
    let l = &first.layout;
    let defaults = [
        read(&l.platform_config()),
        read(&l.node_config("a")),
        read(&l.callback_policy()),
    ];

    // The user points node a at their own callback server, tightens the policy and changes a
    // platform timeout.
    own_callback_key(&l.node_dir("a").join("my-callback.pub.pem"));
    let node_a = read(&l.node_config("a"))
        .replace(
            &format!(
                "address = \"http://127.0.0.1:{}\"",
                first.state.ports.callback
            ),
            "address = \"https://risk.example.com\"",
        )
        .replace(
            "public-key-path = \"../callback/server.pub.pem\"",
            "public-key-path = \"my-callback.pub.pem\"",
        );
    assert_ne!(node_a, defaults[1]);
    std::fs::write(l.node_config("a"), &node_a).unwrap();
    edit_line(
        &l.callback_policy(),
        "sign_types =",
        "sign_types = [\"1\"]  # transfers only",
    );
    edit_line(
        &l.platform_config(),
        "sign-timeout-secs",
        "sign-timeout-secs = 77",
    );
    let edited = [
        read(&l.platform_config()),
        read(&l.node_config("a")),
        read(&l.callback_policy()),
    ];

    // Next start: every edit is still there, byte for byte; the node loads with the user's
    // callback server.
    let second = Cluster::prepare(&opts(tmp.path())).unwrap();
    assert_eq!(second.state.ports, first.state.ports);
    let now = [
        read(&l.platform_config()),
        read(&l.node_config("a")),
        read(&l.callback_policy()),
    ];
    assert_eq!(now, edited);
    let cfg = mpc_node::Config::load(&l.node_config("a")).unwrap();
    assert_eq!(cfg.callback.server.len(), 1);
    assert_eq!(cfg.callback.server[0].address, "https://risk.example.com");
    let platform = mpc_platform::config::PlatformConfig::load(&l.platform_config()).unwrap();
    assert_eq!(platform.coordinator.sign_timeout_secs, 77);

    // Asked for, a reset writes the defaults again.
    let mut o = opts(tmp.path());
    o.reset_config = true;
    Cluster::prepare(&o).unwrap();
    let reset = [
        read(&l.platform_config()),
        read(&l.node_config("a")),
        read(&l.callback_policy()),
    ];
    assert_eq!(reset, defaults);
}

#[test]
fn a_kept_file_that_no_longer_fits_is_named_with_line_and_fix_and_not_touched() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Cluster::prepare(&opts(tmp.path())).unwrap();
    let l = &first.layout;
    let ports = &first.state.ports;

    // Node b's local API on another port than devnet.json's, node c pointed at another
    // platform port, the platform listening elsewhere and without the devnet's admin key.
    edit_line(
        &l.node_config("b"),
        "unseal-server-address",
        "unseal-server-address = \"127.0.0.1:1\"",
    );
    edit_line(
        &l.node_config("c"),
        "address = ",
        "address = \"127.0.0.1:2\"",
    );
    edit_line(
        &l.platform_config(),
        "listen = ",
        "listen = \"127.0.0.1:3\"",
    );
    edit_line(
        &l.platform_config(),
        "admin-public-keys",
        "admin-public-keys = []",
    );
    let before = [
        read(&l.node_config("b")),
        read(&l.node_config("c")),
        read(&l.platform_config()),
    ];

    let err = Cluster::prepare(&opts(tmp.path())).unwrap_err();
    let msg = format!("{err:#}");
    let want = [
        format!(
            "{} line {}: [storage] unseal-server-address = \"127.0.0.1:1\", but devnet.json gives node b port {}; set it to \"127.0.0.1:{}\"",
            l.node_config("b").display(),
            line_number(&l.node_config("b"), "unseal-server-address"),
            ports.nodes["b"],
            ports.nodes["b"]
        ),
        format!(
            "{} line {}: [mpc-service] address = \"127.0.0.1:2\", but the devnet's platform takes nodes on 127.0.0.1:{}; set it to \"127.0.0.1:{}\"",
            l.node_config("c").display(),
            line_number(&l.node_config("c"), "address = "),
            ports.platform,
            ports.platform
        ),
        format!(
            "{} line {}: [server] listen = \"127.0.0.1:3\", but devnet.json gives the platform port {}; set it to \"127.0.0.1:{}\"",
            l.platform_config().display(),
            line_number(&l.platform_config(), "listen = "),
            ports.platform,
            ports.platform
        ),
        format!(
            "{} line {}: [coordinator] admin-public-keys does not hold the devnet's administrator key",
            l.platform_config().display(),
            line_number(&l.platform_config(), "admin-public-keys"),
        ),
        "--reset-config".to_owned(),
    ];
    for w in &want {
        assert!(msg.contains(w.as_str()), "missing\n  {w}\nin\n{msg}");
    }
    // Node a fits and is not named.
    assert!(
        !msg.contains(&l.node_config("a").display().to_string()),
        "{msg}"
    );
    let after = [
        read(&l.node_config("b")),
        read(&l.node_config("c")),
        read(&l.platform_config()),
    ];
    assert_eq!(after, before, "a misfit must never be overwritten");
}

#[test]
fn a_broken_policy_or_node_config_is_named_by_its_own_loader() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Cluster::prepare(&opts(tmp.path())).unwrap();
    let l = &first.layout;
    edit_line(&l.callback_policy(), "sign_types =", "sign_types = [\"9\"]");
    edit_line(&l.node_config("a"), "engine =", "engine = \"floppy\"");
    let before = [read(&l.callback_policy()), read(&l.node_config("a"))];
    let err = format!("{:#}", Cluster::prepare(&opts(tmp.path())).unwrap_err());
    assert!(
        err.contains(&format!(
            "{}: sign.sign_types: \"9\" is not",
            l.callback_policy().display()
        )),
        "{err}"
    );
    assert!(err.contains("[storage] engine"), "{err}");
    assert_eq!(
        [read(&l.callback_policy()), read(&l.node_config("a"))],
        before
    );
}

#[test]
fn an_explicit_policy_never_overwrites_a_different_kept_one() {
    let tmp = tempfile::tempdir().unwrap();
    Cluster::prepare(&opts(tmp.path())).unwrap();
    let mut o = opts(tmp.path());
    o.callback_policy = Some("[request_types]\nallow = [\"keygen\"]\n".into());
    let err = format!("{:#}", Cluster::prepare(&o).unwrap_err());
    assert!(err.contains("policy.toml exists and differs"), "{err}");
}

/// The real binary stops before starting anything, names the line, exits 1.
#[test]
fn the_binary_refuses_a_misfit_before_starting_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Cluster::prepare(&opts(tmp.path())).unwrap();
    let cfg = first.layout.node_config("a");
    edit_line(
        &cfg,
        "unseal-server-address",
        "unseal-server-address = \"127.0.0.1:1\"",
    );
    let before = read(&cfg);
    let out = std::process::Command::new(EXE)
        .arg("--dir")
        .arg(tmp.path())
        .args(["--once", "--test-primes"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} line {}: [storage] unseal-server-address",
            cfg.display(),
            line_number(&cfg, "unseal-server-address")
        )),
        "{stderr}"
    );
    assert_eq!(read(&cfg), before);
    assert!(!first.layout.node_dir("a").join("asset.db").exists());

    // --reset-config is the way out (checked without starting: the same prepare path).
    let out = std::process::Command::new(EXE)
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("--reset-config"));
}

/// A directory made for one platform process, started with --scale: the kept files do not fit
/// the shape (database, bus, the nodes' proxy addresses); each is named, nothing is touched.
/// With --reset-config they are written for the scaled shape.
#[test]
fn a_single_platform_directory_started_with_scale_names_what_does_not_fit() {
    let tmp = tempfile::tempdir().unwrap();
    Cluster::prepare(&opts(tmp.path())).unwrap();
    let l = mpc_devnet::layout::Layout::new(tmp.path());
    let before = read(&l.platform_config());
    let mut scaled = opts(tmp.path());
    scaled.scale = Some(mpc_devnet::cluster::Scale::replicas(2));
    let msg = format!("{:#}", Cluster::prepare(&scaled).unwrap_err());
    let state = mpc_devnet::state::State::load(&l.state()).unwrap();
    let s = state.ports.scale.clone().unwrap();
    for want in [
        format!(
            "platform.db\", but the scaled devnet's PostgreSQL is {}",
            mpc_devnet::cluster::scale_database_url(s.postgres)
        ),
        format!(
            "[bus] url = \"inproc:\", but this devnet's bus is nats://127.0.0.1:{}",
            s.nats
        ),
        format!(
            "{} line {}: [mpc-service] address = ",
            l.node_config("a").display(),
            line_number(&l.node_config("a"), "address = ")
        ),
    ] {
        assert!(msg.contains(&want), "missing\n  {want}\nin\n{msg}");
    }
    assert_eq!(
        read(&l.platform_config()),
        before,
        "a misfit was overwritten"
    );

    scaled.reset_config = true;
    Cluster::prepare(&scaled).unwrap();
    let text = read(&l.platform_config());
    assert!(
        text.contains(&mpc_devnet::cluster::scale_database_url(s.postgres)),
        "{text}"
    );
    let node = read(&l.node_config("b"));
    // Each node lists both proxies.
    for p in &s.proxies {
        assert!(node.contains(&format!("127.0.0.1:{p}")), "{node}");
    }
}
