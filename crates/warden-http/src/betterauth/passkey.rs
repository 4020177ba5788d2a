//! BetterAuth's passkey plugin (`@better-auth/passkey`) endpoints,
//! `/passkey/*`, for `passkeyClient()`: the same paths, bodies, answers,
//! error codes and challenge cookie (`<prefix>.better-auth-passkey`).

use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_core::{Attachment, PasskeyCeremony, PasskeyRecord, Timestamp};

use super::{with_session, BaAuth, BaBody, BaError, BaSession, BaStatus, BaUser};
use crate::extract::{AuthUser, ClientMeta};
use crate::route_list::{route, RouteSink};
use crate::AppState;

pub(crate) fn routes<R: RouteSink>(router: R) -> R {
    router
        .add(route!(generate_register_options))
        .add(route!(verify_registration))
        .add(route!(generate_authenticate_options))
        .add(route!(verify_authentication))
        .add(route!(list_user_passkeys))
        .add(route!(update_passkey))
        .add(route!(delete_passkey))
}

/// A `passkey` row as BetterAuth returns it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaPasskey {
    pub id: String,
    pub name: Option<String>,
    /// The COSE public key, base64.
    pub public_key: String,
    pub user_id: String,
    /// The credential id, base64url.
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    pub counter: i64,
    /// `singleDevice` or `multiDevice`.
    pub device_type: String,
    pub backed_up: bool,
    /// Comma-separated (`internal,hybrid`).
    pub transports: Option<String>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
    pub aaguid: Option<String>,
}

impl From<PasskeyRecord> for BaPasskey {
    fn from(p: PasskeyRecord) -> Self {
        BaPasskey {
            id: p.id,
            name: p.name,
            public_key: p.public_key,
            user_id: p.user_id,
            credential_id: p.credential_id,
            counter: p.counter,
            device_type: p.device_type,
            backed_up: p.backed_up,
            transports: p.transports,
            created_at: p.created_at,
            aaguid: p.aaguid,
        }
    }
}

/// `verify-registration`'s answer with `createSession`: the passkey's
/// fields, and the new session and user.
#[derive(Serialize, ToSchema)]
pub struct BaPasskeyWithSession {
    #[serde(flatten)]
    pub passkey: BaPasskey,
    pub session: BaSession,
    pub user: BaUser,
}

#[derive(Serialize, ToSchema)]
pub struct BaUpdatePasskeyResponse {
    pub passkey: BaPasskey,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct RegisterOptionsQuery {
    /// `platform` (this device) or `cross-platform` (a security key, a phone).
    pub authenticator_attachment: Option<String>,
    /// The passkey's name, shown by the authenticator as the account name.
    pub name: Option<String>,
    /// BetterAuth's passkey-first registration context (not supported: a
    /// session is required). Accepted, and ignored.
    #[allow(dead_code)]
    pub context: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRegistrationRequest {
    /// What `navigator.credentials.create()` gave
    /// (`@simplewebauthn/browser`'s `startRegistration`), as JSON.
    #[schema(value_type = Object)]
    pub response: serde_json::Value,
    #[schema(max_length = 256)]
    pub name: Option<String>,
    /// Also start a new session (BetterAuth's `createSession`).
    #[serde(default)]
    pub create_session: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyAuthenticationRequest {
    /// What `navigator.credentials.get()` gave
    /// (`@simplewebauthn/browser`'s `startAuthentication`), as JSON.
    #[schema(value_type = Object)]
    pub response: serde_json::Value,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdatePasskeyRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct DeletePasskeyRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
}

/// The options, with the challenge cookie.
fn ceremony_response(state: &AppState, c: PasskeyCeremony) -> Response {
    let cookie = state
        .settings
        .cookies
        .set_passkey(c.token.expose(), c.expires_in.as_secs());
    let mut r = Json(c.options).into_response();
    r.headers_mut().append(SET_COOKIE, cookie);
    super::no_store(r.headers_mut());
    r
}

/// The challenge cookie is spent whatever the outcome.
fn clear_cookie(state: &AppState, mut r: Response) -> Response {
    r.headers_mut()
        .append(SET_COOKIE, state.settings.cookies.clear_passkey());
    r
}

/// Options for `navigator.credentials.create()` (`passkey.addPasskey`).
/// Sets the signed challenge cookie; needs a fresh session.
#[utoipa::path(get, path = "/passkey/generate-register-options", tag = "betterauth", operation_id = "baPasskeyGenerateRegisterOptions",
    params(RegisterOptionsQuery),
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "PublicKeyCredentialCreationOptionsJSON: `{challenge, rp: {name, id}, user: {id, name, displayName}, pubKeyCredParams: [{alg, type}], timeout, attestation, excludeCredentials: [{id, type, transports?}], authenticatorSelection: {residentKey, userVerification, requireResidentKey, authenticatorAttachment?}, extensions: {credProps}, hints}`", body = Object),
        (status = 400, description = "VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "SESSION_NOT_FRESH", body = BaError),
    ))]
pub async fn generate_register_options(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    Query(q): Query<RegisterOptionsQuery>,
) -> Result<Response, BaError> {
    let attachment = q
        .authenticator_attachment
        .as_deref()
        .map(str::parse::<Attachment>)
        .transpose()
        .map_err(|e| BaError::validation(format!("[query.authenticatorAttachment] {e}")))?;
    let c = state
        .warden
        .passkey_registration_options(&auth.authenticated(), q.name.as_deref(), attachment)
        .await?;
    Ok(ceremony_response(&state, c))
}

/// Verify a new passkey and store it. Answers the passkey row (with
/// `createSession`, also `session` and `user`, and the session cookie).
#[utoipa::path(post, path = "/passkey/verify-registration", tag = "betterauth", operation_id = "baPasskeyVerifyRegistration",
    request_body = VerifyRegistrationRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaPasskey),
        (status = 400, description = "CHALLENGE_NOT_FOUND (no, a used or an expired challenge cookie), FAILED_TO_VERIFY_REGISTRATION (the message says why), VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED, YOU_ARE_NOT_ALLOWED_TO_REGISTER_THIS_PASSKEY", body = BaError),
        (status = 403, description = "SESSION_NOT_FRESH", body = BaError),
    ))]
pub async fn verify_registration(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    BaBody(req): BaBody<VerifyRegistrationRequest>,
) -> Response {
    let token = state.settings.cookies.read_passkey(&headers);
    let result = state
        .warden
        .passkey_verify_registration(
            &auth.authenticated(),
            token.as_deref(),
            &req.response,
            req.name.as_deref(),
            req.create_session,
            meta,
        )
        .await;
    let r = match result {
        Ok((passkey, None)) => Json(BaPasskey::from(passkey)).into_response(),
        Ok((passkey, Some(s))) => {
            let body = Json(BaPasskeyWithSession {
                passkey: passkey.into(),
                session: BaSession::new(s.session.clone(), s.token.expose().to_owned()),
                user: s.user.clone().into(),
            });
            with_session(&state, body.into_response(), &s)
        }
        Err(e) => BaError::from(e).into_response(),
    };
    clear_cookie(&state, r)
}

/// Options for `navigator.credentials.get()` (`signIn.passkey`). Without
/// a session they name no credential (discoverable credentials: no email
/// needed; the same options serve conditional UI, `autoFill`); with one,
/// the user's passkeys are listed. Sets the signed challenge cookie.
#[utoipa::path(get, path = "/passkey/generate-authenticate-options", tag = "betterauth", operation_id = "baPasskeyGenerateAuthenticateOptions",
    security((), ("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "PublicKeyCredentialRequestOptionsJSON: `{rpId, challenge, timeout, userVerification, allowCredentials?: [{id, type, transports?}]}`", body = Object),
    ))]
pub async fn generate_authenticate_options(
    State(state): State<AppState>,
    auth: Option<AuthUser>,
) -> Result<Response, BaError> {
    let auth = auth.map(|a| a.authenticated());
    let c = state
        .warden
        .passkey_authentication_options(auth.as_ref())
        .await?;
    Ok(ceremony_response(&state, c))
}

/// Sign in with a passkey: `{session, user}` and the session cookie. A
/// complete sign-in: no two-factor step follows, as in BetterAuth.
#[utoipa::path(post, path = "/passkey/verify-authentication", tag = "betterauth", operation_id = "baPasskeyVerifyAuthentication",
    request_body = VerifyAuthenticationRequest,
    responses(
        (status = 200, body = super::BaSessionResponse),
        (status = 400, description = "CHALLENGE_NOT_FOUND (no, a used or an expired challenge cookie), AUTHENTICATION_FAILED (the message says why: origin, user verification, cloned-authenticator counter, ...), VALIDATION_ERROR", body = BaError),
        (status = 401, description = "PASSKEY_NOT_FOUND (unknown credential), AUTHENTICATION_FAILED (bad signature)", body = BaError),
        (status = 403, description = "BANNED_USER", body = BaError),
    ))]
pub async fn verify_authentication(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
    BaBody(req): BaBody<VerifyAuthenticationRequest>,
) -> Response {
    let token = state.settings.cookies.read_passkey(&headers);
    let r = match state
        .warden
        .passkey_sign_in(token.as_deref(), &req.response, meta)
        .await
    {
        Ok(s) => {
            let body = Json(super::BaSessionResponse {
                session: BaSession::new(s.session.clone(), s.token.expose().to_owned()),
                user: s.user.clone().into(),
            });
            with_session(&state, body.into_response(), &s)
        }
        Err(e) => BaError::from(e).into_response(),
    };
    clear_cookie(&state, r)
}

/// The signed-in user's passkeys.
#[utoipa::path(get, path = "/passkey/list-user-passkeys", tag = "betterauth", operation_id = "baPasskeyListUserPasskeys",
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = Vec<BaPasskey>),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn list_user_passkeys(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
) -> Result<Json<Vec<BaPasskey>>, BaError> {
    let list = state.warden.list_passkeys(&auth.authenticated()).await?;
    Ok(Json(list.into_iter().map(Into::into).collect()))
}

/// Rename a passkey.
#[utoipa::path(post, path = "/passkey/update-passkey", tag = "betterauth", operation_id = "baPasskeyUpdatePasskey",
    request_body = UpdatePasskeyRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUpdatePasskeyResponse),
        (status = 400, description = "VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED, YOU_ARE_NOT_ALLOWED_TO_REGISTER_THIS_PASSKEY (another user's)", body = BaError),
        (status = 404, description = "PASSKEY_NOT_FOUND", body = BaError),
    ))]
pub async fn update_passkey(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<UpdatePasskeyRequest>,
) -> Result<Json<BaUpdatePasskeyResponse>, BaError> {
    let p = state
        .warden
        .rename_passkey(&auth.authenticated(), &req.id, &req.name)
        .await?;
    Ok(Json(BaUpdatePasskeyResponse { passkey: p.into() }))
}

/// Delete a passkey: `{status: true}`.
#[utoipa::path(post, path = "/passkey/delete-passkey", tag = "betterauth", operation_id = "baPasskeyDeletePasskey",
    request_body = DeletePasskeyRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED, YOU_ARE_NOT_ALLOWED_TO_REGISTER_THIS_PASSKEY (another user's)", body = BaError),
        (status = 404, description = "PASSKEY_NOT_FOUND", body = BaError),
    ))]
pub async fn delete_passkey(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<DeletePasskeyRequest>,
) -> Result<Json<BaStatus>, BaError> {
    state
        .warden
        .delete_passkey(&auth.authenticated(), &req.id)
        .await?;
    Ok(Json(BaStatus { status: true }))
}
