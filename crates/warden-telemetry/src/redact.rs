//! What a field may show: redaction by name and a cap on value length.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};

/// The value recorded in place of a sensitive field's.
pub const REDACTED: &str = "[redacted]";

/// Longest value kept, in bytes (field values and event messages). Longer
/// ones are cut at a character boundary and end with [`CUT_MARKER`].
pub const MAX_VALUE_BYTES: usize = 1024;

/// Appended to a value that was cut to [`MAX_VALUE_BYTES`].
pub const CUT_MARKER: &str = "…[cut]";

/// A field whose name contains one of these (ASCII case-insensitive) is
/// redacted.
pub const SENSITIVE_NAME_PARTS: &[&str] = &[
    "password",
    "token",
    "secret",
    "cookie",
    "authorization",
    "code",
    "otp",
    "key",
    "credential",
    "session_token",
];

/// Names (ASCII case-insensitive, whole name) that are never redacted: they
/// identify things but grant nothing. Checked before [`SENSITIVE_NAME_PARTS`].
/// `status_code` and `code.*` are OpenTelemetry's names for an HTTP status
/// and a source location.
pub const ALLOWED_NAMES: &[&str] = &[
    "session_id",
    "user_id",
    "trace_id",
    "http.response.status_code",
    "otel.status_code",
    "status_code",
    "code.filepath",
    "code.file.path",
    "code.lineno",
    "code.line.number",
    "code.namespace",
    "code.function.name",
    "code.module.name",
];

/// Whether a field called `name` is recorded as [`REDACTED`].
pub fn is_sensitive(name: &str) -> bool {
    if ALLOWED_NAMES.iter().any(|a| name.eq_ignore_ascii_case(a)) {
        return false;
    }
    SENSITIVE_NAME_PARTS
        .iter()
        .any(|part| contains_ignore_ascii_case(name, part))
}

/// [`is_sensitive`] for a field name (always `&'static`, from a callsite):
/// remembered per name, per thread, since the same few names are recorded
/// on every request.
fn is_sensitive_static(name: &'static str) -> bool {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static KNOWN: RefCell<HashMap<(usize, usize), bool>> = RefCell::new(HashMap::new());
    }
    let key = (name.as_ptr() as usize, name.len());
    KNOWN.with(|k| {
        if let Some(&v) = k.borrow().get(&key) {
            return v;
        }
        let v = is_sensitive(name);
        let mut k = k.borrow_mut();
        // Names come from callsites, a fixed set; the bound is a backstop.
        if k.len() < 4096 {
            k.insert(key, v);
        }
        v
    })
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// `s`, cut to [`MAX_VALUE_BYTES`] (plus the marker) when longer.
pub(crate) fn capped(s: &str) -> String {
    if s.len() <= MAX_VALUE_BYTES {
        return s.to_owned();
    }
    let end = floor_char_boundary(s, MAX_VALUE_BYTES);
    let mut out = String::with_capacity(end + CUT_MARKER.len());
    out.push_str(&s[..end]);
    out.push_str(CUT_MARKER);
    out
}

/// A `fmt::Write` that stops (with an error, ending the formatting early)
/// once [`MAX_VALUE_BYTES`] are written, so a huge `Debug` value is never
/// formatted in full.
struct Bounded {
    buf: String,
    cut: bool,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = MAX_VALUE_BYTES - self.buf.len();
        if s.len() <= room {
            self.buf.push_str(s);
            Ok(())
        } else {
            self.buf.push_str(&s[..floor_char_boundary(s, room)]);
            self.cut = true;
            Err(fmt::Error)
        }
    }
}

pub(crate) fn capped_debug(value: &dyn fmt::Debug) -> String {
    let mut b = Bounded {
        buf: String::new(),
        cut: false,
    };
    // An error here is ours (the cap) or the value's own; either way, keep
    // what was written.
    let _ = write!(b, "{value:?}");
    if b.cut {
        b.buf.push_str(CUT_MARKER);
    }
    b.buf
}

/// Collects fields as `(name, value)` strings, redacted and capped. For an
/// event, the `message` field goes to `message` instead.
pub(crate) struct FieldVisitor<'a> {
    pub fields: &'a mut Vec<(&'static str, String)>,
    pub message: Option<&'a mut Option<String>>,
}

impl FieldVisitor<'_> {
    fn put(&mut self, field: &Field, value: impl FnOnce() -> String) {
        let name = field.name();
        // `otel.name`, `otel.kind`, ...: directions to the OpenTelemetry
        // exporter, not data; not kept (and not formatted).
        if name.starts_with("otel.") {
            return;
        }
        if name == "message" {
            if let Some(message) = self.message.as_deref_mut() {
                *message = Some(value());
                return;
            }
        }
        let value = if is_sensitive_static(name) {
            // The value is not even formatted.
            REDACTED.to_owned()
        } else {
            value()
        };
        // `on_record` may record a field again: the last value wins.
        match self.fields.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((name, value)),
        }
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, || capped(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, || capped_debug(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_names() {
        for name in [
            "password",
            "new_password",
            "Password",
            "token",
            "access_token",
            "refresh_token",
            "session_token",
            "Authorization",
            "http.authorization",
            "cookie",
            "Set-Cookie",
            "client_secret",
            "code",
            "backup_code",
            "otp",
            "api_key",
            "KEY",
            "credential",
            "credentials",
        ] {
            assert!(is_sensitive(name), "{name} should be redacted");
        }
        for name in [
            "user_id",
            "session_id",
            "trace_id",
            "USER_ID",
            "Session_Id",
            "email",
            "request_id",
            "method",
            "path",
            "status",
            "latency_ms",
            "message",
        ] {
            assert!(!is_sensitive(name), "{name} should be kept");
        }
    }

    #[test]
    fn long_values_are_cut_with_a_marker_at_a_char_boundary() {
        let short = "a".repeat(MAX_VALUE_BYTES);
        assert_eq!(capped(&short), short);
        let long = "é".repeat(MAX_VALUE_BYTES); // 2 bytes each
        let cut = capped(&long);
        assert!(cut.ends_with(CUT_MARKER));
        assert!(cut.len() <= MAX_VALUE_BYTES + CUT_MARKER.len());
        let debug = capped_debug(&vec![7u8; 10_000]);
        assert!(debug.ends_with(CUT_MARKER));
        assert!(debug.len() <= MAX_VALUE_BYTES + CUT_MARKER.len());
        assert_eq!(capped_debug(&42), "42");
    }
}
