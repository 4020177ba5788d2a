//! Two-factor by email: BetterAuth's `otp` method (`two-factor/send-otp`,
//! `two-factor/verify-otp`, `two-factor/enable {method: "otp"}`) and the
//! tutorial API's `/auth/two-factor/{enable-otp,send-otp,verify-otp}`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_ba_error, assert_error, Backend, TestApp};
use crate::passwordless::{app, ba, cookie_named, get_session, nth_code, other_code};

async fn email_app(b: Backend) -> TestApp {
    app(b, |c| {
        c.two_factor.email_otp = true;
        c.magic_link.enabled = false;
    })
    .await
}

/// Signs in with the password; returns the challenge cookie.
async fn challenge(app: &TestApp, email: &str, password: &str, trust: Option<&str>) -> String {
    let res = ba(
        app,
        "/sign-in/email",
        trust,
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let cookie = cookie_named(&res, "two_factor").expect("a challenge");
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"twoFactorRedirect": true, "twoFactorMethods": ["otp"]})
    );
    cookie
}

async fn codes_by_email_complete_a_password_sign_in(b: Backend) {
    let app = email_app(b).await;
    let u = app.ba_sign_up().await;
    let res = ba(
        &app,
        "/two-factor/enable",
        Some(&u.cookie),
        json!({"password": "wrong-password-1", "method": "otp"}),
    )
    .await;
    assert_ba_error(res, 400, "INVALID_PASSWORD").await;
    let res = ba(
        &app,
        "/two-factor/enable",
        Some(&u.cookie),
        json!({"password": u.password, "method": "sms"}),
    )
    .await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("method"), "{msg}");
    let res = ba(
        &app,
        "/two-factor/enable",
        Some(&u.cookie),
        json!({"password": u.password, "method": "otp"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"method": "otp"}));
    assert_eq!(
        get_session(&app, &u.cookie).await["user"]["twoFactorEnabled"],
        true
    );

    let c = challenge(&app, &u.email, &u.password, None).await;
    // Before any code was sent.
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": "123456"}),
    )
    .await;
    assert_ba_error(res, 400, "OTP_HAS_EXPIRED").await;
    let res = ba(&app, "/two-factor/send-otp", Some(&c), json!({})).await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let code = nth_code(&app, &u.email, 1).await;
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": "12a"}),
    )
    .await;
    let msg = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(msg.contains("code"), "{msg}");
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": other_code(&code)}),
    )
    .await;
    assert_ba_error(res, 401, "INVALID_CODE").await;
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": code, "trustDevice": true}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let session = cookie_named(&res, "session_token").expect("signed in");
    let trust = cookie_named(&res, "trust_device").expect("a trusted device");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["email"], u.email.as_str());
    assert_eq!(
        get_session(&app, &session).await["user"]["id"],
        u.id.as_str()
    );
    // Replay: the challenge is used up.
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": code}),
    )
    .await;
    assert_ba_error(res, 401, "INVALID_TWO_FACTOR_COOKIE").await;
    // The trusted device skips the second step.
    let res = ba(
        &app,
        "/sign-in/email",
        Some(&trust),
        json!({"email": u.email, "password": u.password}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(cookie_named(&res, "session_token").is_some());
    // No challenge and no session.
    let res = ba(&app, "/two-factor/send-otp", None, json!({})).await;
    assert_ba_error(res, 401, "INVALID_TWO_FACTOR_COOKIE").await;
}

async fn code_attempts_and_expiry(b: Backend) {
    let app = email_app(b).await;
    let u = app.ba_sign_up().await;
    ba(
        &app,
        "/two-factor/enable",
        Some(&u.cookie),
        json!({"password": u.password, "method": "otp"}),
    )
    .await;
    let c = challenge(&app, &u.email, &u.password, None).await;
    ba(&app, "/two-factor/send-otp", Some(&c), json!({})).await;
    let code = nth_code(&app, &u.email, 1).await;
    let wrong = other_code(&code);
    // The same limit as TOTP: the 5th wrong code ends the challenge.
    for _ in 0..4 {
        let res = ba(
            &app,
            "/two-factor/verify-otp",
            Some(&c),
            json!({"code": wrong}),
        )
        .await;
        assert_ba_error(res, 401, "INVALID_CODE").await;
    }
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": wrong}),
    )
    .await;
    assert_ba_error(res, 400, "TOO_MANY_ATTEMPTS_REQUEST_NEW_CODE").await;
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": code}),
    )
    .await;
    assert_ne!(res.status(), 200, "the right code no longer helps");

    // Expiry (3 minutes) under the mock clock.
    let c = challenge(&app, &u.email, &u.password, None).await;
    ba(&app, "/two-factor/send-otp", Some(&c), json!({})).await;
    let code = nth_code(&app, &u.email, 2).await;
    app.clock.advance(Duration::from_secs(181));
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": code}),
    )
    .await;
    assert_ba_error(res, 400, "OTP_HAS_EXPIRED").await;
    // A new code works.
    ba(&app, "/two-factor/send-otp", Some(&c), json!({})).await;
    let code = nth_code(&app, &u.email, 3).await;
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&c),
        json!({"code": code}),
    )
    .await;
    assert_eq!(res.status(), 200);
    // At most 3 codes a minute to one address (`email_otp.per_email_max`).
    let c = challenge(&app, &u.email, &u.password, None).await;
    let res = ba(&app, "/two-factor/send-otp", Some(&c), json!({})).await;
    assert_ba_error(res, 429, "TOO_MANY_REQUESTS").await;
}

/// With a session instead of a challenge, `send-otp` and `verify-otp`
/// turn the method on (BetterAuth's flow for a user without two-factor).
async fn a_signed_in_user_turns_codes_on_with_a_code(b: Backend) {
    let app = email_app(b).await;
    let u = app.ba_sign_up().await;
    let res = ba(&app, "/two-factor/send-otp", Some(&u.cookie), json!({})).await;
    assert_eq!(res.status(), 200);
    let code = nth_code(&app, &u.email, 1).await;
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&u.cookie),
        json!({"code": other_code(&code)}),
    )
    .await;
    assert_ba_error(res, 401, "INVALID_CODE").await;
    assert_eq!(
        get_session(&app, &u.cookie).await["user"]["twoFactorEnabled"],
        false
    );
    let res = ba(
        &app,
        "/two-factor/verify-otp",
        Some(&u.cookie),
        json!({"code": code}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["twoFactorEnabled"], true);
    challenge(&app, &u.email, &u.password, None).await;
}

async fn tutorial_api_two_factor_by_email(b: Backend) {
    let app = email_app(b).await;
    let u = app.new_user().await;
    let res = app
        .post("/auth/two-factor/enable-otp")
        .header("authorization", format!("Bearer {}", u.token))
        .json(&json!({"password": u.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"twoFactorEnabled": true})
    );
    let res = app.sign_in_as(&u.email, &u.password).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["twoFactorRequired"], true);
    assert_eq!(body["methods"], json!(["otp"]));
    let challenge = body["challenge"].as_str().unwrap().to_owned();
    let res = app.post_json("/auth/two-factor/send-otp", &json!({})).await;
    let msg = assert_error(res, 400, "invalid_argument").await;
    assert!(msg.contains("challenge"), "{msg}");
    let res = app
        .post_json(
            "/auth/two-factor/send-otp",
            &json!({"challenge": challenge}),
        )
        .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"success": true}));
    let code = nth_code(&app, &u.email, 1).await;
    let res = app
        .post_json(
            "/auth/two-factor/verify-otp",
            &json!({"challenge": challenge, "code": other_code(&code)}),
        )
        .await;
    assert_error(res, 401, "unauthenticated").await;
    let res = app
        .post_json(
            "/auth/two-factor/verify-otp",
            &json!({"challenge": challenge, "code": code}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["session"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get_json_as("/profile", &token).await["email"],
        u.email.as_str()
    );
    let res = app
        .post_json("/auth/two-factor/send-otp", &json!({"challenge": "nope"}))
        .await;
    assert_error(res, 401, "unauthenticated").await;
}

backend_tests!(
    codes_by_email_complete_a_password_sign_in,
    code_attempts_and_expiry,
    a_signed_in_user_turns_codes_on_with_a_code,
    tutorial_api_two_factor_by_email,
);
