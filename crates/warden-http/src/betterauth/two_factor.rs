//! BetterAuth's `twoFactor` plugin endpoints (`/two-factor/*`), for
//! `twoFactorClient()`.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_core::{AuthError, SecondFactor, TwoFactorChallenge};

use super::{with_session, BaAuth, BaBody, BaError, BaStatus, BaTokenResponse, BaUser};
use crate::extract::{AuthUser, ClientMeta};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub struct TwoFactorPasswordRequest {
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
    /// `totp` (default): set up an authenticator app; `otp`: codes by
    /// email, on at once (needs `two_factor.email_otp`).
    #[schema(pattern = "^(totp|otp)$")]
    pub method: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaEnableResponse {
    /// `totp` or `otp`.
    pub method: &'static str,
    /// Only for `totp`.
    #[serde(rename = "totpURI", skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub totp_uri: Option<String>,
    /// Only for `totp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub backup_codes: Option<Vec<String>>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BaSendOtpRequest {
    /// Accepted for BetterAuth's client; "trust this device" is chosen
    /// with `verify-otp`.
    #[serde(default)]
    #[allow(dead_code)]
    pub trust_device: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BaTotpUriResponse {
    #[serde(rename = "totpURI")]
    pub totp_uri: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaBackupCodesResponse {
    pub status: bool,
    pub backup_codes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaVerifyRequest {
    #[schema(min_length = 1, max_length = 16)]
    pub code: String,
    /// Skip the second step on this browser for 30 days.
    #[serde(default)]
    pub trust_device: bool,
}

/// BetterAuth's sign-in answer for a user with two-factor on.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaTwoFactorRedirect {
    pub two_factor_redirect: bool,
    pub two_factor_methods: Vec<String>,
}

/// `{twoFactorRedirect: true, twoFactorMethods}` and the signed challenge
/// cookie; no session.
pub(super) fn challenge_response(state: &AppState, c: TwoFactorChallenge) -> Response {
    let cookie = state
        .settings
        .cookies
        .set_two_factor(c.token.expose(), c.expires_in.as_secs());
    let mut r = Json(BaTwoFactorRedirect {
        two_factor_redirect: true,
        two_factor_methods: c.methods.iter().map(|m| m.to_string()).collect(),
    })
    .into_response();
    r.headers_mut().append(SET_COOKIE, cookie);
    r
}

/// Set up TOTP (`twoFactor.enable`); two-factor turns on after the first
/// `verify-totp` with a session. With `method: "otp"`, two-factor turns on
/// at once with codes by email.
#[utoipa::path(post, path = "/two-factor/enable", tag = "betterauth", operation_id = "baTwoFactorEnable",
    request_body = TwoFactorPasswordRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaEnableResponse),
        (status = 400, description = "INVALID_PASSWORD, CREDENTIAL_ACCOUNT_NOT_FOUND, TOTP_ALREADY_ENABLED, OTP_NOT_CONFIGURED, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn enable(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<TwoFactorPasswordRequest>,
) -> Result<Json<BaEnableResponse>, BaError> {
    match req.method.as_deref() {
        None | Some("totp") => {}
        Some("otp") => {
            state
                .warden
                .enable_two_factor_otp(&auth.authenticated(), &req.password)
                .await?;
            return Ok(Json(BaEnableResponse {
                method: "otp",
                totp_uri: None,
                backup_codes: None,
            }));
        }
        Some(_) => {
            return Err(BaError::validation(
                "[body.method] must be \"totp\" or \"otp\"",
            ))
        }
    }
    let setup = state
        .warden
        .enable_two_factor(&auth.authenticated(), &req.password)
        .await?;
    Ok(Json(BaEnableResponse {
        method: "totp",
        totp_uri: Some(setup.totp_uri),
        backup_codes: Some(setup.backup_codes),
    }))
}

/// Turn two-factor off (`twoFactor.disable`); trusted devices are forgotten.
#[utoipa::path(post, path = "/two-factor/disable", tag = "betterauth", operation_id = "baTwoFactorDisable",
    request_body = TwoFactorPasswordRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "INVALID_PASSWORD", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn disable(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<TwoFactorPasswordRequest>,
) -> Result<Response, BaError> {
    state
        .warden
        .disable_two_factor(&auth.authenticated(), &req.password)
        .await?;
    let mut r = Json(BaStatus { status: true }).into_response();
    r.headers_mut()
        .append(SET_COOKIE, state.settings.cookies.clear_trust_device());
    Ok(r)
}

/// The `otpauth://` URI again (`twoFactor.getTotpUri`).
#[utoipa::path(post, path = "/two-factor/get-totp-uri", tag = "betterauth", operation_id = "baTwoFactorGetTotpUri",
    request_body = TwoFactorPasswordRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaTotpUriResponse),
        (status = 400, description = "INVALID_PASSWORD, TOTP_NOT_ENABLED", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn get_totp_uri(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<TwoFactorPasswordRequest>,
) -> Result<Json<BaTotpUriResponse>, BaError> {
    let totp_uri = state
        .warden
        .totp_uri(&auth.authenticated(), &req.password)
        .await?;
    Ok(Json(BaTotpUriResponse { totp_uri }))
}

/// A new set of backup codes (`twoFactor.generateBackupCodes`).
#[utoipa::path(post, path = "/two-factor/generate-backup-codes", tag = "betterauth", operation_id = "baTwoFactorGenerateBackupCodes",
    request_body = TwoFactorPasswordRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaBackupCodesResponse),
        (status = 400, description = "INVALID_PASSWORD, TWO_FACTOR_NOT_ENABLED", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn generate_backup_codes(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<TwoFactorPasswordRequest>,
) -> Result<Json<BaBackupCodesResponse>, BaError> {
    let backup_codes = state
        .warden
        .regenerate_backup_codes(&auth.authenticated(), &req.password)
        .await
        .map_err(|e| match e {
            AuthError::TwoFactorNotEnabled => {
                BaError::bad_request("TWO_FACTOR_NOT_ENABLED", "Two factor isn't enabled")
            }
            e => e.into(),
        })?;
    Ok(Json(BaBackupCodesResponse {
        status: true,
        backup_codes,
    }))
}

/// `twoFactor.verifyTotp`: with the challenge cookie, completes a sign-in;
/// with a session instead, confirms the setup (turns two-factor on).
#[utoipa::path(post, path = "/two-factor/verify-totp", tag = "betterauth", operation_id = "baTwoFactorVerifyTotp",
    request_body = BaVerifyRequest,
    security((), ("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "`{token, user}`; a sign-in also sets the session cookie and `set-auth-token`", body = BaTokenResponse),
        (status = 400, description = "TOTP_NOT_ENABLED, TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE (the 5th wrong code ends the challenge), VALIDATION_ERROR (not 6 digits)", body = BaError),
        (status = 401, description = "INVALID_CODE, INVALID_TWO_FACTOR_COOKIE", body = BaError),
        (status = 429, description = "ACCOUNT_TEMPORARILY_LOCKED", body = BaError),
    ))]
pub async fn verify_totp(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    auth: Option<AuthUser>,
    BaBody(req): BaBody<BaVerifyRequest>,
) -> Result<Response, BaError> {
    if let Some(challenge) = state.settings.cookies.read_two_factor(&headers) {
        return complete(
            &state,
            &challenge,
            SecondFactor::Totp(&req.code),
            req.trust_device,
            meta,
        )
        .await;
    }
    let Some(auth) = auth else {
        return Err(warden_core::AuthError::InvalidTwoFactorChallenge.into());
    };
    let user = state
        .warden
        .confirm_totp(&auth.authenticated(), &req.code)
        .await?;
    Ok(Json(BaTokenResponse {
        token: Some(auth.token.expose().to_owned()),
        user: BaUser::from(user),
    })
    .into_response())
}

/// `twoFactor.sendOtp`: mails a code, for the sign-in challenge (its
/// cookie) or, with a session instead, to turn the `otp` method on.
#[utoipa::path(post, path = "/two-factor/send-otp", tag = "betterauth", operation_id = "baTwoFactorSendOtp",
    request_body = BaSendOtpRequest,
    security((), ("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "OTP_NOT_CONFIGURED (`two_factor.email_otp` is off)", body = BaError),
        (status = 401, description = "INVALID_TWO_FACTOR_COOKIE: no challenge and no session", body = BaError),
        (status = 429, description = "TOO_MANY_REQUESTS: more than `email_otp.per_email_max` codes to the address within `per_email_window`", body = BaError),
    ))]
pub async fn send_otp(
    State(state): State<AppState>,
    headers: HeaderMap,
    auth: Option<AuthUser>,
) -> Result<Json<BaStatus>, BaError> {
    // The body (`{trustDevice?}`, optional) changes nothing here.
    if let Some(challenge) = state.settings.cookies.read_two_factor(&headers) {
        state.warden.send_two_factor_otp(&challenge).await?;
    } else if let Some(auth) = auth {
        state
            .warden
            .send_two_factor_otp_signed_in(&auth.authenticated())
            .await?;
    } else {
        return Err(AuthError::InvalidTwoFactorChallenge.into());
    }
    Ok(Json(BaStatus { status: true }))
}

/// `twoFactor.verifyOtp`: with the challenge cookie, completes a sign-in
/// with the mailed code; with a session instead, turns the `otp` method on.
#[utoipa::path(post, path = "/two-factor/verify-otp", tag = "betterauth", operation_id = "baTwoFactorVerifyOtp",
    request_body = BaVerifyRequest,
    security((), ("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "`{token, user}`; a sign-in also sets the session cookie and `set-auth-token`", body = BaTokenResponse),
        (status = 400, description = "OTP_HAS_EXPIRED (none sent, or too old), TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE, OTP_NOT_CONFIGURED, VALIDATION_ERROR (not 6 digits)", body = BaError),
        (status = 401, description = "INVALID_CODE, INVALID_TWO_FACTOR_COOKIE", body = BaError),
        (status = 429, description = "ACCOUNT_TEMPORARILY_LOCKED", body = BaError),
    ))]
pub async fn verify_otp(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    auth: Option<AuthUser>,
    BaBody(req): BaBody<BaVerifyRequest>,
) -> Result<Response, BaError> {
    if let Some(challenge) = state.settings.cookies.read_two_factor(&headers) {
        if !state.warden.settings().two_factor.email_otp {
            return Err(AuthError::TwoFactorOtpNotConfigured.into());
        }
        return complete(
            &state,
            &challenge,
            SecondFactor::EmailOtp(&req.code),
            req.trust_device,
            meta,
        )
        .await;
    }
    let Some(auth) = auth else {
        return Err(AuthError::InvalidTwoFactorChallenge.into());
    };
    let user = state
        .warden
        .confirm_two_factor_otp(&auth.authenticated(), &req.code)
        .await?;
    Ok(Json(BaTokenResponse {
        token: Some(auth.token.expose().to_owned()),
        user: BaUser::from(user),
    })
    .into_response())
}

/// `twoFactor.verifyBackupCode`: completes a sign-in with a backup code
/// (each works once).
#[utoipa::path(post, path = "/two-factor/verify-backup-code", tag = "betterauth", operation_id = "baTwoFactorVerifyBackupCode",
    request_body = BaVerifyRequest,
    responses(
        (status = 200, description = "`{token, user}`; sets the session cookie and `set-auth-token`", body = BaTokenResponse),
        (status = 400, description = "TOTP_NOT_ENABLED, TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE, VALIDATION_ERROR (not XXXXX-XXXXX)", body = BaError),
        (status = 401, description = "INVALID_BACKUP_CODE, INVALID_TWO_FACTOR_COOKIE", body = BaError),
        (status = 429, description = "ACCOUNT_TEMPORARILY_LOCKED", body = BaError),
    ))]
pub async fn verify_backup_code(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    BaBody(req): BaBody<BaVerifyRequest>,
) -> Result<Response, BaError> {
    let Some(challenge) = state.settings.cookies.read_two_factor(&headers) else {
        return Err(warden_core::AuthError::InvalidTwoFactorChallenge.into());
    };
    complete(
        &state,
        &challenge,
        SecondFactor::BackupCode(&req.code),
        req.trust_device,
        meta,
    )
    .await
}

async fn complete(
    state: &AppState,
    challenge: &str,
    factor: SecondFactor<'_>,
    trust_device: bool,
    meta: warden_core::RequestMeta,
) -> Result<Response, BaError> {
    let s = match state
        .warden
        .verify_two_factor(challenge, factor, trust_device, meta)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            return Ok(crate::routes::two_factor::challenge_failure::<BaError>(
                state, e,
            ))
        }
    };
    let body = Json(BaTokenResponse {
        token: Some(s.token.expose().to_owned()),
        user: s.user.clone().into(),
    });
    let mut r = with_session(state, body.into_response(), &s);
    r.headers_mut()
        .append(SET_COOKIE, state.settings.cookies.clear_two_factor());
    Ok(r)
}
