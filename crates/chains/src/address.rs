//! Addresses from public keys: Bitcoin (P2PKH, P2WPKH, P2SH-P2WPKH, P2TR), EVM and ed25519.
//!
//! Inputs are raw public-key bytes as `mpc-tss` produces them: 33-byte compressed secp256k1
//! keys, 32-byte ed25519 keys and 32-byte x-only Taproot keys. Every secp256k1 input is checked
//! to be a point on the curve; an address is never made from bytes that are not a key.

use bech32::{Fe32, Hrp, segwit};
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::{ProjectivePoint, PublicKey, Scalar};

use crate::error::AddressError;
use crate::hash::{hash160, keccak256, tagged_hash};

/// Bitcoin network an address is for.
///
/// Signet shares testnet's prefixes: use [`Network::Testnet`] for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Network {
    /// Mainnet: `1…`, `3…`, `bc1…`.
    Mainnet,
    /// Testnet and signet: `m…`/`n…`, `2…`, `tb1…`.
    Testnet,
    /// Regtest: base58 prefixes as testnet, `bcrt1…`.
    Regtest,
}

impl Network {
    fn p2pkh_version(self) -> u8 {
        match self {
            Network::Mainnet => 0x00,
            Network::Testnet | Network::Regtest => 0x6f,
        }
    }

    fn p2sh_version(self) -> u8 {
        match self {
            Network::Mainnet => 0x05,
            Network::Testnet | Network::Regtest => 0xc4,
        }
    }

    fn hrp(self) -> Hrp {
        match self {
            Network::Mainnet => bech32::hrp::BC,
            Network::Testnet => bech32::hrp::TB,
            Network::Regtest => bech32::hrp::BCRT,
        }
    }
}

/// The public API's `encoding` numbers for Bitcoin addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BtcEncoding {
    /// P2PKH, base58check (`1…`).
    Legacy = 1,
    /// P2WPKH, bech32 witness v0 (`bc1q…`).
    SegwitNative = 2,
    /// P2SH-P2WPKH, base58check (`3…`).
    SegwitNested = 3,
    /// P2TR, bech32m witness v1 (`bc1p…`), BIP86 key-path-only output from the key.
    Taproot = 4,
}

impl BtcEncoding {
    /// The API number of this encoding.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for BtcEncoding {
    type Error = AddressError;

    fn try_from(code: u8) -> Result<Self, AddressError> {
        match code {
            1 => Ok(BtcEncoding::Legacy),
            2 => Ok(BtcEncoding::SegwitNative),
            3 => Ok(BtcEncoding::SegwitNested),
            4 => Ok(BtcEncoding::Taproot),
            other => Err(AddressError::UnknownEncoding(other)),
        }
    }
}

/// Parses a compressed (33-byte) secp256k1 key and checks that it is a curve point.
fn compressed_secp256k1(pubkey: &[u8]) -> Result<PublicKey, AddressError> {
    if pubkey.len() != 33 {
        return Err(AddressError::KeyLength {
            expected: "33 (compressed secp256k1)",
            actual: pubkey.len(),
        });
    }
    // Only the SEC1 compressed tags: the curve library would also take the 33-byte "compact"
    // tag 0x05, which is no Bitcoin key encoding.
    if !matches!(pubkey.first(), Some(0x02 | 0x03)) {
        return Err(AddressError::InvalidKey);
    }
    PublicKey::from_sec1_bytes(pubkey).map_err(|_| AddressError::InvalidKey)
}

/// Lifts a BIP340 x-only key to the curve point with even y.
fn lift_x(xonly: &[u8; 32]) -> Result<PublicKey, AddressError> {
    let mut sec1 = [0u8; 33];
    sec1[0] = 0x02;
    sec1[1..].copy_from_slice(xonly);
    PublicKey::from_sec1_bytes(&sec1).map_err(|_| AddressError::InvalidKey)
}

fn x_only(point: &PublicKey) -> Result<[u8; 32], AddressError> {
    let encoded = point.to_encoded_point(true);
    encoded
        .x()
        .map(|x| {
            let mut out = [0u8; 32];
            out.copy_from_slice(x);
            out
        })
        .ok_or(AddressError::InvalidKey)
}

fn base58check(version: u8, payload: &[u8; 20]) -> String {
    let mut data = [0u8; 21];
    data[0] = version;
    data[1..].copy_from_slice(payload);
    bs58::encode(data).with_check().into_string()
}

fn segwit_address(network: Network, version: Fe32, program: &[u8]) -> Result<String, AddressError> {
    segwit::encode(network.hrp(), version, program)
        .map_err(|e| AddressError::Encoding(e.to_string()))
}

/// P2PKH (legacy) address of a compressed secp256k1 key.
pub fn p2pkh_address(pubkey33: &[u8], network: Network) -> Result<String, AddressError> {
    compressed_secp256k1(pubkey33)?;
    Ok(base58check(network.p2pkh_version(), &hash160(pubkey33)))
}

/// P2WPKH (native segwit, witness v0) address of a compressed secp256k1 key.
pub fn p2wpkh_address(pubkey33: &[u8], network: Network) -> Result<String, AddressError> {
    compressed_secp256k1(pubkey33)?;
    segwit_address(network, segwit::VERSION_0, &hash160(pubkey33))
}

/// P2SH-P2WPKH (nested segwit) address of a compressed secp256k1 key: the P2SH address of the
/// redeem script `OP_0 <20-byte key hash>`.
pub fn p2sh_p2wpkh_address(pubkey33: &[u8], network: Network) -> Result<String, AddressError> {
    compressed_secp256k1(pubkey33)?;
    let mut redeem_script = [0u8; 22];
    redeem_script[0] = 0x00; // OP_0
    redeem_script[1] = 0x14; // push 20 bytes
    redeem_script[2..].copy_from_slice(&hash160(pubkey33));
    Ok(base58check(
        network.p2sh_version(),
        &hash160(&redeem_script),
    ))
}

/// BIP341 output key of an internal key: `Q = P + H_TapTweak(x(P) ‖ script_root)·G`, where `P`
/// is the even-y lift of the internal key's x coordinate and the script root is omitted when
/// there is none (BIP86). Returns the x-only output key.
///
/// `internal_key` is a 33-byte compressed key (its parity is ignored, as BIP341 prescribes) or
/// a 32-byte x-only key.
pub fn taproot_output_key(
    internal_key: &[u8],
    script_root: Option<[u8; 32]>,
) -> Result<[u8; 32], AddressError> {
    let internal_x: [u8; 32] = match internal_key.len() {
        33 => x_only(&compressed_secp256k1(internal_key)?)?,
        32 => {
            let mut x = [0u8; 32];
            x.copy_from_slice(internal_key);
            x
        }
        actual => {
            return Err(AddressError::KeyLength {
                expected: "33 (compressed secp256k1) or 32 (x-only)",
                actual,
            });
        }
    };
    let internal = lift_x(&internal_x)?;
    let tweak = match &script_root {
        Some(root) => tagged_hash("TapTweak", &[&internal_x, root]),
        None => tagged_hash("TapTweak", &[&internal_x]),
    };
    let tweak: Option<Scalar> = Scalar::from_repr(tweak.into()).into();
    let tweak = tweak.ok_or(AddressError::TweakOutOfRange)?;
    let output = internal.to_projective() + ProjectivePoint::GENERATOR * tweak;
    let output =
        PublicKey::from_affine(output.to_affine()).map_err(|_| AddressError::InvalidKey)?;
    x_only(&output)
}

/// P2TR address of an internal key, computing the BIP341 tweak (see [`taproot_output_key`]).
/// With `script_root: None` this is the BIP86 key-path-only address.
pub fn taproot_address_from_internal_key(
    internal_key: &[u8],
    script_root: Option<[u8; 32]>,
    network: Network,
) -> Result<String, AddressError> {
    let output = taproot_output_key(internal_key, script_root)?;
    taproot_address_from_output_key(&output, network)
}

/// P2TR address of an already tweaked x-only output key (checked to be a valid x coordinate).
pub fn taproot_address_from_output_key(
    output_key: &[u8],
    network: Network,
) -> Result<String, AddressError> {
    let xonly: [u8; 32] = output_key.try_into().map_err(|_| AddressError::KeyLength {
        expected: "32 (x-only)",
        actual: output_key.len(),
    })?;
    lift_x(&xonly)?;
    segwit_address(network, segwit::VERSION_1, &xonly)
}

/// Bitcoin address of a compressed secp256k1 key in the API's `encoding`. Taproot is the BIP86
/// address (no script tree) with the key as internal key.
pub fn bitcoin_address(
    pubkey33: &[u8],
    encoding: BtcEncoding,
    network: Network,
) -> Result<String, AddressError> {
    match encoding {
        BtcEncoding::Legacy => p2pkh_address(pubkey33, network),
        BtcEncoding::SegwitNative => p2wpkh_address(pubkey33, network),
        BtcEncoding::SegwitNested => p2sh_p2wpkh_address(pubkey33, network),
        BtcEncoding::Taproot => {
            compressed_secp256k1(pubkey33)?;
            taproot_address_from_internal_key(pubkey33, None, network)
        }
    }
}

/// EVM address bytes of a secp256k1 key: the last 20 bytes of Keccak-256 of the uncompressed
/// point without its `0x04` prefix. Accepts a compressed (33-byte) or uncompressed (65-byte)
/// key.
pub fn evm_address_bytes(pubkey: &[u8]) -> Result<[u8; 20], AddressError> {
    let key = match pubkey.len() {
        33 => compressed_secp256k1(pubkey)?,
        65 if pubkey.first() == Some(&0x04) => {
            PublicKey::from_sec1_bytes(pubkey).map_err(|_| AddressError::InvalidKey)?
        }
        65 => return Err(AddressError::InvalidKey),
        actual => {
            return Err(AddressError::KeyLength {
                expected: "33 (compressed) or 65 (uncompressed secp256k1)",
                actual,
            });
        }
    };
    let uncompressed = key.to_encoded_point(false);
    let xy = uncompressed
        .as_bytes()
        .get(1..)
        .ok_or(AddressError::InvalidKey)?;
    let hash = keccak256(xy);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    Ok(out)
}

/// EIP-55 checksummed EVM address (`0x…`) of a secp256k1 key (see [`evm_address_bytes`]).
pub fn evm_address(pubkey: &[u8]) -> Result<String, AddressError> {
    Ok(to_checksum_address(&evm_address_bytes(pubkey)?))
}

/// EIP-55 mixed-case checksum encoding of a 20-byte address, with `0x` prefix.
pub fn to_checksum_address(address: &[u8; 20]) -> String {
    let lower = hex::encode(address);
    let hash = keccak256(lower.as_bytes());
    let mut out = String::with_capacity(42);
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        if c.is_ascii_alphabetic() && nibble >= 8 {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses a `0x`-prefixed 40-hex-digit EVM address. All-lowercase and all-uppercase forms carry
/// no checksum and are accepted; a mixed-case form must be a correct EIP-55 checksum.
pub fn parse_evm_address(text: &str) -> Result<[u8; 20], AddressError> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| AddressError::InvalidEvmAddress("missing 0x prefix".into()))?;
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AddressError::InvalidEvmAddress(
            "expected 40 hex digits after 0x".into(),
        ));
    }
    let mut bytes = [0u8; 20];
    hex::decode_to_slice(digits, &mut bytes)
        .map_err(|e| AddressError::InvalidEvmAddress(e.to_string()))?;
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper && to_checksum_address(&bytes)[2..] != *digits {
        return Err(AddressError::InvalidEvmAddress(
            "mixed-case address with a wrong EIP-55 checksum".into(),
        ));
    }
    Ok(bytes)
}

fn ed25519_key(pubkey: &[u8]) -> Result<&[u8; 32], AddressError> {
    pubkey.try_into().map_err(|_| AddressError::KeyLength {
        expected: "32 (ed25519)",
        actual: pubkey.len(),
    })
}

/// Lowercase hex of a 32-byte ed25519 public key (no prefix).
pub fn ed25519_public_key_hex(pubkey: &[u8]) -> Result<String, AddressError> {
    Ok(hex::encode(ed25519_key(pubkey)?))
}

/// Solana-style address of a 32-byte ed25519 public key: base58 (Bitcoin alphabet, no
/// checksum) of the key bytes. Only the length is checked: Solana addresses include
/// off-curve program-derived addresses, so being a curve point is not part of the format.
pub fn solana_address(pubkey: &[u8]) -> Result<String, AddressError> {
    Ok(bs58::encode(ed25519_key(pubkey)?).into_string())
}
