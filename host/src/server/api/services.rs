//! Blueprint Manager's service events by service key (blueprint id, service
//! id), through the library's embedding API ([`crate::embedding`]):
//! initiated, terminated, renewed, and reconcile after a restart.
//!
//! `initiated` is idempotent per service: a service that already has a live
//! deployment gets it back (200), one being initiated gets 202 again, never a
//! second machine. A new one over the operator's budget is refused before the
//! 202 (422 `over-budget`, naming the limit and the figures; nothing recorded).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::deployments::{reject, terminate_when_free};
use crate::embedding::{
    DeployArtifact, EmbeddingError, EmbeddingOptions, ReconcileReport, RemoteDeployments,
    ResourceSpec, ServiceKey,
};
use crate::provisioning::HealthCheck;
use crate::server::error::ErrorBody;
use crate::server::events::{HubEvent, ServiceEvent, ServiceEventKind};
use crate::server::json::ApiJson;
use crate::server::work::{Accepted, Ended, TaskKind};
use crate::server::{ApiError, AppState};
use crate::tracking::DeploymentRecord;
use crate::workload::PortSpec;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(service))
        .routes(routes!(initiated))
        .routes(routes!(terminated))
        .routes(routes!(renew_service))
        .routes(routes!(reconcile))
}

impl From<EmbeddingError> for ApiError {
    fn from(e: EmbeddingError) -> Self {
        match e {
            EmbeddingError::Deploy(d) => d.into(),
            EmbeddingError::Track(t) => t.into(),
            EmbeddingError::InvalidResources { reason, .. } => {
                ApiError::field("resource_requirements", reason)
            }
            EmbeddingError::NoDeployment(key) => {
                ApiError::NotFound(format!("service {key} has no live deployment"))
            }
        }
    }
}

/// The key of a path: both ids are numbers, as on chain.
fn key(blueprint_id: &str, service_id: &str) -> Result<ServiceKey, ApiError> {
    let parse = |field: &str, v: &str| {
        v.parse::<u64>().map_err(|_| {
            ApiError::field(
                field,
                format!(
                    "{:?} is not a number (Blueprint and service ids are on-chain integers)",
                    v.chars().take(40).collect::<String>()
                ),
            )
        })
    };
    Ok(ServiceKey::new(
        parse("blueprint_id", blueprint_id)?,
        parse("service_id", service_id)?,
    ))
}

fn initiating(key: ServiceKey) -> String {
    format!("service {key} initiated")
}

/// A service and its deployment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceView {
    /// `<blueprint>/<service>`.
    pub service: String,
    /// `accepted` (being initiated), `rejected` (the initiation failed before
    /// a deployment was recorded), or the live deployment's status.
    pub status: String,
    /// The live deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentRecord>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A service's live deployment, or what is known of its initiation.
#[utoipa::path(get, path = "/v1/services/{blueprint_id}/{service_id}", tag = "services",
    params(("blueprint_id" = u64, Path), ("service_id" = u64, Path)),
    responses((status = 200, body = ServiceView),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn service(
    State(state): State<AppState>,
    Path((b, s)): Path<(String, String)>,
) -> Result<Json<ServiceView>, ApiError> {
    let key = key(&b, &s)?;
    let name = key.to_string();
    if let Some(rec) = state.host().tracker().live_by_service_key(&name)? {
        return Ok(Json(ServiceView {
            service: name,
            status: rec.status.to_string(),
            deployment: Some(rec),
            last_error: None,
        }));
    }
    if state.work().pending(&name).is_some() {
        return Ok(Json(ServiceView {
            service: name,
            status: "accepted".into(),
            deployment: None,
            last_error: None,
        }));
    }
    if let Some(r) = state.work().rejected(&name) {
        return Ok(Json(ServiceView {
            service: name,
            status: "rejected".into(),
            deployment: None,
            last_error: Some(r.reason),
        }));
    }
    Err(ApiError::NotFound(format!(
        "service {key} has no live deployment"
    )))
}

/// Blueprint Manager's `on_service_initiated`: what the service needs and what
/// to run on it, in upstream's shapes.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceInitiated {
    /// What the service needs; default 2 CPU, 4 GB, 20 GB.
    #[serde(default)]
    pub resource_requirements: Option<ResourceSpec>,
    /// What to run; without one the machine comes up idle.
    #[serde(default)]
    pub artifact: Option<DeployArtifact>,
    /// Environment of the workload (`BLUEPRINT_ID` and `SERVICE_ID` are set
    /// by the host).
    #[serde(default)]
    pub extra_env: HashMap<String, String>,
    /// Time to live in seconds (what was paid for); default: until terminated.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// Ports the service listens on (published, opened in the firewall).
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    /// HTTP health check.
    #[serde(default)]
    pub health: Option<HealthCheck>,
}

impl ServiceInitiated {
    /// The checks that can be made before anything runs; the rest (image
    /// names, environment names) are made by the deploy, whose failure is on
    /// the event stream and in `GET /v1/services/{b}/{s}`.
    fn check(&self) -> Result<(), ApiError> {
        if let Some(r) = &self.resource_requirements {
            for (name, v) in [
                ("cpu", r.cpu),
                ("memory_gb", r.memory_gb),
                ("storage_gb", r.storage_gb),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(ApiError::field(
                        format!("resource_requirements.{name}"),
                        format!("{v} is not a quantity; give a number >= 0"),
                    ));
                }
            }
        }
        match &self.artifact {
            Some(DeployArtifact::ContainerImage(i)) if i.trim().is_empty() => {
                return Err(ApiError::field(
                    "artifact.ContainerImage",
                    "must name an image",
                ));
            }
            Some(DeployArtifact::GithubBinary {
                archive_url,
                sha256_hex,
                binary_name,
            }) => {
                if !(archive_url.starts_with("https://") || archive_url.starts_with("http://")) {
                    return Err(ApiError::field(
                        "artifact.GithubBinary.archive_url",
                        "must be an http(s) URL",
                    ));
                }
                if sha256_hex.len() != 64
                    || !sha256_hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(ApiError::field(
                        "artifact.GithubBinary.sha256_hex",
                        "must be 64 lower-case hex digits",
                    ));
                }
                if binary_name.is_empty() || binary_name.contains('/') {
                    return Err(ApiError::field(
                        "artifact.GithubBinary.binary_name",
                        "must be a file name (no '/')",
                    ));
                }
            }
            _ => {}
        }
        if self.ttl_secs == Some(0) {
            return Err(ApiError::field(
                "ttl_secs",
                "must be at least 1 (omit it for no limit)",
            ));
        }
        for (i, p) in self.ports.iter().enumerate() {
            if p.container_port == 0 || p.host_port == Some(0) {
                return Err(ApiError::field(format!("ports[{i}]"), "ports are 1-65535"));
            }
        }
        if let Some(h) = &self.health {
            if h.port == 0 {
                return Err(ApiError::field("health.port", "must be 1-65535"));
            }
            if !h.path().starts_with('/') {
                return Err(ApiError::field("health.path", "must start with '/'"));
            }
        }
        Ok(())
    }
}

/// What became of a service event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceAnswer {
    /// `<blueprint>/<service>`.
    pub service: String,
    /// `accepted` (running in the background), `terminating`, or the live
    /// deployment's status.
    pub status: String,
    /// The deployment, when one exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentRecord>,
}

/// Blueprint Manager's `on_service_initiated`: deploy the service (ranked
/// with the operator's policy, with failover) in the background (202), or
/// answer with the live deployment it already has (200). Follow it on
/// `GET /v1/services/{b}/{s}` or `/v1/events?blueprint_id=..&service_id=..`.
#[utoipa::path(post, path = "/v1/services/{blueprint_id}/{service_id}/initiated", tag = "services",
    params(("blueprint_id" = u64, Path), ("service_id" = u64, Path)), request_body = ServiceInitiated,
    responses((status = 202, body = ServiceAnswer), (status = 200, body = ServiceAnswer, description = "It already has a live deployment"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "An invalid field, or over the operator's budget (code over-budget; nothing is recorded)"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn initiated(
    State(state): State<AppState>,
    Path((b, s)): Path<(String, String)>,
    ApiJson(body): ApiJson<ServiceInitiated>,
) -> Result<Response, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    let key = key(&b, &s)?;
    body.check()?;
    let name = key.to_string();
    if let Some(rec) = state.host().tracker().live_by_service_key(&name)? {
        return Ok(Json(ServiceAnswer {
            service: name,
            status: rec.status.to_string(),
            deployment: Some(rec),
        })
        .into_response());
    }
    let accepted_body = || ServiceAnswer {
        service: name.clone(),
        status: "accepted".into(),
        deployment: None,
    };
    let work = state.work().clone();
    if work.is_running(&initiating(key)) {
        return Ok((StatusCode::ACCEPTED, Json(accepted_body())).into_response());
    }
    let options = EmbeddingOptions {
        default_ttl_secs: body.ttl_secs,
        ports: body.ports.clone(),
        health: body.health.clone(),
        deploy: state.deploy_options().clone(),
        ..EmbeddingOptions::default()
    };
    let remote = RemoteDeployments::new(state.host().clone(), options);
    // Over budget is refused now (422 over-budget), as POST /v1/deployments
    // does; a service that already runs was answered above.
    remote
        .check_initiation(
            key,
            body.resource_requirements.clone(),
            body.artifact.clone(),
            body.extra_env.clone(),
        )
        .await?;
    let accepted = Accepted {
        id: name.clone(),
        blueprint_id: key.blueprint_id.to_string(),
        service_id: key.service_id.to_string(),
        at: crate::clock::unix_now(),
    };
    work.accept(accepted.clone());
    let (events, task_work, task_name) = (state.events().clone(), work.clone(), name.clone());
    let (end_work, end_events, end_name) = (work.clone(), state.events().clone(), name.clone());
    let spawned = work.spawn(
        TaskKind::Request,
        initiating(key),
        async move {
            let result = remote
                .on_service_initiated(
                    key.blueprint_id,
                    key.service_id,
                    body.resource_requirements,
                    body.artifact,
                    body.extra_env,
                )
                .await;
            match result {
                Ok(rec) => tracing::info!(target: "bpr::serve", "service {task_name}: deployment {} is {}", rec.id, rec.status),
                Err(e) => {
                    tracing::warn!(target: "bpr::serve", "service {task_name}: {e}");
                    // A record, if one was made, says why (failed) on its own.
                    reject(&task_work, &events, &task_name, e.to_string());
                }
            }
            task_work.settle(&task_name, None);
        },
        move |ended| {
            if ended == Ended::Stopped {
                reject(
                    &end_work,
                    &end_events,
                    &end_name,
                    "the service shut down during the initiation; send it again after the restart (it is idempotent)".into(),
                );
            }
            end_work.settle(&end_name, None);
        },
    );
    if let Err(e) = spawned {
        work.settle(&name, None);
        return Err(e);
    }
    state.events().publish(HubEvent::Service(ServiceEvent {
        deployment_id: None,
        blueprint_id: accepted.blueprint_id,
        service_id: accepted.service_id,
        at: accepted.at,
        kind: ServiceEventKind::Accepted,
    }));
    Ok((StatusCode::ACCEPTED, Json(accepted_body())).into_response())
}

/// Blueprint Manager's `on_service_terminated`: terminate the service's live
/// deployment in the background (202); a service without one is answered at
/// once (200, idempotent).
#[utoipa::path(post, path = "/v1/services/{blueprint_id}/{service_id}/terminated", tag = "services",
    params(("blueprint_id" = u64, Path), ("service_id" = u64, Path)),
    responses((status = 202, body = ServiceAnswer), (status = 200, body = ServiceAnswer, description = "No live deployment"),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody, description = "It is being initiated right now"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn terminated(
    State(state): State<AppState>,
    Path((b, s)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    let key = key(&b, &s)?;
    let name = key.to_string();
    let work = state.work();
    if work.is_running(&initiating(key)) {
        return Err(ApiError::Conflict(format!(
            "service {key} is being initiated right now; send terminated again once it settles"
        )));
    }
    let Some(rec) = state.host().tracker().live_by_service_key(&name)? else {
        return Ok(Json(ServiceAnswer {
            service: name,
            status: "terminated".into(),
            deployment: None,
        })
        .into_response());
    };
    let label = format!("terminate {}", rec.id);
    if !work.is_running(&label) {
        let (host, opts, id) = (
            state.host().clone(),
            state.deploy_options().clone(),
            rec.id.clone(),
        );
        work.spawn(
            TaskKind::Request,
            label,
            async move { terminate_when_free(&host, &id, &opts).await },
            |_| {},
        )?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ServiceAnswer {
            service: name,
            status: "terminating".into(),
            deployment: Some(rec),
        }),
    )
        .into_response())
}

/// A payment for a service.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceRenewal {
    /// It lives this many seconds more, from now.
    pub ttl_secs: u64,
}

/// A payment arrived: the service's deployment lives `ttl_secs` more from now
/// (a suspended Kubernetes deployment scales back up).
#[utoipa::path(post, path = "/v1/services/{blueprint_id}/{service_id}/renew", tag = "services",
    params(("blueprint_id" = u64, Path), ("service_id" = u64, Path)), request_body = ServiceRenewal,
    responses((status = 200, body = DeploymentRecord),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn renew_service(
    State(state): State<AppState>,
    Path((b, s)): Path<(String, String)>,
    ApiJson(body): ApiJson<ServiceRenewal>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    let key = key(&b, &s)?;
    if body.ttl_secs == 0 || body.ttl_secs > i64::MAX as u64 / 2 {
        return Err(ApiError::field(
            "ttl_secs",
            "must be a number of seconds >= 1",
        ));
    }
    let remote = RemoteDeployments::new(
        state.host().clone(),
        EmbeddingOptions {
            deploy: state.deploy_options().clone(),
            ..EmbeddingOptions::default()
        },
    );
    Ok(Json(remote.renew(key, body.ttl_secs).await?))
}

/// The services the chain still has.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// Every active service; any other service's deployment is terminated.
    pub active: Vec<ServiceKey>,
}

/// A deployment reconcile could not terminate now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReconcileFailure {
    /// `<blueprint>/<service>`.
    pub service: String,
    /// Its deployment.
    pub deployment_id: String,
    /// Why (the supervisor retries).
    pub error: String,
}

/// What reconcile did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReconcileAnswer {
    /// Active services whose deployment is live: `service` → deployment id.
    pub kept: Vec<(String, String)>,
    /// Deployments of services no longer active, terminated.
    pub terminated: Vec<(String, String)>,
    /// Active services without a live deployment (send `initiated` for them).
    pub missing: Vec<String>,
    /// Deployments that could not be terminated now.
    pub errors: Vec<ReconcileFailure>,
}

impl From<ReconcileReport> for ReconcileAnswer {
    fn from(r: ReconcileReport) -> Self {
        let pair = |d: crate::embedding::ServiceDeployment| (d.key.to_string(), d.deployment_id);
        Self {
            kept: r.kept.into_iter().map(pair).collect(),
            terminated: r.terminated.into_iter().map(pair).collect(),
            missing: r.missing.iter().map(ToString::to_string).collect(),
            errors: r
                .errors
                .into_iter()
                .map(|(d, error)| ReconcileFailure {
                    service: d.key.to_string(),
                    deployment_id: d.deployment_id,
                    error,
                })
                .collect(),
        }
    }
}

/// After Blueprint Manager restarts: every live deployment of a service not
/// in `active` is terminated (now, before the answer), and active services
/// without one are listed.
#[utoipa::path(post, path = "/v1/services/reconcile", tag = "services", request_body = ReconcileRequest,
    responses((status = 200, body = ReconcileAnswer),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn reconcile(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ReconcileRequest>,
) -> Result<Json<ReconcileAnswer>, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    let remote = RemoteDeployments::new(
        state.host().clone(),
        EmbeddingOptions {
            deploy: state.deploy_options().clone(),
            ..EmbeddingOptions::default()
        },
    );
    Ok(Json(remote.reconcile(&body.active).await.into()))
}
