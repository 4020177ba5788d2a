//! The explorer on MySQL and MariaDB: tables, columns and keys from
//! `information_schema`, pages of rows through the store's pool (whose
//! connections run with `ANSI_QUOTES`, so the shared double-quoting holds),
//! secret columns masked by the database as on the other backends.
//!
//! The SQL console is not offered here: MySQL has neither SQLite's
//! authorizer nor a way to run one statement as a role that cannot read
//! the secret columns without creating an account (`CREATE USER`, column
//! grants), which the server's own account may not be allowed to do. The
//! console answers so instead of running anything.

use sqlx::mysql::MySqlPool;
use sqlx::Row;

use super::{
    check_query, is_secret, links, quote, select_expr, CatalogTable, ColumnInfo, ExploreError,
    Explorer, FilterOp, ForeignKey, Migration, RowPage, RowQuery, SqlLimits, SqlResult, TableInfo,
};

pub(crate) struct MySqlExplorer {
    pool: MySqlPool,
}

impl MySqlExplorer {
    pub(crate) fn new(pool: MySqlPool) -> Self {
        MySqlExplorer { pool }
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

    async fn sql(&self, _sql: &str, _limits: SqlLimits) -> Result<SqlResult, ExploreError> {
        Err(ExploreError::Sql(
            "the SQL console is not available on MySQL/MariaDB (see warden-store explore/mysql.rs): \
             browse the tables instead"
                .into(),
        ))
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
