//! Trace and span ids in the W3C Trace Context format: lowercase hex,
//! 32 characters for a trace id, 16 for a span id, never all zeros.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a trace or span id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseIdError {
    expected_len: usize,
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} hexadecimal characters, not all zero",
            self.expected_len
        )
    }
}

impl std::error::Error for ParseIdError {}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $int:ty, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name($int);

        impl $name {
            /// Number of hex characters in the textual form.
            pub const HEX_LEN: usize = $len;

            /// A fresh random id (never zero, which W3C reserves as invalid).
            pub fn random() -> Self {
                loop {
                    let v: $int = rand::random();
                    if v != 0 {
                        return Self(v);
                    }
                }
            }

            /// The id with this numeric value; `None` for zero (invalid).
            pub const fn new(value: $int) -> Option<Self> {
                if value == 0 {
                    None
                } else {
                    Some(Self(value))
                }
            }

            /// The numeric value.
            pub const fn get(self) -> $int {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:0width$x}", self.0, width = $len)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        /// Exactly the hex digits (either case; W3C writes lowercase, which
        /// is what `Display` gives back); all zeros is refused.
        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let err = ParseIdError { expected_len: $len };
                if s.len() != $len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err);
                }
                let v = <$int>::from_str_radix(s, 16).map_err(|_| err.clone())?;
                Self::new(v).ok_or(err)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

hex_id!(
    /// A 128-bit trace id, shown as 32 lowercase hex characters (W3C
    /// `trace-id`).
    TraceId,
    u128,
    32
);

hex_id!(
    /// A 64-bit span id, shown as 16 lowercase hex characters (W3C
    /// `parent-id`). Unique within a trace with overwhelming probability;
    /// unrelated to `tracing`'s own `span::Id`, which is reused.
    SpanId,
    u64,
    16
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_round_trips_as_32_lowercase_hex() {
        let id = TraceId::random();
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(s.parse::<TraceId>().unwrap(), id);
        let small = TraceId::new(1).unwrap();
        assert_eq!(small.to_string(), "00000000000000000000000000000001");
    }

    #[test]
    fn parse_refuses_bad_ids() {
        for bad in [
            "",
            "0af7651916cd43dd8448eb211c80319",   // 31
            "0af7651916cd43dd8448eb211c80319c0", // 33
            "0af7651916cd43dd8448eb211c80319g",
            "+af7651916cd43dd8448eb211c80319c",
            "00000000000000000000000000000000",
        ] {
            assert!(bad.parse::<TraceId>().is_err(), "{bad:?}");
        }
        let upper: TraceId = "0AF7651916CD43DD8448EB211C80319C".parse().unwrap();
        assert_eq!(upper.to_string(), "0af7651916cd43dd8448eb211c80319c");
    }

    #[test]
    fn span_id_is_16_hex_and_serializes_as_a_string() {
        let id: SpanId = "00f067aa0ba902b7".parse().unwrap();
        assert_eq!(id.to_string(), "00f067aa0ba902b7");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"00f067aa0ba902b7\"");
        let back: SpanId = serde_json::from_str("\"00f067aa0ba902b7\"").unwrap();
        assert_eq!(back, id);
        assert!("0000000000000000".parse::<SpanId>().is_err());
        assert_eq!(SpanId::random().to_string().len(), 16);
    }
}
