//! Sign-up, sign-in, sign-out and the bearer guard.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_error, bearer, spawn_app, spawn_app_with, Backend};

async fn sign_up_returns_user_and_stored_session(b: Backend) {
    let app = spawn_app(b).await;
    let res = app
        .sign_up_as("John@Example.com", "SecurePass123!", "John Doe")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], "john@example.com");
    assert_eq!(body["user"]["name"], "John Doe");
    let id = body["user"]["id"].as_str().unwrap();
    assert!(id.len() >= 16);
    let token = body["session"]["token"].as_str().unwrap();
    assert!(token.len() >= 32, "token too short: {token}");
    // expiresAt is the stored expiry, about 7 days ahead.
    let expires: chrono::DateTime<chrono::Utc> = body["session"]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!(
        (6.9..=7.0).contains(&days),
        "expiresAt {expires} is {days} days away"
    );
    let listed: Value = app.get_json_as("/sessions", token).await;
    assert_eq!(
        listed["sessions"][0]["expiresAt"],
        body["session"]["expiresAt"]
    );

    // Only the token's SHA-256 is stored.
    let stored = app
        .fetch_text(r#"SELECT "token" FROM "session""#, &[])
        .await
        .unwrap();
    assert_ne!(stored, token);
    assert_eq!(stored, warden_core::TokenHash::of(token).0);
    // A credential account as BetterAuth makes it.
    let n = app
        .count(
            r#"SELECT COUNT(*) FROM "account" WHERE "userId" = ? AND "accountId" = ? AND "providerId" = 'credential' AND "password" LIKE '$argon2id$%'"#,
            &[id, id],
        )
        .await;
    assert_eq!(n, 1);
}

async fn sign_up_rejects_bad_input_and_writes_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "unable to decode request body"),
        ("[]".into(), "unable to decode request body"),
        (json!({"email": 5, "password": "SecurePass123!", "name": "J"}).to_string(), "email"),
        (json!({"password": "SecurePass123!", "name": "J"}).to_string(), "email"),
        (json!({"email": "j@example.com", "name": "J"}).to_string(), "password"),
        (json!({"email": "j@example.com", "password": "SecurePass123!"}).to_string(), "name"),
        (json!({"email": "not-an-email", "password": "SecurePass123!", "name": "J"}).to_string(), "email"),
        (json!({"email": "j@example.com", "password": "short7!", "name": "J"}).to_string(), "password"),
        (json!({"email": "j@example.com", "password": "x".repeat(129), "name": "J"}).to_string(), "password"),
        (json!({"email": "j@example.com", "password": "SecurePass123!", "name": "  "}).to_string(), "name"),
        (r#"{"email":"j@example.com","email":"k@example.com","password":"SecurePass123!","name":"J"}"#.into(), "email"),
        ("".into(), "empty"),
    ];
    for (body, needle) in cases {
        let res = app
            .post("/auth/signup")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let msg = assert_error(res, 400, "invalid_argument").await;
        assert!(
            msg.contains(needle),
            "{body:?}: message {msg:?} should mention {needle:?}"
        );
    }
    // Oversized body.
    let big = json!({"email": "j@example.com", "password": "SecurePass123!", "name": "x".repeat(70 * 1024)});
    let res = app.post_json("/auth/signup", &big).await;
    let msg = assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("too large"), "{msg}");
    // Wrong content type.
    let res = app
        .post("/auth/signup")
        .header("content-type", "text/plain")
        .body(
            json!({"email": "j@example.com", "password": "SecurePass123!", "name": "J"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let msg = assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("content type"), "{msg}");

    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 0);
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "account""#, &[]).await, 0);
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "session""#, &[]).await, 0);
}

async fn duplicate_email_is_409_case_insensitively(b: Backend) {
    let app = spawn_app(b).await;
    assert_eq!(
        app.sign_up_as("jane@example.com", "SecurePass123!", "Jane")
            .await
            .status(),
        200
    );
    let res = app
        .sign_up_as("  JANE@example.COM ", "OtherPass123!", "Jane 2")
        .await;
    assert_error(res, 409, "already_exists").await;
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 1);
}

async fn concurrent_sign_ups_create_one_user(b: Backend) {
    let app = spawn_app(b).await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let client = app.client.clone();
        let url = app.url("/auth/signup");
        // The same address, differently written: one user all the same.
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            " Race@Example.COM"
        };
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(
                    &json!({"email": email, "password": "SecurePass123!", "name": format!("R{i}")}),
                )
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 1);
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "account""#, &[]).await, 1);
}

async fn sign_in_works_and_failures_are_indistinguishable(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let res = app
        .sign_in_as(&format!(" {} ", user.email.to_uppercase()), &user.password)
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], user.id.as_str());
    assert_ne!(body["session"]["token"], user.token.as_str());

    let wrong = app.sign_in_as(&user.email, "WrongPass123!").await;
    let (s1, b1) = (wrong.status(), wrong.text().await.unwrap());
    let unknown = app.sign_in_as("nobody@example.com", "WrongPass123!").await;
    let (s2, b2) = (unknown.status(), unknown.text().await.unwrap());
    assert_eq!(s1, 401);
    assert_eq!(
        (s1, &b1),
        (s2, &b2),
        "wrong password and unknown email must look the same"
    );
    assert!(b1.contains("unauthenticated"));

    for (body, field) in [
        (json!({"email": "x@example.com"}), "password"),
        (json!({"password": "x"}), "email"),
        (
            json!({"email": "bad", "password": "SecurePass123!"}),
            "email",
        ),
        (
            json!({"email": "x@example.com", "password": ""}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": "y".repeat(129)}),
            "password",
        ),
        (
            json!({"email": "x@example.com", "password": 12345678}),
            "password",
        ),
    ] {
        let res = app.post_json("/auth/signin", &body).await;
        let msg = assert_error(res, 400, "invalid_argument").await;
        assert!(msg.contains(field), "{body}: {msg}");
    }
}

/// Unknown emails cost a real hash, like wrong passwords (default argon2 cost).
async fn unknown_email_costs_a_hash(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.password.argon2 = warden::config::Argon2Config::default();
    })
    .await;
    let user = app.new_user().await;
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..3 {
        let t = std::time::Instant::now();
        assert_eq!(
            app.sign_in_as(&user.email, "WrongPass123!").await.status(),
            401
        );
        wrong.push(t.elapsed());
        let t = std::time::Instant::now();
        assert_eq!(
            app.sign_in_as("ghost@example.com", "WrongPass123!")
                .await
                .status(),
            401
        );
        unknown.push(t.elapsed());
    }
    let (w, u) = (*wrong.iter().min().unwrap(), *unknown.iter().min().unwrap());
    assert!(
        u * 2 > w && w * 2 > u,
        "wrong password {w:?} vs unknown email {u:?}"
    );
}

async fn guard_rejects_missing_malformed_unknown_tokens(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let msg = assert_error(
        app.get("/profile").send().await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        msg,
        "the request does not have valid authentication credentials for the operation"
    );
    for header in [
        "Basic dXNlcjpwYXNz".to_string(),
        "Bearer".to_string(),
        "Bearer ".to_string(),
        format!("Bearer {} extra", user.token),
        "Bearer not-a-real-token-000000000000000000".to_string(),
        format!("Token {}", user.token),
        format!("Bearer {}x", user.token),
    ] {
        let res = app
            .get("/profile")
            .header("authorization", header.clone())
            .send()
            .await
            .unwrap();
        assert_error(res, 401, "unauthenticated").await;
    }
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let res = app
            .get("/profile")
            .header("authorization", format!("{scheme} {}", user.token))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "scheme {scheme}");
    }
}

async fn expired_sessions_are_rejected_and_deleted(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let sql = format!(
        r#"UPDATE "session" SET "expiresAt" = {} WHERE "userId" = ?"#,
        app.ts_param()
    );
    app.exec(&sql, &[&app.ts_from_now(-5), &user.id]).await;
    let res = app.get_as("/profile", &user.token).await;
    let msg = assert_error(res, 401, "unauthenticated").await;
    assert_eq!(msg, "session expired");
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "session""#, &[]).await, 0);
}

async fn sliding_refresh_extends_old_sessions_only(b: Backend) {
    // The test moves expiries behind the server's back: no session cache.
    let app = spawn_app_with(b, |c| c.session.cache_ttl = std::time::Duration::ZERO).await;
    let user = app.new_user().await;
    let expiry = || async {
        app.fetch_text(
            match app.backend {
                Backend::Sqlite => r#"SELECT "expiresAt" FROM "session""#,
                Backend::Postgres => {
                    r#"SELECT to_char("expiresAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS') FROM "session""#
                }
                Backend::MySql => {
                    r#"SELECT DATE_FORMAT("expiresAt", '%Y-%m-%dT%H:%i:%s.%f') FROM "session""#
                }
            },
            &[],
        )
        .await
        .unwrap()
    };
    let first = expiry().await;
    // Used within a day of its last refresh: unchanged.
    let res = app.get_as("/profile", &user.token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(expiry().await, first);
    // Last refreshed two days ago (expires in 5 days): moved to now + 7 days.
    let sql = format!(
        r#"UPDATE "session" SET "expiresAt" = {} WHERE "userId" = ?"#,
        app.ts_param()
    );
    app.exec(&sql, &[&app.ts_from_now(5 * 86400), &user.id])
        .await;
    let res = app.get_as("/profile", &user.token).await;
    assert_eq!(res.status(), 200);
    let listed: Value = app.get_json_as("/sessions", &user.token).await;
    let expires: chrono::DateTime<chrono::Utc> = listed["sessions"][0]["expiresAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let hours = (expires - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!(
        hours > 7.0 * 24.0 - 0.1,
        "expiry not extended: {hours} h left"
    );
}

async fn sign_out_by_bearer_or_body(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    // By bearer header, no body.
    let res = app
        .post("/auth/signout")
        .header("authorization", bearer(&user.token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let res = app.get_as("/profile", &user.token).await;
    assert_error(res, 401, "unauthenticated").await;
    // Twice is harmless.
    let res = app
        .post_json("/auth/signout", &json!({"token": user.token}))
        .await;
    assert_eq!(res.status(), 200);

    // By body, as in the tutorial.
    let res = app.sign_in_as(&user.email, &user.password).await;
    let token = res.json::<Value>().await.unwrap()["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .post_json("/auth/signout", &json!({"token": token}))
        .await;
    assert_eq!(res.status(), 200);
    let res = app.get_as("/profile", &token).await;
    assert_error(res, 401, "unauthenticated").await;

    // Bad input.
    assert_error(
        app.post("/auth/signout").send().await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
    let res = app.post_json("/auth/signout", &json!({"token": 5})).await;
    let msg = assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("token"), "{msg}");
    let res = app
        .post("/auth/signout")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;
}

backend_tests!(
    sign_up_returns_user_and_stored_session,
    sign_up_rejects_bad_input_and_writes_nothing,
    duplicate_email_is_409_case_insensitively,
    concurrent_sign_ups_create_one_user,
    sign_in_works_and_failures_are_indistinguishable,
    unknown_email_costs_a_hash,
    guard_rejects_missing_malformed_unknown_tokens,
    expired_sessions_are_rejected_and_deleted,
    sliding_refresh_extends_old_sessions_only,
    sign_out_by_bearer_or_body,
);
