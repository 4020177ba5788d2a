//! The `warden` binary: commands, configuration, secrets, start-up checks
//! and graceful shutdown.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{free_port, wait_healthy, warden_command as warden};

#[test]
fn migrate_creates_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let out = warden(dir.path())
        .args(["migrate", "--database-url", "sqlite:auth.db"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tables: Vec<String> = rt.block_on(async {
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite:{}", dir.path().join("auth.db").display()))
                .await
                .unwrap();
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap()
    });
    for t in ["account", "session", "user", "verification"] {
        assert!(tables.iter().any(|x| x == t), "{t} missing from {tables:?}");
    }
    // Twice is fine.
    let out = warden(dir.path())
        .args(["migrate", "--database-url", "sqlite:auth.db"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // A bad URL is a clear error, not a panic.
    let out = warden(dir.path())
        .args(["migrate", "--database-url", "mongodb://x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
    // So is a MySQL server that is not there (mysql:// is a backend now).
    let out = warden(dir.path())
        .args(["migrate", "--database-url", "mysql://root@127.0.0.1:1/x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot connect to the database"), "{err}");
}

#[test]
fn secret_set_stores_an_owner_only_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = warden(dir.path())
        .args(["secret", "set", "GOOGLE_CLIENT_SECRET"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"s3cr3t-value\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cr3t-value"));
    let path = dir.path().join(".warden/secrets.json");
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored["GOOGLE_CLIENT_SECRET"], "s3cr3t-value");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }
    let out = warden(dir.path())
        .args(["secret", "set", "bad name!"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid secret name"));
}

#[test]
fn production_refuses_a_missing_or_short_secret() {
    let dir = tempfile::tempdir().unwrap();
    let out = warden(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("WARDEN_ENV", "production")
        .env("WARDEN_MAIL__TRANSPORT", "smtp")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WARDEN_SECRET") && err.contains("openssl rand"),
        "{err}"
    );
    assert!(
        !dir.path().join("warden.db").exists(),
        "nothing is created before the checks pass"
    );

    let out = warden(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("WARDEN_ENV", "production")
        .env("WARDEN_MAIL__TRANSPORT", "smtp")
        .env("WARDEN_SECRET", "too-short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("too short") && !err.contains("too-short"),
        "{err}"
    );
}

#[test]
fn wildcard_origin_with_credentials_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        "[cors]\nallow_origins_with_credentials = [\"*\"]\n",
    )
    .unwrap();
    let out = warden(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("allow_origins_with_credentials") && err.contains("\"*\""),
        "{err}"
    );
}

#[test]
fn unknown_config_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("warden.toml"), "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = warden(dir.path()).arg("serve").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"));
}

#[test]
fn production_refuses_to_run_without_a_mail_transport() {
    let dir = tempfile::tempdir().unwrap();
    for transport in [None, Some("outbox")] {
        let mut cmd = warden(dir.path());
        cmd.arg("serve")
            .env("WARDEN_ENV", "production")
            .env("WARDEN_SECRET", "x".repeat(40));
        if let Some(t) = transport {
            cmd.env("WARDEN_MAIL__TRANSPORT", t);
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("mail.transport"),
            "{transport:?}"
        );
    }
}

#[test]
fn unknown_keys_inside_a_section_are_errors_in_env_too() {
    let dir = tempfile::tempdir().unwrap();
    let out = warden(dir.path())
        .arg("serve")
        .env("WARDEN_SESSION__EXPIRESIN", "2d")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expiresin"));
}

/// `WARDEN_LISTEN` and `DATABASE_URL` configure the server; on SIGTERM an
/// in-flight request (a slow sign-up) completes before the process exits.
#[test]
fn env_config_and_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = warden(dir.path())
        .env("WARDEN_LISTEN", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", "sqlite:env.db")
        // Slow hashing so the request is surely in flight at SIGTERM.
        .env("WARDEN_PASSWORD__ARGON2__MEMORY_KIB", "262144")
        .env("WARDEN_PASSWORD__ARGON2__ITERATIONS", "4")
        .env("WARDEN_LOG__FORMAT", "json")
        // Other tools' WARDEN_* variables are not configuration.
        .env("WARDEN_BIN", "/usr/local/bin/warden")
        .env("WARDEN_TEST_DATABASE_URL", "postgres://elsewhere/db")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        wait_healthy(&client, &base).await;
        let req = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .post(format!("{base}/auth/signup"))
                    .json(&json!({"email": "slow@example.com", "password": "SecurePass123!", "name": "Slow"}))
                    .send()
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
        assert!(kill.success());
        let res = req.await.unwrap().expect("in-flight request completes");
        assert_eq!(res.status(), 200);
    });
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    assert!(dir.path().join("env.db").exists());
    assert!(logs.contains("shutdown signal received"), "{logs}");
    assert!(
        logs.lines().all(|l| l.starts_with('{')),
        "JSON logs expected: {logs}"
    );
}

#[test]
fn development_secret_is_generated_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = warden::secrets::SecretsFile::new(dir.path().join("s/secrets.json"));
    let env = warden::config::Environment::Development;
    use secrecy::ExposeSecret;
    let a = warden::secrets::server_secret(env, &file).unwrap();
    let b = warden::secrets::server_secret(env, &file).unwrap();
    assert_eq!(a.expose_secret(), b.expose_secret());
    assert!(a.expose_secret().len() >= 32);
    // Debug output never shows it.
    assert!(!format!("{a:?}").contains(a.expose_secret()));
}

/// `[cluster] instances > 1` refuses, at start-up, what only works in one
/// process: SQLite, memory-only rate limits and lockout in production, and
/// a transport that cannot work.
#[test]
fn several_instances_refuse_what_lives_in_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let pg = "postgres://postgres@127.0.0.1:1/none";
    for (env, expected) in [
        (
            vec![("DATABASE_URL", "sqlite:one.db")],
            "SQLite is one file for one instance",
        ),
        (
            vec![("DATABASE_URL", pg), ("WARDEN_ENV", "production")],
            "set rate_limit.storage = \"database\" or \"redis\"",
        ),
        (
            vec![
                ("DATABASE_URL", "sqlite:one.db"),
                ("WARDEN_CLUSTER__INVALIDATION", "postgres"),
            ],
            "cluster.invalidation = \"postgres\" needs a postgres:// database_url",
        ),
        (
            vec![
                ("DATABASE_URL", pg),
                ("WARDEN_CLUSTER__INVALIDATION", "redis"),
            ],
            "cluster.invalidation = \"redis\" needs rate_limit.redis_url (or REDIS_URL)",
        ),
        (
            vec![("DATABASE_URL", pg), ("WARDEN_CLUSTER__INSTANCES", "0")],
            "cluster.instances must be at least 1",
        ),
    ] {
        let out = warden(dir.path())
            .arg("serve")
            .env("WARDEN_CLUSTER__INSTANCES", "3")
            .env("WARDEN_SECRET", "x".repeat(40))
            .env("WARDEN_MAIL__TRANSPORT", "smtp")
            .env("WARDEN_MAIL__SMTP__HOST", "127.0.0.1")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} started");
        assert!(err.contains(expected), "{env:?}: {err}");
    }
}
