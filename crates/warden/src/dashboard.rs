//! Wiring the dashboard (`warden-dashboard`) to the configuration: its
//! listener, its settings, and the configuration it shows, masked.

use std::sync::Arc;

use axum::Router;
use serde_json::Value;
use tokio::net::TcpListener;
use warden_dashboard::{Dashboard, DashboardSettings, Mode};
use warden_http::{AppState, OriginPattern};

use crate::config::{Config, Environment};
use crate::StartError;

/// Binds the dashboard's listener if it is enabled. In development a
/// default address that is taken (another `warden serve`) is skipped with
/// a warning; an address the configuration names must be free.
pub(crate) async fn bind(config: &Config) -> Result<Option<TcpListener>, StartError> {
    let d = &config.dashboard;
    if !d.enabled(config.env) {
        return Ok(None);
    }
    let addr = d.listen();
    if config.env == Environment::Development && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the development dashboard needs no sign-in and listens beyond loopback: anyone who reaches this address can read the database");
    }
    match TcpListener::bind(addr).await {
        Ok(l) => Ok(Some(l)),
        Err(e) if d.listen.is_none() && config.env == Environment::Development => {
            tracing::warn!(%addr, error = %e, "dashboard not started: its default address is taken (set dashboard.listen)");
            Ok(None)
        }
        Err(source) => Err(StartError::Bind { addr, source }),
    }
}

fn port(l: &TcpListener) -> u16 {
    l.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// `http://127.0.0.1:<port>` and `http://localhost:<port>`.
pub(crate) fn loopback_origins(l: &TcpListener) -> Vec<OriginPattern> {
    let p = port(l);
    [
        format!("http://127.0.0.1:{p}"),
        format!("http://localhost:{p}"),
    ]
    .iter()
    .filter_map(|o| OriginPattern::parse(o).ok())
    .collect()
}

pub(crate) fn router(
    config: &Config,
    listener: &TcpListener,
    state: &AppState,
    api: Router,
    explorer: Arc<dyn warden_store::explore::Explorer>,
    outbox: Option<Arc<warden_core::Outbox>>,
) -> Router {
    let mode = match config.env {
        Environment::Development => Mode::Development,
        Environment::Production => Mode::Production,
    };
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| config.dashboard.listen());
    let mut settings = DashboardSettings::new(mode, addr);
    if let Some(url) = &config.dashboard.public_url {
        let host = url
            .split_once("://")
            .map_or(url.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or("");
        if !host.is_empty() {
            settings.allowed_hosts.push(host.to_ascii_lowercase());
        }
        settings.secure_cookie = url.starts_with("https://");
    }
    settings.config = masked_config(config);
    settings.api_url = config.base_url.clone();
    warden_dashboard::router(Dashboard {
        state: state.clone(),
        api,
        explorer,
        outbox,
        settings,
    })
}

/// The configuration as the overview shows it: the database URL without
/// its password, and every value under a key that names a secret masked.
/// (Secrets proper are not in the configuration: they are in the secret
/// store or the environment, and are never shown.)
pub(crate) fn masked_config(config: &Config) -> Value {
    let mut v = serde_json::to_value(config).unwrap_or(Value::Null);
    if let Some(url) = v.get_mut("database_url") {
        *url = Value::String(warden_store::redact_url(&config.database_url));
    }
    for url in ["/telemetry/otlp_endpoint", "/rate_limit/redis_url"] {
        if let Some(t) = v.pointer_mut(url) {
            if let Some(e) = t.as_str() {
                *t = Value::String(warden_store::redact_url(e));
            }
        }
    }
    mask(&mut v);
    v
}

fn secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["secret", "password", "token", "key"]
        .iter()
        .any(|s| k.contains(s))
        && k != "secrets_file"
}

fn mask(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                if secret_key(k) && !val.is_null() && !val.is_object() {
                    *val = Value::String(warden_store::explore::MASKED.into());
                } else {
                    mask(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shown_configuration_has_no_secret() {
        let mut c = Config {
            database_url: "postgres://warden:hunter2-db@db.internal/warden".into(),
            ..Config::default()
        };
        c.rate_limit.redis_url = Some("redis://:redis-pass-1@cache:6379".into());
        c.social.insert(
            "github".into(),
            crate::config::SocialProviderConfig {
                client_id: "id-123".into(),
                client_secret: Some("gh-secret-value".into()),
                ..Default::default()
            },
        );
        let text = masked_config(&c).to_string();
        assert!(!text.contains("hunter2-db"), "{text}");
        assert!(!text.contains("gh-secret-value"), "{text}");
        assert!(!text.contains("redis-pass-1"), "{text}");
        assert!(text.contains("id-123"), "{text}");
        assert!(text.contains("db.internal"), "{text}");
    }
}
