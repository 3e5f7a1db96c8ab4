//! The t=1 password rule and the password generator.

use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// Minimum length of a t=1 password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The companion tool's charset (guide §5): specials, lower, upper, digits.
pub const CHARSET: &[u8] =
    b"!@#$%^&*()_+abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// Length of generated passwords (the companion tool's length).
pub const GENERATED_LEN: usize = 16;

/// One unmet part of the password rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Fewer than 12 characters (carries the actual count).
    Length(usize),
    /// No upper-case letter.
    Upper,
    /// No lower-case letter.
    Lower,
    /// No digit.
    Digit,
    /// No special character.
    Special,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Length(n) => write!(f, "at least {MIN_PASSWORD_CHARS} characters (has {n})"),
            Missing::Upper => f.write_str("an upper-case letter"),
            Missing::Lower => f.write_str("a lower-case letter"),
            Missing::Digit => f.write_str("a digit"),
            Missing::Special => f.write_str("a special character (e.g. !@#$%^&*()_+)"),
        }
    }
}

/// The password does not meet the rule; lists everything missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("password rejected, it needs {}", list(.missing))]
pub struct PasswordRuleError {
    /// Every unmet requirement, in rule order.
    pub missing: Vec<Missing>,
}

fn list(m: &[Missing]) -> String {
    m.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_special(c: char) -> bool {
    c.is_ascii_punctuation() || (!c.is_ascii() && !c.is_alphanumeric() && !c.is_whitespace())
}

/// Checks the t=1 rule: at least 12 characters with upper case, lower case, digit and special.
pub fn check_password(pw: &str) -> Result<(), PasswordRuleError> {
    let mut missing = Vec::new();
    let n = pw.chars().count();
    if n < MIN_PASSWORD_CHARS {
        missing.push(Missing::Length(n));
    }
    if !pw.chars().any(char::is_uppercase) {
        missing.push(Missing::Upper);
    }
    if !pw.chars().any(char::is_lowercase) {
        missing.push(Missing::Lower);
    }
    if !pw.chars().any(|c| c.is_ascii_digit()) {
        missing.push(Missing::Digit);
    }
    if !pw.chars().any(is_special) {
        missing.push(Missing::Special);
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PasswordRuleError { missing })
    }
}

/// A random 16-character password from [`CHARSET`], drawn with the given CSPRNG (unbiased
/// rejection sampling) and redrawn until it satisfies [`check_password`], so it is uniform over
/// the passwords that do.
pub fn generate_password(rng: &mut (impl RngCore + CryptoRng)) -> Zeroizing<String> {
    loop {
        let mut s = Zeroizing::new(String::with_capacity(GENERATED_LEN));
        while s.len() < GENERATED_LEN {
            let mut b = [0u8; 1];
            rng.fill_bytes(&mut b);
            // 74 chars: accept bytes < 222 (= 3 * 74) to avoid modulo bias.
            if usize::from(b[0]) < CHARSET.len() * 3 {
                s.push(char::from(CHARSET[usize::from(b[0]) % CHARSET.len()]));
            }
        }
        if check_password(&s).is_ok() {
            return s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn rule_names_what_is_missing() {
        let e = check_password("short").unwrap_err();
        assert_eq!(
            e.missing,
            vec![
                Missing::Length(5),
                Missing::Upper,
                Missing::Digit,
                Missing::Special
            ]
        );
        assert_eq!(
            e.to_string(),
            "password rejected, it needs at least 12 characters (has 5), an upper-case letter, a digit, a special character (e.g. !@#$%^&*()_+)"
        );
        assert_eq!(
            check_password("abcdefghijK1").unwrap_err().missing,
            vec![Missing::Special]
        );
        assert_eq!(
            check_password("ABCDEFGHIJK1!").unwrap_err().missing,
            vec![Missing::Lower]
        );
        assert!(check_password("Correct-Horse-9").is_ok());
        assert!(check_password("ÄÖÜäöü€12345").is_ok());
        assert_eq!(check_password("").unwrap_err().missing.len(), 5);
    }

    #[test]
    fn generated_passwords_pass_and_use_charset() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        for _ in 0..500 {
            let p = generate_password(&mut rng);
            assert_eq!(p.len(), GENERATED_LEN);
            assert!(check_password(&p).is_ok());
            assert!(p.bytes().all(|b| CHARSET.contains(&b)));
        }
    }
}
