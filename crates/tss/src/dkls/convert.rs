//! Crossing between the two RustCrypto generations in the tree, through byte encodings only.
//!
//! DKLs23 computes with k256 0.14; cggmp24, givre and our verifiers with k256 0.13 / generic-ec
//! 0.4. Values cross as SEC1 compressed points (33 bytes) and big-endian scalars (32 bytes),
//! and every crossing is checked on the other side (a point must decode, a share must match its
//! public share), so a mismatch fails loudly instead of producing a wrong key.

use dkls23::utilities::hashes::{point_to_bytes, scalar_to_bytes};
use generic_ec::curves::Secp256k1;
use generic_ec::{NonZero, Point, Scalar, SecretScalar};
use zeroize::Zeroizing;

use super::Curve;
use crate::error::InputError;

fn bad(what: &str) -> InputError {
    InputError::KeyShare(format!("DKLs23 {what} does not convert"))
}

/// A k256 0.14 point as 33-byte compressed SEC1 (refuses the identity).
pub fn point33(p: &k256_dkls::AffinePoint) -> Result<[u8; 33], InputError> {
    let bytes = point_to_bytes::<Curve>(p);
    let out: [u8; 33] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| bad("point (not 33 bytes)"))?;
    if out[0] != 2 && out[0] != 3 {
        return Err(bad("point (the identity)"));
    }
    Ok(out)
}

/// The same point for generic-ec 0.4 (k256 0.13), checked to be on the curve and not the
/// identity.
pub fn to_generic_point(
    p: &k256_dkls::AffinePoint,
) -> Result<NonZero<Point<Secp256k1>>, InputError> {
    let bytes = point33(p)?;
    let point =
        Point::<Secp256k1>::from_bytes(bytes).map_err(|_| bad("point (not on the curve)"))?;
    NonZero::from_point(point).ok_or_else(|| bad("point (the identity)"))
}

/// A secret k256 0.14 scalar as a generic-ec secret scalar; the intermediate bytes are wiped.
pub fn to_generic_secret(
    s: &k256_dkls::Scalar,
) -> Result<NonZero<SecretScalar<Secp256k1>>, InputError> {
    let bytes = Zeroizing::new(scalar_to_bytes::<Curve>(s));
    let secret = SecretScalar::<Secp256k1>::from_be_bytes(&bytes).map_err(|_| bad("scalar"))?;
    NonZero::from_secret_scalar(secret).ok_or_else(|| bad("scalar (zero)"))
}

/// The scalar `i` (a Shamir evaluation point) for generic-ec.
pub fn index_scalar(i: u8) -> Result<NonZero<Scalar<Secp256k1>>, InputError> {
    NonZero::from_scalar(Scalar::from(u64::from(i))).ok_or_else(|| bad("party index (zero)"))
}
