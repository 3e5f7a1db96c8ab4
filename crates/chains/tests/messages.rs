//! Signing payload vectors: EIP-191 personal_sign and EIP-712 typed data v3/v4.

use mpc_chains::eip712::{TypedData, TypedDataVersion, typed_data_payload};
use mpc_chains::hash::keccak256;
use mpc_chains::personal::{MessageEncoding, message_bytes, personal_sign_payload};
use mpc_chains::{Eip712Error, HashKind, MessageError, SignMessageKind, sign_message_payload};
use serde_json::{Value, json};

fn hx(bytes: impl AsRef<[u8]>) -> String {
    hex::encode(bytes)
}

// --- EIP-191 ---------------------------------------------------------------------------------

#[test]
fn personal_sign_hello_world() {
    // ethers.js documentation, hashMessage("Hello World").
    let payload = sign_message_payload(SignMessageKind::PersonalSign, "Hello World").unwrap();
    assert_eq!(
        payload.preimage(),
        b"\x19Ethereum Signed Message:\n11Hello World"
    );
    assert_eq!(payload.hash_kind(), HashKind::Keccak256);
    assert_eq!(
        hx(payload.digest()),
        "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"
    );
    // hashMessage("hello world").
    assert_eq!(
        hx(personal_sign_payload(b"hello world").digest()),
        "d9eba16ed0ecae432b71fe008c98cc872bb4cc214d3220a36f365326cf807d68"
    );
}

#[test]
fn personal_sign_hex_rule() {
    // 0x-hex is decoded (MetaMask): the same digest as the raw bytes.
    let from_hex =
        sign_message_payload(SignMessageKind::PersonalSign, "0x48656c6c6f20576f726c64").unwrap();
    assert_eq!(from_hex, personal_sign_payload(b"Hello World"));
    // Upper-case hex digits are hex too; the prefix must be lower-case 0x.
    assert_eq!(
        message_bytes("0xABcd", MessageEncoding::Auto).unwrap(),
        vec![0xab, 0xcd]
    );
    assert_eq!(
        message_bytes("0XABCD", MessageEncoding::Auto).unwrap(),
        b"0XABCD".to_vec()
    );
    // "0x" alone is the empty message; length prefix "0".
    let empty = sign_message_payload(SignMessageKind::PersonalSign, "0x").unwrap();
    assert_eq!(empty.preimage(), b"\x19Ethereum Signed Message:\n0");
    // Not hex after 0x: text.
    assert_eq!(
        message_bytes("0xhello", MessageEncoding::Auto).unwrap(),
        b"0xhello".to_vec()
    );
    // Odd digits: refused, not guessed.
    assert_eq!(
        message_bytes("0x123", MessageEncoding::Auto),
        Err(MessageError::OddHexMessage)
    );
    // Explicit encodings.
    assert_eq!(
        message_bytes("0xabcd", MessageEncoding::Utf8).unwrap(),
        b"0xabcd".to_vec()
    );
    assert_eq!(
        message_bytes("abcd", MessageEncoding::Hex),
        Err(MessageError::NotHex)
    );
    // Multi-byte UTF-8: the length is in bytes.
    let p = personal_sign_payload(&message_bytes("héllo", MessageEncoding::Auto).unwrap());
    assert!(p.preimage().ends_with(b"\n6h\xc3\xa9llo"));
    // Digest is keccak of the preimage.
    assert_eq!(p.digest(), keccak256(p.preimage()));
}

#[test]
fn message_kind_names() {
    for kind in [
        SignMessageKind::PersonalSign,
        SignMessageKind::TypedDataV3,
        SignMessageKind::TypedDataV4,
    ] {
        assert_eq!(kind.as_str().parse::<SignMessageKind>().unwrap(), kind);
    }
    assert!(matches!(
        "eth_signTypedData".parse::<SignMessageKind>(),
        Err(MessageError::UnknownKind(_))
    ));
}

// --- EIP-712 ---------------------------------------------------------------------------------

fn mail_example() -> Value {
    // The example of EIP-712 itself (Example.js).
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [
                {"name": "name", "type": "string"},
                {"name": "wallet", "type": "address"}
            ],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    })
}

const MAIL_DOMAIN_SEPARATOR: &str =
    "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f";

#[test]
fn eip712_mail_example() {
    let data = TypedData::from_value(mail_example()).unwrap();
    assert_eq!(
        data.encode_type("Mail").unwrap(),
        "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
    );
    assert_eq!(
        hx(data.type_hash("Mail").unwrap()),
        "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2"
    );
    for version in [TypedDataVersion::V3, TypedDataVersion::V4] {
        assert_eq!(
            hx(data.domain_separator(version).unwrap()),
            MAIL_DOMAIN_SEPARATOR
        );
        assert_eq!(
            hx(data.message_hash(version).unwrap().unwrap()),
            "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e"
        );
        let payload = data.signing_payload(version).unwrap();
        assert_eq!(payload.preimage().len(), 66);
        assert_eq!(&payload.preimage()[..2], &[0x19, 0x01]);
        assert_eq!(
            hx(payload.digest()),
            "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        );
    }
    // Through the API entry point, from JSON text.
    let text = mail_example().to_string();
    let payload = sign_message_payload(SignMessageKind::TypedDataV4, &text).unwrap();
    assert_eq!(
        hx(payload.digest()),
        "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    );
}

fn v4_arrays_example() -> Value {
    // MetaMask eth-sig-util test suite, signTypedData V4 "example with arrays" data.
    json!({
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [
                {"name": "name", "type": "string"},
                {"name": "wallets", "type": "address[]"}
            ],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person[]"},
                {"name": "contents", "type": "string"}
            ],
            "Group": [
                {"name": "name", "type": "string"},
                {"name": "members", "type": "Person[]"}
            ]
        },
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "primaryType": "Mail",
        "message": {
            "from": {
                "name": "Cow",
                "wallets": [
                    "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826",
                    "0xDeaDbeefdEAdbeefdEadbEEFdeadbeEFdEaDbeeF"
                ]
            },
            "to": [{
                "name": "Bob",
                "wallets": [
                    "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB",
                    "0xB0BdaBea57B0BDABeA57b0bdABEA57b0BDabEa57",
                    "0xB0B0b0b0b0b0B000000000000000000000000000"
                ]
            }],
            "contents": "Hello, Bob!"
        }
    })
}

#[test]
fn eip712_v4_arrays_and_nested_structs() {
    let data = TypedData::from_value(v4_arrays_example()).unwrap();
    assert_eq!(
        data.encode_type("Mail").unwrap(),
        "Mail(Person from,Person[] to,string contents)Person(string name,address[] wallets)"
    );
    assert_eq!(
        data.encode_type("Group").unwrap(),
        "Group(string name,Person[] members)Person(string name,address[] wallets)"
    );
    let v4 = TypedDataVersion::V4;
    assert_eq!(
        hx(data.domain_separator(v4).unwrap()),
        MAIL_DOMAIN_SEPARATOR
    );
    // typeHash of "Person(string name,address[] wallets)".
    assert_eq!(
        hx(data.type_hash("Person").unwrap()),
        "fabfe1ed996349fc6027709802be19d047da1aa5d6894ff5f6486d92db2e6860"
    );
    assert_eq!(
        hx(data.type_hash("Person").unwrap()),
        hx(keccak256(b"Person(string name,address[] wallets)"))
    );
    assert_eq!(
        hx(data.message_hash(v4).unwrap().unwrap()),
        "eb4221181ff3f1a83ea7313993ca9218496e424604ba9492bb4052c03d5c3df8"
    );
    assert_eq!(
        hx(data.signing_payload(v4).unwrap().digest()),
        "a85c2e2b118698e88db68a8105b794a8cc7cec074e89ef991cb4f5f533819cc2"
    );
    // v3 refuses the arrays, naming the first field it meets.
    assert!(matches!(
        data.signing_payload(TypedDataVersion::V3),
        Err(Eip712Error::ArraysNotSupportedInV3 { .. })
    ));
    assert!(matches!(
        sign_message_payload(
            SignMessageKind::TypedDataV3,
            &v4_arrays_example().to_string()
        ),
        Err(MessageError::TypedData(
            Eip712Error::ArraysNotSupportedInV3 { .. }
        ))
    ));
}

#[test]
fn eip712_encode_type_orders_dependencies() {
    // Dependencies are found through any depth and through arrays, listed once, sorted by name;
    // the primary type comes first even if it would sort later, and self-references are not
    // repeated.
    let data = TypedData::from_value(json!({
        "types": {
            "Zoo": [{"name": "b", "type": "Bee[2]"}, {"name": "a", "type": "Ant"}],
            "Bee": [{"name": "ant", "type": "Ant"}, {"name": "next", "type": "Zoo"}],
            "Ant": [{"name": "legs", "type": "uint8"}, {"name": "kids", "type": "Ant[]"}]
        },
        "primaryType": "Zoo",
        "domain": {},
        "message": {}
    }))
    .unwrap();
    assert_eq!(
        data.encode_type("Zoo").unwrap(),
        "Zoo(Bee[2] b,Ant a)Ant(uint8 legs,Ant[] kids)Bee(Ant ant,Zoo next)"
    );
    assert_eq!(
        data.encode_type("Bee").unwrap(),
        "Bee(Ant ant,Zoo next)Ant(uint8 legs,Ant[] kids)Zoo(Bee[2] b,Ant a)"
    );
    assert_eq!(
        data.encode_type("Ant").unwrap(),
        "Ant(uint8 legs,Ant[] kids)"
    );
    // No EIP712Domain in types: the empty struct.
    assert_eq!(data.encode_type("EIP712Domain").unwrap(), "EIP712Domain()");
    assert_eq!(
        data.domain_separator(TypedDataVersion::V4).unwrap(),
        keccak256(&keccak256(b"EIP712Domain()"))
    );
}

/// Hand-built hashStruct: keccak256(typeHash ‖ words).
fn hash_words(encode_type: &str, words: &[[u8; 32]]) -> [u8; 32] {
    let mut data = keccak256(encode_type.as_bytes()).to_vec();
    for w in words {
        data.extend_from_slice(w);
    }
    keccak256(&data)
}

fn uint_word(v: u8) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[31] = v;
    w
}

#[test]
fn eip712_recursive_arrays_by_hand() {
    let ty = "Ant(uint8 legs,Ant[] kids)";
    let doc = json!({
        "types": {"Ant": [{"name": "legs", "type": "uint8"}, {"name": "kids", "type": "Ant[]"}]},
        "primaryType": "Ant",
        "domain": {},
        "message": {"legs": 6, "kids": [{"legs": "0x4", "kids": []}, {"legs": "2", "kids": []}]}
    });
    let leaf4 = hash_words(ty, &[uint_word(4), keccak256(b"")]);
    let leaf2 = hash_words(ty, &[uint_word(2), keccak256(b"")]);
    let kids = keccak256(&[leaf4, leaf2].concat());
    let root = hash_words(ty, &[uint_word(6), kids]);
    let data = TypedData::from_value(doc.clone()).unwrap();
    assert_eq!(data.message_hash(TypedDataVersion::V4).unwrap(), Some(root));
    let payload = typed_data_payload(&doc.to_string(), TypedDataVersion::V4).unwrap();
    let mut preimage = vec![0x19, 0x01];
    preimage.extend_from_slice(&keccak256(&keccak256(b"EIP712Domain()")));
    preimage.extend_from_slice(&root);
    assert_eq!(payload.preimage(), preimage.as_slice());
    assert_eq!(payload.digest(), keccak256(&preimage));
}

#[test]
fn eip712_null_struct_rules() {
    let mut doc = mail_example();
    doc["message"]["to"] = Value::Null;
    let data = TypedData::from_value(doc.clone()).unwrap();
    // v4: a null struct is 32 zero bytes (eth-sig-util v4).
    let person = "Person(string name,address wallet)";
    let from = hash_words(
        person,
        &[keccak256(b"Cow"), {
            let mut w = [0u8; 32];
            w[12..]
                .copy_from_slice(&hex::decode("cd2a3d9f938e13cd947ec05abc7fe734df8dd826").unwrap());
            w
        }],
    );
    let expected = hash_words(
        &format!("Mail(Person from,Person to,string contents){person}"),
        &[from, [0u8; 32], keccak256(b"Hello, Bob!")],
    );
    assert_eq!(
        data.message_hash(TypedDataVersion::V4).unwrap(),
        Some(expected)
    );
    // A missing struct is the same in v4.
    doc["message"].as_object_mut().unwrap().remove("to");
    let data = TypedData::from_value(doc).unwrap();
    assert_eq!(
        data.message_hash(TypedDataVersion::V4).unwrap(),
        Some(expected)
    );
    // v3 refuses both.
    assert_eq!(
        data.message_hash(TypedDataVersion::V3),
        Err(Eip712Error::MissingValue {
            path: "message.to".into()
        })
    );
    let mut doc = mail_example();
    doc["message"]["to"] = Value::Null;
    assert!(matches!(
        typed_data_payload(&doc.to_string(), TypedDataVersion::V3),
        Err(Eip712Error::InvalidValue { path, .. }) if path == "message.to"
    ));
}

#[test]
fn eip712_domain_as_primary_type() {
    let mut doc = mail_example();
    doc["primaryType"] = json!("EIP712Domain");
    doc.as_object_mut().unwrap().remove("message");
    let payload = typed_data_payload(&doc.to_string(), TypedDataVersion::V4).unwrap();
    let mut preimage = vec![0x19, 0x01];
    preimage.extend_from_slice(&hex::decode(MAIL_DOMAIN_SEPARATOR).unwrap());
    assert_eq!(payload.preimage(), preimage.as_slice());
}

fn v4(doc: &Value) -> Result<[u8; 32], Eip712Error> {
    typed_data_payload(&doc.to_string(), TypedDataVersion::V4).map(|p| p.digest())
}

#[test]
fn eip712_refusals() {
    assert!(matches!(
        typed_data_payload("{", TypedDataVersion::V4),
        Err(Eip712Error::Json(_))
    ));
    assert!(matches!(
        typed_data_payload("[]", TypedDataVersion::V4),
        Err(Eip712Error::Malformed(_))
    ));
    let mut doc = mail_example();
    doc["primaryType"] = json!("Letter");
    assert_eq!(
        v4(&doc),
        Err(Eip712Error::UnknownPrimaryType("Letter".into()))
    );

    let mut doc = mail_example();
    doc["types"]["Mail"][1]["type"] = json!("Persona");
    assert!(matches!(v4(&doc), Err(Eip712Error::InvalidFieldType { field, .. }) if field == "to"));

    let mut doc = mail_example();
    doc["types"]["Mail"][1]["name"] = json!("from");
    assert!(matches!(v4(&doc), Err(Eip712Error::DuplicateField { .. })));

    let mut doc = mail_example();
    doc["types"]["uint256"] = json!([]);
    assert!(matches!(v4(&doc), Err(Eip712Error::InvalidTypeName(_))));

    let mut doc = mail_example();
    doc["types"]["Mail"][1]["name"] = json!("to,x");
    assert!(matches!(
        v4(&doc),
        Err(Eip712Error::InvalidFieldName { .. })
    ));

    // Bad checksum: the path names the value.
    let mut doc = mail_example();
    doc["message"]["from"]["wallet"] = json!("0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826");
    assert!(matches!(
        v4(&doc),
        Err(Eip712Error::InvalidValue { path, ty, .. })
            if path == "message.from.wallet" && ty == "address"
    ));

    // Missing atomic value, in both versions.
    let mut doc = mail_example();
    doc["message"].as_object_mut().unwrap().remove("contents");
    assert_eq!(
        v4(&doc),
        Err(Eip712Error::MissingValue {
            path: "message.contents".into()
        })
    );

    // Domain integer out of range for its type.
    let mut doc = mail_example();
    doc["types"]["EIP712Domain"][2]["type"] = json!("uint8");
    doc["domain"]["chainId"] = json!(256);
    assert!(matches!(
        v4(&doc),
        Err(Eip712Error::InvalidValue { path, .. }) if path == "domain.chainId"
    ));

    // Fixed-size array length.
    let doc = json!({
        "types": {"T": [{"name": "xs", "type": "uint8[2]"}]},
        "primaryType": "T", "domain": {}, "message": {"xs": [1, 2, 3]}
    });
    assert_eq!(
        v4(&doc),
        Err(Eip712Error::ArrayLength {
            path: "message.xs".into(),
            expected: 2,
            actual: 3
        })
    );
    // Element errors carry the index.
    let doc = json!({
        "types": {"T": [{"name": "xs", "type": "uint8[][]"}]},
        "primaryType": "T", "domain": {}, "message": {"xs": [[1], [2, 300]]}
    });
    assert!(matches!(
        v4(&doc),
        Err(Eip712Error::InvalidValue { path, .. }) if path == "message.xs[1][1]"
    ));

    // Too large.
    let big = " ".repeat(mpc_chains::eip712::MAX_TYPED_DATA_LEN + 1);
    assert!(matches!(
        typed_data_payload(&big, TypedDataVersion::V4),
        Err(Eip712Error::TooLarge { .. })
    ));
}

#[test]
fn eip712_atomic_words_by_hand() {
    // Every atomic kind in one struct, checked against hand-built words.
    let ty = "T(address a,bool b,bytes c,bytes4 d,int16 e,uint256 f,string g)";
    let doc = json!({
        "types": {"T": [
            {"name": "a", "type": "address"}, {"name": "b", "type": "bool"},
            {"name": "c", "type": "bytes"}, {"name": "d", "type": "bytes4"},
            {"name": "e", "type": "int16"}, {"name": "f", "type": "uint256"},
            {"name": "g", "type": "string"}
        ]},
        "primaryType": "T", "domain": {},
        "message": {
            "a": "0x00000000000000000000000000000000000000ff", "b": false, "c": "0x0102",
            "d": "0xdeadbeef", "e": -2, "f": "1000000000000000000000", "g": "ü",
            "ignored": "extra keys are not part of the type"
        }
    });
    let mut d = [0u8; 32];
    d[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    let mut e = [0xffu8; 32];
    e[31] = 0xfe;
    // 10^21 = 0x3635c9adc5dea00000
    let mut f = [0u8; 32];
    f[23..].copy_from_slice(&hex::decode("3635c9adc5dea00000").unwrap());
    let expected = hash_words(
        ty,
        &[
            uint_word(0xff),
            uint_word(0),
            keccak256(&[1u8, 2]),
            d,
            e,
            f,
            keccak256("ü".as_bytes()),
        ],
    );
    let data = TypedData::from_value(doc).unwrap();
    assert_eq!(data.encode_type("T").unwrap(), ty);
    assert_eq!(
        data.message_hash(TypedDataVersion::V3).unwrap(),
        Some(expected)
    );
    assert_eq!(
        data.message_hash(TypedDataVersion::V4).unwrap(),
        Some(expected)
    );
}
