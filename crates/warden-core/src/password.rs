//! Password policy, hashing and verification.
//!
//! New hashes are argon2id. BetterAuth's scrypt hashes (`<salt>:<key>`) are
//! verified as BetterAuth computes them, so a BetterAuth database works
//! unchanged; they are upgraded to argon2id on the next successful sign-in.
//!
//! All hashing runs on a dedicated pool of `max_concurrent` threads with a
//! queue of at most `max_queued` jobs, never on the async workers.
//!
//! Memory: each argon2 hash needs `memory_kib` (19 MiB by default) of
//! working memory. Taken from the allocator, those blocks are not given
//! back: glibc raises its mmap threshold after the first such block is
//! freed, so later ones come from per-thread arenas that fragment and stay
//! resident (a sign-in burst left the server at ~200 MiB). So each hashing
//! thread maps its working memory straight from the OS ([`Scratch`]), reuses
//! it while jobs keep coming, and unmaps it once it has had no job for
//! [`IDLE_RELEASE`]: peak memory is `max_concurrent × memory_kib` plus the
//! rest of the server, and after a burst it is all returned.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;

use crate::error::AuthError;
use tracing::Instrument;
use warden_telemetry::metrics::{HashLabels, HashOperation, Metrics};

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

/// The 10,000+ most common passwords (see `data/README.md` for the
/// source), lower-case, sorted and de-duplicated by `build.rs`.
mod common {
    include!(concat!(env!("OUT_DIR"), "/common_passwords.rs"));
}

/// Is `password` (case-insensitively) one of the shipped common passwords?
pub fn is_common_password(password: &str) -> bool {
    let p = password.trim().to_lowercase();
    common::COMMON_PASSWORDS.binary_search(&p.as_str()).is_ok()
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

type Job = Box<dyn FnOnce(&mut Scratch) + Send>;

/// A hashing thread's argon2 working memory, mapped from the OS (not the
/// allocator, see the module docs) and unmapped by [`Scratch::release`].
#[derive(Default)]
pub(crate) struct Scratch {
    map: Option<memmap2::MmapMut>,
    /// Bytes mapped by all the threads of one hasher.
    total: Arc<AtomicUsize>,
}

// `Block` is 1 KiB of `u64`s aligned to 64 bytes, for which every bit
// pattern (zero pages included) is a valid value.
const _: () = assert!(std::mem::size_of::<Block>() == Block::SIZE);
const _: () = assert!(std::mem::align_of::<Block>() <= 4096);

impl Scratch {
    /// `n` blocks of working memory, reusing the current mapping if it is
    /// large enough.
    fn blocks(&mut self, n: usize) -> Result<&mut [Block], AuthError> {
        let bytes = n
            .checked_mul(Block::SIZE)
            .ok_or_else(|| AuthError::Internal("argon2 memory size overflows".into()))?;
        if self.map.as_ref().is_none_or(|m| m.len() < bytes) {
            // Unmap the old one first: never hold both.
            self.release();
            let map = memmap2::MmapMut::map_anon(bytes.max(1)).map_err(|e| {
                AuthError::Internal(format!("cannot map {bytes} bytes for argon2: {e}"))
            })?;
            self.total.fetch_add(map.len(), Ordering::Relaxed);
            self.map = Some(map);
        }
        let map = self.map.as_mut().expect("mapped above");
        // SAFETY: the mapping is page-aligned (so aligned for `Block`, see
        // the assertions above), at least `n * size_of::<Block>()` bytes
        // long, readable and writable, and borrowed mutably from `self` for
        // the slice's whole life. Any bytes are a valid `Block`.
        Ok(unsafe { std::slice::from_raw_parts_mut(map.as_mut_ptr().cast::<Block>(), n) })
    }

    /// Gives the working memory back to the OS.
    fn release(&mut self) {
        if let Some(map) = self.map.take() {
            self.total.fetch_sub(map.len(), Ordering::Relaxed);
        }
    }

    /// Bytes currently mapped.
    #[cfg(test)]
    fn mapped(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }
}

/// How long a hashing thread keeps its working memory without a job: long
/// enough that a steady trickle of sign-ins does not map and fault in
/// 19 MiB for each one, short enough that memory is back soon after a burst.
pub const IDLE_RELEASE: Duration = Duration::from_secs(1);

/// The loop of one hashing thread: run jobs as they come, release the
/// working memory after [`IDLE_RELEASE`] without one. Every thread waits on
/// the channel itself (no lock around it), so each releases on its own.
fn hashing_thread(rx: Receiver<Job>, total: Arc<AtomicUsize>) {
    let mut scratch = Scratch { map: None, total };
    loop {
        let job = match rx.recv_timeout(IDLE_RELEASE) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                scratch.release();
                match rx.recv() {
                    Ok(job) => job,
                    // The hasher was dropped: stop.
                    Err(_) => return,
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        // A panicking job must not take the thread with it: its caller sees
        // an error, the pool stays whole.
        let run = std::panic::AssertUnwindSafe(|| job(&mut scratch));
        if std::panic::catch_unwind(run).is_err() {
            scratch.release();
        }
    }
}

pub struct PasswordHasher {
    params: Params,
    jobs: Sender<Job>,
    /// Working memory mapped by the hashing threads right now.
    mapped: Arc<AtomicUsize>,
    /// What unknown users are verified against, so that unknown emails cost
    /// the same time as wrong passwords: a hash in the current parameters
    /// with a random salt and a random output, which no password matches.
    /// Verifying against it is exactly the work of verifying a real hash,
    /// and building it costs nothing at start-up.
    dummy_hash: String,
    metrics: Arc<Metrics>,
}

/// The algorithm of a stored hash, for spans and metrics.
fn algorithm_of(stored: &str) -> &'static str {
    if stored.starts_with("$argon2id$") {
        "argon2id"
    } else if stored.starts_with("$argon2") {
        "argon2"
    } else if stored.contains(':') {
        "scrypt"
    } else {
        "unknown"
    }
}

/// Keeps the busy-threads gauge right even if a job panics.
struct Busy<'a>(&'a Metrics);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.hash_busy_threads.dec();
    }
}

impl PasswordHasher {
    pub fn new(
        settings: &Argon2Settings,
        max_concurrent: usize,
        max_queued: usize,
    ) -> Result<Self, AuthError> {
        Self::with_metrics(
            settings,
            max_concurrent,
            max_queued,
            Arc::new(Metrics::default()),
        )
    }

    /// [`PasswordHasher::new`], reporting into `metrics`: queue depth, busy
    /// threads, queue wait and hash time.
    pub fn with_metrics(
        settings: &Argon2Settings,
        max_concurrent: usize,
        max_queued: usize,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AuthError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| AuthError::Internal(format!("invalid argon2 parameters: {e}")))?;
        let dummy_hash = unmatchable_hash(&params)?;
        let (jobs, rx) = bounded::<Job>(max_queued);
        let mapped = Arc::new(AtomicUsize::new(0));
        for i in 0..max_concurrent.max(1) {
            let rx = rx.clone();
            let mapped = mapped.clone();
            std::thread::Builder::new()
                .name(format!("warden-hash-{i}"))
                .spawn(move || hashing_thread(rx, mapped))
                .map_err(|e| AuthError::Internal(format!("cannot start hashing threads: {e}")))?;
        }
        Ok(PasswordHasher {
            params,
            jobs,
            mapped,
            dummy_hash,
            metrics,
        })
    }

    /// Bytes of argon2 working memory the hashing threads hold right now
    /// (0 once they have been idle for [`IDLE_RELEASE`]).
    pub fn working_memory(&self) -> usize {
        self.mapped.load(Ordering::Relaxed)
    }

    /// Hashes a new password with argon2id.
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let params = self.params.clone();
        let password = password.to_owned();
        self.run(HashOperation::Hash, "argon2id", move |scratch| {
            hash_blocking(&params, &password, scratch)
        })
        .await?
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
        let algorithm = algorithm_of(&stored);
        let verified = self
            .run(HashOperation::Verify, algorithm, move |scratch| {
                verify_blocking(&params, &password, &stored, scratch)
            })
            .await?;
        Ok(Verified {
            ok: verified.ok && real,
            needs_rehash: verified.needs_rehash && real,
        })
    }

    /// Runs `f` on the hashing threads; refuses with `Busy` when the queue
    /// is full rather than letting waiters pile up.
    ///
    /// It runs in a `password.hash` or `password.verify` span with the
    /// algorithm, the time queued and the time hashing (never the
    /// parameters or the password).
    async fn run<T: Send + 'static>(
        &self,
        operation: HashOperation,
        algorithm: &'static str,
        f: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let span = match operation {
            HashOperation::Hash => tracing::info_span!(
                "password.hash",
                algorithm,
                queue_wait_ms = tracing::field::Empty,
                hash_ms = tracing::field::Empty,
            ),
            HashOperation::Verify => tracing::info_span!(
                "password.verify",
                algorithm,
                queue_wait_ms = tracing::field::Empty,
                hash_ms = tracing::field::Empty,
            ),
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let metrics = self.metrics.clone();
        let enqueued = Instant::now();
        let job: Job = Box::new(move |scratch| {
            metrics.hash_queue_depth.dec();
            metrics.hash_busy_threads.inc();
            let _busy = Busy(&metrics);
            let waited = enqueued.elapsed();
            let start = Instant::now();
            let out = f(scratch);
            let took = start.elapsed();
            let _ = tx.send((out, waited, took));
        });
        self.metrics.hash_queue_depth.inc();
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(e) => {
                self.metrics.hash_queue_depth.dec();
                return Err(match e {
                    TrySendError::Full(_) => {
                        self.metrics.hash_refused.inc();
                        AuthError::Busy
                    }
                    TrySendError::Disconnected(_) => {
                        AuthError::Internal("hashing threads stopped".into())
                    }
                });
            }
        }
        let (out, waited, took) = rx
            .instrument(span.clone())
            .await
            .map_err(|_| AuthError::Internal("hashing job panicked".into()))?;
        span.record("queue_wait_ms", waited.as_secs_f64() * 1000.0);
        span.record("hash_ms", took.as_secs_f64() * 1000.0);
        self.metrics.hash_queue_wait.observe(waited.as_secs_f64());
        self.metrics
            .hash_duration
            .get_or_create(&HashLabels {
                operation,
                algorithm,
            })
            .observe(took.as_secs_f64());
        Ok(out)
    }
}

fn normalize(password: &str) -> String {
    password.nfkc().collect()
}

/// A PHC string in `params` with a random salt and a random 32-byte output.
fn unmatchable_hash(params: &Params) -> Result<String, AuthError> {
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    OsRng.fill_bytes(&mut out);
    let salt = SaltString::generate(&mut OsRng);
    let fail = |e: argon2::password_hash::Error| AuthError::Internal(format!("argon2: {e}"));
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (params).try_into().map_err(fail)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(fail)?),
    }
    .to_string())
}

/// argon2 of `password` with `salt` into `out`, in `scratch`'s memory.
fn argon2_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    scratch: &mut Scratch,
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    let ctx = Argon2::new(algorithm, version, params);
    let memory = scratch
        .blocks(blocks)
        .map_err(|_| argon2::Error::MemoryTooMuch)?;
    ctx.hash_password_into_with_memory(password, salt, out, memory)
}

fn hash_blocking(
    params: &Params,
    password: &str,
    scratch: &mut Scratch,
) -> Result<String, AuthError> {
    let fail = |e: String| AuthError::Internal(format!("argon2 hashing failed: {e}"));
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| fail(e.to_string()))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        normalize(password).as_bytes(),
        salt_bytes,
        &mut out,
        scratch,
    )
    .map_err(|e| fail(e.to_string()))?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: params
            .try_into()
            .map_err(|e: argon2::password_hash::Error| fail(e.to_string()))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(e.to_string()))?),
    }
    .to_string())
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

fn verify_blocking(
    params: &Params,
    password: &str,
    stored: &str,
    scratch: &mut Scratch,
) -> Verified {
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
            let ok = argon2_matches(&parsed, stored_params.clone(), password.as_bytes(), scratch);
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

/// Does `password` hash to `parsed`'s output, with its algorithm, version,
/// parameters and salt? (What `argon2`'s `verify_password` does, in the
/// thread's own working memory.) The comparison is constant-time.
fn argon2_matches(
    parsed: &PasswordHash<'_>,
    params: Params,
    password: &[u8],
    scratch: &mut Scratch,
) -> bool {
    let (Ok(algorithm), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::V0x13), Version::try_from) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if argon2_into(
        algorithm, version, params, password, salt, &mut out, scratch,
    )
    .is_err()
    {
        return false;
    }
    out.ct_eq(expected.as_bytes()).into()
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
    fn common_passwords_are_found_case_insensitively() {
        assert!(common::COMMON_PASSWORDS.len() >= 9_000);
        assert!(common::COMMON_PASSWORDS.windows(2).all(|w| w[0] < w[1]));
        for p in ["password", "PassWord", " qwerty ", "123456", "iloveyou"] {
            assert!(is_common_password(p), "{p}");
        }
        assert!(!is_common_password("correct horse battery staple"));
    }

    #[tokio::test]
    async fn working_memory_is_given_back_when_idle() {
        let settings = Argon2Settings {
            memory_kib: 4096,
            iterations: 1,
            parallelism: 1,
        };
        let params = Params::new(4096, 1, 1, None).unwrap();
        let mut scratch = Scratch::default();
        let stored = hash_blocking(&params, "pw-one", &mut scratch).unwrap();
        assert_eq!(scratch.mapped(), 4096 * 1024);
        // Reused, not re-mapped, for the next hash of the same size.
        assert!(verify_blocking(&params, "pw-one", &stored, &mut scratch).ok);
        assert!(!verify_blocking(&params, "pw-two", &stored, &mut scratch).ok);
        scratch.release();
        assert_eq!(scratch.mapped(), 0);
        // And what the pool computes is a standard PHC hash that the argon2
        // crate's own verifier accepts.
        let h = PasswordHasher::new(&settings, 1, 4).unwrap();
        let stored = h.hash("pw-three").await.unwrap();
        let parsed = PasswordHash::new(&stored).unwrap();
        use argon2::PasswordVerifier as _;
        assert!(Argon2::default()
            .verify_password(b"pw-three", &parsed)
            .is_ok());
        assert!(h.verify("pw-three", Some(&stored)).await.unwrap().ok);
        // And the other way round: a hash the argon2 crate made (as earlier
        // versions of Warden did) verifies here.
        use argon2::password_hash::PasswordHasher as _;
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password(b"pw-four", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(h.verify("pw-four", Some(&theirs)).await.unwrap().ok);
        assert!(!h.verify("pw-five", Some(&theirs)).await.unwrap().ok);
    }

    #[tokio::test]
    async fn the_pool_unmaps_its_memory_after_being_idle() {
        let settings = Argon2Settings {
            memory_kib: 2048,
            iterations: 1,
            parallelism: 1,
        };
        let h = PasswordHasher::new(&settings, 2, 8).unwrap();
        assert_eq!(h.working_memory(), 0, "nothing is mapped before a hash");
        let (a, b) = tokio::join!(h.hash("one password"), h.hash("two password"));
        a.unwrap();
        b.unwrap();
        let held = h.working_memory();
        assert!(
            (2048 * 1024..=2 * 2048 * 1024).contains(&held),
            "{held} bytes held"
        );
        tokio::time::sleep(IDLE_RELEASE + Duration::from_millis(500)).await;
        assert_eq!(h.working_memory(), 0, "every thread unmapped its memory");
    }

    #[test]
    fn the_dummy_hash_parses_and_matches_nothing() {
        let params = Params::new(1024, 1, 1, None).unwrap();
        let dummy = unmatchable_hash(&params).unwrap();
        let parsed = PasswordHash::new(&dummy).unwrap();
        assert_eq!(parsed.algorithm.as_str(), "argon2id");
        assert_eq!(stored_argon2_params(&parsed).unwrap().m_cost(), 1024);
        let mut scratch = Scratch::default();
        assert!(!verify_blocking(&params, "", &dummy, &mut scratch).ok);
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
