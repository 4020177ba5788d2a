//! The W3C `traceparent` header (Trace Context, version 00): parsed on the
//! way in, written on the way out. Written here rather than taken from the
//! OpenTelemetry SDK's propagator because it is needed without the SDK (the
//! in-process store propagates ids with export off), and it is one line of
//! fixed-width hex.

use crate::id::{SpanId, TraceId};

/// A parsed `traceparent`: the caller's trace, its span, and whether it
/// sampled the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub parent_id: SpanId,
    pub sampled: bool,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`. A later version's header is
    /// read by its first four fields, as the spec asks; anything malformed
    /// (upper case, all-zero ids, version `ff`) is `None` and ignored.
    pub fn parse(header: &str) -> Option<TraceParent> {
        let h = header.trim();
        let mut parts = h.splitn(5, '-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        let rest = parts.next();
        let lower_hex = |s: &str| s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if version.len() != 2 || !lower_hex(version) || version == "ff" {
            return None;
        }
        if version == "00" && rest.is_some() {
            return None;
        }
        if flags.len() != 2 || !lower_hex(flags) || !lower_hex(trace) || !lower_hex(parent) {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        Some(TraceParent {
            trace_id: trace.parse().ok()?,
            parent_id: parent.parse().ok()?,
            sampled: flags & 1 == 1,
        })
    }

    /// `00-<trace id>-<span id>-<flags>`.
    pub fn header(trace_id: TraceId, span_id: SpanId, sampled: bool) -> String {
        format!(
            "00-{trace_id}-{span_id}-{}",
            if sampled { "01" } else { "00" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example() {
        let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id.to_string(), "00f067aa0ba902b7");
        assert!(tp.sampled);
        assert_eq!(
            TraceParent::header(tp.trace_id, tp.parent_id, true),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
    }

    #[test]
    fn refuses_malformed_headers() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        // A future version may add fields.
        assert!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more")
                .is_some()
        );
    }
}
