//! Cookie sessions: signing, tampering, origin checks (CSRF), redirect
//! targets (no open redirects), "remember me" and cookie refresh.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::backend_tests;
use crate::helpers::{
    assert_ba_error, assert_error, bearer, session_set_cookie, spawn_app, spawn_app_with, Backend,
};

fn url_decode(s: &str) -> String {
    s.replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=")
}

async fn cookie_is_the_token_signed_with_the_server_secret(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let value = url_decode(user.cookie.split_once('=').unwrap().1);
    let (token, signature) = value.rsplit_once('.').unwrap();
    assert_eq!(token, user.token);
    // Computed independently: base64(HMAC-SHA256(secret, token)), as
    // BetterAuth (better-call) signs its cookies.
    let mut mac = Hmac::<Sha256>::new_from_slice(app.server_secret().as_bytes()).unwrap();
    mac.update(token.as_bytes());
    assert_eq!(signature, STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(signature.len(), 44);
    // The signed form (URL-encoded or not) is also a bearer token.
    for t in [value.as_str(), user.cookie.split_once('=').unwrap().1] {
        let res = app.get_as("/api/auth/get-session", t).await;
        assert_eq!(res.json::<Value>().await.unwrap()["user"]["id"], user.id);
    }
}

async fn tampered_cookies_and_signatures_are_rejected(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let victim = app.ba_sign_up().await;
    let value = url_decode(user.cookie.split_once('=').unwrap().1);
    let (token, signature) = value.rsplit_once('.').unwrap();
    let mut flipped = token.to_owned().into_bytes();
    flipped[0] = if flipped[0] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"not the server secret").unwrap();
    mac.update(victim.token.as_bytes());
    let forged = STANDARD.encode(mac.finalize().into_bytes());
    let bad_values = [
        format!("{flipped}.{signature}"),
        // Another user's real token with this user's signature.
        format!("{}.{signature}", victim.token),
        // A real token signed with the wrong key.
        format!("{}.{forged}", victim.token),
        format!("{token}.{}", &signature[..43]),
        format!("{token}."),
        token.to_owned(),
        "garbage".into(),
    ];
    for v in &bad_values {
        let cookie = format!("warden.session_token={v}");
        let res = app.ba_get("/api/auth/get-session", &cookie).await;
        assert_eq!(res.status(), 200);
        let (cleared, attrs) = session_set_cookie(&res).expect("a bad cookie is cleared");
        assert_eq!(cleared, "warden.session_token=");
        assert!(attrs.contains("Max-Age=0"));
        assert_eq!(res.json::<Value>().await.unwrap(), Value::Null, "{v}");
        // The tutorial's endpoints refuse it too.
        let res = app
            .get("/profile")
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_error(res, 401, "unauthenticated").await;
        let res = app.ba_get("/api/auth/list-sessions", &cookie).await;
        assert_ba_error(res, 401, "UNAUTHORIZED").await;
    }
    // A signed bearer token with a bad signature is refused, not treated as raw.
    for v in &bad_values[..5] {
        let res = app.get_as("/profile", v).await;
        assert_error(res, 401, "unauthenticated").await;
    }
    // The real ones still work.
    let res = app.ba_get("/api/auth/get-session", &user.cookie).await;
    assert_eq!(res.json::<Value>().await.unwrap()["user"]["id"], user.id);
}

async fn tutorial_endpoints_accept_the_cookie(b: Backend) {
    let app = spawn_app(b).await;
    // The tutorial's sign-up sets the cookie as well.
    let res = app
        .sign_up_as("tut@example.com", "SecurePass123!", "Tut")
        .await;
    assert_eq!(res.status(), 200);
    let (cookie, _) = session_set_cookie(&res).unwrap();
    let res = app
        .get("/profile")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["email"],
        "tut@example.com"
    );
    let res = app
        .get("/sessions")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A cookie-authenticated change needs a trusted origin.
    let update = json!({"name": "Changed"});
    let res = app
        .put("/profile")
        .header("cookie", &cookie)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_error(res, 403, "permission_denied").await;
    let res = app
        .put("/profile")
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_error(res, 403, "permission_denied").await;
    let res = app
        .put("/profile")
        .header("cookie", &cookie)
        .header("origin", app.origin())
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Sign-out by cookie clears it.
    let res = app
        .post("/auth/signout")
        .header("cookie", &cookie)
        .header("origin", app.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).unwrap().1.contains("Max-Age=0"));
    let res = app
        .get("/profile")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
}

async fn origin_checks_guard_cookie_requests(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.trusted_origins = vec!["https://*.example.com".into()];
    })
    .await;
    let user = app.ba_sign_up().await;
    let update = json!({"name": "Mallory"});
    let send = |origin: Option<&'static str>, referer: Option<&'static str>| {
        let mut r = app
            .post("/api/auth/update-user")
            .header("cookie", &user.cookie)
            .json(&update);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        if let Some(rf) = referer {
            r = r.header("referer", rf);
        }
        r.send()
    };
    assert_ba_error(
        send(None, None).await.unwrap(),
        403,
        "MISSING_OR_NULL_ORIGIN",
    )
    .await;
    assert_ba_error(
        send(Some("null"), None).await.unwrap(),
        403,
        "MISSING_OR_NULL_ORIGIN",
    )
    .await;
    for evil in [
        "https://evil.example",
        "https://example.com.evil.io",
        "http://app.example.com",
        "https://localhost:4000",
    ] {
        let res = app
            .post("/api/auth/update-user")
            .header("cookie", &user.cookie)
            .header("origin", evil)
            .json(&update)
            .send()
            .await
            .unwrap();
        assert_ba_error(res, 403, "INVALID_ORIGIN").await;
    }
    assert_ba_error(
        send(None, Some("https://evil.example/page")).await.unwrap(),
        403,
        "INVALID_ORIGIN",
    )
    .await;
    // Nothing changed.
    let s: Value = app
        .ba_get("/api/auth/get-session", &user.cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["name"], "Ada");
    // Trusted: the base URL's origin, a configured pattern, the CORS
    // credentialed origin (http://localhost:5173 by default), or a Referer
    // on a trusted origin.
    for (origin, referer) in [
        (Some("http://localhost:4000"), None),
        (Some("https://app.example.com"), None),
        (Some("http://localhost:5173"), None),
        (None, Some("http://localhost:4000/settings")),
    ] {
        let res = send(origin, referer).await.unwrap();
        assert_eq!(res.status(), 200, "{origin:?} {referer:?}");
    }
    // Bearer-only clients (no cookie) need no Origin.
    let res = app
        .post("/api/auth/update-user")
        .header("authorization", bearer(&user.token))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // GET requests are not state-changing: no origin needed.
    let res = app.ba_get("/api/auth/list-sessions", &user.cookie).await;
    assert_eq!(res.status(), 200);
}

async fn sign_in_refuses_login_csrf(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let creds = json!({"email": user.email, "password": user.password});
    // An untrusted Origin on sign-in, even without cookies.
    let res = app
        .post("/api/auth/sign-in/email")
        .header("origin", "https://evil.example")
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 403, "INVALID_ORIGIN").await;
    // A cross-site top-level form navigation.
    let res = app
        .post("/api/auth/sign-in/email")
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .form(&[("email", user.email.as_str()), ("password", &user.password)])
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 403, "CROSS_SITE_NAVIGATION_LOGIN_BLOCKED").await;
    let res = app
        .post("/api/auth/sign-up/email")
        .header("origin", "https://evil.example")
        .json(&json!({"name": "E", "email": "e@example.com", "password": "SecurePass123!"}))
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 403, "INVALID_ORIGIN").await;
    assert_eq!(app.users_with_email("e@example.com").await, 0);
    // Same-origin pages and origin-less clients sign in.
    let res = app
        .post("/api/auth/sign-in/email")
        .header("origin", app.origin())
        .json(&creds)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn redirect_targets_must_be_trusted(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    for target in [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "https:evil.example",
        "javascript:alert(1)",
        "http://localhost:4000@evil.example/",
        "https://user:pass@localhost:4000/",
        "ftp://localhost:4000/",
    ] {
        let res = app
            .post_json(
                "/api/auth/sign-in/email",
                &json!({"email": user.email, "password": user.password, "callbackURL": target}),
            )
            .await;
        assert!(res.headers().get("location").is_none());
        assert!(session_set_cookie(&res).is_none(), "{target}: no session");
        assert_ba_error(res, 403, "INVALID_CALLBACK_URL").await;
        let res = app.post_json("/api/auth/sign-up/email", &json!({"name": "R", "email": "r@example.com", "password": "SecurePass123!", "callbackURL": target})).await;
        assert_ba_error(res, 403, "INVALID_CALLBACK_URL").await;
    }
    assert_eq!(app.users_with_email("r@example.com").await, 0);
    for target in [
        "/welcome",
        "http://localhost:4000/home",
        "http://localhost:5173/app",
    ] {
        let res = app
            .post_json(
                "/api/auth/sign-in/email",
                &json!({"email": user.email, "password": user.password, "callbackURL": target}),
            )
            .await;
        assert_eq!(res.status(), 200, "{target}");
        assert_eq!(res.headers()["location"], target);
    }
}

async fn remember_me_off_gives_a_short_browser_session(b: Backend) {
    // update_age 1 s so that refresh would be due almost at once.
    let app = spawn_app_with(b, |c| {
        c.session.update_age = Duration::from_secs(1);
        c.session.cache_ttl = Duration::ZERO;
    })
    .await;
    let user = app.ba_sign_up().await;
    let res = app
        .post_json(
            "/api/auth/sign-in/email",
            &json!({"email": user.email, "password": user.password, "rememberMe": false}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (short_cookie, attrs) = session_set_cookie(&res).unwrap();
    assert!(
        !attrs.contains("Max-Age"),
        "browser-session cookie: {attrs}"
    );
    let session = |cookie: String| {
        let app = &app;
        async move {
            let res = app.ba_get("/api/auth/get-session", &cookie).await;
            let refreshed = session_set_cookie(&res);
            let body: Value = res.json().await.unwrap();
            let expires: chrono::DateTime<chrono::Utc> = body["session"]["expiresAt"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            (expires, refreshed)
        }
    };
    let (short_expiry, _) = session(short_cookie.clone()).await;
    let hours = (short_expiry - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{hours} h");

    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The remembered session is refreshed and its cookie re-issued...
    let (long_expiry, reissued) = session(user.cookie.clone()).await;
    let (cookie, attrs) = reissued.expect("refresh re-issues the cookie");
    assert_eq!(cookie, user.cookie);
    assert!(attrs.contains("Max-Age=604800"), "{attrs}");
    assert!((long_expiry - chrono::Utc::now()).num_hours() >= 167);
    // ...the short one is never extended.
    let (again, reissued) = session(short_cookie).await;
    assert_eq!(again, short_expiry);
    assert!(reissued.is_none());
    // The tutorial's endpoints re-issue a refreshed cookie too.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = app
        .get("/profile")
        .header("cookie", &user.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).is_some());
}

async fn https_base_url_gives_secure_prefixed_cookies(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.base_url = "https://auth.example.com".into();
        c.session.cookie_prefix = "myapp".into();
    })
    .await;
    let res = app
        .post_json(
            "/api/auth/sign-up/email",
            &json!({"name": "S", "email": "s@example.com", "password": "SecurePass123!"}),
        )
        .await;
    let (cookie, attrs) = session_set_cookie(&res).unwrap();
    assert!(
        cookie.starts_with("__Secure-myapp.session_token="),
        "{cookie}"
    );
    assert!(attrs.contains("Secure"), "{attrs}");
    // The plain name is not read when cookies are secure.
    let plain = cookie.replace("__Secure-", "");
    let res = app.ba_get("/api/auth/get-session", &plain).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
    let res = app.ba_get("/api/auth/get-session", &cookie).await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["user"]["email"],
        "s@example.com"
    );
    let res = app
        .post("/api/auth/sign-out")
        .header("cookie", &cookie)
        .header("origin", "https://auth.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

async fn base_path_is_configurable(b: Backend) {
    let app = spawn_app_with(b, |c| c.betterauth.base_path = "/identity/v1".into()).await;
    let res = app.get("/identity/v1/ok").send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"ok": true}));
    let res = app.get("/api/auth/ok").send().await.unwrap();
    assert_eq!(res.status(), 404);
    let doc: Value = app
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"].get("/identity/v1/sign-in/email").is_some());
    assert!(doc["paths"].get("/api/auth/sign-in/email").is_none());
    // Origin rules follow the base path.
    let res = app
        .post("/identity/v1/sign-in/email")
        .header("origin", "https://evil.example")
        .json(&json!({"email": "a@example.com", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 403, "INVALID_ORIGIN").await;

    let off = spawn_app_with(b, |c| c.betterauth.enabled = false).await;
    let res = off.get("/api/auth/ok").send().await.unwrap();
    assert_eq!(res.status(), 404);
}

backend_tests!(
    cookie_is_the_token_signed_with_the_server_secret,
    tampered_cookies_and_signatures_are_rejected,
    tutorial_endpoints_accept_the_cookie,
    origin_checks_guard_cookie_requests,
    sign_in_refuses_login_csrf,
    redirect_targets_must_be_trusted,
    remember_me_off_gives_a_short_browser_session,
    https_base_url_gives_secure_prefixed_cookies,
    base_path_is_configurable,
);
