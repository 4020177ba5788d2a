//! The tutorial's `/auth/*` endpoints.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_core::{Registered, SignInOutcome, SignUp, SignedIn, Timestamp};

use crate::error::{ApiError, NO_CREDENTIALS};
use crate::extract::{
    parse_json, request_credentials, session_cookie, ApiJson, ClientMeta, Credentials,
};
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub struct SignUpRequest {
    #[schema(example = "john@example.com", min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// 8 to 128 characters by default; not a common password, not the email.
    #[schema(example = "SecurePass123!", min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(
        example = "John Doe",
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SignInRequest {
    #[schema(example = "john@example.com", min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    #[schema(example = "SecurePass123!", min_length = 1, max_length = 128)]
    pub password: String,
}

#[derive(Deserialize, ToSchema, Default)]
pub struct SignOutRequest {
    /// The session token, if not sent as `Authorization: Bearer`.
    pub token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuthUserInfo {
    pub id: String,
    pub email: String,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// The bearer token. Shown once; the server keeps only its hash.
    pub token: String,
    /// When the session expires unless it is used (sliding refresh).
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthResponse {
    pub user: AuthUserInfo,
    /// `null` when email verification is required: a link was mailed.
    pub session: Option<SessionInfo>,
    /// True when the account must be verified before signing in.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub email_verification_required: bool,
}

/// `/auth/signin`'s answer: a session, or a two-factor challenge.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SignInResponse {
    SignedIn(AuthResponse),
    TwoFactorRequired(super::two_factor::TwoFactorRequiredResponse),
}

#[derive(Serialize, ToSchema)]
pub struct SuccessResponse {
    pub success: bool,
}

impl From<SignedIn> for AuthResponse {
    fn from(s: SignedIn) -> Self {
        AuthResponse {
            user: AuthUserInfo {
                id: s.user.id,
                email: s.user.email,
                name: s.user.name,
            },
            session: Some(SessionInfo {
                token: s.token.expose().to_owned(),
                expires_at: s.session.expires_at,
            }),
            email_verification_required: false,
        }
    }
}

/// Register a new user and start a session.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", operation_id = "signUp",
    request_body = SignUpRequest,
    responses(
        (status = 200, description = "User created and signed in", body = AuthResponse),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 409, description = "Email already registered", body = ApiError),
    ))]
pub async fn sign_up(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(req): ApiJson<SignUpRequest>,
) -> Result<Response, ApiError> {
    let link = verify_link(&state, None);
    let registered = state
        .warden
        .register(
            SignUp {
                email: req.email,
                password: req.password,
                name: req.name,
                image: None,
                remember_me: true,
            },
            meta,
            link,
        )
        .await?;
    match registered {
        Registered::SignedIn(s) => Ok(with_cookie(&state, s)),
        Registered::VerificationSent(user) => Ok(Json(AuthResponse {
            user: AuthUserInfo {
                id: user.id,
                email: user.email,
                name: user.name,
            },
            session: None,
            email_verification_required: true,
        })
        .into_response()),
    }
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/auth/signin", tag = "auth", operation_id = "signIn",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in; or, for a user with two-factor on, a challenge to complete with `/auth/two-factor/verify-totp` (`twoFactorRequired: true`, no session yet)", body = SignInResponse),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 401, description = "Invalid email or password", body = ApiError),
        (status = 403, description = "Email not verified (when required); a new link was sent", body = ApiError),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientMeta(meta): ClientMeta,
    ApiJson(req): ApiJson<SignInRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .warden
        .sign_in_with(
            &req.email,
            &req.password,
            true,
            meta,
            Some(verify_link(&state, None)),
        )
        .await?;
    Ok(match outcome {
        SignInOutcome::SignedIn(s) => with_cookie(&state, s),
        SignInOutcome::TwoFactorRequired(c) => super::two_factor::challenge_response(&state, c),
    })
}

/// Revoke a session: the one in `Authorization: Bearer` or the session
/// cookie, or `{token}` in the body.
#[utoipa::path(post, path = "/auth/signout", tag = "auth", operation_id = "signOut",
    request_body(content = Option<SignOutRequest>, description = "Optional when a bearer token is sent"),
    security((), ("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, description = "Signed out (also for an unknown token)", body = SuccessResponse),
        (status = 400, description = "Malformed body", body = ApiError),
        (status = 401, description = "No token given", body = ApiError),
    ))]
pub async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let from_body = if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        SignOutRequest::default()
    } else {
        parse_json::<SignOutRequest>(&headers, &body)?
    };
    let token = match (
        request_credentials(&headers, &state.settings.cookies),
        from_body.token,
    ) {
        (Credentials::Token { token, .. }, _) => token,
        (Credentials::Malformed(why), _) => return Err(ApiError::unauthenticated(why)),
        (Credentials::Missing, Some(t)) if !t.trim().is_empty() => t.trim().to_owned(),
        (Credentials::Missing, _) => return Err(ApiError::unauthenticated(NO_CREDENTIALS)),
    };
    state.warden.sign_out(&token).await?;
    let mut response = Json(SuccessResponse { success: true }).into_response();
    if headers.contains_key(COOKIE) {
        response
            .headers_mut()
            .append(SET_COOKIE, state.settings.cookies.clear_session());
    }
    Ok(response)
}

/// The tutorial API's verification link: `<base_url>/auth/verify-email?token=...`.
pub(crate) fn verify_link(
    state: &AppState,
    callback: Option<String>,
) -> impl FnOnce(&str) -> String {
    let base = format!(
        "{}/auth/verify-email",
        state.settings.public_url.trim_end_matches('/')
    );
    move |token| {
        let link = super::password::with_query(&base, "token", token);
        match callback {
            Some(c) => super::password::with_query(&link, "callbackURL", &c),
            None => link,
        }
    }
}

/// The JSON response of a new session, plus the session cookie, so that
/// browsers can use the tutorial's API with cookies too.
pub(crate) fn with_cookie(state: &AppState, s: SignedIn) -> Response {
    crate::middleware::record_user(&s.user.id);
    let cookie = session_cookie(state, &s.token, &s.session);
    let device = state.settings.cookies.set_device(&s.user.id);
    let trust = s
        .trusted_device
        .as_ref()
        .map(|t| super::two_factor::trust_cookie(state, t));
    let mut response = Json(AuthResponse::from(s)).into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response.headers_mut().append(SET_COOKIE, device);
    if let Some(t) = trust {
        response.headers_mut().append(SET_COOKIE, t);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
