//! The worked example in docs/callback.md is real: these bytes are made here (RFC 6979
//! signatures are deterministic) and must appear in the document verbatim.
//! `cargo test -p mpc-callback-demo --test docs_example -- --nocapture` prints them.

use mpc_callback::mpc_wire::callback::{
    Action, Check, ExtraInfo, RequestType, ResponseData, SignType, TxInfo,
};
use mpc_callback::mpc_wire::signature::EcdsaSigner;
use mpc_callback::mpc_wire::{keys, signature};
use p256::ecdsa::SigningKey;

#[test]
fn worked_example_matches_the_docs() {
    let node = EcdsaSigner::new(&SigningKey::from_slice(&[0x11; 32]).unwrap());
    let server = EcdsaSigner::new(&SigningKey::from_slice(&[0x22; 32]).unwrap());
    // tx_info as the platform might hand it over: spaces, newlines, HTML characters.
    let tx_info = TxInfo::from_json(
        b"{ \"chainSymbol\": \"ETH\", \"assetId\": \"ETH\",\n  \"to\": \"0xabcdef0000000000000000000000000000000001\", \"amount\": \"1.5\", \"note\": \"<pay> & go\" }",
    )
    .unwrap();
    let check = Check::sign(
        "6f1c2a4e-93b0-4d5e-8a71-0c9d2b3e4f50",
        RequestType::Sign,
        SignType::Transaction,
        "02b4632d08485ff1df2db55b9dafd23347d1c47a457072a1e87be26896549a8737",
        "m/1/1/60/0",
        "9c22ff5f21f0b81b113e63f7db6da94fedef11b2119b4088b89664fb9a3cb658",
        Some(tx_info),
        ExtraInfo {
            sino_id: "sino-42".into(),
            request_id: "req-42".into(),
        },
    );
    let request = signature::sign_check(&check, &node);
    let body = String::from_utf8(request.body.clone()).unwrap();
    let data = ResponseData::for_request(&check, Action::Approve);
    let data_json = String::from_utf8(data.to_go_json()).unwrap();
    let response = signature::sign_response(data, "", &server);
    let response_json = String::from_utf8(response.to_go_json()).unwrap();
    let node_pem = keys::public_key_pem(node.verifying_key());
    let server_pem = keys::public_key_pem(server.verifying_key());

    let parts = [
        ("node public key", node_pem.trim().to_owned()),
        ("server public key", server_pem.trim().to_owned()),
        ("request body", body),
        ("Signature header", request.signature.clone()),
        ("data Go JSON", data_json),
        ("response signature", response.signature.clone()),
        ("response body", response_json),
    ];
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/callback.md"
    ))
    .unwrap();
    let mut missing = Vec::new();
    for (what, text) in &parts {
        println!("--- {what}\n{text}");
        if !doc.contains(text.as_str()) {
            missing.push(*what);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/callback.md lacks the current {missing:?}"
    );
}
