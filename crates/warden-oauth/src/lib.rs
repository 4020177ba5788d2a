//! Warden's outbound OAuth 2.0 / OpenID Connect client, for social sign-in
//! with Google, GitHub, Discord and any OpenID Connect provider.
//!
//! Pure client logic and HTTP calls (reqwest): no HTTP server, no storage,
//! no cookies. The caller keeps `state`, the PKCE verifier and the nonce
//! between the two legs of the flow.
//!
//! ```no_run
//! # async fn demo(http: reqwest::Client) -> Result<(), warden_oauth::OAuthError> {
//! use warden_oauth::*;
//!
//! let google = Provider::new(ProviderConfig::new("google", "client-id", "client-secret".to_owned()), http);
//!
//! // 1. Send the browser to the provider; keep state, verifier and nonce.
//! let (state, verifier, nonce) = (random_token(32), new_pkce_verifier(), random_token(32));
//! let url = google
//!     .authorization_url(&AuthorizationRequest {
//!         state: &state,
//!         code_challenge: &pkce_challenge(&verifier),
//!         nonce: Some(&nonce),
//!         redirect_uri: "https://app.example/api/auth/callback/google",
//!         ..Default::default()
//!     })
//!     .await?;
//!
//! // 2. On the callback (after checking `state`): redeem the code, get the user.
//! # let code = "";
//! let tokens = google
//!     .exchange_code(code, &verifier, "https://app.example/api/auth/callback/google")
//!     .await?;
//! let user = google.fetch_user(&tokens, Some(&nonce)).await?;
//! let account_key = (google.issuer(), user.id);
//! # let _ = (url, account_key); Ok(()) }
//! ```
//!
//! # Providers
//!
//! | kind | endpoints | user |
//! | --- | --- | --- |
//! | `Google` | discovery at `https://accounts.google.com` (or `issuer`) | validated ID token (+ userinfo if it has no email) |
//! | `Oidc` | discovery at `<issuer>/.well-known/openid-configuration` | validated ID token (+ userinfo if it has no email) |
//! | `GitHub` | `github.com/login/oauth/*`, `api.github.com/user` | `GET /user` + `GET /user/emails` (primary address) |
//! | `Discord` | `discord.com/oauth2/authorize`, `discord.com/api/*` | `GET /users/@me` |
//!
//! Explicit endpoints in [`ProviderConfig`] win over discovery and the
//! built-in defaults. For GitHub, `userinfo_endpoint` is the `/user` URL and
//! the email list is read at that URL plus `/emails`. An OpenID Connect
//! provider whose authorization, token and JWKS endpoints are all given is
//! not discovered at all.
//!
//! # Bounds
//!
//! Every outbound call has a timeout (10 s by default,
//! [`Provider::with_timeout`]) covering the whole response, and reads at most
//! 1 MiB of body ([`Provider::with_max_response_bytes`]). The JWKS is cached
//! (refetched after an hour), and refetched when a token names an unknown
//! `kid`, at most once per 60 s ([`Provider::with_jwks_refetch_interval`]).
//!
//! # Error codes
//!
//! [`OAuthError::code`] is stable, for logs and API responses. Messages
//! (`Display`) never contain tokens, codes or secrets.
//!
//! | code | error |
//! | --- | --- |
//! | `discovery_failed` | [`OAuthError::Discovery`]: discovery document or JWKS unavailable or invalid; provider misconfigured |
//! | `token_exchange_failed` | [`OAuthError::TokenExchange`]: the token endpoint refused the code (wrong PKCE verifier, reused or expired code, bad client credentials) |
//! | `id_token_missing` | [`IdTokenError::Missing`] |
//! | `wrong_issuer` | [`IdTokenError::WrongIssuer`] |
//! | `wrong_audience` | [`IdTokenError::WrongAudience`] |
//! | `id_token_expired` | [`IdTokenError::Expired`] |
//! | `id_token_not_yet_valid` | [`IdTokenError::NotYetValid`] |
//! | `nonce_mismatch` | [`IdTokenError::NonceMismatch`] |
//! | `invalid_id_token` | [`IdTokenError::BadSignature`], [`IdTokenError::UnknownKey`], [`IdTokenError::UnsupportedAlg`], [`IdTokenError::Malformed`] |
//! | `userinfo_failed` | [`OAuthError::UserInfo`]: userinfo / user API refused or answered nonsense, or a userinfo `sub` differing from the ID token's |
//! | `provider_request_failed` | [`OAuthError::Http`]: connection failure, timeout, oversized response |
//! | `email_missing` | [`OAuthError::EmailMissing`]: the provider gave no email address |

mod error;
mod http;
mod id_token;
mod provider;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use error::{IdTokenError, OAuthError};
pub use id_token::{IdTokenClaims, ALLOWED_ALGORITHMS, LEEWAY_SECS};
pub use provider::{
    AuthorizationRequest, Provider, ProviderConfig, ProviderKind, ProviderUser, TokenSet,
    DEFAULT_JWKS_REFETCH_INTERVAL, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, GOOGLE_ISSUER,
    JWKS_MAX_AGE,
};
pub use secrecy::SecretString;

/// `bytes` random bytes from the OS CSPRNG, base64url without padding.
/// Use 32 bytes (256 bits) for `state` and `nonce`.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// A PKCE code verifier (RFC 7636 4.1): 32 random bytes, base64url, so 43
/// characters of the unreserved set.
pub fn new_pkce_verifier() -> String {
    random_token(32)
}

/// The S256 code challenge of a verifier: `base64url(sha256(verifier))`
/// (RFC 7636 4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn pkce_verifiers_are_well_formed() {
        for _ in 0..100 {
            let v = new_pkce_verifier();
            assert!((43..=128).contains(&v.len()), "{v}");
            assert!(v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')));
            let c = pkce_challenge(&v);
            assert_eq!(c.len(), 43);
        }
    }

    #[test]
    fn random_tokens() {
        assert_eq!(random_token(32).len(), 43);
        assert_eq!(random_token(16).len(), 22);
        assert_eq!(random_token(0), "");
        let decoded = URL_SAFE_NO_PAD.decode(random_token(32)).unwrap();
        assert_eq!(decoded.len(), 32);

        // No repeats, and the bits look uniform: over 1000 tokens of 256
        // bits each bit position is set about half the time.
        let tokens: Vec<Vec<u8>> = (0..1000)
            .map(|_| URL_SAFE_NO_PAD.decode(random_token(32)).unwrap())
            .collect();
        let distinct: HashSet<&Vec<u8>> = tokens.iter().collect();
        assert_eq!(distinct.len(), tokens.len());
        for bit in 0..256 {
            let ones = tokens
                .iter()
                .filter(|t| t[bit / 8] & (1 << (bit % 8)) != 0)
                .count();
            // Binomial(1000, 0.5): sd ~ 15.8; 7 sd either side.
            assert!(
                (390..=610).contains(&ones),
                "bit {bit} set {ones}/1000 times"
            );
        }
    }
}
