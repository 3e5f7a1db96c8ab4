//! Plain BIP340 Schnorr signatures with FROST: the [`Bip340`] ciphersuite.
//!
//! givre's `Bitcoin` suite always applies the BIP341 taproot tweak. Inscription reveal scripts
//! (and anything else that checks a key with `OP_CHECKSIG` in a script) need a BIP340 signature
//! under the key itself. [`Bip340`] delegates every hash, encoding and normalization to
//! `givre::ciphersuite::Bitcoin` (the x-only point encoding is restated, as the trait's generic
//! signature does not allow delegating it) and differs in one constant: `IS_TAPROOT = false`, so
//! signing skips the tweak. Nothing cryptographic is written here; tests check it against the
//! BIP340 test vectors and an independent verifier (k256).

use givre::ciphersuite::{Bitcoin, Ciphersuite, NormalizedPoint};
use givre::generic_ec::errors::{InvalidPoint, InvalidScalar};
use givre::generic_ec::{NonZero, Point, Scalar};

/// BIP340 (x-only keys, even-Y nonces, tagged challenge hash) without the taproot tweak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bip340;

type Curve = <Bitcoin as Ciphersuite>::Curve;

/// Re-labels a point normalized for [`Bip340`] as normalized for `Bitcoin` (same rule).
fn as_bitcoin<P>(p: &NormalizedPoint<Bip340, P>) -> NormalizedPoint<Bitcoin, P>
where
    P: AsRef<Point<Curve>> + core::ops::Neg<Output = P> + Clone,
{
    // `is_normalized` is Bitcoin's for both suites, so this is always `Ok`; the `Err` arm
    // (a negated point) cannot be reached and would only make a challenge fail to verify.
    match NormalizedPoint::<Bitcoin, P>::try_normalize((**p).clone()) {
        Ok(q) | Err(q) => q,
    }
}

impl Ciphersuite for Bip340 {
    const NAME: &'static str = Bitcoin::NAME;
    type Curve = Curve;
    type Digest = <Bitcoin as Ciphersuite>::Digest;
    type MultiscalarMul = <Bitcoin as Ciphersuite>::MultiscalarMul;
    const IS_TAPROOT: bool = false;
    type HdAlgo = <Bitcoin as Ciphersuite>::HdAlgo;

    fn h1(msg: &[&[u8]]) -> Scalar<Curve> {
        Bitcoin::h1(msg)
    }

    fn compute_challenge(
        group_commitment: &NormalizedPoint<Self, Point<Curve>>,
        group_public_key: &NormalizedPoint<Self, NonZero<Point<Curve>>>,
        msg: &[u8],
    ) -> Scalar<Curve> {
        Bitcoin::compute_challenge(
            &as_bitcoin(group_commitment),
            &as_bitcoin(group_public_key),
            msg,
        )
    }

    fn h3(msg: &[&[u8]]) -> Scalar<Curve> {
        Bitcoin::h3(msg)
    }
    fn h4() -> Self::Digest {
        Bitcoin::h4()
    }
    fn h5() -> Self::Digest {
        Bitcoin::h5()
    }

    type PointBytes = <Bitcoin as Ciphersuite>::PointBytes;
    fn serialize_point(point: &Point<Curve>) -> Self::PointBytes {
        Bitcoin::serialize_point(point)
    }
    fn deserialize_point(bytes: &[u8]) -> Result<Point<Curve>, InvalidPoint> {
        Bitcoin::deserialize_point(bytes)
    }

    type ScalarBytes = <Bitcoin as Ciphersuite>::ScalarBytes;
    const SCALAR_SIZE: usize = Bitcoin::SCALAR_SIZE;
    fn serialize_scalar(scalar: &Scalar<Curve>) -> Self::ScalarBytes {
        Bitcoin::serialize_scalar(scalar)
    }
    fn deserialize_scalar(bytes: &[u8]) -> Result<Scalar<Curve>, InvalidScalar> {
        Bitcoin::deserialize_scalar(bytes)
    }

    fn is_normalized(point: &Point<Curve>) -> bool {
        Bitcoin::is_normalized(point)
    }

    type NormalizedPointBytes = <Bitcoin as Ciphersuite>::NormalizedPointBytes;
    const NORMALIZED_POINT_SIZE: usize = Bitcoin::NORMALIZED_POINT_SIZE;
    fn serialize_normalized_point<P: AsRef<Point<Curve>>>(
        point: &NormalizedPoint<Self, P>,
    ) -> Self::NormalizedPointBytes {
        // Bitcoin's encoding of a normalized point: its x coordinate.
        let mut out = [0u8; 32];
        let bytes = point.as_ref().to_bytes(true);
        out.copy_from_slice(&bytes[1..]);
        out
    }
    fn deserialize_normalized_point(
        bytes: &[u8],
    ) -> Result<NormalizedPoint<Self, Point<Curve>>, InvalidPoint> {
        let p = Bitcoin::deserialize_normalized_point(bytes)?;
        NormalizedPoint::<Self, Point<Curve>>::try_normalize(*p).map_err(|_| InvalidPoint)
    }
}
