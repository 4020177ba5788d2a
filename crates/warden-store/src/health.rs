//! Fail fast while the database is unreachable, and notice by itself when it
//! is back.
//!
//! Without this, every request that needs the database during an outage
//! waits out the pool's whole `acquire_timeout` (sqlx retries refused
//! connections until then) before it fails. With it:
//!
//! - the first operation that finds the database unreachable (a connection
//!   could not be opened in time, or a connection broke) marks it *down*;
//! - while it is down, every operation fails at once with
//!   [`StoreError::Unavailable`], without touching the pool;
//! - a background probe pings it every [`PROBE_INTERVAL`] (each try
//!   bounded by `probe_timeout`) and marks it *up* on the first success, so
//!   service resumes within a fraction of a second of the database being
//!   reachable again, with no restart.
//!
//! Errors the database itself returns (a constraint, a syntax error, a
//! busy SQLite file) say nothing about reachability and never mark it down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use warden_core::StoreError;

/// How often the probe tries while the database is down.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// The shared up/down state of one database.
#[derive(Debug, Default)]
pub struct Health {
    down: AtomicBool,
    /// Wakes the probe when the database is marked down.
    tripped: Notify,
}

impl Health {
    /// `Err(Unavailable)` at once while the database is marked down.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::Acquire) {
            Err(StoreError::Unavailable)
        } else {
            Ok(())
        }
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    fn mark_down(&self, error: &sqlx::Error) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %error, "database unreachable: failing requests at once until it answers again");
            self.tripped.notify_one();
        }
    }

    fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("database reachable again");
        }
    }

    /// Maps an error of an operation to a [`StoreError`], marking the
    /// database down if the error means it cannot be reached. `pool_size`
    /// and `max_connections` tell an outage from a busy pool: a pool that
    /// timed out while every connection was open and in use is overloaded,
    /// not cut off.
    pub fn error(&self, e: sqlx::Error, pool_size: u32, max_connections: u32) -> StoreError {
        let unreachable = match &e {
            sqlx::Error::PoolTimedOut => pool_size < max_connections,
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
            _ => false,
        };
        if unreachable {
            self.mark_down(&e);
            return StoreError::Unavailable;
        }
        crate::backend(e)
    }
}

/// The health of the database behind `pool`, with its probe running: it
/// waits until the database is marked down, then pings it with a fresh
/// connection from the pool until it answers. The probe ends when the
/// returned `Health` is dropped (with its store).
pub(crate) fn watch<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    probe_timeout: Duration,
) -> Arc<Health> {
    let health = Arc::new(Health::default());
    let pool = pool.clone();
    spawn_probe(&health, probe_timeout, move || {
        let pool = pool.clone();
        async move {
            use sqlx::Connection as _;
            pool.acquire().await?.ping().await
        }
    });
    health
}

fn spawn_probe<F, Fut>(health: &Arc<Health>, probe_timeout: Duration, ping: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>> + Send,
{
    let weak = Arc::downgrade(health);
    tokio::spawn(async move {
        loop {
            // Wait to be tripped, checking now and then whether the store
            // is gone (then the probe ends).
            loop {
                let Some(h) = weak.upgrade() else { return };
                if h.is_down() {
                    break;
                }
                let _ = tokio::time::timeout(Duration::from_secs(1), h.tripped.notified()).await;
            }
            loop {
                match tokio::time::timeout(probe_timeout, ping()).await {
                    Ok(Ok(())) => {
                        let Some(h) = weak.upgrade() else { return };
                        h.mark_up();
                        break;
                    }
                    Ok(Err(e)) => tracing::debug!(error = %e, "database probe failed"),
                    Err(_) => tracing::debug!("database probe timed out"),
                }
                if weak.strong_count() == 0 {
                    return;
                }
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reachability_errors_mark_down() {
        let h = Health::default();
        assert!(matches!(
            h.error(sqlx::Error::RowNotFound, 0, 8),
            StoreError::Backend(_)
        ));
        // Every connection open and busy: overload, not an outage.
        assert!(matches!(
            h.error(sqlx::Error::PoolTimedOut, 8, 8),
            StoreError::Backend(_)
        ));
        assert!(h.check().is_ok());
        assert!(matches!(
            h.error(sqlx::Error::PoolTimedOut, 2, 8),
            StoreError::Unavailable
        ));
        assert!(matches!(h.check(), Err(StoreError::Unavailable)));
        h.mark_up();
        assert!(h.check().is_ok());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(matches!(
            h.error(sqlx::Error::Io(io), 8, 8),
            StoreError::Unavailable
        ));
        assert!(h.is_down());
    }
}
