//! Password reset by emailed link, in the tutorial API's style.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::SuccessResponse;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestPasswordResetRequest {
    #[schema(example = "john@example.com", min_length = 3, max_length = 254, format = Email)]
    pub email: String,
    /// The front end's reset page; the link is `<redirectTo>?token=...`.
    /// Relative, or on a trusted origin. Default: `<base_url>/reset-password`.
    pub redirect_to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RequestPasswordResetResponse {
    pub success: bool,
    pub message: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResetPasswordRequest {
    /// The token from the emailed link.
    #[schema(min_length = 1, max_length = 256)]
    pub token: String,
    #[schema(example = "EvenBetterPass456!", min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// `target` with `token=<token>` added to its query.
pub(crate) fn with_query(target: &str, key: &str, value: &str) -> String {
    let (base, fragment) = match target.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (target, None),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let mut out = format!("{base}{sep}{key}={encoded}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Email a password-reset link. Answers the same whether the email is
/// registered or not.
#[utoipa::path(post, path = "/auth/request-password-reset", tag = "auth", operation_id = "requestPasswordReset",
    request_body = RequestPasswordResetRequest,
    responses(
        (status = 200, description = "Always the same answer", body = RequestPasswordResetResponse),
        (status = 400, description = "Invalid input", body = ApiError),
    ))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RequestPasswordResetRequest>,
) -> Result<Json<RequestPasswordResetResponse>, ApiError> {
    super::email::check_redirect_target(&state, "redirectTo", req.redirect_to.as_deref())?;
    let target = match req.redirect_to {
        Some(t) => t,
        None => format!(
            "{}/reset-password",
            state.settings.public_url.trim_end_matches('/')
        ),
    };
    state
        .warden
        .request_password_reset(&req.email, move |token| with_query(&target, "token", token))?;
    Ok(Json(RequestPasswordResetResponse {
        success: true,
        message: "If this email is registered, a reset link has been sent to it.".into(),
    }))
}

/// Set a new password with the token from a reset link. Every session of
/// the user ends.
#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", operation_id = "resetPassword",
    request_body = ResetPasswordRequest,
    responses(
        (status = 200, body = SuccessResponse),
        (status = 400, description = "Invalid, used or expired token; password refused", body = ApiError),
    ))]
pub async fn reset_password(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ResetPasswordRequest>,
) -> Result<Json<SuccessResponse>, ApiError> {
    state
        .warden
        .reset_password(&req.token, &req.new_password)
        .await?;
    Ok(Json(SuccessResponse { success: true }))
}

#[cfg(test)]
mod tests {
    use super::with_query;

    #[test]
    fn query() {
        assert_eq!(with_query("/r", "token", "ab"), "/r?token=ab");
        assert_eq!(
            with_query("https://x/r?a=1#f", "token", "ab"),
            "https://x/r?a=1&token=ab#f"
        );
        assert_eq!(with_query("/r", "error", "A B&"), "/r?error=A+B%26");
    }
}
