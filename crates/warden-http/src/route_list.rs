//! One route list, two builders.
//!
//! Every list of routes (the tutorial API, the BetterAuth API, social
//! sign-in) is written once, as a function generic over [`RouteSink`], and
//! built two ways:
//!
//! - into a plain axum `Router`, for serving: only each handler's path and
//!   methods are read (from the `#[utoipa::path]` attribute), which costs
//!   microseconds;
//! - into an `OpenApiRouter`, for the OpenAPI document: every operation and
//!   schema is generated, which costs a few milliseconds and is done only
//!   when `/openapi.json` is first asked for (or by [`crate::openapi`]).
//!
//! So start-up does not pay for the document, and neither list can miss a
//! route the other has: they are the same list.

use axum::Router;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::AppState;

/// One `#[utoipa::path]` handler (or several on the same path), as both
/// builders need it.
pub(crate) struct RouteDef {
    pub doc: fn() -> UtoipaMethodRouter<AppState>,
    pub plain: fn(Router<AppState>) -> Router<AppState>,
}

/// What a route list is built into.
pub(crate) trait RouteSink: Sized {
    fn add(self, route: RouteDef) -> Self;
    /// The BetterAuth API's answer to unknown paths under its base path.
    fn ba_fallback(self) -> Self;
}

impl RouteSink for Router<AppState> {
    fn add(self, route: RouteDef) -> Self {
        (route.plain)(self)
    }
    fn ba_fallback(self) -> Self {
        self.fallback(|| async { crate::betterauth::BaError::not_found() })
    }
}

impl RouteSink for OpenApiRouter<AppState> {
    fn add(self, route: RouteDef) -> Self {
        self.routes((route.doc)())
    }
    fn ba_fallback(self) -> Self {
        self.fallback(|| async { crate::betterauth::BaError::not_found() })
    }
}

/// `route!(module::handler)` or `route!(module::get, module::put)`: a
/// [`RouteDef`] for handlers annotated with `#[utoipa::path]`.
///
/// The plain builder reads `path()` and `methods()` of the `__path_*` type
/// that `#[utoipa::path]` generates, through `utoipa_axum::routes!`'s own
/// path resolution (its `@path` arm), so that both builders find handlers
/// exactly alike.
macro_rules! route {
    ($($($handler:ident)::+),+ $(,)?) => {
        $crate::route_list::RouteDef {
            doc: || utoipa_axum::routes!($($($handler)::+),+),
            plain: |router| {
                #[allow(unused_imports)]
                use utoipa_axum::PathItemExt as _;
                $(
                    let path: String = utoipa_axum::routes!(@path [path()] of $($handler)::+);
                    let methods: Vec<utoipa::openapi::HttpMethod> =
                        utoipa_axum::routes!(@path [methods()] of $($handler)::+);
                    let method_router = methods.iter().fold(
                        axum::routing::MethodRouter::new(),
                        |r, m| r.on(m.to_method_filter(), $($handler)::+),
                    );
                    let router = router.route(&path, method_router);
                )+
                router
            },
        }
    };
}

pub(crate) use route;
