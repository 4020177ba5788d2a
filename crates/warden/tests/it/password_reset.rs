//! Password reset by emailed link, through a real SMTP server (an aiosmtpd
//! sink started by the test): the tests read the delivered message, follow
//! its link over HTTP and check the outcome.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    assert_ba_error, assert_error, leaked_secrets, remember_secret, Backend, TestApp,
};
use crate::mail_sink::{spawn_app_with_sink, MailSink};

const WAIT: Duration = Duration::from_secs(10);

async fn app_with_sink(b: Backend) -> (TestApp, MailSink) {
    spawn_app_with_sink(b, |_| {}).await
}

/// The token in the link of the last reset mail to `to`.
async fn reset_token(sink: &MailSink, to: &str, n: usize) -> (String, String) {
    let mails = sink.wait_for(to, n, WAIT).await;
    let mail = mails.last().unwrap();
    assert!(
        mail.subject.contains("Reset your Acme password"),
        "{}",
        mail.subject
    );
    let link = mail
        .links()
        .into_iter()
        .find(|l| l.contains("token=") || l.contains("/reset-password/"))
        .unwrap_or_else(|| panic!("no reset link in: {}", mail.text));
    // `...?token=<t>` (tutorial API) or `.../reset-password/<t>?...` (BetterAuth).
    let token = match link.split_once("token=") {
        Some((_, rest)) => rest.split(['&', '#']).next().unwrap().to_owned(),
        None => link
            .split("/reset-password/")
            .nth(1)
            .unwrap()
            .split(['?', '#'])
            .next()
            .unwrap()
            .to_owned(),
    };
    remember_secret(&token);
    (link, token)
}

async fn reset_by_mail_on_the_tutorial_api(b: Backend) {
    let (app, sink) = app_with_sink(b).await;
    let user = app.new_user().await;
    let res = app
        .post_json(
            "/auth/request-password-reset",
            &json!({"email": user.email, "redirectTo": "http://localhost:5173/reset"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    let (link, token) = reset_token(&sink, &user.email, 1).await;
    assert!(
        link.starts_with("http://localhost:5173/reset?token="),
        "{link}"
    );
    assert!(token.len() >= 32, "at least 128 bits: {token}");
    // The database holds only a hash of the token.
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "verification" WHERE "identifier" LIKE ?"#,
            &[&format!("%{token}%")]
        )
        .await,
        0
    );

    // An unknown email: the same answer, and no mail.
    let res = app
        .post_json(
            "/auth/request-password-reset",
            &json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), answer);

    // A refused password does not use the link up.
    let res = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": token, "newPassword": "password1"}),
        )
        .await;
    assert_error(res, 400, "invalid_argument").await;
    remember_secret("Brand-New-Secret-1");
    let res = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": token, "newPassword": "Brand-New-Secret-1"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Every old session is gone; only the new password works.
    assert_error(
        app.get_as("/profile", &user.token).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.sign_in_as(&user.email, &user.password).await.status(),
        401
    );
    assert_eq!(
        app.sign_in_as(&user.email, "Brand-New-Secret-1")
            .await
            .status(),
        200
    );
    // A notice follows.
    let mails = sink.wait_for(&user.email, 2, WAIT).await;
    assert!(
        mails[1].subject.contains("password was changed"),
        "{}",
        mails[1].subject
    );
    // The link works once.
    let res = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": token, "newPassword": "Another-Secret-2"}),
        )
        .await;
    let msg = assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("token"), "{msg}");
    // Nothing went to the unknown address.
    assert!(sink
        .messages()
        .iter()
        .all(|m| !m.is_to("nobody@example.com")));
    // Bad input.
    let res = app
        .post_json(
            "/auth/request-password-reset",
            &json!({"email": user.email, "redirectTo": "https://evil.example/steal"}),
        )
        .await;
    assert_error(res, 403, "permission_denied").await;
    let res = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": "", "newPassword": "Whatever-123"}),
        )
        .await;
    assert_error(res, 400, "invalid_argument").await;
    let res = app
        .post_json("/auth/request-password-reset", &json!({"email": 5}))
        .await;
    assert_error(res, 400, "invalid_argument").await;
}

async fn reset_links_expire(b: Backend) {
    let (app, sink) = app_with_sink(b).await;
    let user = app.new_user().await;
    app.post_json(
        "/auth/request-password-reset",
        &json!({"email": user.email}),
    )
    .await;
    let (link, token) = reset_token(&sink, &user.email, 1).await;
    assert!(
        link.starts_with("http://localhost:4000/reset-password?token="),
        "{link}"
    );
    app.clock.advance(Duration::from_secs(3600 + 1));
    let res = app
        .post_json(
            "/auth/reset-password",
            &json!({"token": token, "newPassword": "Brand-New-Secret-1"}),
        )
        .await;
    assert_error(res, 400, "invalid_argument").await;
    assert_eq!(
        app.sign_in_as(&user.email, &user.password).await.status(),
        200
    );
}

async fn reset_by_mail_on_the_betterauth_api(b: Backend) {
    let (app, sink) = app_with_sink(b).await;
    let user = app.ba_sign_up().await;
    let res = app
        .post_json(
            "/api/auth/request-password-reset",
            &json!({"email": user.email, "redirectTo": "http://localhost:5173/new-password"}),
        )
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": true, "message": "If this email exists in our system, check your email for the reset link"})
    );
    let (link, token) = reset_token(&sink, &user.email, 1).await;
    let path = link
        .strip_prefix("http://localhost:4000")
        .expect("a link on base_url");
    assert!(
        path.starts_with(&format!("/api/auth/reset-password/{token}?callbackURL=")),
        "{path}"
    );
    // Following the link: a redirect to the front end with the token.
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirect.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        format!("http://localhost:5173/new-password?token={token}").as_str()
    );
    // A wrong token: the front end gets ?error=INVALID_TOKEN.
    let res = no_redirect
        .get(app.url("/api/auth/reset-password/not-a-token?callbackURL=%2Fnew"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/new?error=INVALID_TOKEN");
    // An untrusted callback is refused.
    let res = no_redirect
        .get(app.url(&format!(
            "/api/auth/reset-password/{token}?callbackURL=https%3A%2F%2Fevil.example"
        )))
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 403, "INVALID_CALLBACK_URL").await;

    let res = app
        .post_json(
            "/api/auth/reset-password",
            &json!({"newPassword": "short", "token": token}),
        )
        .await;
    assert_ba_error(res, 400, "PASSWORD_TOO_SHORT").await;
    remember_secret("Brand-New-Secret-1");
    let res = app
        .post_json(
            "/api/auth/reset-password",
            &json!({"newPassword": "Brand-New-Secret-1", "token": token}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let res = app
        .post_json(
            "/api/auth/reset-password",
            &json!({"newPassword": "Brand-New-Secret-2", "token": token}),
        )
        .await;
    assert_ba_error(res, 400, "INVALID_TOKEN").await;
    let res = app.ba_get("/api/auth/get-session", &user.cookie).await;
    assert_eq!(res.json::<Value>().await.unwrap(), Value::Null);
}

/// Two uses of one link at the same moment: at most one succeeds.
async fn a_reset_token_is_consumed_atomically(b: Backend) {
    let (app, sink) = app_with_sink(b).await;
    let user = app.new_user().await;
    app.post_json(
        "/auth/request-password-reset",
        &json!({"email": user.email}),
    )
    .await;
    let (_, token) = reset_token(&sink, &user.email, 1).await;
    let attempts = (0..8).map(|i| {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/auth/reset-password"),
            token.clone(),
        );
        tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"token": token, "newPassword": format!("Concurrent-Secret-{i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let mut ok = 0;
    for a in attempts.collect::<Vec<_>>() {
        if a.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

/// With SMTP (production's transport), no log line holds a reset token.
async fn no_reset_token_in_the_logs(b: Backend) {
    let (app, sink) = app_with_sink(b).await;
    let user = app.new_user().await;
    app.post_json(
        "/auth/request-password-reset",
        &json!({"email": user.email}),
    )
    .await;
    let (link, token) = reset_token(&sink, &user.email, 1).await;
    remember_secret(&link);
    app.post_json(
        "/auth/reset-password",
        &json!({"token": token, "newPassword": "Brand-New-Secret-1"}),
    )
    .await;
    sink.wait_for(&user.email, 2, WAIT).await;
    let leaks = leaked_secrets();
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    assert!(crate::helpers::captured_logs().contains("password reset"));
}

backend_tests!(
    reset_by_mail_on_the_tutorial_api,
    reset_links_expire,
    reset_by_mail_on_the_betterauth_api,
    a_reset_token_is_consumed_atomically,
    no_reset_token_in_the_logs,
);
