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
