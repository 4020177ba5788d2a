//! Entry points for the fuzz targets in `fuzz/`: the request decoders and
//! the credential parser, reachable without a server. Not a stable API.

use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue};

use crate::betterauth::{
    body, ChangePasswordRequest, DeleteUserRequest, RevokeSessionRequest, SignInEmailRequest,
    SignUpEmailRequest, UpdateUserRequest,
};
use crate::cookies::{CookieSettings, SigningKey};
use crate::extract::{parse_json, request_credentials, Credentials};
use crate::routes::{auth, profile};

/// Runs every request-body decoder over `bytes`, as JSON (tutorial API) and
/// with `mime` (BetterAuth API). Errors are fine; panics are bugs.
pub fn decode_bodies(mime: Option<&str>, bytes: &[u8]) {
    let headers = HeaderMap::new();
    let _ = parse_json::<auth::SignUpRequest>(&headers, bytes);
    let _ = parse_json::<auth::SignInRequest>(&headers, bytes);
    let _ = parse_json::<auth::SignOutRequest>(&headers, bytes);
    let _ = parse_json::<profile::UpdateProfileRequest>(&headers, bytes);
    let _ = body::decode::<SignUpEmailRequest>(mime, bytes);
    let _ = body::decode::<SignInEmailRequest>(mime, bytes);
    let _ = body::decode::<RevokeSessionRequest>(mime, bytes);
    let _ = body::decode::<UpdateUserRequest>(mime, bytes);
    let _ = body::decode::<ChangePasswordRequest>(mime, bytes);
    let _ = body::decode::<DeleteUserRequest>(mime, bytes);
}

/// Parses an `Authorization` and a `Cookie` header as a request would carry
/// them; returns the session token found, if any. A token is only ever
/// returned with a valid signature (or as a raw bearer token).
pub fn credentials(authorization: &[u8], cookie: &[u8]) -> Option<String> {
    let settings = CookieSettings {
        prefix: "warden".into(),
        secure: false,
        key: SigningKey::new(b"fuzzing key"),
    };
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(authorization) {
        if !authorization.is_empty() {
            headers.insert(AUTHORIZATION, v);
        }
    }
    if let Ok(v) = HeaderValue::from_bytes(cookie) {
        headers.insert(COOKIE, v);
    }
    match request_credentials(&headers, &settings) {
        Credentials::Token { token, .. } => Some(token),
        _ => None,
    }
}

/// Signs `token` with the fuzzing key, for targets that build valid values.
pub fn sign(token: &str) -> String {
    CookieSettings {
        prefix: "warden".into(),
        secure: false,
        key: SigningKey::new(b"fuzzing key"),
    }
    .signed_value(token)
}
