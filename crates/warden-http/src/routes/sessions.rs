//! Listing and revoking one's own sessions.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use warden_core::Timestamp;

use super::auth::SuccessResponse;
use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionSummary {
    pub id: String,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(serialize_with = "crate::time::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionSummary>,
}

/// The signed-in user's live sessions, newest first.
#[utoipa::path(get, path = "/sessions", tag = "sessions", operation_id = "listSessions",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, body = SessionList),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn list_sessions(
    State(state): State<AppState>,
    auth: AuthUser,
) -> Result<Json<SessionList>, ApiError> {
    let sessions = state.warden.list_sessions(auth.id()).await?;
    Ok(Json(SessionList {
        sessions: sessions
            .into_iter()
            .map(|s| SessionSummary {
                current: s.id == auth.session.id,
                id: s.id,
                created_at: s.created_at,
                expires_at: s.expires_at,
                ip_address: s.ip_address,
                user_agent: s.user_agent,
            })
            .collect(),
    }))
}

/// Revoke one of the signed-in user's sessions.
#[utoipa::path(delete, path = "/sessions/{id}", tag = "sessions", operation_id = "revokeSession",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, max_length = 128, description = "Session id, as listed by GET /sessions")),
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "Malformed id (over 128 characters)", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
        (status = 404, description = "No such session of yours", body = ApiError),
    ))]
pub async fn revoke_session(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<SuccessResponse>, ApiError> {
    if id.is_empty() || id.chars().count() > 128 {
        return Err(ApiError::invalid("id: must be 1 to 128 characters"));
    }
    state.warden.revoke_session(auth.id(), &id).await?;
    Ok(Json(SuccessResponse { success: true }))
}
