//! The dashboard's view of the database: every table with its columns and
//! row counts, pages of rows (filtered, sorted), the applied migrations,
//! and, in development, a read-only SQL console.
//!
//! Secrets never leave the database:
//!
//! * a page of rows selects a secret column as
//!   `CASE WHEN "c" IS NULL THEN NULL ELSE '[masked]' END`, and refuses to
//!   filter or sort on one (that would reveal it bit by bit);
//! * the console cannot read them at all. SQLite: an authorizer reads them
//!   as NULL and allows nothing but reading. PostgreSQL: the statement runs
//!   in a read-only transaction as a role granted only the non-secret
//!   columns, inside a `SECURITY DEFINER` function of that role (where
//!   PostgreSQL refuses `set_config('role', ...)`, which would otherwise
//!   switch back to the server's own role in mid-statement). MySQL: the
//!   statement runs, prepared, in a read-only transaction on a connection
//!   of its own as an account granted only the non-secret columns.
//!
//! Which columns are secret is decided here, for every column of Warden's
//! schema, in two explicit lists ([`SECRET_COLUMNS`], [`NOT_SECRET_COLUMNS`]);
//! a test fails on any column of a freshly migrated database that is in
//! neither. A table of the application's own falls back to a name rule.
//!
//! Table and column names in SQL come only from the database's own
//! catalogue, double-quoted; values are bound parameters.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

mod mysql;
mod postgres;
mod sqlite;

pub(crate) use mysql::MySqlExplorer;
pub(crate) use postgres::PgExplorer;
pub(crate) use sqlite::SqliteExplorer;

/// What a secret column's non-null value reads as.
pub const MASKED: &str = "[masked]";

/// Most rows of one page.
pub const MAX_PAGE: u32 = 500;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnInfo {
    pub name: String,
    /// As declared (SQLite) or as PostgreSQL formats it.
    pub sql_type: String,
    pub primary_key: bool,
    pub secret: bool,
}

/// Related rows: this table's `column` matches `table`'s `foreign_column`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FilterOp {
    /// Case-insensitive substring of the value as text; `%` and `_` are
    /// ordinary characters.
    Contains,
    /// The value as text equals.
    Eq,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowQuery {
    pub table: String,
    /// 1 to [`MAX_PAGE`].
    pub limit: u32,
    pub offset: u64,
    /// A column, and whether descending.
    pub sort: Option<(String, bool)>,
    pub filter: Option<(String, FilterOp, String)>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowPage {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// The rows matching the filter.
    pub total: u64,
}

/// The console's limits.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
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
#[serde(rename_all = "camelCase")]
pub struct SqlResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
    /// More rows than `max_rows` (the rest were not read).
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Migration {
    pub version: i64,
    pub description: String,
    /// RFC 3339, UTC.
    pub applied_at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExploreError {
    #[error("no table {0:?}")]
    UnknownTable(String),
    #[error("no column {0:?}")]
    UnknownColumn(String),
    /// A filter or sort on a secret column: refused, it would reveal the
    /// secret bit by bit.
    #[error("column {0:?} holds secrets: it cannot be filtered or sorted on")]
    SecretColumn(String),
    #[error("{0}")]
    BadQuery(String),
    /// The console's statement was refused or failed (the database's own
    /// message; the console exists in development only).
    #[error("{0}")]
    Sql(String),
    /// The console's statement ran past its time limit.
    #[error("the statement ran past the console's time limit")]
    Timeout,
    #[error("{0}")]
    Unavailable(String),
    /// Anything else (the message names no credential).
    #[error("database error: {0}")]
    Database(String),
}

impl From<sqlx::Error> for ExploreError {
    fn from(e: sqlx::Error) -> Self {
        // sqlx's messages carry the database's message or the I/O error,
        // never the connection URL.
        ExploreError::Database(e.to_string())
    }
}

#[async_trait::async_trait]
pub trait Explorer: Send + Sync + 'static {
    /// Every table of the app's schema, sorted by name, with row counts.
    async fn tables(&self) -> Result<Vec<TableInfo>, ExploreError>;
    /// A page of a table's rows, secret columns masked; `total` counts the
    /// rows matching the filter.
    async fn rows(&self, q: &RowQuery) -> Result<RowPage, ExploreError>;
    /// One read-only statement, within `limits` (development's console).
    async fn sql(&self, sql: &str, limits: SqlLimits) -> Result<SqlResult, ExploreError>;
    /// The migrations applied (sqlx's `_sqlx_migrations`), oldest first.
    async fn migrations(&self) -> Result<Vec<Migration>, ExploreError>;
    /// Sessions whose `expiresAt` is after `now`.
    async fn active_sessions(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, ExploreError>;
}

/// Warden's columns that hold credentials or what stands for them.
pub const SECRET_COLUMNS: &[(&str, &str)] = &[
    // sha256 of the session token: the token's stand-in on every request.
    ("session", "token"),
    // The password hash; provider (OAuth) tokens.
    ("account", "password"),
    ("account", "accessToken"),
    ("account", "refreshToken"),
    ("account", "idToken"),
    // The TOTP secret (encrypted) and the backup codes (keyed hashes).
    ("twoFactor", "secret"),
    ("twoFactor", "backupCodes"),
    // `reset-password:<sha256(token)>`, `verify-email:<hash>`,
    // `trust-device:<hash>`, ...: identifiers embed token hashes; values
    // are what a token unlocks (a user id, a new email, challenge state).
    ("verification", "identifier"),
    ("verification", "value"),
    // Keys such as `2fa-attempts:<sha256(challenge token)>`.
    ("warden_rate_limit", "key"),
];

/// Every other column of Warden's schema, classified on purpose: a
/// migration that adds a column must add it here or to
/// [`SECRET_COLUMNS`] (a test fails otherwise).
pub const NOT_SECRET_COLUMNS: &[(&str, &str)] = &[
    ("_sqlx_migrations", "version"),
    ("_sqlx_migrations", "description"),
    ("_sqlx_migrations", "installed_on"),
    ("_sqlx_migrations", "success"),
    // sha384 of the migration's SQL, which is public.
    ("_sqlx_migrations", "checksum"),
    ("_sqlx_migrations", "execution_time"),
    ("account", "id"),
    // The provider's user id (for credentials, the user's own id).
    ("account", "accountId"),
    ("account", "providerId"),
    ("account", "userId"),
    ("account", "accessTokenExpiresAt"),
    ("account", "refreshTokenExpiresAt"),
    ("account", "scope"),
    ("account", "createdAt"),
    ("account", "updatedAt"),
    ("account", "issuer"),
    // A random id, not the token: what a user sees when listing sessions.
    // Passkeys: a public key is public; the credential id is a handle the
    // authenticator hands to any site asking for it (not a credential).
    ("passkey", "id"),
    ("passkey", "name"),
    ("passkey", "publicKey"),
    ("passkey", "userId"),
    ("passkey", "credentialID"),
    ("passkey", "counter"),
    ("passkey", "deviceType"),
    ("passkey", "backedUp"),
    ("passkey", "transports"),
    ("passkey", "createdAt"),
    ("passkey", "aaguid"),
    ("session", "id"),
    ("session", "expiresAt"),
    ("session", "createdAt"),
    ("session", "updatedAt"),
    ("session", "ipAddress"),
    ("session", "userAgent"),
    ("session", "userId"),
    ("session", "impersonatedBy"),
    ("twoFactor", "id"),
    ("twoFactor", "userId"),
    ("twoFactor", "verified"),
    ("twoFactor", "failedVerificationCount"),
    ("twoFactor", "lockedUntil"),
    // The last TOTP time step accepted (a clock reading, not a code).
    ("twoFactor", "lastUsedStep"),
    ("user", "id"),
    ("user", "name"),
    ("user", "email"),
    ("user", "emailVerified"),
    ("user", "image"),
    ("user", "createdAt"),
    ("user", "updatedAt"),
    ("user", "twoFactorEnabled"),
    ("user", "role"),
    ("user", "banned"),
    ("user", "banReason"),
    ("user", "banExpires"),
    ("verification", "id"),
    ("verification", "expiresAt"),
    ("verification", "createdAt"),
    ("verification", "updatedAt"),
    ("warden_audit", "seq"),
    ("warden_audit", "id"),
    ("warden_audit", "at"),
    ("warden_audit", "actorId"),
    ("warden_audit", "actor"),
    ("warden_audit", "action"),
    ("warden_audit", "targetId"),
    ("warden_audit", "ipAddress"),
    ("warden_audit", "userAgent"),
    // What changed, by name only (never a credential: see migration 7).
    ("warden_audit", "detail"),
    ("warden_rate_limit", "count"),
    ("warden_rate_limit", "resetAt"),
    ("warden_revocation", "seq"),
    ("warden_revocation", "userId"),
    ("warden_revocation", "at"),
];

/// Words that make a column of an unknown table secret.
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "hash",
    "backup",
    "otp",
    "key",
    "credential",
];

/// Whether `table.column` holds a secret. Warden's own columns are
/// classified by the two lists; a column of one of Warden's tables that
/// neither lists is secret (fail closed, until it is classified); any
/// other table's column is secret when its lowercased name contains
/// token, secret, password, hash, backup, otp, key or credential.
pub fn is_secret(table: &str, column: &str) -> bool {
    if SECRET_COLUMNS.contains(&(table, column)) {
        return true;
    }
    if NOT_SECRET_COLUMNS.contains(&(table, column)) {
        return false;
    }
    let warden_table = SECRET_COLUMNS
        .iter()
        .chain(NOT_SECRET_COLUMNS)
        .any(|(t, _)| *t == table);
    if warden_table {
        return true;
    }
    let c = column.to_lowercase();
    SECRET_WORDS.iter().any(|w| c.contains(w))
}

/// `"name"`, inner quotes doubled. Only for names read from the catalogue.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table as read from the catalogue.
pub(crate) struct CatalogTable {
    pub(crate) name: String,
    pub(crate) columns: Vec<ColumnInfo>,
}

/// A declared single-column foreign key: `table.column` references
/// `foreign_table.foreign_column`.
pub(crate) struct ForeignKey {
    pub(crate) table: String,
    pub(crate) column: String,
    pub(crate) foreign_table: String,
    pub(crate) foreign_column: String,
}

/// Columns holding a user's id that declare no foreign key.
const USER_ID_COLUMNS: &[(&str, &str)] =
    &[("session", "impersonatedBy"), ("warden_audit", "actorId")];

/// The links of every table (same order as `tables`), both directions:
/// declared foreign keys, every `userId` column to `user.id`, and the
/// other columns known to hold a user's id.
pub(crate) fn links(tables: &[CatalogTable], fks: &[ForeignKey]) -> Vec<Vec<Link>> {
    let has = |t: &str, c: &str| {
        tables
            .iter()
            .any(|x| x.name == t && x.columns.iter().any(|col| col.name == c))
    };
    let mut pairs: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for fk in fks {
        if has(&fk.table, &fk.column) && has(&fk.foreign_table, &fk.foreign_column) {
            pairs.insert((
                fk.table.clone(),
                fk.column.clone(),
                fk.foreign_table.clone(),
                fk.foreign_column.clone(),
            ));
        }
    }
    if has("user", "id") {
        for t in tables {
            for c in &t.columns {
                let user_id = c.name == "userId"
                    || USER_ID_COLUMNS.contains(&(t.name.as_str(), c.name.as_str()));
                if user_id && t.name != "user" {
                    pairs.insert((t.name.clone(), c.name.clone(), "user".into(), "id".into()));
                }
            }
        }
    }
    tables
        .iter()
        .map(|t| {
            let mut out: BTreeSet<Link> = BTreeSet::new();
            for (from, col, to, fcol) in &pairs {
                if *from == t.name {
                    out.insert(Link {
                        column: col.clone(),
                        table: to.clone(),
                        foreign_column: fcol.clone(),
                    });
                }
                if *to == t.name {
                    out.insert(Link {
                        column: fcol.clone(),
                        table: from.clone(),
                        foreign_column: col.clone(),
                    });
                }
            }
            out.into_iter().collect()
        })
        .collect()
}

/// A page query, checked against its table: the column names to use
/// (the catalogue's own strings).
pub(crate) struct CheckedQuery<'a> {
    pub(crate) sort: Option<(&'a ColumnInfo, bool)>,
    pub(crate) filter: Option<(&'a ColumnInfo, FilterOp, &'a str)>,
    pub(crate) offset: i64,
    pub(crate) limit: i64,
    /// Ties broken by (and, unsorted, ordered by) the non-secret primary
    /// key columns.
    pub(crate) order_keys: Vec<&'a ColumnInfo>,
}

/// Checks `q` against the table's `columns`.
pub(crate) fn check_query<'a>(
    q: &'a RowQuery,
    columns: &'a [ColumnInfo],
) -> Result<CheckedQuery<'a>, ExploreError> {
    if !(1..=MAX_PAGE).contains(&q.limit) {
        return Err(ExploreError::BadQuery(format!(
            "limit must be 1 to {MAX_PAGE}"
        )));
    }
    let offset = i64::try_from(q.offset)
        .map_err(|_| ExploreError::BadQuery("offset is too large".into()))?;
    let find = |name: &str| -> Result<&'a ColumnInfo, ExploreError> {
        let c = columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ExploreError::UnknownColumn(name.to_owned()))?;
        if c.secret {
            return Err(ExploreError::SecretColumn(c.name.clone()));
        }
        Ok(c)
    };
    let sort = match &q.sort {
        Some((c, desc)) => Some((find(c)?, *desc)),
        None => None,
    };
    let filter = match &q.filter {
        Some((c, op, v)) => Some((find(c)?, *op, v.as_str())),
        None => None,
    };
    let order_keys = columns
        .iter()
        .filter(|c| c.primary_key && !c.secret)
        .filter(|c| sort.is_none_or(|(s, _)| s.name != c.name))
        .collect();
    Ok(CheckedQuery {
        sort,
        filter,
        offset,
        limit: i64::from(q.limit),
        order_keys,
    })
}

impl CheckedQuery<'_> {
    /// `ORDER BY ...`, or nothing.
    pub(crate) fn order_by(&self) -> String {
        let mut terms = Vec::new();
        if let Some((c, desc)) = self.sort {
            terms.push(format!(
                "{} {}",
                quote(&c.name),
                if desc { "DESC" } else { "ASC" }
            ));
        }
        terms.extend(self.order_keys.iter().map(|c| quote(&c.name)));
        if terms.is_empty() {
            String::new()
        } else {
            format!(" ORDER BY {}", terms.join(", "))
        }
    }
}

/// The `SELECT` expression for a column of a page: a secret one as
/// `[masked]` (NULL stays NULL), computed by the database.
pub(crate) fn select_expr(c: &ColumnInfo) -> String {
    let q = quote(&c.name);
    if c.secret {
        format!("CASE WHEN {q} IS NULL THEN NULL ELSE '{MASKED}' END")
    } else {
        q
    }
}

/// Whether what follows a statement is only blanks, `;` and comments.
pub(crate) fn only_comments(rest: &str) -> bool {
    let mut s = rest;
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if s.is_empty() {
            return true;
        }
        if let Some(r) = s.strip_prefix("--") {
            s = r.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(r) = s.strip_prefix("/*") {
            // An unterminated comment runs to the end (as both databases
            // read it).
            s = r.split_once("*/").map_or("", |(_, after)| after);
        } else {
            return false;
        }
    }
}

/// The console's statement with any trailing `;` and comments removed.
pub(crate) fn trim_statement(sql: &str) -> &str {
    let mut s = sql.trim();
    while let Some(r) = s.strip_suffix(';') {
        s = r.trim_end();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, secret: bool) -> ColumnInfo {
        ColumnInfo {
            name: name.into(),
            sql_type: "TEXT".into(),
            primary_key: name == "id",
            secret,
        }
    }

    #[test]
    fn classification() {
        assert!(is_secret("session", "token"));
        assert!(!is_secret("session", "userId"));
        assert!(is_secret("warden_rate_limit", "key"));
        // A Warden table's unclassified column: secret until classified.
        assert!(is_secret("user", "newColumnNobodyClassified"));
        assert!(is_secret("my_table", "apiKey"));
        assert!(is_secret("my_table", "OTP_SEED"));
        assert!(!is_secret("my_table", "title"));
        for (t, c) in SECRET_COLUMNS {
            assert!(!NOT_SECRET_COLUMNS.contains(&(t, c)), "{t}.{c} in both");
        }
    }

    #[test]
    fn quoting_and_statement_ends() {
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        assert!(only_comments(" ; -- done\n /* x */ ;"));
        assert!(only_comments("/* unterminated"));
        assert!(!only_comments("; select 2"));
        assert!(!only_comments("-- c\nselect 2"));
        assert_eq!(trim_statement(" select 1 ;; "), "select 1");
    }

    #[test]
    fn queries_are_checked() {
        let cols = vec![col("id", false), col("token", true), col("name", false)];
        let q = |sort: Option<&str>, filter: Option<&str>, limit| RowQuery {
            table: "t".into(),
            limit,
            offset: 0,
            sort: sort.map(|s| (s.to_owned(), true)),
            filter: filter.map(|f| (f.to_owned(), FilterOp::Eq, "x".to_owned())),
        };
        assert!(matches!(
            check_query(&q(Some("token"), None, 10), &cols),
            Err(ExploreError::SecretColumn(_))
        ));
        assert!(matches!(
            check_query(&q(None, Some("token"), 10), &cols),
            Err(ExploreError::SecretColumn(_))
        ));
        assert!(matches!(
            check_query(&q(None, Some("nope"), 10), &cols),
            Err(ExploreError::UnknownColumn(_))
        ));
        assert!(matches!(
            check_query(&q(None, None, 0), &cols),
            Err(ExploreError::BadQuery(_))
        ));
        assert!(matches!(
            check_query(&q(None, None, 501), &cols),
            Err(ExploreError::BadQuery(_))
        ));
        let query = q(Some("name"), None, 500);
        let ok = check_query(&query, &cols).unwrap();
        assert_eq!(ok.order_by(), r#" ORDER BY "name" DESC, "id""#);
    }

    #[test]
    fn links_go_both_ways() {
        let tables = vec![
            CatalogTable {
                name: "user".into(),
                columns: vec![col("id", false)],
            },
            CatalogTable {
                name: "session".into(),
                columns: vec![col("id", false), col("userId", false)],
            },
        ];
        let l = links(&tables, &[]);
        assert_eq!(
            l[0],
            vec![Link {
                column: "id".into(),
                table: "session".into(),
                foreign_column: "userId".into()
            }]
        );
        assert_eq!(
            l[1],
            vec![Link {
                column: "userId".into(),
                table: "user".into(),
                foreign_column: "id".into()
            }]
        );
    }
}
