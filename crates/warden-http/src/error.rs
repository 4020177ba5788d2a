//! Encore's error wire format: `{"code": "...", "message": "...", "details": null}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use warden_core::AuthError;

/// Encore's (gRPC's) error codes, with their HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrCode {
    InvalidArgument,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    ResourceExhausted,
    Internal,
    Unavailable,
}

impl ErrCode {
    pub fn status(self) -> StatusCode {
        match self {
            ErrCode::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrCode::NotFound => StatusCode::NOT_FOUND,
            ErrCode::AlreadyExists => StatusCode::CONFLICT,
            ErrCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            ErrCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// An error as the client sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiError {
    pub code: ErrCode,
    pub message: String,
    /// Always null for now; kept for Encore clients.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// Seconds for a `Retry-After` header (429 responses).
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<u64>,
}

/// Encore's message for a request without credentials on an `auth: true` endpoint.
pub const NO_CREDENTIALS: &str =
    "the request does not have valid authentication credentials for the operation";

impl ApiError {
    pub fn new(code: ErrCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrCode::InvalidArgument, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrCode::Unauthenticated, message)
    }

    pub fn internal() -> Self {
        Self::new(ErrCode::Internal, "an internal error occurred")
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Invalid { field, message } => {
                ApiError::invalid(format!("{field}: {message}"))
            }
            e @ (AuthError::PasswordTooShort { .. } | AuthError::PasswordTooLong { .. }) => {
                ApiError::invalid(e.to_string())
            }
            e @ AuthError::PasswordRejected { .. } => ApiError::invalid(e.to_string()),
            e @ AuthError::AccountLocked { retry_after } => {
                ApiError::new(ErrCode::ResourceExhausted, e.to_string())
                    .retry_after(retry_after.as_secs().max(1))
            }
            AuthError::InvalidPassword => ApiError::invalid("password: incorrect password"),
            AuthError::InvalidToken => ApiError::invalid("token: invalid or expired token"),
            AuthError::EmailNotVerified => ApiError::new(
                ErrCode::PermissionDenied,
                "email not verified: follow the link we sent to your address (a new one is on its way)",
            ),
            AuthError::CredentialAccountNotFound => {
                ApiError::invalid("password: this account has no password")
            }
            AuthError::SessionNotFresh => ApiError::new(
                ErrCode::PermissionDenied,
                "this operation needs a recent sign-in or the password",
            ),
            AuthError::InvalidCredentials => ApiError::unauthenticated("invalid email or password"),
            AuthError::InvalidTwoFactorCode => {
                ApiError::unauthenticated("code: invalid two-factor code")
            }
            AuthError::InvalidBackupCode => ApiError::unauthenticated("code: invalid backup code"),
            e @ AuthError::TwoFactorAlreadyEnabled => {
                ApiError::new(ErrCode::AlreadyExists, e.to_string())
            }
            AuthError::InvalidTwoFactorChallenge => ApiError::unauthenticated(
                "challenge: invalid or expired two-factor challenge; sign in again",
            ),
            e @ AuthError::TwoFactorTooManyAttempts => {
                ApiError::new(ErrCode::ResourceExhausted, e.to_string())
            }
            e @ AuthError::TwoFactorLocked { retry_after } => {
                ApiError::new(ErrCode::ResourceExhausted, e.to_string())
                    .retry_after(retry_after.as_secs().max(1))
            }
            e @ (AuthError::AccountNotLinked | AuthError::AccountAlreadyLinked) => {
                ApiError::new(ErrCode::AlreadyExists, e.to_string())
            }
            e @ (AuthError::SocialEmailMissing
            | AuthError::LinkEmailMismatch
            | AuthError::SocialEmailNotVerified) => {
                ApiError::invalid(e.to_string())
            }
            e @ AuthError::SignUpDisabled => ApiError::new(ErrCode::PermissionDenied, e.to_string()),
            AuthError::FeatureDisabled => ApiError::new(ErrCode::NotFound, "not found"),
            AuthError::InvalidOtp => ApiError::unauthenticated("otp: invalid one-time code"),
            e @ AuthError::OtpExpired => ApiError::invalid(format!("otp: {e}")),
            e @ AuthError::OtpTooManyAttempts => {
                ApiError::new(ErrCode::ResourceExhausted, format!("otp: {e}"))
            }
            e @ AuthError::EmailChangeByCodeDisabled => ApiError::new(ErrCode::NotFound, e.to_string()),
            e @ AuthError::TwoFactorOtpTooSoon => ApiError::new(ErrCode::ResourceExhausted, e.to_string()),
            e @ AuthError::TwoFactorOtpExpired => ApiError::invalid(format!("code: {e}")),
            e @ AuthError::TwoFactorOtpNotConfigured => ApiError::new(ErrCode::NotFound, e.to_string()),
            AuthError::AccountNotFound => ApiError::new(ErrCode::NotFound, "account not found"),
            e @ AuthError::LastSignInMethod => ApiError::invalid(e.to_string()),
            AuthError::TwoFactorNotEnabled => {
                ApiError::invalid("two-factor authentication is not set up for this account")
            }
            AuthError::EmailTaken => ApiError::new(
                ErrCode::AlreadyExists,
                "a user with this email already exists",
            ),
            AuthError::InvalidSession => ApiError::unauthenticated("invalid session"),
            AuthError::SessionExpired => ApiError::unauthenticated("session expired"),
            AuthError::SessionNotFound => ApiError::new(ErrCode::NotFound, "session not found"),
            AuthError::UserNotFound => ApiError::unauthenticated("invalid session"),
            AuthError::Banned { message } => ApiError::new(ErrCode::PermissionDenied, message),
            AuthError::NotAllowed(action) => {
                let (resource, verb) = action.permission();
                ApiError::new(
                    ErrCode::PermissionDenied,
                    format!("you are not allowed to do this: it needs the {resource}:{verb} permission"),
                )
            }
            AuthError::AdminRefused(r) => {
                use warden_core::AdminRefusal as R;
                let code = match r {
                    R::CannotImpersonateAdmins | R::WhileImpersonating => ErrCode::PermissionDenied,
                    _ => ErrCode::InvalidArgument,
                };
                ApiError::new(code, r.to_string())
            }
            AuthError::NoSuchUser => ApiError::new(ErrCode::NotFound, "user not found"),
            AuthError::PasskeysDisabled => ApiError::new(ErrCode::NotFound, "passkeys are disabled"),
            e @ AuthError::PasskeyChallengeNotFound => ApiError::invalid(format!("challenge: {e}")),
            e @ AuthError::PasskeyNotFound => ApiError::new(ErrCode::NotFound, e.to_string()),
            e @ AuthError::PasskeyNotOwned => {
                ApiError::new(ErrCode::PermissionDenied, e.to_string())
            }
            e @ AuthError::PasskeyUnknownCredential => ApiError::unauthenticated(e.to_string()),
            e @ AuthError::PasskeyRegistrationFailed(_) => ApiError::invalid(e.to_string()),
            e @ AuthError::PasskeyAuthenticationFailed(_) => {
                ApiError::unauthenticated(e.to_string())
            }
            AuthError::Busy => ApiError::new(
                ErrCode::Unavailable,
                "too many password operations in progress, retry shortly",
            ),
            // The outage itself is logged once, when the store marks the
            // database down; not once per request.
            AuthError::Store(warden_core::StoreError::Unavailable) => {
                ApiError::new(ErrCode::Unavailable, "the database is unavailable")
            }
            // Detail goes to the log, never to the client.
            AuthError::Store(e) => {
                tracing::error!(error = %e, "storage error");
                ApiError::new(ErrCode::Unavailable, "the database is unavailable")
            }
            AuthError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry = self.retry_after;
        let mut r = (self.code.status(), Json(self)).into_response();
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        r
    }
}
