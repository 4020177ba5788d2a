//! Sign-in with an identity a social (OAuth 2.0 / OpenID Connect) provider
//! vouched for. The protocol work (redirects, code exchange, ID token
//! checks) happens in the HTTP layer with `warden-oauth`; this module
//! decides what an identity means: which user, whether to link or create,
//! and it keeps the short-lived state the dance needs.
//!
//! Rules:
//! - accounts are keyed by (provider, the provider's user id), never by email;
//! - an identity whose email belongs to an existing user is linked only if
//!   the provider says the email is verified (or is listed as trusted) AND
//!   the local user's email is verified: an unverified local account could
//!   have been registered by an attacker in the victim's name;
//! - no user is created from an email the provider does not say is
//!   verified (unless the provider is trusted): that would let anyone sign
//!   up in another's name;
//! - the last way to sign in cannot be unlinked;
//! - provider tokens are stored encrypted.

use std::time::Duration;

use crate::error::AuthError;
use crate::model::{LinkedAccount, NewAccount, RequestMeta, Timestamp, User};
use crate::service::{delta, Warden};
use crate::store::StoreError;
use crate::token::new_id;
use crate::two_factor_flow::SignInOutcome;
use crate::validate;
use warden_telemetry::metrics::{SignInMethod, SignUpMethod};

/// What a provider told us about the user.
#[derive(Clone)]
pub struct SocialIdentity {
    /// The provider's configured name: the account's `providerId`.
    pub provider: String,
    /// The issuer (OIDC) or the provider's site: stored as `account.issuer`.
    pub issuer: String,
    /// The provider's stable id for the user (`sub`).
    pub account_id: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub image: Option<String>,
    pub tokens: ProviderTokens,
}

impl std::fmt::Debug for SocialIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocialIdentity")
            .field("provider", &self.provider)
            .field("account_id", &self.account_id)
            .field("email_verified", &self.email_verified)
            .finish_non_exhaustive()
    }
}

impl SocialIdentity {
    /// The provider's email, normalised as Warden stores emails; `None` if
    /// it gave none or an invalid one.
    fn email(&self) -> Option<String> {
        self.email.as_deref().and_then(|e| validate::email(e).ok())
    }

    /// Is the provider's email this (stored, normalised) one?
    fn has_email(&self, email: &str) -> bool {
        self.email().is_some_and(|e| e == email)
    }
}

/// The provider's tokens, in clear (encrypted before they are stored).
#[derive(Clone, Default)]
pub struct ProviderTokens {
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub expires_in: Option<Duration>,
    pub scope: Option<String>,
}

/// How identities of one provider may be used.
#[derive(Clone, Copy, Debug)]
pub struct SocialPolicy {
    /// Link to an existing (verified) user by email even if the provider
    /// does not say the email is verified.
    pub trusted: bool,
    /// Create users for new identities.
    pub allow_sign_up: bool,
}

/// The result of a social sign-in.
#[derive(Debug, Clone)]
pub struct SocialSignIn {
    pub outcome: SignInOutcome,
    /// A user was created.
    pub new_user: bool,
}

/// Purposes of the verification rows (`<purpose>:<sha256(token)>`).
const OAUTH_STATE: &str = "oauth-state";
const EXCHANGE_CODE: &str = "oauth-code";

impl Warden {
    /// Signs in with a provider's identity: the linked user, an existing
    /// user by verified email (linking the identity), or a new user. Users
    /// with two-factor on get a challenge, as after a password.
    pub async fn social_sign_in(
        &self,
        identity: SocialIdentity,
        policy: SocialPolicy,
        meta: RequestMeta,
    ) -> Result<SocialSignIn, AuthError> {
        let result = async {
            let (user, new_user) = self.resolve_identity(identity, policy).await?;
            self.count_social_sign_up(new_user);
            Ok(SocialSignIn {
                outcome: self.after_first_factor(user, meta, true).await?,
                new_user,
            })
        }
        .await;
        self.count_sign_in(SignInMethod::Social, &result, |s| {
            matches!(s.outcome, SignInOutcome::TwoFactorRequired(_))
        });
        result
    }

    /// [`Warden::social_sign_in`] for bearer clients: no session yet, but a
    /// one-time code (60 s) that [`Warden::redeem_exchange_code`] turns into
    /// one, so that no token travels in a URL. Returns the code and whether
    /// a user was created.
    pub async fn social_sign_in_deferred(
        &self,
        identity: SocialIdentity,
        policy: SocialPolicy,
    ) -> Result<(String, bool), AuthError> {
        let result = async {
            let (user, new_user) = self.resolve_identity(identity, policy).await?;
            self.count_social_sign_up(new_user);
            Ok((self.issue_exchange_code(&user.id).await?, new_user))
        }
        .await;
        self.count_sign_in(SignInMethod::Social, &result, |_| false);
        result
    }

    fn count_social_sign_up(&self, new_user: bool) {
        if new_user {
            self.metrics.sign_up(SignUpMethod::Social);
        }
    }

    /// The user an identity signs in as (linking or creating as the rules
    /// allow), and whether it was created.
    async fn resolve_identity(
        &self,
        identity: SocialIdentity,
        policy: SocialPolicy,
    ) -> Result<(User, bool), AuthError> {
        let t = self.now();
        if let Some((account, user)) = self
            .store
            .find_account(&identity.provider, &identity.account_id)
            .await?
        {
            let row = self.account_row(&account.id, &user.id, &identity, t);
            self.store.update_account_tokens(&row).await?;
            // The provider vouches for the same address: it is verified.
            let user = if !user.email_verified
                && identity.email_verified
                && identity.has_email(&user.email)
            {
                self.store
                    .set_email_verified(&user.id, t)
                    .await?
                    .unwrap_or(user)
            } else {
                user
            };
            tracing::info!(user_id = %user.id, provider = %identity.provider, "social sign-in");
            return Ok((user, false));
        }
        let email = identity.email().ok_or(AuthError::SocialEmailMissing)?;
        if let Some((user, _)) = self.store.find_user_by_email(&email).await? {
            if !((identity.email_verified || policy.trusted) && user.email_verified) {
                tracing::info!(user_id = %user.id, provider = %identity.provider, "social identity not linked: email not verified on both sides");
                return Err(AuthError::AccountNotLinked);
            }
            let row = self.account_row(&new_id(), &user.id, &identity, t);
            match self.store.insert_account(&row).await {
                Ok(()) => {}
                Err(StoreError::Conflict) => return Err(AuthError::AccountNotLinked),
                Err(e) => return Err(e.into()),
            }
            tracing::info!(user_id = %user.id, provider = %identity.provider, "social identity linked by verified email");
            return Ok((user, false));
        }
        if !policy.allow_sign_up {
            return Err(AuthError::SignUpDisabled);
        }
        // No user from an email the provider does not vouch for: someone
        // could sign up in another's name, and keep a way in after the
        // owner takes the account over by password reset.
        if !identity.email_verified && !policy.trusted {
            tracing::info!(provider = %identity.provider, "social sign-up refused: the provider did not verify the email");
            return Err(AuthError::SocialEmailNotVerified);
        }
        let local = email.split('@').next().unwrap_or("user").to_owned();
        let name = identity
            .name
            .as_deref()
            .and_then(|n| validate::name(n).ok())
            .unwrap_or_else(|| validate::name(&local).unwrap_or_else(|_| "user".into()));
        let image = identity
            .image
            .as_deref()
            .and_then(|i| validate::image(i).ok());
        let user = User {
            id: new_id(),
            name,
            email,
            email_verified: identity.email_verified,
            image,
            two_factor_enabled: false,
            role: Some(self.settings.admin.default_role.clone()),
            banned: false,
            ban_reason: None,
            ban_expires: None,
            created_at: t,
            updated_at: t,
        };
        let row = self.account_row(&new_id(), &user.id, &identity, t);
        match self.store.insert_user_with_account(&user, &row).await {
            Ok(()) => {}
            // Created concurrently (same email or same identity).
            Err(StoreError::Conflict) => return Err(AuthError::AccountNotLinked),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user_id = %user.id, provider = %identity.provider, "user signed up with a social provider");
        Ok((user, true))
    }

    /// Links an identity to a signed-in user (explicit linking). The
    /// identity's email must be the user's (as BetterAuth requires).
    pub async fn link_social(
        &self,
        user_id: &str,
        identity: SocialIdentity,
    ) -> Result<(), AuthError> {
        let t = self.now();
        let user = self
            .store
            .find_user(user_id)
            .await?
            .ok_or(AuthError::UserNotFound)?;
        if !identity.has_email(&user.email) {
            tracing::info!(user_id, provider = %identity.provider, "link refused: the provider's email is not the user's");
            return Err(AuthError::LinkEmailMismatch);
        }
        if let Some((account, owner)) = self
            .store
            .find_account(&identity.provider, &identity.account_id)
            .await?
        {
            if owner.id != user_id {
                return Err(AuthError::AccountAlreadyLinked);
            }
            let row = self.account_row(&account.id, user_id, &identity, t);
            return Ok(self.store.update_account_tokens(&row).await?);
        }
        let row = self.account_row(&new_id(), user_id, &identity, t);
        match self.store.insert_account(&row).await {
            Ok(()) => {
                tracing::info!(user_id, provider = %identity.provider, "social account linked");
                Ok(())
            }
            Err(StoreError::Conflict) => Err(AuthError::AccountAlreadyLinked),
            Err(e) => Err(e.into()),
        }
    }

    /// The user's ways to sign in.
    pub async fn list_accounts(&self, user_id: &str) -> Result<Vec<LinkedAccount>, AuthError> {
        Ok(self.store.list_accounts(user_id).await?)
    }

    /// Unlinks one of the user's accounts: the one of `provider_id`,
    /// and/or the one `account_id` names (its row id, as `list-accounts`
    /// gives it, or the provider's user id). The last way to sign in stays.
    pub async fn unlink_account(
        &self,
        user_id: &str,
        provider_id: Option<&str>,
        account_id: Option<&str>,
    ) -> Result<(), AuthError> {
        if provider_id.is_none() && account_id.is_none() {
            return Err(AuthError::invalid(
                "providerId",
                "give providerId or accountId",
            ));
        }
        let accounts = self.store.list_accounts(user_id).await?;
        let target = accounts
            .iter()
            .find(|a| {
                provider_id.is_none_or(|p| a.provider_id == p)
                    && account_id.is_none_or(|id| a.id == id || a.account_id == id)
            })
            .ok_or(AuthError::AccountNotFound)?;
        let usable = |a: &&LinkedAccount| a.provider_id != "credential" || a.has_password;
        let others = accounts
            .iter()
            .filter(usable)
            .filter(|a| a.id != target.id)
            .count();
        if others == 0 {
            return Err(AuthError::LastSignInMethod);
        }
        self.store.delete_account(user_id, &target.id).await?;
        tracing::info!(user_id, provider = %target.provider_id, "account unlinked");
        Ok(())
    }

    /// Keeps the data of an OAuth redirect (PKCE verifier, nonce, where to
    /// go back) for `ttl`; returns the `state` value that names it (190
    /// bits, stored only hashed).
    pub async fn save_oauth_state(&self, data: &str, ttl: Duration) -> Result<String, AuthError> {
        let state = self.issue_token(OAUTH_STATE, data, ttl).await?;
        Ok(state.expose().to_owned())
    }

    /// The data of an OAuth state, consumed: a state works once.
    pub async fn take_oauth_state(&self, state: &str) -> Result<Option<String>, AuthError> {
        self.take_token(OAUTH_STATE, state).await
    }

    /// A one-time code (60 s) that a bearer client exchanges for a session
    /// after a social sign-in, so that no token travels in a URL.
    async fn issue_exchange_code(&self, user_id: &str) -> Result<String, AuthError> {
        let code = self
            .issue_token(EXCHANGE_CODE, user_id, Duration::from_secs(60))
            .await?;
        Ok(code.expose().to_owned())
    }

    /// Redeems a one-time code: a session (or a two-factor challenge).
    pub async fn redeem_exchange_code(
        &self,
        code: &str,
        meta: RequestMeta,
    ) -> Result<SignInOutcome, AuthError> {
        let user_id = self
            .take_token(EXCHANGE_CODE, code)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let user = self
            .store
            .find_user(&user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        // The provider was the first factor; two-factor still applies.
        self.after_first_factor(user, meta, true).await
    }

    fn account_row(
        &self,
        id: &str,
        user_id: &str,
        identity: &SocialIdentity,
        t: Timestamp,
    ) -> NewAccount {
        let enc = |v: &Option<String>| v.as_deref().map(|s| self.keys.encrypt(s));
        NewAccount {
            id: id.to_owned(),
            user_id: user_id.to_owned(),
            provider_id: identity.provider.clone(),
            account_id: identity.account_id.clone(),
            issuer: identity.issuer.clone(),
            access_token: enc(&identity.tokens.access_token),
            refresh_token: enc(&identity.tokens.refresh_token),
            id_token: enc(&identity.tokens.id_token),
            access_token_expires_at: identity.tokens.expires_in.map(|d| t + delta(d)),
            scope: identity.tokens.scope.clone(),
            now: t,
        }
    }
}
