//! The explorer on PostgreSQL: its own small pool, opened lazily; the
//! console runs in a read-only transaction with a statement timeout, as a
//! role that may read every column except the secret ones.

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use tokio::sync::OnceCell;

use super::*;

pub struct PgExplorer {
    pool: PgPool,
    /// The console's role, made once per process.
    role: OnceCell<Result<String, String>>,
}

impl PgExplorer {
    pub fn new(url: &str) -> Result<Self, sqlx::Error> {
        Ok(PgExplorer {
            pool: PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect_lazy(url)?,
            role: OnceCell::new(),
        })
    }

    async fn table_names(&self) -> Result<Vec<String>, ExploreError> {
        Ok(sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn columns(&self, table: &str) -> Result<Vec<ColumnInfo>, ExploreError> {
        let rows = sqlx::query(
            "SELECT c.column_name::text AS name, c.data_type::text AS type,
                    EXISTS (SELECT 1 FROM information_schema.table_constraints tc
                            JOIN information_schema.key_column_usage k
                              ON k.constraint_name = tc.constraint_name AND k.table_schema = tc.table_schema
                            WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = c.table_schema
                              AND tc.table_name = c.table_name AND k.column_name = c.column_name) AS pk
             FROM information_schema.columns c
             WHERE c.table_schema = current_schema() AND c.table_name = $1
             ORDER BY c.ordinal_position",
        )
        .bind(table)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let name: String = r.try_get("name")?;
                Ok(ColumnInfo {
                    secret: is_secret(table, &name),
                    sql_type: r.try_get("type")?,
                    primary_key: r.try_get("pk")?,
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

    /// Creates (if needed) the console's role and grants it every
    /// non-secret column of every table, nothing else.
    async fn console_role(&self) -> Result<String, ExploreError> {
        let made = self
            .role
            .get_or_init(|| async {
                self.make_role().await.map_err(|e| {
                    format!(
                        "the SQL console needs a role that may not read secret columns, and it could not be made ({e}); the database user needs CREATEROLE"
                    )
                })
            })
            .await;
        made.clone().map_err(ExploreError::Unavailable)
    }

    async fn make_role(&self) -> Result<String, ExploreError> {
        let db: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&self.pool)
            .await?;
        let role = format!(
            "warden_console_{}",
            &hex::encode(Sha256::digest(db.as_bytes()))[..16]
        );
        let q = quote(&role);
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
                .bind(&role)
                .fetch_one(&self.pool)
                .await?;
        if !exists {
            sqlx::query(&format!("CREATE ROLE {q} NOLOGIN"))
                .execute(&self.pool)
                .await?;
        }
        sqlx::query(&format!(
            "GRANT USAGE ON SCHEMA {} TO {q}",
            quote(&self.schema().await?)
        ))
        .execute(&self.pool)
        .await?;
        for t in self.table_names().await? {
            let cols: Vec<String> = self
                .columns(&t)
                .await?
                .into_iter()
                .filter(|c| !c.secret)
                .map(|c| quote(&c.name))
                .collect();
            if !cols.is_empty() {
                sqlx::query(&format!(
                    "GRANT SELECT ({}) ON {} TO {q}",
                    cols.join(", "),
                    quote(&t)
                ))
                .execute(&self.pool)
                .await?;
            }
        }
        let superuser: bool =
            sqlx::query_scalar("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                .fetch_one(&self.pool)
                .await?;
        if !superuser {
            sqlx::query(&format!("GRANT {q} TO CURRENT_USER"))
                .execute(&self.pool)
                .await?;
        }
        Ok(role)
    }

    async fn schema(&self) -> Result<String, ExploreError> {
        Ok(sqlx::query_scalar("SELECT current_schema()::text")
            .fetch_one(&self.pool)
            .await?)
    }
}

fn console_error(e: sqlx::Error) -> ExploreError {
    match &e {
        sqlx::Error::Database(d) => {
            let m = d.message().to_owned();
            match d.code().as_deref() {
                Some("57014") => ExploreError::Timeout,
                Some("42501") => ExploreError::Sql(format!(
                    "{m}: secret columns (token and password hashes, provider tokens, two-factor secrets, verification values) cannot be read in the console; select the other columns by name"
                )),
                Some("25006") => ExploreError::Sql(format!("{m}: the console only reads")),
                _ => ExploreError::Sql(m),
            }
        }
        _ => ExploreError::Database(e.to_string()),
    }
}

#[async_trait::async_trait]
impl Explorer for PgExplorer {
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
        let (filter, value) = match &q.filter {
            Some((c, FilterOp::Contains, v)) => (
                format!("WHERE CAST({} AS TEXT) ILIKE $1 ESCAPE '\\'", quote(c)),
                Some(like_pattern(v)),
            ),
            Some((c, FilterOp::Eq, v)) => (
                format!("WHERE CAST({} AS TEXT) = $1", quote(c)),
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
            None => match columns.iter().find(|c| c.primary_key) {
                Some(pk) => format!("ORDER BY {}", quote(&pk.name)),
                None => String::new(),
            },
        };
        let table = quote(&q.table);
        let count = format!("SELECT COUNT(*) FROM {table} {filter}");
        let mut count = sqlx::query_scalar::<_, i64>(&count);
        if let Some(v) = &value {
            count = count.bind(v);
        }
        let total = count.fetch_one(&self.pool).await?;
        let sql = format!(
            "SELECT json_build_array({})::text FROM {table} {filter} {order} LIMIT {} OFFSET {}",
            select_list(&columns).join(", "),
            q.limit,
            q.offset
        );
        let mut page = sqlx::query_scalar::<_, String>(&sql);
        if let Some(v) = &value {
            page = page.bind(v);
        }
        let raw = page.fetch_all(&self.pool).await?;
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
        let sql = sql.trim().trim_end_matches(';').trim();
        if super::sqlite::several_statements(sql) {
            return Err(ExploreError::Sql("one statement at a time".into()));
        }
        let role = self.console_role().await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION READ ONLY")
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "SET LOCAL statement_timeout = {}",
            limits.timeout.as_millis().max(1)
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!("SET LOCAL ROLE {}", quote(&role)))
            .execute(&mut *tx)
            .await?;
        // Each row as [[name, value], ...] in column order: any query's
        // values come back as JSON, typed by PostgreSQL itself.
        let wrapped = format!(
            "SELECT (SELECT json_agg(json_build_array(e.key, e.value) ORDER BY e.n)
                     FROM json_each(row_to_json(q)) WITH ORDINALITY AS e(key, value, n))::text
             FROM ({sql}) AS q LIMIT {}",
            limits.max_rows + 1
        );
        let mut columns = Vec::new();
        let mut rows = Vec::new();
        let mut truncated = false;
        {
            let mut stream = sqlx::query_scalar::<_, Option<String>>(&wrapped).fetch(&mut *tx);
            while let Some(row) = stream.try_next().await.map_err(console_error)? {
                if rows.len() == limits.max_rows {
                    truncated = true;
                    break;
                }
                let pairs: Vec<(String, serde_json::Value)> = match row {
                    Some(r) => serde_json::from_str(&r)
                        .map_err(|e| ExploreError::Database(e.to_string()))?,
                    None => Vec::new(),
                };
                if columns.is_empty() {
                    columns = pairs.iter().map(|(k, _)| k.clone()).collect();
                }
                rows.push(pairs.into_iter().map(|(_, v)| v).collect());
            }
        }
        let _ = tx.rollback().await;
        Ok(SqlResult {
            columns,
            rows,
            truncated,
        })
    }

    async fn migrations(&self) -> Result<Vec<Migration>, ExploreError> {
        let rows = sqlx::query(
            "SELECT version, description, to_char(installed_on AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS at
             FROM _sqlx_migrations WHERE success ORDER BY version",
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
        let n: i64 = sqlx::query_scalar(r#"SELECT COUNT(*) FROM "session" WHERE "expiresAt" > $1"#)
            .bind(now.naive_utc())
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }
}
