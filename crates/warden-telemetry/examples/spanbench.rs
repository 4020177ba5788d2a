//! What the trace store costs per request, without HTTP: the spans of a
//! `GET /profile` (request and auth, with their fields) created and closed
//! 200,000 times on one thread, with no subscriber, with a bare registry,
//! and with the store's layer.
//!
//! `cargo run --release -p warden-telemetry --example spanbench -- store`
//! (or `registry`, or `none`).

use std::time::Instant;
use tracing::field::Empty;
use tracing_subscriber::prelude::*;
use warden_telemetry::{TraceLimits, TraceStore};

fn work(n: usize) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let span = tracing::info_span!(parent: None, "request", otel.name = %format_args!("GET /profile"), otel.kind = "server", http.request.method = "GET", http.route = "/profile", http.response.status_code = Empty, request_id = "abcdefghijklmnopqrst", user_id = Empty, trace_id = Empty);
        span.record(
            "trace_id",
            tracing::field::display("4bf92f3577b34da6a3ce929d0e0e4736"),
        );
        {
            let _e = span.enter();
            let auth = tracing::info_span!(
                "auth",
                outcome = Empty,
                user_id = Empty,
                session_id = Empty,
                cached = Empty
            );
            {
                let _a = auth.enter();
            }
            auth.record("outcome", "ok");
            auth.record("user_id", "user-123456789");
            auth.record("session_id", "sess-123456789");
            auth.record("cached", true);
        }
        span.record("http.response.status_code", 200u16 + (i % 2) as u16);
        span.record("user_id", "user-123456789");
    }
    start.elapsed().as_secs_f64() * 1e9 / n as f64
}

fn main() {
    let n = 200_000;
    let mode = std::env::args().nth(1).unwrap_or_default();
    let ns = match mode.as_str() {
        "store" => {
            let store = TraceStore::new(TraceLimits::default());
            let sub = tracing_subscriber::registry().with(
                store
                    .layer()
                    .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
            );
            tracing::subscriber::with_default(sub, || {
                work(n / 10);
                work(n)
            })
        }
        "registry" => {
            let sub =
                tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::INFO);
            tracing::subscriber::with_default(sub, || {
                work(n / 10);
                work(n)
            })
        }
        _ => work(n),
    };
    println!("{mode}: {ns:.0} ns/request");
}
