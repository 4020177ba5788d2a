//! The Warden server: configuration, secrets, logging and start-up. The
//! `warden` binary is a thin CLI over this.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::HeaderName;
use axum::Router;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tower_http::timeout::TimeoutLayer;
use warden_core::{
    Argon2Settings, Clock, Counters, EmailVerificationSettings, LockoutSettings, MemoryCounters,
    PasswordPolicy, PasswordResetSettings, SessionSettings, SystemClock, TwoFactorSettings, Warden,
    WardenSettings,
};
use warden_http::{
    AppState, BetterAuthSettings, ClientIpSettings, CookieSettings, CorsSettings, HttpSettings,
    MetricsAccess, RateLimitSettings, RateRule, SigningKey, TrustedOrigins,
};

use config::CounterStorage;

/// `10.0.0.0/8`, or a single address.
fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

pub mod config;
mod dashboard;
pub mod gen;
pub mod mail;
pub mod secrets;
pub mod telemetry;

pub use config::Config;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Secret(#[from] secrets::SecretError),
    #[error(transparent)]
    Store(#[from] warden_store::OpenError),
    #[error("invalid CORS or trusted_origins configuration: {0}")]
    Cors(#[from] warden_http::CorsConfigError),
    #[error("invalid http.client_ip_header {0:?}")]
    IpHeader(String),
    #[error("invalid http.trusted_proxies entry {0:?}: expected an IP address or CIDR range (10.0.0.0/8)")]
    TrustedProxy(String),
    #[error("mail configuration: {0}")]
    Mail(String),
    #[error("cannot reach Redis for rate_limit.storage = \"redis\": {0}")]
    Redis(String),
    #[error("social provider {name}: {message}")]
    Social { name: String, message: String },
    #[error("{0}")]
    Core(#[from] warden_core::AuthError),
    #[error("telemetry: {0}")]
    Telemetry(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The domain settings a configuration describes.
pub fn warden_settings(config: &Config) -> WardenSettings {
    let p = &config.password;
    let defaults = WardenSettings::default();
    WardenSettings {
        session: SessionSettings {
            expires_in: config.session.expires_in,
            update_age: config.session.update_age,
            cache_ttl: config.session.cache_ttl,
            short_expires_in: config.session.short_expires_in,
            fresh_age: config.session.fresh_age,
            adopt_plain_tokens: config.session.adopt_betterauth_sessions,
            max_lifetime: config.session.max_lifetime,
        },
        email_verification: EmailVerificationSettings {
            required: config.email_verification.required,
            expires_in: config.email_verification.expires_in,
            auto_sign_in: config.email_verification.auto_sign_in,
        },
        password_reset: PasswordResetSettings {
            expires_in: config.password_reset.expires_in,
            revoke_sessions: config.password_reset.revoke_sessions,
        },
        lockout: LockoutSettings {
            max_failures: config.lockout.max_failures,
            window: config.lockout.window,
        },
        password: PasswordPolicy {
            min_length: p.min_length,
            max_length: p.max_length,
            reject_common: p.reject_common,
        },
        argon2: Argon2Settings {
            memory_kib: p.argon2.memory_kib,
            iterations: p.argon2.iterations,
            parallelism: p.argon2.parallelism,
        },
        hash_concurrency: if p.hash_concurrency == 0 {
            defaults.hash_concurrency
        } else {
            p.hash_concurrency
        },
        hash_queue: p.hash_queue,
        two_factor: TwoFactorSettings {
            issuer: config
                .two_factor
                .issuer
                .clone()
                .unwrap_or_else(|| config.mail.app_name.clone()),
            challenge_ttl: config.two_factor.challenge_ttl,
            max_attempts: config.two_factor.max_attempts,
            lock_after: config.two_factor.lock_after,
            lock_for: config.two_factor.lock_for,
            trust_device_ttl: config.two_factor.trust_device_ttl,
            email_otp: config.two_factor.email_otp,
            otp_expires_in: config.two_factor.otp_expires_in,
            passwordless_challenge: config.two_factor.passwordless_challenge,
        },
        magic_link: warden_core::MagicLinkSettings {
            enabled: config.magic_link.enabled,
            expires_in: config.magic_link.expires_in,
            disable_sign_up: config.magic_link.disable_sign_up,
            max_per_email: config.magic_link.per_email_max,
            email_window: config.magic_link.per_email_window,
        },
        email_otp: warden_core::EmailOtpSettings {
            enabled: config.email_otp.enabled,
            length: config.email_otp.length,
            expires_in: config.email_otp.expires_in,
            allowed_attempts: config.email_otp.allowed_attempts,
            disable_sign_up: config.email_otp.disable_sign_up,
            max_per_email: config.email_otp.per_email_max,
            email_window: config.email_otp.per_email_window,
            change_email: config.email_otp.change_email,
            change_email_verify_current: config.email_otp.change_email_verify_current,
        },
        // Checked when the configuration was loaded.
        admin: config.admin.settings().unwrap_or_default(),
        passkey: config.passkey.settings(config),
    }
}

/// The mail transport and templates the configuration names.
/// The mailer, its templates, and the development outbox when mail goes
/// there (the dashboard shows it).
type MailSetup = (
    Arc<dyn warden_core::Mailer>,
    warden_core::Templates,
    Option<Arc<warden_core::Outbox>>,
);

fn mailer(config: &Config) -> Result<MailSetup, StartError> {
    let m = &config.mail;
    let mut templates = warden_core::Templates::new(m.app_name.clone());
    if let Some(dir) = &m.templates_dir {
        templates = templates
            .with_dir(dir)
            .map_err(|e| StartError::Mail(e.to_string()))?;
    }
    let mut outbox = None;
    let mailer: Arc<dyn warden_core::Mailer> = match m.transport {
        Some(config::MailTransport::Smtp) => {
            let password = secrets::lookup(
                "WARDEN_SMTP_PASSWORD",
                config.env,
                &secrets::SecretsFile::new(&config.secrets_file),
            )?;
            Arc::new(
                mail::SmtpMailer::new(
                    &m.smtp.host,
                    m.smtp.port,
                    m.smtp.tls,
                    m.smtp.username.as_deref(),
                    password,
                    &m.from,
                )
                .map_err(StartError::Mail)?,
            )
        }
        Some(config::MailTransport::Outbox) | None => {
            tracing::warn!("mail goes to the development outbox: messages are logged with their links, not sent");
            let o = Arc::new(warden_core::Outbox::default());
            outbox = Some(o.clone());
            o
        }
    };
    Ok((mailer, templates, outbox))
}

/// The social sign-in providers the configuration names. Client secrets
/// come from the secret store (`WARDEN_SOCIAL_<NAME>_CLIENT_SECRET`); plain
/// `client_secret` in the configuration is refused in production.
fn social_providers(config: &Config) -> Result<warden_http::social::SocialSettings, StartError> {
    use warden_http::social::{SocialProvider, SocialSettings};
    use warden_oauth::{Provider, ProviderConfig, ProviderKind};
    if config.social.is_empty() {
        // No HTTP client (and no TLS roots to load) for nobody to call.
        return Ok(SocialSettings::default());
    }
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("warden/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StartError::Social {
            name: "*".into(),
            message: e.to_string(),
        })?;
    let mut providers = std::collections::BTreeMap::new();
    for (name, p) in &config.social {
        let err = |message: String| StartError::Social {
            name: name.clone(),
            message,
        };
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(err("names use a-z, 0-9, '-' and '_'".into()));
        }
        if p.client_id.is_empty() {
            return Err(err("client_id is required".into()));
        }
        let secret_name = secrets::canonical_name(&format!("social.{name}.client_secret"));
        let stored = secrets::lookup(
            &secret_name,
            config.env,
            &secrets::SecretsFile::new(&config.secrets_file),
        )?;
        let client_secret = match (stored, &p.client_secret) {
            (Some(s), _) => s,
            (None, Some(_)) if config.env == config::Environment::Production => {
                return Err(err(format!(
                    "client_secret must not be in the configuration in production; set the secret {secret_name}"
                )))
            }
            (None, Some(s)) => s.clone().into(),
            (None, None) => {
                return Err(err(format!(
                    "no client secret: set {secret_name} (or `warden secret set social.{name}.client_secret`)"
                )))
            }
        };
        let url = |field: &str, v: &Option<String>| -> Result<Option<url::Url>, StartError> {
            v.as_deref()
                .map(|s| url::Url::parse(s).map_err(|e| err(format!("{field}: {e}"))))
                .transpose()
        };
        let kind = ProviderKind::from_name(name);
        let pc = ProviderConfig {
            name: name.clone(),
            kind,
            client_id: p.client_id.clone(),
            client_secret,
            scopes: p.scopes.clone(),
            issuer: url("issuer", &p.issuer)?,
            authorization_endpoint: url("authorization_endpoint", &p.authorization_endpoint)?,
            token_endpoint: url("token_endpoint", &p.token_endpoint)?,
            userinfo_endpoint: url("userinfo_endpoint", &p.userinfo_endpoint)?,
            jwks_uri: url("jwks_uri", &p.jwks_uri)?,
        };
        pc.validate().map_err(|e| err(e.to_string()))?;
        let redirect_uri = p.redirect_uri.clone().unwrap_or_else(|| {
            format!(
                "{}/auth/callback/{name}",
                config.base_url.trim_end_matches('/')
            )
        });
        tracing::info!(provider = %name, kind = ?kind, %redirect_uri, "social sign-in provider configured");
        providers.insert(
            name.clone(),
            SocialProvider {
                client: Provider::new(pc, http.clone()),
                redirect_uri,
                trusted: p.trusted,
                allow_sign_up: p.sign_up.unwrap_or(true),
            },
        );
    }
    Ok(SocialSettings {
        providers: std::sync::Arc::new(providers),
    })
}

/// Opens the database and applies pending migrations.
pub async fn migrate(config: &Config) -> Result<(), StartError> {
    open_database(config).await?;
    Ok(())
}

/// The configured database as the server opens it: its pool settings,
/// pending migrations applied.
async fn open_database(config: &Config) -> Result<warden_store::Database, StartError> {
    let db = warden_store::open_database(&config.database_url, &pool_options(config), true).await?;
    tracing::info!(
        database = %warden_store::redact_url(&config.database_url),
        "database ready, migrations applied"
    );
    Ok(db)
}

/// Who may read `/metrics` on the API's listener: anyone in development,
/// bearers of the metrics token if one is set, else no one (production's
/// default: use `telemetry.metrics_listen`).
fn metrics_access(config: &Config) -> Result<MetricsAccess, StartError> {
    let token = secrets::lookup(
        METRICS_TOKEN,
        config.env,
        &secrets::SecretsFile::new(&config.secrets_file),
    )?;
    if !config.telemetry.metrics_on_api(config.env) {
        return Ok(MetricsAccess::Off);
    }
    match (token, config.env) {
        (Some(t), _) => {
            let t = t.expose_secret();
            if t.len() < 16 {
                return Err(StartError::Telemetry(format!(
                    "{METRICS_TOKEN} must be at least 16 characters"
                )));
            }
            Ok(MetricsAccess::bearer(t))
        }
        (None, config::Environment::Development) => Ok(MetricsAccess::Public),
        (None, config::Environment::Production) => Err(StartError::Telemetry(format!(
            "telemetry.metrics_on_api in production needs the secret {METRICS_TOKEN} (or use telemetry.metrics_listen on a private address)"
        ))),
    }
}

/// The secret that `GET /metrics` on the API's listener asks for.
pub const METRICS_TOKEN: &str = "WARDEN_TELEMETRY_METRICS_TOKEN";

/// The domain service over `store` with the configuration's settings.
fn new_warden(config: &Config, store: Arc<dyn warden_core::Store>) -> Result<Warden, StartError> {
    Ok(Warden::new(store, warden_settings(config))?)
}

/// A [`Warden`] over the configured database (migrated as at start-up),
/// without an HTTP server: what the administration commands use, whether
/// or not a server is running on the same database. It has no server
/// secret, mailer or shared counters: administration needs none of them,
/// and a change reaches running servers through the revocation feed.
pub async fn open_warden(config: &Config) -> Result<Arc<Warden>, StartError> {
    let db = open_database(config).await?;
    Ok(Arc::new(new_warden(config, db.store)?))
}

fn pool_options(config: &Config) -> warden_store::PoolOptions {
    warden_store::PoolOptions {
        max_connections: config.database.max_connections,
        acquire_timeout: config.database.acquire_timeout,
        probe_timeout: config.database.ready_timeout,
    }
}

/// A server that is bound and migrated, ready to run.
pub struct Server {
    listener: TcpListener,
    /// `[telemetry] metrics_listen`: `GET /metrics` alone.
    metrics_listener: Option<TcpListener>,
    /// `[dashboard]`: its listener and router.
    dashboard: Option<(TcpListener, Router)>,
    router: Router,
    state: AppState,
    cleanup_interval: std::time::Duration,
    counters: Arc<dyn Counters>,
    peers: Option<Peers>,
    _secret: SecretString,
}

/// What tells this instance about other instances' changes.
enum Peers {
    Postgres(warden_store::peers::PgPeers),
    Redis(warden_store::redis_bus::RedisBus),
}

impl Server {
    /// Loads the secret, opens and migrates the database, and binds the
    /// listener. Every misconfiguration is reported here, before serving.
    pub async fn build(config: &Config) -> Result<Server, StartError> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`Server::build`] with another clock (tests move a `MockClock`).
    pub async fn build_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Server, StartError> {
        let betterauth = config.betterauth.enabled.then(|| BetterAuthSettings {
            base_path: config.betterauth.base_path.clone(),
        });
        let secret =
            secrets::server_secret(config.env, &secrets::SecretsFile::new(&config.secrets_file))?;
        let cors = CorsSettings::new(
            &config.cors.allow_origins_with_credentials,
            &config.cors.allow_origins_without_credentials,
        )?;
        let mut trusted_origins = TrustedOrigins::new(&config.base_url, &config.trusted_origins)?;
        trusted_origins.extend(cors.with_credentials.iter().cloned());
        let dashboard_listener = dashboard::bind(config).await?;
        if let (Some(l), config::Environment::Development) = (&dashboard_listener, config.env) {
            // The development dashboard stands in for the app's pages: its
            // link page may be a redirect target (`redirectTo`).
            trusted_origins.extend(dashboard::loopback_origins(l));
        }
        let cookies = CookieSettings {
            prefix: config.session.cookie_prefix.clone(),
            secure: config.base_url.starts_with("https://"),
            key: SigningKey::new(secret.expose_secret().as_bytes()),
        };
        let client_ip = ClientIpSettings {
            trusted_proxies: config
                .http
                .trusted_proxies
                .iter()
                .map(|p| parse_net(p).ok_or_else(|| StartError::TrustedProxy(p.clone())))
                .collect::<Result<_, _>>()?,
            header: HeaderName::try_from(config.http.client_ip_header.as_str())
                .map_err(|_| StartError::IpHeader(config.http.client_ip_header.clone()))?,
        };
        let db = open_database(config).await?;
        let counters: Arc<dyn Counters> = match config.rate_limit.storage {
            CounterStorage::Memory => Arc::new(MemoryCounters::default()),
            CounterStorage::Database => db.counters.clone(),
            CounterStorage::Redis => {
                let url = config.redis_url().unwrap_or_default();
                Arc::new(
                    warden_store::redis_counters::RedisCounters::connect(
                        &url,
                        &config.rate_limit.redis_prefix,
                    )
                    .await
                    .map_err(|e| StartError::Redis(e.to_string()))?,
                )
            }
        };
        let rate_limit = config.rate_limit_enabled().then(|| RateLimitSettings {
            window: config.rate_limit.window,
            max: config.rate_limit.max,
            ..RateLimitSettings::with_defaults(
                config
                    .betterauth
                    .enabled
                    .then_some(config.betterauth.base_path.as_str()),
                config
                    .rate_limit
                    .rules
                    .iter()
                    .map(|r| RateRule::new(r.path.clone(), r.window, r.max))
                    .collect(),
                counters.clone(),
            )
        });
        if let Some(r) = &rate_limit {
            tracing::info!(storage = ?config.rate_limit.storage, window = ?r.window, max = r.max, "rate limiting on");
        }
        let (mailer, templates, outbox) = mailer(config)?;
        let explorer = db.explorer.clone();
        let peers = match config.invalidation() {
            Some(config::InvalidationTransport::Postgres) => db.peers.map(Peers::Postgres),
            Some(config::InvalidationTransport::Redis) => Some(Peers::Redis(
                warden_store::redis_bus::RedisBus::connect(
                    &config.redis_url().unwrap_or_default(),
                    &config.rate_limit.redis_prefix,
                )
                .await
                .map_err(|e| StartError::Redis(e.to_string()))?,
            )),
            _ => None,
        };
        let mut warden = new_warden(config, db.store)?
            .with_clock(clock)
            .with_counters(counters.clone())
            .with_mailer(mailer, templates)
            .with_secret(secret.expose_secret().as_bytes());
        if let Some(Peers::Redis(bus)) = &peers {
            warden = warden.with_invalidation_bus(bus.publisher());
        }
        if peers.is_some() && warden.has_session_cache() {
            warden = warden.expect_invalidation_listener();
        }
        let warden = Arc::new(warden);
        let state = AppState::new(
            warden,
            HttpSettings {
                cors,
                body_limit: config.http.body_limit,
                client_ip,
                rate_limit,
                cookies,
                trusted_origins,
                betterauth,
                allow_delete_user: config.user.allow_delete,
                public_url: config.base_url.clone(),
                ready_timeout: config.database.ready_timeout,
                social: social_providers(config)?,
                metrics: metrics_access(config)?,
            },
        )
        .with_traces(telemetry::installed().and_then(|t| t.traces.clone()));
        let router = warden_http::router(state.clone()).layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            config.http.request_timeout,
        ));
        let dashboard = dashboard_listener.map(|l| {
            let app = dashboard::router(config, &l, &state, router.clone(), explorer, outbox);
            (l, app)
        });
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let metrics_listener = match config.telemetry.metrics_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartError::Bind { addr, source })?,
            ),
            None => None,
        };
        Ok(Server {
            listener,
            metrics_listener,
            dashboard,
            router,
            state,
            cleanup_interval: config.session.cleanup_interval,
            counters,
            peers,
            _secret: secret,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The address of the dashboard, if it is served.
    pub fn dashboard_addr(&self) -> Option<SocketAddr> {
        self.dashboard
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// The address of the metrics listener, if there is one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let warden = self.state.warden.clone();
        let counters = self.counters.clone();
        let interval = self.cleanup_interval;
        let cleanup = tokio::spawn(async move {
            // Not at once: the first second belongs to the first requests.
            let every = interval.max(std::time::Duration::from_secs(1));
            let first = tokio::time::Instant::now() + every.min(std::time::Duration::from_secs(1));
            let mut tick = tokio::time::interval_at(first, every);
            loop {
                tick.tick().await;
                match warden.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(count = n, "deleted expired sessions"),
                    Err(e) => tracing::warn!(error = %e, "expired-session cleanup failed"),
                }
                if let Err(e) = counters.purge().await {
                    tracing::warn!(error = %e, "rate-limit counter cleanup failed");
                }
            }
        });
        // Other instances' changes reach this one's session cache: on
        // PostgreSQL through NOTIFY, which the database sends itself; with
        // Redis through pub/sub. Without PostgreSQL, bans, revocations and
        // role changes made by other processes (the command line) also come
        // through the feed table, within a quarter of a second.
        let warden = &self.state.warden;
        let listens_to_postgres = matches!(self.peers, Some(Peers::Postgres(_)));
        let peers = match self.peers.take() {
            Some(Peers::Postgres(p)) => Some(tokio::spawn(p.run(warden.clone()))),
            Some(Peers::Redis(r)) => Some(tokio::spawn(r.run(warden.clone()))),
            None => None,
        };
        let revocations = (!listens_to_postgres).then(|| {
            tokio::spawn(
                warden
                    .clone()
                    .follow_revocations(std::time::Duration::from_millis(250)),
            )
        });
        let address = self.local_addr();
        let metrics = self.metrics_listener.map(|l| {
            if let Ok(a) = l.local_addr() {
                tracing::info!("metrics at http://{a}/metrics");
            }
            let router = warden_http::metrics_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(l, router).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            })
        });
        let dashboard = self.dashboard.map(|(l, router)| {
            if let Ok(a) = l.local_addr() {
                tracing::info!("dashboard at http://{a}");
            }
            tokio::spawn(async move {
                let app = router.into_make_service_with_connect_info::<SocketAddr>();
                if let Err(e) = axum::serve(l, app).await {
                    tracing::error!(error = %e, "dashboard listener failed");
                }
            })
        });
        if let Some(t) = telemetry::installed() {
            if let Some(e) = &t.otlp_endpoint {
                // A URL may carry a password (user:pass@host): never logged.
                tracing::info!(endpoint = %warden_store::redact_url(e), "exporting traces over OTLP/HTTP");
            }
        }
        tracing::info!(address = %address, "warden listening");
        let result = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        cleanup.abort();
        for task in [peers, revocations].into_iter().flatten() {
            task.abort();
        }
        if let Some(m) = metrics {
            m.abort();
        }
        if let Some(d) = dashboard {
            d.abort();
        }
        tracing::info!("warden stopped");
        result
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received, finishing in-flight requests");
}
