//! Prometheus metrics: one [`Metrics`] per Warden instance, with its own
//! registry (no global recorder: two instances in one process, or a library
//! user's own metrics, never mix).
//!
//! Names follow OpenTelemetry's semantic conventions where one exists
//! (`http.server.request.duration` is `http_server_request_duration_seconds`
//! here, as OpenTelemetry's Prometheus exporter spells it); Warden's own are
//! `warden_*`. Every label comes from a closed set: a route template, a
//! status class, an enum. Never a user id, an email, an address or a raw
//! path, so the number of series is bounded by the number of routes.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Buckets for request and query durations, in seconds: 0.5 ms to ~16 s.
fn duration_buckets() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

/// Buckets for password hashing, in seconds: 5 ms to 5 s.
fn hash_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
    ])
}

/// An enum whose label value is a fixed string per variant.
macro_rules! label_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every value.
            pub const ALL: &[$name] = &[$($name::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)*
                }
            }
        }

        impl EncodeLabelValue for $name {
            fn encode(
                &self,
                encoder: &mut prometheus_client::encoding::LabelValueEncoder<'_>,
            ) -> Result<(), std::fmt::Error> {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }
    };
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub http_request_method: String,
    /// The matched route template (`/api/auth/reset-password/{token}`), or
    /// `unmatched`: never the path itself.
    pub http_route: String,
    /// `2xx`, `4xx`, ...
    pub http_response_status_class: StatusClass,
}

label_enum! {
    StatusClass {
        Informational = "1xx",
        Success = "2xx",
        Redirection = "3xx",
        ClientError = "4xx",
        ServerError = "5xx",
    }
}

impl StatusClass {
    pub fn of(status: u16) -> Self {
        match status {
            0..=199 => StatusClass::Informational,
            200..=299 => StatusClass::Success,
            300..=399 => StatusClass::Redirection,
            400..=499 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }
}

label_enum! {
/// How a sign-in was attempted.
    SignInMethod {
        Password = "password",
        Social = "social",
        /// The second step: a TOTP or backup code after a password.
        TwoFactor = "two_factor",
        Passkey = "passkey",
        /// A magic link followed.
        MagicLink = "magic_link",
        /// A one-time code from the email.
        EmailOtp = "email_otp",
    }
}

label_enum! {
/// How a sign-in attempt ended.
    SignInResult {
        Success = "success",
        /// Wrong password or unknown email (indistinguishable on purpose).
        WrongPassword = "wrong_password",
        /// A wrong TOTP or backup code.
        WrongCode = "wrong_code",
        Locked = "locked",
        TwoFactorRequired = "two_factor_required",
        RateLimited = "rate_limited",
        Banned = "banned",
        EmailNotVerified = "email_not_verified",
        /// Refused input (malformed email, over-long password, expired challenge).
        Invalid = "invalid",
        /// The server could not answer (database down, hashing pool full).
        Error = "error",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignInLabels {
    pub method: SignInMethod,
    pub result: SignInResult,
}

label_enum! {
    SignUpMethod {
        Password = "password",
        Social = "social",
        Admin = "admin",
        /// Created by a magic link or an email code.
        Passwordless = "passwordless",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignUpLabels {
    pub method: SignUpMethod,
}

label_enum! {
    CacheResult {
        Hit = "hit",
        Miss = "miss",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub result: CacheResult,
}

label_enum! {
    PeerKind {
        Session = "session",
        User = "user",
        All = "all",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PeerLabels {
    pub kind: PeerKind,
}

label_enum! {
    HashOperation {
        Hash = "hash",
        Verify = "verify",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HashLabels {
    pub operation: HashOperation,
    /// `argon2id`, or `scrypt` for BetterAuth's hashes.
    pub algorithm: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub http_route: String,
}

label_enum! {
    MailResult {
        Sent = "sent",
        Failed = "failed",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailLabels {
    /// The template's name (`password_reset`, ...).
    pub template: &'static str,
    pub result: MailResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DbOperationLabels {
    pub db_system_name: &'static str,
    /// The statement's first keyword: `SELECT`, `INSERT`, `UPDATE`,
    /// `DELETE`, else `OTHER`.
    pub db_operation_name: &'static str,
}

label_enum! {
    ConnectionState {
        Used = "used",
        Idle = "idle",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub db_client_connection_state: ConnectionState,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// What a database backend measures about its own queries and pool. The
/// store owns one; [`Metrics::with_database`] registers it.
#[derive(Clone, Debug)]
pub struct DbMetrics {
    pub system: &'static str,
    /// `db.client.connection.wait_time`: waiting for a pooled connection.
    pub wait_time: Histogram,
    /// `db.client.operation.duration`, by statement kind.
    pub operation_duration: HistogramFamily<DbOperationLabels>,
}

impl DbMetrics {
    pub fn new(system: &'static str) -> Self {
        DbMetrics {
            system,
            wait_time: duration_buckets(),
            operation_duration: Family::new_with_constructor(duration_buckets),
        }
    }

    pub fn observe_wait(&self, wait: Duration) {
        self.wait_time.observe(wait.as_secs_f64());
    }

    pub fn observe_operation(&self, operation: &'static str, took: Duration) {
        self.operation_duration
            .get_or_create(&DbOperationLabels {
                db_system_name: self.system,
                db_operation_name: operation,
            })
            .observe(took.as_secs_f64());
    }
}

/// The connection pool right now, read at each scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub used: u64,
    pub idle: u64,
    pub max: u64,
}

type Sampler = Box<dyn Fn(&Metrics) + Send + Sync>;

/// Every metric Warden records. Cheap to update (atomics behind a
/// read-locked label map); [`Metrics::render`] writes the text format.
pub struct Metrics {
    registry: Registry,
    samplers: Mutex<Vec<Sampler>>,
    pub http_duration: HistogramFamily<HttpLabels>,
    pub sign_ins: Family<SignInLabels, Counter>,
    pub sign_ups: Family<SignUpLabels, Counter>,
    pub session_cache: Family<CacheLabels, Counter>,
    pub session_cache_invalidations: Counter,
    /// Invalidations received from other instances (PostgreSQL NOTIFY or
    /// Redis), by kind.
    pub peer_invalidations: Family<PeerLabels, Counter>,
    /// 1 while this instance hears other instances' invalidations (or
    /// needs none), 0 while it does not and serves without its cache.
    pub invalidation_link_up: Gauge,
    pub hash_queue_depth: Gauge,
    pub hash_busy_threads: Gauge,
    pub hash_duration: HistogramFamily<HashLabels>,
    pub hash_queue_wait: Histogram,
    pub hash_refused: Counter,
    pub rate_limited: Family<RouteLabels, Counter>,
    pub mail: Family<MailLabels, Counter>,
    pub db_connections: Family<ConnectionLabels, Gauge>,
    pub db_connections_max: Gauge,
    pub otlp_spans_exported: Counter,
    pub otlp_spans_dropped: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(OtlpCounters::default())
    }
}

/// The exporter's counters, shared by every [`Metrics`] of the process
/// (there is one exporter per process, made before any instance).
#[derive(Clone, Debug, Default)]
pub struct OtlpCounters {
    pub exported: Counter,
    pub dropped: Counter,
}

impl OtlpCounters {
    /// The process's counters (the exporter and every [`Metrics`] use them).
    pub fn global() -> &'static OtlpCounters {
        static COUNTERS: std::sync::OnceLock<OtlpCounters> = std::sync::OnceLock::new();
        COUNTERS.get_or_init(OtlpCounters::default)
    }
}

impl Metrics {
    /// Fresh metrics for one instance, reporting `otlp`'s counters.
    pub fn new(otlp: OtlpCounters) -> Self {
        let mut m = Metrics {
            registry: Registry::default(),
            samplers: Mutex::new(Vec::new()),
            http_duration: Family::new_with_constructor(duration_buckets),
            sign_ins: Family::default(),
            sign_ups: Family::default(),
            session_cache: Family::default(),
            session_cache_invalidations: Counter::default(),
            peer_invalidations: Family::default(),
            invalidation_link_up: Gauge::default(),
            hash_queue_depth: Gauge::default(),
            hash_busy_threads: Gauge::default(),
            hash_duration: Family::new_with_constructor(hash_buckets),
            hash_queue_wait: duration_buckets(),
            hash_refused: Counter::default(),
            rate_limited: Family::default(),
            mail: Family::default(),
            db_connections: Family::default(),
            db_connections_max: Gauge::default(),
            otlp_spans_exported: otlp.exported,
            otlp_spans_dropped: otlp.dropped,
        };
        let r = &mut m.registry;
        r.register_with_unit(
            "http_server_request_duration",
            "Duration of HTTP server requests, by method, route template and status class",
            Unit::Seconds,
            m.http_duration.clone(),
        );
        r.register(
            "warden_sign_in_attempts",
            "Sign-in attempts by method and result",
            m.sign_ins.clone(),
        );
        r.register(
            "warden_sign_ups",
            "Users created, by how",
            m.sign_ups.clone(),
        );
        r.register(
            "warden_session_cache_lookups",
            "Session validations answered from the in-memory cache (hit) or the database (miss)",
            m.session_cache.clone(),
        );
        r.register(
            "warden_session_cache_invalidations",
            "Cached sessions dropped because they were revoked, expired or their user changed",
            m.session_cache_invalidations.clone(),
        );
        r.register(
            "warden_peer_invalidations",
            "Session-cache invalidations received from other instances, by kind (session, user, all)",
            m.peer_invalidations.clone(),
        );
        r.register(
            "warden_invalidation_link_up",
            "1 while other instances' invalidations reach this one (or none are needed); 0 while they do not and the session cache is bypassed",
            m.invalidation_link_up.clone(),
        );
        r.register(
            "warden_password_hash_queue_depth",
            "Password hashing jobs waiting for a hashing thread",
            m.hash_queue_depth.clone(),
        );
        r.register(
            "warden_password_hash_busy_threads",
            "Hashing threads working right now",
            m.hash_busy_threads.clone(),
        );
        r.register_with_unit(
            "warden_password_hash_duration",
            "Time to hash or verify one password, on a hashing thread",
            Unit::Seconds,
            m.hash_duration.clone(),
        );
        r.register_with_unit(
            "warden_password_hash_queue_wait",
            "Time a hashing job waited for a thread",
            Unit::Seconds,
            m.hash_queue_wait.clone(),
        );
        r.register(
            "warden_password_hash_refused",
            "Hashing jobs refused because the queue was full (answered 503)",
            m.hash_refused.clone(),
        );
        r.register(
            "warden_rate_limited_requests",
            "Requests refused by the rate limiter, by route template",
            m.rate_limited.clone(),
        );
        r.register(
            "warden_mail_messages",
            "Mail handed to the transport, by template and result",
            m.mail.clone(),
        );
        r.register(
            "db_client_connection_count",
            "Database connections in the pool, by state",
            m.db_connections.clone(),
        );
        r.register(
            "db_client_connection_max",
            "The pool's most connections",
            m.db_connections_max.clone(),
        );
        r.register(
            "warden_otlp_spans_exported",
            "Spans accepted by the OTLP collector",
            m.otlp_spans_exported.clone(),
        );
        r.register(
            "warden_otlp_spans_dropped",
            "Spans not exported: the queue was full or the collector failed or timed out",
            m.otlp_spans_dropped.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register(
            "warden_build_info",
            "Always 1; the label is Warden's version",
            build,
        );
        m
    }

    /// Registers a database backend's metrics, and reads its pool with
    /// `pool` at every scrape.
    pub fn with_database(
        mut self,
        db: &DbMetrics,
        pool: impl Fn() -> PoolStatus + Send + Sync + 'static,
    ) -> Self {
        let r = &mut self.registry;
        r.register_with_unit(
            "db_client_connection_wait_time",
            "Time waiting for a pooled database connection",
            Unit::Seconds,
            db.wait_time.clone(),
        );
        r.register_with_unit(
            "db_client_operation_duration",
            "Duration of database statements, by kind",
            Unit::Seconds,
            db.operation_duration.clone(),
        );
        self.on_scrape(move |m| {
            let s = pool();
            let gauge = |state| {
                m.db_connections.get_or_create(&ConnectionLabels {
                    db_client_connection_state: state,
                })
            };
            gauge(ConnectionState::Used).set(s.used as i64);
            gauge(ConnectionState::Idle).set(s.idle as i64);
            m.db_connections_max.set(s.max as i64);
        });
        self
    }

    /// Runs `f` before each [`Metrics::render`] (to read gauges that are
    /// cheaper to sample than to keep current).
    pub fn on_scrape(&self, f: impl Fn(&Metrics) + Send + Sync + 'static) {
        self.samplers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(f));
    }

    /// The registry, to add a library user's own metrics to it or to merge
    /// it into theirs.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        for f in self
            .samplers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            f(self);
        }
        let mut out = String::with_capacity(16 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
            let _ = writeln!(out, "# metrics could not be encoded\n# EOF");
        }
        out
    }

    /// Sign-in attempts since start, of every method: (succeeded, failed).
    /// Refusals that are not a wrong credential (two-factor asked, rate
    /// limited, server errors) count as neither.
    pub fn sign_in_totals(&self) -> (u64, u64) {
        let (mut ok, mut failed) = (0, 0);
        for &method in SignInMethod::ALL {
            for &result in SignInResult::ALL {
                let Some(c) = self.sign_ins.get(&SignInLabels { method, result }) else {
                    continue;
                };
                match result {
                    SignInResult::Success => ok += c.get(),
                    SignInResult::WrongPassword
                    | SignInResult::WrongCode
                    | SignInResult::Locked
                    | SignInResult::Banned
                    | SignInResult::EmailNotVerified => failed += c.get(),
                    _ => {}
                }
            }
        }
        (ok, failed)
    }

    pub fn sign_in(&self, method: SignInMethod, result: SignInResult) {
        self.sign_ins
            .get_or_create(&SignInLabels { method, result })
            .inc();
    }

    pub fn sign_up(&self, method: SignUpMethod) {
        self.sign_ups.get_or_create(&SignUpLabels { method }).inc();
    }

    pub fn cache_lookup(&self, result: CacheResult) {
        self.session_cache
            .get_or_create(&CacheLabels { result })
            .inc();
    }

    pub fn mail(&self, template: &'static str, result: MailResult) {
        self.mail
            .get_or_create(&MailLabels { template, result })
            .inc();
    }

    pub fn request(&self, method: &str, route: &str, status: u16, took: Duration) {
        self.http_duration
            .get_or_create(&HttpLabels {
                http_request_method: method.to_owned(),
                http_route: route.to_owned(),
                http_response_status_class: StatusClass::of(status),
            })
            .observe(took.as_secs_f64());
    }

    pub fn rate_limited(&self, route: &str) {
        self.rate_limited
            .get_or_create(&RouteLabels {
                http_route: route.to_owned(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_names_labels_and_units() {
        let m = Metrics::default().with_database(&DbMetrics::new("sqlite"), || PoolStatus {
            used: 1,
            idle: 2,
            max: 5,
        });
        m.request("GET", "/profile", 200, Duration::from_millis(3));
        m.sign_in(SignInMethod::Password, SignInResult::WrongPassword);
        m.sign_up(SignUpMethod::Password);
        let text = m.render();
        assert!(text.contains(
            r#"http_server_request_duration_seconds_count{http_request_method="GET",http_route="/profile",http_response_status_class="2xx"} 1"#
        ), "{text}");
        assert!(text.contains(
            r#"warden_sign_in_attempts_total{method="password",result="wrong_password"} 1"#
        ));
        assert!(text.contains(r#"warden_sign_ups_total{method="password"} 1"#));
        assert!(text.contains(r#"db_client_connection_count{db_client_connection_state="idle"} 2"#));
        assert!(text.contains(r#"warden_build_info{version=""#));
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[test]
    fn status_classes() {
        assert_eq!(StatusClass::of(204), StatusClass::Success);
        assert_eq!(StatusClass::of(404), StatusClass::ClientError);
        assert_eq!(StatusClass::of(503), StatusClass::ServerError);
    }
}
