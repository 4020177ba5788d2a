//! What every dashboard request goes through: the `Host` check (against DNS
//! rebinding: a page on another name that resolves to 127.0.0.1 must not
//! read a development dashboard), the `Origin` check on state changes, the
//! admin session in production, and the security headers.

use axum::extract::{Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, COOKIE, HOST, ORIGIN, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use warden_core::Authenticated;

use crate::Shared;

/// The dashboard's session cookie (over https: `__Host-` prefixed). It is
/// not the API's session cookie: signing in to the app never signs anyone
/// in to the dashboard.
pub const COOKIE_NAME: &str = "warden_dashboard";

/// Scripts, styles, images and connections from the dashboard itself only;
/// no inline script or style; never framed.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The signed-in admin (production), in the request's extensions.
#[derive(Clone)]
pub(crate) struct Admin {
    pub(crate) auth: Authenticated,
    /// Their dashboard session's token: the admin API is called with it.
    pub(crate) token: String,
}

/// An error as the page shows it: `{code, message}`.
pub(crate) fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"code": code, "message": message})),
    )
        .into_response()
}

pub(crate) fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-warden_dashboard"
    } else {
        COOKIE_NAME
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Pages and files anyone who reaches the dashboard may load (the page
/// shows the sign-in form itself).
fn public(method: &Method, path: &str) -> bool {
    matches!(path, "/" | "/explorer" | "/api/me")
        || path.starts_with("/assets/")
        || (path == "/api/session" && method == Method::POST)
}

fn host_allowed(shared: &Shared, headers: &HeaderMap, req: &Request) -> Option<String> {
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))?;
    let host = host.to_ascii_lowercase();
    shared
        .d
        .settings
        .allowed_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(&host))
        .then_some(host)
}

pub(crate) async fn guard(State(shared): State<Shared>, mut req: Request, next: Next) -> Response {
    let mut response = match check(&shared, &mut req).await {
        None => next.run(req).await,
        Some(refused) => refused,
    };
    headers(response.headers_mut());
    response
}

/// The answer refusing the request, or `None` to let it through (with the
/// signed-in admin in its extensions, in production).
async fn check(shared: &Shared, req: &mut Request) -> Option<Response> {
    let headers = req.headers().clone();
    let Some(host) = host_allowed(shared, &headers, req) else {
        return Some(error(
            StatusCode::MISDIRECTED_REQUEST,
            "unknown_host",
            "this dashboard does not serve that host name (set dashboard.public_url to serve another)",
        ));
    };
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes {
        let scheme = if shared.d.settings.secure_cookie {
            "https"
        } else {
            "http"
        };
        let expected = format!("{scheme}://{host}");
        match headers.get(ORIGIN).and_then(|o| o.to_str().ok()) {
            Some(o) if o.eq_ignore_ascii_case(&expected) => {}
            Some(_) => {
                return Some(error(
                    StatusCode::FORBIDDEN,
                    "invalid_origin",
                    "changes must come from the dashboard's own page (Origin mismatch)",
                ))
            }
            None => {
                return Some(error(
                    StatusCode::FORBIDDEN,
                    "missing_origin",
                    "changes must carry the dashboard's Origin",
                ))
            }
        }
    }
    if !shared.dev() {
        let name = cookie_name(shared.d.settings.secure_cookie);
        let admin = match cookie(&headers, name) {
            Some(token) if !token.is_empty() && token.len() <= 256 => {
                match shared.d.state.warden.authenticate(token).await {
                    Ok(auth) => Some(Admin {
                        auth,
                        token: token.to_owned(),
                    }),
                    Err(_) => None,
                }
            }
            _ => None,
        };
        let path = req.uri().path().to_owned();
        match admin {
            Some(a) => {
                let is_admin = shared
                    .d
                    .state
                    .warden
                    .admin_settings()
                    .is_admin(&a.auth.user)
                    && a.auth.session.impersonated_by.is_none();
                if !is_admin && !public(req.method(), &path) {
                    return Some(error(
                        StatusCode::FORBIDDEN,
                        "not_admin",
                        "the dashboard is for admins",
                    ));
                }
                if is_admin {
                    req.extensions_mut().insert(a);
                }
            }
            None if !public(req.method(), &path) => {
                return Some(error(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "sign in to the dashboard",
                ))
            }
            None => {}
        }
    }
    None
}

/// The security headers of every answer.
fn headers(h: &mut HeaderMap) {
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
