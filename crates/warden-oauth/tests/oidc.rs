//! The client against a real local OpenID Connect provider
//! (`crates/warden/tests/support/oidc/server.mjs`, started per test), and
//! against misbehaving local TCP servers for the bounds.

#[path = "../../warden/tests/it/oidc_provider.rs"]
mod oidc_provider;

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use oidc_provider::OidcProvider;
use serde_json::{json, Value};
use url::Url;
use warden_oauth::*;

const CLIENT_ID: &str = "warden-client";
const CLIENT_SECRET: &str = "s3cr3t-client-secret";
const REDIRECT_URI: &str = "http://127.0.0.1:4000/api/auth/callback/test";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// A generic OpenID Connect provider at `op`, found by discovery.
fn oidc(op: &OidcProvider) -> Provider {
    let mut c = ProviderConfig::new("acme", CLIENT_ID, CLIENT_SECRET.to_owned());
    c.issuer = Some(url(&op.issuer));
    Provider::new(c, http())
}

/// A provider of `kind` pointed at `op` with explicit endpoints.
fn with_overrides(op: &OidcProvider, name: &str, user_path: &str) -> Provider {
    let mut c = ProviderConfig::new(name, CLIENT_ID, CLIENT_SECRET.to_owned());
    c.authorization_endpoint = Some(url(&op.url("/authorize")));
    c.token_endpoint = Some(url(&op.url("/token")));
    c.userinfo_endpoint = Some(url(&op.url(user_path)));
    Provider::new(c, http())
}

/// One browser round trip: what the client keeps, and what came back.
struct Authorized {
    code: String,
    verifier: String,
    nonce: String,
    state: String,
    callback: HashMap<String, String>,
}

/// Builds the authorization URL and follows it like a browser (redirects
/// off), returning the callback's query.
async fn browse(p: &Provider) -> (String, String, String, HashMap<String, String>) {
    let (state, verifier, nonce) = (random_token(32), new_pkce_verifier(), random_token(32));
    let auth_url = p
        .authorization_url(&AuthorizationRequest {
            state: &state,
            code_challenge: &pkce_challenge(&verifier),
            nonce: Some(&nonce),
            redirect_uri: REDIRECT_URI,
            scopes_extra: &[],
            prompt: None,
        })
        .await
        .expect("authorization_url");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let response = browser.get(auth_url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 302, "authorize should redirect");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    let callback: HashMap<String, String> = url(&location).query_pairs().into_owned().collect();
    (state, verifier, nonce, callback)
}

async fn authorize(p: &Provider) -> Authorized {
    let (state, verifier, nonce, callback) = browse(p).await;
    assert_eq!(callback.get("state"), Some(&state));
    let code = callback
        .get("code")
        .unwrap_or_else(|| panic!("no code in the callback: {callback:?}"))
        .clone();
    Authorized {
        code,
        verifier,
        nonce,
        state,
        callback,
    }
}

/// A full sign-in: authorize, exchange, fetch the user.
async fn sign_in(p: &Provider) -> Result<ProviderUser, OAuthError> {
    let a = authorize(p).await;
    let tokens = p.exchange_code(&a.code, &a.verifier, REDIRECT_URI).await?;
    p.fetch_user(&tokens, Some(&a.nonce)).await
}

/// A real, valid ID token from `op` for `p` (and its nonce).
async fn real_id_token(p: &Provider) -> (String, String) {
    let a = authorize(p).await;
    let tokens = p
        .exchange_code(&a.code, &a.verifier, REDIRECT_URI)
        .await
        .unwrap();
    (tokens.id_token.expect("an ID token"), a.nonce)
}

fn id_error(result: Result<impl std::fmt::Debug, OAuthError>) -> IdTokenError {
    match result {
        Err(OAuthError::InvalidIdToken(e)) => e,
        other => panic!("expected an ID token error, got {other:?}"),
    }
}

fn b64json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn decode_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn authorization_url_has_every_parameter() {
    let op = oidc_provider::start().await;
    let p = oidc(&op);
    let extra = ["offline_access".to_owned(), "email".to_owned()];
    let u = p
        .authorization_url(&AuthorizationRequest {
            state: "the-state",
            code_challenge: "the-challenge",
            nonce: Some("the-nonce"),
            redirect_uri: REDIRECT_URI,
            scopes_extra: &extra,
            prompt: Some("select_account"),
        })
        .await
        .unwrap();
    assert_eq!(
        u.as_str().split('?').next().unwrap(),
        op.url("/authorize"),
        "the discovered authorization endpoint"
    );
    let q: HashMap<String, String> = u.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["scope"], "openid email profile offline_access");
    assert_eq!(q["state"], "the-state");
    assert_eq!(q["code_challenge"], "the-challenge");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["nonce"], "the-nonce");
    assert_eq!(q["prompt"], "select_account");
    assert_eq!(q.len(), 9, "{q:?}");
    assert!(!u.as_str().contains(CLIENT_SECRET));
    assert_eq!(op.stats().await["discovery_requests"], 1);

    // Discovery is cached.
    p.authorization_url(&AuthorizationRequest {
        state: "s",
        code_challenge: "c",
        redirect_uri: REDIRECT_URI,
        ..Default::default()
    })
    .await
    .unwrap();
    assert_eq!(op.stats().await["discovery_requests"], 1);
}

#[tokio::test]
async fn generic_oidc_sign_in() {
    let op = oidc_provider::start().await;
    op.set_next(json!({
        "sub": "user-7",
        "email": "ada@example.com",
        "email_verified": true,
        "name": "Ada Lovelace",
        "picture": "https://img.example/ada.png",
    }))
    .await;
    let p = oidc(&op);
    assert!(p.uses_oidc());
    assert_eq!(p.kind(), ProviderKind::Oidc);
    assert_eq!(p.issuer(), op.issuer);

    let a = authorize(&p).await;
    assert_eq!(a.callback["iss"], op.issuer);
    assert_eq!(a.state.len(), 43, "32 bytes of state");
    let tokens = p
        .exchange_code(&a.code, &a.verifier, REDIRECT_URI)
        .await
        .unwrap();
    assert_eq!(tokens.token_type.as_deref(), Some("Bearer"));
    assert_eq!(tokens.expires_in, Some(3600));
    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.scope.as_deref(), Some("openid email profile"));
    let debug = format!("{tokens:?}");
    assert!(
        !debug.contains("eyJ"),
        "Debug must not show tokens: {debug}"
    );

    let user = p.fetch_user(&tokens, Some(&a.nonce)).await.unwrap();
    assert_eq!(
        user,
        ProviderUser {
            id: "user-7".into(),
            email: Some("ada@example.com".into()),
            email_verified: true,
            name: Some("Ada Lovelace".into()),
            image: Some("https://img.example/ada.png".into()),
        }
    );
    let stats = op.stats().await;
    assert_eq!(stats["last_client_auth"], "client_secret_post");
    assert_eq!(stats["userinfo_requests"], 0, "the ID token had the email");
    assert_eq!(stats["jwks_requests"], 1);

    // A second sign-in uses the cached discovery document and JWKS.
    op.set_next(json!({"sub": "user-8", "email": "b@example.com", "email_verified": false}))
        .await;
    let user = sign_in(&p).await.unwrap();
    assert_eq!((user.id.as_str(), user.email_verified), ("user-8", false));
    let stats = op.stats().await;
    assert_eq!(
        (
            stats["discovery_requests"].as_u64(),
            stats["jwks_requests"].as_u64()
        ),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn google_with_an_issuer_override() {
    let op = oidc_provider::start().await;
    op.set_next(json!({"sub": "1099", "email": "g@example.com", "email_verified": "true"}))
        .await;
    let mut c = ProviderConfig::new("google", CLIENT_ID, CLIENT_SECRET.to_owned());
    c.issuer = Some(url(&op.issuer));
    let p = Provider::new(c, http());
    assert_eq!(p.kind(), ProviderKind::Google);
    assert_eq!(p.issuer(), op.issuer, "the override is the account issuer");
    let user = sign_in(&p).await.unwrap();
    assert_eq!(user.id, "1099");
    assert_eq!(user.email.as_deref(), Some("g@example.com"));
    assert!(user.email_verified, "\"true\" as a string counts");
}

#[tokio::test]
async fn github_via_endpoint_overrides() {
    let op = oidc_provider::start().await;
    op.set_next(json!({
        "sub": "4242",
        "login": "octocat",
        "name": "The Octocat",
        "email": "octo@example.com",
        "email_verified": true,
        "picture": "https://avatars.example/octocat.png",
    }))
    .await;
    let p = with_overrides(&op, "github", "/github/user");
    assert_eq!(p.kind(), ProviderKind::GitHub);
    assert!(!p.uses_oidc());
    assert_eq!(p.issuer(), "https://github.com");
    let a = authorize(&p).await;
    let tokens = p
        .exchange_code(&a.code, &a.verifier, REDIRECT_URI)
        .await
        .unwrap();
    // No nonce check for plain OAuth; the ID token the test server also returns is ignored.
    let user = p.fetch_user(&tokens, None).await.unwrap();
    assert_eq!(
        user,
        ProviderUser {
            id: "4242".into(),
            email: Some("octo@example.com".into()),
            email_verified: true,
            name: Some("The Octocat".into()),
            image: Some("https://avatars.example/octocat.png".into()),
        },
        "the primary address, not the first one listed"
    );
    assert_eq!(
        op.stats().await["github_requests"],
        2,
        "/user and /user/emails"
    );

    // Unverified primary address; no display name falls back to the login.
    op.set_next(json!({"sub": "77", "login": "noname", "name": null, "email": "n@example.com", "email_verified": false}))
        .await;
    let user = sign_in(&p).await.unwrap();
    assert_eq!(user.id, "77");
    assert_eq!(user.name.as_deref(), Some("noname"));
    assert!(!user.email_verified);

    // No email at all.
    op.set_next(json!({"sub": "78", "email": null})).await;
    assert!(matches!(sign_in(&p).await, Err(OAuthError::EmailMissing)));
}

#[tokio::test]
async fn discord_via_endpoint_overrides() {
    let op = oidc_provider::start().await;
    op.set_next(json!({
        "sub": "80351110224678912",
        "login": "nelly",
        "name": "Nelly",
        "email": "nelly@example.com",
        "email_verified": true,
        "avatar": "8342729096ea3675442027381ff50dfe",
    }))
    .await;
    let p = with_overrides(&op, "discord", "/discord/users/@me");
    assert_eq!(p.issuer(), "https://discord.com");
    let user = sign_in(&p).await.unwrap();
    assert_eq!(
        user,
        ProviderUser {
            id: "80351110224678912".into(),
            email: Some("nelly@example.com".into()),
            email_verified: true,
            name: Some("Nelly".into()),
            image: Some(
                "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png".into()
            ),
        }
    );
    op.set_next(json!({"sub": "9", "login": "plain", "name": null, "avatar": null, "email_verified": false}))
        .await;
    let user = sign_in(&p).await.unwrap();
    assert_eq!(
        (user.name.as_deref(), user.image, user.email_verified),
        (Some("plain"), None, false)
    );
}

#[tokio::test]
async fn wrong_pkce_verifier_and_code_reuse_are_refused() {
    let op = oidc_provider::start().await;
    let p = oidc(&op);

    let a = authorize(&p).await;
    let err = p
        .exchange_code(&a.code, &new_pkce_verifier(), REDIRECT_URI)
        .await
        .unwrap_err();
    match &err {
        OAuthError::TokenExchange { status: 400, error } => {
            assert_eq!(error.as_deref(), Some("invalid_grant"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.code(), "token_exchange_failed");
    let message = err.to_string();
    assert!(
        !message.contains(&a.code)
            && !message.contains(&a.verifier)
            && !message.contains(CLIENT_SECRET)
    );
    // The code was spent by the failed attempt.
    assert!(matches!(
        p.exchange_code(&a.code, &a.verifier, REDIRECT_URI).await,
        Err(OAuthError::TokenExchange { status: 400, .. })
    ));

    // A code works once.
    let a = authorize(&p).await;
    p.exchange_code(&a.code, &a.verifier, REDIRECT_URI)
        .await
        .unwrap();
    let err = p
        .exchange_code(&a.code, &a.verifier, REDIRECT_URI)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OAuthError::TokenExchange { status: 400, error: Some(e) } if e == "invalid_grant"),
        "{err:?}"
    );

    // Another redirect_uri than the authorization's.
    let a = authorize(&p).await;
    assert!(matches!(
        p.exchange_code(&a.code, &a.verifier, "http://127.0.0.1:4000/other")
            .await,
        Err(OAuthError::TokenExchange { status: 400, .. })
    ));

    // A denied authorization comes back without a code.
    op.set_next(json!({"deny": true})).await;
    let (state, _, _, callback) = browse(&p).await;
    assert_eq!(
        callback.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(callback.get("state"), Some(&state));
    assert!(!callback.contains_key("code"));
}

#[tokio::test]
async fn id_token_claims_are_checked() {
    let op = oidc_provider::start().await;
    let p = oidc(&op);
    let cases = [
        (
            json!({"nonce": "wrong"}),
            IdTokenError::NonceMismatch,
            "nonce_mismatch",
        ),
        (
            json!({"nonce": null}),
            IdTokenError::NonceMismatch,
            "nonce_mismatch",
        ),
        (
            json!({"iss": "http://evil"}),
            IdTokenError::WrongIssuer,
            "wrong_issuer",
        ),
        (
            json!({"iss": format!("{}/", op.issuer)}),
            IdTokenError::WrongIssuer,
            "wrong_issuer",
        ),
        (
            json!({"aud": "other"}),
            IdTokenError::WrongAudience,
            "wrong_audience",
        ),
        (
            json!({"aud": [CLIENT_ID, "other"]}),
            IdTokenError::WrongAudience,
            "wrong_audience",
        ),
        (
            json!({"exp": 1_000_000_000}),
            IdTokenError::Expired,
            "id_token_expired",
        ),
        (
            json!({"exp": "9999999999"}),
            IdTokenError::Malformed,
            "invalid_id_token",
        ),
        (
            json!({"iat": null}),
            IdTokenError::Malformed,
            "invalid_id_token",
        ),
        (
            json!({"nbf": 4_000_000_000u64}),
            IdTokenError::NotYetValid,
            "id_token_not_yet_valid",
        ),
    ];
    for (overrides, expected, code) in cases {
        op.set_next(json!({ "id_token_overrides": overrides }))
            .await;
        let err = sign_in(&p).await.unwrap_err();
        assert_eq!(err.code(), code, "{overrides}");
        assert_eq!(id_error(Err::<(), _>(err)), expected, "{overrides}");
    }

    // Several audiences are fine with azp = our client id.
    op.set_next(json!({"id_token_overrides": {"aud": [CLIENT_ID, "other"], "azp": CLIENT_ID}}))
        .await;
    sign_in(&p).await.unwrap();

    // The ID token is required.
    op.set_next(json!({"no_id_token": true})).await;
    let err = sign_in(&p).await.unwrap_err();
    assert_eq!(err.code(), "id_token_missing");
    assert_eq!(id_error(Err::<(), _>(err)), IdTokenError::Missing);
}

#[tokio::test]
async fn userinfo_fills_in_a_missing_email() {
    let op = oidc_provider::start().await;
    let p = oidc(&op);
    op.set_next(json!({
        "sub": "u-1",
        "email": "info@example.com",
        "email_verified": true,
        "id_token_overrides": {"email": null, "email_verified": null},
    }))
    .await;
    let user = sign_in(&p).await.unwrap();
    assert_eq!(user.email.as_deref(), Some("info@example.com"));
    assert!(user.email_verified);
    assert_eq!(op.stats().await["userinfo_requests"], 1);

    // Neither the ID token nor userinfo has an email.
    op.set_next(json!({"email": null})).await;
    let err = sign_in(&p).await.unwrap_err();
    assert!(matches!(err, OAuthError::EmailMissing), "{err:?}");
    assert_eq!(err.code(), "email_missing");

    // userinfo must describe the same subject as the ID token.
    op.set_next(json!({"sub": "u-2", "id_token_overrides": {"sub": "u-3", "email": null}}))
        .await;
    let err = sign_in(&p).await.unwrap_err();
    assert!(matches!(err, OAuthError::UserInfo(_)), "{err:?}");
    assert_eq!(err.code(), "userinfo_failed");
}

#[tokio::test]
async fn forged_id_tokens_are_refused() {
    let op = oidc_provider::start().await;
    let p = oidc(&op);
    let (token, nonce) = real_id_token(&p).await;
    let verify = |t: String| {
        let p = &p;
        let nonce = nonce.clone();
        async move { p.verify_id_token(&t, Some(&nonce)).await }
    };
    let claims = verify(token.clone())
        .await
        .expect("the real token verifies");
    assert_eq!(claims.sub, "1001");
    assert_eq!(claims.issuer, op.issuer);

    let parts: Vec<&str> = token.split('.').collect();
    let header = decode_part(&token, 0);
    let mut payload = decode_part(&token, 1);

    // alg "none", unsigned.
    let none = format!(
        "{}.{}.",
        b64json(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    assert_eq!(id_error(verify(none).await), IdTokenError::UnsupportedAlg);

    // HS256 "signed" with the provider's public key (algorithm confusion).
    let mut hs_header = header.clone();
    hs_header["alg"] = json!("HS256");
    let hs = format!("{}.{}.{}", b64json(&hs_header), parts[1], parts[2]);
    assert_eq!(id_error(verify(hs).await), IdTokenError::UnsupportedAlg);

    // A flipped bit in the signature.
    let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    sig[10] ^= 0x01;
    let tampered = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
    assert_eq!(id_error(verify(tampered).await), IdTokenError::BadSignature);

    // Another subject under the original signature.
    payload["sub"] = json!("admin");
    let swapped = format!("{}.{}.{}", parts[0], b64json(&payload), parts[2]);
    assert_eq!(id_error(verify(swapped).await), IdTokenError::BadSignature);

    // The RSA key named under ES256.
    let mut es_header = header.clone();
    es_header["alg"] = json!("ES256");
    let es = format!("{}.{}.{}", b64json(&es_header), parts[1], parts[2]);
    assert_eq!(id_error(verify(es).await), IdTokenError::BadSignature);

    // Not a JWS.
    assert_eq!(
        id_error(verify("not-a-token".into()).await),
        IdTokenError::Malformed
    );
    let jwe = format!("{}.a.b.c.d", parts[0]);
    assert_eq!(id_error(verify(jwe).await), IdTokenError::Malformed);

    // The messages never echo the token.
    let err = p
        .verify_id_token(&format!("{}.{}.", parts[0], parts[1]), None)
        .await
        .unwrap_err();
    assert!(!err.to_string().contains(parts[1]));
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_at_most_once_a_minute() {
    let op = oidc_provider::start().await;
    let p = oidc(&op);
    sign_in(&p).await.unwrap();
    assert_eq!(op.stats().await["jwks_requests"], 1);

    // The provider rotates to a new key: one refetch finds it.
    op.set_next(json!({"rotate_key": true})).await;
    sign_in(&p)
        .await
        .expect("the rotated key is found after a refetch");
    assert_eq!(op.stats().await["jwks_requests"], 2);
    sign_in(&p).await.unwrap();
    assert_eq!(op.stats().await["jwks_requests"], 2, "cached again");

    // A token naming a key nobody has: no second refetch within 60 s.
    let (token, nonce) = real_id_token(&p).await;
    let parts: Vec<&str> = token.split('.').collect();
    let mut header = decode_part(&token, 0);
    header["kid"] = json!("no-such-key");
    let forged = format!("{}.{}.{}", b64json(&header), parts[1], parts[2]);
    let err = p.verify_id_token(&forged, Some(&nonce)).await.unwrap_err();
    assert_eq!(id_error(Err::<(), _>(err)), IdTokenError::UnknownKey);
    assert_eq!(op.stats().await["jwks_requests"], 2, "rate-limited");

    // With no minimum interval, every unknown kid refetches (and still fails).
    let eager = oidc(&op).with_jwks_refetch_interval(Duration::ZERO);
    for expected in [4, 5] {
        let err = eager
            .verify_id_token(&forged, Some(&nonce))
            .await
            .unwrap_err();
        assert_eq!(id_error(Err::<(), _>(err)), IdTokenError::UnknownKey);
        assert_eq!(op.stats().await["jwks_requests"], expected);
    }
}

#[tokio::test]
async fn es256_id_tokens_verify() {
    let op = oidc_provider::start().await;
    let p = oidc(&op);
    op.set_next(json!({"signing_alg": "ES256", "sub": "ec-user"}))
        .await;
    let a = authorize(&p).await;
    let tokens = p
        .exchange_code(&a.code, &a.verifier, REDIRECT_URI)
        .await
        .unwrap();
    let id_token = tokens.id_token.clone().unwrap();
    assert_eq!(decode_part(&id_token, 0)["alg"], "ES256");
    let user = p.fetch_user(&tokens, Some(&a.nonce)).await.unwrap();
    assert_eq!(user.id, "ec-user");
}

#[tokio::test]
async fn discovery_errors() {
    let op = oidc_provider::start().await;

    // No discovery document there (404).
    let mut c = ProviderConfig::new("acme", CLIENT_ID, CLIENT_SECRET.to_owned());
    c.issuer = Some(url(&op.url("/nowhere")));
    let err = Provider::new(c, http())
        .authorization_url(&AuthorizationRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OAuthError::Discovery(m) if m.contains("HTTP 404")),
        "{err}"
    );
    assert_eq!(err.code(), "discovery_failed");

    // A document for another issuer (fetched via a different host name).
    let mut c = ProviderConfig::new("acme", CLIENT_ID, CLIENT_SECRET.to_owned());
    c.issuer = Some(url(&format!("http://localhost:{}", op.port)));
    let err = Provider::new(c, http())
        .authorization_url(&AuthorizationRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OAuthError::Discovery(m) if m.contains("another issuer")),
        "{err}"
    );

    // The response cap applies.
    let err = oidc(&op)
        .with_max_response_bytes(64)
        .authorization_url(&AuthorizationRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OAuthError::Discovery(m) if m.contains("too large")),
        "{err}"
    );
}

/// A TCP server that accepts connections and then answers with `reply`
/// (or never answers if `None`).
async fn raw_server(reply: Option<Vec<u8>>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let reply = std::sync::Arc::new(reply);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let reply = std::sync::Arc::clone(&reply);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                match reply.as_ref() {
                    Some(bytes) => {
                        let _ = socket.write_all(bytes).await;
                        let _ = socket.shutdown().await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    format!("http://{addr}")
}

/// An HTTP/1.1 response with a Content-Length.
fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn outbound_calls_are_bounded() {
    // A provider that never answers: the timeout ends the call.
    let silent = raw_server(None).await;
    let mut c = ProviderConfig::new("acme", CLIENT_ID, CLIENT_SECRET.to_owned());
    c.issuer = Some(url(&silent));
    let started = std::time::Instant::now();
    let err = Provider::new(c, http())
        .with_timeout(Duration::from_millis(300))
        .authorization_url(&AuthorizationRequest::default())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(&err, OAuthError::Discovery(m) if m.contains("timed out")),
        "{err}"
    );

    // A token endpoint streaming an endless body (no Content-Length).
    let mut huge =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"access_token\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
    let big = raw_server(Some(huge)).await;
    let mut c = ProviderConfig::new("github", CLIENT_ID, CLIENT_SECRET.to_owned());
    c.token_endpoint = Some(url(&format!("{big}/token")));
    let err = Provider::new(c, http())
        .exchange_code("code", "verifier", REDIRECT_URI)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OAuthError::Http(m) if m.contains("too large")),
        "{err}"
    );
    assert_eq!(err.code(), "provider_request_failed");

    // GitHub's way of refusing a code: 200 with an error field.
    let refusing = raw_server(Some(response(
        "200 OK",
        "application/json",
        r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#,
    )))
    .await;
    let mut c = ProviderConfig::new("github", CLIENT_ID, CLIENT_SECRET.to_owned());
    c.token_endpoint = Some(url(&format!("{refusing}/token")));
    let err = Provider::new(c, http())
        .exchange_code("code", "verifier", REDIRECT_URI)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OAuthError::TokenExchange { status: 200, error: Some(e) } if e == "bad_verification_code"),
        "{err:?}"
    );

    // A server error page.
    let failing = raw_server(Some(response(
        "502 Bad Gateway",
        "text/html",
        "<h1>oops</h1>",
    )))
    .await;
    let mut c = ProviderConfig::new("discord", CLIENT_ID, CLIENT_SECRET.to_owned());
    c.token_endpoint = Some(url(&format!("{failing}/token")));
    c.userinfo_endpoint = Some(url(&format!("{failing}/users/@me")));
    let p = Provider::new(c, http());
    assert!(matches!(
        p.exchange_code("code", "verifier", REDIRECT_URI).await,
        Err(OAuthError::TokenExchange {
            status: 502,
            error: None
        })
    ));
    let tokens = TokenSet {
        access_token: "at".to_owned().into(),
        refresh_token: None,
        id_token: None,
        expires_in: None,
        scope: None,
        token_type: None,
    };
    let err = p.fetch_user(&tokens, None).await.unwrap_err();
    assert!(
        matches!(&err, OAuthError::UserInfo(m) if m.contains("HTTP 502")),
        "{err}"
    );
}
