//! Bounded outbound calls: every request has a timeout, every body read is
//! capped, and failures are described without URLs' query strings, tokens
//! or bodies.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use tracing::Instrument;
use url::Url;

/// One response, read whole (within the cap).
pub(crate) struct Body {
    pub status: StatusCode,
    pub bytes: Vec<u8>,
}

impl Body {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.bytes).ok()
    }
}

/// A short name for an endpoint in messages: "<what> (<host>)".
pub(crate) fn label(what: &str, url: &Url) -> String {
    match url.host_str() {
        Some(host) => format!("{what} ({host})"),
        None => what.to_owned(),
    }
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_redirect() {
        "redirect loop or invalid redirect"
    } else if e.is_body() || e.is_decode() {
        "error reading the response"
    } else if e.is_builder() {
        "invalid request"
    } else {
        "request failed"
    }
}

/// Sends `request` with `timeout` (covering connect, headers and body) and
/// reads at most `max_bytes` of the body. Transport failures and oversized
/// bodies are `Err(message)`; HTTP error statuses are returned as they are.
///
/// Each call is an `http.client` span with the method, the host and the
/// path: never the query string (it may carry a code or a token), headers
/// or bodies.
pub(crate) async fn send(
    request: RequestBuilder,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Body, &'static str> {
    let (client, request) = request.timeout(timeout).build_split();
    let request = request.map_err(|e| describe(&e))?;
    let span = tracing::info_span!(
        "http.client",
        otel.name = request.method().as_str(),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        http.request.method = request.method().as_str(),
        server.address = request.url().host_str().unwrap_or(""),
        url.path = request.url().path(),
        http.response.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    let result = read(client, request, max_bytes)
        .instrument(span.clone())
        .await;
    match &result {
        Ok(body) => {
            span.record("http.response.status_code", body.status.as_u16());
            if body.status.is_server_error() || body.status.is_client_error() {
                span.record("otel.status_code", "error");
            }
        }
        Err(why) => {
            span.record("error.type", *why);
            span.record("otel.status_code", "error");
        }
    }
    result
}

async fn read(
    client: reqwest::Client,
    request: reqwest::Request,
    max_bytes: usize,
) -> Result<Body, &'static str> {
    let mut response = client.execute(request).await.map_err(|e| describe(&e))?;
    let status = response.status();
    if response
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        return Err("response too large");
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if bytes.len() + chunk.len() > max_bytes {
            return Err("response too large");
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Body { status, bytes })
}
