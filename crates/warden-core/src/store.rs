use async_trait::async_trait;

use crate::model::{Credential, Session, Timestamp, User, UserUpdate};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated (for users: the email is taken).
    #[error("unique constraint violated")]
    Conflict,
    /// The database could not be reached or returned an error. The message is
    /// for logs only.
    #[error("{0}")]
    Backend(String),
}

/// Persistence for Warden. One implementation per database lives in
/// `warden-store`; only those know SQL.
///
/// Tokens reach the store only as hashes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Is the database reachable?
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts a user and its credential account atomically.
    /// Returns [`StoreError::Conflict`] if the email is taken.
    async fn insert_user_with_password(
        &self,
        user: &User,
        account_id: &str,
        password_hash: &str,
    ) -> Result<(), StoreError>;

    /// The user with this (normalised) email and its credential account, if any.
    async fn find_user_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(User, Option<Credential>)>, StoreError>;

    /// Replaces the password hash of a credential account (used to upgrade
    /// legacy hashes transparently).
    async fn set_password_hash(
        &self,
        account_id: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    async fn insert_session(&self, session: &Session) -> Result<(), StoreError>;

    /// The session with this token hash and its user: the hot path.
    async fn find_session(&self, token_hash: &str) -> Result<Option<(Session, User)>, StoreError>;

    /// Sliding refresh: moves a session's expiry.
    async fn extend_session(
        &self,
        session_id: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deletes the session with this token hash; true if one existed.
    async fn delete_session_by_token(&self, token_hash: &str) -> Result<bool, StoreError>;

    /// Deletes one of a user's sessions by id, returning its token hash, or
    /// `None` when the user has no such session.
    async fn delete_user_session(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// The user's sessions that expire after `now`, newest first.
    async fn list_user_sessions(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>, StoreError>;

    /// Applies `update`; `None` if the user does not exist.
    async fn update_user(
        &self,
        user_id: &str,
        update: &UserUpdate,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError>;

    /// Deletes sessions that expired at or before `now`; returns how many.
    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError>;
}
