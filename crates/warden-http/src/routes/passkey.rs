//! The tutorial API's passkey endpoints, `/auth/passkey/*` and
//! `/auth/passkeys`: the same ceremonies as BetterAuth's plugin, in
//! Encore's format. A ceremony's challenge handle comes back in the body
//! (`challenge`, for bearer clients) and in the signed
//! `<prefix>.better-auth-passkey` cookie (for browsers).

use axum::extract::{Path, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_core::{Attachment, PasskeyCeremony, PasskeyRecord};

use super::auth::{with_cookie, SuccessResponse};
use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser, ClientMeta};
use crate::route_list::{route, RouteSink};
use crate::AppState;

pub(crate) fn routes<R: RouteSink>(router: R) -> R {
    router
        .add(route!(register_options))
        .add(route!(register_verify))
        .add(route!(signin_options))
        .add(route!(signin_verify))
        .add(route!(list_passkeys))
        .add(route!(rename_passkey, delete_passkey))
}

/// A registered passkey.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyInfo {
    pub id: String,
    pub name: Option<String>,
    /// The credential id (base64url).
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    /// `singleDevice` or `multiDevice` (synced, e.g. by a password manager).
    pub device_type: String,
    pub backed_up: bool,
    /// How the browser can reach it (`internal`, `hybrid`, `usb`, ...).
    pub transports: Vec<String>,
    /// The authenticator model's AAGUID.
    pub aaguid: Option<String>,
    /// RFC 3339.
    pub created_at: Option<String>,
}

impl From<PasskeyRecord> for PasskeyInfo {
    fn from(p: PasskeyRecord) -> Self {
        PasskeyInfo {
            id: p.id,
            name: p.name,
            credential_id: p.credential_id,
            device_type: p.device_type,
            backed_up: p.backed_up,
            transports: p
                .transports
                .unwrap_or_default()
                .split(',')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            aaguid: p.aaguid,
            created_at: p.created_at.map(crate::time::rfc3339),
        }
    }
}

/// A ceremony's options and its challenge handle.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyOptionsResponse {
    /// For `navigator.credentials.create()`/`.get()`, in the JSON form
    /// `@simplewebauthn/browser` (`startRegistration`/`startAuthentication`)
    /// and `PublicKeyCredential.parseCreationOptionsFromJSON` take.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
    /// Opaque; send it back with the response. Browsers get it as a cookie too.
    pub challenge: String,
    /// Seconds the challenge stays valid.
    pub expires_in: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterOptionsRequest {
    /// A name for the passkey (default: none; the account's email is what
    /// the authenticator shows). No control characters.
    #[schema(max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub name: Option<String>,
    /// `platform` or `cross-platform`.
    #[schema(value_type = Option<PasskeyAttachment>)]
    pub authenticator_attachment: Option<String>,
}

/// Which authenticators may answer (WebAuthn's `authenticatorAttachment`).
// Only the schema of `RegisterOptionsRequest::authenticator_attachment`,
// which is parsed by hand so that a wrong value is named in the error.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum PasskeyAttachment {
    Platform,
    CrossPlatform,
}

#[derive(Deserialize, ToSchema)]
pub struct RegisterVerifyRequest {
    /// `navigator.credentials.create()`'s credential, as JSON.
    #[schema(value_type = Object)]
    pub response: serde_json::Value,
    /// No control characters.
    #[schema(max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub name: Option<String>,
    /// From the options' answer (browsers may rely on the cookie).
    #[schema(max_length = 256)]
    pub challenge: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct SigninVerifyRequest {
    /// `navigator.credentials.get()`'s credential, as JSON.
    #[schema(value_type = Object)]
    pub response: serde_json::Value,
    /// From the options' answer (browsers may rely on the cookie).
    #[schema(max_length = 256)]
    pub challenge: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PasskeyListResponse {
    pub passkeys: Vec<PasskeyInfo>,
}

#[derive(Deserialize, ToSchema)]
pub struct RenamePasskeyRequest {
    /// 1 to 256 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
}

fn options_response(state: &AppState, c: PasskeyCeremony) -> Response {
    let ttl = c.expires_in.as_secs();
    let cookie = state.settings.cookies.set_passkey(c.token.expose(), ttl);
    let mut r = Json(PasskeyOptionsResponse {
        options: c.options,
        challenge: c.token.expose().to_owned(),
        expires_in: ttl,
    })
    .into_response();
    r.headers_mut().append(SET_COOKIE, cookie);
    r
}

/// The challenge from the body, else from the cookie.
fn challenge(state: &AppState, headers: &HeaderMap, body: Option<String>) -> Option<String> {
    body.filter(|c| !c.is_empty())
        .or_else(|| state.settings.cookies.read_passkey(headers))
}

fn clear_cookie(state: &AppState, mut r: Response) -> Response {
    r.headers_mut()
        .append(SET_COOKIE, state.settings.cookies.clear_passkey());
    r
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.chars().count() > 128 {
        return Err(ApiError::invalid("id: must be 1 to 128 characters"));
    }
    Ok(())
}

/// Start registering a passkey for the signed-in user (a recent sign-in
/// is needed). The options go to `navigator.credentials.create()`.
#[utoipa::path(post, path = "/auth/passkey/register/options", tag = "passkey", operation_id = "passkeyRegisterOptions",
    request_body = RegisterOptionsRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = PasskeyOptionsResponse),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "The session is not recent enough: sign in again", body = ApiError),
    ))]
pub async fn register_options(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<RegisterOptionsRequest>,
) -> Result<Response, ApiError> {
    let attachment = req
        .authenticator_attachment
        .as_deref()
        .map(str::parse::<Attachment>)
        .transpose()
        .map_err(|e| ApiError::invalid(format!("authenticatorAttachment: {e}")))?;
    let c = state
        .warden
        .passkey_registration_options(&auth.authenticated(), req.name.as_deref(), attachment)
        .await?;
    Ok(options_response(&state, c))
}

/// Finish registering: verifies the authenticator's response and stores
/// the passkey.
#[utoipa::path(post, path = "/auth/passkey/register/verify", tag = "passkey", operation_id = "passkeyRegisterVerify",
    request_body = RegisterVerifyRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = PasskeyInfo),
        (status = 400, description = "Missing, used or expired challenge; a response that does not verify (the message says why); invalid input", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "The challenge is another user's, or the session is not recent enough", body = ApiError),
    ))]
pub async fn register_verify(
    State(state): State<AppState>,
    auth: AuthUser,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RegisterVerifyRequest>,
) -> Response {
    let token = challenge(&state, &headers, req.challenge);
    let r = match state
        .warden
        .passkey_verify_registration(
            &auth.authenticated(),
            token.as_deref(),
            &req.response,
            req.name.as_deref(),
            false,
            meta,
        )
        .await
    {
        Ok((p, _)) => Json(PasskeyInfo::from(p)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    };
    clear_cookie(&state, r)
}

/// Start a passkey sign-in. The options name no credential: the
/// authenticator offers the passkeys it holds for this site (no email
/// needed), and the same options serve autofill (conditional UI).
#[utoipa::path(post, path = "/auth/passkey/signin/options", tag = "passkey", operation_id = "passkeySigninOptions",
    responses(
        (status = 200, body = PasskeyOptionsResponse),
    ))]
pub async fn signin_options(State(state): State<AppState>) -> Result<Response, ApiError> {
    let c = state.warden.passkey_authentication_options(None).await?;
    Ok(options_response(&state, c))
}

/// Finish a passkey sign-in: a session, as `/auth/signin` gives (no
/// two-factor step follows a passkey).
#[utoipa::path(post, path = "/auth/passkey/signin/verify", tag = "passkey", operation_id = "passkeySigninVerify",
    request_body = SigninVerifyRequest,
    responses(
        (status = 200, description = "Signed in", body = super::auth::AuthResponse),
        (status = 400, description = "Missing, used or expired challenge; invalid input", body = ApiError),
        (status = 401, description = "Unknown passkey, or a response that does not verify (the message says why)", body = ApiError),
        (status = 403, description = "The user is banned", body = ApiError),
    ))]
pub async fn signin_verify(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SigninVerifyRequest>,
) -> Response {
    let token = challenge(&state, &headers, req.challenge);
    let r = match state
        .warden
        .passkey_sign_in(token.as_deref(), &req.response, meta)
        .await
    {
        Ok(s) => with_cookie(&state, s),
        Err(e) => ApiError::from(e).into_response(),
    };
    clear_cookie(&state, r)
}

/// The signed-in user's passkeys, oldest first.
#[utoipa::path(get, path = "/auth/passkeys", tag = "passkey", operation_id = "passkeyList",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = PasskeyListResponse),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn list_passkeys(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<PasskeyListResponse>, ApiError> {
    let list = state.warden.list_passkeys(&auth.authenticated()).await?;
    Ok(Json(PasskeyListResponse {
        passkeys: list.into_iter().map(Into::into).collect(),
    }))
}

/// Rename one of the signed-in user's passkeys.
#[utoipa::path(patch, path = "/auth/passkeys/{id}", tag = "passkey", operation_id = "passkeyRename",
    request_body = RenamePasskeyRequest,
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, max_length = 128, description = "Passkey id, as listed by GET /auth/passkeys")),
    responses(
        (status = 200, body = PasskeyInfo),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Another user's passkey", body = ApiError),
        (status = 404, description = "No such passkey", body = ApiError),
    ))]
pub async fn rename_passkey(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RenamePasskeyRequest>,
) -> Result<Json<PasskeyInfo>, ApiError> {
    check_id(&id)?;
    let p = state
        .warden
        .rename_passkey(&auth.authenticated(), &id, &req.name)
        .await?;
    Ok(Json(p.into()))
}

/// Delete one of the signed-in user's passkeys.
#[utoipa::path(delete, path = "/auth/passkeys/{id}", tag = "passkey", operation_id = "passkeyRemove",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, max_length = 128, description = "Passkey id, as listed by GET /auth/passkeys")),
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "Malformed id", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Another user's passkey", body = ApiError),
        (status = 404, description = "No such passkey", body = ApiError),
    ))]
pub async fn delete_passkey(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<SuccessResponse>, ApiError> {
    check_id(&id)?;
    state
        .warden
        .delete_passkey(&auth.authenticated(), &id)
        .await?;
    Ok(Json(SuccessResponse { success: true }))
}
