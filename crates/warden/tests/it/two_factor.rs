//! Two-factor authentication (TOTP and backup codes), through HTTP only, on
//! the tutorial API (`/auth/two-factor/*`) and the BetterAuth API
//! (`/api/auth/two-factor/*`).
//!
//! The codes are computed by an independent implementation, Python's
//! `pyotp` (from the tests' own virtual environment, `python_env.rs`, or
//! `$WARDEN_TEST_PYTHON`), always at an explicit time: the server's mock
//! clock when the app has one, else the wall clock.

use std::process::Command;
use std::time::Duration;

use reqwest::Response;
use serde_json::{json, Value};
use warden_core::Clock;

use crate::backend_tests;
use crate::helpers::{
    assert_ba_error, assert_error, bearer, remember_secret, session_set_cookie, spawn_app,
    spawn_app_with_clock, BaUser, Backend, TestApp, TestUser,
};
use crate::mail_sink::spawn_app_with_sink;

const STEP: Duration = Duration::from_secs(30);
const INVALID_CODE: &str = "code: invalid two-factor code";
const INVALID_BACKUP_CODE: &str = "code: invalid backup code";

// ---------------------------------------------------------------------------
// pyotp

/// Runs a Python snippet with arguments and returns its trimmed stdout.
fn python(script: &str, args: &[String]) -> String {
    let interpreter = crate::python_env::python();
    let python = interpreter.display();
    let out = Command::new(&interpreter)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "{python} failed (without pyotp? see tests/support/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// pyotp's codes for `uri` at each Unix time.
fn codes_at(uri: &str, times: &[i64]) -> Vec<String> {
    let mut args = vec![uri.to_owned()];
    args.extend(times.iter().map(|t| t.to_string()));
    let out = python(
        "import pyotp,sys\n\
         t=pyotp.parse_uri(sys.argv[1])\n\
         print(' '.join(t.at(int(x)) for x in sys.argv[2:]))",
        &args,
    );
    let codes: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    assert_eq!(codes.len(), times.len(), "pyotp said: {out}");
    for c in &codes {
        assert!(c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit()), "{c}");
        remember_secret(c);
    }
    codes
}

/// pyotp's code for `uri` at Unix time `t`.
fn code_at(uri: &str, t: i64) -> String {
    codes_at(uri, &[t]).remove(0)
}

/// A random 6-digit code that is not the code of any step within two of
/// the step of `t`: wrong whatever the server's window.
fn wrong_code(uri: &str, t: i64) -> String {
    python(
        "import pyotp,sys,random\n\
         t=pyotp.parse_uri(sys.argv[1]); n=int(sys.argv[2])\n\
         near={t.at(n+30*d) for d in range(-2,3)}\n\
         while True:\n    c='%06d'%random.randrange(10**6)\n    if c not in near: print(c); break",
        &[uri.to_owned(), t.to_string()],
    )
}

/// What pyotp reads in a URI: issuer, account name, digits, period,
/// digest, base32 secret and the raw key (as Latin-1 text).
fn uri_info(uri: &str) -> Vec<String> {
    python(
        "import pyotp,sys\n\
         t=pyotp.parse_uri(sys.argv[1])\n\
         print(t.issuer, t.name, t.digits, t.interval, t.digest().name, t.secret,\n\
               t.byte_secret().decode('latin-1'), sep='\\n')",
        &[uri.to_owned()],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

// ---------------------------------------------------------------------------
// helpers

/// The app's (mock) time, for pyotp.
fn now(app: &TestApp) -> i64 {
    app.clock.now().timestamp()
}

fn wall_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The `name=value` and the attributes of the cookie `name` a response sets.
fn set_cookie(res: &Response, name: &str) -> Option<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            (pair.trim().to_owned(), attrs.trim().to_owned())
        })
}

/// A cookie that is set with a value (not cleared); its value is remembered.
fn live_cookie(res: &Response, name: &str) -> (String, String) {
    let (pair, attrs) = set_cookie(res, name).unwrap_or_else(|| panic!("no {name} cookie set"));
    let value = pair.split_once('=').unwrap().1;
    assert!(!value.is_empty(), "{name} cleared: {attrs}");
    assert!(attrs.contains("HttpOnly"), "{attrs}");
    remember_secret(value);
    (pair, attrs)
}

fn cleared(res: &Response, name: &str) -> bool {
    set_cookie(res, name)
        .is_some_and(|(pair, attrs)| pair == format!("{name}=") && attrs.contains("Max-Age=0"))
}

async fn post_as(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    app.post(path)
        .header("authorization", bearer(token))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn sessions_of(app: &TestApp, user_id: &str) -> i64 {
    app.count(
        r#"SELECT COUNT(*) FROM "session" WHERE "userId" = ?"#,
        &[user_id],
    )
    .await
}

/// What enabling returned.
struct Setup {
    uri: String,
    backup_codes: Vec<String>,
}

fn remember_setup(uri: &str, backup_codes: &[String]) {
    remember_secret(uri);
    let info = uri_info(uri);
    remember_secret(&info[5]);
    remember_secret(&info[6]);
    for c in backup_codes {
        remember_secret(c);
    }
}

fn backup_codes(body: &Value) -> Vec<String> {
    let codes: Vec<String> = body["backupCodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no backupCodes: {body}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    for c in &codes {
        remember_secret(c);
    }
    codes
}

/// `/auth/two-factor/enable` with the user's password.
async fn enable(app: &TestApp, user: &TestUser) -> Setup {
    let res = post_as(
        app,
        "/auth/two-factor/enable",
        &user.token,
        &json!({"password": user.password}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let uri = body["totpURI"].as_str().unwrap().to_owned();
    let codes = backup_codes(&body);
    remember_setup(&uri, &codes);
    Setup {
        uri,
        backup_codes: codes,
    }
}

async fn confirm(app: &TestApp, user: &TestUser, code: &str) -> Response {
    post_as(
        app,
        "/auth/two-factor/confirm",
        &user.token,
        &json!({"code": code}),
    )
    .await
}

/// Enables and confirms two-factor at the mock clock's time, then moves the
/// clock a step on, so that the next code is a fresh one.
async fn enable_and_confirm(app: &TestApp, user: &TestUser) -> Setup {
    let setup = enable(app, user).await;
    let res = confirm(app, user, &code_at(&setup.uri, now(app))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"twoFactorEnabled": true})
    );
    app.clock.advance(STEP);
    setup
}

/// A sign-in's two-factor challenge: the token in the body and the cookie.
struct Challenge {
    token: String,
    /// `warden.two_factor=<signed>`.
    cookie: String,
}

/// Signs in with the password; expects a two-factor challenge.
async fn challenge(app: &TestApp, email: &str, password: &str) -> Challenge {
    let res = app.sign_in_as(email, password).await;
    challenge_of(res).await
}

async fn challenge_of(res: Response) -> Challenge {
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).is_none(), "no session yet");
    let (cookie, _) = live_cookie(&res, "warden.two_factor");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["twoFactorRequired"], true, "{body}");
    let token = body["challenge"].as_str().unwrap().to_owned();
    remember_secret(&token);
    Challenge { token, cookie }
}

async fn verify(app: &TestApp, path: &str, body: &Value) -> Response {
    app.post_json(path, body).await
}

async fn verify_totp(app: &TestApp, c: &Challenge, code: &str) -> Response {
    verify(
        app,
        "/auth/two-factor/verify-totp",
        &json!({"code": code, "challenge": c.token}),
    )
    .await
}

async fn verify_backup(app: &TestApp, c: &Challenge, code: &str) -> Response {
    verify(
        app,
        "/auth/two-factor/verify-backup-code",
        &json!({"code": code, "challenge": c.token}),
    )
    .await
}

/// A successful verification: the signed-in body, its token remembered.
async fn signed_in(res: Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let token = body["session"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {body}"));
    remember_secret(token);
    body
}

async fn assert_invalid_code(res: Response) {
    assert_eq!(
        assert_error(res, 401, "unauthenticated").await,
        INVALID_CODE
    );
}

async fn assert_invalid_backup_code(res: Response) {
    assert_eq!(
        assert_error(res, 401, "unauthenticated").await,
        INVALID_BACKUP_CODE
    );
}

async fn assert_bad_challenge(res: Response) {
    let msg = assert_error(res, 401, "unauthenticated").await;
    assert!(msg.starts_with("challenge: "), "{msg}");
}

/// Signs in on the tutorial API sending `cookie`.
async fn sign_in_with(app: &TestApp, user: &TestUser, cookie: String) -> Response {
    app.post("/auth/signin")
        .header("origin", app.origin())
        .header("cookie", cookie)
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap()
}

/// Signs in on the BetterAuth API; expects the challenge cookie.
async fn ba_challenge(app: &TestApp, user: &BaUser) -> String {
    let res = app
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).is_none());
    live_cookie(&res, "warden.two_factor").0
}

/// `/api/auth/two-factor/<what>` with `cookie` and `{code}`.
async fn ba_verify(app: &TestApp, what: &str, cookie: String, code: String) -> Response {
    app.ba_post(
        &format!("/api/auth/two-factor/{what}"),
        &cookie,
        &json!({"code": code}),
    )
    .await
}

// ---------------------------------------------------------------------------
// tutorial API

/// Enable (URI and backup codes), confirm with a wrong then the right code,
/// then sign-in becomes a challenge that only a fresh code completes.
async fn enable_confirm_then_sign_in_needs_a_code(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.new_user().await;

    // Not signed in, or with a wrong password: refused.
    let res = app
        .post_json(
            "/auth/two-factor/enable",
            &json!({"password": user.password}),
        )
        .await;
    assert_error(res, 401, "unauthenticated").await;
    remember_secret("Wrong-Password-1");
    let res = post_as(
        &app,
        "/auth/two-factor/enable",
        &user.token,
        &json!({"password": "Wrong-Password-1"}),
    )
    .await;
    assert_error(res, 400, "invalid_argument").await;

    let setup = enable(&app, &user).await;
    // otpauth://totp/<issuer>:<email>?secret=...&issuer=...&digits=6&period=30
    let prefix = format!("otpauth://totp/Warden:{}?secret=", user.email);
    assert!(setup.uri.starts_with(&prefix), "{}", setup.uri);
    let (secret, rest) = setup.uri[prefix.len()..].split_once('&').unwrap();
    assert_eq!(rest, "issuer=Warden&digits=6&period=30", "{}", setup.uri);
    assert!(
        secret.len() >= 26
            && secret
                .bytes()
                .all(|c| b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".contains(&c)),
        "base32, at least 128 bits: {secret}"
    );
    let info = uri_info(&setup.uri);
    assert_eq!(
        info[..5],
        ["Warden", user.email.as_str(), "6", "30", "sha1"],
        "what pyotp reads"
    );
    assert_eq!(info[5], secret);
    assert_eq!(setup.backup_codes.len(), 10);
    for c in &setup.backup_codes {
        let (a, z) = c.split_once('-').unwrap_or_else(|| panic!("{c}"));
        assert!(
            a.len() == 5
                && z.len() == 5
                && (a.to_owned() + z)
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric()),
            "XXXXX-XXXXX: {c}"
        );
    }
    let mut distinct = setup.backup_codes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10);
    // The URI again, with the password.
    let res = post_as(
        &app,
        "/auth/two-factor/get-totp-uri",
        &user.token,
        &json!({"password": user.password}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"totpURI": setup.uri})
    );

    // Until a code is confirmed, two-factor is off: sign-in is one step.
    let body: Value = app
        .sign_in_as(&user.email, &user.password)
        .await
        .json()
        .await
        .unwrap();
    let token = body["session"]["token"].as_str().expect("a session");
    remember_secret(token);
    assert!(body.get("twoFactorRequired").is_none(), "{body}");

    // Confirm: a wrong code, then the right one.
    let t = now(&app);
    assert_invalid_code(confirm(&app, &user, &wrong_code(&setup.uri, t)).await).await;
    let used = code_at(&setup.uri, t);
    let res = confirm(&app, &user, &used).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"twoFactorEnabled": true})
    );

    // Sign-in: a challenge, no session.
    let before = sessions_of(&app, &user.id).await;
    let res = app.sign_in_as(&user.email, &user.password).await;
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).is_none());
    let (cookie, attrs) = live_cookie(&res, "warden.two_factor");
    assert!(attrs.contains("Max-Age=600"), "{attrs}");
    let body: Value = res.json().await.unwrap();
    let c = Challenge {
        token: body["challenge"].as_str().unwrap().to_owned(),
        cookie,
    };
    remember_secret(&c.token);
    assert!(c.token.len() >= 32, "{body}");
    assert_eq!(
        body,
        json!({"twoFactorRequired": true, "challenge": c.token, "methods": ["totp"], "expiresIn": 600})
    );
    assert_eq!(sessions_of(&app, &user.id).await, before, "no session row");
    // The challenge is no session token.
    assert_error(
        app.get_as("/profile", &c.token).await,
        401,
        "unauthenticated",
    )
    .await;
    let res = app.get_as("/api/auth/get-session", &c.token).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);

    // The code used to confirm, and the step before it: never again.
    assert_invalid_code(verify_totp(&app, &c, &used).await).await;
    assert_invalid_code(verify_totp(&app, &c, &code_at(&setup.uri, t - 30)).await).await;

    // A fresh code completes the sign-in (the same challenge: three wrong
    // codes do not end it).
    app.clock.advance(STEP);
    let fresh = code_at(&setup.uri, now(&app));
    let res = verify_totp(&app, &c, &fresh).await;
    let (session_cookie, _) = session_set_cookie(&res).expect("a session cookie");
    remember_secret(session_cookie.split_once('=').unwrap().1);
    let body = signed_in(res).await;
    assert_eq!(body["user"]["id"], user.id);
    assert_eq!(body["user"]["email"], user.email);
    assert!(body["session"]["expiresAt"].is_string(), "{body}");
    let token = body["session"]["token"].as_str().unwrap();
    let profile = app.get_json_as("/profile", token).await;
    assert_eq!(profile["email"], user.email);
    assert_eq!(sessions_of(&app, &user.id).await, before + 1);

    // The challenge is used up; the code is used up.
    app.clock.advance(STEP);
    assert_bad_challenge(verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await).await;
    let c2 = challenge(&app, &user.email, &user.password).await;
    assert_invalid_code(verify_totp(&app, &c2, &fresh).await).await;
    signed_in(verify_totp(&app, &c2, &code_at(&setup.uri, now(&app))).await).await;
}

/// The step of the server's time, one step either side; not two; and a step
/// at or before the last accepted one never.
async fn totp_window_is_one_step_either_side(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.new_user().await;
    let setup = enable_and_confirm(&app, &user).await;
    // So that the step before the current one is not the one confirmed.
    app.clock.advance(STEP);

    let t = now(&app);
    let c = challenge(&app, &user.email, &user.password).await;
    assert_invalid_code(verify_totp(&app, &c, &code_at(&setup.uri, t + 60)).await).await;
    assert_invalid_code(verify_totp(&app, &c, &code_at(&setup.uri, t - 60)).await).await;
    assert_invalid_code(verify_totp(&app, &c, &code_at(&setup.uri, t - 90)).await).await;
    // One step behind.
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, t - 30)).await).await;
    // One step ahead.
    let c = challenge(&app, &user.email, &user.password).await;
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, t + 30)).await).await;
    // The current step is now before the last one accepted: refused.
    let c = challenge(&app, &user.email, &user.password).await;
    assert_invalid_code(verify_totp(&app, &c, &code_at(&setup.uri, t)).await).await;
    // Two steps on, the current code works.
    app.clock.advance(2 * STEP);
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await).await;
}

/// Each backup code works once; a new set replaces the old one; what is
/// stored reveals neither the TOTP secret nor any code.
async fn backup_codes_work_once_and_are_replaced(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.new_user().await;
    let setup = enable_and_confirm(&app, &user).await;
    let old = &setup.backup_codes;

    let c = challenge(&app, &user.email, &user.password).await;
    let body = signed_in(verify_backup(&app, &c, &old[0]).await).await;
    assert_eq!(body["user"]["id"], user.id);
    let c = challenge(&app, &user.email, &user.password).await;
    assert_invalid_backup_code(verify_backup(&app, &c, &old[0]).await).await;
    // A TOTP code is no backup code, and a backup code no TOTP code: each is
    // refused as malformed (400), without counting as a guess.
    let res = verify_backup(&app, &c, &code_at(&setup.uri, now(&app))).await;
    assert_error(res, 400, "invalid_argument").await;
    let res = verify_totp(&app, &c, &old[1]).await;
    assert_error(res, 400, "invalid_argument").await;
    signed_in(verify_backup(&app, &c, &old[1]).await).await;

    // A new set: wrong password refused; the old codes stop working.
    let res = post_as(
        &app,
        "/auth/two-factor/generate-backup-codes",
        &user.token,
        &json!({"password": "Wrong-Password-1"}),
    )
    .await;
    assert_error(res, 400, "invalid_argument").await;
    let res = post_as(
        &app,
        "/auth/two-factor/generate-backup-codes",
        &user.token,
        &json!({"password": user.password}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let new = backup_codes(&res.json().await.unwrap());
    assert_eq!(new.len(), 10);
    assert!(new.iter().all(|c| !old.contains(c)));
    let c = challenge(&app, &user.email, &user.password).await;
    assert_invalid_backup_code(verify_backup(&app, &c, &old[2]).await).await;
    signed_in(verify_backup(&app, &c, &new[0]).await).await;

    // At rest: the secret encrypted (hex), the codes hashed.
    let stored = app
        .fetch_text(
            r#"SELECT "secret" FROM "twoFactor" WHERE "userId" = ?"#,
            &[&user.id],
        )
        .await
        .expect("a twoFactor row");
    let info = uri_info(&setup.uri);
    let (base32, raw) = (&info[5], &info[6]);
    assert!(
        stored.len() >= 2 * (24 + 16 + raw.len()) && stored.bytes().all(|c| c.is_ascii_hexdigit()),
        "hex(nonce || ciphertext || tag): {} chars",
        stored.len()
    );
    assert!(!stored.contains(base32.as_str()) && !stored.contains(raw.as_str()));
    assert!(!stored
        .to_ascii_lowercase()
        .contains(&hex::encode(raw.as_bytes())));
    let codes = app
        .fetch_text(
            r#"SELECT "backupCodes" FROM "twoFactor" WHERE "userId" = ?"#,
            &[&user.id],
        )
        .await
        .unwrap();
    let list = codes
        .strip_prefix("warden-hmac:")
        .unwrap_or_else(|| panic!("not hashed: {}", &codes[..20.min(codes.len())]));
    let hashes: Vec<String> = serde_json::from_str(list).unwrap();
    assert_eq!(hashes.len(), 9, "one of the new set used");
    for c in old.iter().chain(&new) {
        assert!(!codes.contains(c.as_str()) && !codes.contains(&c.replace('-', "")));
    }
}

/// The fifth wrong code ends a challenge; four wrong and then the right one
/// still sign in.
async fn challenge_ends_after_five_wrong_codes(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.new_user().await;
    let setup = enable_and_confirm(&app, &user).await;
    let t = now(&app);

    let c = challenge(&app, &user.email, &user.password).await;
    for _ in 0..4 {
        assert_invalid_code(verify_totp(&app, &c, &wrong_code(&setup.uri, t)).await).await;
    }
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, t)).await).await;

    app.clock.advance(STEP);
    let t = now(&app);
    let good = code_at(&setup.uri, t);
    let c = challenge(&app, &user.email, &user.password).await;
    for _ in 0..4 {
        assert_invalid_backup_code(verify_backup(&app, &c, "AAAAA-AAAAA").await).await;
    }
    assert_error(
        verify_totp(&app, &c, &wrong_code(&setup.uri, t)).await,
        429,
        "resource_exhausted",
    )
    .await;
    // Not a lock of the account: a new sign-in works with the same code.
    let fresh = challenge(&app, &user.email, &user.password).await;
    // The ended challenge is gone: a correct code fails too, with "sign in
    // again" (401), and the new challenge still works.
    let res = verify_totp(&app, &c, &good).await;
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_ne!(status, 200, "{body}");
    signed_in(verify_totp(&app, &fresh, &good).await).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "after the fifth wrong code, a correct one: {body}"
    );
    assert!(
        body["message"].as_str().unwrap().starts_with("challenge:"),
        "{body}"
    );
}

/// Ten consecutive wrong codes lock two-factor for `lock_for`, even for
/// correct codes; a correct code in between starts the count again.
async fn account_locks_after_ten_wrong_codes(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.new_user().await;
    let setup = enable_and_confirm(&app, &user).await;
    let wrong = || wrong_code(&setup.uri, now(&app));

    // 4 wrong, 1 right: the count starts again.
    let c = challenge(&app, &user.email, &user.password).await;
    for _ in 0..4 {
        assert_invalid_code(verify_totp(&app, &c, &wrong()).await).await;
    }
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await).await;
    app.clock.advance(STEP);

    // 5 wrong on a first challenge (the fifth ends it), 4 on a second ...
    let c = challenge(&app, &user.email, &user.password).await;
    for _ in 0..4 {
        assert_invalid_code(verify_totp(&app, &c, &wrong()).await).await;
    }
    assert_error(
        verify_totp(&app, &c, &wrong()).await,
        429,
        "resource_exhausted",
    )
    .await;
    let c = challenge(&app, &user.email, &user.password).await;
    for _ in 0..4 {
        assert_invalid_backup_code(verify_backup(&app, &c, "AAAAA-AAAAA").await).await;
    }
    // ... and the tenth locks.
    let res = verify_totp(&app, &c, &wrong()).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((895..=900).contains(&retry), "{retry}");
    let msg = assert_error(res, 429, "resource_exhausted").await;
    assert!(msg.contains("locked"), "{msg}");

    // Locked: a correct TOTP code, a backup code and confirm all refused.
    let good = code_at(&setup.uri, now(&app));
    let c = challenge(&app, &user.email, &user.password).await;
    let res = verify_totp(&app, &c, &good).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_error(res, 429, "resource_exhausted").await;
    assert_error(
        verify_backup(&app, &c, &setup.backup_codes[0]).await,
        429,
        "resource_exhausted",
    )
    .await;
    assert_error(confirm(&app, &user, &good).await, 429, "resource_exhausted").await;

    // Still locked a second before lock_for (15 min) ends.
    app.clock.advance(Duration::from_secs(15 * 60 - 1));
    let c = challenge(&app, &user.email, &user.password).await;
    let res = verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry <= 1, "{retry}");
    assert_error(res, 429, "resource_exhausted").await;
    // Then free; the backup code the lock refused was not used up.
    app.clock.advance(Duration::from_secs(2));
    signed_in(verify_backup(&app, &c, &setup.backup_codes[0]).await).await;
    app.clock.advance(STEP);
    let c = challenge(&app, &user.email, &user.password).await;
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await).await;
}

/// A challenge lives `challenge_ttl`; it may come from the body or the
/// signed cookie; without either the request is invalid.
async fn challenge_expires_and_may_come_from_the_cookie(b: Backend) {
    let app = spawn_app_with_clock(b, |c| {
        c.two_factor.challenge_ttl = Duration::from_secs(120);
        c.two_factor.issuer = Some("Acme Auth".into());
    })
    .await;
    let user = app.new_user().await;
    let setup = enable_and_confirm(&app, &user).await;
    assert!(
        setup
            .uri
            .starts_with(&format!("otpauth://totp/Acme%20Auth:{}?", user.email)),
        "{}",
        setup.uri
    );
    assert!(setup.uri.contains("&issuer=Acme%20Auth&"), "{}", setup.uri);
    assert_eq!(uri_info(&setup.uri)[0], "Acme Auth");

    let res = app.sign_in_as(&user.email, &user.password).await;
    let (_, attrs) = live_cookie(&res, "warden.two_factor");
    assert!(attrs.contains("Max-Age=120"), "{attrs}");
    let body: Value = res.json().await.unwrap();
    remember_secret(body["challenge"].as_str().unwrap());
    assert_eq!(body["expiresIn"], 120);
    let c1 = Challenge {
        token: body["challenge"].as_str().unwrap().to_owned(),
        cookie: String::new(),
    };
    let c2 = challenge(&app, &user.email, &user.password).await;
    let c3 = challenge(&app, &user.email, &user.password).await;

    // No challenge in the body nor a cookie: 400; an unknown one: 401.
    let code = code_at(&setup.uri, now(&app));
    let res = verify(&app, "/auth/two-factor/verify-totp", &json!({"code": code})).await;
    assert_error(res, 400, "invalid_argument").await;
    let res = verify(
        &app,
        "/auth/two-factor/verify-backup-code",
        &json!({"code": setup.backup_codes[0], "challenge": ""}),
    )
    .await;
    assert_error(res, 400, "invalid_argument").await;
    let res = verify(
        &app,
        "/auth/two-factor/verify-totp",
        &json!({"code": code, "challenge": "not-a-challenge"}),
    )
    .await;
    assert_bad_challenge(res).await;
    // A cookie with a bad signature is no cookie.
    let forged = format!("{}x", c2.cookie);
    let res = app
        .post("/auth/two-factor/verify-totp")
        .header("origin", app.origin())
        .header("cookie", forged)
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;

    // The cookie alone works, and is cleared.
    app.clock.advance(Duration::from_secs(60));
    let res = app
        .post("/auth/two-factor/verify-totp")
        .header("origin", app.origin())
        .header("cookie", &c2.cookie)
        .json(&json!({"code": code_at(&setup.uri, now(&app))}))
        .send()
        .await
        .unwrap();
    assert!(cleared(&res, "warden.two_factor"));
    signed_in(res).await;

    // 119 s after it was issued, a challenge still works; at 121 s not.
    app.clock.advance(Duration::from_secs(59));
    signed_in(verify_totp(&app, &c1, &code_at(&setup.uri, now(&app))).await).await;
    app.clock.advance(Duration::from_secs(2) + STEP);
    assert_bad_challenge(verify_totp(&app, &c3, &code_at(&setup.uri, now(&app))).await).await;
    assert_bad_challenge(verify_backup(&app, &c3, &setup.backup_codes[0]).await).await;
}

/// "Trust this device": the next sign-in skips the second step, and the
/// cookie is replaced each time; it expires; disabling two-factor forgets it.
async fn trusted_device_skips_the_step_until_revoked(b: Backend) {
    let app = spawn_app_with_clock(b, |c| {
        c.two_factor.trust_device_ttl = Duration::from_secs(24 * 3600);
    })
    .await;
    let user = app.new_user().await;
    let setup = enable_and_confirm(&app, &user).await;

    let c = challenge(&app, &user.email, &user.password).await;
    let res = verify(
        &app,
        "/auth/two-factor/verify-totp",
        &json!({"code": code_at(&setup.uri, now(&app)), "challenge": c.token, "trustDevice": true}),
    )
    .await;
    let (trust1, attrs) = live_cookie(&res, "warden.trust_device");
    assert!(attrs.contains("Max-Age=86400"), "{attrs}");
    signed_in(res).await;
    // Without it, a challenge as before.
    challenge(&app, &user.email, &user.password).await;

    // With it: a session at once, and a new cookie.
    let res = sign_in_with(&app, &user, trust1.clone()).await;
    let (trust2, _) = live_cookie(&res, "warden.trust_device");
    assert_ne!(trust2, trust1);
    let body = signed_in(res).await;
    assert_eq!(body["user"]["id"], user.id);
    // The old one stopped working; the new one works (and is replaced).
    challenge_of(sign_in_with(&app, &user, trust1.clone()).await).await;
    let res = sign_in_with(&app, &user, trust2.clone()).await;
    let (trust3, _) = live_cookie(&res, "warden.trust_device");
    signed_in(res).await;

    // Another user's sign-in gains nothing from it.
    let other = app.new_user().await;
    let other_setup = enable_and_confirm(&app, &other).await;
    challenge_of(
        app.post("/auth/signin")
            .header("origin", app.origin())
            .header("cookie", &trust3)
            .json(&json!({"email": other.email, "password": other.password}))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // It lasts trust_device_ttl from when it was issued.
    app.clock.advance(Duration::from_secs(24 * 3600 - 60));
    let res = sign_in_with(&app, &user, trust3.clone()).await;
    let (trust4, _) = live_cookie(&res, "warden.trust_device");
    signed_in(res).await;
    app.clock.advance(Duration::from_secs(24 * 3600 + 1));
    challenge_of(sign_in_with(&app, &user, trust4.clone()).await).await;

    // A trusted device of a backup-code sign-in, forgotten on disable.
    let c = challenge(&app, &user.email, &user.password).await;
    let res = verify(
        &app,
        "/auth/two-factor/verify-backup-code",
        &json!({"code": setup.backup_codes[0], "challenge": c.token, "trustDevice": true}),
    )
    .await;
    let (trust5, _) = live_cookie(&res, "warden.trust_device");
    signed_in(res).await;
    let res = post_as(
        &app,
        "/auth/two-factor/disable",
        &user.token,
        &json!({"password": user.password}),
    )
    .await;
    assert!(cleared(&res, "warden.trust_device"));
    assert_eq!(res.status(), 200);
    // Off: one step, whatever the cookie.
    signed_in(sign_in_with(&app, &user, trust5.clone()).await).await;
    // On again: the old trusted device counts for nothing.
    let setup = enable_and_confirm(&app, &user).await;
    let c = challenge_of(sign_in_with(&app, &user, trust5).await).await;
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await).await;
    // The other user's setup was untouched throughout.
    let c = challenge(&app, &other.email, &other.password).await;
    signed_in(verify_totp(&app, &c, &code_at(&other_setup.uri, now(&app))).await).await;
}

/// Disabling needs the password and makes sign-in one step again; with
/// two-factor off, its other endpoints say it is not set up.
async fn disable_turns_sign_in_back_to_one_step(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.new_user().await;
    // Not set up yet: 400.
    for (path, body) in [
        (
            "/auth/two-factor/get-totp-uri",
            json!({"password": user.password}),
        ),
        (
            "/auth/two-factor/generate-backup-codes",
            json!({"password": user.password}),
        ),
        ("/auth/two-factor/confirm", json!({"code": "123456"})),
    ] {
        assert_error(
            post_as(&app, path, &user.token, &body).await,
            400,
            "invalid_argument",
        )
        .await;
    }
    // Set up but not confirmed: not on yet, no backup codes to replace.
    let first = enable(&app, &user).await;
    let res = post_as(
        &app,
        "/auth/two-factor/generate-backup-codes",
        &user.token,
        &json!({"password": user.password}),
    )
    .await;
    assert_error(res, 400, "invalid_argument").await;
    // Setting up again before confirming replaces the secret.
    let setup = enable_and_confirm(&app, &user).await;
    assert_ne!(first.uri, setup.uri);
    let c = challenge(&app, &user.email, &user.password).await;
    assert_invalid_code(verify_totp(&app, &c, &code_at(&first.uri, now(&app))).await).await;
    // While on, enable is refused: the authenticator in use stays.
    let res = post_as(
        &app,
        "/auth/two-factor/enable",
        &user.token,
        &json!({"password": user.password}),
    )
    .await;
    assert_error(res, 409, "already_exists").await;

    let res = app
        .post_json(
            "/auth/two-factor/disable",
            &json!({"password": user.password}),
        )
        .await;
    assert_error(res, 401, "unauthenticated").await;
    let res = post_as(
        &app,
        "/auth/two-factor/disable",
        &user.token,
        &json!({"password": "Wrong-Password-1"}),
    )
    .await;
    assert_error(res, 400, "invalid_argument").await;
    // Still on.
    challenge(&app, &user.email, &user.password).await;

    let res = post_as(
        &app,
        "/auth/two-factor/disable",
        &user.token,
        &json!({"password": user.password}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let res = app.sign_in_as(&user.email, &user.password).await;
    assert!(session_set_cookie(&res).is_some());
    let body = signed_in(res).await;
    assert!(body.get("twoFactorRequired").is_none(), "{body}");
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "twoFactor" WHERE "userId" = ?"#,
            &[&user.id]
        )
        .await,
        0
    );
    // A challenge from before cannot be completed any more.
    let res = verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await;
    assert!(
        matches!(res.status().as_u16(), 400 | 401),
        "{}",
        res.status()
    );
    assert_error(
        post_as(
            &app,
            "/auth/two-factor/get-totp-uri",
            &user.token,
            &json!({"password": user.password}),
        )
        .await,
        400,
        "invalid_argument",
    )
    .await;
}

/// A password reset (by the mailed link) leaves two-factor on.
async fn password_reset_keeps_two_factor_on(b: Backend) {
    let (app, sink) = spawn_app_with_sink(b, |_| {}).await;
    let user = app.new_user().await;
    let setup = enable_and_confirm(&app, &user).await;
    // The issuer defaults to mail.app_name.
    assert!(
        setup.uri.starts_with("otpauth://totp/Acme:"),
        "{}",
        setup.uri
    );

    let res = app
        .post_json(
            "/auth/request-password-reset",
            &json!({"email": user.email}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let mails = sink.wait_for(&user.email, 1, Duration::from_secs(10)).await;
    let link = mails
        .iter()
        .flat_map(|m| m.links())
        .find(|l| l.contains("token="))
        .expect("a reset link");
    let token = link
        .split_once("token=")
        .unwrap()
        .1
        .split(['&', '#'])
        .next()
        .unwrap()
        .to_owned();
    remember_secret(&token);
    let new_password = "Brand-New-Secret-1";
    remember_secret(new_password);
    let res = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": token, "newPassword": new_password}),
        )
        .await;
    assert_eq!(res.status(), 200);

    let c = challenge(&app, &user.email, new_password).await;
    assert_invalid_code(verify_totp(&app, &c, &wrong_code(&setup.uri, now(&app))).await).await;
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await).await;
}

/// Malformed requests are 400s, never 500s, and cost no attempt.
async fn bad_input_is_a_400(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.new_user().await;
    let setup = enable_and_confirm(&app, &user).await;
    let c = challenge(&app, &user.email, &user.password).await;

    for path in [
        "/auth/two-factor/verify-totp",
        "/auth/two-factor/verify-backup-code",
    ] {
        for body in [
            json!({"challenge": c.token}),
            json!({"code": 123456, "challenge": c.token}),
            json!({"code": null, "challenge": c.token}),
            json!({"code": "123456", "challenge": 5}),
            json!({"code": "123456", "challenge": c.token, "trustDevice": "yes"}),
            json!(["123456"]),
        ] {
            let res = verify(&app, path, &body).await;
            assert_error(res, 400, "invalid_argument").await;
        }
        for raw in ["", "code=123456", "{\"code\": \"123456\"", "null"] {
            let res = app
                .post(path)
                .header("content-type", "application/json")
                .body(raw)
                .send()
                .await
                .unwrap();
            assert_error(res, 400, "invalid_argument").await;
        }
        let res = app
            .post(path)
            .header("content-type", "text/plain")
            .body(format!(
                "{{\"code\":\"123456\",\"challenge\":\"{}\"}}",
                c.token
            ))
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "invalid_argument").await;
        // Larger than the body limit.
        let res = verify(
            &app,
            path,
            &json!({"code": "1".repeat(100_000), "challenge": c.token}),
        )
        .await;
        assert_error(res, 400, "invalid_argument").await;
    }
    for path in [
        "/auth/two-factor/confirm",
        "/auth/two-factor/enable",
        "/auth/two-factor/disable",
        "/auth/two-factor/generate-backup-codes",
        "/auth/two-factor/get-totp-uri",
    ] {
        let res = post_as(&app, path, &user.token, &json!({})).await;
        assert_error(res, 400, "invalid_argument").await;
        let res = app
            .post(path)
            .header("authorization", bearer(&user.token))
            .header("content-type", "application/json")
            .body("not json")
            .send()
            .await
            .unwrap();
        assert_error(res, 400, "invalid_argument").await;
    }
    // None of that cost an attempt of the challenge.
    signed_in(verify_totp(&app, &c, &code_at(&setup.uri, now(&app))).await).await;

    // A huge code (within the body limit) is invalid input too.
    let c = challenge(&app, &user.email, &user.password).await;
    let huge = "9".repeat(10_000);
    for path in [
        "/auth/two-factor/verify-totp",
        "/auth/two-factor/verify-backup-code",
    ] {
        let res = verify(&app, path, &json!({"code": huge, "challenge": c.token})).await;
        assert_error(res, 400, "invalid_argument").await;
    }
    let res = confirm(&app, &user, &huge).await;
    assert_error(res, 400, "invalid_argument").await;
}

// ---------------------------------------------------------------------------
// BetterAuth API

/// The BetterAuth client's flow with cookies, on the wall clock: enable,
/// verify-totp with the session (turns two-factor on), sign-in ->
/// twoFactorRedirect, verify-totp with the challenge cookie -> a session;
/// trust the device with a backup code; disable.
async fn betterauth_two_factor_flow_with_cookies(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let res = app
        .ba_post(
            "/api/auth/two-factor/enable",
            &user.cookie,
            &json!({"password": user.password}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["method"], "totp");
    let uri = body["totpURI"].as_str().unwrap().to_owned();
    let codes = backup_codes(&body);
    remember_setup(&uri, &codes);
    assert!(
        uri.starts_with(&format!("otpauth://totp/Warden:{}?secret=", user.email)),
        "{uri}"
    );
    assert_eq!(codes.len(), 10);

    // Two codes of two consecutive steps, both within the window of the
    // server's step: avoid the last seconds of a step.
    let mut t = wall_now();
    if t % 30 >= 25 {
        tokio::time::sleep(Duration::from_secs((30 - t % 30 + 1) as u64)).await;
        t = wall_now();
    }
    let [previous, current]: [String; 2] = codes_at(&uri, &[t - 30, t]).try_into().unwrap();

    // verify-totp with a session: confirms the setup.
    let res = app
        .ba_post(
            "/api/auth/two-factor/verify-totp",
            &user.cookie,
            &json!({"code": previous}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["twoFactorEnabled"], true, "{body}");
    let s: Value = app
        .ba_get("/api/auth/get-session", &user.cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["twoFactorEnabled"], true, "{s}");

    // Sign-in: a redirect to the second step and a challenge cookie only.
    let res = app
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).is_none());
    assert!(!res.headers().contains_key("set-auth-token"));
    let (challenge, _) = live_cookie(&res, "warden.two_factor");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"twoFactorRedirect": true, "twoFactorMethods": ["totp"]})
    );
    // The challenge cookie is no session.
    let s: Value = app
        .ba_get("/api/auth/get-session", &challenge)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s, Value::Null);

    let res = app
        .ba_post(
            "/api/auth/two-factor/verify-totp",
            &challenge,
            &json!({"code": current}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (cookie, _) = session_set_cookie(&res).expect("a session cookie");
    remember_secret(cookie.split_once('=').unwrap().1);
    let auth_token = res.headers()["set-auth-token"].to_str().unwrap().to_owned();
    remember_secret(&auth_token);
    assert!(cleared(&res, "warden.two_factor"));
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    remember_secret(&token);
    assert_eq!(body["user"]["id"], user.id);
    assert_eq!(body["user"]["twoFactorEnabled"], true);
    let s: Value = app
        .ba_get("/api/auth/get-session", &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["id"], user.id);
    assert_eq!(s["session"]["token"], token);
    let s: Value = app
        .get_as("/api/auth/get-session", &auth_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["id"], user.id);

    // A backup code, trusting the device: the next sign-in is one step.
    // "rememberMe": false survives the second step (a browser-session cookie).
    let res = app
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": user.email, "password": user.password, "rememberMe": false}))
        .send()
        .await
        .unwrap();
    let (challenge, _) = live_cookie(&res, "warden.two_factor");
    let res = app
        .ba_post(
            "/api/auth/two-factor/verify-backup-code",
            &challenge,
            &json!({"code": codes[0], "trustDevice": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let (trust, _) = live_cookie(&res, "warden.trust_device");
    let (short, attrs) = session_set_cookie(&res).expect("a session cookie");
    remember_secret(short.split_once('=').unwrap().1);
    assert!(
        !attrs.contains("Max-Age"),
        "browser-session cookie: {attrs}"
    );
    remember_secret(
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap(),
    );
    let res = app
        .post("/api/auth/sign-in/email")
        .header("origin", app.origin())
        .header("cookie", &trust)
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (new_cookie, _) = session_set_cookie(&res).expect("signed in at once");
    remember_secret(new_cookie.split_once('=').unwrap().1);
    let (trust2, _) = live_cookie(&res, "warden.trust_device");
    assert_ne!(trust2, trust);
    let body: Value = res.json().await.unwrap();
    remember_secret(body["token"].as_str().unwrap());
    assert_eq!(body["user"]["id"], user.id);

    // Backup codes again, then disable.
    let res = app
        .ba_post(
            "/api/auth/two-factor/generate-backup-codes",
            &cookie,
            &json!({"password": user.password}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], true);
    assert_eq!(backup_codes(&body).len(), 10);
    let res = app
        .ba_post(
            "/api/auth/two-factor/get-totp-uri",
            &cookie,
            &json!({"password": user.password}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"totpURI": uri}));
    let res = app
        .ba_post(
            "/api/auth/two-factor/disable",
            &cookie,
            &json!({"password": user.password}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(cleared(&res, "warden.trust_device"));
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let (cookie, _) = app.ba_sign_in(&user.email, &user.password).await;
    let s: Value = app
        .ba_get("/api/auth/get-session", &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["twoFactorEnabled"], false, "{s}");
}

/// BetterAuth's error codes for two-factor.
async fn betterauth_two_factor_errors(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.ba_sign_up().await;
    let plain = app.ba_sign_up().await;

    // Not set up (BetterAuth's codes: TOTP_NOT_ENABLED for the URI,
    // TWO_FACTOR_NOT_ENABLED for backup codes).
    for (path, code) in [
        ("/api/auth/two-factor/get-totp-uri", "TOTP_NOT_ENABLED"),
        (
            "/api/auth/two-factor/generate-backup-codes",
            "TWO_FACTOR_NOT_ENABLED",
        ),
    ] {
        let res = app
            .ba_post(path, &plain.cookie, &json!({"password": plain.password}))
            .await;
        assert_ba_error(res, 400, code).await;
    }
    let res = app
        .ba_post(
            "/api/auth/two-factor/verify-totp",
            &plain.cookie,
            &json!({"code": "123456"}),
        )
        .await;
    assert_ba_error(res, 400, "TOTP_NOT_ENABLED").await;
    // Wrong password; not signed in.
    for path in [
        "/api/auth/two-factor/enable",
        "/api/auth/two-factor/disable",
    ] {
        let res = app
            .ba_post(path, &user.cookie, &json!({"password": "Wrong-Password-1"}))
            .await;
        assert_ba_error(res, 400, "INVALID_PASSWORD").await;
        let res = app
            .post(path)
            .header("origin", app.origin())
            .json(&json!({"password": user.password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }

    let res = app
        .ba_post(
            "/api/auth/two-factor/enable",
            &user.cookie,
            &json!({"password": user.password}),
        )
        .await;
    let body: Value = res.json().await.unwrap();
    let uri = body["totpURI"].as_str().unwrap().to_owned();
    let codes = backup_codes(&body);
    remember_setup(&uri, &codes);
    let res = app
        .ba_post(
            "/api/auth/two-factor/verify-totp",
            &user.cookie,
            &json!({"code": wrong_code(&uri, now(&app))}),
        )
        .await;
    assert_ba_error(res, 401, "INVALID_CODE").await;
    let res = app
        .ba_post(
            "/api/auth/two-factor/verify-totp",
            &user.cookie,
            &json!({"code": code_at(&uri, now(&app))}),
        )
        .await;
    assert_eq!(res.status(), 200);
    app.clock.advance(STEP);
    // While on, enable is refused (disable first).
    let res = app
        .ba_post(
            "/api/auth/two-factor/enable",
            &user.cookie,
            &json!({"password": user.password}),
        )
        .await;
    assert_ba_error(res, 400, "TOTP_ALREADY_ENABLED").await;

    // No challenge cookie (and no session): INVALID_TWO_FACTOR_COOKIE.
    let code = code_at(&uri, now(&app));
    let res = app
        .post("/api/auth/two-factor/verify-totp")
        .header("origin", app.origin())
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 401, "INVALID_TWO_FACTOR_COOKIE").await;
    let res = ba_verify(&app, "verify-backup-code", String::new(), codes[0].clone()).await;
    assert_ba_error(res, 401, "INVALID_TWO_FACTOR_COOKIE").await;
    let forged = format!("{}x", ba_challenge(&app, &user).await);
    let res = ba_verify(&app, "verify-backup-code", forged, codes[0].clone()).await;
    assert_ba_error(res, 401, "INVALID_TWO_FACTOR_COOKIE").await;

    // Five wrong codes: the fifth ends the challenge.
    let challenge = ba_challenge(&app, &user).await;
    for _ in 0..4 {
        let res = ba_verify(
            &app,
            "verify-totp",
            challenge.clone(),
            wrong_code(&uri, now(&app)),
        )
        .await;
        assert_ba_error(res, 401, "INVALID_CODE").await;
    }
    let res = ba_verify(
        &app,
        "verify-backup-code",
        challenge.clone(),
        "AAAAA-AAAAA".into(),
    )
    .await;
    assert_ba_error(res, 400, "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE").await;
    // Five more: the account is locked.
    let challenge = ba_challenge(&app, &user).await;
    for _ in 0..4 {
        let res = ba_verify(
            &app,
            "verify-backup-code",
            challenge.clone(),
            "AAAAA-AAAAA".into(),
        )
        .await;
        assert_ba_error(res, 401, "INVALID_BACKUP_CODE").await;
    }
    let res = ba_verify(
        &app,
        "verify-totp",
        challenge.clone(),
        wrong_code(&uri, now(&app)),
    )
    .await;
    assert!(res.headers().contains_key("retry-after"));
    assert_ba_error(res, 429, "ACCOUNT_TEMPORARILY_LOCKED").await;
    let challenge = ba_challenge(&app, &user).await;
    let res = ba_verify(&app, "verify-totp", challenge.clone(), code.clone()).await;
    assert_ba_error(res, 429, "ACCOUNT_TEMPORARILY_LOCKED").await;
    // After lock_for, the same challenge cookie would have expired: sign in
    // again.
    app.clock.advance(Duration::from_secs(15 * 60 + 1));
    let res = ba_verify(&app, "verify-totp", challenge, code_at(&uri, now(&app))).await;
    assert_ba_error(res, 401, "INVALID_TWO_FACTOR_COOKIE").await;
    let res = ba_verify(
        &app,
        "verify-totp",
        ba_challenge(&app, &user).await,
        code_at(&uri, now(&app)),
    )
    .await;
    assert_eq!(res.status(), 200);
    let (cookie, _) = session_set_cookie(&res).unwrap();
    remember_secret(cookie.split_once('=').unwrap().1);
    remember_secret(
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap(),
    );
}

backend_tests!(
    enable_confirm_then_sign_in_needs_a_code,
    totp_window_is_one_step_either_side,
    backup_codes_work_once_and_are_replaced,
    challenge_ends_after_five_wrong_codes,
    account_locks_after_ten_wrong_codes,
    challenge_expires_and_may_come_from_the_cookie,
    trusted_device_skips_the_step_until_revoked,
    disable_turns_sign_in_back_to_one_step,
    password_reset_keeps_two_factor_on,
    bad_input_is_a_400,
    betterauth_two_factor_flow_with_cookies,
    betterauth_two_factor_errors,
);
