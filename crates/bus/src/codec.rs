//! The bytes of bus messages on a network bus ([`crate::nats`]).
//!
//! Each message is one CBOR map (RFC 8949), decoded into typed structures only (never a
//! generic value), at most [`MAX_MESSAGE_BYTES`]:
//!
//! - a [`Delivery`]: `{"v": 1, "node_id": text, "frame": bytes}`;
//! - a [`ProxyEvent`]: `{"v": 1, "event": {"node_online": {"node_id": text,
//!   "organization_id": text, "party": text, "transport_cert": {"node_id": text,
//!   "x25519_public": bytes(32), "signature": text}, "connection": text}}}`, `{"v": 1,
//!   "event": {"node_offline": {"node_id": text, "connection": text}}}` or `{"v": 1, "event": {"task_result": {"node_id": text, "party": text,
//!   "result": bytes}}}`.
//!
//! - a [`Relay`]: `{"v": 1, "origin": text, "organization_id": text, "sender": text,
//!   "receiver": text or null, "frame": bytes}`.
//!
//! `v` is [`VERSION`]; a message of another version, an unknown event or field, trailing bytes
//! or a missing field is refused with a [`CodecError`] naming it. The event is externally
//! tagged so that decoding never buffers an untyped copy of the input (an internally tagged
//! enum would: a message of tiny array items would cost many times its size). The bus is untrusted: what a
//! message carries is checked where it is used (task results are signed by their node; a
//! transport certificate is signed by its node's identity key).

use mpc_transport::keys::TransportCert;
use serde::{Deserialize, Serialize};

use crate::{Delivery, ProxyEvent, Relay};

/// Version of the message format.
pub const VERSION: u8 = 1;

/// The largest message (a 2 MiB task frame plus its framing, with room).
pub const MAX_MESSAGE_BYTES: usize = 3 * 1024 * 1024;

/// Why bus message bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("bus message of {0} bytes is larger than {MAX_MESSAGE_BYTES}")]
    TooLarge(usize),
    /// Not a message of this format.
    #[error("malformed bus message: {0}")]
    Malformed(String),
    /// Another format version.
    #[error("bus message version {0}, expected {VERSION}")]
    Version(u8),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryWire {
    v: u8,
    node_id: String,
    #[serde(with = "serde_bytes")]
    frame: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayWire {
    v: u8,
    origin: String,
    organization_id: String,
    sender: String,
    receiver: Option<String>,
    #[serde(with = "serde_bytes")]
    frame: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventWire {
    v: u8,
    event: EventBody,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum EventBody {
    NodeOnline {
        node_id: String,
        organization_id: String,
        party: String,
        transport_cert: TransportCert,
        connection: String,
    },
    NodeOffline {
        node_id: String,
        connection: String,
    },
    TaskResult {
        node_id: String,
        party: String,
        #[serde(with = "serde_bytes")]
        result: Vec<u8>,
    },
}

fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Serializing these plain structures into a Vec cannot fail.
    if let Err(e) = ciborium::into_writer(value, &mut out) {
        tracing::error!("bus message not encodable: {e}");
        out.clear();
    }
    out
}

fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge(bytes.len()));
    }
    let mut rest = bytes;
    let value: T =
        ciborium::from_reader(&mut rest).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Malformed(format!(
            "{} trailing bytes after the CBOR item",
            rest.len()
        )));
    }
    Ok(value)
}

fn version(v: u8) -> Result<(), CodecError> {
    if v == VERSION {
        Ok(())
    } else {
        Err(CodecError::Version(v))
    }
}

/// The bytes of a delivery.
pub fn encode_delivery(d: &Delivery) -> Vec<u8> {
    to_vec(&DeliveryWire {
        v: VERSION,
        node_id: d.node_id.clone(),
        frame: d.frame.clone(),
    })
}

/// A delivery from its bytes.
pub fn decode_delivery(bytes: &[u8]) -> Result<Delivery, CodecError> {
    let w: DeliveryWire = from_slice(bytes)?;
    version(w.v)?;
    Ok(Delivery {
        node_id: w.node_id,
        frame: w.frame,
    })
}

/// The bytes of a relayed frame.
pub fn encode_relay(r: &Relay) -> Vec<u8> {
    to_vec(&RelayWire {
        v: VERSION,
        origin: r.origin.clone(),
        organization_id: r.organization_id.clone(),
        sender: r.sender.clone(),
        receiver: r.receiver.clone(),
        frame: r.frame.clone(),
    })
}

/// A relayed frame from its bytes.
pub fn decode_relay(bytes: &[u8]) -> Result<Relay, CodecError> {
    let w: RelayWire = from_slice(bytes)?;
    version(w.v)?;
    Ok(Relay {
        origin: w.origin,
        organization_id: w.organization_id,
        sender: w.sender,
        receiver: w.receiver,
        frame: w.frame,
    })
}

/// The bytes of a proxy event.
pub fn encode_event(e: &ProxyEvent) -> Vec<u8> {
    let event = match e.clone() {
        ProxyEvent::NodeOnline {
            node_id,
            organization_id,
            party,
            transport_cert,
            connection,
        } => EventBody::NodeOnline {
            node_id,
            organization_id,
            party,
            transport_cert,
            connection,
        },
        ProxyEvent::NodeOffline {
            node_id,
            connection,
        } => EventBody::NodeOffline {
            node_id,
            connection,
        },
        ProxyEvent::TaskResult {
            node_id,
            party,
            result,
        } => EventBody::TaskResult {
            node_id,
            party,
            result,
        },
    };
    to_vec(&EventWire { v: VERSION, event })
}

/// A proxy event from its bytes.
pub fn decode_event(bytes: &[u8]) -> Result<ProxyEvent, CodecError> {
    let w: EventWire = from_slice(bytes)?;
    version(w.v)?;
    Ok(match w.event {
        EventBody::NodeOnline {
            node_id,
            organization_id,
            party,
            transport_cert,
            connection,
        } => ProxyEvent::NodeOnline {
            node_id,
            organization_id,
            party,
            transport_cert,
            connection,
        },
        EventBody::NodeOffline {
            node_id,
            connection,
        } => ProxyEvent::NodeOffline {
            node_id,
            connection,
        },
        EventBody::TaskResult {
            node_id,
            party,
            result,
        } => ProxyEvent::TaskResult {
            node_id,
            party,
            result,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert() -> TransportCert {
        TransportCert {
            node_id: "sinoN".into(),
            x25519_public: [7; 32],
            signature: "3045".into(),
        }
    }

    fn events() -> Vec<ProxyEvent> {
        vec![
            ProxyEvent::NodeOnline {
                node_id: "sinoN".into(),
                organization_id: "org-1".into(),
                party: "a".into(),
                transport_cert: cert(),
                connection: "p1/7".into(),
            },
            ProxyEvent::NodeOffline {
                node_id: "sinoN".into(),
                connection: "p1/7".into(),
            },
            ProxyEvent::TaskResult {
                node_id: "sinoN".into(),
                party: "b".into(),
                result: vec![1, 2, 3],
            },
        ]
    }

    /// The bytes of each message kind, pinned (hex of the CBOR), and the round trip.
    #[test]
    fn message_bytes_are_pinned() {
        let d = Delivery {
            node_id: "sinoN".into(),
            frame: vec![0xde, 0xad],
        };
        let bytes = encode_delivery(&d);
        insta::assert_snapshot!("delivery", hex::encode(&bytes));
        assert_eq!(decode_delivery(&bytes).unwrap(), d);
        for (name, r) in [
            (
                "relay_p2p",
                Relay {
                    origin: "p1".into(),
                    organization_id: "org-1".into(),
                    sender: "a".into(),
                    receiver: Some("b".into()),
                    frame: vec![1, 2],
                },
            ),
            (
                "relay_broadcast",
                Relay {
                    origin: "p1".into(),
                    organization_id: "org-1".into(),
                    sender: "a".into(),
                    receiver: None,
                    frame: vec![3],
                },
            ),
        ] {
            let bytes = encode_relay(&r);
            insta::assert_snapshot!(name, hex::encode(&bytes));
            assert_eq!(decode_relay(&bytes).unwrap(), r);
        }
        for (name, e) in ["node_online", "node_offline", "task_result"]
            .into_iter()
            .zip(events())
        {
            let bytes = encode_event(&e);
            insta::assert_snapshot!(name, hex::encode(&bytes));
            assert_eq!(decode_event(&bytes).unwrap(), e);
        }
    }

    /// Another version, an unknown event, a delivery read as an event, trailing bytes, a
    /// truncated message, an oversized one, an array of tiny items where bytes belong: each
    /// refused, naming why.
    #[test]
    fn bad_messages_are_refused_naming_why() {
        let d = Delivery {
            node_id: "n".into(),
            frame: vec![1],
        };
        let mut other = Vec::new();
        ciborium::into_writer(
            &DeliveryWire {
                v: 2,
                node_id: "n".into(),
                frame: vec![],
            },
            &mut other,
        )
        .unwrap();
        assert_eq!(decode_delivery(&other), Err(CodecError::Version(2)));
        let good = encode_delivery(&d);
        assert!(matches!(decode_event(&good), Err(CodecError::Malformed(_))));
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(
            matches!(decode_delivery(&trailing), Err(CodecError::Malformed(m)) if m.contains("trailing"))
        );
        assert!(matches!(
            decode_delivery(&good[..good.len() - 1]),
            Err(CodecError::Malformed(_))
        ));
        assert!(matches!(
            decode_delivery(&vec![0u8; MAX_MESSAGE_BYTES + 1]),
            Err(CodecError::TooLarge(_))
        ));
        let unknown = {
            let mut out = Vec::new();
            let body = ciborium::Value::Map(vec![(
                ciborium::Value::Text("node_exploded".into()),
                ciborium::Value::Map(vec![]),
            )]);
            let m = ciborium::Value::Map(vec![
                (
                    ciborium::Value::Text("v".into()),
                    ciborium::Value::Integer(1.into()),
                ),
                (ciborium::Value::Text("event".into()), body),
            ]);
            ciborium::into_writer(&m, &mut out).unwrap();
            out
        };
        assert!(
            matches!(decode_event(&unknown), Err(CodecError::Malformed(m)) if m.contains("node_exploded"))
        );
        // {"v":1,"node_id":"n","frame":[0,0,…]}: an array of 2^20 one-byte items where a byte
        // string belongs is read as those bytes (serde_bytes takes a sequence of u8), one byte
        // kept per byte read: no amplification.
        let mut arr = hex::decode("a3617601676e6f64655f6964616e656672616d65").unwrap();
        arr.extend([0x9a, 0x00, 0x10, 0x00, 0x00]);
        arr.extend(std::iter::repeat_n(0u8, 0x100000));
        assert_eq!(decode_delivery(&arr).unwrap().frame.len(), 0x100000);
        // An item that is not a u8 in it: refused.
        let last = arr.len() - 1;
        arr[last] = 0x19;
        assert!(matches!(
            decode_delivery(&arr),
            Err(CodecError::Malformed(_))
        ));
    }
}
