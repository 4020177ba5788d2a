//! MySQL 8 and MariaDB: BetterAuth's MySQL schema (`timestamp(3)` columns,
//! `tinyint(1)` booleans, `varchar(36)` ids), read and written in UTC
//! (every connection sets `time_zone = '+00:00'`). Warden's migrations
//! make three of those columns `datetime(3)`, which reach past 2038.
//!
//! The shared SQL (`store_impl.rs`) runs as written: each connection adds
//! `ANSI_QUOTES` (double-quoted identifiers) and `NO_BACKSLASH_ESCAPES`
//! (`ESCAPE '\'`) to its `sql_mode`, and placeholders are rewritten to `?`
//! once per statement. MySQL has no `RETURNING` (MariaDB has it for INSERT
//! and DELETE only), so the statements that read back what they change are
//! transactions here: lock or change the rows, then read them, then commit.

use chrono::{DateTime, NaiveDateTime, SubsecRound, Utc};
use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow};
use sqlx::{ConnectOptions, Executor, Row};
use std::str::FromStr;

use warden_core::{
    Credential, Session, SessionFilter, StoreError, Timestamp, TokenHash, User, UserUpdate,
};

use crate::store_impl::{
    impl_counters, impl_store, sql, static_sql, Dialect, ACCOUNT_COLS, DELETE_TRUSTED_DEVICES,
    PASSKEY_COLS, SESSION_COLS, USER_COLS,
};
use crate::{OpenError, PoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/mysql");

const DIALECT: Dialect = Dialect::QuestionMarks;

/// Added to each connection's `sql_mode` (see the module comment).
const SESSION_SETUP: &str =
    "SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES,NO_BACKSLASH_ESCAPES')";

pub struct MySqlStore {
    pool: MySqlPool,
    health: std::sync::Arc<crate::health::Health>,
    metrics: std::sync::Arc<warden_telemetry::metrics::DbMetrics>,
    /// How long `ping` (readiness) waits for the database.
    probe_timeout: std::time::Duration,
}

/// A timestamp as bound: UTC, milliseconds (MySQL would round finer
/// fractions, not truncate them). BetterAuth's `timestamp(3)` columns end
/// in January 2038; those that may hold later instants (a ban's end, a
/// provider's token expiry) are `datetime(3)` (migrations 1 and 7).
fn ts(t: Timestamp) -> NaiveDateTime {
    t.naive_utc().trunc_subsecs(3)
}

/// `passkey."createdAt"` (`timestamp(3)`, read in the connection's UTC).
fn ts_tz(t: Timestamp) -> NaiveDateTime {
    ts(t)
}

fn get_ts(row: &MySqlRow, col: &str) -> Result<Timestamp, sqlx::Error> {
    match row.try_get::<NaiveDateTime, _>(col) {
        Ok(t) => Ok(t.and_utc()),
        Err(sqlx::Error::ColumnDecode { .. }) => row.try_get::<DateTime<Utc>, _>(col),
        Err(e) => Err(e),
    }
}

/// `mariadb://` names the same driver.
fn mysql_url(url: &str) -> std::borrow::Cow<'_, str> {
    match url.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}").into(),
        None => url.into(),
    }
}

impl MySqlStore {
    pub async fn connect(url: &str, opts: &PoolOptions) -> Result<Self, OpenError> {
        let connect = MySqlConnectOptions::from_str(&mysql_url(url))
            .map_err(OpenError::Connect)?
            .timezone(Some("+00:00".to_owned()))
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = MySqlPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.acquire_timeout)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(SESSION_SETUP).await?;
                    Ok(())
                })
            })
            // Connections open on first use: start-up opens exactly one
            // (`migrate` or `verify`).
            .connect_lazy_with(connect);
        Ok(MySqlStore {
            health: crate::health::watch(&pool, opts.probe_timeout),
            metrics: std::sync::Arc::new(warden_telemetry::metrics::DbMetrics::new("mysql")),
            pool,
            probe_timeout: opts.probe_timeout,
        })
    }

    /// Applies pending migrations, on one connection, holding a lock named
    /// after the database meanwhile, so that instances starting together
    /// apply each migration once.
    ///
    /// The lock is taken here: sqlx's migrator asks for `GET_LOCK(name, -1)`
    /// and ignores the answer, and MariaDB answers a negative timeout with
    /// NULL at once instead of waiting (MySQL 8 waits), so on MariaDB it
    /// would not hold. A lost connection releases the lock by itself.
    pub async fn migrate(&self) -> Result<(), OpenError> {
        const LOCK: &str = "CONCAT('warden-migrate:', LEFT(SHA2(DATABASE(), 256), 40))";
        let mut conn = self.pool.acquire().await.map_err(OpenError::Connect)?;
        loop {
            let got: Option<i64> = sqlx::query_scalar(&format!("SELECT GET_LOCK({LOCK}, 10)"))
                .fetch_one(&mut *conn)
                .await
                .map_err(OpenError::Connect)?;
            match got {
                Some(1) => break,
                // Timed out: another instance is still migrating.
                Some(_) => tracing::info!("waiting for another instance's migrations"),
                None => {
                    return Err(OpenError::Connect(sqlx::Error::Protocol(
                        "GET_LOCK failed for the migration lock".into(),
                    )))
                }
            }
        }
        let result = MIGRATOR.run(&mut *conn).await.map_err(OpenError::Migrate);
        let released = sqlx::query(&format!("SELECT RELEASE_LOCK({LOCK})"))
            .execute(&mut *conn)
            .await;
        if let Err(e) = released {
            // The connection goes back broken: close it, which releases the lock.
            conn.detach();
            if result.is_ok() {
                return Err(OpenError::Connect(e));
            }
        }
        result
    }

    /// Opens a connection: is the database there?
    pub async fn verify(&self) -> Result<(), OpenError> {
        self.pool.acquire().await.map_err(OpenError::Connect)?;
        Ok(())
    }

    pub fn pool(&self) -> &MySqlPool {
        &self.pool
    }
}

/// Runs `$body` (which uses `$conn`, yielding `Result<_, sqlx::Error>`) in
/// a transaction, again (up to three times in all) when InnoDB chose it as
/// a deadlock's victim or its lock wait timed out: both roll the whole
/// transaction back, so trying again is safe.
macro_rules! in_tx {
    ($self:ident, $conn:ident => $body:expr) => {{
        let mut tries = 0;
        loop {
            tries += 1;
            let mut tx = $self.db()?.begin().await.map_err(|e| $self.fail(e))?;
            let result: Result<_, sqlx::Error> = async {
                let $conn: &mut sqlx::MySqlConnection = &mut tx;
                $body
            }
            .await;
            let result = match result {
                Ok(v) => tx.commit().await.map(|()| v),
                Err(e) => Err(e),
            };
            match result {
                Ok(v) => break Ok(v),
                Err(e) if tries < 3 && is_retryable(&e) => continue,
                Err(e) => break Err($self.fail(e)),
            }
        }
    }};
}

/// ER_LOCK_DEADLOCK (1213) and ER_LOCK_WAIT_TIMEOUT (1205).
fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .is_some_and(|m| matches!(m.number(), 1205 | 1213)),
        _ => false,
    }
}

/// Binds the values of a `session_filter_sql` condition.
fn filter_query<'q>(
    sql: &'q str,
    user_id: &'q str,
    binds: &[&'q str],
) -> sqlx::query::Query<'q, sqlx::MySql, sqlx::mysql::MySqlArguments> {
    let mut q = sqlx::query(sql).bind(user_id);
    for b in binds {
        q = q.bind(*b);
    }
    q
}

/// The statements that read back what they change (PostgreSQL and SQLite:
/// `impl_returning!`), as transactions.
impl MySqlStore {
    async fn dialect_delete_sessions_on(
        &self,
        conn: &mut sqlx::MySqlConnection,
        user_id: &str,
        which: SessionFilter<'_>,
    ) -> Result<Vec<String>, StoreError> {
        delete_sessions_in(self, conn, user_id, which)
            .await
            .map_err(|e| self.fail(e))
    }

    async fn dialect_delete_sessions(
        &self,
        user_id: &str,
        which: SessionFilter<'_>,
    ) -> Result<Vec<String>, StoreError> {
        in_tx!(self, conn => delete_sessions_in(self, conn, user_id, which).await)
    }

    async fn dialect_take_verification(
        &self,
        identifier: &str,
    ) -> Result<Option<(String, Timestamp)>, StoreError> {
        // The locking read waits for a concurrent taker, then sees its
        // delete: a value is taken once.
        in_tx!(self, conn => {
            let row = sqlx::query(sql!(
                r#"SELECT "value" AS v_value, "expiresAt" AS v_expires FROM "verification"
                   WHERE "identifier" = $1 LIMIT 1 FOR UPDATE"#
            ))
            .bind(identifier)
            .fetch_optional(self.on(&mut *conn))
            .await?;
            let Some(row) = row else { return Ok(None) };
            sqlx::query(sql!(
                r#"DELETE FROM "verification" WHERE "identifier" = $1"#
            ))
            .bind(identifier)
            .execute(self.on(&mut *conn))
            .await?;
            verification(&row).map(Some)
        })
    }

    async fn dialect_set_email_verified(
        &self,
        user_id: &str,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        in_tx!(self, conn => {
            sqlx::query(sql!(
                r#"UPDATE "user" SET "emailVerified" = $1, "updatedAt" = $2 WHERE "id" = $3"#
            ))
            .bind(true)
            .bind(ts(now))
            .bind(user_id)
            .execute(self.on(&mut *conn))
            .await?;
            user_in(self, conn, user_id).await
        })
    }

    async fn dialect_set_email(
        &self,
        user_id: &str,
        email: &str,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        in_tx!(self, conn => {
            sqlx::query(sql!(
                r#"UPDATE "user" SET "email" = $1, "emailVerified" = $2, "updatedAt" = $3 WHERE "id" = $4"#
            ))
            .bind(email)
            .bind(true)
            .bind(ts(now))
            .bind(user_id)
            .execute(self.on(&mut *conn))
            .await?;
            user_in(self, conn, user_id).await
        })
    }

    async fn dialect_update_user(
        &self,
        user_id: &str,
        update: &UserUpdate,
        now: Timestamp,
    ) -> Result<Option<User>, StoreError> {
        // MySQL assigns left to right, later assignments seeing earlier
        // ones: each column here refers to itself only.
        in_tx!(self, conn => {
            sqlx::query(sql!(
                r#"UPDATE "user" SET
                         "name" = COALESCE($1, "name"),
                         "image" = CASE WHEN $2 THEN $3 ELSE "image" END,
                         "updatedAt" = $4,
                         "email" = COALESCE($5, "email"),
                         "emailVerified" = COALESCE($6, "emailVerified"),
                         "role" = CASE WHEN $7 THEN $8 ELSE "role" END,
                         "banned" = COALESCE($9, "banned"),
                         "banReason" = CASE WHEN $10 THEN $11 ELSE "banReason" END,
                         "banExpires" = CASE WHEN $12 THEN $13 ELSE "banExpires" END
                       WHERE "id" = $14"#
            ))
            .bind(&update.name)
            .bind(update.image.is_some())
            .bind(update.image.clone().flatten())
            .bind(ts(now))
            .bind(&update.email)
            .bind(update.email_verified)
            .bind(update.role.is_some())
            .bind(update.role.clone().flatten())
            .bind(update.banned)
            .bind(update.ban_reason.is_some())
            .bind(update.ban_reason.clone().flatten())
            .bind(update.ban_expires.is_some())
            .bind(update.ban_expires.flatten().map(ts))
            .bind(user_id)
            .execute(self.on(&mut *conn))
            .await?;
            user_in(self, conn, user_id).await
        })
    }

    async fn dialect_count_two_factor_failure(
        &self,
        user_id: &str,
        lock_after: i64,
        lock_until: Timestamp,
    ) -> Result<Option<Timestamp>, StoreError> {
        // "lockedUntil" first: MySQL's later assignments see the earlier
        // ones. The update locks the row until the read below commits, so
        // concurrent failures are all counted.
        let locked_now = in_tx!(self, conn => {
            let updated = sqlx::query(sql!(
                r#"UPDATE "twoFactor" SET
                             "lockedUntil" = CASE WHEN COALESCE("failedVerificationCount", 0) + 1 >= $1 THEN $2
                                                  ELSE "lockedUntil" END,
                             "failedVerificationCount" = CASE WHEN COALESCE("failedVerificationCount", 0) + 1 >= $3 THEN 0
                                                              ELSE COALESCE("failedVerificationCount", 0) + 1 END
                           WHERE "userId" = $4"#
            ))
            .bind(lock_after as i32)
            .bind(ts(lock_until))
            .bind(lock_after as i32)
            .bind(user_id)
            .execute(self.on(&mut *conn))
            .await?;
            if updated.rows_affected() == 0 {
                return Ok(false);
            }
            let count: Option<i64> = sqlx::query_scalar(sql!(
                r#"SELECT COALESCE("failedVerificationCount", 0) FROM "twoFactor" WHERE "userId" = $1 LIMIT 1"#
            ))
            .bind(user_id)
            .fetch_optional(self.on(&mut *conn))
            .await?;
            Ok(count == Some(0))
        })?;
        Ok(locked_now.then_some(lock_until))
    }

    async fn dialect_delete_session_by_handle(
        &self,
        id: &str,
        token_hash: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        in_tx!(self, conn => {
            let row = sqlx::query(sql!(
                r#"SELECT "userId", "token" FROM "session" WHERE "id" = $1 OR "token" = $2 LIMIT 1 FOR UPDATE"#
            ))
            .bind(id)
            .bind(token_hash)
            .fetch_optional(self.on(&mut *conn))
            .await?;
            let Some(row) = row else { return Ok(None) };
            sqlx::query(sql!(
                r#"DELETE FROM "session" WHERE "id" = $1 OR "token" = $2"#
            ))
            .bind(id)
            .bind(token_hash)
            .execute(self.on(&mut *conn))
            .await?;
            Ok(Some((row.try_get("userId")?, row.try_get("token")?)))
        })
    }

    async fn dialect_hit(
        &self,
        key: &str,
        window: std::time::Duration,
    ) -> Result<warden_core::Hit, StoreError> {
        use crate::store_impl::{counter_key, hit_of, now_ms, window_ms};
        let now = now_ms();
        let window = window_ms(window);
        let key = counter_key(DIALECT, key);
        let key = key.as_ref();
        // The upsert locks the row until the read below commits.
        // "resetAt" is assigned after "count" and refers to itself only.
        let (count, reset_at): (i64, i64) = in_tx!(self, conn => {
            sqlx::query(sql!(
                r#"INSERT INTO "warden_rate_limit" ("key", "count", "resetAt") VALUES ($1, 1, $2)
                           ON DUPLICATE KEY UPDATE
                             "count" = IF("resetAt" <= $3, 1, "count" + 1),
                             "resetAt" = IF("resetAt" <= $4, $5, "resetAt")"#
            ))
            .bind(key)
            .bind(now + window)
            .bind(now)
            .bind(now)
            .bind(now + window)
            .execute(self.on(&mut *conn))
            .await?;
            sqlx::query_as(sql!(
                r#"SELECT "count", "resetAt" FROM "warden_rate_limit" WHERE "key" = $1"#
            ))
            .bind(key)
            .fetch_one(self.on(&mut *conn))
            .await
        })?;
        Ok(hit_of(count, reset_at, now))
    }
}

/// Deletes the sessions that `which` picks, returning their token hashes
/// (in the caller's transaction).
async fn delete_sessions_in(
    s: &MySqlStore,
    conn: &mut sqlx::MySqlConnection,
    user_id: &str,
    which: SessionFilter<'_>,
) -> Result<Vec<String>, sqlx::Error> {
    let (cond, binds) = crate::store_impl::session_filter_sql(which);
    let select = adapt(format!(
        r#"SELECT "token" FROM "session" WHERE "userId" = $1{cond} FOR UPDATE"#
    ));
    let delete = adapt(format!(
        r#"DELETE FROM "session" WHERE "userId" = $1{cond}"#
    ));
    let tokens = filter_query(&select, user_id, &binds)
        .fetch_all(s.on(&mut *conn))
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("token"))
        .collect::<Result<Vec<_>, _>>()?;
    if !tokens.is_empty() {
        filter_query(&delete, user_id, &binds)
            .execute(s.on(&mut *conn))
            .await?;
    }
    Ok(tokens)
}

/// A user as the transaction sees it.
async fn user_in(
    s: &MySqlStore,
    conn: &mut sqlx::MySqlConnection,
    user_id: &str,
) -> Result<Option<User>, sqlx::Error> {
    let sql = static_sql!(r#"SELECT {USER_COLS} FROM "user" u WHERE u."id" = $1"#);
    let row = sqlx::query(sql)
        .bind(user_id)
        .fetch_optional(s.on(conn))
        .await?;
    row.map(|r| user(&r)).transpose()
}

impl_counters!(MySqlStore);
impl_store!(MySqlStore, MySqlRow);

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_bound_in_milliseconds() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00.123956Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            super::ts(now).and_utc().to_rfc3339(),
            "2026-01-01T00:00:00.123+00:00"
        );
    }

    #[test]
    fn mariadb_urls_use_the_mysql_driver() {
        assert_eq!(super::mysql_url("mariadb://u@h/db"), "mysql://u@h/db");
        assert_eq!(super::mysql_url("mysql://u@h/db"), "mysql://u@h/db");
    }
}
