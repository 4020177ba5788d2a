//! Passkeys (WebAuthn) through HTTP, as BetterAuth's `passkeyClient()` and
//! a tutorial-API client drive them, with a software authenticator.
//!
//! The authenticator ([`SoftAuthenticator`]) is the tests' own: it makes
//! ES256 (P-256) or Ed25519 credentials, discoverable ones (it answers
//! options that name no credential, with its user handle), and lets a test
//! choose the user-verification flag, the signature counter and the origin.
//! `webauthn-authenticator-rs`'s `SoftPasskey` makes neither Ed25519 keys
//! nor discoverable assertions (it signs only for credentials the options
//! list), which are exactly what BetterAuth's flows need. Its CBOR is
//! `serde_cbor_2`'s, the crate webauthn-rs parses with.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use reqwest::Response;
use serde_cbor_2::Value as Cbor;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::backend_tests;
use crate::helpers::{
    assert_ba_error, assert_error, bearer, captured_logs, remember_secret, session_set_cookie,
    spawn_app, spawn_app_with, spawn_app_with_clock, Backend, TestApp,
};

/// The front end's origin (a CORS credentialed origin, so trusted).
const FRONTEND: &str = "http://localhost:5173";

// ---------------------------------------------------------------------------
// The software authenticator

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Alg {
    Es256,
    Ed25519,
}

enum Key {
    Es256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

struct SoftAuthenticator {
    key: Key,
    cred_id: Vec<u8>,
    user_handle: Vec<u8>,
    /// The counter the next assertion carries (then incremented).
    counter: u32,
    /// Sets the UV flag (the user entered a PIN / used biometrics).
    uv: bool,
    /// The origin the "browser" puts in clientDataJSON.
    origin: String,
}

fn b64u(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn unb64u(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

impl SoftAuthenticator {
    fn new(alg: Alg) -> Self {
        let seed: [u8; 32] = rand::random();
        let key = match alg {
            Alg::Es256 => Key::Es256(p256::ecdsa::SigningKey::from_slice(&seed).unwrap()),
            Alg::Ed25519 => Key::Ed25519(ed25519_dalek::SigningKey::from_bytes(&seed)),
        };
        SoftAuthenticator {
            key,
            cred_id: rand::random::<[u8; 16]>().to_vec(),
            user_handle: Vec::new(),
            counter: 1,
            uv: true,
            origin: FRONTEND.into(),
        }
    }

    fn alg(&self) -> i64 {
        match self.key {
            Key::Es256(_) => -7,
            Key::Ed25519(_) => -8,
        }
    }

    fn credential_id(&self) -> String {
        b64u(&self.cred_id)
    }

    /// The COSE public key, CBOR-encoded.
    fn cose_key(&self) -> Vec<u8> {
        let mut m = BTreeMap::new();
        match &self.key {
            Key::Es256(k) => {
                let point = k.verifying_key().to_encoded_point(false);
                m.insert(Cbor::Integer(1), Cbor::Integer(2));
                m.insert(Cbor::Integer(3), Cbor::Integer(-7));
                m.insert(Cbor::Integer(-1), Cbor::Integer(1));
                m.insert(Cbor::Integer(-2), Cbor::Bytes(point.x().unwrap().to_vec()));
                m.insert(Cbor::Integer(-3), Cbor::Bytes(point.y().unwrap().to_vec()));
            }
            Key::Ed25519(k) => {
                m.insert(Cbor::Integer(1), Cbor::Integer(1));
                m.insert(Cbor::Integer(3), Cbor::Integer(-8));
                m.insert(Cbor::Integer(-1), Cbor::Integer(6));
                m.insert(
                    Cbor::Integer(-2),
                    Cbor::Bytes(k.verifying_key().to_bytes().to_vec()),
                );
            }
        }
        serde_cbor_2::to_vec(&Cbor::Map(m)).unwrap()
    }

    fn sign(&self, data: &[u8]) -> Vec<u8> {
        match &self.key {
            Key::Es256(k) => {
                use p256::ecdsa::signature::Signer;
                let sig: p256::ecdsa::Signature = k.sign(data);
                sig.to_der().as_bytes().to_vec()
            }
            Key::Ed25519(k) => {
                use ed25519_dalek::Signer;
                k.sign(data).to_bytes().to_vec()
            }
        }
    }

    fn flags(&self, attested: bool) -> u8 {
        let mut f = 0x01; // UP
        if self.uv {
            f |= 0x04;
        }
        if attested {
            f |= 0x40;
        }
        f
    }

    fn client_data(&self, kind: &str, challenge: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": kind,
            "challenge": challenge,
            "origin": self.origin,
            "crossOrigin": false,
        }))
        .unwrap()
    }

    /// `navigator.credentials.create()` for these options, as
    /// `@simplewebauthn/browser`'s `startRegistration` returns it (less
    /// `clientExtensionResults`, which BetterAuth's client strips).
    fn register(&mut self, options: &Value) -> Value {
        let offered: Vec<i64> = options["pubKeyCredParams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["alg"].as_i64().unwrap())
            .collect();
        assert!(offered.contains(&self.alg()), "offered: {offered:?}");
        self.user_handle = unb64u(options["user"]["id"].as_str().unwrap());
        let rp_id = options["rp"]["id"].as_str().unwrap();
        let client_data =
            self.client_data("webauthn.create", options["challenge"].as_str().unwrap());
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(true));
        auth_data.extend_from_slice(&0u32.to_be_bytes());
        auth_data.extend_from_slice(&[0x11; 16]); // AAGUID
        auth_data.extend_from_slice(&(self.cred_id.len() as u16).to_be_bytes());
        auth_data.extend_from_slice(&self.cred_id);
        auth_data.extend_from_slice(&self.cose_key());
        let mut obj = BTreeMap::new();
        obj.insert(Cbor::Text("fmt".into()), Cbor::Text("none".into()));
        obj.insert(Cbor::Text("attStmt".into()), Cbor::Map(BTreeMap::new()));
        obj.insert(Cbor::Text("authData".into()), Cbor::Bytes(auth_data));
        let attestation = serde_cbor_2::to_vec(&Cbor::Map(obj)).unwrap();
        json!({
            "id": self.credential_id(),
            "rawId": self.credential_id(),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64u(&client_data),
                "attestationObject": b64u(&attestation),
                "transports": ["internal", "hybrid"],
                "publicKeyAlgorithm": self.alg(),
            },
        })
    }

    /// `navigator.credentials.get()` for these options.
    fn authenticate(&mut self, options: &Value) -> Value {
        if let Some(allowed) = options["allowCredentials"].as_array() {
            assert!(
                allowed.iter().any(|c| c["id"] == self.credential_id()),
                "not allowed: {options}"
            );
        }
        let rp_id = options["rpId"].as_str().unwrap();
        let client_data = self.client_data("webauthn.get", options["challenge"].as_str().unwrap());
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(self.flags(false));
        auth_data.extend_from_slice(&self.counter.to_be_bytes());
        self.counter += 1;
        let mut signed = auth_data.clone();
        signed.extend_from_slice(&Sha256::digest(&client_data));
        let signature = self.sign(&signed);
        json!({
            "id": self.credential_id(),
            "rawId": self.credential_id(),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64u(&client_data),
                "authenticatorData": b64u(&auth_data),
                "signature": b64u(&signature),
                "userHandle": b64u(&self.user_handle),
            },
        })
    }
}

// ---------------------------------------------------------------------------
// A browser: cookies by name, and the front end's origin

/// `name=value` of the challenge cookie a response sets.
fn passkey_cookie(res: &Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains(".better-auth-passkey=") && !c.contains("Max-Age=0"))
        .map(|c| c.split(';').next().unwrap().trim().to_owned())
}

fn cookies(list: &[&str]) -> String {
    list.iter()
        .filter(|c| !c.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("; ")
}

async fn get(app: &TestApp, path: &str, cookie: &str) -> Response {
    app.get(path)
        .header("cookie", cookie)
        .header("origin", FRONTEND)
        .send()
        .await
        .unwrap()
}

async fn post(app: &TestApp, path: &str, cookie: &str, body: &Value) -> Response {
    app.post(path)
        .header("cookie", cookie)
        .header("origin", FRONTEND)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Registration options for a signed-in browser: the options and the
/// challenge cookie.
async fn register_options(app: &TestApp, session: &str) -> (Value, String) {
    let res = get(app, "/api/auth/passkey/generate-register-options", session).await;
    assert_eq!(res.status(), 200);
    let c = passkey_cookie(&res).expect("the options set the challenge cookie");
    remember_secret(c.split_once('=').unwrap().1);
    (res.json().await.unwrap(), c)
}

/// Registers `auth` for the user with this session; the passkey row.
async fn register(app: &TestApp, session: &str, auth: &mut SoftAuthenticator) -> Value {
    let (options, challenge) = register_options(app, session).await;
    let response = auth.register(&options);
    let res = post(
        app,
        "/api/auth/passkey/verify-registration",
        &cookies(&[session, &challenge]),
        &json!({ "response": response, "name": "Laptop" }),
    )
    .await;
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Authentication options (no session: a discoverable sign-in).
async fn auth_options(app: &TestApp, session: &str) -> (Value, String) {
    let res = get(
        app,
        "/api/auth/passkey/generate-authenticate-options",
        session,
    )
    .await;
    assert_eq!(res.status(), 200);
    let c = passkey_cookie(&res).expect("the options set the challenge cookie");
    remember_secret(c.split_once('=').unwrap().1);
    (res.json().await.unwrap(), c)
}

/// A full passkey sign-in: the answer.
async fn sign_in(app: &TestApp, auth: &mut SoftAuthenticator) -> Response {
    let (options, challenge) = auth_options(app, "").await;
    let response = auth.authenticate(&options);
    post(
        app,
        "/api/auth/passkey/verify-authentication",
        &challenge,
        &json!({ "response": response }),
    )
    .await
}

/// The session cookie a successful sign-in set, checked to work.
async fn signed_in_cookie(app: &TestApp, res: Response, user_id: &str) -> String {
    let status = res.status();
    let (cookie, _) = session_set_cookie(&res).unwrap_or_default();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], user_id, "{body}");
    assert_eq!(body["session"]["userId"], user_id, "{body}");
    remember_secret(body["session"]["token"].as_str().unwrap());
    remember_secret(cookie.split_once('=').unwrap().1);
    let s: Value = get(app, "/api/auth/get-session", &cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["user"]["id"], user_id, "the new session works: {s}");
    cookie
}

// ---------------------------------------------------------------------------
// Tests

backend_tests!(
    register_sign_out_sign_in_list_rename_delete,
    eddsa_passkey_verifies,
    betterauth_written_passkey_verifies,
    challenges_are_single_use,
    challenge_expires_after_five_minutes,
    bad_input_is_a_clear_4xx,
    user_verification_is_required_by_default,
    preferred_user_verification_accepts_an_assertion_without_uv,
    cloned_authenticator_counter_is_refused,
    banned_user_is_refused,
    two_factor_user_signs_in_without_a_challenge,
    other_users_passkeys_are_out_of_reach,
    deleting_the_user_deletes_its_passkeys,
    tutorial_api_passkeys,
    disabled_passkeys_are_not_found,
);

async fn register_sign_out_sign_in_list_rename_delete(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);

    // The options are BetterAuth's: EdDSA offered first, a random user
    // handle, the RP from base_url, UV required.
    let (options, _) = register_options(&app, &user.cookie).await;
    let algs: Vec<i64> = options["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["alg"].as_i64().unwrap())
        .collect();
    assert_eq!(algs, [-8, -7, -257], "{options}");
    assert_eq!(options["rp"]["id"], "localhost");
    assert_eq!(options["rp"]["name"], "Warden");
    assert_eq!(options["user"]["name"], user.email.as_str());
    assert_ne!(options["user"]["id"], b64u(user.id.as_bytes()));
    assert_eq!(unb64u(options["challenge"].as_str().unwrap()).len(), 32);
    assert_eq!(options["attestation"], "none");
    assert_eq!(options["excludeCredentials"], json!([]));
    assert_eq!(
        options["authenticatorSelection"],
        json!({"residentKey": "preferred", "userVerification": "required", "requireResidentKey": false})
    );

    let row = register(&app, &user.cookie, &mut auth).await;
    assert_eq!(row["userId"], user.id.as_str());
    assert_eq!(row["name"], "Laptop");
    assert_eq!(row["credentialID"], auth.credential_id());
    assert_eq!(row["counter"], 0);
    assert_eq!(row["deviceType"], "singleDevice");
    assert_eq!(row["backedUp"], false);
    assert_eq!(row["transports"], "internal,hybrid");
    assert_eq!(row["aaguid"], "11111111-1111-1111-1111-111111111111");
    // The COSE key, standard base64, as BetterAuth stores it.
    let key = STANDARD.decode(row["publicKey"].as_str().unwrap()).unwrap();
    let cose: Cbor = serde_cbor_2::from_slice(&key).unwrap();
    let Cbor::Map(m) = cose else { panic!() };
    assert_eq!(m.get(&Cbor::Integer(3)), Some(&Cbor::Integer(-7)));

    // Now the options exclude it.
    let (options, _) = register_options(&app, &user.cookie).await;
    assert_eq!(options["excludeCredentials"][0]["id"], auth.credential_id());
    assert_eq!(
        options["excludeCredentials"][0]["transports"],
        json!(["internal", "hybrid"])
    );

    // Sign out; sign in with the passkey alone (no email).
    let res = post(&app, "/api/auth/sign-out", &user.cookie, &json!({})).await;
    assert_eq!(res.status(), 200);
    let (options, _) = auth_options(&app, "").await;
    assert_eq!(options["rpId"], "localhost");
    assert_eq!(options["userVerification"], "required");
    assert!(options.get("allowCredentials").is_none(), "{options}");
    let res = sign_in(&app, &mut auth).await;
    let session = signed_in_cookie(&app, res, &user.id).await;

    // Signed in, the options list the user's passkeys.
    let (options, _) = auth_options(&app, &session).await;
    assert_eq!(options["allowCredentials"][0]["id"], auth.credential_id());

    // List, rename, delete.
    let list: Value = get(&app, "/api/auth/passkey/list-user-passkeys", &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["counter"], 1, "the counter moved: {list}");
    let id = list[0]["id"].as_str().unwrap().to_owned();
    let res = post(
        &app,
        "/api/auth/passkey/update-passkey",
        &session,
        &json!({"id": id, "name": "  Work laptop "}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["passkey"]["name"], "Work laptop");
    assert_eq!(body["passkey"]["id"], id.as_str());
    let res = post(
        &app,
        "/api/auth/passkey/delete-passkey",
        &session,
        &json!({"id": id}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": true}));
    let list: Value = get(&app, "/api/auth/passkey/list-user-passkeys", &session)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));

    // The deleted passkey no longer signs in.
    assert_ba_error(sign_in(&app, &mut auth).await, 401, "PASSKEY_NOT_FOUND").await;
    let res = post(
        &app,
        "/api/auth/passkey/delete-passkey",
        &session,
        &json!({"id": id}),
    )
    .await;
    assert_ba_error(res, 404, "PASSKEY_NOT_FOUND").await;
}

async fn eddsa_passkey_verifies(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Ed25519);
    let row = register(&app, &user.cookie, &mut auth).await;
    let key = STANDARD.decode(row["publicKey"].as_str().unwrap()).unwrap();
    let Cbor::Map(m) = serde_cbor_2::from_slice::<Cbor>(&key).unwrap() else {
        panic!()
    };
    assert_eq!(m.get(&Cbor::Integer(3)), Some(&Cbor::Integer(-8)), "EdDSA");
    assert_eq!(
        m.get(&Cbor::Integer(-1)),
        Some(&Cbor::Integer(6)),
        "Ed25519"
    );
    let res = sign_in(&app, &mut auth).await;
    signed_in_cookie(&app, res, &user.id).await;
    // A wrong signature does not verify.
    let (options, challenge) = auth_options(&app, "").await;
    let mut response = auth.authenticate(&options);
    let mut sig = unb64u(response["response"]["signature"].as_str().unwrap());
    sig[10] ^= 1;
    response["response"]["signature"] = b64u(&sig).into();
    let res = post(
        &app,
        "/api/auth/passkey/verify-authentication",
        &challenge,
        &json!({ "response": response }),
    )
    .await;
    assert_ba_error(res, 401, "AUTHENTICATION_FAILED").await;
}

/// A row as BetterAuth's plugin writes it (its own SQL, no Warden code)
/// signs in through Warden.
async fn betterauth_written_passkey_verifies(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    for alg in [Alg::Ed25519, Alg::Es256] {
        let mut auth = SoftAuthenticator::new(alg);
        let sql = format!(
            r#"INSERT INTO "passkey" ("id", "name", "publicKey", "userId", "credentialID", "counter", "deviceType", "backedUp", "transports", "createdAt", "aaguid")
               VALUES (?, 'Chrome', ?, ?, ?, 0, 'singleDevice', false, 'internal', {}, '00000000-0000-0000-0000-000000000000')"#,
            app.ts_param()
        );
        let id = warden_core::token::random_string(32);
        app.exec(
            &sql,
            &[
                &id,
                &STANDARD.encode(auth.cose_key()),
                &user.id,
                &auth.credential_id(),
                &app.ts_from_now(0),
            ],
        )
        .await;
        let res = sign_in(&app, &mut auth).await;
        signed_in_cookie(&app, res, &user.id).await;
        let counter = app
            .fetch_text(
                r#"SELECT CAST("counter" AS TEXT) FROM "passkey" WHERE "id" = ?"#,
                &[&id],
            )
            .await;
        assert_eq!(counter.as_deref(), Some("1"), "{alg:?}");
    }
}

async fn challenges_are_single_use(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    // Registration: the challenge works once.
    let (options, challenge) = register_options(&app, &user.cookie).await;
    let response = auth.register(&options);
    let body = json!({ "response": response });
    let both = cookies(&[&user.cookie, &challenge]);
    let res = post(&app, "/api/auth/passkey/verify-registration", &both, &body).await;
    assert_eq!(res.status(), 200);
    let res = post(&app, "/api/auth/passkey/verify-registration", &both, &body).await;
    assert_ba_error(res, 400, "CHALLENGE_NOT_FOUND").await;
    // Authentication: a replayed assertion (same challenge) is refused.
    let (options, challenge) = auth_options(&app, "").await;
    let response = auth.authenticate(&options);
    let body = json!({ "response": response });
    let res = post(
        &app,
        "/api/auth/passkey/verify-authentication",
        &challenge,
        &body,
    )
    .await;
    assert_eq!(res.status(), 200);
    let res = post(
        &app,
        "/api/auth/passkey/verify-authentication",
        &challenge,
        &body,
    )
    .await;
    assert_ba_error(res, 400, "CHALLENGE_NOT_FOUND").await;
    // A failed attempt spends the challenge too.
    let (options, challenge) = auth_options(&app, "").await;
    let mut response = auth.authenticate(&options);
    response["response"]["signature"] = b64u(b"nope").into();
    let res = post(
        &app,
        "/api/auth/passkey/verify-authentication",
        &challenge,
        &json!({ "response": response }),
    )
    .await;
    assert!(res.status().is_client_error());
    let response = auth.authenticate(&options);
    let res = post(
        &app,
        "/api/auth/passkey/verify-authentication",
        &challenge,
        &json!({ "response": response }),
    )
    .await;
    assert_ba_error(res, 400, "CHALLENGE_NOT_FOUND").await;
    // A registration challenge is no authentication challenge.
    let (_, reg_challenge) = register_options(&app, &user.cookie).await;
    let (options, _) = auth_options(&app, "").await;
    let response = auth.authenticate(&options);
    let res = post(
        &app,
        "/api/auth/passkey/verify-authentication",
        &reg_challenge,
        &json!({ "response": response }),
    )
    .await;
    assert_ba_error(res, 400, "CHALLENGE_NOT_FOUND").await;
}

async fn challenge_expires_after_five_minutes(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    register(&app, &user.cookie, &mut auth).await;
    let (options, challenge) = auth_options(&app, "").await;
    app.clock.advance(Duration::from_secs(301));
    let response = auth.authenticate(&options);
    let res = post(
        &app,
        "/api/auth/passkey/verify-authentication",
        &challenge,
        &json!({ "response": response }),
    )
    .await;
    assert_ba_error(res, 400, "CHALLENGE_NOT_FOUND").await;
    // Within the five minutes it works.
    let (options, challenge) = auth_options(&app, "").await;
    app.clock.advance(Duration::from_secs(290));
    let response = auth.authenticate(&options);
    let res = post(
        &app,
        "/api/auth/passkey/verify-authentication",
        &challenge,
        &json!({ "response": response }),
    )
    .await;
    assert_eq!(res.status(), 200);
}

async fn bad_input_is_a_clear_4xx(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    let verify_reg = "/api/auth/passkey/verify-registration";
    let verify_auth = "/api/auth/passkey/verify-authentication";

    // Malformed JSON.
    let (_, challenge) = register_options(&app, &user.cookie).await;
    let res = app
        .post(verify_reg)
        .header("cookie", cookies(&[&user.cookie, &challenge]))
        .header("origin", FRONTEND)
        .header("content-type", "application/json")
        .body("{\"response\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Not a credential.
    let (_, challenge) = register_options(&app, &user.cookie).await;
    let both = cookies(&[&user.cookie, &challenge]);
    let res = post(&app, verify_reg, &both, &json!({"response": {"id": 5}})).await;
    let m = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    assert!(m.contains("response"), "{m}");
    // A credential whose attestation is garbage.
    let (options, challenge) = register_options(&app, &user.cookie).await;
    let mut response = auth.register(&options);
    response["response"]["attestationObject"] = b64u(b"\xa1garbage").into();
    let both = cookies(&[&user.cookie, &challenge]);
    let res = post(&app, verify_reg, &both, &json!({ "response": response })).await;
    assert_ba_error(res, 400, "FAILED_TO_VERIFY_REGISTRATION").await;
    // No challenge cookie.
    let (options, _) = register_options(&app, &user.cookie).await;
    let response = auth.register(&options);
    let res = post(
        &app,
        verify_reg,
        &user.cookie,
        &json!({ "response": response }),
    )
    .await;
    assert_ba_error(res, 400, "CHALLENGE_NOT_FOUND").await;
    // A forged (unsigned) challenge cookie.
    let res = post(
        &app,
        verify_reg,
        &cookies(&[&user.cookie, "warden.better-auth-passkey=abc.def"]),
        &json!({ "response": response }),
    )
    .await;
    assert_ba_error(res, 400, "CHALLENGE_NOT_FOUND").await;
    // Wrong origin: a page elsewhere relaying the ceremony.
    let mut phished = SoftAuthenticator::new(Alg::Es256);
    phished.origin = "https://evil.example".into();
    let (options, challenge) = register_options(&app, &user.cookie).await;
    let response = phished.register(&options);
    let both = cookies(&[&user.cookie, &challenge]);
    let res = post(&app, verify_reg, &both, &json!({ "response": response })).await;
    let m = assert_ba_error(res, 400, "FAILED_TO_VERIFY_REGISTRATION").await;
    assert!(m.contains("origin"), "{m}");
    // Not signed in.
    let res = post(&app, verify_reg, "", &json!({ "response": {} })).await;
    assert_ba_error(res, 401, "UNAUTHORIZED").await;
    let res = get(&app, "/api/auth/passkey/generate-register-options", "").await;
    assert_ba_error(res, 401, "UNAUTHORIZED").await;
    let res = get(
        &app,
        "/api/auth/passkey/generate-register-options?authenticatorAttachment=phone",
        &user.cookie,
    )
    .await;
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;

    register(&app, &user.cookie, &mut auth).await;
    // Sign-in: wrong origin.
    auth.origin = "https://evil.example".into();
    let m = assert_ba_error(sign_in(&app, &mut auth).await, 400, "AUTHENTICATION_FAILED").await;
    assert!(m.contains("origin"), "{m}");
    auth.origin = FRONTEND.into();
    // Unknown credential.
    let mut stranger = SoftAuthenticator::new(Alg::Es256);
    assert_ba_error(sign_in(&app, &mut stranger).await, 401, "PASSKEY_NOT_FOUND").await;
    // No challenge cookie; missing response; a response of the wrong kind.
    let (options, _) = auth_options(&app, "").await;
    let response = auth.authenticate(&options);
    let res = post(&app, verify_auth, "", &json!({ "response": response })).await;
    assert_ba_error(res, 400, "CHALLENGE_NOT_FOUND").await;
    let (_, challenge) = auth_options(&app, "").await;
    let res = post(&app, verify_auth, &challenge, &json!({})).await;
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    let (_, challenge) = auth_options(&app, "").await;
    let res = post(
        &app,
        verify_auth,
        &challenge,
        &json!({"response": {"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": "!!", "authenticatorData": "", "signature": ""}}}),
    )
    .await;
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    // Management: unknown id, empty name.
    let res = post(
        &app,
        "/api/auth/passkey/update-passkey",
        &user.cookie,
        &json!({"id": "nope", "name": "x"}),
    )
    .await;
    assert_ba_error(res, 404, "PASSKEY_NOT_FOUND").await;
    let list: Value = get(&app, "/api/auth/passkey/list-user-passkeys", &user.cookie)
        .await
        .json()
        .await
        .unwrap();
    let res = post(
        &app,
        "/api/auth/passkey/update-passkey",
        &user.cookie,
        &json!({"id": list[0]["id"], "name": "   "}),
    )
    .await;
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    let res = post(
        &app,
        "/api/auth/passkey/delete-passkey",
        &user.cookie,
        &json!({}),
    )
    .await;
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    let res = get(&app, "/api/auth/passkey/list-user-passkeys", "").await;
    assert_ba_error(res, 401, "UNAUTHORIZED").await;
}

async fn user_verification_is_required_by_default(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    // A registration without UV is refused.
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    auth.uv = false;
    let (options, challenge) = register_options(&app, &user.cookie).await;
    let response = auth.register(&options);
    let res = post(
        &app,
        "/api/auth/passkey/verify-registration",
        &cookies(&[&user.cookie, &challenge]),
        &json!({ "response": response }),
    )
    .await;
    let m = assert_ba_error(res, 400, "FAILED_TO_VERIFY_REGISTRATION").await;
    assert!(m.contains("user verification"), "{m}");
    // Registered with UV, an assertion without it is refused.
    auth.uv = true;
    register(&app, &user.cookie, &mut auth).await;
    auth.uv = false;
    let m = assert_ba_error(sign_in(&app, &mut auth).await, 400, "AUTHENTICATION_FAILED").await;
    assert!(m.contains("user verification"), "{m}");
    auth.uv = true;
    let res = sign_in(&app, &mut auth).await;
    signed_in_cookie(&app, res, &user.id).await;
}

async fn preferred_user_verification_accepts_an_assertion_without_uv(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.passkey.user_verification = warden_core::UserVerification::Preferred;
    })
    .await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    auth.uv = false;
    let (options, _) = register_options(&app, &user.cookie).await;
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "preferred"
    );
    register(&app, &user.cookie, &mut auth).await;
    let res = sign_in(&app, &mut auth).await;
    signed_in_cookie(&app, res, &user.id).await;
}

async fn cloned_authenticator_counter_is_refused(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    register(&app, &user.cookie, &mut auth).await;
    auth.counter = 10;
    let res = sign_in(&app, &mut auth).await;
    signed_in_cookie(&app, res, &user.id).await;
    // A clone of the key, whose counter is behind (or equal).
    for counter in [5, 10] {
        auth.counter = counter;
        let m = assert_ba_error(sign_in(&app, &mut auth).await, 400, "AUTHENTICATION_FAILED").await;
        assert!(m.contains("counter"), "{m}");
    }
    assert!(
        captured_logs().contains("possibly a cloned authenticator"),
        "the refusal is logged"
    );
    // The stored counter is the last accepted one; the real authenticator
    // (ahead) still signs in.
    auth.counter = 12;
    let res = sign_in(&app, &mut auth).await;
    signed_in_cookie(&app, res, &user.id).await;
}

async fn banned_user_is_refused(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    register(&app, &user.cookie, &mut auth).await;
    app.exec(
        r#"UPDATE "user" SET "banned" = true WHERE "id" = ?"#,
        &[&user.id],
    )
    .await;
    let res = sign_in(&app, &mut auth).await;
    assert!(session_set_cookie(&res).is_none());
    assert_ba_error(res, 403, "BANNED_USER").await;
}

async fn two_factor_user_signs_in_without_a_challenge(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    register(&app, &user.cookie, &mut auth).await;
    app.exec(
        r#"UPDATE "user" SET "twoFactorEnabled" = true WHERE "id" = ?"#,
        &[&user.id],
    )
    .await;
    // A password sign-in now stops at the second factor ...
    let res = app
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["twoFactorRedirect"], true, "{body}");
    // ... a passkey sign-in is complete, as in BetterAuth.
    let res = sign_in(&app, &mut auth).await;
    signed_in_cookie(&app, res, &user.id).await;
}

async fn other_users_passkeys_are_out_of_reach(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.ba_sign_up().await;
    let bob = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    let row = register(&app, &alice.cookie, &mut auth).await;
    let id = row["id"].as_str().unwrap();
    let res = post(
        &app,
        "/api/auth/passkey/update-passkey",
        &bob.cookie,
        &json!({"id": id, "name": "mine"}),
    )
    .await;
    assert_ba_error(res, 401, "YOU_ARE_NOT_ALLOWED_TO_REGISTER_THIS_PASSKEY").await;
    let res = post(
        &app,
        "/api/auth/passkey/delete-passkey",
        &bob.cookie,
        &json!({"id": id}),
    )
    .await;
    assert_ba_error(res, 401, "YOU_ARE_NOT_ALLOWED_TO_REGISTER_THIS_PASSKEY").await;
    let list: Value = get(&app, "/api/auth/passkey/list-user-passkeys", &bob.cookie)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    // Alice's registration challenge cannot register a passkey for Bob.
    let (options, challenge) = register_options(&app, &alice.cookie).await;
    let response = SoftAuthenticator::new(Alg::Es256).register(&options);
    let res = post(
        &app,
        "/api/auth/passkey/verify-registration",
        &cookies(&[&bob.cookie, &challenge]),
        &json!({ "response": response }),
    )
    .await;
    assert_ba_error(res, 401, "YOU_ARE_NOT_ALLOWED_TO_REGISTER_THIS_PASSKEY").await;
    // Still Alice's, and it still signs Alice in.
    let res = sign_in(&app, &mut auth).await;
    signed_in_cookie(&app, res, &alice.id).await;
}

async fn deleting_the_user_deletes_its_passkeys(b: Backend) {
    let app = spawn_app_with(b, |c| c.user.allow_delete = true).await;
    let user = app.ba_sign_up().await;
    let mut auth = SoftAuthenticator::new(Alg::Es256);
    register(&app, &user.cookie, &mut auth).await;
    let count = r#"SELECT COUNT(*) FROM "passkey" WHERE "userId" = ?"#;
    assert_eq!(app.count(count, &[&user.id]).await, 1);
    let res = post(
        &app,
        "/api/auth/delete-user",
        &user.cookie,
        &json!({"password": user.password}),
    )
    .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert_eq!(app.count(count, &[&user.id]).await, 0);
    assert_ba_error(sign_in(&app, &mut auth).await, 401, "PASSKEY_NOT_FOUND").await;
}

async fn tutorial_api_passkeys(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let auth_header = bearer(&user.token);
    let mut auth = SoftAuthenticator::new(Alg::Ed25519);
    // Register, with the challenge in the body (no cookies).
    let res = app
        .post("/auth/passkey/register/options")
        .header("authorization", &auth_header)
        .json(&json!({"name": "Phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["expiresIn"], 300);
    let challenge = body["challenge"].as_str().unwrap().to_owned();
    remember_secret(&challenge);
    let response = auth.register(&body["options"]);
    let res = app
        .post("/auth/passkey/register/verify")
        .header("authorization", &auth_header)
        .json(&json!({"response": response, "name": "Phone", "challenge": challenge}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["name"], "Phone");
    assert_eq!(info["credentialID"], auth.credential_id());
    assert_eq!(info["transports"], json!(["internal", "hybrid"]));
    let id = info["id"].as_str().unwrap().to_owned();
    // The same challenge again: spent.
    let res = app
        .post("/auth/passkey/register/verify")
        .header("authorization", &auth_header)
        .json(&json!({"response": response, "challenge": challenge}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;

    // Sign in.
    let res = app
        .post("/auth/passkey/signin/options")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let challenge = body["challenge"].as_str().unwrap().to_owned();
    let response = auth.authenticate(&body["options"]);
    let res = app
        .post("/auth/passkey/signin/verify")
        .json(&json!({"response": response, "challenge": challenge}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user"]["id"], user.id.as_str());
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    remember_secret(&token);
    let profile = app.get_json_as("/profile", &token).await;
    assert_eq!(profile["id"], user.id.as_str());

    // List, rename, delete.
    let list = app.get_json_as("/auth/passkeys", &token).await;
    assert_eq!(list["passkeys"][0]["id"], id.as_str());
    let res = app
        .client
        .patch(app.url(&format!("/auth/passkeys/{id}")))
        .header("authorization", bearer(&token))
        .json(&json!({"name": "Old phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "Old phone");
    let res = app.delete_as(&format!("/auth/passkeys/{id}"), &token).await;
    assert_eq!(res.status(), 200);
    let res = app.delete_as(&format!("/auth/passkeys/{id}"), &token).await;
    assert_error(res, 404, "not_found").await;
    let list = app.get_json_as("/auth/passkeys", &token).await;
    assert_eq!(list["passkeys"], json!([]));

    // Bad input: no challenge, unknown credential.
    let res = app
        .post("/auth/passkey/signin/verify")
        .json(&json!({"response": response}))
        .send()
        .await
        .unwrap();
    assert_error(res, 400, "invalid_argument").await;
    let res = app
        .post("/auth/passkey/signin/options")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let response = auth.authenticate(&body["options"]);
    let res = app
        .post("/auth/passkey/signin/verify")
        .json(&json!({"response": response, "challenge": body["challenge"]}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
    let res = app
        .post("/auth/passkey/register/options")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
}

async fn disabled_passkeys_are_not_found(b: Backend) {
    let app = spawn_app_with(b, |c| c.passkey.enabled = false).await;
    let user = app.ba_sign_up().await;
    let res = get(
        &app,
        "/api/auth/passkey/generate-register-options",
        &user.cookie,
    )
    .await;
    assert_ba_error(res, 404, "NOT_FOUND").await;
    let res = get(&app, "/api/auth/passkey/generate-authenticate-options", "").await;
    assert_ba_error(res, 404, "NOT_FOUND").await;
}
