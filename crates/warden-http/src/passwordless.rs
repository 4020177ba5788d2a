//! What both APIs' passwordless endpoints (magic links, email codes) share:
//! the feature gate and the emailed link.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use warden_core::AuthError;

use crate::AppState;

/// Which feature a [`Gate`] checks.
pub trait Feature {
    fn enabled(state: &AppState) -> bool;
}

pub struct MagicLinks;
pub struct EmailCodes;

impl Feature for MagicLinks {
    fn enabled(state: &AppState) -> bool {
        state.warden.settings().magic_link.enabled
    }
}

impl Feature for EmailCodes {
    fn enabled(state: &AppState) -> bool {
        state.warden.settings().email_otp.enabled
    }
}

/// A handler argument that answers 404 (in the API's error format `E`)
/// before anything else, the body included, while the feature is off: the
/// route then looks as it does on a BetterAuth server without the plugin.
pub struct Gate<F, E>(PhantomData<(F, E)>);

impl<S, F, E> FromRequestParts<S> for Gate<F, E>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    F: Feature,
    E: From<AuthError> + IntoResponse,
{
    type Rejection = Response;

    async fn from_request_parts(_parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if F::enabled(&AppState::from_ref(state)) {
            Ok(Gate(PhantomData))
        } else {
            Err(E::from(AuthError::FeatureDisabled).into_response())
        }
    }
}

/// `<target>?<key>=<value>` for each pair with a value, in order.
pub(crate) fn with_params(target: &str, params: &[(&str, Option<&str>)]) -> String {
    params
        .iter()
        .fold(target.to_owned(), |acc, (k, v)| match v {
            Some(v) => crate::routes::password::with_query(&acc, k, v),
            None => acc,
        })
}
