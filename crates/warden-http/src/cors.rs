//! CORS as Encore does it: requests that carry credentials (an
//! `Authorization` or `Cookie` header, or a preflight announcing one) must
//! come from an origin in `allow_origins_with_credentials`; others from one in
//! `allow_origins_without_credentials` (by default, any).

use axum::http::header::{ACCESS_CONTROL_REQUEST_HEADERS, AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowMethods, AllowOrigin, CorsLayer};

/// An allowed origin: exact (`http://localhost:5173`), one `*` standing for
/// at least one character (`https://*.example.com`), or, only where
/// credentials are not involved, `*` for any origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    Any,
    Exact(String),
    Wildcard { prefix: String, suffix: String },
}

#[derive(Debug, thiserror::Error)]
pub enum CorsConfigError {
    #[error("cors.allow_origins_with_credentials must not contain a bare \"*\": browsers would send cookies and tokens from any site. List your front-end origins, e.g. [\"http://localhost:5173\"] or [\"https://*.example.com\"]")]
    AnyWithCredentials,
    #[error("invalid CORS origin {0:?}: expected scheme://host[:port] with at most one '*'")]
    Invalid(String),
}

impl OriginPattern {
    pub fn parse(s: &str) -> Result<Self, CorsConfigError> {
        let s = s.trim().trim_end_matches('/');
        if s == "*" {
            return Ok(OriginPattern::Any);
        }
        if !s.contains("://") || s.matches('*').count() > 1 {
            return Err(CorsConfigError::Invalid(s.to_owned()));
        }
        let lower = s.to_ascii_lowercase();
        Ok(match lower.split_once('*') {
            Some((prefix, suffix)) => OriginPattern::Wildcard {
                prefix: prefix.to_owned(),
                suffix: suffix.to_owned(),
            },
            None => OriginPattern::Exact(lower),
        })
    }

    pub fn matches(&self, origin: &str) -> bool {
        match self {
            OriginPattern::Any => true,
            OriginPattern::Exact(o) => origin.eq_ignore_ascii_case(o),
            OriginPattern::Wildcard { prefix, suffix } => {
                let origin = origin.to_ascii_lowercase();
                origin.len() > prefix.len() + suffix.len()
                    && origin.starts_with(prefix.as_str())
                    && origin.ends_with(suffix.as_str())
                    && !origin[prefix.len()..origin.len() - suffix.len()].contains('/')
            }
        }
    }
}

#[derive(Clone, Debug)]
pub struct CorsSettings {
    pub with_credentials: Vec<OriginPattern>,
    pub without_credentials: Vec<OriginPattern>,
}

impl Default for CorsSettings {
    fn default() -> Self {
        CorsSettings {
            with_credentials: vec![],
            without_credentials: vec![OriginPattern::Any],
        }
    }
}

impl CorsSettings {
    /// Parses the two lists, refusing `*` where credentials are allowed.
    pub fn new(
        with_credentials: &[String],
        without_credentials: &[String],
    ) -> Result<Self, CorsConfigError> {
        let with = with_credentials
            .iter()
            .map(|s| OriginPattern::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        if with.contains(&OriginPattern::Any) {
            return Err(CorsConfigError::AnyWithCredentials);
        }
        let without = without_credentials
            .iter()
            .map(|s| OriginPattern::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CorsSettings {
            with_credentials: with,
            without_credentials: without,
        })
    }

    fn allows(&self, origin: &HeaderValue, parts: &Parts) -> bool {
        let Ok(origin) = origin.to_str() else {
            return false;
        };
        let list = if has_credentials(parts) {
            &self.with_credentials
        } else {
            &self.without_credentials
        };
        list.iter().any(|p| p.matches(origin))
    }

    pub fn layer(&self) -> CorsLayer {
        let me = self.clone();
        CorsLayer::new()
            .allow_origin(AllowOrigin::predicate(move |origin, parts| {
                me.allows(origin, parts)
            }))
            .allow_credentials(true)
            .allow_methods(AllowMethods::mirror_request())
            .allow_headers([
                HeaderName::from_static("accept"),
                AUTHORIZATION,
                HeaderName::from_static("content-type"),
                HeaderName::from_static("origin"),
                HeaderName::from_static("user-agent"),
                HeaderName::from_static("x-correlation-id"),
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("x-requested-with"),
            ])
            .expose_headers([
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("set-auth-token"),
            ])
            .max_age(Duration::from_secs(3600))
    }
}

fn has_credentials(parts: &Parts) -> bool {
    if parts.headers.contains_key(AUTHORIZATION) || parts.headers.contains_key(COOKIE) {
        return true;
    }
    parts.method == Method::OPTIONS
        && parts
            .headers
            .get_all(ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|h| {
                let h = h.trim();
                h.eq_ignore_ascii_case("authorization") || h.eq_ignore_ascii_case("cookie")
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = OriginPattern::parse("https://*.example.com").unwrap();
        assert!(p.matches("https://app.example.com"));
        assert!(p.matches("https://a.b.example.com"));
        assert!(!p.matches("https://.example.com"));
        assert!(!p.matches("https://example.com"));
        assert!(!p.matches("https://evil.com/.example.com"));
        assert!(!p.matches("http://app.example.com"));
        let e = OriginPattern::parse("http://localhost:5173/").unwrap();
        assert!(e.matches("http://localhost:5173"));
        assert!(!e.matches("http://localhost:5174"));
    }

    #[test]
    fn star_with_credentials_is_refused() {
        assert!(matches!(
            CorsSettings::new(&["*".into()], &[]),
            Err(CorsConfigError::AnyWithCredentials)
        ));
        assert!(CorsSettings::new(&["https://*.x.com".into()], &["*".into()]).is_ok());
    }
}
