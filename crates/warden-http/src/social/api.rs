//! The tutorial API's social sign-in endpoints.

use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_core::SignInOutcome;

use super::{callback, start, CallbackQuery, Flow, Start};
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser, ClientMeta};
use crate::routes::auth::{with_cookie, SuccessResponse};
use crate::routes::email::redirect;
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SocialStartQuery {
    /// Where to go after sign-in, with `?code=<one-time code>` added
    /// (relative, or on a trusted origin). Default `/`.
    #[serde(rename = "callbackURL")]
    #[param(rename = "callbackURL")]
    pub callback_url: Option<String>,
    /// Where to go on failure, with `?error=<code>` added. Default: `callbackURL`.
    #[serde(rename = "errorCallbackURL")]
    #[param(rename = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
    /// Where a newly created user goes instead of `callbackURL`.
    #[serde(rename = "newUserCallbackURL")]
    #[param(rename = "newUserCallbackURL")]
    pub new_user_callback_url: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ExchangeRequest {
    /// The one-time code from the sign-in redirect (valid 60 s, once).
    #[schema(min_length = 1, max_length = 256)]
    pub code: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinkSocialRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub provider: String,
    /// Where to go after linking (relative, or on a trusted origin).
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UrlResponse {
    /// Send the browser here.
    pub url: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnlinkRequest {
    /// `google`, `github`, ... or `credential` (the password).
    #[schema(max_length = 64)]
    pub provider_id: Option<String>,
    /// The account's `id` from `/auth/accounts`, or the provider's user id.
    /// At least one of the two is required.
    #[schema(max_length = 256)]
    pub account_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    pub id: String,
    pub provider_id: String,
    pub account_id: String,
    pub scopes: Vec<String>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: warden_core::Timestamp,
}

pub(crate) fn scopes_of(scope: Option<&str>) -> Vec<String> {
    scope
        .map(|s| {
            s.split([' ', ','])
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The tutorial API's social routes.
pub(crate) fn routes<R: crate::route_list::RouteSink>(router: R) -> R {
    use crate::route_list::route;
    router
        .add(route!(sign_in))
        .add(route!(callback_handler))
        .add(route!(exchange))
        .add(route!(link_social))
        .add(route!(list_accounts))
        .add(route!(unlink_account))
}

/// Start a social sign-in: redirects to the provider. After the provider,
/// the browser comes back to `callbackURL?code=...`; trade the code for a
/// session with `POST /auth/exchange`.
#[utoipa::path(get, path = "/auth/signin/{provider}", tag = "social", operation_id = "socialSignIn",
    params(("provider" = String, Path, description = "A configured provider: google, github, discord, or a custom OIDC name"), SocialStartQuery),
    responses(
        (status = 302, description = "Redirect to the provider; sets the signed `warden.oauth_state` cookie. If the provider cannot be reached (`discovery_failed`, `provider_request_failed`): to the error callback with `error`"),
        (status = 403, description = "A redirect target is not relative or on a trusted origin", body = ApiError),
        (status = 404, description = "Unknown provider", body = ApiError),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<SocialStartQuery>,
) -> Result<Response, ApiError> {
    // A browser navigation: a provider that cannot be reached now ends at
    // the error callback, as failures after the provider do.
    let error_target = q
        .error_callback_url
        .clone()
        .or(q.callback_url.clone())
        .unwrap_or_else(|| "/".into());
    let started = start(
        &state,
        Start {
            provider: &name,
            callback: q.callback_url,
            error_callback: q.error_callback_url,
            new_user_callback: q.new_user_callback_url,
            flow: Flow::Api,
            link_user: None,
            scopes: vec![],
        },
    )
    .await;
    let (url, cookie) = match started {
        Ok(s) => s,
        Err(super::StartError::Provider(code)) => {
            return Ok(redirect(&crate::routes::password::with_query(
                &error_target,
                "error",
                code,
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let mut r = redirect(&url);
    r.headers_mut().append(SET_COOKIE, cookie);
    Ok(r)
}

/// The provider's redirect back (the default redirect URI). Ends with a
/// redirect to the flow's callback, or its error callback with
/// `?error=<code>` (the list in the README): `access_denied`,
/// `provider_error`, `invalid_state`, `state_mismatch`, `issuer_mismatch`,
/// `invalid_code`, `discovery_failed`, `provider_request_failed`,
/// `token_exchange_failed`, `id_token_missing`, `invalid_id_token`,
/// `id_token_expired`, `id_token_not_yet_valid`, `nonce_mismatch`,
/// `wrong_issuer`, `wrong_audience`, `userinfo_failed`, `email_missing`,
/// `email_not_verified`, `email_does_not_match`, `account_not_linked`,
/// `account_already_linked`, `signup_disabled`, `banned`, `internal_error`.
#[utoipa::path(get, path = "/auth/callback/{provider}", tag = "social", operation_id = "socialCallback",
    params(("provider" = String, Path), CallbackQuery),
    responses(
        (status = 302, description = "To the callback (with a one-time `code`, or the session cookie for flows started on the BetterAuth API), or to the error callback with `error`"),
    ))]
pub async fn callback_handler(
    State(state): State<AppState>,
    Path(name): Path<String>,
    meta: ClientMeta,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    callback(&state, &name, q, &headers, meta).await
}

/// Trade the one-time code from a social sign-in for a session (or a
/// two-factor challenge, for users with two-factor on).
#[utoipa::path(post, path = "/auth/exchange", tag = "social", operation_id = "socialExchange",
    request_body = ExchangeRequest,
    responses(
        (status = 200, body = crate::routes::auth::SignInResponse),
        (status = 400, description = "Unknown, used or expired code", body = ApiError),
    ))]
pub async fn exchange(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(req): ApiJson<ExchangeRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .warden
        .redeem_exchange_code(&req.code, meta)
        .await
        .map_err(|e| match e {
            warden_core::AuthError::InvalidToken => {
                ApiError::invalid("code: invalid, used or expired code")
            }
            e => e.into(),
        })?;
    Ok(match outcome {
        SignInOutcome::SignedIn(s) => with_cookie(&state, s),
        SignInOutcome::TwoFactorRequired(c) => {
            crate::routes::two_factor::challenge_response(&state, c)
        }
    })
}

/// Link a social account to the signed-in user: returns the provider URL
/// to send the browser to.
#[utoipa::path(post, path = "/auth/link-social", tag = "social", operation_id = "socialLink",
    request_body = LinkSocialRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "Send the browser to `url`; the `warden.oauth_state` cookie is set", body = UrlResponse),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Untrusted callbackURL", body = ApiError),
        (status = 404, description = "Unknown provider", body = ApiError),
        (status = 503, description = "The provider cannot be reached right now", body = ApiError),
    ))]
pub async fn link_social(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<LinkSocialRequest>,
) -> Result<Response, ApiError> {
    let (url, cookie) = start(
        &state,
        Start {
            provider: &req.provider,
            callback: req.callback_url,
            error_callback: None,
            new_user_callback: None,
            flow: Flow::Api,
            link_user: Some(auth.user.id.clone()),
            scopes: vec![],
        },
    )
    .await?;
    let mut r = Json(UrlResponse { url }).into_response();
    r.headers_mut().append(SET_COOKIE, cookie);
    Ok(r)
}

/// The signed-in user's ways to sign in.
#[utoipa::path(get, path = "/auth/accounts", tag = "social", operation_id = "listAccounts",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = Vec<AccountInfo>),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn list_accounts(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<Vec<AccountInfo>>, ApiError> {
    let accounts = state.warden.list_accounts(&auth.user.id).await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| AccountInfo {
                scopes: scopes_of(a.scope.as_deref()),
                id: a.id,
                provider_id: a.provider_id,
                account_id: a.account_id,
                created_at: a.created_at,
            })
            .collect(),
    ))
}

/// Unlink one of the user's accounts. The last way to sign in cannot be
/// removed.
#[utoipa::path(post, path = "/auth/unlink-account", tag = "social", operation_id = "unlinkAccount",
    request_body = UnlinkRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "The last way to sign in, or neither providerId nor accountId", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 404, description = "No such account", body = ApiError),
    ))]
pub async fn unlink_account(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<UnlinkRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    state
        .warden
        .unlink_account(
            &auth.user.id,
            req.provider_id.as_deref(),
            req.account_id.as_deref(),
        )
        .await?;
    Ok(Json(SuccessResponse { success: true }))
}
