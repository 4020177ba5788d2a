//! The tutorial's protected profile, persisted.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warden_core::User;

use crate::error::ApiError;
use crate::extract::{ApiJson, AuthUser};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct UserProfile {
    pub id: String,
    pub email: String,
    pub name: String,
    pub image: Option<String>,
}

impl From<User> for UserProfile {
    fn from(u: User) -> Self {
        UserProfile {
            id: u.id,
            email: u.email,
            name: u.name,
            image: u.image,
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct UpdateProfileRequest {
    /// 1 to 256 characters, not only spaces, no control characters.
    #[schema(
        example = "Jane Doe",
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// An http(s) URL; `null` removes the image, absent leaves it as it is.
    #[serde(default, deserialize_with = "super::double_option")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^\\s*[hH][tT][tT][pP][sS]?://[^\\s\\u0000-\\u001f\\u007f-\\u009f]*\\s*$")]
    pub image: Option<Option<String>>,
}

/// The signed-in user's profile.
#[utoipa::path(get, path = "/profile", tag = "profile", operation_id = "getProfile",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, body = UserProfile),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn get_profile(auth: AuthUser) -> Json<UserProfile> {
    Json(auth.user.into())
}

/// Update the signed-in user's name (and image).
#[utoipa::path(put, path = "/profile", tag = "profile", operation_id = "updateProfile",
    security(("bearerAuth" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, body = UserProfile),
        (status = 400, description = "Invalid input", body = ApiError),
        (status = 401, description = "Not signed in", body = ApiError),
    ))]
pub async fn update_profile(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(req): ApiJson<UpdateProfileRequest>,
) -> Result<Json<UserProfile>, ApiError> {
    let image = req.image.as_ref().map(|i| i.as_deref());
    let user = state
        .warden
        .update_profile(auth.id(), Some(&req.name), image)
        .await?;
    tracing::info!(user_id = %user.id, "profile updated");
    Ok(Json(user.into()))
}
