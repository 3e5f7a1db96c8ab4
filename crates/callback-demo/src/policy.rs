//! The policy: what a user edits to decide which requests the node may run. Pure: it reads a
//! [`Check`] and the day's totals and returns a [`Verdict`]; the server keeps the state.
//!
//! Evaluation order (the first rule that decides wins):
//!
//! 1. `request_types.allow`: a request type not listed is rejected.
//! 2. keygen: approved only when it matches one `[[keygen.allow]]` entry (cryptography, t, n
//!    and the set of party ids), else rejected. The node sends node ids in `party_ids`; an
//!    entry may name a party instead when the server pins its node id
//!    ([`Policy::pin_parties`], `serve --party a=NODE_ID`).
//! 3. key-refresh: approved (the key, its threshold and its committee stay; every share is
//!    replaced). Listing it in `request_types.allow` is the decision.
//! 4. key-repair: approved only when `key_repair.new_node_ids` lists the node that receives the
//!    rebuilt share (`new_party_id`, which must be one of `party_ids`): a repair hands a party's
//!    share to a node, so the policy names every node it may go to. Nothing listed: rejected.
//! 5. sign: `sign.sign_types` must list the sign_type; for sign_type 2, `sign.message_methods`,
//!    when given, must list `tx_info.signAlgorithm` (how the node hashed the message; a
//!    sign_type 2 request without one is then rejected); `sign.destinations`, when given, must
//!    contain `tx_info.to` (a sign_type 1 request without `to` is then rejected).
//! 6. No `tx_info.amount`: `sign.without_amount` decides (approve / wait / reject).
//! 7. The amount must be a decimal string; the `[[sign.limits]]` entry for
//!    `tx_info.chainSymbol` + `tx_info.assetId` is used (an entry without `asset` covers the
//!    whole chain); none: `sign.unlisted_asset` decides.
//! 8. Above `max_per_request`: rejected. Today's approved total (UTC day) plus this amount
//!    above `daily_limit`: rejected.
//! 9. Above `wait_above`: WAIT, until a human releases it.
//! 10. Otherwise approved, and the amount is added to today's total.

use std::collections::BTreeSet;

use std::collections::BTreeMap;

use mpc_wire::callback::{Check, RequestType, TX_INFO_SIGN_ALGORITHM};
use serde::Deserialize;

use crate::amount::Amount;

/// A parsed policy file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Which request types may run at all.
    pub request_types: RequestTypes,
    /// Key generation rules.
    #[serde(default)]
    pub keygen: KeygenRules,
    /// Signing rules.
    #[serde(default)]
    pub sign: SignRules,
    /// Key repair rules.
    #[serde(default)]
    pub key_repair: KeyRepairRules,
}

/// `[key_repair]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeyRepairRules {
    /// Node ids that may receive a rebuilt share; none means every repair is rejected.
    #[serde(default)]
    pub new_node_ids: BTreeSet<String>,
}

/// `[request_types]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RequestTypes {
    /// Allowed `request_type` values (`keygen`, `sign`, `bip340-schnorr-sign`,
    /// `taproot-sign`, `key-refresh`, `key-repair`); anything else is rejected.
    pub allow: Vec<String>,
}

/// `[keygen]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeygenRules {
    /// Allowed party sets and thresholds; none means every keygen is rejected.
    #[serde(default)]
    pub allow: Vec<KeygenAllow>,
}

/// One `[[keygen.allow]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KeygenAllow {
    /// Allowed `cryptography` values; empty or absent means any.
    #[serde(default)]
    pub cryptography: Vec<String>,
    /// Required threshold.
    pub t: i64,
    /// Required number of parties.
    pub n: i64,
    /// Required parties (compared as a set): node ids, or party names pinned to node ids
    /// with [`Policy::pin_parties`].
    pub party_ids: BTreeSet<String>,
}

/// What to do when no rule decides.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Fallback {
    /// Approve.
    Approve,
    /// Wait for a human.
    Wait,
    /// Reject.
    Reject,
}

/// `[sign]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignRules {
    /// Allowed sign_type values ("1", "2", "3").
    #[serde(default = "all_sign_types")]
    pub sign_types: Vec<String>,
    /// Allowed `tx_info.signAlgorithm` values of sign_type 2 requests ([`MESSAGE_METHODS`]);
    /// absent means any. While set, a sign_type 2 request without one is rejected.
    #[serde(default)]
    pub message_methods: Option<Vec<String>>,
    /// Allowed destination addresses (`tx_info.to`); absent means any.
    #[serde(default)]
    pub destinations: Option<Vec<String>>,
    /// Requests without `tx_info.amount` (messages, raw data).
    #[serde(default = "wait")]
    pub without_amount: Fallback,
    /// Amounts on a chain/asset without a `[[sign.limits]]` entry.
    #[serde(default = "reject")]
    pub unlisted_asset: Fallback,
    /// `wait_time` sent with a WAIT, seconds.
    #[serde(default = "default_wait_seconds")]
    pub wait_seconds: u64,
    /// Per chain and asset limits.
    #[serde(default)]
    pub limits: Vec<Limit>,
}

impl Default for SignRules {
    fn default() -> Self {
        SignRules {
            sign_types: all_sign_types(),
            message_methods: None,
            destinations: None,
            without_amount: Fallback::Wait,
            unlisted_asset: Fallback::Reject,
            wait_seconds: default_wait_seconds(),
            limits: Vec::new(),
        }
    }
}

/// The ways the node hashes a sign_type 2 message (`tx_info.signAlgorithm`).
pub const MESSAGE_METHODS: [&str; 3] = [
    "personal_sign",
    "eth_signTypedData_v3",
    "eth_signTypedData_v4",
];

fn all_sign_types() -> Vec<String> {
    vec!["1".into(), "2".into(), "3".into()]
}
fn wait() -> Fallback {
    Fallback::Wait
}
fn reject() -> Fallback {
    Fallback::Reject
}
fn default_wait_seconds() -> u64 {
    60
}

/// One `[[sign.limits]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// `tx_info.chainSymbol` (exact).
    pub chain: String,
    /// `tx_info.assetId` (exact); absent covers every asset of the chain.
    #[serde(default)]
    pub asset: Option<String>,
    /// Largest amount of one request.
    pub max_per_request: Option<Amount>,
    /// Largest approved total per UTC day.
    pub daily_limit: Option<Amount>,
    /// Amounts above this wait for a human.
    pub wait_above: Option<Amount>,
}

impl Limit {
    /// The key today's total is kept under: `chain/asset` or `chain/*`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.chain, self.asset.as_deref().unwrap_or("*"))
    }
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not TOML of this shape.
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    /// Parsed, but inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// The decision, with its reason (for the audit log and the REJECT's `error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Approve(String),
    /// No.
    Reject(String),
    /// Ask a human; the node is told to come back after `seconds`.
    Wait {
        /// Why.
        reason: String,
        /// `wait_time`.
        seconds: u64,
    },
}

/// A verdict and, for an approved amount, what to add to today's totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// The decision.
    pub verdict: Verdict,
    /// `(limit key, amount)` to add to today's total if the request is approved.
    pub charge: Option<(String, Amount)>,
}

impl Evaluation {
    fn of(verdict: Verdict) -> Self {
        Evaluation {
            verdict,
            charge: None,
        }
    }
}

/// What the request carries in `tx_info` that the policy looks at.
#[derive(Debug, Default)]
struct TxFacts {
    chain: Option<String>,
    asset: Option<String>,
    to: Option<String>,
    method: Option<String>,
    amount: Option<serde_json::Value>,
}

fn tx_facts(check: &Check) -> Result<TxFacts, String> {
    let Some(tx) = &check.request_detail.tx_info else {
        return Ok(TxFacts::default());
    };
    let value: serde_json::Value = serde_json::from_slice(tx.as_bytes())
        .map_err(|e| format!("tx_info is not readable JSON: {e}"))?;
    let Some(obj) = value.as_object() else {
        return Err("tx_info is not a JSON object".into());
    };
    let text = |k: &str| -> Result<Option<String>, String> {
        match obj.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) if s.is_empty() => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("tx_info.{k} is not a string")),
        }
    };
    Ok(TxFacts {
        // Read strictly: a repeated key is refused, not resolved one way or the other.
        method: tx
            .string_field(TX_INFO_SIGN_ALGORITHM)
            .map_err(|e| e.to_string())?,
        chain: text("chainSymbol")?,
        asset: text("assetId")?,
        to: text("to")?,
        amount: match obj.get("amount") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if s.is_empty() => None,
            Some(v) => Some(v.clone()),
        },
    })
}

impl Policy {
    /// Parses and checks a policy file.
    pub fn from_toml_str(s: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(s)?;
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        for st in &self.sign.sign_types {
            if !matches!(st.as_str(), "1" | "2" | "3") {
                return Err(PolicyError::Invalid(format!(
                    "sign.sign_types: {st:?} is not \"1\", \"2\" or \"3\""
                )));
            }
        }
        for m in self.sign.message_methods.iter().flatten() {
            if !MESSAGE_METHODS.contains(&m.as_str()) {
                return Err(PolicyError::Invalid(format!(
                    "sign.message_methods: {m:?} is not one of {MESSAGE_METHODS:?}"
                )));
            }
        }
        for k in &self.keygen.allow {
            if k.t < 1 || k.t > k.n {
                return Err(PolicyError::Invalid(format!(
                    "keygen.allow: need 1 <= t <= n, got t={} n={}",
                    k.t, k.n
                )));
            }
            if usize::try_from(k.n).ok() != Some(k.party_ids.len()) {
                return Err(PolicyError::Invalid(format!(
                    "keygen.allow: n={} but {} party ids",
                    k.n,
                    k.party_ids.len()
                )));
            }
        }
        for id in &self.key_repair.new_node_ids {
            mpc_wire::keys::verifying_key_from_node_id(id).map_err(|e| {
                PolicyError::Invalid(format!(
                    "key_repair.new_node_ids: {id:?} is not a node id: {e}"
                ))
            })?;
        }
        let mut keys = BTreeSet::new();
        for l in &self.sign.limits {
            if !keys.insert(l.key()) {
                return Err(PolicyError::Invalid(format!(
                    "sign.limits: {} is listed twice",
                    l.key()
                )));
            }
        }
        Ok(())
    }

    /// Pins each party name of `pins` to its node id: `[[keygen.allow]]` entries that name the
    /// party stand for that node id. After pinning every entry must be a node id (an entry that
    /// is neither a node id nor a pinned name could never match what the node sends, so it is an
    /// error rather than a keygen rejected forever).
    pub fn pin_parties(&mut self, pins: &BTreeMap<String, String>) -> Result<(), PolicyError> {
        for (party, id) in pins {
            mpc_wire::keys::verifying_key_from_node_id(id).map_err(|e| {
                PolicyError::Invalid(format!("party {party}: {id:?} is not a node id: {e}"))
            })?;
        }
        for k in &mut self.keygen.allow {
            let mut ids = BTreeSet::new();
            for p in &k.party_ids {
                let id = pins.get(p).unwrap_or(p);
                if mpc_wire::keys::verifying_key_from_node_id(id).is_err() {
                    return Err(PolicyError::Invalid(format!(
                        "keygen.allow: party {p:?} is neither a node id nor pinned (--party {p}=NODE_ID)"
                    )));
                }
                if !ids.insert(id.clone()) {
                    return Err(PolicyError::Invalid(format!(
                        "keygen.allow: node {id} is named twice"
                    )));
                }
            }
            k.party_ids = ids;
        }
        Ok(())
    }

    /// Decides `check`. `spent_today(key)` is today's approved total for a limit key;
    /// `released` says a human has released this request from the WAIT band.
    pub fn evaluate(
        &self,
        check: &Check,
        spent_today: impl Fn(&str) -> Amount,
        released: bool,
    ) -> Evaluation {
        let rt = check.request_type.as_str();
        if !self.request_types.allow.iter().any(|a| a == rt) {
            return Evaluation::of(Verdict::Reject(format!(
                "request_type {rt:?} is not allowed"
            )));
        }
        match RequestType::parse(rt) {
            Ok(RequestType::Keygen) => Evaluation::of(self.keygen_verdict(check)),
            Ok(RequestType::KeyRefresh) => {
                let d = &check.request_detail;
                Evaluation::of(Verdict::Approve(format!(
                    "key refresh of {} {}-of-{} key {}: same key and committee, new shares",
                    d.cryptography, d.t, d.n, d.public_key
                )))
            }
            Ok(RequestType::KeyRepair) => Evaluation::of(self.key_repair_verdict(check)),
            Ok(_) => self.sign_evaluation(check, spent_today, released),
            // Allowed by name but not a type this policy understands: no rule covers it.
            Err(_) => Evaluation::of(self.fallback(
                self.sign.without_amount,
                format!("request_type {rt:?} allowed; no amount rules apply"),
                released,
            )),
        }
    }

    fn key_repair_verdict(&self, check: &Check) -> Verdict {
        let d = &check.request_detail;
        let new = &d.new_party_id;
        if !d.party_ids.contains(new) {
            return Verdict::Reject(format!(
                "key repair names new node {new:?}, which is not among its party_ids"
            ));
        }
        if self.key_repair.new_node_ids.contains(new) {
            Verdict::Approve(format!(
                "key repair of {} {}-of-{} key {} onto node {new}, listed in key_repair.new_node_ids",
                d.cryptography, d.t, d.n, d.public_key
            ))
        } else {
            Verdict::Reject(format!(
                "key repair onto node {new} is not allowed: key_repair.new_node_ids does not list it"
            ))
        }
    }

    fn keygen_verdict(&self, check: &Check) -> Verdict {
        let d = &check.request_detail;
        let parties: BTreeSet<String> = d.party_ids.iter().cloned().collect();
        let matches = self.keygen.allow.iter().any(|k| {
            (k.cryptography.is_empty() || k.cryptography.contains(&d.cryptography))
                && k.t == d.t
                && k.n == d.n
                && k.party_ids == parties
                && parties.len() == d.party_ids.len()
        });
        if matches {
            Verdict::Approve(format!(
                "keygen {} {}-of-{} for an allowed party set",
                d.cryptography, d.t, d.n
            ))
        } else {
            Verdict::Reject(format!(
                "keygen {} {}-of-{} with parties {:?} is not in keygen.allow",
                d.cryptography, d.t, d.n, d.party_ids
            ))
        }
    }

    fn fallback(&self, action: Fallback, why: String, released: bool) -> Verdict {
        match action {
            Fallback::Approve => Verdict::Approve(why),
            Fallback::Reject => Verdict::Reject(why),
            Fallback::Wait if released => Verdict::Approve(format!("{why}; released by a human")),
            Fallback::Wait => Verdict::Wait {
                reason: format!("{why}; waiting for a human"),
                seconds: self.sign.wait_seconds,
            },
        }
    }

    fn sign_evaluation(
        &self,
        check: &Check,
        spent_today: impl Fn(&str) -> Amount,
        released: bool,
    ) -> Evaluation {
        let reject = |r: String| Evaluation::of(Verdict::Reject(r));
        let st = check.request_detail.sign_type.as_str();
        if !self.sign.sign_types.iter().any(|a| a == st) {
            return reject(format!("sign_type {st:?} is not allowed"));
        }
        let facts = match tx_facts(check) {
            Ok(f) => f,
            Err(e) => return reject(e),
        };
        if st == "2"
            && let Some(allowed) = &self.sign.message_methods
        {
            match &facts.method {
                Some(m) if allowed.iter().any(|a| a == m) => {}
                Some(m) => return reject(format!("message method {m:?} is not allowed")),
                None => {
                    return reject(
                        "message without tx_info.signAlgorithm while message_methods is set".into(),
                    );
                }
            }
        }
        if let Some(allowed) = &self.sign.destinations {
            match &facts.to {
                Some(to) if allowed.iter().any(|a| same_address(a, to)) => {}
                Some(to) => return reject(format!("destination {to:?} is not in the allow-list")),
                None if st == "1" => {
                    return reject(
                        "transaction without tx_info.to while destinations are restricted".into(),
                    );
                }
                None => {}
            }
        }
        let Some(amount) = facts.amount else {
            return Evaluation::of(self.fallback(
                self.sign.without_amount,
                "no amount in tx_info".into(),
                released,
            ));
        };
        let amount = match amount.as_str().map(Amount::parse) {
            Some(Ok(a)) => a,
            Some(Err(e)) => return reject(format!("tx_info.amount: {e}")),
            None => return reject("tx_info.amount is not a decimal string".into()),
        };
        let chain = facts.chain.unwrap_or_default();
        let asset = facts.asset.unwrap_or_default();
        let limit = self
            .sign
            .limits
            .iter()
            .find(|l| l.chain == chain && l.asset.as_deref() == Some(asset.as_str()))
            .or_else(|| {
                self.sign
                    .limits
                    .iter()
                    .find(|l| l.chain == chain && l.asset.is_none())
            });
        let Some(limit) = limit else {
            return Evaluation::of(self.fallback(
                self.sign.unlisted_asset,
                format!("no limits configured for {chain}/{asset}"),
                released,
            ));
        };
        let what = format!("{amount} on {}", limit.key());
        if let Some(max) = limit.max_per_request
            && amount > max
        {
            return reject(format!("{what} is above max_per_request {max}"));
        }
        let spent = spent_today(&limit.key());
        let Some(total) = spent.checked_add(amount) else {
            return reject(format!("{what}: daily total overflows"));
        };
        if let Some(daily) = limit.daily_limit
            && total > daily
        {
            return reject(format!(
                "{what} would bring today's total to {total}, above daily_limit {daily}"
            ));
        }
        let charge = Some((limit.key(), amount));
        if let Some(band) = limit.wait_above
            && amount > band
        {
            if !released {
                return Evaluation::of(Verdict::Wait {
                    reason: format!("{what} is above wait_above {band}; waiting for a human"),
                    seconds: self.sign.wait_seconds,
                });
            }
            return Evaluation {
                verdict: Verdict::Approve(format!(
                    "{what} above wait_above {band}, released by a human"
                )),
                charge,
            };
        }
        Evaluation {
            verdict: Verdict::Approve(format!("{what} within limits")),
            charge,
        }
    }
}

/// Addresses compare exactly, except `0x` hex addresses, which compare case-insensitively
/// (EIP-55 checksums change letter case only).
fn same_address(a: &str, b: &str) -> bool {
    if a.starts_with("0x") && b.starts_with("0x") {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpc_wire::callback::{ExtraInfo, SignType, TxInfo};

    const EXAMPLE: &str = include_str!("../policy.example.toml");

    fn policy() -> Policy {
        Policy::from_toml_str(EXAMPLE).unwrap()
    }

    fn sign(sign_type: SignType, tx: &str) -> Check {
        Check::sign(
            "cb",
            RequestType::Sign,
            sign_type,
            "02aa",
            "m/1/1/60/0",
            "00",
            if tx.is_empty() {
                None
            } else {
                Some(TxInfo::from_json(tx.as_bytes()).unwrap())
            },
            ExtraInfo::default(),
        )
    }

    fn eth(amount: &str, to: &str) -> Check {
        sign(
            SignType::Transaction,
            &format!(r#"{{"chainSymbol":"ETH","assetId":"ETH","to":"{to}","amount":"{amount}"}}"#),
        )
    }

    const OK_TO: &str = "0xabcdef0000000000000000000000000000000001";

    fn none(_: &str) -> Amount {
        Amount::ZERO
    }

    fn verdict(p: &Policy, c: &Check) -> Verdict {
        p.evaluate(c, none, false).verdict
    }

    #[test]
    fn example_policy_parses() {
        let p = policy();
        assert!(p.request_types.allow.contains(&"keygen".to_owned()));
        assert!(!p.sign.limits.is_empty());
    }

    /// The shipped policy approves a key refresh; a policy that does not list the type
    /// rejects it.
    #[test]
    fn key_refresh_is_approved_where_listed() {
        let refresh = Check::key_refresh(
            "cb",
            2,
            3,
            "ecdsa-secp256k1",
            "02ab",
            vec!["x".into(), "y".into(), "z".into()],
            mpc_wire::callback::ExtraInfo::default(),
        );
        assert!(
            matches!(verdict(&policy(), &refresh), Verdict::Approve(r) if r.contains("key refresh") && r.contains("02ab"))
        );
        let p = Policy::from_toml_str("[request_types]\nallow = [\"keygen\", \"sign\"]\n").unwrap();
        assert!(
            matches!(verdict(&p, &refresh), Verdict::Reject(r) if r.contains("\"key-refresh\" is not allowed"))
        );
    }

    /// A repair is approved only onto a node the policy lists, and only when that node is in
    /// the committee the request names.
    #[test]
    fn key_repair_only_onto_a_listed_node() {
        let node = |b: u8| {
            mpc_wire::keys::node_id(
                p256::ecdsa::SigningKey::from_slice(&[b; 32])
                    .unwrap()
                    .verifying_key(),
            )
        };
        let (x, y, w, v) = (node(1), node(2), node(3), node(4));
        let repair = |new: &str, ids: Vec<String>| {
            Check::key_repair(
                "cb",
                2,
                3,
                "ecdsa-secp256k1",
                "02ab",
                ids,
                new,
                mpc_wire::callback::ExtraInfo::default(),
            )
        };
        let toml = format!(
            "[request_types]\nallow = [\"key-repair\"]\n[key_repair]\nnew_node_ids = [\"{w}\"]\n"
        );
        let p = Policy::from_toml_str(&toml).unwrap();
        let ok = repair(&w, vec![x.clone(), y.clone(), w.clone()]);
        assert!(
            matches!(verdict(&p, &ok), Verdict::Approve(r) if r.contains("key repair") && r.contains(&w))
        );
        let unlisted = repair(&v, vec![x.clone(), y.clone(), v.clone()]);
        assert!(
            matches!(verdict(&p, &unlisted), Verdict::Reject(r) if r.contains("does not list it"))
        );
        let outside = repair(&w, vec![x.clone(), y.clone(), v.clone()]);
        assert!(
            matches!(verdict(&p, &outside), Verdict::Reject(r) if r.contains("not among its party_ids"))
        );
        // Listed nowhere: the example policy lists no node, so it rejects every repair.
        assert!(matches!(verdict(&policy(), &ok), Verdict::Reject(_)));
        // A listed entry that is not a node id is a policy error, not a repair never approved.
        let bad =
            "[request_types]\nallow = [\"key-repair\"]\n[key_repair]\nnew_node_ids = [\"c\"]\n";
        assert!(
            matches!(Policy::from_toml_str(bad), Err(PolicyError::Invalid(e)) if e.contains("key_repair.new_node_ids"))
        );
    }

    #[test]
    fn request_type_allow_deny() {
        let p = Policy::from_toml_str("[request_types]\nallow = [\"keygen\"]\n").unwrap();
        assert!(
            matches!(verdict(&p, &eth("1", OK_TO)), Verdict::Reject(r) if r.contains("not allowed"))
        );
        let mut c = eth("1", OK_TO);
        c.request_type = "pre-sign".into();
        assert!(matches!(verdict(&policy(), &c), Verdict::Reject(_)));
    }

    #[test]
    fn keygen_only_for_listed_sets() {
        let p = policy();
        let ok = Check::keygen(
            "cb",
            3,
            3,
            "ecdsa-secp256k1",
            vec!["c".into(), "a".into(), "b".into()],
            ExtraInfo::default(),
        );
        assert!(matches!(verdict(&p, &ok), Verdict::Approve(_)));
        for bad in [
            Check::keygen(
                "cb",
                1,
                3,
                "ecdsa-secp256k1",
                vec!["a".into(), "b".into(), "c".into()],
                ExtraInfo::default(),
            ),
            Check::keygen(
                "cb",
                3,
                3,
                "ecdsa-secp256k1",
                vec!["a".into(), "b".into(), "x".into()],
                ExtraInfo::default(),
            ),
            Check::keygen(
                "cb",
                3,
                3,
                "ecdsa-secp256k1",
                vec!["a".into(), "b".into(), "b".into()],
                ExtraInfo::default(),
            ),
            Check::keygen(
                "cb",
                3,
                3,
                "rsa",
                vec!["a".into(), "b".into(), "c".into()],
                ExtraInfo::default(),
            ),
        ] {
            assert!(matches!(verdict(&p, &bad), Verdict::Reject(_)), "{bad:?}");
        }
    }

    #[test]
    fn sign_types_and_destinations() {
        let p = policy();
        assert!(matches!(verdict(&p, &eth("1", OK_TO)), Verdict::Approve(_)));
        // EIP-55 letter case does not matter for 0x addresses.
        assert!(matches!(
            verdict(&p, &eth("1", &OK_TO.to_uppercase().replace("0X", "0x"))),
            Verdict::Approve(_)
        ));
        assert!(matches!(
            verdict(&p, &eth("1", "0x2222222222222222222222222222222222222222")),
            Verdict::Reject(r) if r.contains("allow-list")
        ));
        let no_to = sign(
            SignType::Transaction,
            r#"{"chainSymbol":"ETH","assetId":"ETH","amount":"1"}"#,
        );
        assert!(matches!(verdict(&p, &no_to), Verdict::Reject(_)));
        let mut strict = p.clone();
        strict.sign.sign_types = vec!["1".into()];
        assert!(
            matches!(verdict(&strict, &sign(SignType::RawData, "")), Verdict::Reject(r) if r.contains("sign_type"))
        );
    }

    #[test]
    fn without_amount_and_unlisted_assets() {
        let mut p = policy();
        p.sign.without_amount = Fallback::Wait;
        let msg = sign(SignType::Message, r#"{"signAlgorithm":"personal_sign"}"#);
        assert!(matches!(verdict(&p, &msg), Verdict::Wait { .. }));
        assert!(matches!(
            p.evaluate(&msg, none, true).verdict,
            Verdict::Approve(_)
        ));
        p.sign.without_amount = Fallback::Reject;
        assert!(matches!(verdict(&p, &msg), Verdict::Reject(_)));
        p.sign.without_amount = Fallback::Approve;
        assert!(matches!(verdict(&p, &msg), Verdict::Approve(_)));

        let doge = sign(
            SignType::Transaction,
            &format!(r#"{{"chainSymbol":"DOGE","assetId":"DOGE","to":"{OK_TO}","amount":"1"}}"#),
        );
        assert!(matches!(verdict(&p, &doge), Verdict::Reject(r) if r.contains("no limits")));
        // A chain-wide entry covers every asset of the chain.
        let usdt = sign(
            SignType::Transaction,
            &format!(
                r#"{{"chainSymbol":"ETH","assetId":"USDT_ERC20","to":"{OK_TO}","amount":"100"}}"#
            ),
        );
        let e = p.evaluate(&usdt, none, false);
        assert!(matches!(e.verdict, Verdict::Approve(_)), "{e:?}");
        assert_eq!(e.charge.unwrap().0, "ETH/*");
    }

    #[test]
    fn amounts_limits_and_wait_band() {
        let p = policy();
        // Example: ETH/ETH max 10 per request, 25 per day, wait above 5.
        let e = p.evaluate(&eth("1.5", OK_TO), none, false);
        assert!(matches!(e.verdict, Verdict::Approve(_)));
        assert_eq!(
            e.charge,
            Some(("ETH/ETH".into(), Amount::parse("1.5").unwrap()))
        );
        assert!(
            matches!(verdict(&p, &eth("10.000000000000000001", OK_TO)), Verdict::Reject(r) if r.contains("max_per_request"))
        );
        let w = p.evaluate(&eth("6", OK_TO), none, false);
        assert!(
            matches!(w.verdict, Verdict::Wait { seconds: 30, .. }),
            "{w:?}"
        );
        assert_eq!(w.charge, None);
        let released = p.evaluate(&eth("6", OK_TO), none, true);
        assert!(matches!(released.verdict, Verdict::Approve(_)));
        assert!(released.charge.is_some());
        // Daily: 24 already spent, 1 more is fine, 1.000000000000000001 is not.
        let spent = |_: &str| Amount::parse("24").unwrap();
        assert!(matches!(
            p.evaluate(&eth("1", OK_TO), spent, false).verdict,
            Verdict::Approve(_)
        ));
        assert!(matches!(
            p.evaluate(&eth("1.000000000000000001", OK_TO), spent, false).verdict,
            Verdict::Reject(r) if r.contains("daily_limit")
        ));
        // A release does not lift hard limits.
        assert!(matches!(
            p.evaluate(&eth("11", OK_TO), none, true).verdict,
            Verdict::Reject(_)
        ));
        for bad in [r#""1e3""#, r#""-1""#, "1.5", r#""""#] {
            let c = sign(
                SignType::Transaction,
                &format!(
                    r#"{{"chainSymbol":"ETH","assetId":"ETH","to":"{OK_TO}","amount":{bad}}}"#
                ),
            );
            let v = verdict(&p, &c);
            if bad == r#""""# {
                // Empty amount is no amount.
                assert!(!matches!(v, Verdict::Approve(_)));
            } else {
                assert!(matches!(v, Verdict::Reject(_)), "{bad}: {v:?}");
            }
        }
        let not_object = sign(SignType::Transaction, "[1]");
        assert!(matches!(verdict(&p, &not_object), Verdict::Reject(_)));
    }

    #[test]
    fn invalid_policies_are_refused() {
        for bad in [
            "",
            "[request_types]\nallow = []\nunknown = 1\n",
            "[request_types]\nallow = []\n[sign]\nsign_types = [\"4\"]\n",
            "[request_types]\nallow = []\n[[keygen.allow]]\nt = 4\nn = 3\nparty_ids = [\"a\",\"b\",\"c\"]\n",
            "[request_types]\nallow = []\n[[keygen.allow]]\nt = 2\nn = 3\nparty_ids = [\"a\",\"b\"]\n",
            "[request_types]\nallow = []\n[[sign.limits]]\nchain = \"ETH\"\nmax_per_request = \"1.0.0\"\n",
            "[request_types]\nallow = []\n[[sign.limits]]\nchain = \"ETH\"\n[[sign.limits]]\nchain = \"ETH\"\n",
            "[request_types]\nallow = []\n[sign]\nwithout_amount = \"maybe\"\n",
            "[request_types]\nallow = []\n[sign]\nmessage_methods = [\"eth_sign\"]\n",
        ] {
            assert!(Policy::from_toml_str(bad).is_err(), "{bad}");
        }
    }

    fn message(method: Option<&str>) -> Check {
        let tx = method.map_or(String::new(), |m| format!(r#"{{"signAlgorithm":"{m}"}}"#));
        sign(SignType::Message, &tx)
    }

    #[test]
    fn message_methods_are_allowed_one_by_one() {
        let mut p = policy();
        // The example allows personal_sign only.
        assert_eq!(
            p.sign.message_methods,
            Some(vec!["personal_sign".to_owned()])
        );
        p.sign.without_amount = Fallback::Approve;
        p.sign.message_methods = None;
        // Without the rule every method passes (as before).
        for m in MESSAGE_METHODS {
            assert!(matches!(
                verdict(&p, &message(Some(m))),
                Verdict::Approve(_)
            ));
        }
        p.sign.message_methods = Some(vec!["personal_sign".into()]);
        assert!(matches!(
            verdict(&p, &message(Some("personal_sign"))),
            Verdict::Approve(_)
        ));
        for m in ["eth_signTypedData_v3", "eth_signTypedData_v4"] {
            assert!(
                matches!(verdict(&p, &message(Some(m))), Verdict::Reject(r) if r.contains("not allowed")),
                "{m}"
            );
        }
        assert!(
            matches!(verdict(&p, &message(None)), Verdict::Reject(r) if r.contains("signAlgorithm"))
        );
        // A repeated signAlgorithm is not read one way or the other.
        let twice = sign(
            SignType::Message,
            r#"{"signAlgorithm":"personal_sign","signAlgorithm":"eth_signTypedData_v4"}"#,
        );
        assert!(matches!(verdict(&p, &twice), Verdict::Reject(r) if r.contains("more than once")));
        // The rule is about messages: transactions and raw data are not affected.
        assert!(matches!(verdict(&p, &eth("1", OK_TO)), Verdict::Approve(_)));
        let from_file = Policy::from_toml_str(
            "[request_types]\nallow = [\"sign\"]\n[sign]\nmessage_methods = [\"personal_sign\"]\nwithout_amount = \"approve\"\n",
        )
        .unwrap();
        assert_eq!(
            from_file.sign.message_methods,
            Some(vec!["personal_sign".to_owned()])
        );
    }

    fn node_id(seed: u8) -> String {
        mpc_wire::keys::node_id(
            p256::ecdsa::SigningKey::from_slice(&[seed; 32])
                .unwrap()
                .verifying_key(),
        )
    }

    #[test]
    fn parties_pin_node_ids() {
        let pins: BTreeMap<String, String> = [("a", 1), ("b", 2), ("c", 3)]
            .into_iter()
            .map(|(p, s)| (p.to_owned(), node_id(s)))
            .collect();
        let mut p = policy();
        p.pin_parties(&pins).unwrap();
        let keygen = |ids: Vec<String>| {
            Check::keygen("cb", 3, 3, "ecdsa-secp256k1", ids, ExtraInfo::default())
        };
        // The node ids, in any order, are approved; the letters no longer are.
        assert!(matches!(
            verdict(&p, &keygen(vec![node_id(3), node_id(1), node_id(2)])),
            Verdict::Approve(_)
        ));
        for bad in [
            vec!["a".to_owned(), "b".into(), "c".into()],
            // Another node in b's place (a task rewritten on its way).
            vec![node_id(1), node_id(9), node_id(3)],
            vec![node_id(1), node_id(2), node_id(2)],
        ] {
            assert!(
                matches!(verdict(&p, &keygen(bad.clone())), Verdict::Reject(_)),
                "{bad:?}"
            );
        }
        // A name nobody pinned, a pin that is no node id, two names for one node: errors.
        let mut p = policy();
        let mut partial = pins.clone();
        partial.remove("c");
        assert!(
            matches!(p.pin_parties(&partial), Err(PolicyError::Invalid(e)) if e.contains("\"c\""))
        );
        let mut p2 = policy();
        let mut bad = pins.clone();
        bad.insert("a".into(), "a".into());
        assert!(p2.pin_parties(&bad).is_err());
        let mut same = pins.clone();
        same.insert("b".into(), node_id(1));
        assert!(
            matches!(p.pin_parties(&same), Err(PolicyError::Invalid(e)) if e.contains("twice"))
        );
        // Node ids written into the policy directly need no pins.
        let direct = format!(
            "[request_types]\nallow = [\"keygen\"]\n[[keygen.allow]]\nt = 2\nn = 2\nparty_ids = [\"{}\", \"{}\"]\n",
            node_id(1),
            node_id(2)
        );
        let mut p = Policy::from_toml_str(&direct).unwrap();
        p.pin_parties(&BTreeMap::new()).unwrap();
        let c = Check::keygen(
            "cb",
            2,
            2,
            "ecdsa-secp256k1",
            vec![node_id(2), node_id(1)],
            ExtraInfo::default(),
        );
        assert!(matches!(verdict(&p, &c), Verdict::Approve(_)));
    }
}
