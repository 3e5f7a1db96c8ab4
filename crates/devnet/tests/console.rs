//! The console in a real browser: Debian's headless `chromium`, driven through `chromedriver`
//! (W3C WebDriver), against a devnet of real processes (platform, nodes a/b/c, callback demo)
//! with a 2-of-3 DKLs23 key.
//!
//! Every step is what an administrator does by hand: sign in with the admin key file (the
//! browser signs each request with WebCrypto; an API user's key is refused), create an
//! organization with a protocol, create an API user (key pair made in the browser, private key
//! downloaded in the SDK's format, which then authenticates to the WaaS API), bind a node id
//! to a party, read nodes (online, key shares), keys (protocol, xpub) and addresses, refresh a
//! key's shares, replace a lost node and repair its share (refused by a callback's policy
//! first, with the reason on the Requests page), and reload (the key is forgotten). Signatures
//! before and after are verified independently (k256). Screenshots of each step are kept in
//! `target/tmp/console-screenshots/`.

mod webdriver;

use std::path::Path;
use std::time::Duration;

use mpc_api::types::AddressAlgorithm;
use mpc_api::types::admin::{EcdsaProtocol, KeyInfo};
use mpc_devnet::api::ApiClient;
use mpc_devnet::scenario::{self, Job};
use mpc_devnet::{Cluster, Options};
use serde_json::json;
use webdriver::Browser;

const EXE: &str = env!("CARGO_BIN_EXE_mpc-devnet");
const WAIT: Duration = Duration::from_secs(30);
const LONG: Duration = Duration::from_secs(150);

fn rid(tag: &str) -> String {
    format!("console-{tag}-{}", mpc_devnet::cluster::unix_ms())
}

fn ecdsa_job(seed: &str) -> Job {
    Job::EcdsaRaw {
        path: "m/1/1/60/0".into(),
        digest: mpc_chains::hash::sha256(seed.as_bytes()),
    }
}

async fn secp_key(cluster: &Cluster) -> KeyInfo {
    cluster
        .admin()
        .list_keys(cluster.organization_id())
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.ecdsa_protocol.is_some())
        .unwrap()
}

/// The text of a cell (1-based column) of the row `data-id=ID` in table `TABLE`, or "".
const CELL: &str =
    "const r = document.querySelector(`#${arguments[0]} tr[data-id=\"${arguments[1]}\"]`);
    return r ? r.cells[arguments[2] - 1].textContent : '';";

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_runs_the_platform_from_the_console_in_a_real_browser() {
    let tmp = tempfile::tempdir().unwrap();
    let mut o = Options::new(tmp.path());
    o.exe = EXE.into();
    o.test_primes = true;
    o.fast_kdf = true;
    o.threshold = 2;
    o.sign_timeout_secs = 60;
    o.keys_timeout = Duration::from_secs(900);
    o.ready_timeout = Duration::from_secs(60);
    let mut cluster = Cluster::start(o).await.unwrap();
    let keys = cluster.wait_keys().await.unwrap();
    let mut signer = scenario::signer(&mut cluster, &keys).await.unwrap();
    let org = cluster.organization_id().to_owned();
    let secp = secp_key(&cluster).await;
    assert_eq!(
        (secp.threshold, secp.ecdsa_protocol),
        (2, Some(EcdsaProtocol::Dkls23))
    );
    let address = signer
        .api
        .gen_address(
            &signer.vault_id,
            &signer.wallet_id,
            AddressAlgorithm::Secp256k1,
            60,
            0,
        )
        .await
        .unwrap();
    let out = signer
        .run(&ecdsa_job("before the console"), &rid("before"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let b = Browser::start(&tmp.path().join("downloads"), &shots).await;
    b.goto(&cluster.console_url()).await;
    b.wait_for(
        "the sign-in form",
        WAIT,
        "return document.readyState === 'complete' && !!document.getElementById('sign-in-form');",
        json!([]),
    )
    .await;
    assert_eq!(
        b.exec(
            "return window.isSecureContext && !!crypto.subtle;",
            json!([])
        )
        .await,
        true,
        "WebCrypto needs a secure context"
    );
    b.screenshot("01-sign-in").await;

    // 1. An API user's key is no admin key: the platform refuses it and the page says so.
    let path_str = |p: &Path| p.to_str().unwrap().to_owned();
    b.type_into("#key-file", &path_str(&cluster.layout().api_user_key()))
        .await;
    b.click("#sign-in-button").await;
    let refused = b
        .wait_for(
            "the refusal",
            WAIT,
            "return document.getElementById('sign-in-error').textContent;",
            json!([]),
        )
        .await;
    assert!(
        refused.as_str().unwrap().contains("refused this key"),
        "{refused}"
    );
    assert_eq!(
        b.exec("return document.getElementById('app').hidden;", json!([]))
            .await,
        true
    );
    b.screenshot("02-not-an-admin").await;

    // 2. The admin key file signs in; the page names the key it signs with.
    b.exec("document.getElementById('key-file').value = '';", json!([]))
        .await;
    b.type_into("#key-file", &path_str(&cluster.layout().admin_key()))
        .await;
    b.click("#sign-in-button").await;
    b.wait_for(
        "the signed-in console",
        WAIT,
        "return !document.getElementById('app').hidden;",
        json!([]),
    )
    .await;
    let admin_hex = cluster.admin().api_key_hex();
    let who = b.text("#who").await;
    assert!(
        admin_hex.ends_with(who.trim_start_matches("admin ")),
        "{who}"
    );
    b.wait_for(
        "the devnet's organization",
        WAIT,
        CELL,
        json!(["orgs", org, 4]),
    )
    .await;
    assert_eq!(b.exec(CELL, json!(["orgs", org, 4])).await, "dkls23");

    // 3. A new organization with the CGGMP24 protocol.
    b.fill("#create-org input[name=name]", "console-org").await;
    b.click("#create-org option[value=cggmp24]").await;
    b.click("#create-org button[type=submit]").await;
    let created = b
        .wait_for(
            "the new organization",
            WAIT,
            "const o = document.querySelector('#create-org output').textContent;
             return o.startsWith('created') ? o : (o.startsWith('working') ? '' : 'ERROR ' + o);",
            json!([]),
        )
        .await;
    let created = created.as_str().unwrap().to_owned();
    assert!(created.starts_with("created "), "{created}");
    let new_org = created
        .trim_start_matches("created ")
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    b.wait_for(
        "the organization's row",
        WAIT,
        CELL,
        json!(["orgs", new_org, 2]),
    )
    .await;
    assert_eq!(b.exec(CELL, json!(["orgs", new_org, 4])).await, "cggmp24");
    let new_vault = b.exec(CELL, json!(["orgs", new_org, 3])).await;
    let new_vault = new_vault.as_str().unwrap().to_owned();
    assert!(new_vault.starts_with("vault"), "{new_vault}");
    // The selector follows the organization just created.
    assert_eq!(
        b.exec(
            "return document.getElementById('org-select').value;",
            json!([])
        )
        .await,
        new_org.as_str()
    );
    b.screenshot("03-organizations").await;

    // 4. An API user: the key pair is made in the browser, the private key downloaded; the
    // file is an SDK key that the WaaS API accepts for this organization.
    b.fill("#create-user input[name=name]", "console-user")
        .await;
    b.click("#create-user button[type=submit]").await;
    let key_text = b.downloaded("console-user.key", WAIT).await;
    let user_key = mpc_api::auth::load_sdk_private_key_hex(&key_text).unwrap();
    let user_hex = mpc_wire::keys::api_key_hex(user_key.verifying_key());
    b.wait_for(
        "the API user's row",
        WAIT,
        "return [...document.querySelectorAll('#api-users td')].some(td => td.textContent === arguments[0]);",
        json!([user_hex]),
    )
    .await;
    let user = ApiClient::new(cluster.https().clone(), &cluster.api_url(), user_key);
    let wallet = user
        .create_wallet(&rid("wallet"), &new_vault, "console-wallet")
        .await
        .unwrap();
    assert!(!wallet.wallet_id.is_empty());
    // The devnet's API user cannot use that organization's vault.
    assert!(
        cluster
            .api()
            .create_wallet(&rid("wallet"), &new_vault, "other")
            .await
            .is_err()
    );
    b.screenshot("04-api-user").await;

    // 5. Settings → MPC Node: bind a node id to party a of the new organization (offline:
    // no such node runs), then the devnet's nodes: online, shares generated.
    b.click("nav a[data-page=nodes]").await;
    let stranger = mpc_wire::keys::node_id(
        p256::ecdsa::SigningKey::random(&mut rand_core::OsRng).verifying_key(),
    );
    b.fill("#bind-node textarea[name=nodeId]", &stranger).await;
    b.click("#bind-node option[value=a]").await;
    b.click("#bind-node button[type=submit]").await;
    b.wait_for("the bound node", WAIT, CELL, json!(["nodes", stranger, 3]))
        .await;
    assert_eq!(b.exec(CELL, json!(["nodes", stranger, 1])).await, "a");
    assert_eq!(b.exec(CELL, json!(["nodes", stranger, 3])).await, "offline");
    assert_eq!(b.exec(CELL, json!(["nodes", stranger, 5])).await, "pending");
    let nodes = cluster.admin().list_nodes(&new_org).await.unwrap();
    assert_eq!(
        (nodes.len(), nodes[0].node_id.as_str()),
        (1, stranger.as_str())
    );
    // The same node id cannot be bound twice: the error is shown.
    b.click("#bind-node button[type=submit]").await;
    let dup = b
        .wait_for(
            "the second bind's error",
            WAIT,
            "const o = document.querySelector('#bind-node output');
             return o.className === 'bad' ? o.textContent : '';",
            json!([]),
        )
        .await;
    assert!(!dup.as_str().unwrap().is_empty());
    b.click(&format!("#org-select option[value=\"{org}\"]"))
        .await;
    for party in ["a", "b", "c"] {
        let id = cluster.node_id(party).unwrap().to_owned();
        b.wait_for(
            &format!("node {party} online"),
            WAIT,
            CELL,
            json!(["nodes", id, 3]),
        )
        .await;
        assert_eq!(b.exec(CELL, json!(["nodes", id, 3])).await, "online");
        assert_eq!(b.exec(CELL, json!(["nodes", id, 5])).await, "generated");
    }
    b.screenshot("05-mpc-nodes").await;

    // 6. Keys and addresses.
    b.click("nav a[data-page=keys]").await;
    b.wait_for("the keys", WAIT, CELL, json!(["keys", secp.key_id, 9]))
        .await;
    assert_eq!(
        b.exec(CELL, json!(["keys", secp.key_id, 9])).await,
        secp.xpub.clone().unwrap().as_str()
    );
    assert_eq!(
        b.exec(CELL, json!(["keys", secp.key_id, 3])).await,
        "dkls23"
    );
    assert_eq!(
        b.exec(CELL, json!(["keys", secp.key_id, 4])).await,
        "2-of-3"
    );
    assert_eq!(
        b.exec(CELL, json!(["keys", secp.key_id, 7])).await,
        secp.root_public_key.as_str()
    );
    let listed = b
        .exec(
            "return !!document.querySelector(`#addresses tr[data-address=\"${arguments[0]}\"]`);",
            json!([address.address]),
        )
        .await;
    assert_eq!(listed, true, "address {} not listed", address.address);
    b.screenshot("06-keys-and-addresses").await;

    // 7. Refresh the key's shares from the console; the key signs after.
    b.click(&format!(
        "button[data-action=refresh][data-key=\"{}\"]",
        secp.key_id
    ))
    .await;
    let refreshed = b
        .wait_for(
            "the refreshed generation",
            LONG,
            "const c = document.querySelector(`#keys tr[data-id=\"${arguments[0]}\"] td.generation`);
             return c && c.textContent !== 'from keygen' ? c.textContent : '';",
            json!([secp.key_id]),
        )
        .await;
    let generation = secp_key(&cluster).await.generation;
    assert_eq!(refreshed, generation.as_str());
    let out = signer
        .run(&ecdsa_job("after the refresh"), &rid("refreshed"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();
    b.screenshot("07-refreshed").await;

    // 8. Node c is lost; its replacement is bound from the console; a repair is refused by
    // node a's callback (its policy does not name the new node), with the reason shown.
    cluster.kill_node("c");
    let new_c = cluster.start_unbound_node_as("c2", "c").await.unwrap();
    b.click("nav a[data-page=nodes]").await;
    b.fill("#replace-node textarea[name=nodeId]", &new_c).await;
    b.click("#replace-node option[value=c]").await;
    b.click("#replace-node button[type=submit]").await;
    b.accept_alert().await;
    b.wait_for(
        "the replacement online",
        Duration::from_secs(60),
        "const r = document.querySelector(`#nodes tr[data-id=\"${arguments[0]}\"]`);
         return r && r.cells[2].textContent === 'online';",
        json!([new_c]),
    )
    .await;
    b.screenshot("08-node-replaced").await;
    b.click("nav a[data-page=keys]").await;
    let repair_button = format!(
        "button[data-action=repair][data-key=\"{}\"][data-party=c]",
        secp.key_id
    );
    b.click(&repair_button).await;
    b.accept_alert().await;
    b.click("nav a[data-page=requests]").await;
    let reason = b
        .wait_for(
            "the refused repair",
            LONG,
            "const r = document.querySelector('#requests tr[data-kind=\"key repair\"][data-status=\"failed\"]');
             return r ? r.querySelector('td.reason').textContent : '';",
            json!([]),
        )
        .await;
    assert!(
        reason.as_str().unwrap().contains("does not list it"),
        "{reason}"
    );
    b.screenshot("09-repair-refused").await;

    // The policy names the new node: the repair from the console completes.
    cluster.allow_key_repair_onto(&new_c).await.unwrap();
    b.click("nav a[data-page=keys]").await;
    b.click(&repair_button).await;
    b.accept_alert().await;
    b.wait_for(
        "the repaired generation",
        LONG,
        "const c = document.querySelector(`#keys tr[data-id=\"${arguments[0]}\"] td.generation`);
         return c && c.textContent !== arguments[1] && c.textContent !== 'from keygen';",
        json!([secp.key_id, generation]),
    )
    .await;
    let repaired = secp_key(&cluster).await;
    assert_ne!(repaired.generation, generation);
    assert_eq!(repaired.xpub, secp.xpub);
    b.screenshot("10-repaired").await;

    // The new node's share signs: b is stopped, a and the new c sign.
    cluster.kill_node("b");
    let out = signer
        .run(&ecdsa_job("a and the new c"), &rid("new-c"))
        .await
        .unwrap();
    scenario::require_verified(&out).unwrap();

    // 9. Requests: the signature just made, with its latency; the repair that succeeded.
    b.click("nav a[data-page=requests]").await;
    b.wait_for(
        "the last signature and the repair",
        WAIT,
        "const rows = [...document.querySelectorAll('#requests tbody tr')];
         const signed = rows.some(r => r.dataset.kind === 'sign raw data' && r.dataset.status === 'success'
                                      && /^[0-9]+ ms$/.test(r.cells[5].textContent));
         const repaired = rows.some(r => r.dataset.kind === 'key repair' && r.dataset.status === 'success');
         return signed && repaired;",
        json!([]),
    )
    .await;
    b.screenshot("11-requests").await;

    // 10. A reload forgets the key: the sign-in form again, no data.
    b.goto(&cluster.console_url()).await;
    b.wait_for(
        "the sign-in form after a reload",
        WAIT,
        "return document.readyState === 'complete' && !document.getElementById('sign-in').hidden
                && document.getElementById('app').hidden;",
        json!([]),
    )
    .await;
    eprintln!("console screenshots: {}", shots.display());
}
