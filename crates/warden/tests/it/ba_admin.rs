//! BetterAuth's admin plugin endpoints (`/api/auth/admin/*`), driven the way
//! `adminClient()` drives them: cookies, an Origin header, BetterAuth's
//! bodies, answers and error codes.

use std::time::Duration;

use serde_json::{json, Value};

use warden_core::Clock;

use crate::backend_tests;
use crate::helpers::{
    assert_ba_error, remember_secret, session_set_cookie, spawn_app, spawn_app_with,
    spawn_app_with_clock, BaUser, Backend, TestApp,
};

backend_tests!(
    admin_endpoints_refuse_non_admins_and_anonymous,
    list_users_searches_filters_sorts_and_paginates,
    list_users_bad_parameters_are_400s,
    get_create_update_users,
    set_role_and_privilege_escalation,
    ban_ends_cached_sessions_and_every_sign_in,
    ban_expiry_lifts_itself,
    impersonation_round_trip,
    impersonating_admins_is_refused,
    role_change_is_felt_by_a_cached_session,
    user_sessions_listed_and_revoked,
    set_password_and_remove_user,
    has_permission_checks_the_callers_own_role,
    custom_roles_and_admin_user_ids,
    audit_trail_records_who_what_whom,
);

/// A BetterAuth user made admin in the database before its session was used.
async fn ba_admin(app: &TestApp) -> BaUser {
    let u = app.ba_sign_up().await;
    app.set_role_in_db(&u.id, "admin").await;
    u
}

async fn ok_json(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "body: {body}");
    body
}

async fn get_session(app: &TestApp, cookie: &str) -> Value {
    ok_json(app.ba_get("/api/auth/get-session", cookie).await).await
}

/// The cookies a response sets, as `name=value` pairs a browser sends back
/// (a cleared cookie has an empty value).
fn set_cookies(res: &reqwest::Response) -> Vec<(String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| {
            let pair = c.split(';').next().unwrap_or("");
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect()
}

/// A cookie jar as a `Cookie` header: `jar` updated by `res`.
fn update_jar(jar: &str, res: &reqwest::Response) -> String {
    let mut pairs: Vec<(String, String)> = jar
        .split("; ")
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('=').map(|(n, v)| (n.to_owned(), v.to_owned())))
        .collect();
    for (n, v) in set_cookies(res) {
        pairs.retain(|(k, _)| k != &n);
        if !v.is_empty() {
            remember_secret(&v);
            pairs.push((n, v));
        }
    }
    pairs
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn admin_endpoints_refuse_non_admins_and_anonymous(backend: Backend) {
    let app = spawn_app(backend).await;
    let user = app.ba_sign_up().await;
    let other = app.ba_sign_up().await;
    let id = other.id.as_str();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/api/auth/admin/set-role",
            json!({"userId": id, "role": "admin"}),
            "YOU_ARE_NOT_ALLOWED_TO_CHANGE_USERS_ROLE",
        ),
        (
            "/api/auth/admin/create-user",
            json!({"email": "x-new@example.com", "password": "Str0ng-and-long!", "name": "X"}),
            "YOU_ARE_NOT_ALLOWED_TO_CREATE_USERS",
        ),
        (
            "/api/auth/admin/update-user",
            json!({"userId": id, "data": {"name": "Y"}}),
            "YOU_ARE_NOT_ALLOWED_TO_UPDATE_USERS",
        ),
        (
            "/api/auth/admin/list-user-sessions",
            json!({"userId": id}),
            "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS_SESSIONS",
        ),
        (
            "/api/auth/admin/ban-user",
            json!({"userId": id}),
            "YOU_ARE_NOT_ALLOWED_TO_BAN_USERS",
        ),
        (
            "/api/auth/admin/unban-user",
            json!({"userId": id}),
            "YOU_ARE_NOT_ALLOWED_TO_BAN_USERS",
        ),
        (
            "/api/auth/admin/impersonate-user",
            json!({"userId": id}),
            "YOU_ARE_NOT_ALLOWED_TO_IMPERSONATE_USERS",
        ),
        (
            "/api/auth/admin/revoke-user-session",
            json!({"sessionToken": "x"}),
            "YOU_ARE_NOT_ALLOWED_TO_REVOKE_USERS_SESSIONS",
        ),
        (
            "/api/auth/admin/revoke-user-sessions",
            json!({"userId": id}),
            "YOU_ARE_NOT_ALLOWED_TO_REVOKE_USERS_SESSIONS",
        ),
        (
            "/api/auth/admin/remove-user",
            json!({"userId": id}),
            "YOU_ARE_NOT_ALLOWED_TO_DELETE_USERS",
        ),
        (
            "/api/auth/admin/set-user-password",
            json!({"userId": id, "newPassword": "Str0ng-and-long!"}),
            "YOU_ARE_NOT_ALLOWED_TO_SET_USERS_PASSWORD",
        ),
    ];
    for (path, body, code) in &cases {
        let res = app.ba_post(path, &user.cookie, body).await;
        assert_ba_error(res, 403, code).await;
        let res = app
            .post(path)
            .header("origin", app.origin())
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{path} without a session");
    }
    for (path, code) in [
        (
            "/api/auth/admin/list-users",
            "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS",
        ),
        (
            &*format!("/api/auth/admin/get-user?id={id}"),
            "YOU_ARE_NOT_ALLOWED_TO_GET_USER",
        ),
    ] {
        assert_ba_error(app.ba_get(path, &user.cookie).await, 403, code).await;
        assert_eq!(app.get(path).send().await.unwrap().status(), 401);
    }
    // Nothing changed: the other user is neither banned nor gone.
    let banned = app
        .fetch_text(
            r#"SELECT CAST("banned" AS TEXT) FROM "user" WHERE "id" = ?"#,
            &[id],
        )
        .await;
    assert!(
        matches!(banned.as_deref(), Some("0" | "false")),
        "{banned:?}"
    );
}

async fn list_users_searches_filters_sorts_and_paginates(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let tag = warden_core::token::random_string(6).to_lowercase();
    let mut ids = Vec::new();
    for (i, name) in ["Carol", "alice", "Bob"].iter().enumerate() {
        let res = app
            .ba_post(
                "/api/auth/admin/create-user",
                &admin.cookie,
                &json!({"email": format!("{tag}-{i}@list.test"), "password": "Str0ng-and-long!", "name": name}),
            )
            .await;
        ids.push(
            ok_json(res).await["user"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let list = |q: String| {
        let app = &app;
        let cookie = admin.cookie.clone();
        async move {
            ok_json(
                app.ba_get(&format!("/api/auth/admin/list-users?{q}"), &cookie)
                    .await,
            )
            .await
        }
    };
    // Everyone: the admin and the three, default limit.
    let all = list(String::new()).await;
    assert_eq!(all["total"], 4);
    assert_eq!(all["limit"], 100);
    assert_eq!(all["offset"], 0);
    // Search by email (contains, the default), case-insensitively.
    let found = list(format!(
        "searchValue={}&searchField=email",
        tag.to_uppercase()
    ))
    .await;
    assert_eq!(found["total"], 3, "{found}");
    // Search by name, starts_with, ignoring case.
    let found = list("searchValue=AL&searchField=name&searchOperator=starts_with".into()).await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["users"][0]["name"], "alice");
    // ends_with
    let found = list(format!(
        "searchValue={tag}-2@list.test&searchOperator=ends_with"
    ))
    .await;
    assert_eq!(found["users"][0]["id"], ids[2].as_str());
    // LIKE wildcards are literal.
    let found = list("searchValue=%25&searchField=name".into()).await;
    assert_eq!(found["total"], 0);
    // Sort by name descending with pagination.
    let page = list(format!(
        "searchValue={tag}&sortBy=name&sortDirection=desc&limit=2&offset=1"
    ))
    .await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["offset"], 1);
    let names: Vec<&str> = page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    // desc: Carol, Bob, alice (case-sensitive collation differs by backend
    // only for the lower-case name; Carol is first either way).
    assert_eq!(names.len(), 2);
    // Filter: role eq admin finds the admin only.
    let admins = list("filterField=role&filterValue=admin".into()).await;
    assert_eq!(admins["total"], 1);
    assert_eq!(admins["users"][0]["id"], admin.id.as_str());
    // Filter: ne, and in with repeated values.
    let others = list("filterField=role&filterValue=admin&filterOperator=ne".into()).await;
    assert_eq!(others["total"], 3);
    let two = list(format!(
        "filterField=id&filterOperator=in&filterValue={}&filterValue={}",
        ids[0], ids[1]
    ))
    .await;
    assert_eq!(two["total"], 2);
    // Filter a boolean.
    let unbanned = list("filterField=banned&filterValue=false".into()).await;
    assert_eq!(unbanned["total"], 4);
    // Users carry the admin plugin's fields.
    let u = &all["users"][0];
    for f in [
        "role",
        "banned",
        "banReason",
        "banExpires",
        "emailVerified",
        "createdAt",
    ] {
        assert!(u.get(f).is_some(), "{f} missing in {u}");
    }
}

async fn list_users_bad_parameters_are_400s(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    for (q, field) in [
        ("sortBy=password", "sortBy"),
        ("filterField=password&filterValue=x", "filterField"),
        (
            "filterField=email&filterValue=x&filterOperator=like",
            "filterOperator",
        ),
        ("filterField=banned&filterValue=maybe", "filterValue"),
        (
            "filterField=createdAt&filterValue=yesterday&filterOperator=lt",
            "filterValue",
        ),
        ("searchValue=x&searchField=role", "searchField"),
        ("searchValue=x&searchOperator=eq", "searchOperator"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=100000", "limit"),
        ("offset=abc", "offset"),
        ("sortBy=name&sortDirection=up", "sortDirection"),
    ] {
        let res = app
            .ba_get(&format!("/api/auth/admin/list-users?{q}"), &admin.cookie)
            .await;
        let message = assert_ba_error(res, 400, "VALIDATION_ERROR").await;
        assert!(message.contains(field), "{q}: {message}");
    }
}

async fn get_create_update_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    // create-user with a password and a role; the user can sign in.
    let email = format!(
        "made-{}@example.com",
        warden_core::token::random_string(6).to_lowercase()
    );
    let res = app
        .ba_post(
            "/api/auth/admin/create-user",
            &admin.cookie,
            &json!({"email": email.to_uppercase(), "password": "Str0ng-and-long!", "name": "Made", "role": ["user", "admin"], "data": {"emailVerified": true}}),
        )
        .await;
    let made = ok_json(res).await["user"].clone();
    assert_eq!(made["email"], email.as_str());
    assert_eq!(made["role"], "user,admin");
    assert_eq!(made["emailVerified"], true);
    assert_eq!(made["banned"], false);
    let id = made["id"].as_str().unwrap().to_owned();
    app.ba_sign_in(&email, "Str0ng-and-long!").await;
    // Without a password: no credential account; default role.
    let res = app
        .ba_post(
            "/api/auth/admin/create-user",
            &admin.cookie,
            &json!({"email": "nopass@example.com", "name": "No Pass"}),
        )
        .await;
    let nopass = ok_json(res).await["user"].clone();
    assert_eq!(nopass["role"], "user");
    let accounts = app
        .count(
            r#"SELECT COUNT(*) FROM "account" WHERE "userId" = ?"#,
            &[nopass["id"].as_str().unwrap()],
        )
        .await;
    assert_eq!(accounts, 0);
    // Bad input.
    for (body, status, code) in [
        (
            json!({"email": email, "password": "Str0ng-and-long!", "name": "Dup"}),
            400,
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
        ),
        (
            json!({"email": "not-an-email", "name": "X"}),
            400,
            "INVALID_EMAIL",
        ),
        (
            json!({"email": "short@example.com", "password": "short", "name": "X"}),
            400,
            "PASSWORD_TOO_SHORT",
        ),
        (
            json!({"email": "role@example.com", "name": "X", "role": "superuser"}),
            400,
            "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE",
        ),
        (
            json!({"email": "data@example.com", "name": "X", "data": {"banned": true}}),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({"name": "X"}), 400, "VALIDATION_ERROR"),
    ] {
        let res = app
            .ba_post("/api/auth/admin/create-user", &admin.cookie, &body)
            .await;
        assert_ba_error(res, status, code).await;
    }
    assert_eq!(app.users_with_email("role@example.com").await, 0);
    // get-user: the user itself, not wrapped.
    let got = ok_json(
        app.ba_get(&format!("/api/auth/admin/get-user?id={id}"), &admin.cookie)
            .await,
    )
    .await;
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["email"], email.as_str());
    assert_ba_error(
        app.ba_get("/api/auth/admin/get-user?id=nobody", &admin.cookie)
            .await,
        404,
        "USER_NOT_FOUND",
    )
    .await;
    assert_ba_error(
        app.ba_get("/api/auth/admin/get-user", &admin.cookie).await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
    // update-user: the user itself in the answer.
    let res = app
        .ba_post(
            "/api/auth/admin/update-user",
            &admin.cookie,
            &json!({"userId": id, "data": {"name": "Renamed", "email": "Renamed@Example.com", "emailVerified": false, "image": null}}),
        )
        .await;
    let updated = ok_json(res).await;
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["email"], "renamed@example.com");
    assert_eq!(updated["emailVerified"], false);
    for (data, status, code) in [
        (json!({}), 400, "NO_DATA_TO_UPDATE"),
        (
            json!({"password": "x"}),
            400,
            "PASSWORD_CANNOT_BE_UPDATED_VIA_UPDATE_USER",
        ),
        (json!({"id": "x"}), 400, "USER_ID_CANNOT_BE_UPDATED"),
        (
            json!({"email": admin.email}),
            400,
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
        ),
        (json!({"email": "nope"}), 400, "INVALID_EMAIL"),
        (
            json!({"role": "superuser"}),
            400,
            "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE",
        ),
        (json!({"phoneNumber": "123"}), 400, "VALIDATION_ERROR"),
        (json!({"banned": "yes"}), 400, "VALIDATION_ERROR"),
        (json!({"name": ""}), 400, "VALIDATION_ERROR"),
    ] {
        let res = app
            .ba_post(
                "/api/auth/admin/update-user",
                &admin.cookie,
                &json!({"userId": id, "data": data}),
            )
            .await;
        assert_ba_error(res, status, code).await;
    }
    let res = app
        .ba_post(
            "/api/auth/admin/update-user",
            &admin.cookie,
            &json!({"userId": "nobody", "data": {"name": "Z"}}),
        )
        .await;
    assert_ba_error(res, 404, "USER_NOT_FOUND").await;
    // Banning oneself through update-user is refused too.
    let res = app
        .ba_post(
            "/api/auth/admin/update-user",
            &admin.cookie,
            &json!({"userId": admin.id, "data": {"banned": true}}),
        )
        .await;
    assert_ba_error(res, 400, "YOU_CANNOT_BAN_YOURSELF").await;
}

async fn set_role_and_privilege_escalation(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let user = app.ba_sign_up().await;
    // A user making themself admin is refused and stays a user.
    let res = app
        .ba_post(
            "/api/auth/admin/set-role",
            &user.cookie,
            &json!({"userId": user.id, "role": "admin"}),
        )
        .await;
    assert_ba_error(res, 403, "YOU_ARE_NOT_ALLOWED_TO_CHANGE_USERS_ROLE").await;
    let res = app
        .ba_post(
            "/api/auth/admin/update-user",
            &user.cookie,
            &json!({"userId": user.id, "data": {"role": "admin"}}),
        )
        .await;
    assert_ba_error(res, 403, "YOU_ARE_NOT_ALLOWED_TO_UPDATE_USERS").await;
    assert_eq!(
        app.fetch_text(r#"SELECT "role" FROM "user" WHERE "id" = ?"#, &[&user.id])
            .await
            .as_deref(),
        Some("user")
    );
    // The admin sets a role (string and list).
    let res = app
        .ba_post(
            "/api/auth/admin/set-role",
            &admin.cookie,
            &json!({"userId": user.id, "role": "admin"}),
        )
        .await;
    assert_eq!(ok_json(res).await["user"]["role"], "admin");
    let res = app
        .ba_post(
            "/api/auth/admin/set-role",
            &admin.cookie,
            &json!({"userId": user.id, "role": ["user", "admin"]}),
        )
        .await;
    assert_eq!(ok_json(res).await["user"]["role"], "user,admin");
    // The user's cached session sees it at once: they may list users now.
    let res = app.ba_get("/api/auth/admin/list-users", &user.cookie).await;
    assert_eq!(res.status(), 200);
    for (body, status, code) in [
        (
            json!({"userId": user.id, "role": "superuser"}),
            400,
            "YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE",
        ),
        (
            json!({"userId": user.id, "role": []}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"userId": user.id, "role": 5}),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({"userId": user.id}), 400, "VALIDATION_ERROR"),
        (
            json!({"userId": "nobody", "role": "user"}),
            404,
            "USER_NOT_FOUND",
        ),
    ] {
        let res = app
            .ba_post("/api/auth/admin/set-role", &admin.cookie, &body)
            .await;
        assert_ba_error(res, status, code).await;
    }
}

async fn ban_ends_cached_sessions_and_every_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let user = app.ba_sign_up().await;
    // The session is in the cache (5 s by default) after these.
    for _ in 0..2 {
        assert!(get_session(&app, &user.cookie).await["user"].is_object());
    }
    let bearer_token = user.token.clone();
    let res = app
        .ba_post(
            "/api/auth/admin/ban-user",
            &admin.cookie,
            &json!({"userId": user.id, "banReason": "spam"}),
        )
        .await;
    let banned = ok_json(res).await["user"].clone();
    assert_eq!(banned["banned"], true);
    assert_eq!(banned["banReason"], "spam");
    assert!(banned["banExpires"].is_null());
    // The very next request with the cached session is signed out.
    assert!(get_session(&app, &user.cookie).await.is_null());
    let res = app
        .get("/profile")
        .header("authorization", format!("Bearer {bearer_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "session" WHERE "userId" = ?"#,
            &[&user.id]
        )
        .await,
        0
    );
    // Every sign-in method is refused with BetterAuth's error.
    let res = app
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    let message = assert_ba_error(res, 403, "BANNED_USER").await;
    assert!(message.contains("banned"), "{message}");
    let res = app.sign_in_as(&user.email, &user.password).await;
    assert_eq!(res.status(), 403, "the tutorial API's sign-in");
    // A wrong password still says only "invalid": the ban is not revealed.
    let res = app
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": user.email, "password": "wrong-password-1"}))
        .send()
        .await
        .unwrap();
    assert_ba_error(res, 401, "INVALID_EMAIL_OR_PASSWORD").await;
    // Banning oneself, or nobody.
    let res = app
        .ba_post(
            "/api/auth/admin/ban-user",
            &admin.cookie,
            &json!({"userId": admin.id}),
        )
        .await;
    assert_ba_error(res, 400, "YOU_CANNOT_BAN_YOURSELF").await;
    let res = app
        .ba_post(
            "/api/auth/admin/ban-user",
            &admin.cookie,
            &json!({"userId": "nobody"}),
        )
        .await;
    assert_ba_error(res, 404, "USER_NOT_FOUND").await;
    for body in [
        json!({"userId": user.id, "banExpiresIn": -5}),
        json!({"userId": user.id, "banExpiresIn": "soon"}),
        json!({}),
    ] {
        let res = app
            .ba_post("/api/auth/admin/ban-user", &admin.cookie, &body)
            .await;
        assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    }
    // Unban: sign-in works again.
    let res = app
        .ba_post(
            "/api/auth/admin/unban-user",
            &admin.cookie,
            &json!({"userId": user.id}),
        )
        .await;
    let unbanned = ok_json(res).await["user"].clone();
    assert_eq!(unbanned["banned"], false);
    assert!(unbanned["banReason"].is_null());
    app.ba_sign_in(&user.email, &user.password).await;
    let res = app
        .ba_post(
            "/api/auth/admin/unban-user",
            &admin.cookie,
            &json!({"userId": "nobody"}),
        )
        .await;
    assert_ba_error(res, 404, "USER_NOT_FOUND").await;
}

async fn ban_expiry_lifts_itself(backend: Backend) {
    let app = spawn_app_with_clock(backend, |c| {
        c.admin.default_ban_reason = Some("house rules".into());
    })
    .await;
    let admin = ba_admin(&app).await;
    let user = app.ba_sign_up().await;
    let res = app
        .ba_post(
            "/api/auth/admin/ban-user",
            &admin.cookie,
            &json!({"userId": user.id, "banExpiresIn": 3600}),
        )
        .await;
    let banned = ok_json(res).await["user"].clone();
    assert_eq!(banned["banReason"], "house rules");
    let expires =
        chrono::DateTime::parse_from_rfc3339(banned["banExpires"].as_str().unwrap()).unwrap();
    assert_eq!((expires.to_utc() - app.clock.now()).num_seconds(), 3600);
    let sign_in = || {
        app.post("/api/auth/sign-in/email")
            .json(&json!({"email": user.email, "password": user.password}))
            .send()
    };
    assert_ba_error(sign_in().await.unwrap(), 403, "BANNED_USER").await;
    app.clock.advance(Duration::from_secs(3599));
    assert_ba_error(sign_in().await.unwrap(), 403, "BANNED_USER").await;
    app.clock.advance(Duration::from_secs(2));
    let res = sign_in().await.unwrap();
    assert_eq!(res.status(), 200);
    // The ban is lifted in the database, as BetterAuth does.
    let banned = app
        .fetch_text(
            r#"SELECT CAST("banned" AS TEXT) FROM "user" WHERE "id" = ?"#,
            &[&user.id],
        )
        .await;
    assert!(
        matches!(banned.as_deref(), Some("0" | "false")),
        "{banned:?}"
    );
}

async fn impersonation_round_trip(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let target = app.ba_sign_up().await;
    let res = app
        .ba_post(
            "/api/auth/admin/impersonate-user",
            &admin.cookie,
            &json!({"userId": target.id}),
        )
        .await;
    let jar = update_jar(&admin.cookie, &res);
    assert!(jar.contains(".admin_session="), "{jar}");
    let (session_cookie, _) = session_set_cookie(&res).unwrap();
    let body = ok_json(res).await;
    assert_eq!(body["user"]["id"], target.id.as_str());
    assert_eq!(body["session"]["impersonatedBy"], admin.id.as_str());
    remember_secret(body["session"]["token"].as_str().unwrap());
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["session"]["expiresAt"].as_str().unwrap())
            .unwrap();
    let left = (expires.to_utc() - chrono::Utc::now()).num_seconds();
    assert!((3590..=3600).contains(&left), "an hour, got {left}s");
    assert!(jar.contains(&session_cookie), "{jar}");
    // The admin now sees the target's session.
    let s = get_session(&app, &jar).await;
    assert_eq!(s["user"]["id"], target.id.as_str());
    assert_eq!(s["session"]["impersonatedBy"], admin.id.as_str());
    // The target's own list does not show the impersonation.
    let (target_cookie, _) = app.ba_sign_in(&target.email, &target.password).await;
    let own = ok_json(app.ba_get("/api/auth/list-sessions", &target_cookie).await).await;
    assert!(
        own.as_array()
            .unwrap()
            .iter()
            .all(|s| s["impersonatedBy"].is_null()),
        "{own}"
    );
    // While impersonating: no password, email or second-factor changes, and
    // no second impersonation (stricter than BetterAuth).
    let res = app
        .ba_post(
            "/api/auth/change-password",
            &jar,
            &json!({"currentPassword": target.password, "newPassword": "An0ther-long-one!"}),
        )
        .await;
    assert_ba_error(res, 403, "NOT_ALLOWED_WHILE_IMPERSONATING").await;
    let res = app
        .ba_post(
            "/api/auth/change-email",
            &jar,
            &json!({"newEmail": "elsewhere@example.com"}),
        )
        .await;
    assert_ba_error(res, 403, "NOT_ALLOWED_WHILE_IMPERSONATING").await;
    let res = app
        .ba_post(
            "/api/auth/two-factor/enable",
            &jar,
            &json!({"password": target.password}),
        )
        .await;
    assert_ba_error(res, 403, "NOT_ALLOWED_WHILE_IMPERSONATING").await;
    let res = app
        .ba_post(
            "/api/auth/admin/impersonate-user",
            &jar,
            &json!({"userId": target.id}),
        )
        .await;
    assert_eq!(res.status(), 403);
    // Stop: the admin's own session is back, the impersonation is gone.
    let res = app
        .ba_post("/api/auth/admin/stop-impersonating", &jar, &json!({}))
        .await;
    let jar = update_jar(&jar, &res);
    let back = ok_json(res).await;
    assert_eq!(back["user"]["id"], admin.id.as_str());
    assert!(!jar.contains(".admin_session="), "{jar}");
    let s = get_session(&app, &jar).await;
    assert_eq!(s["user"]["id"], admin.id.as_str());
    assert!(s["session"]["impersonatedBy"].is_null());
    assert!(get_session(&app, &session_cookie).await.is_null());
    // Not impersonating any more.
    let res = app
        .ba_post("/api/auth/admin/stop-impersonating", &jar, &json!({}))
        .await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        app.count(
            r#"SELECT COUNT(*) FROM "session" WHERE "userId" = ? AND "impersonatedBy" IS NOT NULL"#,
            &[&target.id]
        )
        .await,
        0
    );
    // Unknown user.
    let res = app
        .ba_post(
            "/api/auth/admin/impersonate-user",
            &admin.cookie,
            &json!({"userId": "nobody"}),
        )
        .await;
    assert_ba_error(res, 404, "USER_NOT_FOUND").await;
}

async fn impersonating_admins_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let other_admin = ba_admin(&app).await;
    let res = app
        .ba_post(
            "/api/auth/admin/impersonate-user",
            &admin.cookie,
            &json!({"userId": other_admin.id}),
        )
        .await;
    assert_ba_error(res, 403, "YOU_CANNOT_IMPERSONATE_ADMINS").await;
    // Unless allowed.
    let app = spawn_app_with(backend, |c| c.admin.allow_impersonating_admins = true).await;
    let admin = ba_admin(&app).await;
    let other_admin = ba_admin(&app).await;
    let res = app
        .ba_post(
            "/api/auth/admin/impersonate-user",
            &admin.cookie,
            &json!({"userId": other_admin.id}),
        )
        .await;
    assert_eq!(res.status(), 200);
}

async fn role_change_is_felt_by_a_cached_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let second = ba_admin(&app).await;
    for _ in 0..2 {
        let res = app
            .ba_get("/api/auth/admin/list-users", &second.cookie)
            .await;
        assert_eq!(res.status(), 200);
    }
    let res = app
        .ba_post(
            "/api/auth/admin/set-role",
            &admin.cookie,
            &json!({"userId": second.id, "role": "user"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .ba_get("/api/auth/admin/list-users", &second.cookie)
        .await;
    assert_ba_error(res, 403, "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS").await;
}

async fn user_sessions_listed_and_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let user = app.ba_sign_up().await;
    let (second_cookie, _) = app.ba_sign_in(&user.email, &user.password).await;
    for c in [&user.cookie, &second_cookie] {
        assert!(get_session(&app, c).await["user"].is_object());
    }
    let list = ok_json(
        app.ba_post(
            "/api/auth/admin/list-user-sessions",
            &admin.cookie,
            &json!({"userId": user.id}),
        )
        .await,
    )
    .await;
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    for s in sessions {
        assert_eq!(s["userId"], user.id.as_str());
        // A handle (the session id), never a stored token.
        assert_eq!(s["token"], s["id"]);
    }
    // Revoke one by the handle the listing shows: that cached session ends.
    let newest = sessions[0]["id"].as_str().unwrap();
    let res = app
        .ba_post(
            "/api/auth/admin/revoke-user-session",
            &admin.cookie,
            &json!({"sessionToken": newest}),
        )
        .await;
    assert_eq!(ok_json(res).await["success"], true);
    assert!(get_session(&app, &second_cookie).await.is_null());
    assert!(get_session(&app, &user.cookie).await["user"].is_object());
    // An unknown handle: still success, as BetterAuth.
    let res = app
        .ba_post(
            "/api/auth/admin/revoke-user-session",
            &admin.cookie,
            &json!({"sessionToken": "nothing"}),
        )
        .await;
    assert_eq!(ok_json(res).await["success"], true);
    // All of them.
    let res = app
        .ba_post(
            "/api/auth/admin/revoke-user-sessions",
            &admin.cookie,
            &json!({"userId": user.id}),
        )
        .await;
    assert_eq!(ok_json(res).await["success"], true);
    assert!(get_session(&app, &user.cookie).await.is_null());
    let list = ok_json(
        app.ba_post(
            "/api/auth/admin/list-user-sessions",
            &admin.cookie,
            &json!({"userId": user.id}),
        )
        .await,
    )
    .await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 0);
    for path in [
        "/api/auth/admin/list-user-sessions",
        "/api/auth/admin/revoke-user-sessions",
        "/api/auth/admin/revoke-user-session",
    ] {
        let res = app.ba_post(path, &admin.cookie, &json!({})).await;
        assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    }
}

async fn set_password_and_remove_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let user = app.ba_sign_up().await;
    let new_password = format!("Fresh-{}-pass", warden_core::token::random_string(10));
    remember_secret(&new_password);
    let res = app
        .ba_post(
            "/api/auth/admin/set-user-password",
            &admin.cookie,
            &json!({"userId": user.id, "newPassword": new_password}),
        )
        .await;
    assert_eq!(ok_json(res).await["status"], true);
    app.ba_sign_in(&user.email, &new_password).await;
    let res = app
        .post("/api/auth/sign-in/email")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the old password no longer works");
    // A user without a password gets a credential account.
    let res = app
        .ba_post(
            "/api/auth/admin/create-user",
            &admin.cookie,
            &json!({"email": "later@example.com", "name": "Later"}),
        )
        .await;
    let later = ok_json(res).await["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .ba_post(
            "/api/auth/admin/set-user-password",
            &admin.cookie,
            &json!({"userId": later, "newPassword": new_password}),
        )
        .await;
    assert_eq!(res.status(), 200);
    app.ba_sign_in("later@example.com", &new_password).await;
    for (body, status, code) in [
        (
            json!({"userId": user.id, "newPassword": ""}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"userId": "", "newPassword": new_password}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"userId": user.id, "newPassword": "short"}),
            400,
            "PASSWORD_TOO_SHORT",
        ),
        (
            json!({"userId": user.id, "newPassword": "x".repeat(200)}),
            400,
            "PASSWORD_TOO_LONG",
        ),
        (
            json!({"userId": user.id, "newPassword": "password123"}),
            400,
            "PASSWORD_COMPROMISED",
        ),
        (
            json!({"userId": "nobody", "newPassword": new_password}),
            404,
            "USER_NOT_FOUND",
        ),
    ] {
        let res = app
            .ba_post("/api/auth/admin/set-user-password", &admin.cookie, &body)
            .await;
        assert_ba_error(res, status, code).await;
    }
    // remove-user: the user and their sessions are gone.
    let (cookie, _) = app.ba_sign_in(&user.email, &new_password).await;
    assert!(get_session(&app, &cookie).await["user"].is_object());
    let res = app
        .ba_post(
            "/api/auth/admin/remove-user",
            &admin.cookie,
            &json!({"userId": user.id}),
        )
        .await;
    assert_eq!(ok_json(res).await["success"], true);
    assert!(get_session(&app, &cookie).await.is_null());
    assert_eq!(app.users_with_email(&user.email).await, 0);
    let res = app
        .ba_post(
            "/api/auth/admin/remove-user",
            &admin.cookie,
            &json!({"userId": user.id}),
        )
        .await;
    assert_ba_error(res, 404, "USER_NOT_FOUND").await;
    let res = app
        .ba_post(
            "/api/auth/admin/remove-user",
            &admin.cookie,
            &json!({"userId": admin.id}),
        )
        .await;
    assert_ba_error(res, 400, "YOU_CANNOT_REMOVE_YOURSELF").await;
}

async fn has_permission_checks_the_callers_own_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let user = app.ba_sign_up().await;
    let check = |cookie: String, body: Value| {
        let app = &app;
        async move {
            app.ba_post("/api/auth/admin/has-permission", &cookie, &body)
                .await
        }
    };
    for (cookie, perms, expect) in [
        (&admin.cookie, json!({"user": ["ban"]}), true),
        (
            &admin.cookie,
            json!({"user": ["ban", "list"], "session": ["revoke"]}),
            true,
        ),
        (
            &admin.cookie,
            json!({"user": ["impersonate-admins"]}),
            false,
        ),
        (&admin.cookie, json!({"user": []}), false),
        (&admin.cookie, json!({"organization": ["create"]}), false),
        (&user.cookie, json!({"user": ["ban"]}), false),
    ] {
        let res = check(cookie.clone(), json!({"permissions": perms})).await;
        let body = ok_json(res).await;
        assert_eq!(body["success"], expect, "{perms}");
        assert!(body["error"].is_null());
    }
    // A plain user cannot learn more by naming the admin role.
    let res = check(
        user.cookie.clone(),
        json!({"role": "admin", "permissions": {"user": ["ban"]}}),
    )
    .await;
    assert_eq!(ok_json(res).await["success"], false);
    let res = check(admin.cookie.clone(), json!({})).await;
    assert_ba_error(res, 400, "BAD_REQUEST").await;
    let res = check(
        admin.cookie.clone(),
        json!({"permissions": {"user": "ban"}}),
    )
    .await;
    assert_ba_error(res, 400, "VALIDATION_ERROR").await;
    let res = app
        .post("/api/auth/admin/has-permission")
        .json(&json!({"permissions": {"user": ["ban"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

async fn custom_roles_and_admin_user_ids(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        c.admin.roles.insert(
            "support".into(),
            [(
                "user".to_string(),
                vec!["list".to_string(), "get".to_string()],
            )]
            .into(),
        );
    })
    .await;
    let support = app.ba_sign_up().await;
    app.set_role_in_db(&support.id, "support").await;
    let res = app
        .ba_get("/api/auth/admin/list-users", &support.cookie)
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .ba_post(
            "/api/auth/admin/ban-user",
            &support.cookie,
            &json!({"userId": support.id}),
        )
        .await;
    assert_ba_error(res, 403, "YOU_ARE_NOT_ALLOWED_TO_BAN_USERS").await;
    // Several roles: any one that allows it is enough.
    app.set_role_in_db(&support.id, "user,support").await;
    let (cookie, _) = app.ba_sign_in(&support.email, &support.password).await;
    assert_eq!(
        app.ba_get("/api/auth/admin/list-users", &cookie)
            .await
            .status(),
        200
    );

    // adminUserIds: an admin whatever the role. The id is known only after
    // sign-up, so a second server on the same database is configured with it.
    let url = app.database_url();
    let first = app.ba_sign_up().await;
    let second = spawn_app_with(backend, |c| {
        c.database_url = url.clone();
        c.admin.user_ids = vec![first.id.clone()];
    })
    .await;
    // (The second server has its own cookie secret: a bearer token works.)
    let res = second
        .get_as("/api/auth/admin/list-users", &first.token)
        .await;
    assert_eq!(res.status(), 200);
    let res = app.get_as("/api/auth/admin/list-users", &first.token).await;
    assert_eq!(res.status(), 403, "the first server has no such admin id");
}

async fn audit_trail_records_who_what_whom(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = ba_admin(&app).await;
    let user = app.ba_sign_up().await;
    let secret_password = format!("Audit-{}-secret", warden_core::token::random_string(10));
    remember_secret(&secret_password);
    let calls = [
        (
            "/api/auth/admin/set-user-password",
            json!({"userId": user.id, "newPassword": secret_password}),
        ),
        (
            "/api/auth/admin/ban-user",
            json!({"userId": user.id, "banReason": "audit"}),
        ),
        ("/api/auth/admin/unban-user", json!({"userId": user.id})),
        (
            "/api/auth/admin/set-role",
            json!({"userId": user.id, "role": "admin"}),
        ),
    ];
    for (path, body) in &calls {
        let res = app
            .post(path)
            .header("cookie", &admin.cookie)
            .header("origin", app.origin())
            .header("x-forwarded-for", "203.0.113.9")
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }
    for action in [
        "user.set-password",
        "user.ban",
        "user.unban",
        "user.set-role",
    ] {
        let n = app
            .count(
                r#"SELECT COUNT(*) FROM "warden_audit" WHERE "action" = ? AND "actorId" = ? AND "targetId" = ? AND "actor" = ? AND "ipAddress" IS NOT NULL"#,
                &[action, &admin.id, &user.id, &admin.email],
            )
            .await;
        assert_eq!(n, 1, "{action}");
    }
    let leaked = app
        .count(
            r#"SELECT COUNT(*) FROM "warden_audit" WHERE "detail" LIKE ?"#,
            &[&format!("%{secret_password}%")],
        )
        .await;
    assert_eq!(leaked, 0, "no password in the audit trail");
    // Impersonation start and stop are recorded too.
    let res = app
        .ba_post(
            "/api/auth/admin/impersonate-user",
            &admin.cookie,
            &json!({"userId": app.ba_sign_up().await.id}),
        )
        .await;
    let jar = update_jar(&admin.cookie, &res);
    assert_eq!(res.status(), 200);
    let res = app
        .ba_post("/api/auth/admin/stop-impersonating", &jar, &json!({}))
        .await;
    assert_eq!(res.status(), 200);
    for action in ["impersonation.start", "impersonation.stop"] {
        let n = app
            .count(
                r#"SELECT COUNT(*) FROM "warden_audit" WHERE "action" = ? AND "actorId" = ?"#,
                &[action, &admin.id],
            )
            .await;
        assert_eq!(n, 1, "{action}");
    }
}
