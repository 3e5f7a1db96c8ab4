//! Decimal amounts without floating point.
//!
//! An [`Amount`] is a non-negative decimal with at most [`DECIMALS`] fractional digits, held
//! exactly as an integer count of 10^-18 units in a `u128` (up to about 3.4 × 10^20 whole
//! units). Eighteen places cover every common chain's smallest unit (wei has 18); comparisons
//! and sums are exact, which floats are not, and no decimal crate is needed for what a
//! policy does (parse, compare, add).

use std::fmt;

/// Fractional digits kept.
pub const DECIMALS: u32 = 18;
const SCALE: u128 = 1_000_000_000_000_000_000;

/// A non-negative decimal amount, exact to 18 places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Amount(u128);

/// Why a string is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a plain decimal amount (digits, optional '.', at most 18 decimals)")]
pub struct AmountError(pub String);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// Parses `123`, `0.5`, `1.000000000000000001`. No sign, exponent, spaces, `_` or bare `.`.
    pub fn parse(s: &str) -> Result<Self, AmountError> {
        let err = || AmountError(s.chars().take(64).collect());
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
            return Err(err());
        }
        let frac_len = u32::try_from(frac.len()).map_err(|_| err())?;
        if frac_len > DECIMALS {
            return Err(err());
        }
        let int_trimmed = int.trim_start_matches('0');
        if int_trimmed.len() > 20 {
            return Err(err());
        }
        let int_value: u128 = if int_trimmed.is_empty() {
            0
        } else {
            int_trimmed.parse().map_err(|_| err())?
        };
        let frac_value: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse::<u128>().map_err(|_| err())? * 10u128.pow(DECIMALS - frac_len)
        };
        int_value
            .checked_mul(SCALE)
            .and_then(|v| v.checked_add(frac_value))
            .map(Amount)
            .ok_or_else(err)
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let int = self.0 / SCALE;
        let frac = self.0 % SCALE;
        if frac == 0 {
            write!(f, "{int}")
        } else {
            let digits = format!("{frac:018}");
            write!(f, "{int}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl serde::Serialize for Amount {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Amount {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Amount::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_exactly() {
        for (s, shown) in [
            ("0", "0"),
            ("007", "7"),
            ("1.5", "1.5"),
            ("1.50", "1.5"),
            ("0.000000000000000001", "0.000000000000000001"),
            ("123456789012345678901.5", "ERR"),
            (
                "99999999999999999999.999999999999999999",
                "99999999999999999999.999999999999999999",
            ),
        ] {
            match Amount::parse(s) {
                Ok(a) => assert_eq!(a.to_string(), shown, "{s}"),
                Err(_) => assert_eq!(shown, "ERR", "{s}"),
            }
        }
        // 0.1 + 0.2 is exactly 0.3 here.
        let sum = Amount::parse("0.1")
            .unwrap()
            .checked_add(Amount::parse("0.2").unwrap())
            .unwrap();
        assert_eq!(sum, Amount::parse("0.3").unwrap());
        assert!(Amount::parse("10").unwrap() > Amount::parse("9.999999999999999999").unwrap());
    }

    #[test]
    fn refuses_everything_else() {
        for s in [
            "",
            ".",
            "1.",
            ".5",
            "-1",
            "+1",
            "1e3",
            " 1",
            "1 ",
            "1,5",
            "1_000",
            "0x10",
            "NaN",
            "1.0000000000000000001",
            "1.2.3",
            "１",
        ] {
            assert!(Amount::parse(s).is_err(), "{s:?}");
        }
    }
}
