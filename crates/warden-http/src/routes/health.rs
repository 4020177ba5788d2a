use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses(
        (status = 200, body = Health),
        (status = 503, description = "Database unreachable", body = ApiError),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    // The store gives up after `ready_timeout` itself (and then marks the
    // database down); this is the backstop, a little later.
    let backstop = state.settings.ready_timeout + std::time::Duration::from_millis(250);
    match tokio::time::timeout(backstop, state.warden.ready()).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(ApiError::new(
                crate::error::ErrCode::Unavailable,
                "the database did not answer in time",
            ))
        }
    }
    Ok(Json(Health { status: "ready" }))
}
