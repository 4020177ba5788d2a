//! Request ids and the access log: one line per request with method, route
//! template, status, latency and request id. Path parameters, the query
//! string, headers and bodies are never logged: they may hold tokens,
//! passwords and cookies.

use std::time::Instant;

use axum::extract::Request;
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use tracing::Instrument;

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

pub async fn access_log(req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let method = req.method().clone();
    // The route's template (`/api/auth/reset-password/{token}`), not the
    // path itself: path parameters may be single-use tokens. Unmatched
    // requests (404) log their path.
    let path = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| req.uri().path().to_owned());
    let start = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(req).instrument(span.clone()).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            target: "warden::access",
            method = %method,
            path = %path,
            status,
            latency_ms = format_args!("{latency_ms:.3}"),
            "request"
        );
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), v);
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
