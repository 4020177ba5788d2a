//! Social sign-in (OAuth 2.0 / OpenID Connect), driven over HTTP as a
//! browser does it: the start endpoint, the redirect to a real local
//! provider (`oidc_provider.rs`), its redirect back to the callback, and
//! the landing on the callback URL, following each `Location` by hand with
//! a client that keeps cookies and never follows redirects by itself.
//!
//! Each test starts its own provider and a server listening on a port
//! chosen beforehand, so that `base_url` (and with it the default
//! redirect URI `<base_url>/auth/callback/<name>`) is the real address.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use url::Url;
use warden::config::{Config, SocialProviderConfig};

use crate::backend_tests;
use crate::helpers::free_port;
use crate::helpers::{
    assert_ba_error, assert_error, bearer, captured_logs, remember_secret, session_set_cookie,
    spawn_app_with, spawn_app_with_clock, Backend, TestApp, TestUser,
};
use crate::oidc_provider::{self, OidcProvider};

const CLIENT_ID: &str = "warden-test-client";
const CLIENT_SECRET: &str = "test-client-secret-4f9a2c";

// ---------------------------------------------------------------------------
// setup

/// A generic OpenID Connect provider at `op` (discovery).
fn oidc(op: &OidcProvider) -> SocialProviderConfig {
    remember_secret(CLIENT_SECRET);
    SocialProviderConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        issuer: Some(op.issuer.clone()),
        ..Default::default()
    }
}

/// A plain OAuth 2.0 provider (the GitHub and Discord kinds) at `op`.
fn oauth2(op: &OidcProvider, userinfo: &str) -> SocialProviderConfig {
    remember_secret(CLIENT_SECRET);
    SocialProviderConfig {
        client_id: CLIENT_ID.into(),
        client_secret: Some(CLIENT_SECRET.into()),
        authorization_endpoint: Some(op.url("/authorize")),
        token_endpoint: Some(op.url("/token")),
        userinfo_endpoint: Some(op.url(userinfo)),
        ..Default::default()
    }
}

/// A provider, then a server at a known port configured by `configure`.
async fn setup_with(
    backend: Backend,
    mock_clock: bool,
    configure: impl FnOnce(&OidcProvider, &mut Config),
) -> (TestApp, OidcProvider) {
    let op = oidc_provider::start().await;
    let port = free_port();
    let tweak = |c: &mut Config| {
        c.listen = ([127, 0, 0, 1], port).into();
        c.base_url = format!("http://127.0.0.1:{port}");
        configure(&op, c);
    };
    let app = if mock_clock {
        spawn_app_with_clock(backend, tweak).await
    } else {
        spawn_app_with(backend, tweak).await
    };
    assert_eq!(app.addr, app.base_url, "the server listens at its base_url");
    (app, op)
}

/// A server with the generic OpenID Connect provider `acme`.
async fn setup(backend: Backend) -> (TestApp, OidcProvider) {
    setup_with(backend, false, |op, c| {
        c.social.insert("acme".into(), oidc(op));
    })
    .await
}

// ---------------------------------------------------------------------------
// a browser

/// Keeps the cookies the server sets (sending them back to the server
/// only) and never follows redirects by itself.
struct Browser {
    client: Client,
    origin: String,
    jar: Mutex<BTreeMap<String, String>>,
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("warden-tests-browser/1.0")
                .build()
                .unwrap(),
            origin: app.origin().to_owned(),
            jar: Mutex::new(BTreeMap::new()),
        }
    }

    fn cookie_header(&self) -> String {
        self.jar
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Response {
        let mut req = self.client.request(method, url);
        let to_server = url.starts_with(&format!("{}/", self.origin));
        if to_server {
            let cookies = self.cookie_header();
            if !cookies.is_empty() {
                req = req.header("cookie", cookies);
            }
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.unwrap();
        if to_server {
            self.keep_cookies(&res);
        }
        res
    }

    fn keep_cookies(&self, res: &Response) {
        let mut jar = self.jar.lock().unwrap();
        for c in res.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (name, value) = pair.trim().split_once('=').unwrap();
            if value.is_empty() || attrs.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                remember_secret(value);
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn get(&self, url: &str) -> Response {
        self.send(Method::GET, url, &[], None).await
    }

    /// A JSON POST from a page of the server's origin.
    async fn post(&self, url: &str, headers: &[(&str, &str)], body: &Value) -> Response {
        let origin = self.origin.clone();
        let mut h = vec![("origin", origin.as_str())];
        h.extend_from_slice(headers);
        self.send(Method::POST, url, &h, Some(body)).await
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().unwrap().get(name).cloned()
    }

    fn set_cookie(&self, name: &str, value: &str) {
        self.jar
            .lock()
            .unwrap()
            .insert(name.to_owned(), value.to_owned());
    }
}

const STATE_COOKIE: &str = "warden.oauth_state";
const SESSION_COOKIE: &str = "warden.session_token";
const TWO_FACTOR_COOKIE: &str = "warden.two_factor";

// ---------------------------------------------------------------------------
// the dance

/// The `Location` of a redirect.
fn location(res: &Response) -> String {
    assert_eq!(
        res.status(),
        StatusCode::FOUND,
        "expected a redirect, got {}",
        res.status()
    );
    res.headers()
        .get("location")
        .expect("a redirect has a Location")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The query of a URL (absolute, or a path on the server).
fn query(url: &str) -> BTreeMap<String, String> {
    let u = Url::parse(url)
        .or_else(|_| Url::parse("http://relative.invalid").unwrap().join(url))
        .unwrap_or_else(|e| panic!("{url:?}: {e}"));
    u.query_pairs().into_owned().collect()
}

/// The URL without its query.
fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(base, _)| base)
}

/// The start URL of the tutorial API's flow with these parameters.
fn start_url(app: &TestApp, provider: &str, params: &[(&str, &str)]) -> String {
    Url::parse_with_params(&app.url(&format!("/auth/signin/{provider}")), params)
        .unwrap()
        .to_string()
}

/// The browser at the provider's authorization URL: returns where the
/// provider sends it back (the server's callback).
async fn at_provider(op: &OidcProvider, browser: &Browser, authorize: &str) -> String {
    assert!(
        authorize.starts_with(&format!("{}/", op.issuer)),
        "{authorize}"
    );
    let q = query(authorize);
    remember_secret(&q["state"]);
    let res = browser.get(authorize).await;
    let back = location(&res);
    let q = query(&back);
    if let Some(code) = q.get("code") {
        remember_secret(code);
    }
    back
}

/// From the provider's authorization URL to the server's final redirect.
async fn finish(op: &OidcProvider, browser: &Browser, authorize: &str) -> String {
    let callback = at_provider(op, browser, authorize).await;
    assert!(callback.starts_with(&browser.origin), "{callback}");
    let res = browser.get(&callback).await;
    let landing = location(&res);
    if let Some(code) = query(&landing).get("code") {
        remember_secret(code);
    }
    landing
}

/// Starts the tutorial API's flow: the provider's authorization URL (the
/// state cookie is in the browser).
async fn start(
    app: &TestApp,
    browser: &Browser,
    provider: &str,
    params: &[(&str, &str)],
) -> String {
    let res = browser.get(&start_url(app, provider, params)).await;
    let to = location(&res);
    assert!(browser.cookie(STATE_COOKIE).is_some(), "state cookie set");
    to
}

/// The whole tutorial API flow in a new browser: the final redirect.
async fn api_flow(
    app: &TestApp,
    op: &OidcProvider,
    provider: &str,
    params: &[(&str, &str)],
) -> String {
    let browser = Browser::new(app);
    let authorize = start(app, &browser, provider, params).await;
    let landing = finish(op, &browser, &authorize).await;
    assert!(
        browser.cookie(STATE_COOKIE).is_none(),
        "the callback clears the state cookie"
    );
    landing
}

/// The one-time code of a successful landing on `expected` (the URL
/// without its query).
fn code_at(landing: &str, expected: &str) -> String {
    assert_eq!(without_query(landing), expected, "{landing}");
    let q = query(landing);
    assert!(!q.contains_key("error"), "{landing}");
    q.get("code")
        .unwrap_or_else(|| panic!("no code in {landing}"))
        .clone()
}

/// The `error` of a failed landing on `expected`.
fn error_at(landing: &str, expected: &str) -> String {
    assert_eq!(without_query(landing), expected, "{landing}");
    let q = query(landing);
    assert!(!q.contains_key("code"), "{landing}");
    q.get("error")
        .unwrap_or_else(|| panic!("no error in {landing}"))
        .clone()
}

async fn exchange(app: &TestApp, code: &str) -> Response {
    app.post_json("/auth/exchange", &json!({ "code": code }))
        .await
}

/// Exchanges a code for a session: the `{user, session}` body.
async fn signed_in(app: &TestApp, code: &str) -> Value {
    let res = exchange(app, code).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let token = body["session"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {body}"));
    remember_secret(token);
    body
}

/// Signs in with `acme` as the identity `claims`: the `{user, session}`.
async fn sign_in(app: &TestApp, op: &OidcProvider, claims: Value) -> Value {
    op.set_next(claims).await;
    let welcome = format!("{}/welcome", app.origin());
    let landing = api_flow(app, op, "acme", &[("callbackURL", &welcome)]).await;
    signed_in(app, &code_at(&landing, &welcome)).await
}

/// Signs in with `acme` as `claims`, expecting `error` on `callbackURL`.
async fn sign_in_error(app: &TestApp, op: &OidcProvider, claims: Value) -> String {
    op.set_next(claims).await;
    let welcome = format!("{}/welcome", app.origin());
    let landing = api_flow(app, op, "acme", &[("callbackURL", &welcome)]).await;
    error_at(&landing, &welcome)
}

/// The server's own error page (a path), where callbacks it cannot trust go.
const ERROR_PAGE: &str = "/api/auth/error";

// ---------------------------------------------------------------------------
// database

async fn users(app: &TestApp) -> i64 {
    app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await
}

async fn accounts_of(app: &TestApp, provider: &str, account_id: &str) -> i64 {
    app.count(
        r#"SELECT COUNT(*) FROM "account" WHERE "providerId" = ? AND "accountId" = ?"#,
        &[provider, account_id],
    )
    .await
}

async fn owner_of(app: &TestApp, provider: &str, account_id: &str) -> Option<String> {
    app.fetch_text(
        r#"SELECT "userId" FROM "account" WHERE "providerId" = ? AND "accountId" = ?"#,
        &[provider, account_id],
    )
    .await
}

async fn sessions_of(app: &TestApp, user_id: &str) -> i64 {
    app.count(
        r#"SELECT COUNT(*) FROM "session" WHERE "userId" = ?"#,
        &[user_id],
    )
    .await
}

async fn email_verified(app: &TestApp, user_id: &str) -> bool {
    app.count(
        r#"SELECT COUNT(*) FROM "user" WHERE "id" = ? AND "emailVerified" = TRUE"#,
        &[user_id],
    )
    .await
        == 1
}

async fn verify_email(app: &TestApp, user_id: &str) {
    let n = app
        .exec(
            r#"UPDATE "user" SET "emailVerified" = TRUE WHERE "id" = ?"#,
            &[user_id],
        )
        .await;
    assert_eq!(n, 1);
}

/// A user signed up with a password, with a verified email or not.
async fn local_user(app: &TestApp, verified: bool) -> TestUser {
    let user = app.new_user().await;
    assert!(!email_verified(app, &user.id).await);
    if verified {
        verify_email(app, &user.id).await;
    }
    user
}

async fn post_as(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    app.post(path)
        .header("authorization", bearer(token))
        .json(body)
        .send()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// sign-in and sign-up

async fn new_user_signs_up(backend: Backend) {
    let (app, op) = setup(backend).await;
    let welcome = format!("{}/welcome", app.origin());
    let fresh = format!("{}/fresh", app.origin());
    op.set_next(
        json!({"sub": "acme-1", "email": "Ada@Example.com", "email_verified": true,
        "name": "Ada Lovelace", "picture": "https://example.com/ada.png"}),
    )
    .await;

    let browser = Browser::new(&app);
    let res = browser
        .get(&start_url(
            &app,
            "acme",
            &[("callbackURL", &welcome), ("newUserCallbackURL", &fresh)],
        ))
        .await;
    let authorize = location(&res);
    let (pair, attrs) = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{STATE_COOKIE}=")))
        .and_then(|c| c.split_once(';'))
        .map(|(p, a)| (p.to_owned(), a.to_owned()))
        .expect("the state cookie is set");
    assert!(pair.len() > STATE_COOKIE.len() + 20, "{pair}");
    assert!(attrs.contains("HttpOnly"), "{attrs}");
    assert!(attrs.contains("SameSite=Lax"), "{attrs}");

    // What the server asks of the provider.
    let q = query(&authorize);
    assert_eq!(without_query(&authorize), op.url("/authorize"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], app.url("/auth/callback/acme"));
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(q["scope"].split(' ').any(|s| s == "openid"), "{authorize}");
    assert!(q["state"].len() >= 32, "{authorize}");
    assert!(q["nonce"].len() >= 32, "{authorize}");
    assert!(!q.contains_key("client_secret"), "{authorize}");

    let landing = finish(&op, &browser, &authorize).await;
    assert!(browser.cookie(STATE_COOKIE).is_none());
    assert!(browser.cookie(SESSION_COOKIE).is_none(), "no session yet");
    let code = code_at(&landing, &fresh);
    assert!(!landing.contains(&q["state"]), "{landing}");

    let body = signed_in(&app, &code).await;
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["user"]["email"], "ada@example.com", "{body}");
    assert_eq!(body["user"]["name"], "Ada Lovelace", "{body}");
    assert_eq!(users(&app).await, 1);
    assert_eq!(
        owner_of(&app, "acme", "acme-1").await,
        Some(user_id.clone())
    );
    assert_eq!(
        app.fetch_text(
            r#"SELECT "issuer" FROM "account" WHERE "providerId" = 'acme'"#,
            &[]
        )
        .await,
        Some(op.issuer.clone())
    );
    assert!(email_verified(&app, &user_id).await);
    // No password was set: there is no credential account.
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "account" WHERE "userId" = ?"#,
            &[&user_id]
        )
        .await,
        1
    );

    let token = body["session"]["token"].as_str().unwrap();
    let res = app.get_as("/profile", token).await;
    assert_eq!(res.status(), 200);
    let profile: Value = res.json().await.unwrap();
    assert_eq!(
        profile,
        json!({"id": user_id, "email": "ada@example.com", "name": "Ada Lovelace",
               "image": "https://example.com/ada.png"})
    );
    let stats = op.stats().await;
    assert_eq!(stats["token_requests"], 1, "{stats}");
}

async fn returning_user_signs_in(backend: Backend) {
    let (app, op) = setup(backend).await;
    let first = sign_in(
        &app,
        &op,
        json!({"sub": "acme-2", "email": "bob@example.com"}),
    )
    .await;
    let user_id = first["user"]["id"].as_str().unwrap().to_owned();

    // Same identity (even with another email now): same user, no new rows,
    // and the plain callback (not the new-user one).
    op.set_next(json!({"sub": "acme-2", "email": "bob.new@example.com"}))
        .await;
    let welcome = format!("{}/welcome", app.origin());
    let fresh = format!("{}/fresh", app.origin());
    let landing = api_flow(
        &app,
        &op,
        "acme",
        &[("callbackURL", &welcome), ("newUserCallbackURL", &fresh)],
    )
    .await;
    let second = signed_in(&app, &code_at(&landing, &welcome)).await;
    assert_eq!(second["user"]["id"], user_id.as_str());
    assert_ne!(second["session"]["token"], first["session"]["token"]);
    assert_eq!(users(&app).await, 1);
    assert_eq!(accounts_of(&app, "acme", "acme-2").await, 1);
    assert_eq!(sessions_of(&app, &user_id).await, 2);

    // Another identity with a new email: another user. What the provider
    // says of the profile is checked like user input.
    let other = sign_in(
        &app,
        &op,
        json!({"sub": "acme-3", "email": "carol@example.com", "name": "Carol\u{7}",
               "picture": "javascript:alert(1)"}),
    )
    .await;
    assert_ne!(other["user"]["id"], user_id.as_str());
    assert_eq!(users(&app).await, 2);
    let profile = app
        .get_json_as("/profile", other["session"]["token"].as_str().unwrap())
        .await;
    assert_eq!(profile["image"], Value::Null, "{profile}");
    assert_eq!(profile["name"], "carol", "{profile}");
}

async fn google_with_issuer_override(backend: Backend) {
    let (app, op) = setup_with(backend, false, |op, c| {
        c.social.insert("google".into(), oidc(op));
    })
    .await;
    op.set_next(json!({"sub": "g-108", "email": "gina@example.com", "name": "Gina"}))
        .await;
    let welcome = format!("{}/welcome", app.origin());
    let browser = Browser::new(&app);
    let authorize = start(&app, &browser, "google", &[("callbackURL", &welcome)]).await;
    assert_eq!(without_query(&authorize), op.url("/authorize"));
    assert_eq!(
        query(&authorize)["redirect_uri"],
        app.url("/auth/callback/google")
    );
    let landing = finish(&op, &browser, &authorize).await;
    let body = signed_in(&app, &code_at(&landing, &welcome)).await;
    assert_eq!(body["user"]["email"], "gina@example.com");
    assert_eq!(
        owner_of(&app, "google", "g-108").await.as_deref(),
        body["user"]["id"].as_str()
    );
    let stats = op.stats().await;
    assert!(stats["discovery_requests"].as_u64() >= Some(1), "{stats}");
    assert!(stats["jwks_requests"].as_u64() >= Some(1), "{stats}");
}

async fn github_with_endpoint_overrides(backend: Backend) {
    let (app, op) = setup_with(backend, false, |op, c| {
        c.social.insert("github".into(), oauth2(op, "/github/user"));
    })
    .await;
    op.set_next(
        json!({"sub": "583231", "email": "octo@example.com", "email_verified": true,
        "name": "The Octocat", "login": "octocat", "picture": "https://example.com/octo.png"}),
    )
    .await;
    let welcome = format!("{}/welcome", app.origin());
    let browser = Browser::new(&app);
    let authorize = start(&app, &browser, "github", &[("callbackURL", &welcome)]).await;
    let q = query(&authorize);
    assert_eq!(without_query(&authorize), op.url("/authorize"));
    assert_eq!(q["redirect_uri"], app.url("/auth/callback/github"));
    assert!(!q.contains_key("nonce"), "plain OAuth 2.0: {authorize}");
    let landing = finish(&op, &browser, &authorize).await;
    let body = signed_in(&app, &code_at(&landing, &welcome)).await;
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    // The primary address (not the verified secondary one listed first).
    assert_eq!(body["user"]["email"], "octo@example.com", "{body}");
    assert_eq!(body["user"]["name"], "The Octocat", "{body}");
    assert!(email_verified(&app, &user_id).await);
    assert_eq!(owner_of(&app, "github", "583231").await, Some(user_id));
    assert_eq!(
        app.fetch_text(
            r#"SELECT "issuer" FROM "account" WHERE "providerId" = 'github'"#,
            &[]
        )
        .await
        .as_deref(),
        Some("https://github.com")
    );
    let stats = op.stats().await;
    assert_eq!(stats["github_requests"], 2, "user and emails: {stats}");
    assert_eq!(stats["discovery_requests"], 0, "{stats}");
}

async fn discord_with_endpoint_overrides(backend: Backend) {
    let (app, op) = setup_with(backend, false, |op, c| {
        c.social
            .insert("discord".into(), oauth2(op, "/discord/users/@me"));
    })
    .await;
    op.set_next(
        json!({"sub": "80351110224678912", "email": "nelly@example.com",
        "email_verified": true, "name": "Nelly", "login": "nelly", "avatar": "a1b2c3d4"}),
    )
    .await;
    let welcome = format!("{}/welcome", app.origin());
    let landing = api_flow(&app, &op, "discord", &[("callbackURL", &welcome)]).await;
    let body = signed_in(&app, &code_at(&landing, &welcome)).await;
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(body["user"]["email"], "nelly@example.com", "{body}");
    assert!(email_verified(&app, &user_id).await);
    let token = body["session"]["token"].as_str().unwrap();
    let profile = app.get_json_as("/profile", token).await;
    assert_eq!(profile["name"], "Nelly", "{profile}");
    assert_eq!(
        profile["image"], "https://cdn.discordapp.com/avatars/80351110224678912/a1b2c3d4.png",
        "{profile}"
    );
    assert_eq!(
        owner_of(&app, "discord", "80351110224678912").await,
        Some(user_id)
    );
    assert_eq!(op.stats().await["discord_requests"], 1);
}

async fn betterauth_flow_sets_the_session_cookie(backend: Backend) {
    let (app, op) = setup_with(backend, false, |op, c| {
        c.social.insert("acme".into(), oidc(op));
        // The same provider, registered with BetterAuth's callback path.
        let mut ba = oidc(op);
        ba.redirect_uri = Some(format!("{}/api/auth/callback/acme-ba", c.base_url));
        c.social.insert("acme-ba".into(), ba);
    })
    .await;
    let dashboard = format!("{}/dashboard", app.origin());
    for (provider, sub, email) in [
        ("acme", "ba-1", "dora@example.com"),
        ("acme-ba", "ba-2", "eve@example.com"),
    ] {
        op.set_next(json!({"sub": sub, "email": email})).await;
        let browser = Browser::new(&app);
        let res = browser
            .post(
                &app.url("/api/auth/sign-in/social"),
                &[],
                &json!({"provider": provider, "callbackURL": dashboard}),
            )
            .await;
        assert_eq!(res.status(), 200);
        assert!(browser.cookie(STATE_COOKIE).is_some());
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["redirect"], true, "{body}");
        let authorize = body["url"].as_str().unwrap().to_owned();
        assert_eq!(
            query(&authorize)["redirect_uri"],
            app.url(&format!(
                "{}/callback/{provider}",
                if provider == "acme" {
                    "/auth"
                } else {
                    "/api/auth"
                }
            ))
        );

        let callback = at_provider(&op, &browser, &authorize).await;
        let res = browser.get(&callback).await;
        let (cookie, attrs) = session_set_cookie(&res).expect("the callback sets the session");
        assert!(attrs.contains("HttpOnly"), "{attrs}");
        assert_eq!(location(&res), dashboard);
        assert!(browser.cookie(STATE_COOKIE).is_none());
        assert_eq!(
            Some(cookie.split_once('=').unwrap().1.to_owned()),
            browser.cookie(SESSION_COOKIE)
        );

        let res = browser.get(&app.url("/api/auth/get-session")).await;
        assert_eq!(res.status(), 200);
        let session: Value = res.json().await.unwrap();
        assert_eq!(session["user"]["email"], email, "{session}");
        assert_eq!(
            owner_of(&app, provider, sub).await.as_deref(),
            session["user"]["id"].as_str()
        );
    }
    assert_eq!(users(&app).await, 2);

    // New users go to newUserCallbackURL, returning ones to callbackURL.
    let fresh = format!("{}/fresh", app.origin());
    for (sub, expected) in [("ba-3", &fresh), ("ba-3", &dashboard)] {
        op.set_next(json!({"sub": sub, "email": "fay@example.com"}))
            .await;
        let browser = Browser::new(&app);
        let authorize = ba_start(
            &app,
            &browser,
            json!({"provider": "acme", "callbackURL": dashboard, "newUserCallbackURL": fresh}),
        )
        .await;
        let callback = at_provider(&op, &browser, &authorize).await;
        let res = browser.get(&callback).await;
        assert!(session_set_cookie(&res).is_some());
        assert_eq!(&location(&res), expected);
    }

    // A refusal lands on errorCallbackURL, without a session.
    op.set_next(json!({"deny": true})).await;
    let oops = format!("{}/oops", app.origin());
    let browser = Browser::new(&app);
    let authorize = ba_start(
        &app,
        &browser,
        json!({"provider": "acme", "callbackURL": dashboard, "errorCallbackURL": oops}),
    )
    .await;
    let callback = at_provider(&op, &browser, &authorize).await;
    let res = browser.get(&callback).await;
    assert!(session_set_cookie(&res).is_none());
    assert_eq!(error_at(&location(&res), &oops), "access_denied");

    // disableRedirect only changes `redirect`.
    let res = Browser::new(&app)
        .post(
            &app.url("/api/auth/sign-in/social"),
            &[],
            &json!({"provider": "acme", "callbackURL": dashboard, "disableRedirect": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["redirect"], false, "{body}");
    assert!(body["url"].as_str().unwrap().starts_with(&op.issuer));

    // linkSocial, from a browser signed in with a password.
    let user = app.ba_sign_up().await;
    let browser = Browser::new(&app);
    let (name, value) = user.cookie.split_once('=').unwrap();
    browser.set_cookie(name, value);
    let res = browser
        .send(
            Method::POST,
            &app.url("/api/auth/link-social"),
            &[("origin", "https://evil.example")],
            Some(&json!({"provider": "acme", "callbackURL": dashboard})),
        )
        .await;
    assert_eq!(res.status(), 403, "a cross-site linkSocial");
    assert!(browser.cookie(STATE_COOKIE).is_none());
    let ba_link = |claims: Value| {
        let (app, op, browser, dashboard) = (&app, &op, &browser, &dashboard);
        async move {
            op.set_next(claims).await;
            let res = browser
                .post(
                    &app.url("/api/auth/link-social"),
                    &[],
                    &json!({"provider": "acme", "callbackURL": dashboard}),
                )
                .await;
            assert_eq!(res.status(), 200);
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["redirect"], true, "{body}");
            finish(op, browser, body["url"].as_str().unwrap()).await
        }
    };
    // An identity with another email: refused (without errorCallbackURL,
    // on BetterAuth's error page).
    let landing = ba_link(json!({"sub": "ba-4", "email": "elsewhere@example.com"})).await;
    assert_eq!(error_at(&landing, ERROR_PAGE), "email_does_not_match");
    assert_eq!(accounts_of(&app, "acme", "ba-4").await, 0);
    let landing = ba_link(json!({"sub": "ba-4", "email": user.email})).await;
    assert_eq!(landing, dashboard);
    assert_eq!(owner_of(&app, "acme", "ba-4").await, Some(user.id.clone()));
    let res = browser.get(&app.url("/api/auth/list-accounts")).await;
    assert_eq!(res.status(), 200);
    let accounts: Value = res.json().await.unwrap();
    assert_eq!(accounts.as_array().unwrap().len(), 2, "{accounts}");
}

/// `POST /api/auth/sign-in/social` from the browser: the provider URL.
async fn ba_start(app: &TestApp, browser: &Browser, body: Value) -> String {
    let res = browser
        .post(&app.url("/api/auth/sign-in/social"), &[], &body)
        .await;
    assert_eq!(res.status(), 200);
    assert!(browser.cookie(STATE_COOKIE).is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["redirect"], true, "{body}");
    body["url"].as_str().unwrap().to_owned()
}

// ---------------------------------------------------------------------------
// linking by email

async fn links_when_both_sides_verified(backend: Backend) {
    let (app, op) = setup(backend).await;
    let user = local_user(&app, true).await;
    let body = sign_in(
        &app,
        &op,
        json!({"sub": "link-1", "email": user.email.to_uppercase(), "email_verified": true}),
    )
    .await;
    assert_eq!(body["user"]["id"], user.id.as_str(), "{body}");
    assert_eq!(users(&app).await, 1);
    assert_eq!(
        owner_of(&app, "acme", "link-1").await,
        Some(user.id.clone())
    );
    // The password still works.
    assert_eq!(
        app.sign_in_as(&user.email, &user.password).await.status(),
        200
    );
}

async fn does_not_link_unverified_emails(backend: Backend) {
    let (app, op) = setup(backend).await;

    // The provider does not vouch for the address.
    let verified = local_user(&app, true).await;
    let error = sign_in_error(
        &app,
        &op,
        json!({"sub": "link-2", "email": verified.email, "email_verified": false}),
    )
    .await;
    assert_eq!(error, "account_not_linked");
    assert_eq!(accounts_of(&app, "acme", "link-2").await, 0);

    // The local address was never verified (anyone could have signed up
    // with it): the provider's word is not enough.
    let unverified = local_user(&app, false).await;
    let error = sign_in_error(
        &app,
        &op,
        json!({"sub": "link-3", "email": unverified.email, "email_verified": true}),
    )
    .await;
    assert_eq!(error, "account_not_linked");
    assert_eq!(accounts_of(&app, "acme", "link-3").await, 0);
    assert_eq!(users(&app).await, 2, "no user created either");
    assert_eq!(sessions_of(&app, &verified.id).await, 1);
    assert_eq!(sessions_of(&app, &unverified.id).await, 1);
}

async fn trusted_provider_links_verified_users(backend: Backend) {
    let (app, op) = setup_with(backend, false, |op, c| {
        c.social.insert(
            "acme".into(),
            SocialProviderConfig {
                trusted: true,
                ..oidc(op)
            },
        );
    })
    .await;
    let verified = local_user(&app, true).await;
    let body = sign_in(
        &app,
        &op,
        json!({"sub": "trust-1", "email": verified.email, "email_verified": false}),
    )
    .await;
    assert_eq!(body["user"]["id"], verified.id.as_str(), "{body}");
    assert_eq!(owner_of(&app, "acme", "trust-1").await, Some(verified.id));

    // Trust in the provider does not make an unverified local account safe.
    let unverified = local_user(&app, false).await;
    let error = sign_in_error(
        &app,
        &op,
        json!({"sub": "trust-2", "email": unverified.email, "email_verified": true}),
    )
    .await;
    assert_eq!(error, "account_not_linked");
    assert_eq!(accounts_of(&app, "acme", "trust-2").await, 0);
}

// ---------------------------------------------------------------------------
// explicit linking and unlinking

/// Links `acme` as `claims` to the user with `token`: the final redirect.
async fn link(app: &TestApp, op: &OidcProvider, token: &str, claims: Value) -> String {
    op.set_next(claims).await;
    let settings = format!("{}/settings", app.origin());
    let browser = Browser::new(app);
    let res = browser
        .post(
            &app.url("/auth/link-social"),
            &[("authorization", &bearer(token))],
            &json!({"provider": "acme", "callbackURL": settings}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(browser.cookie(STATE_COOKIE).is_some());
    let body: Value = res.json().await.unwrap();
    let authorize = body["url"].as_str().unwrap().to_owned();
    let landing = finish(op, &browser, &authorize).await;
    assert!(landing.starts_with(&settings), "{landing}");
    landing
}

async fn link_social_while_signed_in(backend: Backend) {
    let (app, op) = setup(backend).await;
    let user = local_user(&app, false).await;
    let settings = format!("{}/settings", app.origin());
    // An identity with another email is refused (as BetterAuth does).
    let landing = link(
        &app,
        &op,
        &user.token,
        json!({"sub": "mine-1", "email": "elsewhere@example.com"}),
    )
    .await;
    assert_eq!(error_at(&landing, &settings), "email_does_not_match");
    assert_eq!(accounts_of(&app, "acme", "mine-1").await, 0);
    // The user's own address links, verified on neither side: the signed-in
    // user asked for it.
    let landing = link(
        &app,
        &op,
        &user.token,
        json!({"sub": "mine-1", "email": user.email.to_uppercase(), "email_verified": false}),
    )
    .await;
    assert_eq!(landing, settings);
    assert_eq!(
        owner_of(&app, "acme", "mine-1").await,
        Some(user.id.clone())
    );
    assert_eq!(users(&app).await, 1);

    let res = app.get_as("/auth/accounts", &user.token).await;
    assert_eq!(res.status(), 200);
    let accounts: Value = res.json().await.unwrap();
    let list = accounts.as_array().unwrap();
    assert_eq!(list.len(), 2, "{accounts}");
    let acme = list
        .iter()
        .find(|a| a["providerId"] == "acme")
        .unwrap_or_else(|| panic!("{accounts}"));
    assert_eq!(acme["accountId"], "mine-1");
    assert!(acme["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "openid"));
    assert!(list.iter().any(|a| a["providerId"] == "credential"));
    for a in list {
        assert!(a.get("accessToken").is_none() && a.get("password").is_none());
    }

    // The BetterAuth API lists it too.
    let (cookie, _) = app.ba_sign_in(&user.email, &user.password).await;
    let res = app.ba_get("/api/auth/list-accounts", &cookie).await;
    assert_eq!(res.status(), 200);
    let accounts: Value = res.json().await.unwrap();
    assert!(
        accounts
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["providerId"] == "acme"
                && a["accountId"] == "mine-1"
                && a["userId"] == user.id.as_str()),
        "{accounts}"
    );

    // Signing in with it now signs in as this user (whatever email the
    // provider gives now).
    let body = sign_in(
        &app,
        &op,
        json!({"sub": "mine-1", "email": "elsewhere@example.com"}),
    )
    .await;
    assert_eq!(body["user"]["id"], user.id.as_str());

    // An identity that belongs to someone else cannot be linked.
    let other = sign_in(
        &app,
        &op,
        json!({"sub": "theirs", "email": "them@example.com"}),
    )
    .await;
    let landing = link(
        &app,
        &op,
        &user.token,
        json!({"sub": "theirs", "email": user.email}),
    )
    .await;
    assert_eq!(error_at(&landing, &settings), "account_already_linked");
    assert_eq!(
        owner_of(&app, "acme", "theirs").await.as_deref(),
        other["user"]["id"].as_str()
    );

    // Not signed in: 401, and no redirect.
    let res = app
        .post_json(
            "/auth/link-social",
            &json!({"provider": "acme", "callbackURL": "/settings"}),
        )
        .await;
    assert_error(res, 401, "unauthenticated").await;
}

async fn unlink_keeps_the_last_way_to_sign_in(backend: Backend) {
    let (app, op) = setup(backend).await;

    // A user who only ever signed in with the provider.
    let social = sign_in(
        &app,
        &op,
        json!({"sub": "only-1", "email": "solo@example.com"}),
    )
    .await;
    let token = social["session"]["token"].as_str().unwrap().to_owned();
    let res = post_as(
        &app,
        "/auth/unlink-account",
        &token,
        &json!({"providerId": "acme"}),
    )
    .await;
    assert_error(res, 400, "invalid_argument").await;
    assert_eq!(accounts_of(&app, "acme", "only-1").await, 1);
    let res = app
        .post("/api/auth/unlink-account")
        .header("authorization", bearer(&token))
        .header("origin", app.origin())
        .json(&json!({"providerId": "acme"}))
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 400, "FAILED_TO_UNLINK_LAST_ACCOUNT").await;
    assert_eq!(accounts_of(&app, "acme", "only-1").await, 1);

    // A user with a password and a linked identity: either can go, not both.
    let user = local_user(&app, false).await;
    link(
        &app,
        &op,
        &user.token,
        json!({"sub": "both-1", "email": user.email}),
    )
    .await;
    let res = post_as(
        &app,
        "/auth/unlink-account",
        &user.token,
        &json!({"providerId": "acme", "accountId": "someone-else"}),
    )
    .await;
    assert_error(res, 404, "not_found").await;
    let res = post_as(
        &app,
        "/auth/unlink-account",
        &user.token,
        &json!({"providerId": "acme", "accountId": "both-1"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    assert_eq!(accounts_of(&app, "acme", "both-1").await, 0);
    let res = post_as(
        &app,
        "/auth/unlink-account",
        &user.token,
        &json!({"providerId": "credential"}),
    )
    .await;
    assert_error(res, 400, "invalid_argument").await;
    assert_eq!(
        app.sign_in_as(&user.email, &user.password).await.status(),
        200
    );

    // Linked again, the password can go (through the BetterAuth API).
    link(
        &app,
        &op,
        &user.token,
        json!({"sub": "both-1", "email": user.email}),
    )
    .await;
    let (cookie, _) = app.ba_sign_in(&user.email, &user.password).await;
    let res = app
        .ba_post(
            "/api/auth/unlink-account",
            &cookie,
            &json!({"providerId": "credential"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    assert_ne!(
        app.sign_in_as(&user.email, &user.password).await.status(),
        200
    );
    let body = sign_in(&app, &op, json!({"sub": "both-1"})).await;
    assert_eq!(body["user"]["id"], user.id.as_str());
}

// ---------------------------------------------------------------------------
// state, replay and forged callbacks

async fn tampered_or_missing_state_is_refused(backend: Backend) {
    let (app, op) = setup(backend).await;
    let welcome = format!("{}/welcome", app.origin());

    // The state parameter changed on the way back.
    let browser = Browser::new(&app);
    let authorize = start(&app, &browser, "acme", &[("callbackURL", &welcome)]).await;
    let callback = at_provider(&op, &browser, &authorize).await;
    let state = query(&callback)["state"].clone();
    let mut flipped = state.clone().into_bytes();
    flipped[5] = if flipped[5] == b'A' { b'B' } else { b'A' };
    let tampered = callback.replace(&state, std::str::from_utf8(&flipped).unwrap());
    let res = browser.get(&tampered).await;
    let landing = location(&res);
    assert_eq!(error_at(&landing, ERROR_PAGE), "state_mismatch");
    assert!(browser.cookie(STATE_COOKIE).is_none());
    let page = browser.get(&app.url(&landing)).await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("state_mismatch"));

    // No state at all.
    let browser = Browser::new(&app);
    let authorize = start(&app, &browser, "acme", &[("callbackURL", &welcome)]).await;
    let callback = at_provider(&op, &browser, &authorize).await;
    let stateless = edit_query(&callback, |q| {
        q.into_iter().filter(|(k, _)| k != "state").collect()
    });
    let res = browser.get(&stateless).await;
    assert_eq!(error_at(&location(&res), ERROR_PAGE), "invalid_state");

    // A state of this browser's, brought back to another provider's callback.
    let browser = Browser::new(&app);
    let authorize = start(&app, &browser, "acme", &[("callbackURL", &welcome)]).await;
    let callback = at_provider(&op, &browser, &authorize).await;
    let elsewhere = callback.replace("/auth/callback/acme?", "/auth/callback/nope?");
    assert_ne!(elsewhere, callback);
    let res = browser.get(&elsewhere).await;
    assert_eq!(error_at(&location(&res), ERROR_PAGE), "invalid_state");

    assert_eq!(users(&app).await, 0);
}

async fn state_cookie_must_match(backend: Backend) {
    let (app, op) = setup(backend).await;
    let welcome = format!("{}/welcome", app.origin());

    // Without the state cookie (the callback opened in another browser).
    let victim = Browser::new(&app);
    let authorize = start(&app, &victim, "acme", &[("callbackURL", &welcome)]).await;
    let callback = at_provider(&op, &victim, &authorize).await;
    let other = Browser::new(&app);
    let res = other.get(&callback).await;
    assert_eq!(error_at(&location(&res), ERROR_PAGE), "state_mismatch");

    // With the state cookie of another flow (login CSRF: an attacker's
    // callback URL fed to a victim who started a flow of their own).
    op.set_next(json!({"sub": "attacker", "email": "mallory@example.com"}))
        .await;
    let attacker = Browser::new(&app);
    let authorize = start(&app, &attacker, "acme", &[("callbackURL", &welcome)]).await;
    let attacker_callback = at_provider(&op, &attacker, &authorize).await;
    let victim = Browser::new(&app);
    start(&app, &victim, "acme", &[("callbackURL", &welcome)]).await;
    let res = victim.get(&attacker_callback).await;
    assert_eq!(error_at(&location(&res), ERROR_PAGE), "state_mismatch");
    assert_eq!(users(&app).await, 0);
}

async fn replayed_callback_is_refused(backend: Backend) {
    let (app, op) = setup(backend).await;
    let welcome = format!("{}/welcome", app.origin());

    // Tutorial API.
    op.set_next(json!({"sub": "replay-1", "email": "rita@example.com"}))
        .await;
    let browser = Browser::new(&app);
    let authorize = start(&app, &browser, "acme", &[("callbackURL", &welcome)]).await;
    let state_cookie = browser.cookie(STATE_COOKIE).unwrap();
    let callback = at_provider(&op, &browser, &authorize).await;
    let res = browser.get(&callback).await;
    let body = signed_in(&app, &code_at(&location(&res), &welcome)).await;
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    // The same URL again, even with the state cookie put back.
    browser.set_cookie(STATE_COOKIE, &state_cookie);
    let res = browser.get(&callback).await;
    assert_eq!(error_at(&location(&res), ERROR_PAGE), "invalid_state");
    assert_eq!(sessions_of(&app, &user_id).await, 1);

    // BetterAuth API: the replay does not start a second session.
    op.set_next(json!({"sub": "replay-2", "email": "sam@example.com"}))
        .await;
    let browser = Browser::new(&app);
    let res = browser
        .post(
            &app.url("/api/auth/sign-in/social"),
            &[],
            &json!({"provider": "acme", "callbackURL": welcome}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let state_cookie = browser.cookie(STATE_COOKIE).unwrap();
    let authorize = res.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = at_provider(&op, &browser, &authorize).await;
    let res = browser.get(&callback).await;
    assert!(session_set_cookie(&res).is_some());
    assert_eq!(location(&res), welcome);
    let user_id = owner_of(&app, "acme", "replay-2").await.unwrap();
    assert_eq!(sessions_of(&app, &user_id).await, 1);
    browser.set_cookie(STATE_COOKIE, &state_cookie);
    let res = browser.get(&callback).await;
    assert!(session_set_cookie(&res).is_none());
    assert_eq!(error_at(&location(&res), ERROR_PAGE), "invalid_state");
    assert_eq!(sessions_of(&app, &user_id).await, 1);
    assert_eq!(users(&app).await, 2);
}

// ---------------------------------------------------------------------------
// what the provider says

async fn bad_id_tokens_are_refused(backend: Backend) {
    let (app, op) = setup(backend).await;
    for (overrides, expected) in [
        (json!({"nonce": "wrong"}), "nonce_mismatch"),
        (json!({"nonce": null}), "nonce_mismatch"),
        (json!({"exp": 1_000_000_000}), "id_token_expired"),
        (json!({"iss": "http://evil.example"}), "wrong_issuer"),
        (json!({"aud": "someone-else"}), "wrong_audience"),
    ] {
        let error = sign_in_error(
            &app,
            &op,
            json!({"sub": "bad-1", "email": "bad@example.com", "id_token_overrides": overrides}),
        )
        .await;
        assert_eq!(error, expected, "{overrides}");
    }
    assert_eq!(users(&app).await, 0);
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "session""#, &[]).await, 0);
    // The same identity, with a good token, then works.
    sign_in(
        &app,
        &op,
        json!({"sub": "bad-1", "email": "bad@example.com"}),
    )
    .await;
}

async fn wrong_iss_in_the_callback_is_refused(backend: Backend) {
    let (app, op) = setup(backend).await;
    let welcome = format!("{}/welcome", app.origin());
    let errors = format!("{}/oops", app.origin());
    let browser = Browser::new(&app);
    let authorize = start(
        &app,
        &browser,
        "acme",
        &[("callbackURL", &welcome), ("errorCallbackURL", &errors)],
    )
    .await;
    let callback = at_provider(&op, &browser, &authorize).await;
    assert_eq!(query(&callback)["iss"], op.issuer);
    let forged = edit_query(&callback, |q| {
        q.into_iter()
            .map(|(k, v)| match k.as_str() {
                "iss" => (k, "http://evil.example".to_owned()),
                _ => (k, v),
            })
            .collect()
    });
    let res = browser.get(&forged).await;
    assert_eq!(error_at(&location(&res), &errors), "issuer_mismatch");
    assert_eq!(
        op.stats().await["token_requests"],
        0,
        "the code is not redeemed"
    );
    assert_eq!(users(&app).await, 0);
}

async fn denied_consent_goes_to_the_error_callback(backend: Backend) {
    let (app, op) = setup(backend).await;
    op.set_next(json!({"deny": true})).await;
    let welcome = format!("{}/welcome", app.origin());
    let errors = format!("{}/sign-in?failed=1", app.origin());
    let landing = api_flow(
        &app,
        &op,
        "acme",
        &[("callbackURL", &welcome), ("errorCallbackURL", &errors)],
    )
    .await;
    assert!(
        landing.starts_with(&format!("{errors}&")),
        "keeps the error callback's query: {landing}"
    );
    let q = query(&landing);
    assert_eq!(q["error"], "access_denied", "{landing}");
    assert_eq!(q["failed"], "1");
    assert!(!q.contains_key("code"));
    assert_eq!(op.stats().await["token_requests"], 0);
    assert_eq!(users(&app).await, 0);
}

async fn sign_up_can_be_disabled(backend: Backend) {
    let (app, op) = setup_with(backend, false, |op, c| {
        c.social.insert(
            "acme".into(),
            SocialProviderConfig {
                sign_up: Some(false),
                ..oidc(op)
            },
        );
    })
    .await;
    let error = sign_in_error(
        &app,
        &op,
        json!({"sub": "nu-1", "email": "newbie@example.com"}),
    )
    .await;
    assert_eq!(error, "signup_disabled");
    assert_eq!(users(&app).await, 0);
    assert_eq!(accounts_of(&app, "acme", "nu-1").await, 0);

    // Existing users still link and sign in.
    let user = local_user(&app, true).await;
    let body = sign_in(&app, &op, json!({"sub": "nu-2", "email": user.email})).await;
    assert_eq!(body["user"]["id"], user.id.as_str());
}

// ---------------------------------------------------------------------------
// the start endpoints

async fn untrusted_callback_urls_are_refused(backend: Backend) {
    let (app, op) = setup(backend).await;
    let welcome = format!("{}/welcome", app.origin());
    for params in [
        vec![("callbackURL", "https://evil.example/")],
        vec![("callbackURL", "//evil.example/x")],
        vec![
            ("callbackURL", &welcome),
            ("errorCallbackURL", "https://evil.example"),
        ],
        vec![
            ("callbackURL", &welcome),
            ("newUserCallbackURL", "https://evil.example"),
        ],
    ] {
        let res = app
            .client
            .get(start_url(&app, "acme", &params))
            .send()
            .await
            .unwrap();
        assert!(res.headers().get("location").is_none());
        assert!(res.headers().get("set-cookie").is_none());
        assert_error(res, 403, "permission_denied").await;
    }
    for body in [
        json!({"provider": "acme", "callbackURL": "https://evil.example"}),
        json!({"provider": "acme", "callbackURL": welcome, "errorCallbackURL": "https://evil.example"}),
    ] {
        let res = app
            .post("/api/auth/sign-in/social")
            .header("origin", app.origin())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.headers().get("set-cookie").is_none());
        assert_ba_error(res, 403, "INVALID_CALLBACK_URL").await;
    }
    let user = local_user(&app, false).await;
    let res = post_as(
        &app,
        "/auth/link-social",
        &user.token,
        &json!({"provider": "acme", "callbackURL": "https://evil.example"}),
    )
    .await;
    assert_error(res, 403, "permission_denied").await;
    assert_eq!(op.stats().await["authorize_requests"], 0);
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "verification" WHERE "identifier" LIKE 'oauth-state:%'"#,
            &[]
        )
        .await,
        0,
        "no state saved"
    );
}

async fn unknown_provider_is_404(backend: Backend) {
    let (app, _op) = setup(backend).await;
    let res = app
        .get("/auth/signin/nope?callbackURL=/welcome")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("set-cookie").is_none());
    assert_error(res, 404, "not_found").await;
    let res = app
        .post("/api/auth/sign-in/social")
        .header("origin", app.origin())
        .json(&json!({"provider": "nope", "callbackURL": "/welcome"}))
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 404, "PROVIDER_NOT_FOUND").await;
    let user = local_user(&app, false).await;
    let res = post_as(
        &app,
        "/auth/link-social",
        &user.token,
        &json!({"provider": "nope"}),
    )
    .await;
    assert_error(res, 404, "not_found").await;
}

// ---------------------------------------------------------------------------
// the one-time code

async fn one_time_code_works_once(backend: Backend) {
    let (app, op) = setup(backend).await;
    op.set_next(json!({"sub": "once-1", "email": "once@example.com"}))
        .await;
    let welcome = format!("{}/welcome", app.origin());
    let landing = api_flow(&app, &op, "acme", &[("callbackURL", &welcome)]).await;
    let code = code_at(&landing, &welcome);
    let body = signed_in(&app, &code).await;
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    assert_error(exchange(&app, &code).await, 400, "invalid_argument").await;
    assert_error(exchange(&app, "not-a-code").await, 400, "invalid_argument").await;
    assert_eq!(sessions_of(&app, &user_id).await, 1);
}

async fn codes_and_states_expire(backend: Backend) {
    let (app, op) = setup_with(backend, true, |op, c| {
        c.social.insert("acme".into(), oidc(op));
    })
    .await;
    let welcome = format!("{}/welcome", app.origin());

    // The one-time code lasts 60 seconds.
    let landing = api_flow(&app, &op, "acme", &[("callbackURL", &welcome)]).await;
    let code = code_at(&landing, &welcome);
    app.clock.advance(Duration::from_secs(61));
    assert_error(exchange(&app, &code).await, 400, "invalid_argument").await;

    // A flow must come back within 10 minutes.
    let browser = Browser::new(&app);
    let authorize = start(&app, &browser, "acme", &[("callbackURL", &welcome)]).await;
    let callback = at_provider(&op, &browser, &authorize).await;
    app.clock.advance(Duration::from_secs(601));
    let res = browser.get(&callback).await;
    assert_eq!(error_at(&location(&res), ERROR_PAGE), "invalid_state");
    assert_eq!(app.count(r#"SELECT COUNT(*) FROM "session""#, &[]).await, 0);
}

// ---------------------------------------------------------------------------
// two-factor

/// pyotp's current code for an `otpauth://` URI (Python from
/// `python_env.rs`).
fn totp_now(uri: &str) -> String {
    let interpreter = crate::python_env::python();
    let python = interpreter.display();
    let out = Command::new(&interpreter)
        .args([
            "-c",
            "import pyotp,sys;print(pyotp.parse_uri(sys.argv[1]).now())",
            uri,
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        out.status.success(),
        "{python} failed (without pyotp? see tests/support/requirements.txt): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    remember_secret(&code);
    code
}

async fn two_factor_users_get_a_challenge(backend: Backend) {
    let (app, op) = setup(backend).await;
    let user = local_user(&app, true).await;
    let res = post_as(
        &app,
        "/auth/two-factor/enable",
        &user.token,
        &json!({"password": user.password}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let setup: Value = res.json().await.unwrap();
    let uri = setup["totpURI"].as_str().unwrap().to_owned();
    remember_secret(&uri);
    for c in setup["backupCodes"].as_array().unwrap() {
        remember_secret(c.as_str().unwrap());
    }
    let res = post_as(
        &app,
        "/auth/two-factor/confirm",
        &user.token,
        &json!({"code": totp_now(&uri)}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(sessions_of(&app, &user.id).await, 1);

    // Tutorial API: the exchange answers with a challenge.
    op.set_next(json!({"sub": "tf-1", "email": user.email}))
        .await;
    let welcome = format!("{}/welcome", app.origin());
    let landing = api_flow(&app, &op, "acme", &[("callbackURL", &welcome)]).await;
    let res = exchange(&app, &code_at(&landing, &welcome)).await;
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).is_none());
    let body: Value = res.json().await.unwrap();
    remember_secret(body["challenge"].as_str().unwrap_or_default());
    assert_eq!(body["twoFactorRequired"], true, "{body}");
    assert!(body.get("session").is_none(), "{body}");
    assert!(body["challenge"].as_str().is_some_and(|c| c.len() >= 20));
    assert_eq!(owner_of(&app, "acme", "tf-1").await, Some(user.id.clone()));
    assert_eq!(sessions_of(&app, &user.id).await, 1);

    // BetterAuth API: back to the callback with twoFactorRedirect and the
    // challenge cookie, without a session.
    op.set_next(json!({"sub": "tf-1", "email": user.email}))
        .await;
    let browser = Browser::new(&app);
    let res = browser
        .post(
            &app.url("/api/auth/sign-in/social"),
            &[],
            &json!({"provider": "acme", "callbackURL": welcome}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let authorize = res.json::<Value>().await.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let callback = at_provider(&op, &browser, &authorize).await;
    let res = browser.get(&callback).await;
    assert!(session_set_cookie(&res).is_none());
    assert_eq!(location(&res), format!("{welcome}?twoFactorRedirect=true"));
    assert!(browser.cookie(TWO_FACTOR_COOKIE).is_some());
    assert!(browser.cookie(SESSION_COOKIE).is_none());
    let res = browser.get(&app.url("/api/auth/get-session")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
    assert_eq!(sessions_of(&app, &user.id).await, 1);
}

// ---------------------------------------------------------------------------
// storage

async fn provider_tokens_are_encrypted(backend: Backend) {
    let (app, op) = setup(backend).await;
    sign_in(
        &app,
        &op,
        json!({"sub": "enc-1", "email": "enc@example.com"}),
    )
    .await;
    for column in ["accessToken", "idToken"] {
        let stored = app
            .fetch_text(
                &format!(r#"SELECT "{column}" FROM "account" WHERE "providerId" = 'acme'"#),
                &[],
            )
            .await
            .unwrap_or_else(|| panic!("{column} is stored"));
        assert!(
            stored.len() > 100 && stored.bytes().all(|b| b.is_ascii_hexdigit()),
            "{column}: {stored}"
        );
        // Not merely hex-encoded: the provider's tokens are JWTs ("eyJ...").
        let bytes = hex::decode(&stored).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("eyJ"), "{column} in clear: {text}");
    }
    // A second sign-in stores new ciphertexts.
    let first = app
        .fetch_text(
            r#"SELECT "accessToken" FROM "account" WHERE "providerId" = 'acme'"#,
            &[],
        )
        .await;
    sign_in(
        &app,
        &op,
        json!({"sub": "enc-1", "email": "enc@example.com"}),
    )
    .await;
    let second = app
        .fetch_text(
            r#"SELECT "accessToken" FROM "account" WHERE "providerId" = 'acme'"#,
            &[],
        )
        .await;
    assert!(second.is_some());
    assert_ne!(first, second);
    // Nor are they logged (the provider's tokens are JWTs).
    let logs = captured_logs();
    let jwt_lines: Vec<&str> = logs.lines().filter(|l| has_jwt(l)).collect();
    assert!(jwt_lines.is_empty(), "a JWT in the logs: {jwt_lines:#?}");
}

// ---------------------------------------------------------------------------
// failures of the provider, and their codes

/// The `error` codes README.md documents for social sign-in (its
/// "**Errors** end at `errorCallbackURL` ..." paragraph).
fn documented_errors() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let start = readme
        .find("- **Errors** end at")
        .expect("README.md documents the social sign-in errors");
    let paragraph = &readme[start..];
    let paragraph = &paragraph[..paragraph.find("\n\n").unwrap_or(paragraph.len())];
    let codes: Vec<String> = paragraph
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(str::to_owned)
        .collect();
    assert!(codes.len() >= 15, "{codes:?}");
    codes
}

/// The query of a URL as name-value pairs, in order.
type Pairs = Vec<(String, String)>;

/// Rewrites the query of a callback URL.
fn edit_query(url: &str, edit: impl Fn(Pairs) -> Pairs) -> String {
    let mut u = Url::parse(url).unwrap();
    let pairs = edit(u.query_pairs().into_owned().collect());
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

async fn callback_failures_have_their_codes(backend: Backend) {
    let (app, op) = setup(backend).await;
    let welcome = format!("{}/welcome", app.origin());
    let flow = |edit: fn(Pairs) -> Pairs| {
        let (app, op, welcome) = (&app, &op, &welcome);
        async move {
            let browser = Browser::new(app);
            let authorize = start(app, &browser, "acme", &[("callbackURL", welcome)]).await;
            let callback = at_provider(op, &browser, &authorize).await;
            let res = browser.get(&edit_query(&callback, edit)).await;
            error_at(&location(&res), welcome)
        }
    };
    // No code.
    let error = flow(|q| q.into_iter().filter(|(k, _)| k != "code").collect()).await;
    assert_eq!(error, "invalid_code");
    // A code the provider never issued.
    let error = flow(|q| {
        q.into_iter()
            .map(|(k, v)| {
                if k == "code" {
                    (k, "forged-code".into())
                } else {
                    (k, v)
                }
            })
            .collect()
    })
    .await;
    assert_eq!(error, "token_exchange_failed");
    // A provider error other than a refusal; its description is not
    // carried over.
    let error = flow(|q| {
        let mut q: Vec<_> = q.into_iter().filter(|(k, _)| k != "code").collect();
        q.push(("error".into(), "<script>alert(1)</script>".into()));
        q.push(("error_description".into(), "<b>oops</b>".into()));
        q
    })
    .await;
    assert_eq!(error, "provider_error");
    let error = flow(|q| {
        let mut q: Vec<_> = q.into_iter().filter(|(k, _)| k != "code").collect();
        q.push(("error".into(), "consent_required".into()));
        q
    })
    .await;
    assert_eq!(error, "access_denied");

    // No email anywhere: not in the ID token, not from userinfo.
    let error = sign_in_error(&app, &op, json!({"sub": "nm-1", "email": null})).await;
    assert_eq!(error, "email_missing");
    // Userinfo speaking of another subject than the ID token.
    let error = sign_in_error(
        &app,
        &op,
        json!({"sub": "ui-1", "email": "ui@example.com",
               "id_token_overrides": {"email": null, "sub": "ui-2"}}),
    )
    .await;
    assert_eq!(error, "userinfo_failed");
    assert_eq!(users(&app).await, 0);

    // The email from userinfo when the ID token has none.
    let body = sign_in(
        &app,
        &op,
        json!({"sub": "ui-3", "email": "ui3@example.com", "id_token_overrides": {"email": null}}),
    )
    .await;
    assert_eq!(body["user"]["email"], "ui3@example.com");
    assert!(op.stats().await["userinfo_requests"].as_u64() >= Some(1));

    // A new signing key (published in the JWKS), of another algorithm. (The
    // JWKS is refetched for an unknown key at most once a while: one
    // rotation per test.)
    op.set_next(json!({"signing_alg": "ES256"})).await;
    op.set_next(json!({"sub": "rot-1", "email": "rot@example.com"}))
        .await;
    let landing = api_flow(&app, &op, "acme", &[("callbackURL", &welcome)]).await;
    signed_in(&app, &code_at(&landing, &welcome)).await;
}

async fn every_failure_code_is_documented(backend: Backend) {
    let (app, op) = setup(backend).await;
    let welcome = format!("{}/welcome", app.origin());
    let mut seen = vec![];
    // Linking an identity with another email than the user's.
    let user = local_user(&app, true).await;
    let landing = link(
        &app,
        &op,
        &user.token,
        json!({"sub": "other-email", "email": "other@example.com"}),
    )
    .await;
    seen.push((
        "link with another email",
        error_at(&landing, &format!("{}/settings", app.origin())),
    ));
    // The token response without an ID token.
    seen.push((
        "no ID token",
        sign_in_error(&app, &op, json!({"no_id_token": true})).await,
    ));
    // An ID token issued in the future.
    let later = chrono::Utc::now().timestamp() + 3600;
    seen.push((
        "iat in an hour",
        sign_in_error(&app, &op, json!({"id_token_overrides": {"iat": later}})).await,
    ));
    // The provider gone between its redirect and the callback.
    let browser = Browser::new(&app);
    let authorize = start(&app, &browser, "acme", &[("callbackURL", &welcome)]).await;
    let callback = at_provider(&op, &browser, &authorize).await;
    drop(op);
    let res = browser.get(&callback).await;
    seen.push(("provider down", error_at(&location(&res), &welcome)));

    let documented = documented_errors();
    let undocumented: Vec<_> = seen
        .iter()
        .filter(|(_, code)| !documented.contains(code))
        .collect();
    assert!(
        undocumented.is_empty(),
        "error codes outside the documented list: {undocumented:?}"
    );
}

async fn state_failures_without_the_betterauth_api(backend: Backend) {
    let (app, op) = setup_with(backend, false, |op, c| {
        c.betterauth.enabled = false;
        c.social.insert("acme".into(), oidc(op));
    })
    .await;
    let welcome = format!("{}/welcome", app.origin());
    let attacker = Browser::new(&app);
    let authorize = start(&app, &attacker, "acme", &[("callbackURL", &welcome)]).await;
    let callback = at_provider(&op, &attacker, &authorize).await;
    let victim = Browser::new(&app);
    let res = victim.get(&callback).await;
    if res.status() == StatusCode::FOUND {
        // A redirect must lead to a page that exists.
        let landing = location(&res);
        assert_eq!(query(&landing)["error"], "state_mismatch", "{landing}");
        let page = victim.get(&app.url(&landing)).await;
        assert_eq!(page.status(), 200, "GET {landing}");
    } else {
        let message = assert_error(res, 400, "invalid_argument").await;
        assert!(message.contains("state_mismatch"), "{message}");
    }
    // The flow still completes in the browser that started it.
    let res = attacker.get(&callback).await;
    signed_in(&app, &code_at(&location(&res), &welcome)).await;
}

// ---------------------------------------------------------------------------
// pre-hijacking

/// An attacker signs up through a provider that does not vouch for the
/// address, with the victim's email; the victim, who owns the address,
/// later takes the account over with a password reset. The attacker's
/// identity must not still open the account the victim now uses.
async fn unverified_social_sign_up_does_not_survive_a_password_reset(backend: Backend) {
    // Pre-account takeover: an attacker signs up through a provider that
    // does not vouch for the email, in the victim's name. Were the user
    // created, the victim's later password reset would hand them an account
    // the attacker's identity still opens. So no user is created from an
    // unverified provider email.
    let op = oidc_provider::start().await;
    let port = free_port();
    let (app, _sink) = crate::mail_sink::spawn_app_with_sink(backend, |c| {
        c.listen = ([127, 0, 0, 1], port).into();
        c.base_url = format!("http://127.0.0.1:{port}");
        c.social.insert("acme".into(), oidc(&op));
    })
    .await;
    let victim = "victim@example.com";
    op.set_next(json!({"sub": "attacker-1", "email": victim, "email_verified": false}))
        .await;
    let welcome = format!("{}/welcome", app.origin());
    let landing = api_flow(&app, &op, "acme", &[("callbackURL", &welcome)]).await;
    let q = query(&landing);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("email_not_verified"),
        "{landing}"
    );
    assert!(!q.contains_key("code"), "{landing}");
    assert_eq!(app.users_with_email(victim).await, 0);
    // The victim can still sign up with a password.
    let res = app.sign_up_as(victim, "Victim-Pass-0987!", "Victim").await;
    remember_secret("Victim-Pass-0987!");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    remember_secret(body["session"]["token"].as_str().unwrap());
}

/// A provider whose discovery document cannot be fetched: the browser
/// start ends at the error callback (`discovery_failed`), BetterAuth's
/// client gets 503 PROVIDER_UNAVAILABLE; never a 500.
async fn unreachable_provider_is_reported(backend: Backend) {
    let closed = free_port();
    let app = spawn_app_with(backend, |c| {
        remember_secret(CLIENT_SECRET);
        c.social.insert(
            "down".into(),
            SocialProviderConfig {
                client_id: CLIENT_ID.into(),
                client_secret: Some(CLIENT_SECRET.into()),
                issuer: Some(format!("http://127.0.0.1:{closed}")),
                ..Default::default()
            },
        );
    })
    .await;
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .get(app.url("/auth/signin/down?callbackURL=/home&errorCallbackURL=/oops"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        "/oops?error=discovery_failed"
    );
    let res = app
        .post_json(
            "/api/auth/sign-in/social",
            &json!({"provider": "down", "callbackURL": "/home"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "PROVIDER_UNAVAILABLE");
}

/// Whether `text` holds something shaped like a JWT: `eyJ<b64url>.eyJ`.
fn has_jwt(text: &str) -> bool {
    text.match_indices("eyJ").any(|(i, _)| {
        let rest = &text[i..];
        let header = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        rest[header..].starts_with(".eyJ")
    })
}

/// A banned user gets no session from a provider either: the bearer flow's
/// code is refused at the exchange, and a BetterAuth-API flow lands on its
/// callback with `error=banned`.
async fn banned_users_cannot_sign_in_with_a_provider(backend: Backend) {
    let (app, op) = setup(backend).await;
    let first = sign_in(
        &app,
        &op,
        json!({"sub": "ban-1", "email": "mallory@example.com"}),
    )
    .await;
    let user_id = first["user"]["id"].as_str().unwrap().to_owned();
    let admin = app.new_admin().await;
    let res = app
        .post("/api/auth/admin/ban-user")
        .header("authorization", format!("Bearer {}", admin.token))
        .json(&json!({"userId": user_id, "banReason": "abuse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // The session the provider gave is over.
    let res = app
        .get_as("/profile", first["session"]["token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 401);
    // Bearer flow: the code is issued, the exchange refuses it.
    op.set_next(json!({"sub": "ban-1", "email": "mallory@example.com"}))
        .await;
    let welcome = format!("{}/welcome", app.origin());
    let landing = api_flow(&app, &op, "acme", &[("callbackURL", &welcome)]).await;
    let res = exchange(&app, &code_at(&landing, &welcome)).await;
    let message = assert_error(res, 403, "permission_denied").await;
    assert!(message.contains("banned"), "{message}");
    // BetterAuth-API flow: the error callback says why.
    op.set_next(json!({"sub": "ban-1", "email": "mallory@example.com"}))
        .await;
    let browser = Browser::new(&app);
    let authorize = ba_start(
        &app,
        &browser,
        json!({"provider": "acme", "callbackURL": welcome, "errorCallbackURL": format!("{}/oops", app.origin())}),
    )
    .await;
    let callback = at_provider(&op, &browser, &authorize).await;
    let res = browser.get(&callback).await;
    assert_eq!(
        error_at(&location(&res), &format!("{}/oops", app.origin())),
        "banned"
    );
    assert_eq!(sessions_of(&app, &user_id).await, 0);
}

backend_tests!(
    new_user_signs_up,
    returning_user_signs_in,
    google_with_issuer_override,
    github_with_endpoint_overrides,
    discord_with_endpoint_overrides,
    betterauth_flow_sets_the_session_cookie,
    links_when_both_sides_verified,
    does_not_link_unverified_emails,
    trusted_provider_links_verified_users,
    link_social_while_signed_in,
    unlink_keeps_the_last_way_to_sign_in,
    tampered_or_missing_state_is_refused,
    state_cookie_must_match,
    replayed_callback_is_refused,
    bad_id_tokens_are_refused,
    wrong_iss_in_the_callback_is_refused,
    denied_consent_goes_to_the_error_callback,
    sign_up_can_be_disabled,
    untrusted_callback_urls_are_refused,
    unknown_provider_is_404,
    one_time_code_works_once,
    codes_and_states_expire,
    two_factor_users_get_a_challenge,
    provider_tokens_are_encrypted,
    callback_failures_have_their_codes,
    every_failure_code_is_documented,
    state_failures_without_the_betterauth_api,
    unverified_social_sign_up_does_not_survive_a_password_reset,
    unreachable_provider_is_reported,
    banned_users_cannot_sign_in_with_a_provider,
);
