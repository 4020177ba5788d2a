//! PostgreSQL: the tutorial's schema verbatim (TIMESTAMP columns hold UTC).
//! Databases made by BetterAuth's own migrator use TIMESTAMPTZ instead; both
//! are read, and sessions run with `TimeZone=UTC` so that the TIMESTAMP values
//! we bind convert to TIMESTAMPTZ without shifting.

use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Row};
use std::str::FromStr;

use warden_core::{
    Credential, Session, SessionFilter, StoreError, Timestamp, TokenHash, User, UserUpdate,
};

use crate::store_impl::{
    impl_counters, impl_returning, impl_store, sql, static_sql, Dialect, ACCOUNT_COLS,
    DELETE_TRUSTED_DEVICES, PASSKEY_COLS, SESSION_COLS, USER_COLS,
};

const DIALECT: Dialect = Dialect::Numbered;
use crate::{OpenError, PoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    health: std::sync::Arc<crate::health::Health>,
    metrics: std::sync::Arc<warden_telemetry::metrics::DbMetrics>,
    /// How long `ping` (readiness) waits for the database.
    probe_timeout: std::time::Duration,
}

fn ts(t: Timestamp) -> NaiveDateTime {
    t.naive_utc()
}

/// `passkey."createdAt"` is BetterAuth's `timestamptz`: bound as an
/// instant, not a local time.
fn ts_tz(t: Timestamp) -> DateTime<Utc> {
    t
}

fn get_ts(row: &PgRow, col: &str) -> Result<Timestamp, sqlx::Error> {
    match row.try_get::<NaiveDateTime, _>(col) {
        Ok(t) => Ok(t.and_utc()),
        Err(sqlx::Error::ColumnDecode { .. }) => row.try_get::<DateTime<Utc>, _>(col),
        Err(e) => Err(e),
    }
}

impl PgStore {
    pub async fn connect(url: &str, opts: &PoolOptions) -> Result<Self, OpenError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(OpenError::Connect)?
            .options([("TimeZone", "UTC")])
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            // Connections open on first use: start-up opens exactly one
            // (`migrate` or `verify`), instead of one here and another for
            // the migrations while the first is still being returned.
            .connect_lazy_with(connect);
        Ok(PgStore {
            health: crate::health::watch(&pool, opts.probe_timeout),
            metrics: std::sync::Arc::new(warden_telemetry::metrics::DbMetrics::new("postgresql")),
            pool,
            probe_timeout: opts.probe_timeout,
        })
    }

    /// Applies pending migrations, on one connection.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        let mut conn = self.pool.acquire().await.map_err(OpenError::Connect)?;
        MIGRATOR.run(&mut *conn).await.map_err(OpenError::Migrate)
    }

    /// Opens a connection: is the database there?
    pub async fn verify(&self) -> Result<(), OpenError> {
        self.pool.acquire().await.map_err(OpenError::Connect)?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_counters!(PgStore);
impl_returning!(PgStore);
impl_store!(PgStore, PgRow);
