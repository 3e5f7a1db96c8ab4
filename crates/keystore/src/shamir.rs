//! Shamir secret sharing in exactly the format of HashiCorp Vault's `shamir` package, as used by
//! the guide's companion tool (`-t T -n N` password generator).
//!
//! * Field: GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1 (0x11B).
//! * Each secret byte gets its own random polynomial of degree t-1 whose constant term is the byte;
//!   the other coefficients are uniform random bytes from the caller's CSPRNG.
//! * x coordinates are distinct and non-zero: a random permutation of 1..=255, first n taken.
//! * A share is `y_1 ‖ … ‖ y_L ‖ x` (L = secret length), printed as standard Base64 with padding.
//! * Combine interpolates at x = 0 (Lagrange), byte by byte; it needs at least two shares of equal
//!   length and rejects duplicate x values. It cannot tell a wrong share set: the caller learns
//!   that from the AEAD check of the wrapped data key.
//!
//! Field arithmetic is branch-free on secret data (no log/exp tables).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand_core::{CryptoRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Longest share accepted (bytes after Base64 decoding).
pub const MAX_SHARE_LEN: usize = 1024;

/// Why a share (or a split request) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShareError {
    /// Not standard Base64 with padding.
    #[error("share is not valid standard Base64 (with '=' padding)")]
    NotBase64,
    /// Decoded share shorter than 2 bytes.
    #[error("share is too short ({0} bytes; a share is at least one secret byte plus the x byte)")]
    TooShort(usize),
    /// Decoded share longer than [`MAX_SHARE_LEN`].
    #[error("share is too long ({0} bytes, max {MAX_SHARE_LEN})")]
    TooLong(usize),
    /// x coordinate 0 would be the secret itself.
    #[error("share has x coordinate 0, which is never valid")]
    ZeroX,
    /// Shares of one set must have one length.
    #[error("share length {found} differs from the first share's length {expected}")]
    LengthMismatch {
        /// Length of the first share.
        expected: usize,
        /// Length of this one.
        found: usize,
    },
    /// Same x coordinate twice.
    #[error("duplicate share (x coordinate {0} was already submitted)")]
    Duplicate(u8),
    /// Combine needs at least two shares.
    #[error("at least 2 shares are needed, got {0}")]
    NotEnoughShares(usize),
    /// More shares than the threshold were submitted.
    #[error("already have {0} shares; the threshold is reached")]
    AlreadyComplete(u8),
    /// Invalid parameters for split.
    #[error("invalid split parameters: {0}")]
    BadParameters(&'static str),
}

/// Multiplication in GF(2^8) mod 0x11B, constant time.
pub(crate) fn gf_mul(a: u8, b: u8) -> u8 {
    let mut a = a;
    let mut b = b;
    let mut r = 0u8;
    for _ in 0..8 {
        r ^= a & 0u8.wrapping_sub(b & 1);
        let hi = a >> 7;
        a = (a << 1) ^ (0x1b & 0u8.wrapping_sub(hi));
        b >>= 1;
    }
    r
}

/// Multiplicative inverse (a^254); inv(0) = 0.
pub(crate) fn gf_inv(a: u8) -> u8 {
    // a^254 = a^(2+4+8+16+32+64+128)
    let mut result = 1u8;
    let mut sq = a;
    for _ in 0..7 {
        sq = gf_mul(sq, sq);
        result = gf_mul(result, sq);
    }
    result
}

fn eval(coeffs: &[u8], x: u8) -> u8 {
    // Horner, highest degree first.
    let mut acc = 0u8;
    for c in coeffs.iter().rev() {
        acc = gf_mul(acc, x) ^ c;
    }
    acc
}

fn uniform_below(rng: &mut (impl RngCore + CryptoRng), bound: u32) -> u32 {
    // Rejection sampling: no modulo bias.
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let v = rng.next_u32();
        if v < zone {
            return v % bound;
        }
    }
}

/// Splits `secret` into `n` shares, any `t` of which rebuild it (Vault `shamir.Split`).
///
/// Returns raw shares (`y-bytes ‖ x`). Requirements: 2 <= t <= n <= 255, secret not empty.
pub fn split(
    secret: &[u8],
    t: u8,
    n: u8,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<Zeroizing<Vec<u8>>>, ShareError> {
    if t < 2 {
        return Err(ShareError::BadParameters("threshold must be at least 2"));
    }
    if n < t {
        return Err(ShareError::BadParameters(
            "parts cannot be less than the threshold",
        ));
    }
    if secret.is_empty() {
        return Err(ShareError::BadParameters("cannot split an empty secret"));
    }
    if secret.len() + 1 > MAX_SHARE_LEN {
        return Err(ShareError::BadParameters("secret too long"));
    }
    // Random permutation of 1..=255 (Fisher-Yates), first n used.
    let mut xs: Vec<u8> = (1..=255u8).collect();
    for i in (1..xs.len()).rev() {
        let j = uniform_below(rng, (i + 1) as u32) as usize;
        xs.swap(i, j);
    }
    let n = usize::from(n);
    let mut out: Vec<Zeroizing<Vec<u8>>> = xs[..n]
        .iter()
        .map(|&x| {
            let mut s = Zeroizing::new(vec![0u8; secret.len() + 1]);
            s[secret.len()] = x;
            s
        })
        .collect();
    let mut coeffs = Zeroizing::new(vec![0u8; usize::from(t)]);
    for (idx, &byte) in secret.iter().enumerate() {
        coeffs[0] = byte;
        rng.fill_bytes(&mut coeffs[1..]);
        for share in out.iter_mut() {
            let x = share[secret.len()];
            share[idx] = eval(&coeffs, x);
        }
    }
    Ok(out)
}

/// Rebuilds the secret from raw shares (Vault `shamir.Combine`): Lagrange interpolation at 0
/// over all shares given. Checks count, equal length and distinct non-zero x.
pub fn combine(shares: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    if shares.len() < 2 {
        return Err(ShareError::NotEnoughShares(shares.len()));
    }
    let len = shares[0].len();
    let mut xs = Vec::with_capacity(shares.len());
    for s in shares {
        check_raw(s)?;
        if s.len() != len {
            return Err(ShareError::LengthMismatch {
                expected: len,
                found: s.len(),
            });
        }
        let x = s[len - 1];
        if xs.contains(&x) {
            return Err(ShareError::Duplicate(x));
        }
        xs.push(x);
    }
    let mut secret = Zeroizing::new(vec![0u8; len - 1]);
    // Lagrange basis at 0 does not depend on the byte index: compute once.
    let basis: Vec<u8> = (0..xs.len())
        .map(|i| {
            let mut b = 1u8;
            for (j, &xj) in xs.iter().enumerate() {
                if i != j {
                    b = gf_mul(b, gf_mul(xj, gf_inv(xs[i] ^ xj)));
                }
            }
            b
        })
        .collect();
    for (idx, out) in secret.iter_mut().enumerate() {
        let mut acc = 0u8;
        for (s, &b) in shares.iter().zip(&basis) {
            acc ^= gf_mul(s[idx], b);
        }
        *out = acc;
    }
    Ok(secret)
}

fn check_raw(s: &[u8]) -> Result<(), ShareError> {
    if s.len() < 2 {
        return Err(ShareError::TooShort(s.len()));
    }
    if s.len() > MAX_SHARE_LEN {
        return Err(ShareError::TooLong(s.len()));
    }
    if s[s.len() - 1] == 0 {
        return Err(ShareError::ZeroX);
    }
    Ok(())
}

/// Encodes a raw share as standard Base64 with padding (the companion tool's text form).
pub fn encode_share(share: &[u8]) -> String {
    STANDARD.encode(share)
}

/// Decodes one share in the companion tool's text form. Surrounding whitespace is ignored;
/// anything else that is not standard padded Base64 of 2..=[`MAX_SHARE_LEN`] bytes with a non-zero
/// final x byte is refused.
pub fn decode_share(text: &str) -> Result<Zeroizing<Vec<u8>>, ShareError> {
    let t = text.trim();
    if t.len() > MAX_SHARE_LEN * 2 {
        return Err(ShareError::TooLong(t.len() / 4 * 3));
    }
    let raw = Zeroizing::new(STANDARD.decode(t).map_err(|_| ShareError::NotBase64)?);
    check_raw(&raw)?;
    Ok(raw)
}

/// Generates a fresh t-of-n share set the way the companion tool does (a random 16-character
/// password from its charset, split with [`split`]), but with a CSPRNG. The password itself is
/// not returned, like the tool never prints it.
pub fn generate_share_set(
    t: u8,
    n: u8,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<String>, ShareError> {
    let pw = crate::password::generate_password(rng);
    let shares = split(pw.as_bytes(), t, n, rng)?;
    Ok(shares.iter().map(|s| encode_share(s)).collect())
}

/// Progress of share collection: `have` of `need` shares are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Shares accepted so far.
    pub have: u8,
    /// Threshold t.
    pub need: u8,
}

/// Accepts shares one call at a time, in any order, until `t` are in. Refuses malformed and
/// duplicate shares without disturbing the ones already held. Held shares are zeroized on drop
/// and on [`ShareCollector::reset`].
pub struct ShareCollector {
    t: u8,
    shares: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for ShareCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareCollector")
            .field("t", &self.t)
            .field("have", &self.shares.len())
            .finish_non_exhaustive()
    }
}

impl ShareCollector {
    /// A collector for threshold `t` (>= 2).
    pub fn new(t: u8) -> Result<Self, ShareError> {
        if t < 2 {
            return Err(ShareError::BadParameters("threshold must be at least 2"));
        }
        Ok(Self {
            t,
            shares: Vec::new(),
        })
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        Progress {
            have: self.shares.len() as u8,
            need: self.t,
        }
    }

    /// Whether `t` shares are in.
    pub fn is_complete(&self) -> bool {
        self.shares.len() >= usize::from(self.t)
    }

    /// Adds one share (text form). On error the collector is unchanged.
    pub fn add(&mut self, text: &str) -> Result<Progress, ShareError> {
        if self.is_complete() {
            return Err(ShareError::AlreadyComplete(self.t));
        }
        let raw = decode_share(text)?;
        if let Some(first) = self.shares.first()
            && first.len() != raw.len()
        {
            return Err(ShareError::LengthMismatch {
                expected: first.len(),
                found: raw.len(),
            });
        }
        let x = raw[raw.len() - 1];
        if self.shares.iter().any(|s| s[s.len() - 1] == x) {
            return Err(ShareError::Duplicate(x));
        }
        self.shares.push(raw);
        Ok(self.progress())
    }

    /// Combines the held shares. Only valid once complete; the collector is emptied either way.
    pub fn combine(&mut self) -> Result<Zeroizing<Vec<u8>>, ShareError> {
        if !self.is_complete() {
            return Err(ShareError::NotEnoughShares(self.shares.len()));
        }
        let refs: Vec<&[u8]> = self.shares.iter().map(|s| s.as_slice()).collect();
        let out = combine(&refs);
        self.reset();
        out
    }

    /// Drops (and zeroizes) all held shares.
    pub fn reset(&mut self) {
        for s in self.shares.iter_mut() {
            s.zeroize();
        }
        self.shares.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn field_matches_fips197_examples() {
        // FIPS-197 §4.2: {57}·{83} = {c1}, {57}·{13} = {fe}; §5.1.1: inverse of {53} is {ca}.
        assert_eq!(gf_mul(0x57, 0x83), 0xc1);
        assert_eq!(gf_mul(0x57, 0x13), 0xfe);
        assert_eq!(gf_inv(0x53), 0xca);
        assert_eq!(gf_mul(0x53, 0xca), 0x01);
        for a in 1..=255u8 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1, "inverse of {a}");
            assert_eq!(gf_mul(a, 1), a);
            assert_eq!(gf_mul(a, 0), 0);
        }
        assert_eq!(gf_inv(0), 0);
    }

    #[test]
    fn hand_computed_vector() {
        // f(x) = 0x42 + 1·x: f(1) = 0x43, f(2) = 0x40 (addition is XOR).
        let a = decode_share("QwE=").unwrap(); // [0x43, 0x01]
        let b = decode_share("QAI=").unwrap(); // [0x40, 0x02]
        assert_eq!(*combine(&[&a, &b]).unwrap(), vec![0x42]);
        assert_eq!(encode_share(&[0x43, 0x01]), "QwE=");
    }

    #[test]
    fn guide_example_share_decodes_to_17_bytes() {
        // The one share string quoted in guide-contracts.md §5 (16-byte password + x).
        let s = decode_share("f6JRDj6BMwfDzuhaDEWeaYw=").unwrap();
        assert_eq!(s.len(), 17);
    }

    #[test]
    fn pinned_split_output() {
        // Regression pin: seeded split must not change (x permutation + coefficient order).
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let shares = split(b"dLdeN@2daJ5segl3", 3, 5, &mut rng).unwrap();
        let text: Vec<String> = shares.iter().map(|s| encode_share(s)).collect();
        insta::assert_json_snapshot!("pinned_split", text);
        let refs: Vec<&[u8]> = shares[1..4].iter().map(|s| s.as_slice()).collect();
        assert_eq!(&*combine(&refs).unwrap(), b"dLdeN@2daJ5segl3");
    }

    #[test]
    fn malformed_refused() {
        assert_eq!(
            decode_share("not base64!").unwrap_err(),
            ShareError::NotBase64
        );
        assert_eq!(decode_share("QQ").unwrap_err(), ShareError::NotBase64); // missing padding
        assert_eq!(decode_share("QQ==").unwrap_err(), ShareError::TooShort(1));
        assert_eq!(decode_share("QwA=").unwrap_err(), ShareError::ZeroX);
        assert_eq!(decode_share("").unwrap_err(), ShareError::TooShort(0));
        assert!(matches!(
            decode_share(&"A".repeat(4000)),
            Err(ShareError::TooLong(_))
        ));
        assert_eq!(decode_share("  QwE=\n").unwrap().len(), 2);
    }

    #[test]
    fn split_parameter_checks() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert!(split(b"x", 1, 3, &mut rng).is_err());
        assert!(split(b"x", 3, 2, &mut rng).is_err());
        assert!(split(b"", 2, 3, &mut rng).is_err());
        assert_eq!(split(b"x", 255, 255, &mut rng).unwrap().len(), 255);
        assert!(combine(&[b"ab".as_slice()]).is_err());
        assert_eq!(
            combine(&[b"ab".as_slice(), b"cb".as_slice()]).unwrap_err(),
            ShareError::Duplicate(b'b')
        );
        assert!(matches!(
            combine(&[b"ab".as_slice(), b"cdx".as_slice()]),
            Err(ShareError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn collector_flow() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let set = generate_share_set(2, 3, &mut rng).unwrap();
        assert!(set.iter().all(|s| s.len() == 24));
        let mut c = ShareCollector::new(2).unwrap();
        assert_eq!(c.add(&set[2]).unwrap(), Progress { have: 1, need: 2 });
        assert_eq!(
            c.add(&set[2]).unwrap_err(),
            ShareError::Duplicate(decode_share(&set[2]).unwrap()[16])
        );
        assert_eq!(
            c.add("QwE=").unwrap_err(),
            ShareError::LengthMismatch {
                expected: 17,
                found: 2
            }
        );
        assert_eq!(c.add("garbage").unwrap_err(), ShareError::NotBase64);
        assert_eq!(c.progress(), Progress { have: 1, need: 2 });
        assert_eq!(c.add(&set[0]).unwrap(), Progress { have: 2, need: 2 });
        assert_eq!(c.add(&set[1]).unwrap_err(), ShareError::AlreadyComplete(2));
        let secret = c.combine().unwrap();
        assert_eq!(secret.len(), 16);
        assert!(crate::password::check_password(std::str::from_utf8(&secret).unwrap()).is_ok());
        assert_eq!(c.progress().have, 0);
        assert!(ShareCollector::new(1).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_t_rebuild_and_t_minus_1_do_not(
            secret in proptest::collection::vec(any::<u8>(), 1..40),
            t in 2u8..6,
            extra in 0u8..4,
            seed in any::<u64>(),
            pick in any::<u64>(),
        ) {
            let n = t + extra;
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let shares = split(&secret, t, n, &mut rng).unwrap();
            // choose a t-subset via a seeded shuffle
            let mut idx: Vec<usize> = (0..usize::from(n)).collect();
            let mut r2 = ChaCha20Rng::seed_from_u64(pick);
            for i in (1..idx.len()).rev() {
                let j = uniform_below(&mut r2, (i + 1) as u32) as usize;
                idx.swap(i, j);
            }
            let subset: Vec<&[u8]> = idx[..usize::from(t)].iter().map(|&i| shares[i].as_slice()).collect();
            prop_assert_eq!(&*combine(&subset).unwrap(), &secret);
            // distinct non-zero xs
            let mut xs: Vec<u8> = shares.iter().map(|s| s[s.len()-1]).collect();
            prop_assert!(xs.iter().all(|&x| x != 0));
            xs.sort_unstable(); xs.dedup();
            prop_assert_eq!(xs.len(), usize::from(n));
            let fewer = &subset[..usize::from(t) - 1];
            if fewer.len() < 2 {
                prop_assert_eq!(combine(fewer).unwrap_err(), ShareError::NotEnoughShares(1));
            } else if secret.len() >= 4 {
                // t-1 shares give a different value (equal with probability 256^-len)
                prop_assert_ne!(&*combine(fewer).unwrap(), &secret);
            }
        }

        #[test]
        fn decode_never_panics(s in "\\PC{0,64}") {
            let _ = decode_share(&s);
        }
    }
}
