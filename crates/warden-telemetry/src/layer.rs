//! The `tracing_subscriber` layer that assembles traces.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::id::{SpanId, TraceId};
use crate::redact::FieldVisitor;
use crate::store::{TraceLimits, TraceStore};
use crate::trace::{
    event_size, span_own_size, EventRecord, FieldValue, SpanRecord, Trace, TRACE_OVERHEAD,
};

/// Records spans and events into a [`TraceStore`]. Made by
/// [`TraceStore::layer`]; add it to a `tracing_subscriber::registry()`.
#[derive(Debug, Clone)]
pub struct TraceLayer {
    store: TraceStore,
}

impl TraceLayer {
    /// A layer recording into `store`.
    pub fn new(store: TraceStore) -> Self {
        Self { store }
    }

    /// The store it records into.
    pub fn store(&self) -> &TraceStore {
        &self.store
    }
}

/// What every recorded span carries in its extensions: the trace it belongs
/// to, and its place in it (`None`: dropped by a limit).
pub(crate) struct SpanState {
    pub(crate) trace: Arc<InFlight>,
    index: Option<usize>,
    root: bool,
}

/// Marks a span of a trace that the per-second cap skipped.
struct Skipped;

/// Spans that are not kept as traces of their own when they have no
/// parent: the database statements of background work (the revocation
/// feed polled four times a second, the expired-session clean-up). Kept,
/// they would push every request out of the store within minutes of
/// idling. Inside a request they are recorded as ever.
pub const BACKGROUND_ROOTS: &[&str] = &["db.query", "db.acquire"];

/// A trace being recorded, shared by its spans until the root closes.
pub(crate) struct InFlight {
    /// The trace's time line: the root's creation, on both clocks. Every
    /// other time is this wall-clock instant plus a monotonic offset.
    wall: DateTime<Utc>,
    mono: Instant,
    limits: TraceLimits,
    pub(crate) data: Mutex<Building>,
}

pub(crate) struct Building {
    pub(crate) trace_id: TraceId,
    spans: Vec<SpanBuild>,
    events: usize,
    /// Estimated bytes so far, by the same rules as the final size.
    bytes: usize,
    dropped_spans: usize,
    dropped_events: usize,
    done: bool,
}

struct SpanBuild {
    id: SpanId,
    parent: Option<SpanId>,
    name: &'static str,
    target: &'static str,
    level: Level,
    start: Instant,
    duration: Option<Duration>,
    fields: Vec<FieldValue>,
    events: Vec<EventRecord>,
}

/// The trace id and span id of a recorded span (`None`: dropped by a limit).
pub(crate) fn ids(state: &SpanState) -> Option<(TraceId, SpanId)> {
    let b = lock(&state.trace.data);
    let span = b.spans.get(state.index?)?;
    Some((b.trace_id, span.id))
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl InFlight {
    fn wall_at(&self, at: Instant) -> DateTime<Utc> {
        let offset = at.saturating_duration_since(self.mono);
        self.wall + TimeDelta::from_std(offset).unwrap_or(TimeDelta::zero())
    }

    fn finish(&self, b: Building, closed: Instant) -> Trace {
        let spans = b
            .spans
            .into_iter()
            .map(|s| {
                let duration = s
                    .duration
                    .unwrap_or_else(|| closed.saturating_duration_since(s.start));
                let start = self.wall_at(s.start);
                SpanRecord {
                    id: s.id,
                    parent: s.parent,
                    name: s.name,
                    target: s.target,
                    level: s.level,
                    start,
                    end: start + TimeDelta::from_std(duration).unwrap_or(TimeDelta::zero()),
                    duration,
                    fields: s.fields,
                    events: s.events,
                }
            })
            .collect();
        let truncated = b.dropped_spans > 0 || b.dropped_events > 0;
        Trace {
            id: b.trace_id,
            spans,
            truncated,
            dropped_spans: b.dropped_spans,
            dropped_events: b.dropped_events,
            size_bytes: 0,
        }
    }
}

/// A valid trace id in a root span's `trace_id` field.
fn trace_id_field(fields: &[FieldValue]) -> Option<TraceId> {
    let (_, v) = fields.iter().find(|(n, _)| *n == "trace_id")?;
    v.trim_matches('"').parse().ok()
}

fn span_fields(values: &Record<'_>) -> Vec<FieldValue> {
    let mut fields = Vec::new();
    values.record(&mut FieldVisitor {
        fields: &mut fields,
        message: None,
    });
    fields
}

impl<S> Layer<S> for TraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let limits = self.store.limits();
        if !limits.enabled() {
            return;
        }
        let Some(span) = ctx.span(id) else { return };
        // A trace the rate cap skipped is skipped whole.
        let skipped = match span.parent() {
            Some(p) => p.extensions().get::<Skipped>().is_some(),
            None if BACKGROUND_ROOTS.contains(&attrs.metadata().name()) => true,
            None => !self.store.admit(),
        };
        if skipped {
            span.extensions_mut().insert(Skipped);
            return;
        }
        let meta = attrs.metadata();
        let mut fields = Vec::new();
        attrs.record(&mut FieldVisitor {
            fields: &mut fields,
            message: None,
        });
        let start = Instant::now();
        let parent = span.parent().and_then(|p| {
            p.extensions()
                .get::<SpanState>()
                .map(|s| (Arc::clone(&s.trace), s.index))
        });
        let build = |parent, fields| SpanBuild {
            id: SpanId::random(),
            parent,
            name: meta.name(),
            target: meta.target(),
            level: *meta.level(),
            start,
            duration: None,
            fields,
            events: Vec::new(),
        };

        let state = match parent {
            // A span with no (recorded) parent starts a trace.
            None => {
                let trace_id = trace_id_field(&fields).unwrap_or_else(TraceId::random);
                let bytes = TRACE_OVERHEAD + span_own_size(&fields);
                let trace = InFlight {
                    wall: Utc::now(),
                    mono: start,
                    limits,
                    data: Mutex::new(Building {
                        trace_id,
                        spans: vec![build(None, fields)],
                        events: 0,
                        bytes,
                        dropped_spans: 0,
                        dropped_events: 0,
                        done: false,
                    }),
                };
                SpanState {
                    trace: Arc::new(trace),
                    index: Some(0),
                    root: true,
                }
            }
            Some((trace, parent_index)) => {
                let size = span_own_size(&fields);
                let index = {
                    let mut b = lock(&trace.data);
                    let parent_id = parent_index.and_then(|i| b.spans.get(i)).map(|p| p.id);
                    match parent_id {
                        Some(pid)
                            if !b.done
                                && b.spans.len() < limits.max_spans_per_trace
                                && b.bytes + size <= limits.trace_budget() =>
                        {
                            b.spans.push(build(Some(pid), fields));
                            b.bytes += size;
                            Some(b.spans.len() - 1)
                        }
                        // Over a limit, or the parent itself was dropped.
                        _ => {
                            b.dropped_spans += 1;
                            None
                        }
                    }
                };
                SpanState {
                    trace,
                    index,
                    root: false,
                }
            }
        };
        span.extensions_mut().insert(state);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        let Some(state) = ext.get::<SpanState>() else {
            return;
        };
        let mut b = lock(&state.trace.data);
        let Building {
            spans,
            bytes,
            trace_id,
            ..
        } = &mut *b;
        let Some(s) = state.index.and_then(|i| spans.get_mut(i)) else {
            // A dropped span: only a root's trace id matters.
            if state.root {
                if let Some(t) = trace_id_field(&span_fields(values)) {
                    *trace_id = t;
                }
            }
            return;
        };
        let before = span_own_size(&s.fields);
        // The visitor replaces a field recorded again (the last value wins).
        values.record(&mut FieldVisitor {
            fields: &mut s.fields,
            message: None,
        });
        let has_trace_id = || {
            span.metadata()
                .fields()
                .field("trace_id")
                .is_some_and(|f| values.contains(&f))
        };
        if state.root && has_trace_id() {
            if let Some(t) = trace_id_field(&s.fields) {
                *trace_id = t;
            }
        }
        // May go over the budget; the final fit trims the trace.
        *bytes = (*bytes + span_own_size(&s.fields)).saturating_sub(before);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        // Events outside every span are not part of any trace.
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let (trace, index) = {
            let ext = span.extensions();
            let Some(state) = ext.get::<SpanState>() else {
                return;
            };
            (Arc::clone(&state.trace), state.index)
        };
        let limits = trace.limits;
        let full = |b: &Building| b.done || b.events >= limits.max_events_per_trace;
        let Some(index) = index else {
            lock(&trace.data).dropped_events += 1;
            return;
        };
        // Cheap check first: do not format an event that will be dropped.
        {
            let mut b = lock(&trace.data);
            if full(&b) {
                b.dropped_events += 1;
                return;
            }
        }
        let now = Instant::now();
        let meta = event.metadata();
        let mut fields = Vec::new();
        let mut message = None;
        event.record(&mut FieldVisitor {
            fields: &mut fields,
            message: Some(&mut message),
        });
        let record = EventRecord {
            time: trace.wall_at(now),
            level: *meta.level(),
            target: meta.target(),
            message,
            fields,
        };
        let size = event_size(&record);
        let mut b = lock(&trace.data);
        if full(&b) || b.bytes + size > limits.trace_budget() {
            b.dropped_events += 1;
            return;
        }
        let Some(s) = b.spans.get_mut(index) else {
            return;
        };
        s.events.push(record);
        b.events += 1;
        b.bytes += size;
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let closed = Instant::now();
        let Some(span) = ctx.span(&id) else { return };
        let (trace, index, root) = {
            let ext = span.extensions();
            let Some(state) = ext.get::<SpanState>() else {
                return;
            };
            (Arc::clone(&state.trace), state.index, state.root)
        };
        let mut b = lock(&trace.data);
        if let Some(s) = index.and_then(|i| b.spans.get_mut(i)) {
            s.duration = Some(closed.saturating_duration_since(s.start));
        }
        // Children hold their parent open, so when the root closes every
        // span of the trace has closed.
        if root && !b.done {
            let trace_id = b.trace_id;
            let building = std::mem::replace(
                &mut *b,
                Building {
                    trace_id,
                    spans: Vec::new(),
                    events: 0,
                    bytes: 0,
                    dropped_spans: 0,
                    dropped_events: 0,
                    done: true,
                },
            );
            drop(b);
            let finished = trace.finish(building, closed);
            self.store.insert(finished);
        }
    }
}
