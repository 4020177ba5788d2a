//! The dashboard's view of the database: every table with its columns and
//! row counts, pages of rows (filtered, sorted), and, in development, a
//! read-only SQL console. Secret columns (token and password hashes,
//! provider tokens, TOTP secrets, backup codes, verification values) are
//! masked inside the SQL, so their values never leave the database; the
//! console cannot read them at all (SQLite: an authorizer reads them as
//! NULL; PostgreSQL: a role without the column privilege).
//!
//! Table and column names come only from the database's own catalogue and
//! are quoted; values are bound parameters.

use std::time::Duration;

use serde::Serialize;

mod postgres;
mod sqlite;

pub use postgres::PgExplorer;
pub use sqlite::SqliteExplorer;

/// What a secret column's non-null value reads as.
pub const MASKED: &str = "[masked]";

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    pub name: String,
    pub sql_type: String,
    pub primary_key: bool,
    pub secret: bool,
}

/// Related rows: from this table's `column` to the rows of `table` whose
/// `foreign_column` equals it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    pub column: String,
    pub table: String,
    pub foreign_column: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TableInfo {
    pub name: String,
    pub rows: u64,
    pub columns: Vec<ColumnInfo>,
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// Case-insensitive substring; `%` and `_` are taken literally.
    Contains,
    Eq,
}

#[derive(Debug, Clone)]
pub struct RowQuery {
    pub table: String,
    /// 1 to [`MAX_PAGE`].
    pub limit: u32,
    pub offset: u64,
    /// Column, descending.
    pub sort: Option<(String, bool)>,
    pub filter: Option<(String, FilterOp, String)>,
}

/// Most rows of one page.
pub const MAX_PAGE: u32 = 500;

#[derive(Debug, Clone, Serialize)]
pub struct RowPage {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub total: u64,
}

/// The console's limits.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    pub max_rows: usize,
    pub timeout: Duration,
}

impl Default for SqlLimits {
    fn default() -> Self {
        SqlLimits {
            max_rows: 500,
            timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    pub version: i64,
    pub description: String,
    pub applied_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("no table {0:?}")]
    UnknownTable(String),
    #[error("no column {0:?}")]
    UnknownColumn(String),
    /// Filtering or sorting on a secret would reveal it bit by bit.
    #[error("column {0:?} holds secrets")]
    SecretColumn(String),
    #[error("{0}")]
    BadQuery(String),
    /// The console's statement failed (its message is the database's).
    #[error("{0}")]
    Sql(String),
    #[error("the statement ran past the time limit")]
    Timeout,
    #[error("{0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for ExploreError {
    fn from(e: sqlx::Error) -> Self {
        ExploreError::Database(e.to_string())
    }
}

#[async_trait::async_trait]
pub trait Explorer: Send + Sync + 'static {
    /// Every table of the app's schema, by name, with its row count.
    async fn tables(&self) -> Result<Vec<TableInfo>, ExploreError>;
    /// A page of a table's rows; `total` counts the filtered rows.
    async fn rows(&self, q: &RowQuery) -> Result<RowPage, ExploreError>;
    /// One read-only statement (development's console).
    async fn sql(&self, sql: &str, limits: SqlLimits) -> Result<SqlResult, ExploreError>;
    /// The migrations applied, oldest first.
    async fn migrations(&self) -> Result<Vec<Migration>, ExploreError>;
    /// Sessions not yet expired.
    async fn active_sessions(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, ExploreError>;
}

/// Columns that hold credentials or what stands in for them.
const SECRET: &[(&str, &str)] = &[
    ("session", "token"),
    ("account", "password"),
    ("account", "accessToken"),
    ("account", "refreshToken"),
    ("account", "idToken"),
    ("twoFactor", "secret"),
    ("twoFactor", "backupCodes"),
    // `reset-password:<sha256(token)>` and the like, and their values.
    ("verification", "identifier"),
    ("verification", "value"),
    ("_sqlx_migrations", "checksum"),
];

/// Every other column of Warden's schema, classified on purpose: a
/// migration that adds a column must add it to one list or the other
/// (a test checks).
const NOT_SECRET: &[(&str, &[&str])] = &[
    (
        "_sqlx_migrations",
        &[
            "version",
            "description",
            "installed_on",
            "success",
            "execution_time",
        ],
    ),
    (
        "account",
        &[
            "id",
            "accountId",
            "providerId",
            "userId",
            "accessTokenExpiresAt",
            "refreshTokenExpiresAt",
            "scope",
            "createdAt",
            "updatedAt",
            "issuer",
        ],
    ),
    (
        "session",
        &[
            "id",
            "expiresAt",
            "createdAt",
            "updatedAt",
            "ipAddress",
            "userAgent",
            "userId",
            "impersonatedBy",
        ],
    ),
    ("sqlite_sequence", &["name", "seq"]),
    (
        "twoFactor",
        &[
            "id",
            "userId",
            "verified",
            "failedVerificationCount",
            "lockedUntil",
            "lastUsedStep",
        ],
    ),
    (
        "user",
        &[
            "id",
            "name",
            "email",
            "emailVerified",
            "image",
            "createdAt",
            "updatedAt",
            "twoFactorEnabled",
            "role",
            "banned",
            "banReason",
            "banExpires",
        ],
    ),
    (
        "verification",
        &["id", "expiresAt", "createdAt", "updatedAt"],
    ),
    (
        "warden_audit",
        &[
            "seq",
            "id",
            "at",
            "actorId",
            "actor",
            "action",
            "targetId",
            "ipAddress",
            "userAgent",
            "detail",
        ],
    ),
    ("warden_rate_limit", &["key", "count", "resetAt"]),
    ("warden_revocation", &["seq", "userId", "at"]),
];

/// Whether a column is classified at all (see the completeness test).
pub fn is_classified(table: &str, column: &str) -> bool {
    SECRET.contains(&(table, column))
        || NOT_SECRET
            .iter()
            .any(|(t, cols)| *t == table && cols.contains(&column))
}

/// Whether `table.column` holds a secret: Warden's own classification,
/// else (a table of the app's own) a name that looks like one.
pub fn is_secret(table: &str, column: &str) -> bool {
    if SECRET.contains(&(table, column)) {
        return true;
    }
    if NOT_SECRET.iter().any(|(t, _)| *t == table) {
        return !is_classified(table, column);
    }
    let c = column.to_ascii_lowercase();
    [
        "token",
        "secret",
        "password",
        "hash",
        "backup",
        "otp",
        "key",
        "credential",
    ]
    .iter()
    .any(|w| c.contains(w))
}

/// `"name"` with inner quotes doubled.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `%` `_` `\` escaped for `LIKE ... ESCAPE '\'`.
pub(crate) fn like_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// The links among `tables`: `user.id` to every `userId` column.
pub(crate) fn links(
    table: &str,
    columns: &[ColumnInfo],
    all: &[(String, Vec<String>)],
) -> Vec<Link> {
    let mut out = Vec::new();
    if table == "user" {
        for (t, cols) in all {
            if t != "user" && cols.iter().any(|c| c == "userId") {
                out.push(Link {
                    column: "id".into(),
                    table: t.clone(),
                    foreign_column: "userId".into(),
                });
            }
        }
    } else if columns.iter().any(|c| c.name == "userId") && all.iter().any(|(t, _)| t == "user") {
        out.push(Link {
            column: "userId".into(),
            table: "user".into(),
            foreign_column: "id".into(),
        });
    }
    out
}

/// Checks a page query against the table's columns.
pub(crate) fn check_query(q: &RowQuery, columns: &[ColumnInfo]) -> Result<(), ExploreError> {
    if !(1..=MAX_PAGE).contains(&q.limit) {
        return Err(ExploreError::BadQuery(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    let find = |name: &str| -> Result<&ColumnInfo, ExploreError> {
        let c = columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ExploreError::UnknownColumn(name.to_owned()))?;
        if c.secret {
            return Err(ExploreError::SecretColumn(name.to_owned()));
        }
        Ok(c)
    };
    if let Some((c, _)) = &q.sort {
        find(c)?;
    }
    if let Some((c, _, _)) = &q.filter {
        find(c)?;
    }
    Ok(())
}

/// The `SELECT` list for a page: secret columns as `[masked]` or NULL.
pub(crate) fn select_list(columns: &[ColumnInfo]) -> Vec<String> {
    columns
        .iter()
        .map(|c| {
            let q = quote(&c.name);
            if c.secret {
                format!("CASE WHEN {q} IS NULL THEN NULL ELSE '{MASKED}' END")
            } else {
                q
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        assert!(is_secret("session", "token"));
        assert!(!is_secret("session", "userId"));
        assert!(is_secret("user", "newColumnNobodyClassified"));
        assert!(is_secret("my_table", "apiKey"));
        assert!(!is_secret("my_table", "title"));
        assert_eq!(like_pattern("a%b_c"), "%a\\%b\\_c%");
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
    }
}
