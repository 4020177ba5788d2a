//! The BetterAuth-compatible API under `/api/auth`: shapes, codes and
//! statuses as BetterAuth 1.7 has them, driven over HTTP with cookies as a
//! browser sends them.

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    assert_ba_error, bearer, session_set_cookie, spawn_app, spawn_app_with, Backend,
};

fn assert_user_shape(user: &Value, email: &str) {
    for key in ["id", "name", "email", "createdAt", "updatedAt"] {
        assert!(user[key].is_string(), "user.{key} in {user}");
    }
    assert_eq!(user["email"], email);
    assert_eq!(user["emailVerified"], false);
    assert!(
        user.get("image").is_some(),
        "image is present (null): {user}"
    );
}

async fn ba_sign_up_returns_token_user_and_cookie(b: Backend) {
    let app = spawn_app(b).await;
    let res = app
        .post_json(
            "/api/auth/sign-up/email",
            &json!({"name": "Ada", "email": "Ada@Example.com", "password": "SecurePass123!"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let (cookie, attrs) = session_set_cookie(&res).unwrap();
    let auth_token = res.headers()["set-auth-token"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("warden.session_token="));
    assert_eq!(cookie.split_once('=').unwrap().1, auth_token);
    for a in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attrs.contains(a), "{a} missing from {attrs}");
    }
    assert!(
        !attrs.contains("Secure"),
        "http base URL: no Secure ({attrs})"
    );
    let max_age: i64 = attrs
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((604_790..=604_800).contains(&max_age), "{max_age}");
    let body: Value = res.json().await.unwrap();
    assert_user_shape(&body["user"], "ada@example.com");
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.len(), 32);
    // The database holds only the token's hash.
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "session" WHERE "token" = ?"#,
            &[token]
        )
        .await,
        0
    );
    // The credential account carries BetterAuth 1.7's issuer.
    assert_eq!(
        app.fetch_text(
            r#"SELECT "issuer" FROM "account" WHERE "userId" = ?"#,
            &[body["user"]["id"].as_str().unwrap()]
        )
        .await
        .as_deref(),
        Some("local:credential")
    );
}

async fn ba_sign_up_rejects_bad_input(b: Backend) {
    let app = spawn_app(b).await;
    let post = |body: Value| app.post("/api/auth/sign-up/email").json(&body).send();
    let ok = json!({"name": "Ada", "email": "ada@example.com", "password": "SecurePass123!"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let msg = assert_ba_error(
        post(json!({"email": "ada@example.com", "password": "SecurePass123!"}))
            .await
            .unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(msg.contains("body.name"), "{msg}");
    let msg = assert_ba_error(
        post(with("password", json!(12345678))).await.unwrap(),
        400,
        "VALIDATION_ERROR",
    )
    .await;
    assert!(msg.contains("body.password"), "{msg}");
    assert_ba_error(
        post(with("email", json!("not-an-email"))).await.unwrap(),
        400,
        "INVALID_EMAIL",
    )
    .await;
    assert_ba_error(
        post(with("password", json!("1234567"))).await.unwrap(),
        400,
        "PASSWORD_TOO_SHORT",
    )
    .await;
    assert_ba_error(
        post(with("password", json!("x".repeat(129))))
            .await
            .unwrap(),
        400,
        "PASSWORD_TOO_LONG",
    )
    .await;
    let res = app
        .post("/api/auth/sign-up/email")
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    // Fields by position (a JSON array) are not a body.
    let res = app
        .post_json(
            "/api/auth/sign-up/email",
            &json!(["Ada", "arr@example.com", "SecurePass123!"]),
        )
        .await;
    assert_ba_error(res, 400, "BODY_MUST_BE_AN_OBJECT").await;
    let res = app
        .post_json(
            "/auth/signup",
            &json!(["arr@example.com", "SecurePass123!", "Ada"]),
        )
        .await;
    let msg = crate::helpers::assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("JSON object"), "{msg}");
    // Nothing half-written.
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 0);
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "account""#, &[]).await, 0);

    assert_eq!(post(ok.clone()).await.unwrap().status(), 200);
    let msg = assert_ba_error(
        post(with("email", json!("ADA@example.com"))).await.unwrap(),
        422,
        "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
    )
    .await;
    assert_eq!(msg, "User already exists. Use another email.");
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 1);
}

async fn ba_sign_in_and_get_session(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let res = app
        .post_json(
            "/api/auth/sign-in/email",
            &json!({"email": user.email, "password": user.password}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (cookie, _) = session_set_cookie(&res).unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["redirect"], false);
    assert!(body.get("url").is_none(), "{body}");
    assert_user_shape(&body["user"], &user.email);
    let token = body["token"].as_str().unwrap();
    assert_ne!(token, user.token, "a new token per sign-in");

    let res = app.ba_get("/api/auth/get-session", &cookie).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let s: Value = res.json().await.unwrap();
    assert_eq!(s["user"]["id"], user.id);
    assert_eq!(s["session"]["userId"], user.id);
    assert_eq!(s["session"]["token"], token);
    for key in ["id", "expiresAt", "createdAt", "updatedAt"] {
        assert!(s["session"][key].is_string(), "session.{key}: {s}");
    }
    assert_eq!(s["session"]["userAgent"], "warden-tests/1.0");
    // Bearer (raw token) works the same; no credentials gives null.
    let res = app.get_as("/api/auth/get-session", token).await;
    assert_eq!(res.json::<Value>().await.unwrap()["user"]["id"], user.id);
    let res = app.get("/api/auth/get-session").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);

    // An HTML form posts work too (BetterAuth accepts them on sign-in).
    let res = app
        .post("/api/auth/sign-in/email")
        .form(&[("email", user.email.as_str()), ("password", &user.password)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A relative callbackURL: redirect flag, url and Location.
    let res = app
        .post_json(
            "/api/auth/sign-in/email",
            &json!({"email": user.email, "password": user.password, "callbackURL": "/dashboard"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["location"], "/dashboard");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["redirect"], true);
    assert_eq!(body["url"], "/dashboard");
}

async fn ba_sign_in_failures_do_not_tell_which(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let attempt = |email: String, password: &'static str| {
        app.post("/api/auth/sign-in/email")
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    let wrong = attempt(user.email.clone(), "WrongPass123!").await.unwrap();
    assert!(session_set_cookie(&wrong).is_none());
    let wrong_msg = assert_ba_error(wrong, 401, "INVALID_EMAIL_OR_PASSWORD").await;
    let unknown = attempt("nobody@example.com".into(), "WrongPass123!")
        .await
        .unwrap();
    let unknown_msg = assert_ba_error(unknown, 401, "INVALID_EMAIL_OR_PASSWORD").await;
    assert_eq!(wrong_msg, unknown_msg);
    assert_eq!(wrong_msg, "Invalid email or password");
    assert_ba_error(
        attempt("not-an-email".into(), "x").await.unwrap(),
        400,
        "INVALID_EMAIL",
    )
    .await;
    let res = app
        .post_json("/api/auth/sign-in/email", &json!({"email": user.email}))
        .await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("body.password"), "{msg}");
}

async fn ba_sign_out_ends_the_session_and_clears_the_cookie(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let res = app
        .ba_post("/api/auth/sign-out", &user.cookie, &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let (cleared, attrs) = session_set_cookie(&res).unwrap();
    assert_eq!(cleared, "warden.session_token=");
    assert!(attrs.contains("Max-Age=0"), "{attrs}");
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let res = app.ba_get("/api/auth/get-session", &user.cookie).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
    let res = app.get_as("/api/auth/get-session", &user.token).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
    // No session to end.
    let res = app.post("/api/auth/sign-out").send().await.unwrap();
    assert_ba_error(res, 400, "FAILED_TO_GET_SESSION").await;
    // Sign-out by bearer token (no cookie, no origin needed).
    let (_, token) = app.ba_sign_in(&user.email, &user.password).await;
    let res = app
        .post("/api/auth/sign-out")
        .header("authorization", bearer(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "session""#, &[]).await, 0);
}

async fn ba_list_and_revoke_sessions(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let (cookie2, token2) = app.ba_sign_in(&user.email, &user.password).await;
    let other = app.ba_sign_up().await;

    let res = app.ba_get("/api/auth/list-sessions", &user.cookie).await;
    assert_eq!(res.status(), 200);
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list.len(), 2);
    for s in &list {
        for key in [
            "id",
            "token",
            "userId",
            "expiresAt",
            "createdAt",
            "updatedAt",
        ] {
            assert!(s[key].is_string(), "{key}: {s}");
        }
        assert_eq!(s["userId"], user.id);
    }
    // The caller's own session shows its token; the other one a handle.
    assert!(list.iter().any(|s| s["token"] == user.token.as_str()));
    let handle = list
        .iter()
        .find(|s| s["token"] != user.token.as_str())
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(handle, token2, "other sessions' tokens are never shown");

    // Another user's token: "ok", but nothing happens to that session.
    let res = app
        .ba_post(
            "/api/auth/revoke-session",
            &user.cookie,
            &json!({"token": other.token}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let res = app.ba_get("/api/auth/get-session", &other.cookie).await;
    assert_eq!(res.json::<Value>().await.unwrap()["user"]["id"], other.id);

    // Revoke by handle, then by token.
    let res = app
        .ba_post(
            "/api/auth/revoke-session",
            &user.cookie,
            &json!({"token": handle}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let res = app.ba_get("/api/auth/get-session", &cookie2).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
    let (_, token3) = app.ba_sign_in(&user.email, &user.password).await;
    app.ba_post(
        "/api/auth/revoke-session",
        &user.cookie,
        &json!({"token": token3}),
    )
    .await;
    let res = app.get_as("/api/auth/get-session", &token3).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);

    // Bad input.
    let res = app
        .ba_post("/api/auth/revoke-session", &user.cookie, &json!({}))
        .await;
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    let res = app
        .post_json("/api/auth/revoke-session", &json!({"token": token2}))
        .await;
    assert_ba_error(res, 401, "UNAUTHORIZED").await;
    let res = app.get("/api/auth/list-sessions").send().await.unwrap();
    assert_ba_error(res, 401, "UNAUTHORIZED").await;

    // Revoke the others, then all.
    let (cookie4, _) = app.ba_sign_in(&user.email, &user.password).await;
    let res = app
        .ba_post("/api/auth/revoke-other-sessions", &user.cookie, &json!({}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let res = app.ba_get("/api/auth/get-session", &cookie4).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
    let res = app.ba_get("/api/auth/list-sessions", &user.cookie).await;
    assert_eq!(res.json::<Vec<Value>>().await.unwrap().len(), 1);
    let res = app
        .ba_post("/api/auth/revoke-sessions", &user.cookie, &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).unwrap().1.contains("Max-Age=0"));
    let res = app.ba_get("/api/auth/get-session", &user.cookie).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
    // The other user was never touched.
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "session" WHERE "userId" = ?"#,
            &[&other.id]
        )
        .await,
        1
    );
}

async fn ba_list_sessions_needs_a_fresh_session(b: Backend) {
    let app = spawn_app_with(b, |c| c.session.cache_ttl = std::time::Duration::ZERO).await;
    let user = app.ba_sign_up().await;
    let sql = format!(
        r#"UPDATE "session" SET "createdAt" = {} WHERE "userId" = ?"#,
        app.ts_param()
    );
    app.exec(&sql, &[&app.ts_from_now(-2 * 86400), &user.id])
        .await;
    let res = app.ba_get("/api/auth/list-sessions", &user.cookie).await;
    assert_ba_error(res, 403, "SESSION_NOT_FRESH").await;
    // Signing in again gives a fresh session.
    let (cookie, _) = app.ba_sign_in(&user.email, &user.password).await;
    let res = app.ba_get("/api/auth/list-sessions", &cookie).await;
    assert_eq!(res.status(), 200);
}

async fn ba_update_user(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let res = app
        .ba_post(
            "/api/auth/update-user",
            &user.cookie,
            &json!({"name": "Grace", "image": "https://example.com/g.png"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let s: Value = app
        .ba_get("/api/auth/get-session", &user.cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["name"], "Grace");
    assert_eq!(s["user"]["image"], "https://example.com/g.png");
    // `image: null` clears it; the name stays.
    app.ba_post(
        "/api/auth/update-user",
        &user.cookie,
        &json!({"image": null}),
    )
    .await;
    let s: Value = app
        .ba_get("/api/auth/get-session", &user.cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["image"], Value::Null);
    assert_eq!(s["user"]["name"], "Grace");

    let (app, cookie) = (&app, &user.cookie);
    let post =
        |body: Value| async move { app.ba_post("/api/auth/update-user", cookie, &body).await };
    assert_ba_error(
        post(json!({"email": "new@example.com"})).await,
        400,
        "EMAIL_CAN_NOT_BE_UPDATED",
    )
    .await;
    assert_ba_error(post(json!({})).await, 400, "NO_FIELDS_TO_UPDATE").await;
    let msg = assert_ba_error(post(json!({"name": ""})).await, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("body.name"), "{msg}");
    assert_ba_error(
        post(json!({"image": "javascript:alert(1)"})).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    let res = app
        .post_json("/api/auth/update-user", &json!({"name": "X"}))
        .await;
    assert_ba_error(res, 401, "UNAUTHORIZED").await;
    let s: Value = app
        .ba_get("/api/auth/get-session", &user.cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["name"], "Grace");
}

async fn ba_change_password_rotates_the_token(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let (cookie2, _) = app.ba_sign_in(&user.email, &user.password).await;
    let app = &app;
    let change = |cookie: String, body: Value| async move {
        app.ba_post("/api/auth/change-password", &cookie, &body)
            .await
    };
    assert_ba_error(
        change(
            user.cookie.clone(),
            json!({"currentPassword": "WrongPass123!", "newPassword": "NewSecurePass1!"}),
        )
        .await,
        400,
        "INVALID_PASSWORD",
    )
    .await;
    assert_ba_error(
        change(
            user.cookie.clone(),
            json!({"currentPassword": user.password, "newPassword": "short"}),
        )
        .await,
        400,
        "PASSWORD_TOO_SHORT",
    )
    .await;
    assert_ba_error(
        change(
            user.cookie.clone(),
            json!({"newPassword": "NewSecurePass1!"}),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;

    // Without revokeOtherSessions: the caller's token rotates, others live.
    let res = change(
        user.cookie.clone(),
        json!({"currentPassword": user.password, "newPassword": "NewSecurePass1!"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (new_cookie, _) = session_set_cookie(&res).unwrap();
    assert!(res.headers().contains_key("set-auth-token"));
    let body: Value = res.json().await.unwrap();
    let new_token = body["token"].as_str().unwrap();
    assert_ne!(new_token, user.token);
    assert_eq!(body["user"]["id"], user.id);
    let null = |cookie: String| async move {
        app.ba_get("/api/auth/get-session", &cookie)
            .await
            .json::<Value>()
            .await
            .unwrap()
            .is_null()
    };
    assert!(null(user.cookie.clone()).await, "old token is dead");
    assert!(!null(new_cookie.clone()).await);
    assert!(!null(cookie2.clone()).await, "other session lives");

    // With revokeOtherSessions: every other session ends.
    let res = change(
        new_cookie.clone(),
        json!({"currentPassword": "NewSecurePass1!", "newPassword": "ThirdSecurePass1!", "revokeOtherSessions": true}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (newest, _) = session_set_cookie(&res).unwrap();
    assert!(null(cookie2).await);
    assert!(null(new_cookie).await);
    assert!(!null(newest).await);
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "session" WHERE "userId" = ?"#,
            &[&user.id]
        )
        .await,
        1
    );
    // Only the newest password signs in.
    for (password, status) in [
        (user.password.as_str(), 401),
        ("NewSecurePass1!", 401),
        ("ThirdSecurePass1!", 200),
    ] {
        let res = app
            .post_json(
                "/api/auth/sign-in/email",
                &json!({"email": user.email, "password": password}),
            )
            .await;
        assert_eq!(res.status(), status, "{password}");
    }
}

async fn ba_delete_user_is_off_by_default(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let res = app
        .ba_post(
            "/api/auth/delete-user",
            &user.cookie,
            &json!({"password": user.password}),
        )
        .await;
    assert_ba_error(res, 404, "NOT_FOUND").await;
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 1);
}

async fn ba_delete_user_needs_password_or_fresh_session(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.user.allow_delete = true;
        c.session.cache_ttl = std::time::Duration::ZERO;
    })
    .await;
    let user = app.ba_sign_up().await;
    let (app, cookie) = (&app, &user.cookie);
    let post =
        |body: Value| async move { app.ba_post("/api/auth/delete-user", cookie, &body).await };
    assert_ba_error(
        post(json!({"password": "WrongPass123!"})).await,
        400,
        "INVALID_PASSWORD",
    )
    .await;
    assert_ba_error(
        post(json!({"callbackURL": "https://evil.example/"})).await,
        403,
        "INVALID_CALLBACK_URL",
    )
    .await;
    // An old session without the password is refused.
    let sql = format!(
        r#"UPDATE "session" SET "createdAt" = {} WHERE "userId" = ?"#,
        app.ts_param()
    );
    app.exec(&sql, &[&app.ts_from_now(-2 * 86400), &user.id])
        .await;
    assert_ba_error(post(json!({})).await, 400, "SESSION_EXPIRED").await;
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 1);
    // With the password it goes, with its sessions and accounts.
    let res = post(json!({"password": user.password})).await;
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).unwrap().1.contains("Max-Age=0"));
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"success": true, "message": "User deleted"})
    );
    for table in ["user", "session", "account"] {
        assert_eq!(
            app.count(&format!(r#"SELECT COUNT(*) FROM "{table}""#), &[])
                .await,
            0,
            "{table}"
        );
    }
    let res = app
        .post_json(
            "/api/auth/sign-in/email",
            &json!({"email": user.email, "password": user.password}),
        )
        .await;
    assert_ba_error(res, 401, "INVALID_EMAIL_OR_PASSWORD").await;
    // A fresh session may delete without the password.
    let second = app.ba_sign_up().await;
    let res = app
        .ba_post("/api/auth/delete-user", &second.cookie, &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await, 0);
}

async fn ba_ok_error_page_and_unknown_paths(b: Backend) {
    let app = spawn_app(b).await;
    let res = app.get("/api/auth/ok").send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"ok": true}));
    let res = app
        .get("/api/auth/error?error=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert_ba_error(
        app.get("/api/auth/nope").send().await.unwrap(),
        404,
        "NOT_FOUND",
    )
    .await;
}

backend_tests!(
    ba_sign_up_returns_token_user_and_cookie,
    ba_sign_up_rejects_bad_input,
    ba_sign_in_and_get_session,
    ba_sign_in_failures_do_not_tell_which,
    ba_sign_out_ends_the_session_and_clears_the_cookie,
    ba_list_and_revoke_sessions,
    ba_list_sessions_needs_a_fresh_session,
    ba_update_user,
    ba_change_password_rotates_the_token,
    ba_delete_user_is_off_by_default,
    ba_delete_user_needs_password_or_fresh_session,
    ba_ok_error_page_and_unknown_paths,
);
