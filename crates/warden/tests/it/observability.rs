//! Traces, propagation and metrics, as an operator sees them: spans decoded
//! by a real OTLP receiver, the in-process store, and `/metrics` parsed.

use std::collections::HashMap;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::otlp_receiver::{attrs, hex, receiver};

fn trace_id(res: &reqwest::Response) -> String {
    res.headers()
        .get("x-trace-id")
        .expect("every response names its trace")
        .to_str()
        .unwrap()
        .to_owned()
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// Whether `ancestor` is `span`'s parent, grandparent, ...
fn descends_from(spans: &[Span], span: &Span, ancestor: &Span) -> bool {
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|s| (s.span_id.as_slice(), s)).collect();
    let mut parent = span.parent_span_id.as_slice();
    for _ in 0..64 {
        if parent == ancestor.span_id.as_slice() {
            return true;
        }
        match by_id.get(parent) {
            Some(p) => parent = p.parent_span_id.as_slice(),
            None => return false,
        }
    }
    false
}

/// One sample's value: the line `name{labels...} value` whose labels
/// include every `want` pair (0 if there is none).
pub fn sample(metrics: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (n == name).then_some((labels, value))
        })
        .filter(|(labels, _)| {
            want.iter()
                .all(|(k, v)| labels.split(',').any(|p| p == format!("{k}=\"{v}\"")))
        })
        .map(|(_, v)| v.parse::<f64>().unwrap())
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let res = app.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    res.text().await.unwrap()
}

async fn sign_in_trace_has_request_db_and_hashing_spans(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;
    let res = app.sign_in_as(&user.email, &user.password).await;
    assert_eq!(res.status(), 200);
    let id = trace_id(&res);
    let spans = receiver()
        .trace(&id, |s| {
            !named(s, "POST /auth/signin").is_empty()
                && !named(s, "password.verify").is_empty()
                && s.iter().any(|x| x.name == "SELECT")
        })
        .await;
    let request = named(&spans, "POST /auth/signin");
    assert_eq!(request.len(), 1, "one request span: {spans:#?}");
    let request = request[0];
    assert_eq!(request.kind, SpanKind::Server as i32);
    assert!(request.parent_span_id.is_empty(), "the request is the root");
    let a = attrs(request);
    assert_eq!(a["http.route"], "/auth/signin");
    assert_eq!(a["http.request.method"], "POST");
    assert_eq!(a["http.response.status_code"], "200");
    assert_eq!(a["user_id"], user.id, "the user is known once signed in");
    assert!(a.contains_key("request_id"));

    let verify = named(&spans, "password.verify");
    assert_eq!(verify.len(), 1);
    let v = attrs(verify[0]);
    assert_eq!(v["algorithm"], "argon2id");
    assert!(v["hash_ms"].parse::<f64>().unwrap() > 0.0);
    assert!(v.contains_key("queue_wait_ms"));
    assert!(descends_from(&spans, verify[0], request));

    let select = spans
        .iter()
        .find(|s| s.name == "SELECT" && attrs(s)["db.query.text"].contains(r#"FROM "user""#))
        .expect("the user lookup is a span");
    let q = attrs(select);
    assert_eq!(select.kind, SpanKind::Client as i32);
    // The statement as sent: MySQL's placeholders are `?`.
    let placeholder = if backend == Backend::MySql {
        "= ?"
    } else {
        "$1"
    };
    assert!(
        q["db.query.text"].contains(placeholder),
        "placeholders: {q:?}"
    );
    assert!(
        !q["db.query.text"].contains(&user.email),
        "never the bound values"
    );
    assert_eq!(q["db.response.returned_rows"], "1");
    assert_eq!(
        q["db.system.name"],
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
            Backend::MySql => "mysql",
        }
    );
    assert!(descends_from(&spans, select, request));
    assert!(receiver().services().iter().any(|s| s == "warden-tests"));
}

async fn protected_request_trace_has_the_auth_span(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;
    let mut ids = vec![];
    for _ in 0..2 {
        let res = app.get_as("/profile", &user.token).await;
        assert_eq!(res.status(), 200);
        ids.push(trace_id(&res));
    }
    let mut cached = vec![];
    for id in &ids {
        let spans = receiver().trace(id, |s| !named(s, "auth").is_empty()).await;
        let request = named(&spans, "GET /profile");
        let auth = named(&spans, "auth");
        assert_eq!((request.len(), auth.len()), (1, 1), "{spans:#?}");
        assert_eq!(auth[0].parent_span_id, request[0].span_id);
        let a = attrs(auth[0]);
        assert_eq!(a["outcome"], "ok");
        assert_eq!(a["user_id"], user.id);
        assert!(!a["session_id"].is_empty());
        assert_ne!(a["session_id"], user.token, "the session id, not the token");
        cached.push(a["cached"].clone());
        assert_eq!(attrs(request[0])["user_id"], user.id);
    }
    assert_eq!(
        cached,
        ["false", "true"],
        "the second request is answered from the session cache"
    );
    // A bad token: the auth span says so.
    let res = app.get_as("/profile", "not-a-session").await;
    assert_eq!(res.status(), 401);
    let spans = receiver()
        .trace(&trace_id(&res), |s| !named(s, "auth").is_empty())
        .await;
    assert_eq!(attrs(named(&spans, "auth")[0])["outcome"], "invalid");
}

async fn traceparent_is_honoured_and_returned(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let caller_trace = warden_telemetry::TraceId::random().to_string();
    let caller_span = "00f067aa0ba902b7";
    let res = app
        .get("/healthz")
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(trace_id(&res), caller_trace);
    let tp = res.headers()["traceparent"].to_str().unwrap().to_owned();
    let parsed = warden_telemetry::TraceParent::parse(&tp).expect("a valid traceparent");
    assert_eq!(parsed.trace_id.to_string(), caller_trace);
    let spans = receiver()
        .trace(&caller_trace, |s| !named(s, "GET /healthz").is_empty())
        .await;
    let request = named(&spans, "GET /healthz")[0];
    assert_eq!(
        hex(&request.parent_span_id),
        caller_span,
        "joins the caller's span"
    );
    assert_eq!(hex(&request.span_id), parsed.parent_id.to_string());

    // A malformed one is ignored: a new trace.
    let res = app
        .get("/healthz")
        .header("traceparent", "00-zz-00f067aa0ba902b7-01")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(trace_id(&res).len(), 32);
    assert_ne!(trace_id(&res), caller_trace);
}

async fn the_trace_store_keeps_each_request(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;
    let res = app.get_as("/profile", &user.token).await;
    let id: warden_telemetry::TraceId = trace_id(&res).parse().unwrap();
    let store = warden::telemetry::installed()
        .and_then(|t| t.traces.as_ref())
        .expect("the test subscriber keeps traces");
    // The root closes just after the response is written.
    let mut trace = None;
    for _ in 0..50 {
        trace = store.get(&id);
        if trace.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let trace = trace.expect("the request's trace is kept");
    let names: Vec<&str> = trace.spans.iter().map(|s| s.name).collect();
    assert_eq!(names[0], "request", "{names:?}");
    assert!(names.contains(&"auth"), "{names:?}");
    let text = serde_json::to_string(&trace).unwrap();
    assert!(text.contains(&user.id));
    assert!(!text.contains(&user.token));
    assert!(
        store.recent(20_000).iter().any(|s| s.id == id),
        "listed among the recent traces"
    );
}

async fn metrics_move_with_requests(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let before = scrape(&app).await;
    assert_eq!(
        sample(&before, "warden_sign_ups_total", &[("method", "password")]),
        0.0
    );
    assert_eq!(
        sample(
            &before,
            "warden_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    let user = app.new_user().await;
    let wrong = app.sign_in_as(&user.email, "not the password at all").await;
    assert_eq!(wrong.status(), 401);
    let right = app.sign_in_as(&user.email, &user.password).await;
    assert_eq!(right.status(), 200);
    app.get_as("/profile", &user.token).await;
    app.get_as("/profile", &user.token).await;
    let m = scrape(&app).await;
    let signin = |result| {
        sample(
            &m,
            "warden_sign_in_attempts_total",
            &[("method", "password"), ("result", result)],
        )
    };
    assert_eq!(
        sample(&m, "warden_sign_ups_total", &[("method", "password")]),
        1.0
    );
    assert_eq!(signin("wrong_password"), 1.0);
    assert_eq!(signin("success"), 1.0);
    let profile = [
        ("http_route", "/profile"),
        ("http_request_method", "GET"),
        ("http_response_status_class", "2xx"),
    ];
    assert_eq!(
        sample(&m, "http_server_request_duration_seconds_count", &profile),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            "http_server_request_duration_seconds_count",
            &[
                ("http_route", "/auth/signin"),
                ("http_response_status_class", "4xx")
            ]
        ),
        1.0
    );
    assert!(
        sample(
            &m,
            "warden_session_cache_lookups_total",
            &[("result", "hit")]
        ) >= 1.0
    );
    assert!(
        sample(
            &m,
            "warden_session_cache_lookups_total",
            &[("result", "miss")]
        ) >= 1.0
    );
    assert!(
        sample(
            &m,
            "warden_password_hash_duration_seconds_count",
            &[("operation", "verify"), ("algorithm", "argon2id")]
        ) >= 2.0
    );
    assert_eq!(sample(&m, "warden_password_hash_busy_threads", &[]), 0.0);
    assert_eq!(sample(&m, "warden_password_hash_queue_depth", &[]), 0.0);
    assert!(sample(&m, "db_client_connection_wait_time_seconds_count", &[]) >= 3.0);
    assert!(
        sample(
            &m,
            "db_client_operation_duration_seconds_count",
            &[("db_operation_name", "SELECT")]
        ) >= 2.0
    );
    assert!(sample(&m, "db_client_connection_max", &[]) >= 1.0);
    // Exported spans are counted (by the one exporter of this process).
    assert!(sample(&m, "warden_otlp_spans_exported_total", &[]) >= 0.0);
    // Bounded labels: no user id, email or raw path anywhere.
    assert!(!m.contains(&user.id) && !m.contains(&user.email));
    app.get("/no/such/path/with-a-token-abc123")
        .send()
        .await
        .unwrap();
    let m = scrape(&app).await;
    assert!(!m.contains("with-a-token"));
    assert!(
        sample(
            &m,
            "http_server_request_duration_seconds_count",
            &[("http_route", "unmatched")]
        ) >= 1.0
    );
    // Other instances' invalidations: on PostgreSQL the instance listens
    // (soon after start-up) and hears the database announce its own
    // changes too; SQLite and MySQL have none (MySQL's instances use Redis).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while sample(&scrape(&app).await, "warden_invalidation_link_up", &[]) != 1.0 {
        assert!(std::time::Instant::now() < deadline, "link never up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let other = app.new_user().await;
    app.post("/auth/signout")
        .bearer_auth(&other.token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    let heard = |m: &str| sample(m, "warden_peer_invalidations_total", &[("kind", "session")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let n = heard(&scrape(&app).await);
        match backend {
            // No listener: nothing announces changes there.
            Backend::Sqlite | Backend::MySql => {
                assert_eq!(n, 0.0);
                break;
            }
            _ if n >= 1.0 => break,
            _ => assert!(std::time::Instant::now() < deadline, "no NOTIFY heard"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn rate_limited_sign_ins_are_counted(backend: Backend) {
    let app = crate::helpers::spawn_app_with(backend, |c| {
        c.rate_limit.enabled = Some(true);
        c.rate_limit.max = 2;
    })
    .await;
    for _ in 0..4 {
        app.post("/auth/signin")
            .json(&json!({"email": "nobody@example.com", "password": "whatever it is"}))
            .send()
            .await
            .unwrap();
    }
    let m = scrape(&app).await;
    assert!(
        sample(
            &m,
            "warden_sign_in_attempts_total",
            &[("method", "password"), ("result", "rate_limited")]
        ) >= 1.0,
        "{m}"
    );
    assert!(
        sample(
            &m,
            "warden_rate_limited_requests_total",
            &[("http_route", "/auth/signin")]
        ) >= 1.0
    );
}

async fn metrics_can_require_a_token_or_a_listener_of_their_own(backend: Backend) {
    // A token: the API's /metrics asks for it.
    let token = "metrics-token-0123456789abcdef";
    let app = crate::helpers::spawn_app_with(backend, |c| {
        std::fs::write(
            &c.secrets_file,
            json!({ warden::METRICS_TOKEN: token }).to_string(),
        )
        .unwrap();
    })
    .await;
    let res = app.get("/metrics").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = app
        .get("/metrics")
        .bearer_auth("metrics-token-wrong-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = app.get("/metrics").bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("warden_build_info"));

    // Off on the API, served on a listener of its own.
    let (mut config, _secrets, spec) = crate::helpers::test_config(backend);
    config.telemetry.metrics_on_api = Some(false);
    config.telemetry.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    spec.create().await;
    let server = warden::Server::build(&config).await.unwrap();
    let api = server.local_addr();
    let metrics = server.metrics_addr().expect("a metrics listener");
    let _db = spec.open(&config.database_url).await;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://{api}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "not on the API's listener");
    let res = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("http_server_request_duration_seconds"));
    let res = client
        .get(format!("http://{metrics}/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "nothing else there");
    let _ = tx.send(());
    handle.await.unwrap().unwrap();
}

crate::backend_tests!(
    sign_in_trace_has_request_db_and_hashing_spans,
    protected_request_trace_has_the_auth_span,
    traceparent_is_honoured_and_returned,
    the_trace_store_keeps_each_request,
    metrics_move_with_requests,
    rate_limited_sign_ins_are_counted,
    metrics_can_require_a_token_or_a_listener_of_their_own,
);

/// Bad telemetry configuration is refused at start, naming the key.
#[test]
fn bad_telemetry_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let check = |toml: &str| {
        let path = dir.path().join("warden.toml");
        std::fs::write(&path, toml).unwrap();
        warden::config::Config::load(Some(&path), &Default::default())
            .err()
            .map(|e| e.to_string())
    };
    let e = check("[telemetry]\nsample_ratio = 1.5\n").unwrap();
    assert!(e.contains("telemetry.sample_ratio"), "{e}");
    let e = check("[telemetry]\nkeep_bytes = 10\n").unwrap();
    assert!(e.contains("telemetry.keep_bytes"), "{e}");
    let e = check("[telemetry]\notlp_endpoint = \"collector:4317\"\n").unwrap();
    assert!(e.contains("telemetry.otlp_endpoint"), "{e}");
    let e = check("[telemetry]\nkeep_trace = 5\n").unwrap();
    assert!(e.contains("keep_trace"), "{e}");
    assert_eq!(
        check("[telemetry]\nkeep_traces = 10\nsample_ratio = 0.25\n"),
        None
    );
}
