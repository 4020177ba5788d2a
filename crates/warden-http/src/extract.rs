//! Request extractors: JSON bodies with clear errors, and the signed-in user.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{
    ConnectInfo, FromRef, FromRequest, FromRequestParts, OptionalFromRequestParts, Request,
};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use warden_core::{AuthError, RequestMeta, Session, User};

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

/// What went wrong reading credentials from a request.
pub(crate) enum Credentials {
    Missing,
    Malformed(&'static str),
    Token(String),
}

/// The bearer token of a request: `Authorization: Bearer <token>`, with the
/// scheme matched case-insensitively.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Credentials {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Credentials::Missing;
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
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Credentials::Malformed("malformed bearer token");
    }
    Credentials::Token(token.to_owned())
}

/// The signed-in user of a request: put it in a handler's arguments and the
/// handler only runs for requests with a valid session (Encore's
/// `auth: true`); its fields are what `getAuthData()` returned. Use
/// `Option<AuthUser>` for endpoints that work with or without a user.
///
/// Works on any router whose state provides an [`AppState`] via `FromRef`.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub session: Session,
}

impl AuthUser {
    pub fn id(&self) -> &str {
        &self.user.id
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<AuthUser>() {
            return Ok(user.clone());
        }
        let state = AppState::from_ref(state);
        let token = match bearer_token(&parts.headers) {
            Credentials::Missing => return Err(ApiError::unauthenticated(NO_CREDENTIALS)),
            Credentials::Malformed(why) => return Err(ApiError::unauthenticated(why)),
            Credentials::Token(t) => t,
        };
        let auth = state
            .warden
            .authenticate(&token)
            .await
            .map_err(|e| match e {
                AuthError::Store(_) | AuthError::Internal(_) => ApiError::from(e),
                AuthError::SessionExpired => ApiError::unauthenticated("session expired"),
                _ => ApiError::unauthenticated("invalid session"),
            })?;
        let user = AuthUser {
            user: auth.user,
            session: auth.session,
        };
        parts.extensions.insert(user.clone());
        Ok(user)
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

/// Client IP and user agent, recorded on new sessions. The IP is the peer
/// address unless `client_ip_header` is configured (behind a proxy), in which
/// case the last entry of that header is used.
pub struct ClientMeta(pub RequestMeta);

impl<S> FromRequestParts<S> for ClientMeta
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let from_header = state.settings.client_ip_header.as_ref().and_then(|h| {
            parts
                .headers
                .get(h)?
                .to_str()
                .ok()?
                .rsplit(',')
                .next()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        });
        let ip = from_header.or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        });
        let user_agent = parts
            .headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ClientMeta(RequestMeta {
            ip_address: ip,
            user_agent,
        }))
    }
}
