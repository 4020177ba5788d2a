//! Email verification and email change through a real SMTP server: the
//! tests read each delivered message, follow its link over HTTP and check
//! the outcome.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    assert_ba_error, assert_error, remember_secret, session_set_cookie, Backend, TestApp,
};
use crate::mail_sink::{spawn_app_with_sink, MailSink, SentMail};

const WAIT: Duration = Duration::from_secs(10);

async fn app(b: Backend, auto_sign_in: bool) -> (TestApp, MailSink) {
    spawn_app_with_sink(b, |c| {
        c.email_verification.required = true;
        c.email_verification.auto_sign_in = auto_sign_in;
    })
    .await
}

/// The link in a message (the one carrying a token), its path on the
/// server, and the token.
fn link_of(mail: &SentMail) -> (String, String) {
    let link = mail
        .links()
        .into_iter()
        .find(|l| l.contains("token="))
        .unwrap_or_else(|| panic!("no link in: {}", mail.text));
    let token = link
        .split("token=")
        .nth(1)
        .unwrap()
        .split(['&', '#'])
        .next()
        .unwrap()
        .to_owned();
    remember_secret(&token);
    let path = link
        .strip_prefix("http://localhost:4000")
        .expect("links point at base_url")
        .to_owned();
    (path, token)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn verification_required_on_the_tutorial_api(b: Backend) {
    let (app, sink) = app(b, false).await;
    let email = "vera@example.com";
    let res = app.sign_up_as(email, "Verify-Me-Pass-1", "Vera").await;
    assert_eq!(res.status(), 200);
    assert!(
        session_set_cookie(&res).is_none(),
        "no session before verification"
    );
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["session"], Value::Null);
    assert_eq!(first["emailVerificationRequired"], true);
    // Signing up again with the same email: the same shape of answer, and
    // the owner gets a notice instead of a link.
    let res = app.sign_up_as(email, "Another-Pass-22", "Mallory").await;
    assert_eq!(res.status(), 200);
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["session"], Value::Null);
    assert_eq!(again["emailVerificationRequired"], true);
    let mails = sink.wait_for(email, 2, WAIT).await;
    let (verify, notice): (Vec<&SentMail>, Vec<&SentMail>) = mails
        .iter()
        .partition(|m| m.subject.contains("Confirm your email"));
    assert_eq!(
        (verify.len(), notice.len()),
        (1, 1),
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(notice[0].subject.contains("tried to sign up"));
    // Unverified: sign-in is refused (403) and a new link is sent.
    let res = app.sign_in_as(email, "Verify-Me-Pass-1").await;
    let msg = assert_error(res, 403, "permission_denied").await;
    assert!(msg.contains("not verified"), "{msg}");
    let mails = sink.wait_for(email, 3, WAIT).await;
    let (path, token) = link_of(&mails[2]);
    assert!(path.starts_with("/auth/verify-email?token="), "{path}");
    // Following the link verifies; the first link works too, once.
    let (first_path, _) = link_of(verify[0]);
    let res = app.get(&first_path).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["email"], email);
    let res = app.get(&first_path).send().await.unwrap();
    assert_error(res, 400, "invalid_argument").await;
    assert_eq!(
        app.sign_in_as(email, "Verify-Me-Pass-1").await.status(),
        200
    );
    // A verified user's resend request sends nothing, and answers the same.
    let res = app
        .post_json("/auth/send-verification-email", &json!({"email": email}))
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let _ = token;
    // Bad input.
    let res = app
        .get("/auth/verify-email?token=nope")
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;
    let res = app
        .post_json(
            "/auth/send-verification-email",
            &json!({"email": email, "callbackURL": "https://evil.example/"}),
        )
        .await;
    assert_error(res, 403, "permission_denied").await;
    assert_eq!(
        app.count(r#"SELECT COUNT(*) FROM "user""#, &[]).await,
        1,
        "the second sign-up created nothing"
    );
}

async fn verification_links_redirect_expire_and_auto_sign_in(b: Backend) {
    let (app, sink) = app(b, true).await;
    let res = app
        .post_json(
            "/api/auth/sign-up/email",
            &json!({"name": "Ada", "email": "ada@example.com", "password": "Verify-Me-Pass-1", "callbackURL": "/welcome"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(session_set_cookie(&res).is_none());
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token"], Value::Null);
    let res = app
        .post_json(
            "/api/auth/sign-in/email",
            &json!({"email": "ada@example.com", "password": "Verify-Me-Pass-1"}),
        )
        .await;
    assert_ba_error(res, 403, "EMAIL_NOT_VERIFIED").await;
    // Two links (sign-up's, with its callbackURL, and the refused
    // sign-in's); mail is sent in the background, so in either order.
    let mails = sink.wait_for("ada@example.com", 2, WAIT).await;
    let mut links: Vec<(String, String)> = mails.iter().map(link_of).collect();
    links.sort_by_key(|(p, _)| !p.contains("callbackURL=%2Fwelcome"));
    let (path, _) = &links[0];
    assert!(path.starts_with("/api/auth/verify-email?token="), "{path}");
    assert!(path.contains("callbackURL=%2Fwelcome"), "{path}");
    // The second link (sent at the refused sign-in, which named no
    // callbackURL: "/") expires: the clock moves past its hour.
    app.clock.advance(Duration::from_secs(3601));
    let (late, _) = &links[1];
    let res = no_redirects().get(app.url(late)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/?error=INVALID_TOKEN");
    // Ask again; follow it in time: a redirect with a session cookie.
    let res = app
        .post_json(
            "/api/auth/send-verification-email",
            &json!({"email": "ada@example.com", "callbackURL": "/welcome"}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let mails = sink.wait_for("ada@example.com", 3, WAIT).await;
    let (path, _) = link_of(&mails[2]);
    let res = no_redirects().get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/welcome");
    let (cookie, _) = session_set_cookie(&res).expect("auto sign-in sets the cookie");
    remember_secret(cookie.split_once('=').unwrap().1);
    let s: Value = app
        .ba_get("/api/auth/get-session", &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["emailVerified"], true);
}

async fn email_change_needs_the_new_address_to_confirm(b: Backend) {
    let (app, sink) = app(b, false).await;
    // A verified user: sign up, follow the link, sign in.
    app.post_json(
        "/api/auth/sign-up/email",
        &json!({"name": "Old", "email": "old@example.com", "password": "Verify-Me-Pass-1"}),
    )
    .await;
    let mails = sink.wait_for("old@example.com", 1, WAIT).await;
    let (path, verify_token) = link_of(&mails[0]);
    let res = no_redirects().get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let (cookie, _) = app.ba_sign_in("old@example.com", "Verify-Me-Pass-1").await;

    let res = app
        .ba_post(
            "/api/auth/change-email",
            &cookie,
            &json!({"newEmail": "new@example.com"}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let to_new = sink.wait_for("new@example.com", 1, WAIT).await;
    assert!(to_new[0].subject.contains("Confirm your new email"));
    let notice = sink.wait_for("old@example.com", 2, WAIT).await;
    assert!(notice[1].subject.contains("change of your Acme email"));
    // Nothing changed yet.
    let s: Value = app
        .ba_get("/api/auth/get-session", &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["email"], "old@example.com");
    // A token for another flow (the used verification token) does nothing.
    let res = app
        .post_json(
            "/api/auth/reset-password",
            &json!({"token": verify_token, "newPassword": "Brand-New-Secret-1"}),
        )
        .await;
    assert_ba_error(res, 400, "INVALID_TOKEN").await;
    let (path, change_token) = link_of(&to_new[0]);
    let res = app
        .post_json(
            "/api/auth/reset-password",
            &json!({"token": change_token, "newPassword": "Brand-New-Secret-1"}),
        )
        .await;
    assert_ba_error(res, 400, "INVALID_TOKEN").await;
    // Following the link moves the account (then sends the browser to "/").
    let res = no_redirects().get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/");
    // Used once only; without a callbackURL the answer is JSON.
    let bare = path.split("&callbackURL").next().unwrap();
    let res = app.get(bare).send().await.unwrap();
    assert_ba_error(res, 401, "INVALID_TOKEN").await;
    let s: Value = app
        .ba_get("/api/auth/get-session", &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["email"], "new@example.com");
    assert_eq!(
        app.sign_in_as("new@example.com", "Verify-Me-Pass-1")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.sign_in_as("old@example.com", "Verify-Me-Pass-1")
            .await
            .status(),
        401
    );
    // Bad input: the same address, not signed in.
    let res = app
        .ba_post(
            "/api/auth/change-email",
            &cookie,
            &json!({"newEmail": "new@example.com"}),
        )
        .await;
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    let res = app
        .post_json(
            "/api/auth/change-email",
            &json!({"newEmail": "x@example.com"}),
        )
        .await;
    assert_ba_error(res, 401, "UNAUTHORIZED").await;
}

/// With auto sign-in on, following a verification link signs the user in;
/// a banned user's link verifies the email and starts no session.
async fn banned_user_gets_no_session_from_a_verification_link(b: Backend) {
    let (app, sink) = app(b, true).await;
    let email = "mallory@example.com";
    for api in ["ba", "tutorial"] {
        let email = format!("{api}-{email}");
        let path = if api == "ba" {
            "/api/auth/sign-up/email"
        } else {
            "/auth/signup"
        };
        let res = app
            .post_json(
                path,
                &json!({"name": "Mallory", "email": email, "password": "Verify-Me-Pass-1", "callbackURL": "/welcome"}),
            )
            .await;
        assert_eq!(res.status(), 200);
        let n = app
            .exec(
                r#"UPDATE "user" SET "banned" = true WHERE "email" = ?"#,
                &[&email],
            )
            .await;
        assert_eq!(n, 1);
        let mails = sink.wait_for(&email, 1, WAIT).await;
        let (link, _) = link_of(&mails[0]);
        let res = no_redirects().get(app.url(&link)).send().await.unwrap();
        assert!(session_set_cookie(&res).is_none(), "{api}: no session");
        if link.contains("callbackURL") {
            assert_eq!(res.status(), 302, "{api}");
            let location = res.headers()["location"].to_str().unwrap();
            assert_eq!(location, "/welcome?error=BANNED_USER", "{api}");
        } else {
            // The tutorial's link names no callback: the answer says why.
            let message = assert_error(res, 403, "permission_denied").await;
            assert!(message.contains("banned"), "{message}");
        }
        let sessions = app
            .count(
                r#"SELECT COUNT(*) FROM "session" s JOIN "user" u ON u."id" = s."userId" WHERE u."email" = ?"#,
                &[&email],
            )
            .await;
        assert_eq!(sessions, 0, "{api}");
    }
}

backend_tests!(
    verification_required_on_the_tutorial_api,
    verification_links_redirect_expire_and_auto_sign_in,
    banned_user_gets_no_session_from_a_verification_link,
    email_change_needs_the_new_address_to_confirm,
);
