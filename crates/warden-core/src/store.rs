use async_trait::async_trait;

use crate::admin::{AuditEntry, UserQuery};
use crate::model::{
    Credential, LinkedAccount, NewAccount, Session, Timestamp, TwoFactorRecord, User, UserUpdate,
};
use crate::passkey::PasskeyRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint was violated (for users: the email is taken).
    #[error("unique constraint violated")]
    Conflict,
    /// The database returned an error. The message is for logs only.
    #[error("{0}")]
    Backend(String),
    /// The database cannot be reached right now: the operation was not
    /// attempted, or its connection failed. Nothing was acknowledged.
    #[error("the database is unreachable")]
    Unavailable,
}

/// Which of a user's sessions an operation applies to.
#[derive(Clone, Copy, Debug)]
pub enum SessionFilter<'a> {
    /// The session with this id.
    Id(&'a str),
    /// The session with this token hash.
    TokenHash(&'a str),
    /// The session with this id or this token hash (BetterAuth's
    /// `revoke-session {token}`, where the client may hold either).
    IdOrTokenHash { id: &'a str, token_hash: &'a str },
    /// Every session of the user.
    All,
    /// Every session of the user except the one with this id.
    AllExcept(&'a str),
}

/// Persistence for Warden. One implementation per database lives in
/// `warden-store`; only those know SQL.
///
/// Tokens reach the store only as hashes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Is the database reachable?
    async fn ping(&self) -> Result<(), StoreError>;

    /// The backend's own metrics (statement durations, connection waits),
    /// for [`crate::Warden`] to register; `None` for a store without them.
    fn db_metrics(&self) -> Option<std::sync::Arc<warden_telemetry::metrics::DbMetrics>> {
        None
    }

    /// The connection pool right now (read at each metrics scrape).
    fn pool_status(&self) -> Option<warden_telemetry::metrics::PoolStatus> {
        None
    }

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

    /// Replaces the stored token of a session (a BetterAuth session's plain
    /// token by its hash); false if the session no longer holds `old`.
    async fn replace_session_token(
        &self,
        session_id: &str,
        old: &str,
        new_hash: &str,
    ) -> Result<bool, StoreError>;

    /// Sliding refresh: moves a session's expiry.
    async fn extend_session(
        &self,
        session_id: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deletes the session with this token hash; true if one existed.
    async fn delete_session_by_token(&self, token_hash: &str) -> Result<bool, StoreError>;

    /// Deletes the user's sessions that `which` selects, returning their
    /// token hashes (for cache invalidation). Sessions of other users are
    /// never touched.
    async fn delete_sessions(
        &self,
        user_id: &str,
        which: SessionFilter<'_>,
    ) -> Result<Vec<String>, StoreError>;

    /// The credential (password) account of a user, if it has one.
    async fn find_credential(&self, user_id: &str) -> Result<Option<Credential>, StoreError>;

    /// In one transaction: stores a new password hash, deletes the sessions
    /// `revoke` selects and inserts `new_session`. Returns the deleted
    /// sessions' token hashes.
    async fn change_password(
        &self,
        account_id: &str,
        password_hash: &str,
        revoke: SessionFilter<'_>,
        new_session: &Session,
    ) -> Result<Vec<String>, StoreError>;

    /// Stores a single-use verification value (`identifier` holds a token
    /// hash, never a token).
    async fn insert_verification(
        &self,
        identifier: &str,
        value: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Deletes the verification row with this identifier and returns its
    /// value and expiry, atomically: of two concurrent calls, at most one
    /// gets it.
    async fn take_verification(
        &self,
        identifier: &str,
    ) -> Result<Option<(String, Timestamp)>, StoreError>;

    /// The value and expiry of a verification row, without consuming it.
    async fn peek_verification(
        &self,
        identifier: &str,
    ) -> Result<Option<(String, Timestamp)>, StoreError>;

    /// Sets a user's password: updates the credential account, or creates
    /// one (`account_id`) if the user has none.
    async fn set_user_password(
        &self,
        user_id: &str,
        account_id: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Marks a user's email verified; `None` if there is no such user.
    async fn set_email_verified(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError>;

    /// Moves a user to a new (verified) email. [`StoreError::Conflict`] if
    /// another user has it.
    async fn set_email(
        &self,
        user_id: &str,
        email: &str,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError>;

    /// The user with this id.
    async fn find_user(&self, user_id: &str) -> Result<Option<User>, StoreError>;

    /// Deletes a user with its accounts and sessions; false if there was none.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError>;

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

    /// The user's two-factor record, if two-factor was ever set up.
    async fn find_two_factor(&self, user_id: &str) -> Result<Option<TwoFactorRecord>, StoreError>;

    /// Replaces the user's two-factor record (a new secret and codes).
    async fn replace_two_factor(&self, record: &TwoFactorRecord) -> Result<(), StoreError>;

    /// Marks the record verified and turns two-factor on for the user.
    async fn enable_two_factor(&self, user_id: &str, now: Timestamp) -> Result<(), StoreError>;

    /// Turns two-factor off: deletes the record and every trusted device
    /// (verification rows `trust-device:*` holding the user id), atomically.
    async fn disable_two_factor(&self, user_id: &str, now: Timestamp) -> Result<(), StoreError>;

    /// Claims an unverified account for whoever proved its email: if the
    /// user's email is still unverified, in one transaction marks it
    /// verified, turns two-factor off, and deletes its accounts (password
    /// included), two-factor record, trusted devices and sessions. Returns
    /// the deleted sessions' token hashes; `None` if the email was verified
    /// already (nothing changed).
    async fn claim_unverified_user(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Option<Vec<String>>, StoreError>;

    /// Records the use of TOTP step `step` if it is later than the last one
    /// used (false: a replay), and clears the failure count. Atomic.
    async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError>;

    /// Replaces the stored backup codes if they are still `old` (false:
    /// changed concurrently), and clears the failure count.
    async fn swap_backup_codes(
        &self,
        user_id: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError>;

    /// Counts a failed code. When the count reaches `lock_after`, locks
    /// two-factor until `lock_until` and starts counting again. Returns the
    /// lock's end when this failure set it.
    async fn count_two_factor_failure(
        &self,
        user_id: &str,
        lock_after: i64,
        lock_until: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError>;

    /// The account with this provider and provider user id, and its user.
    async fn find_account(
        &self,
        provider_id: &str,
        account_id: &str,
    ) -> Result<Option<(LinkedAccount, User)>, StoreError>;

    /// Inserts a user and a social account atomically. [`StoreError::Conflict`]
    /// if the email is taken or the account exists.
    async fn insert_user_with_account(
        &self,
        user: &User,
        account: &NewAccount,
    ) -> Result<(), StoreError>;

    /// Links a social account to an existing user. [`StoreError::Conflict`]
    /// if the (provider, account id) pair is linked already.
    async fn insert_account(&self, account: &NewAccount) -> Result<(), StoreError>;

    /// Stores fresh provider tokens on the account row `account.id`.
    async fn update_account_tokens(&self, account: &NewAccount) -> Result<(), StoreError>;

    /// The user's accounts, oldest first.
    async fn list_accounts(&self, user_id: &str) -> Result<Vec<LinkedAccount>, StoreError>;

    /// Deletes one of the user's accounts; false if there was none.
    async fn delete_account(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Inserts a user without any account (created by an admin, to sign
    /// in another way). [`StoreError::Conflict`] if the email is taken.
    async fn insert_user(&self, user: &User) -> Result<(), StoreError>;

    /// A page of users matching every condition of `query`, and how many
    /// match in all.
    async fn list_users(&self, query: &UserQuery) -> Result<(Vec<User>, u64), StoreError>;

    /// Deletes the session with this id or this token hash, whoever's it
    /// is; returns its user id and token hash.
    async fn delete_session_by_handle(
        &self,
        id: &str,
        token_hash: &str,
    ) -> Result<Option<(String, String)>, StoreError>;

    /// Appends a row to the audit trail.
    async fn insert_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Audit rows (of one target, if given), newest first, and how many
    /// there are.
    async fn list_audit(
        &self,
        target_id: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<AuditEntry>, u64), StoreError>;

    /// Stores a new passkey (BetterAuth's `passkey` row).
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> Result<(), StoreError>;

    /// The user's passkeys, oldest first.
    async fn list_passkeys(&self, user_id: &str) -> Result<Vec<PasskeyRecord>, StoreError>;

    /// The passkey with this row id.
    async fn find_passkey(&self, id: &str) -> Result<Option<PasskeyRecord>, StoreError>;

    /// The passkey with this credential id (base64url).
    async fn find_passkey_by_credential_id(
        &self,
        credential_id: &str,
    ) -> Result<Option<PasskeyRecord>, StoreError>;

    /// Moves a passkey's signature counter from `old` to `new`; false if
    /// it no longer holds `old` (a concurrent sign-in moved it). Atomic.
    async fn update_passkey_counter(
        &self,
        id: &str,
        old: i64,
        new: i64,
    ) -> Result<bool, StoreError>;

    /// Renames one of the user's passkeys; `None` if the user has none
    /// with this id.
    async fn rename_passkey(
        &self,
        user_id: &str,
        id: &str,
        name: &str,
    ) -> Result<Option<PasskeyRecord>, StoreError>;

    /// Deletes one of the user's passkeys; false if there was none.
    async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool, StoreError>;

    /// Tells every process sharing the database that this user's cached
    /// sessions are stale.
    async fn publish_revocation(&self, user_id: &str, at: Timestamp) -> Result<(), StoreError>;

    /// Revocations published at or after `since`: (sequence, user id).
    async fn revocations_since(&self, since: Timestamp) -> Result<Vec<(i64, String)>, StoreError>;

    /// Deletes revocations published before `before`.
    async fn purge_revocations(&self, before: Timestamp) -> Result<(), StoreError>;
}
