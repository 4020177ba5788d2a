//! BetterAuth's admin plugin endpoints (`/admin/*` under the base path), as
//! better-auth 1.7.25's `plugins/admin/routes.mjs` defines them: the same
//! paths, bodies, answers and error codes, so that `adminClient()` works
//! unchanged. Permissions, bans, impersonation and the audit trail live in
//! `warden_core::admin`; this module parses and maps.

use axum::extract::{RawQuery, State};
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use warden_core::{Actor, AdminUserUpdate, AuthError, NewUserByAdmin, UserQuery};

use super::{
    no_store, session_headers, BaAuth, BaBody, BaError, BaSession, BaSessionResponse, BaUser,
};
use crate::admin_query::{roles_from_json, RoleInput};
use crate::extract::ClientMeta;
use crate::AppState;

/// `{user}`.
#[derive(Serialize, ToSchema)]
pub struct BaUserResponse {
    pub user: BaUser,
}

#[derive(Serialize, ToSchema)]
pub struct BaUserList {
    pub users: Vec<BaUser>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Serialize, ToSchema)]
pub struct BaSessionList {
    pub sessions: Vec<BaSession>,
}

#[derive(Serialize, ToSchema)]
pub struct BaPermissionResult {
    /// Always null.
    #[schema(value_type = Option<String>)]
    pub error: Option<String>,
    pub success: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserIdBody {
    #[schema(min_length = 1, max_length = 256)]
    pub user_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetRoleBody {
    pub user_id: String,
    /// A role, or several.
    #[schema(value_type = Object)]
    pub role: RoleInput,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserBody {
    pub email: String,
    /// Without it, the user has no password (signs in another way).
    pub password: Option<String>,
    pub name: String,
    #[schema(value_type = Option<Object>)]
    pub role: Option<RoleInput>,
    /// Further fields: `emailVerified`, `image` (and `role`).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Map<String, Value>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateUserBody {
    pub user_id: String,
    /// `name`, `image`, `email`, `emailVerified`, `role`, `banned`,
    /// `banReason`, `banExpires`.
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanUserBody {
    pub user_id: String,
    pub ban_reason: Option<String>,
    /// Seconds until the ban lifts itself.
    pub ban_expires_in: Option<f64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevokeUserSessionBody {
    /// A session token, or the session id a listing shows.
    pub session_token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetUserPasswordBody {
    pub new_password: String,
    pub user_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HasPermissionBody {
    /// `{resource: [actions]}`, e.g. `{"user": ["ban"]}`.
    #[schema(value_type = Option<Object>)]
    pub permissions: Option<Value>,
    /// Ignored: BetterAuth checks the caller's own permissions.
    #[allow(dead_code)]
    pub user_id: Option<String>,
    #[allow(dead_code)]
    pub role: Option<String>,
}

/// `list-users` query parameters (`filterValue` may repeat for `in`).
#[derive(Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListUsersParams {
    pub search_value: Option<String>,
    /// `email` (default) or `name`.
    pub search_field: Option<String>,
    /// `contains` (default), `starts_with`, `ends_with`.
    pub search_operator: Option<String>,
    /// Default 100, at most 1000.
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    pub sort_by: Option<String>,
    /// `asc` (default) or `desc`.
    pub sort_direction: Option<String>,
    pub filter_field: Option<String>,
    pub filter_value: Option<String>,
    /// `eq` (default), `ne`, `lt`, `lte`, `gt`, `gte`, `in`, `not_in`,
    /// `contains`, `starts_with`, `ends_with`.
    pub filter_operator: Option<String>,
}

/// Documents the query; parsed by hand from the raw query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct GetUserParams {
    /// The user id.
    pub id: String,
}

fn actor(auth: &BaAuth, meta: warden_core::RequestMeta) -> Actor {
    Actor::user(&auth.0.authenticated(), meta)
}

fn check_id(field: &'static str, id: &str) -> Result<(), BaError> {
    if id.is_empty() || id.len() > 256 {
        return Err(BaError::validation(format!(
            "[body.{field}] must be a user id"
        )));
    }
    Ok(())
}

/// An email that is taken: BetterAuth's admin endpoints answer 400 here.
fn taken(e: AuthError) -> BaError {
    match e {
        AuthError::EmailTaken => BaError::bad_request(
            "USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL",
            "User already exists. Use another email.",
        ),
        e => e.into(),
    }
}

fn json_no_store<T: Serialize>(v: T) -> Response {
    let mut r = Json(v).into_response();
    no_store(r.headers_mut());
    r
}

/// Set the roles of a user.
#[utoipa::path(post, path = "/admin/set-role", tag = "betterauth", operation_id = "baAdminSetRole",
    request_body = SetRoleBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUserResponse),
        (status = 400, description = "VALIDATION_ERROR, YOU_ARE_NOT_ALLOWED_TO_SET_NON_EXISTENT_VALUE", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_CHANGE_USERS_ROLE", body = BaError),
        (status = 404, description = "USER_NOT_FOUND", body = BaError),
    ))]
pub async fn set_role(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<SetRoleBody>,
) -> Result<Json<BaUserResponse>, BaError> {
    check_id("userId", &req.user_id)?;
    let roles = req.role.into_roles("role").map_err(BaError::from)?;
    let user = state
        .warden
        .admin_set_role(&actor(&auth, meta), &req.user_id, &roles)
        .await?;
    Ok(Json(BaUserResponse { user: user.into() }))
}

/// A user by id (the user itself, not wrapped).
#[utoipa::path(get, path = "/admin/get-user", tag = "betterauth", operation_id = "baAdminGetUser",
    params(GetUserParams),
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUser),
        (status = 400, description = "VALIDATION_ERROR: a missing or malformed field", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_GET_USER", body = BaError),
        (status = 404, description = "USER_NOT_FOUND", body = BaError),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    RawQuery(q): RawQuery,
) -> Result<Response, BaError> {
    let id = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "id")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| BaError::validation("[query.id] is required"))?;
    let user = state
        .warden
        .admin_get_user(&actor(&auth, meta), &id)
        .await?;
    Ok(json_no_store(BaUser::from(user)))
}

/// Create a user (an admin may give a role and no password).
#[utoipa::path(post, path = "/admin/create-user", tag = "betterauth", operation_id = "baAdminCreateUser",
    request_body = CreateUserBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUserResponse),
        (status = 400, description = "INVALID_EMAIL, USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL, PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_CREATE_USERS", body = BaError),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<CreateUserBody>,
) -> Result<Json<BaUserResponse>, BaError> {
    let mut data = req.data.unwrap_or_default();
    let data_role = data.remove("role");
    let roles = match req.role {
        Some(r) => Some(r.into_roles("role")?),
        None => match data_role {
            Some(v) => Some(roles_from_json("data.role", &v)?),
            None => None,
        },
    };
    let mut new = NewUserByAdmin {
        email: req.email,
        password: req.password.filter(|p| !p.is_empty()),
        name: req.name,
        roles,
        ..NewUserByAdmin::default()
    };
    for (k, v) in data {
        match (k.as_str(), v) {
            ("emailVerified", Value::Bool(b)) => new.email_verified = b,
            ("image", Value::String(s)) => new.image = Some(s),
            ("image", Value::Null) => {}
            (k @ ("emailVerified" | "image"), _) => {
                return Err(BaError::validation(format!("[body.data.{k}] has the wrong type")))
            }
            (k, _) => {
                return Err(BaError::validation(format!(
                    "[body.data.{k}] is not a field Warden's users have (allowed: emailVerified, image, role)"
                )))
            }
        }
    }
    let user = state
        .warden
        .admin_create_user(&actor(&auth, meta), new)
        .await
        .map_err(taken)?;
    Ok(Json(BaUserResponse { user: user.into() }))
}

fn opt_string(key: &str, v: Value) -> Result<Option<String>, BaError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        _ => Err(BaError::validation(format!(
            "[body.data.{key}] must be a string or null"
        ))),
    }
}

/// The admin's changes from BetterAuth's `data` object.
fn parse_update(data: Map<String, Value>) -> Result<AdminUserUpdate, BaError> {
    if data.is_empty() {
        return Err(BaError::bad_request(
            "NO_DATA_TO_UPDATE",
            "No data to update",
        ));
    }
    if data.contains_key("password") {
        return Err(BaError::bad_request(
            "PASSWORD_CANNOT_BE_UPDATED_VIA_UPDATE_USER",
            "Password cannot be updated through update-user. Use the set-user-password endpoint instead",
        ));
    }
    if data.contains_key("id") {
        return Err(BaError::bad_request(
            "USER_ID_CANNOT_BE_UPDATED",
            "User id cannot be updated",
        ));
    }
    let mut u = AdminUserUpdate::default();
    for (k, v) in data {
        match k.as_str() {
            "name" => {
                u.name = Some(opt_string(&k, v)?.ok_or_else(|| {
                    BaError::validation("[body.data.name] cannot be null")
                })?)
            }
            "image" => u.image = Some(opt_string(&k, v)?),
            "email" => {
                u.email = Some(opt_string(&k, v)?.ok_or_else(|| {
                    BaError::validation("[body.data.email] cannot be null")
                })?)
            }
            "emailVerified" => match v {
                Value::Bool(b) => u.email_verified = Some(b),
                _ => return Err(BaError::validation("[body.data.emailVerified] must be a boolean")),
            },
            "role" => u.roles = Some(roles_from_json("data.role", &v)?),
            "banned" => match v {
                Value::Bool(b) => u.banned = Some(b),
                _ => return Err(BaError::validation("[body.data.banned] must be a boolean")),
            },
            "banReason" => u.ban_reason = Some(opt_string(&k, v)?),
            "banExpires" => {
                u.ban_expires = Some(match v {
                    Value::Null => None,
                    Value::String(s) => Some(
                        chrono::DateTime::parse_from_rfc3339(&s)
                            .map_err(|_| {
                                BaError::validation(
                                    "[body.data.banExpires] must be an RFC 3339 date or null",
                                )
                            })?
                            .to_utc(),
                    ),
                    Value::Number(n) => Some(
                        n.as_i64()
                            .and_then(chrono::DateTime::from_timestamp_millis)
                            .ok_or_else(|| {
                                BaError::validation("[body.data.banExpires] is out of range")
                            })?,
                    ),
                    _ => {
                        return Err(BaError::validation(
                            "[body.data.banExpires] must be a date or null",
                        ))
                    }
                })
            }
            other => {
                return Err(BaError::validation(format!(
                    "[body.data.{other}] is not a field Warden's users have (allowed: name, image, email, emailVerified, role, banned, banReason, banExpires)"
                )))
            }
        }
    }
    Ok(u)
}

/// Update a user's fields (the user itself in the answer, not wrapped).
#[utoipa::path(post, path = "/admin/update-user", tag = "betterauth", operation_id = "baAdminUpdateUser",
    request_body = UpdateUserBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUser),
        (status = 400, description = "NO_DATA_TO_UPDATE, PASSWORD_CANNOT_BE_UPDATED_VIA_UPDATE_USER, USER_ID_CANNOT_BE_UPDATED, YOU_CANNOT_BAN_YOURSELF, INVALID_EMAIL, USER_ALREADY_EXISTS_USE_ANOTHER_EMAIL, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_UPDATE_USERS and the other permission codes", body = BaError),
        (status = 404, description = "USER_NOT_FOUND", body = BaError),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<UpdateUserBody>,
) -> Result<Json<BaUser>, BaError> {
    check_id("userId", &req.user_id)?;
    let actor = actor(&auth, meta);
    // The permission to update at all comes before any check of the data.
    if !state
        .warden
        .may(&actor, warden_core::AdminAction::UpdateUser)
    {
        return Err(AuthError::NotAllowed(warden_core::AdminAction::UpdateUser).into());
    }
    let update = parse_update(req.data)?;
    let user = state
        .warden
        .admin_update_user(&actor, &req.user_id, update)
        .await
        .map_err(taken)?;
    Ok(Json(user.into()))
}

/// The list-users query, from BetterAuth's parameters (the same parser as
/// the tutorial API's, with BetterAuth's `searchValue`).
fn parse_list_query(raw: Option<&str>) -> Result<UserQuery, BaError> {
    let bad = |e: AuthError| match e {
        AuthError::Invalid { field, message } => {
            BaError::validation(format!("[query.{field}] {message}"))
        }
        e => e.into(),
    };
    let pairs = crate::admin_query::pairs(raw).map_err(bad)?;
    crate::admin_query::user_query(&pairs, "searchValue").map_err(bad)
}

/// List users: search, filter, sort, paginate.
#[utoipa::path(get, path = "/admin/list-users", tag = "betterauth", operation_id = "baAdminListUsers",
    params(ListUsersParams),
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUserList),
        (status = 400, description = "VALIDATION_ERROR naming the parameter", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS", body = BaError),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    RawQuery(raw): RawQuery,
) -> Result<Response, BaError> {
    let actor = actor(&auth, meta);
    if !state
        .warden
        .may(&actor, warden_core::AdminAction::ListUsers)
    {
        return Err(AuthError::NotAllowed(warden_core::AdminAction::ListUsers).into());
    }
    let query = parse_list_query(raw.as_deref())?;
    let page = state.warden.admin_list_users(&actor, &query).await?;
    Ok(json_no_store(BaUserList {
        users: page.users.into_iter().map(BaUser::from).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// A user's sessions (impersonations included). Warden stores only token
/// hashes: each session's `token` is its id, which `revoke-user-session`
/// accepts.
#[utoipa::path(post, path = "/admin/list-user-sessions", tag = "betterauth", operation_id = "baAdminListUserSessions",
    request_body = UserIdBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaSessionList),
        (status = 400, description = "VALIDATION_ERROR: a missing or malformed field", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_LIST_USERS_SESSIONS", body = BaError),
    ))]
pub async fn list_user_sessions(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<UserIdBody>,
) -> Result<Response, BaError> {
    check_id("userId", &req.user_id)?;
    // An unknown user has no sessions: BetterAuth answers an empty list.
    let sessions = match state
        .warden
        .admin_list_sessions(&actor(&auth, meta), &req.user_id)
        .await
    {
        Err(AuthError::NoSuchUser) => Vec::new(),
        other => other?,
    };
    Ok(json_no_store(BaSessionList {
        sessions: super::listed_sessions(&auth.0, sessions),
    }))
}

/// Ban a user; all their sessions end at once.
#[utoipa::path(post, path = "/admin/ban-user", tag = "betterauth", operation_id = "baAdminBanUser",
    request_body = BanUserBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUserResponse),
        (status = 400, description = "YOU_CANNOT_BAN_YOURSELF, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_BAN_USERS", body = BaError),
        (status = 404, description = "USER_NOT_FOUND", body = BaError),
    ))]
pub async fn ban_user(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<BanUserBody>,
) -> Result<Json<BaUserResponse>, BaError> {
    check_id("userId", &req.user_id)?;
    let expires_in = match req.ban_expires_in {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s <= 100.0 * 365.0 * 86400.0 => {
            Some(std::time::Duration::from_secs_f64(s))
        }
        Some(_) => {
            return Err(BaError::validation(
                "[body.banExpiresIn] must be a positive number of seconds (at most 100 years)",
            ))
        }
    };
    let user = state
        .warden
        .admin_ban_user(
            &actor(&auth, meta),
            &req.user_id,
            req.ban_reason.as_deref(),
            expires_in,
        )
        .await?;
    Ok(Json(BaUserResponse { user: user.into() }))
}

#[utoipa::path(post, path = "/admin/unban-user", tag = "betterauth", operation_id = "baAdminUnbanUser",
    request_body = UserIdBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaUserResponse),
        (status = 400, description = "VALIDATION_ERROR: a missing or malformed field", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_BAN_USERS", body = BaError),
        (status = 404, description = "USER_NOT_FOUND", body = BaError),
    ))]
pub async fn unban_user(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<UserIdBody>,
) -> Result<Json<BaUserResponse>, BaError> {
    check_id("userId", &req.user_id)?;
    let user = state
        .warden
        .admin_unban_user(&actor(&auth, meta), &req.user_id)
        .await?;
    Ok(Json(BaUserResponse { user: user.into() }))
}

/// Impersonate a user: a session as the user, marked `impersonatedBy`,
/// lasting one hour (configurable); the admin's own session is kept in a
/// signed `admin_session` cookie for `stop-impersonating`.
#[utoipa::path(post, path = "/admin/impersonate-user", tag = "betterauth", operation_id = "baAdminImpersonateUser",
    request_body = UserIdBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaSessionResponse),
        (status = 400, description = "VALIDATION_ERROR: a missing or malformed field", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_IMPERSONATE_USERS, YOU_CANNOT_IMPERSONATE_ADMINS, NOT_ALLOWED_WHILE_IMPERSONATING, BANNED_USER", body = BaError),
        (status = 404, description = "USER_NOT_FOUND", body = BaError),
    ))]
pub async fn impersonate_user(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<UserIdBody>,
) -> Result<Response, BaError> {
    check_id("userId", &req.user_id)?;
    let s = state
        .warden
        .admin_impersonate(&actor(&auth, meta), &req.user_id)
        .await?;
    let mut r = Json(BaSessionResponse {
        session: BaSession::new(s.session.clone(), s.token.expose().to_owned()),
        user: s.user.clone().into(),
    })
    .into_response();
    let headers = r.headers_mut();
    headers.append(
        SET_COOKIE,
        state
            .settings
            .cookies
            .set_admin_session(auth.0.token.expose()),
    );
    session_headers(&state, headers, &s.token, &s.session);
    Ok(r)
}

/// End an impersonation and return to the admin's own session.
#[utoipa::path(post, path = "/admin/stop-impersonating", tag = "betterauth", operation_id = "baAdminStopImpersonating",
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, description = "The admin's own session again", body = BaSessionResponse),
        (status = 400, description = "Not impersonating; or the admin's session was not found (the impersonation is ended anyway: sign in again)", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn stop_impersonating(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    headers: HeaderMap,
) -> Result<Response, BaError> {
    let session = auth.0.authenticated();
    let admin_id = state
        .warden
        .admin_stop_impersonating(&session, auth.0.token.expose(), meta)
        .await?;
    let cookies = &state.settings.cookies;
    let admin = match cookies.read_admin_session(&headers) {
        Some(token) => match state.warden.authenticate(&token).await {
            Ok(a) if a.user.id == admin_id => Some((token, a)),
            _ => None,
        },
        None => None,
    };
    let Some((token, admin)) = admin else {
        // The impersonation is over either way; the admin signs in again.
        let mut r = BaError::bad_request(
            "FAILED_TO_FIND_ADMIN_SESSION",
            "Failed to find admin session",
        )
        .into_response();
        r.headers_mut().append(SET_COOKIE, cookies.clear_session());
        r.headers_mut()
            .append(SET_COOKIE, cookies.clear_admin_session());
        return Ok(r);
    };
    let token = warden_core::SessionToken::from_client(token);
    let mut r = Json(BaSessionResponse {
        session: BaSession::new(admin.session.clone(), token.expose().to_owned()),
        user: admin.user.clone().into(),
    })
    .into_response();
    let h = r.headers_mut();
    h.append(SET_COOKIE, cookies.clear_admin_session());
    session_headers(&state, h, &token, &admin.session);
    Ok(r)
}

/// End one session (by token, or the id a listing shows). Always
/// `{success: true}`, as BetterAuth.
#[utoipa::path(post, path = "/admin/revoke-user-session", tag = "betterauth", operation_id = "baAdminRevokeUserSession",
    request_body = RevokeUserSessionBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = super::BaSuccess),
        (status = 400, description = "VALIDATION_ERROR: a missing or malformed field", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_REVOKE_USERS_SESSIONS", body = BaError),
    ))]
pub async fn revoke_user_session(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<RevokeUserSessionBody>,
) -> Result<Json<super::BaSuccess>, BaError> {
    state
        .warden
        .admin_revoke_session(&actor(&auth, meta), req.session_token.trim())
        .await?;
    Ok(Json(super::BaSuccess { success: true }))
}

#[utoipa::path(post, path = "/admin/revoke-user-sessions", tag = "betterauth", operation_id = "baAdminRevokeUserSessions",
    request_body = UserIdBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = super::BaSuccess),
        (status = 400, description = "VALIDATION_ERROR: a missing or malformed field", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_REVOKE_USERS_SESSIONS", body = BaError),
    ))]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<UserIdBody>,
) -> Result<Json<super::BaSuccess>, BaError> {
    check_id("userId", &req.user_id)?;
    // Nothing to revoke for an unknown user: success, as BetterAuth.
    match state
        .warden
        .admin_revoke_sessions(&actor(&auth, meta), &req.user_id)
        .await
    {
        Ok(_) | Err(AuthError::NoSuchUser) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Json(super::BaSuccess { success: true }))
}

/// Delete a user with their sessions and accounts.
#[utoipa::path(post, path = "/admin/remove-user", tag = "betterauth", operation_id = "baAdminRemoveUser",
    request_body = UserIdBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = super::BaSuccess),
        (status = 400, description = "YOU_CANNOT_REMOVE_YOURSELF", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_DELETE_USERS", body = BaError),
        (status = 404, description = "USER_NOT_FOUND", body = BaError),
    ))]
pub async fn remove_user(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<UserIdBody>,
) -> Result<Json<super::BaSuccess>, BaError> {
    check_id("userId", &req.user_id)?;
    state
        .warden
        .admin_remove_user(&actor(&auth, meta), &req.user_id)
        .await?;
    Ok(Json(super::BaSuccess { success: true }))
}

/// Set a user's password (creating their credential account if needed).
#[utoipa::path(post, path = "/admin/set-user-password", tag = "betterauth", operation_id = "baAdminSetUserPassword",
    request_body = SetUserPasswordBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = super::BaStatus),
        (status = 400, description = "PASSWORD_TOO_SHORT, PASSWORD_TOO_LONG, PASSWORD_COMPROMISED, VALIDATION_ERROR", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
        (status = 403, description = "YOU_ARE_NOT_ALLOWED_TO_SET_USERS_PASSWORD", body = BaError),
        (status = 404, description = "USER_NOT_FOUND", body = BaError),
    ))]
pub async fn set_user_password(
    State(state): State<AppState>,
    auth: BaAuth,
    ClientMeta(meta): ClientMeta,
    BaBody(req): BaBody<SetUserPasswordBody>,
) -> Result<Json<super::BaStatus>, BaError> {
    if req.new_password.is_empty() {
        return Err(BaError::validation(
            "[body.newPassword] newPassword cannot be empty",
        ));
    }
    if req.user_id.is_empty() {
        return Err(BaError::validation("[body.userId] userId cannot be empty"));
    }
    state
        .warden
        .admin_set_password(&actor(&auth, meta), &req.user_id, &req.new_password)
        .await?;
    Ok(Json(super::BaStatus { status: true }))
}

/// Does the caller have these permissions? (BetterAuth checks the
/// caller's own, whatever `userId` or `role` say.)
#[utoipa::path(post, path = "/admin/has-permission", tag = "betterauth", operation_id = "baAdminHasPermission",
    request_body = HasPermissionBody,
    security(("sessionCookie" = []), ("bearerAuth" = [])),
    responses(
        (status = 200, body = BaPermissionResult),
        (status = 400, description = "No permissions given, or not `{resource: [actions]}`", body = BaError),
        (status = 401, description = "UNAUTHORIZED", body = BaError),
    ))]
pub async fn has_permission(
    State(state): State<AppState>,
    auth: BaAuth,
    BaBody(req): BaBody<HasPermissionBody>,
) -> Result<Json<BaPermissionResult>, BaError> {
    let Some(perms) = req.permissions else {
        return Err(BaError::bad_request(
            "BAD_REQUEST",
            "invalid permission check. no permission(s) were passed.",
        ));
    };
    let request = crate::admin_query::statements_from_json("permissions", &perms)?;
    let user = &auth.0.user;
    let success =
        state
            .warden
            .admin_settings()
            .has_permission(&user.id, user.role.as_deref(), &request);
    Ok(Json(BaPermissionResult {
        error: None,
        success,
    }))
}
