//! `OidcProvider`: a real OpenID Connect provider for the tests.
//!
//! `start()` runs `crates/warden/tests/support/oidc/server.mjs` (Node.js with
//! the `oauth2-mock-server` npm package; see that folder's README.md) on a
//! random port of 127.0.0.1 and returns once it is listening. Before the
//! first start in a test process it runs `npm ci` in that folder if its
//! `node_modules` is missing or older than `package-lock.json` (once per
//! process, and under a file lock across processes).
//!
//! The provider has discovery at `{issuer}/.well-known/openid-configuration`,
//! `/authorize` (redirects at once, no login page), `/token` (single-use
//! codes, PKCE S256 enforced), `/userinfo`, `/jwks`, GitHub-shaped
//! `/github/user` and `/github/user/emails`, Discord-shaped
//! `/discord/users/@me`, and `POST /__control` to set what the next
//! authorization returns ([`OidcProvider::set_next`]).
//!
//! The process is killed when the `OidcProvider` is dropped (and exits by
//! itself if the test process dies: it watches its stdin).
//!
//! `node` and `npm` are taken from the PATH, or from `$WARDEN_TEST_NODE` /
//! `$WARDEN_TEST_NPM` when set.

// Shared by more than one test crate; not every user calls every function.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader};

/// How long `start()` waits for the server's ready line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running provider; the process is killed when this is dropped.
pub struct OidcProvider {
    /// `http://127.0.0.1:PORT`, exactly as the provider's discovery
    /// document and ID tokens name it.
    pub issuer: String,
    pub port: u16,
    child: tokio::process::Child,
}

/// `crates/warden/tests/support/oidc` (also right when this file is
/// compiled into another crate's tests).
pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../warden/tests/support/oidc")
        .canonicalize()
        .expect("OidcProvider: crates/warden/tests/support/oidc not found")
}

fn tool(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// `npm ci` leaves `node_modules/.package-lock.json`; it is current if no
/// older than `package-lock.json`.
fn installed(dir: &Path) -> bool {
    match (
        modified(&dir.join("node_modules/.package-lock.json")),
        modified(&dir.join("package-lock.json")),
    ) {
        (Some(installed), Some(locked)) => installed >= locked,
        _ => false,
    }
}

fn npm_ci(dir: &Path) -> Result<(), String> {
    if installed(dir) {
        return Ok(());
    }
    // Another test process may be installing too: take turns.
    let lock_path = std::env::temp_dir().join("warden-test-oidc-npm-ci.lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;
    if installed(dir) {
        return Ok(());
    }
    let npm = tool("WARDEN_TEST_NPM", "npm");
    let output = std::process::Command::new(&npm)
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{npm} ci`: {e} (Node.js and npm are needed)"))?;
    if !output.status.success() {
        return Err(format!(
            "`{npm} ci` in {} failed ({}):\n{}{}",
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Runs `npm ci` in the support folder if needed, once per test process.
fn ensure_installed() {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = INSTALLED.get_or_init(|| npm_ci(&support_dir())) {
        panic!("OidcProvider: {e}");
    }
}

/// Starts a provider and waits until it listens (at most 30 s).
pub async fn start() -> OidcProvider {
    tokio::task::spawn_blocking(ensure_installed)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    let dir = support_dir();
    let node = tool("WARDEN_TEST_NODE", "node");
    let mut child = tokio::process::Command::new(&node)
        .args(["server.mjs", "--exit-with-stdin"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("OidcProvider: cannot run `{node} server.mjs`: {e}"));

    let mut lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
    let line = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) | Ok(Err(_)) => {
            let status = child.wait().await;
            panic!("OidcProvider: `{node} server.mjs` exited before listening ({status:?}); see its stderr above");
        }
        Err(_) => {
            panic!("OidcProvider: `{node} server.mjs` printed nothing within {START_TIMEOUT:?}")
        }
    };
    // Keep draining stdout so that the server never blocks on it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let ready: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("OidcProvider: unexpected first line {line:?}: {e}"));
    let issuer = ready["issuer"]
        .as_str()
        .unwrap_or_else(|| panic!("OidcProvider: no issuer in {line:?}"))
        .to_owned();
    let port = ready["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_default();
    OidcProvider {
        issuer,
        port,
        child,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

impl OidcProvider {
    /// `{issuer}{path}`, e.g. `url("/github/user")`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Sets what the next authorization returns (each call replaces the
    /// previous settings; unset claims take defaults). Keys:
    ///
    /// - claims: `sub` (default "1001"), `email`, `email_verified`, `name`,
    ///   `picture`, and `login` / `avatar` for the GitHub and Discord
    ///   shapes; `null` removes a claim;
    /// - `deny: true`: `/authorize` redirects with `error=access_denied`;
    /// - `id_token_overrides`: claims to set in the ID token after the
    ///   others (`{"nonce": "wrong"}`, `{"iss": "http://evil"}`,
    ///   `{"aud": "other"}`, `{"exp": 1}`; `null` removes one);
    /// - `no_id_token: true`: the token response has no `id_token`;
    /// - immediately: `rotate_key: true` (sign from now on with a new RS256
    ///   key, published in the JWKS) or `signing_alg: "ES256"` (same, with a
    ///   new key of that algorithm).
    pub async fn set_next(&self, control: serde_json::Value) {
        let response = client()
            .post(self.url("/__control"))
            .json(&control)
            .send()
            .await
            .expect("OidcProvider: POST /__control failed");
        assert!(
            response.status().is_success(),
            "OidcProvider: POST /__control answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }

    /// Request counters: `discovery_requests`, `jwks_requests`,
    /// `authorize_requests`, `token_requests`, `userinfo_requests`,
    /// `github_requests`, `discord_requests`, and `last_client_auth`
    /// (`client_secret_post` or `client_secret_basic`).
    pub async fn stats(&self) -> serde_json::Value {
        client()
            .get(self.url("/__stats"))
            .send()
            .await
            .expect("OidcProvider: GET /__stats failed")
            .json()
            .await
            .expect("OidcProvider: /__stats is not JSON")
    }

    /// The server's process id (for tests that kill it).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
