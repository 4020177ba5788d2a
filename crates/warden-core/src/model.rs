use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::token::TokenHash;

pub type Timestamp = DateTime<Utc>;

/// The current time, truncated to milliseconds: every backend stores at least
/// millisecond precision, so what we return is exactly what is stored.
pub fn now() -> Timestamp {
    let t = Utc::now();
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    /// Always stored trimmed and lower-cased.
    pub email: String,
    pub email_verified: bool,
    pub image: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A session row. The token itself is never stored, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub token_hash: TokenHash,
    pub user_id: String,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// The `credential` account of a user (BetterAuth's `account` row with
/// `providerId = 'credential'`).
#[derive(Clone, Debug)]
pub struct Credential {
    pub account_id: String,
    /// argon2id PHC string, or BetterAuth's `<salt>:<key>` scrypt format.
    pub password_hash: Option<String>,
}

/// Changes to a user's profile. `None` leaves a field as it is;
/// `image: Some(None)` clears the image.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub image: Option<Option<String>>,
}

/// What the transport knows about the caller, recorded on new sessions.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The user this device signed in as before (from a signed device
    /// cookie): such a device may sign in while the account is locked after
    /// failed attempts from elsewhere.
    pub device_user_id: Option<String>,
}
