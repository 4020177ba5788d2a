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
    /// The operation needs a session created recently (or the password).
    #[error("session is not fresh")]
    SessionNotFresh,
    /// The password hashing queue is full: shed load instead of queueing forever.
    #[error("too many password operations in progress, retry shortly")]
    Busy,
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AuthError::Invalid {
            field,
            message: message.into(),
        }
    }
}
