//! Social sign-in (OAuth 2.0 / OpenID Connect): the redirect to the
//! provider and the callback, shared by both APIs.
//!
//! - Start: a random `state` (190 bits) names a verification row holding
//!   the PKCE verifier, the OIDC nonce and where to go back (10 minutes,
//!   single use), and a signed `<prefix>.oauth_state` cookie binds it to the
//!   browser that started.
//! - Callback: the cookie must match `state`, the row is consumed, `iss` (RFC
//!   9207) must be the provider's, the code is exchanged with the verifier,
//!   the ID token is checked (`warden-oauth`), then the core decides which
//!   user this is.
//! - The BetterAuth API's flow ends with the session cookie and a redirect;
//!   the tutorial API's ends with a redirect carrying a one-time code that
//!   `POST /auth/exchange` trades for the session. No token is ever put in a
//!   URL.
//! - Every failure after the provider redirect becomes a redirect to the
//!   error callback with a documented `error` code.

pub(crate) mod api;
pub(crate) mod ba;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use warden_core::{AuthError, ProviderTokens, SignInOutcome, SocialIdentity, SocialPolicy};
use warden_oauth::{AuthorizationRequest, OAuthError, Provider};

use crate::extract::ClientMeta;
use crate::routes::email::redirect;
use crate::routes::password::with_query;
use crate::AppState;

/// One configured provider.
pub struct SocialProvider {
    pub client: Provider,
    /// Where the provider sends the browser back (registered with it).
    pub redirect_uri: String,
    /// Link identities to existing verified users by email even when the
    /// provider does not say the email is verified.
    pub trusted: bool,
    /// Create users for new identities.
    pub allow_sign_up: bool,
}

/// The configured providers, by name.
#[derive(Default, Clone)]
pub struct SocialSettings {
    pub providers: Arc<BTreeMap<String, SocialProvider>>,
}

impl std::fmt::Debug for SocialSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.providers.keys()).finish()
    }
}

/// How long a redirect to a provider may take to come back.
const STATE_TTL: Duration = Duration::from_secs(600);

/// Which API started the flow: how it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Flow {
    /// BetterAuth: session cookie, redirect to `callbackURL`.
    Ba,
    /// Tutorial API: redirect to `callbackURL?code=` (one-time code).
    Api,
}

/// What the state row remembers between the two legs.
#[derive(Serialize, Deserialize)]
struct StateData {
    provider: String,
    verifier: String,
    nonce: Option<String>,
    callback: String,
    error_callback: Option<String>,
    new_user_callback: Option<String>,
    flow: Flow,
    /// Explicit linking: the signed-in user who asked.
    link_user: Option<String>,
}

/// Where to send the browser and what it asked for.
pub(crate) struct Start<'a> {
    pub provider: &'a str,
    pub callback: Option<String>,
    pub error_callback: Option<String>,
    pub new_user_callback: Option<String>,
    pub flow: Flow,
    pub link_user: Option<String>,
    pub scopes: Vec<String>,
}

/// A failure of the flow, as the `error` query parameter of the redirect.
#[derive(Debug)]
pub(crate) struct FlowError(pub &'static str);

impl From<OAuthError> for FlowError {
    fn from(e: OAuthError) -> Self {
        tracing::warn!(code = e.code(), error = %e, "social sign-in failed at the provider");
        FlowError(e.code())
    }
}

impl From<AuthError> for FlowError {
    fn from(e: AuthError) -> Self {
        FlowError(match e {
            AuthError::AccountNotLinked => "account_not_linked",
            AuthError::AccountAlreadyLinked => "account_already_linked",
            AuthError::SocialEmailMissing => "email_missing",
            AuthError::LinkEmailMismatch => "email_does_not_match",
            AuthError::SocialEmailNotVerified => "email_not_verified",
            AuthError::SignUpDisabled => "signup_disabled",
            AuthError::Banned { .. } => "banned",
            other => {
                tracing::error!(error = %other, "social sign-in failed");
                "internal_error"
            }
        })
    }
}

pub(crate) fn provider<'a>(state: &'a AppState, name: &str) -> Option<&'a SocialProvider> {
    state.settings.social.providers.get(name)
}

/// Why a flow could not start.
#[derive(Debug)]
pub(crate) enum StartError {
    UnknownProvider,
    /// This redirect target is neither relative nor on a trusted origin.
    UntrustedTarget(&'static str),
    Auth(AuthError),
    /// The provider cannot be used now (its discovery document is
    /// unreachable, say): the code, for the error redirect.
    Provider(&'static str),
}

impl From<AuthError> for StartError {
    fn from(e: AuthError) -> Self {
        StartError::Auth(e)
    }
}

impl From<StartError> for crate::error::ApiError {
    fn from(e: StartError) -> Self {
        use crate::error::{ApiError, ErrCode};
        match e {
            StartError::UnknownProvider => ApiError::new(
                ErrCode::NotFound,
                "provider: no such social provider is configured",
            ),
            StartError::UntrustedTarget(field) => ApiError::new(
                ErrCode::PermissionDenied,
                format!("{field}: must be a relative path or a URL on a trusted origin"),
            ),
            StartError::Auth(e) => e.into(),
            StartError::Provider(code) => crate::error::ApiError::new(
                crate::error::ErrCode::Unavailable,
                format!("provider: cannot be reached right now ({code}); try again later"),
            ),
        }
    }
}

impl From<StartError> for crate::betterauth::BaError {
    fn from(e: StartError) -> Self {
        use crate::betterauth::BaError;
        match e {
            StartError::UnknownProvider => {
                BaError::not_found_code("PROVIDER_NOT_FOUND", "Provider not found")
            }
            StartError::UntrustedTarget(_) => BaError::invalid_callback_url(),
            StartError::Auth(e) => e.into(),
            StartError::Provider(_) => crate::betterauth::BaError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "PROVIDER_UNAVAILABLE",
                "The provider cannot be reached right now",
            ),
        }
    }
}

/// The provider's authorization URL for a new flow, and the state cookie.
/// Checks first that the provider exists and that every redirect target is
/// relative or on a trusted origin.
pub(crate) async fn start(
    state: &AppState,
    req: Start<'_>,
) -> Result<(String, axum::http::HeaderValue), StartError> {
    let p = provider(state, req.provider).ok_or(StartError::UnknownProvider)?;
    for (field, target) in [
        ("callbackURL", &req.callback),
        ("errorCallbackURL", &req.error_callback),
        ("newUserCallbackURL", &req.new_user_callback),
    ] {
        if let Some(t) = target {
            if !state.settings.trusted_origins.allows_redirect(t) {
                tracing::info!(field, "untrusted social sign-in redirect target refused");
                return Err(StartError::UntrustedTarget(field));
            }
        }
    }
    let verifier = warden_oauth::new_pkce_verifier();
    let nonce = p.client.uses_oidc().then(|| warden_oauth::random_token(32));
    let data = StateData {
        provider: req.provider.to_owned(),
        verifier: verifier.clone(),
        nonce: nonce.clone(),
        callback: req.callback.unwrap_or_else(|| "/".into()),
        error_callback: req.error_callback,
        new_user_callback: req.new_user_callback,
        flow: req.flow,
        link_user: req.link_user,
    };
    let json = serde_json::to_string(&data).map_err(|e| AuthError::Internal(e.to_string()))?;
    let oauth_state = state.warden.save_oauth_state(&json, STATE_TTL).await?;
    let url = p
        .client
        .authorization_url(&AuthorizationRequest {
            state: &oauth_state,
            code_challenge: &warden_oauth::pkce_challenge(&verifier),
            nonce: nonce.as_deref(),
            redirect_uri: &p.redirect_uri,
            scopes_extra: &req.scopes,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            tracing::error!(provider = req.provider, code = e.code(), error = %e, "cannot build the provider's authorization URL");
            StartError::Provider(e.code())
        })?;
    let cookie = state
        .settings
        .cookies
        .set_oauth_state(&oauth_state, STATE_TTL.as_secs());
    Ok((url.to_string(), cookie))
}

/// The callback's query parameters.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the provider when the user denied consent (or it failed).
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// RFC 9207: the issuer that sent the response.
    pub iss: Option<String>,
}

/// Handles the provider's redirect back: always answers with a redirect.
pub(crate) async fn callback(
    state: &AppState,
    provider_name: &str,
    q: CallbackQuery,
    headers: &HeaderMap,
    meta: ClientMeta,
) -> Response {
    let cookies = &state.settings.cookies;
    let clear = cookies.clear_oauth_state();
    let fail_early = |code: &'static str| {
        tracing::info!(
            provider = provider_name,
            error = code,
            "social sign-in callback refused"
        );
        let mut r = match &state.settings.betterauth {
            Some(b) => redirect(&with_query(
                &format!("{}/error", b.base_path),
                "error",
                code,
            )),
            None => crate::error::ApiError::invalid(format!(
                "state: the sign-in could not be completed ({code}); start again"
            ))
            .into_response(),
        };
        r.headers_mut().append(SET_COOKIE, clear.clone());
        r
    };
    // The state must be the one this browser was given.
    let Some(oauth_state) = q.state.as_deref().filter(|s| !s.is_empty()) else {
        return fail_early("invalid_state");
    };
    match cookies.read_oauth_state(headers) {
        Some(c) if constant_time_eq(&c, oauth_state) => {}
        _ => return fail_early("state_mismatch"),
    }
    let data = match state.warden.take_oauth_state(oauth_state).await {
        Ok(Some(json)) => match serde_json::from_str::<StateData>(&json) {
            Ok(d) => d,
            Err(_) => return fail_early("invalid_state"),
        },
        Ok(None) => return fail_early("invalid_state"),
        Err(e) => {
            tracing::error!(error = %e, "OAuth state lookup failed");
            return fail_early("internal_error");
        }
    };
    if data.provider != provider_name {
        return fail_early("invalid_state");
    }
    // Without an error callback: BetterAuth's error page for flows started
    // on its API (as BetterAuth), the callback itself on the tutorial API.
    let error_target = match (&data.error_callback, data.flow, &state.settings.betterauth) {
        (Some(e), _, _) => e.clone(),
        (None, Flow::Ba, Some(b)) => format!("{}/error", b.base_path),
        (None, _, _) => data.callback.clone(),
    };
    let mut response = match finish(state, provider_name, &q, &data, meta).await {
        Ok(r) => r,
        Err(FlowError(code)) => {
            tracing::info!(
                provider = provider_name,
                error = code,
                "social sign-in failed"
            );
            redirect(&with_query(&error_target, "error", code))
        }
    };
    response.headers_mut().append(SET_COOKIE, clear);
    response
}

async fn finish(
    state: &AppState,
    provider_name: &str,
    q: &CallbackQuery,
    data: &StateData,
    ClientMeta(meta): ClientMeta,
) -> Result<Response, FlowError> {
    let p = provider(state, provider_name).ok_or(FlowError("invalid_state"))?;
    if let Some(e) = q.error.as_deref() {
        // Only a known code goes back into a URL.
        return Err(FlowError(match e {
            "access_denied" => "access_denied",
            "login_required" | "consent_required" | "interaction_required" => "access_denied",
            _ => "provider_error",
        }));
    }
    if let Some(iss) = q.iss.as_deref() {
        if p.client.uses_oidc()
            && iss.trim_end_matches('/') != p.client.issuer().trim_end_matches('/')
        {
            return Err(FlowError("issuer_mismatch"));
        }
    }
    let code = q
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or(FlowError("invalid_code"))?;
    let tokens = p
        .client
        .exchange_code(code, &data.verifier, &p.redirect_uri)
        .await?;
    let user = p.client.fetch_user(&tokens, data.nonce.as_deref()).await?;
    use secrecy::ExposeSecret;
    let identity = SocialIdentity {
        provider: provider_name.to_owned(),
        issuer: p.client.issuer(),
        account_id: user.id,
        email: user.email,
        email_verified: user.email_verified,
        name: user.name,
        image: user.image,
        tokens: ProviderTokens {
            access_token: Some(tokens.access_token.expose_secret().to_owned()),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            id_token: tokens.id_token.clone(),
            expires_in: tokens.expires_in.map(Duration::from_secs),
            scope: tokens.scope.clone(),
        },
    };
    if let Some(user_id) = &data.link_user {
        state.warden.link_social(user_id, identity).await?;
        return Ok(redirect(&data.callback));
    }
    let policy = SocialPolicy {
        trusted: p.trusted,
        allow_sign_up: p.allow_sign_up,
    };
    let target = |new_user: bool| {
        if new_user {
            data.new_user_callback
                .clone()
                .unwrap_or(data.callback.clone())
        } else {
            data.callback.clone()
        }
    };
    match data.flow {
        Flow::Api => {
            let (code, new_user) = state
                .warden
                .social_sign_in_deferred(identity, policy)
                .await?;
            Ok(redirect(&with_query(&target(new_user), "code", &code)))
        }
        Flow::Ba => {
            let signed = state.warden.social_sign_in(identity, policy, meta).await?;
            let to = target(signed.new_user);
            match signed.outcome {
                SignInOutcome::SignedIn(s) => {
                    Ok(crate::betterauth::with_session(state, redirect(&to), &s))
                }
                SignInOutcome::TwoFactorRequired(c) => {
                    let mut r = redirect(&with_query(&to, "twoFactorRedirect", "true"));
                    r.headers_mut().append(
                        SET_COOKIE,
                        state
                            .settings
                            .cookies
                            .set_two_factor(c.token.expose(), c.expires_in.as_secs()),
                    );
                    Ok(r)
                }
            }
        }
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
