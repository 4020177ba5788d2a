//! No credential in the telemetry: the whole flow (sign-up with email
//! verification, sign-in with TOTP and with a backup code, social sign-in
//! through the local OpenID Connect provider, reset by mail, profile,
//! sign-out) runs with OTLP export on and `/metrics` scraped; then none of
//! the secrets the flow handled may appear in the bytes the OTLP receiver
//! got, in `/metrics`, or in the in-process trace store.
//!
//! The secrets: passwords (old and new), every session token, every value
//! of every cookie the server set (session, two-factor challenge, trusted
//! device, OAuth state; as sent and percent-decoded), the two-factor
//! challenge tokens, the TOTP URI and secret (base32, hex and raw bytes),
//! the TOTP codes used, every backup code, the email-verification and reset
//! tokens (and their links), the OAuth `state` and OIDC `nonce`, the provider's
//! authorization `code` and Warden's one-time exchange `code`, the
//! provider's access and ID tokens (decrypted from the `account` row with
//! the server secret), the OAuth client secret, and the server secret.

use std::collections::HashSet;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::{json, Value};
use url::Url;
use warden::config::SocialProviderConfig;
use warden_core::Clock;
use warden_telemetry::{Trace, TraceId, TraceStore};

use crate::helpers::{free_port, remember_secret, Backend, TestApp};
use crate::mail_sink::{spawn_app_with_sink, MailSink, SentMail};
use crate::oidc_provider::{self, OidcProvider};
use crate::otlp_receiver::receiver;

const WAIT: Duration = Duration::from_secs(10);
/// A TOTP step: the clock moves on by one after each code, so that the
/// next code is a fresh one (a code is accepted once).
const STEP: Duration = Duration::from_secs(30);
const PROVIDER: &str = "acme";

// ---------------------------------------------------------------------------
// what the flow handled

/// A value that must not appear anywhere in the telemetry.
struct Secret {
    /// Where the flow got it (for the report).
    what: String,
    value: String,
    /// A 6-digit TOTP code: see [`Secret::found_in`].
    code: bool,
}

impl Secret {
    /// Whether `text` holds the secret.
    ///
    /// A long secret: as a substring. A 6-digit TOTP code as a bare
    /// substring would match any timestamp, duration or id by chance, so
    /// it counts only where a leaked code would stand: as a whole quoted
    /// string (`"123456"`, an attribute or field whose value is the code,
    /// or a JSON body; also escaped, `\"123456\"`, as inside the store's
    /// JSON), single-quoted, or after `=` (a query string, a form,
    /// `code=123456` in a log message) and not followed by another digit.
    fn found_in(&self, text: &str) -> bool {
        if !self.code {
            return text.contains(&self.value);
        }
        let c = &self.value;
        [format!("\"{c}\""), format!("\\\"{c}\\\""), format!("'{c}'")]
            .iter()
            .any(|p| text.contains(p.as_str()))
            || text
                .match_indices(&format!("={c}"))
                .any(|(i, m)| !text[i + m.len()..].starts_with(|ch: char| ch.is_ascii_digit()))
    }

    /// Whether the protobuf bytes (as lossy text: ASCII survives) hold the
    /// secret. For a code, also as an OTLP `AnyValue` whose string value
    /// is exactly the code: tag 0x0a (field 1, length-delimited), length 6.
    fn found_in_protobuf(&self, text: &str) -> bool {
        self.found_in(text) || (self.code && text.contains(&format!("\n\u{6}{}", self.value)))
    }
}

/// The flow's client (never follows redirects: each `Location` is
/// followed by hand), what it saw, and the trace of every response.
struct Flow<'a> {
    app: &'a TestApp,
    client: Client,
    secrets: Vec<Secret>,
    /// Binary secrets (the raw TOTP key), looked for in the exported bytes.
    binary: Vec<(String, Vec<u8>)>,
    /// (step, trace id) of every response of the server.
    traces: Vec<(String, String)>,
}

impl<'a> Flow<'a> {
    fn new(app: &'a TestApp) -> Self {
        Flow {
            app,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("warden-tests-flow/1.0")
                .build()
                .unwrap(),
            secrets: Vec::new(),
            binary: Vec::new(),
            traces: Vec::new(),
        }
    }

    fn secret(&mut self, what: impl Into<String>, value: &str) {
        let what = what.into();
        assert!(
            value.len() >= 8,
            "{what}: too short for a substring check: {value:?}"
        );
        remember_secret(value);
        if !self.secrets.iter().any(|s| s.value == value) {
            self.secrets.push(Secret {
                what,
                value: value.to_owned(),
                code: false,
            });
        }
    }

    fn totp_code(&mut self, what: &str, code: &str) {
        assert!(
            code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
            "{what}: {code}"
        );
        self.secrets.push(Secret {
            what: what.to_owned(),
            value: code.to_owned(),
            code: true,
        });
    }

    /// Sends a request to the server and records what it answered.
    async fn send(&mut self, step: &str, req: RequestBuilder) -> Response {
        let res = req.send().await.unwrap();
        self.saw(step, &res);
        res
    }

    /// Records a response's trace id and every cookie value it sets.
    fn saw(&mut self, step: &str, res: &Response) {
        let id = res
            .headers()
            .get("x-trace-id")
            .unwrap_or_else(|| panic!("{step}: no x-trace-id"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{step}: {id}"
        );
        let traceparent = res.headers()["traceparent"].to_str().unwrap();
        assert!(traceparent.contains(&id), "{step}: {traceparent}");
        self.traces.push((step.to_owned(), id));
        let cookies: Vec<(String, String)> = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| {
                let pair = c.to_str().unwrap().split(';').next().unwrap().trim();
                let (name, value) = pair.split_once('=')?;
                Some((name.to_owned(), value.to_owned()))
            })
            .collect();
        for (name, value) in cookies {
            if value.is_empty() {
                continue;
            }
            self.secret(format!("{step}: Set-Cookie {name}"), &value);
            let decoded = percent_decode(&value);
            if decoded != value {
                self.secret(format!("{step}: Set-Cookie {name} (decoded)"), &decoded);
            }
        }
    }

    fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.app.url(path))
    }

    fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.app.url(path))
    }

    /// A POST to the BetterAuth API from a page of the server's origin,
    /// with `cookie`.
    fn ba_post(&self, path: &str, cookie: &str) -> RequestBuilder {
        self.post(path)
            .header("origin", self.app.origin())
            .header("cookie", cookie)
    }
}

/// `%XX` escapes decoded (cookie values are percent-encoded).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(x);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The live `name=value` pair of the cookie `name` a response sets.
fn cookie_pair(res: &Response, name: &str) -> String {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap().trim().to_owned())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
        .unwrap_or_else(|| panic!("no {name} cookie set"))
}

fn location(res: &Response) -> String {
    assert_eq!(res.status(), 302, "expected a redirect");
    res.headers()["location"].to_str().unwrap().to_owned()
}

fn query(url: &str) -> std::collections::BTreeMap<String, String> {
    Url::parse(url)
        .unwrap_or_else(|e| panic!("{url:?}: {e}"))
        .query_pairs()
        .into_owned()
        .collect()
}

async fn json_ok(step: &str, res: Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{step}: {body}");
    body
}

// ---------------------------------------------------------------------------
// TOTP (pyotp, as in two_factor.rs)

/// pyotp's code for `uri` at Unix time `t`.
fn totp_at(uri: &str, t: i64) -> String {
    let python = crate::python_env::python();
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg("import pyotp,sys\nprint(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))")
        .arg(uri)
        .arg(t.to_string())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    assert!(
        out.status.success(),
        "pyotp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// RFC 4648 base32 (no padding), as in `otpauth://` URIs.
fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut n, mut out) = (0u64, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .unwrap_or_else(|| panic!("not base32: {s}")) as u64;
        bits = (bits << 5) | v;
        n += 5;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// the telemetry

fn store() -> &'static TraceStore {
    warden::telemetry::installed()
        .and_then(|t| t.traces.as_ref())
        .expect("the test subscriber keeps traces")
}

/// One sample's value: the sum over the lines `name{labels} value` whose
/// labels include every `want` pair.
fn metric(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, labels) = series
                .split_once('{')
                .map_or((series, ""), |(n, rest)| (n, rest.trim_end_matches('}')));
            let wanted = n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.split(',').any(|p| p == format!("{k}=\"{v}\"")));
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Where in a stored trace a secret is: span, field or event.
fn locate_in_trace(trace: &Trace, s: &Secret) -> Vec<String> {
    let holds = |v: &str| v == s.value || s.found_in(v);
    let mut at = Vec::new();
    for span in &trace.spans {
        for (k, v) in &span.fields {
            if holds(v) {
                at.push(format!(
                    "span `{}` (target {}) field `{k}` = {v:?}",
                    span.name, span.target
                ));
            }
        }
        for e in &span.events {
            if e.message.as_deref().is_some_and(holds) {
                at.push(format!(
                    "event {:?} (target {}) in span `{}`",
                    e.message, e.target, span.name
                ));
            }
            for (k, v) in &e.fields {
                if holds(v) {
                    at.push(format!(
                        "event {:?} (target {}) in span `{}`: field `{k}` = {v:?}",
                        e.message, e.target, span.name
                    ));
                }
            }
        }
    }
    if at.is_empty() {
        at.push("(somewhere in its JSON)".into());
    }
    at
}

/// Where in an exported span a secret is: its name, or which attribute or
/// event.
fn locate_in_span(span: &Span, s: &Secret) -> Vec<String> {
    let lossy = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    let mut at = Vec::new();
    if s.found_in(&span.name) || span.name == s.value {
        at.push(format!("exported span name {:?}", span.name));
    }
    for kv in &span.attributes {
        if s.found_in_protobuf(&lossy(kv.encode_to_vec())) {
            at.push(format!(
                "exported span `{}`: attribute `{}` = {:?}",
                span.name, kv.key, kv.value
            ));
        }
    }
    for e in &span.events {
        if s.found_in_protobuf(&lossy(e.encode_to_vec())) {
            let keys: Vec<&str> = e
                .attributes
                .iter()
                .filter(|kv| s.found_in_protobuf(&lossy(kv.encode_to_vec())))
                .map(|kv| kv.key.as_str())
                .collect();
            at.push(format!(
                "exported span `{}`: event {:?}, attribute(s) {keys:?}",
                span.name, e.name
            ));
        }
    }
    if at.is_empty() && s.found_in_protobuf(&lossy(span.encode_to_vec())) {
        at.push(format!("exported span `{}` (elsewhere in it)", span.name));
    }
    at
}

/// Up to 160 characters either side of `pos`, control characters shown as `.`.
fn context(text: &str, pos: usize) -> String {
    let mut start = pos.saturating_sub(160);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (pos + 160).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    text[start..end]
        .chars()
        .map(|c| if c.is_control() { '.' } else { c })
        .collect()
}

/// Whether a JWT (`eyJ...` `.eyJ...`) is in `text` (the provider's tokens
/// are JWTs).
fn has_jwt(text: &str) -> bool {
    text.match_indices("eyJ").any(|(i, _)| {
        let rest = &text[i..];
        let header = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        rest[header..].starts_with(".eyJ")
    })
}

// ---------------------------------------------------------------------------
// the test

async fn verification_token(sink: &MailSink, email: &str) -> (String, String) {
    let mails = sink.wait_for(email, 1, WAIT).await;
    let mail = mails
        .iter()
        .find(|m| m.subject.contains("Confirm your email"))
        .unwrap_or_else(|| panic!("no verification mail: {:?}", subjects(&mails)));
    token_link(mail)
}

fn subjects(mails: &[SentMail]) -> Vec<&str> {
    mails.iter().map(|m| m.subject.as_str()).collect()
}

/// The link in a mail that carries `token=`, and the token.
fn token_link(mail: &SentMail) -> (String, String) {
    let link = mail
        .links()
        .into_iter()
        .find(|l| l.contains("token="))
        .unwrap_or_else(|| panic!("no link with a token in: {}", mail.text));
    let token = query(&link)["token"].clone();
    (link, token)
}

async fn no_credential_in_traces_metrics_or_export(backend: Backend) {
    let op: OidcProvider = oidc_provider::start().await;
    let port = free_port();
    let client_id = "warden-flow-client";
    let client_secret = format!(
        "flow-client-secret-{}",
        warden_core::token::random_string(16)
    );
    let (app, sink) = {
        let (issuer, client_secret) = (op.issuer.clone(), client_secret.clone());
        spawn_app_with_sink(backend, move |c| {
            c.listen = ([127, 0, 0, 1], port).into();
            c.base_url = format!("http://127.0.0.1:{port}");
            c.email_verification.required = true;
            c.email_verification.auto_sign_in = false;
            c.social.insert(
                PROVIDER.into(),
                SocialProviderConfig {
                    client_id: client_id.into(),
                    client_secret: Some(client_secret),
                    issuer: Some(issuer),
                    ..Default::default()
                },
            );
        })
        .await
    };
    assert_eq!(app.addr, app.base_url);
    let mut f = Flow::new(&app);
    f.secret("the server secret", &app.server_secret());
    f.secret("the OAuth client secret", &client_secret);

    let rand = warden_core::token::random_string(10).to_lowercase();
    let email = format!("flow-{rand}@example.com");
    let old_password = format!("Flow-Old-Pass-{}", warden_core::token::random_string(12));
    let new_password = format!("Flow-New-Pass-{}", warden_core::token::random_string(12));
    f.secret("the old password", &old_password);
    f.secret("the new password", &new_password);

    // 1. Sign-up; the address is verified by the mailed link.
    let res = f
        .send(
            "sign-up",
            f.post("/auth/signup")
                .json(&json!({"email": email, "password": old_password, "name": "Flow User"})),
        )
        .await;
    let body = json_ok("sign-up", res).await;
    assert_eq!(body["emailVerificationRequired"], true, "{body}");
    let (link, verify_token) = verification_token(&sink, &email).await;
    f.secret("the email-verification token", &verify_token);
    f.secret("the email-verification link", &link);
    let path = link
        .strip_prefix(app.base_url.as_str())
        .unwrap_or_else(|| panic!("a link on base_url: {link}"))
        .to_owned();
    let res = f.send("verify email", f.get(&path)).await;
    json_ok("verify email", res).await;

    // 2. Sign-in with the password; two-factor is enabled and confirmed.
    let res = f
        .send(
            "sign-in (password)",
            f.post("/auth/signin")
                .json(&json!({"email": email, "password": old_password})),
        )
        .await;
    let body = json_ok("sign-in (password)", res).await;
    let first_token = body["session"]["token"].as_str().unwrap().to_owned();
    let user_id = body["user"]["id"].as_str().unwrap().to_owned();
    f.secret("the first session token", &first_token);
    let res = f
        .send(
            "enable two-factor",
            f.post("/auth/two-factor/enable")
                .bearer_auth(&first_token)
                .json(&json!({"password": old_password})),
        )
        .await;
    let body = json_ok("enable two-factor", res).await;
    let uri = body["totpURI"].as_str().unwrap().to_owned();
    f.secret("the TOTP URI", &uri);
    let totp_secret = query(&uri)["secret"].clone();
    f.secret("the TOTP secret (base32)", &totp_secret);
    let key = base32_decode(&totp_secret);
    assert!(key.len() >= 16, "{totp_secret}");
    f.secret("the TOTP key (hex)", &hex::encode(&key));
    f.secret("the TOTP key (HEX)", &hex::encode_upper(&key));
    f.binary.push(("the TOTP key (raw bytes)".into(), key));
    let backup: Vec<String> = body["backupCodes"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(backup.len(), 10);
    for (i, c) in backup.iter().enumerate() {
        f.secret(format!("backup code #{i}"), c);
        f.secret(
            format!("backup code #{i} without its dash"),
            &c.replace('-', ""),
        );
    }
    let code = totp_at(&uri, app.clock.now().timestamp());
    f.totp_code("the TOTP code that confirmed two-factor", &code);
    let res = f
        .send(
            "confirm two-factor",
            f.post("/auth/two-factor/confirm")
                .bearer_auth(&first_token)
                .json(&json!({"code": code})),
        )
        .await;
    json_ok("confirm two-factor", res).await;
    app.clock.advance(STEP);

    // 3. Sign-in with TOTP (tutorial API).
    let res = f
        .send(
            "sign-in (challenge)",
            f.post("/auth/signin")
                .json(&json!({"email": email, "password": old_password})),
        )
        .await;
    let body = json_ok("sign-in (challenge)", res).await;
    assert_eq!(body["twoFactorRequired"], true, "{body}");
    let challenge = body["challenge"].as_str().unwrap().to_owned();
    f.secret("a two-factor challenge token", &challenge);
    let code = totp_at(&uri, app.clock.now().timestamp());
    f.totp_code("the TOTP code of the first sign-in", &code);
    let res = f
        .send(
            "verify TOTP",
            f.post("/auth/two-factor/verify-totp")
                .json(&json!({"code": code, "challenge": challenge})),
        )
        .await;
    let totp_trace = f.traces.last().unwrap().1.clone();
    let body = json_ok("verify TOTP", res).await;
    let totp_token = body["session"]["token"].as_str().unwrap().to_owned();
    f.secret("the session token of the TOTP sign-in", &totp_token);
    app.clock.advance(STEP);

    // 4. The profile: read and updated.
    let res = f
        .send("profile", f.get("/profile").bearer_auth(&totp_token))
        .await;
    assert_eq!(json_ok("profile", res).await["id"], user_id.as_str());
    let res = f
        .send(
            "profile update",
            f.client
                .put(app.url("/profile"))
                .bearer_auth(&totp_token)
                .json(&json!({"name": "Flow User Renamed"})),
        )
        .await;
    json_ok("profile update", res).await;

    // 5. Social sign-in (a new user) through the provider, by hand.
    op.set_next(
        json!({"sub": format!("flow-{rand}"), "email": format!("social-{rand}@example.com"),
                       "email_verified": true, "name": "Social Flow"}),
    )
    .await;
    let welcome = format!("{}/welcome", app.origin());
    let start = Url::parse_with_params(
        &app.url(&format!("/auth/signin/{PROVIDER}")),
        &[("callbackURL", welcome.as_str())],
    )
    .unwrap();
    let res = f.send("social start", f.client.get(start.as_str())).await;
    let authorize = location(&res);
    let state_cookie = cookie_pair(&res, "warden.oauth_state");
    assert!(authorize.starts_with(&op.issuer), "{authorize}");
    let q = query(&authorize);
    f.secret("the OAuth state", &q["state"]);
    f.secret("the OIDC nonce", &q["nonce"]);
    // At the provider (not the server: no trace id to record).
    let res = f.client.get(&authorize).send().await.unwrap();
    let callback = location(&res);
    let q = query(&callback);
    assert!(!q.contains_key("error"), "{callback}");
    f.secret("the provider's authorization code", &q["code"]);
    let res = f
        .send(
            "social callback",
            f.client.get(&callback).header("cookie", &state_cookie),
        )
        .await;
    let landing = location(&res);
    assert!(landing.starts_with(&welcome), "{landing}");
    let one_time = query(&landing)
        .get("code")
        .unwrap_or_else(|| panic!("no code in {landing}"))
        .clone();
    f.secret("the one-time exchange code", &one_time);
    let res = f
        .send(
            "social exchange",
            f.post("/auth/exchange").json(&json!({"code": one_time})),
        )
        .await;
    let body = json_ok("social exchange", res).await;
    let social_token = body["session"]["token"].as_str().unwrap().to_owned();
    f.secret("the social session token", &social_token);
    // The provider's tokens, as the server stored them (encrypted with a
    // key derived from the server secret).
    let keys = warden_core::two_factor::SecretKeys::from_secret(app.server_secret().as_bytes());
    let mut provider_tokens = 0;
    for column in ["accessToken", "idToken", "refreshToken"] {
        let stored = app
            .fetch_text(
                &format!(r#"SELECT "{column}" FROM "account" WHERE "providerId" = ?"#),
                &[PROVIDER],
            )
            .await;
        if let Some(stored) = stored {
            let plain = keys
                .decrypt(&stored)
                .unwrap_or_else(|_| panic!("{column} decrypts with the server secret"));
            f.secret(format!("the provider's {column}"), &plain);
            f.secret(format!("the provider's {column} (as stored)"), &stored);
            provider_tokens += 1;
        }
    }
    assert!(provider_tokens >= 2, "access and ID tokens are stored");
    let res = f
        .send(
            "social profile",
            f.get("/profile").bearer_auth(&social_token),
        )
        .await;
    json_ok("social profile", res).await;
    let res = f
        .send(
            "social sign-out",
            f.post("/auth/signout")
                .json(&json!({"token": social_token})),
        )
        .await;
    json_ok("social sign-out", res).await;

    // 6. Reset by mail.
    let res = f
        .send(
            "request reset",
            f.post("/auth/request-password-reset")
                .json(&json!({"email": email})),
        )
        .await;
    json_ok("request reset", res).await;
    let mails = sink.wait_for(&email, 2, WAIT).await;
    let mail = mails
        .iter()
        .find(|m| m.subject.contains("Reset your"))
        .unwrap_or_else(|| panic!("no reset mail: {:?}", subjects(&mails)));
    let (reset_link, reset_token) = token_link(mail);
    f.secret("the reset token", &reset_token);
    f.secret("the reset link", &reset_link);
    let res = f
        .send(
            "reset password",
            f.post("/auth/reset-password")
                .json(&json!({"token": reset_token, "newPassword": new_password})),
        )
        .await;
    json_ok("reset password", res).await;
    // The old session is gone (a request with a dead token is traced too).
    let res = f
        .send(
            "profile after reset",
            f.get("/profile").bearer_auth(&totp_token),
        )
        .await;
    assert_eq!(res.status(), 401);

    // 7. Sign-in with a backup code (BetterAuth API, cookies), the
    //    session read, then sign-out.
    let res = f
        .send(
            "BA sign-in (challenge)",
            f.post("/api/auth/sign-in/email")
                .json(&json!({"email": email, "password": new_password})),
        )
        .await;
    let challenge_cookie = cookie_pair(&res, "warden.two_factor");
    let body = json_ok("BA sign-in (challenge)", res).await;
    assert_eq!(body["twoFactorRedirect"], true, "{body}");
    let res = f
        .send(
            "BA verify backup code",
            f.ba_post("/api/auth/two-factor/verify-backup-code", &challenge_cookie)
                .json(&json!({"code": backup[0], "trustDevice": true})),
        )
        .await;
    let session_cookie = cookie_pair(&res, "warden.session_token");
    cookie_pair(&res, "warden.trust_device");
    let body = json_ok("BA verify backup code", res).await;
    f.secret(
        "the BetterAuth session token",
        body["token"].as_str().unwrap(),
    );
    let res = f
        .send(
            "BA get-session",
            f.get("/api/auth/get-session")
                .header("cookie", &session_cookie),
        )
        .await;
    assert_eq!(
        json_ok("BA get-session", res).await["user"]["id"],
        user_id.as_str()
    );
    let res = f
        .send(
            "BA sign-out",
            f.ba_post("/api/auth/sign-out", &session_cookie)
                .json(&json!({})),
        )
        .await;
    json_ok("BA sign-out", res).await;

    // 8. Sign-in with TOTP and the new password, profile, sign-out.
    let res = f
        .send(
            "sign-in after reset (challenge)",
            f.post("/auth/signin")
                .json(&json!({"email": email, "password": new_password})),
        )
        .await;
    let body = json_ok("sign-in after reset (challenge)", res).await;
    assert_eq!(body["twoFactorRequired"], true, "{body}");
    let challenge = body["challenge"].as_str().unwrap().to_owned();
    f.secret("a two-factor challenge token", &challenge);
    let code = totp_at(&uri, app.clock.now().timestamp());
    f.totp_code("the TOTP code of the sign-in after the reset", &code);
    let res = f
        .send(
            "verify TOTP after reset",
            f.post("/auth/two-factor/verify-totp")
                .json(&json!({"code": code, "challenge": challenge})),
        )
        .await;
    let body = json_ok("verify TOTP after reset", res).await;
    let last_token = body["session"]["token"].as_str().unwrap().to_owned();
    f.secret("the last session token", &last_token);
    let res = f
        .send("last profile", f.get("/profile").bearer_auth(&last_token))
        .await;
    json_ok("last profile", res).await;
    let res = f
        .send("sign-out", f.post("/auth/signout").bearer_auth(&last_token))
        .await;
    json_ok("sign-out", res).await;
    let res = f
        .send(
            "profile after sign-out",
            f.get("/profile").bearer_auth(&last_token),
        )
        .await;
    assert_eq!(res.status(), 401);

    // /metrics, scraped (its own request is traced as well).
    let res = f.send("metrics", f.get("/metrics")).await;
    assert_eq!(res.status(), 200);
    let metrics = res.text().await.unwrap();

    // -----------------------------------------------------------------------
    // The flow is in the telemetry (so that the checks below are not vacuous).

    // Every response's trace was exported: its root span (which closes
    // last) reached the receiver.
    let mut exported: Vec<(String, Vec<Span>)> = Vec::new();
    for (step, id) in &f.traces {
        let spans = receiver()
            .trace(id, |s| s.iter().any(|x| x.parent_span_id.is_empty()))
            .await;
        assert!(
            spans.iter().any(|x| x.parent_span_id.is_empty()),
            "{step}: trace {id} was not exported (spans: {:?})",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        exported.push((step.clone(), spans));
    }
    let totp_spans = &exported
        .iter()
        .find(|(_, spans)| {
            spans
                .iter()
                .any(|s| crate::otlp_receiver::hex(&s.trace_id) == totp_trace)
        })
        .unwrap()
        .1;
    assert!(
        totp_spans
            .iter()
            .any(|s| s.name == "POST /auth/two-factor/verify-totp"),
        "{:?}",
        totp_spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert!(totp_spans.len() > 1, "the request has child spans");
    // Stragglers of the same batches (mail sent in the background).
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Every response's trace is in the store, rooted at `request`.
    let store = store();
    for (step, id) in &f.traces {
        let tid: TraceId = id.parse().unwrap();
        let mut trace = None;
        for _ in 0..100 {
            trace = store.get(&tid);
            if trace.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let trace = trace.unwrap_or_else(|| panic!("{step}: trace {id} is not in the store"));
        assert_eq!(trace.root().unwrap().name, "request", "{step}");
    }
    // The mail is sent in a trace of its own (`mail.send`), kept too.
    let mail_sent = store.recent(20_000).iter().any(|t| {
        t.name == "mail.send"
            && store.get(&t.id).is_some_and(|t| {
                t.root().is_some_and(|r| {
                    r.fields
                        .iter()
                        .any(|(k, v)| *k == "template" && v == "password-reset")
                })
            })
    });
    assert!(mail_sent, "the reset mail's trace is in the store");
    let totp_stored = store.get(&totp_trace.parse().unwrap()).unwrap();
    assert!(totp_stored.spans.len() > 1, "{:?}", totp_stored.summary());
    assert!(serde_json::to_string(&totp_stored)
        .unwrap()
        .contains(&user_id));

    // The metrics count the flow.
    let sign_ins = |method, result| {
        metric(
            &metrics,
            "warden_sign_in_attempts_total",
            &[("method", method), ("result", result)],
        )
    };
    assert!(sign_ins("password", "success") >= 1.0, "{metrics}");
    assert!(
        sign_ins("password", "two_factor_required") >= 3.0,
        "{metrics}"
    );
    assert!(sign_ins("two_factor", "success") >= 3.0, "{metrics}");
    assert!(sign_ins("social", "success") >= 1.0, "{metrics}");
    assert!(metric(&metrics, "warden_sign_ups_total", &[("method", "password")]) >= 1.0);
    assert!(metric(&metrics, "warden_sign_ups_total", &[("method", "social")]) >= 1.0);
    let mail = |template| {
        metric(
            &metrics,
            "warden_mail_messages_total",
            &[("template", template), ("result", "sent")],
        )
    };
    assert!(mail("password-reset") >= 1.0, "{metrics}");
    assert!(mail("verify-email") >= 1.0, "{metrics}");
    assert!(
        metric(
            &metrics,
            "http_server_request_duration_seconds_count",
            &[("http_route", "/auth/two-factor/verify-totp")]
        ) >= 2.0,
        "{metrics}"
    );

    // -----------------------------------------------------------------------
    // No secret anywhere.

    let raw = receiver().raw();
    let raw_text = String::from_utf8_lossy(&raw).into_owned();
    assert!(!raw.is_empty());
    // Every trace the store holds (the flow's, its mail's, and other tests').
    let all: Vec<Trace> = store
        .recent(20_000)
        .iter()
        .filter_map(|s| store.get(&s.id))
        .collect();
    let stored: Vec<(&Trace, String)> = all
        .iter()
        .map(|t| (t, serde_json::to_string(t).unwrap()))
        .collect();
    let flow_ids: HashSet<&str> = f.traces.iter().map(|(_, id)| id.as_str()).collect();
    assert!(stored.len() >= flow_ids.len());

    let mut leaks: Vec<String> = Vec::new();
    for s in &f.secrets {
        let shown = format!("{} ({}...)", s.what, &s.value[..4.min(s.value.len())]);
        // (a) The exported bytes.
        if s.found_in_protobuf(&raw_text) {
            let mut at: Vec<String> = exported
                .iter()
                .flat_map(|(step, spans)| {
                    spans.iter().flat_map(move |span| {
                        locate_in_span(span, s)
                            .into_iter()
                            .map(move |l| format!("[{step}] {l}"))
                    })
                })
                .collect();
            if at.is_empty() {
                let pos = raw_text.find(&s.value).unwrap_or(0);
                at.push(format!(
                    "in a span of no recorded trace, around: {}",
                    context(&raw_text, pos)
                ));
            }
            leaks.push(format!("{shown} in the OTLP export: {}", at.join("; ")));
        }
        // (b) /metrics.
        if s.found_in(&metrics) {
            let lines: Vec<&str> = metrics.lines().filter(|l| s.found_in(l)).collect();
            leaks.push(format!("{shown} in /metrics: {lines:?}"));
        }
        // (c) The store.
        for (trace, text) in &stored {
            if s.found_in(text) {
                leaks.push(format!(
                    "{shown} in the trace store, trace {} (root `{}`): {}",
                    trace.id,
                    trace.root().map_or("", |r| r.name),
                    locate_in_trace(trace, s).join("; ")
                ));
            }
        }
    }
    for (what, bytes) in &f.binary {
        if raw.windows(bytes.len()).any(|w| w == bytes.as_slice()) {
            leaks.push(format!("{what} in the OTLP export"));
        }
        let text = String::from_utf8_lossy(bytes);
        if metrics.contains(text.as_ref()) {
            leaks.push(format!("{what} in /metrics"));
        }
    }
    // The provider's tokens are JWTs: none in the flow's traces, exported
    // or stored, whatever its encoding.
    for (step, spans) in &exported {
        for span in spans {
            if has_jwt(&String::from_utf8_lossy(&span.encode_to_vec())) {
                leaks.push(format!(
                    "a JWT in the exported span `{}` [{step}]",
                    span.name
                ));
            }
        }
    }
    for (trace, text) in &stored {
        if flow_ids.contains(trace.id.to_string().as_str()) && has_jwt(text) {
            leaks.push(format!("a JWT in the stored trace {}", trace.id));
        }
    }
    if has_jwt(&metrics) {
        leaks.push("a JWT in /metrics".into());
    }
    assert!(
        leaks.is_empty(),
        "{} leak(s) of {} secrets checked:\n{}",
        leaks.len(),
        f.secrets.len(),
        leaks.join("\n")
    );
}

crate::backend_tests!(no_credential_in_traces_metrics_or_export);
