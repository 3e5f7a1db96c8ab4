//! Property tests: escaping, compaction and (de)serialization round trips over generated
//! inputs, and ECIES round trips over generated messages and keys.

use mpc_wire::callback::{Check, ExtraInfo, RequestDetail, Response, ResponseData, TxInfo};
use mpc_wire::{ecies, gojson};
use proptest::prelude::*;
use serde_json::Value;

/// Strings biased towards the characters Go escapes specially.
fn tricky_string() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '<', '>', '&', '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1f}',
        '\u{7f}', '\u{2028}', '\u{2029}', '\u{fffd}', 'é', '•', '¤', '你', '🎉', 'a', ' ',
    ]);
    prop_oneof![
        prop::collection::vec(special, 0..24).prop_map(|v| v.into_iter().collect()),
        any::<String>(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        tricky_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(tricky_string(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn escaped_strings_parse_back(s in tricky_string()) {
        let mut out = Vec::new();
        gojson::write_string(&mut out, &s);
        let text = std::str::from_utf8(&out).unwrap();
        prop_assert_eq!(serde_json::from_str::<String>(text).unwrap(), s);
        for forbidden in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            prop_assert!(!text.contains(forbidden));
        }
        prop_assert!(!text.bytes().any(|b| b < 0x20));
    }

    #[test]
    fn compaction_ignores_layout_and_keeps_value(v in json_value()) {
        let pretty = serde_json::to_vec_pretty(&v).unwrap();
        let compact = serde_json::to_vec(&v).unwrap();
        let a = gojson::compact_raw(&pretty).unwrap();
        let b = gojson::compact_raw(&compact).unwrap();
        prop_assert_eq!(&a, &b);
        // Compared with serde_json's own reading of its output (its default float parsing
        // is not exactly round-trip, so `v` itself is not the reference).
        prop_assert_eq!(
            serde_json::from_slice::<Value>(&a).unwrap(),
            serde_json::from_slice::<Value>(&compact).unwrap()
        );
        prop_assert_eq!(gojson::compact_raw(&a).unwrap(), a.clone());
    }

    #[test]
    fn compaction_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = gojson::compact_raw(&bytes);
    }

    #[test]
    fn check_round_trips(
        callback_id in tricky_string(),
        request_type in tricky_string(),
        t in any::<i64>(),
        n in any::<i64>(),
        party_ids in prop::collection::vec(tricky_string(), 0..4),
        strings in prop::collection::vec(tricky_string(), 9),
        tx in prop::option::of(json_value()),
    ) {
        let check = Check {
            callback_id,
            request_type,
            request_detail: RequestDetail {
                t,
                n,
                cryptography: strings[0].clone(),
                party_ids,
                sign_type: strings[1].clone(),
                public_key: strings[2].clone(),
                path: strings[3].clone(),
                message: strings[4].clone(),
                signature: strings[5].clone(),
                tx_info: tx.map(|v| TxInfo::from_json(&serde_json::to_vec_pretty(&v).unwrap()).unwrap()),
                new_party_id: strings[8].clone(),
            },
            extra_info: ExtraInfo { sino_id: strings[6].clone(), request_id: strings[7].clone() },
        };
        let go = check.to_go_json();
        let parsed = Check::from_json(&go).unwrap();
        prop_assert_eq!(&parsed, &check);
        prop_assert_eq!(parsed.to_go_json(), go.clone());
        // It is JSON by serde_json's reading too.
        prop_assert!(serde_json::from_slice::<Value>(&go).is_ok());
    }

    #[test]
    fn response_round_trips(
        strings in prop::collection::vec(tricky_string(), 7),
        with_data in any::<bool>(),
    ) {
        let response = Response {
            status: strings[0].clone(),
            error: strings[1].clone(),
            data: with_data.then(|| ResponseData {
                callback_id: strings[2].clone(),
                sino_id: strings[3].clone(),
                request_id: strings[4].clone(),
                action: strings[5].clone(),
                wait_time: strings[6].clone(),
            }),
            signature: strings[6].clone(),
        };
        let go = response.to_go_json();
        prop_assert_eq!(Response::from_json(&go).unwrap(), response);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn ecies_round_trips(msg in prop::collection::vec(any::<u8>(), 0..200), seed in any::<[u8; 32]>()) {
        use mpc_wire::p256::SecretKey;
        // A valid scalar from the seed (retry on the negligible invalid case).
        let Ok(key) = SecretKey::from_slice(&seed) else { return Ok(()); };
        let mut rng = rand_core::OsRng;
        let ct = ecies::encrypt(&key.public_key(), &msg, &mut rng);
        prop_assert_eq!(ct.len(), ecies::MIN_CIPHERTEXT_LEN + msg.len());
        let plain = ecies::decrypt(&key, &ct).unwrap();
        prop_assert_eq!(plain.as_slice(), &msg[..]);
        let mut flipped = ct.clone();
        let i = seed[0] as usize % ct.len();
        flipped[i] ^= 1 << (seed[1] % 8);
        prop_assert!(ecies::decrypt(&key, &flipped).is_err());
    }
}
