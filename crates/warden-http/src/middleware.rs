//! Request ids and the access log: one line per request with method, route
//! template, status, latency and request id. Path parameters, the query
//! string, headers and bodies are never logged: they may hold tokens,
//! passwords and cookies.

use std::time::Instant;

use axum::extract::Request;
use axum::extract::State;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use tracing::field::Empty;
use tracing::Instrument;
use warden_telemetry::{SpanId, TraceId, TraceParent};

use crate::AppState;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Uses the caller's `x-request-id` when it is short and plain, else makes one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
        .unwrap_or_else(|| warden_core::token::random_string(20))
}

/// The request's span, in its extensions: the auth extractor records the
/// user id on it.
#[derive(Clone)]
pub(crate) struct RequestSpan(pub(crate) tracing::Span);

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static X_TRACE_ID: HeaderName = HeaderName::from_static("x-trace-id");

/// Records the signed-in user on the request's span (from a handler, whose
/// current span it is) once a sign-in or sign-up has made them known.
pub(crate) fn record_user(user_id: &str) {
    tracing::Span::current().record("user_id", user_id);
}

/// The request's trace id, its span id and whether it is sampled: from the
/// OpenTelemetry layer when it is installed (it honours the caller's
/// `traceparent`), else the caller's trace id, else a new one.
fn trace_ids(span: &tracing::Span, parent: Option<&TraceParent>) -> (TraceId, SpanId, bool) {
    #[cfg(feature = "otlp")]
    if let Some(ids) = warden_telemetry::otlp::span_ids(span) {
        return ids;
    }
    let span_id = warden_telemetry::span_ids(span)
        .map(|(_, s)| s)
        .unwrap_or_else(SpanId::random);
    match parent {
        Some(p) => (p.trace_id, span_id, p.sampled),
        None => (TraceId::random(), span_id, true),
    }
}

/// Middleware: every request is the root of a trace. Its `request` span
/// (OpenTelemetry's HTTP server conventions) has the method, the route
/// template, the status, the request id, the user id once known and the
/// trace id; every span of the request nests inside it. An incoming
/// `traceparent` is honoured; the response carries `x-trace-id` and
/// `traceparent`, and `x-request-id`. Then one access-log line, and the
/// request-duration metric.
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let method = req.method().clone();
    // The route's template (`/api/auth/reset-password/{token}`), not the
    // path itself: path parameters may be single-use tokens. Unmatched
    // requests (404) log their path, but their span and metric say
    // `unmatched`.
    let matched = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let route = matched.as_deref().unwrap_or("unmatched");
    let logged_path = matched
        .clone()
        .unwrap_or_else(|| req.uri().path().to_owned());
    let parent = req
        .headers()
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse);
    let span = tracing::info_span!(
        parent: None,
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = route,
        http.response.status_code = Empty,
        request_id = %id,
        user_id = Empty,
        trace_id = Empty,
    );
    #[cfg(feature = "otlp")]
    if let Some(p) = &parent {
        warden_telemetry::otlp::set_remote_parent(&span, p);
    }
    let (trace_id, span_id, sampled) = trace_ids(&span, parent.as_ref());
    let trace_hex = trace_id.to_string();
    span.record("trace_id", trace_hex.as_str());
    req.extensions_mut().insert(RequestSpan(span.clone()));
    let start = Instant::now();
    let mut response = next.run(req).instrument(span.clone()).await;
    let took = start.elapsed();
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
    span.in_scope(|| {
        tracing::info!(
            target: "warden::access",
            method = %method,
            path = %logged_path,
            status,
            latency_ms = format_args!("{:.3}", took.as_secs_f64() * 1000.0),
            "request"
        );
    });
    state
        .warden
        .metrics()
        .request(method.as_str(), route, status, took);
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert(X_REQUEST_ID.clone(), v);
    }
    if let Ok(v) = HeaderValue::from_str(&trace_hex) {
        h.insert(X_TRACE_ID.clone(), v);
    }
    if let Ok(v) = HeaderValue::from_str(&TraceParent::header(trace_id, span_id, sampled)) {
        h.insert(TRACEPARENT.clone(), v);
    }
    response
}

/// Longest request target (path and query) accepted.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) accepted in one request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Longest single header value accepted.
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;

/// Explicit limits on what a request may carry besides its body (the body
/// limit is `http.body_limit`), and the security headers every response
/// gets: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
/// and `Cache-Control: no-store` unless a handler chose otherwise (answers
/// of an auth server carry tokens and personal data).
pub async fn limits_and_headers(req: Request, next: Next) -> Response {
    let refused = if req.uri().to_string().len() > MAX_URI_BYTES {
        Some((StatusCode::URI_TOO_LONG, "request URI too long"))
    } else {
        let mut total = 0usize;
        let mut too_long = false;
        for (name, value) in req.headers() {
            total += name.as_str().len() + value.len();
            too_long |= value.len() > MAX_HEADER_VALUE_BYTES;
        }
        (too_long || total > MAX_HEADER_BYTES).then_some((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large",
        ))
    };
    let mut response = match refused {
        Some((status, message)) => {
            let mut r = crate::error::ApiError::invalid(message).into_response();
            *r.status_mut() = status;
            r
        }
        None => next.run(req).await,
    };
    let h = response.headers_mut();
    h.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
