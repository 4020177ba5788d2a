//! BetterAuth's social endpoints: `signIn.social`, `linkSocial`,
//! `listAccounts`, `unlinkAccount` and the callback.

use axum::extract::{Path, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::scopes_of;
use super::{callback, start, CallbackQuery, Flow, Start};
use crate::betterauth::{BaAuth, BaBody, BaError, BaStatus};
use crate::extract::ClientMeta;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SocialSignInRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub provider: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    #[serde(rename = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
    #[serde(rename = "newUserCallbackURL")]
    pub new_user_callback_url: Option<String>,
    /// Answer `redirect: false` (the client then does not navigate).
    #[serde(default)]
    pub disable_redirect: bool,
    /// Extra scopes to ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Sign-in with a provider ID token (no redirect): not supported.
    #[schema(value_type = Option<Object>)]
    pub id_token: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaLinkSocialRequest {
    #[schema(min_length = 1, max_length = 64)]
    pub provider: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    #[serde(rename = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BaUrlResponse {
    pub url: String,
    pub redirect: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnlinkAccountRequest {
    /// The provider (`google`, `credential`, ...).
    #[schema(max_length = 64)]
    pub provider_id: Option<String>,
    /// The account: its `id` from `list-accounts` (BetterAuth 1.7's form)
    /// or the provider's user id. At least one of the two is required.
    #[schema(max_length = 256)]
    pub account_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaAccount {
    pub id: String,
    pub provider_id: String,
    pub account_id: String,
    pub user_id: String,
    pub scopes: Vec<String>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: warden_core::Timestamp,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: warden_core::Timestamp,
}

/// BetterAuth's social routes, relative to its base path.
pub(crate) fn routes<R: crate::route_list::RouteSink>(router: R) -> R {
    use crate::route_list::route;
    router
        .add(route!(sign_in_social))
        .add(route!(callback_handler))
        .add(route!(link_social))
        .add(route!(list_accounts))
        .add(route!(unlink_account))
}

/// Start a social sign-in (`signIn.social`): `{url, redirect}`; the client
/// navigates to `url`. After the provider, the browser lands on
/// `callbackURL` signed in (session cookie), or on `errorCallbackURL` with
/// `?error=<code>`.
#[utoipa::path(post, path = "/sign-in/social", tag = "betterauth", operation_id = "baSignInSocial",
    request_body = SocialSignInRequest,
    responses(
        (status = 200, description = "`{url, redirect}`; sets the signed `oauth_state` cookie", body = BaUrlResponse),
        (status = 400, description = "VALIDATION_ERROR (idToken sign-in is not supported)", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL", body = BaError),
        (status = 404, description = "PROVIDER_NOT_FOUND", body = BaError),
        (status = 503, description = "PROVIDER_UNAVAILABLE: its discovery document cannot be fetched", body = BaError),
    ))]
pub async fn sign_in_social(
    State(state): State<AppState>,
    BaBody(req): BaBody<SocialSignInRequest>,
) -> Result<Response, BaError> {
    if req.id_token.is_some() {
        return Err(BaError::validation(
            "[body.idToken] sign-in with a provider ID token is not supported; use the redirect flow",
        ));
    }
    let (url, cookie) = start(
        &state,
        Start {
            provider: &req.provider,
            callback: req.callback_url,
            error_callback: req.error_callback_url,
            new_user_callback: req.new_user_callback_url,
            flow: Flow::Ba,
            link_user: None,
            scopes: req.scopes,
        },
    )
    .await?;
    let mut r = Json(BaUrlResponse {
        url,
        redirect: !req.disable_redirect,
    })
    .into_response();
    r.headers_mut().append(SET_COOKIE, cookie);
    Ok(r)
}

/// The provider's redirect back, at BetterAuth's path. Same as
/// `/auth/callback/{provider}`.
#[utoipa::path(get, path = "/callback/{provider}", tag = "betterauth", operation_id = "baSocialCallback",
    params(("provider" = String, Path), CallbackQuery),
    responses(
        (status = 302, description = "To `callbackURL` signed in, or to the error callback with `error`"),
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

/// Link a provider to the signed-in user (`linkSocial`).
#[utoipa::path(post, path = "/link-social", tag = "betterauth", operation_id = "baLinkSocial",
    request_body = BaLinkSocialRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUrlResponse),
        (status = 400, description = "VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL", body = BaError),
        (status = 404, description = "PROVIDER_NOT_FOUND", body = BaError),
        (status = 503, description = "PROVIDER_UNAVAILABLE", body = BaError),
    ))]
pub async fn link_social(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<BaLinkSocialRequest>,
) -> Result<Response, BaError> {
    let (url, cookie) = start(
        &state,
        Start {
            provider: &req.provider,
            callback: req.callback_url,
            error_callback: req.error_callback_url,
            new_user_callback: None,
            flow: Flow::Ba,
            link_user: Some(auth.user.id.clone()),
            scopes: req.scopes,
        },
    )
    .await?;
    let mut r = Json(BaUrlResponse {
        url,
        redirect: true,
    })
    .into_response();
    r.headers_mut().append(SET_COOKIE, cookie);
    Ok(r)
}

/// The signed-in user's accounts (`listAccounts`).
#[utoipa::path(get, path = "/list-accounts", tag = "betterauth", operation_id = "baListAccounts",
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = Vec<BaAccount>),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn list_accounts(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
) -> Result<Json<Vec<BaAccount>>, BaError> {
    let accounts = state.warden.list_accounts(&auth.user.id).await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|a| BaAccount {
                scopes: scopes_of(a.scope.as_deref()),
                id: a.id,
                provider_id: a.provider_id,
                account_id: a.account_id,
                user_id: a.user_id,
                created_at: a.created_at,
                updated_at: a.updated_at,
            })
            .collect(),
    ))
}

/// Unlink an account (`unlinkAccount`); the last one stays.
#[utoipa::path(post, path = "/unlink-account", tag = "betterauth", operation_id = "baUnlinkAccount",
    request_body = UnlinkAccountRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "FAILED_TO_UNLINK_LAST_ACCOUNT, ACCOUNT_NOT_FOUND, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn unlink_account(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<UnlinkAccountRequest>,
) -> Result<Json<BaStatus>, BaError> {
    state
        .warden
        .unlink_account(
            &auth.user.id,
            req.provider_id.as_deref(),
            req.account_id.as_deref(),
        )
        .await?;
    Ok(Json(BaStatus { status: true }))
}
