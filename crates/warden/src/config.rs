//! Configuration: built-in defaults, then `warden.toml` (or `--config FILE`
//! / `WARDEN_CONFIG`), then `WARDEN_*` environment variables (nested keys
//! with `__`: `WARDEN_SESSION__EXPIRES_IN=2d`) and `DATABASE_URL`, then
//! command-line flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite:PATH` (created if missing) or `postgres://user@host/db`.
    pub database_url: String,
    /// The server's public URL. Its origin is always trusted; https makes
    /// cookies `Secure` with the `__Secure-` prefix.
    pub base_url: String,
    /// More origins (front ends) trusted to send cookie-authenticated
    /// requests and to be redirect targets: exact, or with one `*`
    /// (`https://*.example.com`). The CORS credentialed origins are trusted too.
    pub trusted_origins: Vec<String>,
    /// `development` or `production` (also `WARDEN_ENV`).
    pub env: Environment,
    /// Where `warden secret set` keeps development secrets.
    pub secrets_file: PathBuf,
    pub session: SessionConfig,
    pub password: PasswordConfig,
    pub cors: CorsConfig,
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub betterauth: BetterAuthConfig,
    pub user: UserConfig,
    pub rate_limit: RateLimitConfig,
    pub lockout: LockoutConfig,
    pub mail: MailConfig,
    pub password_reset: PasswordResetConfig,
    pub email_verification: EmailVerificationConfig,
    pub two_factor: TwoFactorConfig,
    pub passkey: PasskeyConfig,
    pub magic_link: MagicLinkConfig,
    pub email_otp: EmailOtpConfig,
    pub admin: AdminConfig,
    pub telemetry: TelemetryConfig,
    pub dashboard: DashboardConfig,
    pub cluster: ClusterConfig,
    /// Social sign-in providers, by name: `google`, `github` and `discord`
    /// are built in; any other name is an OpenID Connect provider.
    pub social: BTreeMap<String, SocialProviderConfig>,
}

/// `[cluster]`: running several instances on one database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// How many instances share the database. Above 1, start-up refuses
    /// what only works in one process: SQLite, memory-only rate limits and
    /// lockout (in production), and a database that cannot tell instances
    /// about each other's changes without `invalidation = "redis"`.
    pub instances: u32,
    /// How other instances' changes reach this one's session cache:
    /// `auto` (PostgreSQL's LISTEN/NOTIFY on PostgreSQL, else the
    /// once-a-quarter-second feed table), `postgres`, or `redis`
    /// (pub/sub on `rate_limit.redis_url` or `REDIS_URL`).
    pub invalidation: InvalidationTransport,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            instances: 1,
            invalidation: InvalidationTransport::Auto,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidationTransport {
    Auto,
    Postgres,
    Redis,
}

/// `[social.<name>]`.
#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SocialProviderConfig {
    pub client_id: String,
    /// Development only; otherwise the secret
    /// `WARDEN_SOCIAL_<NAME>_CLIENT_SECRET` (`warden secret set
    /// social.<name>.client_secret`, or the environment).
    pub client_secret: Option<String>,
    /// Default per provider (`openid email profile` for OpenID Connect).
    pub scopes: Option<Vec<String>>,
    /// Default `<base_url>/auth/callback/<name>`.
    pub redirect_uri: Option<String>,
    /// OpenID Connect issuer (discovery); for `google`, overrides Google's.
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    /// Link to existing verified users by email even when the provider does
    /// not say the email is verified.
    pub trusted: bool,
    /// Create users for new identities (default true).
    pub sign_up: Option<bool>,
}

impl std::fmt::Debug for SocialProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialProviderConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// `[admin]`: administration (BetterAuth's admin plugin options).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Users who are admins whatever their role (`adminUserIds`).
    pub user_ids: Vec<String>,
    /// The role of new users.
    pub default_role: String,
    /// Roles that count as admin (`adminRoles`).
    pub admin_roles: Vec<String>,
    /// How long an impersonation session lasts.
    #[serde(with = "humantime_serde")]
    pub impersonation_session_duration: Duration,
    /// The reason recorded when a ban gives none (default "No reason").
    pub default_ban_reason: Option<String>,
    /// How long a ban lasts when it does not say (default: until lifted).
    #[serde(with = "humantime_serde", default)]
    pub default_ban_expires_in: Option<Duration>,
    /// Admins may impersonate other admins.
    pub allow_impersonating_admins: bool,
    /// What a banned user is told when signing in.
    pub banned_user_message: Option<String>,
    /// Custom roles, `[admin.roles.support] user = ["list", "get"]`, added
    /// to BetterAuth's `admin` and `user` (or replacing them by name).
    pub roles: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        let d = warden_core::AdminSettings::default();
        AdminConfig {
            user_ids: d.user_ids,
            default_role: d.default_role,
            admin_roles: d.admin_roles,
            impersonation_session_duration: d.impersonation_session_duration,
            default_ban_reason: None,
            default_ban_expires_in: None,
            allow_impersonating_admins: false,
            banned_user_message: None,
            roles: BTreeMap::new(),
        }
    }
}

impl AdminConfig {
    /// The domain settings, with the roles checked.
    pub fn settings(&self) -> Result<warden_core::AdminSettings, String> {
        let d = warden_core::AdminSettings::default();
        let s = warden_core::AdminSettings {
            user_ids: self.user_ids.clone(),
            default_role: self.default_role.clone(),
            admin_roles: self.admin_roles.clone(),
            roles: warden_core::AccessControl::with_roles(self.roles.clone())?,
            impersonation_session_duration: self.impersonation_session_duration,
            default_ban_reason: self.default_ban_reason.clone(),
            default_ban_expires_in: self.default_ban_expires_in,
            allow_impersonating_admins: self.allow_impersonating_admins,
            banned_user_message: self
                .banned_user_message
                .clone()
                .unwrap_or(d.banned_user_message),
        };
        s.validate()?;
        Ok(s)
    }
}

/// TOTP two-factor authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwoFactorConfig {
    /// The name authenticator apps show; default `mail.app_name`.
    pub issuer: Option<String>,
    /// How long a password sign-in waits for its second step.
    #[serde(with = "humantime_serde")]
    pub challenge_ttl: Duration,
    /// Wrong codes that end a challenge (sign in again).
    pub max_attempts: u64,
    /// Consecutive wrong codes that lock two-factor for the account ...
    pub lock_after: u32,
    /// ... for this long.
    #[serde(with = "humantime_serde")]
    pub lock_for: Duration,
    /// How long "trust this device" skips the second step (renewed on use).
    #[serde(with = "humantime_serde")]
    pub trust_device_ttl: Duration,
    /// Offer the `otp` method: a code mailed to the user
    /// (`two-factor/send-otp`, `two-factor/verify-otp`).
    pub email_otp: bool,
    /// How long a mailed two-factor code works.
    #[serde(with = "humantime_serde")]
    pub otp_expires_in: Duration,
    /// Users with two-factor on get the challenge after a magic link or an
    /// email code too (false: BetterAuth 1.7's behaviour, which skips it).
    pub passwordless_challenge: bool,
}

/// `[magic_link]`: sign-in by an emailed link (BetterAuth's `magicLink`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MagicLinkConfig {
    /// Off by default: the routes answer 404.
    pub enabled: bool,
    /// How long a link works.
    #[serde(with = "humantime_serde")]
    pub expires_in: Duration,
    /// Unknown emails get no link and no account.
    pub disable_sign_up: bool,
    /// Links mailed to one address per `per_email_window`; more requests
    /// get the same answer and no mail.
    pub per_email_max: u64,
    #[serde(with = "humantime_serde")]
    pub per_email_window: Duration,
}

impl Default for MagicLinkConfig {
    fn default() -> Self {
        let d = warden_core::MagicLinkSettings::default();
        MagicLinkConfig {
            enabled: d.enabled,
            expires_in: d.expires_in,
            disable_sign_up: d.disable_sign_up,
            per_email_max: d.max_per_email,
            per_email_window: d.email_window,
        }
    }
}

/// `[email_otp]`: one-time codes by email (BetterAuth's `emailOTP`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailOtpConfig {
    /// Off by default: the routes answer 404.
    pub enabled: bool,
    /// Digits per code (4 to 10).
    pub length: usize,
    /// How long a code works.
    #[serde(with = "humantime_serde")]
    pub expires_in: Duration,
    /// Wrong guesses a code survives; then it is dead.
    pub allowed_attempts: u64,
    /// Unknown emails get no sign-in code and no account.
    pub disable_sign_up: bool,
    /// Codes mailed to one address per `per_email_window`; more requests
    /// get the same answer and no mail.
    pub per_email_max: u64,
    #[serde(with = "humantime_serde")]
    pub per_email_window: Duration,
    /// Email change by code (`/email-otp/request-email-change`,
    /// `/email-otp/change-email`); off, as BetterAuth's default.
    pub change_email: bool,
    /// Email change by code also needs a code sent to the current address.
    pub change_email_verify_current: bool,
}

impl Default for EmailOtpConfig {
    fn default() -> Self {
        let d = warden_core::EmailOtpSettings::default();
        EmailOtpConfig {
            enabled: d.enabled,
            length: d.length,
            expires_in: d.expires_in,
            allowed_attempts: d.allowed_attempts,
            disable_sign_up: d.disable_sign_up,
            per_email_max: d.max_per_email,
            per_email_window: d.email_window,
            change_email: d.change_email,
            change_email_verify_current: d.change_email_verify_current,
        }
    }
}

impl Default for TwoFactorConfig {
    fn default() -> Self {
        let d = warden_core::TwoFactorSettings::default();
        TwoFactorConfig {
            issuer: None,
            challenge_ttl: d.challenge_ttl,
            max_attempts: d.max_attempts,
            lock_after: d.lock_after,
            lock_for: d.lock_for,
            trust_device_ttl: d.trust_device_ttl,
            email_otp: d.email_otp,
            otp_expires_in: d.otp_expires_in,
            passwordless_challenge: d.passwordless_challenge,
        }
    }
}

/// `[passkey]`: passkeys (WebAuthn), the relying party.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasskeyConfig {
    /// Passkey endpoints on (default true).
    pub enabled: bool,
    /// The relying party id; default the host of `base_url`. Every origin
    /// passkeys are used from must be on it (`localhost` covers
    /// `http://localhost:5173`).
    pub rp_id: Option<String>,
    /// The name authenticators show; default `mail.app_name`.
    pub rp_name: Option<String>,
    /// `required` (default), `preferred` or `discouraged`.
    pub user_verification: warden_core::UserVerification,
}

impl Default for PasskeyConfig {
    fn default() -> Self {
        PasskeyConfig {
            enabled: true,
            rp_id: None,
            rp_name: None,
            user_verification: warden_core::UserVerification::Required,
        }
    }
}

impl PasskeyConfig {
    /// The relying party this configuration describes: its origins are
    /// Warden's trusted origins (`base_url`, `trusted_origins`, the CORS
    /// credentialed origins). Wildcard origins (`https://*.example.com`)
    /// cannot be WebAuthn origins and are left out.
    pub fn settings(&self, config: &Config) -> warden_core::PasskeySettings {
        let d = warden_core::PasskeySettings::default();
        let host = url::Url::parse(&config.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| d.rp_id.clone());
        let mut origins: Vec<String> = Vec::new();
        let candidates = std::iter::once(&config.base_url)
            .chain(&config.trusted_origins)
            .chain(&config.cors.allow_origins_with_credentials);
        for o in candidates {
            if o.contains('*') {
                continue;
            }
            if let Some(o) = url::Url::parse(o)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(|u| u.origin().ascii_serialization())
            {
                if !origins.contains(&o) {
                    origins.push(o);
                }
            }
        }
        warden_core::PasskeySettings {
            enabled: self.enabled,
            rp_id: self.rp_id.clone().unwrap_or(host),
            rp_name: self
                .rp_name
                .clone()
                .unwrap_or_else(|| config.mail.app_name.clone()),
            origins,
            user_verification: self.user_verification,
            ..d
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailVerificationConfig {
    /// Sign-up mails a link and starts no session; unverified users cannot
    /// sign in (BetterAuth's `requireEmailVerification`).
    pub required: bool,
    /// How long verification and email-change links work.
    #[serde(with = "humantime_serde")]
    pub expires_in: Duration,
    /// Following a verification link signs the user in.
    pub auto_sign_in: bool,
}

impl Default for EmailVerificationConfig {
    fn default() -> Self {
        EmailVerificationConfig {
            required: false,
            expires_in: Duration::from_secs(3600),
            auto_sign_in: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// Development: messages are logged (with their links) and kept in memory.
    Outbox,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: only for a relay on localhost or a test sink.
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// Default: `outbox` in development; production requires `smtp`.
    pub transport: Option<MailTransport>,
    pub from: String,
    /// Used in subjects and bodies.
    pub app_name: String,
    /// Overrides for the built-in templates (`password-reset.txt`, ...).
    pub templates_dir: Option<std::path::PathBuf>,
    pub smtp: SmtpConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The password is the secret WARDEN_SMTP_PASSWORD.
    pub username: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordResetConfig {
    #[serde(with = "humantime_serde")]
    pub expires_in: Duration,
    /// End every session of the user on reset.
    pub revoke_sessions: bool,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            transport: None,
            from: "Warden <no-reply@localhost>".into(),
            app_name: "Warden".into(),
            templates_dir: None,
            smtp: SmtpConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            username: None,
        }
    }
}

impl Default for PasswordResetConfig {
    fn default() -> Self {
        PasswordResetConfig {
            expires_in: Duration::from_secs(3600),
            revoke_sessions: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CounterStorage {
    /// In this process: right for one instance.
    Memory,
    /// The `warden_rate_limit` table: shared by instances on one database.
    Database,
    /// Redis (`rate_limit.redis_url`): shared, and cheap.
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Default: on in production, off in development.
    pub enabled: Option<bool>,
    /// The default limit: `max` requests per `window` per client and path.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub max: u64,
    /// Where counters live (also the failed-sign-in counters).
    pub storage: CounterStorage,
    /// `redis://host:6379/0`, for `storage = "redis"` (or `REDIS_URL`).
    pub redis_url: Option<String>,
    /// Prefix of the Redis keys (instances sharing limits use the same).
    pub redis_prefix: String,
    /// Rules that override the defaults, first match wins.
    pub rules: Vec<RateRuleConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateRuleConfig {
    /// A path; `*` matches any characters.
    pub path: String,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    pub max: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutConfig {
    /// Failed sign-ins for one email within `window` that pause sign-in for
    /// it (except from devices it signed in on before); 0 turns this off.
    pub max_failures: u64,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            enabled: None,
            window: Duration::from_secs(10),
            max: 100,
            storage: CounterStorage::Memory,
            redis_url: None,
            redis_prefix: "warden:".into(),
            rules: vec![],
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            max_failures: 10,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl Config {
    /// Is the database PostgreSQL?
    pub fn is_postgres(&self) -> bool {
        let u = &self.database_url;
        u.starts_with("postgres://") || u.starts_with("postgresql://")
    }

    /// What carries invalidations between instances: `None` when nothing
    /// does but the feed table (see [`ClusterConfig::invalidation`]).
    pub fn invalidation(&self) -> Option<InvalidationTransport> {
        match self.cluster.invalidation {
            InvalidationTransport::Auto if self.is_postgres() => {
                Some(InvalidationTransport::Postgres)
            }
            InvalidationTransport::Auto => None,
            other => Some(other),
        }
    }

    fn check_cluster(&self) -> Result<(), ConfigError> {
        let c = &self.cluster;
        if c.instances == 0 {
            return Err(ConfigError::Rule(
                "cluster.instances must be at least 1".into(),
            ));
        }
        if c.invalidation == InvalidationTransport::Postgres && !self.is_postgres() {
            return Err(ConfigError::Rule(
                "cluster.invalidation = \"postgres\" needs a postgres:// database_url".into(),
            ));
        }
        if c.invalidation == InvalidationTransport::Redis && self.redis_url().is_none() {
            return Err(ConfigError::Rule(
                "cluster.invalidation = \"redis\" needs rate_limit.redis_url (or REDIS_URL)".into(),
            ));
        }
        if c.instances == 1 {
            return Ok(());
        }
        if warden_store::is_sqlite(&self.database_url) {
            return Err(ConfigError::Rule(format!(
                "cluster.instances = {}: SQLite is one file for one instance; several instances need PostgreSQL or MySQL",
                c.instances
            )));
        }
        if self.invalidation().is_none() {
            return Err(ConfigError::Rule(format!(
                "cluster.instances = {}: this database cannot tell instances about each other's sign-outs and revocations; set cluster.invalidation = \"redis\" (with REDIS_URL)",
                c.instances
            )));
        }
        if self.env == Environment::Production
            && self.rate_limit.storage == CounterStorage::Memory
            && (self.rate_limit_enabled() || self.lockout.max_failures > 0)
        {
            return Err(ConfigError::Rule(format!(
                "cluster.instances = {}: rate limits and the sign-in lockout in memory are per instance (an attacker gets {}x the attempts); set rate_limit.storage = \"database\" or \"redis\"",
                c.instances, c.instances
            )));
        }
        Ok(())
    }

    /// The Redis URL for counters: `rate_limit.redis_url`, else `REDIS_URL`.
    pub fn redis_url(&self) -> Option<String> {
        self.rate_limit
            .redis_url
            .clone()
            .or_else(|| std::env::var("REDIS_URL").ok())
            .filter(|u| !u.is_empty())
    }

    /// Is rate limiting on (explicitly, or by default in production)?
    pub fn rate_limit_enabled(&self) -> bool {
        self.rate_limit
            .enabled
            .unwrap_or(self.env == Environment::Production)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BetterAuthConfig {
    /// Serve the BetterAuth-compatible API.
    pub enabled: bool,
    /// Where it is mounted (BetterAuth's `basePath`).
    pub base_path: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserConfig {
    /// Let users delete their own account (`POST /api/auth/delete-user`).
    pub allow_delete: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    #[serde(with = "humantime_serde")]
    pub expires_in: Duration,
    #[serde(with = "humantime_serde")]
    pub update_age: Duration,
    /// Serve validated sessions from memory for this long ("0s": off). A
    /// revocation made on another instance takes effect after at most this.
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How often expired sessions are deleted.
    #[serde(with = "humantime_serde")]
    pub cleanup_interval: Duration,
    /// Lifetime of sessions started with `rememberMe: false`; never extended.
    #[serde(with = "humantime_serde")]
    pub short_expires_in: Duration,
    /// Sensitive operations without a password need a session at most this
    /// old ("0s": no check).
    #[serde(with = "humantime_serde")]
    pub fresh_age: Duration,
    /// Cookie names are `<cookie_prefix>.session_token`.
    pub cookie_prefix: String,
    /// Absolute session lifetime, however often the session is used.
    #[serde(with = "humantime_serde")]
    pub max_lifetime: Duration,
    /// Keep sessions BetterAuth created (tokens stored in clear), hashing
    /// each token on first use.
    pub adopt_betterauth_sessions: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordConfig {
    pub min_length: usize,
    pub max_length: usize,
    /// Refuse the 10,000 most common passwords.
    pub reject_common: bool,
    pub argon2: Argon2Config,
    /// Hashes computed at once; 0 means one per core.
    pub hash_concurrency: usize,
    /// Password operations that may wait for a slot before the server
    /// answers 503.
    pub hash_queue: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    pub allow_origins_with_credentials: Vec<String>,
    pub allow_origins_without_credentials: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Reverse proxies (addresses or CIDR ranges) whose forwarding header is
    /// believed; the client address is the right-most entry not in this
    /// list. Empty: the peer address, always.
    pub trusted_proxies: Vec<String>,
    /// The forwarding header those proxies set.
    pub client_ip_header: String,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub max_connections: u32,
    /// How long a request waits for a database connection before it
    /// answers 503. Once that has failed, requests answer 503 at once until
    /// a background probe reaches the database again.
    #[serde(with = "humantime_serde")]
    pub acquire_timeout: Duration,
    /// How long `GET /readyz`, and each try of the background probe while
    /// the database is down, waits for it to answer.
    #[serde(with = "humantime_serde")]
    pub ready_timeout: Duration,
}

/// `[telemetry]`: traces and metrics.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Recent traces kept in memory for the dashboard (0: the store is
    /// off). Default: 1000 in development, 0 in production.
    pub keep_traces: Option<usize>,
    /// Most bytes the kept traces may take. Default 16 MiB.
    pub keep_bytes: Option<usize>,
    /// Most new traces the store records in one second (0: no cap).
    /// Default 200: under a load test the ring would be overwritten faster
    /// than anyone reads it. Export is not capped.
    pub max_traces_per_second: Option<u32>,
    /// OTLP/HTTP collector (`http://collector:4318`; `/v1/traces` is
    /// appended). Default: `OTEL_EXPORTER_OTLP_ENDPOINT`, else no export.
    pub otlp_endpoint: Option<String>,
    /// Share of new traces exported, 0 to 1. Default:
    /// `OTEL_TRACES_SAMPLER_ARG`, else 1.
    pub sample_ratio: Option<f64>,
    /// `service.name` of exported spans. Default: `OTEL_SERVICE_NAME`,
    /// else `warden`.
    pub service_name: Option<String>,
    /// Serve `GET /metrics` on this address only (its own listener, no
    /// authentication: keep it on a private network).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Serve `GET /metrics` on the API's listener too. Default: on in
    /// development; in production it also needs the secret
    /// `WARDEN_TELEMETRY_METRICS_TOKEN`, sent as a bearer token.
    pub metrics_on_api: Option<bool>,
}

/// Most traces the in-process store may be asked to keep.
pub const MAX_KEEP_TRACES: usize = 1_000_000;
/// Most bytes the in-process store may be asked to keep (1 GiB).
pub const MAX_KEEP_BYTES: usize = 1 << 30;

impl TelemetryConfig {
    pub fn keep_traces(&self, env: Environment) -> usize {
        self.keep_traces.unwrap_or(match env {
            Environment::Development => 1000,
            Environment::Production => 0,
        })
    }

    pub fn keep_bytes(&self) -> usize {
        self.keep_bytes.unwrap_or(16 << 20)
    }

    /// The traces URL to export to, if any.
    pub fn otlp_endpoint(&self) -> Option<String> {
        self.otlp_endpoint
            .clone()
            .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
            .filter(|e| !e.trim().is_empty())
    }

    pub fn sample_ratio(&self) -> Result<f64, String> {
        match self.sample_ratio {
            Some(r) => Ok(r),
            None => match std::env::var("OTEL_TRACES_SAMPLER_ARG") {
                Ok(v) if !v.trim().is_empty() => v.trim().parse::<f64>().map_err(|_| {
                    format!("OTEL_TRACES_SAMPLER_ARG ({v:?}) must be a number from 0 to 1")
                }),
                _ => Ok(1.0),
            },
        }
    }

    pub fn service_name(&self) -> String {
        self.service_name
            .clone()
            .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "warden".into())
    }

    pub fn metrics_on_api(&self, env: Environment) -> bool {
        self.metrics_on_api
            .unwrap_or(env == Environment::Development)
    }

    fn check(&self, env: Environment) -> Result<(), String> {
        if self.keep_traces(env) > MAX_KEEP_TRACES {
            return Err(format!(
                "telemetry.keep_traces must be at most {MAX_KEEP_TRACES}"
            ));
        }
        let bytes = self.keep_bytes();
        if !(64 * 1024..=MAX_KEEP_BYTES).contains(&bytes) {
            return Err(format!(
                "telemetry.keep_bytes ({bytes}) must be between 65536 (64 KiB) and {MAX_KEEP_BYTES} (1 GiB)"
            ));
        }
        let ratio = self.sample_ratio()?;
        if !(0.0..=1.0).contains(&ratio) || ratio.is_nan() {
            return Err(format!(
                "telemetry.sample_ratio ({ratio}) must be from 0 to 1"
            ));
        }
        if let Some(e) = self.otlp_endpoint() {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!(
                    "telemetry.otlp_endpoint ({e:?}) must be an http:// or https:// URL (OTLP/HTTP; gRPC is not supported)"
                ));
            }
        }
        Ok(())
    }
}

/// `[dashboard]`: the dashboard (API explorer, traces, database, outbox,
/// users) on a listener of its own, never the API's.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DashboardConfig {
    /// Serve it. Default: on in development (no sign-in: loopback only),
    /// off in production (then it needs an admin's sign-in).
    pub enabled: Option<bool>,
    /// Default `127.0.0.1:9400`. In development a default address that is
    /// taken is skipped with a warning; a configured one is an error.
    pub listen: Option<std::net::SocketAddr>,
    /// The URL browsers reach it at when that is not loopback
    /// (`https://admin.example.com`, behind a proxy): its host is served
    /// and https makes its cookie `Secure`.
    pub public_url: Option<String>,
}

/// The dashboard's default address, as Encore's development dashboard.
pub const DASHBOARD_LISTEN: &str = "127.0.0.1:9400";

impl DashboardConfig {
    pub fn enabled(&self, env: Environment) -> bool {
        self.enabled.unwrap_or(env == Environment::Development)
    }

    pub fn listen(&self) -> std::net::SocketAddr {
        self.listen
            .unwrap_or_else(|| DASHBOARD_LISTEN.parse().expect("valid address"))
    }

    fn check(&self) -> Result<(), String> {
        if let Some(u) = &self.public_url {
            let ok = (u.starts_with("http://") || u.starts_with("https://"))
                && !u["https://".len().min(u.len())..].is_empty();
            if !ok {
                return Err(format!(
                    "dashboard.public_url ({u:?}) must be an http:// or https:// URL"
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter; `RUST_LOG` overrides it.
    pub level: String,
}

/// The top-level keys of [`Config`], for telling configuration variables
/// from other `WARDEN_*` variables.
const CONFIG_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "base_url",
    "trusted_origins",
    "env",
    "secrets_file",
    "session",
    "password",
    "cors",
    "http",
    "database",
    "log",
    "betterauth",
    "user",
    "rate_limit",
    "lockout",
    "mail",
    "password_reset",
    "email_verification",
    "two_factor",
    "passkey",
    "magic_link",
    "email_otp",
    "admin",
    "telemetry",
    "dashboard",
    "cluster",
    "social",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:4000".parse().expect("valid address"),
            database_url: "sqlite:warden.db".into(),
            base_url: "http://localhost:4000".into(),
            trusted_origins: vec![],
            env: Environment::Development,
            secrets_file: ".warden/secrets.json".into(),
            session: SessionConfig::default(),
            password: PasswordConfig::default(),
            cors: CorsConfig::default(),
            http: HttpConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            betterauth: BetterAuthConfig::default(),
            user: UserConfig::default(),
            rate_limit: RateLimitConfig::default(),
            lockout: LockoutConfig::default(),
            mail: MailConfig::default(),
            password_reset: PasswordResetConfig::default(),
            email_verification: EmailVerificationConfig::default(),
            two_factor: TwoFactorConfig::default(),
            passkey: PasskeyConfig::default(),
            magic_link: MagicLinkConfig::default(),
            email_otp: EmailOtpConfig::default(),
            admin: AdminConfig::default(),
            telemetry: TelemetryConfig::default(),
            dashboard: DashboardConfig::default(),
            cluster: ClusterConfig::default(),
            social: BTreeMap::new(),
        }
    }
}

impl Default for BetterAuthConfig {
    fn default() -> Self {
        BetterAuthConfig {
            enabled: true,
            base_path: "/api/auth".into(),
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            expires_in: Duration::from_secs(7 * 24 * 3600),
            update_age: Duration::from_secs(24 * 3600),
            cache_ttl: Duration::from_secs(5),
            cleanup_interval: Duration::from_secs(600),
            short_expires_in: Duration::from_secs(24 * 3600),
            fresh_age: Duration::from_secs(24 * 3600),
            cookie_prefix: "warden".into(),
            adopt_betterauth_sessions: true,
            max_lifetime: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Default for PasswordConfig {
    fn default() -> Self {
        PasswordConfig {
            min_length: 8,
            max_length: 128,
            reject_common: true,
            argon2: Argon2Config::default(),
            hash_concurrency: 0,
            hash_queue: 1024,
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            allow_origins_with_credentials: vec!["http://localhost:5173".into()],
            allow_origins_without_credentials: vec!["*".into()],
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            body_limit: 64 * 1024,
            trusted_proxies: vec![],
            client_ip_header: "x-forwarded-for".into(),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            ready_timeout: Duration::from_millis(500),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} not found")]
    Missing(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Rule(String),
}

/// Overrides from the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
}

impl Config {
    /// Loads the configuration. `file` is the explicit config file (which
    /// must then exist); without it `./warden.toml` is read if present.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) if !f.exists() => return Err(ConfigError::Missing(f.to_owned())),
            Some(f) => figment = figment.merge(Toml::file_exact(f)),
            None if Path::new("warden.toml").exists() => {
                figment = figment.merge(Toml::file_exact("warden.toml"))
            }
            None => {}
        }
        figment = figment
            .merge(
                Env::raw()
                    .only(&["DATABASE_URL"])
                    .map(|_| "database_url".into()),
            )
            .merge(
                // Only variables naming a configuration key: other WARDEN_*
                // variables (WARDEN_BIN, WARDEN_TEST_DATABASE_URL, ...) are
                // not ours and must not stop the server. Keys inside a known
                // section are still checked, so typos there are errors.
                Env::prefixed("WARDEN_")
                    .ignore(&["CONFIG", "SECRET", "SECRET_FILE"])
                    .filter(|key| {
                        let top = key.as_str().split("__").next().unwrap_or("");
                        CONFIG_KEYS.iter().any(|k| k.eq_ignore_ascii_case(top))
                    })
                    .split("__"),
            );
        if let Some(l) = overrides.listen {
            figment = figment.merge(("listen", l.to_string()));
        }
        if let Some(d) = &overrides.database_url {
            figment = figment.merge(("database_url", d));
        }
        let config: Config = figment.extract().map_err(Box::new)?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let p = &self.password;
        if p.min_length == 0 || p.min_length > p.max_length {
            return Err(ConfigError::Rule(format!(
                "password.min_length ({}) must be between 1 and password.max_length ({})",
                p.min_length, p.max_length
            )));
        }
        if p.max_length > 1024 {
            return Err(ConfigError::Rule(
                "password.max_length must be at most 1024".into(),
            ));
        }
        if self.session.expires_in.is_zero() {
            return Err(ConfigError::Rule(
                "session.expires_in must be positive".into(),
            ));
        }
        if let Err(e) = self.telemetry.check(self.env) {
            return Err(ConfigError::Rule(e));
        }
        if let Err(e) = self.dashboard.check() {
            return Err(ConfigError::Rule(e));
        }
        if let Err(e) = self.admin.settings() {
            return Err(ConfigError::Rule(format!("admin: {e}")));
        }
        if let Err(e) = self.passkey.settings(self).check() {
            return Err(ConfigError::Rule(e));
        }
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        let a = &self.admin;
        if a.impersonation_session_duration.is_zero() || a.impersonation_session_duration > YEAR {
            return Err(ConfigError::Rule(
                "admin.impersonation_session_duration must be positive and at most a year".into(),
            ));
        }
        if a.default_ban_expires_in
            .is_some_and(|d| d.is_zero() || d > 100 * YEAR)
        {
            return Err(ConfigError::Rule(
                "admin.default_ban_expires_in must be positive and at most 100 years".into(),
            ));
        }
        let o = &self.email_otp;
        if !(4..=10).contains(&o.length) || o.allowed_attempts == 0 || o.expires_in.is_zero() {
            return Err(ConfigError::Rule(
                "email_otp: length must be 4 to 10, allowed_attempts and expires_in positive"
                    .into(),
            ));
        }
        if self.magic_link.expires_in.is_zero()
            || self.two_factor.otp_expires_in.is_zero()
            || self.magic_link.per_email_window.is_zero()
            || o.per_email_window.is_zero()
        {
            return Err(ConfigError::Rule(
                "magic_link.expires_in, two_factor.otp_expires_in and the per_email_window limits must be positive".into(),
            ));
        }
        let d = &self.database;
        if d.max_connections == 0 {
            return Err(ConfigError::Rule(
                "database.max_connections must be at least 1".into(),
            ));
        }
        if d.acquire_timeout.is_zero() || d.ready_timeout.is_zero() {
            return Err(ConfigError::Rule(
                "database.acquire_timeout and database.ready_timeout must be positive".into(),
            ));
        }
        let bp = &self.betterauth.base_path;
        if !bp.starts_with('/')
            || bp.len() < 2
            || bp.ends_with('/')
            || !bp
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-_.".contains(&b))
            || [
                "/auth",
                "/profile",
                "/sessions",
                "/admin",
                "/healthz",
                "/readyz",
                "/openapi.json",
            ]
            .iter()
            .any(|p| bp == p)
        {
            return Err(ConfigError::Rule(format!(
                "betterauth.base_path {bp:?} must look like \"/api/auth\": a leading '/', no trailing '/', and not a path Warden already uses"
            )));
        }
        let c = &self.session.cookie_prefix;
        if c.is_empty()
            || c.len() > 64
            || !c
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(ConfigError::Rule(format!(
                "session.cookie_prefix {c:?} must be 1-64 characters of letters, digits, '-', '_' or '.'"
            )));
        }
        self.check_cluster()?;
        if self.rate_limit.storage == CounterStorage::Redis && self.redis_url().is_none() {
            return Err(ConfigError::Rule(
                "rate_limit.storage = \"redis\" needs rate_limit.redis_url (or REDIS_URL)".into(),
            ));
        }
        for r in &self.rate_limit.rules {
            if r.max == 0 || r.window.is_zero() || !r.path.starts_with(['/', '*']) {
                return Err(ConfigError::Rule(format!(
                    "rate_limit.rules: {:?} needs a path starting with '/', a positive window and max",
                    r.path
                )));
            }
        }
        if self.rate_limit.max == 0 || self.rate_limit.window.is_zero() {
            return Err(ConfigError::Rule(
                "rate_limit.max and rate_limit.window must be positive".into(),
            ));
        }
        if self.env == Environment::Production && self.mail.transport != Some(MailTransport::Smtp) {
            return Err(ConfigError::Rule(
                "production needs mail.transport = \"smtp\" (password reset mails links; the development outbox would only log them)".into(),
            ));
        }
        if self.password_reset.expires_in.is_zero() {
            return Err(ConfigError::Rule(
                "password_reset.expires_in must be positive".into(),
            ));
        }
        if self.session.max_lifetime.is_zero() {
            return Err(ConfigError::Rule(
                "session.max_lifetime must be positive".into(),
            ));
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(ConfigError::Rule(format!(
                "base_url {:?} must start with http:// or https://",
                self.base_url
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod passkey_config_tests {
    use super::*;

    #[test]
    fn the_relying_party_defaults_to_base_url_and_the_trusted_origins() {
        let mut c = Config {
            base_url: "https://auth.example.com/".into(),
            trusted_origins: vec![
                "https://app.example.com".into(),
                "https://*.example.com".into(),
            ],
            ..Config::default()
        };
        c.mail.app_name = "Acme".into();
        let s = c.passkey.settings(&c);
        assert_eq!(s.rp_id, "auth.example.com");
        assert_eq!(s.rp_name, "Acme");
        assert_eq!(
            s.origins,
            [
                "https://auth.example.com",
                "https://app.example.com",
                "http://localhost:5173"
            ]
        );
        assert_eq!(s.user_verification, warden_core::UserVerification::Required);
        assert!(s.enabled);
    }

    #[test]
    fn passkey_settings_come_from_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warden.toml");
        std::fs::write(
            &file,
            "[passkey]\nrp_id = \"example.com\"\nrp_name = \"Example\"\nuser_verification = \"discouraged\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), &Overrides::default()).unwrap();
        let s = c.passkey.settings(&c);
        assert_eq!(s.rp_id, "example.com");
        assert_eq!(s.rp_name, "Example");
        assert_eq!(
            s.user_verification,
            warden_core::UserVerification::Discouraged
        );
        std::env::set_var("WARDEN_PASSKEY__USER_VERIFICATION", "preferred");
        let c = Config::load(Some(&file), &Overrides::default());
        std::env::remove_var("WARDEN_PASSKEY__USER_VERIFICATION");
        assert_eq!(
            c.unwrap().passkey.user_verification,
            warden_core::UserVerification::Preferred
        );
        std::fs::write(&file, "[passkey]\nuser_verification = \"sometimes\"\n").unwrap();
        let e = Config::load(Some(&file), &Overrides::default()).unwrap_err();
        assert!(
            e.to_string().contains("user_verification") || e.to_string().contains("sometimes"),
            "{e}"
        );
    }
}
