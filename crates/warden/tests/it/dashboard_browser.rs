//! The dashboard in a real browser: Debian's chromium, driven by
//! playwright-core (`tests/browser/dashboard.mjs`), through every step the
//! issue names. Screenshots go to `<target>/tmp/dashboard-screenshots/`.

use std::process::Command;

use crate::browser_env::{browser, scripts};
use crate::helpers::{spawn_app, Backend};

#[tokio::test]
async fn a_developer_walks_through_the_dashboard() {
    let b = browser();
    let app = spawn_app(Backend::Sqlite).await;
    let dashboard = app.dashboard.clone().expect("the dashboard is served");
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&out);
    let script = scripts().join("dashboard.mjs");
    let (addr, env, chromium) = (app.addr.clone(), b.env.clone(), b.chromium.clone());
    let out2 = out.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .env("DASHBOARD_URL", dashboard)
            .env("API_URL", addr)
            .env("OUT_DIR", &out2)
            .env("PW_ENV", env)
            .env("CHROMIUM", chromium)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the walk-through failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("dashboard walk-through: ok"), "{stdout}");
    let shots = std::fs::read_dir(&out).unwrap().count();
    assert!(shots >= 9, "{shots} screenshots in {}", out.display());
}
