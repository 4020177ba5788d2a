//! The bounded ring buffer of finished traces.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use crate::id::TraceId;
use crate::layer::TraceLayer;
use crate::trace::{Trace, TraceSummary};

/// How much the store keeps. Every bound holds at all times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TraceLimits {
    /// Most traces kept (`[telemetry] keep_traces`).
    pub keep_traces: usize,
    /// Most estimated bytes kept, all traces together (`[telemetry]
    /// keep_bytes`).
    pub keep_bytes: usize,
    /// Most spans in one trace, the root included; later spans are dropped.
    pub max_spans_per_trace: usize,
    /// Most events in one trace; later events are dropped.
    pub max_events_per_trace: usize,
    /// Most estimated bytes of one trace. The effective limit is also at
    /// most a quarter of `keep_bytes` (see [`TraceLimits::trace_budget`]).
    pub max_bytes_per_trace: usize,
    /// Most new traces recorded in one second (0: no cap). Beyond it, a
    /// root span and everything inside it are skipped (counted in
    /// [`StoreStats::skipped`]): at such rates the ring is overwritten
    /// faster than anyone reads it, and recording every trace would only
    /// cost the requests time.
    pub max_traces_per_second: u32,
}

impl Default for TraceLimits {
    fn default() -> Self {
        Self {
            keep_traces: 1000,
            keep_bytes: 16 * 1024 * 1024,
            max_spans_per_trace: 512,
            max_events_per_trace: 1024,
            max_bytes_per_trace: 1024 * 1024,
            max_traces_per_second: 200,
        }
    }
}

impl TraceLimits {
    /// The bytes one trace may take: `max_bytes_per_trace`, and never more
    /// than a quarter of `keep_bytes`, so that one huge trace truncates
    /// itself instead of pushing every other trace out.
    pub fn trace_budget(&self) -> usize {
        self.max_bytes_per_trace.min(self.keep_bytes / 4)
    }

    /// Whether the store keeps anything at all.
    pub fn enabled(&self) -> bool {
        self.keep_traces > 0 && self.keep_bytes > 0
    }
}

/// Counters of the store, for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StoreStats {
    /// Traces kept now.
    pub traces: usize,
    /// Their estimated bytes now.
    pub bytes: usize,
    /// Traces pushed out by newer ones since the store was made
    /// ([`TraceStore::clear`] resets none of these counters).
    pub evicted: u64,
    /// Traces stored truncated since the store was made.
    pub truncated: u64,
    /// Traces not stored because even their root span alone did not fit
    /// the per-trace budget (only with absurdly small limits).
    pub rejected: u64,
    /// Traces not recorded because `max_traces_per_second` were already
    /// recorded that second.
    pub skipped: u64,
}

/// The in-process store of recent traces. Cheap to clone: clones share one
/// buffer.
#[derive(Clone)]
pub struct TraceStore {
    shared: Arc<Shared>,
}

struct Shared {
    limits: TraceLimits,
    inner: Mutex<Inner>,
    /// The rate cap: the second (since `epoch`) being counted, and how many
    /// traces were admitted in it.
    epoch: std::time::Instant,
    second: AtomicU64,
    admitted: AtomicU32,
    skipped: AtomicU64,
    /// Woken at every insert: the dashboard's live list waits on it. With
    /// nobody waiting, waking costs one atomic operation.
    inserted: tokio::sync::Notify,
}

struct Entry {
    seq: u64,
    summary: TraceSummary,
    trace: Arc<Trace>,
}

#[derive(Default)]
struct Inner {
    /// Oldest first; `seq` increases by one from front to back.
    ring: VecDeque<Entry>,
    /// The newest entry of each trace id (ids may repeat when propagated).
    by_id: HashMap<TraceId, u64>,
    next_seq: u64,
    bytes: usize,
    evicted: u64,
    truncated: u64,
    rejected: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under this lock can leave the data inconsistent mid-way in a
    // way that matters more than losing the store: never panic on poison.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for TraceStore {
    fn default() -> Self {
        Self::new(TraceLimits::default())
    }
}

impl fmt::Debug for TraceStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceStore")
            .field("limits", &self.shared.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

impl TraceStore {
    /// An empty store with these limits.
    pub fn new(limits: TraceLimits) -> Self {
        Self {
            shared: Arc::new(Shared {
                limits,
                inner: Mutex::new(Inner::default()),
                epoch: std::time::Instant::now(),
                second: AtomicU64::new(0),
                admitted: AtomicU32::new(0),
                skipped: AtomicU64::new(0),
                inserted: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The limits it was made with.
    pub fn limits(&self) -> TraceLimits {
        self.shared.limits
    }

    /// Whether a new trace may be recorded now (the per-second cap). Two
    /// atomics, no lock; at a second's turn a few traces may be admitted
    /// over the cap, never many.
    pub(crate) fn admit(&self) -> bool {
        let max = self.shared.limits.max_traces_per_second;
        if max == 0 {
            return true;
        }
        let sh = &self.shared;
        let now = sh.epoch.elapsed().as_secs();
        if sh.second.load(Ordering::Relaxed) != now && sh.second.swap(now, Ordering::Relaxed) != now
        {
            sh.admitted.store(0, Ordering::Relaxed);
        }
        if sh.admitted.fetch_add(1, Ordering::Relaxed) < max {
            true
        } else {
            sh.skipped.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// The `tracing_subscriber` layer that records into this store.
    pub fn layer(&self) -> TraceLayer {
        TraceLayer::new(self.clone())
    }

    /// Summaries of at most `limit` traces, newest first.
    pub fn recent(&self, limit: usize) -> Vec<TraceSummary> {
        let inner = lock(&self.shared.inner);
        inner
            .ring
            .iter()
            .rev()
            .take(limit)
            .map(|e| e.summary.clone())
            .collect()
    }

    /// The position after the newest trace: [`TraceStore::since`] from
    /// here returns only traces inserted later.
    pub fn cursor(&self) -> u64 {
        lock(&self.shared.inner).next_seq
    }

    /// Summaries of the traces inserted at or after `cursor` that are still
    /// kept (at most `limit`, oldest first), and the cursor after them.
    pub fn since(&self, cursor: u64, limit: usize) -> (Vec<TraceSummary>, u64) {
        let inner = lock(&self.shared.inner);
        let front = inner.ring.front().map_or(inner.next_seq, |e| e.seq);
        let skip = usize::try_from(cursor.saturating_sub(front)).unwrap_or(usize::MAX);
        let taken: Vec<_> = inner.ring.iter().skip(skip).take(limit).collect();
        let next = taken.last().map_or(inner.next_seq, |e| e.seq + 1);
        (taken.into_iter().map(|e| e.summary.clone()).collect(), next)
    }

    /// Completes after the next insert. To miss none, create it (and
    /// `enable` it) before reading with [`TraceStore::since`].
    pub fn inserted(&self) -> tokio::sync::futures::Notified<'_> {
        self.shared.inserted.notified()
    }

    /// The trace with this id (the newest, if the id was used twice).
    pub fn get(&self, id: &TraceId) -> Option<Trace> {
        let trace = {
            let inner = lock(&self.shared.inner);
            let seq = *inner.by_id.get(id)?;
            let front = inner.ring.front()?.seq;
            let entry = inner.ring.get(usize::try_from(seq - front).ok()?)?;
            debug_assert_eq!(entry.seq, seq);
            Arc::clone(&entry.trace)
        };
        // The deep copy happens outside the lock.
        Some(Trace::clone(&trace))
    }

    /// The store's counters.
    pub fn stats(&self) -> StoreStats {
        let inner = lock(&self.shared.inner);
        StoreStats {
            traces: inner.ring.len(),
            bytes: inner.bytes,
            evicted: inner.evicted,
            truncated: inner.truncated,
            rejected: inner.rejected,
            skipped: self.shared.skipped.load(Ordering::Relaxed),
        }
    }

    /// Forgets every trace (the counters stay).
    pub fn clear(&self) {
        let dropped = {
            let mut inner = lock(&self.shared.inner);
            inner.by_id.clear();
            inner.bytes = 0;
            std::mem::take(&mut inner.ring)
        };
        drop(dropped);
    }

    /// Fits `trace` to the per-trace budget, measures it, and keeps it,
    /// evicting the oldest traces while over either bound.
    pub(crate) fn insert(&self, mut trace: Trace) {
        let limits = self.shared.limits;
        if !limits.enabled() {
            return;
        }
        // Measuring, truncating and summarising happen before the lock.
        let fits = trace.fit_and_measure(limits.trace_budget());
        if !fits {
            lock(&self.shared.inner).rejected += 1;
            return;
        }
        let summary = trace.summary();
        let size = trace.size_bytes;
        let id = trace.id;
        let truncated = trace.truncated;
        let trace = Arc::new(trace);

        let mut evicted = Vec::new();
        {
            let mut inner = lock(&self.shared.inner);
            let seq = inner.next_seq;
            inner.next_seq += 1;
            inner.ring.push_back(Entry {
                seq,
                summary,
                trace,
            });
            inner.by_id.insert(id, seq);
            inner.bytes += size;
            inner.truncated += u64::from(truncated);
            while inner.bytes > limits.keep_bytes || inner.ring.len() > limits.keep_traces {
                let Some(old) = inner.ring.pop_front() else {
                    break;
                };
                inner.bytes -= old.summary.size_bytes;
                inner.evicted += 1;
                if inner.by_id.get(&old.summary.id) == Some(&old.seq) {
                    inner.by_id.remove(&old.summary.id);
                }
                evicted.push(old);
            }
        }
        // Freeing the evicted traces happens after the lock.
        drop(evicted);
        self.shared.inserted.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;
    use tracing::Level;

    use super::*;
    use crate::id::SpanId;
    use crate::trace::{estimate, EventRecord, SpanRecord};

    fn span(parent: Option<SpanId>, field_len: usize, events: usize) -> SpanRecord {
        let now = Utc::now();
        SpanRecord {
            id: SpanId::random(),
            parent,
            name: "span",
            target: "test",
            level: Level::INFO,
            start: now,
            end: now,
            duration: Duration::from_micros(5),
            fields: vec![("f", "v".repeat(field_len))],
            events: (0..events)
                .map(|_| EventRecord {
                    time: now,
                    level: Level::INFO,
                    target: "test",
                    message: Some("m".repeat(field_len)),
                    fields: Vec::new(),
                })
                .collect(),
        }
    }

    fn trace(spans: usize, field_len: usize, events: usize) -> Trace {
        let root = span(None, field_len, events);
        let root_id = root.id;
        let mut all = vec![root];
        all.extend((1..spans).map(|_| span(Some(root_id), field_len, events)));
        Trace {
            id: TraceId::random(),
            spans: all,
            truncated: false,
            dropped_spans: 0,
            dropped_events: 0,
            size_bytes: 0,
        }
    }

    #[test]
    fn size_counts_records_and_string_lengths() {
        let small = estimate(&trace(1, 0, 0));
        let big = estimate(&trace(1, 1000, 0));
        assert_eq!(big - small, 1000);
        let with_events = estimate(&trace(1, 10, 3));
        assert_eq!(
            with_events - estimate(&trace(1, 10, 0)),
            3 * (std::mem::size_of::<EventRecord>() + 10)
        );
    }

    #[test]
    fn byte_bound_holds_after_every_insert() {
        let one = {
            let mut t = trace(2, 200, 1);
            t.fit_and_measure(usize::MAX);
            t.size_bytes
        };
        let store = TraceStore::new(TraceLimits {
            keep_bytes: one * 5 + one / 2,
            ..TraceLimits::default()
        });
        for n in 1..=20u64 {
            store.insert(trace(2, 200, 1));
            let s = store.stats();
            assert!(s.bytes <= store.limits().keep_bytes);
            assert_eq!(s.traces as u64 + s.evicted, n);
        }
        assert_eq!(store.stats().traces, 5);
        assert_eq!(store.stats().evicted, 15);
    }

    #[test]
    fn fitting_drops_events_first_then_the_latest_spans() {
        let mut t = trace(3, 100, 4);
        let full = estimate(&t);
        let event = std::mem::size_of::<EventRecord>() + 100;
        // Room for everything but two events: the last span loses two.
        assert!(t.fit_and_measure(full - event - 1));
        assert_eq!(t.dropped_events, 2);
        assert_eq!(t.dropped_spans, 0);
        assert_eq!(t.spans[2].events.len(), 2);
        assert_eq!(t.spans[0].events.len(), 4);
        assert!(t.truncated);
        assert_eq!(t.size_bytes, estimate(&t));

        // Room for the spans without any events.
        let mut t = trace(3, 100, 4);
        let no_events = estimate(&t) - 12 * event;
        assert!(t.fit_and_measure(no_events));
        assert_eq!(
            (t.spans.len(), t.dropped_events, t.dropped_spans),
            (3, 12, 0)
        );

        // Room for less: spans go too, from the last; the root stays.
        let mut t = trace(3, 100, 4);
        assert!(t.fit_and_measure(no_events - 1));
        assert_eq!(t.spans.len(), 2);
        assert_eq!(t.dropped_spans, 1);
        assert!(t.spans[0].parent.is_none());
    }

    #[test]
    fn a_trace_whose_root_cannot_fit_is_rejected() {
        let store = TraceStore::new(TraceLimits {
            keep_bytes: 400,
            ..TraceLimits::default()
        });
        store.insert(trace(1, 0, 0));
        let s = store.stats();
        assert_eq!((s.traces, s.rejected, s.bytes), (0, 1, 0));
    }

    #[test]
    fn since_returns_what_came_after_the_cursor_even_across_eviction() {
        let store = TraceStore::new(TraceLimits {
            keep_traces: 3,
            ..TraceLimits::default()
        });
        let start = store.cursor();
        assert_eq!(store.since(start, 10), (vec![], start));
        let first = trace(1, 1, 0);
        let first_id = first.id;
        store.insert(first);
        let (got, next) = store.since(start, 10);
        assert_eq!(got.iter().map(|s| s.id).collect::<Vec<_>>(), [first_id]);
        assert_eq!(store.since(next, 10).0, vec![]);
        for _ in 0..5 {
            store.insert(trace(1, 1, 0));
        }
        // Three kept: a cursor older than the oldest kept gets all three.
        let (got, after) = store.since(next, 10);
        assert_eq!(got.len(), 3);
        assert_eq!(after, store.cursor());
        // The limit takes the oldest first and the cursor continues there.
        let (two, mid) = store.since(next, 2);
        assert_eq!(two.len(), 2);
        assert_eq!(store.since(mid, 10).0.len(), 1);
    }

    #[tokio::test]
    async fn an_insert_wakes_a_waiter() {
        let store = TraceStore::default();
        let waiter = store.clone();
        let woke = tokio::spawn(async move {
            let notified = waiter.inserted();
            tokio::pin!(notified);
            notified.as_mut().enable();
            notified.await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.insert(trace(1, 1, 0));
        tokio::time::timeout(Duration::from_secs(2), woke)
            .await
            .expect("woken")
            .unwrap();
    }

    #[test]
    fn a_repeated_id_gets_the_newest_and_eviction_keeps_the_index_right() {
        let store = TraceStore::new(TraceLimits {
            keep_traces: 2,
            ..TraceLimits::default()
        });
        let mut a = trace(1, 1, 0);
        let mut b = trace(2, 1, 0);
        b.id = a.id;
        let id = a.id;
        a.spans[0].name = "a";
        b.spans[0].name = "b";
        store.insert(a);
        store.insert(b);
        assert_eq!(store.get(&id).unwrap().spans[0].name, "b");
        // Evicting the older copy leaves the newer one reachable.
        store.insert(trace(1, 1, 0));
        assert_eq!(store.get(&id).unwrap().spans[0].name, "b");
        store.insert(trace(1, 1, 0));
        assert!(store.get(&id).is_none());
        assert_eq!(store.stats().evicted, 2);

        store.clear();
        let s = store.stats();
        assert_eq!((s.traces, s.bytes, s.evicted), (0, 0, 2));
        assert!(store.recent(10).is_empty());
    }

    #[test]
    fn default_limits_and_budget() {
        let l = TraceLimits::default();
        assert_eq!(l.keep_traces, 1000);
        assert_eq!(l.keep_bytes, 16 << 20);
        assert_eq!(l.trace_budget(), 1 << 20);
        let small = TraceLimits {
            keep_bytes: 1 << 20,
            ..l
        };
        assert_eq!(small.trace_budget(), 256 << 10);
        let store = TraceStore::default();
        let clone = store.clone();
        clone.insert(trace(1, 0, 0));
        assert_eq!(store.stats().traces, 1);
        fn send_sync<T: Send + Sync + Clone>() {}
        send_sync::<TraceStore>();
        send_sync::<TraceLayer>();
    }
}
