//! Validation rules shared by the DTOs.

/// Most wallets one `create_wallets` call may create (public API: `count` ≤ 50).
pub const MAX_WALLETS_PER_REQUEST: u32 = 50;
/// Largest `pageSize` (public API: 1 to 50).
pub const MAX_PAGE_SIZE: u32 = 50;
/// Longest id (`requestId`, `vaultId`, `walletId`, `sinoId`, …) in characters. Our choice;
/// the public API does not state one.
pub const MAX_ID_LEN: usize = 128;
/// Longest name (wallet, organization, user) in characters. Our choice.
pub const MAX_NAME_LEN: usize = 128;
/// Longest `sign_message` message in bytes (1 MiB). Our choice.
pub const MAX_MESSAGE_LEN: usize = 1 << 20;
/// Longest `rawData` in bytes after hex decoding (64 KiB). Our choice.
pub const MAX_RAW_DATA_LEN: usize = 1 << 16;
/// Most components of an HD path (BIP-32 depth is one byte).
pub const MAX_HD_PATH_DEPTH: usize = 255;

/// A request field that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The JSON name of the field (`walletInfos[2].walletName` for nested ones).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl ValidationError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Checks the rules serde cannot express.
pub trait Validate {
    /// `Ok` when every field is acceptable, else the first offending field.
    fn validate(&self) -> Result<(), ValidationError>;
}

pub(crate) fn id(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_ID_LEN {
        return Err(ValidationError::new(
            field,
            format!("longer than {MAX_ID_LEN} characters"),
        ));
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ValidationError::new(
            field,
            "must be printable ASCII without spaces",
        ));
    }
    Ok(())
}

pub(crate) fn name(field: &str, value: &str, required: bool) -> Result<(), ValidationError> {
    if required && value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME_LEN {
        return Err(ValidationError::new(
            field,
            format!("longer than {MAX_NAME_LEN} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Decodes hex without `0x` prefix (either case), of `min..=max` bytes.
pub(crate) fn hex_bytes(
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, ValidationError> {
    if value.starts_with("0x") || value.starts_with("0X") {
        return Err(ValidationError::new(
            field,
            "hex without 0x prefix expected",
        ));
    }
    let bytes = hex::decode(value)
        .map_err(|_| ValidationError::new(field, "not hex (even number of 0-9a-f digits)"))?;
    if bytes.len() < min || bytes.len() > max {
        let want = if min == max {
            format!("{min} bytes")
        } else {
            format!("{min} to {max} bytes")
        };
        return Err(ValidationError::new(
            field,
            format!("is {} bytes, expected {want}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// Parses an HD path: `m` followed by up to [`MAX_HD_PATH_DEPTH`] components `/n`, each a
/// canonical decimal (no sign, no leading zero) below 2^31. Hardened components (`'`, `h`)
/// are refused: keys are derived non-hardened so every party can derive them from the
/// shared public key. Returns the component indices.
pub fn parse_hd_path(path: &str) -> Result<Vec<u32>, String> {
    let rest = path
        .strip_prefix('m')
        .ok_or_else(|| "must start with \"m\"".to_owned())?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let rest = rest
        .strip_prefix('/')
        .ok_or_else(|| "components must be separated by \"/\"".to_owned())?;
    let mut out = Vec::new();
    for part in rest.split('/') {
        if part.ends_with('\'') || part.ends_with('h') || part.ends_with('H') {
            return Err(format!("hardened component {part:?} is not supported"));
        }
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("component {part:?} is not a decimal index"));
        }
        if part.len() > 1 && part.starts_with('0') {
            return Err(format!("component {part:?} has a leading zero"));
        }
        let index: u32 = part
            .parse()
            .map_err(|_| format!("component {part:?} is out of range"))?;
        if index >= 1 << 31 {
            return Err(format!(
                "component {part:?} is not below 2^31 (non-hardened)"
            ));
        }
        out.push(index);
        if out.len() > MAX_HD_PATH_DEPTH {
            return Err(format!("deeper than {MAX_HD_PATH_DEPTH} components"));
        }
    }
    Ok(out)
}

pub(crate) fn hd_path(field: &str, value: &str) -> Result<Vec<u32>, ValidationError> {
    parse_hd_path(value).map_err(|reason| ValidationError::new(field, reason))
}

pub(crate) fn non_hardened(field: &str, value: u32) -> Result<(), ValidationError> {
    if value >= 1 << 31 {
        return Err(ValidationError::new(
            field,
            "must be below 2^31 (non-hardened)",
        ));
    }
    Ok(())
}

/// Formats a millisecond Unix timestamp as the API's `requestTime`:
/// `yyyy-MM-dd HH:mm:ss` in GMT+8 (China Standard Time, no daylight saving).
pub fn format_request_time(unix_ms: i64) -> String {
    const OFFSET_S: i64 = 8 * 3600;
    let secs = unix_ms.div_euclid(1000) + OFFSET_S;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (era-based conversion).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_time() {
        assert_eq!(format_request_time(0), "1970-01-01 08:00:00");
        // 2024-02-29 15:59:59.999 UTC = 2024-02-29 23:59:59 GMT+8.
        assert_eq!(
            format_request_time(1_709_222_399_999),
            "2024-02-29 23:59:59"
        );
        // One second later it is March 1st in GMT+8.
        assert_eq!(
            format_request_time(1_709_222_400_000),
            "2024-03-01 00:00:00"
        );
        // 2000-12-31 16:00:00 UTC = 2001-01-01 00:00:00 GMT+8.
        assert_eq!(format_request_time(978_278_400_000), "2001-01-01 00:00:00");
        assert_eq!(format_request_time(-1), "1970-01-01 07:59:59");
    }

    #[test]
    fn hd_paths() {
        assert_eq!(parse_hd_path("m").unwrap(), Vec::<u32>::new());
        assert_eq!(parse_hd_path("m/1/1/60/0").unwrap(), vec![1, 1, 60, 0]);
        assert_eq!(parse_hd_path("m/2147483647").unwrap(), vec![2_147_483_647]);
        for bad in [
            "",
            "M/1",
            "m/",
            "m//1",
            "m/1/",
            "m/01",
            "m/1'",
            "m/1h",
            "m/2147483648",
            "m/-1",
            "m/+1",
            "m1",
            "m/ 1",
            "/1",
            "m/4294967296",
            "m/1/a",
        ] {
            assert!(parse_hd_path(bad).is_err(), "{bad:?}");
        }
        let deep = format!("m{}", "/0".repeat(MAX_HD_PATH_DEPTH));
        assert!(parse_hd_path(&deep).is_ok());
        assert!(parse_hd_path(&format!("{deep}/0")).is_err());
    }

    #[test]
    fn hex_rules() {
        assert_eq!(hex_bytes("f", "00ff", 1, 2).unwrap(), vec![0, 255]);
        assert_eq!(hex_bytes("f", "00FF", 1, 2).unwrap(), vec![0, 255]);
        assert!(hex_bytes("f", "0x00", 1, 2).is_err());
        assert!(hex_bytes("f", "0", 1, 2).is_err());
        assert!(hex_bytes("f", "", 1, 2).is_err());
        assert!(hex_bytes("f", "000000", 1, 2).is_err());
        assert!(hex_bytes("f", "zz", 1, 2).is_err());
    }
}
