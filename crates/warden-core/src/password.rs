//! Password policy, hashing and verification.
//!
//! New hashes are argon2id. BetterAuth's scrypt hashes (`<salt>:<key>`) are
//! verified as BetterAuth computes them, so a BetterAuth database works
//! unchanged; they are upgraded to argon2id on the next successful sign-in.
//!
//! All hashing runs on a dedicated pool of `max_concurrent` threads with a
//! queue of at most `max_queued` jobs, never on the async workers. A fixed
//! set of threads (rather than tokio's growing blocking pool) also bounds
//! memory: each argon2 hash needs `memory_kib` of scratch space, and the
//! allocator keeps it per thread.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;

use crate::error::AuthError;

/// What a new password must satisfy (NIST SP 800-63B 3.1.1.2): a length
/// range counted in Unicode characters of the password as sent, not one of
/// the most common passwords, not the account's email or its local part.
/// No composition rules.
#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
    pub max_length: usize,
    /// Refuse passwords from the shipped list of common passwords.
    pub reject_common: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 8,
            max_length: 128,
            reject_common: true,
        }
    }
}

/// The 10,000+ most common passwords, lower-case, one per line (see
/// `data/README.md` for the source).
static COMMON_PASSWORDS: &str = include_str!("../data/common-passwords.txt");

fn common_passwords() -> &'static std::collections::HashSet<&'static str> {
    static SET: std::sync::OnceLock<std::collections::HashSet<&'static str>> =
        std::sync::OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Is `password` (case-insensitively) one of the shipped common passwords?
pub fn is_common_password(password: &str) -> bool {
    common_passwords().contains(password.trim().to_lowercase().as_str())
}

impl PasswordPolicy {
    /// Checks a new password (sign-up, change, reset) for the account with
    /// this email (if known).
    pub fn check_new(&self, password: &str, email: Option<&str>) -> Result<(), AuthError> {
        let n = password.chars().count();
        if n < self.min_length {
            return Err(AuthError::PasswordTooShort {
                min: self.min_length,
            });
        }
        self.check_max(password)?;
        if self.reject_common && is_common_password(password) {
            return Err(AuthError::PasswordRejected {
                reason: crate::error::PasswordRejection::Common,
            });
        }
        if let Some(email) = email {
            let p = password.trim().to_lowercase();
            let email = email.trim().to_lowercase();
            let local = email.split('@').next().unwrap_or("");
            if p == email || (!local.is_empty() && p == local) {
                return Err(AuthError::PasswordRejected {
                    reason: crate::error::PasswordRejection::SameAsEmail,
                });
            }
        }
        Ok(())
    }

    /// Checks a password offered at sign-in: only the upper bound, which
    /// keeps hashing work bounded.
    pub fn check_max(&self, password: &str) -> Result<(), AuthError> {
        if password.is_empty() {
            return Err(AuthError::invalid("password", "must not be empty"));
        }
        if password.chars().count() > self.max_length {
            return Err(AuthError::PasswordTooLong {
                max: self.max_length,
            });
        }
        Ok(())
    }
}

/// argon2id cost parameters. The defaults are OWASP's (m=19 MiB, t=2, p=1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    fn default() -> Self {
        Argon2Settings {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// What verifying a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash is legacy (scrypt) or uses other argon2 parameters:
    /// store a fresh hash now that we know the password.
    pub needs_rehash: bool,
}

type Job = Box<dyn FnOnce() + Send>;

pub struct PasswordHasher {
    params: Params,
    jobs: SyncSender<Job>,
    /// A real hash of a random password, verified against when the user does
    /// not exist so that unknown emails cost the same time as wrong passwords.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(
        settings: &Argon2Settings,
        max_concurrent: usize,
        max_queued: usize,
    ) -> Result<Self, AuthError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| AuthError::Internal(format!("invalid argon2 parameters: {e}")))?;
        let dummy_hash = hash_blocking(&params, &crate::token::random_string(24))?;
        let (jobs, rx) = sync_channel::<Job>(max_queued);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..max_concurrent.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("warden-hash-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        // A panicking job must not take the thread with it:
                        // its caller sees an error, the pool stays whole.
                        Ok(job) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                        }
                        // The hasher was dropped: stop.
                        Err(_) => return,
                    }
                })
                .map_err(|e| AuthError::Internal(format!("cannot start hashing threads: {e}")))?;
        }
        Ok(PasswordHasher {
            params,
            jobs,
            dummy_hash,
        })
    }

    /// Hashes a new password with argon2id.
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(move || hash_blocking(&params, &password)).await?
    }

    /// Verifies `password` against a stored hash. With `stored = None` (no
    /// such user, or no password) it does the same work and answers false.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, AuthError> {
        let params = self.params.clone();
        let password = password.to_owned();
        let (stored, real) = match stored {
            Some(s) => (s.to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let verified = self
            .run(move || verify_blocking(&params, &password, &stored))
            .await?;
        Ok(Verified {
            ok: verified.ok && real,
            needs_rehash: verified.needs_rehash && real,
        })
    }

    /// Runs `f` on the hashing threads; refuses with `Busy` when the queue
    /// is full rather than letting waiters pile up.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(AuthError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(AuthError::Internal("hashing threads stopped".into()))
            }
        }
        rx.await
            .map_err(|_| AuthError::Internal("hashing job panicked".into()))
    }
}

fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_blocking(params: &Params, password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2(params)
        .hash_password(normalize(password).as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("argon2 hashing failed: {e}")))
}

/// The largest argon2 costs a stored hash may ask for (256 MiB, 16 passes,
/// 16 lanes); anything above is treated as corrupt and never verifies.
const MAX_STORED_M_KIB: u32 = 256 * 1024;
const MAX_STORED_T: u32 = 16;
const MAX_STORED_P: u32 = 16;

/// A stored password hash, parsed.
#[derive(Debug)]
pub enum StoredHash<'a> {
    /// A PHC string (`$argon2id$...`).
    Phc(PasswordHash<'a>),
    /// BetterAuth's `<salt>:<hex key>` scrypt format.
    Scrypt { salt: &'a str, key: Vec<u8> },
}

/// Parses a stored hash; `None` for anything malformed (which then never
/// verifies).
pub fn parse_stored_hash(stored: &str) -> Option<StoredHash<'_>> {
    if stored.starts_with('$') {
        return PasswordHash::new(stored).ok().map(StoredHash::Phc);
    }
    let (salt, key_hex) = stored.split_once(':')?;
    let key = hex::decode(key_hex).ok()?;
    (!salt.is_empty() && key.len() == 64).then_some(StoredHash::Scrypt { salt, key })
}

/// The argon2 parameters of a parsed PHC hash, if they are within what we
/// are willing to compute: a corrupted or hostile row must not make us
/// allocate gigabytes, spin for minutes, or reach the argon2 crate's
/// arithmetic overflow on huge `p` (found by fuzz/parse_stored_hash). The
/// raw numbers are checked before the crate computes anything with them.
/// This is everything verification does before it hashes.
pub fn stored_argon2_params(parsed: &PasswordHash<'_>) -> Option<Params> {
    // Every occurrence counts: a parameter given twice (`m=1,m=9999999`)
    // is refused, since the argon2 crate would use the last one.
    let mut seen = Vec::with_capacity(3);
    for (name, value) in parsed.params.iter() {
        let name = name.as_str();
        let max = match name {
            "m" => MAX_STORED_M_KIB,
            "t" => MAX_STORED_T,
            "p" => MAX_STORED_P,
            _ => continue,
        };
        if seen.contains(&name) || value.decimal().map_or(true, |v| v > max) {
            return None;
        }
        seen.push(name);
    }
    Params::try_from(parsed).ok()
}

fn verify_blocking(params: &Params, password: &str, stored: &str) -> Verified {
    let password = normalize(password);
    let fail = Verified {
        ok: false,
        needs_rehash: false,
    };
    match parse_stored_hash(stored) {
        None => fail,
        Some(StoredHash::Phc(parsed)) => {
            let Some(stored_params) = stored_argon2_params(&parsed) else {
                return fail;
            };
            let ok = argon2(params)
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            let current = parsed.algorithm.as_str() == "argon2id"
                && stored_params.m_cost() == params.m_cost()
                && stored_params.t_cost() == params.t_cost()
                && stored_params.p_cost() == params.p_cost();
            Verified {
                ok,
                needs_rehash: ok && !current,
            }
        }
        Some(StoredHash::Scrypt { salt, key }) => {
            let ok = scrypt_matches(&password, salt, &key);
            Verified {
                ok,
                needs_rehash: ok,
            }
        }
    }
}

/// BetterAuth's scrypt format: `<salt>:<key>`, both hex. scrypt N=16384,
/// r=16, p=1, dkLen=64, over the NFKC-normalised password, with the salt's hex
/// *string* (not the decoded bytes) as the scrypt salt.
pub fn verify_betterauth_scrypt(normalized_password: &str, stored: &str) -> bool {
    match parse_stored_hash(stored) {
        Some(StoredHash::Scrypt { salt, key }) => scrypt_matches(normalized_password, salt, &key),
        _ => false,
    }
}

fn scrypt_matches(normalized_password: &str, salt: &str, expected: &[u8]) -> bool {
    let Ok(params) = scrypt::Params::new(14, 16, 1, 64) else {
        return false;
    };
    let mut key = [0u8; 64];
    if scrypt::scrypt(
        normalized_password.as_bytes(),
        salt.as_bytes(),
        &params,
        &mut key,
    )
    .is_err()
    {
        return false;
    }
    key.ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Settings {
        Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn hostile_stored_costs_fail_closed_without_panicking() {
        let h = PasswordHasher::new(&cheap(), 1, 4).unwrap();
        // fuzz/regressions/parse_stored_hash/argon2-p-cost-mul-overflow
        for stored in [
            "$d$p=554249295",
            "$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=1024,t=100000,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            // fuzz/regressions/parse_stored_hash/argon2-duplicate-m
            "$a19$m=97295,m=967295",
        ] {
            assert!(!h.verify("pw", Some(stored)).await.unwrap().ok, "{stored}");
        }
        // The pool still works afterwards.
        let ok = h.hash("still alive").await.unwrap();
        assert!(h.verify("still alive", Some(&ok)).await.unwrap().ok);
    }

    #[tokio::test]
    async fn argon2_round_trip_and_nfkc() {
        let h = PasswordHasher::new(&cheap(), 2, 16).unwrap();
        // U+FB01 (the "fi" ligature) normalises to "fi" under NFKC.
        let stored = h.hash("pass\u{FB01}word1").await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(h.verify("passfiword1", Some(&stored)).await.unwrap().ok);
        assert!(!h.verify("passfiword2", Some(&stored)).await.unwrap().ok);
        assert!(!h.verify("passfiword1", None).await.unwrap().ok);
    }

    #[tokio::test]
    async fn other_argon2_params_need_rehash() {
        let old = PasswordHasher::new(&cheap(), 1, 4).unwrap();
        let stored = old.hash("correct horse").await.unwrap();
        let mut s = cheap();
        s.iterations = 2;
        let new = PasswordHasher::new(&s, 1, 4).unwrap();
        let v = new.verify("correct horse", Some(&stored)).await.unwrap();
        assert!(v.ok && v.needs_rehash);
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_not_queued_forever() {
        let slow = Argon2Settings {
            memory_kib: 8192,
            iterations: 3,
            parallelism: 1,
        };
        let h = Arc::new(PasswordHasher::new(&slow, 1, 2).unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let h = h.clone();
                tokio::spawn(async move { h.hash("some password").await })
            })
            .collect();
        let mut busy = 0;
        for t in tasks {
            if matches!(t.await.unwrap(), Err(AuthError::Busy)) {
                busy += 1;
            }
        }
        assert!(busy >= 1, "a queue of 2 behind 1 thread cannot take 8 jobs");
    }

    #[test]
    fn policy_limits() {
        let p = PasswordPolicy::default();
        assert!(p.check_new("1234567", None).is_err());
        assert!(p.check_new("12345679x", None).is_ok());
        assert!(p.check_new(&"é".repeat(128), None).is_ok());
        assert!(p.check_new(&"é".repeat(129), None).is_err());
    }
}
