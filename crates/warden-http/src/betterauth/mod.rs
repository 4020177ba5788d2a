//! BetterAuth's `/api/auth/*` endpoints, so that frontends written for
//! BetterAuth's client (`createAuthClient` from `better-auth/client`) work
//! against Warden unchanged. Same domain calls as the tutorial's API; only
//! the shapes, cookies and error format differ.

mod admin;
pub(crate) mod body;
mod error;
#[cfg(feature = "passkey")]
mod passkey;
mod passwordless;
mod two_factor;

use axum::extract::{FromRef, FromRequestParts, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warden_core::{
    PasswordChange, Registered, Session, SessionFilter, SignInOutcome, SignUp, SignedIn, Timestamp,
    TokenHash, User,
};

pub use body::BaBody;
pub use error::BaError;

use crate::extract::{
    authenticate, request_credentials, session_cookie, AuthFailure, AuthUser, ClientMeta,
    Credentials,
};
use crate::route_list::{route, RouteSink};
use crate::AppState;

/// Where the BetterAuth API is mounted.
#[derive(Clone, Debug)]
pub struct BetterAuthSettings {
    /// Default `/api/auth`, as BetterAuth.
    pub base_path: String,
}

impl Default for BetterAuthSettings {
    fn default() -> Self {
        BetterAuthSettings {
            base_path: "/api/auth".into(),
        }
    }
}

pub static SET_AUTH_TOKEN: HeaderName = HeaderName::from_static("set-auth-token");

/// The routes, relative to the base path.
pub(crate) fn routes<R: RouteSink>(router: R) -> R {
    let router = router
        .add(route!(sign_up_email))
        .add(route!(sign_in_email))
        .add(route!(sign_out))
        .add(route!(get_session))
        .add(route!(list_sessions))
        .add(route!(revoke_session))
        .add(route!(revoke_sessions))
        .add(route!(revoke_other_sessions))
        .add(route!(update_user))
        .add(route!(change_password))
        .add(route!(delete_user))
        .add(route!(send_verification_email))
        .add(route!(verify_email))
        .add(route!(change_email))
        .add(route!(request_password_reset))
        .add(route!(reset_password_link))
        .add(route!(reset_password))
        .add(route!(two_factor::enable))
        .add(route!(two_factor::disable))
        .add(route!(two_factor::get_totp_uri))
        .add(route!(two_factor::verify_totp))
        .add(route!(two_factor::verify_backup_code))
        .add(route!(two_factor::generate_backup_codes))
        .add(route!(two_factor::send_otp))
        .add(route!(two_factor::verify_otp))
        .add(route!(passwordless::sign_in_magic_link))
        .add(route!(passwordless::magic_link_verify))
        .add(route!(passwordless::send_verification_otp))
        .add(route!(passwordless::check_verification_otp))
        .add(route!(passwordless::verify_email_otp))
        .add(route!(passwordless::sign_in_email_otp))
        .add(route!(passwordless::request_password_reset_otp))
        .add(route!(passwordless::forget_password_otp))
        .add(route!(passwordless::reset_password_otp))
        .add(route!(passwordless::request_email_change_otp))
        .add(route!(passwordless::change_email_otp))
        .add(route!(admin::set_role))
        .add(route!(admin::get_user))
        .add(route!(admin::create_user))
        .add(route!(admin::update_user))
        .add(route!(admin::list_users))
        .add(route!(admin::list_user_sessions))
        .add(route!(admin::ban_user))
        .add(route!(admin::unban_user))
        .add(route!(admin::impersonate_user))
        .add(route!(admin::stop_impersonating))
        .add(route!(admin::revoke_user_session))
        .add(route!(admin::revoke_user_sessions))
        .add(route!(admin::remove_user))
        .add(route!(admin::set_user_password))
        .add(route!(admin::has_permission))
        .add(route!(ok))
        .add(route!(error_page))
        .ba_fallback();
    #[cfg(feature = "social")]
    let router = crate::social::ba::routes(router);
    #[cfg(feature = "passkey")]
    let router = passkey::routes(router);
    router
}

// ---------------------------------------------------------------------------
// Wire types

/// A user as BetterAuth returns it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaUser {
    pub id: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub image: Option<String>,
    /// The twoFactor plugin's field.
    pub two_factor_enabled: bool,
    /// The admin plugin's fields: roles (comma-separated), and the ban.
    pub role: Option<String>,
    pub banned: bool,
    pub ban_reason: Option<String>,
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ban_expires: Option<Timestamp>,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<User> for BaUser {
    fn from(u: User) -> Self {
        BaUser {
            id: u.id,
            name: u.name,
            email: u.email,
            email_verified: u.email_verified,
            image: u.image,
            two_factor_enabled: u.two_factor_enabled,
            role: u.role,
            banned: u.banned,
            ban_reason: u.ban_reason,
            ban_expires: u.ban_expires,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// A session as BetterAuth returns it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaSession {
    pub id: String,
    /// The session token for the caller's own session. Warden stores only
    /// token hashes, so other sessions in `list-sessions` carry their id
    /// here instead: a handle that `revoke-session` accepts, not a credential.
    pub token: String,
    pub user_id: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The admin impersonating the user in this session (admin plugin).
    pub impersonated_by: Option<String>,
}

impl BaSession {
    fn new(s: Session, token: String) -> Self {
        BaSession {
            id: s.id,
            token,
            user_id: s.user_id,
            expires_at: s.expires_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
            ip_address: s.ip_address,
            user_agent: s.user_agent,
            impersonated_by: s.impersonated_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BaSessionResponse {
    pub session: BaSession,
    pub user: BaUser,
}

#[derive(Serialize, ToSchema)]
pub struct BaTokenResponse {
    /// The new session token.
    pub token: Option<String>,
    pub user: BaUser,
}

#[derive(Serialize, ToSchema)]
pub struct BaSignInResponse {
    /// True when a `callbackURL` was given (its value is in `url` and the
    /// `Location` header).
    pub redirect: bool,
    pub token: String,
    /// Only when a `callbackURL` was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub url: Option<String>,
    pub user: BaUser,
}

#[derive(Serialize, ToSchema)]
pub struct BaStatus {
    pub status: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BaSuccess {
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
pub struct BaDeleteUserResponse {
    pub success: bool,
    pub message: String,
}

#[derive(Serialize, ToSchema)]
pub struct BaOk {
    pub ok: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignUpEmailRequest {
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(pattern = "^https?://", max_length = 2048)]
    pub image: Option<String>,
    /// Where the email verification link leads (relative, or on a trusted origin).
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    /// Default true. False: a one-day session and a browser-session cookie.
    pub remember_me: Option<bool>,
    /// The admin plugin's fields, which users cannot set (read only to
    /// refuse them as BetterAuth does: `FIELD_NOT_ALLOWED`).
    #[serde(default)]
    #[schema(ignore)]
    pub role: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(ignore)]
    pub banned: Option<serde_json::Value>,
    #[serde(default, rename = "banReason")]
    #[schema(ignore)]
    pub ban_reason: Option<serde_json::Value>,
    #[serde(default, rename = "banExpires")]
    #[schema(ignore)]
    pub ban_expires: Option<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInEmailRequest {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(min_length = 1, max_length = 128)]
    pub password: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    pub remember_me: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
pub struct RevokeSessionRequest {
    /// A session token, or a session handle from `list-sessions`.
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateUserRequest {
    pub name: Option<String>,
    /// An http(s) URL; `null` removes the image.
    #[serde(default, deserialize_with = "crate::routes::double_option")]
    #[schema(value_type = Option<String>)]
    pub image: Option<Option<String>>,
    /// Not allowed: changing the email needs verification.
    #[schema(value_type = Option<String>)]
    pub email: Option<serde_json::Value>,
    /// The admin plugin's fields, which users cannot set (read only to
    /// refuse them as BetterAuth does: `FIELD_NOT_ALLOWED`).
    #[serde(default)]
    #[schema(ignore)]
    pub role: Option<serde_json::Value>,
    #[serde(default)]
    #[schema(ignore)]
    pub banned: Option<serde_json::Value>,
    #[serde(default, rename = "banReason")]
    #[schema(ignore)]
    pub ban_reason: Option<serde_json::Value>,
    #[serde(default, rename = "banExpires")]
    #[schema(ignore)]
    pub ban_expires: Option<serde_json::Value>,
}

/// The admin plugin's user fields (`input: false` in its schema), as a
/// request names them.
struct AdminFields<'a> {
    role: &'a Option<serde_json::Value>,
    banned: &'a Option<serde_json::Value>,
    ban_reason: &'a Option<serde_json::Value>,
    ban_expires: &'a Option<serde_json::Value>,
}

impl AdminFields<'_> {
    /// BetterAuth's `parseInputData`: a truthy value for a field users
    /// cannot set is refused (`banned` has a default, so on sign-up it is
    /// ignored instead).
    fn check(&self, creating: bool) -> Result<(), BaError> {
        fn truthy(v: &Option<serde_json::Value>) -> bool {
            use serde_json::Value as V;
            match v {
                None | Some(V::Null) | Some(V::Bool(false)) => false,
                Some(V::String(s)) => !s.is_empty(),
                Some(V::Number(n)) => n.as_f64() != Some(0.0),
                Some(_) => true,
            }
        }
        for (name, v) in [
            ("role", self.role),
            ("banned", self.banned),
            ("banReason", self.ban_reason),
            ("banExpires", self.ban_expires),
        ] {
            if name == "banned" && creating {
                continue;
            }
            if truthy(v) {
                return Err(BaError::bad_request(
                    "FIELD_NOT_ALLOWED",
                    format!("{name} is not allowed to be set"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    #[schema(min_length = 1, max_length = 128)]
    pub current_password: String,
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
    /// Also end every other session of the user.
    #[serde(default)]
    pub revoke_other_sessions: bool,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct DeleteUserRequest {
    /// Required unless the session is fresh.
    pub password: Option<String>,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
    /// Deletion confirmed by an emailed token: not supported.
    pub token: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct GetSessionQuery {
    /// Accepted for compatibility; Warden has no cookie cache to bypass.
    #[serde(default)]
    pub disable_cookie_cache: Option<String>,
    /// Accepted for compatibility.
    #[serde(default)]
    pub disable_refresh: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ErrorQuery {
    pub error: Option<String>,
    pub error_description: Option<String>,
}

// ---------------------------------------------------------------------------
// Helpers

/// The signed-in user, for BetterAuth endpoints: `401 UNAUTHORIZED` otherwise.
pub struct BaAuth(pub AuthUser);

impl<S> FromRequestParts<S> for BaAuth
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = BaError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        AuthUser::from_parts(parts, &state)
            .await
            .map(BaAuth)
            .map_err(|f| match f {
                AuthFailure::Server(e) => BaError::from(e),
                _ => BaError::unauthorized(),
            })
    }
}

/// Refuses redirect targets that are not relative or on a trusted origin.
fn check_redirect(state: &AppState, target: Option<&str>) -> Result<(), BaError> {
    match target {
        Some(t) if !state.settings.trusted_origins.allows_redirect(t) => {
            tracing::info!("untrusted callbackURL refused");
            Err(BaError::invalid_callback_url())
        }
        _ => Ok(()),
    }
}

/// Adds the session cookie and the `set-auth-token` header (the signed
/// token, usable as a bearer token) for a new session.
pub(crate) fn with_session(state: &AppState, mut response: Response, s: &SignedIn) -> Response {
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, state.settings.cookies.set_device(&s.user.id));
    if let Some(t) = &s.trusted_device {
        headers.append(
            SET_COOKIE,
            crate::routes::two_factor::trust_cookie(state, t),
        );
    }
    session_headers(state, headers, &s.token, &s.session);
    response
}

/// The session cookie, `set-auth-token` and no-store headers of a response
/// that hands out `token` (without the device cookie: an impersonating
/// admin's browser never signed in as the user).
pub(crate) fn session_headers(
    state: &AppState,
    headers: &mut HeaderMap,
    token: &warden_core::SessionToken,
    session: &Session,
) {
    crate::middleware::record_user(&session.user_id);
    headers.append(SET_COOKIE, session_cookie(state, token, session));
    if let Ok(v) = HeaderValue::try_from(state.settings.cookies.signed_value(token.expose())) {
        headers.insert(SET_AUTH_TOKEN.clone(), v);
    }
    no_store(headers);
}

/// Sessions as BetterAuth lists them: the caller's own with its token,
/// the others with their id as the handle (Warden stores no tokens).
pub(crate) fn listed_sessions(auth: &AuthUser, sessions: Vec<Session>) -> Vec<BaSession> {
    sessions
        .into_iter()
        .map(|s| {
            let token = if s.id == auth.session.id {
                auth.token.expose().to_owned()
            } else {
                s.id.clone()
            };
            BaSession::new(s, token)
        })
        .collect()
}

fn without_session(state: &AppState, mut response: Response) -> Response {
    response
        .headers_mut()
        .append(SET_COOKIE, state.settings.cookies.clear_session());
    response
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
}

// ---------------------------------------------------------------------------
// Handlers

/// Sign up with email and password (BetterAuth `signUp.email`).
#[utoipa::path(post, path = "/sign-up/email", tag = "betterauth", operation_id = "baSignUpEmail",
    request_body = SignUpEmailRequest,
    responses(
        (status = 200, description = "User created and signed in; sets the session cookie and `set-auth-token`", body = BaTokenResponse),
        (status = 400, description = "INVALID_EMAIL, PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, VALIDATION_ERROR", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL, INVALID_ORIGIN", body = BaError),
        (status = 422, description = "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL", body = BaError),
    ))]
pub async fn sign_up_email(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<SignUpEmailRequest>,
) -> Result<Response, BaError> {
    AdminFields {
        role: &req.role,
        banned: &req.banned,
        ban_reason: &req.ban_reason,
        ban_expires: &req.ban_expires,
    }
    .check(true)?;
    check_redirect(&state, req.callback_url.as_deref())?;
    let link = ba_verify_link(&state, req.callback_url.clone());
    let registered = state
        .warden
        .register(
            SignUp {
                email: req.email,
                password: req.password,
                name: req.name,
                image: req.image,
                remember_me: req.remember_me.unwrap_or(true),
            },
            meta,
            link,
        )
        .await?;
    match registered {
        Registered::SignedIn(s) => {
            let body = Json(BaTokenResponse {
                token: Some(s.token.expose().to_owned()),
                user: s.user.clone().into(),
            });
            Ok(with_session(&state, body.into_response(), &s))
        }
        // Verification required: no session, and the same answer for a
        // taken email as for a new one.
        Registered::VerificationSent(user) => Ok(Json(BaTokenResponse {
            token: None,
            user: user.into(),
        })
        .into_response()),
    }
}

/// Sign in with email and password (BetterAuth `signIn.email`).
#[utoipa::path(post, path = "/sign-in/email", tag = "betterauth", operation_id = "baSignInEmail",
    request_body = SignInEmailRequest,
    responses(
        (status = 200, description = "Signed in; sets the session cookie and `set-auth-token`. For a user with two-factor on: `{twoFactorRedirect: true, twoFactorMethods}` and a challenge cookie instead (complete with `/two-factor/verify-totp` or `/two-factor/verify-backup-code`)", body = BaSignInResponse),
        (status = 400, description = "INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "INVALID_EMAIL_OR_PASSWORD", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL, INVALID_ORIGIN", body = BaError),
    ))]
pub async fn sign_in_email(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<SignInEmailRequest>,
) -> Result<Response, BaError> {
    check_redirect(&state, req.callback_url.as_deref())?;
    let outcome = state
        .warden
        .sign_in_with(
            &req.email,
            &req.password,
            req.remember_me.unwrap_or(true),
            meta,
            Some(ba_verify_link(&state, req.callback_url.clone())),
        )
        .await?;
    let s = match outcome {
        SignInOutcome::SignedIn(s) => s,
        SignInOutcome::TwoFactorRequired(c) => {
            return Ok(two_factor::challenge_response(&state, c))
        }
    };
    let body = Json(BaSignInResponse {
        redirect: req.callback_url.is_some(),
        token: s.token.expose().to_owned(),
        url: req.callback_url.clone(),
        user: s.user.clone().into(),
    });
    let mut response = with_session(&state, body.into_response(), &s);
    if let Some(v) = req.callback_url.and_then(|u| HeaderValue::try_from(u).ok()) {
        response.headers_mut().insert(LOCATION, v);
    }
    Ok(response)
}

/// End the current session and clear the cookie.
#[utoipa::path(post, path = "/sign-out", tag = "betterauth", operation_id = "baSignOut",
    security((), ("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaSuccess),
        (status = 400, description = "FAILED_TO_GET_SESSION: no session cookie or token", body = BaError),
    ))]
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match request_credentials(&headers, &state.settings.cookies) {
        Credentials::Token { token, .. } => {
            if let Err(e) = state.warden.sign_out(&token).await {
                return BaError::from(e).into_response();
            }
            without_session(&state, Json(BaSuccess { success: true }).into_response())
        }
        Credentials::Missing | Credentials::Malformed(_) => without_session(
            &state,
            BaError::bad_request("FAILED_TO_GET_SESSION", "Failed to get session").into_response(),
        ),
    }
}

/// The current session and user, or `null`.
#[utoipa::path(get, path = "/get-session", tag = "betterauth", operation_id = "baGetSession",
    params(GetSessionQuery),
    security((), ("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "`{session, user}`, or `null` when not signed in. A refreshed session re-issues the cookie.", body = Option<BaSessionResponse>),
    ))]
pub async fn get_session(
    State(state): State<AppState>,
    Query(_q): Query<GetSessionQuery>,
    headers: HeaderMap,
) -> Response {
    let mut response = match authenticate(&state, &headers).await {
        Ok(auth) => {
            let mut r = Json(BaSessionResponse {
                session: BaSession::new(auth.session.clone(), auth.token.expose().to_owned()),
                user: auth.user.clone().into(),
            })
            .into_response();
            if auth.refreshed && auth.from_cookie {
                let cookie = session_cookie(&state, &auth.token, &auth.session);
                r.headers_mut().append(SET_COOKIE, cookie);
            }
            r
        }
        Err(AuthFailure::Server(e)) => return BaError::from(e).into_response(),
        Err(AuthFailure::Missing) => Json(serde_json::Value::Null).into_response(),
        // A stale or forged cookie: answer null and drop it.
        Err(_) => without_session(&state, Json(serde_json::Value::Null).into_response()),
    };
    no_store(response.headers_mut());
    response
}

/// The user's live sessions. Needs a fresh session (BetterAuth's rule).
#[utoipa::path(get, path = "/list-sessions", tag = "betterauth", operation_id = "baListSessions",
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = Vec<BaSession>),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "SESSION_NOT_FRESH: sign in again", body = BaError),
    ))]
pub async fn list_sessions(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
) -> Result<Response, BaError> {
    if !state.warden.is_fresh(&auth.session) {
        return Err(warden_core::AuthError::SessionNotFresh.into());
    }
    let sessions = state.warden.list_sessions(auth.id()).await?;
    let mut response = Json(listed_sessions(&auth, sessions)).into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// Revoke one of the user's sessions by token (or by the handle that
/// `list-sessions` shows). Always `{status: true}`: a token of another user
/// is silently ignored, as BetterAuth does.
#[utoipa::path(post, path = "/revoke-session", tag = "betterauth", operation_id = "baRevokeSession",
    request_body = RevokeSessionRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<RevokeSessionRequest>,
) -> Result<Json<BaStatus>, BaError> {
    let handle = req.token.trim();
    if handle.is_empty() || handle.len() > 256 {
        return Err(BaError::validation("[body.token] must be a session token"));
    }
    let hash = TokenHash::of(handle);
    state
        .warden
        .revoke_sessions(
            auth.id(),
            SessionFilter::IdOrTokenHash {
                id: handle,
                token_hash: hash.as_str(),
            },
        )
        .await?;
    Ok(Json(BaStatus { status: true }))
}

/// Revoke every session of the user, including this one.
#[utoipa::path(post, path = "/revoke-sessions", tag = "betterauth", operation_id = "baRevokeSessions",
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
) -> Result<Response, BaError> {
    state
        .warden
        .revoke_sessions(auth.id(), SessionFilter::All)
        .await?;
    Ok(without_session(
        &state,
        Json(BaStatus { status: true }).into_response(),
    ))
}

/// Revoke every session of the user except this one.
#[utoipa::path(post, path = "/revoke-other-sessions", tag = "betterauth", operation_id = "baRevokeOtherSessions",
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
) -> Result<Json<BaStatus>, BaError> {
    state
        .warden
        .revoke_sessions(auth.id(), SessionFilter::AllExcept(&auth.session.id))
        .await?;
    Ok(Json(BaStatus { status: true }))
}

/// Update the user's name and/or image.
#[utoipa::path(post, path = "/update-user", tag = "betterauth", operation_id = "baUpdateUser",
    request_body = UpdateUserRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "EMAIL_CAN_NOT_BE_UPDATED, NO_FIELDS_TO_UPDATE, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<UpdateUserRequest>,
) -> Result<Json<BaStatus>, BaError> {
    AdminFields {
        role: &req.role,
        banned: &req.banned,
        ban_reason: &req.ban_reason,
        ban_expires: &req.ban_expires,
    }
    .check(false)?;
    if req.email.is_some() {
        return Err(BaError::bad_request(
            "EMAIL_CAN_NOT_BE_UPDATED",
            "Email can not be updated",
        ));
    }
    if req.name.is_none() && req.image.is_none() {
        return Err(BaError::bad_request(
            "NO_FIELDS_TO_UPDATE",
            "No fields to update",
        ));
    }
    let image = req.image.as_ref().map(|i| i.as_deref());
    state
        .warden
        .update_profile(auth.id(), req.name.as_deref(), image)
        .await?;
    Ok(Json(BaStatus { status: true }))
}

/// Change the password. The caller gets a new session token (cookie and
/// `set-auth-token` re-issued); with `revokeOtherSessions` every other
/// session ends.
#[utoipa::path(post, path = "/change-password", tag = "betterauth", operation_id = "baChangePassword",
    request_body = ChangePasswordRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaTokenResponse),
        (status = 400, description = "INVALID_PASSWORD, PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, CREDENTIAL_ACCOUNT_NOT_FOUND", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<ChangePasswordRequest>,
) -> Result<Response, BaError> {
    let s = state
        .warden
        .change_password(
            &auth.authenticated(),
            PasswordChange {
                current_password: req.current_password,
                new_password: req.new_password,
                revoke_other_sessions: req.revoke_other_sessions,
            },
            meta,
        )
        .await?;
    let body = Json(BaTokenResponse {
        token: Some(s.token.expose().to_owned()),
        user: s.user.clone().into(),
    });
    Ok(with_session(&state, body.into_response(), &s))
}

/// Delete the user's account (when `user.allow_delete` is on). Needs the
/// password, or a fresh session.
#[utoipa::path(post, path = "/delete-user", tag = "betterauth", operation_id = "baDeleteUser",
    request_body = DeleteUserRequest,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaDeleteUserResponse),
        (status = 400, description = "INVALID_PASSWORD, SESSION_EXPIRED (not fresh and no password), CREDENTIAL_ACCOUNT_NOT_FOUND", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL", body = BaError),
        (status = 404, description = "Account deletion is disabled", body = BaError),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<DeleteUserRequest>,
) -> Result<Response, BaError> {
    if !state.settings.allow_delete_user {
        return Err(BaError::not_found());
    }
    check_redirect(&state, req.callback_url.as_deref())?;
    if req.token.is_some() {
        return Err(BaError::validation(
            "[body.token] deletion by emailed token is not enabled",
        ));
    }
    match state
        .warden
        .delete_user(&auth.authenticated(), req.password.as_deref())
        .await
    {
        Ok(()) => {}
        Err(warden_core::AuthError::SessionNotFresh) => {
            return Err(BaError::bad_request(
                "SESSION_EXPIRED",
                "Session expired. Re-authenticate to perform this action.",
            ))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(without_session(
        &state,
        Json(BaDeleteUserResponse {
            success: true,
            message: "User deleted".into(),
        })
        .into_response(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestPasswordResetBody {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// The front end's reset page (relative, or on a trusted origin).
    pub redirect_to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BaStatusMessage {
    pub status: bool,
    pub message: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetPasswordBody {
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
    /// The token (or pass it as `?token=`).
    pub token: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    /// Where to send the browser: `<callbackURL>?token=...`, or
    /// `?error=INVALID_TOKEN`.
    #[serde(rename = "callbackURL")]
    #[param(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    pub token: Option<String>,
}

/// Email a reset link (BetterAuth `requestPasswordReset`). The same answer
/// whether the email is registered or not.
#[utoipa::path(post, path = "/request-password-reset", tag = "betterauth", operation_id = "baRequestPasswordReset",
    request_body = RequestPasswordResetBody,
    responses(
        (status = 200, body = BaStatusMessage),
        (status = 400, description = "INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 403, description = "INVALID_REDIRECT_URL", body = BaError),
    ))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    BaBody(req): BaBody<RequestPasswordResetBody>,
) -> Result<Json<BaStatusMessage>, BaError> {
    if let Some(t) = req.redirect_to.as_deref() {
        if !state.settings.trusted_origins.allows_redirect(t) {
            return Err(BaError::forbidden(
                "INVALID_REDIRECT_URL",
                "Invalid redirectURL",
            ));
        }
    }
    let base = state
        .settings
        .betterauth
        .as_ref()
        .map(|b| b.base_path.clone())
        .unwrap_or_default();
    let public = state.settings.public_url.trim_end_matches('/').to_owned();
    let callback = req.redirect_to.unwrap_or_else(|| "/".into());
    state
        .warden
        .request_password_reset(&req.email, move |token| {
            crate::routes::password::with_query(
                &format!("{public}{base}/reset-password/{token}"),
                "callbackURL",
                &callback,
            )
        })?;
    Ok(Json(BaStatusMessage {
        status: true,
        message: "If this email exists in our system, check your email for the reset link".into(),
    }))
}

/// The emailed link: checks the token and redirects the browser to the
/// front end's page with `?token=` (or `?error=INVALID_TOKEN`). The token is
/// not used up here.
#[utoipa::path(get, path = "/reset-password/{token}", tag = "betterauth", operation_id = "baResetPasswordLink",
    params(("token" = String, Path, max_length = 256), CallbackQuery),
    responses(
        (status = 302, description = "To `callbackURL` with `token` or `error`"),
        (status = 400, description = "VALIDATION_ERROR: no callbackURL", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL", body = BaError),
    ))]
pub async fn reset_password_link(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
    Query(q): Query<CallbackQuery>,
) -> Result<Response, BaError> {
    let Some(callback) = q.callback_url else {
        return Err(BaError::validation("[query.callbackURL] is required"));
    };
    check_redirect(&state, Some(&callback))?;
    let target = match state.warden.check_reset_token(&token).await {
        Ok(()) => crate::routes::password::with_query(&callback, "token", &token),
        Err(warden_core::AuthError::InvalidToken) => {
            crate::routes::password::with_query(&callback, "error", "INVALID_TOKEN")
        }
        Err(e) => return Err(e.into()),
    };
    let mut r = axum::http::StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::try_from(target) {
        r.headers_mut().insert(LOCATION, v);
    }
    Ok(r)
}

/// Set a new password with a reset token (BetterAuth `resetPassword`).
/// Every session of the user ends.
#[utoipa::path(post, path = "/reset-password", tag = "betterauth", operation_id = "baResetPassword",
    params(TokenQuery),
    request_body = ResetPasswordBody,
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "INVALID_TOKEN, PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_COMPROMISED", body = BaError),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    Query(q): Query<TokenQuery>,
    BaBody(req): BaBody<ResetPasswordBody>,
) -> Result<Json<BaStatus>, BaError> {
    let Some(token) = req.token.or(q.token) else {
        return Err(BaError::bad_request("INVALID_TOKEN", "Invalid token"));
    };
    state
        .warden
        .reset_password(&token, &req.new_password)
        .await?;
    Ok(Json(BaStatus { status: true }))
}

/// BetterAuth's verification link:
/// `<base_url><base_path>/verify-email?token=...&callbackURL=...`.
fn ba_verify_link(state: &AppState, callback: Option<String>) -> impl FnOnce(&str) -> String {
    let base = format!(
        "{}{}/verify-email",
        state.settings.public_url.trim_end_matches('/'),
        state
            .settings
            .betterauth
            .as_ref()
            .map(|b| b.base_path.as_str())
            .unwrap_or("")
    );
    move |token| {
        let link = crate::routes::password::with_query(&base, "token", token);
        crate::routes::password::with_query(
            &link,
            "callbackURL",
            callback.as_deref().unwrap_or("/"),
        )
    }
}

#[derive(Deserialize, ToSchema)]
pub struct SendVerificationBody {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChangeEmailBody {
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub new_email: String,
    #[serde(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VerifyEmailQuery {
    pub token: Option<String>,
    #[serde(rename = "callbackURL")]
    #[param(rename = "callbackURL")]
    pub callback_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct BaVerifyResponse {
    pub status: bool,
    pub user: Option<BaUser>,
}

/// Send a (new) verification link. The same answer whether the address
/// belongs to an unverified user or not.
#[utoipa::path(post, path = "/send-verification-email", tag = "betterauth", operation_id = "baSendVerificationEmail",
    request_body = SendVerificationBody,
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "INVALID_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL", body = BaError),
    ))]
pub async fn send_verification_email(
    State(state): State<AppState>,
    BaBody(req): BaBody<SendVerificationBody>,
) -> Result<Json<BaStatus>, BaError> {
    check_redirect(&state, req.callback_url.as_deref())?;
    let link = ba_verify_link(&state, req.callback_url);
    state.warden.resend_verification(&req.email, link)?;
    Ok(Json(BaStatus { status: true }))
}

/// The emailed verification (or email-change) link. With `callbackURL`, a
/// redirect there (`?error=INVALID_TOKEN` on failure).
#[utoipa::path(get, path = "/verify-email", tag = "betterauth", operation_id = "baVerifyEmail",
    params(VerifyEmailQuery),
    responses(
        (status = 200, body = BaVerifyResponse),
        (status = 302, description = "To callbackURL"),
        (status = 400, description = "VALIDATION_ERROR: no token", body = BaError),
        (status = 401, description = "INVALID_TOKEN", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL", body = BaError),
        (status = 422, description = "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL (email change)", body = BaError),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    Query(q): Query<VerifyEmailQuery>,
) -> Result<Response, BaError> {
    check_redirect(&state, q.callback_url.as_deref())?;
    let Some(token) = q.token else {
        return Err(BaError::validation("[query.token] is required"));
    };
    let result = state.warden.verify_email(&token, meta).await;
    let mut response = match (&result, q.callback_url.as_deref()) {
        (Ok(_), Some(c)) => crate::routes::email::redirect(c),
        (Ok(v), None) => Json(BaVerifyResponse {
            status: true,
            user: v.email_changed.then(|| v.user.clone().into()),
        })
        .into_response(),
        (Err(warden_core::AuthError::InvalidToken), Some(c)) => crate::routes::email::redirect(
            &crate::routes::password::with_query(c, "error", "INVALID_TOKEN"),
        ),
        (Err(warden_core::AuthError::EmailTaken), Some(c)) => crate::routes::email::redirect(
            &crate::routes::password::with_query(c, "error", "EMAIL_TAKEN"),
        ),
        // The email is verified, but a banned user gets no session.
        (Err(warden_core::AuthError::Banned { .. }), Some(c)) => crate::routes::email::redirect(
            &crate::routes::password::with_query(c, "error", "BANNED_USER"),
        ),
        (Err(warden_core::AuthError::InvalidToken), None) => {
            return Err(BaError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "Invalid token",
            ))
        }
        (Err(_), _) => {
            return Err(result
                .err()
                .map(BaError::from)
                .unwrap_or_else(BaError::not_found))
        }
    };
    if let Ok(v) = &result {
        if let Some(s) = &v.signed_in {
            response = with_session(&state, response, s);
        }
    }
    Ok(response)
}

/// Ask to change the email: a confirmation link goes to the new address
/// and a notice to the current one.
#[utoipa::path(post, path = "/change-email", tag = "betterauth", operation_id = "baChangeEmail",
    request_body = ChangeEmailBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaStatus),
        (status = 400, description = "INVALID_EMAIL, VALIDATION_ERROR (the current email)", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "INVALID_CALLBACK_URL", body = BaError),
    ))]
pub async fn change_email(
    State(state): State<AppState>,
    BaAuth(auth): BaAuth,
    BaBody(req): BaBody<ChangeEmailBody>,
) -> Result<Json<BaStatus>, BaError> {
    check_redirect(&state, req.callback_url.as_deref())?;
    let link = ba_verify_link(&state, req.callback_url);
    state
        .warden
        .change_email(&auth.authenticated(), &req.new_email, link)
        .await?;
    Ok(Json(BaStatus { status: true }))
}

/// Liveness of the BetterAuth API.
#[utoipa::path(get, path = "/ok", tag = "betterauth", operation_id = "baOk",
    responses((status = 200, body = BaOk)))]
pub async fn ok() -> Json<BaOk> {
    Json(BaOk { ok: true })
}

/// A plain error page, the default target of failed browser flows.
#[utoipa::path(get, path = "/error", tag = "betterauth", operation_id = "baErrorPage",
    params(ErrorQuery),
    responses((status = 200, description = "An HTML page naming the error", content_type = "text/html", body = String)))]
pub async fn error_page(Query(q): Query<ErrorQuery>) -> Response {
    let code = q.error.as_deref().unwrap_or("UNKNOWN");
    let description = q.error_description.as_deref().unwrap_or("");
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title></head>\n<body><h1>Something went wrong</h1>\n<p>Error code: <code>{}</code></p>\n<p>{}</p>\n</body></html>\n",
        escape_html(&truncate_chars(code, 100)),
        escape_html(&truncate_chars(description, 500)),
    );
    let mut r = Html(page).into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r.headers_mut().insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'none'"),
    );
    r
}

fn truncate_chars(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
