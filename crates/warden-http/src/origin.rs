//! Trusted origins: cross-site request forgery protection for cookie
//! sessions, and redirect targets (no open redirects).

use axum::extract::{Request, State};
use axum::http::header::{COOKIE, ORIGIN, REFERER};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::betterauth::BaError;
use crate::cors::{CorsConfigError, OriginPattern};
use crate::error::{ApiError, ErrCode};
use crate::AppState;

/// The origins the server trusts: its own (from the base URL) plus the
/// configured ones (exact, or with one `*`).
#[derive(Clone, Debug, Default)]
pub struct TrustedOrigins {
    patterns: Vec<OriginPattern>,
}

impl TrustedOrigins {
    /// `base_url`'s origin plus `extra`. A bare `*` is refused: it would
    /// disable the protection.
    pub fn new(base_url: &str, extra: &[String]) -> Result<Self, CorsConfigError> {
        let base = origin_of(base_url).ok_or_else(|| CorsConfigError::Invalid(base_url.into()))?;
        let mut patterns = vec![OriginPattern::Exact(base)];
        for e in extra {
            match OriginPattern::parse(e)? {
                OriginPattern::Any => return Err(CorsConfigError::AnyWithCredentials),
                p => patterns.push(p),
            }
        }
        Ok(TrustedOrigins { patterns })
    }

    /// Adds patterns that are already parsed (the CORS credentialed list).
    pub fn extend(&mut self, more: impl IntoIterator<Item = OriginPattern>) {
        self.patterns
            .extend(more.into_iter().filter(|p| *p != OriginPattern::Any));
    }

    pub fn contains(&self, origin: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(origin))
    }

    /// May the server redirect a browser to `target`? Relative paths on this
    /// server and absolute http(s) URLs on a trusted origin are allowed;
    /// protocol-relative (`//evil`), backslash and other tricks are not.
    pub fn allows_redirect(&self, target: &str) -> bool {
        if target.is_empty() || target.len() > 2048 || target.chars().any(|c| c.is_control()) {
            return false;
        }
        if target.starts_with('/') {
            let second = target.as_bytes().get(1);
            return second != Some(&b'/') && second != Some(&b'\\') && !target.contains('\\');
        }
        match Url::parse(target) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                u.username().is_empty()
                    && u.password().is_none()
                    && self.contains(&u.origin().ascii_serialization())
            }
            _ => false,
        }
    }
}

/// `scheme://host[:port]` of a URL, lower-case, default port omitted.
pub fn origin_of(url: &str) -> Option<String> {
    let u = Url::parse(url).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.origin().ascii_serialization())
}

/// The origin a request claims: `Origin`, else the origin of `Referer`.
/// `Origin: null` counts as none.
fn request_origin(headers: &HeaderMap) -> Option<String> {
    if let Some(o) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) {
        if o != "null" && !o.is_empty() {
            return Some(o.to_ascii_lowercase());
        }
    }
    headers
        .get(REFERER)
        .and_then(|v| v.to_str().ok())
        .and_then(origin_of)
}

enum Refusal {
    Missing,
    Untrusted,
    CrossSiteLogin,
}

/// Checks the origin of state-changing requests:
///
/// - a request that carries cookies must name a trusted origin in `Origin`
///   (or `Referer`): browsers attach cookies to cross-site requests, bearer
///   tokens they do not;
/// - the first-login endpoints (BetterAuth's sign-in and sign-up) also
///   refuse an untrusted `Origin` without cookies (login CSRF) and cross-site
///   top-level form navigations.
///
/// Requests without cookies and without `Origin` (curl, mobile apps, servers)
/// pass.
pub async fn origin_check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let path = req.uri().path();
    let ba = state
        .settings
        .betterauth
        .as_ref()
        .and_then(|b| path.strip_prefix(b.base_path.as_str()))
        .filter(|rest| rest.starts_with('/'));
    let first_login = ba.is_some_and(|rest| rest == "/sign-in/email" || rest == "/sign-up/email");
    let headers = req.headers();
    let trusted = &state.settings.trusted_origins;

    let refusal = if first_login && is_cross_site_navigation(headers) {
        Some(Refusal::CrossSiteLogin)
    } else if headers.contains_key(COOKIE) || (first_login && headers.contains_key(ORIGIN)) {
        match request_origin(headers) {
            None => Some(Refusal::Missing),
            Some(o) if !trusted.contains(&o) => Some(Refusal::Untrusted),
            Some(_) => None,
        }
    } else {
        None
    };
    let Some(refusal) = refusal else {
        return next.run(req).await;
    };
    tracing::info!(path, "request refused by the origin check");
    if ba.is_some() {
        match refusal {
            Refusal::Missing => {
                BaError::forbidden("MISSING_OR_NULL_ORIGIN", "Missing or null Origin")
            }
            Refusal::Untrusted => BaError::forbidden("INVALID_ORIGIN", "Invalid origin"),
            Refusal::CrossSiteLogin => BaError::forbidden(
                "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED",
                "Cross-site navigation login blocked. This request appears to be a CSRF attack.",
            ),
        }
        .into_response()
    } else {
        let message = match refusal {
            Refusal::Missing => "a request with cookies must carry an Origin header",
            _ => "the request's origin is not trusted",
        };
        ApiError::new(ErrCode::PermissionDenied, message).into_response()
    }
}

fn is_cross_site_navigation(headers: &HeaderMap) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    h("sec-fetch-site") == "cross-site" && h("sec-fetch-mode") == "navigate"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects() {
        let t = TrustedOrigins::new(
            "http://localhost:4000",
            &[
                "https://*.example.com".into(),
                "http://localhost:5173".into(),
            ],
        )
        .unwrap();
        for ok in [
            "/dashboard",
            "/a?b=c#d",
            "http://localhost:4000/x",
            "http://LOCALHOST:4000/x",
            "http://localhost:5173/",
            "https://app.example.com/cb",
        ] {
            assert!(t.allows_redirect(ok), "{ok}");
        }
        for bad in [
            "",
            "//evil.com",
            "/\\evil.com",
            "/ok\\..\\",
            "https://evil.com/",
            "https://example.com.evil.com/",
            "http://app.example.com/",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://user@app.example.com/",
            "http://localhost:4001/",
            "evil.com",
            "/a\nb",
        ] {
            assert!(!t.allows_redirect(bad), "{bad}");
        }
    }

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("HTTPS://Example.com:443/a").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(origin_of("ftp://x").as_deref(), None);
        assert!(TrustedOrigins::new("http://localhost:4000", &["*".into()]).is_err());
    }
}
