//! The tutorial API's administration (`/admin/*`): users, roles, bans,
//! passwords, sessions, impersonation, permissions and the audit trail.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::backend_tests;
use crate::helpers::{
    assert_error, bearer, remember_secret, spawn_app, spawn_app_with_clock, Backend, TestApp,
    TestUser,
};

backend_tests!(
    every_endpoint_needs_a_session_and_admin_rights,
    unknown_users_are_404s,
    list_users_searches_filters_sorts_and_pages,
    list_users_bad_parameters_name_the_parameter,
    get_and_create_users,
    update_users,
    set_role_and_privilege_escalation,
    role_change_is_felt_at_once_by_a_cached_session,
    set_password,
    remove_users,
    ban_ends_a_cached_session_and_refuses_sign_in,
    ban_with_expiry_lifts_itself,
    admin_sessions,
    impersonation_round_trip,
    impersonating_admins_is_refused,
    has_permission,
    audit_trail,
    openapi_documents_the_admin_service,
);

/// A request with an optional bearer token and JSON body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut r = app.client.request(method, app.url(path));
    if let Some(t) = token {
        r = r.header("authorization", bearer(t));
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    r.send().await.unwrap()
}

async fn get(app: &TestApp, path: &str, token: &str) -> Response {
    call(app, Method::GET, path, Some(token), None).await
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    call(app, Method::POST, path, Some(token), Some(body)).await
}

async fn patch(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    call(app, Method::PATCH, path, Some(token), Some(body)).await
}

async fn put(app: &TestApp, path: &str, token: &str, body: &Value) -> Response {
    call(app, Method::PUT, path, Some(token), Some(body)).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> Response {
    call(app, Method::DELETE, path, Some(token), None).await
}

async fn ok_json(res: Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "body: {body}");
    body
}

/// Asserts a 400 whose message starts with the field's name.
async fn assert_invalid(res: Response, field: &str) {
    let message = assert_error(res, 400, "invalid_argument").await;
    let decoded = message
        .strip_prefix("unable to decode request body: ")
        .unwrap_or(&message);
    assert!(
        decoded.starts_with(&format!("{field}:"))
            || decoded.starts_with(&format!("{field}["))
            || decoded.contains(&format!("`{field}`")),
        "the message should name {field}: {message}"
    );
}

async fn user_row_role(app: &TestApp, id: &str) -> Option<String> {
    app.fetch_text(r#"SELECT "role" FROM "user" WHERE "id" = ?"#, &[id])
        .await
}

/// Every endpoint (but the two any session may call) as (method, path,
/// body), with valid input, against `target` and its session `sid`.
fn endpoints(target: &str, sid: &str) -> Vec<(Method, String, Option<Value>)> {
    let u = format!("/admin/users/{target}");
    vec![
        (Method::GET, "/admin/users".into(), None),
        (Method::GET, u.clone(), None),
        (
            Method::POST,
            "/admin/users".into(),
            Some(
                json!({"email": "made-by-nobody@example.com", "name": "X", "password": "Another-Pass-77"}),
            ),
        ),
        (Method::PATCH, u.clone(), Some(json!({"name": "Renamed"}))),
        (
            Method::PUT,
            format!("{u}/role"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::PUT,
            format!("{u}/password"),
            Some(json!({"newPassword": "Another-Pass-77"})),
        ),
        (Method::DELETE, u.clone(), None),
        (Method::POST, format!("{u}/ban"), Some(json!({}))),
        (Method::POST, format!("{u}/unban"), None),
        (Method::GET, format!("{u}/sessions"), None),
        (Method::DELETE, format!("{u}/sessions"), None),
        (Method::DELETE, format!("/admin/sessions/{sid}"), None),
        (Method::POST, format!("{u}/impersonate"), None),
        (Method::GET, "/admin/audit".into(), None),
    ]
}

async fn session_id_of(app: &TestApp, user_id: &str) -> String {
    app.fetch_text(
        r#"SELECT "id" FROM "session" WHERE "userId" = ? ORDER BY "createdAt" DESC LIMIT 1"#,
        &[user_id],
    )
    .await
    .unwrap()
}

async fn every_endpoint_needs_a_session_and_admin_rights(b: Backend) {
    let app = spawn_app(b).await;
    let plain = app.new_user().await;
    let target = app.new_user().await;
    let sid = session_id_of(&app, &target.id).await;
    for (method, path, body) in endpoints(&target.id, &sid) {
        let res = call(
            &app,
            method.clone(),
            &path,
            Some(&plain.token),
            body.as_ref(),
        )
        .await;
        let message = assert_error(res, 403, "permission_denied").await;
        assert!(message.contains("permission"), "{method} {path}: {message}");
        let res = call(&app, method.clone(), &path, None, body.as_ref()).await;
        assert_error(res, 401, "unauthenticated").await;
        let res = call(
            &app,
            method.clone(),
            &path,
            Some("not-a-token"),
            body.as_ref(),
        )
        .await;
        assert_error(res, 401, "unauthenticated").await;
    }
    for path in ["/admin/has-permission", "/admin/stop-impersonating"] {
        let body = json!({"permissions": {"user": ["list"]}});
        let res = call(&app, Method::POST, path, None, Some(&body)).await;
        assert_error(res, 401, "unauthenticated").await;
    }
    // Nothing happened to the target.
    let profile: Value = app.get_json_as("/profile", &target.token).await;
    assert_eq!(profile["name"], target.name);
    assert_eq!(
        user_row_role(&app, &target.id).await.as_deref(),
        Some("user")
    );
    assert_eq!(app.users_with_email("made-by-nobody@example.com").await, 0);
    assert_eq!(
        app.count(r#"SELECT COUNT(*) FROM "warden_audit""#, &[])
            .await,
        0
    );
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "session" WHERE "impersonatedBy" IS NOT NULL"#,
            &[]
        )
        .await,
        0
    );
    let res = app.sign_in_as(&target.email, &target.password).await;
    assert_eq!(res.status(), 200);
}

async fn unknown_users_are_404s(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let nobody = "no-such-user-id";
    let u = format!("/admin/users/{nobody}");
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, u.clone(), None),
        (Method::PATCH, u.clone(), Some(json!({"name": "X"}))),
        (
            Method::PUT,
            format!("{u}/role"),
            Some(json!({"role": "user"})),
        ),
        (
            Method::PUT,
            format!("{u}/password"),
            Some(json!({"newPassword": "Another-Pass-77"})),
        ),
        (Method::DELETE, u.clone(), None),
        (Method::POST, format!("{u}/ban"), None),
        (Method::POST, format!("{u}/unban"), None),
        (Method::GET, format!("{u}/sessions"), None),
        (Method::DELETE, format!("{u}/sessions"), None),
        (Method::POST, format!("{u}/impersonate"), None),
        (
            Method::GET,
            format!("/admin/users/{}", "x".repeat(300)),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let res = call(
            &app,
            method.clone(),
            &path,
            Some(&admin.token),
            body.as_ref(),
        )
        .await;
        let message = assert_error(res, 404, "not_found").await;
        assert_eq!(message, "user not found", "{method} {path}");
    }
    let res = delete(&app, "/admin/sessions/no-such-session", &admin.token).await;
    assert_eq!(
        assert_error(res, 404, "not_found").await,
        "session not found"
    );
    // None of them wrote an audit row.
    assert_eq!(
        app.count(r#"SELECT COUNT(*) FROM "warden_audit""#, &[])
            .await,
        0
    );
}

async fn create(app: &TestApp, admin: &TestUser, body: Value) -> Value {
    if let Some(p) = body["password"].as_str() {
        remember_secret(p);
    }
    ok_json(post(app, "/admin/users", &admin.token, &body).await).await
}

async fn list_users_searches_filters_sorts_and_pages(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut ids = Vec::new();
    for (email, name) in [
        ("alice@corp.example", "Alice Archer"),
        ("bob@corp.example", "Bob Baker"),
        ("carol@home.example", "Carol Corp"),
    ] {
        let u = create(&app, &admin, json!({"email": email, "name": name})).await;
        ids.push(u["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ban = post(
        &app,
        &format!("/admin/users/{}/ban", ids[1]),
        &admin.token,
        &json!({}),
    )
    .await;
    assert_eq!(ban.status(), 200);

    let list = |q: &'static str| {
        let app = &app;
        let token = admin.token.clone();
        async move { ok_json(get(app, &format!("/admin/users{q}"), &token).await).await }
    };
    let emails = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };

    // All four (the admin first: oldest), with the page's numbers.
    let all = list("").await;
    assert_eq!(all["total"], 4);
    assert_eq!(all["limit"], 100);
    assert_eq!(all["offset"], 0);
    assert_eq!(emails(&all)[0], admin.email);
    let first = &all["users"][0];
    for key in [
        "id",
        "email",
        "name",
        "image",
        "emailVerified",
        "role",
        "banned",
        "banReason",
        "banExpires",
        "twoFactorEnabled",
        "createdAt",
        "updatedAt",
    ] {
        assert!(first.get(key).is_some(), "missing {key} in {first}");
    }
    assert_eq!(first["role"], "admin");

    // Search: email contains (the default), case-insensitive.
    let v = list("?search=CORP.example").await;
    assert_eq!(emails(&v), ["alice@corp.example", "bob@corp.example"]);
    assert_eq!(v["total"], 2);
    // Search names.
    let v = list("?search=corp&searchField=name").await;
    assert_eq!(emails(&v), ["carol@home.example"]);
    let v = list("?search=b&searchField=name&searchOperator=starts_with").await;
    assert_eq!(emails(&v), ["bob@corp.example"]);
    let v = list("?search=home.example&searchOperator=ends_with").await;
    assert_eq!(emails(&v), ["carol@home.example"]);
    // Filter: banned users; role in a list; by id.
    let v = list("?filterField=banned&filterValue=true").await;
    assert_eq!(emails(&v), ["bob@corp.example"]);
    assert_eq!(v["users"][0]["banned"], true);
    assert_eq!(v["users"][0]["banReason"], "No reason");
    let v = list("?filterField=banned&filterOperator=ne&filterValue=true&search=corp").await;
    assert_eq!(emails(&v), ["alice@corp.example"]);
    let v = list("?filterField=role&filterOperator=in&filterValue=admin&filterValue=nobody").await;
    assert_eq!(emails(&v), vec![admin.email.clone()]);
    let by_id = format!("/admin/users?filterField=id&filterValue={}", ids[2]);
    let v = ok_json(get(&app, &by_id, &admin.token).await).await;
    assert_eq!(emails(&v), ["carol@home.example"]);
    // Dates.
    let created = all["users"][2]["createdAt"].as_str().unwrap().to_owned();
    let q = format!(
        "/admin/users?filterField=createdAt&filterOperator=gte&filterValue={}",
        created.replace('+', "%2B")
    );
    let v = ok_json(get(&app, &q, &admin.token).await).await;
    assert_eq!(emails(&v), ["bob@corp.example", "carol@home.example"]);
    // Sort and page.
    let v = list("?sortBy=email&sortDirection=desc&limit=2&offset=1").await;
    assert_eq!(emails(&v), ["carol@home.example", "bob@corp.example"]);
    assert_eq!(v["total"], 4);
    assert_eq!(v["limit"], 2);
    assert_eq!(v["offset"], 1);
    let v = list("?sortBy=name&offset=10").await;
    assert_eq!(v["users"].as_array().unwrap().len(), 0);
    assert_eq!(v["total"], 4);
    // Unknown parameters are ignored (as Encore ignores unknown fields).
    let v = list("?colour=blue").await;
    assert_eq!(v["total"], 4);
}

async fn list_users_bad_parameters_name_the_parameter(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    for (q, field) in [
        ("searchField=role", "searchField"),
        ("searchField=password", "searchField"),
        ("searchOperator=eq", "searchOperator"),
        ("searchOperator=like", "searchOperator"),
        ("filterField=password&filterValue=x", "filterField"),
        ("filterOperator=like&filterValue=x", "filterOperator"),
        ("filterField=banned", "filterValue"),
        ("filterField=banned&filterValue=yes", "filterValue"),
        (
            "filterField=banned&filterOperator=gt&filterValue=true",
            "filterValue",
        ),
        ("filterField=createdAt&filterValue=yesterday", "filterValue"),
        (
            "filterField=createdAt&filterOperator=contains&filterValue=2026",
            "filterValue",
        ),
        ("sortBy=password", "sortBy"),
        ("sortDirection=sideways", "sortDirection"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=many", "limit"),
        ("offset=-5", "offset"),
        ("limit=1&limit=2", "limit"),
    ] {
        let res = get(&app, &format!("/admin/users?{q}"), &admin.token).await;
        assert_invalid(res, field).await;
    }
    let long = format!("/admin/users?search={}", "a".repeat(300));
    assert_invalid(get(&app, &long, &admin.token).await, "search").await;
}

async fn get_and_create_users(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;

    // Get.
    let res = get(&app, &format!("/admin/users/{}", plain.id), &admin.token).await;
    let u = ok_json(res).await;
    assert_eq!(u["id"], plain.id);
    assert_eq!(u["email"], plain.email);
    assert_eq!(u["role"], "user");
    assert_eq!(u["banned"], false);
    assert_eq!(u["emailVerified"], false);
    let res = get(&app, &format!("/admin/users/{}", admin.id), &plain.token).await;
    assert_error(res, 403, "permission_denied").await;

    // Create with a password, roles as an array, verified, with an image.
    let u = create(
        &app,
        &admin,
        json!({
            "email": "  New.Person@Example.com ",
            "name": "New Person",
            "password": "Brand-New-Pass-42",
            "role": ["user"],
            "emailVerified": true,
            "image": "https://example.com/new.png"
        }),
    )
    .await;
    assert_eq!(u["email"], "new.person@example.com");
    assert_eq!(u["role"], "user");
    assert_eq!(u["emailVerified"], true);
    assert_eq!(u["image"], "https://example.com/new.png");
    let res = app
        .sign_in_as("new.person@example.com", "Brand-New-Pass-42")
        .await;
    assert_eq!(res.status(), 200);
    // Without a password, and as an admin (a role string).
    let u = create(
        &app,
        &admin,
        json!({"email": "second-admin@example.com", "name": "Second", "role": "admin"}),
    )
    .await;
    assert_eq!(u["role"], "admin");
    assert_eq!(u["emailVerified"], false);
    let res = app
        .sign_in_as("second-admin@example.com", "Brand-New-Pass-42")
        .await;
    assert_error(res, 401, "unauthenticated").await;

    // Taken email.
    let res = post(
        &app,
        "/admin/users",
        &admin.token,
        &json!({"email": plain.email, "name": "Dup"}),
    )
    .await;
    assert_error(res, 409, "already_exists").await;
    // Bad input names the field.
    let u = "/admin/users";
    for (body, field) in [
        (json!({"name": "No Email"}), "email"),
        (json!({"email": "x@example.com"}), "name"),
        (json!({"email": "not-an-email", "name": "X"}), "email"),
        (json!({"email": "x@example.com", "name": ""}), "name"),
        (
            json!({"email": "x@example.com", "name": "X", "role": 7}),
            "role",
        ),
        (
            json!({"email": "x@example.com", "name": "X", "role": []}),
            "role",
        ),
        (
            json!({"email": "x@example.com", "name": "X", "role": "a,,b"}),
            "role",
        ),
        (
            json!({"email": "x@example.com", "name": "X", "emailVerified": "yes"}),
            "emailVerified",
        ),
        (
            json!({"email": "x@example.com", "name": "X", "image": "javascript:alert(1)"}),
            "image",
        ),
        (
            json!({"email": "x@example.com", "name": "X", "password": "short"}),
            "password",
        ),
    ] {
        assert_invalid(post(&app, u, &admin.token, &body).await, field).await;
    }
    // A role that is not defined.
    let res = post(
        &app,
        u,
        &admin.token,
        &json!({"email": "x@example.com", "name": "X", "role": "superuser"}),
    )
    .await;
    let message = assert_error(res, 400, "invalid_argument").await;
    assert!(message.contains("role"), "{message}");
    assert_eq!(app.users_with_email("x@example.com").await, 0);
}

async fn update_users(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    let other = app.new_user().await;
    let path = format!("/admin/users/{}", plain.id);

    let u = ok_json(
        patch(
            &app,
            &path,
            &admin.token,
            &json!({"name": "Renamed", "image": "https://example.com/r.png", "emailVerified": true}),
        )
        .await,
    )
    .await;
    assert_eq!(u["name"], "Renamed");
    assert_eq!(u["image"], "https://example.com/r.png");
    assert_eq!(u["emailVerified"], true);
    // The user's (cached) session sees it.
    let profile: Value = app.get_json_as("/profile", &plain.token).await;
    assert_eq!(profile["name"], "Renamed");
    // null removes the image; email changes.
    let u = ok_json(
        patch(
            &app,
            &path,
            &admin.token,
            &json!({"image": null, "email": "renamed@example.com"}),
        )
        .await,
    )
    .await;
    assert!(u["image"].is_null());
    assert_eq!(u["email"], "renamed@example.com");
    // A ban through update, with an expiry.
    let u = ok_json(
        patch(
            &app,
            &path,
            &admin.token,
            &json!({"banned": true, "banReason": "spam", "banExpires": "2999-01-01T00:00:00Z"}),
        )
        .await,
    )
    .await;
    assert_eq!(u["banned"], true);
    assert_eq!(u["banReason"], "spam");
    assert_eq!(u["banExpires"], "2999-01-01T00:00:00.000Z");
    assert_error(
        app.get_as("/profile", &plain.token).await,
        401,
        "unauthenticated",
    )
    .await;
    let u = ok_json(
        patch(
            &app,
            &path,
            &admin.token,
            &json!({"banned": false, "banReason": null, "banExpires": null}),
        )
        .await,
    )
    .await;
    assert_eq!(u["banned"], false);
    assert!(u["banReason"].is_null());
    assert!(u["banExpires"].is_null());

    // A password is refused, naming set-password.
    let res = patch(
        &app,
        &path,
        &admin.token,
        &json!({"name": "X", "password": "Another-Pass-77"}),
    )
    .await;
    let message = assert_error(res, 400, "invalid_argument").await;
    assert!(message.starts_with("password:"), "{message}");
    assert!(message.contains("set-password"), "{message}");
    // Other bad input.
    for (body, field) in [
        (json!({"name": 5}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"email": "nope"}), "email"),
        (json!({"image": "ftp://x"}), "image"),
        (json!({"banned": "yes"}), "banned"),
        (json!({"banExpires": "tomorrow"}), "banExpires"),
        (json!({"banReason": "x".repeat(1001)}), "banReason"),
        (json!({"role": {"a": 1}}), "role"),
    ] {
        assert_invalid(patch(&app, &path, &admin.token, &body).await, field).await;
    }
    // Nothing to update.
    let res = patch(&app, &path, &admin.token, &json!({})).await;
    let message = assert_error(res, 400, "invalid_argument").await;
    assert!(message.contains("no data"), "{message}");
    // Taken email.
    let res = patch(&app, &path, &admin.token, &json!({"email": other.email})).await;
    assert_error(res, 409, "already_exists").await;
    // Non-admin (the banned user's session ended: another user).
    let res = patch(&app, &path, &other.token, &json!({"name": "Hacked"})).await;
    assert_error(res, 403, "permission_denied").await;
    // A plain user cannot ban or promote itself through update either.
    let own = format!("/admin/users/{}", other.id);
    for body in [json!({"role": "admin"}), json!({"banned": false})] {
        let res = patch(&app, &own, &other.token, &body).await;
        assert_error(res, 403, "permission_denied").await;
    }
    assert_eq!(
        user_row_role(&app, &other.id).await.as_deref(),
        Some("user")
    );
}

async fn set_role_and_privilege_escalation(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;

    // Privilege escalation: a plain user cannot make itself an admin.
    for role in [json!("admin"), json!(["admin"]), json!(["user", "admin"])] {
        let res = put(
            &app,
            &format!("/admin/users/{}/role", plain.id),
            &plain.token,
            &json!({"role": role}),
        )
        .await;
        assert_error(res, 403, "permission_denied").await;
    }
    assert_eq!(
        user_row_role(&app, &plain.id).await.as_deref(),
        Some("user")
    );
    assert_error(
        get(&app, "/admin/users", &plain.token).await,
        403,
        "permission_denied",
    )
    .await;

    let path = format!("/admin/users/{}/role", plain.id);
    // Bad input.
    for (body, field) in [
        (json!({}), "role"),
        (json!({"role": 1}), "role"),
        (json!({"role": []}), "role"),
        (json!({"role": ""}), "role"),
        (json!({"role": [1]}), "role"),
    ] {
        assert_invalid(put(&app, &path, &admin.token, &body).await, field).await;
    }
    let res = put(&app, &path, &admin.token, &json!({"role": "root"})).await;
    let message = assert_error(res, 400, "invalid_argument").await;
    assert!(message.contains("role"), "{message}");

    // An array of roles, then a string: felt at once.
    let u = ok_json(
        put(
            &app,
            &path,
            &admin.token,
            &json!({"role": ["user", "admin"]}),
        )
        .await,
    )
    .await;
    assert_eq!(u["role"], "user,admin");
    assert_eq!(get(&app, "/admin/users", &plain.token).await.status(), 200);
    let u = ok_json(put(&app, &path, &admin.token, &json!({"role": "user"})).await).await;
    assert_eq!(u["role"], "user");
    assert_error(
        get(&app, "/admin/users", &plain.token).await,
        403,
        "permission_denied",
    )
    .await;
}

async fn role_change_is_felt_at_once_by_a_cached_session(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let other = app.new_admin().await;
    // The other admin's session is cached, with its admin role.
    for _ in 0..2 {
        assert_eq!(get(&app, "/admin/users", &other.token).await.status(), 200);
    }
    let res = put(
        &app,
        &format!("/admin/users/{}/role", other.id),
        &admin.token,
        &json!({"role": "user"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_error(
        get(&app, "/admin/users", &other.token).await,
        403,
        "permission_denied",
    )
    .await;
    // Still signed in, as a user.
    assert_eq!(app.get_as("/profile", &other.token).await.status(), 200);
}

async fn set_password(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    let path = format!("/admin/users/{}/password", plain.id);
    let new_password = "Admin-Chosen-Pass-91";
    remember_secret(new_password);

    let res = put(
        &app,
        &path,
        &plain.token,
        &json!({"newPassword": new_password}),
    )
    .await;
    assert_error(res, 403, "permission_denied").await;
    for (body, field) in [
        (json!({}), "newPassword"),
        (json!({"newPassword": 12345678}), "newPassword"),
        (json!({"newPassword": "short"}), "password"),
        (json!({"newPassword": "password123"}), "password"),
    ] {
        assert_invalid(put(&app, &path, &admin.token, &body).await, field).await;
    }
    let body = ok_json(
        put(
            &app,
            &path,
            &admin.token,
            &json!({"newPassword": new_password}),
        )
        .await,
    )
    .await;
    assert_eq!(body, json!({"success": true}));
    assert_error(
        app.sign_in_as(&plain.email, &plain.password).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.sign_in_as(&plain.email, new_password).await.status(),
        200
    );
    // A user created without a password gets one.
    let u = create(
        &app,
        &admin,
        json!({"email": "nopass@example.com", "name": "No Pass"}),
    )
    .await;
    let res = put(
        &app,
        &format!("/admin/users/{}/password", u["id"].as_str().unwrap()),
        &admin.token,
        &json!({"newPassword": new_password}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        app.sign_in_as("nopass@example.com", new_password)
            .await
            .status(),
        200
    );
}

async fn remove_users(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    let path = format!("/admin/users/{}", plain.id);

    assert_error(
        delete(&app, &format!("/admin/users/{}", admin.id), &plain.token).await,
        403,
        "permission_denied",
    )
    .await;
    // Not oneself.
    let res = delete(&app, &format!("/admin/users/{}", admin.id), &admin.token).await;
    let message = assert_error(res, 400, "invalid_argument").await;
    assert!(message.contains("yourself"), "{message}");

    // The user's cached session ends with it.
    assert_eq!(app.get_as("/profile", &plain.token).await.status(), 200);
    let body = ok_json(delete(&app, &path, &admin.token).await).await;
    assert_eq!(body, json!({"success": true}));
    assert_error(
        app.get_as("/profile", &plain.token).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_error(get(&app, &path, &admin.token).await, 404, "not_found").await;
    assert_error(delete(&app, &path, &admin.token).await, 404, "not_found").await;
    assert_eq!(app.users_with_email(&plain.email).await, 0);
}

async fn ban_ends_a_cached_session_and_refuses_sign_in(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    let path = format!("/admin/users/{}/ban", plain.id);

    // Refused to a plain user (here: banning an admin), and bad input.
    let res = post(
        &app,
        &format!("/admin/users/{}/ban", admin.id),
        &plain.token,
        &json!({}),
    )
    .await;
    assert_error(res, 403, "permission_denied").await;
    for (body, field) in [
        (json!({"banExpiresIn": 0}), "banExpiresIn"),
        (json!({"banExpiresIn": -1}), "banExpiresIn"),
        (json!({"banExpiresIn": "1h"}), "banExpiresIn"),
        (json!({"banExpiresIn": 1e12}), "banExpiresIn"),
        (json!({"banExpiresIn": 9_000_000_000_u64}), "banExpiresIn"),
        (json!({"banReason": 5}), "banReason"),
        (json!({"banReason": "x".repeat(1001)}), "banReason"),
    ] {
        assert_invalid(post(&app, &path, &admin.token, &body).await, field).await;
    }
    let res = post(
        &app,
        &format!("/admin/users/{}/ban", admin.id),
        &admin.token,
        &json!({}),
    )
    .await;
    let message = assert_error(res, 400, "invalid_argument").await;
    assert!(message.contains("yourself"), "{message}");

    // The target's session is cached.
    for _ in 0..2 {
        assert_eq!(app.get_as("/profile", &plain.token).await.status(), 200);
    }
    let u = ok_json(post(&app, &path, &admin.token, &json!({"banReason": "spamming"})).await).await;
    assert_eq!(u["banned"], true);
    assert_eq!(u["banReason"], "spamming");
    assert!(u["banExpires"].is_null());
    // Refused on the very next request, and at sign-in.
    assert_error(
        app.get_as("/profile", &plain.token).await,
        401,
        "unauthenticated",
    )
    .await;
    let message = assert_error(
        app.sign_in_as(&plain.email, &plain.password).await,
        403,
        "permission_denied",
    )
    .await;
    assert!(message.contains("banned"), "{message}");
    // A wrong password still says only that.
    assert_error(
        app.sign_in_as(&plain.email, "Wrong-Password-1").await,
        401,
        "unauthenticated",
    )
    .await;

    // Unban: refused to a plain user; then sign-in works again.
    let unban = format!("/admin/users/{}/unban", plain.id);
    let other = app.new_user().await;
    let res = call(&app, Method::POST, &unban, Some(&other.token), None).await;
    assert_error(res, 403, "permission_denied").await;
    let u = ok_json(call(&app, Method::POST, &unban, Some(&admin.token), None).await).await;
    assert_eq!(u["banned"], false);
    assert!(u["banReason"].is_null());
    assert_eq!(
        app.sign_in_as(&plain.email, &plain.password).await.status(),
        200
    );
    // No body at all is a ban with the default reason.
    let u = ok_json(call(&app, Method::POST, &path, Some(&admin.token), None).await).await;
    assert_eq!(u["banReason"], "No reason");
}

async fn ban_with_expiry_lifts_itself(b: Backend) {
    let app = spawn_app_with_clock(b, |_| {}).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    let u = ok_json(
        post(
            &app,
            &format!("/admin/users/{}/ban", plain.id),
            &admin.token,
            &json!({"banExpiresIn": 3600}),
        )
        .await,
    )
    .await;
    assert_eq!(u["banned"], true);
    let expires = u["banExpires"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(expires).unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(u["updatedAt"].as_str().unwrap()).unwrap();
    assert_eq!((expires - t).num_seconds(), 3600);

    app.clock.advance(Duration::from_secs(3599));
    assert_error(
        app.sign_in_as(&plain.email, &plain.password).await,
        403,
        "permission_denied",
    )
    .await;
    app.clock.advance(Duration::from_secs(2));
    assert_eq!(
        app.sign_in_as(&plain.email, &plain.password).await.status(),
        200
    );
    // Lifted in the database too.
    let u = ok_json(get(&app, &format!("/admin/users/{}", plain.id), &admin.token).await).await;
    assert_eq!(u["banned"], false);
    assert!(u["banExpires"].is_null());
}

async fn admin_sessions(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second: Value = app
        .sign_in_as(&plain.email, &plain.password)
        .await
        .json()
        .await
        .unwrap();
    let second_token = second["session"]["token"].as_str().unwrap().to_owned();
    let path = format!("/admin/users/{}/sessions", plain.id);

    assert_error(
        get(&app, &path, &plain.token).await,
        403,
        "permission_denied",
    )
    .await;
    let list = ok_json(get(&app, &path, &admin.token).await).await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    assert!(
        sessions[0]["createdAt"].as_str().unwrap() > sessions[1]["createdAt"].as_str().unwrap()
    );
    for s in sessions {
        assert_eq!(s["userId"], plain.id);
        assert_eq!(s["ipAddress"], "127.0.0.1");
        assert_eq!(s["userAgent"], "warden-tests/1.0");
        assert!(s["impersonatedBy"].is_null());
        assert!(s.get("token").is_none(), "no token in a listing: {s}");
        assert!(!s.to_string().contains(&plain.token));
    }
    // One session, by id: only that one ends.
    let newest = sessions[0]["id"].as_str().unwrap().to_owned();
    let one = format!("/admin/sessions/{newest}");
    assert_error(
        delete(&app, &one, &plain.token).await,
        403,
        "permission_denied",
    )
    .await;
    assert_eq!(
        ok_json(delete(&app, &one, &admin.token).await).await,
        json!({"success": true})
    );
    assert_error(
        app.get_as("/profile", &second_token).await,
        401,
        "unauthenticated",
    )
    .await;
    assert_eq!(app.get_as("/profile", &plain.token).await.status(), 200);
    assert_error(delete(&app, &one, &admin.token).await, 404, "not_found").await;

    // All of them (the user's cached session too).
    assert_error(
        delete(&app, &path, &plain.token).await,
        403,
        "permission_denied",
    )
    .await;
    let res = ok_json(delete(&app, &path, &admin.token).await).await;
    assert_eq!(res, json!({"success": true, "revoked": 1}));
    assert_error(
        app.get_as("/profile", &plain.token).await,
        401,
        "unauthenticated",
    )
    .await;
    let list = ok_json(get(&app, &path, &admin.token).await).await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 0);
    // The admin's own session is untouched.
    assert_eq!(app.get_as("/profile", &admin.token).await.status(), 200);
}

async fn impersonation_round_trip(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    let path = format!("/admin/users/{}/impersonate", plain.id);

    let other = app.new_user().await;
    let res = call(&app, Method::POST, &path, Some(&other.token), None).await;
    assert_error(res, 403, "permission_denied").await;

    let res = call(&app, Method::POST, &path, Some(&admin.token), None).await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(
        res.headers().get("set-cookie").is_none(),
        "a bearer client keeps its own session"
    );
    let body = ok_json(res).await;
    let token = body["session"]["token"].as_str().unwrap().to_owned();
    remember_secret(&token);
    assert_ne!(token, admin.token);
    assert_eq!(body["user"]["id"], plain.id);
    assert_eq!(body["session"]["impersonatedBy"], admin.id);
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["session"]["expiresAt"].as_str().unwrap())
            .unwrap();
    let left = expires.to_utc() - chrono::Utc::now();
    assert!(
        left <= chrono::TimeDelta::hours(1) && left > chrono::TimeDelta::minutes(59),
        "one hour by default: {left}"
    );

    // The impersonation token is the user; the admin's token is the admin.
    let me: Value = app.get_json_as("/profile", &token).await;
    assert_eq!(me["id"], plain.id);
    let me: Value = app.get_json_as("/profile", &admin.token).await;
    assert_eq!(me["id"], admin.id);
    // Admins see the impersonation; the user's own listing does not show it.
    let list = ok_json(
        get(
            &app,
            &format!("/admin/users/{}/sessions", plain.id),
            &admin.token,
        )
        .await,
    )
    .await;
    let imp: Vec<&Value> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["impersonatedBy"] == admin.id.as_str())
        .collect();
    assert_eq!(imp.len(), 1, "{list}");
    assert_eq!(imp[0]["id"], body["session"]["id"]);
    let own: Value = app.get_json_as("/sessions", &plain.token).await;
    assert_eq!(own["sessions"].as_array().unwrap().len(), 1);

    // No credential changes while impersonating.
    let res = post(
        &app,
        "/auth/change-email",
        &token,
        &json!({"newEmail": "taken-over@example.com"}),
    )
    .await;
    assert_error(res, 403, "permission_denied").await;
    let res = post(
        &app,
        "/api/auth/change-password",
        &token,
        &json!({"currentPassword": plain.password, "newPassword": "Taken-Over-Pass-1"}),
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        app.sign_in_as(&plain.email, &plain.password).await.status(),
        200
    );
    // Nor another impersonation (the user is no admin; nor could an admin).
    let third = app.new_user().await;
    let res = call(
        &app,
        Method::POST,
        &format!("/admin/users/{}/impersonate", third.id),
        Some(&token),
        None,
    )
    .await;
    assert_error(res, 403, "permission_denied").await;

    // Stopping from a session that is not an impersonation is refused.
    let stop = "/admin/stop-impersonating";
    let res = call(&app, Method::POST, stop, Some(&admin.token), None).await;
    let message = assert_error(res, 400, "invalid_argument").await;
    assert!(message.contains("not impersonating"), "{message}");
    let res = call(&app, Method::POST, stop, Some(&plain.token), None).await;
    assert_error(res, 400, "invalid_argument").await;
    // Stopping ends it and names the admin.
    let res = ok_json(call(&app, Method::POST, stop, Some(&token), None).await).await;
    assert_eq!(res, json!({"success": true, "adminId": admin.id}));
    assert_error(app.get_as("/profile", &token).await, 401, "unauthenticated").await;
    let res = call(&app, Method::POST, stop, Some(&token), None).await;
    assert_error(res, 401, "unauthenticated").await;
    // The admin and the user are signed in as before.
    assert_eq!(app.get_as("/profile", &admin.token).await.status(), 200);
    assert_eq!(app.get_as("/profile", &plain.token).await.status(), 200);

    // The audit trail has both ends.
    let audit = ok_json(get(&app, "/admin/audit", &admin.token).await).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"impersonation.start"), "{audit}");
    assert!(actions.contains(&"impersonation.stop"), "{audit}");
}

async fn impersonating_admins_is_refused(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let other = app.new_admin().await;
    let res = call(
        &app,
        Method::POST,
        &format!("/admin/users/{}/impersonate", other.id),
        Some(&admin.token),
        None,
    )
    .await;
    let message = assert_error(res, 403, "permission_denied").await;
    assert!(message.contains("admins"), "{message}");
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "session" WHERE "impersonatedBy" IS NOT NULL"#,
            &[]
        )
        .await,
        0
    );
    // Nor a banned user.
    let plain = app.new_user().await;
    let ban = format!("/admin/users/{}/ban", plain.id);
    assert_eq!(
        post(&app, &ban, &admin.token, &json!({})).await.status(),
        200
    );
    let res = call(
        &app,
        Method::POST,
        &format!("/admin/users/{}/impersonate", plain.id),
        Some(&admin.token),
        None,
    )
    .await;
    assert_error(res, 403, "permission_denied").await;
}

async fn has_permission(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    let ask = |token: String, permissions: Value| {
        let app = &app;
        async move {
            post(
                app,
                "/admin/has-permission",
                &token,
                &json!({"permissions": permissions}),
            )
            .await
        }
    };
    for (perms, expected) in [
        (json!({"user": ["ban"]}), true),
        (
            json!({"user": ["list", "set-role"], "session": ["revoke"]}),
            true,
        ),
        (json!({"user": ["impersonate-admins"]}), false),
        (json!({"user": ["ban", "fly"]}), false),
        (json!({"planet": ["destroy"]}), false),
        (json!({"user": []}), false),
    ] {
        let body = ok_json(ask(admin.token.clone(), perms.clone()).await).await;
        assert_eq!(body, json!({"success": expected}), "{perms}");
    }
    // A plain user may ask: the answer is no.
    let body = ok_json(ask(plain.token.clone(), json!({"user": ["list"]})).await).await;
    assert_eq!(body, json!({"success": false}));
    // Bad input.
    for perms in [
        json!([]),
        json!({}),
        json!({"user": "ban"}),
        json!({"user": [1]}),
        json!(null),
    ] {
        assert_invalid(ask(admin.token.clone(), perms).await, "permissions").await;
    }
    let res = post(&app, "/admin/has-permission", &admin.token, &json!({})).await;
    assert_invalid(res, "permissions").await;
}

async fn audit_trail(b: Backend) {
    let app = spawn_app(b).await;
    let admin = app.new_admin().await;
    let plain = app.new_user().await;
    let secret_password = "Audit-Secret-Pass-93";
    let created_password = "Created-Secret-Pass-57";
    remember_secret(secret_password);

    // Each action a little apart, so that "newest first" is well defined.
    let pause = || tokio::time::sleep(Duration::from_millis(15));
    let made = create(
        &app,
        &admin,
        json!({"email": "audited@example.com", "name": "Audited", "password": created_password}),
    )
    .await;
    let made_id = made["id"].as_str().unwrap().to_owned();
    pause().await;
    let u = format!("/admin/users/{}", plain.id);
    assert_eq!(
        put(
            &app,
            &format!("{u}/role"),
            &admin.token,
            &json!({"role": "admin"})
        )
        .await
        .status(),
        200
    );
    pause().await;
    assert_eq!(
        put(
            &app,
            &format!("{u}/password"),
            &admin.token,
            &json!({"newPassword": secret_password})
        )
        .await
        .status(),
        200
    );
    pause().await;
    assert_eq!(
        post(
            &app,
            &format!("{u}/ban"),
            &admin.token,
            &json!({"banReason": "testing"})
        )
        .await
        .status(),
        200
    );
    pause().await;
    assert_eq!(
        call(
            &app,
            Method::POST,
            &format!("{u}/unban"),
            Some(&admin.token),
            None
        )
        .await
        .status(),
        200
    );
    pause().await;
    assert_eq!(
        delete(&app, &format!("/admin/users/{made_id}"), &admin.token)
            .await
            .status(),
        200
    );

    let audit = ok_json(get(&app, "/admin/audit", &admin.token).await).await;
    assert_eq!(audit["total"], 6);
    assert_eq!(audit["limit"], 100);
    assert_eq!(audit["offset"], 0);
    let entries = audit["entries"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.delete",
            "user.unban",
            "user.ban",
            "user.set-password",
            "user.set-role",
            "user.create"
        ]
    );
    for e in entries {
        assert_eq!(e["actorId"], admin.id);
        assert_eq!(e["actor"], admin.email);
        assert_eq!(e["ipAddress"], "127.0.0.1");
        assert_eq!(e["userAgent"], "warden-tests/1.0");
        assert!(e["id"].is_string() && e["at"].is_string(), "{e}");
        assert!(e["detail"].is_object(), "{e}");
    }
    assert_eq!(entries[0]["targetId"], made_id);
    assert_eq!(entries[0]["detail"]["email"], "audited@example.com");
    assert_eq!(entries[2]["targetId"], plain.id);
    assert_eq!(entries[2]["detail"]["reason"], "testing");
    assert_eq!(entries[4]["detail"], json!({"from": "user", "to": "admin"}));
    assert_eq!(entries[5]["targetId"], made_id);
    assert_eq!(entries[5]["detail"]["password"], true);
    let times: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    // In the table: actor, action, target and address recorded.
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "warden_audit" WHERE "actorId" = ? AND "actor" = ? AND "action" = 'user.set-password' AND "targetId" = ? AND "ipAddress" = '127.0.0.1' AND "userAgent" = 'warden-tests/1.0'"#,
            &[&admin.id, &admin.email, &plain.id],
        )
        .await,
        1
    );
    // No password text anywhere in the table.
    for pw in [secret_password, created_password] {
        let like = format!("%{pw}%");
        assert_eq!(
            app.count(
                r#"SELECT COUNT(*) FROM "warden_audit" WHERE "id" LIKE ? OR "actor" LIKE ? OR "action" LIKE ? OR COALESCE("actorId", '') LIKE ? OR COALESCE("targetId", '') LIKE ? OR COALESCE("ipAddress", '') LIKE ? OR COALESCE("userAgent", '') LIKE ? OR "detail" LIKE ?"#,
                &[&like, &like, &like, &like, &like, &like, &like, &like],
            )
            .await,
            0,
            "a password in warden_audit"
        );
    }
    assert!(!audit.to_string().contains(secret_password));
    assert!(!audit.to_string().contains(created_password));

    // Paging.
    let page = ok_json(get(&app, "/admin/audit?limit=2&offset=1", &admin.token).await).await;
    assert_eq!(page["total"], 6);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["offset"], 1);
    let actions: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.unban", "user.ban"]);
    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("limit=5000", "limit"),
        ("offset=-1", "offset"),
        ("offset=1&offset=2", "offset"),
    ] {
        assert_invalid(
            get(&app, &format!("/admin/audit?{q}"), &admin.token).await,
            field,
        )
        .await;
    }
    // Refused to a plain user (plain is now an admin: use another).
    let other = app.new_user().await;
    assert_error(
        get(&app, "/admin/audit", &other.token).await,
        403,
        "permission_denied",
    )
    .await;
}

async fn openapi_documents_the_admin_service(b: Backend) {
    let app = spawn_app(b).await;
    let doc: Value = app
        .get("/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "admin"),
        "the admin tag is declared"
    );
    let expected = [
        ("get", "/admin/users"),
        ("post", "/admin/users"),
        ("get", "/admin/users/{id}"),
        ("patch", "/admin/users/{id}"),
        ("delete", "/admin/users/{id}"),
        ("put", "/admin/users/{id}/role"),
        ("put", "/admin/users/{id}/password"),
        ("post", "/admin/users/{id}/ban"),
        ("post", "/admin/users/{id}/unban"),
        ("get", "/admin/users/{id}/sessions"),
        ("delete", "/admin/users/{id}/sessions"),
        ("delete", "/admin/sessions/{id}"),
        ("delete", "/admin/users/{id}/two-factor"),
        ("post", "/admin/users/{id}/impersonate"),
        ("post", "/admin/stop-impersonating"),
        ("post", "/admin/has-permission"),
        ("get", "/admin/audit"),
    ];
    let mut documented = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/admin/") {
            continue;
        }
        for (method, op) in ops.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            documented += 1;
            assert!(
                expected.contains(&(method.as_str(), path.as_str())),
                "{method} {path} is not expected"
            );
            assert_eq!(op["tags"], json!(["admin"]), "{method} {path}");
            assert!(
                op["operationId"]
                    .as_str()
                    .is_some_and(|id| id.starts_with("admin")),
                "{method} {path}"
            );
            assert!(
                op["security"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|r| r.get("bearerAuth").is_some())),
                "{method} {path} declares bearerAuth"
            );
            assert!(op["responses"]["401"].is_object(), "{method} {path}");
        }
    }
    assert_eq!(documented, expected.len());
    // The role is a string or an array of strings.
    let roles = &doc["components"]["schemas"]["Roles"];
    assert_eq!(roles["oneOf"].as_array().map(Vec::len), Some(2), "{roles}");
    // The listing documents its parameters.
    let params: Vec<&str> = doc["paths"]["/admin/users"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for p in [
        "search",
        "searchField",
        "searchOperator",
        "filterField",
        "filterValue",
        "filterOperator",
        "sortBy",
        "sortDirection",
        "limit",
        "offset",
    ] {
        assert!(params.contains(&p), "{p} in {params:?}");
    }
}
