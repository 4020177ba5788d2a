//! [`Provider`]: one configured identity provider, its endpoints (built in,
//! discovered or overridden), the cached JWKS, and the three steps of a
//! sign-in: [`Provider::authorization_url`], [`Provider::exchange_code`],
//! [`Provider::fetch_user`].

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jsonwebtoken::jwk::Jwk;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, OnceCell};
use url::Url;

use crate::error::sanitize_error_code;
use crate::http::{self, label};
use crate::id_token::{self, IdTokenClaims, Selection};
use crate::{IdTokenError, OAuthError};

/// Google's issuer, also the default for [`ProviderKind::Google`].
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
const GITHUB_AUTHORIZE: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN: &str = "https://github.com/login/oauth/access_token";
const GITHUB_USER: &str = "https://api.github.com/user";
const DISCORD_AUTHORIZE: &str = "https://discord.com/oauth2/authorize";
const DISCORD_TOKEN: &str = "https://discord.com/api/oauth2/token";
const DISCORD_USER: &str = "https://discord.com/api/users/@me";

/// Default bound on each outbound call (connect, headers and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on a response body read from a provider.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Default minimum interval between two JWKS refetches caused by an unknown `kid`.
pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// A cached JWKS older than this is refetched on its next use.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// The kinds of provider, each with its own protocol details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// OpenID Connect at <https://accounts.google.com> (or the configured issuer).
    Google,
    /// GitHub OAuth apps: plain OAuth 2.0, the user from the REST API.
    GitHub,
    /// Discord: plain OAuth 2.0, the user from `/users/@me`.
    Discord,
    /// Any OpenID Connect provider, found through discovery at its issuer.
    Oidc,
}

impl ProviderKind {
    /// `google`, `github` and `discord` (any case) are built in; any other
    /// name is a generic OpenID Connect provider.
    pub fn from_name(name: &str) -> ProviderKind {
        if name.eq_ignore_ascii_case("google") {
            ProviderKind::Google
        } else if name.eq_ignore_ascii_case("github") {
            ProviderKind::GitHub
        } else if name.eq_ignore_ascii_case("discord") {
            ProviderKind::Discord
        } else {
            ProviderKind::Oidc
        }
    }

    /// Whether sign-in goes through a validated ID token (Google and
    /// generic OpenID Connect).
    pub fn uses_oidc(self) -> bool {
        matches!(self, ProviderKind::Google | ProviderKind::Oidc)
    }

    /// The scopes asked for when the configuration names none.
    pub fn default_scopes(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Google | ProviderKind::Oidc => &["openid", "email", "profile"],
            ProviderKind::GitHub => &["read:user", "user:email"],
            ProviderKind::Discord => &["identify", "email"],
        }
    }
}

/// One provider's settings.
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    /// `google`, `github`, `discord`, or any name (a generic OIDC provider).
    pub name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The scopes to ask for; `None` for the kind's defaults
    /// ([`ProviderKind::default_scopes`]). For OpenID Connect providers
    /// `openid` is always added.
    pub scopes: Option<Vec<String>>,
    /// The OpenID Connect issuer. Required for [`ProviderKind::Oidc`]; for
    /// Google it replaces `https://accounts.google.com`. Discovery reads
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: Option<Url>,
    /// Explicit endpoints. Each wins over discovery and over the built-in
    /// defaults. For GitHub, `userinfo_endpoint` is the `/user` URL and the
    /// email list is read at the same URL plus `/emails`.
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Option<Url>,
}

impl ProviderConfig {
    /// A configuration with the kind given by [`ProviderKind::from_name`],
    /// default scopes and no overrides.
    pub fn new(
        name: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<SecretString>,
    ) -> ProviderConfig {
        let name = name.into();
        ProviderConfig {
            kind: ProviderKind::from_name(&name),
            name,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            scopes: None,
            issuer: None,
            authorization_endpoint: None,
            token_endpoint: None,
            userinfo_endpoint: None,
            jwks_uri: None,
        }
    }

    /// Checks what can be checked without the network: a client id, and an
    /// issuer for a generic OpenID Connect provider.
    pub fn validate(&self) -> Result<(), OAuthError> {
        if self.client_id.trim().is_empty() {
            return Err(OAuthError::Discovery(format!(
                "provider '{}' has no client id",
                self.name
            )));
        }
        if self.kind == ProviderKind::Oidc && self.issuer.is_none() {
            return Err(OAuthError::Discovery(format!(
                "OpenID Connect provider '{}' has no issuer",
                self.name
            )));
        }
        Ok(())
    }
}

/// What [`Provider::authorization_url`] puts in the URL.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthorizationRequest<'a> {
    /// The CSRF state (see [`crate::random_token`]: 32 bytes).
    pub state: &'a str,
    /// `pkce_challenge(verifier)`; sent with `code_challenge_method=S256`.
    pub code_challenge: &'a str,
    /// Sent to OpenID Connect providers only; checked by
    /// [`Provider::fetch_user`] against the ID token.
    pub nonce: Option<&'a str>,
    pub redirect_uri: &'a str,
    /// Scopes added to the configured (or default) ones.
    pub scopes_extra: &'a [String],
    /// OpenID Connect `prompt` (`login`, `consent`, `select_account`, ...).
    pub prompt: Option<&'a str>,
}

/// The token endpoint's answer. `Debug` shows no token.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<String>,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
    pub token_type: Option<String>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const REDACTED: &str = "[redacted]";
        f.debug_struct("TokenSet")
            .field("access_token", &REDACTED)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| REDACTED),
            )
            .field("id_token", &self.id_token.as_ref().map(|_| REDACTED))
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// The account at the provider, as [`Provider::fetch_user`] found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderUser {
    /// The provider's stable id (`sub`; GitHub's numeric id as a string).
    pub id: String,
    /// Always `Some` when returned by [`Provider::fetch_user`] (no email is
    /// [`OAuthError::EmailMissing`]).
    pub email: Option<String>,
    /// Whether the provider vouches for the email.
    pub email_verified: bool,
    pub name: Option<String>,
    pub image: Option<String>,
}

/// The endpoints in use, once resolved.
#[derive(Debug)]
struct Endpoints {
    authorization: Url,
    token: Url,
    userinfo: Option<Url>,
    jwks: Option<Url>,
    /// The `iss` values an ID token may carry (OpenID Connect only).
    issuers: Vec<String>,
    /// Authenticate at the token endpoint with HTTP Basic instead of the
    /// form body (only when discovery lists `client_secret_basic` and not
    /// `client_secret_post`).
    basic_auth: bool,
}

struct JwksCache {
    keys: Arc<Vec<Jwk>>,
    fetched_at: Instant,
    /// The last refetch caused by an unknown `kid`.
    last_refetch: Option<Instant>,
}

/// One identity provider. Build one per provider at start-up and share it:
/// discovery and the JWKS are fetched on first use and cached.
pub struct Provider {
    config: ProviderConfig,
    http: reqwest::Client,
    timeout: Duration,
    max_response_bytes: usize,
    jwks_refetch_interval: Duration,
    endpoints: OnceCell<Endpoints>,
    jwks: Mutex<Option<JwksCache>>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.config.name)
            .field("kind", &self.config.kind)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// An issuer URL as a string, without the trailing `/` that [`Url`] adds
/// to a bare origin (`https://accounts.google.com/` -> `https://accounts.google.com`).
fn issuer_string(url: &Url) -> String {
    let s = url.as_str();
    if url.path() == "/" && url.query().is_none() && url.fragment().is_none() {
        s.trim_end_matches('/').to_owned()
    } else {
        s.to_owned()
    }
}

fn parse_url(s: &str, what: &str) -> Result<Url, OAuthError> {
    Url::parse(s)
        .map_err(|_| OAuthError::Discovery(format!("discovery document has an invalid {what}")))
}

fn builtin(url: &str) -> Url {
    Url::parse(url).expect("built-in endpoint URLs are valid")
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    jwks_uri: String,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct RawTokenResponse {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

impl Provider {
    /// A provider from its configuration and a shared HTTP client. Nothing
    /// is fetched yet. Each call is bounded by [`DEFAULT_TIMEOUT`] whatever
    /// the client's own settings.
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Provider {
        Provider {
            config,
            http,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            jwks_refetch_interval: DEFAULT_JWKS_REFETCH_INTERVAL,
            endpoints: OnceCell::new(),
            jwks: Mutex::new(None),
        }
    }

    /// Bounds each outbound call (default 10 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Provider {
        self.timeout = timeout;
        self
    }

    /// Caps each response body read (default 1 MiB).
    pub fn with_max_response_bytes(mut self, max: usize) -> Provider {
        self.max_response_bytes = max;
        self
    }

    /// The minimum interval between two JWKS refetches caused by an
    /// unknown `kid` (default 60 s).
    pub fn with_jwks_refetch_interval(mut self, interval: Duration) -> Provider {
        self.jwks_refetch_interval = interval;
        self
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn kind(&self) -> ProviderKind {
        self.config.kind
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// Google and generic OpenID Connect: sign-in goes through a validated
    /// ID token.
    pub fn uses_oidc(&self) -> bool {
        self.config.kind.uses_oidc()
    }

    /// The issuer half of an account key (`issuer`, provider's user id):
    /// for OpenID Connect the configured issuer URL (a bare origin without
    /// its trailing `/`); Google `https://accounts.google.com` (or the
    /// configured issuer); GitHub `https://github.com`; Discord
    /// `https://discord.com`. Empty for an OpenID Connect provider
    /// without an issuer (see [`ProviderConfig::validate`]).
    pub fn issuer(&self) -> String {
        match self.config.kind {
            ProviderKind::GitHub => "https://github.com".to_owned(),
            ProviderKind::Discord => "https://discord.com".to_owned(),
            ProviderKind::Google => self
                .config
                .issuer
                .as_ref()
                .map(issuer_string)
                .unwrap_or_else(|| GOOGLE_ISSUER.to_owned()),
            ProviderKind::Oidc => self
                .config
                .issuer
                .as_ref()
                .map(issuer_string)
                .unwrap_or_default(),
        }
    }

    /// The scopes to request: configured or default, `openid` for OpenID
    /// Connect, then `extra`, without duplicates.
    pub fn scopes(&self, extra: &[String]) -> Vec<String> {
        let mut scopes: Vec<String> = match &self.config.scopes {
            Some(s) => s.clone(),
            None => self
                .config
                .kind
                .default_scopes()
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        };
        if self.uses_oidc() && !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        for s in extra {
            if !s.is_empty() && !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        scopes
    }

    /// The URL to send the browser to: `response_type=code`, `client_id`,
    /// `redirect_uri`, `scope`, `state`, `code_challenge`,
    /// `code_challenge_method=S256`, `nonce` (OpenID Connect only, when
    /// given) and `prompt` (when given). May fetch the discovery document.
    pub async fn authorization_url(
        &self,
        req: &AuthorizationRequest<'_>,
    ) -> Result<Url, OAuthError> {
        let endpoints = self.endpoints().await?;
        let mut url = endpoints.authorization.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.config.client_id)
                .append_pair("redirect_uri", req.redirect_uri)
                .append_pair("scope", &self.scopes(req.scopes_extra).join(" "))
                .append_pair("state", req.state)
                .append_pair("code_challenge", req.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if self.uses_oidc() {
                if let Some(nonce) = req.nonce {
                    q.append_pair("nonce", nonce);
                }
            }
            if let Some(prompt) = req.prompt {
                q.append_pair("prompt", prompt);
            }
        }
        Ok(url)
    }

    /// Redeems an authorization code at the token endpoint (POST form with
    /// `grant_type=authorization_code`, `code`, `redirect_uri`,
    /// `code_verifier`, `client_id` and `client_secret`; HTTP Basic instead
    /// when the provider's discovery document only offers
    /// `client_secret_basic`). Errors, including GitHub's 200 responses
    /// carrying an `error`, are [`OAuthError::TokenExchange`].
    pub async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, OAuthError> {
        let endpoints = self.endpoints().await?;
        let secret = self.config.client_secret.expose_secret();
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", code_verifier),
            ("client_id", &self.config.client_id),
        ];
        let mut request = self
            .http
            .post(endpoints.token.clone())
            .header(ACCEPT, "application/json");
        if endpoints.basic_auth {
            // RFC 6749 2.3.1: both parts form-urlencoded first.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials =
                STANDARD.encode(format!("{}:{}", enc(&self.config.client_id), enc(secret)));
            let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
                .map_err(|_| OAuthError::Http("invalid client credentials".into()))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        } else {
            form.push(("client_secret", secret));
        }
        let request = request.form(&form);

        let what = label("token endpoint", &endpoints.token);
        let body = http::send(request, self.timeout, self.max_response_bytes)
            .await
            .map_err(|e| OAuthError::Http(format!("{what}: {e}")))?;
        let status = body.status.as_u16();
        let parsed: Option<RawTokenResponse> = body.json();
        let error_code = |raw: &Option<RawTokenResponse>| {
            raw.as_ref()
                .and_then(|r| r.error.as_ref())
                .and_then(Value::as_str)
                .and_then(sanitize_error_code)
        };
        if !body.status.is_success() {
            return Err(OAuthError::TokenExchange {
                status,
                error: error_code(&parsed),
            });
        }
        let Some(raw) = parsed else {
            return Err(OAuthError::TokenExchange {
                status,
                error: Some("invalid_token_response".into()),
            });
        };
        if raw.error.is_some() {
            return Err(OAuthError::TokenExchange {
                status,
                error: error_code(&Some(raw)).or_else(|| Some("invalid_token_response".into())),
            });
        }
        let Some(access_token) = raw.access_token.filter(|t| !t.is_empty()) else {
            return Err(OAuthError::TokenExchange {
                status,
                error: Some("invalid_token_response".into()),
            });
        };
        let expires_in = match raw.expires_in {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        };
        Ok(TokenSet {
            access_token: SecretString::from(access_token),
            refresh_token: raw
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
            id_token: raw.id_token.filter(|t| !t.is_empty()),
            expires_in,
            scope: raw.scope,
            token_type: raw.token_type,
        })
    }

    /// The signed-in account.
    ///
    /// - Google and OpenID Connect: the ID token is required and validated
    ///   ([`Provider::verify_id_token`]); if it has no email, the userinfo
    ///   endpoint is asked (with the access token) and its `sub` must be
    ///   the ID token's.
    /// - GitHub: `GET /user`, then `GET /user/emails` for the primary
    ///   address and its `verified` flag.
    /// - Discord: `GET /users/@me`.
    ///
    /// An account without an email address is [`OAuthError::EmailMissing`].
    pub async fn fetch_user(
        &self,
        tokens: &TokenSet,
        expected_nonce: Option<&str>,
    ) -> Result<ProviderUser, OAuthError> {
        let user = match self.config.kind {
            ProviderKind::Google | ProviderKind::Oidc => {
                self.fetch_oidc_user(tokens, expected_nonce).await?
            }
            ProviderKind::GitHub => self.fetch_github_user(tokens).await?,
            ProviderKind::Discord => self.fetch_discord_user(tokens).await?,
        };
        if user.email.is_none() {
            return Err(OAuthError::EmailMissing);
        }
        Ok(user)
    }

    /// Validates an ID token: header `alg` on the allowlist
    /// ([`crate::ALLOWED_ALGORITHMS`]), signature with the JWKS key its
    /// `kid` names (the JWKS is refetched once for an unknown `kid`, at
    /// most once per refetch interval), `iss` exactly the issuer, `aud`
    /// containing the client id (and `azp` the client id when there are
    /// several audiences or `azp` is present), `exp` in the future and
    /// `iat`/`nbf` not in the future (60 s leeway), and `nonce` equal to
    /// `expected_nonce` when one is given.
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        expected_nonce: Option<&str>,
    ) -> Result<IdTokenClaims, OAuthError> {
        let endpoints = self.endpoints().await?;
        let jwks_uri = endpoints.jwks.as_ref().ok_or_else(|| {
            OAuthError::Discovery(format!("provider '{}' has no JWKS URI", self.config.name))
        })?;
        let parsed = id_token::parse(id_token)?;

        let mut keys = self.jwks(jwks_uri).await?;
        let mut selection = id_token::select(&keys, parsed.kid.as_deref(), parsed.alg);
        if matches!(selection, Selection::UnknownKid) {
            match self.refetch_jwks(jwks_uri, &keys).await? {
                Some(fresh) => keys = fresh,
                None => return Err(IdTokenError::UnknownKey.into()),
            }
            selection = id_token::select(&keys, parsed.kid.as_deref(), parsed.alg);
        }
        match selection {
            Selection::Keys(candidates) => id_token::verify_signature(&parsed, &candidates)?,
            Selection::UnknownKid => return Err(IdTokenError::UnknownKey.into()),
            Selection::NoFit if parsed.kid.is_some() => {
                return Err(IdTokenError::BadSignature.into())
            }
            Selection::NoFit => return Err(IdTokenError::UnknownKey.into()),
        }

        let issuers: Vec<&str> = endpoints.issuers.iter().map(String::as_str).collect();
        let claims = id_token::check_claims(
            &parsed.claims,
            &id_token::Expected {
                issuers: &issuers,
                client_id: &self.config.client_id,
                nonce: expected_nonce,
                now: now_secs(),
            },
        )?;
        Ok(claims)
    }

    // ------------------------------------------------------------ endpoints

    async fn endpoints(&self) -> Result<&Endpoints, OAuthError> {
        self.endpoints
            .get_or_try_init(|| self.resolve_endpoints())
            .await
    }

    async fn resolve_endpoints(&self) -> Result<Endpoints, OAuthError> {
        let c = &self.config;
        let fixed = |authorization: &str, token: &str, user: &str| Endpoints {
            authorization: c
                .authorization_endpoint
                .clone()
                .unwrap_or_else(|| builtin(authorization)),
            token: c.token_endpoint.clone().unwrap_or_else(|| builtin(token)),
            userinfo: Some(c.userinfo_endpoint.clone().unwrap_or_else(|| builtin(user))),
            jwks: None,
            issuers: Vec::new(),
            basic_auth: false,
        };
        match c.kind {
            ProviderKind::GitHub => return Ok(fixed(GITHUB_AUTHORIZE, GITHUB_TOKEN, GITHUB_USER)),
            ProviderKind::Discord => {
                return Ok(fixed(DISCORD_AUTHORIZE, DISCORD_TOKEN, DISCORD_USER))
            }
            ProviderKind::Google | ProviderKind::Oidc => {}
        }
        c.validate()?;
        let issuer_url = match (&c.issuer, c.kind) {
            (Some(url), _) => url.clone(),
            (None, _) => builtin(GOOGLE_ISSUER),
        };
        let issuer = issuer_string(&issuer_url);
        // Accept Google's historical scheme-less issuer for the real Google only.
        let issuers_for = |iss: &str| {
            let mut v = vec![iss.to_owned()];
            if c.kind == ProviderKind::Google && iss == GOOGLE_ISSUER {
                v.push("accounts.google.com".to_owned());
            }
            v
        };

        if let (Some(authorization), Some(token), Some(jwks)) =
            (&c.authorization_endpoint, &c.token_endpoint, &c.jwks_uri)
        {
            // Everything needed is configured: no discovery.
            return Ok(Endpoints {
                authorization: authorization.clone(),
                token: token.clone(),
                userinfo: c.userinfo_endpoint.clone(),
                jwks: Some(jwks.clone()),
                issuers: issuers_for(&issuer),
                basic_auth: false,
            });
        }

        let discovery_url = Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            issuer_url.as_str().trim_end_matches('/')
        ))
        .map_err(|_| OAuthError::Discovery("invalid issuer URL".into()))?;
        let what = label("discovery", &discovery_url);
        let request = self
            .http
            .get(discovery_url.clone())
            .header(ACCEPT, "application/json");
        let body = http::send(request, self.timeout, self.max_response_bytes)
            .await
            .map_err(|e| OAuthError::Discovery(format!("{what}: {e}")))?;
        if !body.status.is_success() {
            return Err(OAuthError::Discovery(format!(
                "{what}: HTTP {}",
                body.status.as_u16()
            )));
        }
        let doc: Discovery = body.json().ok_or_else(|| {
            OAuthError::Discovery(format!("{what}: not a valid discovery document"))
        })?;
        // OpenID Connect Discovery 1.0, 4.3: the document's issuer must be
        // the one it was fetched for (a trailing slash aside).
        if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(OAuthError::Discovery(format!(
                "{what}: the document names another issuer"
            )));
        }
        let methods = doc
            .token_endpoint_auth_methods_supported
            .unwrap_or_default();
        let basic_auth = methods.iter().any(|m| m == "client_secret_basic")
            && !methods.iter().any(|m| m == "client_secret_post");
        Ok(Endpoints {
            authorization: match &c.authorization_endpoint {
                Some(u) => u.clone(),
                None => parse_url(&doc.authorization_endpoint, "authorization_endpoint")?,
            },
            token: match &c.token_endpoint {
                Some(u) => u.clone(),
                None => parse_url(&doc.token_endpoint, "token_endpoint")?,
            },
            userinfo: match (&c.userinfo_endpoint, &doc.userinfo_endpoint) {
                (Some(u), _) => Some(u.clone()),
                (None, Some(s)) => Some(parse_url(s, "userinfo_endpoint")?),
                (None, None) => None,
            },
            jwks: Some(match &c.jwks_uri {
                Some(u) => u.clone(),
                None => parse_url(&doc.jwks_uri, "jwks_uri")?,
            }),
            issuers: issuers_for(&doc.issuer),
            basic_auth,
        })
    }

    // ------------------------------------------------------------ JWKS

    async fn fetch_jwks(&self, url: &Url) -> Result<Arc<Vec<Jwk>>, OAuthError> {
        let what = label("JWKS", url);
        let request = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/json");
        let body = http::send(request, self.timeout, self.max_response_bytes)
            .await
            .map_err(|e| OAuthError::Discovery(format!("{what}: {e}")))?;
        if !body.status.is_success() {
            return Err(OAuthError::Discovery(format!(
                "{what}: HTTP {}",
                body.status.as_u16()
            )));
        }
        #[derive(Deserialize)]
        struct Set {
            keys: Vec<Value>,
        }
        let set: Set = body
            .json()
            .ok_or_else(|| OAuthError::Discovery(format!("{what}: not a JWK set")))?;
        // Keys of unknown types or algorithms are skipped, not fatal.
        let keys = set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .collect();
        Ok(Arc::new(keys))
    }

    /// The cached JWKS, fetched on first use and when older than [`JWKS_MAX_AGE`].
    async fn jwks(&self, url: &Url) -> Result<Arc<Vec<Jwk>>, OAuthError> {
        let mut cache = self.jwks.lock().await;
        if let Some(c) = cache.as_ref() {
            if c.fetched_at.elapsed() < JWKS_MAX_AGE {
                return Ok(Arc::clone(&c.keys));
            }
        }
        let keys = self.fetch_jwks(url).await?;
        let last_refetch = cache.as_ref().and_then(|c| c.last_refetch);
        *cache = Some(JwksCache {
            keys: Arc::clone(&keys),
            fetched_at: Instant::now(),
            last_refetch,
        });
        Ok(keys)
    }

    /// After an unknown `kid` in a token checked against `seen`: a newer
    /// set if another task already fetched one, else a refetch unless one
    /// happened within the refetch interval (then `None`).
    async fn refetch_jwks(
        &self,
        url: &Url,
        seen: &Arc<Vec<Jwk>>,
    ) -> Result<Option<Arc<Vec<Jwk>>>, OAuthError> {
        let mut cache = self.jwks.lock().await;
        if let Some(c) = cache.as_ref() {
            if !Arc::ptr_eq(&c.keys, seen) {
                return Ok(Some(Arc::clone(&c.keys)));
            }
            if c.last_refetch
                .is_some_and(|t| t.elapsed() < self.jwks_refetch_interval)
            {
                return Ok(None);
            }
        }
        let keys = self.fetch_jwks(url).await?;
        let now = Instant::now();
        *cache = Some(JwksCache {
            keys: Arc::clone(&keys),
            fetched_at: now,
            last_refetch: Some(now),
        });
        Ok(Some(keys))
    }

    // ------------------------------------------------------------ users

    /// GET `url` with the access token; the JSON body, or `UserInfo`.
    async fn get_json(
        &self,
        what: &str,
        url: &Url,
        tokens: &TokenSet,
        github: bool,
    ) -> Result<Value, OAuthError> {
        let what = label(what, url);
        let mut request = self
            .http
            .get(url.clone())
            .bearer_auth(tokens.access_token.expose_secret());
        request = if github {
            request
                .header(ACCEPT, "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .header(USER_AGENT, "warden")
        } else {
            request.header(ACCEPT, "application/json")
        };
        let body = http::send(request, self.timeout, self.max_response_bytes)
            .await
            .map_err(|e| OAuthError::Http(format!("{what}: {e}")))?;
        if !body.status.is_success() {
            return Err(OAuthError::UserInfo(format!(
                "{what}: HTTP {}",
                body.status.as_u16()
            )));
        }
        body.json()
            .ok_or_else(|| OAuthError::UserInfo(format!("{what}: response is not JSON")))
    }

    async fn fetch_oidc_user(
        &self,
        tokens: &TokenSet,
        expected_nonce: Option<&str>,
    ) -> Result<ProviderUser, OAuthError> {
        let id_token = tokens.id_token.as_deref().ok_or(IdTokenError::Missing)?;
        let claims = self.verify_id_token(id_token, expected_nonce).await?;
        let mut user = ProviderUser {
            id: claims.sub,
            email: claims.email,
            email_verified: claims.email_verified,
            name: claims.name,
            image: claims.picture,
        };
        if user.email.is_none() {
            let endpoints = self.endpoints().await?;
            if let Some(url) = &endpoints.userinfo {
                let info = self.get_json("userinfo", url, tokens, false).await?;
                if info.get("sub").and_then(Value::as_str) != Some(user.id.as_str()) {
                    return Err(OAuthError::UserInfo(format!(
                        "{}: subject differs from the ID token's",
                        label("userinfo", url)
                    )));
                }
                user.email = str_field(&info, "email");
                user.email_verified = id_token::truthy(info.get("email_verified"));
                user.name = user.name.or_else(|| str_field(&info, "name"));
                user.image = user.image.or_else(|| str_field(&info, "picture"));
            }
        }
        Ok(user)
    }

    async fn fetch_github_user(&self, tokens: &TokenSet) -> Result<ProviderUser, OAuthError> {
        let endpoints = self.endpoints().await?;
        let user_url = endpoints
            .userinfo
            .as_ref()
            .expect("GitHub has a user endpoint");
        let profile = self
            .get_json("GitHub user API", user_url, tokens, true)
            .await?;
        let id = match profile.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => {
                return Err(OAuthError::UserInfo(format!(
                    "{}: no user id",
                    label("GitHub user API", user_url)
                )))
            }
        };
        let mut emails_url = user_url.clone();
        let path = format!("{}/emails", user_url.path().trim_end_matches('/'));
        emails_url.set_path(&path);
        let emails = self
            .get_json("GitHub emails API", &emails_url, tokens, true)
            .await?;
        let list = emails.as_array().map(Vec::as_slice).unwrap_or_default();
        let pick = |pred: &dyn Fn(&Value) -> bool| list.iter().find(|e| pred(e));
        let chosen = pick(&|e| e.get("primary") == Some(&Value::Bool(true)))
            .or_else(|| pick(&|e| e.get("verified") == Some(&Value::Bool(true))));
        let (email, email_verified) =
            match chosen.and_then(|e| str_field(e, "email").map(|s| (s, e))) {
                Some((address, entry)) => (
                    Some(address),
                    entry.get("verified") == Some(&Value::Bool(true)),
                ),
                // The public profile email, unverified as far as we know.
                None => (str_field(&profile, "email"), false),
            };
        Ok(ProviderUser {
            id,
            email,
            email_verified,
            name: str_field(&profile, "name").or_else(|| str_field(&profile, "login")),
            image: str_field(&profile, "avatar_url"),
        })
    }

    async fn fetch_discord_user(&self, tokens: &TokenSet) -> Result<ProviderUser, OAuthError> {
        let endpoints = self.endpoints().await?;
        let url = endpoints
            .userinfo
            .as_ref()
            .expect("Discord has a user endpoint");
        let me = self
            .get_json("Discord user API", url, tokens, false)
            .await?;
        let Some(id) = str_field(&me, "id") else {
            return Err(OAuthError::UserInfo(format!(
                "{}: no user id",
                label("Discord user API", url)
            )));
        };
        let image = str_field(&me, "avatar")
            .filter(|a| a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .map(|avatar| format!("https://cdn.discordapp.com/avatars/{id}/{avatar}.png"));
        Ok(ProviderUser {
            email: str_field(&me, "email"),
            email_verified: me.get("verified") == Some(&Value::Bool(true)),
            name: str_field(&me, "global_name").or_else(|| str_field(&me, "username")),
            image,
            id,
        })
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str) -> Provider {
        Provider::new(
            ProviderConfig::new(name, "cid", "secret"),
            reqwest::Client::new(),
        )
    }

    #[test]
    fn kinds_from_names() {
        assert_eq!(ProviderKind::from_name("google"), ProviderKind::Google);
        assert_eq!(ProviderKind::from_name("GitHub"), ProviderKind::GitHub);
        assert_eq!(ProviderKind::from_name("discord"), ProviderKind::Discord);
        assert_eq!(ProviderKind::from_name("okta"), ProviderKind::Oidc);
        assert!(ProviderKind::Google.uses_oidc() && ProviderKind::Oidc.uses_oidc());
        assert!(!ProviderKind::GitHub.uses_oidc() && !ProviderKind::Discord.uses_oidc());
    }

    #[test]
    fn issuers() {
        assert_eq!(provider("google").issuer(), "https://accounts.google.com");
        assert_eq!(provider("github").issuer(), "https://github.com");
        assert_eq!(provider("discord").issuer(), "https://discord.com");
        assert_eq!(provider("okta").issuer(), "");
        let mut c = ProviderConfig::new("okta", "cid", "secret");
        c.issuer = Some(Url::parse("https://id.example.com").unwrap());
        assert_eq!(
            Provider::new(c.clone(), reqwest::Client::new()).issuer(),
            "https://id.example.com"
        );
        c.issuer = Some(Url::parse("https://id.example.com/realms/a").unwrap());
        assert_eq!(
            Provider::new(c, reqwest::Client::new()).issuer(),
            "https://id.example.com/realms/a"
        );
    }

    #[test]
    fn default_scopes() {
        assert_eq!(
            provider("google").scopes(&[]),
            ["openid", "email", "profile"]
        );
        assert_eq!(provider("github").scopes(&[]), ["read:user", "user:email"]);
        assert_eq!(
            provider("discord").scopes(&["guilds".into(), "email".into()]),
            ["identify", "email", "guilds"]
        );
        let mut c = ProviderConfig::new("okta", "cid", "secret");
        c.scopes = Some(vec!["email".into()]);
        assert_eq!(
            Provider::new(c, reqwest::Client::new()).scopes(&[]),
            ["openid", "email"]
        );
    }

    #[tokio::test]
    async fn github_authorization_url_needs_no_network() {
        let p = provider("github");
        let url = p
            .authorization_url(&AuthorizationRequest {
                state: "st",
                code_challenge: "ch",
                nonce: Some("ignored"),
                redirect_uri: "https://app.example/cb",
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(url
            .as_str()
            .starts_with("https://github.com/login/oauth/authorize?"));
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["scope"], "read:user user:email");
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(!q.contains_key("nonce"), "no nonce for plain OAuth");
    }

    #[tokio::test]
    async fn oidc_without_issuer_is_a_discovery_error() {
        let e = provider("okta")
            .exchange_code("c", "v", "r")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "discovery_failed");
    }

    #[test]
    fn debug_redacts() {
        let t = TokenSet {
            access_token: "at-secret".to_owned().into(),
            refresh_token: Some("rt-secret".to_owned().into()),
            id_token: Some("idt-secret".into()),
            expires_in: Some(3600),
            scope: None,
            token_type: Some("Bearer".into()),
        };
        let s = format!("{t:?}");
        assert!(!s.contains("-secret"), "{s}");
        let p = Provider::new(
            ProviderConfig::new("google", "cid", "hunter2-value".to_owned()),
            reqwest::Client::new(),
        );
        assert!(!format!("{p:?}").contains("hunter2"));
        assert!(!format!("{:?}", p.config()).contains("hunter2"));
    }
}
