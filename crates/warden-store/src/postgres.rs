//! PostgreSQL: the tutorial's schema verbatim (TIMESTAMP columns hold UTC).

use chrono::NaiveDateTime;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Row};
use std::str::FromStr;

use warden_core::{
    Credential, Session, SessionFilter, StoreError, Timestamp, TokenHash, User, UserUpdate,
};

use crate::store_impl::{impl_store, SESSION_COLS, USER_COLS};
use crate::{backend, OpenError, PoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
}

fn ts(t: Timestamp) -> NaiveDateTime {
    t.naive_utc()
}

type TsCol = NaiveDateTime;

fn from_ts(t: NaiveDateTime) -> Result<Timestamp, sqlx::Error> {
    Ok(t.and_utc())
}

impl PgStore {
    pub async fn connect(url: &str, opts: &PoolOptions) -> Result<Self, OpenError> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(OpenError::Connect)?
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(OpenError::Connect)?;
        Ok(PgStore { pool })
    }

    pub async fn migrate(&self) -> Result<(), OpenError> {
        MIGRATOR.run(&self.pool).await.map_err(OpenError::Migrate)
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl_store!(PgStore, PgRow);
