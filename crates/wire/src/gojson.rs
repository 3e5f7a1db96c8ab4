//! Byte-exact reproduction of Go's `encoding/json.Marshal` output for the callback structs.
//!
//! The callback protocol signs the serialized bytes, and Go servers verify by re-marshalling
//! their own struct, so "equivalent JSON" is not enough: field order, `omitempty`, and Go's
//! string escaping must all match. This module holds the three pieces the callback types are
//! built from:
//!
//! * [`write_string`]: a JSON string escaped as Go escapes a `string` with `escapeHTML` on
//!   (the `Marshal` default) in go1.19: `<` `>` `&` become `\u003c` `\u003e` `\u0026`, U+2028 and
//!   U+2029 become `\u2028` `\u2029`, `"` `\` `\n` `\r` `\t` get short escapes, other control
//!   bytes become `\u00XX` (lowercase hex; Go 1.22+ writes `\b` `\f` as short escapes, go1.19
//!   and the reference vectors do not), each byte of invalid UTF-8 becomes `\ufffd`, everything
//!   else is literal UTF-8.
//! * [`compact_raw`]: what Go does with a `json.RawMessage` field: validate that the bytes are one
//!   JSON value, drop whitespace between tokens, keep key order and number spelling, keep
//!   existing escape sequences as written, and HTML-escape `<` `>` `&` U+2028 U+2029. Go does
//!   *not* re-escape anything else inside a raw message (invalid UTF-8 passes through as is),
//!   and neither does this.
//! * [`ObjectWriter`]: writes a JSON object field by field in declaration order, with the
//!   `omitempty` rules of Go for strings, ints, string slices and raw messages.

use std::fmt;

/// Go's `encoding/json` scanner refuses nesting deeper than this (`maxNestingDepth`).
pub const MAX_NESTING_DEPTH: usize = 10_000;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Why a raw JSON value was refused by [`compact_raw`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RawJsonError {
    /// The input ended inside a value (or was empty / whitespace only).
    #[error("unexpected end of JSON input")]
    UnexpectedEnd,
    /// A byte that the JSON grammar does not allow at this place.
    #[error("invalid character {} at offset {offset} {context}", DisplayByte(*byte))]
    InvalidCharacter {
        /// The offending byte.
        byte: u8,
        /// Its offset in the input.
        offset: usize,
        /// What the scanner was looking at, in Go's wording where it has one.
        context: &'static str,
    },
    /// Objects/arrays nested deeper than [`MAX_NESTING_DEPTH`].
    #[error("exceeded max nesting depth {MAX_NESTING_DEPTH} at offset {offset}")]
    TooDeep {
        /// Offset of the opening bracket that went too deep.
        offset: usize,
    },
}

struct DisplayByte(u8);

impl fmt::Display for DisplayByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b'\'' => f.write_str("'\\''"),
            b'"' => f.write_str("'\"'"),
            b if b.is_ascii_graphic() || b == b' ' => write!(f, "'{}'", char::from(b)),
            b => write!(f, "0x{b:02x}"),
        }
    }
}

/// Appends `s` as a JSON string literal, escaped exactly as go1.19 `json.Marshal` does.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    write_string_bytes(out, s.as_bytes());
}

/// Like [`write_string`] for bytes that may not be UTF-8 (a Go `string` may hold any bytes):
/// every byte of an invalid sequence becomes `\ufffd`, as Go's `utf8.DecodeRuneInString`
/// reports each such byte as a one-byte `RuneError`.
pub fn write_string_bytes(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for chunk in s.utf8_chunks() {
        write_valid_utf8(out, chunk.valid());
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

fn write_valid_utf8(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            // Other control bytes and the HTML-sensitive ones: \u00XX below.
            0x00..=0x1f | b'<' | b'>' | b'&' => Some(b""),
            // U+2028 LINE SEPARATOR / U+2029 PARAGRAPH SEPARATOR = E2 80 A8 / E2 80 A9.
            0xe2 if bytes.get(i + 1) == Some(&0x80)
                && matches!(bytes.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                Some(b"")
            }
            _ => None,
        };
        let Some(short) = escape else {
            i += 1;
            continue;
        };
        out.extend_from_slice(&bytes[start..i]);
        if !short.is_empty() {
            out.extend_from_slice(short);
            i += 1;
        } else if b == 0xe2 {
            out.extend_from_slice(b"\\u202");
            let last = bytes.get(i + 2).copied().unwrap_or(0xa8);
            out.push(HEX[usize::from(last & 0x0f)]);
            i += 3;
        } else {
            push_u00(out, b);
            i += 1;
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
}

fn push_u00(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(b"\\u00");
    out.push(HEX[usize::from(b >> 4)]);
    out.push(HEX[usize::from(b & 0x0f)]);
}

/// Validates `src` as exactly one JSON value (surrounding whitespace allowed) and returns it
/// the way Go writes a `json.RawMessage` field: compacted, with `<` `>` `&` U+2028 U+2029
/// HTML-escaped. Everything else (key order, duplicate keys, number spelling, escape
/// sequences already present, non-ASCII and even invalid UTF-8 inside strings) is kept byte
/// for byte, because that is what Go's `compact(dst, src, escapeHTML=true)` does.
///
/// The output is itself a fixed point: compacting it again returns the same bytes.
pub fn compact_raw(src: &[u8]) -> Result<Vec<u8>, RawJsonError> {
    let mut c = Compactor {
        src,
        pos: 0,
        out: Vec::with_capacity(src.len()),
        stack: Vec::new(),
    };
    c.run()?;
    Ok(c.out)
}

#[derive(Clone, Copy)]
enum Container {
    Object,
    Array,
}

struct Compactor<'a> {
    src: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    stack: Vec<Container>,
}

impl Compactor<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn invalid(&self, context: &'static str) -> RawJsonError {
        match self.peek() {
            None => RawJsonError::UnexpectedEnd,
            Some(byte) => RawJsonError::InvalidCharacter {
                byte,
                offset: self.pos,
                context,
            },
        }
    }

    /// Emits the current byte and advances.
    fn take(&mut self) {
        if let Some(b) = self.peek() {
            self.out.push(b);
            self.pos += 1;
        }
    }

    fn push(&mut self, kind: Container) -> Result<(), RawJsonError> {
        if self.stack.len() >= MAX_NESTING_DEPTH {
            return Err(RawJsonError::TooDeep { offset: self.pos });
        }
        self.stack.push(kind);
        Ok(())
    }

    fn run(&mut self) -> Result<(), RawJsonError> {
        'value: loop {
            // A value is expected here.
            self.skip_ws();
            match self.peek() {
                Some(b'{') => {
                    self.push(Container::Object)?;
                    self.take();
                    self.skip_ws();
                    if self.peek() == Some(b'}') {
                        self.take();
                        self.stack.pop();
                    } else {
                        self.object_key("looking for beginning of object key string")?;
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    self.push(Container::Array)?;
                    self.take();
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.take();
                        self.stack.pop();
                    } else {
                        continue 'value;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(self.invalid("looking for beginning of value")),
            }
            // A value has just ended: close containers or find the next element.
            loop {
                self.skip_ws();
                match self.stack.last() {
                    None => {
                        return match self.peek() {
                            None => Ok(()),
                            Some(_) => Err(self.invalid("after top-level value")),
                        };
                    }
                    Some(Container::Object) => match self.peek() {
                        Some(b',') => {
                            self.take();
                            self.skip_ws();
                            self.object_key("looking for beginning of object key string")?;
                            continue 'value;
                        }
                        Some(b'}') => {
                            self.take();
                            self.stack.pop();
                        }
                        _ => return Err(self.invalid("after object key:value pair")),
                    },
                    Some(Container::Array) => match self.peek() {
                        Some(b',') => {
                            self.take();
                            continue 'value;
                        }
                        Some(b']') => {
                            self.take();
                            self.stack.pop();
                        }
                        _ => return Err(self.invalid("after array element")),
                    },
                }
            }
        }
    }

    /// An object key string, whitespace, and the colon.
    fn object_key(&mut self, context: &'static str) -> Result<(), RawJsonError> {
        if self.peek() != Some(b'"') {
            return Err(self.invalid(context));
        }
        self.string()?;
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.invalid("after object key"));
        }
        self.take();
        Ok(())
    }

    fn string(&mut self) -> Result<(), RawJsonError> {
        self.take(); // opening quote
        loop {
            let Some(b) = self.peek() else {
                return Err(RawJsonError::UnexpectedEnd);
            };
            match b {
                b'"' => {
                    self.take();
                    return Ok(());
                }
                b'\\' => {
                    self.take();
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.take(),
                        Some(b'u') => {
                            self.take();
                            for _ in 0..4 {
                                match self.peek() {
                                    Some(h) if h.is_ascii_hexdigit() => self.take(),
                                    _ => {
                                        return Err(
                                            self.invalid("in \\u hexadecimal character escape")
                                        );
                                    }
                                }
                            }
                        }
                        _ => return Err(self.invalid("in string escape code")),
                    }
                }
                0x00..=0x1f => return Err(self.invalid("in string literal")),
                b'<' | b'>' | b'&' => {
                    push_u00(&mut self.out, b);
                    self.pos += 1;
                }
                0xe2 if self.src.get(self.pos + 1) == Some(&0x80)
                    && matches!(self.src.get(self.pos + 2), Some(0xa8 | 0xa9)) =>
                {
                    let last = self.src.get(self.pos + 2).copied().unwrap_or(0xa8);
                    self.out.extend_from_slice(b"\\u202");
                    self.out.push(HEX[usize::from(last & 0x0f)]);
                    self.pos += 3;
                }
                _ => self.take(),
            }
        }
    }

    fn digits(&mut self, context: &'static str) -> Result<(), RawJsonError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.invalid(context));
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.take();
        }
        Ok(())
    }

    fn number(&mut self) -> Result<(), RawJsonError> {
        if self.peek() == Some(b'-') {
            self.take();
        }
        match self.peek() {
            Some(b'0') => self.take(),
            Some(b'1'..=b'9') => self.digits("in numeric literal")?,
            _ => return Err(self.invalid("in numeric literal")),
        }
        if self.peek() == Some(b'.') {
            self.take();
            self.digits("after decimal point in numeric literal")?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.take();
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.take();
            }
            self.digits("in exponent of numeric literal")?;
        }
        Ok(())
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), RawJsonError> {
        for &expected in word {
            if self.peek() != Some(expected) {
                return Err(self.invalid("in literal (expecting true, false or null)"));
            }
            self.take();
        }
        Ok(())
    }
}

/// Writes one JSON object field by field, in the order the caller declares them, skipping
/// empty values the way Go's `omitempty` does. Call [`ObjectWriter::finish`] to close it.
pub struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Opens an object (`{`) at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, first: true }
    }

    fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        write_string(self.out, name);
        self.out.push(b':');
    }

    /// A `string` field with `omitempty`: omitted when empty.
    pub fn string_omitempty(&mut self, name: &str, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.key(name);
            write_string(self.out, value);
        }
        self
    }

    /// An `int` field with `omitempty`: omitted when zero.
    pub fn int_omitempty(&mut self, name: &str, value: i64) -> &mut Self {
        if value != 0 {
            self.key(name);
            self.out.extend_from_slice(value.to_string().as_bytes());
        }
        self
    }

    /// A `[]string` field with `omitempty`: omitted when nil or empty.
    pub fn strings_omitempty(&mut self, name: &str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.key(name);
            self.out.push(b'[');
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                write_string(self.out, v);
            }
            self.out.push(b']');
        }
        self
    }

    /// A `json.RawMessage` field with `omitempty`, given bytes that are already in the form
    /// [`compact_raw`] returns; omitted when `None` or empty.
    pub fn raw_omitempty(&mut self, name: &str, compacted: Option<&[u8]>) -> &mut Self {
        if let Some(raw) = compacted.filter(|r| !r.is_empty()) {
            self.key(name);
            self.out.extend_from_slice(raw);
        }
        self
    }

    /// A nested struct field: always written (Go's `omitempty` never omits a struct), possibly
    /// as `{}`. `body` writes the nested fields.
    pub fn object(&mut self, name: &str, body: impl FnOnce(&mut ObjectWriter<'_>)) -> &mut Self {
        self.key(name);
        let mut inner = ObjectWriter::new(self.out);
        body(&mut inner);
        inner.finish();
        self
    }

    /// A pointer-to-struct field with `omitempty`: omitted when `None` (a nil pointer),
    /// otherwise written like [`ObjectWriter::object`], possibly as `{}`.
    pub fn pointer_object<T>(
        &mut self,
        name: &str,
        value: Option<&T>,
        body: impl FnOnce(&mut ObjectWriter<'_>, &T),
    ) -> &mut Self {
        if let Some(v) = value {
            self.object(name, |w| body(w, v));
        }
        self
    }

    /// Closes the object (`}`).
    pub fn finish(self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(input: &str) -> String {
        let mut out = Vec::new();
        write_string(&mut out, input);
        String::from_utf8(out).unwrap()
    }

    fn c(input: &str) -> Result<String, RawJsonError> {
        compact_raw(input.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn string_escapes_like_go() {
        assert_eq!(s(""), r#""""#);
        assert_eq!(s("plain ascii 123"), r#""plain ascii 123""#);
        assert_eq!(s("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(s("\n\r\t"), r#""\n\r\t""#);
        assert_eq!(s("\u{8}\u{c}\u{0}\u{1f}"), r#""\u0008\u000c\u0000\u001f""#);
        assert_eq!(
            s("<a href=\"x\">&</a>"),
            r#""\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e""#
        );
        assert_eq!(s("x\u{2028}y\u{2029}z"), r#""x\u2028y\u2029z""#);
        assert_eq!(s("/ \u{7f} ' é 你 🎉 ¤ •"), "\"/ \u{7f} ' é 你 🎉 ¤ •\"");
        // U+2027 and U+202A are neighbours that stay literal.
        assert_eq!(s("\u{2027}\u{202a}"), "\"\u{2027}\u{202a}\"");
        assert_eq!(s("\u{fffd}"), "\"\u{fffd}\"");
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        let mut out = Vec::new();
        write_string_bytes(&mut out, b"a\xffb\xe2\x80c\xed\xa0\x80d\xc0\xafe\xe2\x80");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""a\ufffdb\ufffd\ufffdc\ufffd\ufffd\ufffdd\ufffd\ufffde\ufffd\ufffd""#
        );
    }

    #[test]
    fn compact_keeps_order_and_spelling() {
        assert_eq!(
            c(" { \"z\" : 1 ,\n\t\"a\":[ 1.50 , -0 , 1e+10, 2E-3 ,true,false,null ], \"d\":{ } ,\"d\":[ ]}\r\n").unwrap(),
            r#"{"z":1,"a":[1.50,-0,1e+10,2E-3,true,false,null],"d":{},"d":[]}"#
        );
        assert_eq!(c("\"x\"").unwrap(), "\"x\"");
        assert_eq!(c(" 12 ").unwrap(), "12");
        assert_eq!(c("null").unwrap(), "null");
    }

    #[test]
    fn compact_html_escapes_but_keeps_other_escapes() {
        assert_eq!(
            c(r#"{"n":"Tom & Jerry <3 > 2","e":"\u003c\/\n\"\\ \uABCD"}"#).unwrap(),
            r#"{"n":"Tom \u0026 Jerry \u003c3 \u003e 2","e":"\u003c\/\n\"\\ \uABCD"}"#
        );
        assert_eq!(
            c("{\"k<\":\"a\u{2028}b\u{2029}c HELLO•WORLD ¤\"}").unwrap(),
            "{\"k\\u003c\":\"a\\u2028b\\u2029c HELLO•WORLD ¤\"}"
        );
        // Invalid UTF-8 inside a raw string passes through untouched, as in Go.
        assert_eq!(
            compact_raw(b"[\"\xff\xe2\x80\"]").unwrap(),
            b"[\"\xff\xe2\x80\"]"
        );
    }

    #[test]
    fn compact_is_idempotent() {
        let once = c("{ \"a\" : \"<&>\u{2028}\" , \"b\" : [ 1 , { } ] }").unwrap();
        assert_eq!(c(&once).unwrap(), once);
    }

    #[test]
    fn compact_rejects_invalid_json() {
        let bad = [
            "",
            "   ",
            "{",
            "}",
            "[",
            "[1,]",
            "[,1]",
            "{,}",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "{a:1}",
            "{'a':1}",
            "01",
            "-",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "tru",
            "nul",
            "True",
            "\"abc",
            "\"\\x\"",
            "\"\\u12g4\"",
            "\"a\nb\"",
            "\"\t\"",
            "1 2",
            "{} {}",
            "[1 2]",
            "{\"a\" 1}",
            "NaN",
            "Infinity",
            "\u{feff}{}",
            "[1]x",
            "\"\\",
            "\"\\u12",
        ];
        for input in bad {
            assert!(c(input).is_err(), "accepted {input:?}");
        }
        assert_eq!(c(""), Err(RawJsonError::UnexpectedEnd));
        assert_eq!(c("[1,"), Err(RawJsonError::UnexpectedEnd));
        assert!(matches!(
            c("[1 2]"),
            Err(RawJsonError::InvalidCharacter {
                byte: b'2',
                offset: 3,
                ..
            })
        ));
    }

    #[test]
    fn compact_depth_limit_matches_go() {
        let ok = format!(
            "{}{}",
            "[".repeat(MAX_NESTING_DEPTH),
            "]".repeat(MAX_NESTING_DEPTH)
        );
        assert!(c(&ok).is_ok());
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_NESTING_DEPTH + 1),
            "]".repeat(MAX_NESTING_DEPTH + 1)
        );
        assert!(matches!(c(&deep), Err(RawJsonError::TooDeep { .. })));
        // No recursion: a huge unterminated input is an error, not a stack overflow.
        assert!(c(&"[".repeat(1_000_000)).is_err());
    }

    #[test]
    fn object_writer_omitempty() {
        let mut out = Vec::new();
        let mut w = ObjectWriter::new(&mut out);
        w.string_omitempty("a", "")
            .int_omitempty("t", 0)
            .int_omitempty("n", -3)
            .strings_omitempty("p", &[])
            .raw_omitempty("r", None)
            .raw_omitempty("r2", Some(b""))
            .object("o", |_| {})
            .pointer_object("nil", None::<&u8>, |_, _| {})
            .pointer_object("ptr", Some(&7u8), |w, v| {
                w.int_omitempty("v", i64::from(*v));
            })
            .strings_omitempty("q", &["x".into(), "<".into()])
            .raw_omitempty("raw", Some(b"{\"k\":1}"));
        w.finish();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"n":-3,"o":{},"ptr":{"v":7},"q":["x","\u003c"],"raw":{"k":1}}"#
        );
    }
}
