//! Request extractors: JSON bodies with clear errors, and the signed-in user.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Request,
};
use std::sync::{Arc, Mutex};

use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use serde::de::DeserializeOwned;
use warden_core::{AuthError, Authenticated, RequestMeta, Session, SessionToken, User};

use crate::cookies::{CookieSettings, Unsigned, MAX_TOKEN_VALUE};
use crate::error::{ApiError, NO_CREDENTIALS};
use crate::AppState;

/// A JSON body. Malformed JSON, wrong types, missing fields, a wrong
/// content type and an oversized body all become `400 invalid_argument`
/// with a message that names the problem (and the field, where there is one).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(
                "unable to decode request body: the body is empty, expected a JSON object",
            ));
        }
        parse_json(&headers, &bytes).map(ApiJson)
    }
}

/// Reads the whole body, mapping the size limit to a 400.
pub(crate) async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::invalid("request body too large")
        } else {
            ApiError::invalid(format!("unable to read request body: {e}"))
        }
    })
}

/// Parses a JSON body. Unknown fields are ignored (as Encore does);
/// duplicate fields are rejected.
pub(crate) fn parse_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !(mime == "application/json" || mime.ends_with("+json")) {
            return Err(ApiError::invalid(format!(
                "unsupported content type {mime:?}: send application/json"
            )));
        }
    }
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::invalid(
            "unable to decode request body: expected a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::invalid(format!("unable to decode request body: {inner}"))
        } else {
            ApiError::invalid(format!("unable to decode request body: {path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::invalid(format!("unable to decode request body: {e}")))?;
    Ok(value)
}

/// The session token a request presents, if any.
pub(crate) enum Credentials {
    Missing,
    Malformed(&'static str),
    Token { token: String, from_cookie: bool },
}

/// The session token of a request: `Authorization: Bearer <token>` (the
/// raw token, or BetterAuth's signed `<token>.<signature>`, URL-encoded or
/// not; the scheme matched case-insensitively), else the signed session
/// cookie. A bad signature is refused, never ignored.
pub(crate) fn request_credentials(headers: &HeaderMap, cookies: &CookieSettings) -> Credentials {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return match cookies.read_session(headers) {
            None => Credentials::Missing,
            Some(Unsigned::Valid(token)) => Credentials::Token {
                token,
                from_cookie: true,
            },
            Some(Unsigned::Invalid) => Credentials::Malformed("invalid session cookie"),
        };
    };
    let Ok(value) = value.to_str() else {
        return Credentials::Malformed("malformed authorization header");
    };
    let value = value.trim();
    let Some((scheme, token)) = value.split_once(char::is_whitespace) else {
        return Credentials::Malformed(
            "malformed authorization header: expected \"Bearer <token>\"",
        );
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credentials::Malformed("unsupported authorization scheme: expected Bearer");
    }
    let token = token.trim();
    if token.is_empty() || token.contains(char::is_whitespace) || token.len() > MAX_TOKEN_VALUE {
        return Credentials::Malformed("malformed bearer token");
    }
    if token.contains(['.', '%']) {
        return match cookies.unsign(token) {
            Unsigned::Valid(token) => Credentials::Token {
                token,
                from_cookie: false,
            },
            Unsigned::Invalid => Credentials::Malformed("invalid bearer token signature"),
        };
    }
    Credentials::Token {
        token: token.to_owned(),
        from_cookie: false,
    }
}

/// Why a request is not signed in.
pub(crate) enum AuthFailure {
    Missing,
    Malformed(&'static str),
    Invalid,
    Expired,
    /// The session could not be checked (database down): not the client's fault.
    Server(AuthError),
}

/// Validates the session a request presents.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<AuthUser, AuthFailure> {
    let (token, from_cookie) = match request_credentials(headers, &state.settings.cookies) {
        Credentials::Missing => return Err(AuthFailure::Missing),
        Credentials::Malformed(why) => return Err(AuthFailure::Malformed(why)),
        Credentials::Token { token, from_cookie } => (token, from_cookie),
    };
    match state.warden.authenticate(&token).await {
        Ok(auth) => Ok(AuthUser {
            user: auth.user,
            session: auth.session,
            token: SessionToken::from_client(token),
            from_cookie,
            refreshed: auth.refreshed,
        }),
        Err(e @ (AuthError::Store(_) | AuthError::Internal(_))) => Err(AuthFailure::Server(e)),
        Err(AuthError::SessionExpired) => Err(AuthFailure::Expired),
        Err(_) => Err(AuthFailure::Invalid),
    }
}

/// Cookies to add to the response, collected while the request is handled
/// (a session refreshed by an extractor re-issues its cookie).
#[derive(Clone, Default)]
pub(crate) struct PendingCookies(Arc<Mutex<Vec<HeaderValue>>>);

impl PendingCookies {
    pub(crate) fn push(&self, v: HeaderValue) {
        self.0.lock().expect("not poisoned").push(v);
    }

    fn take(&self) -> Vec<HeaderValue> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

/// Middleware: appends the pending cookies, unless the handler set cookies
/// itself (sign-out clearing the cookie wins over a refresh).
pub(crate) async fn pending_cookies(mut req: Request, next: Next) -> Response {
    let pending = PendingCookies::default();
    req.extensions_mut().insert(pending.clone());
    let mut response = next.run(req).await;
    if !response.headers().contains_key(SET_COOKIE) {
        for c in pending.take() {
            response.headers_mut().append(SET_COOKIE, c);
        }
    }
    response
}

/// The signed-in user of a request: put it in a handler's arguments and the
/// handler only runs for requests with a valid session (Encore's
/// `auth: true`); its fields are what `getAuthData()` returned. Use
/// `Option<AuthUser>` for endpoints that work with or without a user.
///
/// The session comes from `Authorization: Bearer` or the signed session
/// cookie. Works on any router whose state provides an [`AppState`] via
/// `FromRef`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub session: Session,
    pub(crate) token: SessionToken,
    pub(crate) from_cookie: bool,
    pub(crate) refreshed: bool,
}

impl AuthUser {
    pub fn id(&self) -> &str {
        &self.user.id
    }

    pub(crate) fn authenticated(&self) -> Authenticated {
        Authenticated {
            user: self.user.clone(),
            session: self.session.clone(),
            refreshed: self.refreshed,
        }
    }

    /// Validates the request's session once per request (later extractors
    /// reuse the result) and queues a refreshed cookie.
    pub(crate) async fn from_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<AuthUser, AuthFailure> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let user = authenticate(state, &parts.headers).await?;
        if let Some(span) = parts.extensions.get::<crate::middleware::RequestSpan>() {
            span.0.record("user_id", user.user.id.as_str());
        }
        if user.refreshed && user.from_cookie {
            if let Some(p) = parts.extensions.get::<PendingCookies>() {
                p.push(session_cookie(state, &user.token, &user.session));
            }
        }
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// `Set-Cookie` for a session: with `Max-Age` for remembered sessions,
/// a browser-session cookie otherwise.
pub(crate) fn session_cookie(
    state: &AppState,
    token: &SessionToken,
    session: &Session,
) -> HeaderValue {
    let max_age = state
        .warden
        .is_remembered(session)
        .then(|| ((session.expires_at - state.warden.now()).num_milliseconds() + 999) / 1000);
    state.settings.cookies.set_session(token.expose(), max_age)
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        AuthUser::from_parts(parts, &state)
            .await
            .map_err(|f| match f {
                AuthFailure::Missing => ApiError::unauthenticated(NO_CREDENTIALS),
                AuthFailure::Malformed(why) => ApiError::unauthenticated(why),
                AuthFailure::Invalid => ApiError::unauthenticated("invalid session"),
                AuthFailure::Expired => ApiError::unauthenticated("session expired"),
                AuthFailure::Server(e) => ApiError::from(e),
            })
    }
}

impl<S> OptionalFromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    /// No or invalid credentials give `None`; only server errors reject.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match <AuthUser as FromRequestParts<S>>::from_request_parts(parts, state).await {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.code == crate::error::ErrCode::Unauthenticated => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Client IP and user agent, recorded on new sessions, and the device
/// cookie. The IP is the peer address, or behind trusted proxies the
/// forwarded client address (see [`crate::ratelimit::ClientIpSettings`]).
pub struct ClientMeta(pub RequestMeta);

impl<S> FromRequestParts<S> for ClientMeta
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let ip = match parts.extensions.get::<crate::ratelimit::ClientIp>() {
            Some(c) => c.0,
            None => {
                let peer = parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0.ip());
                state.settings.client_ip.client_ip(peer, &parts.headers)
            }
        };
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ClientMeta(RequestMeta {
            ip_address: ip.map(|ip| ip.to_string()),
            user_agent,
            device_user_id: state.settings.cookies.read_device(&parts.headers),
            trusted_device: state.settings.cookies.read_trust_device(&parts.headers),
        }))
    }
}
