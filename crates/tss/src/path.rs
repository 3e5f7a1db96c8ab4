//! Non-hardened BIP32-style derivation paths (`m/1/1/60/0`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// Longest path accepted (BIP32 depth is one byte).
pub const MAX_DEPTH: usize = 255;

/// A derivation path of non-hardened indices (`< 2^31`). The empty path `m` is the root key.
///
/// Hardened steps cannot be derived by threshold signers (they need the whole private key), so
/// `m/44'/0'` is refused with an error naming the step.
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DerivationPath(Vec<u32>);

impl DerivationPath {
    /// The root (`m`).
    pub fn root() -> Self {
        DerivationPath(Vec::new())
    }

    /// From indices; each must be `< 2^31`.
    pub fn from_indices(indices: Vec<u32>) -> Result<Self, InputError> {
        if indices.len() > MAX_DEPTH {
            return Err(InputError::BadPath("deeper than 255 levels".into()));
        }
        if let Some(i) = indices.iter().find(|i| **i >= 0x8000_0000) {
            return Err(InputError::BadPath(format!(
                "index {i} is hardened (>= 2^31); only non-hardened derivation is possible"
            )));
        }
        Ok(DerivationPath(indices))
    }

    /// The indices, root first.
    pub fn indices(&self) -> &[u32] {
        &self.0
    }

    /// `true` for `m`.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for DerivationPath {
    type Err = InputError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('/');
        if parts.next() != Some("m") {
            return Err(InputError::BadPath(format!(
                "{:?} does not start with \"m\"",
                truncate(s)
            )));
        }
        let mut out = Vec::new();
        for (depth, part) in parts.enumerate() {
            if part.ends_with('\'') || part.ends_with('h') || part.ends_with('H') {
                return Err(InputError::BadPath(format!(
                    "step {} ({part:?}) is hardened; only non-hardened derivation is possible",
                    depth + 1
                )));
            }
            let valid_digits = !part.is_empty()
                && part.len() <= 10
                && part.bytes().all(|b| b.is_ascii_digit())
                && !(part.len() > 1 && part.starts_with('0'));
            let i: u32 = valid_digits
                .then(|| part.parse().ok())
                .flatten()
                .ok_or_else(|| {
                    InputError::BadPath(format!(
                        "step {} ({:?}) is not a decimal index",
                        depth + 1,
                        truncate(part)
                    ))
                })?;
            out.push(i);
        }
        DerivationPath::from_indices(out)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

impl TryFrom<String> for DerivationPath {
    type Error = InputError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<DerivationPath> for String {
    fn from(p: DerivationPath) -> String {
        p.to_string()
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for i in &self.0 {
            write!(f, "/{i}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let p: DerivationPath = "m/1/1/60/0".parse().unwrap();
        assert_eq!(p.indices(), &[1, 1, 60, 0]);
        assert_eq!(p.to_string(), "m/1/1/60/0");
        assert!("m".parse::<DerivationPath>().unwrap().is_root());
        assert_eq!(
            "m/2147483647".parse::<DerivationPath>().unwrap().indices(),
            &[0x7fff_ffff]
        );
    }

    #[test]
    fn refuses_bad_paths() {
        for bad in [
            "",
            "1/2",
            "m/",
            "m//1",
            "m/44'",
            "m/1h",
            "m/-1",
            "m/+1",
            "m/01",
            "m/2147483648",
            "m/99999999999",
            "M/1",
            "m/1 ",
            "m/a",
        ] {
            let err = bad.parse::<DerivationPath>().unwrap_err();
            assert!(matches!(err, InputError::BadPath(_)), "{bad}: {err}");
        }
        let deep = format!("m{}", "/1".repeat(256));
        assert!(deep.parse::<DerivationPath>().is_err());
    }
}
