//! Untrusted DKLs23 payloads: a peer's message, whatever its bytes, never panics a signing
//! session; it is refused with an error naming the sender, or queued.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mpc_tss::dkls::{self, DklsKeyShare};
use mpc_tss::ecdsa::SignInput;
use mpc_tss::{DerivationPath, Envelope, ExecutionId, PartyId, ProtocolKind};

fn share() -> &'static DklsKeyShare {
    static S: OnceLock<DklsKeyShare> = OnceLock::new();
    S.get_or_init(|| {
        DklsKeyShare::from_stored_bytes(include_bytes!("../../tests/fixtures/dkls23-share-a.json"))
            .expect("fixture share loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let (Ok(a), Ok(b)) = (PartyId::new("a"), PartyId::new("b")) else {
        return;
    };
    let signers = [a, b];
    let round = data.first().copied().unwrap_or(0) % 4;
    let eid = ExecutionId::derive(ProtocolKind::Dkls23Sign, b"fuzz", &signers);
    let Ok(mut session) = dkls::sign(
        eid,
        share(),
        &signers,
        &DerivationPath::root(),
        SignInput::Digest([1; 32]),
    ) else {
        return;
    };
    let _ = session.start();
    let env = Envelope {
        version: 1,
        execution_id: eid,
        protocol: ProtocolKind::Dkls23Sign,
        round: u16::from(round),
        sender: b,
        receiver: if round == 2 { None } else { Some(a) },
        payload: data.get(1..).unwrap_or_default().to_vec(),
    };
    if let Err(e) = session.handle(env) {
        assert!(e.is_peer_fault(), "a peer's bytes are the peer's fault: {e}");
    }
});
