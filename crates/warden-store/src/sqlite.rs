//! SQLite: the embedded default. Timestamps are ISO-8601 UTC text with
//! milliseconds, booleans 0/1; WAL mode so readers never wait on the writer.

use chrono::{DateTime, NaiveDateTime, SecondsFormat};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Row};
use std::str::FromStr;
use std::time::Duration;

use warden_core::{
    Credential, Session, SessionFilter, StoreError, Timestamp, TokenHash, User, UserUpdate,
};

use crate::store_impl::{
    impl_counters, impl_returning, impl_store, sql, static_sql, Dialect, ACCOUNT_COLS,
    DELETE_TRUSTED_DEVICES, PASSKEY_COLS, SESSION_COLS, USER_COLS,
};

const DIALECT: Dialect = Dialect::Numbered;
use crate::{OpenError, PoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    pool: SqlitePool,
    health: std::sync::Arc<crate::health::Health>,
    metrics: std::sync::Arc<warden_telemetry::metrics::DbMetrics>,
    /// How long `ping` (readiness) waits for the database.
    probe_timeout: std::time::Duration,
}

fn ts(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `passkey."createdAt"` (BetterAuth's `date`): the same text.
fn ts_tz(t: Timestamp) -> String {
    ts(t)
}

/// Reads our own format, SQLite's CURRENT_TIMESTAMP format, and epoch
/// milliseconds, which rows written by other tools may carry.
fn get_ts(row: &SqliteRow, col: &str) -> Result<Timestamp, sqlx::Error> {
    let bad = |what: String| sqlx::Error::ColumnDecode {
        index: col.to_owned(),
        source: what.into(),
    };
    if let Ok(ms) = row.try_get::<i64, _>(col) {
        return DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| bad(format!("timestamp {ms} out of range")));
    }
    let s: String = row.try_get(col)?;
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Ok(t.to_utc());
    }
    NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
        .map(|t| t.and_utc())
        .map_err(|e| bad(format!("bad timestamp {s:?}: {e}")))
}

impl SqliteStore {
    pub async fn connect(url: &str, opts: &PoolOptions) -> Result<Self, OpenError> {
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let connect = SqliteConnectOptions::from_str(url)
            .map_err(OpenError::Connect)?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(if memory {
                SqliteJournalMode::Memory
            } else {
                SqliteJournalMode::Wal
            })
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = SqlitePoolOptions::new()
            // An in-memory database exists once per connection: keep one.
            .max_connections(if memory { 1 } else { opts.max_connections })
            .acquire_timeout(opts.acquire_timeout)
            // Connections open on first use: start-up opens exactly one
            // (`migrate` or `verify`), instead of one here and another for
            // the migrations while the first is still being returned.
            .connect_lazy_with(connect);
        Ok(SqliteStore {
            health: crate::health::watch(&pool, opts.probe_timeout),
            metrics: std::sync::Arc::new(warden_telemetry::metrics::DbMetrics::new("sqlite")),
            pool,
            probe_timeout: opts.probe_timeout,
        })
    }

    /// Opens a connection: is the database there?
    pub async fn verify(&self) -> Result<(), OpenError> {
        self.pool.acquire().await.map_err(OpenError::Connect)?;
        Ok(())
    }

    /// Applies pending migrations and the column additions below, all on
    /// one connection.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        let mut conn = self.pool.acquire().await.map_err(OpenError::Connect)?;
        MIGRATOR.run(&mut *conn).await.map_err(OpenError::Migrate)?;
        // BetterAuth 1.7 added a required `account.issuer` column. A database
        // made by BetterAuth 1.7 has it, one from the tutorial's schema does
        // not, and SQLite has no `ADD COLUMN IF NOT EXISTS`: add it here
        // (PostgreSQL does this in migration 3).
        // The same for the two-factor columns (PostgreSQL: migration 5).
        for (table, column, decl) in [
            ("account", "issuer", "TEXT"),
            ("user", "twoFactorEnabled", "INTEGER DEFAULT 0"),
            ("twoFactor", "verified", "INTEGER DEFAULT 1"),
            ("twoFactor", "failedVerificationCount", "INTEGER DEFAULT 0"),
            ("twoFactor", "lockedUntil", "TEXT"),
            ("twoFactor", "lastUsedStep", "INTEGER"),
            // The admin plugin's columns (migration 7).
            ("user", "role", "TEXT"),
            ("user", "banned", "INTEGER DEFAULT 0"),
            ("user", "banReason", "TEXT"),
            ("user", "banExpires", "TEXT"),
            ("session", "impersonatedBy", "TEXT"),
        ] {
            let has: bool = sqlx::query_scalar(
                "SELECT COUNT(*) > 0 FROM pragma_table_info($1) WHERE name = $2",
            )
            .bind(table)
            .bind(column)
            .fetch_one(&mut *conn)
            .await
            .map_err(OpenError::Connect)?;
            if !has {
                sqlx::query(&format!(
                    r#"ALTER TABLE "{table}" ADD COLUMN "{column}" {decl}"#
                ))
                .execute(&mut *conn)
                .await
                .map_err(OpenError::Connect)?;
            }
        }
        sqlx::query(
            r#"UPDATE "account" SET "issuer" = 'local:credential'
               WHERE "providerId" = 'credential' AND "issuer" IS NULL"#,
        )
        .execute(&mut *conn)
        .await
        .map_err(OpenError::Connect)?;
        Ok(())
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl_counters!(SqliteStore);
impl_returning!(SqliteStore);
impl_store!(SqliteStore, SqliteRow);
