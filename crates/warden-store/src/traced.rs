//! Every statement in its own `tracing` span, with its metrics.
//!
//! [`TracedPool`] and [`Traced`] are `sqlx` executors wrapping the pool and
//! a connection (a transaction's). Each statement they run is one
//! `db.query` span (OpenTelemetry's database conventions), child of
//! whatever span is current:
//!
//! * `db.query.text`: the SQL with its placeholders (`$n`; `?` on MySQL), never the bound
//!   values (sqlx keeps them apart, so they are not even at hand here);
//! * `db.operation.name` (`SELECT`, ...), also the exported span's name;
//! * `db.response.returned_rows` and `db.rows_affected`;
//! * on failure, `error.type` (sqlx's error kind, never its message, which
//!   may quote a value) and `otel.status_code = "error"`.
//!
//! Its duration is the statement's; the time spent waiting for a pooled
//! connection is measured apart (`db_client_connection_wait_time_seconds`).
//!
//! A statement's rows are collected before they are handed on. Every query
//! Warden runs is read to its end (`fetch_all`, `fetch_optional`,
//! `execute`), and listings are bounded (at most 1000 rows), so nothing is
//! buffered that would not be anyway.

use std::sync::Arc;
use std::time::Instant;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sqlx::{Database, Either, Execute, Executor};
use tracing::field::Empty;
use tracing::Instrument;
use warden_telemetry::metrics::DbMetrics;

/// `rows_affected` of a backend's query result.
pub(crate) trait Affected {
    fn affected(&self) -> u64;
}

impl Affected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl Affected for sqlx::mysql::MySqlQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// The first keyword of `sql`, for the span name and the metric label.
fn operation(sql: &str) -> &'static str {
    let word = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    for op in ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"] {
        if word.eq_ignore_ascii_case(op) {
            return op;
        }
    }
    "OTHER"
}

/// The statement's kind and its `db.query` span.
fn query_span(sql: &str, system: &'static str) -> (&'static str, tracing::Span) {
    let op = operation(sql);
    let span = tracing::info_span!(
        target: "warden::db",
        "db.query",
        otel.name = op,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = system,
        db.operation.name = op,
        db.query.text = sql,
        db.response.returned_rows = Empty,
        db.rows_affected = Empty,
        error.type = Empty,
    );
    (op, span)
}

/// The kind of a sqlx error, without its message.
fn error_kind(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Database(_) => "database",
        sqlx::Error::Io(_) => "io",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::RowNotFound => "row_not_found",
        sqlx::Error::PoolTimedOut => "pool_timed_out",
        sqlx::Error::PoolClosed => "pool_closed",
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => "decode",
        _ => "other",
    }
}

fn record_error(span: &tracing::Span, e: &sqlx::Error) {
    span.record("error.type", error_kind(e));
    span.record("otel.status_code", "error");
}

/// Runs a statement to its end, recording what it returned.
async fn collect<'e, DB, S>(
    steps: S,
    span: &tracing::Span,
) -> Result<Vec<Either<DB::QueryResult, DB::Row>>, sqlx::Error>
where
    DB: Database,
    DB::QueryResult: Affected,
    S: futures_util::Stream<Item = Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>> + 'e,
{
    let steps: Vec<_> = match steps.try_collect().await {
        Ok(v) => v,
        Err(e) => {
            record_error(span, &e);
            return Err(e);
        }
    };
    let (mut rows, mut affected) = (0u64, 0u64);
    for s in &steps {
        match s {
            Either::Left(r) => affected += r.affected(),
            Either::Right(_) => rows += 1,
        }
    }
    span.record("db.response.returned_rows", rows);
    span.record("db.rows_affected", affected);
    Ok(steps)
}

fn replay<'e, T: Send + 'e>(
    collected: impl std::future::Future<Output = Result<Vec<T>, sqlx::Error>> + Send + 'e,
) -> BoxStream<'e, Result<T, sqlx::Error>> {
    stream::once(collected)
        .flat_map(|r| match r {
            Ok(v) => stream::iter(v.into_iter().map(Ok)).left_stream(),
            Err(e) => stream::iter([Err(e)]).right_stream(),
        })
        .boxed()
}

fn optional_done<DB: Database>(r: &Result<Option<DB::Row>, sqlx::Error>, span: &tracing::Span) {
    match r {
        Ok(row) => {
            span.record("db.response.returned_rows", u64::from(row.is_some()));
        }
        Err(e) => record_error(span, e),
    }
}

/// A pooled connection, the wait measured (a failure recorded on `span`).
async fn acquire<DB: Database>(
    pool: &sqlx::Pool<DB>,
    metrics: &DbMetrics,
    span: &tracing::Span,
) -> Result<sqlx::pool::PoolConnection<DB>, sqlx::Error> {
    let waited = Instant::now();
    let conn = pool
        .acquire()
        .await
        .inspect_err(|e| record_error(span, e))?;
    metrics.observe_wait(waited.elapsed());
    Ok(conn)
}

/// The pool, traced: waits for a connection (measured), then runs the
/// statement on it in a `db.query` span.
#[derive(Debug)]
pub(crate) struct TracedPool<'p, DB: Database> {
    pub(crate) pool: &'p sqlx::Pool<DB>,
    pub(crate) metrics: &'p Arc<DbMetrics>,
}

impl<DB: Database> Clone for TracedPool<'_, DB> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<DB: Database> Copy for TracedPool<'_, DB> {}

impl<'p, DB: Database> TracedPool<'p, DB> {
    /// Starts a transaction (waiting for a connection, measured).
    pub(crate) async fn begin(self) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
        let t = Instant::now();
        let tx = self.pool.begin().await;
        self.metrics.observe_wait(t.elapsed());
        tx
    }
}

impl<'p, DB> Executor<'p> for TracedPool<'p, DB>
where
    DB: Database,
    DB::QueryResult: Affected,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let (op, span) = query_span(query.sql(), self.metrics.system);
        let (pool, metrics) = (self.pool.clone(), Arc::clone(self.metrics));
        let s = span.clone();
        replay(
            async move {
                let mut conn = acquire(&pool, &metrics, &s).await?;
                let t = Instant::now();
                let r = collect::<DB, _>(conn.fetch_many(query), &s).await;
                metrics.observe_operation(op, t.elapsed());
                r
            }
            .instrument(span),
        )
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, sqlx::Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let (op, span) = query_span(query.sql(), self.metrics.system);
        let (pool, metrics) = (self.pool.clone(), Arc::clone(self.metrics));
        let s = span.clone();
        Box::pin(
            async move {
                let mut conn = acquire(&pool, &metrics, &s).await?;
                let t = Instant::now();
                let r = conn.fetch_optional(query).await;
                metrics.observe_operation(op, t.elapsed());
                optional_done::<DB>(&r, &s);
                r
            }
            .instrument(span),
        )
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement<'q>, sqlx::Error>>
    where
        'p: 'e,
    {
        self.pool.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<sqlx::Describe<DB>, sqlx::Error>>
    where
        'p: 'e,
    {
        self.pool.describe(sql)
    }
}

/// A connection (a transaction's), traced.
#[derive(Debug)]
pub(crate) struct Traced<'m, C> {
    pub(crate) conn: C,
    pub(crate) metrics: &'m Arc<DbMetrics>,
}

impl<'c, C> Executor<'c> for Traced<'c, &'c mut C>
where
    C: sqlx::Connection + std::fmt::Debug,
    &'c mut C: Executor<'c, Database = C::Database>,
    <C::Database as Database>::QueryResult: Affected,
{
    type Database = C::Database;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<
        'e,
        Result<
            Either<<C::Database as Database>::QueryResult, <C::Database as Database>::Row>,
            sqlx::Error,
        >,
    >
    where
        'c: 'e,
        E: 'q + Execute<'q, C::Database>,
    {
        let (op, span) = query_span(query.sql(), self.metrics.system);
        let metrics = Arc::clone(self.metrics);
        let conn = self.conn;
        let s = span.clone();
        replay(
            async move {
                let t = Instant::now();
                let r = collect::<C::Database, _>(conn.fetch_many(query), &s).await;
                metrics.observe_operation(op, t.elapsed());
                r
            }
            .instrument(span),
        )
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<<C::Database as Database>::Row>, sqlx::Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, C::Database>,
    {
        let (op, span) = query_span(query.sql(), self.metrics.system);
        let metrics = Arc::clone(self.metrics);
        let conn = self.conn;
        let s = span.clone();
        Box::pin(
            async move {
                let t = Instant::now();
                let r = conn.fetch_optional(query).await;
                metrics.observe_operation(op, t.elapsed());
                optional_done::<C::Database>(&r, &s);
                r
            }
            .instrument(span),
        )
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [<C::Database as Database>::TypeInfo],
    ) -> BoxFuture<'e, Result<<C::Database as Database>::Statement<'q>, sqlx::Error>>
    where
        'c: 'e,
    {
        self.conn.prepare_with(sql, parameters)
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<sqlx::Describe<C::Database>, sqlx::Error>>
    where
        'c: 'e,
    {
        self.conn.describe(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::operation;

    #[test]
    fn operations_are_a_closed_set() {
        assert_eq!(operation(r#"SELECT 1"#), "SELECT");
        assert_eq!(operation("  insert into x"), "INSERT");
        assert_eq!(operation("(SELECT 1) UNION (SELECT 2)"), "SELECT");
        assert_eq!(operation("PRAGMA foreign_keys"), "OTHER");
        assert_eq!(operation(""), "OTHER");
    }
}
