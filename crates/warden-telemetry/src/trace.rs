//! What the store keeps: traces, their spans and events, and summaries.

use std::mem::size_of;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use tracing::Level;

use crate::id::{SpanId, TraceId};

/// One field: its name and its value as text (redacted and capped).
pub type FieldValue = (&'static str, String);

/// A finished trace: a root span and everything recorded inside it.
#[derive(Debug, Clone, Serialize)]
pub struct Trace {
    /// The trace id (random, or the root span's `trace_id` field).
    pub id: TraceId,
    /// The spans in the order they were created; the root first. A span's
    /// parent always comes before it.
    pub spans: Vec<SpanRecord>,
    /// Whether spans or events were dropped to keep the trace within the
    /// limits (cut field values do not count: they carry their own marker).
    pub truncated: bool,
    /// Spans left out (beyond `max_spans_per_trace` or the byte budget).
    pub dropped_spans: usize,
    /// Events left out (beyond `max_events_per_trace`, the byte budget, or
    /// emitted in a dropped span).
    pub dropped_events: usize,
    /// The estimated heap bytes this trace takes in the store.
    pub size_bytes: usize,
}

/// One span of a trace.
#[derive(Debug, Clone, Serialize)]
pub struct SpanRecord {
    pub id: SpanId,
    /// `None` for the root.
    pub parent: Option<SpanId>,
    pub name: &'static str,
    pub target: &'static str,
    #[serde(serialize_with = "level_str")]
    pub level: Level,
    /// Wall-clock time of creation.
    pub start: DateTime<Utc>,
    /// `start + duration`.
    pub end: DateTime<Utc>,
    /// From creation to close, on the monotonic clock.
    #[serde(rename = "duration_ns", serialize_with = "nanos")]
    pub duration: Duration,
    /// Fields in the order first recorded; a field recorded again keeps
    /// its last value. Fields declared `Empty` and never recorded are absent.
    pub fields: Vec<FieldValue>,
    /// Events emitted while this span was the current one (or with it as
    /// explicit parent), in order.
    pub events: Vec<EventRecord>,
}

/// One log event inside a span.
#[derive(Debug, Clone, Serialize)]
pub struct EventRecord {
    /// Wall-clock time, on the trace's timeline (see the crate docs).
    pub time: DateTime<Utc>,
    #[serde(serialize_with = "level_str")]
    pub level: Level,
    pub target: &'static str,
    /// The event's `message` field, if it has one.
    pub message: Option<String>,
    pub fields: Vec<FieldValue>,
}

/// A line of the dashboard's list of recent traces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    pub id: TraceId,
    /// The root span's name.
    pub name: &'static str,
    pub start: DateTime<Utc>,
    #[serde(rename = "duration_ns", serialize_with = "nanos")]
    pub duration: Duration,
    pub span_count: usize,
    pub event_count: usize,
    /// Whether any event was at level ERROR.
    pub has_error: bool,
    pub size_bytes: usize,
    pub truncated: bool,
    /// For a request's trace, the root's `http.request.method`.
    pub method: Option<String>,
    /// The root's `http.route` (the matched route, not the path).
    pub route: Option<String>,
    /// The root's `http.response.status_code`.
    pub status: Option<u16>,
    /// The root's `user_id` (the signed-in user, once known).
    pub user_id: Option<String>,
}

fn level_str<S: Serializer>(level: &Level, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(level.as_str())
}

fn nanos<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Trace {
    /// The root span (the first); `None` only for a hand-made empty trace.
    pub fn root(&self) -> Option<&SpanRecord> {
        self.spans.first()
    }

    /// The span with this id.
    pub fn span(&self, id: SpanId) -> Option<&SpanRecord> {
        self.spans.iter().find(|s| s.id == id)
    }

    /// The spans whose parent is `id`.
    pub fn children(&self, id: SpanId) -> impl Iterator<Item = &SpanRecord> {
        self.spans.iter().filter(move |s| s.parent == Some(id))
    }

    /// Every event with the span it belongs to.
    pub fn events(&self) -> impl Iterator<Item = (&SpanRecord, &EventRecord)> {
        self.spans
            .iter()
            .flat_map(|s| s.events.iter().map(move |e| (s, e)))
    }

    /// Whether any event was at level ERROR.
    pub fn has_error(&self) -> bool {
        self.events().any(|(_, e)| e.level == Level::ERROR)
    }

    /// The trace's line in [`crate::TraceStore::recent`].
    pub fn summary(&self) -> TraceSummary {
        let root = self.root();
        let field = |name: &str| {
            root.and_then(|r| r.fields.iter().find(|(k, _)| *k == name))
                .map(|(_, v)| v.clone())
        };
        TraceSummary {
            method: field("http.request.method"),
            route: field("http.route"),
            status: field("http.response.status_code").and_then(|s| s.parse().ok()),
            user_id: field("user_id").filter(|u| !u.is_empty()),
            id: self.id,
            name: root.map_or("", |r| r.name),
            start: root.map_or(DateTime::<Utc>::UNIX_EPOCH, |r| r.start),
            duration: root.map_or(Duration::ZERO, |r| r.duration),
            span_count: self.spans.len(),
            event_count: self.spans.iter().map(|s| s.events.len()).sum(),
            has_error: self.has_error(),
            size_bytes: self.size_bytes,
            truncated: self.truncated,
        }
    }

    /// Drops what does not fit in `budget` bytes: events first (the latest
    /// spans' latest events), then spans from the last created (never a
    /// kept span's parent, since parents come first), then the root's
    /// fields. Then sets `size_bytes`. Returns whether it fits.
    pub(crate) fn fit_and_measure(&mut self, budget: usize) -> bool {
        let mut size = estimate(self);
        if size > budget {
            'events: for span in self.spans.iter_mut().rev() {
                while let Some(e) = span.events.pop() {
                    size -= event_size(&e);
                    self.dropped_events += 1;
                    self.truncated = true;
                    if size <= budget {
                        break 'events;
                    }
                }
            }
        }
        while size > budget && self.spans.len() > 1 {
            if let Some(s) = self.spans.pop() {
                size -= span_size(&s);
                self.dropped_spans += 1;
                self.truncated = true;
            }
        }
        if size > budget {
            if let Some(root) = self.spans.first_mut() {
                size -= fields_size(&root.fields);
                root.fields.clear();
                self.truncated = true;
            }
        }
        // Make the vectors' capacities match what was counted.
        self.spans.shrink_to_fit();
        for s in &mut self.spans {
            s.events.shrink_to_fit();
            s.fields.shrink_to_fit();
        }
        self.size_bytes = size;
        size <= budget
    }
}

/// Fixed bytes of a trace in the store besides its spans: the `Trace`, its
/// precomputed summary, the `Arc`'s counters, the ring entry's sequence
/// number and pointer, and the id index's key and value (counted twice for
/// the hash table's slack).
pub(crate) const TRACE_OVERHEAD: usize = size_of::<Trace>()
    + size_of::<TraceSummary>()
    + 2 * size_of::<usize>()
    + size_of::<u64>()
    + size_of::<usize>()
    + 2 * (size_of::<TraceId>() + size_of::<u64>());

pub(crate) fn fields_size(fields: &[FieldValue]) -> usize {
    fields
        .iter()
        .map(|(_, v)| size_of::<FieldValue>() + v.len())
        .sum()
}

pub(crate) fn event_size(e: &EventRecord) -> usize {
    size_of::<EventRecord>() + e.message.as_ref().map_or(0, String::len) + fields_size(&e.fields)
}

/// A span without its events.
pub(crate) fn span_own_size(fields: &[FieldValue]) -> usize {
    size_of::<SpanRecord>() + fields_size(fields)
}

fn span_size(s: &SpanRecord) -> usize {
    span_own_size(&s.fields) + s.events.iter().map(event_size).sum::<usize>()
}

/// The estimated heap bytes of a trace: record sizes plus string lengths
/// (names and targets are `&'static str` and take no heap).
pub(crate) fn estimate(t: &Trace) -> usize {
    TRACE_OVERHEAD + t.spans.iter().map(span_size).sum::<usize>()
}
