//! Administration in the tutorial API's style (`/admin/*`, bearer tokens,
//! camelCase JSON, Encore's errors): users, roles, bans, passwords,
//! sessions, impersonation and the audit trail.
//!
//! Every rule (who may do what, bans ending sessions, what impersonation
//! may not do, the audit rows) lives in `warden_core::admin`; the handlers
//! parse, call, and shape the answer. Parsing shared with BetterAuth's
//! admin endpoints is in `crate::admin_query`.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use warden_core::{
    Actor, AdminAction, AdminUserUpdate, AuditEntry, AuthError, NewUserByAdmin, Session, Timestamp,
    User, UserQuery,
};

use super::auth::SuccessResponse;
use crate::admin_query::{self, RoleInput};
use crate::error::{ApiError, ErrCode};
use crate::extract::{parse_json, ApiJson, AuthUser, ClientMeta};
use crate::route_list::{route, RouteSink};
use crate::AppState;

/// The longest ban `banExpiresIn` may ask for: 100 years, in seconds.
pub const MAX_BAN_SECONDS: u64 = 100 * 366 * 24 * 3600;

/// The `/admin/*` routes, for both builders (see `route_list.rs`).
pub(crate) fn routes<R: RouteSink>(router: R) -> R {
    router
        .add(route!(list_users, create_user))
        .add(route!(get_user, update_user, remove_user))
        .add(route!(set_role))
        .add(route!(set_password))
        .add(route!(ban_user))
        .add(route!(unban_user))
        .add(route!(list_user_sessions, revoke_user_sessions))
        .add(route!(revoke_session))
        .add(route!(reset_two_factor))
        .add(route!(impersonate_user))
        .add(route!(stop_impersonating))
        .add(route!(has_permission))
        .add(route!(list_audit))
}

/// An admin actor that the program embedding Warden vouches for, put in
/// a request's extensions in-process (a network client cannot set
/// extensions): the development dashboard acts so, as a trusted operator
/// like the command line, through these same handlers and their rules and
/// audit. Every other request acts as its signed-in user.
#[derive(Clone, Debug)]
pub struct TrustedActor(pub Actor);

/// Who performs an `/admin/*` request: a [`TrustedActor`], else the
/// signed-in user (401 without one).
pub struct AdminActor(pub Actor);

impl axum::extract::FromRequestParts<AppState> for AdminActor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(TrustedActor(a)) = parts.extensions.get::<TrustedActor>() {
            return Ok(AdminActor(a.clone()));
        }
        let auth = AuthUser::from_request_parts(parts, state).await?;
        let Ok(ClientMeta(meta)) = ClientMeta::from_request_parts(parts, state).await;
        Ok(AdminActor(Actor::user(&auth.authenticated(), meta)))
    }
}

// ---------------------------------------------------------------------------
// Shapes

/// A user as an admin sees it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub image: Option<String>,
    pub email_verified: bool,
    /// Roles, comma-separated (`admin`, `user`, `admin,support`); `null`:
    /// the configured default role.
    pub role: Option<String>,
    pub banned: bool,
    pub ban_reason: Option<String>,
    /// When the ban lifts itself; `null`: until lifted.
    #[serde(serialize_with = "crate::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ban_expires: Option<Timestamp>,
    pub two_factor_enabled: bool,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl From<User> for AdminUser {
    fn from(u: User) -> Self {
        AdminUser {
            id: u.id,
            email: u.email,
            name: u.name,
            image: u.image,
            email_verified: u.email_verified,
            role: u.role,
            banned: u.banned,
            ban_reason: u.ban_reason,
            ban_expires: u.ban_expires,
            two_factor_enabled: u.two_factor_enabled,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub users: Vec<AdminUser>,
    /// Users matching the search and filter, over all pages.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

/// A session as an admin sees it (never its token).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminSession {
    pub id: String,
    pub user_id: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The admin impersonating the user in this session, if one is.
    pub impersonated_by: Option<String>,
}

impl From<Session> for AdminSession {
    fn from(s: Session) -> Self {
        AdminSession {
            id: s.id,
            user_id: s.user_id,
            created_at: s.created_at,
            updated_at: s.updated_at,
            expires_at: s.expires_at,
            ip_address: s.ip_address,
            user_agent: s.user_agent,
            impersonated_by: s.impersonated_by,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AdminSessionList {
    /// Newest first, impersonation sessions included.
    pub sessions: Vec<AdminSession>,
}

#[derive(Serialize, ToSchema)]
pub struct RevokedSessions {
    pub success: bool,
    /// How many sessions ended.
    pub revoked: u64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImpersonationSession {
    pub id: String,
    /// The impersonation's bearer token (shown once). The admin's own
    /// token stays valid: keep it to go back.
    pub token: String,
    /// Impersonation sessions are never extended.
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    /// The admin's user id.
    pub impersonated_by: String,
}

#[derive(Serialize, ToSchema)]
pub struct ImpersonationResponse {
    /// The impersonated user.
    pub user: AdminUser,
    pub session: ImpersonationSession,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StopImpersonatingResponse {
    pub success: bool,
    /// The impersonating admin, whose own token is valid as before.
    pub admin_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct PermissionResult {
    pub success: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntryView {
    pub id: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// The acting user's id; `null` for the command line.
    pub actor_id: Option<String>,
    /// The acting user's email, or `cli:<os user>`.
    pub actor: String,
    /// `user.create`, `user.update`, `user.set-role`, `user.set-password`,
    /// `user.delete`, `user.ban`, `user.unban`, `session.revoke`,
    /// `session.revoke-all`, `impersonation.start`, `impersonation.stop`.
    pub action: String,
    pub target_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// What changed, by name; never a credential.
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<AuditEntry> for AuditEntryView {
    fn from(e: AuditEntry) -> Self {
        AuditEntryView {
            id: e.id,
            at: e.at,
            actor_id: e.actor_id,
            actor: e.actor,
            action: e.action,
            target_id: e.target_id,
            ip_address: e.ip_address,
            user_agent: e.user_agent,
            detail: e.detail,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub entries: Vec<AuditEntryView>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

/// A role name, or several (a string may also hold several,
/// comma-separated).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Roles {
    One(String),
    Many(Vec<String>),
}

// ---------------------------------------------------------------------------
// Requests

/// The listing's query parameters (documentation; parsed by
/// `admin_query::user_query`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListUsersQuery {
    /// Search text (ignored when empty); at most 256 characters.
    search: Option<String>,
    /// `email` (default) or `name`.
    #[param(rename = "searchField")]
    search_field: Option<String>,
    /// `contains` (default), `starts_with` or `ends_with`; case-insensitive.
    #[param(rename = "searchOperator")]
    search_operator: Option<String>,
    /// Any user field: `id`, `name`, `email` (default), `emailVerified`,
    /// `image`, `role`, `banned`, `banReason`, `banExpires`, `createdAt`,
    /// `updatedAt`.
    #[param(rename = "filterField")]
    filter_field: Option<String>,
    /// The value to compare with: `true`/`false` for booleans, RFC 3339
    /// for dates; for `in`/`not_in`, repeated or comma-separated.
    #[param(rename = "filterValue")]
    filter_value: Option<String>,
    /// `eq` (default), `ne`, `lt`, `lte`, `gt`, `gte`, `in`, `not_in`,
    /// `contains`, `starts_with`, `ends_with`.
    #[param(rename = "filterOperator")]
    filter_operator: Option<String>,
    /// Any user field (default: creation time).
    #[param(rename = "sortBy")]
    sort_by: Option<String>,
    /// `asc` (default) or `desc`.
    #[param(rename = "sortDirection")]
    sort_direction: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    #[param(minimum = 0)]
    offset: Option<u64>,
}

/// A page of the audit trail, of one target if asked.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AuditQuery {
    /// Only the rows about this user, session or other target id.
    #[param(rename = "targetId")]
    target_id: Option<String>,
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    #[param(minimum = 0)]
    offset: Option<u64>,
}

/// A page of a listing.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageQuery {
    /// 1 to 1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    #[param(minimum = 0)]
    offset: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserRequest {
    #[schema(example = "jane@example.com", min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// Without it, the user has no password (signs in another way, or
    /// after an admin sets one).
    pub password: Option<String>,
    #[schema(
        example = "Jane Doe",
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// Default: the configured default role.
    #[schema(value_type = Option<Roles>)]
    pub role: Option<RoleInput>,
    #[serde(default)]
    pub email_verified: bool,
    /// An http(s) URL.
    #[schema(
        max_length = 2048,
        pattern = "^\\s*[hH][tT][tT][pP][sS]?://[^\\s\\u0000-\\u001f\\u007f-\\u009f]*\\s*$"
    )]
    pub image: Option<String>,
}

/// Absent fields are left as they are.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminUpdateUserRequest {
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: Option<String>,
    /// An http(s) URL; `null` removes the image.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^\\s*[hH][tT][tT][pP][sS]?://[^\\s\\u0000-\\u001f\\u007f-\\u009f]*\\s*$")]
    pub image: Option<Option<String>>,
    /// Needs the `user:set-email` permission.
    #[schema(min_length = 3, max_length = 254, format = Email)]
    pub email: Option<String>,
    /// Needs the `user:set-email` permission.
    pub email_verified: Option<bool>,
    /// Needs the `user:set-role` permission.
    #[schema(value_type = Option<Roles>)]
    pub role: Option<RoleInput>,
    /// Needs the `user:ban` permission; `true` ends the user's sessions.
    pub banned: Option<bool>,
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub ban_reason: Option<Option<String>>,
    /// RFC 3339; `null`: the ban lasts until lifted.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ban_expires: Option<Option<String>>,
    /// Refused: use `PUT /admin/users/{id}/password`.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(ignore)]
    pub password: Option<Option<Value>>,
}

#[derive(Deserialize, ToSchema)]
pub struct SetRoleRequest {
    #[schema(value_type = Roles)]
    pub role: RoleInput,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetPasswordRequest {
    /// The password policy applies (length, not common, not the email).
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase")]
pub struct BanRequest {
    /// At most 1000 characters; default: the configured reason.
    pub ban_reason: Option<String>,
    /// Seconds until the ban lifts itself; default: the configured
    /// duration, or until lifted.
    #[schema(minimum = 1, maximum = 3162240000.0)]
    pub ban_expires_in: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
pub struct HasPermissionRequest {
    /// `{resource: [actions]}`, e.g. `{"user": ["ban"], "session": ["revoke"]}`.
    #[schema(value_type = Object)]
    pub permissions: Value,
}

/// An optional JSON body: empty (or `null`) is `T::default()`.
fn optional_json<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) || body.trim_ascii() == b"null" {
        Ok(T::default())
    } else {
        parse_json(headers, body)
    }
}

fn roles(r: RoleInput) -> Result<Vec<String>, ApiError> {
    Ok(r.into_roles("role")?)
}

fn no_store(body: impl Serialize) -> Response {
    let mut r = Json(body).into_response();
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

// ---------------------------------------------------------------------------
// Users

/// List users: search, filter, sort and paginate.
#[utoipa::path(get, path = "/admin/users", tag = "admin", operation_id = "adminListUsers",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(ListUsersQuery),
    responses(
        (status = 200, body = UserList),
        (status = 400, description = "A parameter is malformed or unknown (the message names it)", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:list permission", body = ApiError),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    RawQuery(raw): RawQuery,
) -> Result<Json<UserList>, ApiError> {
    // Permission first: a caller who may not list learns nothing, not even
    // which parameters are wrong.
    if !state.warden.may(&actor, AdminAction::ListUsers) {
        return Err(AuthError::NotAllowed(AdminAction::ListUsers).into());
    }
    let pairs = admin_query::pairs(raw.as_deref())?;
    let query = admin_query::user_query(&pairs, "search")?;
    let page = state.warden.admin_list_users(&actor, &query).await?;
    Ok(Json(UserList {
        users: page.users.into_iter().map(AdminUser::from).collect(),
        total: page.total,
        limit: page.limit,
        offset: page.offset,
    }))
}

/// One user.
#[utoipa::path(get, path = "/admin/users/{id}", tag = "admin", operation_id = "adminGetUser",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = AdminUser),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:get permission", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<Json<AdminUser>, ApiError> {
    let user = state.warden.admin_get_user(&actor, &id).await?;
    Ok(Json(user.into()))
}

/// Create a user, with or without a password. Giving a role needs the
/// user:set-role permission too.
#[utoipa::path(post, path = "/admin/users", tag = "admin", operation_id = "adminCreateUser",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 200, body = AdminUser),
        (status = 400, description = "Invalid input, or a role that is not defined", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:create (and user:set-role) permission", body = ApiError),
        (status = 409, description = "Email already registered", body = ApiError),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> Result<Json<AdminUser>, ApiError> {
    let new = NewUserByAdmin {
        email: req.email,
        password: req.password,
        name: req.name,
        image: req.image,
        email_verified: req.email_verified,
        roles: req.role.map(roles).transpose()?,
    };
    let user = state.warden.admin_create_user(&actor, new).await?;
    Ok(Json(user.into()))
}

/// Change a user's profile, email, role or ban. Each kind of change needs
/// its permission (user:update; user:set-email, user:set-role, user:ban).
/// Passwords are set with `PUT /admin/users/{id}/password`.
#[utoipa::path(patch, path = "/admin/users/{id}", tag = "admin", operation_id = "adminUpdateUser",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = AdminUpdateUserRequest,
    responses(
        (status = 200, body = AdminUser),
        (status = 400, description = "Invalid input, nothing to update, a `password` field, or a role that is not defined", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Missing a permission the change needs", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
        (status = 409, description = "The new email is taken", body = ApiError),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AdminUpdateUserRequest>,
) -> Result<Json<AdminUser>, ApiError> {
    if req.password.is_some() {
        return Err(ApiError::invalid(
            "password: cannot be changed here; use PUT /admin/users/{id}/password (set-password)",
        ));
    }
    let ban_expires = match req.ban_expires {
        None => None,
        Some(None) => Some(None),
        Some(Some(t)) => Some(Some(
            chrono::DateTime::parse_from_rfc3339(&t)
                .map_err(|_| {
                    ApiError::invalid("banExpires: must be an RFC 3339 date (2026-01-31T12:00:00Z)")
                })?
                .to_utc(),
        )),
    };
    if let Some(Some(r)) = &req.ban_reason {
        if r.chars().count() > 1000 {
            return Err(ApiError::invalid(
                "banReason: must be at most 1000 characters",
            ));
        }
    }
    let update = AdminUserUpdate {
        name: req.name,
        image: req.image,
        email: req.email,
        email_verified: req.email_verified,
        roles: req.role.map(roles).transpose()?,
        banned: req.banned,
        ban_reason: req.ban_reason,
        ban_expires,
    };
    let user = state.warden.admin_update_user(&actor, &id, update).await?;
    Ok(Json(user.into()))
}

/// Set a user's role (or roles). Felt at once by the user's sessions.
#[utoipa::path(put, path = "/admin/users/{id}/role", tag = "admin", operation_id = "adminSetRole",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = SetRoleRequest,
    responses(
        (status = 200, body = AdminUser),
        (status = 400, description = "No role, or a role that is not defined", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:set-role permission", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn set_role(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SetRoleRequest>,
) -> Result<Json<AdminUser>, ApiError> {
    let roles = roles(req.role)?;
    let user = state.warden.admin_set_role(&actor, &id, &roles).await?;
    Ok(Json(user.into()))
}

/// Set (or create) a user's password. Refused while impersonating.
#[utoipa::path(put, path = "/admin/users/{id}/password", tag = "admin", operation_id = "adminSetPassword",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body = SetPasswordRequest,
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "The password is refused by the policy", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:set-password permission; or impersonating", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
        (status = 503, description = "Too many password operations in progress", body = ApiError),
    ))]
pub async fn set_password(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<SetPasswordRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    state
        .warden
        .admin_set_password(&actor, &id, &req.new_password)
        .await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// Delete a user, their sessions and accounts. Admins cannot delete
/// themselves.
#[utoipa::path(delete, path = "/admin/users/{id}", tag = "admin", operation_id = "adminRemoveUser",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "The admin's own account", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:delete permission", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn remove_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<Json<SuccessResponse>, ApiError> {
    state.warden.admin_remove_user(&actor, &id).await?;
    Ok(Json(SuccessResponse { success: true }))
}

// ---------------------------------------------------------------------------
// Bans

/// Ban a user: their sessions end at once and sign-in is refused until the
/// ban is lifted (or `banExpiresIn` passes). The body is optional.
#[utoipa::path(post, path = "/admin/users/{id}/ban", tag = "admin", operation_id = "adminBanUser",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body(content = Option<BanRequest>, description = "Optional"),
    responses(
        (status = 200, body = AdminUser),
        (status = 400, description = "Invalid input, or the admin's own account", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:ban permission", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn ban_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<AdminUser>, ApiError> {
    let req: BanRequest = optional_json(&headers, &body)?;
    let expires_in = match req.ban_expires_in {
        None => None,
        Some(s) if (1..=MAX_BAN_SECONDS).contains(&s) => Some(std::time::Duration::from_secs(s)),
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "banExpiresIn: must be from 1 to {MAX_BAN_SECONDS} seconds"
            )))
        }
    };
    let user = state
        .warden
        .admin_ban_user(&actor, &id, req.ban_reason.as_deref(), expires_in)
        .await?;
    Ok(Json(user.into()))
}

/// Lift a user's ban.
#[utoipa::path(post, path = "/admin/users/{id}/unban", tag = "admin", operation_id = "adminUnbanUser",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = AdminUser),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:ban permission", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn unban_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<Json<AdminUser>, ApiError> {
    let user = state.warden.admin_unban_user(&actor, &id).await?;
    Ok(Json(user.into()))
}

// ---------------------------------------------------------------------------
// Sessions

/// A user's live sessions, newest first, impersonations included.
#[utoipa::path(get, path = "/admin/users/{id}/sessions", tag = "admin", operation_id = "adminListUserSessions",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = AdminSessionList),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the session:list permission", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn list_user_sessions(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<Json<AdminSessionList>, ApiError> {
    let sessions = state.warden.admin_list_sessions(&actor, &id).await?;
    Ok(Json(AdminSessionList {
        sessions: sessions.into_iter().map(AdminSession::from).collect(),
    }))
}

/// End every session of a user.
#[utoipa::path(delete, path = "/admin/users/{id}/sessions", tag = "admin", operation_id = "adminRevokeUserSessions",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = RevokedSessions),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the session:revoke permission", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn revoke_user_sessions(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<Json<RevokedSessions>, ApiError> {
    let n = state.warden.admin_revoke_sessions(&actor, &id).await?;
    Ok(Json(RevokedSessions {
        success: true,
        revoked: n as u64,
    }))
}

/// Turn a user's two-factor off (they lost their authenticator and backup
/// codes) and forget their trusted devices. Their sessions stay.
#[utoipa::path(delete, path = "/admin/users/{id}/two-factor", tag = "admin", operation_id = "adminResetTwoFactor",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user, two-factor off", body = AdminUser),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:set-password permission; or refused during an impersonation", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn reset_two_factor(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<Json<AdminUser>, ApiError> {
    let user = state.warden.admin_reset_two_factor(&actor, &id).await?;
    Ok(Json(AdminUser::from(user)))
}

/// End one session, by the id a listing shows.
#[utoipa::path(delete, path = "/admin/sessions/{id}", tag = "admin", operation_id = "adminRevokeSession",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "Session id, as GET /admin/users/{id}/sessions lists it")),
    responses(
        (status = 200, body = SuccessResponse),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the session:revoke permission", body = ApiError),
        (status = 404, description = "No such session", body = ApiError),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<Json<SuccessResponse>, ApiError> {
    if !state.warden.admin_revoke_session(&actor, &id).await? {
        return Err(ApiError::new(ErrCode::NotFound, "session not found"));
    }
    Ok(Json(SuccessResponse { success: true }))
}

// ---------------------------------------------------------------------------
// Impersonation

/// Start a session as this user (an impersonation, lasting
/// `admin.impersonation_session_duration`, never extended). The answer's
/// token is the impersonation's; the admin's own token stays valid. No
/// cookie is set. Admins cannot be impersonated (without the
/// user:impersonate-admins permission), nor can an impersonation start
/// another.
#[utoipa::path(post, path = "/admin/users/{id}/impersonate", tag = "admin", operation_id = "adminImpersonateUser",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, body = ImpersonationResponse),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:impersonate permission; the user is an admin or banned; or already impersonating", body = ApiError),
        (status = 404, description = "No such user", body = ApiError),
    ))]
pub async fn impersonate_user(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = state.warden.admin_impersonate(&actor, &id).await?;
    Ok(no_store(ImpersonationResponse {
        session: ImpersonationSession {
            id: s.session.id,
            token: s.token.expose().to_owned(),
            expires_at: s.session.expires_at,
            impersonated_by: s.session.impersonated_by.unwrap_or_default(),
        },
        user: s.user.into(),
    }))
}

/// End the impersonation whose token this request carries. The token then
/// no longer works; the answer names the admin, whose own token is valid
/// as before. Any signed-in session may call it (it is the impersonated
/// user's); from one that is not an impersonation it is a 400.
#[utoipa::path(post, path = "/admin/stop-impersonating", tag = "admin", operation_id = "adminStopImpersonating",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    responses(
        (status = 200, body = StopImpersonatingResponse),
        (status = 400, description = "This session is not an impersonation", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn stop_impersonating(
    State(state): State<AppState>,
    auth: AuthUser,
    ClientMeta(meta): ClientMeta,
) -> Result<Json<StopImpersonatingResponse>, ApiError> {
    let admin_id = state
        .warden
        .admin_stop_impersonating(&auth.authenticated(), auth.token.expose(), meta)
        .await?;
    Ok(Json(StopImpersonatingResponse {
        success: true,
        admin_id,
    }))
}

// ---------------------------------------------------------------------------
// Permissions and audit

/// Does the signed-in user have all these permissions? Any signed-in user
/// may ask about their own (a plain user gets `false`).
#[utoipa::path(post, path = "/admin/has-permission", tag = "admin", operation_id = "adminHasPermission",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    request_body = HasPermissionRequest,
    responses(
        (status = 200, body = PermissionResult),
        (status = 400, description = "`permissions` is not `{resource: [actions]}`", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn has_permission(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<HasPermissionRequest>,
) -> Result<Json<PermissionResult>, ApiError> {
    let request = admin_query::statements_from_json("permissions", &req.permissions)?;
    let success = state.warden.admin_settings().has_permission(
        &auth.user.id,
        auth.user.role.as_deref(),
        &request,
    );
    Ok(Json(PermissionResult { success }))
}

/// The audit trail of admin actions, newest first.
#[utoipa::path(get, path = "/admin/audit", tag = "admin", operation_id = "adminListAudit",
    security(("bearerAuth" = []), ("sessionCookie" = [])),
    params(AuditQuery),
    responses(
        (status = 200, body = AuditList),
        (status = 400, description = "Malformed limit, offset or targetId", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 403, description = "Needs the user:list permission", body = ApiError),
    ))]
pub async fn list_audit(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    RawQuery(raw): RawQuery,
) -> Result<Json<AuditList>, ApiError> {
    if !state.warden.may(&actor, AdminAction::ReadAudit) {
        return Err(AuthError::NotAllowed(AdminAction::ReadAudit).into());
    }
    let pairs = admin_query::pairs(raw.as_deref())?;
    let limit = admin_query::limit(
        &pairs,
        "limit",
        UserQuery::DEFAULT_LIMIT,
        UserQuery::MAX_LIMIT,
    )?;
    let offset = admin_query::offset(&pairs, "offset")?;
    let target = admin_query::single(&pairs, "targetId")?;
    if target.is_some_and(|t| t.is_empty() || t.len() > 256) {
        return Err(ApiError::invalid("targetId must be 1 to 256 characters"));
    }
    let (entries, total) = state
        .warden
        .admin_audit(&actor, target, limit, offset)
        .await?;
    Ok(Json(AuditList {
        entries: entries.into_iter().map(AuditEntryView::from).collect(),
        total,
        limit,
        offset,
    }))
}
