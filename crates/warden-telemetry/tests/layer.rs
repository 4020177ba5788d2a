//! The layer with real `tracing` spans and events, no mocks.

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use tracing::field::Empty;
use tracing::{debug, error, info, info_span, warn, Level};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;
use warden_telemetry::{
    current_trace_id, SpanRecord, Trace, TraceId, TraceLimits, TraceStore, CUT_MARKER,
    MAX_VALUE_BYTES, REDACTED,
};

fn record<R>(store: &TraceStore, f: impl FnOnce() -> R) -> R {
    let subscriber = tracing_subscriber::registry().with(store.layer());
    tracing::subscriber::with_default(subscriber, f)
}

/// One trace with a root named `name`; returns its id.
fn one_trace(name: &'static str) -> TraceId {
    let _root = info_span!("root", name).entered();
    info!("inside");
    current_trace_id().expect("recorded")
}

fn field<'a>(span: &'a SpanRecord, name: &str) -> Option<&'a str> {
    span.fields
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

fn by_name<'a>(trace: &'a Trace, name: &str) -> &'a SpanRecord {
    trace
        .spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

#[test]
fn nested_spans_and_events_make_one_trace() {
    let store = TraceStore::default();
    let id = record(&store, || {
        let root = info_span!("request", user_id = 7, method = "POST").entered();
        info!(phase = "start", "request started");
        {
            let _sign_in = info_span!("sign_in", email = "a@example.com").entered();
            info!(attempt = 1, "checking");
            {
                let _hash = info_span!(target: "warden::password", "hash", cost = 19).entered();
                thread::sleep(Duration::from_millis(2));
                debug!("hashed");
            }
            warn!("slow");
        }
        {
            let _db = info_span!("store", table = "session").entered();
        }
        let id = current_trace_id().unwrap();
        drop(root);
        id
    });

    assert_eq!(store.stats().traces, 1);
    let trace = store.get(&id).expect("stored under its id");
    assert_eq!(trace.id, id);
    assert!(!trace.truncated);
    let names: Vec<_> = trace.spans.iter().map(|s| s.name).collect();
    assert_eq!(names, ["request", "sign_in", "hash", "store"]);

    let root = trace.root().unwrap();
    let sign_in = by_name(&trace, "sign_in");
    let hash = by_name(&trace, "hash");
    let db = by_name(&trace, "store");
    assert_eq!(root.parent, None);
    assert_eq!(sign_in.parent, Some(root.id));
    assert_eq!(hash.parent, Some(sign_in.id));
    assert_eq!(db.parent, Some(root.id));
    let children: Vec<_> = trace.children(root.id).map(|s| s.name).collect();
    assert_eq!(children, ["sign_in", "store"]);

    assert_eq!(field(root, "user_id"), Some("7"));
    assert_eq!(field(root, "method"), Some("POST"));
    assert_eq!(field(hash, "cost"), Some("19"));
    assert_eq!(hash.target, "warden::password");
    assert_eq!(root.level, Level::INFO);

    // Events sit in the span they were emitted in, in order.
    let msgs = |s: &SpanRecord| -> Vec<String> {
        s.events
            .iter()
            .map(|e| e.message.clone().unwrap_or_default())
            .collect()
    };
    assert_eq!(msgs(root), ["request started"]);
    assert_eq!(msgs(sign_in), ["checking", "slow"]);
    assert_eq!(msgs(hash), ["hashed"]);
    assert!(db.events.is_empty());
    assert_eq!(root.events[0].fields, [("phase", "start".to_owned())]);
    assert_eq!(sign_in.events[0].fields, [("attempt", "1".to_owned())]);
    assert_eq!(sign_in.events[1].level, Level::WARN);
    assert_eq!(hash.events[0].level, Level::DEBUG);
    assert!(root.events[0].target.ends_with("layer"));

    // Times: positive durations, children inside their parents.
    for s in &trace.spans {
        assert!(s.duration > Duration::ZERO, "{}", s.name);
        assert_eq!(
            s.end - s.start,
            chrono::TimeDelta::from_std(s.duration).unwrap()
        );
    }
    assert!(hash.duration >= Duration::from_millis(2));
    assert!(root.duration >= sign_in.duration && sign_in.duration >= hash.duration);
    assert!(hash.start >= sign_in.start && hash.end <= sign_in.end);
    assert!(sign_in.start >= root.start && db.end <= root.end);
    let hashed = &hash.events[0];
    assert!(hashed.time >= hash.start && hashed.time <= hash.end);

    let summary = &store.recent(10)[0];
    assert_eq!(summary.id, id);
    assert_eq!(summary.name, "request");
    assert_eq!(summary.span_count, 4);
    assert_eq!(summary.event_count, 4);
    assert!(!summary.has_error);
    assert_eq!(summary.duration, root.duration);
    assert_eq!(summary.size_bytes, trace.size_bytes);
    assert_eq!(store.stats().bytes, trace.size_bytes);
}

#[test]
fn recent_is_newest_first_and_get_finds_by_id() {
    let store = TraceStore::default();
    let ids: Vec<TraceId> = record(&store, || {
        ["first", "second", "third"]
            .into_iter()
            .map(one_trace)
            .collect()
    });
    let recent = store.recent(10);
    let got: Vec<_> = recent.iter().map(|s| s.id).collect();
    assert_eq!(got, [ids[2], ids[1], ids[0]]);
    assert_eq!(store.recent(2).len(), 2);
    assert_eq!(store.recent(2)[0].id, ids[2]);
    assert!(store.recent(0).is_empty());
    for (id, name) in ids.iter().zip(["first", "second", "third"]) {
        let t = store.get(id).unwrap();
        assert_eq!(field(t.root().unwrap(), "name"), Some(name));
    }
    assert!(store.get(&TraceId::random()).is_none());
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3);
}

#[test]
fn count_bound_evicts_the_oldest() {
    let store = TraceStore::new(TraceLimits {
        keep_traces: 5,
        ..TraceLimits::default()
    });
    let ids: Vec<TraceId> = record(&store, || (0..12).map(|_| one_trace("t")).collect());
    let stats = store.stats();
    assert_eq!(stats.traces, 5);
    assert_eq!(stats.evicted, 7);
    let kept: Vec<_> = store.recent(100).into_iter().map(|s| s.id).collect();
    let newest: Vec<_> = ids.iter().rev().take(5).copied().collect();
    assert_eq!(kept, newest);
    for old in &ids[..7] {
        assert!(store.get(old).is_none());
    }
    assert_eq!(
        stats.bytes,
        store
            .recent(100)
            .iter()
            .map(|s| s.size_bytes)
            .sum::<usize>()
    );
}

#[test]
fn byte_bound_evicts_the_oldest() {
    let keep_bytes = 16 * 1024;
    let store = TraceStore::new(TraceLimits {
        keep_bytes,
        ..TraceLimits::default()
    });
    let filler = "x".repeat(900);
    let mut ids = Vec::new();
    record(&store, || {
        for _ in 0..30 {
            let _root = info_span!("root", payload = %filler).entered();
            info!(more = %filler, "one");
            info!(more = %filler, "two");
            ids.push(current_trace_id().unwrap());
            drop(_root);
            assert!(store.stats().bytes <= keep_bytes);
        }
    });
    let stats = store.stats();
    assert!(stats.bytes <= keep_bytes);
    assert!(stats.traces >= 2 && stats.traces < 30, "{stats:?}");
    assert_eq!(stats.evicted as usize, 30 - stats.traces);
    assert_eq!(stats.truncated, 0);
    let kept: Vec<_> = store.recent(100).into_iter().map(|s| s.id).collect();
    let newest: Vec<_> = ids.iter().rev().take(stats.traces).copied().collect();
    assert_eq!(kept, newest);
    // Each trace was measured honestly: its strings and its records.
    let size = store.recent(1)[0].size_bytes;
    assert!(size > 3 * 900 && size < 3 * 900 + 2048, "{size}");
}

#[test]
fn a_huge_trace_is_truncated_and_does_not_evict_the_others() {
    let limits = TraceLimits {
        keep_bytes: 256 * 1024,
        ..TraceLimits::default()
    };
    assert_eq!(limits.trace_budget(), 64 * 1024);
    let store = TraceStore::new(limits);
    let long = "y".repeat(4 * MAX_VALUE_BYTES);
    let small: Vec<TraceId> = record(&store, || (0..10).map(|_| one_trace("small")).collect());
    let huge = record(&store, || {
        let _root = info_span!("huge", blob = %long).entered();
        for i in 0..50 {
            let _child = info_span!("child", i, blob = %long).entered();
            for _ in 0..60 {
                info!(blob = %long, "event");
            }
        }
        current_trace_id().unwrap()
    });

    let stats = store.stats();
    assert_eq!(stats.traces, 11);
    assert_eq!(stats.evicted, 0);
    assert_eq!(stats.truncated, 1);
    assert!(stats.bytes <= limits.keep_bytes);
    for id in &small {
        assert!(store.get(id).is_some());
    }
    let trace = store.get(&huge).unwrap();
    assert!(trace.truncated);
    assert!(trace.dropped_events > 0);
    assert!(trace.size_bytes <= limits.trace_budget());
    let kept_events: usize = trace.spans.iter().map(|s| s.events.len()).sum();
    assert_eq!(kept_events + trace.dropped_events, 50 * 60);
    assert_eq!(trace.spans.len() + trace.dropped_spans, 51);
    let blob = field(trace.root().unwrap(), "blob").unwrap();
    assert!(blob.ends_with(CUT_MARKER));
    assert!(blob.len() <= MAX_VALUE_BYTES + CUT_MARKER.len());
    let summary = store.recent(1)[0].clone();
    assert!(summary.truncated);
    assert_eq!(summary.id, huge);
}

#[test]
fn span_and_event_counts_per_trace_are_capped() {
    let store = TraceStore::new(TraceLimits {
        max_spans_per_trace: 4,
        max_events_per_trace: 3,
        ..TraceLimits::default()
    });
    let id = record(&store, || {
        let _root = info_span!("root").entered();
        for i in 0..6 {
            let _c = info_span!("child", i).entered();
            let _g = info_span!("grandchild").entered();
            info!(i, "event");
        }
        current_trace_id().unwrap()
    });
    let trace = store.get(&id).unwrap();
    assert!(trace.truncated);
    assert_eq!(trace.spans.len(), 4);
    assert_eq!(trace.dropped_spans, 12 + 1 - 4);
    let names: Vec<_> = trace.spans.iter().map(|s| s.name).collect();
    assert_eq!(names, ["root", "child", "grandchild", "child"]);
    // Only the first grandchild was kept: the other events were emitted in
    // dropped spans, and are dropped with them.
    let kept: usize = trace.spans.iter().map(|s| s.events.len()).sum();
    assert_eq!(kept, 1);
    assert_eq!(trace.dropped_events, 5);
    // Kept spans never point at a dropped parent.
    let ids: HashSet<_> = trace.spans.iter().map(|s| s.id).collect();
    for s in &trace.spans[1..] {
        assert!(ids.contains(&s.parent.unwrap()));
    }
    assert_eq!(store.stats().truncated, 1);

    let id = record(&store, || {
        let _root = info_span!("root").entered();
        for i in 0..5 {
            info!(i, "event");
        }
        current_trace_id().unwrap()
    });
    let trace = store.get(&id).unwrap();
    let kept: Vec<_> = trace
        .root()
        .unwrap()
        .events
        .iter()
        .map(|e| e.fields[0].1.clone())
        .collect();
    assert_eq!(kept, ["0", "1", "2"]);
    assert_eq!((trace.dropped_spans, trace.dropped_events), (0, 2));
    assert!(trace.truncated);
}

#[test]
fn credentials_are_redacted_and_never_serialized() {
    const SECRET: &str = "hunter2-s3cr3t-VALUE";
    let store = TraceStore::default();
    let id = record(&store, || {
        let root = info_span!(
            "request",
            password = SECRET,
            user_id = 42,
            session_id = "sess_abc",
            Authorization = %format!("Bearer {SECRET}"),
            token = Empty,
        )
        .entered();
        root.record("token", SECRET);
        info!(cookie = SECRET, session_token = ?SECRET, api_key = SECRET, "set cookie");
        {
            let _c =
                info_span!("oauth", code = SECRET, client_secret = SECRET, otp = SECRET).entered();
            warn!(new_password = SECRET, user_id = 42, "changed");
        }
        current_trace_id().unwrap()
    });
    let trace = store.get(&id).unwrap();
    let root = trace.root().unwrap();
    assert_eq!(field(root, "password"), Some(REDACTED));
    assert_eq!(field(root, "Authorization"), Some(REDACTED));
    assert_eq!(field(root, "token"), Some(REDACTED));
    assert_eq!(field(root, "user_id"), Some("42"));
    assert_eq!(field(root, "session_id"), Some("sess_abc"));
    let event = &root.events[0];
    for name in ["cookie", "session_token", "api_key"] {
        let v = event.fields.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(v.1, REDACTED, "{name}");
    }
    assert_eq!(event.message.as_deref(), Some("set cookie"));
    let oauth = by_name(&trace, "oauth");
    for name in ["code", "client_secret", "otp"] {
        assert_eq!(field(oauth, name), Some(REDACTED), "{name}");
    }

    let json = serde_json::to_string(&trace).unwrap();
    assert!(!json.contains(SECRET), "{json}");
    assert!(!json.contains("hunter2"));
    assert!(json.contains(REDACTED));
    assert!(json.contains("sess_abc"));
    let all = serde_json::to_string(&store.recent(100)).unwrap();
    assert!(!all.contains(SECRET));
}

#[test]
fn a_trace_id_field_on_the_root_is_honoured() {
    let store = TraceStore::default();
    let given = "0af7651916cd43dd8448eb211c80319c";
    let later = "4bf92f3577b34da6a3ce929d0e0e4736";
    record(&store, || {
        let _a = info_span!("given", trace_id = given).entered();
        assert_eq!(current_trace_id().unwrap().to_string(), given);
        let _child = info_span!("child", trace_id = "ffffffffffffffffffffffffffffffff").entered();
        // A child's field does not change its trace.
        assert_eq!(current_trace_id().unwrap().to_string(), given);
    });
    record(&store, || {
        let span = info_span!("late", trace_id = Empty);
        span.record("trace_id", later);
    });
    record(&store, || {
        let _a = info_span!("bad", trace_id = "not-a-trace-id").entered();
    });
    record(&store, || {
        let _a = info_span!("display", trace_id = %given.to_uppercase()).entered();
    });

    let id: TraceId = given.parse().unwrap();
    let t = store.get(&id).unwrap();
    assert_eq!(t.root().unwrap().name, "display");
    let recent = store.recent(10);
    assert_eq!(recent[3].id.to_string(), given);
    assert_eq!(recent[3].name, "given");
    assert_eq!(recent[2].id.to_string(), later);
    assert_eq!(
        store
            .get(&later.parse().unwrap())
            .unwrap()
            .root()
            .unwrap()
            .name,
        "late"
    );
    assert_eq!(recent[1].name, "bad");
    assert_ne!(recent[1].id.to_string(), given);
    assert_eq!(recent[1].id.to_string().len(), 32);
    // The same id twice: get gives the newest, both are listed.
    assert_eq!(recent[0].id, recent[3].id);
}

#[test]
fn events_outside_spans_are_ignored() {
    let store = TraceStore::default();
    record(&store, || {
        info!("no span");
        error!(password = "x", "still no span");
        let root = info_span!("root");
        info!(parent: None, "explicitly no parent");
        drop(root);
    });
    let stats = store.stats();
    assert_eq!(stats.traces, 1);
    let t = &store.recent(1)[0];
    assert_eq!(t.event_count, 0);
    assert!(!t.has_error);
    assert_eq!(current_trace_id(), None);
}

#[test]
fn an_error_event_marks_the_summary() {
    let store = TraceStore::default();
    record(&store, || {
        let _root = info_span!("root").entered();
        let _c = info_span!("child").entered();
        error!("boom");
    });
    assert!(store.recent(1)[0].has_error);
}

#[test]
fn fields_recorded_later_are_kept_and_empty_ones_absent() {
    let store = TraceStore::default();
    record(&store, || {
        let root = info_span!("root", status = Empty, never = Empty, user_id = 1).entered();
        root.record("status", 201);
        root.record("user_id", 2);
    });
    let t = store.get(&store.recent(1)[0].id).unwrap();
    let root = t.root().unwrap();
    assert_eq!(field(root, "status"), Some("201"));
    assert_eq!(field(root, "user_id"), Some("2"));
    assert_eq!(field(root, "never"), None);
    assert_eq!(root.fields.len(), 2);
}

#[test]
fn spans_on_other_threads_join_their_parents_trace() {
    let store = TraceStore::default();
    let subscriber = tracing::Dispatch::new(tracing_subscriber::registry().with(store.layer()));
    let id = tracing::dispatcher::with_default(&subscriber, || {
        let root = info_span!("root");
        let id = root.in_scope(|| current_trace_id().unwrap());
        thread::scope(|s| {
            for i in 0..4 {
                let (root, subscriber) = (&root, &subscriber);
                s.spawn(move || {
                    tracing::dispatcher::with_default(subscriber, || {
                        let _w = info_span!(parent: root, "worker", i).entered();
                        info!("working");
                    })
                });
            }
        });
        drop(root);
        id
    });
    let t = store.get(&id).unwrap();
    assert_eq!(t.spans.len(), 5);
    let root_id = t.root().unwrap().id;
    assert!(t.spans[1..].iter().all(|s| s.parent == Some(root_id)));
    assert_eq!(t.events().count(), 4);
    assert_eq!(store.stats().traces, 1);
}

#[test]
fn spans_across_async_tasks_nest() {
    use tracing::Instrument;
    let store = TraceStore::default();
    let subscriber = tracing_subscriber::registry().with(store.layer());
    let _guard = tracing::subscriber::set_default(subscriber);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let id = rt.block_on(
        async {
            let id = current_trace_id().unwrap();
            async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                info!("after await");
            }
            .instrument(info_span!("library_call"))
            .await;
            id
        }
        .instrument(info_span!("request")),
    );
    let t = store.get(&id).unwrap();
    let lib = by_name(&t, "library_call");
    assert_eq!(lib.parent, Some(t.root().unwrap().id));
    assert_eq!(lib.events.len(), 1);
    assert!(lib.duration >= Duration::from_millis(1));
}

#[test]
fn a_per_layer_filter_limits_what_is_recorded() {
    let store = TraceStore::default();
    let subscriber =
        tracing_subscriber::registry().with(store.layer().with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || {
        let _root = info_span!("root").entered();
        let _dbg = tracing::debug_span!("debug_span").entered();
        debug!("hidden");
        info!("shown");
    });
    let t = store.get(&store.recent(1)[0].id).unwrap();
    assert_eq!(t.spans.len(), 1);
    let msgs: Vec<_> = t
        .events()
        .map(|(_, e)| e.message.clone().unwrap())
        .collect();
    // The INFO event inside the filtered debug span goes to the nearest
    // recorded span.
    assert_eq!(msgs, ["shown"]);
}

#[test]
fn many_threads_stay_within_bounds() {
    let limits = TraceLimits {
        keep_traces: 100,
        keep_bytes: 128 * 1024,
        max_traces_per_second: 0,
        ..TraceLimits::default()
    };
    let store = TraceStore::new(limits);
    let shared = tracing::Dispatch::new(tracing_subscriber::registry().with(store.layer()));
    thread::scope(|s| {
        for t in 0..8 {
            let (store, shared) = (&store, &shared);
            s.spawn(move || {
                let work = || {
                    for i in 0..200 {
                        let _root = info_span!("root", t, i).entered();
                        for j in 0..3 {
                            let _c = info_span!("child", j, pad = %"p".repeat(j * 100)).entered();
                            info!(j, "step");
                        }
                        if i % 50 == 0 {
                            let stats = store.stats();
                            assert!(stats.traces <= 100 && stats.bytes <= 128 * 1024);
                            let _ = store.recent(20);
                        }
                    }
                };
                // Half the threads share one subscriber, half have their own.
                if t % 2 == 0 {
                    tracing::dispatcher::with_default(shared, work);
                } else {
                    let own = tracing_subscriber::registry().with(store.layer());
                    tracing::subscriber::with_default(own, work);
                }
            });
        }
        // A reader, like the dashboard, all along.
        s.spawn(|| {
            for _ in 0..200 {
                for summary in store.recent(10) {
                    if let Some(t) = store.get(&summary.id) {
                        assert_eq!(t.spans.len(), 4);
                        assert_eq!(t.events().count(), 3);
                    }
                }
                thread::yield_now();
            }
        });
    });
    let stats = store.stats();
    assert!(stats.traces > 0 && stats.traces <= 100, "{stats:?}");
    assert!(stats.bytes <= limits.keep_bytes);
    assert_eq!(stats.traces as u64 + stats.evicted, 8 * 200);
    assert_eq!(stats.truncated + stats.rejected, 0);
    let ids: HashSet<_> = store.recent(1000).into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), stats.traces);
    assert_eq!(
        stats.bytes,
        store
            .recent(1000)
            .iter()
            .map(|s| s.size_bytes)
            .sum::<usize>()
    );
}

#[test]
fn the_rate_cap_skips_whole_traces() {
    let store = TraceStore::new(TraceLimits {
        max_traces_per_second: 5,
        ..TraceLimits::default()
    });
    record(&store, || {
        for _ in 0..20 {
            let _root = tracing::info_span!("request").entered();
            let _child = tracing::info_span!("auth").entered();
            tracing::info!("inside");
        }
    });
    let stats = store.stats();
    // The second may turn during the loop: then a few more get in.
    assert!((5..=10).contains(&stats.traces), "{stats:?}");
    assert_eq!(stats.traces as u64 + stats.skipped, 20);
    for s in store.recent(100) {
        let t = store.get(&s.id).unwrap();
        // A skipped root's children never start traces of their own.
        assert_eq!(t.spans.len(), 2);
        assert_eq!(t.spans[0].name, "request");
    }
}

#[test]
fn records_serialize_to_the_documented_json() {
    let store = TraceStore::default();
    record(&store, || {
        let _root = info_span!("request", user_id = 3).entered();
        info!(k = "v", "hello");
    });
    let summary = store.recent(1).remove(0);
    let t = store.get(&summary.id).unwrap();
    let v: serde_json::Value = serde_json::to_value(&t).unwrap();
    assert_eq!(v["id"], summary.id.to_string());
    let span = &v["spans"][0];
    assert_eq!(span["name"], "request");
    assert_eq!(span["level"], "INFO");
    assert!(span["parent"].is_null());
    assert_eq!(span["id"].as_str().unwrap().len(), 16);
    assert!(span["duration_ns"].as_u64().unwrap() > 0);
    assert!(span["start"].as_str().unwrap().ends_with('Z'));
    assert_eq!(span["fields"][0], serde_json::json!(["user_id", "3"]));
    let event = &span["events"][0];
    assert_eq!(event["message"], "hello");
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["fields"][0], serde_json::json!(["k", "v"]));
    let s: serde_json::Value = serde_json::to_value(&summary).unwrap();
    for key in [
        "id",
        "name",
        "start",
        "duration_ns",
        "span_count",
        "event_count",
        "has_error",
        "size_bytes",
        "truncated",
    ] {
        assert!(s.get(key).is_some(), "{key}");
    }
    let stats = serde_json::to_value(store.stats()).unwrap();
    assert_eq!(stats["traces"], 1);
}

#[test]
fn a_disabled_store_records_nothing() {
    let store = TraceStore::new(TraceLimits {
        keep_traces: 0,
        ..TraceLimits::default()
    });
    record(&store, || {
        let _root = info_span!("root").entered();
        info!("x");
        assert_eq!(current_trace_id(), None);
    });
    assert_eq!(store.stats(), Default::default());
}

/// A statement outside any request (background polling) is no trace of
/// its own; inside a request it is recorded.
#[test]
fn background_statements_are_not_traces_of_their_own() {
    let store = TraceStore::default();
    record(&store, || {
        drop(info_span!("db.query", db.query.text = "SELECT 1").entered());
        let _root = info_span!("request").entered();
        drop(info_span!("db.query", db.query.text = "SELECT 2").entered());
    });
    let kept = store.recent(10);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].name, "request");
    assert_eq!(kept[0].span_count, 2);
    assert_eq!(store.stats().skipped, 0, "not counted as capped");
}
