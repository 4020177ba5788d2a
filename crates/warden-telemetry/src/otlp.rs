//! OpenTelemetry export over OTLP/HTTP (protobuf), with the maintained
//! crates: `tracing-opentelemetry` turns spans into OpenTelemetry spans,
//! `opentelemetry-otlp` encodes and sends them.
//!
//! Between the two sits [`ExportQueue`], a span processor of our own,
//! instead of the SDK's `BatchSpanProcessor`: that one counts the spans it
//! drops only in a log line at shutdown, and it exports with a blocking
//! client on its own thread. Ours
//!
//! * takes a finished span with one `try_send` into a bounded queue (the
//!   request never waits: a full queue drops the span and counts it);
//! * redacts attributes whose names look like credentials (the same rule
//!   as the in-process store: a library user's span is covered too);
//! * exports batches from one thread with its own single-threaded runtime
//!   and Warden's `reqwest`, and counts spans exported and dropped (the
//!   collector refused, failed or timed out), for
//!   `warden_otlp_spans_dropped_total`.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, Value};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{
    Sampler, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor, Tracer,
};
use opentelemetry_sdk::Resource;

use crate::metrics::OtlpCounters;
use crate::redact::{is_sensitive, REDACTED};

/// Where and how traces are exported.
#[derive(Clone, Debug)]
pub struct OtlpSettings {
    /// The full traces URL (`http://collector:4318/v1/traces`).
    pub endpoint: String,
    /// Share of new traces sampled, 0.0 to 1.0 (a caller's `traceparent`
    /// decides for its own traces).
    pub sample_ratio: f64,
    /// `service.name`.
    pub service_name: String,
    /// Longest one export may take.
    pub timeout: Duration,
    /// Most finished spans waiting for export; more are dropped.
    pub queue_size: usize,
    /// Most spans in one export.
    pub batch_size: usize,
    /// Longest a span waits for its batch to fill.
    pub batch_delay: Duration,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        OtlpSettings {
            endpoint: "http://127.0.0.1:4318/v1/traces".into(),
            sample_ratio: 1.0,
            service_name: "warden".into(),
            timeout: Duration::from_secs(5),
            queue_size: 4096,
            batch_size: 512,
            batch_delay: Duration::from_millis(500),
        }
    }
}

/// `endpoint` as a traces URL: a base (`http://host:4318`, as in
/// `OTEL_EXPORTER_OTLP_ENDPOINT`) gets `/v1/traces`; a URL that already
/// ends so is kept.
pub fn traces_url(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        e.to_owned()
    } else {
        format!("{e}/v1/traces")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("invalid OTLP endpoint {0:?}: expected an http:// or https:// URL")]
    Endpoint(String),
    #[error("invalid sampling ratio {0}: expected a number from 0 to 1")]
    Ratio(f64),
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
}

/// The exporter, running: a tracer for `tracing-opentelemetry`, and the
/// provider to flush at exit.
pub struct Otlp {
    pub provider: SdkTracerProvider,
    pub tracer: Tracer,
}

impl Otlp {
    /// Starts the export thread. Spans go out in batches from then on.
    pub fn start(settings: &OtlpSettings, counters: OtlpCounters) -> Result<Otlp, OtlpError> {
        if !(settings.endpoint.starts_with("http://") || settings.endpoint.starts_with("https://"))
            || url_host_missing(&settings.endpoint)
        {
            return Err(OtlpError::Endpoint(settings.endpoint.clone()));
        }
        if !(0.0..=1.0).contains(&settings.sample_ratio) || settings.sample_ratio.is_nan() {
            return Err(OtlpError::Ratio(settings.sample_ratio));
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| OtlpError::Build(e.to_string()))?;
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(ReqwestClient(client))
            .with_endpoint(settings.endpoint.clone())
            .with_timeout(settings.timeout)
            .build()
            .map_err(|e| OtlpError::Build(e.to_string()))?;
        let resource = Resource::builder()
            .with_service_name(settings.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        exporter.set_resource(&resource);
        let queue = ExportQueue::start(exporter, settings, counters)
            .map_err(|e| OtlpError::Build(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_span_processor(queue)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                settings.sample_ratio,
            ))))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("warden");
        Ok(Otlp { provider, tracer })
    }
}

fn url_host_missing(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or("");
    rest.is_empty() || rest.starts_with('/')
}

/// `opentelemetry-http`'s client over Warden's own `reqwest` (the exporter's
/// built-in one is another major version of it).
#[derive(Debug)]
struct ReqwestClient(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ReqwestClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        // A collector answers with a small status message.
        let body = response.bytes().await?;
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

enum Msg {
    Span(Box<SpanData>),
    Flush(SyncSender<()>),
    Shutdown(SyncSender<()>),
}

/// The span processor: a bounded queue in front of one export thread.
#[derive(Debug)]
pub struct ExportQueue {
    tx: SyncSender<Msg>,
    counters: OtlpCounters,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl ExportQueue {
    fn start<E: SpanExporter + 'static>(
        exporter: E,
        settings: &OtlpSettings,
        counters: OtlpCounters,
    ) -> std::io::Result<Self> {
        let (tx, rx) = sync_channel(settings.queue_size.max(1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (batch_size, delay) = (settings.batch_size.max(1), settings.batch_delay);
        let c = counters.clone();
        let thread = std::thread::Builder::new()
            .name("warden-otlp".into())
            .spawn(move || runtime.block_on(export_loop(exporter, rx, batch_size, delay, c)))?;
        Ok(ExportQueue {
            tx,
            counters,
            thread: Mutex::new(Some(thread)),
        })
    }

    fn call(&self, make: impl FnOnce(SyncSender<()>) -> Msg, timeout: Duration) -> OTelSdkResult {
        let (done_tx, done_rx) = sync_channel(1);
        self.tx
            .send(make(done_tx))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        done_rx
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

async fn export_loop<E: SpanExporter>(
    exporter: E,
    rx: Receiver<Msg>,
    batch_size: usize,
    delay: Duration,
    counters: OtlpCounters,
) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(batch_size);
    let mut first_at: Option<Instant> = None;
    loop {
        let wait = match first_at {
            Some(t) => delay.saturating_sub(t.elapsed()),
            None => Duration::from_secs(3600),
        };
        // The queue is a std channel (on_end is synchronous); the thread
        // does nothing else, so blocking on it is fine.
        let msg = rx.recv_timeout(wait);
        let mut reply = None;
        let mut stop = false;
        match msg {
            Ok(Msg::Span(span)) => {
                first_at.get_or_insert_with(Instant::now);
                batch.push(*span);
                if batch.len() < batch_size {
                    continue;
                }
            }
            Ok(Msg::Flush(done)) => reply = Some(done),
            Ok(Msg::Shutdown(done)) => {
                reply = Some(done);
                stop = true;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => stop = true,
        }
        if !batch.is_empty() {
            let spans = std::mem::replace(&mut batch, Vec::with_capacity(batch_size));
            let n = spans.len() as u64;
            match exporter.export(spans).await {
                Ok(()) => counters.exported.inc_by(n),
                Err(_) => counters.dropped.inc_by(n),
            };
        }
        first_at = None;
        if let Some(done) = reply {
            let _ = done.send(());
        }
        if stop {
            let _ = exporter.shutdown_with_timeout(Duration::from_secs(1));
            return;
        }
    }
}

/// Replaces the values of attributes whose names look like credentials.
fn redact(attributes: &mut [KeyValue]) {
    for kv in attributes {
        if is_sensitive(kv.key.as_str()) {
            kv.value = Value::from(REDACTED);
        }
    }
}

impl SpanProcessor for ExportQueue {
    fn on_start(&self, _span: &mut Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, mut span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        redact(&mut span.attributes);
        for event in span.events.events.iter_mut() {
            redact(&mut event.attributes);
        }
        match self.tx.try_send(Msg::Span(Box::new(span))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped.inc();
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.call(Msg::Flush, Duration::from_secs(10))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.call(Msg::Shutdown, timeout);
        if let Some(t) = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            if result.is_ok() {
                let _ = t.join();
            }
        }
        result
    }
}

/// Makes `span` (a root, not yet entered) a child of the caller's span, so
/// that Warden's spans join the caller's trace. Without the OpenTelemetry
/// layer this does nothing.
pub fn set_remote_parent(span: &tracing::Span, parent: &crate::TraceParent) {
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let flags = if parent.sampled {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let cx = SpanContext::new(
        opentelemetry::trace::TraceId::from(parent.trace_id.get()),
        opentelemetry::trace::SpanId::from(parent.parent_id.get()),
        flags,
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(cx));
}

/// `span`'s OpenTelemetry trace id, span id and sampling decision, if the
/// OpenTelemetry layer records it.
pub fn span_ids(span: &tracing::Span) -> Option<(crate::TraceId, crate::SpanId, bool)> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return None;
    }
    Some((
        crate::TraceId::new(u128::from_be_bytes(sc.trace_id().to_bytes()))?,
        crate::SpanId::new(u64::from_be_bytes(sc.span_id().to_bytes()))?,
        sc.is_sampled(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(
            traces_url("http://c:4318"),
            "http://c:4318/v1/traces".to_owned()
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = |s: OtlpSettings| Otlp::start(&s, OtlpCounters::default()).err();
        assert!(matches!(
            bad(OtlpSettings {
                endpoint: "collector:4318".into(),
                ..Default::default()
            }),
            Some(OtlpError::Endpoint(_))
        ));
        assert!(matches!(
            bad(OtlpSettings {
                sample_ratio: 1.5,
                ..Default::default()
            }),
            Some(OtlpError::Ratio(_))
        ));
    }

    /// A collector that accepts connections and never answers: the spans
    /// beyond the queue are dropped at once, the queued ones when the
    /// export times out, and none of it makes the caller wait.
    #[test]
    fn a_stuck_collector_costs_dropped_spans_not_time() {
        use tracing_subscriber::prelude::*;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = std::thread::spawn(move || {
            let conns: Vec<_> = listener.incoming().take(4).collect();
            std::thread::sleep(Duration::from_secs(10));
            drop(conns);
        });
        let counters = OtlpCounters::default();
        let otlp = Otlp::start(
            &OtlpSettings {
                endpoint: format!("http://{addr}/v1/traces"),
                timeout: Duration::from_millis(500),
                queue_size: 4,
                batch_size: 2,
                batch_delay: Duration::from_millis(10),
                ..OtlpSettings::default()
            },
            counters.clone(),
        )
        .unwrap();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(otlp.tracer.clone()));
        let started = Instant::now();
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..50 {
                let _s = tracing::info_span!("request", user_id = "u1").entered();
            }
        });
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "ending spans never waits for the collector: {:?}",
            started.elapsed()
        );
        assert!(
            counters.dropped.get() >= 40,
            "the full queue drops: {}",
            counters.dropped.get()
        );
        let _ = otlp.provider.force_flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while counters.dropped.get() < 50 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(counters.dropped.get(), 50, "every span is accounted for");
        assert_eq!(counters.exported.get(), 0);
    }

    #[test]
    fn credential_attributes_are_redacted() {
        let mut attrs = vec![
            KeyValue::new("user_id", "u1"),
            KeyValue::new("session_token", "abc"),
            KeyValue::new("http.response.status_code", 200),
        ];
        redact(&mut attrs);
        assert_eq!(attrs[0].value, Value::from("u1"));
        assert_eq!(attrs[1].value, Value::from(REDACTED));
        assert_eq!(attrs[2].value, Value::from(200));
    }
}
