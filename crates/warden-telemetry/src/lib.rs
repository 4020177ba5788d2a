//! Warden's in-process trace store: recent traces kept in memory, bounded
//! by count and by bytes, for the development dashboard.
//!
//! # The model
//!
//! Spans and events are ordinary [`tracing`] spans and events; a
//! [`TraceLayer`] added to a `tracing_subscriber::registry()` records them,
//! so spans opened by a library user's own code (or by a dependency) nest
//! inside Warden's like any other.
//!
//! * A **trace** starts at a **root span**: a span with no parent span.
//!   Its id is a random 128-bit [`TraceId`] (W3C format, 32 lowercase hex),
//!   unless the root has a field `trace_id` holding 32 hex characters, at
//!   creation or recorded later (this is how propagation will set it).
//! * Every span created inside the root (its children, theirs, and so on,
//!   on any thread or task) is collected in an in-flight buffer shared
//!   through the spans' extensions, with its parent link, name, target,
//!   level, fields, and creation and close times.
//! * An **event** is attached to the span it was emitted in (its explicit
//!   parent, else the current span). Events outside every span are ignored:
//!   they still go to the log, not to the store.
//! * When the root closes (after all its children, which hold it open), the
//!   assembled [`Trace`] is pushed into the [`TraceStore`], evicting the
//!   oldest traces if needed.
//!
//! Times: each trace reads the wall clock once, when its root is created;
//! every other time (span start and end, event time) is that instant plus
//! an offset on the monotonic clock, so a trace's timeline never runs
//! backwards when the system clock is adjusted. A span's duration is from
//! its creation to its close.
//!
//! The dashboard reads the store through [`TraceStore::recent`] (summaries,
//! newest first), [`TraceStore::get`] (one trace by id) and
//! [`TraceStore::stats`]; the records are `serde::Serialize` for JSON.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! use warden_telemetry::{TraceLimits, TraceStore};
//!
//! let store = TraceStore::new(TraceLimits::default());
//! let subscriber = tracing_subscriber::registry().with(store.layer());
//! tracing::subscriber::with_default(subscriber, || {
//!     let _request = tracing::info_span!("request", user_id = 42).entered();
//!     tracing::info!("signed in");
//! });
//! let newest = &store.recent(10)[0];
//! assert_eq!(newest.name, "request");
//! let trace = store.get(&newest.id).unwrap();
//! assert_eq!(trace.spans[0].events[0].message.as_deref(), Some("signed in"));
//! ```
//!
//! # Bounds
//!
//! [`TraceLimits`] bound everything, at all times:
//!
//! * the store keeps at most `keep_traces` traces and `keep_bytes`
//!   estimated bytes, evicting the oldest while over either;
//! * it records at most `max_traces_per_second` new traces a second; a
//!   root beyond that is skipped with everything inside it;
//! * one trace keeps at most `max_spans_per_trace` spans (the root
//!   included) and `max_events_per_trace` events; later ones are dropped,
//!   and the trace is marked `truncated` with the numbers dropped;
//! * one trace takes at most [`TraceLimits::trace_budget`] bytes:
//!   `max_bytes_per_trace`, and never more than a quarter of `keep_bytes`.
//!   Beyond it, new spans and events are dropped while recording; if the
//!   trace still grew past it (spans' fields recorded late), events are
//!   dropped first when it is stored, then the latest spans. A huge trace
//!   is thus truncated rather than pushing every other trace out;
//! * a field value or message longer than [`MAX_VALUE_BYTES`] (1 KiB) is
//!   cut at a character boundary and ends with [`CUT_MARKER`]; a huge
//!   `Debug` value is never formatted in full.
//!
//! Sizes are an estimate of heap bytes: each record's fixed size plus its
//! strings' lengths (span names, targets and field names are `&'static str`
//! and cost nothing), computed once when the trace is stored. An in-flight
//! trace is bounded by the same limits, so memory stays bounded even for a
//! root span that never closes.
//!
//! The store's lock is held only to push a trace and evict old ones (and to
//! copy summaries out for `recent`): formatting, measuring and truncating
//! happen before it, freeing evicted traces and deep copies after it. Each
//! in-flight trace has its own small lock, contended only by the spans of
//! that trace.
//!
//! A root span that lives as long as the process (say, one around the whole
//! server) would make every request a part of one trace that never ends
//! and is never stored: request spans should be roots (`parent: None`).
//!
//! The layer records every level it is given; to keep only some, give it a
//! per-layer filter, e.g. `store.layer().with_filter(LevelFilter::INFO)`.
//!
//! # Never a credential
//!
//! Warden's own spans and events never carry a credential: they name users
//! and sessions by id, and the access log records the route template (the
//! path only for an unmatched request), never the query, headers or body. As a backstop for library users' spans, a field whose
//! name contains (ASCII case-insensitive) any of [`SENSITIVE_NAME_PARTS`]
//! (`password`, `token`, `secret`, `cookie`, `authorization`, `code`,
//! `otp`, `key`, `credential`, `session_token`) is recorded as
//! [`REDACTED`]; its value is not even formatted. The names in
//! [`ALLOWED_NAMES`] (`session_id`, `user_id`, `trace_id`) are identifiers,
//! not credentials, and are explicitly kept.
//!
//! Redaction goes by field name only: a secret interpolated into a message
//! (`info!("token {t}")`) or inside another field's `Debug` output cannot
//! be recognised, and must not be written.

mod id;
mod layer;
pub mod metrics;
#[cfg(feature = "otlp")]
pub mod otlp;
mod redact;
mod store;
mod trace;
mod traceparent;

pub use id::{ParseIdError, SpanId, TraceId};
pub use layer::{TraceLayer, BACKGROUND_ROOTS};
pub use redact::{
    is_sensitive, ALLOWED_NAMES, CUT_MARKER, MAX_VALUE_BYTES, REDACTED, SENSITIVE_NAME_PARTS,
};
pub use store::{StoreStats, TraceLimits, TraceStore};
pub use trace::{EventRecord, FieldValue, SpanRecord, Trace, TraceSummary};
pub use traceparent::TraceParent;

/// The in-process store's trace id and span id of `span`, if a
/// [`TraceLayer`] on a `tracing_subscriber::Registry` records it.
pub fn span_ids(span: &tracing::Span) -> Option<(TraceId, SpanId)> {
    span.with_subscriber(|(id, dispatch)| {
        use tracing_subscriber::registry::LookupSpan;
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
        let span = registry.span(id)?;
        let ext = span.extensions();
        let state = ext.get::<layer::SpanState>()?;
        layer::ids(state)
    })
    .flatten()
}

/// The trace id of the current span's trace, if a [`TraceLayer`] on a
/// `tracing_subscriber::Registry` is recording it (for a response header or
/// a log line). `None` outside spans or with another subscriber.
pub fn current_trace_id() -> Option<TraceId> {
    tracing::Span::current()
        .with_subscriber(|(id, dispatch)| {
            use tracing_subscriber::registry::LookupSpan;
            let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
            let span = registry.span(id)?;
            span.scope().find_map(|s| {
                s.extensions()
                    .get::<layer::SpanState>()
                    .map(|state| layer::lock(&state.trace.data).trace_id)
            })
        })
        .flatten()
}
