//! The explorer on SQLite: pages through the store's pool; the console on a
//! connection of its own, opened read-only, with an authorizer that allows
//! reading only (a secret column reads as NULL) and a deadline.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::str::FromStr;
use std::time::Instant;

use futures_util::TryStreamExt;
use libsqlite3_sys as ffi;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqliteRow};
use sqlx::{Connection, Decode, Row, Sqlite, TypeInfo, ValueRef};

use super::{
    check_query, is_secret, links, only_comments, quote, select_expr, CatalogTable, ColumnInfo,
    ExploreError, Explorer, FilterOp, ForeignKey, Migration, RowPage, RowQuery, SqlLimits,
    SqlResult, TableInfo,
};

pub(crate) struct SqliteExplorer {
    pool: SqlitePool,
    /// The database's URL, for the console's own connection.
    url: String,
}

impl SqliteExplorer {
    pub(crate) fn new(pool: SqlitePool, url: &str) -> Self {
        SqliteExplorer {
            pool,
            url: url.to_owned(),
        }
    }

    /// Every table of the main database except SQLite's own, by name.
    async fn catalog(&self) -> Result<Vec<CatalogTable>, ExploreError> {
        let rows = sqlx::query(
            r#"SELECT m.name AS t, p.name AS c, p.type AS ty, p.pk AS pk
               FROM sqlite_schema m JOIN pragma_table_info(m.name) p
               WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
               ORDER BY m.name, p.cid"#,
        )
        .fetch_all(&self.pool)
        .await?;
        let mut tables: Vec<CatalogTable> = Vec::new();
        for r in &rows {
            let t: String = r.try_get("t")?;
            let name: String = r.try_get("c")?;
            let col = ColumnInfo {
                secret: is_secret(&t, &name),
                sql_type: r.try_get("ty")?,
                primary_key: r.try_get::<i64, _>("pk")? > 0,
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
        // Byte order, the same on both backends.
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tables)
    }

    async fn foreign_keys(&self, tables: &[CatalogTable]) -> Result<Vec<ForeignKey>, ExploreError> {
        let rows = sqlx::query(
            r#"SELECT m.name AS t, f."from" AS c, f."table" AS ft, f."to" AS fc
               FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f
               WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\_%' ESCAPE '\'
                 AND f.id IN (SELECT id FROM pragma_foreign_key_list(m.name)
                              GROUP BY id HAVING COUNT(*) = 1)"#,
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let foreign_table: String = r.try_get("ft")?;
            // No column named: the referenced table's primary key.
            let foreign_column = match r.try_get::<Option<String>, _>("fc")? {
                Some(c) => c,
                None => {
                    let pk = tables
                        .iter()
                        .find(|t| t.name == foreign_table)
                        .and_then(|t| t.columns.iter().find(|c| c.primary_key));
                    match pk {
                        Some(c) => c.name.clone(),
                        None => continue,
                    }
                }
            };
            out.push(ForeignKey {
                table: r.try_get("t")?,
                column: r.try_get("c")?,
                foreign_table,
                foreign_column,
            });
        }
        Ok(out)
    }

    fn is_memory(&self) -> bool {
        self.url.contains(":memory:") || self.url.contains("mode=memory")
    }
}

/// A value of any storage class as JSON: integers and reals as numbers,
/// text as a string, a blob as a hex string.
fn json_value(row: &SqliteRow, i: usize) -> Result<serde_json::Value, sqlx::Error> {
    use serde_json::Value;
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().name().to_owned();
    let decoded = match kind.as_str() {
        "INTEGER" => <i64 as Decode<Sqlite>>::decode(raw).map(Value::from),
        "REAL" => <f64 as Decode<Sqlite>>::decode(raw).map(Value::from),
        "BLOB" => <Vec<u8> as Decode<Sqlite>>::decode(raw).map(|b| Value::String(hex::encode(b))),
        // TEXT, read as bytes so that invalid UTF-8 cannot fail a page.
        _ => <Vec<u8> as Decode<Sqlite>>::decode(raw)
            .map(|b| Value::String(String::from_utf8_lossy(&b).into_owned())),
    };
    decoded.map_err(|source| sqlx::Error::ColumnDecode {
        index: i.to_string(),
        source,
    })
}

fn row_values(row: &SqliteRow) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    (0..row.len()).map(|i| json_value(row, i)).collect()
}

/// Tables whose every column the console reads as NULL: SQLite's index
/// statistics (`sqlite_stat4` samples actual index keys, session token
/// hashes among them).
const UNREADABLE: &[&str] = &["sqlite_stat2", "sqlite_stat3", "sqlite_stat4"];

/// Functions the console may not call even though reading allows them.
const FORBIDDEN_FUNCTIONS: &[&str] = &["load_extension", "fts3_tokenizer", "readfile", "writefile"];

/// A C string argument of the authorizer, lowercased ("" when absent).
///
/// # Safety
/// `p` is null or a NUL-terminated string valid for the call.
unsafe fn arg(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: per this function's contract.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The console's authorizer: SQLite asks it about every action while
/// compiling a statement. It allows SELECT, reading, function calls and
/// recursive CTEs, and denies everything else (writes, DDL, PRAGMA,
/// ATTACH, transactions, ...); a secret column reads as NULL.
extern "C" fn authorize(
    _data: *mut c_void,
    action: c_int,
    a: *const c_char,
    b: *const c_char,
    _db: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    match action {
        ffi::SQLITE_SELECT | ffi::SQLITE_RECURSIVE => ffi::SQLITE_OK,
        ffi::SQLITE_FUNCTION => {
            // SAFETY: for SQLITE_FUNCTION, SQLite passes the function's
            // name as the second argument, NUL-terminated, valid during
            // the call (the first is NULL, and `arg` allows that).
            let f = unsafe { arg(b) }.to_ascii_lowercase();
            if FORBIDDEN_FUNCTIONS.contains(&f.as_str()) {
                ffi::SQLITE_DENY
            } else {
                ffi::SQLITE_OK
            }
        }
        ffi::SQLITE_READ => {
            // SAFETY: for SQLITE_READ, SQLite passes the table's and the
            // column's names, NUL-terminated, valid during the call.
            let (table, column) = unsafe { (arg(a), arg(b)) };
            let unreadable = UNREADABLE.iter().any(|t| t.eq_ignore_ascii_case(&table));
            if unreadable || is_secret(&table, &column) {
                ffi::SQLITE_IGNORE
            } else {
                ffi::SQLITE_OK
            }
        }
        _ => ffi::SQLITE_DENY,
    }
}

/// Compiles `sql` on `db` (the authorizer installed, so a refused action
/// fails here) to check that it is exactly one statement, and returns its
/// column names.
///
/// # Safety
/// `db` is an open connection that no other thread uses during the call.
unsafe fn one_statement(db: *mut ffi::sqlite3, sql: &str) -> Result<Vec<String>, ExploreError> {
    let len = c_int::try_from(sql.len())
        .map_err(|_| ExploreError::BadQuery("the statement is too long".into()))?;
    let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
    let mut tail: *const c_char = std::ptr::null();
    // SAFETY: `db` is open and used by no other thread (this function's
    // contract); `sql` is valid for `len` bytes (SQLite reads
    // no further when given the length); `stmt` and `tail` are valid out
    // pointers.
    let rc = unsafe { ffi::sqlite3_prepare_v2(db, sql.as_ptr().cast(), len, &mut stmt, &mut tail) };
    if rc != ffi::SQLITE_OK {
        // SAFETY: `sqlite3_errmsg` returns a NUL-terminated string owned by
        // `db`, valid until its next call, copied at once. On failure
        // `stmt` is NULL: nothing to finalize.
        let message = unsafe { arg(ffi::sqlite3_errmsg(db)) };
        return Err(refusal(rc, message));
    }
    let mut columns = Vec::new();
    if !stmt.is_null() {
        // SAFETY: `stmt` is the statement just prepared, finalized once
        // right after; column names are copied before that.
        unsafe {
            let n = ffi::sqlite3_column_count(stmt);
            for i in 0..n {
                columns.push(arg(ffi::sqlite3_column_name(stmt, i)));
            }
            ffi::sqlite3_finalize(stmt);
        }
    }
    if stmt.is_null() {
        return Err(ExploreError::Sql("empty statement".into()));
    }
    // `tail` points into `sql`, just past the first statement.
    let used = (tail as usize).saturating_sub(sql.as_ptr() as usize);
    let rest = sql.get(used..).unwrap_or("");
    if !only_comments(rest) {
        return Err(ExploreError::Sql(
            "one statement at a time: the console runs a single SELECT".into(),
        ));
    }
    if columns.is_empty() {
        return Err(ExploreError::Sql(
            "the statement returns no rows: the console runs SELECT statements".into(),
        ));
    }
    Ok(columns)
}

/// A console failure by SQLite's result code and message.
fn refusal(code: c_int, message: String) -> ExploreError {
    if code & 0xff == ffi::SQLITE_INTERRUPT {
        ExploreError::Timeout
    } else if code & 0xff == ffi::SQLITE_AUTH || message.contains("not authorized") {
        ExploreError::Sql(format!(
            "{message}: the console only reads (SELECT; no writes, PRAGMA, ATTACH or transactions)"
        ))
    } else {
        ExploreError::Sql(message)
    }
}

fn console_error(e: sqlx::Error) -> ExploreError {
    match &e {
        sqlx::Error::Database(d) => {
            let code = d.code().and_then(|c| c.parse().ok()).unwrap_or(0);
            refusal(code, d.message().to_owned())
        }
        _ => ExploreError::Database(e.to_string()),
    }
}

/// Runs the console's statement on `conn`, whose authorizer and deadline
/// are installed.
async fn run_console(
    conn: &mut SqliteConnection,
    sql: &str,
    columns: Vec<String>,
    max_rows: usize,
) -> Result<SqlResult, ExploreError> {
    let mut rows = Vec::new();
    let mut truncated = false;
    let mut stream = sqlx::query(sql).fetch(conn);
    while let Some(row) = stream.try_next().await.map_err(console_error)? {
        if rows.len() == max_rows {
            truncated = true;
            break;
        }
        rows.push(row_values(&row)?);
    }
    Ok(SqlResult {
        columns,
        rows,
        truncated,
    })
}

#[async_trait::async_trait]
impl Explorer for SqliteExplorer {
    async fn tables(&self) -> Result<Vec<TableInfo>, ExploreError> {
        let tables = self.catalog().await?;
        let fks = self.foreign_keys(&tables).await?;
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
        let filter = match checked.filter {
            Some((c, FilterOp::Contains, _)) => format!(
                " WHERE instr(lower(CAST({} AS TEXT)), lower(?1)) > 0",
                quote(&c.name)
            ),
            Some((c, FilterOp::Eq, _)) => format!(" WHERE CAST({} AS TEXT) = ?1", quote(&c.name)),
            None => String::new(),
        };
        let value = checked.filter.map(|(_, _, v)| v);
        let from = quote(&table.name);
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {from}{filter}"))
            .bind(value)
            .fetch_one(&self.pool)
            .await?;
        let list: Vec<String> = table.columns.iter().map(select_expr).collect();
        let sql = format!(
            "SELECT {} FROM {from}{filter}{} LIMIT ?2 OFFSET ?3",
            list.join(", "),
            checked.order_by(),
        );
        let rows = sqlx::query(&sql)
            .bind(value)
            .bind(checked.limit)
            .bind(checked.offset)
            .fetch_all(&self.pool)
            .await?;
        Ok(RowPage {
            columns: table.columns.into_iter().map(|c| c.name).collect(),
            rows: rows.iter().map(row_values).collect::<Result<_, _>>()?,
            total: u64::try_from(total).unwrap_or(0),
        })
    }

    async fn sql(&self, sql: &str, limits: SqlLimits) -> Result<SqlResult, ExploreError> {
        if self.is_memory() {
            return Err(ExploreError::Unavailable(
                "the SQL console needs a database file: an in-memory database exists only \
                 inside the server's own connection"
                    .into(),
            ));
        }
        let opts = SqliteConnectOptions::from_str(&self.url)?
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(limits.timeout);
        let mut conn = SqliteConnection::connect_with(&opts).await?;
        let deadline = Instant::now() + limits.timeout;
        let prepared = {
            let mut handle = conn.lock_handle().await?;
            // Every 1000 virtual-machine steps: past the deadline, the
            // statement is interrupted (SQLITE_INTERRUPT -> Timeout).
            handle.set_progress_handler(1000, move || Instant::now() < deadline);
            let db = handle.as_raw_handle().as_ptr();
            // SAFETY: `db` is this connection's open handle, and `handle`
            // keeps sqlx's worker thread off it until the end of this
            // block. `authorize` is a plain function that keeps no state:
            // the NULL user data pointer is never read, and nothing has to
            // outlive the connection.
            unsafe {
                ffi::sqlite3_set_authorizer(db, Some(authorize), std::ptr::null_mut());
                one_statement(db, sql)
            }
        };
        // The deadline: the progress handler interrupts computing, the
        // busy timeout bounds waiting on a writer's lock.
        let result = match prepared {
            Ok(columns) => run_console(&mut conn, sql, columns, limits.max_rows).await,
            Err(e) => Err(e),
        };
        let _ = conn.close().await;
        result
    }

    async fn migrations(&self) -> Result<Vec<Migration>, ExploreError> {
        let exists: bool = sqlx::query_scalar(
            "SELECT COUNT(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&self.pool)
        .await?;
        if !exists {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT version, description, CAST(installed_on AS TEXT) AS at
             FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let at: String = r.try_get("at")?;
                Ok(Migration {
                    version: r.try_get("version")?,
                    description: r.try_get("description")?,
                    applied_at: rfc3339(&at),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn active_sessions(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, ExploreError> {
        // Warden writes ISO-8601 text ("2025-01-23T10:00:00.000Z"); rows
        // written by other tools may hold SQLite's "YYYY-MM-DD HH:MM:SS"
        // or epoch milliseconds (as the store reads them too).
        let n: i64 = sqlx::query_scalar(
            r#"SELECT COUNT(*) FROM "session" WHERE CASE
                 WHEN typeof("expiresAt") IN ('integer', 'real') THEN "expiresAt" > ?1
                 ELSE julianday("expiresAt") > julianday(?2) END"#,
        )
        .bind(now.timestamp_millis())
        .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// SQLite's `CURRENT_TIMESTAMP` text (UTC) as RFC 3339; anything else as
/// it is.
fn rfc3339(at: &str) -> String {
    match chrono::NaiveDateTime::parse_from_str(at, "%Y-%m-%d %H:%M:%S%.f") {
        Ok(t) => t
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Err(_) => at.to_owned(),
    }
}
