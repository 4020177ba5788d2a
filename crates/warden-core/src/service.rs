use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use moka::sync::Cache;

use crate::error::AuthError;
use crate::model::{now, RequestMeta, Session, User, UserUpdate};
use crate::password::{Argon2Settings, PasswordHasher, PasswordPolicy};
use crate::store::{Store, StoreError};
use crate::token::{new_id, SessionToken, TokenHash};
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
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            expires_in: Duration::from_secs(7 * 24 * 3600),
            update_age: Duration::from_secs(24 * 3600),
            cache_ttl: Duration::from_secs(5),
        }
    }
}

#[derive(Clone, Debug)]
pub struct WardenSettings {
    pub session: SessionSettings,
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
}

/// The outcome of a successful sign-up or sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub token: SessionToken,
}

/// A validated session and its user: what protected handlers receive.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub session: Session,
}

type SessionCache = Cache<String, Arc<Authenticated>>;

/// The authentication service. Cheap to share behind an `Arc`.
pub struct Warden {
    store: Arc<dyn Store>,
    hasher: PasswordHasher,
    settings: WardenSettings,
    cache: Option<SessionCache>,
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl Warden {
    pub fn new(store: Arc<dyn Store>, settings: WardenSettings) -> Result<Self, AuthError> {
        let hasher = PasswordHasher::new(
            &settings.argon2,
            settings.hash_concurrency,
            settings.hash_queue,
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
        })
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
        let email = validate::email(&req.email)?;
        let name = validate::name(&req.name)?;
        let image = req.image.as_deref().map(validate::image).transpose()?;
        self.settings.password.check_new(&req.password)?;

        let password_hash = self.hasher.hash(&req.password).await?;
        let t = now();
        let user = User {
            id: new_id(),
            name,
            email,
            email_verified: false,
            image,
            created_at: t,
            updated_at: t,
        };
        // BetterAuth's convention: the credential account's id is the user id.
        match self
            .store
            .insert_user_with_password(&user, &user.id, &password_hash)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(AuthError::EmailTaken),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user_id = %user.id, "user signed up");
        self.start_session(user, meta).await
    }

    /// Checks an email and password and starts a session. Unknown emails and
    /// wrong passwords cost the same and fail the same way.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        meta: RequestMeta,
    ) -> Result<SignedIn, AuthError> {
        let email = validate::email(email)?;
        self.settings.password.check_max(password)?;

        let found = self.store.find_user_by_email(&email).await?;
        let stored = found
            .as_ref()
            .and_then(|(_, cred)| cred.as_ref())
            .and_then(|c| c.password_hash.as_deref());
        let verified = self.hasher.verify(password, stored).await?;
        let Some((user, Some(cred))) = found.filter(|_| verified.ok) else {
            tracing::info!("sign-in rejected");
            return Err(AuthError::InvalidCredentials);
        };
        if verified.needs_rehash {
            // The user is signed in even if the upgrade fails; it is retried
            // at the next sign-in.
            match self.hasher.hash(password).await {
                Ok(h) => {
                    if let Err(e) = self
                        .store
                        .set_password_hash(&cred.account_id, &h, now())
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
        tracing::info!(user_id = %user.id, "user signed in");
        self.start_session(user, meta).await
    }

    async fn start_session(&self, user: User, meta: RequestMeta) -> Result<SignedIn, AuthError> {
        let token = SessionToken::generate();
        let t = now();
        let session = Session {
            id: new_id(),
            token_hash: token.hash(),
            user_id: user.id.clone(),
            expires_at: t + delta(self.settings.session.expires_in),
            created_at: t,
            updated_at: t,
            ip_address: meta.ip_address.map(|s| truncate(s, 64)),
            user_agent: meta.user_agent.map(|s| truncate(s, 512)),
        };
        self.store.insert_session(&session).await?;
        Ok(SignedIn {
            user,
            session,
            token,
        })
    }

    /// Validates a session token: the hot path of every protected request.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AuthError> {
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::InvalidSession);
        }
        let hash = TokenHash::of(token);
        let t = now();
        if let Some(cache) = &self.cache {
            if let Some(hit) = cache.get(&hash.0) {
                if hit.session.expires_at > t {
                    return Ok((*hit).clone());
                }
                cache.invalidate(&hash.0);
            }
        }
        let Some((mut session, user)) = self.store.find_session(hash.as_str()).await? else {
            return Err(AuthError::InvalidSession);
        };
        if session.expires_at <= t {
            self.store.delete_session_by_token(hash.as_str()).await?;
            return Err(AuthError::SessionExpired);
        }
        let expires_in = delta(self.settings.session.expires_in);
        let last_refresh = session.expires_at - expires_in;
        if t - last_refresh >= delta(self.settings.session.update_age) {
            session.expires_at = t + expires_in;
            session.updated_at = t;
            self.store
                .extend_session(&session.id, session.expires_at, t)
                .await?;
        }
        let auth = Authenticated { user, session };
        if let Some(cache) = &self.cache {
            cache.insert(hash.0, Arc::new(auth.clone()));
        }
        Ok(auth)
    }

    /// Ends the session with this token. Unknown tokens are not an error:
    /// signing out twice is harmless.
    pub async fn sign_out(&self, token: &str) -> Result<bool, AuthError> {
        let hash = TokenHash::of(token);
        if let Some(cache) = &self.cache {
            cache.invalidate(&hash.0);
        }
        Ok(self.store.delete_session_by_token(hash.as_str()).await?)
    }

    /// The user's live sessions, newest first.
    pub async fn list_sessions(&self, user_id: &str) -> Result<Vec<Session>, AuthError> {
        Ok(self.store.list_user_sessions(user_id, now()).await?)
    }

    /// Revokes one of the user's own sessions.
    pub async fn revoke_session(&self, user_id: &str, session_id: &str) -> Result<(), AuthError> {
        match self.store.delete_user_session(user_id, session_id).await? {
            Some(token_hash) => {
                if let Some(cache) = &self.cache {
                    cache.invalidate(&token_hash);
                }
                tracing::info!(user_id, session_id, "session revoked");
                Ok(())
            }
            None => Err(AuthError::SessionNotFound),
        }
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
        };
        let user = self
            .store
            .update_user(user_id, &update, now())
            .await?
            .ok_or(AuthError::UserNotFound)?;
        self.forget_user(user_id);
        Ok(user)
    }

    /// Drops every cached session of a user (after a change to the user).
    fn forget_user(&self, user_id: &str) {
        if let Some(cache) = &self.cache {
            let id = user_id.to_owned();
            // Fails only if closures are not supported, which we enable.
            let _ = cache.invalidate_entries_if(move |_, v| v.user.id == id);
        }
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, AuthError> {
        Ok(self.store.delete_expired_sessions(now()).await?)
    }

    pub async fn ready(&self) -> Result<(), AuthError> {
        Ok(self.store.ping().await?)
    }
}

fn truncate(mut s: String, max_chars: usize) -> String {
    if let Some((i, _)) = s.char_indices().nth(max_chars) {
        s.truncate(i);
    }
    s
}
