//! Warden's dashboard: what Encore's development dashboard and Drizzle
//! Studio give the tutorial's reader, served by the `warden` binary on a
//! listener of its own (`http://127.0.0.1:9400` by default), with every
//! asset embedded and nothing fetched from another host.
//!
//! - The page is plain HTML, CSS and JavaScript modules in `assets/`
//!   (no build step), plus a vendored Swagger UI for the API explorer.
//! - It talks to the JSON API in `API.md`: traces from the in-process
//!   [`TraceStore`], tables through [`Explorer`], mail from the
//!   development [`Outbox`], and users through the admin API itself
//!   (`/admin-api/*` is forwarded in-process to the API's `/admin/*`).
//! - In development no sign-in is needed (loopback only, and a banner says
//!   so). In production it needs an admin's dashboard session, its own
//!   cookie; the SQL console and the outbox are absent.
//!
//! Every response carries a strict CSP (no inline script or style,
//! `frame-ancestors 'none'`); every request's `Host` must be one the
//! dashboard serves (against DNS rebinding), and every state change's
//! `Origin` must be the dashboard's own.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{any, get, post};
use axum::Router;
use warden_core::Outbox;
use warden_http::AppState;
use warden_store::explore::Explorer;
use warden_telemetry::TraceStore;

mod api;
mod assets;
mod guard;
mod live;
mod proxy;

pub use guard::COOKIE_NAME;

/// Development or production: what is served and who may look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No sign-in; SQL console and outbox on.
    Development,
    /// An admin's sign-in; no SQL console, no outbox.
    Production,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Development => "development",
            Mode::Production => "production",
        }
    }
}

/// How the dashboard is set up.
#[derive(Clone, Debug)]
pub struct DashboardSettings {
    pub mode: Mode,
    /// The `Host` values (`name:port`) it answers to: the loopback names
    /// on its port, plus the host of a configured public URL. Requests
    /// naming any other host get 421 (DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Whether its cookie is `Secure` (served over https).
    pub secure_cookie: bool,
    /// The server's configuration, secrets already masked, for the
    /// overview.
    pub config: serde_json::Value,
    /// The API's public URL, shown to the page.
    pub api_url: String,
    /// Most server-sent-event streams open at once (traces and outbox).
    pub max_streams: usize,
    /// The SQL console's limits (development only).
    pub sql: warden_store::explore::SqlLimits,
}

impl DashboardSettings {
    /// Settings for a dashboard bound at `addr`: the loopback names on its
    /// port are allowed hosts.
    pub fn new(mode: Mode, addr: SocketAddr) -> Self {
        let port = addr.port();
        DashboardSettings {
            mode,
            allowed_hosts: loopback_hosts(port),
            secure_cookie: false,
            config: serde_json::Value::Null,
            api_url: String::new(),
            max_streams: 32,
            sql: warden_store::explore::SqlLimits::default(),
        }
    }
}

/// `127.0.0.1:<port>`, `localhost:<port>`, `[::1]:<port>`.
pub fn loopback_hosts(port: u16) -> Vec<String> {
    vec![
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
}

/// What the dashboard reads and acts on.
#[derive(Clone)]
pub struct Dashboard {
    /// The API's state: the domain service, its settings, the traces.
    pub state: AppState,
    /// The API's router: the explorer's and the admin pages' requests are
    /// forwarded to it in-process, through all its middleware.
    pub api: Router,
    pub explorer: Arc<dyn Explorer>,
    /// The development outbox, when mail goes there.
    pub outbox: Option<Arc<Outbox>>,
    pub settings: DashboardSettings,
}

/// The handlers' shared state.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) d: Arc<Dashboard>,
    pub(crate) streams: Arc<tokio::sync::Semaphore>,
    pub(crate) sign_ins: Arc<live::SignInRate>,
}

impl Shared {
    pub(crate) fn traces(&self) -> Option<&TraceStore> {
        self.d.state.traces.as_ref()
    }

    pub(crate) fn dev(&self) -> bool {
        self.d.settings.mode == Mode::Development
    }
}

/// The dashboard's router, for a listener of its own (never the API's).
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
pub fn router(dashboard: Dashboard) -> Router {
    let shared = Shared {
        streams: Arc::new(tokio::sync::Semaphore::new(
            dashboard.settings.max_streams.max(1),
        )),
        sign_ins: Arc::new(live::SignInRate::start(&dashboard.state)),
        d: Arc::new(dashboard),
    };
    Router::new()
        .route("/", get(assets::index))
        .route("/explorer", get(assets::explorer))
        .route("/assets/{*path}", get(assets::asset))
        .route("/openapi.json", get(proxy::openapi))
        .route("/api/me", get(api::me))
        .route("/api/session", post(api::sign_in).delete(api::sign_out))
        .route("/api/overview", get(api::overview))
        .route("/api/traces", get(api::traces))
        .route("/api/traces/stream", get(live::trace_stream))
        .route("/api/traces/{id}", get(api::trace))
        .route("/api/db/tables", get(api::tables))
        .route("/api/db/tables/{table}", get(api::rows))
        .route("/api/db/sql", post(api::sql))
        .route("/api/outbox", get(api::outbox))
        .route("/api/outbox/stream", get(live::outbox_stream))
        .route("/admin-api/{*rest}", any(proxy::admin))
        .route("/proxy/{*rest}", any(proxy::explorer))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            guard::guard,
        ))
        .with_state(shared)
}
