//! The rules every [`Store`] backend keeps, run against SQLite and a private PostgreSQL
//! (`mpc-services`: Debian's server binaries, started for the test on loopback).

use std::collections::BTreeSet;
use std::sync::Arc;

use mpc_services::Postgres;
use mpc_transport::task::{Curve, EcdsaProtocol};

use super::*;

fn org(id: &str, name: &str) -> OrganizationRow {
    OrganizationRow {
        id: id.into(),
        name: name.into(),
        vault_id: format!("v-{id}"),
        created_at: 1,
        ecdsa_protocol: EcdsaProtocol::Dkls23,
    }
}

fn key(id: &str, org: &str, curve: Curve) -> KeyRow {
    KeyRow {
        id: id.into(),
        organization_id: org.into(),
        curve,
        threshold: 3,
        ecdsa_protocol: (curve == Curve::Secp256k1).then_some(EcdsaProtocol::Dkls23),
        parties: vec!["a".into(), "b".into(), "c".into()],
        root_public_key: Vec::new(),
        chain_code: None,
        status: KeyState::Generating,
        failure_reason: String::new(),
        generation: String::new(),
        created_at: 1,
        updated_at: 1,
    }
}

fn sign_row(sino: &str, request: &str, key_id: &str) -> SignRequestRow {
    SignRequestRow {
        sino_id: sino.into(),
        organization_id: "o1".into(),
        request_id: request.into(),
        kind: 4,
        algorithm: "ecdsa".into(),
        sign_type: 1,
        key_id: key_id.into(),
        path: "m/0".into(),
        message: "00".into(),
        digest: "11".repeat(32),
        state: SignState::Pending,
        signature: String::new(),
        encrypted: false,
        reason: String::new(),
        culprits: Vec::new(),
        created_at: 5,
        finished_at: None,
    }
}

fn postgres_store(pg: &Postgres, name: &str) -> PostgresStore {
    let url = pg.create_database(name).unwrap();
    PostgresStore::connect(&url, &PostgresOptions::default()).unwrap()
}

/// Constraints, state machines and round trips.
fn rules(s: &dyn Store) {
    s.ping().unwrap();
    s.create_organization(&org("o1", "acme")).unwrap();
    assert!(matches!(
        s.create_organization(&org("o2", "acme")),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.organization("o1").unwrap(), Some(org("o1", "acme")));
    assert_eq!(s.organization("nope").unwrap(), None);
    let cmp = OrganizationRow {
        ecdsa_protocol: EcdsaProtocol::Cggmp24,
        ..org("o3", "other")
    };
    s.create_organization(&cmp).unwrap();
    assert_eq!(s.organizations().unwrap(), vec![org("o1", "acme"), cmp]);

    let user = ApiUserRow {
        id: "u1".into(),
        organization_id: "o1".into(),
        name: "ops".into(),
        api_key: "3059".into(),
        created_at: 2,
    };
    s.create_api_user(&user).unwrap();
    assert!(matches!(
        s.create_api_user(&ApiUserRow {
            id: "u2".into(),
            ..user.clone()
        }),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.api_user_by_key("3059").unwrap(), Some(user.clone()));
    let later = ApiUserRow {
        id: "u3".into(),
        organization_id: "o3".into(),
        api_key: "3060".into(),
        created_at: 5,
        ..user.clone()
    };
    s.create_api_user(&later).unwrap();
    assert_eq!(
        s.api_users(None).unwrap(),
        vec![user.clone(), later.clone()]
    );
    assert_eq!(s.api_users(Some("o3")).unwrap(), vec![later]);
    assert_eq!(s.api_users(Some("nope")).unwrap(), vec![]);

    // Foreign key: a binding for an unknown organization.
    let b = NodeBindingRow {
        node_id: "n1".into(),
        organization_id: "nope".into(),
        party: "a".into(),
        created_at: 1,
        last_seen_at: None,
    };
    assert!(matches!(s.bind_node(&b), Err(StoreError::NotFound(_))));
    let b = NodeBindingRow {
        organization_id: "o1".into(),
        ..b
    };
    s.bind_node(&b).unwrap();
    // Unique both ways.
    assert!(matches!(s.bind_node(&b), Err(StoreError::Conflict(_))));
    let other = NodeBindingRow {
        node_id: "n2".into(),
        ..b.clone()
    };
    assert!(matches!(s.bind_node(&other), Err(StoreError::Conflict(_))));
    s.touch_node("n1", 77).unwrap();
    assert_eq!(s.binding("n1").unwrap().unwrap().last_seen_at, Some(77));
    // Replacing a party's node: the old one is unbound, the party keeps one node.
    assert!(matches!(
        s.replace_node("o1", "b", "n9", 78),
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.replace_node("o1", "a", "n9", 78).unwrap(), "n1");
    assert!(s.binding("n1").unwrap().is_none());
    let replaced = s.binding("n9").unwrap().unwrap();
    assert_eq!(
        (replaced.party.as_str(), replaced.last_seen_at),
        ("a", None)
    );
    assert_eq!(s.replace_node("o1", "a", "n1", 79).unwrap(), "n9");
    // A node bound anywhere (another party, or this very one) cannot take a party.
    s.bind_node(&NodeBindingRow {
        node_id: "n2".into(),
        party: "b".into(),
        ..b.clone()
    })
    .unwrap();
    for taken in ["n2", "n1"] {
        assert!(matches!(
            s.replace_node("o1", "a", taken, 80),
            Err(StoreError::Conflict(_))
        ));
    }
    assert_eq!(s.binding("n2").unwrap().unwrap().party, "b");
    s.touch_node("n1", 77).unwrap();
    assert_eq!(s.bindings(Some("o1")).unwrap().len(), 2);
    assert_eq!(s.bindings(None).unwrap().len(), 2);
    assert!(s.bindings(Some("o3")).unwrap().is_empty());

    // One generating/generated key per curve.
    assert!(
        s.create_key_if_absent(&key("k1", "o1", Curve::Secp256k1))
            .unwrap()
    );
    assert!(
        !s.create_key_if_absent(&key("k2", "o1", Curve::Secp256k1))
            .unwrap()
    );
    assert!(
        s.create_key_if_absent(&key("k3", "o1", Curve::Ed25519))
            .unwrap()
    );
    assert!(
        s.finish_key("k1", KeyState::Failed, &[], None, "boom", 2)
            .unwrap()
    );
    assert!(
        !s.finish_key("k1", KeyState::Generated, &[], None, "", 3)
            .unwrap()
    );
    assert!(
        s.create_key_if_absent(&key("k2", "o1", Curve::Secp256k1))
            .unwrap()
    );
    let root = [2u8; 33];
    assert!(
        s.finish_key("k2", KeyState::Generated, &root, Some([9; 32]), "", 4)
            .unwrap()
    );
    let k2 = s.generated_key("o1", Curve::Secp256k1).unwrap().unwrap();
    assert_eq!(
        (k2.id.as_str(), k2.root_public_key.as_slice(), k2.chain_code),
        ("k2", &root[..], Some([9; 32]))
    );
    assert_eq!(k2.parties, ["a", "b", "c"]);
    assert_eq!(k2.ecdsa_protocol, Some(EcdsaProtocol::Dkls23));
    // Share generations: a refresh switches from the generation it started from, once; a
    // switch from a stale generation, or of a key that is not generated, changes nothing.
    assert_eq!(k2.generation, "");
    assert!(s.switch_key_generation("k2", "", "g1", 5).unwrap());
    assert!(!s.switch_key_generation("k2", "", "g9", 6).unwrap());
    assert!(s.switch_key_generation("k2", "g1", "g2", 7).unwrap());
    assert!(!s.switch_key_generation("k1", "", "g1", 8).unwrap());
    assert!(!s.switch_key_generation("nope", "", "g1", 8).unwrap());
    let k2 = s.generated_key("o1", Curve::Secp256k1).unwrap().unwrap();
    assert_eq!((k2.generation.as_str(), k2.updated_at), ("g2", 7));
    assert_eq!(s.generated_key("o1", Curve::Ed25519).unwrap(), None);
    let k3 = s.keys(Some("o1")).unwrap();
    let k3 = k3.iter().find(|k| k.id == "k3").unwrap();
    assert_eq!((k3.curve, k3.ecdsa_protocol), (Curve::Ed25519, None));

    // Wallets: idempotent per request id, names unique per organization.
    let w = WalletRow {
        id: "w1".into(),
        organization_id: "o1".into(),
        vault_id: "v-o1".into(),
        name: "hot".into(),
        advanced: true,
        request_id: "r1".into(),
        created_at: 3,
    };
    assert_eq!(
        s.create_wallets("o1", "r1", std::slice::from_ref(&w))
            .unwrap(),
        vec![w.clone()]
    );
    let again = WalletRow {
        id: "w2".into(),
        ..w.clone()
    };
    assert_eq!(
        s.create_wallets("o1", "r1", std::slice::from_ref(&again))
            .unwrap(),
        vec![w.clone()],
        "the same request id returns the first call's wallets"
    );
    let clash = WalletRow {
        id: "w3".into(),
        request_id: "r2".into(),
        ..w.clone()
    };
    assert!(matches!(
        s.create_wallets("o1", "r2", &[clash]),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.wallet("o1", "w1").unwrap(), Some(w.clone()));
    assert_eq!(s.wallet("o3", "w1").unwrap(), None);

    // Addresses: upsert keeps the id.
    let a = AddressRow {
        id: "a1".into(),
        wallet_id: "w1".into(),
        path: "m/1".into(),
        algorithm: 0,
        encoding: 1,
        address: "bc1old".into(),
        pubkey: "02aa".into(),
    };
    assert_eq!(
        s.save_addresses(std::slice::from_ref(&a)).unwrap(),
        vec![a.clone()]
    );
    let newer = AddressRow {
        id: "a2".into(),
        address: "bc1new".into(),
        ..a.clone()
    };
    let saved = s.save_addresses(&[newer]).unwrap();
    assert_eq!(
        (saved[0].id.as_str(), saved[0].address.as_str()),
        ("a1", "bc1new")
    );
    assert_eq!(s.addresses_at("w1", "m/1").unwrap().len(), 1);
    // The console's list: with the wallet, newest wallets first, bounded.
    let w_later = WalletRow {
        id: "w9".into(),
        name: "cold".into(),
        request_id: "r9".into(),
        created_at: 9,
        ..w.clone()
    };
    s.create_wallets("o1", "r9", std::slice::from_ref(&w_later))
        .unwrap();
    let in_cold = AddressRow {
        id: "a9".into(),
        wallet_id: "w9".into(),
        path: "m/2".into(),
        ..a.clone()
    };
    s.save_addresses(std::slice::from_ref(&in_cold)).unwrap();
    let listed = s.list_addresses(Some("o1"), 10).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|l| (
                l.wallet_name.as_str(),
                l.address.id.as_str(),
                l.organization_id.as_str()
            ))
            .collect::<Vec<_>>(),
        [("cold", "a9", "o1"), ("hot", "a1", "o1")]
    );
    assert_eq!(listed[1].address.address, "bc1new");
    assert_eq!(s.list_addresses(None, 1).unwrap().len(), 1);
    assert!(s.list_addresses(Some("o3"), 10).unwrap().is_empty());

    // Signing requests: one per (organization, request id); finished once.
    let (row, inserted) = s.insert_sign_request(&sign_row("s1", "req", "k2")).unwrap();
    assert!(inserted);
    assert_eq!(row, sign_row("s1", "req", "k2"));
    let (row, inserted) = s.insert_sign_request(&sign_row("s2", "req", "k2")).unwrap();
    assert!(!inserted);
    assert_eq!(row.sino_id, "s1");
    assert!(matches!(
        s.insert_sign_request(&sign_row("s3", "other", "no-such-key")),
        Err(StoreError::NotFound(_))
    ));
    let finish = SignFinish {
        state: SignState::Done,
        signature: "beef".into(),
        encrypted: true,
        reason: String::new(),
        culprits: vec!["b".into()],
        at: 9,
    };
    assert!(s.finish_sign_request("s1", &finish).unwrap());
    assert!(!s.finish_sign_request("s1", &finish).unwrap());
    let done = s.sign_request("o1", Some("req"), None).unwrap().unwrap();
    assert_eq!(
        (
            done.state,
            done.encrypted,
            done.culprits.clone(),
            done.finished_at
        ),
        (SignState::Done, true, vec!["b".to_owned()], Some(9))
    );
    assert_eq!(s.sign_request("o1", None, Some("s1")).unwrap(), Some(done));
    assert_eq!(s.sign_request("o3", Some("req"), None).unwrap(), None);

    // MPC runs: listed newest first, filtered, paged.
    for (i, kind) in [(1u64, 1u8), (2, 4), (3, 4)] {
        s.insert_mpc_request(&MpcRequestRow {
            task_id: format!("t{i}"),
            organization_id: "o1".into(),
            kind,
            sino_id: "s1".into(),
            request_id: "req".into(),
            param: "p".into(),
            status: 0,
            failed_reason: String::new(),
            outcomes: "{}".into(),
            created_at: i,
            finished_at: None,
        })
        .unwrap();
    }
    s.finish_mpc_request("t1", 1, "", r#"{"a":"ok"}"#, 10)
        .unwrap();
    let (total, page) = s
        .list_mpc_requests(&MpcRequestQuery {
            organization_id: Some("o1".into()),
            kind: Some(4),
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!((total, page.len(), page[0].task_id.as_str()), (2, 1, "t3"));
    let (total, _) = s
        .list_mpc_requests(&MpcRequestQuery {
            status: Some(1),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(total, 1);

    // A restart fails what was running: key k3 (generating), t2 and t3 (running).
    assert_eq!(s.fail_unfinished("restart", 11).unwrap(), 3);
    assert!(
        s.keys(Some("o1"))
            .unwrap()
            .iter()
            .all(|k| k.status != KeyState::Generating)
    );

    // Leases: runs belong to the coordinator instance that recorded them. An instance whose
    // heartbeat lapsed has its running rows failed (once); a live one's and ownerless rows are
    // not swept; `fail_unfinished` takes the ownerless ones and the store's own.
    let run_of = |owner: &str, task: &str| {
        s.set_owner(owner);
        s.insert_mpc_request(&MpcRequestRow {
            task_id: task.into(),
            organization_id: "o1".into(),
            kind: 2,
            sino_id: "s1".into(),
            request_id: task.into(),
            param: "p".into(),
            status: 0,
            failed_reason: String::new(),
            outcomes: "{}".into(),
            created_at: 20,
            finished_at: None,
        })
        .unwrap();
    };
    run_of("coord-a", "la");
    s.heartbeat(1_000).unwrap();
    run_of("coord-b", "lb");
    s.heartbeat(50).unwrap();
    run_of("", "lz");
    let status = |task: &str| {
        let (_, rows) = s
            .list_mpc_requests(&MpcRequestQuery {
                organization_id: Some("o1".into()),
                limit: 100,
                ..Default::default()
            })
            .unwrap();
        let r = rows.into_iter().find(|r| r.task_id == task).unwrap();
        (r.status, r.failed_reason)
    };
    assert_eq!(s.fail_orphaned("gone", 100).unwrap(), 1);
    assert_eq!(status("lb"), (2, "gone".to_owned()));
    assert_eq!(status("la").0, 0);
    assert_eq!(status("lz").0, 0);
    assert_eq!(s.fail_orphaned("gone", 100).unwrap(), 0);
    // Later, a's lease lapses too.
    assert_eq!(s.fail_orphaned("gone", 2_000).unwrap(), 1);
    assert_eq!(status("la"), (2, "gone".to_owned()));
    s.set_owner("coord-c");
    assert_eq!(s.fail_unfinished("restart", 2_001).unwrap(), 1);
    assert_eq!(status("lz"), (2, "restart".to_owned()));
    s.set_owner("");

    // One refresh or repair (kinds 5, 6) running per key, across coordinators.
    let reshare = |task: &str, kind: u8| MpcRequestRow {
        task_id: task.into(),
        organization_id: "o1".into(),
        kind,
        sino_id: "k2".into(),
        request_id: task.into(),
        param: "p".into(),
        status: 0,
        failed_reason: String::new(),
        outcomes: "{}".into(),
        created_at: 30,
        finished_at: None,
    };
    s.insert_mpc_request(&reshare("r1", 5)).unwrap();
    assert!(matches!(
        s.insert_mpc_request(&reshare("r2", 6)),
        Err(StoreError::Conflict(_))
    ));
    s.finish_mpc_request("r1", 1, "", "{}", 31).unwrap();
    s.insert_mpc_request(&reshare("r3", 6)).unwrap();
    s.finish_mpc_request("r3", 2, "x", "{}", 32).unwrap();

    // Nonces: once per key, forgotten after the cutoff.
    assert!(s.record_nonce("h", 100, 0).unwrap());
    assert!(!s.record_nonce("h", 100, 0).unwrap());
    assert!(s.record_nonce("h2", 100, 0).unwrap());
    assert!(s.record_nonce("h", 100, 101).unwrap());
}

/// Check-then-write rules hold when many connections race (threads on one store).
fn races(s: Arc<dyn Store>) {
    s.create_organization(&org("o1", "acme")).unwrap();
    const N: usize = 8;
    let run = |f: &(dyn Fn(usize) -> bool + Sync)| -> usize {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..N).map(|i| scope.spawn(move || f(i))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|won| *won)
                .count()
        })
    };
    let won = run(&|i| {
        s.create_key_if_absent(&key(&format!("k{i}"), "o1", Curve::Secp256k1))
            .unwrap()
    });
    assert_eq!(won, 1, "exactly one live key per organization and curve");
    let winner = s.keys(Some("o1")).unwrap()[0].id.clone();
    let won = run(&|i| {
        let (row, inserted) = s
            .insert_sign_request(&sign_row(&format!("s{i}"), "same", &winner))
            .unwrap();
        assert_eq!(row.request_id, "same");
        inserted
    });
    assert_eq!(won, 1, "exactly one request per request id");
    let ids: BTreeSet<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..N)
            .map(|i| {
                let s = &s;
                scope.spawn(move || {
                    let w = WalletRow {
                        id: format!("w{i}"),
                        organization_id: "o1".into(),
                        vault_id: "v-o1".into(),
                        name: "hot".into(),
                        advanced: false,
                        request_id: "r".into(),
                        created_at: 1,
                    };
                    s.create_wallets("o1", "r", &[w]).unwrap()[0].id.clone()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        ids.len(),
        1,
        "every call of one request id sees the same wallet"
    );
    let won = run(&|_| s.record_nonce("h", 5, 0).unwrap());
    assert_eq!(won, 1, "a nonce is accepted once");
}

#[test]
fn sqlite_keeps_the_rules() {
    rules(&SqliteStore::open(":memory:").unwrap());
}

#[test]
fn sqlite_keeps_the_rules_under_races() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    races(Arc::new(SqliteStore::open(path.to_str().unwrap()).unwrap()));
}

#[test]
fn postgres_keeps_the_rules() {
    let pg = Postgres::start().expect("a private PostgreSQL (Debian's postgresql package)");
    let s = postgres_store(&pg, "rules");
    assert_eq!(s.schema_version().unwrap(), 4);
    rules(&s);
    // Migrations are applied once: a second coordinator on the same database opens it as is.
    let again = PostgresStore::connect(&pg.url("rules"), &PostgresOptions::default()).unwrap();
    assert_eq!(again.schema_version().unwrap(), 4);
    assert_eq!(again.organizations().unwrap().len(), 2);
}

#[test]
fn postgres_keeps_the_rules_under_races() {
    let pg = Postgres::start().expect("a private PostgreSQL (Debian's postgresql package)");
    races(Arc::new(postgres_store(&pg, "races")));
}

#[test]
fn postgres_survives_a_database_restart() {
    let mut pg = Postgres::start().expect("a private PostgreSQL (Debian's postgresql package)");
    let s = postgres_store(&pg, "restart");
    s.create_organization(&org("o1", "acme")).unwrap();
    pg.restart().unwrap();
    // Pooled connections died with the server; the pool replaces broken ones, so within a few
    // attempts the store answers again and nothing written before is lost.
    let mut answered = false;
    for _ in 0..20 {
        if s.organization("o1").ok().flatten().is_some() {
            answered = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(answered, "the store answers after a database restart");
}

#[test]
fn postgres_urls_are_checked_before_connecting() {
    let opts = PostgresOptions::default();
    let err = PostgresStore::connect("postgres://u:secret@db.example.com/x", &opts).unwrap_err();
    assert!(err.to_string().contains("sslmode=require"), "{err}");
    assert!(!err.to_string().contains("secret"), "{err}");
    let err =
        PostgresStore::connect("postgres://u@db.example.com/x?sslmode=prefer", &opts).unwrap_err();
    assert!(err.to_string().contains("TLS"), "{err}");
    let err = PostgresStore::connect("postgres://[::1", &opts).unwrap_err();
    assert!(err.to_string().contains("not a PostgreSQL URL"), "{err}");
    assert!(is_postgres_url("postgresql://localhost/db"));
    assert!(!is_postgres_url("platform.db"));
}
