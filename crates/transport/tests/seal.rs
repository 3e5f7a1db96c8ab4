//! End-to-end envelope tests with the proxy as the adversary: it sees and may rewrite every
//! frame, but holds no node key.

use mpc_transport::frame::Frame;
use mpc_transport::keys::{PeerTransportKey, TransportSecret, verify_cert};
use mpc_transport::p256::ecdsa::SigningKey;
use mpc_transport::seal::{
    Envelope, EnvelopeHeader, OpenFault, SealError, SealedBody, SealedEnvelope, open, seal,
};
use mpc_wire::keys::node_id;
use mpc_wire::signature::EcdsaSigner;
use mpc_wire::signature::SignatureError;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Node {
    party: &'static str,
    identity: EcdsaSigner,
    transport: TransportSecret,
}

impl Node {
    fn new(party: &'static str, rng: &mut ChaCha20Rng) -> Self {
        Node {
            party,
            identity: EcdsaSigner::new(&SigningKey::random(rng)),
            transport: TransportSecret::generate(rng),
        }
    }

    /// What a peer gets after checking this node's certificate against its node id.
    fn peer_key(&self) -> PeerTransportKey {
        let cert = self.transport.certify(&self.identity);
        verify_cert(&cert, &node_id(self.identity.verifying_key())).unwrap()
    }
}

fn setup() -> (ChaCha20Rng, Node, Node, Node) {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let a = Node::new("a", &mut rng);
    let b = Node::new("b", &mut rng);
    let c = Node::new("c", &mut rng);
    (rng, a, b, c)
}

fn envelope(receiver: Option<&str>) -> Envelope {
    Envelope {
        header: EnvelopeHeader {
            version: 1,
            execution_id: [7; 32],
            protocol: "ecdsa_sign".into(),
            round: 2,
            sender: "a".into(),
            receiver: receiver.map(str::to_owned),
            seq: 5,
        },
        payload: b"secret share for b".to_vec(),
    }
}

/// Sends through the proxy as bytes, as the real path does.
fn via_frame(sealed: &SealedEnvelope) -> SealedEnvelope {
    let bytes = Frame::Protocol(sealed.clone()).encode().unwrap();
    match Frame::decode(&bytes).unwrap() {
        Frame::Protocol(s) => s,
        other => panic!("not a protocol frame: {other:?}"),
    }
}

fn fault(sealed: &SealedEnvelope, me: &Node, sender: &EcdsaSigner) -> OpenFault {
    open(sealed, &me.transport, sender.verifying_key(), me.party)
        .unwrap_err()
        .fault
}

#[test]
fn broadcast_round_trip() {
    let (mut rng, a, b, c) = setup();
    let env = envelope(None);
    let sealed = via_frame(&seal(&a.identity, None, &env, &mut rng).unwrap());
    assert!(
        matches!(&sealed.body, SealedBody::Broadcast { payload, .. } if payload == &env.payload)
    );
    for me in [&b, &c] {
        let got = open(&sealed, &me.transport, a.identity.verifying_key(), me.party).unwrap();
        assert_eq!(got, env);
        assert_eq!(got.header.sender, "a");
    }
}

#[test]
fn p2p_round_trip_and_confidentiality() {
    let (mut rng, a, b, c) = setup();
    let env = envelope(Some("b"));
    let sealed = via_frame(&seal(&a.identity, Some(&b.peer_key()), &env, &mut rng).unwrap());
    let got = open(&sealed, &b.transport, a.identity.verifying_key(), "b").unwrap();
    assert_eq!(got, env);

    // The proxy sees no payload bytes anywhere in the frame.
    let bytes = Frame::Protocol(sealed.clone()).encode().unwrap();
    assert!(
        !bytes
            .windows(env.payload.len())
            .any(|w| w == env.payload.as_slice())
    );
    // Sealing twice gives different ciphertexts (fresh HPKE ephemeral key).
    let again = seal(&a.identity, Some(&b.peer_key()), &env, &mut rng).unwrap();
    assert_ne!(again.body, sealed.body);
    // Another node's key (here c's, pretending to be b) does not open it.
    assert_eq!(
        fault(&sealed, &Node { party: "b", ..c }, &a.identity),
        OpenFault::Decrypt
    );
}

#[test]
fn sealing_misuse_is_local() {
    let (mut rng, a, b, _) = setup();
    assert_eq!(
        seal(&a.identity, None, &envelope(Some("b")), &mut rng).unwrap_err(),
        SealError::MissingReceiverKey("b".into())
    );
    assert_eq!(
        seal(&a.identity, Some(&b.peer_key()), &envelope(None), &mut rng).unwrap_err(),
        SealError::UnexpectedReceiverKey
    );
}

type Edit = fn(&mut EnvelopeHeader);

const HEADER_EDITS: [(&str, Edit); 6] = [
    ("execution id", |h| h.execution_id[0] ^= 1),
    ("protocol", |h| h.protocol = "ecdsa_presign".into()),
    ("round", |h| h.round += 1),
    ("sender", |h| h.sender = "c".into()),
    ("seq", |h| h.seq += 1),
    ("version", |h| h.version = 2),
];

#[test]
fn proxy_cannot_change_broadcast_header() {
    let (mut rng, a, b, c) = setup();
    let sealed = seal(&a.identity, None, &envelope(None), &mut rng).unwrap();
    for (name, edit) in HEADER_EDITS {
        let mut forged = sealed.clone();
        edit(&mut forged.header);
        // The receiver looks up the key of the sender the header names.
        let key = if forged.header.sender == "c" {
            &c.identity
        } else {
            &a.identity
        };
        let f = fault(&forged, &b, key);
        assert!(
            matches!(
                f,
                OpenFault::Signature(SignatureError::Invalid) | OpenFault::Version(2)
            ),
            "{name}: {f:?}"
        );
    }
    // Turning a broadcast into a p2p frame for b.
    let mut forged = sealed.clone();
    forged.header.receiver = Some("b".into());
    assert_eq!(fault(&forged, &b, &a.identity), OpenFault::KindMismatch);
}

#[test]
fn proxy_cannot_change_p2p_header() {
    let (mut rng, a, b, c) = setup();
    let sealed = seal(
        &a.identity,
        Some(&b.peer_key()),
        &envelope(Some("b")),
        &mut rng,
    )
    .unwrap();
    for (name, edit) in HEADER_EDITS {
        let mut forged = sealed.clone();
        edit(&mut forged.header);
        let key = if forged.header.sender == "c" {
            &c.identity
        } else {
            &a.identity
        };
        let f = fault(&forged, &b, key);
        assert!(
            matches!(f, OpenFault::Decrypt | OpenFault::Version(2)),
            "{name}: {f:?}"
        );
    }
    // Turning it into a broadcast.
    let mut forged = sealed.clone();
    forged.header.receiver = None;
    assert_eq!(fault(&forged, &b, &a.identity), OpenFault::KindMismatch);
}

#[test]
fn proxy_cannot_redirect_p2p() {
    let (mut rng, a, b, c) = setup();
    let sealed = seal(
        &a.identity,
        Some(&b.peer_key()),
        &envelope(Some("b")),
        &mut rng,
    )
    .unwrap();
    // Delivered unchanged to c: not addressed to c.
    assert_eq!(
        fault(&sealed, &c, &a.identity),
        OpenFault::NotForMe {
            me: "c".into(),
            got: Some("b".into())
        }
    );
    // Relabelled for c: c's key does not open a ciphertext made for b (and the AAD changed).
    let mut forged = sealed.clone();
    forged.header.receiver = Some("c".into());
    assert_eq!(fault(&forged, &c, &a.identity), OpenFault::Decrypt);
}

#[test]
fn replay_into_another_execution_fails() {
    let (mut rng, a, b, _) = setup();
    for (receiver, key) in [(None, None), (Some("b"), Some(b.peer_key()))] {
        let sealed = seal(&a.identity, key.as_ref(), &envelope(receiver), &mut rng).unwrap();
        // Same header: opens (duplicates within a run are the session layer's job).
        open(&sealed, &b.transport, a.identity.verifying_key(), "b").unwrap();
        let mut replayed = sealed.clone();
        replayed.header.execution_id = [8; 32];
        assert!(open(&replayed, &b.transport, a.identity.verifying_key(), "b").is_err());
    }
}

#[test]
fn proxy_cannot_substitute_payload() {
    let (mut rng, a, b, _) = setup();
    // Broadcast: swap the clear payload.
    let mut sealed = seal(&a.identity, None, &envelope(None), &mut rng).unwrap();
    if let SealedBody::Broadcast { payload, .. } = &mut sealed.body {
        payload[0] ^= 1;
    }
    assert_eq!(
        fault(&sealed, &b, &a.identity),
        OpenFault::Signature(SignatureError::Invalid)
    );
    // P2P: flip a ciphertext bit.
    let mut sealed = seal(
        &a.identity,
        Some(&b.peer_key()),
        &envelope(Some("b")),
        &mut rng,
    )
    .unwrap();
    if let SealedBody::P2p { ciphertext, .. } = &mut sealed.body {
        ciphertext[3] ^= 1;
    }
    assert_eq!(fault(&sealed, &b, &a.identity), OpenFault::Decrypt);
    // P2P: the proxy encrypts its own payload to b (b's transport key is public) with a
    // signature it cannot make.
    let proxy_key = EcdsaSigner::new(&SigningKey::random(&mut rng));
    let forged = seal(
        &proxy_key,
        Some(&b.peer_key()),
        &envelope(Some("b")),
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        fault(&forged, &b, &a.identity),
        OpenFault::Signature(SignatureError::Invalid)
    );
}

#[test]
fn wrong_sender_key_fails() {
    let (mut rng, a, b, c) = setup();
    for (receiver, key) in [(None, None), (Some("b"), Some(b.peer_key()))] {
        let sealed = seal(&a.identity, key.as_ref(), &envelope(receiver), &mut rng).unwrap();
        let err = open(&sealed, &b.transport, c.identity.verifying_key(), "b").unwrap_err();
        assert_eq!(err.fault, OpenFault::Signature(SignatureError::Invalid));
        assert_eq!(err.claimed_sender, "a");
        assert!(err.to_string().contains("\"a\""));
    }
}

#[test]
fn cert_for_another_node_is_refused() {
    let (_, a, b, _) = setup();
    let cert_b = b.transport.certify(&b.identity);
    assert!(verify_cert(&cert_b, &node_id(a.identity.verifying_key())).is_err());
}
