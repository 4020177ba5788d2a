//! Two-factor sign-in: setting TOTP up, the challenge a password sign-in
//! becomes for a user with two-factor on, and trusted devices.
//!
//! The half-signed-in state is a challenge: a random token whose hash keys a
//! verification row (`2fa:<sha256>`, 10 minutes). It is not a session token
//! and reaches no protected endpoint. It is consumed, atomically, only by a
//! correct code.

use std::time::Duration;

use serde_json::json;

use crate::error::AuthError;
use crate::model::{RequestMeta, TwoFactorRecord, User};
use crate::service::{delta, Authenticated, SignedIn, Warden};
use crate::token::{new_id, SessionToken, TokenHash};
use crate::two_factor;
use warden_telemetry::metrics::SignInMethod;

/// Two-factor settings.
#[derive(Clone, Debug)]
pub struct TwoFactorSettings {
    /// The issuer authenticator apps show (default "Warden").
    pub issuer: String,
    /// How long a sign-in may wait for its second step (default 10 min).
    pub challenge_ttl: Duration,
    /// Wrong codes that end a challenge (default 5).
    pub max_attempts: u64,
    /// Consecutive wrong codes that lock two-factor for the account
    /// (default 10) ...
    pub lock_after: u32,
    /// ... for this long (default 15 min).
    pub lock_for: Duration,
    /// How long "trust this device" lasts (default 30 days; renewed, with a
    /// new token, each time it is used).
    pub trust_device_ttl: Duration,
    /// Offer the `otp` method: a code mailed to the user (default off).
    pub email_otp: bool,
    /// How long a mailed two-factor code works (default 3 minutes, as
    /// BetterAuth).
    pub otp_expires_in: Duration,
    /// A magic-link or email-code sign-in of a user with two-factor on
    /// gets the challenge, as a password sign-in does (default on; off is
    /// BetterAuth 1.7's behaviour, which skips it: then a mailbox alone
    /// signs in).
    pub passwordless_challenge: bool,
}

impl Default for TwoFactorSettings {
    fn default() -> Self {
        TwoFactorSettings {
            issuer: "Warden".into(),
            challenge_ttl: Duration::from_secs(600),
            max_attempts: 5,
            lock_after: 10,
            lock_for: Duration::from_secs(15 * 60),
            trust_device_ttl: Duration::from_secs(30 * 24 * 3600),
            email_otp: false,
            otp_expires_in: Duration::from_secs(180),
            passwordless_challenge: true,
        }
    }
}

/// What enabling two-factor hands the user, once.
#[derive(Clone)]
pub struct TwoFactorSetup {
    pub totp_uri: String,
    pub backup_codes: Vec<String>,
}

impl std::fmt::Debug for TwoFactorSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TwoFactorSetup(<redacted>)")
    }
}

/// A sign-in waiting for its second step.
#[derive(Debug, Clone)]
pub struct TwoFactorChallenge {
    /// Opaque; handed to the client (in a signed cookie or the body).
    pub token: SessionToken,
    /// The second factors the user can use: `totp` (a confirmed
    /// authenticator; backup codes work with it) and `otp` (a code by
    /// email, when `two_factor.email_otp` is on).
    pub methods: Vec<&'static str>,
    pub expires_in: Duration,
}

/// What a first factor (password) led to.
#[derive(Debug, Clone)]
// Returned once per request and moved straight into a response: boxing
// would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum SignInOutcome {
    SignedIn(SignedIn),
    TwoFactorRequired(TwoFactorChallenge),
}

/// A second factor offered to complete a challenge.
#[derive(Clone, Copy)]
pub enum SecondFactor<'a> {
    Totp(&'a str),
    BackupCode(&'a str),
    /// A code from `send_two_factor_otp`'s mail.
    EmailOtp(&'a str),
}

/// Purposes of the verification rows (`<purpose>:<sha256(token)>`).
const CHALLENGE: &str = "2fa";
const TRUST: &str = "trust-device";

impl Warden {
    /// After a correct password (or another first factor): a session, or a
    /// challenge when the user has two-factor on and this device is not
    /// trusted.
    pub(crate) async fn after_first_factor(
        &self,
        user: User,
        meta: RequestMeta,
        remember_me: bool,
    ) -> Result<SignInOutcome, AuthError> {
        let mut user = user;
        // Before a two-factor challenge too: a banned user gets no step.
        self.check_not_banned(&mut user).await?;
        if !user.two_factor_enabled {
            tracing::info!(user_id = %user.id, "user signed in");
            return Ok(SignInOutcome::SignedIn(
                self.start_session(user, meta, remember_me).await?,
            ));
        }
        if let Some(trusted) = meta.trusted_device.clone() {
            if let Some(renewed) = self.renew_trusted_device(&user, &trusted).await? {
                tracing::info!(user_id = %user.id, "two-factor skipped: trusted device");
                let mut s = self.start_session(user, meta, remember_me).await?;
                s.trusted_device = Some(renewed);
                return Ok(SignInOutcome::SignedIn(s));
            }
        }
        let ttl = self.settings.two_factor.challenge_ttl;
        let token = self
            .issue_token(
                CHALLENGE,
                &json!({ "userId": user.id, "rememberMe": remember_me }).to_string(),
                ttl,
            )
            .await?;
        tracing::info!(user_id = %user.id, "first factor accepted; two-factor challenge issued");
        let mut methods = vec![];
        if self
            .store
            .find_two_factor(&user.id)
            .await?
            .is_some_and(|r| r.verified)
        {
            methods.push("totp");
        }
        if self.settings.two_factor.email_otp {
            methods.push("otp");
        }
        Ok(SignInOutcome::TwoFactorRequired(TwoFactorChallenge {
            token,
            methods,
            expires_in: ttl,
        }))
    }

    /// Starts setting up TOTP for a signed-in user (password required).
    /// Two-factor turns on only when a first code is confirmed with
    /// [`Warden::confirm_totp`]. Refused while two-factor is on (as
    /// BetterAuth 1.7 does): a new secret must not silently replace the
    /// authenticator the user relies on; disable first.
    pub async fn enable_two_factor(
        &self,
        auth: &Authenticated,
        password: &str,
    ) -> Result<TwoFactorSetup, AuthError> {
        self.not_impersonating(auth)?;
        self.verify_password(&auth.user.id, password).await?;
        let user = self.current_user(&auth.user.id).await?;
        if user.two_factor_enabled {
            return Err(AuthError::TwoFactorAlreadyEnabled);
        }
        let existing = self.store.find_two_factor(&user.id).await?;
        let secret = two_factor::new_secret();
        let backup_codes = two_factor::new_backup_codes();
        let record = TwoFactorRecord {
            id: new_id(),
            user_id: user.id.clone(),
            secret: self.keys.encrypt(&secret),
            backup_codes: self.keys.seal_backup_codes(&backup_codes),
            verified: false,
            failed_count: 0,
            // Setting up again does not lift a lock.
            locked_until: existing.and_then(|r| r.locked_until),
            last_used_step: None,
        };
        self.store.replace_two_factor(&record).await?;
        tracing::info!(user_id = %user.id, "two-factor set up (awaiting a first code)");
        Ok(TwoFactorSetup {
            totp_uri: two_factor::otpauth_uri(
                &self.settings.two_factor.issuer,
                &user.email,
                &secret,
            ),
            backup_codes,
        })
    }

    /// The `otpauth://` URI again (password required).
    pub async fn totp_uri(
        &self,
        auth: &Authenticated,
        password: &str,
    ) -> Result<String, AuthError> {
        self.verify_password(&auth.user.id, password).await?;
        let user = self.current_user(&auth.user.id).await?;
        let record = self.two_factor_record(&user.id).await?;
        let secret = self.decrypt_secret(&record)?;
        Ok(two_factor::otpauth_uri(
            &self.settings.two_factor.issuer,
            &user.email,
            &secret,
        ))
    }

    /// Turns two-factor off (password required) and forgets every trusted
    /// device.
    pub async fn disable_two_factor(
        &self,
        auth: &Authenticated,
        password: &str,
    ) -> Result<(), AuthError> {
        self.not_impersonating(auth)?;
        self.verify_password(&auth.user.id, password).await?;
        self.store
            .disable_two_factor(&auth.user.id, self.now())
            .await?;
        self.forget_user(&auth.user.id);
        tracing::info!(user_id = %auth.user.id, "two-factor disabled");
        Ok(())
    }

    /// A new set of backup codes, replacing the old set (password required).
    pub async fn regenerate_backup_codes(
        &self,
        auth: &Authenticated,
        password: &str,
    ) -> Result<Vec<String>, AuthError> {
        self.not_impersonating(auth)?;
        self.verify_password(&auth.user.id, password).await?;
        if !self.current_user(&auth.user.id).await?.two_factor_enabled {
            return Err(AuthError::TwoFactorNotEnabled);
        }
        let codes = two_factor::new_backup_codes();
        let sealed = self.keys.seal_backup_codes(&codes);
        for _ in 0..3 {
            let record = self.two_factor_record(&auth.user.id).await?;
            if self
                .store
                .swap_backup_codes(&auth.user.id, &record.backup_codes, &sealed)
                .await?
            {
                tracing::info!(user_id = %auth.user.id, "backup codes regenerated");
                return Ok(codes);
            }
        }
        Err(AuthError::Internal(
            "backup codes changed concurrently".into(),
        ))
    }

    /// A signed-in user confirms TOTP with a code: turns two-factor on (the
    /// first time), and otherwise just checks the code.
    pub async fn confirm_totp(&self, auth: &Authenticated, code: &str) -> Result<User, AuthError> {
        let record = self.two_factor_record(&auth.user.id).await?;
        self.check_second_factor(&record, SecondFactor::Totp(code))
            .await?;
        let user = self.current_user(&auth.user.id).await?;
        if user.two_factor_enabled && record.verified {
            return Ok(user);
        }
        self.store
            .enable_two_factor(&auth.user.id, self.now())
            .await?;
        self.forget_user(&auth.user.id);
        tracing::info!(user_id = %auth.user.id, "two-factor enabled");
        self.current_user(&auth.user.id).await
    }

    /// Completes a sign-in challenge with a second factor. The challenge
    /// ends after `max_attempts` wrong codes; `trust_device` also returns a
    /// trusted-device token in [`SignedIn::trusted_device`].
    pub async fn verify_two_factor(
        &self,
        challenge: &str,
        factor: SecondFactor<'_>,
        trust_device: bool,
        meta: RequestMeta,
    ) -> Result<SignedIn, AuthError> {
        let result = self
            .second_factor(challenge, factor, trust_device, meta)
            .await;
        self.count_sign_in(SignInMethod::TwoFactor, &result, |_| false);
        result
    }

    async fn second_factor(
        &self,
        challenge: &str,
        factor: SecondFactor<'_>,
        trust_device: bool,
        meta: RequestMeta,
    ) -> Result<SignedIn, AuthError> {
        if challenge.is_empty() || challenge.len() > 256 {
            return Err(AuthError::InvalidTwoFactorChallenge);
        }
        factor.check_shape()?;
        let hash = TokenHash::of(challenge);
        let id = format!("{CHALLENGE}:{}", hash.as_str());
        let (user_id, remember_me) = self.live_challenge(challenge).await?;
        // Counted before checking, so that parallel guesses cannot exceed
        // the limit.
        let settings = &self.settings.two_factor;
        let attempts = match self
            .counters
            .hit(
                &format!("2fa-attempts:{}", hash.as_str()),
                settings.challenge_ttl,
            )
            .await
        {
            Ok(hit) => hit.count,
            Err(e) => {
                tracing::warn!(error = %e, "two-factor attempt counter unavailable");
                0
            }
        };
        if attempts > settings.max_attempts {
            self.store.take_verification(&id).await?;
            return Err(AuthError::TwoFactorTooManyAttempts);
        }
        let checked = match factor {
            SecondFactor::EmailOtp(code) => {
                self.check_two_factor_otp(
                    &crate::passwordless::challenge_otp_identifier(&hash),
                    &user_id,
                    code,
                )
                .await
            }
            _ => {
                let record = self.two_factor_record(&user_id).await?;
                self.check_second_factor(&record, factor).await
            }
        };
        match checked {
            Ok(()) => {}
            Err(AuthError::InvalidTwoFactorCode | AuthError::InvalidBackupCode)
                if attempts >= settings.max_attempts =>
            {
                self.store.take_verification(&id).await?;
                tracing::warn!(user_id = %user_id, "two-factor challenge ended after too many wrong codes");
                return Err(AuthError::TwoFactorTooManyAttempts);
            }
            Err(e) => return Err(e),
        }
        // Consumed once: of two concurrent correct answers, one signs in.
        if self.store.take_verification(&id).await?.is_none() {
            return Err(AuthError::InvalidTwoFactorChallenge);
        }
        let user = self.current_user(&user_id).await?;
        let mut signed_in = self.start_session(user, meta, remember_me).await?;
        if trust_device {
            signed_in.trusted_device = Some(self.issue_trusted_device(&user_id).await?);
        }
        tracing::info!(user_id = %user_id, method = factor.name(), "user signed in (two-factor)");
        Ok(signed_in)
    }

    /// The user id and "remember me" of a live challenge.
    pub(crate) async fn live_challenge(
        &self,
        challenge: &str,
    ) -> Result<(String, bool), AuthError> {
        if challenge.is_empty() || challenge.len() > 256 {
            return Err(AuthError::InvalidTwoFactorChallenge);
        }
        let id = format!("{CHALLENGE}:{}", TokenHash::of(challenge).as_str());
        match self.store.peek_verification(&id).await? {
            Some((value, expires_at)) if expires_at > self.now() => parse_challenge(&value),
            _ => Err(AuthError::InvalidTwoFactorChallenge),
        }
    }

    /// Counts a wrong code towards the account's two-factor lock; the
    /// error when this one locked it.
    pub(crate) async fn count_two_factor_lock(&self, user_id: &str) -> Result<(), AuthError> {
        let settings = &self.settings.two_factor;
        let t = self.now();
        if let Some(until) = self
            .store
            .count_two_factor_failure(
                user_id,
                settings.lock_after.max(1) as i64,
                t + delta(settings.lock_for),
            )
            .await?
        {
            tracing::warn!(user_id = %user_id, "two-factor locked after repeated wrong codes");
            return Err(AuthError::TwoFactorLocked {
                retry_after: (until - t).to_std().unwrap_or_default(),
            });
        }
        Ok(())
    }

    /// Checks a code against the record: TOTP in its window and never
    /// twice, or an unused backup code (which is then used up). Wrong codes
    /// count towards the account's lock.
    async fn check_second_factor(
        &self,
        record: &TwoFactorRecord,
        factor: SecondFactor<'_>,
    ) -> Result<(), AuthError> {
        factor.check_shape()?;
        let t = self.now();
        if let Some(until) = record.locked_until.filter(|u| *u > t) {
            return Err(AuthError::TwoFactorLocked {
                retry_after: (until - t).to_std().unwrap_or_default(),
            });
        }
        let ok = match factor {
            SecondFactor::Totp(code) => {
                let secret = self.decrypt_secret(record)?;
                match two_factor::matching_step(
                    secret.as_bytes(),
                    code.trim(),
                    two_factor::step_at(t.timestamp()),
                ) {
                    Some(step) => self.store.use_totp_step(&record.user_id, step).await?,
                    None => false,
                }
            }
            SecondFactor::BackupCode(code) => self.use_backup_code(record, code).await?,
            SecondFactor::EmailOtp(_) => false,
        };
        if ok {
            return Ok(());
        }
        let settings = &self.settings.two_factor;
        if let Some(until) = self
            .store
            .count_two_factor_failure(
                &record.user_id,
                settings.lock_after.max(1) as i64,
                t + delta(settings.lock_for),
            )
            .await?
        {
            tracing::warn!(user_id = %record.user_id, "two-factor locked after repeated wrong codes");
            return Err(AuthError::TwoFactorLocked {
                retry_after: (until - t).to_std().unwrap_or_default(),
            });
        }
        tracing::info!(user_id = %record.user_id, method = factor.name(), "wrong two-factor code");
        Err(match factor {
            SecondFactor::Totp(_) | SecondFactor::EmailOtp(_) => AuthError::InvalidTwoFactorCode,
            SecondFactor::BackupCode(_) => AuthError::InvalidBackupCode,
        })
    }

    async fn use_backup_code(
        &self,
        record: &TwoFactorRecord,
        code: &str,
    ) -> Result<bool, AuthError> {
        let mut stored = record.backup_codes.clone();
        for _ in 0..3 {
            let Some(rest) = self
                .keys
                .use_backup_code(&stored, code)
                .map_err(|e| AuthError::Internal(e.to_string()))?
            else {
                return Ok(false);
            };
            if self
                .store
                .swap_backup_codes(&record.user_id, &stored, &rest)
                .await?
            {
                return Ok(true);
            }
            // Another code was used meanwhile: check against the new set.
            stored = self.two_factor_record(&record.user_id).await?.backup_codes;
        }
        Ok(false)
    }

    /// If `token` is a live trusted device of `user`, replaces it by a new
    /// one (returned); otherwise `None`.
    async fn renew_trusted_device(
        &self,
        user: &User,
        token: &str,
    ) -> Result<Option<SessionToken>, AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Ok(None);
        }
        let id = format!("{TRUST}:{}", TokenHash::of(token).as_str());
        match self.store.peek_verification(&id).await? {
            Some((owner, expires_at)) if owner == user.id && expires_at > self.now() => {}
            _ => return Ok(None),
        }
        if self.store.take_verification(&id).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.issue_trusted_device(&user.id).await?))
    }

    async fn issue_trusted_device(&self, user_id: &str) -> Result<SessionToken, AuthError> {
        self.issue_token(TRUST, user_id, self.settings.two_factor.trust_device_ttl)
            .await
    }

    async fn two_factor_record(&self, user_id: &str) -> Result<TwoFactorRecord, AuthError> {
        self.store
            .find_two_factor(user_id)
            .await?
            .ok_or(AuthError::TwoFactorNotEnabled)
    }

    async fn current_user(&self, user_id: &str) -> Result<User, AuthError> {
        self.store
            .find_user(user_id)
            .await?
            .ok_or(AuthError::UserNotFound)
    }

    fn decrypt_secret(&self, record: &TwoFactorRecord) -> Result<String, AuthError> {
        self.keys.decrypt(&record.secret).map_err(|e| {
            tracing::error!(user_id = %record.user_id, "{e}");
            AuthError::Internal(e.to_string())
        })
    }
}

impl SecondFactor<'_> {
    /// Malformed input is a 400 naming the problem, and is not counted as a
    /// guess (well-formed guesses are).
    fn check_shape(&self) -> Result<(), AuthError> {
        match self {
            SecondFactor::Totp(c) => {
                let c = c.trim();
                if c.len() != two_factor::DIGITS as usize || !c.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(AuthError::invalid(
                        "code",
                        "must be the 6 digits the authenticator app shows",
                    ));
                }
            }
            SecondFactor::EmailOtp(c) => {
                crate::passwordless::check_code_shape(c, two_factor::DIGITS as usize, "code")?
            }
            SecondFactor::BackupCode(c) => {
                if two_factor::normalize_backup_code(c).is_none() {
                    return Err(AuthError::invalid(
                        "code",
                        "must be a backup code: XXXXX-XXXXX",
                    ));
                }
            }
        }
        Ok(())
    }

    fn name(&self) -> &'static str {
        match self {
            SecondFactor::Totp(_) => "totp",
            SecondFactor::BackupCode(_) => "backup_code",
            SecondFactor::EmailOtp(_) => "otp",
        }
    }
}

fn parse_challenge(value: &str) -> Result<(String, bool), AuthError> {
    let v: serde_json::Value =
        serde_json::from_str(value).map_err(|_| AuthError::InvalidTwoFactorChallenge)?;
    let user_id = v["userId"]
        .as_str()
        .ok_or(AuthError::InvalidTwoFactorChallenge)?
        .to_owned();
    Ok((user_id, v["rememberMe"].as_bool().unwrap_or(true)))
}
