//! Magic links and one-time codes by email (BetterAuth's `magicLink` and
//! `emailOTP` plugins, and the tutorial API's `/auth/magic-link*` and
//! `/auth/email-otp/*`), through HTTP only. Mail is read from the
//! development outbox, through the dashboard's `/api/outbox`.

use std::time::{Duration, Instant};

use reqwest::Response;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    assert_ba_error, assert_error, captured_logs, spawn_app_with, spawn_app_with_clock, Backend,
    TestApp,
};

const BASE: &str = "http://localhost:4000";

/// A server with magic links and email codes on, whose clock stands still.
pub(crate) async fn app(b: Backend, tweak: impl FnOnce(&mut warden::Config)) -> TestApp {
    spawn_app_with_clock(b, |c| {
        c.magic_link.enabled = true;
        c.email_otp.enabled = true;
        c.session.cache_ttl = Duration::ZERO;
        tweak(c);
    })
    .await
}

pub(crate) fn unique_email(tag: &str) -> String {
    format!(
        "{tag}-{}@example.com",
        warden_core::token::random_string(8).to_lowercase()
    )
}

pub(crate) fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The outbox's messages to `to`, newest first.
pub(crate) async fn mails_to(app: &TestApp, to: &str) -> Vec<Value> {
    let d = app
        .dashboard
        .clone()
        .expect("the test app serves a dashboard");
    let list: Value = app
        .client
        .get(format!("{d}/api/outbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["to"] == to)
        .cloned()
        .collect()
}

/// Waits for the `n`th message to `to` and returns it.
pub(crate) async fn nth_mail(app: &TestApp, to: &str, n: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mails = mails_to(app, to).await;
        if mails.len() >= n {
            return mails[mails.len() - n].clone();
        }
        assert!(Instant::now() < deadline, "no mail #{n} to {to}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that no more than `n` messages went to `to` (after a pause
/// long enough for the background sending).
pub(crate) async fn assert_mail_count(app: &TestApp, to: &str, n: usize) {
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(mails_to(app, to).await.len(), n, "mails to {to}");
}

/// The code of the `n`th message to `to`, from the outbox's `code` field
/// (and the same as in the text).
pub(crate) async fn nth_code(app: &TestApp, to: &str, n: usize) -> String {
    let mail = nth_mail(app, to, n).await;
    let code = mail["code"]
        .as_str()
        .expect("the mail carries a code")
        .to_owned();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{code}"
    );
    assert!(mail["text"].as_str().unwrap().contains(&code));
    code
}

/// A well-formed code that is not `code`.
pub(crate) fn other_code(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// The path (on the server) of the `n`th link mailed to `to`.
async fn nth_link(app: &TestApp, to: &str, n: usize) -> String {
    let mail = nth_mail(app, to, n).await;
    let link = mail["links"][0].as_str().expect("a link").to_owned();
    link.strip_prefix(BASE)
        .expect("links point at base_url")
        .to_owned()
}

/// `name=value` of each cookie a response sets (not the ones it clears).
pub(crate) fn cookies_set(res: &Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|c| !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().trim().to_owned())
        .collect()
}

pub(crate) fn cookie_named(res: &Response, name: &str) -> Option<String> {
    cookies_set(res)
        .into_iter()
        .find(|c| c.starts_with(&format!("warden.{name}=")))
}

pub(crate) async fn ba(app: &TestApp, path: &str, cookie: Option<&str>, body: Value) -> Response {
    let mut r = app
        .post(&format!("/api/auth{path}"))
        .header("origin", app.origin())
        .json(&body);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().await.unwrap()
}

pub(crate) async fn get_session(app: &TestApp, cookie: &str) -> Value {
    app.get("/api/auth/get-session")
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Follows a link without following its redirect.
async fn follow(app: &TestApp, path: &str) -> Response {
    no_redirects().get(app.url(path)).send().await.unwrap()
}

fn location(res: &Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// Magic links

async fn magic_link_signs_up_signs_in_and_works_once(b: Backend) {
    let app = app(b, |_| {}).await;
    let email = unique_email("ml");
    let res = ba(
        &app,
        "/sign-in/magic-link",
        None,
        json!({"email": email, "name": "Mia", "callbackURL": "/dashboard", "newUserCallbackURL": "/welcome"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let mail = nth_mail(&app, &email, 1).await;
    assert!(mail["subject"].as_str().unwrap().contains("Sign in"));
    let path = nth_link(&app, &email, 1).await;
    assert!(
        path.starts_with("/api/auth/magic-link/verify?token="),
        "{path}"
    );
    let token = path
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(token.len() >= 32, "at least 128 random bits");
    // Stored as a hash only.
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "verification" WHERE "identifier" LIKE ? OR "value" LIKE ?"#,
            &[&format!("%{token}%"), &format!("%{token}%")]
        )
        .await,
        0
    );

    let res = follow(&app, &path).await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        location(&res),
        "/welcome",
        "a new user goes to newUserCallbackURL"
    );
    let cookie = cookie_named(&res, "session_token").expect("a session cookie");
    let s = get_session(&app, &cookie).await;
    assert_eq!(s["user"]["email"], email.as_str());
    assert_eq!(s["user"]["name"], "Mia");
    assert_eq!(s["user"]["emailVerified"], true);

    // Replay: the link worked once.
    let res = follow(&app, &path).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/dashboard?error=INVALID_TOKEN");
    assert!(cookie_named(&res, "session_token").is_none());

    // An existing user goes to callbackURL; errors to errorCallbackURL.
    ba(
        &app,
        "/sign-in/magic-link",
        None,
        json!({"email": email, "callbackURL": "/dashboard", "errorCallbackURL": "/oops"}),
    )
    .await;
    let path = nth_link(&app, &email, 2).await;
    let res = follow(&app, &path).await;
    assert_eq!(location(&res), "/dashboard");
    assert!(cookie_named(&res, "session_token").is_some());
    let res = follow(&app, &path).await;
    assert_eq!(location(&res), "/oops?error=INVALID_TOKEN");
    assert_eq!(app.users_with_email(&email).await, 1);

    // Without callbackURL (magicLink.verify({query: {token}})): JSON.
    ba(&app, "/sign-in/magic-link", None, json!({"email": email})).await;
    let path = nth_link(&app, &email, 3).await;
    let token = path
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let res = app
        .get(&format!("/api/auth/magic-link/verify?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(cookie_named(&res, "session_token").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email.as_str());
    assert!(body["token"].as_str().unwrap().len() >= 32);
    assert_eq!(body["session"]["userId"], body["user"]["id"]);
}

async fn magic_link_expires_and_refuses_bad_input(b: Backend) {
    let app = app(b, |_| {}).await;
    let email = unique_email("mlx");
    ba(
        &app,
        "/sign-in/magic-link",
        None,
        json!({"email": email, "callbackURL": "/in"}),
    )
    .await;
    let path = nth_link(&app, &email, 1).await;
    app.clock.advance(Duration::from_secs(301));
    let res = follow(&app, &path).await;
    assert_eq!(
        location(&res),
        "/in?error=INVALID_TOKEN",
        "expired after 5 minutes"
    );
    assert_eq!(app.users_with_email(&email).await, 0);

    // Untrusted redirect targets, before anything else (no mail).
    let other = unique_email("mlu");
    for (field, code) in [
        ("callbackURL", "INVALID_CALLBACK_URL"),
        ("newUserCallbackURL", "INVALID_NEW_USER_CALLBACK_URL"),
        ("errorCallbackURL", "INVALID_ERROR_CALLBACK_URL"),
    ] {
        let res = ba(
            &app,
            "/sign-in/magic-link",
            None,
            json!({"email": other, field: "https://evil.example/x"}),
        )
        .await;
        assert_ba_error(res, 403, code).await;
        let res = app
            .get(&format!(
                "/api/auth/magic-link/verify?token=abc&{field}=https%3A%2F%2Fevil.example%2F"
            ))
            .send()
            .await
            .unwrap();
        assert_ba_error(res, 403, code).await;
    }
    assert_mail_count(&app, &other, 0).await;

    let res = ba(&app, "/sign-in/magic-link", None, json!({"email": "nope"})).await;
    assert_ba_error(res, 400, "INVALID_EMAIL").await;
    let res = ba(&app, "/sign-in/magic-link", None, json!({"name": "x"})).await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("email"), "{msg}");
    let res = app.get("/api/auth/magic-link/verify").send().await.unwrap();
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("token"), "{msg}");
    // An unknown token without callbackURL: redirected to `/` as BetterAuth.
    let res = follow(&app, "/api/auth/magic-link/verify?token=not-a-token").await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/?error=INVALID_TOKEN");
}

async fn features_off_answer_404(b: Backend) {
    let app = spawn_app_with(b, |_| {}).await;
    for path in [
        "/sign-in/magic-link",
        "/email-otp/send-verification-otp",
        "/email-otp/check-verification-otp",
        "/email-otp/verify-email",
        "/sign-in/email-otp",
        "/email-otp/request-password-reset",
        "/forget-password/email-otp",
        "/email-otp/reset-password",
        "/email-otp/request-email-change",
        "/email-otp/change-email",
    ] {
        // Before the body is read (and the session): even an empty one is 404.
        let res = ba(&app, path, None, json!({})).await;
        assert_ba_error(res, 404, "NOT_FOUND").await;
    }
    let res = app
        .get("/api/auth/magic-link/verify?token=x")
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 404, "NOT_FOUND").await;
    for path in [
        "/auth/magic-link",
        "/auth/email-otp/send",
        "/auth/email-otp/signin",
        "/auth/email-otp/verify-email",
        "/auth/email-otp/check",
        "/auth/email-otp/reset-password",
        "/auth/email-otp/request-email-change",
        "/auth/email-otp/change-email",
    ] {
        let res = app.post_json(path, &json!({})).await;
        assert_error(res, 404, "not_found").await;
    }
    let res = app
        .get("/auth/magic-link/verify?token=x")
        .send()
        .await
        .unwrap();
    assert_error(res, 404, "not_found").await;
    // Two-factor by email off: BetterAuth's answer without `sendOTP`.
    let u = app.ba_sign_up().await;
    let res = ba(&app, "/two-factor/send-otp", Some(&u.cookie), json!({})).await;
    assert_ba_error(res, 400, "OTP_NOT_CONFIGURED").await;
    let res = ba(
        &app,
        "/two-factor/enable",
        Some(&u.cookie),
        json!({"password": u.password, "method": "otp"}),
    )
    .await;
    assert_ba_error(res, 400, "OTP_NOT_CONFIGURED").await;
}

async fn sign_up_can_be_disabled(b: Backend) {
    let app = app(b, |c| {
        c.magic_link.disable_sign_up = true;
        c.email_otp.disable_sign_up = true;
    })
    .await;
    let unknown = unique_email("nosignup");
    let res = ba(&app, "/sign-in/magic-link", None, json!({"email": unknown})).await;
    assert_eq!(res.status(), 200, "the same answer");
    let res = ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": unknown, "type": "sign-in"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_mail_count(&app, &unknown, 0).await;
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": unknown, "otp": "123456"}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_OTP").await;
    assert_eq!(app.users_with_email(&unknown).await, 0);

    // Known users still sign in both ways.
    let u = app.ba_sign_up().await;
    app.exec(
        r#"UPDATE "user" SET "emailVerified" = TRUE WHERE "id" = ?"#,
        &[&u.id],
    )
    .await;
    ba(
        &app,
        "/sign-in/magic-link",
        None,
        json!({"email": u.email, "callbackURL": "/x"}),
    )
    .await;
    let path = nth_link(&app, &u.email, 1).await;
    let res = follow(&app, &path).await;
    assert_eq!(location(&res), "/x");
    assert!(cookie_named(&res, "session_token").is_some());
    ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": u.email, "type": "sign-in"}),
    )
    .await;
    let code = nth_code(&app, &u.email, 2).await;
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": u.email, "otp": code}),
    )
    .await;
    assert_eq!(res.status(), 200);
}

// ---------------------------------------------------------------------------
// Email one-time codes

async fn email_codes_sign_in_verify_and_reset(b: Backend) {
    let app = app(b, |c| c.email_otp.per_email_max = 10).await;
    // Sign-in (and sign-up) by code.
    let email = unique_email("otp");
    let res = ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": email.to_uppercase(), "type": "sign-in"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let code = nth_code(&app, &email, 1).await;
    // Stored as a keyed hash, never in clear.
    let stored = app
        .fetch_text(
            r#"SELECT "value" FROM "verification" WHERE "identifier" = ?"#,
            &[&format!("email-otp:sign-in:{email}")],
        )
        .await
        .expect("a stored code");
    assert!(!stored.contains(&code), "{stored}");
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": code, "name": "Otto"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let cookie = cookie_named(&res, "session_token").expect("a session cookie");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email.as_str());
    assert_eq!(body["user"]["name"], "Otto");
    assert_eq!(body["user"]["emailVerified"], true);
    assert_eq!(
        get_session(&app, &cookie).await["user"]["email"],
        email.as_str()
    );
    // Replay.
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": code}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_OTP").await;

    // Email verification of a password user.
    let u = app.ba_sign_up().await;
    ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": u.email, "type": "email-verification"}),
    )
    .await;
    let code = nth_code(&app, &u.email, 1).await;
    assert!(nth_mail(&app, &u.email, 1).await["subject"]
        .as_str()
        .unwrap()
        .contains("verification code"));
    let res = ba(
        &app,
        "/email-otp/check-verification-otp",
        None,
        json!({"email": u.email, "type": "email-verification", "otp": code}),
    )
    .await;
    assert_eq!(res.status(), 200, "check keeps the code");
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let res = ba(
        &app,
        "/email-otp/verify-email",
        None,
        json!({"email": u.email, "otp": code}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], true);
    assert_eq!(body["token"], Value::Null);
    assert_eq!(body["user"]["emailVerified"], true);
    let res = ba(
        &app,
        "/email-otp/verify-email",
        None,
        json!({"email": u.email, "otp": code}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_OTP").await;

    // Password reset by code.
    let res = ba(
        &app,
        "/email-otp/request-password-reset",
        None,
        json!({"email": u.email}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let code = nth_code(&app, &u.email, 2).await;
    let res = ba(
        &app,
        "/email-otp/reset-password",
        None,
        json!({"email": u.email, "otp": code, "password": "short"}),
    )
    .await;
    assert_ba_error(res, 400, "PASSWORD_TOO_SHORT").await;
    let res = ba(
        &app,
        "/email-otp/reset-password",
        None,
        json!({"email": u.email, "otp": code, "password": "Brand-New-Pass-42"}),
    )
    .await;
    assert_eq!(
        res.status(),
        200,
        "a refused password did not burn the code"
    );
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    assert!(
        get_session(&app, &u.cookie).await.is_null(),
        "sessions ended"
    );
    let res = ba(
        &app,
        "/sign-in/email",
        None,
        json!({"email": u.email, "password": "Brand-New-Pass-42"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    // The deprecated route mails a reset code too.
    let res = ba(
        &app,
        "/forget-password/email-otp",
        None,
        json!({"email": u.email}),
    )
    .await;
    assert_eq!(res.status(), 200);
    nth_code(&app, &u.email, 4).await;

    // Bad input names the problem.
    let res = ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": email, "type": "change-email"}),
    )
    .await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("type"), "{msg}");
    let res = ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": "bad", "type": "sign-in"}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_EMAIL").await;
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": "12ab"}),
    )
    .await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("otp"), "{msg}");
    let res = ba(&app, "/sign-in/email-otp", None, json!({"email": email})).await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("otp"), "{msg}");
    // A right code for an email nobody has: safe to tell.
    let stranger = unique_email("stranger");
    ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": stranger, "type": "sign-in"}),
    )
    .await;
    let code = nth_code(&app, &stranger, 1).await;
    let res = ba(
        &app,
        "/email-otp/check-verification-otp",
        None,
        json!({"email": stranger, "type": "sign-in", "otp": code}),
    )
    .await;
    assert_ba_error(res, 400, "USER_NOT_FOUND").await;
}

async fn codes_expire_and_die_after_the_allowed_attempts(b: Backend) {
    let app = app(b, |_| {}).await;
    let email = unique_email("tries");
    let send = |email: String| {
        let app = &app;
        async move {
            ba(
                app,
                "/email-otp/send-verification-otp",
                None,
                json!({"email": email, "type": "sign-in"}),
            )
            .await
        }
    };
    send(email.clone()).await;
    let code = nth_code(&app, &email, 1).await;
    let wrong = other_code(&code);
    for _ in 0..3 {
        let res = ba(
            &app,
            "/sign-in/email-otp",
            None,
            json!({"email": email, "otp": wrong}),
        )
        .await;
        assert_ba_error(res, 400, "INVALID_OTP").await;
    }
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": code}),
    )
    .await;
    assert_ba_error(res, 403, "TOO_MANY_ATTEMPTS").await;
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": code}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_OTP").await;
    assert_eq!(app.users_with_email(&email).await, 0);

    // Expiry under the mock clock.
    send(email.clone()).await;
    let code = nth_code(&app, &email, 2).await;
    app.clock.advance(Duration::from_secs(301));
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": code}),
    )
    .await;
    assert_ba_error(res, 400, "OTP_EXPIRED").await;

    // A new code replaces the old one.
    let email = unique_email("again");
    send(email.clone()).await;
    let old = nth_code(&app, &email, 1).await;
    send(email.clone()).await;
    let new = nth_code(&app, &email, 2).await;
    if old != new {
        let res = ba(
            &app,
            "/sign-in/email-otp",
            None,
            json!({"email": email, "otp": old}),
        )
        .await;
        assert_ba_error(res, 400, "INVALID_OTP").await;
    }
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": new}),
    )
    .await;
    assert_eq!(res.status(), 200);
    // The per-address budget (3 a minute): the same answer, no mail.
    send(email.clone()).await;
    let res = send(email.clone()).await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    assert_mail_count(&app, &email, 3).await;
}

/// Many wrong guesses at once never compare more than `allowed_attempts`
/// times: the counter in the row never passes the limit.
async fn concurrent_guesses_never_exceed_the_limit(b: Backend) {
    let app = app(b, |_| {}).await;
    let email = unique_email("race");
    ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": email, "type": "sign-in"}),
    )
    .await;
    let code = nth_code(&app, &email, 1).await;
    let wrong = other_code(&code);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (client, url, origin) = (
            app.client.clone(),
            app.url("/api/auth/sign-in/email-otp"),
            app.origin().to_owned(),
        );
        let body = json!({"email": email, "otp": wrong});
        tasks.spawn(async move {
            client
                .post(url)
                .header("origin", origin)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = tasks.join_all().await;
    assert!(
        statuses.iter().all(|s| *s == 400 || *s == 403),
        "{statuses:?}"
    );
    let attempts = app
        .fetch_text(
            r#"SELECT "value" FROM "verification" WHERE "identifier" = ?"#,
            &[&format!("email-otp:sign-in:{email}")],
        )
        .await
        .map(|v| v.rsplit(':').next().unwrap().parse::<u64>().unwrap());
    assert!(attempts.unwrap_or(3) <= 3, "{attempts:?}");
    // Whatever the interleaving, the right code cannot outlive 3 wrong ones.
    let mut compared = attempts.unwrap_or(3);
    while compared < 3 {
        let res = ba(
            &app,
            "/sign-in/email-otp",
            None,
            json!({"email": email, "otp": wrong}),
        )
        .await;
        assert_ba_error(res, 400, "INVALID_OTP").await;
        compared += 1;
    }
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": code}),
    )
    .await;
    assert_ne!(res.status(), 200);
}

/// Known and unknown emails get the same answers, in comparable time.
async fn no_enumeration_by_answer_or_timing(b: Backend) {
    let _heavy = crate::helpers::HEAVY.lock().await;
    let app = app(b, |c| {
        c.email_otp.per_email_max = 1000;
        c.magic_link.per_email_max = 1000;
    })
    .await;
    let known = app.ba_sign_up().await.email;
    let unknown = unique_email("ghost");
    let requests: [(&str, Value); 4] = [
        ("/sign-in/magic-link", json!({"callbackURL": "/"})),
        (
            "/email-otp/send-verification-otp",
            json!({"type": "sign-in"}),
        ),
        (
            "/email-otp/send-verification-otp",
            json!({"type": "forget-password"}),
        ),
        ("/email-otp/request-password-reset", json!({})),
    ];
    for (path, extra) in &requests {
        let mut answers = vec![];
        for email in [&known, &unknown] {
            let mut body = extra.clone();
            body["email"] = json!(email);
            let res = ba(&app, path, None, body).await;
            answers.push((res.status(), res.json::<Value>().await.unwrap()));
        }
        assert_eq!(answers[0], answers[1], "{path}");
    }
    // Timing: the lookup happens after the answer, so both take as long.
    let mut median = vec![];
    for email in [&known, &unknown] {
        let mut times = vec![];
        for _ in 0..15 {
            let t = Instant::now();
            let res = ba(
                &app,
                "/email-otp/send-verification-otp",
                None,
                json!({"email": email, "type": "forget-password"}),
            )
            .await;
            assert_eq!(res.status(), 200);
            times.push(t.elapsed());
        }
        times.sort();
        median.push(times[times.len() / 2]);
    }
    let (a, b) = (median[0].as_secs_f64(), median[1].as_secs_f64());
    assert!(
        (a - b).abs() < 0.02 || a.max(b) / a.min(b) < 2.0,
        "medians {median:?}"
    );
}

async fn outbox_log_line_carries_the_code(b: Backend) {
    let app = app(b, |_| {}).await;
    let email = unique_email("logline");
    ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": email, "type": "sign-in"}),
    )
    .await;
    let code = nth_code(&app, &email, 1).await;
    let logs = captured_logs();
    let line = logs
        .lines()
        .find(|l| l.contains("development outbox") && l.contains(&email))
        .expect("the outbox logged the mail");
    assert!(line.contains(&format!("\"code\":\"{code}\"")), "{line}");
    assert!(line.contains("\"links\""), "{line}");
}

/// With SMTP (production's transport), no log line holds a magic-link
/// token or an emailed code: the development outbox is the only place that
/// logs them. Tokens are registered secrets (the suite fails on any log line
/// holding one); a 6-digit code is too short for that, so the lines are
/// searched for it as a field's value.
async fn with_smtp_no_link_or_code_in_the_logs(b: Backend) {
    let (app, sink) = crate::mail_sink::spawn_app_with_sink(b, |c| {
        c.magic_link.enabled = true;
        c.email_otp.enabled = true;
    })
    .await;
    let email = unique_email("smtp");
    let res = ba(
        &app,
        "/sign-in/magic-link",
        None,
        json!({"email": email, "callbackURL": "/home"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let mails = sink.wait_for(&email, 1, Duration::from_secs(10)).await;
    let link = mails[0]
        .links()
        .into_iter()
        .find(|l| l.contains("/magic-link/verify?token="))
        .unwrap_or_else(|| panic!("no magic link in: {}", mails[0].text));
    let token = link
        .split("token=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    crate::helpers::remember_secret(&token);
    crate::helpers::remember_secret(&link);
    let path = link.strip_prefix(BASE).expect("links point at base_url");
    let res = follow(&app, path).await;
    assert_eq!(location(&res), "/home");
    assert!(cookie_named(&res, "session_token").is_some());

    let mut codes = Vec::new();
    for (n, kind) in [(2, "sign-in"), (3, "forget-password")] {
        let res = ba(
            &app,
            "/email-otp/send-verification-otp",
            None,
            json!({"email": email, "type": kind}),
        )
        .await;
        assert_eq!(res.status(), 200);
        let mails = sink.wait_for(&email, n, Duration::from_secs(10)).await;
        let text = &mails[n - 1].text;
        let code: String = text
            .split(|c: char| !c.is_ascii_digit())
            .find(|w| w.len() == 6)
            .unwrap_or_else(|| panic!("no 6-digit code in: {text}"))
            .to_owned();
        assert!(
            !mails[n - 1].subject.contains(&code),
            "a code in a subject: {}",
            mails[n - 1].subject
        );
        codes.push(code);
    }
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": email, "otp": codes[0]}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = ba(
        &app,
        "/email-otp/reset-password",
        None,
        json!({"email": email, "otp": codes[1], "password": "A-New-Password-77"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    crate::helpers::remember_secret("A-New-Password-77");

    let logs = captured_logs();
    for code in &codes {
        for pattern in [
            format!("code={code}"),
            format!("\"code\":\"{code}\""),
            format!("otp={code}"),
            format!("\"otp\":\"{code}\""),
            format!("{code}\""),
        ] {
            assert!(
                !logs.lines().any(|l| l.contains(&pattern)),
                "a mailed code in the log ({pattern})"
            );
        }
    }
    let leaks = crate::helpers::leaked_secrets();
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

// ---------------------------------------------------------------------------
// The unverified-account trap

/// Someone registered the victim's address first, with a password (and
/// two-factor). When the owner proves the address by code or link, what
/// the pre-registrant attached is removed: password, sessions, two-factor.
async fn proving_the_email_claims_an_unverified_account(b: Backend) {
    let app = app(b, |c| c.two_factor.email_otp = true).await;
    for by_link in [false, true] {
        let squatter = app.ba_sign_up().await; // unverified
        let res = ba(
            &app,
            "/two-factor/enable",
            Some(&squatter.cookie),
            json!({"password": squatter.password, "method": "otp"}),
        )
        .await;
        assert_eq!(res.status(), 200);
        let squatter_cookie =
            cookie_named(&res, "session_token").unwrap_or(squatter.cookie.clone());
        assert_eq!(res.json::<Value>().await.unwrap()["method"], "otp");
        let owner_cookie = if by_link {
            ba(
                &app,
                "/sign-in/magic-link",
                None,
                json!({"email": squatter.email, "callbackURL": "/home"}),
            )
            .await;
            let path = nth_link(&app, &squatter.email, 1).await;
            let res = follow(&app, &path).await;
            assert_eq!(
                location(&res),
                "/home",
                "no challenge: the two-factor was not the owner's"
            );
            cookie_named(&res, "session_token").unwrap()
        } else {
            ba(
                &app,
                "/email-otp/send-verification-otp",
                None,
                json!({"email": squatter.email, "type": "sign-in"}),
            )
            .await;
            let code = nth_code(&app, &squatter.email, 1).await;
            let res = ba(
                &app,
                "/sign-in/email-otp",
                None,
                json!({"email": squatter.email, "otp": code}),
            )
            .await;
            assert_eq!(res.status(), 200);
            cookie_named(&res, "session_token").unwrap()
        };
        let s = get_session(&app, &owner_cookie).await;
        assert_eq!(s["user"]["id"], squatter.id.as_str(), "the same user row");
        assert_eq!(s["user"]["emailVerified"], true);
        assert_eq!(s["user"]["twoFactorEnabled"], false);
        assert!(get_session(&app, &squatter_cookie).await.is_null());
        let res = ba(
            &app,
            "/sign-in/email",
            None,
            json!({"email": squatter.email, "password": squatter.password}),
        )
        .await;
        assert_ba_error(res, 401, "INVALID_EMAIL_OR_PASSWORD").await;
        assert_eq!(
            app.count(
                r#"SELECT COUNT(*) FROM "account" WHERE "userId" = ?"#,
                &[&squatter.id]
            )
            .await,
            0
        );
        // A verified user keeps everything.
        let res = ba(
            &app,
            "/email-otp/send-verification-otp",
            None,
            json!({"email": squatter.email, "type": "sign-in"}),
        )
        .await;
        assert_eq!(res.status(), 200);
        let code = nth_code(&app, &squatter.email, 2).await;
        let res = ba(
            &app,
            "/sign-in/email-otp",
            None,
            json!({"email": squatter.email, "otp": code}),
        )
        .await;
        assert_eq!(res.status(), 200);
        assert!(!get_session(&app, &owner_cookie).await.is_null(), "kept");
    }
}

// ---------------------------------------------------------------------------
// Two-factor after a passwordless sign-in

async fn two_factor_user(app: &TestApp) -> crate::helpers::BaUser {
    let u = app.ba_sign_up().await;
    app.exec(
        r#"UPDATE "user" SET "emailVerified" = TRUE WHERE "id" = ?"#,
        &[&u.id],
    )
    .await;
    let res = ba(
        app,
        "/two-factor/enable",
        Some(&u.cookie),
        json!({"password": u.password, "method": "otp"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    u
}

async fn passwordless_sign_in_keeps_the_two_factor_challenge(b: Backend) {
    let app = app(b, |c| {
        c.two_factor.email_otp = true;
        c.email_otp.per_email_max = 10;
    })
    .await;
    let u = two_factor_user(&app).await;

    // By code: answered as a password sign-in with two-factor.
    ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": u.email, "type": "sign-in"}),
    )
    .await;
    let code = nth_code(&app, &u.email, 1).await;
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": u.email, "otp": code}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(cookie_named(&res, "session_token").is_none());
    let challenge = cookie_named(&res, "two_factor").expect("the challenge cookie");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"twoFactorRedirect": true, "twoFactorMethods": ["otp"]})
    );
    let res = ba(&app, "/two-factor/send-otp", Some(&challenge), json!({})).await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let second = nth_code(&app, &u.email, 2).await;
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&challenge),
        json!({"code": second}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(cookie_named(&res, "session_token").is_some());

    // By link: the challenge cookie and twoFactorRedirect=true, no session.
    ba(
        &app,
        "/sign-in/magic-link",
        None,
        json!({"email": u.email, "callbackURL": "/app?x=1"}),
    )
    .await;
    let path = nth_link(&app, &u.email, 3).await;
    let res = follow(&app, &path).await;
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "/app?x=1&twoFactorRedirect=true");
    assert!(cookie_named(&res, "session_token").is_none());
    let challenge = cookie_named(&res, "two_factor").expect("the challenge cookie");
    ba(&app, "/two-factor/send-otp", Some(&challenge), json!({})).await;
    let second = nth_code(&app, &u.email, 4).await;
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&challenge),
        json!({"code": second}),
    )
    .await;
    assert_eq!(res.status(), 200);
}

async fn passwordless_challenge_off_is_betterauths_behaviour(b: Backend) {
    let app = app(b, |c| {
        c.two_factor.email_otp = true;
        c.two_factor.passwordless_challenge = false;
    })
    .await;
    let u = two_factor_user(&app).await;
    ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": u.email, "type": "sign-in"}),
    )
    .await;
    let code = nth_code(&app, &u.email, 1).await;
    let res = ba(
        &app,
        "/sign-in/email-otp",
        None,
        json!({"email": u.email, "otp": code}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        cookie_named(&res, "session_token").is_some(),
        "no challenge"
    );
    assert!(res.json::<Value>().await.unwrap()["token"].is_string());
    ba(
        &app,
        "/sign-in/magic-link",
        None,
        json!({"email": u.email, "callbackURL": "/app"}),
    )
    .await;
    let path = nth_link(&app, &u.email, 2).await;
    let res = follow(&app, &path).await;
    assert_eq!(location(&res), "/app");
    assert!(cookie_named(&res, "session_token").is_some());
    assert!(cookie_named(&res, "two_factor").is_none());
}

// ---------------------------------------------------------------------------
// The tutorial API

async fn tutorial_api_passwordless(b: Backend) {
    let app = app(b, |c| c.email_otp.per_email_max = 10).await;
    let email = unique_email("tut");
    // Magic link, answered as /auth/signin when there is no callbackURL.
    let res = app
        .post_json("/auth/magic-link", &json!({"email": email, "name": "Tia"}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let path = nth_link(&app, &email, 1).await;
    assert!(path.starts_with("/auth/magic-link/verify?token="), "{path}");
    let res = app.get(&path).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], email.as_str());
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_json_as("/profile", &token).await["email"],
        email.as_str()
    );
    let res = app.get(&path).send().await.unwrap();
    assert_error(res, 400, "invalid_argument").await;
    // With callbackURL: a redirect.
    app.post_json(
        "/auth/magic-link",
        &json!({"email": email, "callbackURL": "/home", "errorCallbackURL": "/err"}),
    )
    .await;
    let path = nth_link(&app, &email, 2).await;
    let res = follow(&app, &path).await;
    assert_eq!(location(&res), "/home");
    assert!(cookie_named(&res, "session_token").is_some());
    assert_eq!(
        location(&follow(&app, &path).await),
        "/err?error=INVALID_TOKEN"
    );
    let res = app
        .post_json(
            "/auth/magic-link",
            &json!({"email": email, "callbackURL": "https://evil.example"}),
        )
        .await;
    let msg = assert_error(res, 403, "permission_denied").await;
    assert!(msg.contains("callbackURL"), "{msg}");
    let res = app
        .post_json("/auth/magic-link", &json!({"email": "x"}))
        .await;
    let msg = assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("email"), "{msg}");

    // Codes.
    let res = app
        .post_json(
            "/auth/email-otp/send",
            &json!({"email": email, "type": "sign-in"}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let code = nth_code(&app, &email, 3).await;
    let res = app
        .post_json(
            "/auth/email-otp/check",
            &json!({"email": email, "type": "sign-in", "otp": code}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .post_json(
            "/auth/email-otp/signin",
            &json!({"email": email, "otp": code}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.json::<Value>().await.unwrap()["session"]["token"].is_string());
    let res = app
        .post_json(
            "/auth/email-otp/signin",
            &json!({"email": email, "otp": code}),
        )
        .await;
    let msg = assert_error(res, 401, "unauthenticated").await;
    assert!(msg.contains("otp"), "{msg}");
    let res = app
        .post_json(
            "/auth/email-otp/send",
            &json!({"email": email, "type": "nope"}),
        )
        .await;
    let msg = assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("type"), "{msg}");

    let u = app.new_user().await;
    app.post_json(
        "/auth/email-otp/send",
        &json!({"email": u.email, "type": "email-verification"}),
    )
    .await;
    let code = nth_code(&app, &u.email, 1).await;
    let res = app
        .post_json(
            "/auth/email-otp/verify-email",
            &json!({"email": u.email, "otp": code}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["email"], u.email.as_str());
    app.post_json(
        "/auth/email-otp/send",
        &json!({"email": u.email, "type": "forget-password"}),
    )
    .await;
    let code = nth_code(&app, &u.email, 2).await;
    let res = app
        .post_json(
            "/auth/email-otp/reset-password",
            &json!({"email": u.email, "otp": code, "newPassword": "Another-Good-Pass-7"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app.sign_in_as(&u.email, "Another-Good-Pass-7").await;
    assert_eq!(res.status(), 200);
    let res = app
        .post_json(
            "/auth/email-otp/reset-password",
            &json!({"email": u.email, "otp": code}),
        )
        .await;
    let msg = assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("newPassword"), "{msg}");
}

// ---------------------------------------------------------------------------
// Email change by code

async fn email_change_by_code(b: Backend) {
    // Off by default, as BetterAuth's `changeEmail.enabled`.
    let app = app(b, |_| {}).await;
    let u = app.ba_sign_up().await;
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        Some(&u.cookie),
        json!({"newEmail": unique_email("new")}),
    )
    .await;
    let msg = assert_ba_error(res, 400, "CHANGE_EMAIL_DISABLED").await;
    assert_eq!(msg, "Change email with OTP is disabled");

    let app = self::app(b, |c| c.email_otp.change_email = true).await;
    let u = app.ba_sign_up().await;
    let new = unique_email("moved");
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        None,
        json!({"newEmail": new}),
    )
    .await;
    assert_ba_error(res, 401, "UNAUTHORIZED").await;
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        Some(&u.cookie),
        json!({"newEmail": u.email}),
    )
    .await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("newEmail"), "{msg}");
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        Some(&u.cookie),
        json!({"newEmail": "nope"}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_EMAIL").await;
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        Some(&u.cookie),
        json!({"newEmail": new}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let code = nth_code(&app, &new, 1).await;
    let res = ba(
        &app,
        "/email-otp/change-email",
        Some(&u.cookie),
        json!({"newEmail": new, "otp": other_code(&code)}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_OTP").await;
    let res = ba(
        &app,
        "/email-otp/change-email",
        Some(&u.cookie),
        json!({"newEmail": new, "otp": code}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let s = get_session(&app, &u.cookie).await;
    assert_eq!(s["user"]["email"], new.as_str());
    assert_eq!(s["user"]["emailVerified"], true);
    let res = ba(
        &app,
        "/email-otp/change-email",
        Some(&u.cookie),
        json!({"newEmail": unique_email("x"), "otp": code}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_OTP").await;
    // A taken address: the same answer, no mail.
    let other = app.ba_sign_up().await;
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        Some(&u.cookie),
        json!({"newEmail": other.email}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    assert_mail_count(&app, &other.email, 0).await;

    // The tutorial API.
    let t = app.new_user().await;
    let moved = unique_email("tmoved");
    let res = app
        .post("/auth/email-otp/request-email-change")
        .header("authorization", format!("Bearer {}", t.token))
        .json(&json!({"newEmail": moved}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let code = nth_code(&app, &moved, 1).await;
    let res = app
        .post("/auth/email-otp/change-email")
        .header("authorization", format!("Bearer {}", t.token))
        .json(&json!({"newEmail": moved, "otp": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"success": true, "email": moved, "emailChanged": true})
    );
    let res = app
        .post("/auth/email-otp/change-email")
        .json(&json!({"newEmail": moved, "otp": code}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
}

/// With `change_email_verify_current`, the current address must confirm
/// too (BetterAuth's `changeEmail.verifyCurrentEmail`).
async fn email_change_by_code_can_need_the_current_address(b: Backend) {
    let app = app(b, |c| {
        c.email_otp.change_email = true;
        c.email_otp.change_email_verify_current = true;
    })
    .await;
    let u = app.ba_sign_up().await;
    let new = unique_email("cur");
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        Some(&u.cookie),
        json!({"newEmail": new}),
    )
    .await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("otp"), "{msg}");
    ba(
        &app,
        "/email-otp/send-verification-otp",
        None,
        json!({"email": u.email, "type": "email-verification"}),
    )
    .await;
    let current = nth_code(&app, &u.email, 1).await;
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        Some(&u.cookie),
        json!({"newEmail": new, "otp": other_code(&current)}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_OTP").await;
    assert_mail_count(&app, &new, 0).await;
    let res = ba(
        &app,
        "/email-otp/request-email-change",
        Some(&u.cookie),
        json!({"newEmail": new, "otp": current}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let code = nth_code(&app, &new, 1).await;
    let res = ba(
        &app,
        "/email-otp/change-email",
        Some(&u.cookie),
        json!({"newEmail": new, "otp": code}),
    )
    .await;
    assert_eq!(res.status(), 200);
}

backend_tests!(
    email_change_by_code,
    email_change_by_code_can_need_the_current_address,
    magic_link_signs_up_signs_in_and_works_once,
    magic_link_expires_and_refuses_bad_input,
    features_off_answer_404,
    sign_up_can_be_disabled,
    email_codes_sign_in_verify_and_reset,
    codes_expire_and_die_after_the_allowed_attempts,
    concurrent_guesses_never_exceed_the_limit,
    no_enumeration_by_answer_or_timing,
    outbox_log_line_carries_the_code,
    with_smtp_no_link_or_code_in_the_logs,
    proving_the_email_claims_an_unverified_account,
    passwordless_sign_in_keeps_the_two_factor_challenge,
    passwordless_challenge_off_is_betterauths_behaviour,
    tutorial_api_passwordless,
);
