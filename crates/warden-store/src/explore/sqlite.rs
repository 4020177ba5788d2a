//! The explorer on SQLite: its own small read-only pool, opened lazily
//! (a dashboard nobody opens costs nothing), and for the console a fresh
//! read-only connection with an authorizer and a deadline.

use std::collections::HashSet;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::str::FromStr;
use std::time::Instant;

use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Decode, Row, TypeInfo, ValueRef};

use super::*;

pub struct SqliteExplorer {
    url: String,
    pool: SqlitePool,
}

impl SqliteExplorer {
    pub fn new(url: &str) -> Result<Self, sqlx::Error> {
        let opts = SqliteConnectOptions::from_str(url)?.read_only(true);
        Ok(SqliteExplorer {
            url: url.to_owned(),
            pool: SqlitePoolOptions::new()
                .max_connections(2)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect_lazy_with(opts),
        })
    }

    async fn table_names(&self) -> Result<Vec<String>, ExploreError> {
        Ok(sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn columns(&self, table: &str) -> Result<Vec<ColumnInfo>, ExploreError> {
        let rows = sqlx::query("SELECT name, type, pk FROM pragma_table_info(?)")
            .bind(table)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get("name")?;
                Ok(ColumnInfo {
                    secret: is_secret(table, &name),
                    sql_type: r.try_get("type")?,
                    primary_key: r.try_get::<i64, _>("pk")? > 0,
                    name,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn known_table(&self, table: &str) -> Result<Vec<ColumnInfo>, ExploreError> {
        if !self.table_names().await?.iter().any(|t| t == table) {
            return Err(ExploreError::UnknownTable(table.to_owned()));
        }
        self.columns(table).await
    }
}

/// A value of any storage class as JSON.
fn json_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<serde_json::Value, sqlx::Error> {
    use serde_json::Value;
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let kind = raw.type_info().name().to_owned();
    let decode_err = |e| sqlx::Error::Decode(e);
    Ok(match kind.as_str() {
        "INTEGER" | "INT8" | "BOOLEAN" => {
            Value::from(<i64 as Decode<sqlx::Sqlite>>::decode(raw).map_err(decode_err)?)
        }
        "REAL" => Value::from(<f64 as Decode<sqlx::Sqlite>>::decode(raw).map_err(decode_err)?),
        "BLOB" => {
            let b = <Vec<u8> as Decode<sqlx::Sqlite>>::decode(raw).map_err(decode_err)?;
            Value::String(format!("x'{}'", hex::encode(b)))
        }
        _ => Value::String(<String as Decode<sqlx::Sqlite>>::decode(raw).map_err(decode_err)?),
    })
}

/// Whether `sql` is more than one statement (a `;` outside quotes and
/// comments, other than at the end).
pub(crate) fn several_statements(sql: &str) -> bool {
    let b = sql.trim().trim_end_matches(';').as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
            }
            b'[' => {
                while i < b.len() && b[i] != b']' {
                    i += 1;
                }
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 1;
            }
            b';' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// The console's authorizer: reading and selecting only; a secret
/// column reads as NULL.
struct Guard {
    secret: HashSet<(String, String)>,
}

unsafe extern "C" fn authorize(
    data: *mut c_void,
    action: c_int,
    a: *const c_char,
    b: *const c_char,
    _db: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    use libsqlite3_sys as ffi;
    match action {
        ffi::SQLITE_SELECT | ffi::SQLITE_FUNCTION | ffi::SQLITE_RECURSIVE => ffi::SQLITE_OK,
        ffi::SQLITE_READ => {
            if a.is_null() || b.is_null() {
                return ffi::SQLITE_OK;
            }
            // SAFETY: `data` is the `Guard` installed with this callback,
            // alive until the connection is closed (see `run_console`);
            // SQLite passes NUL-terminated strings for a READ's table and
            // column, valid during the call.
            let guard = unsafe { &*(data as *const Guard) };
            let (t, c) = unsafe { (CStr::from_ptr(a), CStr::from_ptr(b)) };
            let key = (
                t.to_string_lossy().into_owned(),
                c.to_string_lossy().into_owned(),
            );
            if guard.secret.contains(&key) || is_secret(&key.0, &key.1) {
                ffi::SQLITE_IGNORE
            } else {
                ffi::SQLITE_OK
            }
        }
        _ => ffi::SQLITE_DENY,
    }
}

unsafe extern "C" fn past_deadline(data: *mut c_void) -> c_int {
    // SAFETY: `data` is the `Instant` installed with this callback, alive
    // until the connection is closed (see `run_console`).
    let deadline = unsafe { &*(data as *const Instant) };
    c_int::from(Instant::now() >= *deadline)
}

async fn run_console(url: &str, sql: &str, limits: SqlLimits) -> Result<SqlResult, ExploreError> {
    let opts = SqliteConnectOptions::from_str(url)?.read_only(true);
    let mut conn = SqliteConnection::connect_with(&opts).await?;
    let guard = Box::new(Guard {
        secret: SECRET
            .iter()
            .map(|(t, c)| ((*t).to_owned(), (*c).to_owned()))
            .collect(),
    });
    let deadline = Box::new(Instant::now() + limits.timeout);
    {
        let mut handle = conn.lock_handle().await?;
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: `db` is this connection's open handle, used only while
        // it is locked here. The user data pointers stay valid: `guard`
        // and `deadline` are dropped after `conn` is closed below.
        unsafe {
            libsqlite3_sys::sqlite3_set_authorizer(
                db,
                Some(authorize),
                &*guard as *const Guard as *mut c_void,
            );
            libsqlite3_sys::sqlite3_progress_handler(
                db,
                1000,
                Some(past_deadline),
                &*deadline as *const Instant as *mut c_void,
            );
        }
    }
    let result = async {
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        let mut truncated = false;
        {
            let mut stream = sqlx::query(sql).fetch(&mut conn);
            while let Some(row) = stream.try_next().await.map_err(console_error)? {
                if rows.len() == limits.max_rows {
                    truncated = true;
                    break;
                }
                if columns.is_empty() {
                    columns = row
                        .columns()
                        .iter()
                        .map(|c| sqlx::Column::name(c).to_owned())
                        .collect();
                }
                let values = (0..row.len())
                    .map(|i| json_value(&row, i))
                    .collect::<Result<Vec<_>, _>>()?;
                rows.push(values);
            }
        }
        Ok::<_, ExploreError>(SqlResult {
            columns,
            rows,
            truncated,
        })
    }
    .await;
    let _ = conn.close().await;
    drop((guard, deadline));
    result
}

fn console_error(e: sqlx::Error) -> ExploreError {
    match &e {
        sqlx::Error::Database(d) => {
            let m = d.message().to_owned();
            if m.contains("interrupted") {
                ExploreError::Timeout
            } else if m.contains("not authorized") {
                ExploreError::Sql(format!("{m}: the console only reads (SELECT)"))
            } else {
                ExploreError::Sql(m)
            }
        }
        _ => ExploreError::Database(e.to_string()),
    }
}

#[async_trait::async_trait]
impl Explorer for SqliteExplorer {
    async fn tables(&self) -> Result<Vec<TableInfo>, ExploreError> {
        let names = self.table_names().await?;
        let mut all = Vec::new();
        for n in &names {
            all.push((n.clone(), self.columns(n).await?));
        }
        let cols: Vec<(String, Vec<String>)> = all
            .iter()
            .map(|(t, c)| (t.clone(), c.iter().map(|c| c.name.clone()).collect()))
            .collect();
        let mut out = Vec::new();
        for (name, columns) in all {
            let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quote(&name)))
                .fetch_one(&self.pool)
                .await?;
            out.push(TableInfo {
                links: links(&name, &columns, &cols),
                name,
                rows: rows.max(0) as u64,
                columns,
            });
        }
        Ok(out)
    }

    async fn rows(&self, q: &RowQuery) -> Result<RowPage, ExploreError> {
        let columns = self.known_table(&q.table).await?;
        check_query(q, &columns)?;
        let list: Vec<String> = select_list(&columns)
            .into_iter()
            .zip(&columns)
            .map(|(s, c)| {
                if c.secret {
                    s
                } else {
                    let q = quote(&c.name);
                    format!("CASE WHEN typeof({q}) = 'blob' THEN 'x''' || hex({q}) || '''' ELSE {q} END")
                }
            })
            .collect();
        let (filter, value) = match &q.filter {
            Some((c, FilterOp::Contains, v)) => (
                format!("WHERE CAST({} AS TEXT) LIKE ? ESCAPE '\\'", quote(c)),
                Some(like_pattern(v)),
            ),
            Some((c, FilterOp::Eq, v)) => (
                format!("WHERE CAST({} AS TEXT) = ?", quote(c)),
                Some(v.clone()),
            ),
            None => (String::new(), None),
        };
        let order = match &q.sort {
            Some((c, desc)) => format!(
                "ORDER BY {} {}",
                quote(c),
                if *desc { "DESC" } else { "ASC" }
            ),
            None => "ORDER BY rowid".into(),
        };
        let table = quote(&q.table);
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table} {filter}"))
            .bind(value.clone())
            .fetch_one(&self.pool)
            .await?;
        let sql = format!(
            "SELECT json_array({}) FROM {table} {filter} {order} LIMIT {} OFFSET {}",
            list.join(", "),
            q.limit,
            q.offset
        );
        let raw: Vec<String> = sqlx::query_scalar(&sql)
            .bind(value)
            .fetch_all(&self.pool)
            .await?;
        let rows = raw
            .iter()
            .map(|r| serde_json::from_str::<Vec<serde_json::Value>>(r))
            .collect::<Result<_, _>>()
            .map_err(|e| ExploreError::Database(e.to_string()))?;
        Ok(RowPage {
            columns: columns.into_iter().map(|c| c.name).collect(),
            rows,
            total: total.max(0) as u64,
        })
    }

    async fn sql(&self, sql: &str, limits: SqlLimits) -> Result<SqlResult, ExploreError> {
        if several_statements(sql) {
            return Err(ExploreError::Sql("one statement at a time".into()));
        }
        run_console(&self.url, sql, limits).await
    }

    async fn migrations(&self) -> Result<Vec<Migration>, ExploreError> {
        let rows = sqlx::query(
            "SELECT version, description, CAST(installed_on AS TEXT) AS at FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Migration {
                    version: r.try_get("version")?,
                    description: r.try_get("description")?,
                    applied_at: r.try_get("at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    async fn active_sessions(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, ExploreError> {
        // Timestamps are stored as RFC 3339 text in UTC (see sqlite.rs's `ts`).
        let n: i64 = sqlx::query_scalar(r#"SELECT COUNT(*) FROM "session" WHERE "expiresAt" > ?"#)
            .bind(now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }
}
