//! The `/sys` request body: `{"shard_bkey": "<password or share>"}`, accepted whatever the
//! `Content-Type` says (node.sh sends `text/plain`) and with any JSON whitespace.
//!
//! Error messages never repeat the body (it holds a password): they say what shape is expected.

use serde::Deserialize;
use zeroize::Zeroizing;

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// No body at all.
    #[error("empty body; send {{\"shard_bkey\": \"<password or share>\"}}")]
    Empty,
    /// Larger than [`MAX_BODY`].
    #[error("body is larger than {MAX_BODY} bytes")]
    TooLarge,
    /// Not UTF-8.
    #[error("body is not UTF-8 text")]
    NotUtf8,
    /// JSON syntax error (typically an unescaped `"` or `\` in a password sent by node.sh).
    #[error(
        "body is not valid JSON (line {line}, column {column}); passwords containing \" or \\ must be JSON-escaped"
    )]
    NotJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// Valid JSON of another shape.
    #[error(
        "body must be a JSON object {{\"shard_bkey\": \"<password or share>\"}} with no other fields"
    )]
    Shape,
    /// `shard_bkey` is the empty string.
    #[error("shard_bkey is empty")]
    EmptyKey,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    shard_bkey: String,
}

/// Parses a `/sys` body into the password or share it carries.
pub fn parse_bkey(body: &[u8]) -> Result<Zeroizing<String>, BodyError> {
    if body.len() > MAX_BODY {
        return Err(BodyError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| BodyError::NotUtf8)?;
    if text.trim().is_empty() {
        return Err(BodyError::Empty);
    }
    let req: Request = serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => BodyError::NotJson {
                line: e.line(),
                column: e.column(),
            },
            Category::Data => BodyError::Shape,
        }
    })?;
    let key = Zeroizing::new(req.shard_bkey);
    if key.is_empty() {
        return Err(BodyError::EmptyKey);
    }
    Ok(key)
}

/// `{"path": …}`-free body check for routes that take no input (`/sys/backup`): anything up to
/// [`MAX_BODY`] is ignored.
pub fn ignore_body(body: &[u8]) -> Result<(), BodyError> {
    if body.len() > MAX_BODY {
        return Err(BodyError::TooLarge);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_sh_bodies_parse() {
        let b = "{\n  \"shard_bkey\": \"Correct-Horse-9\"\n}";
        assert_eq!(
            parse_bkey(b.as_bytes()).unwrap().as_str(),
            "Correct-Horse-9"
        );
        assert_eq!(
            parse_bkey(br#"{"shard_bkey":"a\"b\\c"}"#).unwrap().as_str(),
            "a\"b\\c"
        );
        assert_eq!(
            parse_bkey(b" \t\r\n{ \"shard_bkey\" :\r\n\"x\" } \n")
                .unwrap()
                .as_str(),
            "x"
        );
    }

    #[test]
    fn bad_bodies_are_named() {
        assert_eq!(parse_bkey(b""), Err(BodyError::Empty));
        assert_eq!(parse_bkey(b"  \n"), Err(BodyError::Empty));
        assert_eq!(parse_bkey(&[0xff, 0xfe]), Err(BodyError::NotUtf8));
        let e = parse_bkey(b"{\n  \"shard_bkey\": \"Qx\"Zw\"\n}").unwrap_err();
        assert!(matches!(e, BodyError::NotJson { line: 2, .. }), "{e:?}");
        assert!(e.to_string().contains("must be JSON-escaped"));
        assert!(!e.to_string().contains("Qx") && !e.to_string().contains("Zw"));
        assert_eq!(parse_bkey(b"\"Secret-Pass-1\""), Err(BodyError::Shape));
        assert_eq!(
            parse_bkey(br#"{"shard_bkey":"x","extra":1}"#),
            Err(BodyError::Shape)
        );
        assert_eq!(parse_bkey(br#"{"shard_bkey":5}"#), Err(BodyError::Shape));
        assert_eq!(parse_bkey(br#"{}"#), Err(BodyError::Shape));
        assert_eq!(
            parse_bkey(br#"{"shard_bkey":""}"#),
            Err(BodyError::EmptyKey)
        );
        assert_eq!(
            parse_bkey(&vec![b' '; MAX_BODY + 1]),
            Err(BodyError::TooLarge)
        );
    }
}
