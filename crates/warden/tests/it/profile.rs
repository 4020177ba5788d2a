//! The protected profile: read and update, persisted.

use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{assert_error, bearer, spawn_app, Backend};

async fn profile_reads_the_signed_in_user(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let res = app.get_as("/profile", &user.token).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": user.id, "email": user.email, "name": user.name, "image": null})
    );
}

async fn profile_update_is_persisted(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    let res = app
        .put_json_as(
            "/profile",
            &user.token,
            &json!({"name": "  Jane Doe ", "image": "https://example.com/jane.png"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["name"], "Jane Doe");
    assert_eq!(body["image"], "https://example.com/jane.png");

    // The same session sees it at once (the session cache is invalidated).
    let body: Value = app.get_json_as("/profile", &user.token).await;
    assert_eq!(body["name"], "Jane Doe");

    // A new session sees the change: it is in the database.
    let res = app.sign_in_as(&user.email, &user.password).await;
    let fresh: Value = res.json().await.unwrap();
    assert_eq!(fresh["user"]["name"], "Jane Doe");
    let token = fresh["session"]["token"].as_str().unwrap();
    let body: Value = app.get_json_as("/profile", token).await;
    assert_eq!(body["name"], "Jane Doe");
    assert_eq!(
        app.fetch_text(r#"SELECT "name" FROM "user" WHERE "id" = ?"#, &[&user.id])
            .await
            .unwrap(),
        "Jane Doe"
    );

    // Absent image: kept. null: cleared.
    let body: Value = app
        .put_json_as("/profile", &user.token, &json!({"name": "Jane"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["image"], "https://example.com/jane.png");
    let body: Value = app
        .put_json_as(
            "/profile",
            &user.token,
            &json!({"name": "Jane", "image": null}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(body["image"].is_null());
}

async fn profile_update_rejects_bad_input(b: Backend) {
    let app = spawn_app(b).await;
    let user = app.new_user().await;
    for (body, field) in [
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": 42}), "name"),
        (json!({"name": "x".repeat(300)}), "name"),
        (
            json!({"name": "Jane", "image": "javascript:alert(1)"}),
            "image",
        ),
        (json!({"name": "Jane", "image": 7}), "image"),
    ] {
        let res = app
            .put("/profile")
            .header("authorization", bearer(&user.token))
            .json(&body)
            .send()
            .await
            .unwrap();
        let msg = assert_error(res, 400, "invalid_argument").await;
        assert!(msg.contains(field), "{body}: {msg}");
    }
    let res = app
        .put("/profile")
        .json(&json!({"name": "Jane"}))
        .send()
        .await
        .unwrap();
    assert_error(res, 401, "unauthenticated").await;
    assert_eq!(
        app.fetch_text(r#"SELECT "name" FROM "user" WHERE "id" = ?"#, &[&user.id])
            .await
            .unwrap(),
        "John Doe"
    );
}

backend_tests!(
    profile_reads_the_signed_in_user,
    profile_update_is_persisted,
    profile_update_rejects_bad_input,
);
