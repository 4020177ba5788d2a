//! Timestamps on the wire: RFC 3339 UTC with milliseconds, as JavaScript's
//! `Date.prototype.toISOString` writes them.

use chrono::SecondsFormat;
use serde::Serializer;
use warden_core::Timestamp;

pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

pub fn serialize_opt<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

/// The wire form of a timestamp, as a string.
#[cfg(feature = "passkey")]
pub fn rfc3339(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}
