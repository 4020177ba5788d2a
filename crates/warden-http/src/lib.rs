//! Warden's HTTP layer: the axum router, handlers, the [`AuthUser`]
//! extractor and the OpenAPI document. Only this crate knows about status
//! codes, headers and cookies.
//!
//! Embedding Warden in your own axum app:
//!
//! ```ignore
//! use axum::{extract::FromRef, routing::get, Router};
//! use warden_http::{AppState, AuthUser};
//!
//! async fn whoami(user: AuthUser) -> String {
//!     format!("hello {}", user.user.email)
//! }
//!
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .with_state(state.clone())
//!     .merge(warden_http::router(state));
//! ```

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Json, Router};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use warden_core::Warden;

use crate::route_list::{route, RouteSink};

pub mod admin_query;
pub mod betterauth;
pub mod cookies;
pub mod cors;
mod error;
mod extract;
#[doc(hidden)]
pub mod fuzzing;
mod middleware;
pub mod origin;
pub mod passwordless;
pub mod ratelimit;
mod route_list;
pub mod routes;
#[cfg(feature = "social")]
pub mod social;
mod time;

pub use betterauth::BetterAuthSettings;
pub use cookies::{CookieSettings, SigningKey};
pub use cors::{CorsConfigError, CorsSettings, OriginPattern};
pub use error::{ApiError, ErrCode};
pub use extract::{ApiJson, AuthUser, ClientMeta};
pub use origin::TrustedOrigins;
pub use ratelimit::{ClientIpSettings, RateLimitSettings, RateRule};
pub use routes::admin::{AdminActor, TrustedActor};

/// HTTP-level settings.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    pub cors: CorsSettings,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// How the client address is found (trusted proxies).
    pub client_ip: ClientIpSettings,
    /// Rate limits per client address and path; `None`: off.
    pub rate_limit: Option<RateLimitSettings>,
    /// Session cookie name, attributes and signing key.
    pub cookies: CookieSettings,
    /// Origins allowed to send cookie-authenticated state changes and to be
    /// redirect targets.
    pub trusted_origins: TrustedOrigins,
    /// The BetterAuth-compatible API, if mounted.
    pub betterauth: Option<BetterAuthSettings>,
    /// Whether users may delete their own account (`POST /api/auth/delete-user`).
    pub allow_delete_user: bool,
    /// The server's public URL (`base_url`), for links in emails.
    pub public_url: String,
    /// `GET /readyz` answers 503 if the database has not answered within
    /// this (so that an orchestrator's probe sees a 503, not a hang).
    pub ready_timeout: std::time::Duration,
    /// Social sign-in providers.
    #[cfg(feature = "social")]
    pub social: social::SocialSettings,
    /// Who may read `GET /metrics` on this router.
    pub metrics: MetricsAccess,
}

/// Who may read `GET /metrics` on the API's router.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MetricsAccess {
    /// Not served here (production's default: serve them on a listener of
    /// their own with [`metrics_router`], or require a token).
    #[default]
    Off,
    /// Anyone (development's default).
    Public,
    /// Requests with `Authorization: Bearer <token>`; this is the token's
    /// SHA-256, compared in constant time.
    Bearer([u8; 32]),
}

impl MetricsAccess {
    /// Access with this bearer token.
    pub fn bearer(token: &str) -> Self {
        use sha2::Digest;
        MetricsAccess::Bearer(sha2::Sha256::digest(token.as_bytes()).into())
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            cors: CorsSettings::default(),
            body_limit: 64 * 1024,
            client_ip: ClientIpSettings::default(),
            rate_limit: None,
            cookies: CookieSettings::default(),
            trusted_origins: TrustedOrigins::new("http://localhost:4000", &[])
                .expect("valid default origin"),
            betterauth: Some(BetterAuthSettings::default()),
            allow_delete_user: false,
            public_url: "http://localhost:4000".into(),
            ready_timeout: std::time::Duration::from_millis(500),
            #[cfg(feature = "social")]
            social: social::SocialSettings::default(),
            metrics: MetricsAccess::Off,
        }
    }
}

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub warden: Arc<Warden>,
    pub settings: Arc<HttpSettings>,
    /// Recent traces, when the in-process store is on (the dashboard
    /// reads them).
    pub traces: Option<warden_telemetry::TraceStore>,
}

impl AppState {
    pub fn new(warden: Arc<Warden>, settings: HttpSettings) -> Self {
        AppState {
            warden,
            settings: Arc::new(settings),
            traces: None,
        }
    }

    /// With the in-process trace store that the process's subscriber
    /// records into.
    pub fn with_traces(mut self, traces: Option<warden_telemetry::TraceStore>) -> Self {
        self.traces = traces;
        self
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warden",
        description = "Authentication server: sign-up, sign-in, sessions and profiles.",
        license(name = "Apache-2.0")
    ),
    servers((url = "http://localhost:4000", description = "Local development")),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Sign-up, sign-in and sign-out"),
        (name = "profile", description = "The signed-in user's profile"),
        (name = "sessions", description = "The signed-in user's sessions"),
        (name = "social", description = "Sign-in with Google, GitHub, Discord or any OpenID Connect provider"),
        (name = "passkey", description = "Passkeys (WebAuthn): register, sign in without a password, list, rename and delete"),
        (name = "two-factor", description = "TOTP two-factor authentication with backup codes and trusted devices"),
        (name = "admin", description = "Administration: users, roles, bans, sessions, impersonation and the audit trail (needs admin permissions)"),
        (name = "betterauth", description = "BetterAuth-compatible API (`/api/auth` by default), for BetterAuth's client library. Errors are `{code, message}`."),
        (name = "health", description = "Liveness and readiness"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut OpenApiDoc) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "warden.session_token",
                "The signed session cookie (name depends on session.cookie_prefix; __Secure- prefixed over https)",
            ))),
        );
    }
}

/// The tutorial API's routes (and social sign-in's), in one list for both
/// builders (see `route_list.rs`).
fn tutorial_routes<R: RouteSink>(router: R) -> R {
    use routes::{auth, email, health, password, passwordless, profile, sessions, two_factor};
    let router = router
        .add(route!(auth::sign_up))
        .add(route!(auth::sign_in))
        .add(route!(auth::sign_out))
        .add(route!(password::request_password_reset))
        .add(route!(password::reset_password))
        .add(route!(email::send_verification_email))
        .add(route!(email::verify_email))
        .add(route!(email::change_email))
        .add(route!(profile::get_profile, profile::update_profile))
        .add(route!(sessions::list_sessions))
        .add(route!(sessions::revoke_session))
        .add(route!(two_factor::enable))
        .add(route!(two_factor::confirm))
        .add(route!(two_factor::get_totp_uri))
        .add(route!(two_factor::disable))
        .add(route!(two_factor::generate_backup_codes))
        .add(route!(two_factor::verify_totp))
        .add(route!(two_factor::verify_backup_code))
        .add(route!(two_factor::enable_otp))
        .add(route!(two_factor::send_otp))
        .add(route!(two_factor::verify_otp))
        .add(route!(passwordless::magic_link))
        .add(route!(passwordless::magic_link_verify))
        .add(route!(passwordless::email_otp_send))
        .add(route!(passwordless::email_otp_sign_in))
        .add(route!(passwordless::email_otp_verify_email))
        .add(route!(passwordless::email_otp_check))
        .add(route!(passwordless::email_otp_reset_password))
        .add(route!(passwordless::email_otp_request_email_change))
        .add(route!(passwordless::email_otp_change_email))
        .add(route!(health::healthz))
        .add(route!(health::readyz));
    let router = routes::admin::routes(router);
    #[cfg(feature = "social")]
    let router = social::api::routes(router);
    #[cfg(feature = "passkey")]
    let router = routes::passkey::routes(router);
    router
}

/// The routes served: cheap to build, no OpenAPI document.
fn api_router(betterauth: Option<&BetterAuthSettings>) -> Router<AppState> {
    let router = tutorial_routes(Router::new());
    match betterauth {
        Some(b) => router.nest(&b.base_path, betterauth::routes(Router::new())),
        None => router,
    }
}

/// The OpenAPI document of the same routes (a few milliseconds of schema
/// generation: built on demand, never at start-up).
fn api_doc(betterauth: Option<&BetterAuthSettings>) -> OpenApiDoc {
    let router = tutorial_routes(OpenApiRouter::with_openapi(ApiDoc::openapi()));
    let (_, mut doc) = match betterauth {
        Some(b) => router.nest(&b.base_path, betterauth::routes(OpenApiRouter::new())),
        None => router,
    }
    .split_for_parts();
    add_common_responses(&mut doc, betterauth.map(|b| b.base_path.as_str()));
    doc
}

/// Answers any operation can give besides its own, added to every
/// operation of the document in the error format of its API: 429 (rate
/// limits), 431/414 (oversized headers or URI), and for state-changing
/// operations 403 (origin check on cookie requests); 415 for BetterAuth
/// bodies in another media type.
fn add_common_responses(doc: &mut OpenApiDoc, betterauth_base: Option<&str>) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder};
    let error = |schema: &str, description: &str, retry: bool| {
        let mut r = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(schema)))
                .build(),
        );
        if retry {
            r = r.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::Integer),
                    )
                    .description(Some("Seconds until the limit resets"))
                    .build(),
            );
        }
        r.build()
    };
    let add = |op: &mut Operation, code: &str, response: &utoipa::openapi::Response| {
        op.responses
            .responses
            .entry(code.to_owned())
            .or_insert_with(|| response.clone().into());
    };
    for (path, item) in doc.paths.paths.iter_mut() {
        let ba = betterauth_base.is_some_and(|b| path.starts_with(&format!("{b}/")));
        let schema = if ba { "BaError" } else { "ApiError" };
        let limited = error(
            schema,
            "Too many requests (rate limit); see Retry-After",
            true,
        );
        let origin = error(
            schema,
            "A request with cookies from a missing or untrusted Origin (INVALID_ORIGIN, MISSING_OR_NULL_ORIGIN)",
            false,
        );
        let too_big = error(schema, "Request headers too large", false);
        let long_uri = error(schema, "Request URI too long", false);
        let media = error(schema, "Unsupported body media type: send JSON", false);
        let ops = [
            (item.get.as_mut(), false),
            (item.post.as_mut(), true),
            (item.put.as_mut(), true),
            (item.delete.as_mut(), true),
            (item.patch.as_mut(), true),
        ];
        for (op, changes_state) in ops {
            let Some(op) = op else { continue };
            add(op, "429", &limited);
            add(op, "431", &too_big);
            add(op, "414", &long_uri);
            if changes_state {
                add(op, "403", &origin);
                if ba {
                    add(op, "415", &media);
                }
            }
        }
    }
}

/// The OpenAPI 3.1 document of every route, with the BetterAuth API at its
/// default base path and the default password policy.
pub fn openapi() -> serde_json::Value {
    openapi_document(
        Some(&BetterAuthSettings::default()),
        &warden_core::PasswordPolicy::default(),
    )
}

/// The OpenAPI document of the routes served with these settings, stating
/// the configured password lengths (the schemas' `minLength`/`maxLength`
/// for passwords are those of `password`, not the defaults written in the
/// source): the document served at `/openapi.json`, and the one `warden gen
/// client` generates from.
pub fn openapi_document(
    betterauth: Option<&BetterAuthSettings>,
    password: &warden_core::PasswordPolicy,
) -> serde_json::Value {
    let mut doc = serde_json::to_value(api_doc(betterauth)).unwrap_or(serde_json::Value::Null);
    state_password_policy(&mut doc, password);
    require_answered_nulls(&mut doc);
    state_object_rules(&mut doc);
    doc
}

/// Rules on whole objects that utoipa's derive has no attribute for.
fn state_object_rules(doc: &mut serde_json::Value) {
    use serde_json::json;
    let rules = [
        // `POST /auth/unlink-account`: "give providerId or accountId".
        (
            "UnlinkRequest",
            "anyOf",
            json!([{"required": ["providerId"]}, {"required": ["accountId"]}]),
        ),
    ];
    for (schema, key, rule) in rules {
        if let Some(s) = doc
            .pointer_mut(&format!("/components/schemas/{schema}"))
            .and_then(serde_json::Value::as_object_mut)
        {
            s.insert(key.to_owned(), rule);
        }
    }
    // `POST /admin/has-permission`: at least one resource, each a list of
    // action names.
    if let Some(p) =
        doc.pointer_mut("/components/schemas/HasPermissionRequest/properties/permissions")
    {
        *p = json!({
            "type": "object",
            "description": p.get("description").cloned().unwrap_or_default(),
            "minProperties": 1,
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        });
    }
}

/// utoipa documents every `Option` field as optional, but an answer always
/// carries its `Option` fields (as `null` when empty; the two fields that
/// are left out instead say so with `required = false` and are not
/// nullable). So in a schema that only answers use, a nullable property is
/// required: clients then read `session: SessionInfo | null`, not
/// `session?: ...`. A schema that a request uses as well keeps its
/// optional fields.
fn require_answered_nulls(doc: &mut serde_json::Value) {
    use serde_json::Value;
    fn refs(v: &Value, into: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    if let Some(n) = r.strip_prefix("#/components/schemas/") {
                        into.insert(n.to_owned());
                    }
                }
                o.values().for_each(|v| refs(v, into));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, into)),
            _ => {}
        }
    }
    // Schemas a request reaches (directly, or through other schemas).
    let mut in_requests = std::collections::BTreeSet::new();
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        for item in paths.values().filter_map(Value::as_object) {
            for op in item.values().filter_map(Value::as_object) {
                for key in ["requestBody", "parameters"] {
                    if let Some(v) = op.get(key) {
                        refs(v, &mut in_requests);
                    }
                }
            }
        }
    }
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    loop {
        let before = in_requests.len();
        for name in in_requests.clone() {
            if let Some(s) = schemas.get(&name) {
                refs(s, &mut in_requests);
            }
        }
        if in_requests.len() == before {
            break;
        }
    }
    let nullable = |p: &Value| {
        let typed = match p.get("type") {
            Some(Value::Array(ts)) => ts.iter().any(|t| t == "null"),
            _ => false,
        };
        let union = ["oneOf", "anyOf"].iter().any(|k| {
            p.get(*k)
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|s| s.get("type").is_some_and(|t| t == "null")))
        });
        typed || union
    };
    for (name, schema) in schemas.iter_mut() {
        if in_requests.contains(name) {
            continue;
        }
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            continue;
        };
        let add: Vec<String> = props
            .iter()
            .filter(|(_, p)| nullable(p))
            .map(|(k, _)| k.clone())
            .collect();
        if add.is_empty() {
            continue;
        }
        let required = schema
            .as_object_mut()
            .expect("has properties")
            .entry("required")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(list) = required.as_array_mut() {
            for k in add {
                if !list.iter().any(|v| v == &Value::String(k.clone())) {
                    list.push(Value::String(k));
                }
            }
        }
    }
}

/// The source marks a new password `minLength: 8, maxLength: 128` and a
/// password offered at sign-in (or to confirm) `minLength: 1, maxLength:
/// 128`: the defaults. Here they become the configured lengths.
fn state_password_policy(doc: &mut serde_json::Value, password: &warden_core::PasswordPolicy) {
    use serde_json::Value;
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in schemas.values_mut() {
        let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, prop) in props.iter_mut() {
            if !name.to_ascii_lowercase().contains("password") {
                continue;
            }
            let (min, max) = (
                prop.get("minLength").and_then(Value::as_u64),
                prop.get("maxLength").and_then(Value::as_u64),
            );
            match (min, max) {
                (Some(8), Some(128)) => {
                    prop["minLength"] = password.min_length.into();
                    prop["maxLength"] = password.max_length.into();
                }
                (Some(1), Some(128)) => prop["maxLength"] = password.max_length.into(),
                _ => {}
            }
        }
    }
}

/// The complete Warden router, with CORS, body limit, request ids and the
/// access log. Building it costs little: the OpenAPI document is generated
/// when `/openapi.json` is first requested, on a blocking thread.
pub fn router(state: AppState) -> Router {
    let api = api_router(state.settings.betterauth.as_ref());
    let doc: Arc<tokio::sync::OnceCell<Arc<serde_json::Value>>> = Arc::default();
    let betterauth = state.settings.betterauth.clone();
    let password = state.warden.settings().password.clone();
    let settings = state.settings.clone();
    let origin_state = state.clone();
    let rate_state = state.clone();
    api.route(
        "/openapi.json",
        axum::routing::get(move || {
            let doc = doc.clone();
            let betterauth = betterauth.clone();
            let password = password.clone();
            async move {
                let doc = doc
                    .get_or_try_init(|| async move {
                        tokio::task::spawn_blocking(move || {
                            Arc::new(openapi_document(betterauth.as_ref(), &password))
                        })
                        .await
                    })
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "building the OpenAPI document failed");
                        ApiError::internal()
                    })?;
                Ok::<_, ApiError>(Json(doc.as_ref().clone()))
            }
        }),
    )
    .route("/metrics", axum::routing::get(metrics))
    .fallback(not_found)
    .method_not_allowed_fallback(method_not_allowed)
    .with_state(state.clone())
    .layer(axum::middleware::from_fn(extract::pending_cookies))
    .layer(axum::middleware::from_fn_with_state(
        origin_state,
        origin::origin_check,
    ))
    .layer(axum::middleware::from_fn_with_state(
        rate_state,
        ratelimit::rate_limit,
    ))
    .layer(DefaultBodyLimit::max(settings.body_limit))
    .layer(settings.cors.layer())
    .layer(axum::middleware::from_fn(middleware::limits_and_headers))
    .layer(axum::middleware::from_fn_with_state(
        state,
        middleware::observe,
    ))
}

/// A router serving only `GET /metrics`, to anyone who reaches it: for a
/// listener of its own (`[telemetry] metrics_listen`), kept off the public
/// network.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(render_metrics))
        .fallback(not_found)
        .with_state(state)
}

async fn render_metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> axum::response::Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            warden_telemetry::metrics::CONTENT_TYPE,
        )],
        state.warden.metrics().render(),
    )
        .into_response()
}

/// `GET /metrics` on the API's router, as [`MetricsAccess`] allows.
async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    match &state.settings.metrics {
        MetricsAccess::Off => not_found().await.into_response(),
        MetricsAccess::Public => render_metrics(axum::extract::State(state)).await,
        MetricsAccess::Bearer(want) => {
            use sha2::Digest;
            use subtle::ConstantTimeEq;
            let given = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| sha2::Sha256::digest(t.trim().as_bytes()));
            match given {
                Some(g) if bool::from(g.as_slice().ct_eq(want)) => {
                    render_metrics(axum::extract::State(state)).await
                }
                _ => {
                    let mut r = ApiError::new(
                        ErrCode::Unauthenticated,
                        "metrics need Authorization: Bearer <telemetry.metrics_token>",
                    )
                    .into_response();
                    r.headers_mut().insert(
                        axum::http::header::WWW_AUTHENTICATE,
                        axum::http::HeaderValue::from_static("Bearer"),
                    );
                    r
                }
            }
        }
    }
}

async fn not_found() -> impl IntoResponse {
    ApiError::new(ErrCode::NotFound, "endpoint not found")
}

async fn method_not_allowed() -> impl IntoResponse {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(ApiError::new(
            ErrCode::InvalidArgument,
            "method not allowed for this endpoint",
        )),
    )
}

#[cfg(test)]
mod schema_names {
    /// utoipa names a schema after its Rust type, and two types of one name
    /// in different modules silently become one component of the OpenAPI
    /// document (one endpoint then documents the other's body). Every
    /// `ToSchema` type's name must be unique in the crate.
    #[test]
    fn schema_type_names_are_unique() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut seen = std::collections::BTreeMap::<String, String>::new();
        let mut clashes = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                if !(l.trim_start().starts_with("#[derive(") && l.contains("ToSchema")) {
                    continue;
                }
                let Some(decl) = lines[i + 1..]
                    .iter()
                    .take(8)
                    .find(|l| l.starts_with("pub struct ") || l.starts_with("pub enum "))
                else {
                    continue;
                };
                let name = decl
                    .split_whitespace()
                    .nth(2)
                    .unwrap()
                    .trim_end_matches(['{', ';', '('])
                    .split('<')
                    .next()
                    .unwrap()
                    .to_owned();
                let here = f.display().to_string();
                if let Some(prev) = seen.insert(name.clone(), here.clone()) {
                    clashes.push(format!("{name}: {prev} and {here}"));
                }
            }
        }
        assert!(clashes.is_empty(), "schema names used twice: {clashes:#?}");
        assert!(seen.len() > 50, "found only {} schema types", seen.len());
    }
}
