//! Store-level tests (unit tests so the crash failpoints are available).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::failpoint;
use crate::shamir;
use crate::*;

const PW: &str = "Correct-Horse-9";
const PW2: &str = "Battery^Staple-42";
const ENGINES: [Engine; 2] = [Engine::Bolt, Engine::Sgx];

fn cfg(engine: Engine, t: u8, n: u8) -> StoreConfig {
    StoreConfig::new(engine, t, n)
        .unwrap()
        .kdf(KdfParams::insecure_for_tests())
        .backoff(Backoff {
            base: Duration::ZERO,
            max: Duration::ZERO,
        })
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("asset.db")
}

fn uninit(path: &Path, c: StoreConfig) -> Uninitialized {
    match KeyStore::open(path, c).unwrap() {
        Opened::Uninitialized(u) => u,
        Opened::Sealed(_) => panic!("expected uninitialized"),
    }
}

fn sealed(path: &Path, c: StoreConfig) -> Sealed {
    match KeyStore::open(path, c).unwrap() {
        Opened::Sealed(s) => s,
        Opened::Uninitialized(_) => panic!("expected sealed"),
    }
}

fn open_err(path: &Path, c: StoreConfig) -> Error {
    match KeyStore::open(path, c) {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    }
}

fn init_pw(path: &Path, engine: Engine) -> Unsealed {
    let mut b = Batch::new();
    b.put(tables::NODE_IDENTITY, b"p256", b"identity-secret");
    b.put_public(public_keys::NODE_ID, b"sinoTESTNODEID");
    uninit(path, cfg(engine, 1, 1))
        .init(PW, &b)
        .unwrap()
        .done()
        .unwrap()
}

fn unseal_pw(path: &Path, engine: Engine, pw: &str) -> Result<Unsealed> {
    let mut s = sealed(path, cfg(engine, 1, 1));
    s.unseal(pw).map(|st| st.done().unwrap())
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_seal_unseal_roundtrip_both_engines() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let u = init_pw(&path, engine);
        assert_eq!(u.state(), State::Unsealed);
        assert_eq!(mode(&path), 0o600, "{engine}");
        u.put(tables::KEY_SHARES, b"wallet-1", b"share bytes")
            .unwrap();
        assert_eq!(
            u.get(tables::KEY_SHARES, b"wallet-1")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"share bytes"
        );
        assert_eq!(u.get(tables::KEY_SHARES, b"nope").unwrap(), None);
        assert_eq!(u.count(tables::KEY_SHARES).unwrap(), 1);
        assert_eq!(
            u.get_public(public_keys::NODE_ID).unwrap().unwrap(),
            b"sinoTESTNODEID"
        );
        let s = u.seal();
        assert_eq!(s.state(), State::Sealed);
        assert_eq!(
            s.get_public_unverified(public_keys::NODE_ID)
                .unwrap()
                .unwrap(),
            b"sinoTESTNODEID"
        );
        drop(s);
        // From disk again.
        let mut s = sealed(&path, cfg(engine, 1, 1));
        assert_eq!(s.info().unwrap().counter, 2);
        let u = s.unseal(PW).unwrap().done().unwrap();
        assert_eq!(
            u.get(tables::NODE_IDENTITY, b"p256")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"identity-secret"
        );
        assert_eq!(
            u.list_keys(tables::KEY_SHARES).unwrap(),
            vec![b"wallet-1".to_vec()]
        );
        assert!(u.delete(tables::KEY_SHARES, b"wallet-1").unwrap());
        assert!(!u.delete(tables::KEY_SHARES, b"wallet-1").unwrap());
        assert_eq!(u.count(tables::KEY_SHARES).unwrap(), 0);
        assert!(matches!(
            u.put("Bad-Name", b"k", b"v"),
            Err(Error::BadTableName(_))
        ));
        assert!(matches!(
            u.put("__public", b"k", b"v"),
            Err(Error::BadTableName(_))
        ));
        u.flush_witness();
        let hwm = std::fs::read_to_string(dir.path().join("asset.db.hwm")).unwrap();
        assert_eq!(
            hwm,
            format!("mpc-keystore-hwm 1 {}\n", u.info().unwrap().counter)
        );
    }
}

#[test]
fn init_enforces_password_rule_and_writes_nothing() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let mut u = uninit(&path, cfg(engine, 1, 1));
        let e = u.init("password", &Batch::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "password rejected, it needs at least 12 characters (has 8), an upper-case letter, a digit, a special character (e.g. !@#$%^&*()_+)"
        );
        assert!(!path.exists());
        // A high-water mark left by a deleted earlier store does not block a new one.
        std::fs::write(dir.path().join("asset.db.hwm"), "mpc-keystore-hwm 1 57\n").unwrap();
        assert!(u.init(PW, &Batch::new()).unwrap().done().is_some());
        assert!(unseal_pw(&path, engine, PW).is_ok());
        // A second init on an existing file is refused.
        let mut again = uninit(&dir.path().join("other.db"), cfg(engine, 1, 1));
        std::fs::copy(&path, dir.path().join("other.db")).unwrap();
        assert!(matches!(
            again.init(PW, &Batch::new()),
            Err(Error::AlreadyExists(_))
        ));
    }
}

#[test]
fn wrong_password_then_right_with_growing_delay() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        init_pw(&path, engine).seal();
        let c = cfg(engine, 1, 1).backoff(Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(150),
        });
        let mut s = sealed(&path, c);
        // Compare with the file as it is while open (redb flags an open file in its header).
        let before = std::fs::read(&path).unwrap();
        match s.unseal("Wrong-Password-1").unwrap_err() {
            Error::WrongPassword {
                failures,
                retry_after,
            } => {
                assert_eq!(failures, 1);
                assert_eq!(retry_after, Duration::from_millis(100));
            }
            e => panic!("{e}"),
        }
        // Too early: refused without being evaluated, even with the right password.
        assert!(matches!(s.unseal(PW), Err(Error::RetryLater { .. })));
        std::thread::sleep(Duration::from_millis(110));
        match s.unseal("Wrong-Password-2").unwrap_err() {
            Error::WrongPassword {
                failures,
                retry_after,
            } => {
                assert_eq!(failures, 2);
                assert_eq!(retry_after, Duration::from_millis(150)); // 200 capped at max
            }
            e => panic!("{e}"),
        }
        std::thread::sleep(Duration::from_millis(160));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "nothing written on failure"
        );
        let u = s.unseal(PW).unwrap().done().unwrap();
        assert!(u.get(tables::NODE_IDENTITY, b"p256").unwrap().is_some());
    }
    let b = Backoff::default();
    assert_eq!(b.delay(0), Duration::ZERO);
    assert_eq!(b.delay(1), Duration::from_millis(500));
    assert_eq!(b.delay(2), Duration::from_secs(1));
    assert_eq!(b.delay(7), Duration::from_secs(30));
    assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
}

fn share_set(seed: u64, t: u8, n: u8) -> Vec<String> {
    shamir::generate_share_set(t, n, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap()
}

#[test]
fn t2_n3_every_subset_unseals() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let shares = share_set(11, 2, 3);
        let mut u = uninit(&path, cfg(engine, 2, 3));
        match u.init(&shares[0], &Batch::new()).unwrap() {
            Step::NeedMore(p) => assert_eq!(p, Progress { have: 1, need: 2 }),
            Step::Done(_) => panic!("needs 2"),
        }
        assert!(!path.exists(), "nothing written before t shares");
        let st = u.init(&shares[1], &Batch::new()).unwrap().done().unwrap();
        st.put(tables::KEY_SHARES, b"k", b"v").unwrap();
        drop(st);
        for i in 0..3 {
            for j in 0..3 {
                if i == j {
                    continue;
                }
                let mut s = sealed(&path, cfg(engine, 2, 3));
                assert!(matches!(
                    s.unseal(&shares[i]).unwrap(),
                    Step::NeedMore(Progress { have: 1, need: 2 })
                ));
                let u = s.unseal(&shares[j]).unwrap().done().expect("unsealed");
                assert_eq!(
                    u.get(tables::KEY_SHARES, b"k").unwrap().unwrap().as_slice(),
                    b"v"
                );
            }
        }
        // Wrong configuration t/n is refused clearly.
        assert!(matches!(
            open_err(&path, cfg(engine, 3, 5)),
            Error::PolicyMismatch { file_t: 2, .. }
        ));
    }
}

#[test]
fn shares_duplicates_malformed_and_wrong_set() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let shares = share_set(21, 3, 5);
        let mut u = uninit(&path, cfg(engine, 3, 5));
        for s in &shares[..3] {
            let _ = u.init(s, &Batch::new()).unwrap();
        }
        drop(u);
        let mut s = sealed(&path, cfg(engine, 3, 5));
        // Compare with the file as it is while open (redb flags an open file in its header).
        let before = std::fs::read(&path).unwrap();
        s.unseal(&shares[4]).unwrap();
        assert!(matches!(
            s.unseal(&shares[4]),
            Err(Error::Share(ShareError::Duplicate(_)))
        ));
        assert!(matches!(
            s.unseal("%%%"),
            Err(Error::Share(ShareError::NotBase64))
        ));
        assert!(matches!(
            s.unseal("QwA="),
            Err(Error::Share(ShareError::ZeroX))
        ));
        assert!(matches!(
            s.unseal("QwE="),
            Err(Error::Share(ShareError::LengthMismatch { .. }))
        ));
        assert_eq!(s.progress(), Progress { have: 1, need: 3 });
        // Two shares from another set: combine "works" but the AEAD check fails.
        let other = share_set(99, 3, 5);
        s.unseal(&other[0]).unwrap();
        let e = match s.unseal(&other[1]) {
            Err(e) => e,
            Ok(_) => panic!("wrong set unsealed"),
        };
        assert!(matches!(e, Error::WrongPassword { failures: 1, .. }), "{e}");
        assert_eq!(
            s.progress(),
            Progress { have: 0, need: 3 },
            "progress reset after a failed attempt"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing changed");
        // t-1 shares never unseal; the right t do.
        s.unseal(&shares[3]).unwrap();
        assert!(matches!(s.unseal(&shares[1]).unwrap(), Step::NeedMore(_)));
        s.reset_progress();
        assert_eq!(s.progress().have, 0);
        s.unseal(&shares[3]).unwrap();
        s.unseal(&shares[1]).unwrap();
        assert!(s.unseal(&shares[0]).unwrap().done().is_some());
    }
}

#[test]
fn take_is_atomic_and_at_most_once() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let u = init_pw(&path, engine);
        let mut b = Batch::new();
        for i in 0..40u32 {
            b.put(
                tables::PRESIGNATURES,
                &i.to_be_bytes(),
                format!("presig-{i}").as_bytes(),
            );
        }
        u.apply(&b).unwrap();
        assert_eq!(u.count(tables::PRESIGNATURES).unwrap(), 40);
        // Crash before the take commits: the presignature is still there, and not returned.
        let fp = if engine == Engine::Bolt {
            "bolt.before_commit"
        } else {
            "atomic.after_fsync"
        };
        failpoint::arm(fp);
        assert!(matches!(
            u.take(tables::PRESIGNATURES, &0u32.to_be_bytes()),
            Err(Error::Failpoint(_))
        ));
        failpoint::disarm();
        drop(u);
        let u = unseal_pw(&path, engine, PW).unwrap();
        assert_eq!(u.count(tables::PRESIGNATURES).unwrap(), 40);
        // Concurrent takers: each presignature is handed out exactly once.
        let taken = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for i in 0..40u32 {
                        if let Some(v) = u.take(tables::PRESIGNATURES, &i.to_be_bytes()).unwrap() {
                            taken.lock().unwrap().push(v.to_vec());
                        }
                    }
                });
            }
        });
        let mut taken = taken.into_inner().unwrap();
        taken.sort();
        let mut expect: Vec<Vec<u8>> = (0..40u32)
            .map(|i| format!("presig-{i}").into_bytes())
            .collect();
        expect.sort();
        assert_eq!(taken, expect);
        assert_eq!(u.count(tables::PRESIGNATURES).unwrap(), 0);
        assert_eq!(
            u.take(tables::PRESIGNATURES, &0u32.to_be_bytes()).unwrap(),
            None
        );
    }
}

/// Crash at every step of a password change, then "restart": exactly one of old/new works.
#[test]
fn password_change_crash_safety() {
    let points: [(Engine, &str, bool); 5] = [
        (Engine::Bolt, "bolt.before_commit", false),
        (Engine::Sgx, "atomic.after_write", false),
        (Engine::Sgx, "atomic.after_fsync", false),
        (Engine::Sgx, "atomic.after_rename", true),
        (Engine::Bolt, "", true), // no crash
    ];
    for (engine, fp, new_wins) in points {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let mut u = init_pw(&path, engine);
        assert!(matches!(
            u.change_password(PW2),
            Err(Error::ChangeNotStarted)
        ));
        assert!(matches!(
            u.begin_password_change("Wrong-Pass-123"),
            Err(Error::WrongPassword { .. })
        ));
        assert!(matches!(
            u.change_password(PW2),
            Err(Error::ChangeNotStarted)
        ));
        u.begin_password_change(PW).unwrap().done().unwrap();
        assert!(matches!(
            u.change_password("weak"),
            Err(Error::PasswordRule(_))
        ));
        // A failed attempt cancels the change.
        assert!(matches!(
            u.change_password(PW2),
            Err(Error::ChangeNotStarted)
        ));
        u.begin_password_change(PW).unwrap().done().unwrap();
        assert!(matches!(u.change_password(PW), Err(Error::SamePassword)));
        u.begin_password_change(PW).unwrap().done().unwrap();
        if !fp.is_empty() {
            failpoint::arm(fp);
        }
        let r = u.change_password(PW2);
        failpoint::disarm();
        assert_eq!(r.is_ok(), fp.is_empty(), "{fp}");
        drop(u);
        let old = unseal_pw(&path, engine, PW).map(drop);
        let new = unseal_pw(&path, engine, PW2).map(drop);
        assert_eq!(old.is_ok(), !new_wins, "{engine} {fp}: old password");
        assert_eq!(new.is_ok(), new_wins, "{engine} {fp}: new password");
        let u = unseal_pw(&path, engine, if new_wins { PW2 } else { PW }).unwrap();
        assert_eq!(
            u.get(tables::NODE_IDENTITY, b"p256")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"identity-secret"
        );
        assert_eq!(mode(&path), 0o600);
    }
}

/// `authorize` proves an operator action with the current password, or t current shares given
/// for that one action: a wrong password fails (and cancels), shares given for one purpose do
/// not complete another, and nothing is written.
#[test]
fn authorize_needs_the_current_password_or_shares_for_that_purpose() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let mut u = init_pw(&path, engine);
        assert!(matches!(
            u.authorize("Wrong-Pass-123", b"pin k1"),
            Err(Error::WrongPassword { .. })
        ));
        assert!(u.authorize(PW, b"pin k1").unwrap().done().is_some());
        drop(u);

        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let shares = share_set(1, 2, 3);
        let mut u = uninit(&path, cfg(engine, 2, 3));
        u.init(&shares[0], &Batch::new()).unwrap();
        let mut u = u.init(&shares[2], &Batch::new()).unwrap().done().unwrap();
        assert!(matches!(
            u.authorize(&shares[1], b"pin k1").unwrap(),
            Step::NeedMore(_)
        ));
        // The second share for another purpose starts over: one share of two again.
        assert!(matches!(
            u.authorize(&shares[0], b"pin k2").unwrap(),
            Step::NeedMore(_)
        ));
        assert!(u.authorize(&shares[2], b"pin k2").unwrap().done().is_some());
        // And the first purpose's collection is gone.
        assert!(matches!(
            u.authorize(&shares[0], b"pin k1").unwrap(),
            Step::NeedMore(_)
        ));
    }
}

#[test]
fn password_change_with_shares() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let old = share_set(1, 2, 3);
        let new = share_set(2, 2, 3);
        let mut u = uninit(&path, cfg(engine, 2, 3));
        u.init(&old[0], &Batch::new()).unwrap();
        let mut u = u.init(&old[2], &Batch::new()).unwrap().done().unwrap();
        assert!(matches!(
            u.begin_password_change(&old[1]).unwrap(),
            Step::NeedMore(_)
        ));
        assert!(u.begin_password_change(&old[0]).unwrap().done().is_some());
        assert!(matches!(
            u.change_password(&new[2]).unwrap(),
            Step::NeedMore(_)
        ));
        assert!(u.change_password(&new[0]).unwrap().done().is_some());
        drop(u);
        let mut s = sealed(&path, cfg(engine, 2, 3));
        s.unseal(&old[0]).unwrap();
        assert!(matches!(
            s.unseal(&old[1]),
            Err(Error::WrongPassword { .. })
        ));
        s.unseal(&new[1]).unwrap();
        assert!(s.unseal(&new[2]).unwrap().done().is_some());
    }
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    let i = at.min(b.len() - 1);
    b[i] ^= 0x5a;
    std::fs::write(path, b).unwrap();
}

#[test]
fn bad_files_give_typed_errors_never_panic() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        init_pw(&path, engine).seal();
        let good = std::fs::read(&path).unwrap();
        let c = || cfg(engine, 1, 1).witness(Witness::None);

        // Wrong file types.
        std::fs::write(&path, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
        let e = open_err(&path, c());
        assert!(matches!(e, Error::NotAKeyStore { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("is not an mpc-node key store (bad magic)"),
            "{e}"
        );
        std::fs::write(&path, b"hello, world\n").unwrap();
        assert!(matches!(open_err(&path, c()), Error::NotAKeyStore { .. }));
        std::fs::write(&path, b"{\"some\": \"json\"}").unwrap();
        let e = open_err(&path, c());
        assert!(
            matches!(e, Error::NotAKeyStore { .. } | Error::EngineMismatch { .. }),
            "{e}"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(matches!(open_err(&path, c()), Error::Truncated { .. }));

        // Truncated at several points.
        for cut in [4, 100, good.len() / 2, good.len() - 2] {
            std::fs::write(&path, &good[..cut]).unwrap();
            let r = KeyStore::open(&path, c());
            assert!(r.is_err(), "{engine} cut at {cut} opened");
            let cut_bytes = std::fs::read(&path).unwrap();
            assert_eq!(cut_bytes, &good[..cut], "file not modified by open");
        }

        // Flipped bytes anywhere: an error or (for unused bytes) a working store; never a panic,
        // never a wrong secret.
        for at in (0..good.len()).step_by((good.len() / 97).max(1)) {
            std::fs::write(&path, &good).unwrap();
            flip(&path, at);
            if let Ok(Opened::Sealed(mut s)) = KeyStore::open(&path, c())
                && let Ok(Step::Done(u)) = s.unseal(PW)
            {
                {
                    match u.get(tables::NODE_IDENTITY, b"p256") {
                        Ok(Some(v)) => assert_eq!(v.as_slice(), b"identity-secret"),
                        Ok(None) => {}
                        Err(e) => assert!(
                            matches!(
                                e,
                                Error::RecordCorrupt { .. }
                                    | Error::Corrupt { .. }
                                    | Error::Database { .. }
                            ),
                            "{e}"
                        ),
                    }
                }
            }
        }

        // Original data is still there once the good file is back.
        std::fs::write(&path, &good).unwrap();
        assert!(unseal_pw(&path, engine, PW).is_ok());
    }
}

#[test]
fn sgx_specific_corruptions() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    init_pw(&path, Engine::Sgx).seal();
    let good = std::fs::read_to_string(&path).unwrap();
    let c = || cfg(Engine::Sgx, 1, 1).witness(Witness::None);
    // Header field edited: checksum mismatch.
    std::fs::write(
        &path,
        good.replace("\"m_cost_kib\": 8", "\"m_cost_kib\": 16"),
    )
    .unwrap();
    let e = open_err(&path, c());
    assert!(e.to_string().contains("header checksum mismatch"), "{e}");
    // Newer format.
    std::fs::write(
        &path,
        good.replace("\"format_version\": 1", "\"format_version\": 3"),
    )
    .unwrap();
    assert_eq!(
        open_err(&path, c()).to_string(),
        "format version 3 is newer than this program supports (max 1)"
    );
    std::fs::write(
        &path,
        good.replace("\"format_version\": 1", "\"format_version\": 0"),
    )
    .unwrap();
    assert!(matches!(
        open_err(&path, c()),
        Error::OlderFormat { found: 0, .. }
    ));
    // A record swapped into another key is detected by its AAD.
    let doc: serde_json::Value = serde_json::from_str(&good).unwrap();
    let rec = doc["tables"]["node_identity"].as_object().unwrap();
    let (k, v) = rec.iter().next().unwrap();
    let swapped = good.replace(&format!("\"{k}\": {v}"), &format!("\"b3RoZXI=\": {v}"));
    std::fs::write(&path, swapped).unwrap();
    let u = unseal_pw(&path, Engine::Sgx, PW).unwrap();
    assert!(matches!(
        u.get(tables::NODE_IDENTITY, b"other"),
        Err(Error::RecordCorrupt { .. })
    ));
    // Engine mismatch.
    std::fs::write(&path, &good).unwrap();
    assert!(matches!(
        open_err(&path, cfg(Engine::Bolt, 1, 1)),
        Error::EngineMismatch {
            found: "sgx",
            configured: "bolt",
            ..
        }
    ));
}

#[test]
fn missing_directory_is_a_clear_error() {
    for engine in ENGINES {
        let e = open_err(
            Path::new("/nonexistent-dir-for-test/asset.db"),
            cfg(engine, 1, 1),
        );
        assert_eq!(
            e.to_string(),
            "directory /nonexistent-dir-for-test does not exist (create it first; the key store never creates directories)"
        );
    }
}

#[test]
fn rollback_to_an_old_copy_is_detected() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let u = init_pw(&path, engine);
        drop(u);
        let old = std::fs::read(&path).unwrap();
        let u = unseal_pw(&path, engine, PW).unwrap();
        u.put(tables::KEY_SHARES, b"new", b"data").unwrap();
        u.put(tables::KEY_SHARES, b"new2", b"data").unwrap();
        drop(u);
        let newer = std::fs::read(&path).unwrap();
        std::fs::write(&path, &old).unwrap();
        let e = open_err(&path, cfg(engine, 1, 1));
        assert_eq!(
            e.to_string(),
            "rollback detected: counter 1 < last seen 3 (the file is an older copy)"
        );
        assert_eq!(std::fs::read(&path).unwrap(), old, "nothing written");
        // External witness works without the sidecar too.
        let e = open_err(
            &path,
            cfg(engine, 1, 1).witness(Witness::None).min_counter(2),
        );
        assert!(matches!(
            e,
            Error::Rollback {
                found: 1,
                last_seen: 2
            }
        ));
        std::fs::write(&path, &newer).unwrap();
        assert!(unseal_pw(&path, engine, PW).is_ok());
    }
}

#[test]
fn backup_and_inspect() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let u = init_pw(&path, engine);
        u.put(tables::KEY_SHARES, b"w1", b"s1").unwrap();
        u.put(tables::PRESIGNATURES, b"p1", b"x").unwrap();
        u.put(tables::PRIME_POOL, b"pool", b"primes").unwrap();
        let bpath = dir.path().join("backup.db");
        let info = u.backup_to(&bpath).unwrap();
        assert_eq!(info.counter, 4);
        // Single-use tables are never in a backup.
        assert!(!info.tables.contains_key(tables::PRESIGNATURES), "{info:?}");
        assert!(!info.tables.contains_key(tables::PRIME_POOL), "{info:?}");
        assert_eq!(u.count(tables::PRESIGNATURES).unwrap(), 1);
        assert!(matches!(u.backup_to(&bpath), Err(Error::AlreadyExists(_))));
        // The store stays usable while/after backing up.
        u.put(tables::KEY_SHARES, b"w2", b"s2").unwrap();
        assert_eq!(mode(&bpath), 0o600);
        let r = inspect(&bpath, &[PW]).unwrap();
        assert_eq!(r.node_id.as_deref(), Some("sinoTESTNODEID"));
        assert_eq!(r.info.format_version, 1);
        assert_eq!(r.info.engine, engine);
        assert_eq!(r.info.counter, 4);
        assert!(r.all_records_authentic);
        let counts: Vec<(&str, u64)> = r.tables.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            counts,
            vec![("key_shares", 1), ("node_identity", 1), ("public", 1)]
        );
        assert!(matches!(
            inspect(&bpath, &["Wrong-Password-1"]),
            Err(Error::WrongPassword { .. })
        ));
        assert!(matches!(
            inspect(dir.path().join("nope.db"), &[PW]),
            Err(Error::Io { .. })
        ));
    }
}

#[test]
fn inspect_with_shares() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let shares = share_set(5, 2, 3);
    let mut u = uninit(&path, cfg(Engine::Bolt, 2, 3));
    u.init(&shares[0], &Batch::new()).unwrap();
    drop(u.init(&shares[1], &Batch::new()).unwrap().done().unwrap());
    let r = inspect(&path, &[&shares[2], &shares[0]]).unwrap();
    assert_eq!((r.info.t, r.info.n), (2, 3));
    assert!(matches!(
        inspect(&path, &[&shares[2]]),
        Err(Error::Share(ShareError::NotEnoughShares(1)))
    ));
}

fn deterministic_sgx(path: &Path) -> Unsealed {
    let c = cfg(Engine::Sgx, 1, 1).rng_for_tests(Box::new(ChaCha20Rng::seed_from_u64(2024)));
    let mut b = Batch::new();
    b.put(tables::NODE_IDENTITY, b"p256", b"identity-secret");
    b.put(tables::KEY_SHARES, b"wallet-1", b"share bytes");
    b.put_public(public_keys::NODE_ID, b"sinoTESTNODEID");
    uninit(path, c).init(PW, &b).unwrap().done().unwrap()
}

/// Pins the sgx file format (field names, nesting, encodings) byte for byte.
#[test]
fn sgx_format_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(deterministic_sgx(&path));
    let text = std::fs::read_to_string(&path).unwrap();
    insta::assert_snapshot!("sgx_v1_file", text);
}

/// A file written by format version 1 (committed under `src/testdata`) still opens and decrypts.
#[test]
fn stored_v1_files_still_load() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/sgx_v1.json");
    if std::env::var_os("KEYSTORE_WRITE_FIXTURES").is_some() {
        let dir = tempfile::tempdir().unwrap();
        drop(deterministic_sgx(&db(&dir)));
        std::fs::create_dir_all(fixture.parent().unwrap()).unwrap();
        std::fs::copy(db(&dir), &fixture).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::copy(&fixture, &path).unwrap();
    let u = unseal_pw(&path, Engine::Sgx, PW).unwrap();
    assert_eq!(
        u.get(tables::KEY_SHARES, b"wallet-1")
            .unwrap()
            .unwrap()
            .as_slice(),
        b"share bytes"
    );
    assert_eq!(
        u.get_public(public_keys::NODE_ID).unwrap().unwrap(),
        b"sinoTESTNODEID"
    );
    let r = inspect(&fixture, &[PW]).unwrap();
    assert_eq!(r.info.format_version, 1);
}

#[test]
fn config_validation() {
    assert!(matches!(
        StoreConfig::new(Engine::Bolt, 0, 1),
        Err(Error::BadPolicy(_))
    ));
    assert!(matches!(
        StoreConfig::new(Engine::Bolt, 3, 2),
        Err(Error::BadPolicy(_))
    ));
    assert_eq!("bolt".parse::<Engine>().unwrap(), Engine::Bolt);
    assert_eq!("sgx".parse::<Engine>().unwrap(), Engine::Sgx);
    assert!("sled".parse::<Engine>().is_err());
    assert!(KdfParams::default().validate().is_ok());
    assert!(
        KdfParams {
            m_cost_kib: u32::MAX,
            t_cost: 1,
            p_cost: 1
        }
        .validate()
        .is_err()
    );
    assert!(
        KdfParams {
            m_cost_kib: 64,
            t_cost: 0,
            p_cost: 1
        }
        .validate()
        .is_err()
    );
}

/// Child side of the kill -9 test: flips the password between PW and PW2 forever.
#[test]
fn kill9_child_entry() {
    let Some(spec) = std::env::var_os("KEYSTORE_KILL9_CHILD") else {
        return; // normal test run: nothing to do
    };
    let spec = spec.to_string_lossy().into_owned();
    let (engine, path) = spec.split_once(':').unwrap();
    let engine: Engine = engine.parse().unwrap();
    let path = PathBuf::from(path);
    let (mut u, mut cur) = match unseal_pw(&path, engine, PW) {
        Ok(u) => (u, PW),
        Err(_) => (unseal_pw(&path, engine, PW2).unwrap(), PW2),
    };
    loop {
        let next = if cur == PW { PW2 } else { PW };
        u.begin_password_change(cur).unwrap().done().unwrap();
        u.change_password(next).unwrap().done().unwrap();
        u.take(tables::PRESIGNATURES, b"never-there").unwrap();
        cur = next;
    }
}

/// Real crashes: SIGKILL a process that keeps changing the password, at random moments; after
/// each kill exactly one of the two passwords opens the store and the data is intact.
#[test]
fn kill9_during_password_changes() {
    use rand_core::RngCore;
    let exe = std::env::current_exe().unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(0x6b696c6c);
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        drop(init_pw(&path, engine));
        let mut last_counter = 1;
        for round in 0..4 {
            let mut child = std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "tests::kill9_child_entry",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(
                    "KEYSTORE_KILL9_CHILD",
                    format!("{}:{}", engine, path.display()),
                )
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(150 + u64::from(rng.next_u32() % 250)));
            child.kill().unwrap(); // SIGKILL
            let status = child.wait().unwrap();
            assert!(!status.success(), "child must have been killed, not exited");
            let old = unseal_pw(&path, engine, PW).map(drop);
            let new = unseal_pw(&path, engine, PW2).map(drop);
            assert!(
                old.is_ok() != new.is_ok(),
                "{engine} round {round}: old {old:?} new {new:?}"
            );
            let u = unseal_pw(&path, engine, if old.is_ok() { PW } else { PW2 }).unwrap();
            assert_eq!(
                u.get(tables::NODE_IDENTITY, b"p256")
                    .unwrap()
                    .unwrap()
                    .as_slice(),
                b"identity-secret"
            );
            let counter = u.info().unwrap().counter;
            assert!(
                counter > last_counter,
                "{engine} round {round}: the child made no progress"
            );
            last_counter = counter;
        }
    }
}

/// Damaged files of both engines (4 KiB windows flipped at every position, cut at many
/// lengths): open, unseal and reading every record give errors, never a panic that escapes,
/// and every refusal at open is a "damaged file" error naming the file.
#[test]
fn damaged_files_of_both_engines_never_panic() {
    for engine in ENGINES {
        let good = fuzzing::valid_store(engine).unwrap();
        assert!(fuzzing::open_and_unseal(engine, &good), "{engine}: seed");
        let mut detected = 0;
        let mut cases = 0;
        // 4 KiB flipped at every 4 KiB step (and at the middle, the attack).
        let mut starts: Vec<usize> = (0..good.len()).step_by(4096).collect();
        starts.push(good.len() / 2);
        for at in starts {
            let mut bad = good.clone();
            for b in bad.iter_mut().skip(at).take(4096) {
                *b ^= 0xA5;
            }
            cases += 1;
            if !fuzzing::open_and_unseal(engine, &bad) {
                detected += 1;
            }
            check_open_error(engine, &bad);
        }
        // Truncations.
        for k in 0..32 {
            let cut = &good[..good.len() * k / 32];
            cases += 1;
            assert!(
                !fuzzing::open_and_unseal(engine, cut),
                "{engine}: cut {k}/32 accepted"
            );
            detected += 1;
            check_open_error(engine, cut);
        }
        assert!(
            detected > cases / 2,
            "{engine}: only {detected} of {cases} damaged files detected"
        );
    }
}

/// If `KeyStore::open` refuses `file`, the reason is a damaged-file error naming the path.
fn check_open_error(engine: Engine, file: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::write(&path, file).unwrap();
    let c = cfg(engine, 1, 1).witness(Witness::None);
    if let Err(e) = KeyStore::open(&path, c) {
        assert!(
            e.is_damaged_file() || matches!(e, Error::EngineMismatch { .. }),
            "{engine}: {e}"
        );
        assert!(
            e.to_string().contains(&path.display().to_string())
                || matches!(e, Error::CounterTampered { .. }),
            "{e}"
        );
        // A refused file is left as it was (compared without printing the bytes).
        assert!(
            std::fs::read(&path).unwrap() == file,
            "{engine}: a refused open changed the file ({e})"
        );
    }
}

/// `re-bkey-init` opens a password change that expires after the window, is cancelled by any
/// failed attempt (wrong current password, weak or same new one), and completes once.
#[test]
fn password_change_expires_is_cancelled_by_failures_and_completes_once() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        drop(init_pw(&path, engine));
        let c = cfg(engine, 1, 1).change_window(Duration::from_millis(200));
        let mut s = sealed(&path, c);
        let mut u = s.unseal(PW).unwrap().done().unwrap();

        // Expires.
        u.begin_password_change(PW).unwrap().done().unwrap();
        std::thread::sleep(Duration::from_millis(600));
        let e = u.change_password(PW2).unwrap_err();
        assert!(matches!(e, Error::ChangeExpired { .. }), "{e}");
        assert!(matches!(
            u.change_password(PW2),
            Err(Error::ChangeNotStarted)
        ));

        // A wrong current password cancels a change in progress.
        u.begin_password_change(PW).unwrap().done().unwrap();
        assert!(matches!(
            u.begin_password_change("Wrong-Pass-123"),
            Err(Error::WrongPassword { .. })
        ));
        assert!(matches!(
            u.change_password(PW2),
            Err(Error::ChangeNotStarted)
        ));

        // Completes once: a second re-bkey needs a new re-bkey-init.
        u.begin_password_change(PW).unwrap().done().unwrap();
        u.change_password(PW2).unwrap().done().unwrap();
        assert!(matches!(
            u.change_password("Third-Password-3!"),
            Err(Error::ChangeNotStarted)
        ));
        drop(u);
        drop(s);
        assert!(unseal_pw(&path, engine, PW2).is_ok());
        assert!(unseal_pw(&path, engine, "Third-Password-3!").is_err());
    }
}

/// `insert_new` is an atomic insert-if-absent: of 8 threads racing to store a record under one
/// key exactly one wins, and the stored value is the winner's; an existing record is never
/// overwritten.
#[test]
fn insert_new_never_overwrites_under_concurrency() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let u = init_pw(&path, engine);
        for round in 0..5u8 {
            let key = [round];
            let wins: Vec<u8> = std::thread::scope(|sc| {
                let hs: Vec<_> = (0..8u8)
                    .map(|i| {
                        let u = &u;
                        sc.spawn(move || {
                            u.insert_new(tables::KEY_SHARES, &key, &[i; 40])
                                .is_ok()
                                .then_some(i)
                        })
                    })
                    .collect();
                hs.into_iter().filter_map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(wins.len(), 1, "{engine}: winners {wins:?}");
            let stored = u.get(tables::KEY_SHARES, &key).unwrap().unwrap();
            assert_eq!(stored.as_slice(), &[wins[0]; 40]);
            let e = u
                .insert_new(tables::KEY_SHARES, &key, b"other")
                .unwrap_err();
            assert!(matches!(e, Error::RecordExists { .. }), "{e}");
            assert_eq!(
                u.get(tables::KEY_SHARES, &key).unwrap().unwrap().as_slice(),
                &[wins[0]; 40]
            );
        }
    }
}

/// `rotate_data_key` re-encrypts every record under a fresh data key in one write: the store
/// keeps working with the same password, a wrong password changes nothing, and an old backup's
/// header (its wrapped data key) with the old password reads none of the records after the
/// rotation (sgx, where header and records can be spliced by hand).
#[test]
fn rotate_data_key_locks_out_old_backups() {
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let mut u = init_pw(&path, engine);
        u.put(tables::KEY_SHARES, b"w1", b"share-one").unwrap();
        let old = dir.path().join("old-backup.db");
        u.backup_to(&old).unwrap();
        let before = std::fs::read(&path).unwrap();

        // A wrong password: refused, nothing written.
        assert!(matches!(
            u.rotate_data_key("Wrong-Pass-123"),
            Err(Error::WrongPassword { .. })
        ));
        assert!(
            std::fs::read(&path).unwrap() == before,
            "{engine}: written on failure"
        );

        let counter = u.info().unwrap().counter;
        let n = u.rotate_data_key(PW).unwrap().done().unwrap();
        assert_eq!(n, 3, "{engine}: identity, share, public node id");
        assert_eq!(u.info().unwrap().counter, counter + 1);
        u.put(tables::KEY_SHARES, b"w2", b"share-two").unwrap();
        assert_eq!(
            u.get(tables::KEY_SHARES, b"w1")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"share-one"
        );
        assert_eq!(u.verify_all().unwrap(), 4);
        drop(u);

        // Same password, fresh process: everything readable.
        let u = unseal_pw(&path, engine, PW).unwrap();
        assert_eq!(
            u.get(tables::KEY_SHARES, b"w2")
                .unwrap()
                .unwrap()
                .as_slice(),
            b"share-two"
        );
        assert_eq!(
            u.get_public(public_keys::NODE_ID).unwrap().as_deref(),
            Some(&b"sinoTESTNODEID"[..])
        );
        drop(u);
        let r = inspect(&path, &[PW]).unwrap();
        assert!(r.all_records_authentic, "{engine}");

        if engine == Engine::Sgx {
            // The old backup's header spliced onto today's records: it unseals with the old
            // password (its own counter tag is valid), but no record after the rotation opens.
            let mut now: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let then: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&old).unwrap()).unwrap();
            now["header"] = then["header"].clone();
            let spliced = dir.path().join("spliced.db");
            std::fs::write(&spliced, serde_json::to_vec_pretty(&now).unwrap()).unwrap();
            let mut s = sealed(&spliced, cfg(engine, 1, 1).witness(Witness::None));
            let u = s.unseal(PW).unwrap().done().unwrap();
            for key in [&b"w1"[..], b"w2"] {
                assert!(
                    matches!(
                        u.get(tables::KEY_SHARES, key),
                        Err(Error::RecordCorrupt { .. })
                    ),
                    "old data key opened a record written after the rotation"
                );
            }
            assert!(u.verify_all().is_err());
        }
    }
}

/// Today's header copied onto older records (both engines): the counter and its tag are
/// today's, so neither the witness nor the counter tag notices, but the record-set digest the
/// tag also covers does not match: `verify_all` (run by the node at unseal) and `inspect`
/// refuse it. The digest kept incrementally through puts, overwrites, deletes, takes, batches,
/// insert_new and a password change always equals the one computed from scratch.
#[test]
fn todays_header_on_older_records_is_detected() {
    use crate::engine::Backend;
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let mut u = init_pw(&path, engine);
        u.put(tables::KEY_SHARES, b"w1", b"share-one").unwrap();
        u.put(tables::PRESIGNATURES, b"p1", b"presig-one").unwrap();
        let older = dir.path().join("older.db");
        std::fs::copy(&path, &older).unwrap();

        // Every kind of write, then the digest still matches.
        u.put(tables::KEY_SHARES, b"w1", b"share-one-v2").unwrap();
        u.insert_new(tables::KEY_SHARES, b"w2", b"share-two")
            .unwrap();
        assert!(u.take(tables::PRESIGNATURES, b"p1").unwrap().is_some());
        u.delete(tables::KEY_SHARES, b"nothing").unwrap();
        let mut b = Batch::new();
        b.put(tables::METADATA, b"m", b"x")
            .delete(tables::KEY_SHARES, b"w2");
        u.apply(&b).unwrap();
        u.put_public("extra", b"public").unwrap();
        u.begin_password_change(PW).unwrap().done().unwrap();
        u.change_password(PW2).unwrap().done().unwrap();
        assert_eq!(u.verify_all().unwrap(), 5, "{engine}");
        drop(u);
        assert!(unseal_pw(&path, engine, PW2).unwrap().verify_all().is_ok());

        // Splice: today's header, the older records.
        let today = Backend::open(&path, engine, &|_| Ok(()))
            .unwrap()
            .dump()
            .unwrap()
            .0;
        let old_tables = Backend::open(&older, engine, &|_| Ok(()))
            .unwrap()
            .dump()
            .unwrap()
            .1;
        let spliced = dir.path().join("spliced.db");
        Backend::create(&spliced, engine, &today, &old_tables).unwrap();
        // It unseals (counter and tag are today's; the witness is satisfied) …
        let mut s = sealed(&spliced, cfg(engine, 1, 1).min_counter(today.counter));
        let u = s.unseal(PW2).unwrap().done().unwrap();
        // … and every old record decrypts on its own (the presignature used since is back) …
        assert!(u.get(tables::PRESIGNATURES, b"p1").unwrap().is_some());
        // … but the record set is not the one the header authenticates.
        let e = u.verify_all().unwrap_err();
        assert!(
            matches!(e, Error::RecordSetMismatch { .. }),
            "{engine}: {e}"
        );
        assert!(e.is_damaged_file());
        assert!(e.to_string().contains("spliced.db"), "{e}");
        drop(u);
        drop(s);
        assert!(
            !inspect(&spliced, &[PW2]).unwrap().all_records_authentic,
            "{engine}"
        );

        // A header without the digest (files from before it) cannot be passed off either:
        // dropping the field breaks the counter tag.
        let mut stripped = today.clone();
        stripped.record_set = None;
        stripped.reseal_checksum().unwrap();
        let bare = dir.path().join("stripped.db");
        Backend::create(&bare, engine, &stripped, &old_tables).unwrap();
        let mut s = sealed(&bare, cfg(engine, 1, 1).witness(Witness::None));
        assert!(
            matches!(s.unseal(PW2), Err(Error::CounterTampered { .. })),
            "{engine}"
        );
    }
}

/// A file written before the record-set digest existed (the committed v1 fixture) opens, gets
/// the digest at `ensure_record_set` (one write), and is checked from then on.
#[test]
fn files_without_the_record_set_digest_get_it() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testdata/sgx_v1.json");
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    std::fs::copy(&fixture, &path).unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(
        raw["header"].get("record_set").is_none(),
        "fixture already has it"
    );
    let u = unseal_pw(&path, Engine::Sgx, PW).unwrap();
    assert!(u.verify_all().is_ok());
    let before = u.info().unwrap().counter;
    u.ensure_record_set().unwrap();
    assert_eq!(u.info().unwrap().counter, before + 1);
    u.ensure_record_set().unwrap();
    assert_eq!(u.info().unwrap().counter, before + 1, "added twice");
    u.put(tables::KEY_SHARES, b"w9", b"x").unwrap();
    assert!(u.verify_all().is_ok());
    drop(u);
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(raw["header"]["record_set"].is_string());
    assert!(
        unseal_pw(&path, Engine::Sgx, PW)
            .unwrap()
            .verify_all()
            .is_ok()
    );
}

/// The witness follows commits made from many threads (its writer thread coalesces them),
/// `flush_witness` waits for it, and closing the store leaves the newest counter in the file.
#[test]
fn the_witness_follows_concurrent_commits() {
    let hwm_of = |dir: &tempfile::TempDir| {
        let s = std::fs::read_to_string(dir.path().join("asset.db.hwm")).unwrap();
        s.strip_prefix("mpc-keystore-hwm 1 ")
            .and_then(|r| r.trim().parse::<u64>().ok())
            .unwrap()
    };
    for engine in ENGINES {
        let dir = tempfile::tempdir().unwrap();
        let path = db(&dir);
        let u = Arc::new(init_pw(&path, engine));
        std::thread::scope(|s| {
            for t in 0..4u8 {
                let u = u.clone();
                s.spawn(move || {
                    for i in 0..25u8 {
                        u.put(tables::KEY_SHARES, &[t, i], b"v").unwrap();
                    }
                });
            }
        });
        u.flush_witness();
        let counter = u.info().unwrap().counter;
        assert_eq!(hwm_of(&dir), counter, "{engine:?}");
        u.put(tables::KEY_SHARES, b"last", b"v").unwrap();
        drop(u);
        assert_eq!(hwm_of(&dir), counter + 1, "{engine:?}: written at close");
        let u = unseal_pw(&path, engine, PW).unwrap();
        assert_eq!(u.count(tables::KEY_SHARES).unwrap(), 101);
    }
}
