//! Rate limiting per client address and path, and the client address itself.
//!
//! Fixed windows counted in a [`Counters`] store (memory, database or
//! Redis). A request over its rule's limit gets 429 with `Retry-After`, in
//! the error format of the API it called.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use warden_telemetry::metrics::{SignInMethod, SignInResult};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use warden_core::Counters;

use crate::betterauth::BaError;
use crate::error::{ApiError, ErrCode};
use crate::AppState;

/// One limit: at most `max` requests per `window` for each client address,
/// on paths matching `pattern` (`*` matches any characters).
#[derive(Clone, Debug)]
pub struct RateRule {
    pub pattern: String,
    pub window: Duration,
    pub max: u64,
}

impl RateRule {
    pub fn new(pattern: impl Into<String>, window: Duration, max: u64) -> Self {
        RateRule {
            pattern: pattern.into(),
            window,
            max,
        }
    }

    fn matches(&self, path: &str) -> bool {
        glob(self.pattern.as_bytes(), path.as_bytes())
    }
}

/// `*` matches any run of characters (including `/`); everything else is
/// literal.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && pattern[p] != b'*' && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Rate-limit settings; the first matching rule wins, then the default.
#[derive(Clone)]
pub struct RateLimitSettings {
    pub window: Duration,
    pub max: u64,
    pub rules: Vec<RateRule>,
    pub counters: Arc<dyn Counters>,
}

impl std::fmt::Debug for RateLimitSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitSettings")
            .field("window", &self.window)
            .field("max", &self.max)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl RateLimitSettings {
    /// BetterAuth's defaults: 100 requests per 10 s per path; magic links 5
    /// and email codes 3 per 60 s; sign-in,
    /// sign-up, change-password and change-email 3 per 10 s;
    /// password-reset and verification mails 3 per 60 s. `custom` rules come
    /// first, so they override these.
    pub fn with_defaults(
        betterauth_base: Option<&str>,
        custom: Vec<RateRule>,
        counters: Arc<dyn Counters>,
    ) -> Self {
        let s10 = Duration::from_secs(10);
        let s60 = Duration::from_secs(60);
        let mut rules = custom;
        // Before the `sign-in/*` rules, which would match first. Magic
        // links 5 per minute, email codes 3 per minute (BetterAuth's
        // plugins' limits); each also limited per email in the core
        // (`per_email_max`).
        rules.push(RateRule::new("/auth/magic-link*", s60, 5));
        rules.push(RateRule::new("/auth/email-otp/*", s60, 3));
        if let Some(base) = betterauth_base {
            for p in ["/sign-in/magic-link*", "/magic-link/verify*"] {
                rules.push(RateRule::new(format!("{base}{p}"), s60, 5));
            }
            for p in ["/sign-in/email-otp*", "/email-otp/*"] {
                rules.push(RateRule::new(format!("{base}{p}"), s60, 3));
            }
        }
        for p in [
            "/auth/signin",
            "/auth/signup",
            "/auth/change-password",
            "/auth/change-email",
            "/auth/two-factor/*",
        ] {
            rules.push(RateRule::new(p, s10, 3));
        }
        for p in [
            "/auth/request-password-reset",
            "/auth/send-verification-email",
        ] {
            rules.push(RateRule::new(p, s60, 3));
        }
        if let Some(base) = betterauth_base {
            for p in [
                "/sign-in/*",
                "/sign-up/*",
                "/change-password*",
                "/change-email*",
                "/two-factor/*",
            ] {
                rules.push(RateRule::new(format!("{base}{p}"), s10, 3));
            }
            for p in [
                "/request-password-reset*",
                "/send-verification-email*",
                "/forget-password*",
            ] {
                rules.push(RateRule::new(format!("{base}{p}"), s60, 3));
            }
        }
        RateLimitSettings {
            window: s10,
            max: 100,
            rules,
            counters,
        }
    }

    fn rule_for(&self, path: &str) -> (String, Duration, u64) {
        match self.rules.iter().find(|r| r.matches(path)) {
            Some(r) => (r.pattern.clone(), r.window, r.max),
            None => (path.to_owned(), self.window, self.max),
        }
    }
}

/// Where the client address comes from.
#[derive(Clone, Debug)]
pub struct ClientIpSettings {
    /// Proxies whose forwarding header is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// The forwarding header (default `x-forwarded-for`).
    pub header: HeaderName,
}

impl Default for ClientIpSettings {
    fn default() -> Self {
        ClientIpSettings {
            trusted_proxies: vec![],
            header: HeaderName::from_static("x-forwarded-for"),
        }
    }
}

impl ClientIpSettings {
    fn trusted(&self, ip: &IpAddr) -> bool {
        let ip = canonical(*ip);
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// The client's address: the peer, unless the peer is a trusted proxy;
    /// then the right-most entry of the forwarding header that is not a
    /// trusted proxy (entries to its left were written by the client and
    /// prove nothing). A header from an untrusted peer is ignored.
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.trusted(&peer) {
            return Some(peer);
        }
        let mut client = peer;
        let entries = headers
            .get_all(&self.header)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for entry in entries.iter().rev().take(32) {
            match parse_forwarded_ip(entry) {
                Some(ip) if self.trusted(&ip) => client = ip,
                Some(ip) => return Some(ip),
                // Garbage from beyond the last trusted proxy: stop there.
                None => return Some(client),
            }
        }
        Some(client)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]:5678`.
fn parse_forwarded_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    s.parse::<SocketAddr>().ok().map(|a| canonical(a.ip()))
}

/// The client address of this request, as computed once by the middleware.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

pub(crate) fn client_ip_of(state: &AppState, req: &Request) -> Option<IpAddr> {
    if let Some(ClientIp(ip)) = req.extensions().get::<ClientIp>() {
        return *ip;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    state.settings.client_ip.client_ip(peer, req.headers())
}

/// Middleware: works out the client address (for every request) and
/// applies the rate limits (when configured).
pub async fn rate_limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip_of(&state, &req);
    req.extensions_mut().insert(ClientIp(ip));
    let Some(limits) = state.settings.rate_limit.as_ref() else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if req.method() == Method::OPTIONS || path == "/healthz" || path == "/readyz" {
        return next.run(req).await;
    }
    let (rule, window, max) = limits.rule_for(path);
    // Without an address (no peer info: an embedding without ConnectInfo),
    // requests share one bucket: fail closed, as BetterAuth does.
    let who = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let key = format!("rate:{who}|{rule}");
    match limits.counters.hit(&key, window).await {
        Ok(hit) if hit.count > max => {
            let retry = hit.reset_in.as_secs() + u64::from(hit.reset_in.subsec_nanos() > 0);
            tracing::info!(path, rule = %rule, "rate limit exceeded");
            count_refusal(&state, &req);
            too_many(&state, path, retry.max(1))
        }
        Ok(_) => next.run(req).await,
        Err(e) => {
            tracing::warn!(error = %e, "rate-limit counters unavailable; request allowed");
            next.run(req).await
        }
    }
}

/// Which sign-in a route is, for the sign-in metric's `rate_limited`.
fn sign_in_method(route: &str) -> Option<SignInMethod> {
    if route == "/auth/signin" || route.ends_with("/sign-in/email") {
        Some(SignInMethod::Password)
    } else if route.ends_with("/two-factor/verify-totp")
        || route.ends_with("/two-factor/verify-backup-code")
    {
        Some(SignInMethod::TwoFactor)
    } else if route == "/auth/passkey/signin/verify"
        || route.ends_with("/passkey/verify-authentication")
    {
        Some(SignInMethod::Passkey)
    } else {
        None
    }
}

/// Counts a refusal by route template (never the path itself).
fn count_refusal(state: &AppState, req: &Request) {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str());
    let metrics = state.warden.metrics();
    metrics.rate_limited(route);
    if let Some(method) = sign_in_method(route) {
        metrics.sign_in(method, SignInResult::RateLimited);
    }
}

fn too_many(state: &AppState, path: &str, retry_after: u64) -> Response {
    let ba = state
        .settings
        .betterauth
        .as_ref()
        .and_then(|b| path.strip_prefix(b.base_path.as_str()))
        .is_some_and(|rest| rest.starts_with('/'));
    if ba {
        let mut r = BaError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Too many requests. Please try again later.",
        )
        .retry_after(retry_after)
        .into_response();
        // BetterAuth's client reads this one.
        if let Ok(v) = retry_after.to_string().parse() {
            r.headers_mut().insert("x-retry-after", v);
        }
        r
    } else {
        ApiError::new(
            ErrCode::ResourceExhausted,
            format!("too many requests; retry in {retry_after} s"),
        )
        .retry_after(retry_after)
        .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_routes() {
        assert_eq!(sign_in_method("/auth/signin"), Some(SignInMethod::Password));
        assert_eq!(
            sign_in_method("/api/auth/sign-in/email"),
            Some(SignInMethod::Password)
        );
        assert_eq!(
            sign_in_method("/api/auth/two-factor/verify-totp"),
            Some(SignInMethod::TwoFactor)
        );
        assert_eq!(sign_in_method("/profile"), None);
    }
    use axum::http::HeaderValue;

    #[test]
    fn globs() {
        assert!(glob(b"/api/auth/sign-in/*", b"/api/auth/sign-in/email"));
        assert!(glob(
            b"/api/auth/change-password*",
            b"/api/auth/change-password"
        ));
        assert!(!glob(b"/api/auth/sign-in/*", b"/api/auth/sign-out"));
        assert!(glob(b"*", b"/x"));
        assert!(glob(b"/a*c", b"/abbbc"));
        assert!(!glob(b"/a*c", b"/abbbd"));
        assert!(glob(b"/auth/signin", b"/auth/signin"));
        assert!(!glob(b"/auth/signin", b"/auth/signin2"));
    }

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn client_ip_rules() {
        let s = ClientIpSettings {
            trusted_proxies: vec![
                "10.0.0.0/8".parse().unwrap(),
                "127.0.0.1/32".parse().unwrap(),
            ],
            ..Default::default()
        };
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Untrusted peer: the header is ignored.
        assert_eq!(
            s.client_ip(Some(ip("203.0.113.9")), &xff("1.1.1.1")),
            Some(ip("203.0.113.9"))
        );
        // Trusted peer: right-most untrusted entry.
        assert_eq!(
            s.client_ip(
                Some(ip("10.0.0.1")),
                &xff("6.6.6.6, 198.51.100.7, 10.0.0.2")
            ),
            Some(ip("198.51.100.7"))
        );
        // All trusted: the left-most one.
        assert_eq!(
            s.client_ip(Some(ip("127.0.0.1")), &xff("10.1.1.1")),
            Some(ip("10.1.1.1"))
        );
        // No header: the proxy itself.
        assert_eq!(
            s.client_ip(Some(ip("127.0.0.1")), &HeaderMap::new()),
            Some(ip("127.0.0.1"))
        );
        // Garbage after trusted hops: the last trusted hop.
        assert_eq!(
            s.client_ip(Some(ip("10.0.0.1")), &xff("1.1.1.1, nonsense")),
            Some(ip("10.0.0.1"))
        );
        // Ports and IPv4-mapped IPv6.
        assert_eq!(
            s.client_ip(Some(ip("::ffff:10.0.0.1")), &xff("[2001:db8::1]:443")),
            Some(ip("2001:db8::1"))
        );
    }
}
