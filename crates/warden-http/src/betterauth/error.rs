//! BetterAuth's error wire format: `{"code": "INVALID_EMAIL_OR_PASSWORD",
//! "message": "Invalid email or password"}`, with BetterAuth's codes and
//! statuses.

use std::borrow::Cow;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use warden_core::AuthError;

/// An error as BetterAuth's client expects it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BaError {
    #[serde(skip)]
    pub status: StatusCode,
    /// A stable, upper-case code, e.g. `INVALID_EMAIL_OR_PASSWORD`.
    #[schema(value_type = String)]
    pub code: Cow<'static, str>,
    #[schema(value_type = String)]
    pub message: Cow<'static, str>,
    /// Seconds for a `Retry-After` header (429 responses).
    #[serde(skip)]
    #[schema(ignore)]
    pub retry_after: Option<u64>,
}

impl BaError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        BaError {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn bad_request(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn forbidden(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    /// `400 VALIDATION_ERROR` with BetterAuth's `[body.field] problem` message.
    pub fn validation(message: impl Into<Cow<'static, str>>) -> Self {
        Self::bad_request("VALIDATION_ERROR", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "Unauthorized")
    }

    pub fn not_found_code(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Not Found")
    }

    pub fn invalid_callback_url() -> Self {
        Self::forbidden("INVALID_CALLBACK_URL", "Invalid callbackURL")
    }
}

impl From<AuthError> for BaError {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        match e {
            AuthError::Invalid { field: "email", .. } => {
                BaError::bad_request("INVALID_EMAIL", "Invalid email")
            }
            AuthError::Invalid { field, message } => {
                BaError::validation(format!("[body.{field}] {message}"))
            }
            AuthError::PasswordTooShort { .. } => {
                BaError::bad_request("PASSWORD_TOO_SHORT", "Password too short")
            }
            AuthError::PasswordTooLong { .. } => {
                BaError::bad_request("PASSWORD_TOO_LONG", "Password too long")
            }
            AuthError::PasswordRejected { reason } => BaError::bad_request(
                match reason {
                    warden_core::PasswordRejection::Common => "PASSWORD_COMPROMISED",
                    warden_core::PasswordRejection::SameAsEmail => "PASSWORD_SAME_AS_EMAIL",
                },
                {
                    let r = reason.to_string();
                    let mut c = r.chars();
                    match c.next() {
                        Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                        None => r,
                    }
                },
            ),
            AuthError::AccountLocked { retry_after } => BaError::new(
                S::TOO_MANY_REQUESTS,
                "ACCOUNT_TEMPORARILY_LOCKED",
                "Too many failed sign-in attempts for this account. Try again later or reset your password.",
            )
            .retry_after(retry_after.as_secs().max(1)),
            AuthError::InvalidCredentials => BaError::new(
                S::UNAUTHORIZED,
                "INVALID_EMAIL_OR_PASSWORD",
                "Invalid email or password",
            ),
            AuthError::InvalidTwoFactorCode => {
                BaError::new(S::UNAUTHORIZED, "INVALID_CODE", "Invalid code")
            }
            AuthError::InvalidBackupCode => BaError::new(
                S::UNAUTHORIZED,
                "INVALID_BACKUP_CODE",
                "Invalid backup code",
            ),
            AuthError::TwoFactorAlreadyEnabled => {
                BaError::bad_request("TOTP_ALREADY_ENABLED", "TOTP already enabled")
            }
            AuthError::InvalidTwoFactorChallenge => BaError::new(
                S::UNAUTHORIZED,
                "INVALID_TWO_FACTOR_COOKIE",
                "Invalid two factor cookie",
            ),
            AuthError::TwoFactorTooManyAttempts => BaError::new(
                S::BAD_REQUEST,
                "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE",
                "Too many attempts. Please sign in again.",
            ),
            AuthError::TwoFactorLocked { retry_after } => BaError::new(
                S::TOO_MANY_REQUESTS,
                "ACCOUNT_TEMPORARILY_LOCKED",
                "Too many failed two-factor attempts. Try again later.",
            )
            .retry_after(retry_after.as_secs().max(1)),
            AuthError::AccountNotLinked => {
                BaError::bad_request("ACCOUNT_NOT_LINKED", "Account not linked")
            }
            AuthError::AccountAlreadyLinked => BaError::bad_request(
                "SOCIAL_ACCOUNT_ALREADY_LINKED",
                "Social account already linked",
            ),
            AuthError::SocialEmailNotVerified => {
                BaError::bad_request("EMAIL_NOT_VERIFIED", "Email not verified")
            }
            AuthError::LinkEmailMismatch => {
                BaError::bad_request("EMAIL_DOES_NOT_MATCH", "Email does not match")
            }
            AuthError::SocialEmailMissing => {
                BaError::bad_request("EMAIL_NOT_FOUND", "Email not found")
            }
            AuthError::SignUpDisabled => BaError::forbidden("SIGNUP_DISABLED", "Sign up disabled"),
            // As BetterAuth without the plugin: no such route.
            AuthError::FeatureDisabled => BaError::not_found(),
            AuthError::InvalidOtp => BaError::bad_request("INVALID_OTP", "Invalid OTP"),
            AuthError::OtpExpired => BaError::bad_request("OTP_EXPIRED", "OTP expired"),
            AuthError::OtpTooManyAttempts => {
                BaError::forbidden("TOO_MANY_ATTEMPTS", "Too many attempts")
            }
            // BetterAuth answers 400 with this message and no code.
            AuthError::EmailChangeByCodeDisabled => BaError::bad_request(
                "CHANGE_EMAIL_DISABLED",
                "Change email with OTP is disabled",
            ),
            AuthError::TwoFactorOtpTooSoon => BaError::new(
                S::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                "Too many codes sent recently. Wait a minute and ask again.",
            ),
            AuthError::TwoFactorOtpExpired => {
                BaError::bad_request("OTP_HAS_EXPIRED", "OTP has expired")
            }
            AuthError::TwoFactorOtpNotConfigured => {
                BaError::bad_request("OTP_NOT_CONFIGURED", "OTP is not available")
            }
            AuthError::AccountNotFound => {
                BaError::bad_request("ACCOUNT_NOT_FOUND", "Account not found")
            }
            AuthError::LastSignInMethod => BaError::bad_request(
                "FAILED_TO_UNLINK_LAST_ACCOUNT",
                "You cannot unlink your last account",
            ),
            AuthError::TwoFactorNotEnabled => {
                BaError::bad_request("TOTP_NOT_ENABLED", "TOTP not enabled")
            }
            AuthError::EmailTaken => BaError::new(
                S::UNPROCESSABLE_ENTITY,
                "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
                "User already exists. Use another email.",
            ),
            AuthError::InvalidSession | AuthError::SessionExpired | AuthError::UserNotFound => {
                BaError::unauthorized()
            }
            AuthError::SessionNotFound => {
                BaError::new(S::NOT_FOUND, "SESSION_NOT_FOUND", "Session not found")
            }
            AuthError::InvalidPassword => {
                BaError::bad_request("INVALID_PASSWORD", "Invalid password")
            }
            AuthError::InvalidToken => BaError::bad_request("INVALID_TOKEN", "Invalid token"),
            AuthError::EmailNotVerified => {
                BaError::forbidden("EMAIL_NOT_VERIFIED", "Email not verified")
            }
            AuthError::CredentialAccountNotFound => BaError::bad_request(
                "CREDENTIAL_ACCOUNT_NOT_FOUND",
                "Credential account not found",
            ),
            AuthError::SessionNotFresh => {
                BaError::forbidden("SESSION_NOT_FRESH", "Session is not fresh")
            }
            AuthError::Banned { message } => BaError::forbidden("BANNED_USER", message),
            AuthError::NotAllowed(action) => {
                use warden_core::AdminAction as A;
                let (code, message) = match action {
                    A::ListUsers | A::ReadAudit => ("YOU_ARE_NOT_ALLOWED_TO_LIST_USERS", "You are not allowed to list users"),
                    A::GetUser => ("YOU_ARE_NOT_ALLOWED_TO_GET_USER", "You are not allowed to get user"),
                    A::CreateUser => ("YOU_ARE_NOT_ALLOWED_TO_CREATE_USERS", "You are not allowed to create users"),
                    A::UpdateUser => ("YOU_ARE_NOT_ALLOWED_TO_UPDATE_USERS", "You are not allowed to update users"),
                    A::SetRole => ("YOU_ARE_NOT_ALLOWED_TO_CHANGE_USERS_ROLE", "You are not allowed to change users role"),
                    A::Ban => ("YOU_ARE_NOT_ALLOWED_TO_BAN_USERS", "You are not allowed to ban users"),
                    A::Impersonate => ("YOU_ARE_NOT_ALLOWED_TO_IMPERSONATE_USERS", "You are not allowed to impersonate users"),
                    A::ListSessions => ("YOU_ARE_NOT_ALLOWED_TO_LIST_USERS_SESSIONS", "You are not allowed to list users sessions"),
                    A::RevokeSessions => ("YOU_ARE_NOT_ALLOWED_TO_REVOKE_USERS_SESSIONS", "You are not allowed to revoke users sessions"),
                    A::Delete => ("YOU_ARE_NOT_ALLOWED_TO_DELETE_USERS", "You are not allowed to delete users"),
                    A::SetPassword | A::ResetTwoFactor => ("YOU_ARE_NOT_ALLOWED_TO_SET_USERS_PASSWORD", "You are not allowed to set users password"),
                    A::SetEmail => ("YOU_ARE_NOT_ALLOWED_TO_SET_USERS_EMAIL", "You are not allowed to update users email"),
                };
                BaError::forbidden(code, message)
            }
            AuthError::AdminRefused(r) => {
                use warden_core::AdminRefusal as R;
                match r {
                    R::CannotBanYourself => BaError::bad_request("YOU_CANNOT_BAN_YOURSELF", "You cannot ban yourself"),
                    R::CannotRemoveYourself => BaError::bad_request("YOU_CANNOT_REMOVE_YOURSELF", "You cannot remove yourself"),
                    R::CannotImpersonateAdmins => BaError::forbidden("YOU_CANNOT_IMPERSONATE_ADMINS", "You cannot impersonate admins"),
                    R::UnknownRole => BaError::bad_request("YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE", "You are not allowed to set a non-existent role value"),
                    R::NoDataToUpdate => BaError::bad_request("NO_DATA_TO_UPDATE", "No data to update"),
                    // Warden's own: stricter than BetterAuth.
                    R::WhileImpersonating => BaError::forbidden("NOT_ALLOWED_WHILE_IMPERSONATING", "Not allowed while impersonating a user. Stop impersonating first."),
                    R::NotImpersonating => BaError::bad_request("BAD_REQUEST", "You are not impersonating anyone"),
                }
            }
            AuthError::NoSuchUser => BaError::not_found_code("USER_NOT_FOUND", "User not found"),
            // The passkey plugin's codes (`PASSKEY_ERROR_CODES`).
            AuthError::PasskeysDisabled => BaError::not_found(),
            AuthError::PasskeyChallengeNotFound => {
                BaError::bad_request("CHALLENGE_NOT_FOUND", "Challenge not found")
            }
            AuthError::PasskeyNotFound => {
                BaError::not_found_code("PASSKEY_NOT_FOUND", "Passkey not found")
            }
            AuthError::PasskeyNotOwned => BaError::new(
                S::UNAUTHORIZED,
                "YOU_ARE_NOT_ALLOWED_TO_REGISTER_THIS_PASSKEY",
                "You are not allowed to register this passkey",
            ),
            AuthError::PasskeyUnknownCredential => {
                BaError::new(S::UNAUTHORIZED, "PASSKEY_NOT_FOUND", "Passkey not found")
            }
            // BetterAuth answers 500 here; a refused response is the
            // client's problem, so 400, naming why.
            AuthError::PasskeyRegistrationFailed(why) => BaError::bad_request(
                "FAILED_TO_VERIFY_REGISTRATION",
                format!("Failed to verify registration: {why}"),
            ),
            // As BetterAuth: 401 for a signature that does not verify, 400
            // for a response refused before that.
            AuthError::PasskeyAuthenticationFailed(why) => BaError::new(
                if why == warden_core::passkey::BAD_SIGNATURE {
                    S::UNAUTHORIZED
                } else {
                    S::BAD_REQUEST
                },
                "AUTHENTICATION_FAILED",
                format!("Authentication failed: {why}"),
            ),
            AuthError::Busy => BaError::new(
                S::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "Too many password operations in progress, retry shortly",
            ),
            AuthError::Store(warden_core::StoreError::Unavailable) => BaError::new(
                S::SERVICE_UNAVAILABLE,
                "SERVICE_UNAVAILABLE",
                "The database is unavailable",
            ),
            // Detail goes to the log, never to the client.
            AuthError::Store(e) => {
                tracing::error!(error = %e, "storage error");
                BaError::new(
                    S::SERVICE_UNAVAILABLE,
                    "SERVICE_UNAVAILABLE",
                    "The database is unavailable",
                )
            }
            AuthError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                BaError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "INTERNAL_SERVER_ERROR",
                    "Internal Server Error",
                )
            }
        }
    }
}

impl IntoResponse for BaError {
    fn into_response(self) -> Response {
        let retry = self.retry_after;
        let mut r = (self.status, Json(self)).into_response();
        if let Some(secs) = retry {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        r
    }
}
