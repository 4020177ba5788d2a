//! [`OAuthError`] and [`IdTokenError`].
//!
//! No message ever contains a token, an authorization code or a secret:
//! messages name the endpoint's host, the HTTP status and, at most, the
//! provider's OAuth error code (sanitized).

/// Why a sign-in with a provider failed. [`OAuthError::code`] gives a stable
/// snake_case code for logs and API responses; the `Display` text is for
/// logs only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The provider's metadata or keys could not be had: discovery document
    /// or JWKS unreachable, malformed, naming another issuer, or the
    /// provider is misconfigured (an OpenID Connect provider without an
    /// issuer).
    #[error("provider discovery failed: {0}")]
    Discovery(String),
    /// The token endpoint refused the authorization code (or answered
    /// something unusable). `error` is the provider's OAuth error code
    /// (`invalid_grant`, `bad_verification_code`, ...) when it gave one.
    #[error("token exchange failed: HTTP {status}{}", error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default())]
    TokenExchange { status: u16, error: Option<String> },
    /// The ID token is missing or invalid.
    #[error("invalid ID token: {0}")]
    InvalidIdToken(#[from] IdTokenError),
    /// The userinfo / user API call failed or answered something unusable.
    #[error("userinfo request failed: {0}")]
    UserInfo(String),
    /// A request could not be completed: connection, timeout, oversized or
    /// unreadable response.
    #[error("HTTP request failed: {0}")]
    Http(String),
    /// The provider gave no email address for the account.
    #[error("the provider returned no email address")]
    EmailMissing,
}

/// What is wrong with an ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// `iss` is not the provider's issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the client id, or `azp` names another client.
    #[error("wrong audience")]
    WrongAudience,
    /// `exp` is in the past (beyond the 60 s leeway).
    #[error("expired")]
    Expired,
    /// `nbf` or `iat` is in the future (beyond the 60 s leeway).
    #[error("not yet valid")]
    NotYetValid,
    /// The signature does not verify with the key it names.
    #[error("bad signature")]
    BadSignature,
    /// `nonce` is missing or differs from the one sent.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The token response has no ID token.
    #[error("missing")]
    Missing,
    /// No key of the provider's JWKS (even refetched) matches the token's `kid`.
    #[error("unknown signing key")]
    UnknownKey,
    /// The `alg` is not on the allowlist (RS256, RS384, RS512, PS256, ES256,
    /// ES384): `none`, HMAC and anything else are refused.
    #[error("unsupported algorithm")]
    UnsupportedAlg,
    /// Not a well-formed JWS compact token, or a claim is missing or of the
    /// wrong type (`sub`, `exp`, `iat`).
    #[error("malformed")]
    Malformed,
}

impl OAuthError {
    /// A stable snake_case code, documented in the crate docs.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::Discovery(_) => "discovery_failed",
            OAuthError::TokenExchange { .. } => "token_exchange_failed",
            OAuthError::InvalidIdToken(e) => e.code(),
            OAuthError::UserInfo(_) => "userinfo_failed",
            OAuthError::Http(_) => "provider_request_failed",
            OAuthError::EmailMissing => "email_missing",
        }
    }
}

impl IdTokenError {
    /// The code [`OAuthError::code`] gives for this error.
    pub fn code(&self) -> &'static str {
        match self {
            IdTokenError::WrongIssuer => "wrong_issuer",
            IdTokenError::WrongAudience => "wrong_audience",
            IdTokenError::Expired => "id_token_expired",
            IdTokenError::NotYetValid => "id_token_not_yet_valid",
            IdTokenError::NonceMismatch => "nonce_mismatch",
            IdTokenError::Missing => "id_token_missing",
            IdTokenError::BadSignature
            | IdTokenError::UnknownKey
            | IdTokenError::UnsupportedAlg
            | IdTokenError::Malformed => "invalid_id_token",
        }
    }
}

/// Keeps a provider-supplied OAuth error code only if it looks like one
/// (`[A-Za-z0-9_.-]`, at most 64 characters), so that nothing else a
/// provider sends ends up in messages.
pub(crate) fn sanitize_error_code(code: &str) -> Option<String> {
    let ok = !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    ok.then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(
            OAuthError::TokenExchange {
                status: 400,
                error: Some("invalid_grant".into())
            }
            .code(),
            "token_exchange_failed"
        );
        assert_eq!(
            OAuthError::from(IdTokenError::Expired).code(),
            "id_token_expired"
        );
        assert_eq!(
            OAuthError::from(IdTokenError::BadSignature).code(),
            "invalid_id_token"
        );
        assert_eq!(OAuthError::EmailMissing.code(), "email_missing");
    }

    #[test]
    fn messages() {
        let e = OAuthError::TokenExchange {
            status: 400,
            error: Some("invalid_grant".into()),
        };
        assert_eq!(
            e.to_string(),
            "token exchange failed: HTTP 400 (invalid_grant)"
        );
        let e = OAuthError::TokenExchange {
            status: 502,
            error: None,
        };
        assert_eq!(e.to_string(), "token exchange failed: HTTP 502");
        assert_eq!(
            OAuthError::from(IdTokenError::WrongIssuer).to_string(),
            "invalid ID token: wrong issuer"
        );
    }

    #[test]
    fn error_codes_are_sanitized() {
        assert_eq!(
            sanitize_error_code("invalid_grant").as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(sanitize_error_code("bad code abc123"), None);
        assert_eq!(sanitize_error_code(""), None);
        assert_eq!(sanitize_error_code(&"x".repeat(65)), None);
    }
}
