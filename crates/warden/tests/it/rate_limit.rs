//! Rate-limit counter storage: in memory for one instance; the database or
//! Redis so that several instances share limits. Each is driven over HTTP.

use std::time::Duration;

use serde_json::json;

use crate::backend_tests;
use crate::helpers::{spawn_app, spawn_app_with, Backend, TestApp};
use warden::config::{CounterStorage, RateRuleConfig};

fn redis_url() -> String {
    std::env::var("WARDEN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// A tight custom rule (2 per 2 s on /api/auth/ok) so tests are quick.
fn tight(c: &mut warden::Config, storage: CounterStorage, prefix: &str) {
    c.rate_limit.enabled = Some(true);
    c.rate_limit.storage = storage;
    c.rate_limit.redis_url = Some(redis_url());
    c.rate_limit.redis_prefix = prefix.to_owned();
    c.rate_limit.rules = vec![RateRuleConfig {
        path: "/api/auth/ok".into(),
        window: Duration::from_secs(2),
        max: 2,
    }];
}

async fn ok_status(app: &TestApp) -> u16 {
    app.get("/api/auth/ok")
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Two instances on one database (or one Redis) share one budget.
async fn shared_limit(storage: CounterStorage, b: Backend) {
    let prefix = format!("warden-test-{}:", warden_core::token::random_string(8));
    let first = spawn_app_with(b, |c| tight(c, storage, &prefix)).await;
    // The second instance uses the first one's database.
    let url = first.database_url();
    let second = spawn_app_with(b, |c| {
        tight(c, storage, &prefix);
        c.database_url = url;
    })
    .await;
    assert_eq!(ok_status(&first).await, 200);
    assert_eq!(ok_status(&second).await, 200);
    // The budget (2) is spent across both instances.
    assert_eq!(ok_status(&first).await, 429);
    assert_eq!(ok_status(&second).await, 429);
    // The window ends; the budget is back.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(ok_status(&second).await, 200);
}

async fn database_counters_are_shared_between_instances(b: Backend) {
    shared_limit(CounterStorage::Database, b).await;
}

async fn redis_counters_are_shared_between_instances(b: Backend) {
    shared_limit(CounterStorage::Redis, b).await;
}

async fn memory_counters_are_per_instance(b: Backend) {
    let first = spawn_app_with(b, |c| tight(c, CounterStorage::Memory, "")).await;
    let second = spawn_app_with(b, |c| tight(c, CounterStorage::Memory, "")).await;
    assert_eq!(ok_status(&first).await, 200);
    assert_eq!(ok_status(&first).await, 200);
    assert_eq!(ok_status(&first).await, 429);
    assert_eq!(ok_status(&second).await, 200);
}

/// Failed sign-ins are counted in the shared store too: a lock reached
/// through one instance holds on the other.
async fn account_lockout_is_shared_through_the_database(b: Backend) {
    let lockout = |c: &mut warden::Config| {
        c.rate_limit.storage = CounterStorage::Database;
        c.lockout.max_failures = 3;
        c.lockout.window = Duration::from_secs(60);
    };
    let first = spawn_app_with(b, lockout).await;
    let url = first.database_url();
    let second = spawn_app_with(b, |c| {
        lockout(c);
        c.database_url = url;
    })
    .await;
    let user = first.new_user().await;
    for app in [&first, &second, &first] {
        assert_eq!(
            app.sign_in_as(&user.email, "WrongPass123!").await.status(),
            401
        );
    }
    let res = second.sign_in_as(&user.email, &user.password).await;
    assert_eq!(res.status(), 429);
}

/// The default limit (no rule for the path) comes from the configuration.
async fn default_limit_is_configurable(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.rate_limit.enabled = Some(true);
        c.rate_limit.max = 2;
        c.rate_limit.window = Duration::from_secs(30);
    })
    .await;
    assert_eq!(ok_status(&app).await, 200);
    assert_eq!(ok_status(&app).await, 200);
    let res = app.get("/api/auth/ok").send().await.unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((25..=30).contains(&retry), "{retry}");
    // Health checks are never limited.
    for _ in 0..5 {
        assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
    }
}

/// Rate limiting is off in development unless switched on, and on in
/// production.
async fn rate_limiting_defaults_follow_the_environment(b: Backend) {
    let dev = spawn_app(b).await;
    for _ in 0..5 {
        let res = dev
            .post_json(
                "/auth/signin",
                &json!({"email": "x@example.com", "password": "WrongPass123!"}),
            )
            .await;
        assert_eq!(res.status(), 401);
    }
    let mut config = warden::Config::default();
    assert!(!config.rate_limit_enabled());
    config.env = warden::config::Environment::Production;
    assert!(config.rate_limit_enabled());
    config.rate_limit.enabled = Some(false);
    assert!(!config.rate_limit_enabled());
}

backend_tests!(
    database_counters_are_shared_between_instances,
    redis_counters_are_shared_between_instances,
    memory_counters_are_per_instance,
    default_limit_is_configurable,
    account_lockout_is_shared_through_the_database,
    rate_limiting_defaults_follow_the_environment,
);
