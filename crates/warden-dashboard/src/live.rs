//! What changes while the page looks: new traces and new mail as
//! server-sent events, and the last hour's sign-ins from the metrics.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream, StreamExt};
use warden_http::AppState;
use warden_telemetry::metrics::Metrics;

use crate::api::{mail_json, summary_json, TraceFilter};
use crate::guard::error;
use crate::Shared;

/// Most events sent per wake-up (the rest follow at once).
const BATCH: usize = 100;

/// Sign-in totals sampled once a minute, an hour's worth: the overview's
/// "last hour" is now minus the sample from an hour ago.
pub(crate) struct SignInRate {
    started: Instant,
    samples: Arc<Mutex<VecDeque<(Instant, u64, u64)>>>,
}

const EVERY: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

impl SignInRate {
    /// Starts sampling `state`'s metrics, until this is dropped.
    pub(crate) fn start(state: &AppState) -> Self {
        let samples: Arc<Mutex<VecDeque<(Instant, u64, u64)>>> = Arc::default();
        let weak: Weak<_> = Arc::downgrade(&samples);
        let warden = state.warden.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let mut tick = tokio::time::interval(EVERY);
                loop {
                    tick.tick().await;
                    let Some(samples) = weak.upgrade() else {
                        return;
                    };
                    let (ok, failed) = warden.metrics().sign_in_totals();
                    let now = Instant::now();
                    let mut s = samples.lock().unwrap_or_else(|p| p.into_inner());
                    s.push_back((now, ok, failed));
                    while s
                        .front()
                        .is_some_and(|(at, _, _)| now.duration_since(*at) > HOUR)
                    {
                        s.pop_front();
                    }
                }
            });
        }
        SignInRate {
            started: Instant::now(),
            samples,
        }
    }

    /// Sign-ins (succeeded, failed) in about the last hour: since start if
    /// the process is younger than that.
    pub(crate) fn last_hour(&self, metrics: &Metrics) -> (u64, u64) {
        let (ok, failed) = metrics.sign_in_totals();
        if self.started.elapsed() < HOUR {
            return (ok, failed);
        }
        let s = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let (_, ok0, failed0) = s.front().copied().unwrap_or((self.started, 0, 0));
        (ok.saturating_sub(ok0), failed.saturating_sub(failed0))
    }
}

fn too_many() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_streams",
        "too many live views are open: close one",
    )
}

fn sse<S>(events: S) -> Response
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// `event: trace` for every trace recorded from now on (filtered as
/// `/api/traces` is, if asked).
pub(crate) async fn trace_stream(
    State(s): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(store) = s.traces().cloned() else {
        return error(StatusCode::NOT_FOUND, "not_available", "traces are off");
    };
    let filter = match TraceFilter::parse(&q) {
        Ok(f) => f,
        Err(m) => return error(StatusCode::BAD_REQUEST, "invalid_argument", &m),
    };
    let Ok(permit) = s.streams.clone().try_acquire_owned() else {
        return too_many();
    };
    let cursor = store.cursor();
    let events = stream::unfold(
        (store, cursor, filter, permit),
        |(store, mut cursor, filter, permit)| async move {
            loop {
                let waiter = store.clone();
                let notified = waiter.inserted();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let (new, next) = store.since(cursor, BATCH);
                cursor = next;
                let events: Vec<Result<Event, Infallible>> = new
                    .iter()
                    .filter(|t| filter.keeps(t))
                    .map(|t| {
                        Ok(Event::default()
                            .event("trace")
                            .data(summary_json(t).to_string()))
                    })
                    .collect();
                if !events.is_empty() {
                    return Some((stream::iter(events), (store, cursor, filter, permit)));
                }
                if new.is_empty() {
                    notified.await;
                }
            }
        },
    )
    .flatten();
    sse(events)
}

/// `event: mail` for every message the outbox keeps from now on.
pub(crate) async fn outbox_stream(State(s): State<Shared>) -> Response {
    let Some(outbox) = s.d.outbox.clone().filter(|_| s.dev()) else {
        return error(StatusCode::NOT_FOUND, "not_available", "the outbox is off");
    };
    let Ok(permit) = s.streams.clone().try_acquire_owned() else {
        return too_many();
    };
    let last = outbox.entries_after(0).last().map_or(0, |e| e.id);
    let events = stream::unfold(
        (outbox, last, permit),
        |(outbox, mut last, permit)| async move {
            loop {
                let waiter = outbox.clone();
                let notified = waiter.arrived();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let new = outbox.entries_after(last);
                if let Some(e) = new.last() {
                    last = e.id;
                    let events: Vec<Result<Event, Infallible>> = new
                        .iter()
                        .map(|m| {
                            Ok(Event::default()
                                .event("mail")
                                .data(mail_json(m).to_string()))
                        })
                        .collect();
                    return Some((stream::iter(events), (outbox, last, permit)));
                }
                notified.await;
            }
        },
    )
    .flatten();
    sse(events)
}
