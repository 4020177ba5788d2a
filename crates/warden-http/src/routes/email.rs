//! Email verification and email change, in the tutorial API's style.

use axum::extract::{Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_core::AuthError;

use super::auth::{verify_link, SuccessResponse};
use super::password::with_query;
use crate::error::{ApiError, ErrCode};
use crate::extract::{session_cookie, ApiJson, AuthUser, ClientMeta};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SendVerificationRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// Where the link leads after verifying (relative, or a trusted origin).
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyQuery {
    /// The token from the emailed link.
    pub token: Option<String>,
    /// Redirect here (with `?error=INVALID_TOKEN` on failure) instead of
    /// answering JSON.
    #[serde(rename = "callbackURL")]
    #[param(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyResponse {
    pub success: bool,
    /// The (new) verified address.
    pub email: String,
    /// The link confirmed an email change.
    pub email_changed: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEmailRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub new_email: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

/// Refuses a redirect target (`field`) that is not relative or on a
/// trusted origin.
pub(crate) fn check_redirect_target(
    state: &AppState,
    field: &str,
    target: Option<&str>,
) -> Result<(), ApiError> {
    match target {
        Some(t) if !state.settings.trusted_origins.allows_redirect(t) => Err(ApiError::new(
            ErrCode::PermissionDenied,
            format!("{field}: must be a relative path or a URL on a trusted origin"),
        )),
        _ => Ok(()),
    }
}

fn check_callback(state: &AppState, c: Option<&str>) -> Result<(), ApiError> {
    check_redirect_target(state, "callbackURL", c)
}

pub(crate) fn redirect(target: &str) -> Response {
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::try_from(target) {
        r.headers_mut().insert(LOCATION, v);
    }
    r
}

/// Send a new verification link (if the address belongs to an unverified
/// user; the answer is the same otherwise).
#[utoipa::path(post, path = "/auth/send-verification-email", tag = "auth", operation_id = "sendVerificationEmail",
    request_body = SendVerificationRequest,
    responses(
        (status = 200, description = "Always the same answer", body = SuccessResponse),
        (status = 400, description = "Invalid input", body = ApiError),
    ))]
pub async fn send_verification_email(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SendVerificationRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    check_callback(&state, req.callback_url.as_deref())?;
    let link = verify_link(&state, req.callback_url);
    state.warden.resend_verification(&req.email, link)?;
    Ok(Json(SuccessResponse { success: true }))
}

/// The emailed verification (or email-change) link.
#[utoipa::path(get, path = "/auth/verify-email", tag = "auth", operation_id = "verifyEmail",
    params(VerifyQuery),
    responses(
        (status = 200, body = VerifyResponse),
        (status = 302, description = "To callbackURL (with ?error=... on failure)"),
        (status = 400, description = "Invalid, used or expired token", body = ApiError),
        (status = 403, description = "Untrusted callbackURL", body = ApiError),
        (status = 409, description = "The new address was taken meanwhile", body = ApiError),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Query(q): Query<VerifyQuery>,
) -> Result<Response, ApiError> {
    check_callback(&state, q.callback_url.as_deref())?;
    let token = q
        .token
        .ok_or_else(|| ApiError::invalid("token: the query parameter is required"))?;
    let (mut response, v) = match (
        state.warden.verify_email(&token, meta).await,
        q.callback_url,
    ) {
        (Ok(v), Some(c)) => (redirect(&c), v),
        (Ok(v), None) => {
            let body = Json(VerifyResponse {
                success: true,
                email: v.user.email.clone(),
                email_changed: v.email_changed,
            });
            (body.into_response(), v)
        }
        (
            Err(e @ (AuthError::InvalidToken | AuthError::EmailTaken | AuthError::Banned { .. })),
            Some(c),
        ) => {
            // Banned: the email is verified, but no session is started.
            let code = match e {
                AuthError::EmailTaken => "EMAIL_TAKEN",
                AuthError::Banned { .. } => "BANNED_USER",
                _ => "INVALID_TOKEN",
            };
            return Ok(redirect(&with_query(&c, "error", code)));
        }
        (Err(e), _) => return Err(e.into()),
    };
    if let Some(s) = &v.signed_in {
        response
            .headers_mut()
            .append(SET_COOKIE, session_cookie(&state, &s.token, &s.session));
    }
    Ok(response)
}

/// Ask to change the signed-in user's email: a confirmation link goes to
/// the new address, a notice to the current one. Nothing changes until the
/// link is followed.
#[utoipa::path(post, path = "/auth/change-email", tag = "auth", operation_id = "changeEmail",
    request_body = ChangeEmailRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "Invalid input, or the current email", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn change_email(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<ChangeEmailRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    check_callback(&state, req.callback_url.as_deref())?;
    let link = verify_link(&state, req.callback_url);
    state
        .warden
        .change_email(&auth.authenticated(), &req.new_email, link)
        .await?;
    Ok(Json(SuccessResponse { success: true }))
}
