//! Passwordless sign-in: magic links and one-time codes by email
//! (BetterAuth's `magicLink` and `emailOTP` plugins), and the emailed code
//! of two-factor's `otp` method.
//!
//! Storage is the `verification` table, as for every single-use token:
//! - a magic link is a token of 32 random alphanumerics (about 190 bits)
//!   stored as `magic-link:<sha256(token)>`, consumed with one
//!   `DELETE ... RETURNING`;
//! - a code is stored as `email-otp:<type>:<email>` (two-factor:
//!   `2fa-otp:<challenge hash>` or `2fa-otp:session:<session id>`) with the
//!   value `<hmac>:<attempts>`: a keyed hash (the server secret's key, bound
//!   to the identifier), never the code. A guess consumes the row
//!   atomically (of concurrent guesses only one sees it), compares in
//!   constant time, and a wrong guess puts it back with one more attempt:
//!   concurrent guesses can never compare more than `allowed_attempts`
//!   times, and after that the code is gone.
//!
//! Requests that send mail answer before looking the email up: the lookup,
//! the token and the mail happen in the background, so known and unknown
//! emails get the same answer in the same time.

use std::sync::Arc;
use std::time::Duration;

use rand::{rngs::OsRng, Rng};
use serde_json::json;
use warden_telemetry::metrics::{SignInMethod, SignUpMethod};

use crate::error::AuthError;
use crate::mail::Template;
use crate::model::{RequestMeta, User};
use crate::service::{delta, human_duration, Authenticated, SignedIn, Verified, Warden};
use crate::store::{SessionFilter, StoreError};
use crate::token::{new_id, TokenHash};
use crate::two_factor_flow::SignInOutcome;
use crate::validate;

/// `[magic_link]`.
#[derive(Clone, Debug)]
pub struct MagicLinkSettings {
    /// Off by default: the routes answer 404.
    pub enabled: bool,
    /// How long a link works (default 5 minutes, as BetterAuth).
    pub expires_in: Duration,
    /// Unknown emails get no link (and no account).
    pub disable_sign_up: bool,
    /// Links mailed to one address per `email_window` (default 3 per
    /// minute); more requests get the same answer and no mail.
    pub max_per_email: u64,
    pub email_window: Duration,
}

impl Default for MagicLinkSettings {
    fn default() -> Self {
        MagicLinkSettings {
            enabled: false,
            expires_in: Duration::from_secs(300),
            disable_sign_up: false,
            max_per_email: 3,
            email_window: Duration::from_secs(60),
        }
    }
}

/// `[email_otp]`.
#[derive(Clone, Debug)]
pub struct EmailOtpSettings {
    /// Off by default: the routes answer 404.
    pub enabled: bool,
    /// Digits per code (default 6).
    pub length: usize,
    /// How long a code works (default 5 minutes).
    pub expires_in: Duration,
    /// Wrong guesses a code survives (default 3); then it is dead.
    pub allowed_attempts: u64,
    /// Unknown emails get no sign-in code (and no account).
    pub disable_sign_up: bool,
    /// Codes mailed to one address per `email_window` (default 3 per
    /// minute); more requests get the same answer and no mail.
    pub max_per_email: u64,
    pub email_window: Duration,
    /// Email change by code (`/email-otp/request-email-change`,
    /// `/email-otp/change-email`; BetterAuth's `changeEmail.enabled`,
    /// default off).
    pub change_email: bool,
    /// ... which also needs an `email-verification` code of the current
    /// address (`changeEmail.verifyCurrentEmail`, default off).
    pub change_email_verify_current: bool,
}

impl Default for EmailOtpSettings {
    fn default() -> Self {
        EmailOtpSettings {
            enabled: false,
            length: 6,
            expires_in: Duration::from_secs(300),
            allowed_attempts: 3,
            disable_sign_up: false,
            change_email: false,
            change_email_verify_current: false,
            max_per_email: 3,
            email_window: Duration::from_secs(60),
        }
    }
}

/// What an emailed code is for (BetterAuth's `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpPurpose {
    SignIn,
    EmailVerification,
    ForgetPassword,
    /// A code to the new address of an email change (never sent by
    /// `send-verification-otp`).
    ChangeEmail,
}

impl OtpPurpose {
    /// BetterAuth's names: `sign-in`, `email-verification`,
    /// `forget-password`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sign-in" => Some(OtpPurpose::SignIn),
            "email-verification" => Some(OtpPurpose::EmailVerification),
            "forget-password" => Some(OtpPurpose::ForgetPassword),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OtpPurpose::SignIn => "sign-in",
            OtpPurpose::EmailVerification => "email-verification",
            OtpPurpose::ForgetPassword => "forget-password",
            OtpPurpose::ChangeEmail => "change-email",
        }
    }

    fn template(self) -> Template {
        match self {
            OtpPurpose::SignIn => Template::SignInCode,
            OtpPurpose::EmailVerification => Template::VerifyEmailCode,
            OtpPurpose::ForgetPassword => Template::PasswordResetCode,
            OtpPurpose::ChangeEmail => Template::ChangeEmailCode,
        }
    }
}

/// What a magic link or a sign-in code led to.
#[derive(Debug, Clone)]
pub struct PasswordlessSignIn {
    /// A session, or (with `two_factor.passwordless_challenge`) the
    /// two-factor challenge.
    pub outcome: SignInOutcome,
    /// The email had no account: one was created.
    pub new_user: bool,
}

const MAGIC_LINK: &str = "magic-link";

fn otp_identifier(purpose: OtpPurpose, email: &str) -> String {
    format!("email-otp:{}:{email}", purpose.as_str())
}

/// The identifier of a two-factor code sent for a sign-in challenge.
pub(crate) fn challenge_otp_identifier(challenge_hash: &TokenHash) -> String {
    format!("2fa-otp:{}", challenge_hash.as_str())
}

fn session_otp_identifier(session_id: &str) -> String {
    format!("2fa-otp:session:{session_id}")
}

/// A well-formed code: `len` ASCII digits.
pub(crate) fn check_code_shape(
    code: &str,
    len: usize,
    field: &'static str,
) -> Result<(), AuthError> {
    let c = code.trim();
    if c.len() != len || !c.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::invalid(
            field,
            format!("must be the {len}-digit code from the email"),
        ));
    }
    Ok(())
}

/// Why a stored code was not accepted.
pub(crate) enum CodeRefusal {
    /// No code (never sent, used, or ended after too many guesses).
    Missing,
    Expired,
    TooManyAttempts,
    Wrong,
}

impl Warden {
    fn new_code(len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'0' + OsRng.gen_range(0..10u8)))
            .collect()
    }

    /// Stores a new code under `id` (replacing any earlier one).
    pub(crate) async fn store_code(
        &self,
        id: &str,
        code: &str,
        ttl: Duration,
    ) -> Result<(), AuthError> {
        let t = self.now();
        self.store.take_verification(id).await?;
        self.store
            .insert_verification(
                id,
                &format!("{}:0", self.keys.otp_hash(id, code)),
                t + delta(ttl),
                t,
            )
            .await?;
        Ok(())
    }

    /// Checks `code` against the code stored under `id`, atomically (see
    /// the module's notes). `keep`: a right code stays usable (for a check
    /// before the real use).
    pub(crate) async fn use_code(
        &self,
        id: &str,
        code: &str,
        allowed_attempts: u64,
        keep: bool,
    ) -> Result<Result<(), CodeRefusal>, AuthError> {
        let t = self.now();
        let Some((value, expires_at)) = self.store.take_verification(id).await? else {
            return Ok(Err(CodeRefusal::Missing));
        };
        if expires_at <= t {
            return Ok(Err(CodeRefusal::Expired));
        }
        let (hash, attempts) = value.rsplit_once(':').unwrap_or((value.as_str(), ""));
        let attempts: u64 = attempts.parse().unwrap_or(u64::MAX);
        if attempts >= allowed_attempts {
            return Ok(Err(CodeRefusal::TooManyAttempts));
        }
        if !self.keys.otp_matches(id, code.trim(), hash) {
            self.store
                .insert_verification(id, &format!("{hash}:{}", attempts + 1), expires_at, t)
                .await?;
            return Ok(Err(CodeRefusal::Wrong));
        }
        if keep {
            self.store
                .insert_verification(id, &value, expires_at, t)
                .await?;
        }
        Ok(Ok(()))
    }

    /// At most `max` mails to `email` per `window` for `what`.
    async fn mail_budget(&self, what: &str, email: &str, max: u64, window: Duration) -> bool {
        match self
            .counters
            .hit(&format!("{what}-mail:{email}"), window)
            .await
        {
            Ok(hit) if hit.count > max => {
                tracing::info!(what, "mail not sent: too many for this address recently");
                false
            }
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, "mail counter unavailable");
                true
            }
        }
    }

    // -----------------------------------------------------------------------
    // Magic links

    /// Mails a sign-in link made by `link(token)` to `email`. Only the
    /// input is checked before answering; the rest happens in the
    /// background (the same answer, in the same time, for any email).
    pub fn request_magic_link(
        self: &Arc<Self>,
        email: &str,
        name: Option<&str>,
        link: impl FnOnce(&str) -> String + Send + 'static,
    ) -> Result<(), AuthError> {
        let s = self.settings.magic_link.clone();
        if !s.enabled {
            return Err(AuthError::FeatureDisabled);
        }
        let email = validate::email(email)?;
        let name = new_user_name(name)?;
        self.detached("magic link not sent", move |me| async move {
            if !me
                .mail_budget(MAGIC_LINK, &email, s.max_per_email, s.email_window)
                .await
            {
                return Ok(());
            }
            let known = me.store.find_user_by_email(&email).await?.is_some();
            if !known && s.disable_sign_up {
                tracing::info!("magic link not sent: unknown email and sign-up disabled");
                return Ok(());
            }
            let token = me
                .issue_token(
                    MAGIC_LINK,
                    &json!({ "email": email, "name": name }).to_string(),
                    s.expires_in,
                )
                .await?;
            me.send_later(
                Template::MagicLink,
                &email,
                &link(token.expose()),
                &human_duration(s.expires_in),
            );
            tracing::info!(new_user = !known, "magic link sent");
            Ok(())
        });
        Ok(())
    }

    /// Follows a magic link: the token works once, within `expires_in`.
    pub async fn verify_magic_link(
        &self,
        token: &str,
        meta: RequestMeta,
    ) -> Result<PasswordlessSignIn, AuthError> {
        let s = &self.settings.magic_link;
        if !s.enabled {
            return Err(AuthError::FeatureDisabled);
        }
        let result = async {
            let value = self
                .take_token(MAGIC_LINK, token)
                .await?
                .ok_or(AuthError::InvalidToken)?;
            let v: serde_json::Value =
                serde_json::from_str(&value).map_err(|_| AuthError::InvalidToken)?;
            let email = v["email"].as_str().ok_or(AuthError::InvalidToken)?;
            let name = v["name"].as_str().unwrap_or("");
            self.passwordless_sign_in(email, name, None, meta, s.disable_sign_up)
                .await
        }
        .await;
        self.count_sign_in(SignInMethod::MagicLink, &result, |o| {
            matches!(o.outcome, SignInOutcome::TwoFactorRequired(_))
        });
        result
    }

    /// The end of a magic-link or code sign-in: the user (created if new,
    /// claimed if unverified), then a session or the two-factor challenge.
    async fn passwordless_sign_in(
        &self,
        email: &str,
        name: &str,
        image: Option<String>,
        meta: RequestMeta,
        disable_sign_up: bool,
    ) -> Result<PasswordlessSignIn, AuthError> {
        let (user, new_user) = match self.store.find_user_by_email(email).await? {
            Some((user, _)) if user.email_verified => (user, false),
            Some((user, _)) => (self.claim_unverified(user).await?, false),
            None if disable_sign_up => return Err(AuthError::SignUpDisabled),
            None => match self.create_passwordless_user(email, name, image).await? {
                Some(user) => (user, true),
                // Created concurrently (another link or code for this email).
                None => match self.store.find_user_by_email(email).await? {
                    Some((user, _)) if user.email_verified => (user, false),
                    Some((user, _)) => (self.claim_unverified(user).await?, false),
                    None => return Err(AuthError::InvalidToken),
                },
            },
        };
        let outcome = if self.settings.two_factor.passwordless_challenge {
            self.after_first_factor(user, meta, true).await?
        } else {
            // BetterAuth's behaviour: its two-factor hook does not run after
            // magic-link or email-OTP sign-ins.
            SignInOutcome::SignedIn(self.start_session(user, meta, true).await?)
        };
        Ok(PasswordlessSignIn { outcome, new_user })
    }

    /// A new user with a verified email and no account; `None` if the email
    /// was taken meanwhile.
    async fn create_passwordless_user(
        &self,
        email: &str,
        name: &str,
        image: Option<String>,
    ) -> Result<Option<User>, AuthError> {
        let t = self.now();
        let user = User {
            id: new_id(),
            name: name.to_owned(),
            email: email.to_owned(),
            email_verified: true,
            image,
            two_factor_enabled: false,
            role: Some(self.settings.admin.default_role.clone()),
            banned: false,
            ban_reason: None,
            ban_expires: None,
            created_at: t,
            updated_at: t,
        };
        match self.store.insert_user(&user).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, "user signed up (passwordless)");
                self.metrics.sign_up(SignUpMethod::Passwordless);
                Ok(Some(user))
            }
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// An existing user whose email was never verified proves the address
    /// (BetterAuth's `revokeUnprovenAccountAccess`): whatever was attached
    /// to the account before the proof (password and linked accounts,
    /// sessions, and in Warden also two-factor) may be someone else's, who
    /// registered the address first, and is removed; the email becomes
    /// verified. One transaction, so two proofs at once clean up once.
    async fn claim_unverified(&self, user: User) -> Result<User, AuthError> {
        if let Some(token_hashes) = self
            .store
            .claim_unverified_user(&user.id, self.now())
            .await?
        {
            self.forget_tokens(&token_hashes);
            self.forget_user(&user.id);
            tracing::warn!(
                user_id = %user.id,
                revoked_sessions = token_hashes.len(),
                "unverified account claimed by proof of its email: its password, linked accounts, sessions and two-factor were removed"
            );
        }
        self.store
            .find_user(&user.id)
            .await?
            .ok_or(AuthError::InvalidToken)
    }

    // -----------------------------------------------------------------------
    // Email one-time codes

    fn email_otp_settings(&self) -> Result<&crate::passwordless::EmailOtpSettings, AuthError> {
        let s = &self.settings.email_otp;
        if s.enabled {
            Ok(s)
        } else {
            Err(AuthError::FeatureDisabled)
        }
    }

    /// Mails a code for `purpose` to `email`: for `sign-in` to any address
    /// (a new account is made on sign-in) unless sign-up is disabled, for
    /// the others only to registered ones. The same answer, at once, in
    /// every case (the work happens in the background).
    pub fn send_email_otp(
        self: &Arc<Self>,
        email: &str,
        purpose: OtpPurpose,
    ) -> Result<(), AuthError> {
        let s = self.email_otp_settings()?.clone();
        let email = validate::email(email)?;
        self.detached("one-time code not sent", move |me| async move {
            if !me
                .mail_budget("email-otp", &email, s.max_per_email, s.email_window)
                .await
            {
                return Ok(());
            }
            let found = me.store.find_user_by_email(&email).await?;
            let send = match purpose {
                OtpPurpose::SignIn => found.is_some() || !s.disable_sign_up,
                _ => found.is_some(),
            };
            if !send {
                tracing::info!(
                    purpose = purpose.as_str(),
                    "one-time code not sent: unknown email"
                );
                return Ok(());
            }
            let code = Self::new_code(s.length);
            me.store_code(&otp_identifier(purpose, &email), &code, s.expires_in)
                .await?;
            me.send_code_later(purpose.template(), &email, &code, s.expires_in);
            tracing::info!(purpose = purpose.as_str(), "one-time code sent");
            Ok(())
        });
        Ok(())
    }

    /// Checks a code for `purpose`, consuming it (`keep`: not).
    async fn email_code(
        &self,
        email: &str,
        purpose: OtpPurpose,
        code: &str,
        keep: bool,
    ) -> Result<(), AuthError> {
        let s = self.email_otp_settings()?;
        check_code_shape(code, s.length, "otp")?;
        let id = otp_identifier(purpose, email);
        match self.use_code(&id, code, s.allowed_attempts, keep).await? {
            Ok(()) => Ok(()),
            Err(CodeRefusal::Expired) => Err(AuthError::OtpExpired),
            Err(CodeRefusal::TooManyAttempts) => {
                tracing::warn!(
                    purpose = purpose.as_str(),
                    "one-time code ended after too many wrong guesses"
                );
                Err(AuthError::OtpTooManyAttempts)
            }
            Err(CodeRefusal::Missing | CodeRefusal::Wrong) => {
                tracing::info!(purpose = purpose.as_str(), "wrong one-time code");
                Err(AuthError::InvalidOtp)
            }
        }
    }

    /// Signs in with a `sign-in` code; an unknown email gets a new account
    /// (named `name`), unless sign-up is disabled.
    pub async fn sign_in_email_otp(
        &self,
        email: &str,
        code: &str,
        name: Option<&str>,
        image: Option<&str>,
        meta: RequestMeta,
    ) -> Result<PasswordlessSignIn, AuthError> {
        let result = async {
            let s = self.email_otp_settings()?;
            let email = validate::email(email)?;
            let name = new_user_name(name)?;
            let image = image.map(validate::image).transpose()?;
            self.email_code(&email, OtpPurpose::SignIn, code, false)
                .await?;
            match self
                .passwordless_sign_in(&email, &name, image, meta, s.disable_sign_up)
                .await
            {
                // BetterAuth's answer: the code is the problem.
                Err(AuthError::SignUpDisabled) => Err(AuthError::InvalidOtp),
                other => other,
            }
        }
        .await;
        self.count_sign_in(SignInMethod::EmailOtp, &result, |o| {
            matches!(o.outcome, SignInOutcome::TwoFactorRequired(_))
        });
        result
    }

    /// Verifies the email with an `email-verification` code. With
    /// `email_verification.auto_sign_in` (and two-factor off) also starts
    /// a session.
    pub async fn verify_email_otp(
        &self,
        email: &str,
        code: &str,
        meta: RequestMeta,
    ) -> Result<Verified, AuthError> {
        let email = validate::email(email)?;
        self.email_code(&email, OtpPurpose::EmailVerification, code, false)
            .await?;
        let (user, _) = self
            .store
            .find_user_by_email(&email)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        let user = self
            .store
            .set_email_verified(&user.id, self.now())
            .await?
            .ok_or(AuthError::UserNotFound)?;
        self.forget_user(&user.id);
        tracing::info!(user_id = %user.id, "email verified (one-time code)");
        let signed_in = if self.settings.email_verification.auto_sign_in && !user.two_factor_enabled
        {
            Some(self.start_session(user.clone(), meta, true).await?)
        } else {
            None
        };
        Ok(Verified {
            user,
            email_changed: false,
            signed_in,
        })
    }

    /// Is this code right (without using it up)? The code counts a wrong
    /// guess as any use does.
    pub async fn check_email_otp(
        &self,
        email: &str,
        purpose: OtpPurpose,
        code: &str,
    ) -> Result<(), AuthError> {
        let email = validate::email(email)?;
        self.email_code(&email, purpose, code, true).await?;
        // Safe to tell: whoever holds the code read it in the mailbox.
        if self.store.find_user_by_email(&email).await?.is_none() {
            return Err(AuthError::UserNotFound);
        }
        Ok(())
    }

    /// Sets a new password with a `forget-password` code: as a reset link,
    /// every session ends (unless configured otherwise), the lockout is
    /// lifted, a notice is mailed, and the email counts as verified.
    pub async fn reset_password_email_otp(
        &self,
        email: &str,
        code: &str,
        new_password: &str,
    ) -> Result<(), AuthError> {
        self.email_otp_settings()?;
        let email = validate::email(email)?;
        // Before the code: a refused password must not burn it.
        self.settings
            .password
            .check_new(new_password, Some(&email))?;
        self.email_code(&email, OtpPurpose::ForgetPassword, code, false)
            .await?;
        let (user, _) = self
            .store
            .find_user_by_email(&email)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        let hash = self.hasher().hash(new_password).await?;
        let t = self.now();
        self.store
            .set_user_password(&user.id, &user.id, &hash, t)
            .await?;
        if !user.email_verified {
            self.store.set_email_verified(&user.id, t).await?;
        }
        if self.settings.password_reset.revoke_sessions {
            let deleted = self
                .store
                .delete_sessions(&user.id, SessionFilter::All)
                .await?;
            self.forget_tokens(&deleted);
        }
        self.forget_user(&user.id);
        let _ = self
            .counters
            .reset(&format!("signin-failures:{}", user.email))
            .await;
        self.send_later(Template::PasswordChanged, &user.email, "", "");
        tracing::info!(user_id = %user.id, "password reset (one-time code)");
        Ok(())
    }

    /// Asks to move a signed-in user to `new_email` by code: the code goes
    /// to the new address (a taken one gets nothing, and the same answer).
    /// With `change_email_verify_current`, `otp` must be an
    /// `email-verification` code of the current address.
    pub async fn request_email_change_otp(
        &self,
        auth: &Authenticated,
        new_email: &str,
        otp: Option<&str>,
    ) -> Result<(), AuthError> {
        let s = self.email_change_settings(auth)?.clone();
        let new_email = self.new_address(auth, new_email)?;
        if s.change_email_verify_current {
            let otp = otp.ok_or(AuthError::invalid(
                "otp",
                "is required: a code sent to the current email (type email-verification)",
            ))?;
            self.email_code(&auth.user.email, OtpPurpose::EmailVerification, otp, false)
                .await?;
        }
        let key = format!("{}:{new_email}", auth.user.id);
        if self.store.find_user_by_email(&new_email).await?.is_some() {
            tracing::info!(user_id = %auth.user.id, "email change by code to a taken address ignored");
            return Ok(());
        }
        if !self
            .mail_budget("email-otp", &new_email, s.max_per_email, s.email_window)
            .await
        {
            return Ok(());
        }
        let code = Self::new_code(s.length);
        self.store_code(
            &otp_identifier(OtpPurpose::ChangeEmail, &key),
            &code,
            s.expires_in,
        )
        .await?;
        self.send_code_later(Template::ChangeEmailCode, &new_email, &code, s.expires_in);
        tracing::info!(user_id = %auth.user.id, "email change by code requested");
        Ok(())
    }

    /// Completes an email change with the code mailed to the new address:
    /// the new address is the user's, verified.
    pub async fn change_email_otp(
        &self,
        auth: &Authenticated,
        new_email: &str,
        otp: &str,
    ) -> Result<User, AuthError> {
        self.email_change_settings(auth)?;
        let new_email = self.new_address(auth, new_email)?;
        let key = format!("{}:{new_email}", auth.user.id);
        self.email_code(&key, OtpPurpose::ChangeEmail, otp, false)
            .await?;
        let user = match self
            .store
            .set_email(&auth.user.id, &new_email, self.now())
            .await
        {
            Ok(u) => u.ok_or(AuthError::UserNotFound)?,
            Err(StoreError::Conflict) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        };
        self.forget_user(&user.id);
        tracing::info!(user_id = %user.id, "email changed (one-time code)");
        Ok(user)
    }

    fn email_change_settings(
        &self,
        auth: &Authenticated,
    ) -> Result<&crate::passwordless::EmailOtpSettings, AuthError> {
        let s = self.email_otp_settings()?;
        if !s.change_email {
            return Err(AuthError::EmailChangeByCodeDisabled);
        }
        self.not_impersonating(auth)?;
        if !self.is_fresh(&auth.session) {
            return Err(AuthError::SessionNotFresh);
        }
        Ok(s)
    }

    fn new_address(&self, auth: &Authenticated, new_email: &str) -> Result<String, AuthError> {
        let new_email = validate::email(new_email).map_err(|e| match e {
            AuthError::Invalid { message, .. } => AuthError::Invalid {
                field: "newEmail",
                message,
            },
            e => e,
        })?;
        if new_email == auth.user.email {
            return Err(AuthError::invalid("newEmail", "is the current email"));
        }
        Ok(new_email)
    }

    // -----------------------------------------------------------------------
    // Two-factor by email (`otp`)

    fn two_factor_otp_enabled(&self) -> Result<(), AuthError> {
        if self.settings.two_factor.email_otp {
            Ok(())
        } else {
            Err(AuthError::TwoFactorOtpNotConfigured)
        }
    }

    /// Mails a two-factor code for a sign-in challenge.
    pub async fn send_two_factor_otp(&self, challenge: &str) -> Result<(), AuthError> {
        self.two_factor_otp_enabled()?;
        let (user_id, _) = self.live_challenge(challenge).await?;
        let user = self
            .store
            .find_user(&user_id)
            .await?
            .ok_or(AuthError::InvalidTwoFactorChallenge)?;
        let id = challenge_otp_identifier(&TokenHash::of(challenge));
        self.mail_two_factor_code(&user, &id).await
    }

    /// Mails a two-factor code to a signed-in user (to turn the `otp`
    /// method on with [`Warden::confirm_two_factor_otp`]).
    pub async fn send_two_factor_otp_signed_in(
        &self,
        auth: &Authenticated,
    ) -> Result<(), AuthError> {
        self.two_factor_otp_enabled()?;
        let id = session_otp_identifier(&auth.session.id);
        self.mail_two_factor_code(&auth.user, &id).await
    }

    async fn mail_two_factor_code(&self, user: &User, id: &str) -> Result<(), AuthError> {
        // The per-address budget of email codes applies (the caller knows
        // the password, so saying so reveals nothing).
        let s = &self.settings.email_otp;
        if !self
            .mail_budget("2fa-otp", &user.email, s.max_per_email, s.email_window)
            .await
        {
            return Err(AuthError::TwoFactorOtpTooSoon);
        }
        let ttl = self.settings.two_factor.otp_expires_in;
        let code = Self::new_code(crate::two_factor::DIGITS as usize);
        self.store_code(id, &code, ttl).await?;
        self.send_code_later(Template::TwoFactorCode, &user.email, &code, ttl);
        tracing::info!(user_id = %user.id, "two-factor code mailed");
        Ok(())
    }

    /// Checks an emailed two-factor code stored under `id` for `user_id`.
    /// Wrong codes count towards the account's two-factor lock, as TOTP
    /// codes do; a code survives `two_factor.max_attempts` wrong guesses.
    pub(crate) async fn check_two_factor_otp(
        &self,
        id: &str,
        user_id: &str,
        code: &str,
    ) -> Result<(), AuthError> {
        check_code_shape(code, crate::two_factor::DIGITS as usize, "code")?;
        let t = self.now();
        let record = self.store.find_two_factor(user_id).await?;
        if let Some(until) = record
            .as_ref()
            .and_then(|r| r.locked_until)
            .filter(|u| *u > t)
        {
            return Err(AuthError::TwoFactorLocked {
                retry_after: (until - t).to_std().unwrap_or_default(),
            });
        }
        let max = self.settings.two_factor.max_attempts.max(1);
        match self.use_code(id, code, max, false).await? {
            Ok(()) => Ok(()),
            Err(CodeRefusal::Missing | CodeRefusal::Expired) => Err(AuthError::TwoFactorOtpExpired),
            Err(CodeRefusal::TooManyAttempts) => Err(AuthError::TwoFactorTooManyAttempts),
            Err(CodeRefusal::Wrong) => {
                if record.is_some() {
                    self.count_two_factor_lock(user_id).await?;
                }
                tracing::info!(user_id, method = "otp", "wrong two-factor code");
                Err(AuthError::InvalidTwoFactorCode)
            }
        }
    }

    /// A signed-in user confirms a mailed code: turns two-factor on with
    /// the `otp` method (the first time), and otherwise just checks it.
    pub async fn confirm_two_factor_otp(
        &self,
        auth: &Authenticated,
        code: &str,
    ) -> Result<User, AuthError> {
        self.two_factor_otp_enabled()?;
        let id = session_otp_identifier(&auth.session.id);
        self.check_two_factor_otp(&id, &auth.user.id, code).await?;
        let user = self
            .store
            .find_user(&auth.user.id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if user.two_factor_enabled {
            return Ok(user);
        }
        self.not_impersonating(auth)?;
        self.turn_on_otp(&user.id).await
    }

    /// Turns two-factor on with the `otp` method at once (BetterAuth's
    /// `two-factor/enable {method: "otp"}`; password required).
    pub async fn enable_two_factor_otp(
        &self,
        auth: &Authenticated,
        password: &str,
    ) -> Result<User, AuthError> {
        self.two_factor_otp_enabled()?;
        self.not_impersonating(auth)?;
        self.verify_password(&auth.user.id, password).await?;
        self.turn_on_otp(&auth.user.id).await
    }

    async fn turn_on_otp(&self, user_id: &str) -> Result<User, AuthError> {
        // A TOTP set-up never confirmed must not become valid by this.
        if let Some(r) = self.store.find_two_factor(user_id).await? {
            if !r.verified {
                self.store.disable_two_factor(user_id, self.now()).await?;
            }
        }
        self.store.enable_two_factor(user_id, self.now()).await?;
        self.forget_user(user_id);
        tracing::info!(user_id, "two-factor enabled (email codes)");
        self.store
            .find_user(user_id)
            .await?
            .ok_or(AuthError::UserNotFound)
    }
}

/// The name of an account a magic link or code creates: optional, checked
/// like any name when given.
fn new_user_name(name: Option<&str>) -> Result<String, AuthError> {
    match name.map(str::trim) {
        None | Some("") => Ok(String::new()),
        Some(_) => validate::name(name.unwrap_or_default()),
    }
}

/// A session a passwordless sign-in started, if it did.
impl PasswordlessSignIn {
    pub fn signed_in(&self) -> Option<&SignedIn> {
        match &self.outcome {
            SignInOutcome::SignedIn(s) => Some(s),
            SignInOutcome::TwoFactorRequired(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::two_factor::SecretKeys;

    #[test]
    fn purposes_parse_betterauths_names_only() {
        for p in [
            OtpPurpose::SignIn,
            OtpPurpose::EmailVerification,
            OtpPurpose::ForgetPassword,
        ] {
            assert_eq!(OtpPurpose::parse(p.as_str()), Some(p));
        }
        // change-email codes come only from the email-change request.
        assert_eq!(OtpPurpose::parse("change-email"), None);
        assert_eq!(OtpPurpose::parse("SIGN-IN"), None);
    }

    #[test]
    fn codes_are_digits_of_the_length() {
        for len in [4, 6, 10] {
            let c = Warden::new_code(len);
            assert_eq!(c.len(), len);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            assert!(check_code_shape(&c, len, "otp").is_ok());
        }
        assert!(check_code_shape("12345", 6, "otp").is_err());
        assert!(check_code_shape("12a456", 6, "otp").is_err());
        assert!(check_code_shape("1234567", 6, "otp").is_err());
    }

    #[test]
    fn stored_codes_are_keyed_and_bound_to_their_identifier() {
        let keys = SecretKeys::from_secret(b"a server secret of some length");
        let id = "email-otp:sign-in:a@example.com";
        let stored = keys.otp_hash(id, "123456");
        assert!(!stored.contains("123456"));
        assert!(keys.otp_matches(id, "123456", &stored));
        assert!(!keys.otp_matches(id, "123457", &stored));
        assert!(!keys.otp_matches("email-otp:sign-in:b@example.com", "123456", &stored));
        assert!(!keys.otp_matches(id, "123456", "not-hex"));
        let other = SecretKeys::from_secret(b"another server secret entirely");
        assert!(!other.otp_matches(id, "123456", &stored));
    }

    #[test]
    fn names_of_new_users_are_optional() {
        assert_eq!(new_user_name(None).unwrap(), "");
        assert_eq!(new_user_name(Some("  ")).unwrap(), "");
        assert_eq!(new_user_name(Some(" Ada ")).unwrap(), "Ada");
        assert!(new_user_name(Some("bad\u{7}name")).is_err());
    }
}
