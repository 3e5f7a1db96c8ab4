//! Rebuilding root private keys from the shares of several backups.
//!
//! Shares are grouped by key id. Within one key every share must name the same protocol,
//! public key, chain code and threshold (else: shares of different keys mixed together), and
//! shares are counted by distinct party: two backups of one node count once. A key whose
//! shares come from fewer than t distinct parties is refused. Shares of one key generation
//! (the same public verification shares; a DKLs23 refresh makes a new generation, kept in
//! `key_shares_next` until it is switched) are interpolated at zero with key-share's own
//! `reconstruct_secret_key`, and the result times G must be the stored public key.
//!
//! The library shares are read through `mpc_tss`'s public forms: CGGMP24 and FROST shares
//! serialize as `{"committee":…,"share":<key_share::CoreKeyShare>}`, and a DKLs23 share
//! converts into that form with `DklsKeyShare::schnorr_share` (the form its BIP340 signing
//! uses); key-share validates every share when it is read back.

use std::collections::{BTreeMap, BTreeSet};

use generic_ec::curves::{Ed25519, Secp256k1};
use generic_ec::{Curve, NonZero, Point, SecretScalar};
use key_share::CoreKeyShare;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::RecoverError;
use crate::backup::Backup;
use crate::record::{KEY_SHARES, KeyRecord, Share};

/// The curve of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCurve {
    /// secp256k1 (ECDSA, BIP340, Taproot).
    Secp256k1,
    /// ed25519 (EdDSA).
    Ed25519,
}

impl KeyCurve {
    /// `secp256k1` or `ed25519`.
    pub fn name(self) -> &'static str {
        match self {
            KeyCurve::Secp256k1 => "secp256k1",
            KeyCurve::Ed25519 => "ed25519",
        }
    }
}

/// A rebuilt root secret (zeroized on drop by generic-ec).
pub(crate) enum RootSecret {
    Secp256k1(SecretScalar<Secp256k1>),
    Ed25519(SecretScalar<Ed25519>),
}

/// A rebuilt, checked root key. `Debug` shows public data only.
pub struct RecoveredKey {
    /// The key id (as the node stores it).
    pub key_id: String,
    /// The curve.
    pub curve: KeyCurve,
    /// `dkls23`, `cggmp24` or `frost`.
    pub protocol: &'static str,
    /// The root public key (33-byte compressed secp256k1, or 32-byte ed25519).
    pub public_key: Vec<u8>,
    /// The chain code agreed at key generation.
    pub chain_code: [u8; 32],
    /// The key's threshold t.
    pub threshold: u16,
    /// The parties whose shares were used, with their backups (`a: backup-a.db`).
    pub used: Vec<String>,
    pub(crate) secret: RootSecret,
}

impl std::fmt::Debug for RecoveredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveredKey")
            .field("key_id", &self.key_id)
            .field("curve", &self.curve)
            .field("protocol", &self.protocol)
            .field("public_key", &hex::encode(&self.public_key))
            .field("threshold", &self.threshold)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

impl RecoveredKey {
    /// The root private key: 32 bytes, big-endian for secp256k1; for ed25519 the secret
    /// scalar in the curve's little-endian encoding (not an RFC 8032 seed: see `docs/recovery.md`).
    pub fn root_secret_bytes(&self) -> Zeroizing<[u8; 32]> {
        let mut out = Zeroizing::new([0u8; 32]);
        match &self.secret {
            RootSecret::Secp256k1(s) => out.copy_from_slice(&s.as_ref().to_be_bytes()),
            RootSecret::Ed25519(s) => out.copy_from_slice(&s.as_ref().to_le_bytes()),
        }
        out
    }
}

/// `mpc_tss`'s serialized committee share, read back as the library's core share.
#[derive(Deserialize)]
#[serde(bound = "")]
struct CommitteeCore<E: Curve> {
    #[allow(dead_code)]
    committee: serde::de::IgnoredAny,
    share: CoreKeyShare<E>,
}

fn core_share<E: Curve, T: serde::Serialize>(s: &T) -> Result<CoreKeyShare<E>, String> {
    let bytes = Zeroizing::new(serde_json::to_vec(s).map_err(|e| e.to_string())?);
    let c: CommitteeCore<E> = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the library share does not read back: {e}"))?;
    Ok(c.share)
}

struct Part<'a, E: Curve> {
    backup: &'a str,
    party: String,
    current: bool,
    core: CoreKeyShare<E>,
}

/// Rebuilds every key found in `backups` (only the ids in `only`, if it is not empty).
pub fn rebuild(backups: &[Backup], only: &[String]) -> Result<Vec<RecoveredKey>, RecoverError> {
    let mut by_key: BTreeMap<&str, Vec<(&str, &KeyRecord)>> = BTreeMap::new();
    for b in backups {
        for r in &b.keys {
            by_key
                .entry(r.key_id.as_str())
                .or_default()
                .push((b.label.as_str(), r));
        }
    }
    if by_key.is_empty() {
        return Err(RecoverError::NoKeys(
            "none of the backups holds a key share (were they taken after key generation?)".into(),
        ));
    }
    for id in only {
        if !by_key.contains_key(id.as_str()) {
            return Err(RecoverError::NoKeys(format!(
                "key {id} is in none of the backups (they hold: {})",
                by_key.keys().copied().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let mut out = Vec::new();
    for (key_id, records) in by_key {
        if !only.is_empty() && !only.iter().any(|o| o == key_id) {
            continue;
        }
        out.push(rebuild_key(key_id, &records)?);
    }
    Ok(out)
}

/// Checks that every record of `key_id` describes the same key.
fn same_key(key_id: &str, records: &[(&str, &KeyRecord)]) -> Result<(), RecoverError> {
    let Some((b0, r0)) = records.first() else {
        return Ok(());
    };
    let mixed = |reason: String| RecoverError::MixedKeys {
        key_id: key_id.to_owned(),
        reason,
    };
    for (b, r) in &records[1..] {
        if r.share.protocol_name() != r0.share.protocol_name() {
            return Err(mixed(format!(
                "a {} share in {b0}, a {} share in {b}",
                r0.share.protocol_name(),
                r.share.protocol_name()
            )));
        }
        if r.share.public_key() != r0.share.public_key() {
            return Err(mixed(format!(
                "public key {} in {b0}, {} in {b}",
                hex::encode(r0.share.public_key()),
                hex::encode(r.share.public_key())
            )));
        }
        if r.share.chain_code() != r0.share.chain_code() {
            return Err(mixed(format!("the chain codes in {b0} and {b} differ")));
        }
        if r.share.threshold() != r0.share.threshold() {
            return Err(mixed(format!(
                "threshold {} in {b0}, {} in {b}",
                r0.share.threshold(),
                r.share.threshold()
            )));
        }
    }
    Ok(())
}

fn rebuild_key(key_id: &str, records: &[(&str, &KeyRecord)]) -> Result<RecoveredKey, RecoverError> {
    same_key(key_id, records)?;
    let Some((_, first)) = records.first() else {
        return Err(RecoverError::NoKeys(format!("key {key_id}: no share")));
    };
    let record_err = |backup: &str, reason: String| RecoverError::Record {
        backup: backup.to_owned(),
        key_id: key_id.to_owned(),
        reason,
    };
    let public_key = first.share.public_key();
    let chain_code = first
        .share
        .chain_code()
        .ok_or_else(|| RecoverError::Record {
            backup: records[0].0.to_owned(),
            key_id: key_id.to_owned(),
            reason: "the share has no chain code (not an HD key)".into(),
        })?;
    let threshold = first.share.threshold();
    let protocol = first.share.protocol_name();
    let curve_name = first.share.curve_name();
    let (curve, secret, used) = match &first.share {
        Share::Cggmp24(_) | Share::Dkls23(_) => {
            let mut parts = Vec::new();
            for (b, r) in records {
                let core = match &r.share {
                    Share::Cggmp24(s) => core_share::<Secp256k1, _>(s),
                    Share::Dkls23(s) => s
                        .schnorr_share()
                        .map_err(|e| e.to_string())
                        .and_then(|c| core_share::<Secp256k1, _>(&c)),
                    Share::Ed25519(_) => Err("not a secp256k1 share".into()),
                }
                .map_err(|e| record_err(b, e))?;
                parts.push(part(b, r, core));
            }
            let (s, used) = interpolate(key_id, curve_name, threshold, &public_key, parts)?;
            (KeyCurve::Secp256k1, RootSecret::Secp256k1(s), used)
        }
        Share::Ed25519(_) => {
            let mut parts = Vec::new();
            for (b, r) in records {
                let core = match &r.share {
                    Share::Ed25519(s) => core_share::<Ed25519, _>(s),
                    _ => Err("not an ed25519 share".into()),
                }
                .map_err(|e| record_err(b, e))?;
                parts.push(part(b, r, core));
            }
            let (s, used) = interpolate(key_id, curve_name, threshold, &public_key, parts)?;
            (KeyCurve::Ed25519, RootSecret::Ed25519(s), used)
        }
    };
    Ok(RecoveredKey {
        key_id: key_id.to_owned(),
        curve,
        protocol,
        public_key,
        chain_code,
        threshold,
        used,
        secret,
    })
}

fn part<'a, E: Curve>(backup: &'a str, r: &KeyRecord, core: CoreKeyShare<E>) -> Part<'a, E> {
    Part {
        backup,
        party: r.share.party().to_string(),
        current: r.table == KEY_SHARES,
        core,
    }
}

/// One share generation: its public verification shares and its parties' shares.
type Generation<'a, E> = (Vec<NonZero<Point<E>>>, BTreeMap<String, Part<'a, E>>);

/// Groups `parts` by share generation, picks the one with the most distinct parties (the
/// current shares first), refuses fewer than `t`, interpolates and checks the public key.
fn interpolate<E: Curve>(
    key_id: &str,
    curve: &'static str,
    t: u16,
    public_key: &[u8],
    parts: Vec<Part<'_, E>>,
) -> Result<(SecretScalar<E>, Vec<String>), RecoverError> {
    // One entry per generation (its public verification shares), each party once.
    let mut groups: Vec<Generation<'_, E>> = Vec::new();
    for p in parts {
        let shares = p.core.public_shares.clone();
        let slot = match groups.iter().position(|(g, _)| *g == shares) {
            Some(i) => i,
            None => {
                groups.push((shares, BTreeMap::new()));
                groups.len() - 1
            }
        };
        if let Some((_, members)) = groups.get_mut(slot) {
            // The same party twice (two backups of one node): one share counts once; a
            // current share is preferred over a waiting one.
            match members.get(&p.party) {
                Some(existing) if existing.current || !p.current => {}
                _ => {
                    members.insert(p.party.clone(), p);
                }
            }
        }
    }
    let best = groups
        .iter()
        .enumerate()
        .max_by_key(|(_, (_, m))| (m.len(), m.values().filter(|p| p.current).count()))
        .map(|(i, _)| i);
    let Some((_, members)) = best
        .and_then(|i| groups.into_iter().nth(i))
        .map(|g| (g.0, g.1))
    else {
        return Err(RecoverError::NoKeys(format!("key {key_id}: no share")));
    };
    let listing: Vec<String> = members
        .values()
        .map(|p| format!("{}: {}", p.party, p.backup))
        .collect();
    if members.len() < usize::from(t) {
        return Err(RecoverError::NotEnoughShares {
            key_id: key_id.to_owned(),
            curve,
            given: members.len(),
            needed: t,
            parties: listing.join(", "),
        });
    }
    let cores: Vec<&CoreKeyShare<E>> = members.values().map(|p| &p.core).collect();
    let secret =
        key_share::reconstruct_secret_key(&cores).map_err(|e| RecoverError::Reconstruct {
            key_id: key_id.to_owned(),
            reason: e.to_string(),
        })?;
    let point = Point::<E>::generator() * &secret;
    let stored = cores
        .first()
        .map(|c| *c.shared_public_key)
        .ok_or_else(|| RecoverError::NoKeys(format!("key {key_id}: no share")))?;
    if point != stored || point.to_bytes(true).as_bytes() != public_key {
        return Err(RecoverError::PublicKeyMismatch {
            key_id: key_id.to_owned(),
            public_key: hex::encode(public_key),
        });
    }
    Ok((secret, listing))
}

/// The key ids of `backups` with the parties holding them (for messages and `--list`).
pub fn inventory(backups: &[Backup]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for b in backups {
        for r in &b.keys {
            out.entry(r.key_id.clone()).or_default().insert(format!(
                "{} ({}, {})",
                r.share.party(),
                r.share.curve_name(),
                b.label
            ));
        }
    }
    out
}
