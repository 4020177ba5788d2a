//! A real OTLP/HTTP trace receiver for the tests: `POST /v1/traces` with a
//! protobuf `ExportTraceServiceRequest`, decoded with `opentelemetry-proto`
//! (the collector's own message types), so the tests see exactly what a
//! collector would. One per test binary, on its own thread and runtime
//! (the exporter outlives every test's runtime).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

#[derive(Default)]
struct Received {
    /// Every request body, as sent.
    raw: Vec<u8>,
    spans: Vec<Span>,
    /// `service.name` of the resources seen.
    services: Vec<String>,
}

pub struct OtlpReceiver {
    /// Base URL (`OTEL_EXPORTER_OTLP_ENDPOINT` form).
    pub url: String,
    received: Arc<Mutex<Received>>,
}

async fn export(State(r): State<Arc<Mutex<Received>>>, body: Bytes) -> StatusCode {
    let Ok(req) = ExportTraceServiceRequest::decode(body.as_ref()) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut r = r.lock().unwrap();
    r.raw.extend_from_slice(&body);
    for rs in req.resource_spans {
        if let Some(res) = &rs.resource {
            for kv in &res.attributes {
                if kv.key == "service.name" {
                    if let Some(Value::StringValue(s)) =
                        kv.value.as_ref().and_then(|v| v.value.clone())
                    {
                        r.services.push(s);
                    }
                }
            }
        }
        for ss in rs.scope_spans {
            r.spans.extend(ss.spans);
        }
    }
    StatusCode::OK
}

/// The receiver the test binary's subscriber exports to.
pub fn receiver() -> &'static OtlpReceiver {
    static RECEIVER: OnceLock<OtlpReceiver> = OnceLock::new();
    RECEIVER.get_or_init(|| {
        let received = Arc::new(Mutex::new(Received::default()));
        let (tx, rx) = std::sync::mpsc::channel();
        let state = received.clone();
        std::thread::Builder::new()
            .name("otlp-receiver".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    tx.send(listener.local_addr().unwrap()).unwrap();
                    let app = axum::Router::new()
                        .route("/v1/traces", post(export))
                        .with_state(state);
                    axum::serve(listener, app).await.unwrap();
                });
            })
            .unwrap();
        let addr = rx.recv().unwrap();
        OtlpReceiver {
            url: format!("http://{addr}"),
            received,
        }
    })
}

/// A span's attributes as strings.
pub fn attrs(span: &Span) -> HashMap<String, String> {
    span.attributes
        .iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.clone()) {
                Some(Value::StringValue(s)) => s,
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl OtlpReceiver {
    /// The spans of trace `trace_id` (hex) once `until` holds of them
    /// (export is batched: waits up to 15 s).
    pub async fn trace(&self, trace_id: &str, until: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let spans: Vec<Span> = self
                .received
                .lock()
                .unwrap()
                .spans
                .iter()
                .filter(|s| hex(&s.trace_id) == trace_id)
                .cloned()
                .collect();
            if until(&spans) || tokio::time::Instant::now() > deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every byte received so far.
    pub fn raw(&self) -> Vec<u8> {
        self.received.lock().unwrap().raw.clone()
    }

    pub fn services(&self) -> Vec<String> {
        self.received.lock().unwrap().services.clone()
    }
}
