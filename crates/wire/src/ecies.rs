//! Signature-result encryption: go-ethereum's `crypto/ecies` on P-256 (`ECIES_AES128_SHA256`,
//! empty shared-info parameters), the format the reference callback server decrypts.
//!
//! ```text
//! r, R = r·G            ephemeral key pair
//! z    = x(r·Pub)       32 bytes, big-endian
//! K    = SHA256(00000001 ‖ z)          (NIST concatenation KDF, one block)
//! Ke   = K[0..16]       AES-128 key
//! Km   = SHA256(K[16..32])             HMAC key
//! c    = AES-128-CTR(Ke, IV, m)        IV 16 random bytes, 128-bit big-endian counter
//! tag  = HMAC-SHA256(Km, IV ‖ c)
//! out  = R (65 bytes, uncompressed) ‖ IV ‖ c ‖ tag,   transported as lowercase hex
//! ```
//!
//! Only the composition is written here; every primitive comes from RustCrypto.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{NonZeroScalar, PublicKey, SecretKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
type HmacSha256 = Hmac<Sha256>;

/// Length of the uncompressed ephemeral public key.
pub const EPHEMERAL_KEY_LEN: usize = 65;
/// Length of the CTR IV.
pub const IV_LEN: usize = 16;
/// Length of the HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// Shortest valid ciphertext (an empty message).
pub const MIN_CIPHERTEXT_LEN: usize = EPHEMERAL_KEY_LEN + IV_LEN + TAG_LEN;

/// Why a ciphertext was refused. Each refusal is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EciesError {
    /// The hex transport form is not hex.
    #[error("ciphertext is not hex")]
    NotHex,
    /// Shorter than ephemeral key + IV + tag.
    #[error("ciphertext is {len} bytes, at least {MIN_CIPHERTEXT_LEN} needed")]
    TooShort {
        /// Its length.
        len: usize,
    },
    /// The ephemeral key is in compressed form (prefix 02/03); the format fixes it to 65
    /// uncompressed bytes.
    #[error(
        "ephemeral public key is compressed (prefix {0:#04x}); only uncompressed keys are valid"
    )]
    CompressedEphemeralKey(u8),
    /// The ephemeral key does not start with 04.
    #[error("ephemeral public key has prefix {0:#04x}, expected 0x04")]
    BadEphemeralKeyPrefix(u8),
    /// The ephemeral key's coordinates are not a point of P-256.
    #[error("ephemeral public key is not a point on P-256")]
    PointNotOnCurve,
    /// The HMAC tag does not match: wrong key, or the ciphertext was altered.
    #[error("authentication tag mismatch (wrong key or altered ciphertext)")]
    BadTag,
}

/// Encrypts `msg` to `recipient`, returning `R ‖ IV ‖ c ‖ tag`.
pub fn encrypt(recipient: &PublicKey, msg: &[u8], rng: &mut impl CryptoRngCore) -> Vec<u8> {
    let ephemeral = NonZeroScalar::random(&mut *rng);
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv);
    encrypt_with(recipient, msg, &ephemeral, &iv)
}

/// [`encrypt`] as lowercase hex, the transport form.
pub fn encrypt_hex(recipient: &PublicKey, msg: &[u8], rng: &mut impl CryptoRngCore) -> String {
    hex::encode(encrypt(recipient, msg, rng))
}

/// The deterministic core of [`encrypt`]: ephemeral scalar and IV given. Not public, because
/// reusing either breaks the scheme; tests use it for fixed vectors.
pub(crate) fn encrypt_with(
    recipient: &PublicKey,
    msg: &[u8],
    ephemeral: &NonZeroScalar,
    iv: &[u8; IV_LEN],
) -> Vec<u8> {
    let ephemeral_public = PublicKey::from_secret_scalar(ephemeral);
    let shared = p256::ecdh::diffie_hellman(ephemeral, recipient.as_affine());
    let keys = DerivedKeys::new(&shared.raw_secret_bytes()[..]);

    let mut out = Vec::with_capacity(MIN_CIPHERTEXT_LEN + msg.len());
    out.extend_from_slice(ephemeral_public.to_encoded_point(false).as_bytes());
    out.extend_from_slice(iv);
    let body_start = out.len();
    out.extend_from_slice(msg);
    let mut cipher = Aes128Ctr::new(keys.ke().into(), iv.into());
    cipher.apply_keystream(&mut out[body_start..]);
    let tag = keys.mac(&out[EPHEMERAL_KEY_LEN..]).finalize().into_bytes();
    out.extend_from_slice(&tag);
    out
}

/// Decrypts `R ‖ IV ‖ c ‖ tag`. The tag is checked (in constant time) before anything is
/// decrypted.
pub fn decrypt(recipient: &SecretKey, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, EciesError> {
    if ciphertext.len() < MIN_CIPHERTEXT_LEN {
        return Err(EciesError::TooShort {
            len: ciphertext.len(),
        });
    }
    let (ephemeral, rest) = ciphertext.split_at(EPHEMERAL_KEY_LEN);
    let (em, tag) = rest.split_at(rest.len() - TAG_LEN);
    match ephemeral[0] {
        0x04 => {}
        p @ (0x02 | 0x03) => return Err(EciesError::CompressedEphemeralKey(p)),
        p => return Err(EciesError::BadEphemeralKeyPrefix(p)),
    }
    let ephemeral =
        PublicKey::from_sec1_bytes(ephemeral).map_err(|_| EciesError::PointNotOnCurve)?;
    let shared = p256::ecdh::diffie_hellman(recipient.to_nonzero_scalar(), ephemeral.as_affine());
    let keys = DerivedKeys::new(&shared.raw_secret_bytes()[..]);
    keys.mac(em)
        .verify_slice(tag)
        .map_err(|_| EciesError::BadTag)?;

    let (iv, body) = em.split_at(IV_LEN);
    let mut plain = Zeroizing::new(body.to_vec());
    let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| EciesError::TooShort {
        len: ciphertext.len(),
    })?;
    let mut cipher = Aes128Ctr::new(keys.ke().into(), (&iv).into());
    cipher.apply_keystream(&mut plain);
    Ok(plain)
}

/// [`decrypt`] of the hex transport form (either letter case; surrounding whitespace and a
/// `0x` prefix are not accepted).
pub fn decrypt_hex(
    recipient: &SecretKey,
    ciphertext_hex: &str,
) -> Result<Zeroizing<Vec<u8>>, EciesError> {
    let bytes = hex::decode(ciphertext_hex).map_err(|_| EciesError::NotHex)?;
    decrypt(recipient, &bytes)
}

/// `K = SHA256(be32(1) ‖ z)`, split into the AES key and the HMAC key. Zeroized on drop.
struct DerivedKeys {
    k: Zeroizing<[u8; 32]>,
    km: Zeroizing<[u8; 32]>,
}

impl DerivedKeys {
    fn new(z: &[u8]) -> Self {
        let k = Zeroizing::new(<[u8; 32]>::from(concat_kdf_block(z)));
        let km = Zeroizing::new(<[u8; 32]>::from(Sha256::digest(&k[16..])));
        DerivedKeys { k, km }
    }

    fn ke(&self) -> &[u8; 16] {
        // The first half of a 32-byte array; the conversion cannot fail.
        self.k.first_chunk::<16>().unwrap_or(&[0; 16])
    }

    fn mac(&self, data: &[u8]) -> HmacSha256 {
        // HMAC (RFC 2104) zero-pads a key shorter than the hash's 64-byte block to a full
        // block, so keying with the padded block is HMAC under Km itself, without a fallible
        // variable-length constructor.
        let mut block = Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(&self.km[..]);
        let mut mac = <HmacSha256 as KeyInit>::new(&(*block).into());
        mac.update(data);
        mac
    }
}

/// First (and, for a 32-byte output, only) block of NIST SP 800-56 concatenation KDF with
/// SHA-256 and empty shared info.
fn concat_kdf_block(z: &[u8]) -> sha2::digest::Output<Sha256> {
    let mut h = Sha256::new();
    h.update(1u32.to_be_bytes());
    h.update(z);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    const E2E_VECTOR: &str = "04d65a93977caa3d1b081852ff57a79e465f1660577304baead505dd3a48589cf350185e895372df6221ea3a137557e473fddb6755f05bd507c3c533fce9c91285000102030405060708090a0b0c0d0e0fb97ab9f87ae4758e6bc0a33a0eb474cdb80762c27d900e4e9bf3b645b88078887310fa58";

    fn recipient() -> SecretKey {
        SecretKey::from_bytes(&[0x11; 32].into()).unwrap()
    }

    fn iv() -> [u8; 16] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn kdf_vector() {
        // go-ethereum ecies_test.go: concatKDF(sha256, "input", nil, 32).
        assert_eq!(
            hex::encode(concat_kdf_block(b"input")),
            "858b192fa2ed4395e2bf88dd8d5770d67dc284ee539f12da8bceaa45d06ebae0"
        );
    }

    #[test]
    fn end_to_end_vector() {
        let d = recipient();
        let k = NonZeroScalar::try_from(&[0x22u8; 32][..]).unwrap();
        let ct = encrypt_with(
            &d.public_key(),
            &hex::decode("deadbeef").unwrap(),
            &k,
            &iv(),
        );
        assert_eq!(hex::encode(&ct), E2E_VECTOR);
        assert_eq!(ct.len(), MIN_CIPHERTEXT_LEN + 4);
        assert_eq!(
            decrypt_hex(&d, E2E_VECTOR).unwrap().as_slice(),
            hex::decode("deadbeef").unwrap()
        );
        assert_eq!(
            decrypt_hex(&d, &E2E_VECTOR.to_uppercase())
                .unwrap()
                .as_slice(),
            hex::decode("deadbeef").unwrap()
        );
    }

    #[test]
    fn ctr_counter_carries_across_all_128_bits() {
        // IV ff..ff: the second block's counter wraps to 00..00, as Go's cipher.NewCTR does.
        let d = recipient();
        let k = NonZeroScalar::try_from(&[0x22u8; 32][..]).unwrap();
        let msg = [0u8; 48];
        let ct = encrypt_with(&d.public_key(), &msg, &k, &[0xff; 16]);
        let keys = {
            let shared = p256::ecdh::diffie_hellman(&k, d.public_key().as_affine());
            DerivedKeys::new(&shared.raw_secret_bytes()[..])
        };
        let cipher = <aes::Aes128 as aes::cipher::KeyInit>::new(keys.ke().into());
        let mut block1 = aes::Block::from([0u8; 16]);
        aes::cipher::BlockEncrypt::encrypt_block(&cipher, &mut block1);
        let c = &ct[EPHEMERAL_KEY_LEN + IV_LEN..ct.len() - TAG_LEN];
        assert_eq!(&c[16..32], &block1[..]);
        assert_eq!(decrypt(&d, &ct).unwrap().as_slice(), &msg[..]);
    }

    #[test]
    fn round_trips() {
        let d = SecretKey::random(&mut OsRng);
        for len in [0usize, 1, 15, 16, 17, 64, 65, 1000] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let ct = encrypt_hex(&d.public_key(), &msg, &mut OsRng);
            assert_eq!(ct.len(), 2 * (MIN_CIPHERTEXT_LEN + len));
            assert_eq!(decrypt_hex(&d, &ct).unwrap().as_slice(), &msg[..]);
        }
        // Fresh randomness each time.
        let a = encrypt(&d.public_key(), b"x", &mut OsRng);
        let b = encrypt(&d.public_key(), b"x", &mut OsRng);
        assert_ne!(a, b);
    }

    #[test]
    fn refusals() {
        let d = recipient();
        let good = hex::decode(E2E_VECTOR).unwrap();

        assert_eq!(decrypt_hex(&d, "zz"), Err(EciesError::NotHex));
        assert_eq!(decrypt_hex(&d, " 04"), Err(EciesError::NotHex));
        assert_eq!(decrypt(&d, &[]), Err(EciesError::TooShort { len: 0 }));
        assert_eq!(
            decrypt(&d, &good[..MIN_CIPHERTEXT_LEN - 1]),
            Err(EciesError::TooShort {
                len: MIN_CIPHERTEXT_LEN - 1
            })
        );

        // The same point in compressed form, padded to the fixed 65 bytes.
        let eph = PublicKey::from_sec1_bytes(&good[..65]).unwrap();
        let compressed = eph.to_encoded_point(true);
        let mut c = compressed.as_bytes().to_vec();
        c.resize(65, 0);
        c.extend_from_slice(&good[65..]);
        assert!(matches!(
            decrypt(&d, &c),
            Err(EciesError::CompressedEphemeralKey(0x02 | 0x03))
        ));

        let mut prefix = good.clone();
        prefix[0] = 0x05;
        assert_eq!(
            decrypt(&d, &prefix),
            Err(EciesError::BadEphemeralKeyPrefix(0x05))
        );
        prefix[0] = 0x00;
        assert_eq!(
            decrypt(&d, &prefix),
            Err(EciesError::BadEphemeralKeyPrefix(0x00))
        );

        let mut off_curve = good.clone();
        off_curve[64] ^= 1; // y changed: not on the curve any more
        assert_eq!(decrypt(&d, &off_curve), Err(EciesError::PointNotOnCurve));
        let mut big_x = good.clone();
        big_x[1..33].fill(0xff); // x >= p
        assert_eq!(decrypt(&d, &big_x), Err(EciesError::PointNotOnCurve));

        for i in [65, 80, 81, good.len() - 33, good.len() - 1] {
            let mut t = good.clone();
            t[i] ^= 0x80;
            assert_eq!(decrypt(&d, &t), Err(EciesError::BadTag), "byte {i}");
        }
        let other = SecretKey::from_bytes(&[0x12; 32].into()).unwrap();
        assert_eq!(decrypt(&other, &good), Err(EciesError::BadTag));
        let mut truncated = good.clone();
        truncated.pop();
        assert_eq!(decrypt(&d, &truncated), Err(EciesError::BadTag));
    }
}
