//! `spawn_app()`: a Warden server on a random port against a fresh database.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::{MySqlPool, PgPool, SqlitePool};
use tokio::sync::oneshot;
use warden::config::{Config, LogConfig, LogFormat};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

/// Runs each listed generic test against every backend. The PostgreSQL
/// tests run only when WARDEN_TEST_DATABASE_URL is set, the MySQL/MariaDB
/// ones only when WARDEN_TEST_MYSQL_URL is (see build.rs).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(warden_pg_tests),
                    ignore = "PostgreSQL suite not run: set WARDEN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
                )]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[cfg_attr(
                    not(warden_mysql_tests),
                    ignore = "MySQL suite not run: set WARDEN_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test"
                )]
                async fn $name() {
                    super::$name($crate::helpers::Backend::MySql).await
                }
            )*
        }
    };
}

/// Every log line of every test in this binary, as JSON lines.
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Every password, token and cookie value the helpers handled: no log line
/// of the whole suite may contain one.
/// Each kept with its searcher, built once.
static SECRETS: Mutex<Vec<(String, memchr::memmem::Finder<'static>)>> = Mutex::new(Vec::new());
/// Log lines that did.
static LEAKS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Held by tests that measure time or load the machine heavily, so that
/// they do not run at the same time as each other.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Registers a value that must never appear in a log line.
pub fn remember_secret(secret: &str) {
    if secret.len() >= 8 {
        let finder = memchr::memmem::Finder::new(secret.as_bytes()).into_owned();
        SECRETS.lock().unwrap().push((secret.to_owned(), finder));
    }
}

/// Panics if `text` (a page, an answer) holds any registered secret.
pub fn assert_no_secret(text: &str) {
    for (secret, finder) in SECRETS.lock().unwrap().iter() {
        assert!(
            finder.find(text.as_bytes()).is_none(),
            "secret {:?}... shown: {text}",
            &secret[..4]
        );
    }
}

/// Log lines (so far, in this test binary) that contained a registered secret.
pub fn leaked_secrets() -> Vec<String> {
    LEAKS.lock().unwrap().clone()
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Every line against every secret: memchr's SIMD search (built
        // optimised, see Cargo.toml), not the debug build's `str::contains`,
        // which was most of the suite's time.
        for (secret, finder) in SECRETS.lock().unwrap().iter() {
            if finder.find(buf).is_some() {
                let text = String::from_utf8_lossy(buf);
                LEAKS
                    .lock()
                    .unwrap()
                    .push(format!("secret {:?}... in log: {text}", &secret[..4]));
            }
        }
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        // Capture everything, debug included, so the secrecy test is strict.
        std::env::set_var(
            "RUST_LOG",
            "debug,sqlx=debug,hyper=info,h2=info,reqwest=info",
        );
        // The whole binary shares one subscriber: logs captured, traces
        // kept in memory and exported to the in-test OTLP receiver.
        let mut config = Config {
            log: LogConfig {
                format: LogFormat::Json,
                level: "debug".into(),
            },
            ..Config::default()
        };
        config.telemetry.keep_traces = Some(20_000);
        config.telemetry.keep_bytes = Some(256 << 20);
        // Parallel tests make far more than the default 200 traces a second.
        config.telemetry.max_traces_per_second = Some(0);
        config.telemetry.otlp_endpoint = Some(crate::otlp_receiver::receiver().url.clone());
        config.telemetry.sample_ratio = Some(1.0);
        config.telemetry.service_name = Some("warden-tests".into());
        warden::telemetry::init_with_writer(&config, || LogWriter).expect("telemetry starts");
    });
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

pub fn pg_admin_url() -> String {
    std::env::var("WARDEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn mysql_admin_url() -> String {
    std::env::var("WARDEN_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
}

/// A pool on a MySQL database with the session settings Warden's own use
/// (double-quoted identifiers, UTC), so that the tests' SQL is the same.
pub async fn mysql_pool(url: &str) -> MySqlPool {
    use sqlx::Executor;
    sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES,NO_BACKSLASH_ESCAPES')")
                    .await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .expect("MySQL at WARDEN_TEST_MYSQL_URL must be reachable")
}

/// Drops a test's MySQL database (from any runtime: a thread of its own).
pub fn drop_mysql_database(name: &str) {
    let name = name.to_owned();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if let Ok(admin) = MySqlPool::connect(&mysql_admin_url()).await {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS `{name}`"))
                    .execute(&admin)
                    .await;
                // The dashboard console's account for that database (see
                // warden_store::explore), at whatever host it was made for.
                let user = format!(
                    "warden_console_{}",
                    &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(name.as_bytes()))[..16]
                );
                let hosts: Vec<String> =
                    sqlx::query_scalar("SELECT CAST(Host AS CHAR) FROM mysql.user WHERE User = ?")
                        .bind(&user)
                        .fetch_all(&admin)
                        .await
                        .unwrap_or_default();
                for host in hosts {
                    let _ = sqlx::query(&format!(
                        "DROP USER IF EXISTS '{user}'@'{}'",
                        host.replace('\'', "''")
                    ))
                    .execute(&admin)
                    .await;
                }
                admin.close().await;
            }
        });
    })
    .join();
}

/// A test database, dropped when the app is dropped.
pub enum TestDb {
    Sqlite {
        _dir: tempfile::TempDir,
        pool: SqlitePool,
    },
    Postgres {
        name: String,
        pool: PgPool,
    },
    MySql {
        name: String,
        pool: MySqlPool,
    },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::MySql { name, .. } = self {
            drop_mysql_database(name);
        }
        if let TestDb::Postgres { name, .. } = self {
            let name = name.clone();
            // Drop runs inside the test's runtime: use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(admin) = PgPool::connect(&pg_admin_url()).await {
                        let _ = sqlx::query(&format!(
                            r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                        ))
                        .execute(&admin)
                        .await;
                        // The dashboard console's role for that database
                        // (see warden_store::explore), if one was made.
                        let role = format!(
                            "warden_console_{}",
                            &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(name.as_bytes()))
                                [..16]
                        );
                        let _ = sqlx::query(&format!(r#"DROP ROLE IF EXISTS "{role}""#))
                            .execute(&admin)
                            .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub addr: String,
    /// The dashboard's URL (`http://127.0.0.1:<port>`), when it is served.
    pub dashboard: Option<String>,
    /// The configured public URL (`base_url`), whose origin is trusted.
    pub base_url: String,
    database_url: String,
    pub client: Client,
    pub db: TestDb,
    pub backend: Backend,
    /// The server's clock: it moves only when a test advances it.
    pub clock: warden_core::MockClock,
    secrets: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// A configuration for tests: port 0, cheap argon2, temporary secrets.
pub fn test_config(backend: Backend) -> (Config, tempfile::TempDir, TestDbSpec) {
    let secrets = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        secrets_file: secrets.path().join("secrets.json"),
        ..Config::default()
    };
    config.password.argon2.memory_kib = 1024;
    config.password.argon2.iterations = 1;
    config.database.max_connections = 8;
    // Each test's own dashboard, never the default 9400.
    config.dashboard.listen = Some("127.0.0.1:0".parse().unwrap());
    let spec = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            config.database_url = format!("sqlite:{}", dir.path().join("warden.db").display());
            TestDbSpec::Sqlite(dir)
        }
        Backend::Postgres => {
            let name = format!(
                "warden_test_{}",
                warden_core::token::random_string(12).to_lowercase()
            );
            let admin = pg_admin_url();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
            config.database_url = format!("{base}/{name}");
            TestDbSpec::Postgres(name)
        }
        Backend::MySql => {
            let name = format!(
                "warden_test_{}",
                warden_core::token::random_string(12).to_lowercase()
            );
            let admin = mysql_admin_url();
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
            config.database_url = format!("{base}/{name}");
            TestDbSpec::MySql(name)
        }
    };
    (config, secrets, spec)
}

pub enum TestDbSpec {
    Sqlite(tempfile::TempDir),
    Postgres(String),
    MySql(String),
}

impl TestDbSpec {
    /// Creates the PostgreSQL or MySQL database (a SQLite file creates
    /// itself).
    pub async fn create(&self) {
        if let TestDbSpec::MySql(name) = self {
            let admin = MySqlPool::connect(&mysql_admin_url())
                .await
                .expect("MySQL at WARDEN_TEST_MYSQL_URL must be reachable");
            sqlx::query(&format!("CREATE DATABASE `{name}`"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
        if let TestDbSpec::Postgres(name) = self {
            let admin = PgPool::connect(&pg_admin_url())
                .await
                .expect("PostgreSQL at WARDEN_TEST_DATABASE_URL must be reachable");
            sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }

    /// The test's own connection to the database at `url` (migrated by the
    /// server); it is dropped with the returned `TestDb`.
    pub async fn open(self, url: &str) -> TestDb {
        match self {
            TestDbSpec::Sqlite(dir) => TestDb::Sqlite {
                pool: SqlitePool::connect(url).await.unwrap(),
                _dir: dir,
            },
            TestDbSpec::Postgres(name) => TestDb::Postgres {
                pool: PgPool::connect(url).await.unwrap(),
                name,
            },
            TestDbSpec::MySql(name) => TestDb::MySql {
                pool: mysql_pool(url).await,
                name,
            },
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn(backend, tweak, true).await
}

/// A server whose clock stands still until the test moves `app.clock`.
pub async fn spawn_app_with_clock(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn(backend, tweak, false).await
}

async fn spawn(backend: Backend, tweak: impl FnOnce(&mut Config), real_clock: bool) -> TestApp {
    init_logs();
    let (mut config, secrets, spec) = test_config(backend);
    tweak(&mut config);
    spec.create().await;
    let clock = warden_core::MockClock::new();
    let server = if real_clock {
        warden::Server::build(&config).await
    } else {
        warden::Server::build_with_clock(&config, std::sync::Arc::new(clock.clone())).await
    }
    .expect("server starts");
    let addr = format!("http://{}", server.local_addr());
    let dashboard = server.dashboard_addr().map(|a| format!("http://{a}"));
    let db = spec.open(&config.database_url).await;
    let (tx, rx) = oneshot::channel();
    let handle = tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    TestApp {
        addr,
        dashboard,
        base_url: config.base_url.clone(),
        database_url: config.database_url.clone(),
        clock,
        client: Client::builder()
            .user_agent("warden-tests/1.0")
            .build()
            .unwrap(),
        db,
        backend,
        secrets,
        shutdown: Some(tx),
        server: Some(handle),
    }
}

/// A signed-up user.
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub name: String,
    pub id: String,
    pub token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn put(&self, path: &str) -> RequestBuilder {
        self.client.put(self.url(path))
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path))
    }

    /// GET with a bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.get(path)
            .header("authorization", bearer(token))
            .send()
            .await
            .unwrap()
    }

    /// PUT a JSON body with a bearer token.
    pub async fn put_json_as(&self, path: &str, token: &str, body: &Value) -> Response {
        self.put(path)
            .header("authorization", bearer(token))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// DELETE with a bearer token.
    pub async fn delete_as(&self, path: &str, token: &str) -> Response {
        self.delete(path)
            .header("authorization", bearer(token))
            .send()
            .await
            .unwrap()
    }

    /// GET with a bearer token, expecting a JSON body.
    pub async fn get_json_as(&self, path: &str, token: &str) -> Value {
        self.get_as(path, token).await.json().await.unwrap()
    }

    pub async fn sign_up_as(&self, email: &str, password: &str, name: &str) -> Response {
        remember_secret(password);
        self.post("/auth/signup")
            .json(&json!({"email": email, "password": password, "name": name}))
            .send()
            .await
            .unwrap()
    }

    pub async fn sign_in_as(&self, email: &str, password: &str) -> Response {
        self.post("/auth/signin")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Signs up a fresh random user and returns it with its token.
    pub async fn new_user(&self) -> TestUser {
        let email = format!(
            "user-{}@example.com",
            warden_core::token::random_string(8).to_lowercase()
        );
        let password = "SecurePass123!".to_string();
        let name = "John Doe".to_string();
        let res = self.sign_up_as(&email, &password, &name).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        remember_secret(body["session"]["token"].as_str().unwrap());
        TestUser {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            token: body["session"]["token"].as_str().unwrap().to_owned(),
            email,
            password,
            name,
        }
    }

    /// Signs up a fresh user and gives it the `admin` role (in the database,
    /// before its session was ever used, so no cache holds the old role).
    pub async fn new_admin(&self) -> TestUser {
        let u = self.new_user().await;
        self.set_role_in_db(&u.id, "admin").await;
        u
    }

    /// Sets a user's role directly in the database.
    pub async fn set_role_in_db(&self, user_id: &str, role: &str) {
        let n = self
            .exec(
                r#"UPDATE "user" SET "role" = ? WHERE "id" = ?"#,
                &[role, user_id],
            )
            .await;
        assert_eq!(n, 1, "user {user_id} exists");
    }

    /// Runs a statement written with `?` placeholders on either backend.
    pub async fn exec(&self, sql: &str, args: &[&str]) -> u64 {
        match &self.db {
            TestDb::Sqlite { pool, .. } => {
                let mut q = sqlx::query(sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.execute(pool).await.unwrap().rows_affected()
            }
            TestDb::Postgres { pool, .. } => {
                let sql = numbered(sql);
                let mut q = sqlx::query(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.execute(pool).await.unwrap().rows_affected()
            }
            TestDb::MySql { pool, .. } => {
                let sql = mysql_sql(sql);
                let mut q = sqlx::query(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.execute(pool).await.unwrap().rows_affected()
            }
        }
    }

    /// A text column of the first row, or None.
    pub async fn fetch_text(&self, sql: &str, args: &[&str]) -> Option<String> {
        match &self.db {
            TestDb::Sqlite { pool, .. } => {
                let mut q = sqlx::query_scalar::<_, String>(sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_optional(pool).await.unwrap()
            }
            TestDb::Postgres { pool, .. } => {
                let sql = numbered(sql);
                let mut q = sqlx::query_scalar::<_, String>(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_optional(pool).await.unwrap()
            }
            TestDb::MySql { pool, .. } => {
                let sql = mysql_sql(sql);
                let mut q = sqlx::query_scalar::<_, String>(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_optional(pool).await.unwrap()
            }
        }
    }

    pub async fn count(&self, sql: &str, args: &[&str]) -> i64 {
        match &self.db {
            TestDb::Sqlite { pool, .. } => {
                let mut q = sqlx::query_scalar::<_, i64>(sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_one(pool).await.unwrap()
            }
            TestDb::Postgres { pool, .. } => {
                let sql = numbered(sql);
                let mut q = sqlx::query_scalar::<_, i64>(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_one(pool).await.unwrap()
            }
            TestDb::MySql { pool, .. } => {
                let sql = mysql_sql(sql);
                let mut q = sqlx::query_scalar::<_, i64>(&sql);
                for a in args {
                    q = q.bind(*a);
                }
                q.fetch_one(pool).await.unwrap()
            }
        }
    }

    /// A timestamp literal for this backend, `offset_secs` from now.
    pub fn ts_from_now(&self, offset_secs: i64) -> String {
        let t = chrono::Utc::now() + chrono::TimeDelta::seconds(offset_secs);
        match self.backend {
            Backend::Sqlite => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            Backend::Postgres | Backend::MySql => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        }
    }

    /// SQL cast of a text parameter to this backend's timestamp type.
    pub fn ts_param(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "?",
            Backend::Postgres => "CAST(? AS TIMESTAMP)",
            Backend::MySql => "CAST(? AS DATETIME(3))",
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let leaks = leaked_secrets();
        if !leaks.is_empty() && !std::thread::panicking() {
            panic!("secrets in the log:\n{}", leaks.join("\n"));
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.abort();
        }
    }
}

/// The tests' SQL for MySQL: `CAST(x AS TEXT)` is `CAST(x AS CHAR)` there
/// (double quotes and `?` work as they are, see `mysql_pool`).
fn mysql_sql(sql: &str) -> String {
    sql.replace(" AS TEXT)", " AS CHAR)")
}

/// `?` placeholders to PostgreSQL's `$1, $2, ...`.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Asserts an Encore-style error response and returns its message.
pub async fn assert_error(res: Response, status: u16, code: &str) -> String {
    let got = res.status().as_u16();
    let body: Value = res.json().await.expect("error bodies are JSON");
    assert_eq!(got, status, "unexpected status, body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert!(body["details"].is_null(), "body: {body}");
    body["message"]
        .as_str()
        .expect("message is a string")
        .to_owned()
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Asserts a BetterAuth-style error (`{code, message}`) and returns its message.
pub async fn assert_ba_error(res: Response, status: u16, code: &str) -> String {
    let got = res.status().as_u16();
    let body: Value = res.json().await.expect("error bodies are JSON");
    assert_eq!(got, status, "unexpected status, body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    let message = body["message"].as_str().expect("message is a string");
    assert!(!message.is_empty(), "body: {body}");
    message.to_owned()
}

/// The `name=value` of the session cookie a response sets, and its
/// attributes, if it sets one.
pub fn session_set_cookie(res: &Response) -> Option<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.contains(".session_token="))
        .map(|c| {
            let (pair, attrs) = c.split_once(';').unwrap_or((c, ""));
            (pair.trim().to_owned(), attrs.trim().to_owned())
        })
}

/// A user signed up through the BetterAuth API, as a browser holds it.
pub struct BaUser {
    pub email: String,
    pub password: String,
    pub id: String,
    pub token: String,
    /// `warden.session_token=<signed>`: what a browser sends back.
    pub cookie: String,
}

impl TestApp {
    /// The URL of this app's database, for a second instance sharing it.
    pub fn database_url(&self) -> String {
        self.database_url.clone()
    }

    /// The server secret the server generated for itself (development mode).
    pub fn server_secret(&self) -> String {
        let file = std::fs::read_to_string(self.secrets.path().join("secrets.json")).unwrap();
        let map: Value = serde_json::from_str(&file).unwrap();
        map["WARDEN_SECRET"].as_str().unwrap().to_owned()
    }

    /// The origin of the server's public URL: always trusted.
    pub fn origin(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }

    /// A GET with a bearer token from a page on `origin` (CORS checks).
    pub async fn get_as_from(&self, path: &str, token: &str, origin: &str) -> Response {
        self.get(path)
            .header("origin", origin)
            .header("authorization", bearer(token))
            .send()
            .await
            .unwrap()
    }

    /// A JSON POST without credentials.
    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.post(path).json(body).send().await.unwrap()
    }

    /// How many users have this email.
    pub async fn users_with_email(&self, email: &str) -> i64 {
        self.count(r#"SELECT COUNT(*) FROM "user" WHERE "email" = ?"#, &[email])
            .await
    }

    /// A JSON POST to the BetterAuth API with a session cookie and this
    /// server's origin, as a browser on the same site sends it.
    pub async fn ba_post(&self, path: &str, cookie: &str, body: &Value) -> Response {
        self.post(path)
            .header("cookie", cookie)
            .header("origin", self.origin())
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn ba_get(&self, path: &str, cookie: &str) -> Response {
        self.get(path)
            .header("cookie", cookie)
            .send()
            .await
            .unwrap()
    }

    pub async fn ba_sign_up(&self) -> BaUser {
        let email = format!(
            "ba-{}@example.com",
            warden_core::token::random_string(8).to_lowercase()
        );
        let password = "SecurePass123!".to_string();
        let res = self
            .post("/api/auth/sign-up/email")
            .json(&serde_json::json!({"name": "Ada", "email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (cookie, _) = session_set_cookie(&res).expect("sign-up sets the session cookie");
        remember_secret(&password);
        remember_secret(cookie.split_once('=').unwrap().1);
        let body: Value = res.json().await.unwrap();
        remember_secret(body["token"].as_str().unwrap());
        BaUser {
            id: body["user"]["id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
            email,
            password,
            cookie,
        }
    }

    /// Signs in through the BetterAuth API; returns the cookie and token.
    pub async fn ba_sign_in(&self, email: &str, password: &str) -> (String, String) {
        let res = self
            .post("/api/auth/sign-in/email")
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let (cookie, _) = session_set_cookie(&res).unwrap();
        remember_secret(cookie.split_once('=').unwrap().1);
        let body: Value = res.json().await.unwrap();
        remember_secret(body["token"].as_str().unwrap());
        (cookie, body["token"].as_str().unwrap().to_owned())
    }
}

/// A port that was free a moment ago, for a server to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `warden` binary as a command in `dir`, with no WARDEN_*,
/// DATABASE_URL or RUST_LOG from the caller.
pub fn warden_command(dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_warden"));
    c.current_dir(dir);
    for (k, _) in std::env::vars() {
        if k.starts_with("WARDEN_") || k == "DATABASE_URL" || k == "RUST_LOG" {
            c.env_remove(k);
        }
    }
    c
}

/// Waits (at most 20 s) until `GET {base}/healthz` answers 200.
pub async fn wait_healthy(client: &Client, base: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
