//! The HTTP surface: OpenAPI document, health, CORS, request ids, logs.

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_error, bearer, captured_logs, spawn_app, spawn_app_with, Backend};

/// Every route a client may call. Adding a route without documenting it, or
/// documenting one that is not served, fails here.
const ROUTES: &[(&str, &str, bool)] = &[
    ("get", "/admin/users", true),
    ("post", "/admin/users", true),
    ("get", "/admin/users/{id}", true),
    ("patch", "/admin/users/{id}", true),
    ("delete", "/admin/users/{id}", true),
    ("put", "/admin/users/{id}/role", true),
    ("put", "/admin/users/{id}/password", true),
    ("post", "/admin/users/{id}/ban", true),
    ("post", "/admin/users/{id}/unban", true),
    ("get", "/admin/users/{id}/sessions", true),
    ("delete", "/admin/users/{id}/sessions", true),
    ("delete", "/admin/sessions/{id}", true),
    ("delete", "/admin/users/{id}/two-factor", true),
    ("post", "/admin/users/{id}/impersonate", true),
    ("post", "/admin/stop-impersonating", true),
    ("post", "/admin/has-permission", true),
    ("get", "/admin/audit", true),
    ("post", "/api/auth/admin/set-role", true),
    ("post", "/api/auth/admin/create-user", true),
    ("post", "/api/auth/admin/update-user", true),
    ("post", "/api/auth/admin/list-user-sessions", true),
    ("post", "/api/auth/admin/ban-user", true),
    ("post", "/api/auth/admin/unban-user", true),
    ("post", "/api/auth/admin/impersonate-user", true),
    ("post", "/api/auth/admin/stop-impersonating", true),
    ("post", "/api/auth/admin/revoke-user-session", true),
    ("post", "/api/auth/admin/revoke-user-sessions", true),
    ("post", "/api/auth/admin/remove-user", true),
    ("post", "/api/auth/admin/set-user-password", true),
    ("post", "/api/auth/admin/has-permission", true),
    ("get", "/api/auth/admin/get-user", true),
    ("get", "/api/auth/admin/list-users", true),
    ("post", "/auth/signup", false),
    ("post", "/auth/signin", false),
    ("post", "/auth/signout", false),
    ("post", "/auth/request-password-reset", false),
    ("post", "/auth/send-verification-email", false),
    ("get", "/auth/verify-email", false),
    ("post", "/auth/change-email", true),
    ("post", "/api/auth/send-verification-email", false),
    ("get", "/api/auth/verify-email", false),
    ("post", "/api/auth/change-email", true),
    ("post", "/auth/reset-password", false),
    ("post", "/api/auth/request-password-reset", false),
    ("get", "/api/auth/reset-password/{token}", false),
    ("post", "/api/auth/reset-password", false),
    ("get", "/profile", true),
    ("put", "/profile", true),
    ("get", "/sessions", true),
    ("delete", "/sessions/{id}", true),
    ("get", "/healthz", false),
    ("get", "/readyz", false),
    ("post", "/api/auth/sign-up/email", false),
    ("post", "/api/auth/sign-in/email", false),
    ("post", "/api/auth/sign-out", false),
    ("get", "/api/auth/get-session", false),
    ("get", "/api/auth/list-sessions", true),
    ("post", "/api/auth/revoke-session", true),
    ("post", "/api/auth/revoke-sessions", true),
    ("post", "/api/auth/revoke-other-sessions", true),
    ("post", "/api/auth/update-user", true),
    ("post", "/api/auth/change-password", true),
    ("post", "/api/auth/delete-user", true),
    ("get", "/api/auth/ok", false),
    ("post", "/auth/two-factor/enable", true),
    ("post", "/auth/two-factor/confirm", true),
    ("post", "/auth/two-factor/get-totp-uri", true),
    ("post", "/auth/two-factor/disable", true),
    ("post", "/auth/two-factor/generate-backup-codes", true),
    ("post", "/auth/two-factor/verify-totp", false),
    ("post", "/auth/two-factor/verify-backup-code", false),
    ("post", "/api/auth/two-factor/enable", true),
    ("post", "/api/auth/two-factor/disable", true),
    ("post", "/api/auth/two-factor/get-totp-uri", true),
    ("post", "/api/auth/two-factor/generate-backup-codes", true),
    ("post", "/api/auth/two-factor/verify-totp", false),
    ("post", "/api/auth/two-factor/verify-backup-code", false),
    ("post", "/api/auth/two-factor/send-otp", false),
    ("post", "/api/auth/two-factor/verify-otp", false),
    ("post", "/auth/two-factor/enable-otp", true),
    ("post", "/auth/two-factor/send-otp", false),
    ("post", "/auth/two-factor/verify-otp", false),
    ("post", "/auth/magic-link", false),
    ("get", "/auth/magic-link/verify", false),
    ("post", "/auth/email-otp/send", false),
    ("post", "/auth/email-otp/signin", false),
    ("post", "/auth/email-otp/verify-email", false),
    ("post", "/auth/email-otp/check", false),
    ("post", "/auth/email-otp/reset-password", false),
    ("post", "/api/auth/sign-in/magic-link", false),
    ("get", "/api/auth/magic-link/verify", false),
    ("post", "/api/auth/email-otp/send-verification-otp", false),
    ("post", "/api/auth/email-otp/check-verification-otp", false),
    ("post", "/api/auth/email-otp/verify-email", false),
    ("post", "/api/auth/sign-in/email-otp", false),
    ("post", "/api/auth/email-otp/request-password-reset", false),
    ("post", "/api/auth/forget-password/email-otp", false),
    ("post", "/api/auth/email-otp/reset-password", false),
    ("post", "/api/auth/email-otp/request-email-change", true),
    ("post", "/api/auth/email-otp/change-email", true),
    ("post", "/auth/email-otp/request-email-change", true),
    ("post", "/auth/email-otp/change-email", true),
    ("get", "/auth/signin/{provider}", false),
    ("get", "/auth/callback/{provider}", false),
    ("post", "/auth/exchange", false),
    ("post", "/auth/link-social", true),
    ("get", "/auth/accounts", true),
    ("post", "/auth/unlink-account", true),
    ("post", "/api/auth/sign-in/social", false),
    ("get", "/api/auth/callback/{provider}", false),
    ("post", "/api/auth/link-social", true),
    ("get", "/api/auth/list-accounts", true),
    ("post", "/api/auth/unlink-account", true),
    ("get", "/api/auth/error", false),
    ("post", "/auth/passkey/register/options", true),
    ("post", "/auth/passkey/register/verify", true),
    ("post", "/auth/passkey/signin/options", false),
    ("post", "/auth/passkey/signin/verify", false),
    ("get", "/auth/passkeys", true),
    ("patch", "/auth/passkeys/{id}", true),
    ("delete", "/auth/passkeys/{id}", true),
    ("get", "/api/auth/passkey/generate-register-options", true),
    ("post", "/api/auth/passkey/verify-registration", true),
    (
        "get",
        "/api/auth/passkey/generate-authenticate-options",
        false,
    ),
    ("post", "/api/auth/passkey/verify-authentication", false),
    ("get", "/api/auth/passkey/list-user-passkeys", true),
    ("post", "/api/auth/passkey/update-passkey", true),
    ("post", "/api/auth/passkey/delete-passkey", true),
];

async fn openapi_documents_every_route(b: Backend) {
    // With the features whose routes answer 404 while off.
    let app = spawn_app_with(b, |c| {
        c.magic_link.enabled = true;
        c.email_otp.enabled = true;
    })
    .await;
    let doc: Value = app
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            documented += 1;
            let listed = ROUTES.iter().find(|(m, p, _)| m == method && p == path);
            let (_, _, protected) =
                listed.unwrap_or_else(|| panic!("{method} {path} is documented but not in ROUTES"));
            assert!(
                op["operationId"].is_string(),
                "{method} {path} has no operationId"
            );
            let has_bearer = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearerAuth").is_some()));
            if *protected {
                assert!(has_bearer, "{method} {path} must declare bearerAuth");
            }
            // The documented route is really served.
            let url = app.url(
                &path
                    .replace("{id}", "some-id")
                    .replace("{token}", "some-token")
                    .replace("{provider}", "some-provider"),
            );
            let res = app
                .client
                .request(method.to_uppercase().parse().unwrap(), url)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert!(
                status != 405
                    && !body.contains("endpoint not found")
                    && !body.contains(r#""code":"NOT_FOUND""#),
                "{method} {path} is documented but not served ({status} {body})"
            );
        }
    }
    for (m, p, _) in ROUTES {
        assert!(
            paths.get(*p).and_then(|o| o.get(*m)).is_some(),
            "{m} {p} missing from /openapi.json"
        );
    }
    assert_eq!(documented, ROUTES.len());
}

async fn unknown_routes_get_encore_errors(b: Backend) {
    let app = spawn_app(b).await;
    assert_error(app.get("/nope").send().await.unwrap(), 404, "not_found").await;
    let res = app.delete("/profile").send().await.unwrap();
    assert_eq!(res.status(), 405);
}

async fn health_and_readiness(b: Backend) {
    let app = spawn_app(b).await;
    let res = app.get("/healthz").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
}

async fn request_ids_are_returned_and_propagated(b: Backend) {
    let app = spawn_app(b).await;
    let res = app.get("/healthz").send().await.unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() >= 16);
    let res = app
        .get("/healthz")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    // A hostile id is replaced, not echoed.
    let res = app
        .get("/healthz")
        .header("x-request-id", "a\"b{}")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a\"b{}");
}

async fn cors_allows_credentials_only_for_listed_origins(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.cors.allow_origins_with_credentials = vec![
            "http://localhost:5173".into(),
            "https://*.example.com".into(),
        ];
    })
    .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/profile"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    for ok in ["http://localhost:5173", "https://app.example.com"] {
        let res = preflight(ok).await.unwrap();
        assert_eq!(res.headers()["access-control-allow-origin"], ok);
        assert_eq!(res.headers()["access-control-allow-credentials"], "true");
    }
    for bad in [
        "http://evil.com",
        "https://example.com",
        "http://localhost:5174",
    ] {
        let res = preflight(bad).await.unwrap();
        assert!(
            res.headers().get("access-control-allow-origin").is_none(),
            "{bad} allowed"
        );
    }
    // A credentialed request from an unlisted origin gets no CORS grant.
    let user = app.new_user().await;
    let res = app
        .get_as_from("/profile", &user.token, "http://evil.com")
        .await;
    assert!(res.headers().get("access-control-allow-origin").is_none());
    // Without credentials, any origin may read public endpoints.
    let res = app
        .get("/healthz")
        .header("origin", "http://anything.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://anything.test"
    );
}

/// A full sign-up / sign-in / profile / sign-out run leaves no password,
/// token or cookie in the logs, and logs one access line per request.
async fn logs_never_contain_secrets(b: Backend) {
    let app = spawn_app(b).await;
    let password = format!("Pw-{}-secret", warden_core::token::random_string(12));
    let email = format!(
        "logs-{}@example.com",
        warden_core::token::random_string(6).to_lowercase()
    );
    let res = app.sign_up_as(&email, &password, "Log Tester").await;
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let t1 = res.json::<Value>().await.unwrap()["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app.sign_in_as(&email, &password).await;
    let t2 = res.json::<Value>().await.unwrap()["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/profile")
        .header("authorization", bearer(&t2))
        .header("cookie", "warden.session_token=cookie-secret-value")
        .send()
        .await
        .unwrap();
    app.put_json_as("/profile", &t2, &json!({"name": "Renamed"}))
        .await;
    app.get_as("/sessions?token=query-secret-value", &t1).await;
    app.sign_in_as(&email, "WrongPassword-123").await;
    app.post_json("/auth/signout", &json!({"token": t1})).await;
    app.post("/auth/signout")
        .header("authorization", bearer(&t2))
        .send()
        .await
        .unwrap();

    let logs = captured_logs();
    for secret in [
        password.as_str(),
        t1.as_str(),
        t2.as_str(),
        "WrongPassword-123",
        "cookie-secret-value",
        "query-secret-value",
    ] {
        assert!(!logs.contains(secret), "a secret appeared in the logs");
    }
    // The access line of the sign-up: method, path, status, latency, request id.
    let line = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["span"]["request_id"] == request_id.as_str() && l["path"] == "/auth/signup")
        .expect("an access log line for the sign-up");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["status"], 200);
    assert!(line["latency_ms"].is_string() || line["latency_ms"].is_number());
}

backend_tests!(
    openapi_documents_every_route,
    unknown_routes_get_encore_errors,
    health_and_readiness,
    request_ids_are_returned_and_propagated,
    cors_allows_credentials_only_for_listed_origins,
    logs_never_contain_secrets,
);

/// readyz answers 503 once the database is gone (PostgreSQL: dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(warden_pg_tests),
    ignore = "PostgreSQL suite not run: set WARDEN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
)]
async fn readyz_is_503_when_the_database_is_gone() {
    let app = spawn_app(Backend::Postgres).await;
    assert_eq!(app.get("/readyz").send().await.unwrap().status(), 200);
    let crate::helpers::TestDb::Postgres { name, .. } = &app.db else {
        unreachable!()
    };
    let admin = sqlx::PgPool::connect(&crate::helpers::pg_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#))
        .execute(&admin)
        .await
        .unwrap();
    let res = app.get("/readyz").send().await.unwrap();
    let msg = assert_error(res, 503, "unavailable").await;
    assert!(
        !msg.to_lowercase().contains("sql") && !msg.contains("database \""),
        "leaks detail: {msg}"
    );
}
