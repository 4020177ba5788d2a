//! The tutorial API's two-factor endpoints, `/auth/two-factor/*`.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_core::{AuthError, SecondFactor, SessionToken, TwoFactorChallenge};

use super::auth::{with_cookie, SuccessResponse};
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser, ClientMeta};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub struct PasswordRequest {
    /// The account's password, to confirm the operation.
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnableResponse {
    /// `otpauth://totp/...`: show it as a QR code for an authenticator app.
    #[serde(rename = "totpURI")]
    pub totp_uri: String,
    /// Ten single-use codes (`XXXXX-XXXXX`) for when the app is lost. Shown
    /// once; only their hashes are kept.
    pub backup_codes: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TotpUriResponse {
    #[serde(rename = "totpURI")]
    pub totp_uri: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupCodesResponse {
    pub backup_codes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ConfirmRequest {
    /// A current 6-digit code from the authenticator app.
    #[schema(min_length = 6, max_length = 6, pattern = "^[0-9]{6}$")]
    pub code: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmResponse {
    pub two_factor_enabled: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest {
    /// The 6-digit TOTP code, or (for `verify-backup-code`) a backup code.
    #[schema(min_length = 1, max_length = 16)]
    pub code: String,
    /// The challenge from `/auth/signin`. Browsers may send the
    /// `warden.two_factor` cookie instead.
    #[schema(max_length = 256)]
    pub challenge: Option<String>,
    /// Skip the second step on this browser for 30 days (a signed
    /// `warden.trust_device` cookie).
    #[serde(default)]
    pub trust_device: bool,
}

/// What `/auth/signin` answers for a user with two-factor on: no session
/// yet, a challenge to complete with `/auth/two-factor/verify-totp` or
/// `/auth/two-factor/verify-backup-code`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TwoFactorRequiredResponse {
    /// Always true.
    pub two_factor_required: bool,
    /// Opaque; send it back with the code. It is not a session token.
    pub challenge: String,
    /// `["totp"]`; backup codes always work too.
    pub methods: Vec<String>,
    /// Seconds the challenge stays valid.
    pub expires_in: u64,
}

/// The challenge response: the body for bearer clients, and the signed
/// challenge cookie for browsers.
pub(crate) fn challenge_response(state: &AppState, c: TwoFactorChallenge) -> Response {
    let ttl = c.expires_in.as_secs();
    let cookie = state.settings.cookies.set_two_factor(c.token.expose(), ttl);
    let mut r = Json(TwoFactorRequiredResponse {
        two_factor_required: true,
        challenge: c.token.expose().to_owned(),
        methods: c.methods.iter().map(|m| m.to_string()).collect(),
        expires_in: ttl,
    })
    .into_response();
    r.headers_mut().append(SET_COOKIE, cookie);
    r
}

/// The error response of a failed second step, in the API's format `E`. A
/// challenge that is gone (ended after too many wrong codes, or unknown)
/// also loses its cookie.
pub(crate) fn challenge_failure<E: From<AuthError> + IntoResponse>(
    state: &AppState,
    e: AuthError,
) -> Response {
    let gone = matches!(
        e,
        AuthError::TwoFactorTooManyAttempts | AuthError::InvalidTwoFactorChallenge
    );
    let mut r = E::from(e).into_response();
    if gone {
        r.headers_mut()
            .append(SET_COOKIE, state.settings.cookies.clear_two_factor());
    }
    r
}

/// `Set-Cookie` for a trusted-device token.
pub(crate) fn trust_cookie(state: &AppState, token: &SessionToken) -> HeaderValue {
    let ttl = state
        .warden
        .settings()
        .two_factor
        .trust_device_ttl
        .as_secs();
    state.settings.cookies.set_trust_device(token.expose(), ttl)
}

/// Set up TOTP: returns the `otpauth://` URI and backup codes. Two-factor
/// turns on when a first code is confirmed with `/auth/two-factor/confirm`.
#[utoipa::path(post, path = "/auth/two-factor/enable", tag = "two-factor", operation_id = "twoFactorEnable",
    request_body = PasswordRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = EnableResponse),
        (status = 400, description = "Wrong password, or the account has none", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 409, description = "Two-factor is already on: disable it first", body = ApiError),
    ))]
pub async fn enable(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<Json<EnableResponse>, ApiError> {
    let setup = state
        .warden
        .enable_two_factor(&auth.authenticated(), &req.password)
        .await?;
    Ok(Json(EnableResponse {
        totp_uri: setup.totp_uri,
        backup_codes: setup.backup_codes,
    }))
}

/// Confirm TOTP with a first code: turns two-factor on.
#[utoipa::path(post, path = "/auth/two-factor/confirm", tag = "two-factor", operation_id = "twoFactorConfirm",
    request_body = ConfirmRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = ConfirmResponse),
        (status = 400, description = "Not 6 digits, or two-factor was not set up", body = ApiError),
        (status = 401, description = "Not signed in, or wrong or used code", body = ApiError),
        (status = 429, description = "Locked after too many wrong codes", body = ApiError),
    ))]
pub async fn confirm(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<ConfirmRequest>,
) -> Result<Json<ConfirmResponse>, ApiError> {
    let user = state
        .warden
        .confirm_totp(&auth.authenticated(), &req.code)
        .await?;
    Ok(Json(ConfirmResponse {
        two_factor_enabled: user.two_factor_enabled,
    }))
}

/// The `otpauth://` URI again.
#[utoipa::path(post, path = "/auth/two-factor/get-totp-uri", tag = "two-factor", operation_id = "twoFactorGetTotpUri",
    request_body = PasswordRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = TotpUriResponse),
        (status = 400, description = "Wrong password, or two-factor not set up", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn get_totp_uri(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<Json<TotpUriResponse>, ApiError> {
    let totp_uri = state
        .warden
        .totp_uri(&auth.authenticated(), &req.password)
        .await?;
    Ok(Json(TotpUriResponse { totp_uri }))
}

/// Turn two-factor off; every trusted device is forgotten.
#[utoipa::path(post, path = "/auth/two-factor/disable", tag = "two-factor", operation_id = "twoFactorDisable",
    request_body = PasswordRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "Wrong password", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn disable(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<Response, ApiError> {
    state
        .warden
        .disable_two_factor(&auth.authenticated(), &req.password)
        .await?;
    let mut r = Json(SuccessResponse { success: true }).into_response();
    r.headers_mut()
        .append(SET_COOKIE, state.settings.cookies.clear_trust_device());
    Ok(r)
}

/// A new set of backup codes; the old set stops working.
#[utoipa::path(post, path = "/auth/two-factor/generate-backup-codes", tag = "two-factor", operation_id = "twoFactorGenerateBackupCodes",
    request_body = PasswordRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = BackupCodesResponse),
        (status = 400, description = "Wrong password, or two-factor not set up", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn generate_backup_codes(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<Json<BackupCodesResponse>, ApiError> {
    let backup_codes = state
        .warden
        .regenerate_backup_codes(&auth.authenticated(), &req.password)
        .await?;
    Ok(Json(BackupCodesResponse { backup_codes }))
}

#[derive(Deserialize, ToSchema, Default)]
pub struct SendOtpRequest {
    /// The challenge from `/auth/signin`. Browsers may send the
    /// `warden.two_factor` cookie instead.
    #[schema(max_length = 256)]
    pub challenge: Option<String>,
}

/// Turn two-factor on with codes by email (`two_factor.email_otp`): each
/// sign-in then waits for a code from `/auth/two-factor/send-otp`.
#[utoipa::path(post, path = "/auth/two-factor/enable-otp", tag = "two-factor", operation_id = "twoFactorEnableOtp",
    request_body = PasswordRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = ConfirmResponse),
        (status = 400, description = "Wrong password, or the account has none", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 404, description = "Two-factor codes by email are off", body = ApiError),
    ))]
pub async fn enable_otp(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<Json<ConfirmResponse>, ApiError> {
    let user = state
        .warden
        .enable_two_factor_otp(&auth.authenticated(), &req.password)
        .await?;
    Ok(Json(ConfirmResponse {
        two_factor_enabled: user.two_factor_enabled,
    }))
}

/// Email a code for a two-factor sign-in challenge (method `otp`).
#[utoipa::path(post, path = "/auth/two-factor/send-otp", tag = "two-factor", operation_id = "twoFactorSendOtp",
    request_body = SendOtpRequest,
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "No challenge given", body = ApiError),
        (status = 401, description = "Invalid or expired challenge", body = ApiError),
        (status = 404, description = "Two-factor codes by email are off", body = ApiError),
        (status = 429, description = "Too many codes to the address recently (`email_otp.per_email_max`)", body = ApiError),
    ))]
pub async fn send_otp(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SendOtpRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    let challenge = req
        .challenge
        .filter(|c| !c.is_empty())
        .or_else(|| state.settings.cookies.read_two_factor(&headers))
        .ok_or_else(|| {
            ApiError::invalid("challenge: missing; send the challenge from /auth/signin")
        })?;
    state.warden.send_two_factor_otp(&challenge).await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// Complete a two-factor sign-in with the emailed code.
#[utoipa::path(post, path = "/auth/two-factor/verify-otp", tag = "two-factor", operation_id = "twoFactorVerifyOtp",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in", body = super::auth::AuthResponse),
        (status = 400, description = "Invalid input, or no live code (send one first)", body = ApiError),
        (status = 401, description = "Wrong code, or invalid or expired challenge", body = ApiError),
        (status = 404, description = "Two-factor codes by email are off", body = ApiError),
        (status = 429, description = "Too many wrong codes, or two-factor locked for the account", body = ApiError),
    ))]
pub async fn verify_otp(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    if !state.warden.settings().two_factor.email_otp {
        return Err(AuthError::TwoFactorOtpNotConfigured.into());
    }
    verify(state, meta, headers, req, Kind::EmailOtp).await
}

/// Complete a two-factor sign-in with a TOTP code.
#[utoipa::path(post, path = "/auth/two-factor/verify-totp", tag = "two-factor", operation_id = "twoFactorVerifyTotp",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in", body = super::auth::AuthResponse),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 401, description = "Wrong or used code, or invalid or expired challenge", body = ApiError),
        (status = 429, description = "Too many wrong codes (the challenge ends after 5), or two-factor locked for the account", body = ApiError),
    ))]
pub async fn verify_totp(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    verify(state, meta, headers, req, Kind::Totp).await
}

/// Complete a two-factor sign-in with a backup code (each works once).
#[utoipa::path(post, path = "/auth/two-factor/verify-backup-code", tag = "two-factor", operation_id = "twoFactorVerifyBackupCode",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "Signed in", body = super::auth::AuthResponse),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 401, description = "Wrong or used code, or invalid or expired challenge", body = ApiError),
        (status = 429, description = "Too many wrong codes, or two-factor locked for the account", body = ApiError),
    ))]
pub async fn verify_backup_code(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> Result<Response, ApiError> {
    verify(state, meta, headers, req, Kind::BackupCode).await
}

enum Kind {
    Totp,
    BackupCode,
    EmailOtp,
}

async fn verify(
    state: AppState,
    meta: warden_core::RequestMeta,
    headers: HeaderMap,
    req: VerifyRequest,
    kind: Kind,
) -> Result<Response, ApiError> {
    let from_cookie = state.settings.cookies.read_two_factor(&headers);
    let challenge = req
        .challenge
        .filter(|c| !c.is_empty())
        .or(from_cookie.clone())
        .ok_or_else(|| {
            ApiError::invalid("challenge: missing; send the challenge from /auth/signin")
        })?;
    let factor = match kind {
        Kind::Totp => SecondFactor::Totp(&req.code),
        Kind::BackupCode => SecondFactor::BackupCode(&req.code),
        Kind::EmailOtp => SecondFactor::EmailOtp(&req.code),
    };
    let signed_in = match state
        .warden
        .verify_two_factor(&challenge, factor, req.trust_device, meta)
        .await
    {
        Ok(s) => s,
        Err(e) => return Ok(challenge_failure::<ApiError>(&state, e)),
    };
    let mut r = with_cookie(&state, signed_in);
    if from_cookie.is_some() {
        r.headers_mut()
            .append(SET_COOKIE, state.settings.cookies.clear_two_factor());
    }
    Ok(r)
}
