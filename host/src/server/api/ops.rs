//! Liveness, readiness and metrics: what a supervisor (systemd, Kubernetes,
//! Prometheus) asks of the service.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::providers::ProviderState;
use crate::server::{ApiError, AppState};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Liveness.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The running bpr's version.
    pub version: String,
}

/// The process is alive and its event loop answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health), (status = 401, body = crate::server::error::ErrorBody)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// Readiness and what it was decided from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Readiness {
    /// True when the service takes work.
    pub ready: bool,
    /// Shutting down (no new work).
    pub draining: bool,
    /// The database answered.
    pub database: bool,
    /// Providers serving calls.
    pub providers_serving: usize,
    /// Providers whose newest file was refused (serving an older version or
    /// nothing).
    pub providers_refused: usize,
    /// Deploys, terminations and renewals running.
    pub work_in_flight: usize,
    /// This replica leads the supervisor (TTL cleanup, recovery, health,
    /// payment, price refresh). Every replica serves the API, so this does
    /// not change `ready`. True for a service that takes part in no election.
    pub leader: bool,
    /// This replica's name in the election (`BPR_REPLICA_ID`, the pod's name
    /// on Kubernetes, with its process id and a random suffix).
    pub replica: Option<String>,
    /// The term it leads in (the supervisor lease's fencing token).
    pub term: Option<i64>,
}

/// Ready to take work: not shutting down, the database answers, at least one
/// provider serves calls. 503 otherwise, with the same body.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness),
        (status = 401, body = crate::server::error::ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let statuses = state.host().statuses();
    let serving = statuses.iter().filter(|s| s.current.is_some()).count();
    let refused = statuses
        .iter()
        .filter(|s| !matches!(s.state, ProviderState::Loaded))
        .count();
    let database = state.host().database().query_opt("SELECT 1", &[]).is_ok();
    let draining = state.draining();
    let r = Readiness {
        ready: !draining && database && serving > 0,
        draining,
        database,
        providers_serving: serving,
        providers_refused: refused,
        work_in_flight: state.work().in_flight(),
        leader: state.leadership().is_none_or(|l| l.is_leader()),
        replica: state.leadership().map(|l| l.owner().to_string()),
        term: state.leadership().and_then(|l| l.term()),
    };
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(r)).into_response()
}

/// Metrics in the Prometheus text format (0.0.4).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, body = crate::server::error::ErrorBody)))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    // The collectors read the database: off the async threads.
    let s = state.clone();
    let text = tokio::task::spawn_blocking(move || s.metrics().render(s.host()))
        .await
        .map_err(|e| ApiError::Internal(format!("metrics rendering failed: {e}")))?;
    Ok((
        [(
            http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
