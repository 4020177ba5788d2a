//! The dashboard over HTTP, as its page uses it: the development
//! dashboard of every test app, and a production one started from the
//! binary. (The page itself is driven in a real browser by
//! `dashboard_browser.rs`.)

use std::time::Duration;

use reqwest::header::{CONTENT_SECURITY_POLICY, HOST, ORIGIN};
use serde_json::{json, Value};

use crate::helpers::{
    free_port, remember_secret, spawn_app, wait_healthy, warden_command, Backend, TestApp,
};

fn dash(app: &TestApp) -> String {
    app.dashboard
        .clone()
        .expect("the test app serves a dashboard")
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{path}", dash(app)))
        .send()
        .await
        .unwrap()
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = get(app, path).await;
    assert_eq!(res.status(), 200, "GET {path}");
    res.json().await.unwrap()
}

/// A change from the dashboard's own page (its Origin).
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let d = dash(app);
    let mut r = app
        .client
        .request(method, format!("{d}{path}"))
        .header(ORIGIN, d.as_str());
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

async fn error_code(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    (status, body["code"].as_str().unwrap_or("").to_owned())
}

async fn the_page_is_served_with_a_strict_policy(b: Backend) {
    let app = spawn_app(b).await;
    let res = get(&app, "/").await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let html = res.text().await.unwrap();
    assert!(html.contains("app.js"), "{html}");
    for path in [
        "/explorer",
        "/assets/app.js",
        "/assets/vendor/swagger-ui/swagger-ui-bundle.js",
    ] {
        assert_eq!(get(&app, path).await.status(), 200, "{path}");
    }
    assert_eq!(get(&app, "/assets/nope.js").await.status(), 404);
    assert_eq!(get(&app, "/assets/../Cargo.toml").await.status(), 404);
    let me = get_json(&app, "/api/me").await;
    assert_eq!(me["mode"], "development");
    assert_eq!(me["user"], Value::Null);
    assert_eq!(me["sqlConsole"], true);
    // The explorer's document sends through the dashboard.
    let doc = get_json(&app, "/openapi.json").await;
    assert_eq!(doc["servers"][0]["url"], "/proxy");
    assert!(doc["paths"]["/auth/signup"].is_object());
}

/// DNS rebinding: a page on another name that resolves to 127.0.0.1 must
/// not read the dashboard; changes must come from its own page.
async fn other_hosts_and_origins_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let d = dash(&app);
    let port = d.rsplit(':').next().unwrap().to_owned();
    let res = app
        .client
        .get(format!("{d}/api/overview"))
        .header(HOST, format!("attacker.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (421, "unknown_host".into()));
    let res = app
        .client
        .get(format!("{d}/api/me"))
        .header(HOST, format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "localhost is loopback");
    let res = app
        .client
        .post(format!("{d}/api/db/sql"))
        .json(&json!({"sql": "select 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (403, "missing_origin".into()));
    let res = app
        .client
        .post(format!("{d}/api/db/sql"))
        .header(ORIGIN, "http://attacker.example")
        .json(&json!({"sql": "select 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(res).await, (403, "invalid_origin".into()));
    let res = get(&app, "/api/nothing-here").await;
    assert_eq!(error_code(res).await, (404, "not_found".into()));
}

/// A sign-up through the explorer's proxy is a real request: its trace is
/// listed and has its SQL; the user, session and account are in the
/// database explorer with every secret masked.
async fn explorer_requests_are_traced_and_stored_rows_are_masked(b: Backend) {
    let app = spawn_app(b).await;
    let email = format!(
        "dash-{}@example.com",
        warden_core::token::random_string(6).to_lowercase()
    );
    let res = send(
        &app,
        reqwest::Method::POST,
        "/proxy/auth/signup",
        Some(json!({"email": email, "password": "SecurePass123!", "name": "Dash"})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let trace_id = res.headers()["x-trace-id"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    remember_secret(&token);
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();

    let list = get_json(&app, "/api/traces?route=/auth/signup&limit=1000").await;
    let t = list["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == trace_id.as_str())
        .unwrap_or_else(|| panic!("{trace_id} not in {list}"));
    assert_eq!(t["method"], "POST");
    assert_eq!(t["status"], 200);
    assert_eq!(
        get_json(&app, &format!("/api/traces?status=5xx&user={user_id}")).await["traces"],
        json!([])
    );
    assert_eq!(
        error_code(get(&app, "/api/traces?status=7xx").await)
            .await
            .0,
        400
    );
    assert_eq!(
        error_code(get(&app, "/api/traces?limit=0").await).await.0,
        400
    );

    let trace = get_json(&app, &format!("/api/traces/{trace_id}")).await;
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans[0]["name"], "request");
    let sql: Vec<&str> = spans
        .iter()
        .filter(|s| s["name"] == "db.query")
        .filter_map(|s| s["fields"]["db.query.text"].as_str())
        .collect();
    assert!(
        sql.iter().any(|q| q.contains("INSERT INTO \"user\"")),
        "{sql:?}"
    );
    assert!(spans.iter().any(|s| s["name"] == "password.hash"));
    assert!(spans.iter().all(|s| s["offsetMs"].as_f64().unwrap() >= 0.0));
    assert_eq!(error_code(get(&app, "/api/traces/zz").await).await.0, 400);
    let gone = get(&app, &format!("/api/traces/{}", "ab".repeat(16))).await;
    assert_eq!(error_code(gone).await, (404, "not_found".into()));

    let tables = get_json(&app, "/api/db/tables").await;
    let names: Vec<&str> = tables["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in [
        "user",
        "session",
        "account",
        "verification",
        "twoFactor",
        "warden_audit",
    ] {
        assert!(names.contains(&t), "{t} not in {names:?}");
    }
    // Every column of Warden's schema is classified secret or not on
    // purpose: a migration that adds one must say which.
    for t in tables["tables"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        for c in t["columns"].as_array().unwrap() {
            let col = c["name"].as_str().unwrap();
            use warden_store::explore::{NOT_SECRET_COLUMNS, SECRET_COLUMNS};
            assert!(
                SECRET_COLUMNS.contains(&(name, col)) || NOT_SECRET_COLUMNS.contains(&(name, col)),
                "{name}.{col} is not classified in warden_store::explore"
            );
        }
    }
    let sessions = get_json(
        &app,
        &format!("/api/db/tables/session?filter_column=userId&op=eq&filter_value={user_id}"),
    )
    .await;
    assert_eq!(sessions["total"], 1, "{sessions}");
    let cols = sessions["columns"].as_array().unwrap();
    let token_col = cols.iter().position(|c| c == "token").unwrap();
    assert_eq!(sessions["rows"][0][token_col], "[masked]");
    let stored_hash = app
        .fetch_text(
            r#"SELECT "token" FROM "session" WHERE "userId" = ?"#,
            &[&user_id],
        )
        .await
        .unwrap();
    let accounts = get(
        &app,
        &format!("/api/db/tables/account?filter_column=userId&filter_value={user_id}"),
    )
    .await;
    let accounts = accounts.text().await.unwrap();
    let password_hash = app
        .fetch_text(
            r#"SELECT "password" FROM "account" WHERE "userId" = ?"#,
            &[&user_id],
        )
        .await
        .unwrap();
    for page in [sessions.to_string(), accounts.clone()] {
        assert!(
            !page.contains(&stored_hash)
                && !page.contains(&token)
                && !page.contains(&password_hash),
            "{page}"
        );
    }
    assert!(accounts.contains("[masked]"), "{accounts}");
    // Filtering or sorting on a secret would leak it bit by bit.
    let res = get(
        &app,
        "/api/db/tables/session?filter_column=token&filter_value=a",
    )
    .await;
    assert_eq!(error_code(res).await.0, 400);
    let res = get(&app, "/api/db/tables/account?sort=password").await;
    assert_eq!(error_code(res).await.0, 400);
    assert_eq!(
        error_code(get(&app, "/api/db/tables/nope").await).await.0,
        404
    );
    assert_eq!(
        error_code(get(&app, "/api/db/tables/user?limit=0").await)
            .await
            .0,
        400
    );
    assert_eq!(
        error_code(get(&app, "/api/db/tables/user?order=up").await)
            .await
            .0,
        400
    );
    assert_eq!(
        error_code(get(&app, "/api/db/tables/user?sort=nope").await)
            .await
            .0,
        400
    );
    let users = get_json(&app, "/api/db/tables/user?sort=email&order=desc&limit=1").await;
    assert_eq!(users["rows"].as_array().unwrap().len(), 1);

    let overview = get_json(&app, "/api/overview").await;
    assert_eq!(overview["users"], 1);
    assert_eq!(overview["activeSessions"], 1);
    assert!(!overview["migrations"].as_array().unwrap().is_empty());
    assert!(!overview.to_string().contains(&app.server_secret()));
}

/// The console reads, never writes, and never shows a secret.
async fn the_sql_console_is_read_only_and_masks_secrets(b: Backend) {
    let app = spawn_app(b).await;
    let u = app.new_user().await;
    let sql = |q: &str| {
        let q = q.to_owned();
        let app = &app;
        async move {
            send(
                app,
                reqwest::Method::POST,
                "/api/db/sql",
                Some(json!({"sql": q})),
            )
            .await
        }
    };
    let res = sql(r#"select "email" from "user""#).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["rows"][0][0], u.email.as_str());
    for write in [
        r#"delete from "user""#,
        r#"update "user" set "name" = 'x'"#,
        "drop table session",
    ] {
        let (status, code) = error_code(sql(write).await).await;
        assert_eq!((status, code.as_str()), (400, "sql_error"), "{write}");
    }
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 1);
    let hash = app
        .fetch_text(
            r#"SELECT "password" FROM "account" WHERE "userId" = ?"#,
            &[&u.id],
        )
        .await
        .unwrap();
    let token_hash = app
        .fetch_text(
            r#"SELECT "token" FROM "session" WHERE "userId" = ?"#,
            &[&u.id],
        )
        .await
        .unwrap();
    // Renaming, wrapping or whole-row tricks read no secret either.
    for tricky in [
        r#"select "password" from "account""#,
        r#"select * from "account""#,
        r#"select upper("token") as t from "session""#,
        r#"with c(a, b, c, d, e, f, g, h, i) as (select * from "session") select * from c"#,
        r#"select * from (select * from "session") s"#,
        r#"select row_to_json(a) from "account" a"#,
        r#"select json_object('p', "password") from "account""#,
    ] {
        let text = sql(tricky).await.text().await.unwrap();
        assert!(
            !text.contains(&hash) && !text.contains(&token_hash),
            "{tricky}: {text}"
        );
        assert!(!text.contains(&hash[..20]), "{tricky}: {text}");
    }
    let started = std::time::Instant::now();
    let res = sql(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    )
    .await;
    assert_eq!(error_code(res).await, (400, "sql_timeout".into()));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let res = sql(r#"select 1; select 2"#).await;
    assert_eq!(error_code(res).await.0, 400);
    let res = sql("select * from (values (1), (2), (3)) v").await;
    assert_eq!(res.status(), 200);
    let res = sql("").await;
    assert_eq!(error_code(res).await.0, 400);
    let res = send(
        &app,
        reqwest::Method::POST,
        "/api/db/sql",
        Some(json!({"query": "x"})),
    )
    .await;
    assert_eq!(error_code(res).await.0, 400);
}

/// The outbox shows what would have been sent, live; a reset link from it
/// completes the reset.
async fn the_outbox_shows_mail_live(b: Backend) {
    let app = spawn_app(b).await;
    let u = app.new_user().await;
    let d = dash(&app);
    let mut stream = app
        .client
        .get(format!("{d}/api/outbox/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let res = send(
        &app,
        reqwest::Method::POST,
        "/proxy/auth/request-password-reset",
        Some(json!({"email": u.email, "redirectTo": format!("{d}/#/link")})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("event: mail") {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("a mail event within 10 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let list = get_json(&app, "/api/outbox").await;
    let mail = &list["messages"][0];
    assert_eq!(mail["to"], u.email.as_str());
    let link = mail["links"][0].as_str().unwrap().to_owned();
    assert!(link.starts_with(&d), "{link}");
    let token = link
        .split("token=")
        .nth(1)
        .unwrap()
        .split(['&', '#'])
        .next()
        .unwrap()
        .to_owned();
    remember_secret(&token);
    let res = send(
        &app,
        reqwest::Method::POST,
        "/proxy/auth/reset-password",
        Some(json!({"token": token, "newPassword": "EvenBetterPass456!"})),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(
        app.sign_in_as(&u.email, "EvenBetterPass456!")
            .await
            .status(),
        200
    );
}

/// New traces arrive on the stream without asking again.
async fn new_traces_arrive_live(b: Backend) {
    let app = spawn_app(b).await;
    let d = dash(&app);
    let mut stream = app
        .client
        .get(format!("{d}/api/traces/stream?route=/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let res = app.get("/healthz").send().await.unwrap();
    let id = res.headers()["x-trace-id"].to_str().unwrap().to_owned();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(&id) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("the trace within 10 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: trace"), "{seen}");
    let res = get(&app, "/api/traces/stream?status=abc").await;
    assert_eq!(error_code(res).await.0, 400);
}

/// The users view acts through the admin API: same answers, same audit.
async fn users_are_managed_through_the_admin_api(b: Backend) {
    let app = spawn_app(b).await;
    let u = app.new_user().await;
    let list = get_json(&app, &format!("/admin-api/users?search={}", u.email)).await;
    assert_eq!(list["total"], 1, "{list}");
    let sessions = get_json(&app, &format!("/admin-api/users/{}/sessions", u.id)).await;
    let sid = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    assert!(!sessions.to_string().contains(&u.token));
    let res = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/admin-api/sessions/{sid}"),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.get_as("/profile", &u.token).await.status(),
        401,
        "revoked at once"
    );
    let res = send(
        &app,
        reqwest::Method::PATCH,
        &format!("/admin-api/users/{}", u.id),
        Some(json!({"emailVerified": true})),
    )
    .await;
    assert_eq!(res.status(), 200);
    let user: Value = res.json().await.unwrap();
    assert_eq!(user["emailVerified"], true);
    let res = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/admin-api/users/{}/two-factor", u.id),
        None,
    )
    .await;
    assert_eq!(res.status(), 200);
    let audit = get_json(&app, &format!("/admin-api/audit?targetId={}", u.id)).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.two_factor_reset"), "{actions:?}");
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == "dashboard (development)"),
        "{audit}"
    );
    assert!(audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["targetId"] == u.id.as_str()));
    // Bad input is the admin API's own 4xx.
    let res = send(
        &app,
        reqwest::Method::DELETE,
        "/admin-api/users/nobody/two-factor",
        None,
    )
    .await;
    assert_eq!(res.status(), 404);
    let res = get(&app, "/admin-api/audit?targetId=").await;
    assert_eq!(res.status(), 400);
    // Without the dashboard's origin, nothing changes.
    let res = app
        .client
        .delete(format!("{}/admin-api/users/{}", dash(&app), u.id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

crate::backend_tests!(
    the_page_is_served_with_a_strict_policy,
    other_hosts_and_origins_are_refused,
    explorer_requests_are_traced_and_stored_rows_are_masked,
    the_sql_console_is_read_only_and_masks_secrets,
    the_outbox_shows_mail_live,
    new_traces_arrive_live,
    users_are_managed_through_the_admin_api,
);

/// `warden serve` in production with the dashboard on: it needs an
/// admin's sign-in, has no console and no outbox, and shows no secret.
#[tokio::test]
async fn production_dashboard_needs_an_admin() {
    let dir = tempfile::tempdir().unwrap();
    let (port, dport) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{port}");
    let d = format!("http://127.0.0.1:{dport}");
    let secret = warden_core::token::random_string(48);
    remember_secret(&secret);
    let mut child = warden_command(dir.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", "sqlite:prod.db"])
        .env("WARDEN_ENV", "production")
        .env("WARDEN_SECRET", &secret)
        .env("WARDEN_BASE_URL", &base)
        .env("WARDEN_MAIL__TRANSPORT", "smtp")
        .env("WARDEN_MAIL__SMTP__HOST", "127.0.0.1")
        .env("WARDEN_MAIL__SMTP__PORT", "1")
        .env("WARDEN_DASHBOARD__ENABLED", "true")
        .env("WARDEN_DASHBOARD__LISTEN", format!("127.0.0.1:{dport}"))
        .env("WARDEN_TELEMETRY__KEEP_TRACES", "100")
        .env("WARDEN_PASSWORD__ARGON2__MEMORY_KIB", "1024")
        .env("WARDEN_PASSWORD__ARGON2__ITERATIONS", "1")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    wait_healthy(&client, &base).await;

    let signup = |email: &'static str| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let res = client
                .post(format!("{base}/auth/signup"))
                .json(&json!({"email": email, "password": "SecurePass123!", "name": "P"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let v: Value = res.json().await.unwrap();
            remember_secret(v["session"]["token"].as_str().unwrap());
            v
        }
    };
    let admin = signup("boss@example.com").await;
    let user = signup("someone@example.com").await;
    let user_token = user["session"]["token"].as_str().unwrap().to_owned();
    // The admin's role, as `warden admin set-role` would set it.
    let out = warden_command(dir.path())
        .args([
            "--database-url",
            "sqlite:prod.db",
            "user",
            "set-role",
            "boss@example.com",
            "admin",
        ])
        .env("WARDEN_ENV", "production")
        .env("WARDEN_SECRET", &secret)
        .env("WARDEN_MAIL__TRANSPORT", "smtp")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = admin;

    let me = json_of(client.get(format!("{d}/api/me"))).await;
    assert_eq!(
        (me["mode"].as_str(), &me["user"]),
        (Some("production"), &Value::Null)
    );
    assert_eq!(me["sqlConsole"], false);
    for path in [
        "/api/overview",
        "/api/traces",
        "/api/db/tables",
        "/admin-api/users",
        "/proxy/profile",
    ] {
        let res = client.get(format!("{d}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path} without a session");
    }
    // The app's own session cookie or token is not a dashboard session.
    let res = client
        .get(format!("{d}/api/overview"))
        .header(
            "cookie",
            format!("warden.session_token={user_token}; warden_dashboard=nonsense"),
        )
        .bearer_auth(&user_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let sign_in = |email: &'static str, password: &'static str| {
        let client = client.clone();
        let d = d.clone();
        async move {
            client
                .post(format!("{d}/api/session"))
                .header(ORIGIN, d.as_str())
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        error_code(sign_in("boss@example.com", "wrong-password").await).await,
        (401, "invalid_credentials".into())
    );
    assert_eq!(
        error_code(sign_in("nobody@example.com", "wrong-password").await).await,
        (401, "invalid_credentials".into())
    );
    assert_eq!(
        error_code(sign_in("someone@example.com", "SecurePass123!").await).await,
        (403, "not_admin".into())
    );
    let res = sign_in("boss@example.com", "SecurePass123!").await;
    assert_eq!(res.status(), 200);
    let set_cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    remember_secret(cookie.split_once('=').unwrap().1);
    let authed = |path: &str| {
        client
            .get(format!("{d}{path}"))
            .header("cookie", cookie.as_str())
    };

    let me: Value = json_of(authed("/api/me")).await;
    assert_eq!(me["user"]["email"], "boss@example.com");
    assert_eq!(authed("/api/overview").send().await.unwrap().status(), 200);
    let users: Value = json_of(authed("/admin-api/users")).await;
    assert_eq!(users["total"], 2, "{users}");
    // No console, no outbox in production.
    let res = client
        .post(format!("{d}/api/db/sql"))
        .header("cookie", cookie.as_str())
        .header(ORIGIN, d.as_str())
        .json(&json!({"sql": "select 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(authed("/api/outbox").send().await.unwrap().status(), 404);
    // Every table, every row: no secret.
    let tables: Value = json_of(authed("/api/db/tables")).await;
    for t in tables["tables"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let page = authed(&format!("/api/db/tables/{name}?limit=500"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains(&user_token), "{name}: {page}");
        assert!(!page.contains("$argon2"), "{name}: {page}");
        crate::helpers::assert_no_secret(&page);
    }
    // A trace page shows no secret either.
    let traces: Value = json_of(authed("/api/traces")).await;
    for t in traces["traces"].as_array().unwrap() {
        let page = authed(&format!("/api/traces/{}", t["id"].as_str().unwrap()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        crate::helpers::assert_no_secret(&page);
    }
    // Signing out ends the dashboard session.
    let res = client
        .delete(format!("{d}/api/session"))
        .header("cookie", cookie.as_str())
        .header(ORIGIN, d.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(authed("/api/overview").send().await.unwrap().status(), 401);
    let _ = child.kill();
    let _ = child.wait();
}
