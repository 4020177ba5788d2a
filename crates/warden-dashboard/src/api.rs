//! The dashboard's JSON endpoints (see `API.md`): who is looking, sign-in,
//! the overview, traces, the database explorer, the SQL console and the
//! outbox. They parse, call and shape; the users view goes through the
//! admin API instead (`proxy.rs`).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use warden_core::{AuthError, RequestMeta, SecondFactor, SignInOutcome, SignedIn};
use warden_store::explore::{ExploreError, FilterOp, RowQuery};
use warden_telemetry::TraceId;
use warden_telemetry::{Trace, TraceSummary};

use crate::guard::{cookie, cookie_name, error, Admin};
use crate::Shared;

/// Most traces one listing returns.
const MAX_TRACES: usize = 1000;
/// Most rows one page of a table shows.
const MAX_ROWS: u32 = 500;

pub(crate) async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such page or endpoint",
    )
}

fn bad(message: impl AsRef<str>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_argument",
        message.as_ref(),
    )
}

fn unavailable(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, "not_available", message)
}

fn query(
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<HashMap<String, String>, String> {
    q.map(|Query(q)| q)
        .map_err(|e| format!("malformed query string: {}", e.body_text()))
}

fn meta(headers: &HeaderMap, addr: SocketAddr) -> RequestMeta {
    RequestMeta {
        ip_address: Some(addr.ip().to_string()),
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(512).collect()),
        ..RequestMeta::default()
    }
}

fn user_json(u: &warden_core::User) -> Value {
    json!({"id": u.id, "email": u.email, "name": u.name, "role": u.role})
}

// ---------------------------------------------------------------------------
// Who is looking

pub(crate) async fn me(State(s): State<Shared>, admin: Option<Extension<Admin>>) -> Response {
    let dev = s.dev();
    Json(json!({
        "mode": s.d.settings.mode.as_str(),
        "user": admin.map(|Extension(a)| user_json(&a.auth.user)),
        "sqlConsole": dev,
        "outbox": dev && s.d.outbox.is_some(),
        "version": env!("CARGO_PKG_VERSION"),
        "apiUrl": s.d.settings.api_url,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignInBody {
    email: String,
    password: String,
    code: Option<String>,
}

/// Signs an admin in: a Warden session of their own (listed among their
/// sessions, revocable like any), in the dashboard's cookie.
pub(crate) async fn sign_in(
    State(s): State<Shared>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<SignInBody>, JsonRejection>,
) -> Response {
    if s.dev() {
        return bad("development dashboards need no sign-in");
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => {
            return bad(format!(
                "expected {{\"email\", \"password\"}}: {}",
                e.body_text()
            ))
        }
    };
    let w = &s.d.state.warden;
    let meta = meta(&headers, addr);
    let signed_in = match w
        .sign_in(&body.email, &body.password, false, meta.clone())
        .await
    {
        Ok(SignInOutcome::SignedIn(signed)) => signed,
        Ok(SignInOutcome::TwoFactorRequired(challenge)) => {
            let Some(code) = body.code.as_deref().filter(|c| !c.is_empty()) else {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "two_factor_required",
                    "enter the code from your authenticator app",
                );
            };
            match w
                .verify_two_factor(
                    challenge.token.expose(),
                    SecondFactor::Totp(code),
                    false,
                    meta,
                )
                .await
            {
                Ok(signed) => signed,
                Err(e) => return sign_in_error(e),
            }
        }
        Err(e) => return sign_in_error(e),
    };
    finish_sign_in(&s, signed_in).await
}

async fn finish_sign_in(s: &Shared, signed: SignedIn) -> Response {
    let w = &s.d.state.warden;
    if !w.admin_settings().is_admin(&signed.user) {
        // The session was made by a correct password: end it at once, it
        // is of no use here.
        let _ = w.sign_out(signed.token.expose()).await;
        return error(
            StatusCode::FORBIDDEN,
            "not_admin",
            "the dashboard is for admins",
        );
    }
    tracing::info!(user_id = %signed.user.id, "dashboard sign-in");
    let secure = s.d.settings.secure_cookie;
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict{}",
        cookie_name(secure),
        signed.token.expose(),
        if secure { "; Secure" } else { "" }
    );
    let mut r = Json(json!({"user": user_json(&signed.user)})).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

fn sign_in_error(e: AuthError) -> Response {
    match e {
        AuthError::InvalidCredentials | AuthError::Invalid { .. } => error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "invalid email or password",
        ),
        AuthError::InvalidTwoFactorCode
        | AuthError::InvalidTwoFactorChallenge
        | AuthError::TwoFactorTooManyAttempts => error(
            StatusCode::UNAUTHORIZED,
            "invalid_code",
            "invalid two-factor code",
        ),
        AuthError::AccountLocked { .. } | AuthError::TwoFactorLocked { .. } => error(
            StatusCode::TOO_MANY_REQUESTS,
            "locked",
            "too many failed attempts: try again later",
        ),
        AuthError::Banned { message } => error(StatusCode::FORBIDDEN, "banned", &message),
        AuthError::EmailNotVerified => error(
            StatusCode::FORBIDDEN,
            "email_not_verified",
            "verify your email first",
        ),
        other => {
            tracing::warn!(error = %other, "dashboard sign-in failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "sign-in is unavailable right now",
            )
        }
    }
}

pub(crate) async fn sign_out(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let secure = s.d.settings.secure_cookie;
    if let Some(token) = cookie(&headers, cookie_name(secure)) {
        let _ = s.d.state.warden.sign_out(token).await;
    }
    let clear = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    let mut r = Json(json!({"success": true})).into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

// ---------------------------------------------------------------------------
// Overview

pub(crate) async fn overview(State(s): State<Shared>) -> Response {
    let ex = &s.d.explorer;
    let w = &s.d.state.warden;
    let tables = match ex.tables().await {
        Ok(t) => t,
        Err(e) => return explore_error(e),
    };
    let rows = |name: &str| tables.iter().find(|t| t.name == name).map_or(0, |t| t.rows);
    let active = match ex.active_sessions(w.now()).await {
        Ok(n) => n,
        Err(e) => return explore_error(e),
    };
    let migrations = match ex.migrations().await {
        Ok(m) => m,
        Err(e) => return explore_error(e),
    };
    let (ok, failed) = s.sign_ins.last_hour(w.metrics());
    let traces = s.traces().map(|t| {
        let st = t.stats();
        json!({"kept": st.traces, "bytes": st.bytes, "evicted": st.evicted, "skipped": st.skipped})
    });
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "mode": s.d.settings.mode.as_str(),
        "users": rows("user"),
        "activeSessions": active,
        "signIns": {"lastHour": ok, "failuresLastHour": failed},
        "traces": traces,
        "migrations": migrations,
        "config": s.d.settings.config,
    }))
    .into_response()
}

// ---------------------------------------------------------------------------
// Traces

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

pub(crate) fn summary_json(t: &TraceSummary) -> Value {
    json!({
        "id": t.id.to_string(),
        "name": t.name,
        "time": t.start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "method": t.method,
        "route": t.route,
        "status": t.status,
        "durationMs": ms(t.duration),
        "user": t.user_id,
        "spanCount": t.span_count,
        "hasError": t.has_error,
    })
}

/// Which traces a listing keeps.
#[derive(Default)]
pub(crate) struct TraceFilter {
    route: Option<String>,
    status: Option<(u16, u16)>,
    user: Option<String>,
}

impl TraceFilter {
    pub(crate) fn parse(q: &HashMap<String, String>) -> Result<Self, String> {
        let text = |k: &str| {
            q.get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let status = match text("status") {
            None => None,
            Some(st) => {
                let class = st.strip_suffix("xx").or_else(|| st.strip_suffix("XX"));
                match class {
                    Some(c) => match c.parse::<u16>() {
                        Ok(c @ 1..=5) => Some((c * 100, c * 100 + 99)),
                        _ => {
                            return Err(format!(
                                "status {st:?}: give a code like 404 or a class like 4xx"
                            ))
                        }
                    },
                    None => match st.parse::<u16>() {
                        Ok(c @ 100..=599) => Some((c, c)),
                        _ => {
                            return Err(format!(
                                "status {st:?}: give a code like 404 or a class like 4xx"
                            ))
                        }
                    },
                }
            }
        };
        Ok(TraceFilter {
            route: text("route"),
            status,
            user: text("user"),
        })
    }

    pub(crate) fn keeps(&self, t: &TraceSummary) -> bool {
        if let Some(r) = &self.route {
            if !t
                .route
                .as_deref()
                .is_some_and(|route| route.contains(r.as_str()))
            {
                return false;
            }
        }
        if let Some((lo, hi)) = self.status {
            if !t.status.is_some_and(|s| (lo..=hi).contains(&s)) {
                return false;
            }
        }
        if let Some(u) = &self.user {
            if !t
                .user_id
                .as_deref()
                .is_some_and(|id| id.contains(u.as_str()))
            {
                return false;
            }
        }
        true
    }
}

pub(crate) async fn traces(
    State(s): State<Shared>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(m) => return bad(m),
    };
    let Some(store) = s.traces() else {
        return unavailable("traces are off (telemetry.keep_traces = 0)");
    };
    let filter = match TraceFilter::parse(&q) {
        Ok(f) => f,
        Err(m) => return bad(m),
    };
    let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
        None => 200,
        Some(Ok(l @ 1..=MAX_TRACES)) => l,
        Some(_) => return bad(format!("limit: 1 to {MAX_TRACES}")),
    };
    let list: Vec<Value> = store
        .recent(usize::MAX)
        .iter()
        .filter(|t| filter.keeps(t))
        .take(limit)
        .map(summary_json)
        .collect();
    Json(json!({"traces": list})).into_response()
}

fn fields_json(fields: &[(&'static str, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        m.insert((*k).to_owned(), Value::String(v.clone()));
    }
    Value::Object(m)
}

fn trace_json(t: &Trace) -> Value {
    let origin = t.root().map(|r| r.start);
    let offset = |at: chrono::DateTime<chrono::Utc>| {
        origin.map_or(0.0, |o| {
            ((at - o).num_microseconds().unwrap_or(0) as f64 / 1e3 * 1e3).round() / 1e3
        })
    };
    let spans: Vec<Value> = t
        .spans
        .iter()
        .map(|sp| {
            json!({
                "id": sp.id.to_string(),
                "parent": sp.parent.map(|p| p.to_string()),
                "name": sp.name,
                "target": sp.target,
                "level": sp.level.as_str(),
                "offsetMs": offset(sp.start),
                "durationMs": ms(sp.duration),
                "fields": fields_json(&sp.fields),
                "events": sp.events.iter().map(|e| json!({
                    "offsetMs": offset(e.time),
                    "level": e.level.as_str(),
                    "target": e.target,
                    "message": e.message,
                    "fields": fields_json(&e.fields),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let root = t.root();
    json!({
        "id": t.id.to_string(),
        "time": root.map(|r| r.start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        "durationMs": root.map_or(0.0, |r| ms(r.duration)),
        "truncated": t.truncated,
        "spans": spans,
    })
}

pub(crate) async fn trace(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    let Some(store) = s.traces() else {
        return unavailable("traces are off (telemetry.keep_traces = 0)");
    };
    let Ok(id) = id.parse::<TraceId>() else {
        return bad("a trace id is 32 hexadecimal characters");
    };
    match store.get(&id) {
        Some(t) => Json(trace_json(&t)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "this trace is no longer kept (or never was)",
        ),
    }
}

// ---------------------------------------------------------------------------
// Database explorer

fn explore_error(e: ExploreError) -> Response {
    match e {
        ExploreError::UnknownTable(t) => error(
            StatusCode::NOT_FOUND,
            "unknown_table",
            &format!("no table {t:?}"),
        ),
        ExploreError::UnknownColumn(c) => bad(format!("no column {c:?} in this table")),
        ExploreError::SecretColumn(c) => bad(format!(
            "column {c:?} holds secrets: it cannot be filtered or sorted on"
        )),
        ExploreError::BadQuery(m) => bad(m),
        ExploreError::Sql(m) => error(StatusCode::BAD_REQUEST, "sql_error", &m),
        ExploreError::Timeout => error(
            StatusCode::BAD_REQUEST,
            "sql_timeout",
            "the statement ran past the console's time limit",
        ),
        ExploreError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &m),
        ExploreError::Database(m) => {
            tracing::warn!(error = %m, "dashboard database query failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database did not answer",
            )
        }
    }
}

pub(crate) async fn tables(State(s): State<Shared>) -> Response {
    match s.d.explorer.tables().await {
        Ok(t) => Json(json!({"tables": t})).into_response(),
        Err(e) => explore_error(e),
    }
}

pub(crate) async fn rows(
    State(s): State<Shared>,
    Path(table): Path<String>,
    q: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let q = match query(q) {
        Ok(q) => q,
        Err(m) => return bad(m),
    };
    let rq = match row_query(table, &q) {
        Ok(rq) => rq,
        Err(m) => return bad(m),
    };
    match s.d.explorer.rows(&rq).await {
        Ok(page) => Json(json!({
            "table": rq.table,
            "columns": page.columns,
            "rows": page.rows,
            "total": page.total,
            "limit": rq.limit,
            "offset": rq.offset,
        }))
        .into_response(),
        Err(e) => explore_error(e),
    }
}

fn row_query(table: String, q: &HashMap<String, String>) -> Result<RowQuery, String> {
    let text = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let limit = match text("limit").map(str::parse::<u32>) {
        None => 50,
        Some(Ok(l @ 1..=MAX_ROWS)) => l,
        Some(_) => return Err(format!("limit: 1 to {MAX_ROWS}")),
    };
    let offset = match text("offset").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(o)) if o <= 1_000_000_000 => o,
        Some(_) => return Err("offset: a whole number".into()),
    };
    let descending = match text("order") {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(o) => return Err(format!("order {o:?}: asc or desc")),
    };
    let op = match text("op") {
        None | Some("contains") => FilterOp::Contains,
        Some("eq") => FilterOp::Eq,
        Some(o) => return Err(format!("op {o:?}: contains or eq")),
    };
    let filter = match (text("filter_column"), q.get("filter_value")) {
        (Some(c), Some(v)) if !v.is_empty() => {
            if v.len() > 1024 {
                return Err("filter_value: at most 1024 bytes".into());
            }
            Some((c.to_owned(), op, v.clone()))
        }
        (None, Some(v)) if !v.is_empty() => return Err("filter_value needs filter_column".into()),
        _ => None,
    };
    Ok(RowQuery {
        table,
        limit,
        offset,
        sort: text("sort").map(|c| (c.to_owned(), descending)),
        filter,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SqlBody {
    sql: String,
}

/// Most bytes of one console statement.
const MAX_SQL: usize = 16 * 1024;

pub(crate) async fn sql(
    State(s): State<Shared>,
    body: Result<Json<SqlBody>, JsonRejection>,
) -> Response {
    if !s.dev() {
        return not_found().await;
    }
    let Json(body) = match body {
        Ok(b) => b,
        Err(e) => return bad(format!("expected {{\"sql\": \"...\"}}: {}", e.body_text())),
    };
    let sql = body.sql.trim();
    if sql.is_empty() {
        return bad("sql: empty statement");
    }
    if sql.len() > MAX_SQL {
        return bad(format!("sql: at most {MAX_SQL} bytes"));
    }
    let limits = s.d.settings.sql;
    let started = std::time::Instant::now();
    match s.d.explorer.sql(sql, limits).await {
        Ok(r) => Json(json!({
            "columns": r.columns,
            "rows": r.rows,
            "truncated": r.truncated,
            "rowLimit": limits.max_rows,
            "durationMs": ms(started.elapsed()),
        }))
        .into_response(),
        Err(e) => explore_error(e),
    }
}

// ---------------------------------------------------------------------------
// Outbox

pub(crate) fn mail_json(e: &warden_core::OutboxEntry) -> Value {
    json!({
        "id": e.id,
        "at": e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "to": e.email.to,
        "subject": e.email.subject,
        "text": e.email.text,
        "html": e.email.html,
        "links": e.links(),
        "code": e.email.code,
    })
}

pub(crate) async fn outbox(State(s): State<Shared>) -> Response {
    let Some(outbox) = s.d.outbox.as_ref().filter(|_| s.dev()) else {
        return unavailable("the outbox is on in development with mail.transport = \"outbox\"");
    };
    let mut list: Vec<Value> = outbox.entries_after(0).iter().map(mail_json).collect();
    list.reverse();
    Json(json!({"messages": list})).into_response()
}
