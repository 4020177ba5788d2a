//! The process's `tracing` subscriber: structured logs on stderr (human or
//! JSON lines), the in-process trace store, and OTLP export, each a layer
//! with its own filter over one registry.

use std::sync::OnceLock;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};
use warden_telemetry::metrics::OtlpCounters;
use warden_telemetry::otlp::{Otlp, OtlpSettings};
use warden_telemetry::{TraceLimits, TraceStore};

use crate::config::{Config, LogConfig, LogFormat};

/// What the subscriber records into, once installed.
pub struct Telemetry {
    /// The in-process store (`None`: `telemetry.keep_traces = 0`).
    pub traces: Option<TraceStore>,
    /// Where traces are exported, if anywhere.
    pub otlp_endpoint: Option<String>,
    otlp: Option<Otlp>,
}

impl Telemetry {
    /// Sends the spans still queued (at exit).
    pub fn flush(&self) {
        if let Some(o) = &self.otlp {
            let _ = o.provider.force_flush();
        }
    }
}

static INSTALLED: OnceLock<Telemetry> = OnceLock::new();

/// The installed telemetry, if [`init`] ran.
pub fn installed() -> Option<&'static Telemetry> {
    INSTALLED.get()
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry: {0}")]
    Otlp(#[from] warden_telemetry::otlp::OtlpError),
    #[error("telemetry: {0}")]
    Config(String),
}

/// The log filter: `RUST_LOG` if set, else the configured level. SQL
/// statement logging stays off unless asked for by name.
fn filter(cfg: &LogConfig) -> EnvFilter {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.level.clone());
    let directives = if base.contains("sqlx") {
        base
    } else {
        format!("{base},sqlx=warn")
    };
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
}

/// What traces hold: Warden's spans and events at `info` and above, and
/// every library user's; not the internals of the HTTP stack, sqlx's own
/// statement log (each statement is a `db.query` span already), or the
/// access-log line (the request span holds the same, and it is written
/// after the response).
fn trace_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target("warden::access", LevelFilter::OFF)
        .with_target("sqlx", LevelFilter::WARN)
        .with_target("hyper", LevelFilter::WARN)
        .with_target("h2", LevelFilter::WARN)
        .with_target("reqwest", LevelFilter::WARN)
        .with_target("opentelemetry", LevelFilter::OFF)
        .with_target("opentelemetry_sdk", LevelFilter::OFF)
}

/// Installs the global subscriber writing logs to stderr. A second call
/// returns what the first installed.
pub fn init(config: &Config) -> Result<&'static Telemetry, TelemetryError> {
    init_with_writer(config, std::io::stderr)
}

/// [`init`], writing logs to `writer` (tests capture logs so).
pub fn init_with_writer<W>(config: &Config, writer: W) -> Result<&'static Telemetry, TelemetryError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    if let Some(t) = INSTALLED.get() {
        return Ok(t);
    }
    let t = &config.telemetry;
    let keep = t.keep_traces(config.env);
    let traces = (keep > 0).then(|| {
        TraceStore::new(TraceLimits {
            keep_traces: keep,
            keep_bytes: t.keep_bytes(),
            max_traces_per_second: t
                .max_traces_per_second
                .unwrap_or(TraceLimits::default().max_traces_per_second),
            ..TraceLimits::default()
        })
    });
    let otlp_endpoint = t
        .otlp_endpoint()
        .map(|e| warden_telemetry::otlp::traces_url(&e));
    let otlp = match &otlp_endpoint {
        Some(endpoint) => Some(Otlp::start(
            &OtlpSettings {
                endpoint: endpoint.clone(),
                sample_ratio: t.sample_ratio().map_err(TelemetryError::Config)?,
                service_name: t.service_name(),
                ..OtlpSettings::default()
            },
            OtlpCounters::global().clone(),
        )?),
        None => None,
    };
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer);
    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![match config.log.format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter(&config.log))
            .boxed(),
        LogFormat::Pretty => fmt.with_filter(filter(&config.log)).boxed(),
    }];
    if let Some(store) = &traces {
        layers.push(store.layer().with_filter(trace_filter()).boxed());
    }
    if let Some(o) = &otlp {
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(o.tracer.clone())
                .with_threads(false)
                .with_tracked_inactivity(false)
                .with_filter(trace_filter())
                .boxed(),
        );
    }
    if tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_err()
    {
        // Another subscriber is installed (a library user's): Warden's
        // layers are not part of it.
        return Err(TelemetryError::Config(
            "a global tracing subscriber is already installed".into(),
        ));
    }
    Ok(INSTALLED.get_or_init(|| Telemetry {
        traces,
        otlp_endpoint,
        otlp,
    }))
}
