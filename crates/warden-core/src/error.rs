use crate::admin::{AdminAction, AdminRefusal};
use crate::store::StoreError;

/// Everything that can go wrong in the domain. The HTTP layer maps each
/// variant to a status code and a public message; `Store` and `Internal`
/// carry detail that must never reach a client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Bad input, naming the field at fault.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("password: must be at least {min} characters")]
    PasswordTooShort { min: usize },
    #[error("password: must be at most {max} characters")]
    PasswordTooLong { max: usize },
    /// The new password is allowed by length but refused.
    #[error("password: {reason}")]
    PasswordRejected { reason: PasswordRejection },
    /// Too many failed sign-ins for this account recently: sign-in is
    /// paused for it (other than from a device it signed in on before).
    #[error(
        "too many failed sign-in attempts for this account; try again later or reset your password"
    )]
    AccountLocked { retry_after: std::time::Duration },
    /// Wrong email or password; deliberately says which of the two is wrong.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("a user with this email already exists")]
    EmailTaken,
    /// Unknown, revoked or malformed session token.
    #[error("invalid session")]
    InvalidSession,
    #[error("session expired")]
    SessionExpired,
    #[error("session not found")]
    SessionNotFound,
    #[error("user not found")]
    UserNotFound,
    /// A password given to confirm a sensitive operation is wrong.
    #[error("invalid password")]
    InvalidPassword,
    /// The user has no password (signs in another way).
    #[error("the user has no password")]
    CredentialAccountNotFound,
    /// Sign-in refused until the email is verified (a new link was sent).
    #[error("email not verified")]
    EmailNotVerified,
    /// A reset or verification token that is unknown, used, expired or
    /// meant for another flow (deliberately not told apart).
    #[error("invalid or expired token")]
    InvalidToken,
    /// A wrong (or already used) two-factor code.
    #[error("invalid two-factor code")]
    InvalidTwoFactorCode,
    /// A wrong (or already used) backup code.
    #[error("invalid backup code")]
    InvalidBackupCode,
    /// Two-factor is on already: disable it before setting up another
    /// authenticator.
    #[error("two-factor authentication is already enabled; disable it first to set up a new authenticator")]
    TwoFactorAlreadyEnabled,
    /// The two-factor challenge is unknown, used or expired: sign in again.
    #[error("invalid or expired two-factor challenge; sign in again")]
    InvalidTwoFactorChallenge,
    /// Too many wrong codes for this challenge: it is ended.
    #[error("too many wrong codes; sign in again")]
    TwoFactorTooManyAttempts,
    /// Too many consecutive wrong codes for this account.
    #[error("two-factor is temporarily locked after too many wrong codes; try again later")]
    TwoFactorLocked { retry_after: std::time::Duration },
    /// The user has not set up two-factor.
    #[error("two-factor authentication is not set up")]
    TwoFactorNotEnabled,
    /// A social identity's email belongs to a user, but linking is not
    /// allowed (emails not verified on both sides).
    #[error("this email belongs to an account that cannot be linked automatically; sign in and link the provider from the account")]
    AccountNotLinked,
    /// The social identity is linked to another user.
    #[error("this account is already linked to another user")]
    AccountAlreadyLinked,
    /// Explicit linking of an identity whose email is not the user's.
    #[error("the provider's email address is not this account's")]
    LinkEmailMismatch,
    /// A new user from a provider that does not say the email is verified.
    #[error("the provider did not verify this email address")]
    SocialEmailNotVerified,
    /// The provider gave no (usable) email for a new user.
    #[error("the provider did not give an email address")]
    SocialEmailMissing,
    /// The feature (magic links, email codes) is off: its routes answer
    /// 404, as BetterAuth's without the plugin.
    #[error("not found")]
    FeatureDisabled,
    /// An emailed one-time code that is wrong, used or never sent.
    #[error("invalid one-time code")]
    InvalidOtp,
    /// An emailed one-time code past its lifetime.
    #[error("the one-time code has expired; ask for a new one")]
    OtpExpired,
    /// Too many wrong guesses: the code is dead.
    #[error("too many wrong guesses; ask for a new code")]
    OtpTooManyAttempts,
    /// No live two-factor code was mailed for this sign-in (or it expired).
    #[error("the two-factor code has expired or was not sent; ask for a new one")]
    TwoFactorOtpExpired,
    /// Email change by code is off (`email_otp.change_email`).
    #[error("email change by one-time code is disabled")]
    EmailChangeByCodeDisabled,
    /// Too many two-factor codes mailed to this user recently
    /// (`email_otp.per_email_max` per `per_email_window`).
    #[error("too many codes sent recently; wait a minute and ask again")]
    TwoFactorOtpTooSoon,
    /// Two-factor by email is off (`two_factor.email_otp`).
    #[error("two-factor codes by email are not enabled")]
    TwoFactorOtpNotConfigured,
    /// New users cannot sign up this way.
    #[error("sign-up is disabled")]
    SignUpDisabled,
    /// No such linked account.
    #[error("account not found")]
    AccountNotFound,
    /// Unlinking would leave the user no way to sign in.
    #[error("this is the last way to sign in to the account; add another before removing it")]
    LastSignInMethod,
    /// The operation needs a session created recently (or the password).
    #[error("session is not fresh")]
    SessionNotFresh,
    /// The user is banned (BetterAuth's `BANNED_USER`).
    #[error("{message}")]
    Banned { message: String },
    /// The caller lacks the permission an admin operation needs.
    #[error("not allowed: {0:?}")]
    NotAllowed(AdminAction),
    /// An admin operation refused for what it would do.
    #[error("{0}")]
    AdminRefused(AdminRefusal),
    /// The user an admin operation names does not exist.
    #[error("user not found")]
    NoSuchUser,
    /// Passkeys are turned off (`passkey.enabled = false`).
    #[error("passkeys are disabled")]
    PasskeysDisabled,
    /// No live passkey ceremony: no challenge cookie, or its challenge was
    /// used (single use) or expired.
    #[error("passkey challenge not found; it expired or was used already: request new options")]
    PasskeyChallengeNotFound,
    /// No passkey has this id.
    #[error("passkey not found")]
    PasskeyNotFound,
    /// The passkey (or the ceremony) belongs to another user.
    #[error("this passkey belongs to another user")]
    PasskeyNotOwned,
    /// A sign-in with a credential no user has registered.
    #[error("unknown passkey")]
    PasskeyUnknownCredential,
    /// The registration response did not verify.
    #[error("passkey registration failed: {0}")]
    PasskeyRegistrationFailed(&'static str),
    /// The authentication response did not verify.
    #[error("passkey authentication failed: {0}")]
    PasskeyAuthenticationFailed(&'static str),
    /// The password hashing queue is full: shed load instead of queueing forever.
    #[error("too many password operations in progress, retry shortly")]
    Busy,
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a new password was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRejection {
    Common,
    SameAsEmail,
}

impl std::fmt::Display for PasswordRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PasswordRejection::Common => {
                "this password is one of the most common passwords and is easy to guess; choose another"
            }
            PasswordRejection::SameAsEmail => {
                "the password must not be your email address or its part before the @"
            }
        })
    }
}

impl AuthError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AuthError::Invalid {
            field,
            message: message.into(),
        }
    }
}
