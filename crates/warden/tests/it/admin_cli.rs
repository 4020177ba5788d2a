//! `warden user ...` and `warden audit ...`: the real binary on the database
//! of a running server. Each change must reach the server's session cache
//! through the revocation feed (read every 250 ms), well before the cache's
//! own 5 s expiry.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::backend_tests;
use crate::helpers::{warden_command, Backend, TestApp, TestUser, HEAVY};

/// The operating-system user the commands run as (`cli:<user>` in the trail).
const OPERATOR: &str = "ops-tester";

/// What one command did.
struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Self {
        assert!(
            self.success,
            "command failed\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Fails with one line on stderr, `error: ...`; returns it.
    #[track_caller]
    fn fails(self) -> String {
        assert!(!self.success, "command succeeded: {}", self.stdout);
        let err = self.stderr.trim_end();
        assert_eq!(err.lines().count(), 1, "not one line: {err}");
        assert!(err.starts_with("error: "), "{err}");
        err.to_owned()
    }

    /// Neither output holds the user's password or token.
    #[track_caller]
    fn holds_no_secret_of(&self, user: &TestUser) {
        for secret in [&user.password, &user.token] {
            assert!(
                !self.stdout.contains(secret.as_str()) && !self.stderr.contains(secret.as_str()),
                "a credential was printed"
            );
        }
    }
}

/// Runs `warden <args> --database-url <the app's database>` in an empty
/// directory, without a terminal.
async fn warden(app: &TestApp, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut c = warden_command(dir.path());
    c.args(args)
        .args(["--database-url", &app.database_url()])
        .env("USER", OPERATOR)
        .stdin(Stdio::null());
    let out = tokio::process::Command::from(c).output().await.unwrap();
    Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Signs in through the tutorial API; the status.
async fn sign_in_status(app: &TestApp, user: &TestUser) -> StatusCode {
    app.sign_in_as(&user.email, &user.password).await.status()
}

/// Uses the session twice, so that the server holds it in its cache.
async fn cache_session(app: &TestApp, token: &str) {
    for _ in 0..2 {
        assert_eq!(app.get_as("/profile", token).await.status(), 200);
    }
}

/// Polls `GET path` with the token for at most 1 s until it answers
/// `want`; returns how long that took.
async fn answers_within_a_second(app: &TestApp, path: &str, token: &str, want: u16) -> Duration {
    let start = Instant::now();
    loop {
        let got = app.get_as(path, token).await.status();
        if got == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "GET {path} still answers {got}, not {want}, 1 s after the command"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn role(app: &TestApp, user: &TestUser) -> String {
    app.fetch_text(
        r#"SELECT COALESCE("role", '') FROM "user" WHERE "id" = ?"#,
        &[&user.id],
    )
    .await
    .expect("user exists")
}

async fn is_banned(app: &TestApp, user: &TestUser) -> bool {
    app.count(
        r#"SELECT COUNT(*) FROM "user" WHERE "id" = ? AND COALESCE("banned", false) = true"#,
        &[&user.id],
    )
    .await
        == 1
}

async fn audit_rows(app: &TestApp) -> i64 {
    app.count(r#"SELECT COUNT(*) FROM "warden_audit""#, &[])
        .await
}

/// `banExpires` as UTC (SQLite stores RFC 3339 text; PostgreSQL a
/// timestamp in UTC, cast to text here).
async fn ban_expires(app: &TestApp, user: &TestUser) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = app
        .fetch_text(
            r#"SELECT CAST("banExpires" AS TEXT) FROM "user" WHERE "id" = ? AND "banExpires" IS NOT NULL"#,
            &[&user.id],
        )
        .await?;
    Some(match chrono::DateTime::parse_from_rfc3339(&text) {
        Ok(t) => t.to_utc(),
        Err(_) => chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S%.f")
            .unwrap_or_else(|e| panic!("banExpires {text:?}: {e}"))
            .and_utc(),
    })
}

async fn set_role_makes_a_user_admin(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;
    let list = "/api/auth/admin/list-users";
    // Not an admin yet, and the session with the old role is cached.
    assert_eq!(app.get_as(list, &user.token).await.status(), 403);
    cache_session(&app, &user.token).await;

    let run = warden(&app, &["user", "set-role", &user.email, "admin"])
        .await
        .ok();
    assert_eq!(
        run.stdout.trim(),
        format!("{}: role set to admin (was user)", user.email)
    );
    run.holds_no_secret_of(&user);
    assert_eq!(role(&app, &user).await, "admin");
    answers_within_a_second(&app, list, &user.token, 200).await;
    let body: serde_json::Value = app.get_json_as(list, &user.token).await;
    assert!(body["users"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["email"] == user.email.as_str()));

    // Several roles, comma-separated, stored as BetterAuth joins them.
    warden(&app, &["user", "set-role", &user.email, "admin, user"])
        .await
        .ok();
    assert_eq!(role(&app, &user).await, "admin,user");
}

async fn list_searches_email_and_name(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let ada = app.new_user().await;
    let bob = app.new_user().await;
    let cy = app.new_user().await;
    app.exec(
        r#"UPDATE "user" SET "name" = 'Zephyrine Quux' WHERE "id" = ?"#,
        &[&cy.id],
    )
    .await;

    // By part of the email, in capitals.
    let part = ada.email.split('@').next().unwrap().to_uppercase();
    let run = warden(&app, &["user", "list", "--search", &part])
        .await
        .ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "EMAIL", "NAME", "ROLE", "BANNED", "CREATED"],
        "{}",
        run.stdout
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..6],
        [
            ada.id.as_str(),
            ada.email.as_str(),
            "John",
            "Doe",
            "user",
            "no"
        ]
    );
    // Aligned: every column starts where its heading does.
    assert_eq!(lines[0].find("EMAIL"), lines[1].find(&ada.email));
    assert_eq!(lines[2], "1 of 1 user");
    assert!(!run.stdout.contains(&bob.email) && !run.stdout.contains(&cy.email));
    run.holds_no_secret_of(&ada);

    // By name, in any case.
    let run = warden(&app, &["user", "list", "--search", "zephyrINE"])
        .await
        .ok();
    assert!(run.stdout.contains(&cy.email), "{}", run.stdout);
    assert!(run.stdout.contains("Zephyrine Quux"));
    assert!(!run.stdout.contains(&ada.email) && !run.stdout.contains(&bob.email));

    // Email or name: Ada by her email, Bob by his name; then Ada by both,
    // listed and counted once.
    let fan = format!("Fan of {part}");
    app.exec(
        r#"UPDATE "user" SET "name" = ? WHERE "id" = ?"#,
        &[&fan, &bob.id],
    )
    .await;
    let run = warden(&app, &["user", "list", "--search", &part])
        .await
        .ok();
    assert!(run.stdout.contains(&ada.email) && run.stdout.contains(&bob.email));
    assert!(!run.stdout.contains(&cy.email));
    assert!(run.stdout.ends_with("2 of 2 users\n"), "{}", run.stdout);
    let also = format!("Ada {part}");
    app.exec(
        r#"UPDATE "user" SET "name" = ? WHERE "id" = ?"#,
        &[&also, &ada.id],
    )
    .await;
    let run = warden(&app, &["user", "list", "--search", &part])
        .await
        .ok();
    assert_eq!(run.stdout.matches(&ada.email).count(), 1, "{}", run.stdout);
    assert!(run.stdout.ends_with("2 of 2 users\n"), "{}", run.stdout);
    // Lower-case search text matches an upper-case name.
    let run = warden(&app, &["user", "list", "--search", "fan OF"])
        .await
        .ok();
    assert!(run.stdout.contains(&bob.email) && run.stdout.ends_with("1 of 1 user\n"));

    // Everyone, oldest first; --limit.
    let run = warden(&app, &["user", "list"]).await.ok();
    let emails: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        emails[..3],
        [ada.email.as_str(), bob.email.as_str(), cy.email.as_str()]
    );
    let run = warden(&app, &["user", "list", "--limit", "1"]).await.ok();
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    assert!(run.stdout.contains(&ada.email) && run.stdout.ends_with("1 of 3 users\n"));
    let run = warden(&app, &["user", "list", "--search", "nobody-at-all"])
        .await
        .ok();
    assert_eq!(run.stdout, "no users\n");
}

async fn ban_reaches_the_running_server(backend: Backend) {
    let _heavy = HEAVY.lock().await;
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    cache_session(&app, &user.token).await;
    cache_session(&app, &other.token).await;

    let run = warden(&app, &["user", "ban", &user.email, "--reason", "spam"])
        .await
        .ok();
    assert_eq!(
        run.stdout.trim(),
        format!(
            "{} banned with no end (reason: spam); their sessions are ended",
            user.email
        )
    );
    run.holds_no_secret_of(&user);
    answers_within_a_second(&app, "/profile", &user.token, 401).await;
    assert!(is_banned(&app, &user).await);
    assert_eq!(sign_in_status(&app, &user).await, 403);
    // Nobody else is touched.
    assert_eq!(app.get_as("/profile", &other.token).await.status(), 200);
    let run = warden(&app, &["user", "list", "--search", &user.email])
        .await
        .ok();
    assert!(run.stdout.lines().nth(1).unwrap().contains(" yes "));

    let run = warden(&app, &["user", "unban", &user.email]).await.ok();
    assert_eq!(run.stdout.trim(), format!("{} unbanned", user.email));
    assert!(!is_banned(&app, &user).await);
    assert_eq!(sign_in_status(&app, &user).await, 200);
    let run = warden(&app, &["user", "unban", &user.email]).await.ok();
    assert!(run.stdout.contains("is not banned; nothing changed"));

    // A ban with an end.
    let run = warden(&app, &["user", "ban", &user.email, "--expires", "1h"])
        .await
        .ok();
    assert!(run.stdout.contains(" banned until "), "{}", run.stdout);
    assert!(run.stdout.contains("(reason: No reason)"), "{}", run.stdout);
    let ends = ban_expires(&app, &user).await.expect("banExpires is set");
    let ahead = (ends - chrono::Utc::now()).num_seconds();
    assert!((3540..=3600).contains(&ahead), "banExpires {ahead} s ahead");
    assert_eq!(sign_in_status(&app, &user).await, 403);
}

async fn revoke_sessions_ends_cached_sessions(backend: Backend) {
    let _heavy = HEAVY.lock().await;
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;
    let res = app.sign_in_as(&user.email, &user.password).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let second = body["session"]["token"].as_str().unwrap().to_owned();
    crate::helpers::remember_secret(&second);
    cache_session(&app, &user.token).await;
    cache_session(&app, &second).await;

    let run = warden(&app, &["user", "revoke-sessions", &user.email])
        .await
        .ok();
    assert_eq!(
        run.stdout.trim(),
        format!("2 sessions of {} ended", user.email)
    );
    assert!(!run.stdout.contains(&second));
    run.holds_no_secret_of(&user);
    answers_within_a_second(&app, "/profile", &user.token, 401).await;
    answers_within_a_second(&app, "/profile", &second, 401).await;
    // Not banned: they sign in again.
    assert_eq!(sign_in_status(&app, &user).await, 200);
    let run = warden(&app, &["user", "revoke-sessions", &user.email])
        .await
        .ok();
    assert_eq!(
        run.stdout.trim(),
        format!("1 session of {} ended", user.email)
    );
}

async fn delete_needs_yes_without_a_terminal(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;
    cache_session(&app, &user.token).await;

    let err = warden(&app, &["user", "delete", &user.email]).await.fails();
    assert!(
        err.contains("without confirmation") && err.contains("--yes"),
        "{err}"
    );
    assert_eq!(app.users_with_email(&user.email).await, 1);
    assert_eq!(app.get_as("/profile", &user.token).await.status(), 200);
    assert_eq!(audit_rows(&app).await, 0);

    let run = warden(&app, &["user", "delete", &user.email, "--yes"])
        .await
        .ok();
    assert_eq!(
        run.stdout.trim(),
        format!("{} deleted (id {})", user.email, user.id)
    );
    run.holds_no_secret_of(&user);
    assert_eq!(app.users_with_email(&user.email).await, 0);
    answers_within_a_second(&app, "/profile", &user.token, 401).await;
    assert_eq!(sign_in_status(&app, &user).await, 401);
    let err = warden(&app, &["user", "delete", &user.email, "--yes"])
        .await
        .fails();
    assert_eq!(err, format!("error: no user with email {}", user.email));
}

async fn audit_list_shows_what_the_commands_did(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;
    let email = user.email.as_str();
    for args in [
        &["user", "set-role", email, "admin"][..],
        &["user", "ban", email, "--reason", "abuse", "--expires", "7d"],
        &["user", "unban", email],
        &["user", "revoke-sessions", email],
    ] {
        warden(&app, args).await.ok();
    }

    let run = warden(&app, &["audit", "list"]).await.ok();
    run.holds_no_secret_of(&user);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["TIME", "ACTOR", "ACTION", "TARGET", "IP", "DETAIL"]
    );
    // Newest first; the time is two words (date, time).
    let actions: Vec<&str> = lines[1..5]
        .iter()
        .map(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cells[2], format!("cli:{OPERATOR}"), "{l}");
            assert_eq!(cells[4], user.id, "{l}");
            assert_eq!(cells[5], "-", "no address for the command line: {l}");
            cells[3]
        })
        .collect();
    assert_eq!(
        actions,
        [
            "session.revoke-all",
            "user.unban",
            "user.ban",
            "user.set-role"
        ]
    );
    assert!(lines[3].contains(r#""reason":"abuse""#), "{}", lines[3]);
    assert!(lines[4].contains(r#""to":"admin""#), "{}", lines[4]);
    assert_eq!(lines[5], "entries 1-4 of 4, newest first");

    let run = warden(&app, &["audit", "list", "--limit", "1", "--offset", "2"])
        .await
        .ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(lines[1].contains(" user.ban "), "{}", lines[1]);
    assert_eq!(lines[2], "entries 3-3 of 4, newest first");
}

async fn bad_input_changes_nothing(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let user = app.new_user().await;

    for args in [
        &["user", "ban", "nobody@example.com"][..],
        &["user", "set-role", "nobody@example.com", "admin"],
        &["user", "unban", "nobody@example.com"],
        &["user", "revoke-sessions", "nobody@example.com"],
        &["user", "delete", "nobody@example.com", "--yes"],
    ] {
        let err = warden(&app, args).await.fails();
        assert_eq!(
            err, "error: no user with email nobody@example.com",
            "{args:?}"
        );
    }
    let err = warden(&app, &["user", "ban", "not-an-email"]).await.fails();
    assert!(err.contains("not a valid email address"), "{err}");

    let err = warden(&app, &["user", "set-role", &user.email, "admin,superuser"])
        .await
        .fails();
    assert_eq!(
        err,
        r#"error: unknown role "superuser" (defined: admin, user)"#
    );
    assert_eq!(role(&app, &user).await, "user");

    let run = warden(&app, &["user", "ban", &user.email, "--expires", "nonsense"]).await;
    run.holds_no_secret_of(&user);
    let err = run.fails();
    assert!(
        err.starts_with("error: --expires: \"nonsense\" is not a duration"),
        "{err}"
    );
    let err = warden(&app, &["user", "ban", &user.email, "--expires", "0s"])
        .await
        .fails();
    assert!(err.starts_with("error: --expires: "), "{err}");
    assert!(!is_banned(&app, &user).await);
    assert_eq!(app.get_as("/profile", &user.token).await.status(), 200);

    // Out-of-range numbers are clap's errors: they name the flag too.
    let run = warden(&app, &["user", "list", "--limit", "0"]).await;
    assert!(
        !run.success && run.stderr.contains("--limit"),
        "{}",
        run.stderr
    );

    assert_eq!(audit_rows(&app).await, 0, "nothing was recorded");
}

backend_tests!(
    set_role_makes_a_user_admin,
    list_searches_email_and_name,
    ban_reaches_the_running_server,
    revoke_sessions_ends_cached_sessions,
    delete_needs_yes_without_a_terminal,
    audit_list_shows_what_the_commands_did,
    bad_input_changes_nothing,
);
