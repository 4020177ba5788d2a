//! The `Store` implementation shared by every backend. The SQL is written
//! once, in PostgreSQL's and SQLite's common dialect (`$N` placeholders,
//! double-quoted identifiers); what differs is supplied by each backend
//! module:
//!
//! - `fn ts(Timestamp) -> impl Encode`: a timestamp as bound to a query;
//! - `fn get_ts(&Row, column) -> Result<Timestamp, sqlx::Error>`: a timestamp
//!   read back, in whichever form the database holds it (our own schema, or
//!   one that BetterAuth's migrator created);
//! - `const DIALECT: Dialect`: whether statements need their placeholders
//!   rewritten (MySQL's `?`). Each statement goes through `sql!` (a literal)
//!   or `static_sql!`/`adapt` (formatted): for SQLite and PostgreSQL these
//!   are the text itself, for MySQL the rewrite, done once per statement and
//!   cached. Placeholders therefore appear once each, in order (`$1`, `$2`,
//!   ...), so that the rewrite keeps the binding order;
//! - the few statements that read back what they change (`RETURNING`,
//!   `ON CONFLICT`) are `dialect_*` methods: `impl_returning!` for SQLite and
//!   PostgreSQL, hand-written transactions for MySQL (`mysql.rs`).

/// How a backend takes the shared SQL text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `$N` placeholders as written (SQLite, PostgreSQL).
    Numbered,
    /// `?` placeholders (MySQL, MariaDB); double-quoted identifiers and
    /// `'\'` literals work through the session's `sql_mode` (ANSI_QUOTES,
    /// NO_BACKSLASH_ESCAPES, see `mysql.rs`).
    QuestionMarks,
}

/// `sql` for `dialect`: `$N` placeholders become `?` outside string
/// literals and quoted identifiers. They must appear in order, each once
/// (`$1`, `$2`, ...): `?` binds by position.
pub(crate) fn adapt(dialect: Dialect, sql: String) -> String {
    if dialect == Dialect::Numbered {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next = 1u32;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' || c == '`' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let mut n = 0u32;
                while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                    n = n * 10 + d;
                    chars.next();
                }
                assert_eq!(
                    n, next,
                    "placeholders must be $1, $2, ... in order, each once: {sql}"
                );
                next += 1;
                out.push('?');
            }
            None => out.push(c),
        }
    }
    out
}

/// A literal statement for this backend (`DIALECT` where it is used):
/// itself, or rewritten once and kept.
macro_rules! sql {
    ($text:expr) => {{
        if DIALECT == $crate::store_impl::Dialect::Numbered {
            $text
        } else {
            static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                $crate::store_impl::adapt(
                    $crate::store_impl::Dialect::QuestionMarks,
                    $text.to_owned(),
                )
            });
            TEXT.as_str()
        }
    }};
}

/// A statement formatted from constants, formatted (and rewritten) once.
macro_rules! static_sql {
    ($($fmt:tt)*) => {{
        static TEXT: std::sync::LazyLock<String> =
            std::sync::LazyLock::new(|| $crate::store_impl::adapt(DIALECT, format!($($fmt)*)));
        TEXT.as_str()
    }};
}

pub(crate) use {sql, static_sql};

/// Columns of `"user" u`, aliased for the row readers.
pub(crate) const USER_COLS: &str = r#"u."id" AS u_id, u."name" AS u_name, u."email" AS u_email, u."emailVerified" AS u_verified, u."image" AS u_image, COALESCE(u."twoFactorEnabled", false) AS u_2fa, u."role" AS u_role, COALESCE(u."banned", false) AS u_banned, u."banReason" AS u_ban_reason, u."banExpires" IS NOT NULL AS u_ban_set, u."banExpires" AS u_ban_expires, u."createdAt" AS u_created, u."updatedAt" AS u_updated"#;
/// Columns of `"session" s`, aliased for the row readers.
pub(crate) const SESSION_COLS: &str = r#"s."id" AS s_id, s."token" AS s_token, s."userId" AS s_user, s."expiresAt" AS s_expires, s."createdAt" AS s_created, s."updatedAt" AS s_updated, s."ipAddress" AS s_ip, s."userAgent" AS s_ua, s."impersonatedBy" AS s_imp"#;

/// Columns of `"account" a`, aliased for the row readers.
pub(crate) const ACCOUNT_COLS: &str = r#"a."id" AS a_id, a."userId" AS a_user, a."providerId" AS a_provider, a."accountId" AS a_account, a."issuer" AS a_issuer, a."scope" AS a_scope, (a."providerId" = 'credential' AND a."password" IS NOT NULL) AS a_has_password, a."createdAt" AS a_created, a."updatedAt" AS a_updated"#;

/// Columns of `"passkey"` for [`passkey_row`] (BetterAuth's passkey
/// plugin's table).
pub(crate) const PASSKEY_COLS: &str = r#""id", "name", "publicKey", "userId", "credentialID", "counter", "deviceType", "backedUp", "transports", "createdAt", "createdAt" IS NOT NULL AS pk_created_set, "aaguid""#;

/// Deletes the trusted devices of user `$1` (two-factor's
/// `trust-device:<sha256>` verification rows hold the user id).
pub(crate) const DELETE_TRUSTED_DEVICES: &str =
    r#"DELETE FROM "verification" WHERE "identifier" LIKE 'trust-device:%' AND "value" = $1"#;

/// The condition (after `"userId" = $1`) that picks a user's sessions,
/// and the further values to bind (`$2`, `$3`).
pub(crate) fn session_filter_sql(
    which: warden_core::SessionFilter<'_>,
) -> (&'static str, Vec<&str>) {
    use warden_core::SessionFilter as F;
    match which {
        F::Id(id) => (r#" AND "id" = $2"#, vec![id]),
        F::TokenHash(h) => (r#" AND "token" = $2"#, vec![h]),
        F::IdOrTokenHash { id, token_hash } => {
            (r#" AND ("id" = $2 OR "token" = $3)"#, vec![id, token_hash])
        }
        F::All => ("", vec![]),
        F::AllExcept(id) => (r#" AND "id" <> $2"#, vec![id]),
    }
}

/// `DELETE ... RETURNING "token"` for the sessions of user `$1` that
/// `which` selects, and the further values to bind (`$2`, `$3`).
pub(crate) fn delete_sessions_sql(which: warden_core::SessionFilter<'_>) -> (String, Vec<&str>) {
    let (cond, binds) = session_filter_sql(which);
    (
        format!(r#"DELETE FROM "session" WHERE "userId" = $1{cond} RETURNING "token""#),
        binds,
    )
}

/// A value bound to a user-listing query.
pub(crate) enum Bind {
    Text(String),
    Bool(bool),
    Time(warden_core::Timestamp),
}

/// `LIKE` pattern text with `%`, `_` and `\` taken literally.
fn like_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `WHERE` clause (with a leading space, or empty) of a user listing,
/// and its values in `$1..` order. Field names come from a closed set;
/// values are always bound. Text comparisons ignore case.
pub(crate) fn user_conditions(query: &warden_core::UserQuery) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut parts: Vec<String> = query
        .conditions
        .iter()
        .map(|c| condition_sql(c, &mut binds))
        .collect();
    if !query.any_of.is_empty() {
        let any: Vec<String> = query
            .any_of
            .iter()
            .map(|c| condition_sql(c, &mut binds))
            .collect();
        parts.push(format!("({})", any.join(" OR ")));
    }
    if parts.is_empty() {
        (String::new(), binds)
    } else {
        (format!(" WHERE {}", parts.join(" AND ")), binds)
    }
}

/// One condition as SQL, its values appended to `binds` (`$n` numbered).
fn condition_sql(c: &warden_core::Condition, binds: &mut Vec<Bind>) -> String {
    use warden_core::{FieldValue as V, Operator as O};
    let raw = format!(r#"u."{}""#, c.field.name());
    // Names and emails compare without regard to case; ids and roles
    // exactly.
    let ci = matches!(
        c.field,
        warden_core::UserField::Name | warden_core::UserField::Email
    );
    let col = if ci {
        format!("LOWER({raw})")
    } else {
        raw.clone()
    };
    let fold = |v: &str| if ci { v.to_lowercase() } else { v.to_owned() };
    let mut next = |b: Bind| {
        binds.push(b);
        format!("${}", binds.len())
    };
    let cmp = |op: O| match op {
        O::Eq => "=",
        O::Ne => "<>",
        O::Lt => "<",
        O::Lte => "<=",
        O::Gt => ">",
        O::Gte => ">=",
        _ => "=",
    };
    let part = match (&c.value, c.op) {
        (V::Text(v), O::Contains | O::StartsWith | O::EndsWith) => {
            let e = like_escape(&fold(v));
            let pattern = match c.op {
                O::Contains => format!("%{e}%"),
                O::StartsWith => format!("{e}%"),
                _ => format!("%{e}"),
            };
            format!(
                r#"COALESCE({col}, '') LIKE {} ESCAPE '\'"#,
                next(Bind::Text(pattern))
            )
        }
        (V::Text(v), O::Ne) => {
            format!("({raw} IS NULL OR {col} <> {})", next(Bind::Text(fold(v))))
        }
        (V::Text(v), op) => format!("{col} {} {}", cmp(op), next(Bind::Text(fold(v)))),
        (V::TextList(list), op) => {
            let ps: Vec<String> = list.iter().map(|v| next(Bind::Text(fold(v)))).collect();
            if op == O::NotIn {
                format!("({raw} IS NULL OR {col} NOT IN ({}))", ps.join(", "))
            } else {
                format!("{col} IN ({})", ps.join(", "))
            }
        }
        (V::Bool(b), op) => format!(
            "COALESCE({raw}, false) {} {}",
            cmp(op),
            next(Bind::Bool(*b))
        ),
        (V::Time(t), op) => format!("{raw} {} {}", cmp(op), next(Bind::Time(*t))),
    };
    part
}

/// `RETURNING` the user columns under the row readers' aliases (`RETURNING`
/// cannot use a table alias in SQLite, so the columns are named).
macro_rules! user_returning {
    () => {
        r#"RETURNING "id" AS u_id, "name" AS u_name, "email" AS u_email, "emailVerified" AS u_verified, "image" AS u_image, COALESCE("twoFactorEnabled", false) AS u_2fa, "role" AS u_role, COALESCE("banned", false) AS u_banned, "banReason" AS u_ban_reason, "banExpires" IS NOT NULL AS u_ban_set, "banExpires" AS u_ban_expires, "createdAt" AS u_created, "updatedAt" AS u_updated"#
    };
}

macro_rules! impl_store {
    ($store:ident, $row:ty) => {
        impl $store {
            /// The pool, or `Unavailable` at once while the database is
            /// marked down (see `health.rs`).
            /// Every statement run through it is traced and measured
            /// (`traced.rs`).
            fn db(&self) -> Result<crate::traced::TracedPool<'_, Db>, StoreError> {
                self.health.check()?;
                Ok(crate::traced::TracedPool {
                    pool: &self.pool,
                    metrics: &self.metrics,
                })
            }

            /// A transaction's connection, traced like the pool.
            fn on<'c>(
                &'c self,
                conn: &'c mut <Db as sqlx::Database>::Connection,
            ) -> crate::traced::Traced<'c, &'c mut <Db as sqlx::Database>::Connection> {
                crate::traced::Traced {
                    conn,
                    metrics: &self.metrics,
                }
            }

            /// An operation's error as a `StoreError`, marking the database
            /// down if it could not be reached.
            fn fail(&self, e: sqlx::Error) -> StoreError {
                self.health.error(
                    e,
                    self.pool.size(),
                    self.pool.options().get_max_connections(),
                )
            }
        }

        fn user(row: &$row) -> Result<User, sqlx::Error> {
            Ok(User {
                id: row.try_get("u_id")?,
                name: row.try_get("u_name")?,
                email: row.try_get("u_email")?,
                email_verified: row.try_get("u_verified")?,
                image: row.try_get("u_image")?,
                two_factor_enabled: row.try_get("u_2fa")?,
                role: row.try_get("u_role")?,
                banned: row.try_get("u_banned")?,
                ban_reason: row.try_get("u_ban_reason")?,
                ban_expires: if row.try_get("u_ban_set")? {
                    Some(get_ts(row, "u_ban_expires")?)
                } else {
                    None
                },
                created_at: get_ts(row, "u_created")?,
                updated_at: get_ts(row, "u_updated")?,
            })
        }

        /// A `passkey` row read with [`PASSKEY_COLS`].
        fn passkey_row(row: &$row) -> Result<warden_core::PasskeyRecord, sqlx::Error> {
            // BetterAuth's `integer`: 32 bits on PostgreSQL and MySQL.
            let counter = match row.try_get::<i64, _>("counter") {
                Ok(c) => c,
                Err(_) => i64::from(row.try_get::<i32, _>("counter")?),
            };
            Ok(warden_core::PasskeyRecord {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                public_key: row.try_get("publicKey")?,
                user_id: row.try_get("userId")?,
                credential_id: row.try_get("credentialID")?,
                counter,
                device_type: row.try_get("deviceType")?,
                backed_up: row.try_get("backedUp")?,
                transports: row.try_get("transports")?,
                created_at: if row.try_get("pk_created_set")? {
                    Some(get_ts(row, "createdAt")?)
                } else {
                    None
                },
                aaguid: row.try_get("aaguid")?,
            })
        }

        type Db = <$row as sqlx::Row>::Database;

        /// A statement formatted at run time, for this backend.
        fn adapt(sql: String) -> String {
            $crate::store_impl::adapt(DIALECT, sql)
        }

        /// A verification row's value and expiry (`v_value`, `v_expires`).
        fn verification(row: &$row) -> Result<(String, Timestamp), sqlx::Error> {
            Ok((row.try_get("v_value")?, get_ts(row, "v_expires")?))
        }

        fn insert_session_query(
            s: &Session,
        ) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments<'_>> {
            sqlx::query(
                sql!(r#"INSERT INTO "session" ("id", "expiresAt", "token", "createdAt", "updatedAt", "ipAddress", "userAgent", "userId", "impersonatedBy")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#),
            )
            .bind(&s.id)
            .bind(ts(s.expires_at))
            .bind(s.token_hash.as_str())
            .bind(ts(s.created_at))
            .bind(ts(s.updated_at))
            .bind(&s.ip_address)
            .bind(&s.user_agent)
            .bind(&s.user_id)
            .bind(&s.impersonated_by)
        }

        fn linked_account(row: &$row) -> Result<warden_core::LinkedAccount, sqlx::Error> {
            Ok(warden_core::LinkedAccount {
                id: row.try_get("a_id")?,
                user_id: row.try_get("a_user")?,
                provider_id: row.try_get("a_provider")?,
                account_id: row.try_get("a_account")?,
                issuer: row.try_get("a_issuer")?,
                scope: row.try_get("a_scope")?,
                has_password: row.try_get("a_has_password")?,
                created_at: get_ts(row, "a_created")?,
                updated_at: get_ts(row, "a_updated")?,
            })
        }

        fn set_two_factor_query(
            user_id: &str,
            on: bool,
            now: Timestamp,
        ) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments<'_>> {
            sqlx::query(sql!(r#"UPDATE "user" SET "twoFactorEnabled" = $1, "updatedAt" = $2 WHERE "id" = $3"#))
                .bind(on)
                .bind(ts(now))
                .bind(user_id)
        }

        fn insert_user_query(
            u: &User,
        ) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments<'_>> {
            sqlx::query(
                sql!(r#"INSERT INTO "user" ("id", "name", "email", "emailVerified", "image", "createdAt", "updatedAt", "role", "banned", "banReason", "banExpires")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#),
            )
            .bind(&u.id)
            .bind(&u.name)
            .bind(&u.email)
            .bind(u.email_verified)
            .bind(&u.image)
            .bind(ts(u.created_at))
            .bind(ts(u.updated_at))
            .bind(&u.role)
            .bind(u.banned)
            .bind(&u.ban_reason)
            .bind(u.ban_expires.map(ts))
        }

        fn insert_account_query(
            a: &warden_core::NewAccount,
        ) -> sqlx::query::Query<'_, Db, <Db as sqlx::Database>::Arguments<'_>> {
            sqlx::query(
                sql!(r#"INSERT INTO "account" ("id", "accountId", "providerId", "issuer", "userId",
                     "accessToken", "refreshToken", "idToken", "accessTokenExpiresAt", "scope",
                     "createdAt", "updatedAt")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"#),
            )
            .bind(&a.id)
            .bind(&a.account_id)
            .bind(&a.provider_id)
            .bind(&a.issuer)
            .bind(&a.user_id)
            .bind(&a.access_token)
            .bind(&a.refresh_token)
            .bind(&a.id_token)
            .bind(a.access_token_expires_at.map(ts))
            .bind(&a.scope)
            .bind(ts(a.now))
            .bind(ts(a.now))
        }

        fn session(row: &$row) -> Result<Session, sqlx::Error> {
            Ok(Session {
                id: row.try_get("s_id")?,
                token_hash: TokenHash(row.try_get("s_token")?),
                user_id: row.try_get("s_user")?,
                expires_at: get_ts(row, "s_expires")?,
                created_at: get_ts(row, "s_created")?,
                updated_at: get_ts(row, "s_updated")?,
                ip_address: row.try_get("s_ip")?,
                user_agent: row.try_get("s_ua")?,
                impersonated_by: row.try_get("s_imp")?,
            })
        }

        #[async_trait::async_trait]
        impl warden_core::Store for $store {
            fn db_metrics(
                &self,
            ) -> Option<std::sync::Arc<warden_telemetry::metrics::DbMetrics>> {
                Some(self.metrics.clone())
            }

            fn pool_status(&self) -> Option<warden_telemetry::metrics::PoolStatus> {
                let size = u64::from(self.pool.size());
                let idle = self.pool.num_idle() as u64;
                Some(warden_telemetry::metrics::PoolStatus {
                    used: size.saturating_sub(idle),
                    idle,
                    max: u64::from(self.pool.options().get_max_connections()),
                })
            }

            /// `SELECT 1` within `probe_timeout`. Not answering in time
            /// counts as unreachable (unless every connection is busy), so
            /// that a readiness probe, too, trips the fast failure.
            async fn ping(&self) -> Result<(), StoreError> {
                let query = sqlx::query("SELECT 1").execute(self.db()?);
                match tokio::time::timeout(self.probe_timeout, query).await {
                    Ok(done) => done.map(drop).map_err(|e| self.fail(e)),
                    Err(_) => Err(self.fail(sqlx::Error::PoolTimedOut)),
                }
            }

            async fn insert_user_with_password(
                &self,
                u: &User,
                account_id: &str,
                password_hash: &str,
            ) -> Result<(), StoreError> {
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                insert_user_query(u)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                sqlx::query(
                    sql!(r#"INSERT INTO "account" ("id", "accountId", "providerId", "issuer", "userId", "password", "createdAt", "updatedAt")
                       VALUES ($1, $2, 'credential', 'local:credential', $3, $4, $5, $6)"#),
                )
                .bind(account_id)
                .bind(&u.id)
                .bind(&u.id)
                .bind(password_hash)
                .bind(ts(u.created_at))
                .bind(ts(u.created_at))
                .execute(self.on(&mut tx))
                .await
                .map_err(|e| self.fail(e))?;
                tx.commit().await.map_err(|e| self.fail(e))
            }

            async fn find_user_by_email(
                &self,
                email: &str,
            ) -> Result<Option<(User, Option<Credential>)>, StoreError> {
                let sql = static_sql!(
                    r#"SELECT {USER_COLS}, a."id" AS a_id, a."password" AS a_password
                       FROM "user" u
                       LEFT JOIN "account" a ON a."userId" = u."id" AND a."providerId" = 'credential'
                       WHERE u."email" = $1
                       LIMIT 1"#
                );
                let row = sqlx::query(&sql)
                    .bind(email)
                    .fetch_optional(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                let Some(row) = row else { return Ok(None) };
                let u = user(&row).map_err(|e| self.fail(e))?;
                let account_id: Option<String> = row.try_get("a_id").map_err(|e| self.fail(e))?;
                let cred = match account_id {
                    Some(account_id) => Some(Credential {
                        account_id,
                        password_hash: row.try_get("a_password").map_err(|e| self.fail(e))?,
                    }),
                    None => None,
                };
                Ok(Some((u, cred)))
            }

            async fn set_password_hash(
                &self,
                account_id: &str,
                password_hash: &str,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                sqlx::query(sql!(r#"UPDATE "account" SET "password" = $1, "updatedAt" = $2 WHERE "id" = $3"#))
                    .bind(password_hash)
                    .bind(ts(now))
                    .bind(account_id)
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(())
            }

            async fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
                insert_session_query(s)
                .execute(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(())
            }

            async fn find_session(
                &self,
                token_hash: &str,
            ) -> Result<Option<(Session, User)>, StoreError> {
                // Formatted (and, for MySQL, rewritten) once.
                let sql = static_sql!(
                    r#"SELECT {SESSION_COLS}, {USER_COLS}
                       FROM "session" s JOIN "user" u ON u."id" = s."userId"
                       WHERE s."token" = $1"#
                );
                let row = sqlx::query(sql)
                    .bind(token_hash)
                    .fetch_optional(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                row.map(|r| Ok((session(&r)?, user(&r)?)))
                    .transpose()
                    .map_err(|e| self.fail(e))
            }

            async fn replace_session_token(
                &self,
                session_id: &str,
                old: &str,
                new_hash: &str,
            ) -> Result<bool, StoreError> {
                let r = sqlx::query(sql!(r#"UPDATE "session" SET "token" = $1 WHERE "id" = $2 AND "token" = $3"#))
                    .bind(new_hash)
                    .bind(session_id)
                    .bind(old)
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(r.rows_affected() > 0)
            }

            async fn extend_session(
                &self,
                session_id: &str,
                expires_at: Timestamp,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                sqlx::query(sql!(r#"UPDATE "session" SET "expiresAt" = $1, "updatedAt" = $2 WHERE "id" = $3"#))
                    .bind(ts(expires_at))
                    .bind(ts(now))
                    .bind(session_id)
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(())
            }

            async fn delete_session_by_token(&self, token_hash: &str) -> Result<bool, StoreError> {
                let r = sqlx::query(sql!(r#"DELETE FROM "session" WHERE "token" = $1"#))
                    .bind(token_hash)
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_sessions(
                &self,
                user_id: &str,
                which: SessionFilter<'_>,
            ) -> Result<Vec<String>, StoreError> {
                self.dialect_delete_sessions(user_id, which).await
            }

            async fn find_credential(
                &self,
                user_id: &str,
            ) -> Result<Option<Credential>, StoreError> {
                let row: Option<(String, Option<String>)> = sqlx::query_as(
                    sql!(r#"SELECT "id", "password" FROM "account"
                       WHERE "userId" = $1 AND "providerId" = 'credential' LIMIT 1"#),
                )
                .bind(user_id)
                .fetch_optional(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(row.map(|(account_id, password_hash)| Credential {
                    account_id,
                    password_hash,
                }))
            }

            async fn change_password(
                &self,
                account_id: &str,
                password_hash: &str,
                revoke: SessionFilter<'_>,
                s: &Session,
            ) -> Result<Vec<String>, StoreError> {
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                sqlx::query(sql!(r#"UPDATE "account" SET "password" = $1, "updatedAt" = $2 WHERE "id" = $3"#))
                    .bind(password_hash)
                    .bind(ts(s.created_at))
                    .bind(account_id)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                let deleted = self.dialect_delete_sessions_on(&mut tx, &s.user_id, revoke).await?;
                insert_session_query(s)
                .execute(self.on(&mut tx))
                .await
                .map_err(|e| self.fail(e))?;
                tx.commit().await.map_err(|e| self.fail(e))?;
                Ok(deleted)
            }

            async fn insert_verification(
                &self,
                identifier: &str,
                value: &str,
                expires_at: Timestamp,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    sql!(r#"INSERT INTO "verification" ("id", "identifier", "value", "expiresAt", "createdAt", "updatedAt")
                       VALUES ($1, $2, $3, $4, $5, $6)"#),
                )
                .bind(warden_core::token::new_id())
                .bind(identifier)
                .bind(value)
                .bind(ts(expires_at))
                .bind(ts(now))
                .bind(ts(now))
                .execute(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(())
            }

            async fn take_verification(
                &self,
                identifier: &str,
            ) -> Result<Option<(String, Timestamp)>, StoreError> {
                self.dialect_take_verification(identifier).await
            }

            async fn peek_verification(
                &self,
                identifier: &str,
            ) -> Result<Option<(String, Timestamp)>, StoreError> {
                let row = sqlx::query(
                    sql!(r#"SELECT "value" AS v_value, "expiresAt" AS v_expires FROM "verification"
                       WHERE "identifier" = $1 LIMIT 1"#),
                )
                .bind(identifier)
                .fetch_optional(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                row.map(|r| verification(&r)).transpose().map_err(|e| self.fail(e))
            }

            async fn set_user_password(
                &self,
                user_id: &str,
                account_id: &str,
                password_hash: &str,
                now: Timestamp,
            ) -> Result<(), StoreError> {
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                let updated = sqlx::query(
                    sql!(r#"UPDATE "account" SET "password" = $1, "updatedAt" = $2
                       WHERE "userId" = $3 AND "providerId" = 'credential'"#),
                )
                .bind(password_hash)
                .bind(ts(now))
                .bind(user_id)
                .execute(self.on(&mut tx))
                .await
                .map_err(|e| self.fail(e))?;
                if updated.rows_affected() == 0 {
                    sqlx::query(
                        sql!(r#"INSERT INTO "account" ("id", "accountId", "providerId", "issuer", "userId", "password", "createdAt", "updatedAt")
                           VALUES ($1, $2, 'credential', 'local:credential', $3, $4, $5, $6)"#),
                    )
                    .bind(account_id)
                    .bind(user_id)
                    .bind(user_id)
                    .bind(password_hash)
                    .bind(ts(now))
                    .bind(ts(now))
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                }
                tx.commit().await.map_err(|e| self.fail(e))
            }

            async fn set_email_verified(
                &self,
                user_id: &str,
                now: Timestamp,
            ) -> Result<Option<User>, StoreError> {
                self.dialect_set_email_verified(user_id, now).await
            }

            async fn set_email(
                &self,
                user_id: &str,
                email: &str,
                now: Timestamp,
            ) -> Result<Option<User>, StoreError> {
                self.dialect_set_email(user_id, email, now).await
            }

            async fn find_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
                let sql = static_sql!(r#"SELECT {USER_COLS} FROM "user" u WHERE u."id" = $1"#);
                let row = sqlx::query(&sql)
                    .bind(user_id)
                    .fetch_optional(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                row.map(|r| user(&r)).transpose().map_err(|e| self.fail(e))
            }

            async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
                // Explicit deletes: a BetterAuth database created without
                // foreign keys (or SQLite without PRAGMA foreign_keys) would
                // otherwise keep orphans.
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                for sql in [
                    sql!(r#"DELETE FROM "session" WHERE "userId" = $1"#),
                    sql!(r#"DELETE FROM "account" WHERE "userId" = $1"#),
                    sql!(r#"DELETE FROM "twoFactor" WHERE "userId" = $1"#),
                    sql!(r#"DELETE FROM "passkey" WHERE "userId" = $1"#),
                    sql!(DELETE_TRUSTED_DEVICES),
                ] {
                    sqlx::query(sql)
                        .bind(user_id)
                        .execute(self.on(&mut tx))
                        .await
                        .map_err(|e| self.fail(e))?;
                }
                let r = sqlx::query(sql!(r#"DELETE FROM "user" WHERE "id" = $1"#))
                    .bind(user_id)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                tx.commit().await.map_err(|e| self.fail(e))?;
                Ok(r.rows_affected() > 0)
            }

            async fn list_user_sessions(
                &self,
                user_id: &str,
                now: Timestamp,
            ) -> Result<Vec<Session>, StoreError> {
                let sql = static_sql!(
                    r#"SELECT {SESSION_COLS} FROM "session" s
                       WHERE s."userId" = $1 AND s."expiresAt" > $2
                       ORDER BY s."createdAt" DESC, s."id" DESC"#
                );
                let rows = sqlx::query(&sql)
                    .bind(user_id)
                    .bind(ts(now))
                    .fetch_all(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                rows.iter().map(session).collect::<Result<_, _>>().map_err(|e| self.fail(e))
            }

            async fn update_user(
                &self,
                user_id: &str,
                update: &UserUpdate,
                now: Timestamp,
            ) -> Result<Option<User>, StoreError> {
                self.dialect_update_user(user_id, update, now).await
            }

            async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
                let r = sqlx::query(sql!(r#"DELETE FROM "session" WHERE "expiresAt" <= $1"#))
                    .bind(ts(now))
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(r.rows_affected())
            }

            async fn find_two_factor(
                &self,
                user_id: &str,
            ) -> Result<Option<warden_core::TwoFactorRecord>, StoreError> {
                let row = sqlx::query(
                    sql!(r#"SELECT "id", "userId", "secret", "backupCodes",
                              COALESCE("verified", true) AS verified,
                              COALESCE("failedVerificationCount", 0) AS failed,
                              "lockedUntil" IS NOT NULL AS locked_set,
                              "lockedUntil", "lastUsedStep"
                       FROM "twoFactor" WHERE "userId" = $1 LIMIT 1"#),
                )
                .bind(user_id)
                .fetch_optional(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                let Some(r) = row else { return Ok(None) };
                let read = || -> Result<warden_core::TwoFactorRecord, sqlx::Error> {
                    let locked_set: bool = r.try_get("locked_set")?;
                    Ok(warden_core::TwoFactorRecord {
                        id: r.try_get("id")?,
                        user_id: r.try_get("userId")?,
                        secret: r.try_get("secret")?,
                        backup_codes: r.try_get("backupCodes")?,
                        verified: r.try_get("verified")?,
                        failed_count: r.try_get::<i64, _>("failed").or_else(|_| r.try_get::<i32, _>("failed").map(i64::from))?,
                        locked_until: if locked_set { Some(get_ts(&r, "lockedUntil")?) } else { None },
                        last_used_step: r.try_get("lastUsedStep")?,
                    })
                };
                read().map(Some).map_err(|e| self.fail(e))
            }

            async fn replace_two_factor(
                &self,
                rec: &warden_core::TwoFactorRecord,
            ) -> Result<(), StoreError> {
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                sqlx::query(sql!(r#"DELETE FROM "twoFactor" WHERE "userId" = $1"#))
                    .bind(&rec.user_id)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                sqlx::query(
                    sql!(r#"INSERT INTO "twoFactor" ("id", "secret", "backupCodes", "userId", "verified", "failedVerificationCount", "lockedUntil", "lastUsedStep")
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"#),
                )
                .bind(&rec.id)
                .bind(&rec.secret)
                .bind(&rec.backup_codes)
                .bind(&rec.user_id)
                .bind(rec.verified)
                .bind(rec.failed_count as i32)
                .bind(rec.locked_until.map(ts))
                .bind(rec.last_used_step)
                .execute(self.on(&mut tx))
                .await
                .map_err(|e| self.fail(e))?;
                tx.commit().await.map_err(|e| self.fail(e))
            }

            async fn enable_two_factor(&self, user_id: &str, now: Timestamp) -> Result<(), StoreError> {
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                sqlx::query(sql!(r#"UPDATE "twoFactor" SET "verified" = $1 WHERE "userId" = $2"#))
                    .bind(true)
                    .bind(user_id)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                set_two_factor_query(user_id, true, now)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                tx.commit().await.map_err(|e| self.fail(e))
            }

            async fn disable_two_factor(&self, user_id: &str, now: Timestamp) -> Result<(), StoreError> {
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                for sql in [
                    sql!(r#"DELETE FROM "twoFactor" WHERE "userId" = $1"#),
                    sql!(DELETE_TRUSTED_DEVICES),
                ] {
                    sqlx::query(sql)
                        .bind(user_id)
                        .execute(self.on(&mut tx))
                        .await
                        .map_err(|e| self.fail(e))?;
                }
                set_two_factor_query(user_id, false, now)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                tx.commit().await.map_err(|e| self.fail(e))
            }

            async fn claim_unverified_user(
                &self,
                user_id: &str,
                now: Timestamp,
            ) -> Result<Option<Vec<String>>, StoreError> {
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                // The conditional update first: it locks the row, so of two
                // concurrent claims the second finds it verified.
                let r = sqlx::query(sql!(r#"UPDATE "user" SET "emailVerified" = $1, "twoFactorEnabled" = $2, "updatedAt" = $3
                       WHERE "id" = $4 AND "emailVerified" = $5"#))
                    .bind(true)
                    .bind(false)
                    .bind(ts(now))
                    .bind(user_id)
                    .bind(false)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                if r.rows_affected() == 0 {
                    tx.rollback().await.map_err(|e| self.fail(e))?;
                    return Ok(None);
                }
                for sql in [
                    sql!(r#"DELETE FROM "account" WHERE "userId" = $1"#),
                    sql!(r#"DELETE FROM "twoFactor" WHERE "userId" = $1"#),
                    sql!(DELETE_TRUSTED_DEVICES),
                ] {
                    sqlx::query(sql)
                        .bind(user_id)
                        .execute(self.on(&mut tx))
                        .await
                        .map_err(|e| self.fail(e))?;
                }
                let deleted = self
                    .dialect_delete_sessions_on(&mut tx, user_id, SessionFilter::All)
                    .await?;
                tx.commit().await.map_err(|e| self.fail(e))?;
                Ok(Some(deleted))
            }

            async fn use_totp_step(&self, user_id: &str, step: i64) -> Result<bool, StoreError> {
                let r = sqlx::query(
                    sql!(r#"UPDATE "twoFactor" SET "lastUsedStep" = $1, "failedVerificationCount" = 0
                       WHERE "userId" = $2 AND ("lastUsedStep" IS NULL OR "lastUsedStep" < $3)"#),
                )
                .bind(step)
                .bind(user_id)
                .bind(step)
                .execute(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(r.rows_affected() > 0)
            }

            async fn swap_backup_codes(
                &self,
                user_id: &str,
                old: &str,
                new: &str,
            ) -> Result<bool, StoreError> {
                let r = sqlx::query(
                    sql!(r#"UPDATE "twoFactor" SET "backupCodes" = $1, "failedVerificationCount" = 0
                       WHERE "userId" = $2 AND "backupCodes" = $3"#),
                )
                .bind(new)
                .bind(user_id)
                .bind(old)
                .execute(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(r.rows_affected() > 0)
            }

            async fn count_two_factor_failure(
                &self,
                user_id: &str,
                lock_after: i64,
                lock_until: Timestamp,
            ) -> Result<Option<Timestamp>, StoreError> {
                self.dialect_count_two_factor_failure(user_id, lock_after, lock_until).await
            }

            async fn find_account(
                &self,
                provider_id: &str,
                account_id: &str,
            ) -> Result<Option<(warden_core::LinkedAccount, User)>, StoreError> {
                let sql = static_sql!(
                    r#"SELECT {USER_COLS}, {ACCOUNT_COLS}
                       FROM "account" a JOIN "user" u ON u."id" = a."userId"
                       WHERE a."providerId" = $1 AND a."accountId" = $2 LIMIT 1"#
                );
                let row = sqlx::query(&sql)
                    .bind(provider_id)
                    .bind(account_id)
                    .fetch_optional(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                row.map(|r| Ok((linked_account(&r)?, user(&r)?)))
                    .transpose()
                    .map_err(|e| self.fail(e))
            }

            async fn insert_user_with_account(
                &self,
                u: &User,
                account: &warden_core::NewAccount,
            ) -> Result<(), StoreError> {
                let mut tx = self.db()?.begin().await.map_err(|e| self.fail(e))?;
                insert_user_query(u)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                insert_account_query(account)
                    .execute(self.on(&mut tx))
                    .await
                    .map_err(|e| self.fail(e))?;
                tx.commit().await.map_err(|e| self.fail(e))
            }

            async fn insert_account(
                &self,
                account: &warden_core::NewAccount,
            ) -> Result<(), StoreError> {
                insert_account_query(account)
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(())
            }

            async fn update_account_tokens(
                &self,
                a: &warden_core::NewAccount,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    sql!(r#"UPDATE "account" SET "accessToken" = $1,
                         "refreshToken" = COALESCE($2, "refreshToken"), "idToken" = $3,
                         "accessTokenExpiresAt" = $4, "scope" = COALESCE($5, "scope"),
                         "issuer" = COALESCE("issuer", $6), "updatedAt" = $7
                       WHERE "id" = $8"#),
                )
                .bind(&a.access_token)
                .bind(&a.refresh_token)
                .bind(&a.id_token)
                .bind(a.access_token_expires_at.map(ts))
                .bind(&a.scope)
                .bind(&a.issuer)
                .bind(ts(a.now))
                .bind(&a.id)
                .execute(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(())
            }

            async fn list_accounts(
                &self,
                user_id: &str,
            ) -> Result<Vec<warden_core::LinkedAccount>, StoreError> {
                let sql = static_sql!(
                    r#"SELECT {ACCOUNT_COLS} FROM "account" a WHERE a."userId" = $1
                       ORDER BY a."createdAt", a."id""#
                );
                let rows = sqlx::query(&sql)
                    .bind(user_id)
                    .fetch_all(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                rows.iter()
                    .map(linked_account)
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.fail(e))
            }

            async fn insert_user(&self, u: &User) -> Result<(), StoreError> {
                insert_user_query(u)
                    .execute(self.db()?)
                    .await
                    .map(drop)
                    .map_err(|e| self.fail(e))
            }

            async fn list_users(
                &self,
                query: &warden_core::UserQuery,
            ) -> Result<(Vec<User>, u64), StoreError> {
                let (cond, binds) = $crate::store_impl::user_conditions(query);
                let count_sql = adapt(format!(r#"SELECT COUNT(*) FROM "user" u{cond}"#));
                // Binds the listing's values, in order, to a query of either kind.
                macro_rules! bind_all {
                    ($q:expr) => {{
                        let mut q = $q;
                        for b in &binds {
                            q = match b {
                                $crate::store_impl::Bind::Text(v) => q.bind(v.clone()),
                                $crate::store_impl::Bind::Bool(v) => q.bind(*v),
                                $crate::store_impl::Bind::Time(v) => q.bind(ts(*v)),
                            };
                        }
                        q
                    }};
                }
                let count = bind_all!(sqlx::query_scalar::<_, i64>(&count_sql));
                let total = count.fetch_one(self.db()?).await.map_err(|e| self.fail(e))?;
                let order = match query.sort {
                    Some((field, desc)) => format!(
                        r#" ORDER BY u."{}" {}, u."id" ASC"#,
                        field.name(),
                        if desc { "DESC" } else { "ASC" }
                    ),
                    None => r#" ORDER BY u."createdAt" ASC, u."id" ASC"#.to_owned(),
                };
                let sql = adapt(format!(
                    r#"SELECT {USER_COLS} FROM "user" u{cond}{order} LIMIT {} OFFSET {}"#,
                    query.limit, query.offset
                ));
                let rows = bind_all!(sqlx::query(&sql)).fetch_all(self.db()?).await.map_err(|e| self.fail(e))?;
                let users = rows.iter().map(user).collect::<Result<_, _>>().map_err(|e| self.fail(e))?;
                Ok((users, total.max(0) as u64))
            }

            async fn delete_session_by_handle(
                &self,
                id: &str,
                token_hash: &str,
            ) -> Result<Option<(String, String)>, StoreError> {
                self.dialect_delete_session_by_handle(id, token_hash).await
            }

            async fn insert_audit(&self, e: &warden_core::AuditEntry) -> Result<(), StoreError> {
                sqlx::query(
                    sql!(r#"INSERT INTO "warden_audit" ("id", "at", "actorId", "actor", "action", "targetId", "ipAddress", "userAgent", "detail")
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#),
                )
                .bind(&e.id)
                .bind(ts(e.at))
                .bind(&e.actor_id)
                .bind(&e.actor)
                .bind(&e.action)
                .bind(&e.target_id)
                .bind(&e.ip_address)
                .bind(&e.user_agent)
                .bind(e.detail.to_string())
                .execute(self.db()?)
                .await
                .map(drop)
                .map_err(|e| self.fail(e))
            }

            async fn list_audit(
                &self,
                target_id: Option<&str>,
                limit: u32,
                offset: u64,
            ) -> Result<(Vec<warden_core::AuditEntry>, u64), StoreError> {
                let filter = if target_id.is_some() { r#"WHERE "targetId" = $1"# } else { "" };
                // The target is bound only where the statement names it.
                let count_sql = adapt(format!(r#"SELECT COUNT(*) FROM "warden_audit" {filter}"#));
                let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
                if let Some(t) = target_id {
                    count = count.bind(t);
                }
                let total = count.fetch_one(self.db()?).await.map_err(|e| self.fail(e))?;
                let sql = adapt(format!(
                    r#"SELECT "id", "at", "actorId", "actor", "action", "targetId", "ipAddress", "userAgent", "detail"
                       FROM "warden_audit" {filter} ORDER BY "seq" DESC LIMIT {limit} OFFSET {offset}"#
                ));
                let mut q = sqlx::query(&sql);
                if let Some(t) = target_id {
                    q = q.bind(t);
                }
                let rows = q
                    .fetch_all(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                let entries = rows
                    .iter()
                    .map(|r| -> Result<warden_core::AuditEntry, sqlx::Error> {
                        let detail: String = r.try_get("detail")?;
                        Ok(warden_core::AuditEntry {
                            id: r.try_get("id")?,
                            at: get_ts(r, "at")?,
                            actor_id: r.try_get("actorId")?,
                            actor: r.try_get("actor")?,
                            action: r.try_get("action")?,
                            target_id: r.try_get("targetId")?,
                            ip_address: r.try_get("ipAddress")?,
                            user_agent: r.try_get("userAgent")?,
                            detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                        })
                    })
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.fail(e))?;
                Ok((entries, total.max(0) as u64))
            }

            async fn publish_revocation(&self, user_id: &str, at: Timestamp) -> Result<(), StoreError> {
                sqlx::query(sql!(r#"INSERT INTO "warden_revocation" ("userId", "at") VALUES ($1, $2)"#))
                    .bind(user_id)
                    .bind(ts(at))
                    .execute(self.db()?)
                    .await
                    .map(drop)
                    .map_err(|e| self.fail(e))
            }

            async fn revocations_since(&self, since: Timestamp) -> Result<Vec<(i64, String)>, StoreError> {
                let rows = sqlx::query(
                    sql!(r#"SELECT "seq", "userId" FROM "warden_revocation" WHERE "at" >= $1 ORDER BY "seq" LIMIT 10000"#),
                )
                .bind(ts(since))
                .fetch_all(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                rows.iter()
                    .map(|r| Ok((r.try_get::<i64, _>("seq")?, r.try_get("userId")?)))
                    .collect::<Result<_, sqlx::Error>>()
                    .map_err(|e| self.fail(e))
            }

            async fn purge_revocations(&self, before: Timestamp) -> Result<(), StoreError> {
                sqlx::query(sql!(r#"DELETE FROM "warden_revocation" WHERE "at" < $1"#))
                    .bind(ts(before))
                    .execute(self.db()?)
                    .await
                    .map(drop)
                    .map_err(|e| self.fail(e))
            }

            async fn insert_passkey(
                &self,
                p: &warden_core::PasskeyRecord,
            ) -> Result<(), StoreError> {
                sqlx::query(sql!(
                    r#"INSERT INTO "passkey" ("id", "name", "publicKey", "userId", "credentialID", "counter", "deviceType", "backedUp", "transports", "createdAt", "aaguid")
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"#
                ))
                .bind(&p.id)
                .bind(&p.name)
                .bind(&p.public_key)
                .bind(&p.user_id)
                .bind(&p.credential_id)
                .bind(p.counter)
                .bind(&p.device_type)
                .bind(p.backed_up)
                .bind(&p.transports)
                .bind(p.created_at.map(ts_tz))
                .bind(&p.aaguid)
                .execute(self.db()?)
                .await
                .map(drop)
                .map_err(|e| self.fail(e))
            }

            async fn list_passkeys(
                &self,
                user_id: &str,
            ) -> Result<Vec<warden_core::PasskeyRecord>, StoreError> {
                let sql = static_sql!(
                    r#"SELECT {PASSKEY_COLS} FROM "passkey" WHERE "userId" = $1
                       ORDER BY "createdAt", "id" LIMIT 1000"#
                );
                let rows = sqlx::query(sql)
                    .bind(user_id)
                    .fetch_all(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                rows.iter()
                    .map(passkey_row)
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.fail(e))
            }

            async fn find_passkey(
                &self,
                id: &str,
            ) -> Result<Option<warden_core::PasskeyRecord>, StoreError> {
                let sql = static_sql!(r#"SELECT {PASSKEY_COLS} FROM "passkey" WHERE "id" = $1"#);
                let row = sqlx::query(sql)
                    .bind(id)
                    .fetch_optional(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                row.as_ref()
                    .map(passkey_row)
                    .transpose()
                    .map_err(|e| self.fail(e))
            }

            async fn find_passkey_by_credential_id(
                &self,
                credential_id: &str,
            ) -> Result<Option<warden_core::PasskeyRecord>, StoreError> {
                let sql = static_sql!(
                    r#"SELECT {PASSKEY_COLS} FROM "passkey" WHERE "credentialID" = $1
                       ORDER BY "createdAt", "id" LIMIT 1"#
                );
                let row = sqlx::query(sql)
                    .bind(credential_id)
                    .fetch_optional(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                row.as_ref()
                    .map(passkey_row)
                    .transpose()
                    .map_err(|e| self.fail(e))
            }

            async fn update_passkey_counter(
                &self,
                id: &str,
                old: i64,
                new: i64,
            ) -> Result<bool, StoreError> {
                let r = sqlx::query(sql!(
                    r#"UPDATE "passkey" SET "counter" = $1 WHERE "id" = $2 AND "counter" = $3"#
                ))
                .bind(new)
                .bind(id)
                .bind(old)
                .execute(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(r.rows_affected() > 0)
            }

            async fn rename_passkey(
                &self,
                user_id: &str,
                id: &str,
                name: &str,
            ) -> Result<Option<warden_core::PasskeyRecord>, StoreError> {
                sqlx::query(sql!(
                    r#"UPDATE "passkey" SET "name" = $1 WHERE "id" = $2 AND "userId" = $3"#
                ))
                .bind(name)
                .bind(id)
                .bind(user_id)
                .execute(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(self
                    .find_passkey(id)
                    .await?
                    .filter(|p| p.user_id == user_id))
            }

            async fn delete_passkey(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
                let r = sqlx::query(sql!(r#"DELETE FROM "passkey" WHERE "userId" = $1 AND "id" = $2"#))
                    .bind(user_id)
                    .bind(id)
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_account(&self, user_id: &str, id: &str) -> Result<bool, StoreError> {
                let r = sqlx::query(sql!(r#"DELETE FROM "account" WHERE "userId" = $1 AND "id" = $2"#))
                    .bind(user_id)
                    .bind(id)
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(r.rows_affected() > 0)
            }
        }
    };
}

pub(crate) use impl_store;

/// The statements that read back what they changed, in one statement
/// (`RETURNING`, `ON CONFLICT`): SQLite's and PostgreSQL's. MySQL has
/// neither and implements these methods its own way (`mysql.rs`), in a
/// transaction.
macro_rules! impl_returning {
    ($store:ident) => {
        impl $store {
        async fn dialect_delete_sessions_on(
            &self,
            conn: &mut <Db as sqlx::Database>::Connection,
            user_id: &str,
            which: SessionFilter<'_>,
        ) -> Result<Vec<String>, StoreError> {
            let (sql, binds) = crate::store_impl::delete_sessions_sql(which);
            let mut q = sqlx::query_scalar::<_, String>(&sql).bind(user_id);
            for b in binds {
                q = q.bind(b);
            }
            q.fetch_all(self.on(conn)).await.map_err(|e| self.fail(e))
        }
        async fn dialect_delete_sessions(
            &self,
            user_id: &str,
            which: SessionFilter<'_>,
        ) -> Result<Vec<String>, StoreError> {
            let (sql, binds) = crate::store_impl::delete_sessions_sql(which);
            let mut q = sqlx::query_scalar::<_, String>(&sql).bind(user_id);
            for b in binds {
                q = q.bind(b);
            }
            q.fetch_all(self.db()?).await.map_err(|e| self.fail(e))
        }

        async fn dialect_take_verification(
            &self,
            identifier: &str,
        ) -> Result<Option<(String, Timestamp)>, StoreError> {
            let row = sqlx::query(
                sql!(r#"DELETE FROM "verification" WHERE "identifier" = $1
                   RETURNING "value" AS v_value, "expiresAt" AS v_expires"#),
            )
            .bind(identifier)
            .fetch_optional(self.db()?)
            .await
            .map_err(|e| self.fail(e))?;
            row.map(|r| verification(&r)).transpose().map_err(|e| self.fail(e))
        }

        async fn dialect_set_email_verified(
            &self,
            user_id: &str,
            now: Timestamp,
        ) -> Result<Option<User>, StoreError> {
            let row = sqlx::query(
                concat!(r#"UPDATE "user" SET "emailVerified" = $1, "updatedAt" = $2 WHERE "id" = $3 "#, $crate::store_impl::user_returning!()),
            )
            .bind(true)
            .bind(ts(now))
            .bind(user_id)
            .fetch_optional(self.db()?)
            .await
            .map_err(|e| self.fail(e))?;
            row.map(|r| user(&r)).transpose().map_err(|e| self.fail(e))
        }

        async fn dialect_set_email(
            &self,
            user_id: &str,
            email: &str,
            now: Timestamp,
        ) -> Result<Option<User>, StoreError> {
            let row = sqlx::query(
                concat!(r#"UPDATE "user" SET "email" = $1, "emailVerified" = $2, "updatedAt" = $3 WHERE "id" = $4 "#, $crate::store_impl::user_returning!()),
            )
            .bind(email)
            .bind(true)
            .bind(ts(now))
            .bind(user_id)
            .fetch_optional(self.db()?)
            .await
            .map_err(|e| self.fail(e))?;
            row.map(|r| user(&r)).transpose().map_err(|e| self.fail(e))
        }

        async fn dialect_update_user(
            &self,
            user_id: &str,
            update: &UserUpdate,
            now: Timestamp,
        ) -> Result<Option<User>, StoreError> {
            // RETURNING cannot use a table alias in SQLite: name the columns.
            let row = sqlx::query(
                concat!(r#"UPDATE "user" SET
                     "name" = COALESCE($1, "name"),
                     "image" = CASE WHEN $2 THEN $3 ELSE "image" END,
                     "updatedAt" = $4,
                     "email" = COALESCE($6, "email"),
                     "emailVerified" = COALESCE($7, "emailVerified"),
                     "role" = CASE WHEN $8 THEN $9 ELSE "role" END,
                     "banned" = COALESCE($10, "banned"),
                     "banReason" = CASE WHEN $11 THEN $12 ELSE "banReason" END,
                     "banExpires" = CASE WHEN $13 THEN $14 ELSE "banExpires" END
                   WHERE "id" = $5 "#, $crate::store_impl::user_returning!()),
            )
            .bind(&update.name)
            .bind(update.image.is_some())
            .bind(update.image.clone().flatten())
            .bind(ts(now))
            .bind(user_id)
            .bind(&update.email)
            .bind(update.email_verified)
            .bind(update.role.is_some())
            .bind(update.role.clone().flatten())
            .bind(update.banned)
            .bind(update.ban_reason.is_some())
            .bind(update.ban_reason.clone().flatten())
            .bind(update.ban_expires.is_some())
            .bind(update.ban_expires.flatten().map(ts))
            .fetch_optional(self.db()?)
            .await
            .map_err(|e| self.fail(e))?;
            row.map(|r| user(&r)).transpose().map_err(|e| self.fail(e))
        }

        async fn dialect_count_two_factor_failure(
            &self,
            user_id: &str,
            lock_after: i64,
            lock_until: Timestamp,
        ) -> Result<Option<Timestamp>, StoreError> {
            // One statement: concurrent failures are all counted.
            let row = sqlx::query(
                sql!(r#"UPDATE "twoFactor" SET
                     "failedVerificationCount" = CASE WHEN COALESCE("failedVerificationCount", 0) + 1 >= $1 THEN 0
                                                      ELSE COALESCE("failedVerificationCount", 0) + 1 END,
                     "lockedUntil" = CASE WHEN COALESCE("failedVerificationCount", 0) + 1 >= $1 THEN $2
                                          ELSE "lockedUntil" END
                   WHERE "userId" = $3
                   RETURNING "failedVerificationCount" = 0 AS locked_now"#),
            )
            .bind(lock_after as i32)
            .bind(ts(lock_until))
            .bind(user_id)
            .fetch_optional(self.db()?)
            .await
            .map_err(|e| self.fail(e))?;
            let locked_now: bool = match row {
                Some(r) => r.try_get("locked_now").map_err(|e| self.fail(e))?,
                None => false,
            };
            Ok(locked_now.then_some(lock_until))
        }

        async fn dialect_delete_session_by_handle(
            &self,
            id: &str,
            token_hash: &str,
        ) -> Result<Option<(String, String)>, StoreError> {
            let row = sqlx::query(
                sql!(r#"DELETE FROM "session" WHERE "id" = $1 OR "token" = $2 RETURNING "userId", "token""#),
            )
            .bind(id)
            .bind(token_hash)
            .fetch_optional(self.db()?)
            .await
            .map_err(|e| self.fail(e))?;
            row.map(|r| Ok((r.try_get("userId")?, r.try_get("token")?)))
                .transpose()
                .map_err(|e| self.fail(e))
        }

        async fn dialect_hit(
            &self,
            key: &str,
            window: std::time::Duration,
        ) -> Result<warden_core::Hit, StoreError> {
            use crate::store_impl::{hit_of, now_ms, window_ms};
            let now = now_ms();
            let (count, reset_at): (i64, i64) = sqlx::query_as(
                sql!(r#"INSERT INTO "warden_rate_limit" ("key", "count", "resetAt") VALUES ($1, 1, $2 + $3)
                   ON CONFLICT ("key") DO UPDATE SET
                     "count" = CASE WHEN "warden_rate_limit"."resetAt" <= $2 THEN 1
                                    ELSE "warden_rate_limit"."count" + 1 END,
                     "resetAt" = CASE WHEN "warden_rate_limit"."resetAt" <= $2 THEN $2 + $3
                                      ELSE "warden_rate_limit"."resetAt" END
                   RETURNING "count", "resetAt""#),
            )
            .bind(key)
            .bind(now)
            .bind(window_ms(window))
            .fetch_one(self.db()?)
            .await
            .map_err(|e| self.fail(e))?;
            Ok(hit_of(count, reset_at, now))
        }
        }
    };
}

pub(crate) use impl_returning;
pub(crate) use user_returning;

/// A counter's key as stored. MySQL's key column is a `varchar(255)`
/// (an index holds at most 3072 bytes): a longer key (one naming a long
/// email, say) is stored as its SHA-256.
pub(crate) fn counter_key(dialect: Dialect, key: &str) -> std::borrow::Cow<'_, str> {
    use sha2::Digest;
    if dialect == Dialect::Numbered || key.chars().count() <= 255 {
        key.into()
    } else {
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(key.as_bytes()))
        )
        .into()
    }
}

/// Milliseconds since the Unix epoch, for counter windows.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn window_ms(w: std::time::Duration) -> i64 {
    i64::try_from(w.as_millis()).unwrap_or(i64::MAX / 4).max(1)
}

pub(crate) fn hit_of(count: i64, reset_at: i64, now: i64) -> warden_core::Hit {
    warden_core::Hit {
        count: u64::try_from(count).unwrap_or(0),
        reset_in: std::time::Duration::from_millis(u64::try_from(reset_at - now).unwrap_or(0)),
    }
}

/// `Counters` in the `warden_rate_limit` table: same SQL for both backends.
macro_rules! impl_counters {
    ($store:ident) => {
        #[async_trait::async_trait]
        impl warden_core::Counters for $store {
            async fn hit(
                &self,
                key: &str,
                window: std::time::Duration,
            ) -> Result<warden_core::Hit, StoreError> {
                self.dialect_hit(key, window).await
            }

            async fn peek(&self, key: &str) -> Result<Option<warden_core::Hit>, StoreError> {
                use crate::store_impl::{hit_of, now_ms};
                let now = now_ms();
                let row: Option<(i64, i64)> = sqlx::query_as(
                    sql!(r#"SELECT "count", "resetAt" FROM "warden_rate_limit" WHERE "key" = $1 AND "resetAt" > $2"#),
                )
                .bind(crate::store_impl::counter_key(DIALECT, key).as_ref())
                .bind(now)
                .fetch_optional(self.db()?)
                .await
                .map_err(|e| self.fail(e))?;
                Ok(row.map(|(c, r)| hit_of(c, r, now)))
            }

            async fn reset(&self, key: &str) -> Result<(), StoreError> {
                sqlx::query(sql!(r#"DELETE FROM "warden_rate_limit" WHERE "key" = $1"#))
                    .bind(crate::store_impl::counter_key(DIALECT, key).as_ref())
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(())
            }

            async fn purge(&self) -> Result<(), StoreError> {
                sqlx::query(sql!(r#"DELETE FROM "warden_rate_limit" WHERE "resetAt" <= $1"#))
                    .bind(crate::store_impl::now_ms())
                    .execute(self.db()?)
                    .await
                    .map_err(|e| self.fail(e))?;
                Ok(())
            }
        }
    };
}

pub(crate) use impl_counters;

#[cfg(test)]
mod tests {
    use super::{adapt, counter_key, Dialect};

    #[test]
    fn numbered_statements_are_left_alone() {
        let sql = r#"SELECT "a" FROM "t" WHERE "b" = $1 AND "c" = $1"#.to_owned();
        assert_eq!(adapt(Dialect::Numbered, sql.clone()), sql);
    }

    #[test]
    fn placeholders_become_question_marks_outside_quotes() {
        assert_eq!(
            adapt(
                Dialect::QuestionMarks,
                r#"SELECT "$1x", '$2' FROM "t" WHERE "a" = $1 AND "b" LIKE $2 ESCAPE '\' AND "c" IN ($3, $4)"#
                    .to_owned()
            ),
            r#"SELECT "$1x", '$2' FROM "t" WHERE "a" = ? AND "b" LIKE ? ESCAPE '\' AND "c" IN (?, ?)"#
        );
        // Two-digit numbers are one placeholder each.
        let twelve: Vec<String> = (1..=12).map(|n| format!("${n}")).collect();
        assert_eq!(
            adapt(
                Dialect::QuestionMarks,
                format!("VALUES ({})", twelve.join(", "))
            ),
            format!("VALUES ({})", ["?"; 12].join(", "))
        );
    }

    #[test]
    #[should_panic(expected = "in order, each once")]
    fn a_repeated_placeholder_is_refused() {
        adapt(Dialect::QuestionMarks, "SELECT $1, $1".to_owned());
    }

    #[test]
    #[should_panic(expected = "in order, each once")]
    fn placeholders_out_of_order_are_refused() {
        adapt(Dialect::QuestionMarks, "SELECT $2, $1".to_owned());
    }

    #[test]
    fn long_counter_keys_are_hashed_on_mysql_only() {
        let long = format!("signin-failures:{}", "a".repeat(300));
        assert_eq!(counter_key(Dialect::Numbered, &long), long.as_str());
        let hashed = counter_key(Dialect::QuestionMarks, &long);
        assert!(
            hashed.starts_with("sha256:") && hashed.len() == 71,
            "{hashed}"
        );
        assert_eq!(
            counter_key(Dialect::QuestionMarks, "rate:1.2.3.4|signin"),
            "rate:1.2.3.4|signin"
        );
    }
}
