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
    /// Sign-in needs a second factor (BetterAuth's `twoFactorEnabled`).
    pub two_factor_enabled: bool,
    /// Roles, comma-separated (BetterAuth's admin plugin); `None`: the
    /// configured default role.
    pub role: Option<String>,
    /// Banned users cannot sign in (until `ban_expires`, if set).
    pub banned: bool,
    pub ban_reason: Option<String>,
    pub ban_expires: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl User {
    /// Is the user banned at `now` (a ban whose expiry has passed is not)?
    pub fn is_banned(&self, now: Timestamp) -> bool {
        self.banned && self.ban_expires.is_none_or(|end| end > now)
    }
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
    /// The admin who started this session to act as the user
    /// (impersonation), if one did.
    pub impersonated_by: Option<String>,
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
    /// A new (normalised) email; [`crate::StoreError::Conflict`] if taken.
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    /// `Some(None)` clears the role (the default role applies).
    pub role: Option<Option<String>>,
    pub banned: Option<bool>,
    pub ban_reason: Option<Option<String>>,
    pub ban_expires: Option<Option<Timestamp>>,
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
    /// The token of a trusted-device cookie (from a signed cookie): lets a
    /// user with two-factor on skip the second step on this device.
    pub trusted_device: Option<String>,
}

/// A user's two-factor record (BetterAuth's `twoFactor` row).
#[derive(Clone)]
pub struct TwoFactorRecord {
    pub id: String,
    pub user_id: String,
    /// The TOTP secret, encrypted.
    pub secret: String,
    /// The backup codes, hashed (or BetterAuth's encrypted list).
    pub backup_codes: String,
    /// Confirmed with a first code.
    pub verified: bool,
    /// Consecutive failed codes.
    pub failed_count: i64,
    /// Two-factor is refused until then after too many failures.
    pub locked_until: Option<Timestamp>,
    /// The last TOTP time step accepted: older or equal steps are replays.
    pub last_used_step: Option<i64>,
}

impl std::fmt::Debug for TwoFactorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoFactorRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("verified", &self.verified)
            .field("failed_count", &self.failed_count)
            .field("locked_until", &self.locked_until)
            .finish_non_exhaustive()
    }
}

/// A row of BetterAuth's `account` table: a way to sign in (the password's
/// `credential` account, or a social provider's identity).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedAccount {
    /// The row id.
    pub id: String,
    pub user_id: String,
    /// `credential`, or the provider's configured name (`google`, ...).
    pub provider_id: String,
    /// The provider's id for the user (`sub`); the user id for `credential`.
    pub account_id: String,
    pub issuer: Option<String>,
    pub scope: Option<String>,
    /// A credential account that holds a password (one that can sign in).
    pub has_password: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A social account to store. The tokens are already encrypted.
#[derive(Clone)]
pub struct NewAccount {
    pub id: String,
    pub user_id: String,
    pub provider_id: String,
    pub account_id: String,
    pub issuer: String,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub access_token_expires_at: Option<Timestamp>,
    pub scope: Option<String>,
    pub now: Timestamp,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("provider_id", &self.provider_id)
            .finish_non_exhaustive()
    }
}
