//! Request bodies as BetterAuth accepts them: JSON (or, where BetterAuth
//! allows it, an HTML form), an empty body meaning `{}`, and validation
//! errors in its `[body.field] problem` form.

use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use super::BaError;
use crate::extract::read_body;

/// A request body; unknown fields are ignored, as BetterAuth does.
pub struct BaBody<T>(pub T);

impl<S, T> FromRequest<S> for BaBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = BaError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mime = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                ct.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let bytes = read_body(req, state)
            .await
            .map_err(|e| BaError::validation(e.message))?;
        decode(mime.as_deref(), &bytes).map(BaBody)
    }
}

/// Decodes a body of media type `mime` (lower-case, without parameters).
pub(crate) fn decode<T: DeserializeOwned>(mime: Option<&str>, bytes: &[u8]) -> Result<T, BaError> {
    let form = mime == Some("application/x-www-form-urlencoded");
    if let Some(m) = mime {
        if !(form || m == "application/json" || m.ends_with("+json")) {
            return Err(BaError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "UNSUPPORTED_MEDIA_TYPE",
                format!("Unsupported content type {m:?}: send application/json"),
            ));
        }
    }
    if form {
        return serde_urlencoded::from_bytes(bytes)
            .map_err(|e| BaError::validation(format!("[body] {e}")));
    }
    let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BaError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "BODY_MUST_BE_AN_OBJECT",
            "Body must be an object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde reports a missing field at the parent: name the field.
        if let Some(field) = inner
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            let at = if path == "." {
                String::new()
            } else {
                format!(".{path}")
            };
            return BaError::validation(format!("[body{at}.{field}] is required"));
        }
        if path == "." || path.is_empty() {
            BaError::validation(format!("[body] {inner}"))
        } else {
            BaError::validation(format!("[body.{path}] {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| BaError::validation(format!("[body] {e}")))?;
    Ok(value)
}
