//! BetterAuth's `magicLink` and `emailOTP` plugin endpoints, for
//! `magicLinkClient()` and `emailOTPClient()`. Each answers 404 while its
//! feature (`[magic_link]`, `[email_otp]`) is off.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_core::{AuthError, OtpPurpose, PasswordlessSignIn, SignInOutcome};

use super::{with_session, BaAuth, BaBody, BaError, BaSession, BaStatus, BaSuccess, BaUser};
use crate::extract::ClientMeta;
use crate::passwordless::{with_params, EmailCodes, Gate, MagicLinks};
use crate::routes::email::redirect;
use crate::routes::password::with_query;
use crate::AppState;

type MagicLinkGate = Gate<MagicLinks, BaError>;
type EmailOtpGate = Gate<EmailCodes, BaError>;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaMagicLinkRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// The name of the account, if the link creates one.
    #[schema(max_length = 256)]
    pub name: Option<String>,
    /// Where the link leads after signing in (default `/`).
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    /// Where it leads a new user (default `callbackURL`).
    #[serde(rename = "newUserCallbackURL")]
    pub new_user_callback_url: Option<String>,
    /// Where it leads on failure, with `?error=` (default `callbackURL`).
    #[serde(rename = "errorCallbackURL")]
    pub error_callback_url: Option<String>,
    /// Accepted for BetterAuth's client; not used.
    #[schema(value_type = Option<Object>)]
    #[allow(dead_code)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BaMagicLinkVerifyQuery {
    #[param(max_length = 256)]
    pub token: Option<String>,
    /// Redirect here once signed in; without it, the answer is JSON.
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

/// `magicLink.verify` without a `callbackURL`: the new session.
#[derive(Serialize, ToSchema)]
pub struct BaMagicLinkSession {
    pub token: String,
    pub user: BaUser,
    pub session: BaSession,
}

#[derive(Deserialize, ToSchema)]
pub struct BaSendVerificationOtpRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// `sign-in`, `email-verification` or `forget-password`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(sign-in|email-verification|forget-password)$")]
    pub kind: String,
}

#[derive(Deserialize, ToSchema)]
pub struct BaCheckOtpRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^(sign-in|email-verification|forget-password)$")]
    pub kind: String,
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
}

#[derive(Deserialize, ToSchema)]
pub struct BaVerifyEmailOtpRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
}

#[derive(Serialize, ToSchema)]
pub struct BaVerifyEmailOtpResponse {
    pub status: bool,
    /// A session token when `email_verification.auto_sign_in` is on.
    pub token: Option<String>,
    pub user: BaUser,
}

#[derive(Deserialize, ToSchema)]
pub struct BaSignInOtpRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
    /// The name of the account, if the code creates one.
    #[schema(max_length = 256)]
    pub name: Option<String>,
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub image: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct BaEmailOnlyRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
}

#[derive(Deserialize, ToSchema)]
pub struct BaResetPasswordOtpRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaRequestEmailChangeOtpRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub new_email: String,
    /// An `email-verification` code of the current address, when
    /// `email_otp.change_email_verify_current` is on.
    #[schema(max_length = 16)]
    pub otp: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaChangeEmailOtpRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub new_email: String,
    /// The code mailed to the new address.
    #[schema(min_length = 1, max_length = 16)]
    pub otp: String,
}

/// A signed-in user's answer (`{token, user}` and the session cookie), or
/// the two-factor challenge (`{twoFactorRedirect, twoFactorMethods}` and
/// its cookie), as `sign-in/email` answers.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
// The document's description of the answer; handlers build the parts.
#[allow(dead_code)]
pub enum BaOtpSignInResponse {
    SignedIn(super::BaTokenResponse),
    TwoFactor(super::two_factor::BaTwoFactorRedirect),
}

fn purpose(kind: &str) -> Result<OtpPurpose, BaError> {
    OtpPurpose::parse(kind).ok_or_else(|| {
        BaError::validation(
            "[body.type] must be one of \"sign-in\", \"email-verification\", \"forget-password\"",
        )
    })
}

/// BetterAuth's `originCheck` on the three redirect targets.
fn check_targets(
    state: &AppState,
    callback: Option<&str>,
    new_user: Option<&str>,
    error: Option<&str>,
) -> Result<(), BaError> {
    let trusted = &state.settings.trusted_origins;
    for (target, code, message) in [
        (callback, "INVALID_CALLBACK_URL", "Invalid callbackURL"),
        (
            new_user,
            "INVALID_NEW_USER_CALLBACK_URL",
            "Invalid newUserCallbackURL",
        ),
        (
            error,
            "INVALID_ERROR_CALLBACK_URL",
            "Invalid errorCallbackURL",
        ),
    ] {
        if let Some(t) = target {
            if !trusted.allows_redirect(t) {
                tracing::info!(code, "untrusted redirect target refused");
                return Err(BaError::forbidden(code, message));
            }
        }
    }
    Ok(())
}

/// Mail a sign-in link (`signIn.magicLink`). The same answer for any
/// address.
#[utoipa::path(post, path = "/sign-in/magic-link", tag = "betterauth", operation_id = "baSignInMagicLink",
    request_body = BaMagicLinkRequest,
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL, INVALID_NEW_USER_CALLBACK_URL, INVALID_ERROR_CALLBACK_URL", body = BaError),
        (status = 404, description = "NOT_FOUND: magic links are off (`magic_link.enabled`)", body = BaError),
    ))]
pub async fn sign_in_magic_link(
    _on: MagicLinkGate,
    State(state): State<AppState>,
    BaBody(req): BaBody<BaMagicLinkRequest>,
) -> Result<Json<BaStatus>, BaError> {
    check_targets(
        &state,
        req.callback_url.as_deref(),
        req.new_user_callback_url.as_deref(),
        req.error_callback_url.as_deref(),
    )?;
    let base = format!(
        "{}{}/magic-link/verify",
        state.settings.public_url.trim_end_matches('/'),
        state
            .settings
            .betterauth
            .as_ref()
            .map(|b| b.base_path.as_str())
            .unwrap_or("")
    );
    let callback = req.callback_url.unwrap_or_else(|| "/".into());
    let new_user = req.new_user_callback_url;
    let error = req.error_callback_url;
    state
        .warden
        .request_magic_link(&req.email, req.name.as_deref(), move |token| {
            with_params(
                &base,
                &[
                    ("token", Some(token)),
                    ("callbackURL", Some(&callback)),
                    ("newUserCallbackURL", new_user.as_deref()),
                    ("errorCallbackURL", error.as_deref()),
                ],
            )
        })?;
    Ok(Json(BaStatus { status: true }))
}

/// The emailed link (`magicLink.verify`): signs in, sets the session
/// cookie and redirects to `callbackURL` (a new user to
/// `newUserCallbackURL`); failures go to `errorCallbackURL` with
/// `?error=INVALID_TOKEN` (or `new_user_signup_disabled`, `BANNED_USER`).
/// A user with two-factor on gets the challenge cookie instead of a
/// session and `twoFactorRedirect=true` in the query. Without
/// `callbackURL`, a success answers JSON (a failure still redirects, to
/// `errorCallbackURL` or `/`, as BetterAuth).
#[utoipa::path(get, path = "/magic-link/verify", tag = "betterauth", operation_id = "baMagicLinkVerify",
    params(BaMagicLinkVerifyQuery),
    responses(
        (status = 200, description = "`{token, user, session}` (no callbackURL); or `{twoFactorRedirect, twoFactorMethods}`", body = BaMagicLinkSession),
        (status = 302, description = "To callbackURL, newUserCallbackURL or errorCallbackURL?error=..."),
        (status = 400, description = "VALIDATION_ERROR (no token)", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL, INVALID_NEW_USER_CALLBACK_URL, INVALID_ERROR_CALLBACK_URL", body = BaError),
        (status = 404, description = "NOT_FOUND: magic links are off", body = BaError),
    ))]
pub async fn magic_link_verify(
    _on: MagicLinkGate,
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Query(q): Query<BaMagicLinkVerifyQuery>,
) -> Result<Response, BaError> {
    check_targets(
        &state,
        q.callback_url.as_deref(),
        q.new_user_callback_url.as_deref(),
        q.error_callback_url.as_deref(),
    )?;
    let Some(token) = q.token.filter(|t| !t.is_empty()) else {
        return Err(BaError::validation("[query.token] is required"));
    };
    let result = state.warden.verify_magic_link(&token, meta).await;
    // Without callbackURL, a success answers JSON; a failure still
    // redirects, to errorCallbackURL or `/` (BetterAuth's defaults).
    let callback = match q.callback_url {
        Some(c) => c,
        None if result.is_err() => "/".to_owned(),
        None => {
            return Ok(match result? {
                PasswordlessSignIn {
                    outcome: SignInOutcome::SignedIn(s),
                    ..
                } => {
                    let body = Json(BaMagicLinkSession {
                        token: s.token.expose().to_owned(),
                        user: s.user.clone().into(),
                        session: BaSession::new(s.session.clone(), s.token.expose().to_owned()),
                    });
                    with_session(&state, body.into_response(), &s)
                }
                PasswordlessSignIn {
                    outcome: SignInOutcome::TwoFactorRequired(c),
                    ..
                } => super::two_factor::challenge_response(&state, c),
            })
        }
    };
    let error_target = q.error_callback_url.unwrap_or_else(|| callback.clone());
    let code = match result {
        Ok(PasswordlessSignIn {
            outcome: SignInOutcome::SignedIn(s),
            new_user,
        }) => {
            let target = match (new_user, q.new_user_callback_url) {
                (true, Some(n)) => n,
                _ => callback,
            };
            return Ok(with_session(&state, redirect(&target), &s));
        }
        Ok(PasswordlessSignIn {
            outcome: SignInOutcome::TwoFactorRequired(c),
            ..
        }) => {
            let mut r = redirect(&with_query(&callback, "twoFactorRedirect", "true"));
            let cookie = state
                .settings
                .cookies
                .set_two_factor(c.token.expose(), c.expires_in.as_secs());
            r.headers_mut()
                .append(axum::http::header::SET_COOKIE, cookie);
            return Ok(r);
        }
        Err(AuthError::InvalidToken) => "INVALID_TOKEN",
        Err(AuthError::SignUpDisabled) => "new_user_signup_disabled",
        Err(AuthError::Banned { .. }) => "BANNED_USER",
        Err(e) => return Err(e.into()),
    };
    Ok(redirect(&with_query(&error_target, "error", code)))
}

/// Mail a code (`emailOtp.sendVerificationOtp`): `sign-in` (to any address
/// unless sign-up is disabled), `email-verification` or `forget-password`
/// (to registered addresses). The same answer in every case.
#[utoipa::path(post, path = "/email-otp/send-verification-otp", tag = "betterauth", operation_id = "baEmailOtpSendVerificationOtp",
    request_body = BaSendVerificationOtpRequest,
    responses(
        (status = 200, body = BaSuccess),
        (status = 400, description = "INVALID_EMAIL, VALIDATION_ERROR (type)", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off (`email_otp.enabled`)", body = BaError),
    ))]
pub async fn send_verification_otp(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    BaBody(req): BaBody<BaSendVerificationOtpRequest>,
) -> Result<Json<BaSuccess>, BaError> {
    let purpose = purpose(&req.kind)?;
    state.warden.send_email_otp(&req.email, purpose)?;
    Ok(Json(BaSuccess { success: true }))
}

/// Is this code right, without using it (`emailOtp.checkVerificationOtp`)?
/// A wrong guess counts.
#[utoipa::path(post, path = "/email-otp/check-verification-otp", tag = "betterauth", operation_id = "baEmailOtpCheckVerificationOtp",
    request_body = BaCheckOtpRequest,
    responses(
        (status = 200, body = BaSuccess),
        (status = 400, description = "INVALID_OTP, OTP_EXPIRED, USER_NOT_FOUND, INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 403, description = "TOO_MANY_ATTEMPTS: the code is dead", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off", body = BaError),
    ))]
pub async fn check_verification_otp(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    BaBody(req): BaBody<BaCheckOtpRequest>,
) -> Result<Json<BaSuccess>, BaError> {
    let purpose = purpose(&req.kind)?;
    state
        .warden
        .check_email_otp(&req.email, purpose, &req.otp)
        .await
        .map_err(user_not_found)?;
    Ok(Json(BaSuccess { success: true }))
}

/// BetterAuth's `USER_NOT_FOUND` after a right code (safe to tell: the
/// caller read the mailbox).
fn user_not_found(e: AuthError) -> BaError {
    match e {
        AuthError::UserNotFound => BaError::bad_request("USER_NOT_FOUND", "User not found"),
        e => e.into(),
    }
}

/// Verify the email with an `email-verification` code
/// (`emailOtp.verifyEmail`).
#[utoipa::path(post, path = "/email-otp/verify-email", tag = "betterauth", operation_id = "baEmailOtpVerifyEmail",
    request_body = BaVerifyEmailOtpRequest,
    responses(
        (status = 200, description = "`{status, token, user}`; with `email_verification.auto_sign_in`, also the session cookie", body = BaVerifyEmailOtpResponse),
        (status = 400, description = "INVALID_OTP, OTP_EXPIRED, USER_NOT_FOUND, INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 403, description = "TOO_MANY_ATTEMPTS", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off", body = BaError),
    ))]
pub async fn verify_email_otp(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<BaVerifyEmailOtpRequest>,
) -> Result<Response, BaError> {
    let v = state
        .warden
        .verify_email_otp(&req.email, &req.otp, meta)
        .await
        .map_err(user_not_found)?;
    let body = Json(BaVerifyEmailOtpResponse {
        status: true,
        token: v.signed_in.as_ref().map(|s| s.token.expose().to_owned()),
        user: v.user.clone().into(),
    })
    .into_response();
    Ok(match &v.signed_in {
        Some(s) => with_session(&state, body, s),
        None => body,
    })
}

/// Sign in with a `sign-in` code (`signIn.emailOtp`); an unknown email
/// gets a new account unless sign-up is disabled. The unverified owner of
/// an address loses what was attached to the account before the proof.
#[utoipa::path(post, path = "/sign-in/email-otp", tag = "betterauth", operation_id = "baSignInEmailOtp",
    request_body = BaSignInOtpRequest,
    responses(
        (status = 200, description = "`{token, user}` and the session cookie; for a user with two-factor on, `{twoFactorRedirect: true, twoFactorMethods}` and the challenge cookie (unless `two_factor.passwordless_challenge` is off)", body = BaOtpSignInResponse),
        (status = 400, description = "INVALID_OTP, OTP_EXPIRED, INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 403, description = "TOO_MANY_ATTEMPTS, BANNED_USER", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off", body = BaError),
    ))]
pub async fn sign_in_email_otp(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<BaSignInOtpRequest>,
) -> Result<Response, BaError> {
    let signed = state
        .warden
        .sign_in_email_otp(
            &req.email,
            &req.otp,
            req.name.as_deref(),
            req.image.as_deref(),
            meta,
        )
        .await?;
    Ok(match signed.outcome {
        SignInOutcome::SignedIn(s) => {
            let body = Json(super::BaTokenResponse {
                token: Some(s.token.expose().to_owned()),
                user: s.user.clone().into(),
            });
            with_session(&state, body.into_response(), &s)
        }
        SignInOutcome::TwoFactorRequired(c) => super::two_factor::challenge_response(&state, c),
    })
}

/// Mail a `forget-password` code (`emailOtp.requestPasswordReset`). The
/// same answer for any address.
#[utoipa::path(post, path = "/email-otp/request-password-reset", tag = "betterauth", operation_id = "baEmailOtpRequestPasswordReset",
    request_body = BaEmailOnlyRequest,
    responses(
        (status = 200, body = BaSuccess),
        (status = 400, description = "INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off", body = BaError),
    ))]
pub async fn request_password_reset_otp(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    BaBody(req): BaBody<BaEmailOnlyRequest>,
) -> Result<Json<BaSuccess>, BaError> {
    state
        .warden
        .send_email_otp(&req.email, OtpPurpose::ForgetPassword)?;
    Ok(Json(BaSuccess { success: true }))
}

/// The deprecated name of `/email-otp/request-password-reset`
/// (`forgetPassword.emailOtp`).
#[utoipa::path(post, path = "/forget-password/email-otp", tag = "betterauth", operation_id = "baForgetPasswordEmailOtp",
    request_body = BaEmailOnlyRequest,
    responses(
        (status = 200, body = BaSuccess),
        (status = 400, description = "INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off", body = BaError),
    ))]
pub async fn forget_password_otp(
    on: EmailOtpGate,
    state: State<AppState>,
    body: BaBody<BaEmailOnlyRequest>,
) -> Result<Json<BaSuccess>, BaError> {
    request_password_reset_otp(on, state, body).await
}

/// Set a new password with a `forget-password` code
/// (`emailOtp.resetPassword`). Every session of the user ends.
#[utoipa::path(post, path = "/email-otp/reset-password", tag = "betterauth", operation_id = "baEmailOtpResetPassword",
    request_body = BaResetPasswordOtpRequest,
    responses(
        (status = 200, body = BaSuccess),
        (status = 400, description = "INVALID_OTP, OTP_EXPIRED, USER_NOT_FOUND, PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_COMPROMISED, INVALID_EMAIL", body = BaError),
        (status = 403, description = "TOO_MANY_ATTEMPTS", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off", body = BaError),
    ))]
pub async fn reset_password_otp(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    BaBody(req): BaBody<BaResetPasswordOtpRequest>,
) -> Result<Json<BaSuccess>, BaError> {
    state
        .warden
        .reset_password_email_otp(&req.email, &req.otp, &req.password)
        .await
        .map_err(user_not_found)?;
    Ok(Json(BaSuccess { success: true }))
}

/// Ask to change the email by code (`emailOtp.requestEmailChange`): a code
/// goes to the new address; a taken one gets nothing (the same answer).
/// Needs `email_otp.change_email` and a fresh session.
#[utoipa::path(post, path = "/email-otp/request-email-change", tag = "betterauth", operation_id = "baEmailOtpRequestEmailChange",
    request_body = BaRequestEmailChangeOtpRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaSuccess),
        (status = 400, description = "CHANGE_EMAIL_DISABLED, INVALID_EMAIL, VALIDATION_ERROR (the current email; otp required), INVALID_OTP", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "SESSION_NOT_FRESH", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off", body = BaError),
    ))]
pub async fn request_email_change_otp(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<BaRequestEmailChangeOtpRequest>,
) -> Result<Json<BaSuccess>, BaError> {
    state
        .warden
        .request_email_change_otp(&auth.authenticated(), &req.new_email, req.otp.as_deref())
        .await
        .map_err(new_email_error)?;
    Ok(Json(BaSuccess { success: true }))
}

/// Change the email with the code mailed to the new address
/// (`emailOtp.changeEmail`); the new address is verified.
#[utoipa::path(post, path = "/email-otp/change-email", tag = "betterauth", operation_id = "baEmailOtpChangeEmail",
    request_body = BaChangeEmailOtpRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaSuccess),
        (status = 400, description = "CHANGE_EMAIL_DISABLED, INVALID_OTP, OTP_EXPIRED, EMAIL_ALREADY_IN_USE, INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "TOO_MANY_ATTEMPTS, SESSION_NOT_FRESH", body = BaError),
        (status = 404, description = "NOT_FOUND: email codes are off", body = BaError),
    ))]
pub async fn change_email_otp(
    _on: EmailOtpGate,
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<BaChangeEmailOtpRequest>,
) -> Result<Json<BaSuccess>, BaError> {
    state
        .warden
        .change_email_otp(&auth.authenticated(), &req.new_email, &req.otp)
        .await
        .map_err(new_email_error)?;
    Ok(Json(BaSuccess { success: true }))
}

fn new_email_error(e: AuthError) -> BaError {
    match e {
        AuthError::Invalid {
            field: "newEmail",
            ref message,
        } if message != "is the current email" => {
            BaError::bad_request("INVALID_EMAIL", "Invalid email")
        }
        AuthError::EmailTaken => {
            BaError::bad_request("EMAIL_ALREADY_IN_USE", "Email already in use")
        }
        e => e.into(),
    }
}
