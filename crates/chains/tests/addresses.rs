//! Address vectors from the public specifications (sources beside each vector).

use mpc_chains::AddressError;
use mpc_chains::address::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// The secp256k1 generator G = public key of private key 1 (compressed).
const G: &str = "0279BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798";

#[test]
fn bip173_p2wpkh_example() {
    // BIP-173, "Examples": mainnet and testnet P2WPKH of G.
    assert_eq!(
        p2wpkh_address(&h(G), Network::Mainnet).unwrap(),
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    );
    assert_eq!(
        p2wpkh_address(&h(G), Network::Testnet).unwrap(),
        "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
    );
    // The decoded program is HASH160 of the key (independent check through the decoder).
    let (hrp, version, program) =
        bech32::segwit::decode("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4").unwrap();
    assert_eq!(hrp, bech32::hrp::BC);
    assert_eq!(version, bech32::segwit::VERSION_0);
    assert_eq!(program, mpc_chains::hash::hash160(&h(G)).to_vec());
}

#[test]
fn p2pkh_and_nested_of_generator() {
    // Well-known addresses of private key 1 (compressed key).
    assert_eq!(
        p2pkh_address(&h(G), Network::Mainnet).unwrap(),
        "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"
    );
    assert_eq!(
        p2sh_p2wpkh_address(&h(G), Network::Mainnet).unwrap(),
        "3JvL6Ymt8MVWiCNHC7oWU6nLeHNJKLZGLN"
    );
    // Round trip through base58check: version byte and HASH160 of the key.
    let decoded = bs58::decode("1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH")
        .with_check(None)
        .into_vec()
        .unwrap();
    assert_eq!(decoded[0], 0x00);
    assert_eq!(&decoded[1..], &mpc_chains::hash::hash160(&h(G)));

    // Testnet prefixes: decode and compare version bytes and payloads with mainnet.
    let t_pkh = p2pkh_address(&h(G), Network::Testnet).unwrap();
    let t_pkh = bs58::decode(t_pkh).with_check(None).into_vec().unwrap();
    assert_eq!(t_pkh[0], 0x6f);
    assert_eq!(&t_pkh[1..], &decoded[1..]);
    let m_sh = bs58::decode("3JvL6Ymt8MVWiCNHC7oWU6nLeHNJKLZGLN")
        .with_check(None)
        .into_vec()
        .unwrap();
    let t_sh = p2sh_p2wpkh_address(&h(G), Network::Regtest).unwrap();
    assert!(t_sh.starts_with('2'));
    let t_sh = bs58::decode(t_sh).with_check(None).into_vec().unwrap();
    assert_eq!((m_sh[0], t_sh[0]), (0x05, 0xc4));
    assert_eq!(&t_sh[1..], &m_sh[1..]);
}

#[test]
fn encoding_numbers_dispatch() {
    let key = h(G);
    let expected = [
        (1, "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"),
        (2, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        (3, "3JvL6Ymt8MVWiCNHC7oWU6nLeHNJKLZGLN"),
    ];
    for (code, address) in expected {
        let encoding = BtcEncoding::try_from(code).unwrap();
        assert_eq!(encoding.code(), code);
        assert_eq!(
            bitcoin_address(&key, encoding, Network::Mainnet).unwrap(),
            address
        );
    }
    let taproot = bitcoin_address(&key, BtcEncoding::Taproot, Network::Mainnet).unwrap();
    assert_eq!(
        taproot,
        taproot_address_from_internal_key(&key[1..], None, Network::Mainnet).unwrap()
    );
    assert!(taproot.starts_with("bc1p"));
    assert_eq!(
        BtcEncoding::try_from(0),
        Err(AddressError::UnknownEncoding(0))
    );
    assert_eq!(
        BtcEncoding::try_from(5),
        Err(AddressError::UnknownEncoding(5))
    );
}

#[test]
fn bip86_first_receiving_address() {
    // BIP-86 test vectors, account 0, first receiving address (m/86'/0'/0'/0/0).
    let internal = h("cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115");
    let output = h("a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c");
    let address = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr";
    assert_eq!(
        taproot_output_key(&internal, None).unwrap().to_vec(),
        output
    );
    assert_eq!(
        taproot_address_from_internal_key(&internal, None, Network::Mainnet).unwrap(),
        address
    );
    assert_eq!(
        taproot_address_from_output_key(&output, Network::Mainnet).unwrap(),
        address
    );
    // The 33-byte form of the internal key gives the same output whatever its parity byte.
    for parity in [0x02u8, 0x03] {
        let mut compressed = vec![parity];
        compressed.extend_from_slice(&internal);
        assert_eq!(
            taproot_address_from_internal_key(&compressed, None, Network::Mainnet).unwrap(),
            address
        );
    }
}

#[test]
fn bip341_wallet_vectors() {
    // BIP-341 wallet-test-vectors.json, "scriptPubKey": no script tree, and one leaf.
    let internal = h("d6889cb081036e0faefa3a35157ad71086b123b2b144b649798b494c300a961d");
    assert_eq!(
        hex::encode(taproot_output_key(&internal, None).unwrap()),
        "53a1f6e454df1aa2776a2814a721372d6258050de330b3c6d10ee8f4e0dda343"
    );
    assert_eq!(
        taproot_address_from_internal_key(&internal, None, Network::Mainnet).unwrap(),
        "bc1p2wsldez5mud2yam29q22wgfh9439spgduvct83k3pm50fcxa5dps59h4z5"
    );

    let internal = h("187791b6f712a8ea41c8ecdd0ee77fab3e85263b37e1ec18a3651926b3a6cf27");
    let root: [u8; 32] = h("5b75adecf53548f3ec6ad7d78383bf84cc57b55a3127c72b9a2481752dd88b21")
        .try_into()
        .unwrap();
    assert_eq!(
        hex::encode(taproot_output_key(&internal, Some(root)).unwrap()),
        "147c9c57132f6e7ecddba9800bb0c4449251c92a1e60371ee77557b6620f3ea3"
    );
    assert_eq!(
        taproot_address_from_internal_key(&internal, Some(root), Network::Mainnet).unwrap(),
        "bc1pz37fc4cn9ah8anwm4xqqhvxygjf9rjf2resrw8h8w4tmvcs0863sa2e586"
    );
}

#[test]
fn taproot_testnet_hrp() {
    let output = h("a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c");
    let address = taproot_address_from_output_key(&output, Network::Testnet).unwrap();
    let (hrp, version, program) = bech32::segwit::decode(&address).unwrap();
    assert_eq!(hrp, bech32::hrp::TB);
    assert_eq!(version, bech32::segwit::VERSION_1);
    assert_eq!(program, output);
    assert!(
        taproot_address_from_output_key(&output, Network::Regtest)
            .unwrap()
            .starts_with("bcrt1p")
    );
}

#[test]
fn eip55_examples() {
    // EIP-55 "Test Cases": all caps, all lower, normal.
    for address in [
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ] {
        let bytes = parse_evm_address(address).unwrap();
        assert_eq!(to_checksum_address(&bytes), address);
        let lower = address.to_ascii_lowercase();
        assert_eq!(parse_evm_address(&lower).unwrap(), bytes);
    }
    // One flipped case letter breaks the checksum.
    assert!(matches!(
        parse_evm_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
        Err(AddressError::InvalidEvmAddress(_))
    ));
    assert!(parse_evm_address("5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed").is_err());
    assert!(parse_evm_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA").is_err());
    assert!(parse_evm_address("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg").is_err());
}

#[test]
fn evm_address_of_private_key_one() {
    // Private key 1: widely published address of the generator point.
    assert_eq!(
        evm_address(&h(G)).unwrap(),
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    );
    // Same from the uncompressed point.
    let uncompressed = h(concat!(
        "04",
        "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798",
        "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8"
    ));
    assert_eq!(
        evm_address(&uncompressed).unwrap(),
        "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
    );
    // Private key 2 (2G).
    let two_g = h("02C6047F9441ED7D6D3045406E95C07CD85C778E4B8CEF3CA7ABAC09B95C709EE5");
    assert_eq!(
        evm_address(&two_g).unwrap(),
        "0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF"
    );
}

#[test]
fn ed25519_and_solana() {
    // The Solana system program id is base58 of 32 zero bytes.
    assert_eq!(
        solana_address(&[0u8; 32]).unwrap(),
        "11111111111111111111111111111111"
    );
    let key = h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
    assert_eq!(
        ed25519_public_key_hex(&key).unwrap(),
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    let address = solana_address(&key).unwrap();
    assert_eq!(bs58::decode(&address).into_vec().unwrap(), key);
    assert!(matches!(
        solana_address(&[0u8; 33]),
        Err(AddressError::KeyLength { actual: 33, .. })
    ));
}

#[test]
fn bad_keys_are_refused() {
    // Wrong lengths.
    assert!(matches!(
        p2pkh_address(&h(G)[..32], Network::Mainnet),
        Err(AddressError::KeyLength { actual: 32, .. })
    ));
    assert!(matches!(
        evm_address(&[2u8; 64]),
        Err(AddressError::KeyLength { actual: 64, .. })
    ));
    assert!(matches!(
        taproot_address_from_output_key(&[1u8; 33], Network::Mainnet),
        Err(AddressError::KeyLength { actual: 33, .. })
    ));
    // x = p (not a field element) and x = 5 (x^3 + 7 = 132 is not a square mod p; checked by the
    // curve library, as the test asserts).
    let mut not_field = vec![0x02];
    not_field.extend(h(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F",
    ));
    for encoding in 1..=4u8 {
        let encoding = BtcEncoding::try_from(encoding).unwrap();
        assert_eq!(
            bitcoin_address(&not_field, encoding, Network::Mainnet),
            Err(AddressError::InvalidKey)
        );
    }
    assert_eq!(evm_address(&not_field), Err(AddressError::InvalidKey));
    assert_eq!(
        taproot_address_from_output_key(&not_field[1..], Network::Mainnet),
        Err(AddressError::InvalidKey)
    );
    let mut bad_prefix = h(G);
    bad_prefix[0] = 0x05;
    assert_eq!(
        p2wpkh_address(&bad_prefix, Network::Mainnet),
        Err(AddressError::InvalidKey)
    );
    assert_eq!(evm_address(&bad_prefix), Err(AddressError::InvalidKey));
    // An uncompressed key must carry the 0x04 tag (not hybrid 0x06/0x07).
    let mut hybrid = h(concat!(
        "04",
        "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798",
        "483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8"
    ));
    hybrid[0] = 0x06;
    assert_eq!(evm_address(&hybrid), Err(AddressError::InvalidKey));
}
