//! Structured logs with `tracing`: human-readable or JSON lines on stderr.

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// The filter: `RUST_LOG` if set, else the configured level. SQL statement
/// logging stays off unless asked for by name.
fn filter(cfg: &LogConfig) -> EnvFilter {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| cfg.level.clone());
    let directives = if base.contains("sqlx") {
        base
    } else {
        format!("{base},sqlx=warn")
    };
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"))
}

/// Installs the global subscriber writing to stderr. A second call is a no-op.
pub fn init(cfg: &LogConfig) {
    init_with_writer(cfg, std::io::stderr);
}

/// Installs the global subscriber writing to `writer` (tests capture logs so).
pub fn init_with_writer<W>(cfg: &LogConfig, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(cfg))
        .with_writer(writer);
    let _ = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
