use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use moka::sync::Cache;
use tracing::Instrument;
use warden_telemetry::metrics::{
    CacheResult, MailResult, Metrics, OtlpCounters, SignInMethod, SignInResult, SignUpMethod,
};

use crate::admin::AdminSettings;
use crate::clock::{Clock, SystemClock};
use crate::error::AuthError;
use crate::invalidate::Invalidation;
use crate::limit::{Counters, MemoryCounters};
use crate::mail::{Mailer, Outbox, Template, Templates};
use crate::model::{Credential, RequestMeta, Session, Timestamp, User, UserUpdate};
use crate::password::{Argon2Settings, PasswordHasher, PasswordPolicy};
use crate::store::{SessionFilter, Store, StoreError};
use crate::token::{new_id, SessionToken, TokenHash};
use crate::two_factor::SecretKeys;
use crate::two_factor_flow::{SignInOutcome, TwoFactorSettings};
use crate::validate;

/// Session lifetimes.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    /// How long a session lives after its last refresh (default 7 days).
    pub expires_in: Duration,
    /// A session used more than this long after its last refresh gets its
    /// expiry moved to now + `expires_in` (default 1 day).
    pub update_age: Duration,
    /// How long a validated session may be served from memory without a
    /// database read (default 5 s). Sign-out, revocation and profile updates
    /// made through this process invalidate the cache at once; other
    /// instances sharing the database see them after at most this long.
    /// Zero disables the cache.
    pub cache_ttl: Duration,
    /// Lifetime of a session started with "remember me" off (default 1 day,
    /// as BetterAuth). Such sessions are never extended.
    pub short_expires_in: Duration,
    /// Sensitive operations without a password (deleting the account,
    /// listing sessions through the BetterAuth API) need a session created
    /// at most this long ago (default 1 day). Zero disables the check.
    pub fresh_age: Duration,
    /// Accept sessions whose token is stored in clear (made by BetterAuth)
    /// and convert them to hashed storage on first use (default true).
    pub adopt_plain_tokens: bool,
    /// Absolute lifetime: a session ends this long after it was created,
    /// however often it is used (default 30 days).
    pub max_lifetime: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            expires_in: Duration::from_secs(7 * 24 * 3600),
            update_age: Duration::from_secs(24 * 3600),
            cache_ttl: Duration::from_secs(5),
            short_expires_in: Duration::from_secs(24 * 3600),
            fresh_age: Duration::from_secs(24 * 3600),
            adopt_plain_tokens: true,
            max_lifetime: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Throttling of failed sign-ins per account, across all client addresses.
#[derive(Clone, Debug)]
pub struct LockoutSettings {
    /// Failed sign-ins for one email within `window` after which sign-in is
    /// paused for that email until the window ends (0: never).
    pub max_failures: u64,
    pub window: Duration,
}

impl Default for LockoutSettings {
    fn default() -> Self {
        LockoutSettings {
            max_failures: 10,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Password reset by emailed link.
#[derive(Clone, Debug)]
pub struct PasswordResetSettings {
    /// How long a reset link works (default 1 hour).
    pub expires_in: Duration,
    /// End every session of the user when the password is reset (default on).
    pub revoke_sessions: bool,
}

impl Default for PasswordResetSettings {
    fn default() -> Self {
        PasswordResetSettings {
            expires_in: Duration::from_secs(3600),
            revoke_sessions: true,
        }
    }
}

/// Email verification.
#[derive(Clone, Debug)]
pub struct EmailVerificationSettings {
    /// Sign-up sends a link and starts no session; sign-in of an unverified
    /// user is refused (and the link sent again). Default off.
    pub required: bool,
    /// How long a verification or email-change link works (default 1 hour).
    pub expires_in: Duration,
    /// Following a verification link signs the user in (default off).
    pub auto_sign_in: bool,
}

impl Default for EmailVerificationSettings {
    fn default() -> Self {
        EmailVerificationSettings {
            required: false,
            expires_in: Duration::from_secs(3600),
            auto_sign_in: false,
        }
    }
}

/// What a sign-up led to.
#[derive(Debug, Clone)]
// Returned once per request and moved straight into a response: boxing
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Registered {
    SignedIn(SignedIn),
    /// Verification is required: a link went to the address (or, if the
    /// address was taken, a notice to its owner: the answer is the same).
    VerificationSent(User),
}

/// What following a verification link did.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user: User,
    /// The link confirmed an email change (not a first verification).
    pub email_changed: bool,
    /// A new session, when `auto_sign_in` is on.
    pub signed_in: Option<SignedIn>,
}

#[derive(Clone, Debug)]
pub struct WardenSettings {
    pub session: SessionSettings,
    pub email_verification: EmailVerificationSettings,
    pub lockout: LockoutSettings,
    pub password_reset: PasswordResetSettings,
    pub two_factor: TwoFactorSettings,
    pub magic_link: crate::passwordless::MagicLinkSettings,
    pub email_otp: crate::passwordless::EmailOtpSettings,
    pub admin: AdminSettings,
    pub passkey: crate::passkey::PasskeySettings,
    pub password: PasswordPolicy,
    pub argon2: Argon2Settings,
    /// Password hashes computed at once (default: the number of cores).
    pub hash_concurrency: usize,
    /// Password operations allowed to wait for a hashing slot before new ones
    /// are refused as busy.
    pub hash_queue: usize,
}

impl Default for WardenSettings {
    fn default() -> Self {
        WardenSettings {
            session: SessionSettings::default(),
            lockout: LockoutSettings::default(),
            email_verification: EmailVerificationSettings::default(),
            password_reset: PasswordResetSettings::default(),
            two_factor: TwoFactorSettings::default(),
            magic_link: Default::default(),
            email_otp: Default::default(),
            admin: AdminSettings::default(),
            passkey: crate::passkey::PasskeySettings::default(),
            password: PasswordPolicy::default(),
            argon2: Argon2Settings::default(),
            hash_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            hash_queue: 1024,
        }
    }
}

/// A sign-up request, as received (not yet normalised or validated).
#[derive(Debug, Clone)]
pub struct SignUp {
    pub email: String,
    pub password: String,
    pub name: String,
    pub image: Option<String>,
    /// False: the session lasts `short_expires_in` and is never extended.
    pub remember_me: bool,
}

/// A password change by a signed-in user.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
    /// End every other session of the user too. The caller's own session is
    /// always replaced by a new one (new token).
    pub revoke_other_sessions: bool,
}

/// The outcome of a successful sign-up or sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub token: SessionToken,
    /// A new trusted-device token (two-factor sign-in with "trust this
    /// device", or a trusted device's token renewed): for a cookie.
    pub trusted_device: Option<SessionToken>,
}

/// A validated session and its user: what protected handlers receive.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub session: Session,
    /// This validation moved the session's expiry (sliding refresh): a
    /// cookie carrying the token should be re-issued.
    pub refreshed: bool,
}

type SessionCache = Cache<String, Arc<Authenticated>>;

/// The authentication service. Cheap to share behind an `Arc`.
pub struct Warden {
    pub(crate) store: Arc<dyn Store>,
    hasher: PasswordHasher,
    pub(crate) settings: WardenSettings,
    pub(crate) cache: Option<SessionCache>,
    clock: Arc<dyn Clock>,
    pub(crate) counters: Arc<dyn Counters>,
    mailer: Arc<dyn Mailer>,
    templates: Templates,
    /// Keys for two-factor secrets and backup codes.
    pub(crate) keys: SecretKeys,
    pub(crate) metrics: Arc<Metrics>,
    /// Is the cache in use? False while a needed invalidation listener is
    /// not listening (see `invalidate.rs`).
    pub(crate) cache_live: std::sync::atomic::AtomicBool,
    /// Bumped by every invalidation (see `invalidate.rs`).
    pub(crate) cache_gen: std::sync::atomic::AtomicU64,
    /// Where this process's invalidations go, if anywhere (Redis).
    pub(crate) bus: Option<Arc<dyn crate::invalidate::InvalidationBus>>,
}

pub(crate) fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl Warden {
    pub fn new(store: Arc<dyn Store>, settings: WardenSettings) -> Result<Self, AuthError> {
        let mut metrics = Metrics::new(OtlpCounters::global().clone());
        if let Some(db) = store.db_metrics() {
            let s = store.clone();
            metrics = metrics.with_database(&db, move || s.pool_status().unwrap_or_default());
        }
        // Until a listener says otherwise, no invalidation can be missed.
        metrics.invalidation_link_up.set(1);
        let metrics = Arc::new(metrics);
        let hasher = PasswordHasher::with_metrics(
            &settings.argon2,
            settings.hash_concurrency,
            settings.hash_queue,
            metrics.clone(),
        )?;
        let cache = (!settings.session.cache_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.session.cache_ttl)
                .support_invalidation_closures()
                .build()
        });
        Ok(Warden {
            store,
            hasher,
            settings,
            cache,
            clock: Arc::new(SystemClock),
            counters: Arc::new(MemoryCounters::default()),
            mailer: Arc::new(Outbox::default()),
            templates: Templates::new("Warden"),
            keys: SecretKeys::random(),
            cache_live: std::sync::atomic::AtomicBool::new(true),
            cache_gen: std::sync::atomic::AtomicU64::new(0),
            bus: None,
            metrics,
        })
    }

    /// This instance's metrics (`GET /metrics` renders them).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Counts a sign-in attempt by how it ended.
    pub(crate) fn count_sign_in<T>(
        &self,
        method: SignInMethod,
        result: &Result<T, AuthError>,
        two_factor_required: impl FnOnce(&T) -> bool,
    ) {
        use SignInResult as R;
        let r = match result {
            Ok(v) if two_factor_required(v) => R::TwoFactorRequired,
            Ok(_) => R::Success,
            Err(AuthError::InvalidCredentials) => R::WrongPassword,
            Err(
                AuthError::InvalidTwoFactorCode
                | AuthError::InvalidBackupCode
                | AuthError::TwoFactorTooManyAttempts,
            ) => R::WrongCode,
            Err(AuthError::AccountLocked { .. } | AuthError::TwoFactorLocked { .. }) => R::Locked,
            Err(AuthError::Banned { .. }) => R::Banned,
            Err(AuthError::EmailNotVerified) => R::EmailNotVerified,
            Err(AuthError::Store(_) | AuthError::Internal(_) | AuthError::Busy) => R::Error,
            Err(_) => R::Invalid,
        };
        self.metrics.sign_in(method, r);
    }

    /// Derives the keys that protect two-factor secrets at rest from the
    /// server secret (the same derivation as BetterAuth, so that a
    /// BetterAuth database's two-factor users keep working with its secret).
    /// Without it, keys are random and two-factor setups die with the
    /// process.
    pub fn with_secret(mut self, secret: &[u8]) -> Self {
        self.keys = SecretKeys::from_secret(secret);
        self
    }

    /// Sends mail through `mailer` with these templates (default: the
    /// development [`Outbox`]).
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>, templates: Templates) -> Self {
        self.mailer = mailer;
        self.templates = templates;
        self
    }

    /// Sends in the background: a request's answer and timing must not
    /// depend on the mail server (or reveal whether mail was sent).
    pub(crate) fn send_later(&self, template: Template, to: &str, link: &str, expires_in: &str) {
        let email = self.templates.render(template, to, link, expires_in);
        self.queue_mail(template, email);
    }

    /// [`Warden::send_later`] for a message carrying a one-time code.
    pub(crate) fn send_code_later(
        &self,
        template: Template,
        to: &str,
        code: &str,
        expires_in: Duration,
    ) {
        let email = self
            .templates
            .render_code(template, to, code, &human_duration(expires_in));
        self.queue_mail(template, email);
    }

    fn queue_mail(&self, template: Template, email: crate::mail::Email) {
        let mailer = self.mailer.clone();
        let metrics = self.metrics.clone();
        let name = template.name();
        // The request's trace shows that mail was queued; the sending is a
        // trace of its own that follows from it (a child span would hold
        // the request's span open, and stretch its duration, until the
        // mail server answered). Neither holds the address or the link.
        let queued = tracing::info_span!("mail.queue", template = name);
        let send = tracing::info_span!(parent: None, "mail.send", template = name, result = tracing::field::Empty);
        send.follows_from(&queued);
        drop(queued);
        tokio::spawn(
            async move {
                match mailer.send(email).await {
                    Ok(()) => {
                        metrics.mail(name, MailResult::Sent);
                        tracing::Span::current().record("result", "sent");
                    }
                    Err(e) => {
                        metrics.mail(name, MailResult::Failed);
                        tracing::Span::current().record("result", "failed");
                        tracing::error!(error = %e, template = name, "email not sent");
                    }
                }
            }
            .instrument(send),
        );
    }

    /// Uses another clock (tests move a [`crate::MockClock`]).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Keeps the failed-sign-in counters in `counters` (shared between
    /// instances when it is the database or Redis).
    pub fn with_counters(mut self, counters: Arc<dyn Counters>) -> Self {
        self.counters = counters;
        self
    }

    /// Is there a session cache (that other processes' changes must reach)?
    pub fn has_session_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// The time according to this service's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn settings(&self) -> &WardenSettings {
        &self.settings
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Creates a user with a password, and a first session.
    pub async fn sign_up(&self, req: SignUp, meta: RequestMeta) -> Result<SignedIn, AuthError> {
        match self.register(req, meta, |_| String::new()).await? {
            Registered::SignedIn(s) => Ok(s),
            Registered::VerificationSent(_) => Err(AuthError::EmailNotVerified),
        }
    }

    /// Creates a user with a password. Without required verification, also
    /// a first session; with it, mails a link made by `verify_link(token)`
    /// and answers the same for a taken email (whose owner gets a notice).
    pub async fn register(
        &self,
        req: SignUp,
        meta: RequestMeta,
        verify_link: impl FnOnce(&str) -> String,
    ) -> Result<Registered, AuthError> {
        let email = validate::email(&req.email)?;
        let name = validate::name(&req.name)?;
        let image = req.image.as_deref().map(validate::image).transpose()?;
        self.settings
            .password
            .check_new(&req.password, Some(&email))?;

        let password_hash = self.hasher.hash(&req.password).await?;
        let t = self.now();
        let user = User {
            id: new_id(),
            name,
            email,
            email_verified: false,
            image,
            two_factor_enabled: false,
            role: Some(self.settings.admin.default_role.clone()),
            banned: false,
            ban_reason: None,
            ban_expires: None,
            created_at: t,
            updated_at: t,
        };
        let required = self.settings.email_verification.required;
        // BetterAuth's convention: the credential account's id is the user id.
        match self
            .store
            .insert_user_with_password(&user, &user.id, &password_hash)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) if required => {
                // No enumeration: the same answer as a new account; the
                // owner learns of the attempt by mail.
                self.send_later(Template::AccountExists, &user.email, "", "");
                tracing::info!("sign-up with a taken email (verification required)");
                return Ok(Registered::VerificationSent(user));
            }
            Err(StoreError::Conflict) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user_id = %user.id, "user signed up");
        self.metrics.sign_up(SignUpMethod::Password);
        if required {
            self.send_verification(&user, verify_link).await?;
            return Ok(Registered::VerificationSent(user));
        }
        Ok(Registered::SignedIn(
            self.start_session(user, meta, req.remember_me).await?,
        ))
    }

    /// A new single-use token for `purpose`, carrying `value` for `ttl`:
    /// stored as the verification row `<purpose>:<sha256(token)>`, so the
    /// token itself is never stored.
    pub(crate) async fn issue_token(
        &self,
        purpose: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<SessionToken, AuthError> {
        let token = SessionToken::generate();
        let t = self.now();
        self.store
            .insert_verification(
                &format!("{purpose}:{}", token.hash().as_str()),
                value,
                t + delta(ttl),
                t,
            )
            .await?;
        Ok(token)
    }

    /// Consumes a token [`Warden::issue_token`] made: its value, if the
    /// token is known and live. Of two concurrent calls, at most one gets
    /// it.
    pub(crate) async fn take_token(
        &self,
        purpose: &str,
        token: &str,
    ) -> Result<Option<String>, AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Ok(None);
        }
        let id = format!("{purpose}:{}", TokenHash::of(token).as_str());
        Ok(match self.store.take_verification(&id).await? {
            Some((value, expires_at)) if expires_at > self.now() => Some(value),
            _ => None,
        })
    }

    /// Stores a verification token for `user` and mails the link.
    async fn send_verification(
        &self,
        user: &User,
        link: impl FnOnce(&str) -> String,
    ) -> Result<(), AuthError> {
        let expires_in = self.settings.email_verification.expires_in;
        let token = self
            .issue_token("verify-email", &user.id, expires_in)
            .await?;
        self.send_later(
            Template::VerifyEmail,
            &user.email,
            &link(token.expose()),
            &human_duration(expires_in),
        );
        Ok(())
    }

    /// Sends a new verification link to `email`, if it belongs to an
    /// unverified user; answers the same otherwise, in the same time (the
    /// work happens in the background). At most 3 per address per minute.
    pub fn resend_verification(
        self: &Arc<Self>,
        email: &str,
        link: impl FnOnce(&str) -> String + Send + 'static,
    ) -> Result<(), AuthError> {
        let email = validate::email(email)?;
        self.detached("verification email not sent", move |me| async move {
            let Some((user, _)) = me.store.find_user_by_email(&email).await? else {
                return Ok(());
            };
            if user.email_verified || !me.verification_mail_allowed(&user.email).await {
                return Ok(());
            }
            me.send_verification(&user, link).await
        });
        Ok(())
    }

    /// Runs `work` after the answer: for requests whose answer must not
    /// depend (in content or time) on what the work finds.
    pub(crate) fn detached<F>(
        self: &Arc<Self>,
        failure: &'static str,
        work: impl FnOnce(Arc<Self>) -> F,
    ) where
        F: std::future::Future<Output = Result<(), AuthError>> + Send + 'static,
    {
        let task = work(self.clone());
        tokio::spawn(async move {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "{failure}");
            }
        });
    }

    async fn verification_mail_allowed(&self, email: &str) -> bool {
        match self
            .counters
            .hit(&format!("verify-mail:{email}"), Duration::from_secs(60))
            .await
        {
            Ok(hit) => hit.count <= 3,
            Err(e) => {
                tracing::warn!(error = %e, "verification mail counter unavailable");
                true
            }
        }
    }

    /// Follows a verification link: marks the email verified, or completes
    /// an email change. Tokens are single-use and expire.
    pub async fn verify_email(
        &self,
        token: &str,
        meta: RequestMeta,
    ) -> Result<Verified, AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::InvalidToken);
        }
        let hash = TokenHash::of(token);
        let t = self.now();
        let verify_id = format!("verify-email:{}", hash.as_str());
        let change_id = format!("change-email:{}", hash.as_str());
        let (user, email_changed) = match self.store.take_verification(&verify_id).await? {
            Some((user_id, expires_at)) if expires_at > t => {
                let user = self
                    .store
                    .set_email_verified(&user_id, t)
                    .await?
                    .ok_or(AuthError::InvalidToken)?;
                (user, false)
            }
            Some(_) => return Err(AuthError::InvalidToken),
            None => match self.store.take_verification(&change_id).await? {
                Some((value, expires_at)) if expires_at > t => {
                    let (user_id, new_email) =
                        value.split_once('\n').ok_or(AuthError::InvalidToken)?;
                    let user = match self.store.set_email(user_id, new_email, t).await {
                        Ok(u) => u.ok_or(AuthError::InvalidToken)?,
                        Err(StoreError::Conflict) => return Err(AuthError::EmailTaken),
                        Err(e) => return Err(e.into()),
                    };
                    (user, true)
                }
                _ => return Err(AuthError::InvalidToken),
            },
        };
        self.forget_user(&user.id);
        tracing::info!(user_id = %user.id, email_changed, "email verified");
        // Never a way around two-factor: such users sign in with both factors.
        let signed_in = if self.settings.email_verification.auto_sign_in
            && !email_changed
            && !user.two_factor_enabled
        {
            Some(self.start_session(user.clone(), meta, true).await?)
        } else {
            None
        };
        Ok(Verified {
            user,
            email_changed,
            signed_in,
        })
    }

    /// Asks to move a signed-in user to `new_email`: a confirmation link
    /// goes to the new address and a notice to the old one; nothing changes
    /// until the link is followed. A taken address gets nothing (and the
    /// answer is the same).
    pub async fn change_email(
        &self,
        auth: &Authenticated,
        new_email: &str,
        link: impl FnOnce(&str) -> String,
    ) -> Result<(), AuthError> {
        self.not_impersonating(auth)?;
        let new_email = validate::email(new_email)?;
        if new_email == auth.user.email {
            return Err(AuthError::Invalid {
                field: "newEmail",
                message: "is the current email".into(),
            });
        }
        if self.store.find_user_by_email(&new_email).await?.is_some() {
            tracing::info!(user_id = %auth.user.id, "email change to a taken address ignored");
            return Ok(());
        }
        let expires_in = self.settings.email_verification.expires_in;
        let token = self
            .issue_token(
                "change-email",
                &format!("{}\n{new_email}", auth.user.id),
                expires_in,
            )
            .await?;
        self.send_later(
            Template::ChangeEmail,
            &new_email,
            &link(token.expose()),
            &human_duration(expires_in),
        );
        self.send_later(Template::EmailChangeRequested, &auth.user.email, "", "");
        tracing::info!(user_id = %auth.user.id, "email change requested");
        Ok(())
    }

    /// Checks an email and password and starts a session, or, for a user
    /// with two-factor on, a challenge for the second step. Unknown emails
    /// and wrong passwords cost the same and fail the same way.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        remember_me: bool,
        meta: RequestMeta,
    ) -> Result<SignInOutcome, AuthError> {
        self.sign_in_with(
            email,
            password,
            remember_me,
            meta,
            None::<fn(&str) -> String>,
        )
        .await
    }

    /// [`Warden::sign_in`]; an unverified user (when verification is
    /// required) is refused and sent a new link made by `verify_link`.
    pub async fn sign_in_with(
        &self,
        email: &str,
        password: &str,
        remember_me: bool,
        meta: RequestMeta,
        verify_link: Option<impl FnOnce(&str) -> String>,
    ) -> Result<SignInOutcome, AuthError> {
        let result = self
            .password_sign_in(email, password, remember_me, meta, verify_link)
            .await;
        self.count_sign_in(SignInMethod::Password, &result, |o| {
            matches!(o, SignInOutcome::TwoFactorRequired(_))
        });
        result
    }

    async fn password_sign_in(
        &self,
        email: &str,
        password: &str,
        remember_me: bool,
        meta: RequestMeta,
        verify_link: Option<impl FnOnce(&str) -> String>,
    ) -> Result<SignInOutcome, AuthError> {
        let email = validate::email(email)?;
        self.settings.password.check_max(password)?;

        let found = self.store.find_user_by_email(&email).await?;
        let lock_key = format!("signin-failures:{email}");
        self.check_lockout(&lock_key, found.as_ref().map(|(u, _)| u), &meta)
            .await?;
        let stored = found
            .as_ref()
            .and_then(|(_, cred)| cred.as_ref())
            .and_then(|c| c.password_hash.as_deref());
        let verified = self.hasher.verify(password, stored).await?;
        let Some((user, Some(cred))) = found.filter(|_| verified.ok) else {
            tracing::info!("sign-in rejected");
            self.count_failure(&lock_key).await;
            return Err(AuthError::InvalidCredentials);
        };
        if let Err(e) = self.counters.reset(&lock_key).await {
            tracing::warn!(error = %e, "sign-in failure counter not reset");
        }
        if self.settings.email_verification.required && !user.email_verified {
            if let Some(link) = verify_link {
                if self.verification_mail_allowed(&user.email).await {
                    self.send_verification(&user, link).await?;
                }
            }
            tracing::info!(user_id = %user.id, "sign-in refused: email not verified");
            return Err(AuthError::EmailNotVerified);
        }
        if verified.needs_rehash {
            // The user is signed in even if the upgrade fails; it is retried
            // at the next sign-in.
            match self.hasher.hash(password).await {
                Ok(h) => {
                    if let Err(e) = self
                        .store
                        .set_password_hash(&cred.account_id, &h, self.now())
                        .await
                    {
                        tracing::warn!(user_id = %user.id, error = %e, "password rehash not stored");
                    } else {
                        tracing::info!(user_id = %user.id, "password hash upgraded to argon2id");
                    }
                }
                Err(e) => tracing::warn!(user_id = %user.id, error = %e, "password rehash failed"),
            }
        }
        tracing::info!(user_id = %user.id, "password accepted");
        self.after_first_factor(user, meta, remember_me).await
    }

    /// Refuses a sign-in for an email with too many recent failures, unless
    /// the device signed in as that user before. The same for unknown
    /// emails, so the answer says nothing about whether an account exists.
    async fn check_lockout(
        &self,
        key: &str,
        user: Option<&User>,
        meta: &RequestMeta,
    ) -> Result<(), AuthError> {
        let max = self.settings.lockout.max_failures;
        if max == 0 {
            return Ok(());
        }
        let hit = match self.counters.peek(key).await {
            Ok(Some(hit)) if hit.count >= max => hit,
            Ok(_) => return Ok(()),
            Err(e) => {
                // Fail open: hashing still bounds guessing speed.
                tracing::warn!(error = %e, "sign-in failure counter unavailable");
                return Ok(());
            }
        };
        let known_device = matches!(
            (user, meta.device_user_id.as_deref()),
            (Some(u), Some(d)) if u.id == d
        );
        if known_device {
            tracing::info!(user_id = %user.map(|u| u.id.as_str()).unwrap_or(""), "locked account: sign-in allowed from a known device");
            return Ok(());
        }
        tracing::warn!("sign-in refused: too many recent failures for this account");
        Err(AuthError::AccountLocked {
            retry_after: hit.reset_in,
        })
    }

    async fn count_failure(&self, key: &str) {
        if self.settings.lockout.max_failures == 0 {
            return;
        }
        match self.counters.hit(key, self.settings.lockout.window).await {
            Ok(hit) if hit.count == self.settings.lockout.max_failures => {
                tracing::warn!("account sign-in locked after repeated failures");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sign-in failure not counted"),
        }
    }

    /// A new session row (not yet stored) and its token.
    pub(crate) fn new_session(
        &self,
        user_id: &str,
        meta: RequestMeta,
        remember_me: bool,
    ) -> (Session, SessionToken) {
        let token = SessionToken::generate();
        let t = self.now();
        let lifetime = if remember_me {
            self.settings.session.expires_in
        } else {
            self.settings
                .session
                .short_expires_in
                .min(self.settings.session.expires_in)
        };
        let session = Session {
            id: new_id(),
            token_hash: token.hash(),
            user_id: user_id.to_owned(),
            expires_at: t + delta(lifetime.min(self.settings.session.max_lifetime)),
            created_at: t,
            updated_at: t,
            ip_address: meta.ip_address.map(|s| truncate(s, 64)),
            user_agent: meta.user_agent.map(|s| truncate(s, 512)),
            impersonated_by: None,
        };
        (session, token)
    }

    /// Starts a session: the one place every sign-in method ends, so a
    /// banned user is refused here whatever the method.
    pub(crate) async fn start_session(
        &self,
        mut user: User,
        meta: RequestMeta,
        remember_me: bool,
    ) -> Result<SignedIn, AuthError> {
        self.check_not_banned(&mut user).await?;
        let (session, token) = self.new_session(&user.id, meta, remember_me);
        self.store.insert_session(&session).await?;
        Ok(SignedIn {
            user,
            session,
            token,
            trusted_device: None,
        })
    }

    /// Was this session started with "remember me"? Derived from the row
    /// itself (its lifetime is `expiresAt - updatedAt`, which every refresh
    /// preserves), so BetterAuth's schema needs no extra column.
    pub fn is_remembered(&self, session: &Session) -> bool {
        let s = &self.settings.session;
        s.expires_in <= s.short_expires_in
            || session.expires_at - session.updated_at > delta(s.short_expires_in)
    }

    /// When a session ends: its (idle) expiry, or its absolute end.
    fn ends_at(&self, session: &Session) -> Timestamp {
        session.expires_at.min(self.absolute_end(session))
    }

    fn absolute_end(&self, session: &Session) -> Timestamp {
        session.created_at + delta(self.settings.session.max_lifetime)
    }

    /// Was this session created within `fresh_age`?
    pub fn is_fresh(&self, session: &Session) -> bool {
        let age = self.settings.session.fresh_age;
        age.is_zero() || self.now() - session.created_at < delta(age)
    }

    /// Validates a session token: the hot path of every protected request.
    ///
    /// It runs in an `auth` span recording the outcome, the user id and the
    /// session id (never the token), and whether the session cache answered.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        let span = tracing::info_span!(
            "auth",
            outcome = tracing::field::Empty,
            user_id = tracing::field::Empty,
            session_id = tracing::field::Empty,
            cached = tracing::field::Empty,
        );
        let result = self.check_session(token).instrument(span.clone()).await;
        match &result {
            Ok((auth, cached)) => {
                span.record("outcome", "ok");
                span.record("user_id", auth.user.id.as_str());
                span.record("session_id", auth.session.id.as_str());
                span.record("cached", *cached);
            }
            Err(e) => {
                span.record(
                    "outcome",
                    match e {
                        AuthError::SessionExpired => "expired",
                        AuthError::InvalidSession => "invalid",
                        _ => "error",
                    },
                );
            }
        }
        result.map(|(auth, _)| auth)
    }

    /// [`Warden::authenticate`], and whether the cache answered.
    async fn check_session(&self, token: &str) -> Result<(Authenticated, bool), AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::InvalidSession);
        }
        let hash = TokenHash::of(token);
        let t = self.now();
        let cache = self
            .cache
            .as_ref()
            .filter(|_| self.cache_live.load(Ordering::SeqCst));
        // Read before the database: an invalidation after this point makes
        // what the database answers unfit for the cache.
        let generation = self.cache_gen.load(Ordering::SeqCst);
        if let Some(cache) = cache {
            if let Some(hit) = cache.get(&hash.0) {
                if self.ends_at(&hit.session) > t {
                    self.metrics.cache_lookup(CacheResult::Hit);
                    return Ok(((*hit).clone(), true));
                }
                cache.invalidate(&hash.0);
                self.metrics.session_cache_invalidations.inc();
            }
            self.metrics.cache_lookup(CacheResult::Miss);
        }
        let found = match self.store.find_session(hash.as_str()).await? {
            Some(found) => Some(found),
            None => self.adopt_plain_session(token, &hash).await?,
        };
        let Some((mut session, user)) = found else {
            return Err(AuthError::InvalidSession);
        };
        if self.ends_at(&session) <= t {
            self.store.delete_session_by_token(hash.as_str()).await?;
            return Err(AuthError::SessionExpired);
        }
        // Banning ends the user's sessions; this also refuses those made
        // meanwhile or by another tool that bans without ending them.
        if user.is_banned(t) {
            self.store.delete_session_by_token(hash.as_str()).await?;
            return Err(AuthError::InvalidSession);
        }
        // Sliding refresh (BetterAuth's rule): a remembered session used more
        // than `update_age` after its last refresh (`expiresAt - expiresIn`)
        // lives `expires_in` from now.
        let mut refreshed = false;
        let expires_in = delta(self.settings.session.expires_in);
        if self.is_remembered(&session)
            && t - (session.expires_at - expires_in) >= delta(self.settings.session.update_age)
        {
            session.expires_at = (t + expires_in).min(self.absolute_end(&session));
            session.updated_at = t;
            self.store
                .extend_session(&session.id, session.expires_at, t)
                .await?;
            refreshed = true;
        }
        let auth = Authenticated {
            user,
            session,
            refreshed,
        };
        if let Some(cache) = cache {
            let cached = Authenticated {
                refreshed: false,
                ..auth.clone()
            };
            cache.insert(hash.0.clone(), Arc::new(cached));
            // Invalidated (here, or by another instance) since the read
            // began: what was read may be what the invalidation ended.
            if self.cache_gen.load(Ordering::SeqCst) != generation
                || !self.cache_live.load(Ordering::SeqCst)
            {
                cache.invalidate(&hash.0);
            }
        }
        Ok((auth, false))
    }

    /// A session that BetterAuth created stores its token in clear. Found
    /// that way, it is converted at once: its row gets the token's hash, so
    /// users keep their sessions when a BetterAuth database moves to Warden
    /// and the clear token leaves the database on first use.
    ///
    /// Only tokens shorter than a stored hash (64 hex characters) are looked
    /// up in clear: a hash read from a leaked database must never work as a
    /// token.
    async fn adopt_plain_session(
        &self,
        token: &str,
        hash: &TokenHash,
    ) -> Result<Option<(Session, User)>, AuthError> {
        if !self.settings.session.adopt_plain_tokens || token.len() >= 64 {
            return Ok(None);
        }
        let Some((mut session, user)) = self.store.find_session(token).await? else {
            return Ok(None);
        };
        if !self
            .store
            .replace_session_token(&session.id, token, hash.as_str())
            .await?
        {
            // Converted (or revoked) concurrently: look it up by hash.
            return Ok(self.store.find_session(hash.as_str()).await?);
        }
        session.token_hash = hash.clone();
        tracing::info!(user_id = %user.id, session_id = %session.id, "BetterAuth session adopted: its token is now stored hashed");
        Ok(Some((session, user)))
    }

    /// Ends the session with this token. Unknown tokens are not an error:
    /// signing out twice is harmless.
    pub async fn sign_out(&self, token: &str) -> Result<bool, AuthError> {
        let hash = TokenHash::of(token);
        let deleted = match self.store.delete_session_by_token(hash.as_str()).await {
            Ok(true) => Ok(true),
            // A BetterAuth session not yet converted (see adopt_plain_session).
            Ok(false) if self.settings.session.adopt_plain_tokens && token.len() < 64 => {
                self.store.delete_session_by_token(token).await
            }
            other => other,
        };
        // After the change (see `invalidate.rs`), and even if it failed.
        self.invalidate(Invalidation::Session(hash.0));
        Ok(deleted?)
    }

    /// The user's live sessions, newest first. Sessions an admin opened to
    /// impersonate the user are not shown (as BetterAuth); admins see them
    /// with [`Warden::admin_list_sessions`].
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, AuthError> {
        let mut sessions = self.store.list_user_sessions(user_id, self.now()).await?;
        sessions.retain(|s| s.impersonated_by.is_none());
        Ok(sessions)
    }

    /// Revokes one of the user's own sessions.
    pub async fn revoke_session(&self, user_id: &str, session_id: &str) -> Result<(), AuthError> {
        match self
            .revoke_sessions(user_id, SessionFilter::Id(session_id))
            .await?
        {
            0 => Err(AuthError::SessionNotFound),
            _ => Ok(()),
        }
    }

    /// Revokes the user's sessions that `which` selects; returns how many.
    /// Another user's sessions are never touched.
    pub async fn revoke_sessions(
        &self,
        user_id: &str,
        which: SessionFilter<'_>,
    ) -> Result<usize, AuthError> {
        let deleted = self.store.delete_sessions(user_id, which).await?;
        self.forget_tokens(&deleted);
        if !deleted.is_empty() {
            tracing::info!(user_id, count = deleted.len(), "sessions revoked");
        }
        Ok(deleted.len())
    }

    pub(crate) fn forget_tokens(&self, token_hashes: &[String]) {
        for h in token_hashes {
            self.invalidate(Invalidation::Session(h.clone()));
        }
    }

    /// Checks the password of a signed-in user (to confirm a sensitive
    /// operation).
    pub async fn verify_password(&self, user_id: &str, password: &str) -> Result<(), AuthError> {
        self.check_password(user_id, password).await.map(|_| ())
    }

    async fn check_password(&self, user_id: &str, password: &str) -> Result<Credential, AuthError> {
        if password.is_empty() || self.settings.password.check_max(password).is_err() {
            return Err(AuthError::InvalidPassword);
        }
        let cred = self
            .store
            .find_credential(user_id)
            .await?
            .filter(|c| c.password_hash.is_some())
            .ok_or(AuthError::CredentialAccountNotFound)?;
        let verified = self
            .hasher
            .verify(password, cred.password_hash.as_deref())
            .await?;
        if !verified.ok {
            tracing::info!(user_id, "password confirmation rejected");
            return Err(AuthError::InvalidPassword);
        }
        Ok(cred)
    }

    /// Changes a signed-in user's password. The caller's session is replaced
    /// by a new one (the old token stops working), and with
    /// `revoke_other_sessions` every other session ends too; all in one
    /// transaction.
    pub async fn change_password(
        &self,
        auth: &Authenticated,
        change: PasswordChange,
        meta: RequestMeta,
    ) -> Result<SignedIn, AuthError> {
        self.not_impersonating(auth)?;
        let user_id = auth.user.id.as_str();
        self.settings
            .password
            .check_new(&change.new_password, Some(&auth.user.email))?;
        let cred = self
            .check_password(user_id, &change.current_password)
            .await?;
        let hash = self.hasher.hash(&change.new_password).await?;
        let (session, token) = self.new_session(user_id, meta, self.is_remembered(&auth.session));
        let revoke = if change.revoke_other_sessions {
            SessionFilter::All
        } else {
            SessionFilter::Id(&auth.session.id)
        };
        let deleted = self
            .store
            .change_password(&cred.account_id, &hash, revoke, &session)
            .await?;
        self.forget_tokens(&deleted);
        tracing::info!(
            user_id,
            revoked_sessions = deleted.len(),
            "password changed"
        );
        Ok(SignedIn {
            user: auth.user.clone(),
            session,
            token,
            trusted_device: None,
        })
    }

    /// Starts a password reset: if `email` belongs to a user, mails them a
    /// link made by `link(token)` that works once within
    /// `password_reset.expires_in`. Only the address's syntax is checked
    /// before answering; the lookup, the token and the mail happen in the
    /// background, so the answer and its timing are the same whether the
    /// email exists or not (and whether the database or mail server is slow).
    pub fn request_password_reset(
        self: &Arc<Self>,
        email: &str,
        link: impl FnOnce(&str) -> String + Send + 'static,
    ) -> Result<(), AuthError> {
        let email = validate::email(email)?;
        self.detached("password reset not started", move |me| async move {
            me.start_password_reset(&email, link).await
        });
        Ok(())
    }

    async fn start_password_reset(
        &self,
        email: &str,
        link: impl FnOnce(&str) -> String,
    ) -> Result<(), AuthError> {
        let Some((user, _)) = self.store.find_user_by_email(email).await? else {
            tracing::info!("password reset requested for an unknown email");
            return Ok(());
        };
        let expires_in = self.settings.password_reset.expires_in;
        let token = self
            .issue_token("reset-password", &user.id, expires_in)
            .await?;
        self.send_later(
            Template::PasswordReset,
            &user.email,
            &link(token.expose()),
            &human_duration(expires_in),
        );
        tracing::info!(user_id = %user.id, "password reset requested");
        Ok(())
    }

    /// Is this reset token usable (without using it)?
    pub async fn check_reset_token(&self, token: &str) -> Result<(), AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::InvalidToken);
        }
        let identifier = format!("reset-password:{}", TokenHash::of(token).as_str());
        match self.store.peek_verification(&identifier).await? {
            Some((_, expires_at)) if expires_at > self.now() => Ok(()),
            _ => Err(AuthError::InvalidToken),
        }
    }

    /// Completes a password reset: the token is consumed (once, even under
    /// concurrent use), the password replaced, every session of the user
    /// ended (unless configured otherwise) and a notice mailed.
    pub async fn reset_password(&self, token: &str, new_password: &str) -> Result<(), AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::InvalidToken);
        }
        // Length and blocklist first, so a bad choice does not burn the link.
        self.settings.password.check_new(new_password, None)?;
        let user_id = self
            .take_token("reset-password", token)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let user = self
            .store
            .find_user(&user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        self.settings
            .password
            .check_new(new_password, Some(&user.email))?;
        let hash = self.hasher.hash(new_password).await?;
        self.store
            .set_user_password(&user.id, &user.id, &hash, self.now())
            .await?;
        if self.settings.password_reset.revoke_sessions {
            let deleted = self
                .store
                .delete_sessions(&user.id, SessionFilter::All)
                .await?;
            self.forget_tokens(&deleted);
        }
        // A reset is the way out of a lockout.
        let _ = self
            .counters
            .reset(&format!("signin-failures:{}", user.email))
            .await;
        self.send_later(Template::PasswordChanged, &user.email, "", "");
        tracing::info!(user_id = %user.id, "password reset");
        Ok(())
    }

    /// Deletes a signed-in user's account, with its sessions. Needs the
    /// password, or, without one, a fresh session.
    pub async fn delete_user(
        &self,
        auth: &Authenticated,
        password: Option<&str>,
    ) -> Result<(), AuthError> {
        self.not_impersonating(auth)?;
        let user_id = auth.user.id.as_str();
        match password {
            Some(p) => self.verify_password(user_id, p).await?,
            None if self.is_fresh(&auth.session) => {}
            None => return Err(AuthError::SessionNotFresh),
        }
        if !self.store.delete_user(user_id).await? {
            return Err(AuthError::UserNotFound);
        }
        self.forget_user(user_id);
        tracing::info!(user_id, "user deleted");
        Ok(())
    }

    /// Updates a user's name and/or image.
    pub async fn update_profile(
        &self,
        user_id: &str,
        name: Option<&str>,
        image: Option<Option<&str>>,
    ) -> Result<User, AuthError> {
        let update = UserUpdate {
            name: name.map(validate::name).transpose()?,
            image: match image {
                None => None,
                Some(None) => Some(None),
                Some(Some(i)) => Some(Some(validate::image(i)?)),
            },
            ..UserUpdate::default()
        };
        let user = self
            .store
            .update_user(user_id, &update, self.now())
            .await?
            .ok_or(AuthError::UserNotFound)?;
        self.forget_user(user_id);
        Ok(user)
    }

    /// Drops every cached session of a user (after a change to the user).
    pub(crate) fn forget_user(&self, user_id: &str) {
        self.invalidate(Invalidation::User(user_id.to_owned()));
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        let t = self.now();
        // The revocation feed is read a few seconds back; keep a minute.
        if let Err(e) = self
            .store
            .purge_revocations(t - TimeDelta::seconds(60))
            .await
        {
            tracing::warn!(error = %e, "old revocation feed rows not purged");
        }
        Ok(self.store.delete_expired_sessions(t).await?)
    }

    pub async fn ready(&self) -> Result<(), AuthError> {
        Ok(self.store.ping().await?)
    }
}

/// "1 hour", "30 minutes", "2 days": for messages.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s.is_multiple_of(86400) && s >= 86400 {
        (s / 86400, "day")
    } else if s.is_multiple_of(3600) && s >= 3600 {
        (s / 3600, "hour")
    } else if s >= 60 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn truncate(mut s: String, max_chars: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max_chars) {
        s.truncate(i);
    }
    s
}
