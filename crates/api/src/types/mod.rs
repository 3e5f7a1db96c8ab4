//! Request and response DTOs of the coordinator API, with validation.
//!
//! Field names and JSON types follow the public WaaS API (the Go SDK's structs): camelCase
//! names, ids as strings, flags and enumerations as numbers. Where the public API is silent
//! the choice is documented on the field. Deserialization ignores unknown fields (the Java
//! SDK sends extra ones such as `assetId`) and refuses duplicate fields and enumeration
//! values outside their set; [`Validate::validate`] checks the remaining rules (ranges,
//! lengths, hex, HD paths) and names the offending field.
//!
//! Numeric enumerations serialize as their number ([`AddressAlgorithm::Secp256k1`] is `0`).

pub mod admin;
mod validate;
mod waas;

pub use validate::{
    MAX_HD_PATH_DEPTH, MAX_ID_LEN, MAX_MESSAGE_LEN, MAX_NAME_LEN, MAX_PAGE_SIZE, MAX_RAW_DATA_LEN,
    MAX_WALLETS_PER_REQUEST, Validate, ValidationError, format_request_time, parse_hd_path,
};
pub use waas::*;

/// Declares a fieldless enum that (de)serializes as a number through `TryFrom`/`Into`.
macro_rules! numeric_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "i64", into = "i64")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The wire number.
            pub fn as_number(self) -> $repr {
                match self { $( $name::$variant => $value, )+ }
            }
        }

        impl From<$name> for i64 {
            fn from(v: $name) -> i64 {
                i64::from(v.as_number())
            }
        }

        impl TryFrom<i64> for $name {
            type Error = String;
            fn try_from(n: i64) -> Result<Self, String> {
                match n {
                    $( $value => Ok($name::$variant), )+
                    other => Err(format!(
                        concat!("invalid ", stringify!($name), " {}; expected one of {:?}"),
                        other,
                        [$($value),+]
                    )),
                }
            }
        }
    };
}
pub(crate) use numeric_enum;
