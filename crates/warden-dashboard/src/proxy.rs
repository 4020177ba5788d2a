//! The explorer's and the users view's requests, forwarded in-process to
//! the API's own router, so that they pass through everything a client's
//! request passes through (limits, rate limits, origin check, the handler,
//! the trace) and nothing is reimplemented here.
//!
//! - `/proxy/<path>`: the explorer's requests, as sent (the client's own
//!   bearer token or API cookie), minus the dashboard's cookie.
//! - `/admin-api/<rest>`: `/admin/<rest>` as the signed-in admin (their
//!   dashboard session's token) or, in development, as the dashboard
//!   itself (a [`TrustedActor`], like the command line).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, ORIGIN};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use tower::ServiceExt;
use warden_core::Actor;
use warden_http::TrustedActor;

use crate::guard::{cookie_name, error, Admin};
use crate::Shared;

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Sends `req` to the API's router at `path_and_query`. Only the
/// connection's address crosses over from the dashboard's extensions.
async fn forward(
    s: &Shared,
    req: Request,
    path_and_query: &str,
    as_who: Option<Extension<TrustedActor>>,
) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(uri) = path_and_query.parse::<Uri>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            "malformed path",
        );
    };
    let mut out = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .version(parts.version)
        .body(body)
        .expect("method, URI and version are valid");
    *out.headers_mut() = parts.headers;
    if let Some(ci) = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        out.extensions_mut().insert(*ci);
    }
    if let Some(Extension(actor)) = as_who {
        out.extensions_mut().insert(actor);
    }
    let h = out.headers_mut();
    // The dashboard's own cookie never reaches the API.
    let name = cookie_name(s.d.settings.secure_cookie);
    let kept: Vec<String> = h
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
        .collect();
    h.remove(COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            h.insert(COOKIE, v);
        }
    }
    // The guard checked that a change comes from the dashboard's page;
    // to the API it comes from the API's own origin.
    if h.contains_key(ORIGIN) {
        if let Ok(v) = HeaderValue::from_str(origin_of(&s.d.state.settings.public_url)) {
            h.insert(ORIGIN, v);
        }
    }
    match s.d.api.clone().oneshot(out).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

fn rest_of(uri: &Uri, prefix: &str) -> String {
    let path = uri.path().strip_prefix(prefix).unwrap_or("");
    match uri.query() {
        Some(q) => format!("/{path}?{q}"),
        None => format!("/{path}"),
    }
}

pub(crate) async fn explorer(State(s): State<Shared>, req: Request) -> Response {
    let target = rest_of(req.uri(), "/proxy/");
    forward(&s, req, &target, None).await
}

pub(crate) async fn admin(
    State(s): State<Shared>,
    admin: Option<Extension<Admin>>,
    mut req: Request,
) -> Response {
    let target = format!("/admin{}", rest_of(req.uri(), "/admin-api/"));
    let h = req.headers_mut();
    h.remove(AUTHORIZATION);
    h.remove(COOKIE);
    if s.dev() {
        let actor = TrustedActor(Actor::Cli {
            name: "dashboard (development)".into(),
        });
        return forward(&s, req, &target, Some(Extension(actor))).await;
    }
    let Some(Extension(admin)) = admin else {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in to the dashboard",
        );
    };
    match HeaderValue::from_str(&format!("Bearer {}", admin.token)) {
        Ok(v) => {
            req.headers_mut().insert(AUTHORIZATION, v);
        }
        Err(_) => {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in to the dashboard",
            )
        }
    }
    forward(&s, req, &target, None).await
}

/// The API's OpenAPI document, sent through the proxy by the explorer.
pub(crate) async fn openapi(State(s): State<Shared>) -> Response {
    let req = Request::builder()
        .method(Method::GET)
        .uri("/openapi.json")
        .body(Body::empty())
        .expect("valid request");
    let r = match s.d.api.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if !r.status().is_success() {
        return r;
    }
    let bytes = match axum::body::to_bytes(r.into_body(), 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the OpenAPI document could not be read",
            )
        }
    };
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the OpenAPI document could not be read",
        );
    };
    doc["servers"] =
        serde_json::json!([{"url": "/proxy", "description": "This Warden, through the dashboard"}]);
    (
        [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        doc.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_and_paths() {
        assert_eq!(origin_of("http://localhost:4000"), "http://localhost:4000");
        assert_eq!(
            origin_of("https://auth.example.com/base/"),
            "https://auth.example.com"
        );
        let uri: Uri = "/proxy/auth/signin?x=1".parse().unwrap();
        assert_eq!(rest_of(&uri, "/proxy/"), "/auth/signin?x=1");
        let uri: Uri = "/admin-api/users/abc/sessions".parse().unwrap();
        assert_eq!(rest_of(&uri, "/admin-api/"), "/users/abc/sessions");
    }
}
