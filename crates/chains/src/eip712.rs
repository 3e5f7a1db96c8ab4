//! EIP-712 typed structured data (`eth_signTypedData_v3` and `_v4`).
//!
//! `digest = keccak256(0x19 0x01 ‖ hashStruct(EIP712Domain, domain) ‖ hashStruct(primaryType,
//! message))`, where `hashStruct(T, v) = keccak256(typeHash(T) ‖ encodeData(T, v))` and
//! `typeHash(T) = keccak256(encodeType(T))`. When `primaryType` is `EIP712Domain` the message
//! hash is left out (as MetaMask's `eth-sig-util` does).
//!
//! # Accepted input
//!
//! The JSON object `{types, primaryType, domain, message}` that wallets receive. Semantics
//! follow MetaMask's `eth-sig-util` where it is well defined, and are stricter where it is
//! lenient (every refusal is a typed [`Eip712Error`] naming the value's path):
//!
//! * `encodeType` lists the primary type, then every struct type it references (through any
//!   depth and through arrays) once, sorted by name.
//! * Types: `address`, `bool`, `string`, `bytes`, `bytes1`…`bytes32`, `uint8`…`uint256` and
//!   `int8`…`int256` in steps of 8, struct names, and arrays `T[]` / `T[n]` of any of them
//!   (v4 only: **v3 refuses every array type** reachable from the domain or the primary type).
//!   Non-canonical spellings (`uint`, `bytes01`, `uint007`) and undefined struct names are
//!   refused. If `types` has no `EIP712Domain`, it is the empty struct (as in `eth-sig-util`).
//! * Integers: JSON integers that fit in 64 bits, or strings in decimal (`"-12"`) or hex
//!   (`"0x1f"`, `"-0x1f"`); range-checked against the declared width. Larger JSON numbers are
//!   refused because JSON parsers round them: send them as strings.
//! * `address`: `0x` + 40 hex digits; mixed case must be a valid EIP-55 checksum.
//! * `bool`: JSON `true`/`false`. `bytesN`: `0x`-hex of exactly N bytes. `bytes`: `0x`-hex
//!   (even length). `string`: any JSON string.
//! * Fixed-size arrays must have exactly their declared length. Array elements are encoded
//!   like fields and the concatenation is hashed; struct elements contribute their
//!   `hashStruct`.
//! * Missing or `null` struct values: in v4 they encode as 32 zero bytes (eth-sig-util v4); in
//!   v3 they are refused (eth-sig-util v3 silently drops missing fields from `encodeData`,
//!   which signs data that does not match its own type hash). Every other missing value is
//!   refused. Keys that the types do not declare are ignored.
//! * Limits: input at most [`MAX_TYPED_DATA_LEN`] bytes, at most [`MAX_TYPES`] types of at most
//!   [`MAX_FIELDS`] fields each; JSON nesting is bounded by the JSON parser (128 levels).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::address::parse_evm_address;
use crate::error::Eip712Error;
use crate::hash::keccak256;
use crate::payload::{HashKind, SignPayload};

/// Largest typed-data JSON accepted, in bytes.
pub const MAX_TYPED_DATA_LEN: usize = 1 << 20;
/// Most struct types in `types`.
pub const MAX_TYPES: usize = 256;
/// Most fields in one struct type.
pub const MAX_FIELDS: usize = 1024;

const DOMAIN_TYPE: &str = "EIP712Domain";

/// Which wallet method's rules apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TypedDataVersion {
    /// `eth_signTypedData_v3`: no arrays.
    V3,
    /// `eth_signTypedData_v4`: arrays, `null` structs as zero.
    V4,
}

/// A base (non-array) field type.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Base {
    Address,
    Bool,
    String,
    Bytes,
    FixedBytes(usize),
    Uint(u32),
    Int(u32),
    Struct(String),
}

/// A parsed field type: base and array dimensions, outermost first (`None` = dynamic length).
#[derive(Clone, Debug, PartialEq, Eq)]
struct FieldType {
    base: Base,
    dims: Vec<Option<usize>>,
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    type_text: String,
    ty: FieldType,
}

/// Parsed and validated typed data, ready to hash under either version.
#[derive(Clone, Debug)]
pub struct TypedData {
    types: BTreeMap<String, Vec<Field>>,
    encoded_types: BTreeMap<String, String>,
    type_hashes: BTreeMap<String, [u8; 32]>,
    primary_type: String,
    domain: Value,
    message: Value,
}

fn malformed(what: &str) -> Eip712Error {
    Eip712Error::Malformed(what.to_string())
}

fn is_identifier(name: &str, allow_dollar: bool) -> bool {
    let mut chars = name.chars();
    let ok_start = |c: char| c.is_ascii_alphabetic() || c == '_' || (allow_dollar && c == '$');
    match chars.next() {
        Some(c) if ok_start(c) => chars.all(|c| ok_start(c) || c.is_ascii_digit()),
        _ => false,
    }
}

/// Parses a canonical decimal number without sign or leading zeros.
fn canonical_number(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 9 || text.starts_with('0') {
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Atomic or dynamic type of a base name, or `None` if it is no elementary type name.
fn elementary(name: &str) -> Option<Result<Base, &'static str>> {
    match name {
        "address" => return Some(Ok(Base::Address)),
        "bool" => return Some(Ok(Base::Bool)),
        "string" => return Some(Ok(Base::String)),
        "bytes" => return Some(Ok(Base::Bytes)),
        "uint" | "int" => return Some(Err("write the width explicitly (uint256 / int256)")),
        _ => {}
    }
    let sized = |suffix: &str| -> Option<Option<usize>> {
        if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
            Some(canonical_number(suffix))
        } else {
            None
        }
    };
    if let Some(rest) = name.strip_prefix("bytes") {
        return sized(rest).map(|n| match n {
            Some(n @ 1..=32) => Ok(Base::FixedBytes(n)),
            _ => Err("bytesN needs N in 1..=32 written without leading zeros"),
        });
    }
    for (prefix, signed) in [("uint", false), ("int", true)] {
        if let Some(rest) = name.strip_prefix(prefix) {
            return sized(rest).map(|n| match n {
                Some(n) if n.is_multiple_of(8) && (8..=256).contains(&n) => {
                    let bits = n as u32;
                    Ok(if signed {
                        Base::Int(bits)
                    } else {
                        Base::Uint(bits)
                    })
                }
                _ => Err("integer width must be a multiple of 8 in 8..=256"),
            });
        }
    }
    None
}

/// Parses a field type string against the set of declared struct names.
fn parse_field_type(
    text: &str,
    struct_names: &BTreeSet<String>,
) -> Result<FieldType, &'static str> {
    let mut rest = text;
    let mut dims = Vec::new();
    while let Some(inner) = rest.strip_suffix(']') {
        let open = inner.rfind('[').ok_or("unbalanced brackets")?;
        let size = &inner[open + 1..];
        dims.push(if size.is_empty() {
            None
        } else {
            Some(canonical_number(size).ok_or("array length must be a positive decimal")?)
        });
        rest = &inner[..open];
    }
    if rest.contains('[') || rest.contains(']') {
        return Err("unbalanced brackets");
    }
    // Brackets were stripped from the end, so `dims` is outermost first already.
    let base = match elementary(rest) {
        Some(result) => result?,
        None if struct_names.contains(rest) => Base::Struct(rest.to_string()),
        None => return Err("not an elementary type and not a struct defined in `types`"),
    };
    Ok(FieldType { base, dims })
}

impl TypedData {
    /// Parses typed-data JSON text (at most [`MAX_TYPED_DATA_LEN`] bytes).
    pub fn from_json(text: &str) -> Result<Self, Eip712Error> {
        if text.len() > MAX_TYPED_DATA_LEN {
            return Err(Eip712Error::TooLarge {
                len: text.len(),
                max: MAX_TYPED_DATA_LEN,
            });
        }
        let value: Value =
            serde_json::from_str(text).map_err(|e| Eip712Error::Json(e.to_string()))?;
        Self::from_value(value)
    }

    /// Parses an already decoded JSON value.
    pub fn from_value(value: Value) -> Result<Self, Eip712Error> {
        let Value::Object(mut top) = value else {
            return Err(malformed("typed data must be a JSON object"));
        };
        let types = match top.remove("types") {
            Some(Value::Object(types)) => types,
            Some(_) => return Err(malformed("`types` must be an object")),
            None => return Err(malformed("missing `types`")),
        };
        let primary_type = match top.remove("primaryType") {
            Some(Value::String(name)) => name,
            Some(_) => return Err(malformed("`primaryType` must be a string")),
            None => return Err(malformed("missing `primaryType`")),
        };
        let domain = match top.remove("domain") {
            Some(domain @ Value::Object(_)) => domain,
            Some(_) => return Err(malformed("`domain` must be an object")),
            None => return Err(malformed("missing `domain`")),
        };
        let message = match top.remove("message") {
            Some(message) => message,
            None if primary_type == DOMAIN_TYPE => Value::Null,
            None => return Err(malformed("missing `message`")),
        };

        let types = parse_types(types)?;
        if !types.contains_key(&primary_type) {
            return Err(Eip712Error::UnknownPrimaryType(primary_type));
        }
        let mut encoded_types = BTreeMap::new();
        let mut type_hashes = BTreeMap::new();
        for name in types.keys() {
            let encoded = encode_type(&types, name);
            type_hashes.insert(name.clone(), keccak256(encoded.as_bytes()));
            encoded_types.insert(name.clone(), encoded);
        }
        Ok(TypedData {
            types,
            encoded_types,
            type_hashes,
            primary_type,
            domain,
            message,
        })
    }

    /// The `primaryType`.
    pub fn primary_type(&self) -> &str {
        &self.primary_type
    }

    /// `encodeType` of a declared struct type, e.g.
    /// `Mail(Person from,Person to,string contents)Person(string name,address wallet)`.
    pub fn encode_type(&self, name: &str) -> Result<&str, Eip712Error> {
        self.encoded_types
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| Eip712Error::UnknownStructType(name.to_string()))
    }

    /// `typeHash` (`keccak256(encodeType)`) of a declared struct type.
    pub fn type_hash(&self, name: &str) -> Result<[u8; 32], Eip712Error> {
        self.type_hashes
            .get(name)
            .copied()
            .ok_or_else(|| Eip712Error::UnknownStructType(name.to_string()))
    }

    /// `hashStruct(EIP712Domain, domain)`.
    pub fn domain_separator(&self, version: TypedDataVersion) -> Result<[u8; 32], Eip712Error> {
        self.check_version(version)?;
        self.hash_struct_at(DOMAIN_TYPE, &self.domain, version, "domain")
    }

    /// `hashStruct(primaryType, message)`, or `None` when the primary type is `EIP712Domain`.
    pub fn message_hash(&self, version: TypedDataVersion) -> Result<Option<[u8; 32]>, Eip712Error> {
        self.check_version(version)?;
        if self.primary_type == DOMAIN_TYPE {
            return Ok(None);
        }
        self.hash_struct_at(&self.primary_type, &self.message, version, "message")
            .map(Some)
    }

    /// `hashStruct(type_name, value)` for any declared struct type.
    pub fn hash_struct(
        &self,
        type_name: &str,
        value: &Value,
        version: TypedDataVersion,
    ) -> Result<[u8; 32], Eip712Error> {
        self.check_version(version)?;
        self.hash_struct_at(type_name, value, version, type_name)
    }

    /// The preimage `0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)` and its Keccak-256
    /// digest.
    pub fn signing_payload(&self, version: TypedDataVersion) -> Result<SignPayload, Eip712Error> {
        let domain = self.domain_separator(version)?;
        let message = self.message_hash(version)?;
        let mut preimage = Vec::with_capacity(66);
        preimage.extend_from_slice(&[0x19, 0x01]);
        preimage.extend_from_slice(&domain);
        if let Some(message) = message {
            preimage.extend_from_slice(&message);
        }
        Ok(SignPayload::new(HashKind::Keccak256, preimage))
    }

    /// v3 refuses any array type reachable from the domain or the primary type.
    fn check_version(&self, version: TypedDataVersion) -> Result<(), Eip712Error> {
        if version == TypedDataVersion::V4 {
            return Ok(());
        }
        let mut seen = BTreeSet::new();
        let mut stack = vec![DOMAIN_TYPE, self.primary_type.as_str()];
        while let Some(name) = stack.pop() {
            if !seen.insert(name) {
                continue;
            }
            for field in self.types.get(name).into_iter().flatten() {
                if !field.ty.dims.is_empty() {
                    return Err(Eip712Error::ArraysNotSupportedInV3 {
                        ty: name.to_string(),
                        field: field.name.clone(),
                    });
                }
                if let Base::Struct(inner) = &field.ty.base {
                    stack.push(inner);
                }
            }
        }
        Ok(())
    }

    fn hash_struct_at(
        &self,
        type_name: &str,
        value: &Value,
        version: TypedDataVersion,
        path: &str,
    ) -> Result<[u8; 32], Eip712Error> {
        let fields = self
            .types
            .get(type_name)
            .ok_or_else(|| Eip712Error::UnknownStructType(type_name.to_string()))?;
        let Value::Object(object) = value else {
            return Err(invalid(path, type_name, "expected a JSON object"));
        };
        let mut encoded = Vec::with_capacity(32 * (fields.len() + 1));
        encoded.extend_from_slice(&self.type_hash(type_name)?);
        for field in fields {
            let field_path = format!("{path}.{}", field.name);
            let word = self.encode_field(
                &field.ty.base,
                &field.ty.dims,
                &field.type_text,
                object_get(object, &field.name),
                version,
                &field_path,
            )?;
            encoded.extend_from_slice(&word);
        }
        Ok(keccak256(&encoded))
    }

    fn encode_field(
        &self,
        base: &Base,
        dims: &[Option<usize>],
        type_text: &str,
        value: Option<&Value>,
        version: TypedDataVersion,
        path: &str,
    ) -> Result<[u8; 32], Eip712Error> {
        if let Some((outer, inner_dims)) = dims.split_first() {
            let value = value.ok_or_else(|| missing(path))?;
            let Value::Array(items) = value else {
                return Err(invalid(path, type_text, "expected a JSON array"));
            };
            if let Some(expected) = outer
                && items.len() != *expected
            {
                return Err(Eip712Error::ArrayLength {
                    path: path.to_string(),
                    expected: *expected,
                    actual: items.len(),
                });
            }
            let mut encoded = Vec::with_capacity(32 * items.len());
            for (i, item) in items.iter().enumerate() {
                let item_path = format!("{path}[{i}]");
                let word = self.encode_field(
                    base,
                    inner_dims,
                    type_text,
                    Some(item),
                    version,
                    &item_path,
                )?;
                encoded.extend_from_slice(&word);
            }
            return Ok(keccak256(&encoded));
        }
        if let Base::Struct(name) = base {
            return match (value, version) {
                (None | Some(Value::Null), TypedDataVersion::V4) => Ok([0u8; 32]),
                (None, TypedDataVersion::V3) => Err(missing(path)),
                (Some(value), _) => self.hash_struct_at(name, value, version, path),
            };
        }
        let value = value.ok_or_else(|| missing(path))?;
        encode_atomic(base, value).map_err(|reason| invalid(path, type_text, reason))
    }
}

fn object_get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key)
}

fn missing(path: &str) -> Eip712Error {
    Eip712Error::MissingValue {
        path: path.to_string(),
    }
}

fn invalid(path: &str, ty: &str, reason: &str) -> Eip712Error {
    Eip712Error::InvalidValue {
        path: path.to_string(),
        ty: ty.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_types(types: Map<String, Value>) -> Result<BTreeMap<String, Vec<Field>>, Eip712Error> {
    if types.len() > MAX_TYPES {
        return Err(Eip712Error::TooManyTypes {
            count: types.len(),
            max: MAX_TYPES,
        });
    }
    let mut names: BTreeSet<String> = BTreeSet::new();
    for name in types.keys() {
        if !is_identifier(name, false) {
            return Err(Eip712Error::InvalidTypeName(name.clone()));
        }
        if elementary(name).is_some() {
            return Err(Eip712Error::InvalidTypeName(name.clone()));
        }
        names.insert(name.clone());
    }
    names.insert(DOMAIN_TYPE.to_string());

    let mut parsed = BTreeMap::new();
    for (name, fields) in types {
        let Value::Array(fields) = fields else {
            return Err(malformed(&format!("`types.{name}` must be an array")));
        };
        if fields.len() > MAX_FIELDS {
            return Err(Eip712Error::TooManyFields {
                ty: name,
                count: fields.len(),
                max: MAX_FIELDS,
            });
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(fields.len());
        for field in fields {
            let (Some(Value::String(field_name)), Some(Value::String(type_text))) =
                (field.get("name"), field.get("type"))
            else {
                return Err(malformed(&format!(
                    "every entry of `types.{name}` must be {{\"name\": string, \"type\": string}}"
                )));
            };
            if !is_identifier(field_name, true) {
                return Err(Eip712Error::InvalidFieldName {
                    ty: name.clone(),
                    field: field_name.clone(),
                });
            }
            if !seen.insert(field_name.clone()) {
                return Err(Eip712Error::DuplicateField {
                    ty: name.clone(),
                    field: field_name.clone(),
                });
            }
            let ty = parse_field_type(type_text, &names).map_err(|reason| {
                Eip712Error::InvalidFieldType {
                    ty: name.clone(),
                    field: field_name.clone(),
                    field_type: type_text.clone(),
                    reason,
                }
            })?;
            out.push(Field {
                name: field_name.clone(),
                type_text: type_text.clone(),
                ty,
            });
        }
        parsed.insert(name, out);
    }
    parsed
        .entry(DOMAIN_TYPE.to_string())
        .or_insert_with(Vec::new);
    Ok(parsed)
}

/// `encodeType(name)`: the type, then its struct dependencies sorted by name.
fn encode_type(types: &BTreeMap<String, Vec<Field>>, name: &str) -> String {
    let mut deps = BTreeSet::new();
    let mut stack = vec![name];
    while let Some(current) = stack.pop() {
        for field in types.get(current).into_iter().flatten() {
            if let Base::Struct(inner) = &field.ty.base
                && inner != name
                && deps.insert(inner.as_str())
            {
                stack.push(inner);
            }
        }
    }
    let mut out = String::new();
    for ty in std::iter::once(name).chain(deps) {
        out.push_str(ty);
        out.push('(');
        for (i, field) in types.get(ty).into_iter().flatten().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&field.type_text);
            out.push(' ');
            out.push_str(&field.name);
        }
        out.push(')');
    }
    out
}

fn encode_atomic(base: &Base, value: &Value) -> Result<[u8; 32], &'static str> {
    let mut word = [0u8; 32];
    match base {
        Base::Address => {
            let Value::String(text) = value else {
                return Err("expected an address string");
            };
            let bytes = parse_evm_address(text)
                .map_err(|_| "expected 0x + 40 hex digits (mixed case must be EIP-55)")?;
            word[12..].copy_from_slice(&bytes);
        }
        Base::Bool => match value {
            Value::Bool(b) => word[31] = u8::from(*b),
            _ => return Err("expected true or false"),
        },
        Base::String => {
            let Value::String(text) = value else {
                return Err("expected a JSON string");
            };
            word = keccak256(text.as_bytes());
        }
        Base::Bytes => word = keccak256(&hex_bytes(value)?),
        Base::FixedBytes(n) => {
            let bytes = hex_bytes(value)?;
            if bytes.len() != *n {
                return Err("hex length does not match bytesN");
            }
            word[..*n].copy_from_slice(&bytes);
        }
        Base::Uint(bits) => {
            let (negative, magnitude) = parse_integer(value)?;
            if negative && magnitude != [0u8; 32] {
                return Err("negative value for an unsigned type");
            }
            if bit_length(&magnitude) > *bits {
                return Err("value does not fit the unsigned width");
            }
            word = magnitude;
        }
        Base::Int(bits) => {
            let (negative, magnitude) = parse_integer(value)?;
            let fits = if negative {
                // |v| <= 2^(bits-1)
                bit_length(&magnitude) < *bits
                    || (bit_length(&magnitude) == *bits && is_power_of_two(&magnitude))
            } else {
                bit_length(&magnitude) < *bits
            };
            if !fits {
                return Err("value does not fit the signed width");
            }
            word = if negative {
                twos_complement(&magnitude)
            } else {
                magnitude
            };
        }
        Base::Struct(_) => return Err("struct where an atomic value was expected"),
    }
    Ok(word)
}

fn hex_bytes(value: &Value) -> Result<Vec<u8>, &'static str> {
    let Value::String(text) = value else {
        return Err("expected a 0x-prefixed hex string");
    };
    let digits = text
        .strip_prefix("0x")
        .ok_or("expected a 0x-prefixed hex string")?;
    if !digits.len().is_multiple_of(2) {
        return Err("odd number of hex digits");
    }
    hex::decode(digits).map_err(|_| "invalid hex digit")
}

/// Parses a JSON integer into (is negative, 256-bit big-endian magnitude).
fn parse_integer(value: &Value) -> Result<(bool, [u8; 32]), &'static str> {
    match value {
        Value::Number(number) => {
            let mut magnitude = [0u8; 32];
            if let Some(v) = number.as_u64() {
                magnitude[24..].copy_from_slice(&v.to_be_bytes());
                Ok((false, magnitude))
            } else if let Some(v) = number.as_i64() {
                magnitude[24..].copy_from_slice(&v.unsigned_abs().to_be_bytes());
                Ok((v < 0, magnitude))
            } else {
                Err("JSON number is fractional or too large to be exact: send it as a string")
            }
        }
        Value::String(text) => {
            let (negative, digits) = match text.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, text.as_str()),
            };
            let magnitude = match digits.strip_prefix("0x") {
                Some(hex_digits) => parse_radix(hex_digits, 16)?,
                None => parse_radix(digits, 10)?,
            };
            Ok((negative, magnitude))
        }
        _ => Err("expected an integer (JSON number or decimal/0x-hex string)"),
    }
}

/// Accumulates digits of `radix` into a 256-bit big-endian number, refusing overflow.
fn parse_radix(digits: &str, radix: u32) -> Result<[u8; 32], &'static str> {
    if digits.is_empty() {
        return Err("empty integer");
    }
    let mut out = [0u8; 32];
    for c in digits.chars() {
        let digit = c.to_digit(radix).ok_or("invalid digit in integer")?;
        let mut carry = digit;
        for byte in out.iter_mut().rev() {
            let v = u32::from(*byte) * radix + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if carry != 0 {
            return Err("integer does not fit in 256 bits");
        }
    }
    Ok(out)
}

fn bit_length(value: &[u8; 32]) -> u32 {
    for (i, byte) in value.iter().enumerate() {
        if *byte != 0 {
            return (32 - i as u32) * 8 - byte.leading_zeros();
        }
    }
    0
}

fn is_power_of_two(value: &[u8; 32]) -> bool {
    value.iter().map(|b| b.count_ones()).sum::<u32>() == 1
}

fn twos_complement(value: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut carry = 1u16;
    for (o, v) in out.iter_mut().zip(value.iter()).rev() {
        let sum = u16::from(!*v) + carry;
        *o = (sum & 0xff) as u8;
        carry = sum >> 8;
    }
    out
}

/// Parses typed-data JSON and returns the signing payload under `version`.
pub fn typed_data_payload(
    json: &str,
    version: TypedDataVersion,
) -> Result<SignPayload, Eip712Error> {
    TypedData::from_json(json)?.signing_payload(version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn word(base: &Base, value: Value) -> Result<String, &'static str> {
        encode_atomic(base, &value).map(hex::encode)
    }

    #[test]
    fn integers() {
        let ff = "00".repeat(31) + "ff";
        assert_eq!(word(&Base::Uint(8), json!(255)).unwrap(), ff);
        assert_eq!(word(&Base::Uint(8), json!("255")).unwrap(), ff);
        assert_eq!(word(&Base::Uint(8), json!("0xff")).unwrap(), ff);
        assert!(word(&Base::Uint(8), json!(256)).is_err());
        assert!(word(&Base::Uint(8), json!(-1)).is_err());
        assert!(word(&Base::Uint(8), json!(1.5)).is_err());
        assert!(word(&Base::Uint(8), json!("")).is_err());
        assert!(word(&Base::Uint(8), json!("+1")).is_err());
        assert!(word(&Base::Uint(8), json!(" 1")).is_err());
        assert!(word(&Base::Uint(8), json!(true)).is_err());
        assert_eq!(word(&Base::Int(8), json!(-1)).unwrap(), "ff".repeat(32));
        assert_eq!(
            word(&Base::Int(8), json!("-128")).unwrap(),
            "ff".repeat(31) + "80"
        );
        assert_eq!(
            word(&Base::Int(8), json!(127)).unwrap(),
            "00".repeat(31) + "7f"
        );
        assert!(word(&Base::Int(8), json!(128)).is_err());
        assert!(word(&Base::Int(8), json!(-129)).is_err());
        let max = "f".repeat(64);
        assert_eq!(
            word(&Base::Uint(256), json!(format!("0x{max}"))).unwrap(),
            max
        );
        let max_dec =
            "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert_eq!(word(&Base::Uint(256), json!(max_dec)).unwrap(), max);
        let over = "115792089237316195423570985008687907853269984665640564039457584007913129639936";
        assert!(word(&Base::Uint(256), json!(over)).is_err());
        let min_i256 = format!("-0x8{}", "0".repeat(63));
        assert_eq!(
            word(&Base::Int(256), json!(min_i256)).unwrap(),
            format!("8{}", "0".repeat(63))
        );
        assert!(word(&Base::Int(256), json!(format!("0x8{}", "0".repeat(63)))).is_err());
        assert_eq!(word(&Base::Int(16), json!("-0")).unwrap(), "00".repeat(32));
    }

    #[test]
    fn bytes_bool_address() {
        assert_eq!(
            word(&Base::FixedBytes(2), json!("0xabcd")).unwrap(),
            format!("abcd{}", "00".repeat(30))
        );
        assert!(word(&Base::FixedBytes(2), json!("0xab")).is_err());
        assert!(word(&Base::FixedBytes(2), json!("abcd")).is_err());
        assert_eq!(
            word(&Base::Bytes, json!("0x")).unwrap(),
            hex::encode(keccak256(b""))
        );
        assert!(word(&Base::Bytes, json!("0xabc")).is_err());
        assert_eq!(
            word(&Base::Bool, json!(true)).unwrap(),
            "00".repeat(31) + "01"
        );
        assert!(word(&Base::Bool, json!("true")).is_err());
        assert!(
            word(
                &Base::Address,
                json!("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
            )
            .is_ok()
        );
        assert!(
            word(
                &Base::Address,
                json!("0xcD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
            )
            .is_err()
        );
    }

    proptest::proptest! {
        /// Integer words against Rust's own two's complement (sign-extended i64) and range
        /// checks, for every width, from JSON numbers and decimal/hex strings alike.
        #[test]
        fn int_words_match_native(v: i64, width in 1u32..=32) {
            let bits = width * 8;
            let mut expected = if v < 0 { [0xffu8; 32] } else { [0u8; 32] };
            expected[24..].copy_from_slice(&v.to_be_bytes());
            let fits = bits >= 64 || (i128::from(v) >= -(1i128 << (bits - 1))
                && i128::from(v) < (1i128 << (bits - 1)));
            let hex_text = if v < 0 {
                format!("-0x{:x}", v.unsigned_abs())
            } else {
                format!("0x{v:x}")
            };
            for value in [json!(v), json!(v.to_string()), json!(hex_text)] {
                let got = encode_atomic(&Base::Int(bits), &value);
                proptest::prop_assert_eq!(got.is_ok(), fits);
                if let Ok(word) = got {
                    proptest::prop_assert_eq!(word, expected);
                }
            }
        }

        #[test]
        fn uint_words_match_native(v: u64, width in 1u32..=32) {
            let bits = width * 8;
            let mut expected = [0u8; 32];
            expected[24..].copy_from_slice(&v.to_be_bytes());
            let fits = bits >= 64 || v < (1u64 << bits);
            for value in [json!(v), json!(v.to_string()), json!(format!("0x{v:x}"))] {
                let got = encode_atomic(&Base::Uint(bits), &value);
                proptest::prop_assert_eq!(got.is_ok(), fits);
                if let Ok(word) = got {
                    proptest::prop_assert_eq!(word, expected);
                }
            }
        }
    }

    #[test]
    fn type_strings() {
        let names: BTreeSet<String> = ["Person".to_string()].into();
        let parsed = parse_field_type("Person[2][]", &names).unwrap();
        assert_eq!(parsed.dims, vec![None, Some(2)]);
        assert_eq!(parsed.base, Base::Struct("Person".into()));
        for bad in [
            "uint",
            "int",
            "uint7",
            "uint264",
            "uint0",
            "uint08",
            "bytes0",
            "bytes33",
            "bytes01",
            "Foo",
            "Person[0]",
            "Person[01]",
            "Person[",
            "Person]",
            "[]",
            "uint256[-1]",
            "uint256[1",
            "address payable",
        ] {
            assert!(parse_field_type(bad, &names).is_err(), "{bad}");
        }
        for good in [
            "uint8",
            "int256",
            "bytes1",
            "bytes32",
            "bytes",
            "string",
            "bool",
            "address[3]",
        ] {
            assert!(parse_field_type(good, &names).is_ok(), "{good}");
        }
    }
}
