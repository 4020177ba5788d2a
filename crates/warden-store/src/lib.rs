//! Storage backends for Warden: one module per database, each with its own
//! embedded SQL migrations. Only this crate knows SQL.

use std::sync::Arc;
use std::time::Duration;

use warden_core::{Counters, Store, StoreError};

pub mod explore;
pub mod health;
mod mysql;
pub mod peers;
mod postgres;
#[cfg(feature = "redis")]
pub mod redis_bus;
#[cfg(feature = "redis")]
pub mod redis_counters;
mod sqlite;
mod store_impl;
mod traced;

pub use mysql::MySqlStore;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "unsupported database URL scheme in {0:?}: use sqlite:PATH, postgres://... or mysql://..."
    )]
    UnsupportedUrl(String),
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

/// Connection-pool settings.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// How long an operation waits for a connection (including opening
    /// one) before it fails and the database is marked down.
    pub acquire_timeout: Duration,
    /// How long one try of the background probe (and a readiness check)
    /// may take while the database is down.
    pub probe_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(2),
            probe_timeout: Duration::from_millis(500),
        }
    }
}

/// Which backend a URL names.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// A MySQL or MariaDB URL (`mysql://`, `mariadb://`).
pub fn is_mysql(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

/// Opens the database named by `url` (`sqlite:warden.db`,
/// `sqlite::memory:`, `postgres://user@host/db`, `mysql://user@host/db`),
/// creating a SQLite file if needed, and applies pending migrations when
/// `migrate` is true.
pub async fn open(
    url: &str,
    pool: &PoolOptions,
    migrate: bool,
) -> Result<Arc<dyn Store>, OpenError> {
    Ok(open_database(url, pool, migrate).await?.store)
}

/// An open database: the store, the same database as rate-limit
/// counters (the `warden_rate_limit` table), and the dashboard's view of
/// it (secrets masked), all sharing the store's pool.
pub struct Database {
    pub store: Arc<dyn Store>,
    pub counters: Arc<dyn Counters>,
    pub explorer: Arc<dyn explore::Explorer>,
    /// How this database tells instances about each other's changes, when
    /// it can (PostgreSQL's LISTEN/NOTIFY).
    pub peers: Option<peers::PgPeers>,
}

/// Like [`open`], also giving the database's counters.
pub async fn open_database(
    url: &str,
    pool: &PoolOptions,
    migrate: bool,
) -> Result<Database, OpenError> {
    if is_sqlite(url) {
        let store = Arc::new(SqliteStore::connect(url, pool).await?);
        if migrate {
            store.migrate().await?;
        } else {
            store.verify().await?;
        }
        Ok(Database {
            explorer: Arc::new(explore::SqliteExplorer::new(store.pool().clone(), url)),
            store: store.clone(),
            counters: store,
            peers: None,
        })
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = Arc::new(PgStore::connect(url, pool).await?);
        if migrate {
            store.migrate().await?;
        } else {
            store.verify().await?;
        }
        Ok(Database {
            explorer: Arc::new(explore::PgExplorer::new(store.pool().clone())),
            peers: Some(peers::PgPeers::new(store.pool().clone())),
            store: store.clone(),
            counters: store,
        })
    } else if is_mysql(url) {
        let store = Arc::new(MySqlStore::connect(url, pool).await?);
        if migrate {
            store.migrate().await?;
        } else {
            store.verify().await?;
        }
        Ok(Database {
            explorer: Arc::new(explore::MySqlExplorer::new(store.pool().clone())),
            store: store.clone(),
            counters: store,
            // MySQL cannot announce changes: `[cluster] invalidation = "redis"`.
            peers: None,
        })
    } else {
        Err(OpenError::UnsupportedUrl(redact_url(url)))
    }
}

/// A URL with any password replaced, safe for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::Backend(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact_url("sqlite:warden.db"), "sqlite:warden.db");
    }
}
