//! The tutorial API's passwordless endpoints: magic links
//! (`/auth/magic-link*`) and one-time codes by email (`/auth/email-otp/*`).
//! Each answers 404 while its feature is off.

use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use warden_core::{AuthError, OtpPurpose, SignInOutcome};

use super::auth::{with_cookie, SignInResponse, SuccessResponse};
use super::email::{check_redirect_target, redirect, VerifyResponse};
use super::password::with_query;
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser, ClientMeta};
use crate::passwordless::{with_params, EmailCodes, Gate, MagicLinks};
use crate::AppState;

type MagicLinkGate = Gate<MagicLinks, ApiError>;
type EmailOtpGate = Gate<EmailCodes, ApiError>;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MagicLinkRequest {
    #[schema(example = "john@example.com", min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// The name of the account, if the link creates one.
    #[schema(max_length = 256)]
    pub name: Option<String>,
    /// Where the link leads once signed in (relative, or on a trusted
    /// origin). Without it the link answers JSON.
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    /// Where it leads a new user (default `callbackURL`).
    #[serde(rename = "newUserCallbackURL")]
    pub new_user_callback_url: Option<String>,
    /// Where it leads on failure, with `?error=` (default `callbackURL`).
    #[serde(rename = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MagicLinkVerifyQuery {
    /// The token from the emailed link.
    #[param(max_length = 256)]
    pub token: Option<String>,
    #[serde(rename = "callbackURL")]
    #[param(rename = "callbackURL")]
    pub callback_url: Option<String>,
    #[serde(rename = "newUserCallbackURL")]
    #[param(rename = "newUserCallbackURL")]
    pub new_user_callback_url: Option<String>,
    #[serde(rename = "errorCallbackURL")]
    #[param(rename = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SendCodeRequest {
    #[schema(example = "john@example.com", min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// `sign-in`, `email-verification` or `forget-password`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(sign-in|email-verification|forget-password)$")]
    pub kind: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CheckCodeRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^(sign-in|email-verification|forget-password)$")]
    pub kind: String,
    /// The code from the email.
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CodeRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
}

#[derive(Deserialize, ToSchema)]
pub struct CodeSignInRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
    /// The name of the account, if the code creates one.
    #[schema(max_length = 256)]
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodeResetPasswordRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
    #[schema(example = "EvenBetterPass456!", min_length = 8, max_length = 128)]
    pub new_password: String,
}

fn purpose(kind: &str) -> Result<OtpPurpose, ApiError> {
    OtpPurpose::parse(kind).ok_or_else(|| {
        ApiError::invalid("type: must be one of sign-in, email-verification, forget-password")
    })
}

fn sign_in_answer(state: &AppState, outcome: SignInOutcome) -> Response {
    match outcome {
        SignInOutcome::SignedIn(s) => with_cookie(state, s),
        SignInOutcome::TwoFactorRequired(c) => super::two_factor::challenge_response(state, c),
    }
}

/// Email a sign-in link. The same answer for any address; an unknown one
/// gets an account when the link is followed (unless sign-up is disabled).
#[utoipa::path(post, path = "/auth/magic-link", tag = "auth", operation_id = "magicLink",
    request_body = MagicLinkRequest,
    responses(
        (status = 200, description = "Always the same answer", body = SuccessResponse),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 403, description = "An untrusted callbackURL, newUserCallbackURL or errorCallbackURL", body = ApiError),
        (status = 404, description = "Magic links are off (`magic_link.enabled`)", body = ApiError),
    ))]
pub async fn magic_link(
    _on: MagicLinkGate,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<MagicLinkRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    check_redirect_target(&state, "callbackURL", req.callback_url.as_deref())?;
    check_redirect_target(
        &state,
        "newUserCallbackURL",
        req.new_user_callback_url.as_deref(),
    )?;
    check_redirect_target(
        &state,
        "errorCallbackURL",
        req.error_callback_url.as_deref(),
    )?;
    let base = format!(
        "{}/auth/magic-link/verify",
        state.settings.public_url.trim_end_matches('/')
    );
    let (c, n, e) = (
        req.callback_url,
        req.new_user_callback_url,
        req.error_callback_url,
    );
    state
        .warden
        .request_magic_link(&req.email, req.name.as_deref(), move |token| {
            with_params(
                &base,
                &[
                    ("token", Some(token)),
                    ("callbackURL", c.as_deref()),
                    ("newUserCallbackURL", n.as_deref()),
                    ("errorCallbackURL", e.as_deref()),
                ],
            )
        })?;
    Ok(Json(SuccessResponse { success: true }))
}

/// The emailed link: signs in. With `callbackURL`, a redirect there (a new
/// user to `newUserCallbackURL`; failures to `errorCallbackURL` with
/// `?error=INVALID_TOKEN`, `SIGN_UP_DISABLED` or `BANNED_USER`; a user with
/// two-factor on gets the challenge cookie and `twoFactorRedirect=true`).
/// Without, the answer of `/auth/signin`.
#[utoipa::path(get, path = "/auth/magic-link/verify", tag = "auth", operation_id = "magicLinkVerify",
    params(MagicLinkVerifyQuery),
    responses(
        (status = 200, description = "Signed in, or a two-factor challenge (as `/auth/signin`)", body = SignInResponse),
        (status = 302, description = "To callbackURL, newUserCallbackURL or errorCallbackURL?error=..."),
        (status = 400, description = "No token, or an invalid, used or expired one", body = ApiError),
        (status = 403, description = "An untrusted redirect target", body = ApiError),
        (status = 404, description = "Magic links are off", body = ApiError),
    ))]
pub async fn magic_link_verify(
    _on: MagicLinkGate,
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Query(q): Query<MagicLinkVerifyQuery>,
) -> Result<Response, ApiError> {
    check_redirect_target(&state, "callbackURL", q.callback_url.as_deref())?;
    check_redirect_target(
        &state,
        "newUserCallbackURL",
        q.new_user_callback_url.as_deref(),
    )?;
    check_redirect_target(&state, "errorCallbackURL", q.error_callback_url.as_deref())?;
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::invalid("token: missing"));
    };
    let result = state.warden.verify_magic_link(&token, meta).await;
    let Some(callback) = q.callback_url else {
        return Ok(sign_in_answer(&state, result?.outcome));
    };
    let code = match result {
        Ok(signed) => {
            return Ok(match signed.outcome {
                SignInOutcome::SignedIn(s) => {
                    let target = match (signed.new_user, q.new_user_callback_url) {
                        (true, Some(n)) => n,
                        _ => callback,
                    };
                    let mut r = redirect(&target);
                    let answer = with_cookie(&state, s);
                    for c in answer.headers().get_all(SET_COOKIE) {
                        r.headers_mut().append(SET_COOKIE, c.clone());
                    }
                    r
                }
                SignInOutcome::TwoFactorRequired(c) => {
                    let mut r = redirect(&with_query(&callback, "twoFactorRedirect", "true"));
                    r.headers_mut().append(
                        SET_COOKIE,
                        state
                            .settings
                            .cookies
                            .set_two_factor(c.token.expose(), c.expires_in.as_secs()),
                    );
                    r
                }
            })
        }
        Err(AuthError::InvalidToken) => "INVALID_TOKEN",
        Err(AuthError::SignUpDisabled) => "SIGN_UP_DISABLED",
        Err(AuthError::Banned { .. }) => "BANNED_USER",
        Err(e) => return Err(e.into()),
    };
    let target = q.error_callback_url.unwrap_or(callback);
    Ok(redirect(&with_query(&target, "error", code)))
}

/// Email a one-time code: `sign-in` (to any address, unless sign-up is
/// disabled), `email-verification` or `forget-password` (to registered
/// addresses). The same answer in every case.
#[utoipa::path(post, path = "/auth/email-otp/send", tag = "auth", operation_id = "emailOtpSend",
    request_body = SendCodeRequest,
    responses(
        (status = 200, description = "Always the same answer", body = SuccessResponse),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 404, description = "Email codes are off (`email_otp.enabled`)", body = ApiError),
    ))]
pub async fn email_otp_send(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SendCodeRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    let purpose = purpose(&req.kind)?;
    state.warden.send_email_otp(&req.email, purpose)?;
    Ok(Json(SuccessResponse { success: true }))
}

/// Sign in with a `sign-in` code; an unknown email gets a new account
/// (unless sign-up is disabled).
#[utoipa::path(post, path = "/auth/email-otp/signin", tag = "auth", operation_id = "emailOtpSignIn",
    request_body = CodeSignInRequest,
    responses(
        (status = 200, description = "Signed in, or a two-factor challenge (as `/auth/signin`)", body = SignInResponse),
        (status = 400, description = "Invalid input, or an expired code", body = ApiError),
        (status = 401, description = "Wrong or used code", body = ApiError),
        (status = 404, description = "Email codes are off", body = ApiError),
        (status = 429, description = "Too many wrong guesses: the code is dead", body = ApiError),
    ))]
pub async fn email_otp_sign_in(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(req): ApiJson<CodeSignInRequest>,
) -> Result<Response, ApiError> {
    let signed = state
        .warden
        .sign_in_email_otp(&req.email, &req.otp, req.name.as_deref(), None, meta)
        .await?;
    Ok(sign_in_answer(&state, signed.outcome))
}

/// Verify the email with an `email-verification` code.
#[utoipa::path(post, path = "/auth/email-otp/verify-email", tag = "auth", operation_id = "emailOtpVerifyEmail",
    request_body = CodeRequest,
    responses(
        (status = 200, body = VerifyResponse),
        (status = 400, description = "Invalid input, or an expired code", body = ApiError),
        (status = 401, description = "Wrong or used code", body = ApiError),
        (status = 404, description = "Email codes are off, or no such user", body = ApiError),
        (status = 429, description = "Too many wrong guesses", body = ApiError),
    ))]
pub async fn email_otp_verify_email(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(req): ApiJson<CodeRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let v = state
        .warden
        .verify_email_otp(&req.email, &req.otp, meta)
        .await
        .map_err(no_user)?;
    Ok(Json(VerifyResponse {
        success: true,
        email: v.user.email,
        email_changed: false,
    }))
}

/// Is this code right (without using it)? A wrong guess counts.
#[utoipa::path(post, path = "/auth/email-otp/check", tag = "auth", operation_id = "emailOtpCheck",
    request_body = CheckCodeRequest,
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "Invalid input, or an expired code", body = ApiError),
        (status = 401, description = "Wrong or used code", body = ApiError),
        (status = 404, description = "Email codes are off, or no such user", body = ApiError),
        (status = 429, description = "Too many wrong guesses", body = ApiError),
    ))]
pub async fn email_otp_check(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CheckCodeRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    let purpose = purpose(&req.kind)?;
    state
        .warden
        .check_email_otp(&req.email, purpose, &req.otp)
        .await
        .map_err(no_user)?;
    Ok(Json(SuccessResponse { success: true }))
}

/// Set a new password with a `forget-password` code. Every session of the
/// user ends.
#[utoipa::path(post, path = "/auth/email-otp/reset-password", tag = "auth", operation_id = "emailOtpResetPassword",
    request_body = CodeResetPasswordRequest,
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "Invalid input, an expired code, or the password refused", body = ApiError),
        (status = 401, description = "Wrong or used code", body = ApiError),
        (status = 404, description = "Email codes are off, or no such user", body = ApiError),
        (status = 429, description = "Too many wrong guesses", body = ApiError),
    ))]
pub async fn email_otp_reset_password(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CodeResetPasswordRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    state
        .warden
        .reset_password_email_otp(&req.email, &req.otp, &req.new_password)
        .await
        .map_err(no_user)?;
    Ok(Json(SuccessResponse { success: true }))
}

/// After a right code, a missing user is 404 (safe to tell: the caller
/// read the mailbox).
fn no_user(e: AuthError) -> ApiError {
    match e {
        AuthError::UserNotFound => ApiError::new(
            crate::error::ErrCode::NotFound,
            "email: no user has this email",
        ),
        e => e.into(),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestEmailChangeCodeRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub new_email: String,
    /// An `email-verification` code of the current address, when
    /// `email_otp.change_email_verify_current` is on.
    #[schema(max_length = 16)]
    pub otp: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEmailCodeRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub new_email: String,
    /// The code mailed to the new address.
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
}

/// Ask to change the email by code: a code goes to the new address (a
/// taken one gets nothing, and the same answer). Needs
/// `email_otp.change_email` and a recent sign-in.
#[utoipa::path(post, path = "/auth/email-otp/request-email-change", tag = "auth", operation_id = "emailOtpRequestEmailChange",
    request_body = RequestEmailChangeCodeRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "Invalid input (the current email; a required code missing)", body = ApiError),
        (status = 401, description = "Not signed in, or a wrong code of the current address", body = ApiError),
        (status = 403, description = "The session is not recent", body = ApiError),
        (status = 404, description = "Email codes, or email change by code, are off", body = ApiError),
    ))]
pub async fn email_otp_request_email_change(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<RequestEmailChangeCodeRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    state
        .warden
        .request_email_change_otp(&auth.authenticated(), &req.new_email, req.otp.as_deref())
        .await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// Change the email with the code mailed to the new address; the new
/// address is verified.
#[utoipa::path(post, path = "/auth/email-otp/change-email", tag = "auth", operation_id = "emailOtpChangeEmail",
    request_body = ChangeEmailCodeRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = VerifyResponse),
        (status = 400, description = "Invalid input, or an expired code", body = ApiError),
        (status = 401, description = "Not signed in, or a wrong or used code", body = ApiError),
        (status = 403, description = "The session is not recent", body = ApiError),
        (status = 404, description = "Email codes, or email change by code, are off", body = ApiError),
        (status = 409, description = "The new address was taken meanwhile", body = ApiError),
        (status = 429, description = "Too many wrong guesses", body = ApiError),
    ))]
pub async fn email_otp_change_email(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<ChangeEmailCodeRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    let user = state
        .warden
        .change_email_otp(&auth.authenticated(), &req.new_email, &req.otp)
        .await?;
    Ok(Json(VerifyResponse {
        success: true,
        email: user.email,
        email_changed: true,
    }))
}
