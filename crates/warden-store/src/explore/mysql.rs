//! The explorer on MySQL and MariaDB: tables, columns and keys from
//! `information_schema`, pages of rows through the store's pool (whose
//! connections run with `ANSI_QUOTES`, so the shared double-quoting holds),
//! secret columns masked by the database as on the other backends.
//!
//! The console runs each statement on a connection of its own, as an
//! account made for it (`warden_console_<16 hex of sha256(database)>`, at
//! the host the server's own account connects from, a new random password
//! per process) that holds SELECT on the non-secret columns of this
//! database's tables and nothing else, in a READ ONLY transaction with a
//! statement time limit (MariaDB `max_statement_time`, MySQL
//! `max_execution_time`). Prepared (the binary protocol), a text holding
//! two statements is refused. When the server's account may not make that
//! account (no CREATE USER or GRANT OPTION), the console says so and runs
//! nothing.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::mysql::{MySql, MySqlConnection, MySqlPool, MySqlRow};
use sqlx::{Column, Connection, Decode, Executor, Row, Statement, TypeInfo, ValueRef};
use tokio::sync::OnceCell;

use super::{
    check_query, is_secret, links, quote, select_expr, trim_statement, CatalogTable, ColumnInfo,
    ExploreError, Explorer, FilterOp, ForeignKey, Migration, RowPage, RowQuery, SqlLimits,
    SqlResult, TableInfo,
};

pub(crate) struct MySqlExplorer {
    pool: MySqlPool,
    console: OnceCell<Console>,
}

/// The console's account.
#[derive(Clone)]
struct Console {
    user: String,
    password: String,
    mariadb: bool,
}

/// `'text'`, for names and a password this module made (quotes doubled).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `` `name` `` (backticks doubled).
fn backtick(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

impl MySqlExplorer {
    pub(crate) fn new(pool: MySqlPool) -> Self {
        MySqlExplorer {
            pool,
            console: OnceCell::new(),
        }
    }

    /// The console's account, made (and its grants brought up to date)
    /// once per process; a failure is retried on the next use.
    async fn console(&self) -> Result<Console, ExploreError> {
        self.console
            .get_or_try_init(|| self.make_console())
            .await
            .cloned()
    }

    async fn make_console(&self) -> Result<Console, ExploreError> {
        let mut conn = self.pool.acquire().await?;
        let (db, me, version): (String, String, String) = sqlx::query_as(
            "SELECT CAST(DATABASE() AS CHAR), CAST(CURRENT_USER() AS CHAR), CAST(VERSION() AS CHAR)",
        )
        .fetch_one(&mut *conn)
        .await?;
        let host = me.rsplit_once('@').map_or("%", |(_, h)| h).to_owned();
        let user = format!(
            "warden_console_{}",
            &hex::encode(Sha256::digest(db.as_bytes()))[..16]
        );
        let password = warden_core::token::random_string(32);
        let account = format!("{}@{}", literal(&user), literal(&host));
        let unavailable = |e: sqlx::Error| {
            ExploreError::Unavailable(format!(
                "the SQL console needs an account of its own ({user}), which the server's \
                 account could not make or grant to (CREATE USER and GRANT OPTION are \
                 needed): {e}"
            ))
        };
        for stmt in [
            format!(
                "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {}",
                literal(&password)
            ),
            format!("ALTER USER {account} IDENTIFIED BY {}", literal(&password)),
        ] {
            conn.execute(stmt.as_str()).await.map_err(unavailable)?;
        }
        // Whatever it held before (a table since dropped, a column since
        // made secret) goes; a new account holds nothing to revoke.
        let _ = conn
            .execute(format!("REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account}").as_str())
            .await;
        for t in self.catalog().await? {
            let cols: Vec<String> = t
                .columns
                .iter()
                .filter(|c| !c.secret)
                .map(|c| backtick(&c.name))
                .collect();
            if cols.is_empty() {
                continue;
            }
            let grant = format!(
                "GRANT SELECT ({}) ON {}.{} TO {account}",
                cols.join(", "),
                backtick(&db),
                backtick(&t.name)
            );
            conn.execute(grant.as_str()).await.map_err(unavailable)?;
        }
        Ok(Console {
            user,
            password,
            mariadb: version.contains("MariaDB"),
        })
    }

    /// Every base table of the current database, by name (byte order).
    async fn catalog(&self) -> Result<Vec<CatalogTable>, ExploreError> {
        // CAST: MySQL 8 gives some information_schema columns a binary
        // collation, which would not read as text.
        let rows = sqlx::query(
            "SELECT CAST(c.TABLE_NAME AS CHAR) AS t, CAST(c.COLUMN_NAME AS CHAR) AS col,
                    CAST(c.COLUMN_TYPE AS CHAR) AS ty, c.COLUMN_KEY = 'PRI' AS pk
             FROM information_schema.COLUMNS c
             JOIN information_schema.TABLES tb
               ON tb.TABLE_SCHEMA = c.TABLE_SCHEMA AND tb.TABLE_NAME = c.TABLE_NAME
             WHERE c.TABLE_SCHEMA = DATABASE() AND tb.TABLE_TYPE = 'BASE TABLE'
             ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut tables: Vec<CatalogTable> = Vec::new();
        for r in &rows {
            let t: String = r.try_get("t")?;
            let name: String = r.try_get("col")?;
            let col = ColumnInfo {
                secret: is_secret(&t, &name),
                sql_type: r.try_get("ty")?,
                primary_key: r.try_get("pk")?,
                name,
            };
            match tables.last_mut() {
                Some(last) if last.name == t => last.columns.push(col),
                _ => tables.push(CatalogTable {
                    name: t,
                    columns: vec![col],
                }),
            }
        }
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tables)
    }

    /// Declared single-column foreign keys within the database (MySQL 8
    /// ignores BetterAuth's inline `references`; MariaDB keeps them).
    async fn foreign_keys(&self) -> Result<Vec<ForeignKey>, ExploreError> {
        let rows = sqlx::query(
            "SELECT CAST(MIN(TABLE_NAME) AS CHAR) AS t, CAST(MIN(COLUMN_NAME) AS CHAR) AS col,
                    CAST(MIN(REFERENCED_TABLE_NAME) AS CHAR) AS ft,
                    CAST(MIN(REFERENCED_COLUMN_NAME) AS CHAR) AS fcol
             FROM information_schema.KEY_COLUMN_USAGE
             WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_SCHEMA = DATABASE()
               AND REFERENCED_TABLE_NAME IS NOT NULL
             GROUP BY TABLE_NAME, CONSTRAINT_NAME
             HAVING COUNT(*) = 1",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ForeignKey {
                    table: r.try_get("t")?,
                    column: r.try_get("col")?,
                    foreign_table: r.try_get("ft")?,
                    foreign_column: r.try_get("fcol")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}

/// A page's row: one JSON array, built by the database, as text.
fn json_row(exprs: &[String]) -> String {
    format!("CAST(JSON_ARRAY({}) AS CHAR)", exprs.join(", "))
}

fn flatten(row: &str) -> Result<Vec<serde_json::Value>, ExploreError> {
    serde_json::from_str(row).map_err(|e| ExploreError::Database(format!("a row as JSON: {e}")))
}

#[async_trait::async_trait]
impl Explorer for MySqlExplorer {
    async fn tables(&self) -> Result<Vec<TableInfo>, ExploreError> {
        let tables = self.catalog().await?;
        let fks = self.foreign_keys().await?;
        let links = links(&tables, &fks);
        let mut out = Vec::with_capacity(tables.len());
        for (t, links) in tables.into_iter().zip(links) {
            let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quote(&t.name)))
                .fetch_one(&self.pool)
                .await?;
            out.push(TableInfo {
                name: t.name,
                rows: u64::try_from(rows).unwrap_or(0),
                columns: t.columns,
                links,
            });
        }
        Ok(out)
    }

    async fn rows(&self, q: &RowQuery) -> Result<RowPage, ExploreError> {
        let table = self
            .catalog()
            .await?
            .into_iter()
            .find(|t| t.name == q.table)
            .ok_or_else(|| ExploreError::UnknownTable(q.table.clone()))?;
        let checked = check_query(q, &table.columns)?;
        // As text, in the connection's character set; `%` and `_` are
        // ordinary characters to LOCATE.
        let filter = match checked.filter {
            Some((c, FilterOp::Contains, _)) => format!(
                " WHERE LOCATE(LOWER(?), LOWER(CAST({} AS CHAR))) > 0",
                quote(&c.name)
            ),
            Some((c, FilterOp::Eq, _)) => {
                format!(" WHERE CAST({} AS CHAR) = ?", quote(&c.name))
            }
            None => String::new(),
        };
        let value = checked.filter.map(|(_, _, v)| v);
        let from = quote(&table.name);
        let count_sql = format!("SELECT COUNT(*) FROM {from}{filter}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        if let Some(v) = value {
            count = count.bind(v);
        }
        let total = count.fetch_one(&self.pool).await?;
        let list: Vec<String> = table.columns.iter().map(select_expr).collect();
        let sql = format!(
            "SELECT {} FROM {from}{filter}{} LIMIT ? OFFSET ?",
            json_row(&list),
            checked.order_by(),
        );
        let mut page = sqlx::query_scalar::<_, String>(&sql);
        if let Some(v) = value {
            page = page.bind(v);
        }
        let raw = page
            .bind(checked.limit)
            .bind(checked.offset)
            .fetch_all(&self.pool)
            .await?;
        Ok(RowPage {
            columns: table.columns.into_iter().map(|c| c.name).collect(),
            rows: raw.iter().map(|r| flatten(r)).collect::<Result<_, _>>()?,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    async fn sql(&self, sql: &str, limits: SqlLimits) -> Result<SqlResult, ExploreError> {
        let sql = trim_statement(sql);
        if sql.is_empty() {
            return Err(ExploreError::Sql("empty statement".into()));
        }
        let console = self.console().await?;
        let work = async {
            // A connection of its own, as the console's account, closed
            // afterwards: nothing the statement leaves in its session
            // (a user lock, a variable) outlives it.
            let opts = self
                .pool
                .connect_options()
                .as_ref()
                .clone()
                .username(&console.user)
                .password(&console.password);
            let mut conn = MySqlConnection::connect_with(&opts).await.map_err(|e| {
                ExploreError::Unavailable(format!("the console's account cannot connect: {e}"))
            })?;
            let result = run_console(&mut conn, &console, sql, limits).await;
            let _ = conn.close().await;
            result
        };
        // A backstop beside the statement time limit.
        match tokio::time::timeout(limits.timeout + Duration::from_secs(5), work).await {
            Ok(r) => r,
            Err(_) => Err(ExploreError::Timeout),
        }
    }

    async fn migrations(&self) -> Result<Vec<Migration>, ExploreError> {
        let exists: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '_sqlx_migrations'",
        )
        .fetch_one(&self.pool)
        .await?;
        if exists == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT version, description, installed_on FROM _sqlx_migrations
             WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let at: chrono::DateTime<chrono::Utc> = r.try_get("installed_on")?;
                Ok(Migration {
                    version: r.try_get("version")?,
                    description: r.try_get("description")?,
                    applied_at: at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn active_sessions(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, ExploreError> {
        // The store's connections run in UTC (time_zone '+00:00').
        let n: i64 = sqlx::query_scalar(r#"SELECT COUNT(*) FROM "session" WHERE "expiresAt" > ?"#)
            .bind(now.naive_utc())
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

async fn run_console(
    conn: &mut MySqlConnection,
    console: &Console,
    sql: &str,
    limits: SqlLimits,
) -> Result<SqlResult, ExploreError> {
    let ms = limits.timeout.as_millis().clamp(1, u128::from(u32::MAX));
    // The time limit bounds the statement, as on PostgreSQL: recursion
    // is not cut short at 1000 steps (MariaDB would quietly return what it
    // had, MySQL fail) but runs until then.
    let limit = if console.mariadb {
        format!(
            "max_statement_time = {}, max_recursive_iterations = 4294967295",
            ms as f64 / 1000.0
        )
    } else {
        format!("max_execution_time = {ms}, cte_max_recursion_depth = 4294967295")
    };
    conn.execute(
        format!(
            "SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES,NO_BACKSLASH_ESCAPES'), \
             time_zone = '+00:00', {limit}"
        )
        .as_str(),
    )
    .await?;
    conn.execute("START TRANSACTION READ ONLY").await?;
    // Prepared: one statement only, and its columns before it runs.
    let stmt = conn.prepare(sql).await.map_err(console_error)?;
    if !stmt.parameters().is_none_or(|p| match p {
        sqlx::Either::Left(p) => p.is_empty(),
        sqlx::Either::Right(n) => n == 0,
    }) {
        return Err(ExploreError::Sql(
            "the console takes no parameters (?): write the values in".into(),
        ));
    }
    let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    if columns.is_empty() {
        return Err(ExploreError::Sql(
            "the statement returns no rows: the console runs queries (SELECT, VALUES, WITH ...)"
                .into(),
        ));
    }
    let mut rows = Vec::new();
    let mut truncated = false;
    {
        use futures_util::TryStreamExt;
        let mut stream = sqlx::query(sql).fetch(&mut *conn);
        while let Some(row) = stream.try_next().await.map_err(console_error)? {
            if rows.len() == limits.max_rows {
                truncated = true;
                break;
            }
            rows.push(json_values(&row)?);
        }
    }
    let _ = conn.execute("ROLLBACK").await;
    Ok(SqlResult {
        columns,
        rows,
        truncated,
    })
}

/// A console row's values as JSON, by each value's type.
fn json_values(row: &MySqlRow) -> Result<Vec<serde_json::Value>, ExploreError> {
    use serde_json::Value;
    let bad = |e: sqlx::error::BoxDynError| ExploreError::Database(format!("a value: {e}"));
    (0..row.len())
        .map(|i| {
            let v = row.try_get_raw(i)?;
            if v.is_null() {
                return Ok(Value::Null);
            }
            let ty = v.type_info().name().to_owned();
            Ok(if ty == "BOOLEAN" {
                Value::from(<bool as Decode<MySql>>::decode(v).map_err(bad)?)
            } else if ty.contains("INT") && ty.contains("UNSIGNED") {
                Value::from(<u64 as Decode<MySql>>::decode(v).map_err(bad)?)
            } else if ty.contains("INT") || ty == "YEAR" {
                Value::from(<i64 as Decode<MySql>>::decode(v).map_err(bad)?)
            } else if ty == "FLOAT" || ty == "DOUBLE" {
                Value::from(<f64 as Decode<MySql>>::decode(v).map_err(bad)?)
            } else if ty == "DATETIME" || ty == "TIMESTAMP" {
                let t = <chrono::NaiveDateTime as Decode<MySql>>::decode(v).map_err(bad)?;
                Value::from(t.format("%Y-%m-%d %H:%M:%S%.3f").to_string())
            } else if ty == "DATE" {
                Value::from(
                    <chrono::NaiveDate as Decode<MySql>>::decode(v)
                        .map_err(bad)?
                        .to_string(),
                )
            } else {
                // Text (DECIMAL and TIME arrive as text too); bytes that
                // are not UTF-8 as hex.
                let b = <&[u8] as Decode<MySql>>::decode(v).map_err(bad)?;
                match std::str::from_utf8(b) {
                    Ok(s) => Value::from(s),
                    Err(_) => Value::from(format!("0x{}", hex::encode(b))),
                }
            })
        })
        .collect::<Result<_, ExploreError>>()
}

/// The console's statement failed: the database's own message, a time
/// limit as a timeout, a refused column explained.
fn console_error(e: sqlx::Error) -> ExploreError {
    match &e {
        sqlx::Error::Database(d) => {
            let m = d.message().to_owned();
            let number = d
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .map(|m| m.number());
            match number {
                // ER_STATEMENT_TIMEOUT (MariaDB), ER_QUERY_TIMEOUT (MySQL).
                Some(1969 | 3024) => ExploreError::Timeout,
                // Command or column denied.
                Some(1142 | 1143) => ExploreError::Sql(format!(
                    "{m}: the console only reads, and secret columns (token and password hashes, \
                     provider tokens, two-factor secrets, verification identifiers and values) \
                     cannot be read in it; name the columns you need (SELECT * includes the \
                     secret ones)"
                )),
                Some(1792) => ExploreError::Sql(format!("{m}: the console only reads")),
                _ => ExploreError::Sql(m),
            }
        }
        _ => ExploreError::Database(e.to_string()),
    }
}
