//! The explorer on PostgreSQL: pages through the store's pool; the console
//! on a connection of its own, in a read-only transaction with a statement
//! timeout, as the console's role.
//!
//! The console's role (`warden_console_<16 hex of sha256(database)>`,
//! NOLOGIN, a member of no role) is made once per process: USAGE on the
//! schema and SELECT on the non-secret columns of every table, nothing
//! else. `SET ROLE` alone would not hold: in the same statement,
//! `set_config('role', 'none', true)` switches back to the server's own
//! role and `query_to_xml('select token from session', ...)` then reads
//! as that role. So the statement runs inside a `SECURITY DEFINER`
//! function owned by the console's role, where PostgreSQL refuses to set
//! `role` or `session_authorization` at all.

use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{Column, Connection, Executor, Row, Statement};
use tokio::sync::OnceCell;

use super::{
    check_query, is_secret, links, quote, select_expr, trim_statement, CatalogTable, ColumnInfo,
    ExploreError, Explorer, FilterOp, ForeignKey, Migration, RowPage, RowQuery, SqlLimits,
    SqlResult, TableInfo,
};

/// Most arguments of one `json_build_array` call (PostgreSQL allows 100).
const CHUNK: usize = 100;

pub(crate) struct PgExplorer {
    pool: PgPool,
    console: OnceCell<Console>,
}

/// The console's role and function, quoted.
#[derive(Clone)]
struct Console {
    role: String,
    role_name: String,
    function: String,
}

impl PgExplorer {
    pub(crate) fn new(pool: PgPool) -> Self {
        PgExplorer {
            pool,
            console: OnceCell::new(),
        }
    }

    async fn schema(&self) -> Result<String, ExploreError> {
        let s: Option<String> = sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&self.pool)
            .await?;
        s.ok_or_else(|| ExploreError::Database("no schema in the search_path exists".into()))
    }

    /// Every table of the current schema (partitions under their parent),
    /// by name.
    async fn catalog<'e, E>(executor: E) -> Result<Vec<CatalogTable>, ExploreError>
    where
        E: Executor<'e, Database = sqlx::Postgres>,
    {
        let rows = sqlx::query(
            "SELECT c.relname::text AS t, a.attname::text AS col,
                    format_type(a.atttypid, a.atttypmod) AS ty,
                    COALESCE(a.attnum = ANY (i.indkey), false) AS pk
             FROM pg_class c
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
             LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
             WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
               AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             ORDER BY c.relname, a.attnum",
        )
        .fetch_all(executor)
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
        // Byte order, whatever the database's collation.
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tables)
    }

    async fn foreign_keys(&self) -> Result<Vec<ForeignKey>, ExploreError> {
        let rows = sqlx::query(
            "SELECT c.relname::text AS t, a.attname::text AS col,
                    fc.relname::text AS ft, fa.attname::text AS fcol
             FROM pg_constraint k
             JOIN pg_class c ON c.oid = k.conrelid
             JOIN pg_class fc ON fc.oid = k.confrelid
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
             JOIN pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = k.confkey[1]
             WHERE k.contype = 'f' AND cardinality(k.conkey) = 1
               AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
               AND fc.relnamespace = c.relnamespace",
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

    /// The console's role and function, made on first use (and the grants
    /// brought up to date), once per process; a failure is retried on the
    /// next use.
    async fn console(&self) -> Result<Console, ExploreError> {
        self.console
            .get_or_try_init(|| async {
                let mut conn = self.pool.acquire().await?;
                make_console(&mut conn).await
            })
            .await
            .cloned()
    }
}

/// `warden_console_<first 16 hex digits of sha256(database)>`.
pub(crate) fn console_role_name(database: &str) -> String {
    let digest = hex::encode(Sha256::digest(database.as_bytes()));
    format!("warden_console_{}", &digest[..16])
}

fn unavailable(role: &str, what: &str, e: &sqlx::Error) -> ExploreError {
    let why = match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        other => other.to_string(),
    };
    ExploreError::Unavailable(format!(
        "the SQL console runs as a role of its own, {role}, that may read every column except \
         the secret ones; {what} failed ({why}). The database user needs CREATEROLE (or create \
         the role once: CREATE ROLE {role} NOLOGIN; GRANT {role} TO <the server's user>) and \
         must own the schema's tables"
    ))
}

/// Creates the console's role if absent, grants it the schema and the
/// non-secret columns of every table (re-granted: a column classified
/// secret since loses its grant), and (re)creates its function. One
/// transaction, serialized among processes by an advisory lock.
async fn make_console(conn: &mut PgConnection) -> Result<Console, ExploreError> {
    let (database, schema, superuser): (String, Option<String>, bool) = sqlx::query_as(
        "SELECT current_database()::text, current_schema()::text,
                (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let schema = schema
        .ok_or_else(|| ExploreError::Database("no schema in the search_path exists".into()))?;
    let role_name = console_role_name(&database);
    let role = quote(&role_name);
    let function = format!("{}.{}", quote(&schema), quote(&format!("{role_name}_run")));
    let sch = quote(&schema);
    let fail = |what: &str, e: sqlx::Error| unavailable(&role_name, what, &e);

    let mut tx = conn.begin().await?;
    // The lock's key: the role's hash digits, as a number.
    let key = i64::from_str_radix(&role_name["warden_console_".len()..][..15], 16).unwrap_or(0);
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    let existing: Option<(bool, bool)> = sqlx::query_as(
        "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolcanlogin OR rolreplication
                    OR rolbypassrls,
                EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.member = r.oid)
         FROM pg_roles r WHERE rolname = $1",
    )
    .bind(&role_name)
    .fetch_optional(&mut *tx)
    .await?;
    match existing {
        None => {
            sqlx::query(&format!("CREATE ROLE {role} NOLOGIN"))
                .execute(&mut *tx)
                .await
                .map_err(|e| fail("creating it", e))?;
        }
        Some((false, false)) => {}
        Some(_) => {
            return Err(ExploreError::Unavailable(format!(
                "the SQL console's role {role_name} exists with more than it should have (a \
                 login, an attribute such as SUPERUSER or BYPASSRLS, or membership in another \
                 role, which could read secret columns): drop it and it is made again"
            )))
        }
    }
    if !superuser {
        let member: bool = sqlx::query_scalar("SELECT pg_has_role(current_user, $1, 'MEMBER')")
            .bind(&role_name)
            .fetch_one(&mut *tx)
            .await?;
        if !member {
            sqlx::query(&format!("GRANT {role} TO CURRENT_USER"))
                .execute(&mut *tx)
                .await
                .map_err(|e| fail("granting it to the server's user", e))?;
        }
    }
    let mut run = Vec::new();
    run.push(format!("GRANT USAGE ON SCHEMA {sch} TO {role}"));
    for t in PgExplorer::catalog(&mut *tx).await? {
        let table = format!("{sch}.{}", quote(&t.name));
        run.push(format!("REVOKE ALL ON {table} FROM {role}"));
        let cols: Vec<String> = t
            .columns
            .iter()
            .filter(|c| !c.secret)
            .map(|c| quote(&c.name))
            .collect();
        if !cols.is_empty() {
            run.push(format!(
                "GRANT SELECT ({}) ON {table} TO {role}",
                cols.join(", ")
            ));
        }
    }
    // The function runs whatever query it is given as its owner, the
    // console's role; only that role may call it. It is created as that
    // role, which needs CREATE on the schema for that moment only.
    run.push(format!("GRANT CREATE ON SCHEMA {sch} TO {role}"));
    run.push(format!("SET LOCAL ROLE {role}"));
    run.push(format!(
        "CREATE OR REPLACE FUNCTION {function}(text) RETURNS SETOF text
         LANGUAGE plpgsql SECURITY DEFINER
         AS $body$ BEGIN RETURN QUERY EXECUTE $1; END $body$"
    ));
    run.push(format!(
        "REVOKE ALL ON FUNCTION {function}(text) FROM PUBLIC"
    ));
    run.push("SET LOCAL ROLE NONE".to_owned());
    run.push(format!("REVOKE CREATE ON SCHEMA {sch} FROM {role}"));
    for sql in &run {
        sqlx::query(sql)
            .persistent(false)
            .execute(&mut *tx)
            .await
            .map_err(|e| fail("granting it the non-secret columns", e))?;
    }
    tx.commit().await?;
    Ok(Console {
        role,
        role_name,
        function,
    })
}

/// A console failure by PostgreSQL's SQLSTATE.
fn console_error(e: sqlx::Error) -> ExploreError {
    match &e {
        sqlx::Error::Database(d) => {
            let m = d.message().to_owned();
            match d.code().as_deref() {
                Some("57014") => ExploreError::Timeout,
                Some("42501") => ExploreError::Sql(format!(
                    "{m}: secret columns (token and password hashes, provider tokens, two-factor \
                     secrets, verification identifiers and values) cannot be read in the \
                     console; name the columns you need (SELECT * and whole-row references \
                     include the secret ones)"
                )),
                Some("25006") => ExploreError::Sql(format!("{m}: the console only reads")),
                _ => ExploreError::Sql(m),
            }
        }
        _ => ExploreError::Database(e.to_string()),
    }
}

/// A page's error: a sort or filter the column's type does not allow is
/// the query's fault.
fn page_error(e: sqlx::Error) -> ExploreError {
    match &e {
        sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("42")) => {
            ExploreError::BadQuery(d.message().to_owned())
        }
        _ => e.into(),
    }
}

/// `json_build_array(json_build_array(a, b, ...), ...)`: every value as
/// PostgreSQL converts it to JSON, in chunks (its calls take at most 100
/// arguments); [`flatten`] undoes the chunks.
fn json_row(exprs: &[String]) -> String {
    let chunks: Vec<String> = exprs
        .chunks(CHUNK)
        .map(|c| format!("json_build_array({})", c.join(", ")))
        .collect();
    // 100 chunks of 100: more columns than PostgreSQL allows (1664).
    format!("json_build_array({})::text", chunks.join(", "))
}

fn flatten(row: &str) -> Result<Vec<serde_json::Value>, ExploreError> {
    let chunks: Vec<Vec<serde_json::Value>> =
        serde_json::from_str(row).map_err(|e| ExploreError::Database(e.to_string()))?;
    Ok(chunks.into_iter().flatten().collect())
}

/// Runs the console's statement in `tx` (read-only, timed, as the role).
async fn run_console(
    tx: &mut PgConnection,
    console: &Console,
    sql: &str,
    max_rows: usize,
) -> Result<SqlResult, ExploreError> {
    // Parsing (the extended protocol: one statement only) gives the
    // columns without running anything.
    let stmt = tx.prepare_with(sql, &[]).await.map_err(console_error)?;
    let params = match stmt.parameters() {
        Some(sqlx::Either::Left(p)) => p.len(),
        Some(sqlx::Either::Right(n)) => n,
        None => 0,
    };
    if params > 0 {
        return Err(ExploreError::Sql(
            "the console takes no parameters ($1, ...): write the values in".into(),
        ));
    }
    let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    if columns.is_empty() {
        return Err(ExploreError::Sql(
            "the statement returns no rows: the console runs queries (SELECT, VALUES, WITH ...)"
                .into(),
        ));
    }
    // Columns by position (names may repeat or be "?column?").
    let aliases: Vec<String> = (1..=columns.len()).map(|i| format!("c{i}")).collect();
    let exprs: Vec<String> = aliases.iter().map(|a| format!("q.{a}")).collect();
    let wrapped = format!(
        "SELECT {} FROM (\n{sql}\n) AS q({}) LIMIT {}",
        json_row(&exprs),
        aliases.join(", "),
        max_rows.saturating_add(1)
    );
    let raw: Vec<Option<String>> =
        sqlx::query_scalar(&format!("SELECT v FROM {}($1) AS r(v)", console.function))
            .bind(&wrapped)
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(console_error)?;
    // The function cannot change the role; checked all the same before
    // anything is handed out.
    let user: String = sqlx::query_scalar("SELECT current_user::text")
        .fetch_one(&mut *tx)
        .await?;
    if user != console.role_name {
        return Err(ExploreError::Sql(
            "the statement changed the console's role: refused".into(),
        ));
    }
    let truncated = raw.len() > max_rows;
    let rows = raw
        .iter()
        .take(max_rows)
        .map(|r| flatten(r.as_deref().unwrap_or("[]")))
        .collect::<Result<_, _>>()?;
    Ok(SqlResult {
        columns,
        rows,
        truncated,
    })
}

#[async_trait::async_trait]
impl Explorer for PgExplorer {
    async fn tables(&self) -> Result<Vec<TableInfo>, ExploreError> {
        let schema = quote(&self.schema().await?);
        let tables = Self::catalog(&self.pool).await?;
        let fks = self.foreign_keys().await?;
        let links = links(&tables, &fks);
        let mut out = Vec::with_capacity(tables.len());
        for (t, links) in tables.into_iter().zip(links) {
            let rows: i64 =
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {schema}.{}", quote(&t.name)))
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
        let schema = quote(&self.schema().await?);
        let table = Self::catalog(&self.pool)
            .await?
            .into_iter()
            .find(|t| t.name == q.table)
            .ok_or_else(|| ExploreError::UnknownTable(q.table.clone()))?;
        let checked = check_query(q, &table.columns)?;
        let filter = match checked.filter {
            Some((c, FilterOp::Contains, _)) => format!(
                " WHERE strpos(lower({}::text), lower($1)) > 0",
                quote(&c.name)
            ),
            Some((c, FilterOp::Eq, _)) => format!(" WHERE {}::text = $1", quote(&c.name)),
            None => String::new(),
        };
        let value = checked.filter.map(|(_, _, v)| v);
        let from = format!("{schema}.{}", quote(&table.name));
        let count_sql = format!("SELECT COUNT(*) FROM {from}{filter}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
        if let Some(v) = value {
            count = count.bind(v);
        }
        let total = count.fetch_one(&self.pool).await.map_err(page_error)?;
        let list: Vec<String> = table.columns.iter().map(select_expr).collect();
        let n = if value.is_some() { 1 } else { 0 };
        let sql = format!(
            "SELECT {} FROM {from}{filter}{} LIMIT ${} OFFSET ${}",
            json_row(&list),
            checked.order_by(),
            n + 1,
            n + 2
        );
        let mut page = sqlx::query_scalar::<_, String>(&sql);
        if let Some(v) = value {
            page = page.bind(v);
        }
        let raw = page
            .bind(checked.limit)
            .bind(checked.offset)
            .fetch_all(&self.pool)
            .await
            .map_err(page_error)?;
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
            // A connection of its own, closed afterwards: nothing the
            // statement leaves in its session (a session advisory lock, a
            // prepared statement) outlives it.
            let opts = self.pool.connect_options();
            let mut conn = PgConnection::connect_with(&opts).await?;
            let result = async {
                let mut tx = conn.begin().await?;
                sqlx::query("SET TRANSACTION READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                let ms = limits.timeout.as_millis().clamp(1, i32::MAX as u128);
                sqlx::query(&format!("SET LOCAL statement_timeout = {ms}"))
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&format!("SET LOCAL ROLE {}", console.role))
                    .execute(&mut *tx)
                    .await?;
                let r = run_console(&mut tx, &console, sql, limits.max_rows).await;
                let _ = tx.rollback().await;
                r
            }
            .await;
            let _ = conn.close().await;
            result
        };
        // A backstop beside the statement timeout (connecting, a server
        // that stops answering).
        match tokio::time::timeout(limits.timeout + Duration::from_secs(5), work).await {
            Ok(r) => r,
            Err(_) => Err(ExploreError::Timeout),
        }
    }

    async fn migrations(&self) -> Result<Vec<Migration>, ExploreError> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await?;
        if !exists {
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
        // TIMESTAMP columns hold UTC (Warden's schema) and the store's
        // sessions run with TimeZone=UTC, so comparing with a TIMESTAMPTZ
        // is right for them and for BetterAuth's TIMESTAMPTZ columns.
        let n: i64 = sqlx::query_scalar(r#"SELECT COUNT(*) FROM "session" WHERE "expiresAt" > $1"#)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
