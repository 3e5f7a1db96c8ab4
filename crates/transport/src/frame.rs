//! Versioned CBOR frames: `Frame { v: 1, kind, body }`, at most [`MAX_FRAME_BYTES`].
//!
//! On the wire a frame is a CBOR map `{ "v": 1, "kind": "<kind>", "body": <body> }`. Decoding
//! refuses oversized input before parsing, unknown versions before looking at the body, unknown
//! kinds, bodies that do not match their kind, and trailing bytes.

use serde::{Deserialize, Serialize};

use crate::auth::{Challenge, Hello};
use crate::cbor;
use crate::seal::SealedEnvelope;

/// Frame version this build speaks.
pub const FRAME_VERSION: u8 = 1;
/// Largest encoded frame accepted or produced (aux-info rounds are ~0.3 MB).
pub const MAX_FRAME_BYTES: usize = 8 * 1024 * 1024;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    /// Proxy → node authentication challenge.
    Challenge,
    /// Node → proxy answer.
    Hello,
    /// Coordinator → node task (opaque here).
    Task,
    /// Node → coordinator task result (opaque here).
    TaskResult,
    /// A sealed protocol envelope.
    Protocol,
    /// A run is aborted.
    Abort,
    /// Heartbeat.
    Ping,
    /// Heartbeat answer.
    Pong,
}

/// A run's abort notice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Abort {
    /// The aborted run.
    #[serde(with = "serde_bytes")]
    pub execution_id: [u8; 32],
    /// Why, for logs.
    pub reason: String,
}

/// A decoded frame body, typed by its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// See [`FrameKind::Challenge`].
    Challenge(Challenge),
    /// See [`FrameKind::Hello`].
    Hello(Hello),
    /// CBOR task, decoded by the node (not yet typed here).
    Task(Vec<u8>),
    /// CBOR task result (not yet typed here).
    TaskResult(Vec<u8>),
    /// See [`FrameKind::Protocol`].
    Protocol(SealedEnvelope),
    /// See [`FrameKind::Abort`].
    Abort(Abort),
    /// Heartbeat with an opaque counter the answer echoes.
    Ping(u64),
    /// Answer to [`Frame::Ping`].
    Pong(u64),
}

/// Why bytes are not a frame (always the fault of whoever sent them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Size of the input.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A version this build does not speak.
    #[error("frame version {0} is not supported (this build speaks {FRAME_VERSION})")]
    Version(u64),
    /// Not a well-formed frame (bad CBOR, unknown kind, body not matching its kind, trailing
    /// bytes).
    #[error("malformed frame: {0}")]
    Malformed(String),
}

#[derive(Serialize)]
struct WireOut<'a, B: Serialize> {
    v: u8,
    kind: FrameKind,
    body: &'a B,
}

/// The map keys of a frame, in the order they must come.
#[derive(Deserialize, PartialEq, Eq, Debug)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Key {
    V,
    Kind,
    Body,
}

/// Decodes a frame straight into its typed body: the map is read in its canonical order
/// (`v`, `kind`, `body`, as [`Frame::encode`] writes it), so the kind is known before the body
/// and the body is deserialized into its type directly, with no generic CBOR value tree in
/// between (which costs ~32 bytes of memory per input byte on a hostile array of tiny items).
struct WireIn(Result<Frame, FrameError>);

impl<'de> Deserialize<'de> for WireIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FrameVisitor)
    }
}

struct FrameVisitor;

impl<'de> serde::de::Visitor<'de> for FrameVisitor {
    type Value = WireIn;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a frame map {v, kind, body}")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<WireIn, A::Error> {
        use serde::de::Error as _;
        fn expect<'de, A: serde::de::MapAccess<'de>>(
            map: &mut A,
            want: Key,
        ) -> Result<(), A::Error> {
            use serde::de::Error as _;
            match map.next_key::<Key>()? {
                Some(k) if k == want => Ok(()),
                Some(k) => Err(A::Error::custom(format!(
                    "field {k:?} where {want:?} was expected (order v, kind, body)"
                ))),
                None => Err(A::Error::custom(format!("missing field {want:?}"))),
            }
        }
        expect(&mut map, Key::V)?;
        let v: u64 = map.next_value()?;
        if v != u64::from(FRAME_VERSION) {
            // Skipped without being built in memory, so the item ends where it should.
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(WireIn(Err(FrameError::Version(v))));
        }
        expect(&mut map, Key::Kind)?;
        let kind: FrameKind = map
            .next_value()
            .map_err(|e| A::Error::custom(format!("kind: {e}")))?;
        expect(&mut map, Key::Body)?;
        fn body<'de, A: serde::de::MapAccess<'de>, T: Deserialize<'de>>(
            map: &mut A,
        ) -> Result<T, A::Error> {
            use serde::de::Error as _;
            map.next_value()
                .map_err(|e| A::Error::custom(format!("body: {e}")))
        }
        let frame = match kind {
            FrameKind::Challenge => Frame::Challenge(body(&mut map)?),
            FrameKind::Hello => Frame::Hello(body(&mut map)?),
            FrameKind::Task => Frame::Task(body::<_, ByteBuf>(&mut map)?.0),
            FrameKind::TaskResult => Frame::TaskResult(body::<_, ByteBuf>(&mut map)?.0),
            FrameKind::Protocol => Frame::Protocol(body(&mut map)?),
            FrameKind::Abort => Frame::Abort(body(&mut map)?),
            FrameKind::Ping => Frame::Ping(body(&mut map)?),
            FrameKind::Pong => Frame::Pong(body(&mut map)?),
        };
        if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::custom("unknown field after body"));
        }
        Ok(WireIn(Ok(frame)))
    }
}

#[derive(Serialize)]
struct Bytes<'a>(#[serde(with = "serde_bytes")] &'a [u8]);

#[derive(Deserialize)]
struct ByteBuf(#[serde(with = "serde_bytes")] Vec<u8>);

impl Frame {
    /// The frame's kind.
    pub fn kind(&self) -> FrameKind {
        match self {
            Frame::Challenge(_) => FrameKind::Challenge,
            Frame::Hello(_) => FrameKind::Hello,
            Frame::Task(_) => FrameKind::Task,
            Frame::TaskResult(_) => FrameKind::TaskResult,
            Frame::Protocol(_) => FrameKind::Protocol,
            Frame::Abort(_) => FrameKind::Abort,
            Frame::Ping(_) => FrameKind::Ping,
            Frame::Pong(_) => FrameKind::Pong,
        }
    }

    /// Encodes the frame. Fails (a local error) only if it would exceed [`MAX_FRAME_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        fn out<B: Serialize>(kind: FrameKind, body: &B) -> Result<Vec<u8>, FrameError> {
            cbor::to_vec(&WireOut {
                v: FRAME_VERSION,
                kind,
                body,
            })
            .map_err(FrameError::Malformed)
        }
        let kind = self.kind();
        let bytes = match self {
            Frame::Challenge(c) => out(kind, c),
            Frame::Hello(h) => out(kind, h),
            Frame::Task(b) | Frame::TaskResult(b) => out(kind, &Bytes(b)),
            Frame::Protocol(p) => out(kind, p),
            Frame::Abort(a) => out(kind, a),
            Frame::Ping(n) | Frame::Pong(n) => out(kind, n),
        }?;
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge {
                len: bytes.len(),
                max: MAX_FRAME_BYTES,
            });
        }
        Ok(bytes)
    }

    /// Decodes one frame filling all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(FrameError::TooLarge {
                len: bytes.len(),
                max: MAX_FRAME_BYTES,
            });
        }
        let WireIn(frame) = cbor::from_slice(bytes).map_err(FrameError::Malformed)?;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hello;
    use crate::keys::TransportSecret;
    use crate::seal::{EnvelopeHeader, SealedBody};
    use mpc_wire::p256::ecdsa::SigningKey;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn all_frames() -> Vec<Frame> {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let id = mpc_wire::signature::EcdsaSigner::new(&SigningKey::random(&mut rng));
        let cert = TransportSecret::generate(&mut rng).certify(&id);
        let challenge = Challenge::new(&mut rng);
        let header = EnvelopeHeader {
            version: 1,
            execution_id: [1; 32],
            protocol: "eddsa_sign".into(),
            round: 1,
            sender: "a".into(),
            receiver: Some("b".into()),
            seq: 0,
        };
        vec![
            Frame::Challenge(challenge.clone()),
            Frame::Hello(hello(&id, &challenge, &[4; 32], cert)),
            Frame::Task(vec![1, 2, 3]),
            Frame::TaskResult(Vec::new()),
            Frame::Protocol(SealedEnvelope {
                header: header.clone(),
                body: SealedBody::P2p {
                    encapped_key: [2; 32],
                    ciphertext: vec![3; 40],
                },
            }),
            Frame::Protocol(SealedEnvelope {
                header: EnvelopeHeader {
                    receiver: None,
                    ..header
                },
                body: SealedBody::Broadcast {
                    payload: vec![5; 10],
                    signature: "3006020101020101".into(),
                },
            }),
            Frame::Abort(Abort {
                execution_id: [9; 32],
                reason: "timeout".into(),
            }),
            Frame::Ping(17),
            Frame::Pong(u64::MAX),
        ]
    }

    fn raw(v: u64, kind: &str, body: ciborium::Value) -> Vec<u8> {
        #[derive(Serialize)]
        struct W<'a> {
            v: u64,
            kind: &'a str,
            body: ciborium::Value,
        }
        cbor::to_vec(&W { v, kind, body }).unwrap()
    }

    #[test]
    fn round_trips() {
        for f in all_frames() {
            let bytes = f.encode().unwrap();
            assert_eq!(Frame::decode(&bytes).unwrap(), f, "{:?}", f.kind());
        }
        // The wire form is the documented map.
        assert_eq!(
            Frame::Ping(1).encode().unwrap(),
            raw(1, "ping", ciborium::Value::Integer(1.into()))
        );
    }

    #[test]
    fn refuses_trailing_bytes() {
        for f in all_frames() {
            let mut bytes = f.encode().unwrap();
            bytes.push(0);
            assert!(matches!(
                Frame::decode(&bytes),
                Err(FrameError::Malformed(m)) if m.contains("trailing")
            ));
        }
    }

    #[test]
    fn refuses_other_versions_before_the_body() {
        for v in [0, 2, 256] {
            let bytes = raw(v, "some_future_kind", ciborium::Value::Null);
            assert_eq!(Frame::decode(&bytes), Err(FrameError::Version(v)));
        }
    }

    #[test]
    fn refuses_oversize() {
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(
            Frame::decode(&big),
            Err(FrameError::TooLarge {
                len: MAX_FRAME_BYTES + 1,
                max: MAX_FRAME_BYTES
            })
        );
        assert!(matches!(
            Frame::Task(vec![0; MAX_FRAME_BYTES]).encode(),
            Err(FrameError::TooLarge { .. })
        ));
        // Just under the limit is fine.
        let ok = Frame::Task(vec![0; MAX_FRAME_BYTES - 64]);
        assert_eq!(Frame::decode(&ok.encode().unwrap()).unwrap(), ok);
    }

    #[test]
    fn refuses_garbage() {
        for bytes in [
            &[][..],
            &[0xff][..],
            &[0xa0][..],
            &raw(1, "nope", ciborium::Value::Null)[..],
            &raw(1, "ping", ciborium::Value::Text("x".into()))[..],
            &raw(1, "challenge", ciborium::Value::Null)[..],
            // A byte string claiming 2^63 bytes.
            &[0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0][..],
        ] {
            assert!(
                matches!(Frame::decode(bytes), Err(FrameError::Malformed(_))),
                "{bytes:?}"
            );
        }
    }

    /// Every single-byte change and every truncation of every kind of frame: decoding never
    /// panics, and whatever still decodes re-encodes to the same frame (the fuzz target does
    /// the same on arbitrary input).
    #[test]
    fn mutations_never_panic() {
        for f in all_frames() {
            let bytes = f.encode().unwrap();
            let check = |b: &[u8]| {
                if let Ok(g) = Frame::decode(b) {
                    assert_eq!(Frame::decode(&g.encode().unwrap()).unwrap(), g);
                }
            };
            for i in 0..bytes.len() {
                check(&bytes[..i]);
                for x in [0x00, 0x01, 0x18, 0x1f, 0x5f, 0x7f, 0x9f, 0xbf, 0xff] {
                    let mut m = bytes.clone();
                    m[i] ^= x;
                    check(&m);
                }
            }
        }
    }
}
