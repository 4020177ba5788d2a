//! Three Warden instances started at the same moment on a fresh database
//! all come up, and each migration is applied once: sqlx's migrator holds
//! an advisory lock (PostgreSQL) or `GET_LOCK` (MySQL) while it migrates,
//! so the second and third find the work done. Without the lock the
//! losers fail on `CREATE TABLE` or on `_sqlx_migrations`' primary key, and
//! their start-up fails.
//!
//! SQLite is not here: its migrations run under the database file's write
//! lock, and its column additions (sqlite.rs) are another matter.

use crate::helpers::{test_config, Backend, TestDb};

/// How many migrations the backend's directory holds.
fn migration_files(dir: &str) -> i64 {
    let path = format!(
        "{}/../warden-store/migrations/{dir}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".up.sql"))
        })
        .count() as i64
}

async fn three_instances_migrate_once(backend: Backend) {
    crate::helpers::init_logs();
    let _heavy = crate::helpers::HEAVY.lock().await;
    let (config, _secrets, spec) = test_config(backend);
    spec.create().await;
    // The test's own connection, first: the database is dropped with it
    // even when an instance fails to start.
    let db = spec.open(&config.database_url).await;
    // Each its own secrets file (a shared secret is not what is tested).
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let configs: Vec<_> = dirs
        .iter()
        .map(|d| {
            let mut c = config.clone();
            c.secrets_file = d.path().join("secrets.json");
            c
        })
        .collect();
    // Started together: the three start-ups are polled side by side, each
    // on connections of its own. (`Server::build` is not `Send`, so they
    // share this task.)
    let (a, b, c) = tokio::join!(
        warden::Server::build(&configs[0]),
        warden::Server::build(&configs[1]),
        warden::Server::build(&configs[2]),
    );
    let mut servers = Vec::new();
    for (i, s) in [a, b, c].into_iter().enumerate() {
        match s {
            Ok(server) => servers.push(server),
            Err(e) => panic!("instance {i} did not start: {e}"),
        }
    }
    assert_eq!(servers.len(), 3);
    // Every instance answers as ready on the migrated database.
    let mut stops = Vec::new();
    let mut addrs = Vec::new();
    for server in servers {
        addrs.push(format!("http://{}", server.local_addr()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        stops.push(tx);
        tokio::spawn(server.run(async {
            let _ = rx.await;
        }));
    }
    let client = reqwest::Client::builder()
        .user_agent("warden-tests/1.0")
        .build()
        .unwrap();
    for a in &addrs {
        let res = client.get(format!("{a}/readyz")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{a}/readyz");
    }
    let (applied, ok, expected) = match &db {
        TestDb::Postgres { pool, .. } => (
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(pool)
                .await
                .unwrap(),
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
                .unwrap(),
            migration_files("postgres"),
        ),
        TestDb::MySql { pool, .. } => (
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(pool)
                .await
                .unwrap(),
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
                .unwrap(),
            migration_files("mysql"),
        ),
        TestDb::Sqlite { .. } => unreachable!("not run on SQLite"),
    };
    assert!(expected > 0);
    assert_eq!(applied, expected, "one row per migration");
    assert_eq!(ok, expected, "every migration succeeded");
    // And the schema works: a sign-up through one instance is seen by the
    // others.
    let res = client
        .post(format!("{}/auth/signup", addrs[0]))
        .json(&serde_json::json!({"email": "three@example.com", "password": "SecurePass123!", "name": "Three"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    for a in &addrs[1..] {
        let res = client
            .post(format!("{a}/auth/signin"))
            .json(&serde_json::json!({"email": "three@example.com", "password": "SecurePass123!"}))
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "sign-in through {a}: {}",
            res.status()
        );
    }
    for tx in stops {
        let _ = tx.send(());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
#[cfg_attr(
    not(warden_pg_tests),
    ignore = "PostgreSQL suite not run: set WARDEN_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test"
)]
async fn postgres_three_instances_migrate_once() {
    three_instances_migrate_once(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
#[cfg_attr(
    not(warden_mysql_tests),
    ignore = "MySQL suite not run: set WARDEN_TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test"
)]
async fn mysql_three_instances_migrate_once() {
    three_instances_migrate_once(Backend::MySql).await
}
