//! Listing and revoking one's own sessions.

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{assert_error, spawn_app, Backend};

async fn list_shows_own_live_sessions_newest_first(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second: Value = app
        .sign_in_as(&user.email, &user.password)
        .await
        .json()
        .await
        .unwrap();
    let second_token = second["session"]["token"].as_str().unwrap();
    // An expired session of the user is not listed.
    let res = app.sign_in_as(&user.email, &user.password).await;
    assert_eq!(res.status(), 200);
    let sql = format!(
        r#"UPDATE "session" SET "expiresAt" = {} WHERE "id" = (SELECT "id" FROM "session" WHERE "userId" = ? ORDER BY "createdAt" DESC LIMIT 1)"#,
        app.ts_param()
    );
    app.exec(&sql, &[&app.ts_from_now(-60), &user.id]).await;

    let res = app.get_as("/sessions", second_token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["current"], false);
    assert!(
        sessions[0]["createdAt"].as_str().unwrap() > sessions[1]["createdAt"].as_str().unwrap()
    );
    for s in sessions {
        for key in [
            "id",
            "createdAt",
            "expiresAt",
            "ipAddress",
            "userAgent",
            "current",
        ] {
            assert!(s.get(key).is_some(), "missing {key} in {s}");
        }
        assert_eq!(s["ipAddress"], "127.0.0.1");
        assert_eq!(s["userAgent"], "warden-tests/1.0");
    }
    let other_list: Value = app.get_json_as("/sessions", &other.token).await;
    assert_eq!(other_list["sessions"].as_array().unwrap().len(), 1);
    assert_error(
        app.get("/sessions").send().await.unwrap(),
        401,
        "unauthenticated",
    )
    .await;
}

async fn revoke_own_session_but_not_anothers(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let other = app.new_user().await;
    let second: Value = app
        .sign_in_as(&user.email, &user.password)
        .await
        .json()
        .await
        .unwrap();
    let second_token = second["session"]["token"].as_str().unwrap();
    let list = |token: String| {
        let app = &app;
        async move {
            let body: Value = app.get_json_as("/sessions", &token).await;
            body["sessions"].as_array().unwrap().clone()
        }
    };
    let other_session = list(other.token.clone()).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another user's session: 404, and it stays alive.
    let res = app
        .delete_as(&format!("/sessions/{other_session}"), &user.token)
        .await;
    assert_error(res, 404, "not_found").await;
    let res = app.get_as("/profile", &other.token).await;
    assert_eq!(res.status(), 200);

    // Unknown id: 404. No token: 401.
    let res = app.delete_as("/sessions/nope", &user.token).await;
    assert_error(res, 404, "not_found").await;
    let res = app
        .delete(&format!("/sessions/{other_session}"))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;

    // Revoke the second session from the first: it dies at once.
    let sessions = list(user.token.clone()).await;
    let target = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .delete_as(&format!("/sessions/{target}"), &user.token)
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["success"], true);
    let res = app.get_as("/profile", second_token).await;
    assert_error(res, 401, "unauthenticated").await;
    assert_eq!(list(user.token.clone()).await.len(), 1);
}

backend_tests!(
    list_shows_own_live_sessions_newest_first,
    revoke_own_session_but_not_anothers,
);
