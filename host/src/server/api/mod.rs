//! The handlers, one file per area. Each area's `router()` registers its
//! handlers with `routes!`, which also adds them to the OpenAPI description.

pub mod clusters;
pub mod costs;
pub mod deployments;
pub mod events;
pub mod logs;
pub mod ops;
pub mod providers;
pub mod query;
pub mod services;

use utoipa_axum::router::OpenApiRouter;

use super::state::AppState;

/// Every area's routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(ops::router())
        .merge(deployments::router())
        .merge(services::router())
        .merge(providers::router())
        .merge(events::router())
        .merge(logs::router())
        .merge(clusters::router())
        .merge(costs::router())
}

/// Checks a deployment id from a path: the tracker's alphabet and length.
pub(crate) fn check_id(id: &str) -> Result<(), super::ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(super::ApiError::field(
            "id",
            "a deployment id is 1-64 characters of [a-z0-9-] (as `POST /v1/deployments` returned it)",
        ))
    }
}
