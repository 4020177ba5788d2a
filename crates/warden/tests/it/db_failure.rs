//! A failing database: Warden answers fast while it is unreachable, resumes
//! by itself when it is back, and loses nothing it acknowledged, even when
//! the process is killed mid-write.
//!
//! Outages are simulated with a TCP proxy between Warden and PostgreSQL
//! (`tcp_proxy.rs`); the machine's PostgreSQL is never touched.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_ba_error, assert_error, free_port, pg_admin_url, spawn_app_with, test_config,
    wait_healthy, warden_command, Backend, TestApp, TestDb,
};
use crate::tcp_proxy::TcpProxy;

/// Fast: an answer that did not wait for any timeout (generous, for a
/// loaded 2-core machine; a wait would be 2 s).
const FAST: Duration = Duration::from_millis(300);

/// Where PostgreSQL listens, from WARDEN_TEST_DATABASE_URL.
fn pg_addr() -> SocketAddr {
    let url = url::Url::parse(&pg_admin_url()).unwrap();
    let host = url.host_str().unwrap_or("127.0.0.1");
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{}", url.port().unwrap_or(5432))
        .parse()
        .expect("WARDEN_TEST_DATABASE_URL names an IP address")
}

/// `url` with its host and port replaced by the proxy's.
fn via_proxy(url: &str, port: u16) -> String {
    let mut u = url::Url::parse(url).unwrap();
    u.set_host(Some("127.0.0.1")).unwrap();
    u.set_port(Some(port)).unwrap();
    u.to_string()
}

/// A PostgreSQL server reached through a proxy the test controls.
async fn app_behind_proxy() -> (TestApp, TcpProxy) {
    let proxy = TcpProxy::start(pg_addr()).await;
    let port = proxy.port;
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.database_url = via_proxy(&c.database_url, port);
        assert_eq!(c.database.acquire_timeout, Duration::from_secs(2));
    })
    .await;
    (app, proxy)
}

async fn timed(req: reqwest::RequestBuilder) -> (reqwest::Response, Duration) {
    let start = Instant::now();
    let res = req.send().await.unwrap();
    (res, start.elapsed())
}

/// Polls `GET /readyz` until it answers 200; how long that took.
async fn until_ready(app: &TestApp) -> Duration {
    let start = Instant::now();
    loop {
        let r = app.get("/readyz").send().await.unwrap();
        if r.status() == 200 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not ready 10 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// While the database is down, every kind of request that needs it
/// answers 503 at once, in each API's format; so, soon, do cached sessions.
async fn assert_fails_fast(app: &TestApp, cached: &str, uncached: &str, email: &str) {
    let (r, t) = timed(app.get("/readyz")).await;
    assert_error(r, 503, "unavailable").await;
    assert!(t < FAST, "/readyz took {t:?}");

    let (r, t) = timed(
        app.post("/auth/signin")
            .json(&json!({"email": email, "password": "SecurePass123!"})),
    )
    .await;
    assert_error(r, 503, "unavailable").await;
    assert!(t < FAST, "sign-in took {t:?}");

    let (r, t) = timed(
        app.post("/api/auth/sign-in/email")
            .json(&json!({"email": email, "password": "SecurePass123!"})),
    )
    .await;
    assert_ba_error(r, 503, "SERVICE_UNAVAILABLE").await;
    assert!(t < FAST, "BetterAuth sign-in took {t:?}");

    let (r, t) = timed(app.post("/auth/signup").json(
        &json!({"email": "during-outage@example.com", "password": "SecurePass123!", "name": "Lost"}),
    ))
    .await;
    assert_error(r, 503, "unavailable").await;
    assert!(t < FAST, "sign-up took {t:?}");

    let (r, t) = timed(
        app.get("/profile")
            .header("authorization", format!("Bearer {uncached}")),
    )
    .await;
    assert_error(r, 503, "unavailable").await;
    assert!(t < FAST, "an uncached session check took {t:?}");

    // A session validated in the last `session.cache_ttl` is not served
    // from memory either: the connection that hears other instances'
    // revocations is lost with the database, and what it would have heard
    // is lost with it. Once the instance notices (at once when the
    // connection closes; within the heartbeat's 1.5 s deadline when the
    // network drops everything) the cache is emptied and bypassed, and the
    // session check fails fast like any other.
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    loop {
        let (r, t) = timed(
            app.get("/profile")
                .header("authorization", format!("Bearer {cached}")),
        )
        .await;
        assert!(t < FAST, "a cached session check took {t:?}");
        if r.status() == 503 {
            assert_error(r, 503, "unavailable").await;
            break;
        }
        assert_eq!(
            r.status(),
            200,
            "a cached session before the loss is noticed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the lost invalidation listener was not noticed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Signs in (tutorial API) and returns the new token, not yet validated by
/// any request (so not in the session cache).
async fn fresh_token(app: &TestApp, email: &str) -> String {
    let r = app.sign_in_as(email, "SecurePass123!").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    crate::helpers::remember_secret(&token);
    token
}

/// `blackhole`: the network drops everything (else the database is gone).
/// `probe_first`: a readiness probe is the first to find out (else a
/// request is, and waits for database.acquire_timeout).
async fn outage_then_recovery(blackhole: bool, probe_first: bool) {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (app, proxy) = app_behind_proxy().await;
    let a = app.new_user().await;
    let b = app.new_user().await;
    let uncached = fresh_token(&app, &b.email).await;
    assert_eq!(app.get_as("/profile", &a.token).await.status(), 200);

    if blackhole {
        proxy.blackhole();
    } else {
        proxy.cut();
    }

    let first_failure = if probe_first {
        // Readiness never hangs, whatever the database does ...
        let (r, t) = timed(app.get("/readyz")).await;
        assert_error(r, 503, "unavailable").await;
        assert!(t < Duration::from_secs(1), "/readyz took {t:?}");
        t
    } else {
        // The first request that needs the database waits at most
        // database.acquire_timeout (2 s) ...
        let (r, t) = timed(
            app.post("/auth/signin")
                .json(&json!({"email": b.email, "password": "SecurePass123!"})),
        )
        .await;
        assert_error(r, 503, "unavailable").await;
        assert!(
            t < Duration::from_millis(2_700),
            "the first failing request took {t:?}"
        );
        t
    };
    // ... and every one after it fails at once.
    assert_fails_fast(&app, &a.token, &uncached, &b.email).await;

    proxy.restore().await;
    let t = until_ready(&app).await;
    assert!(
        t < Duration::from_secs(1),
        "service resumed {t:?} after the database came back"
    );
    eprintln!(
        "database {}: the first {} failed after {first_failure:?}; service resumed {t:?} after it came back",
        if blackhole { "unanswering" } else { "down" },
        if probe_first { "readiness probe" } else { "request" },
    );
    // Everything works again, with no restart.
    let r = app.sign_in_as(&b.email, "SecurePass123!").await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get_as("/profile", &uncached).await.status(), 200);
    let c = app.new_user().await;
    assert_eq!(app.get_as("/profile", &c.token).await.status(), 200);
    // The sign-up refused during the outage left nothing behind.
    assert_eq!(app.users_with_email("during-outage@example.com").await, 0);
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 3);
}

/// Tests that need PostgreSQL alone (SQLite has no network to fail).
macro_rules! postgres_only {
    ($($name:ident: $body:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[cfg_attr(
            not(warden_pg_tests),
            ignore = "PostgreSQL suite not run: set WARDEN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
        )]
        async fn $name() {
            $body.await
        }
    )*};
}

postgres_only! {
    postgres_down_fails_fast_and_recovers_by_itself: outage_then_recovery(false, false),
    postgres_down_noticed_by_the_readiness_probe: outage_then_recovery(false, true),
    postgres_unanswering_fails_fast_and_recovers_by_itself: outage_then_recovery(true, false),
    postgres_unanswering_noticed_by_the_readiness_probe: outage_then_recovery(true, true),
    unreachable_at_start_up_is_a_clear_error_within_the_timeout:
        unreachable_at_start_up(),
}

async fn unreachable_at_start_up() {
    let proxy = TcpProxy::start(pg_addr()).await;
    proxy.cut();
    let (mut config, _secrets, spec) = test_config(Backend::Postgres);
    spec.create().await;
    config.database_url = via_proxy(&config.database_url, proxy.port);
    let start = Instant::now();
    let err = warden::Server::build(&config)
        .await
        .err()
        .expect("no server without a database");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    let message = err.to_string();
    assert!(
        message.contains("cannot connect to the database"),
        "{message}"
    );
    drop(spec.open(&pg_url_direct(&config.database_url)).await);
}

fn pg_url_direct(proxied: &str) -> String {
    let admin = url::Url::parse(&pg_admin_url()).unwrap();
    let mut u = url::Url::parse(proxied).unwrap();
    u.set_host(admin.host_str()).unwrap();
    u.set_port(admin.port()).unwrap();
    u.to_string()
}

// ---------------------------------------------------------------------
// kill -9 during concurrent sign-ups

/// `warden serve` on `port` and `database_url`, in `dir`, cheap hashing.
fn serve(dir: &std::path::Path, port: u16, database_url: &str) -> Child {
    warden_command(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", database_url])
        .env("WARDEN_PASSWORD__ARGON2__MEMORY_KIB", "1024")
        .env("WARDEN_PASSWORD__ARGON2__ITERATIONS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn users_without_credential(db: &TestDb) -> i64 {
    let sql = r#"SELECT COUNT(*) FROM "user" u WHERE NOT EXISTS
        (SELECT 1 FROM "account" a WHERE a."userId" = u."id" AND a."providerId" = 'credential')"#;
    match db {
        TestDb::Sqlite { pool, .. } => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        TestDb::Postgres { pool, .. } => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        TestDb::MySql { pool, .. } => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn kill_9_during_sign_ups_loses_nothing_acknowledged(b: Backend) {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (config, _secrets, spec) = test_config(b);
    spec.create().await;
    let url = config.database_url.clone();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let mut child = serve(dir.path(), port, &url);
    wait_healthy(&client, &base).await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for w in 0..16 {
        let client = client.clone();
        let base = base.clone();
        let acknowledged = acknowledged.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..1000 {
                let email = format!("crash-{w}-{i}@example.com");
                let sent = client
                    .post(format!("{base}/auth/signup"))
                    .json(&json!({"email": email, "password": "SecurePass123!", "name": "Crash"}))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::OK => {
                        // Acknowledged only once the whole answer arrived.
                        if r.bytes().await.is_ok() {
                            acknowledged.lock().unwrap().push(email);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the writers get going, then kill -9 in the middle of it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acknowledged.lock().unwrap().len() < 100 {
        assert!(Instant::now() < deadline, "sign-ups did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let mut child = serve(dir.path(), port, &url);
    wait_healthy(&client, &base).await;
    for email in &acknowledged {
        let r = client
            .post(format!("{base}/auth/signin"))
            .json(&json!({"email": email, "password": "SecurePass123!"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{email} was acknowledged before the kill");
    }
    let db = spec.open(&url).await;
    assert_eq!(
        users_without_credential(&db).await,
        0,
        "a user without its credential account"
    );
    let _ = child.kill();
    let _ = child.wait();
    eprintln!(
        "kill -9: {} acknowledged sign-ups, all signed in after the restart",
        acknowledged.len()
    );
}

crate::backend_tests!(kill_9_during_sign_ups_loses_nothing_acknowledged);
