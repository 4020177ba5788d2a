//! A BetterAuth database works unchanged: its scrypt hashes verify, and are
//! upgraded to argon2id on sign-in.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::helpers::{assert_error, spawn_app, spawn_app_with, Backend};

// Made by Python's hashlib, independently of Warden, following BetterAuth's
// recipe (scrypt N=16384 r=16 p=1 dkLen=64 over the NFKC password, with the
// 32-character hex salt string itself as the salt):
//   salt + ":" + hashlib.scrypt(unicodedata.normalize("NFKC", pw).encode(),
//       salt=salt.encode(), n=16384, r=16, p=1, dklen=64,
//       maxmem=128*16384*16*2).hex()
const SCRYPT_SECURE_PASS: &str = "7d5a0b1e9c3f4a6b8d2e0f1a3b5c7d9e:9cb4d2a3d28b4c4b32b5126dcc9487ce9cc876be51c46ef664feb6ff98d961ab988c439ed28fbf67fbfd7fdac6eeb6fc710ed90b661692f262f4f73482828a4f";
/// The same recipe for "Ｓｅｃｕｒｅ Ｐａｓｓ １２３" (full-width), which NFKC
/// turns into "Secure Pass 123".
const SCRYPT_FULLWIDTH: &str = "0123456789abcdef0123456789abcdef:8daf9d24b7890abf3fec313ee235b3393cdfdb31ae58b64812f168a1ae60cfec6b724010dbba8b534d1fba9ca0ba9d57f8beb1f8f83226a86c1c738c52b8bbcc";

/// Inserts a user and credential account as BetterAuth writes them.
async fn insert_betterauth_user(app: &crate::helpers::TestApp, id: &str, email: &str, hash: &str) {
    let ts = app.ts_param();
    let now = app.ts_from_now(-86400);
    let bool_false = match app.backend {
        Backend::Sqlite => "0",
        Backend::Postgres | Backend::MySql => "false",
    };
    app.exec(
        &format!(r#"INSERT INTO "user" ("id", "name", "email", "emailVerified", "image", "createdAt", "updatedAt") VALUES (?, 'Ada', ?, {bool_false}, NULL, {ts}, {ts})"#),
        &[id, email, &now, &now],
    )
    .await;
    app.exec(
        &format!(r#"INSERT INTO "account" ("id", "accountId", "providerId", "userId", "password", "createdAt", "updatedAt") VALUES (?, ?, 'credential', ?, ?, {ts}, {ts})"#),
        &[&format!("acc-{id}"), id, id, hash, &now, &now],
    )
    .await;
}

async fn betterauth_scrypt_hashes_sign_in_and_upgrade(b: Backend) {
    let app = spawn_app(b).await;
    insert_betterauth_user(&app, "ba-user-1", "ada@example.com", SCRYPT_SECURE_PASS).await;

    assert_error(
        app.sign_in_as("ada@example.com", "SecurePass124!").await,
        401,
        "unauthenticated",
    )
    .await;
    let stored = || {
        app.fetch_text(
            r#"SELECT "password" FROM "account" WHERE "userId" = ?"#,
            &["ba-user-1"],
        )
    };
    assert_eq!(
        stored().await.unwrap(),
        SCRYPT_SECURE_PASS,
        "a failed sign-in must not touch the hash"
    );

    let res = app.sign_in_as("ada@example.com", "SecurePass123!").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], "ba-user-1");
    assert_eq!(body["user"]["name"], "Ada");

    let upgraded = stored().await.unwrap();
    assert!(
        upgraded.starts_with("$argon2id$"),
        "hash not upgraded: {upgraded}"
    );
    // The upgraded hash works, and the old password still signs in.
    assert_eq!(
        app.sign_in_as("ada@example.com", "SecurePass123!")
            .await
            .status(),
        200
    );
    assert_error(
        app.sign_in_as("ada@example.com", "SecurePass124!").await,
        401,
        "unauthenticated",
    )
    .await;
}

async fn betterauth_hashes_are_nfkc_normalised(b: Backend) {
    let app = spawn_app(b).await;
    insert_betterauth_user(&app, "ba-user-2", "grace@example.com", SCRYPT_FULLWIDTH).await;
    // Typed in ASCII: NFKC-equal to the full-width original.
    assert_eq!(
        app.sign_in_as("grace@example.com", "Secure Pass 123")
            .await
            .status(),
        200
    );
    // And in full width, after the upgrade to argon2id.
    assert_eq!(
        app.sign_in_as("grace@example.com", "Ｓｅｃｕｒｅ Ｐａｓｓ １２３")
            .await
            .status(),
        200
    );
}

async fn malformed_legacy_hashes_fail_closed(b: Backend) {
    let app = spawn_app(b).await;
    insert_betterauth_user(&app, "ba-user-3", "bad@example.com", "zz:not-hex").await;
    assert_error(
        app.sign_in_as("bad@example.com", "SecurePass123!").await,
        401,
        "unauthenticated",
    )
    .await;
}

/// Inserts a session as BetterAuth writes it: the token in clear.
async fn insert_betterauth_session(
    app: &crate::helpers::TestApp,
    id: &str,
    user_id: &str,
    token: &str,
) {
    let ts = app.ts_param();
    app.exec(
        &format!(r#"INSERT INTO "session" ("id", "expiresAt", "token", "createdAt", "updatedAt", "ipAddress", "userAgent", "userId") VALUES (?, {ts}, ?, {ts}, {ts}, '', '', ?)"#),
        &[id, &app.ts_from_now(6 * 86400), token, &app.ts_from_now(-3600), &app.ts_from_now(-3600), user_id],
    )
    .await;
}

const BETTER_AUTH_SECRET: &str = "a-better-auth-secret-of-at-least-32-bytes!";

async fn betterauth_sessions_carry_over_and_are_hashed_on_first_use(b: Backend) {
    // WARDEN_SECRET = the old BETTER_AUTH_SECRET and BetterAuth's cookie
    // prefix: browsers keep their signed cookies too.
    let app = spawn_app_with(b, |c| {
        c.session.cookie_prefix = "better-auth".into();
        std::fs::write(
            &c.secrets_file,
            serde_json::json!({ "WARDEN_SECRET": BETTER_AUTH_SECRET }).to_string(),
        )
        .unwrap();
    })
    .await;
    insert_betterauth_user(&app, "ba-user-s", "sess@example.com", SCRYPT_SECURE_PASS).await;
    let token = "BetterAuthToken0123456789abcdefX"; // generateId(32)
    insert_betterauth_session(&app, "ba-session-1", "ba-user-s", token).await;
    let cookie_token = "BetterAuthCookie0123456789abcdeY";
    insert_betterauth_session(&app, "ba-session-2", "ba-user-s", cookie_token).await;

    // The bearer token works, and its row now holds the hash only.
    let res = app.get_as("/profile", token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap()["email"],
        "sess@example.com"
    );
    let stored = app
        .fetch_text(
            r#"SELECT "token" FROM "session" WHERE "id" = ?"#,
            &["ba-session-1"],
        )
        .await
        .unwrap();
    assert_eq!(stored, hex::encode(Sha256::digest(token.as_bytes())));
    assert_eq!(app.get_as("/profile", token).await.status(), 200);
    // The stored hash is not a credential.
    assert_error(
        app.get_as("/profile", &stored).await,
        401,
        "unauthenticated",
    )
    .await;

    // BetterAuth's signed cookie, made with BetterAuth's secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(BETTER_AUTH_SECRET.as_bytes()).unwrap();
    mac.update(cookie_token.as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    let cookie = format!(
        "better-auth.session_token={cookie_token}.{}",
        signature
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D")
    );
    let res = app.ba_get("/api/auth/get-session", &cookie).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], "ba-user-s");
    assert_eq!(body["session"]["id"], "ba-session-2");
    // Signing out works on a converted session.
    let res = app
        .ba_post("/api/auth/sign-out", &cookie, &serde_json::json!({}))
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "session" WHERE "id" = ?"#,
            &["ba-session-2"]
        )
        .await,
        0
    );
}

async fn plain_tokens_that_look_like_hashes_are_never_looked_up(b: Backend) {
    let app = spawn_app(b).await;
    insert_betterauth_user(&app, "ba-user-h", "hash@example.com", SCRYPT_SECURE_PASS).await;
    // A row whose token column holds 64 hex characters (as every hashed
    // token does): presenting that value must not authenticate.
    let hexlike = hex::encode(Sha256::digest(b"whatever"));
    insert_betterauth_session(&app, "ba-session-h", "ba-user-h", &hexlike).await;
    assert_error(
        app.get_as("/profile", &hexlike).await,
        401,
        "unauthenticated",
    )
    .await;
}

async fn adopting_betterauth_sessions_can_be_switched_off(b: Backend) {
    let app = spawn_app_with(b, |c| c.session.adopt_betterauth_sessions = false).await;
    insert_betterauth_user(&app, "ba-user-o", "off@example.com", SCRYPT_SECURE_PASS).await;
    let token = "BetterAuthToken0123456789abcdefZ";
    insert_betterauth_session(&app, "ba-session-o", "ba-user-o", token).await;
    assert_error(app.get_as("/profile", token).await, 401, "unauthenticated").await;
    assert_eq!(
        app.fetch_text(
            r#"SELECT "token" FROM "session" WHERE "id" = ?"#,
            &["ba-session-o"]
        )
        .await
        .as_deref(),
        Some(token)
    );
}

backend_tests!(
    betterauth_sessions_carry_over_and_are_hashed_on_first_use,
    plain_tokens_that_look_like_hashes_are_never_looked_up,
    adopting_betterauth_sessions_can_be_switched_off,
    betterauth_scrypt_hashes_sign_in_and_upgrade,
    betterauth_hashes_are_nfkc_normalised,
    malformed_legacy_hashes_fail_closed,
);
