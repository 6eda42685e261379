//! Managed clusters (`bpr k8s create|delete|list` over HTTP): create (202 and
//! the record id; the provider's control plane takes minutes), list, one
//! cluster, delete (202). Each is a tracked record of type `cluster`
//! ([`crate::provisioning::clusters`]): its history is
//! `GET /v1/deployments/{id}/history` and its state changes are on
//! `/v1/events` like a deployment's.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::query::ApiQuery;
use crate::provisioning::{ClusterError, ClusterOptions, ClusterRequest, new_deployment_id};
use crate::server::error::ErrorBody;
use crate::server::json::ApiJson;
use crate::server::work::TaskKind;
use crate::server::{ApiError, AppState};
use crate::tracking::{DeploymentRecord, DeploymentStatus};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get, delete))
}

impl From<ClusterError> for ApiError {
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::InvalidRequest(r) => Self::InvalidField {
                field: r.field,
                message: r.message,
            },
            ClusterError::ProviderUnfit { .. } => Self::field("provider", e.to_string()),
            ClusterError::NameTaken { .. }
            | ClusterError::Busy(_)
            | ClusterError::InUse { .. }
            | ClusterError::NotACluster { .. } => Self::Conflict(e.to_string()),
            ClusterError::NotFound(_) => Self::NotFound(e.to_string()),
            ClusterError::Track(t) => match t {
                crate::tracking::TrackError::ClusterNameTaken { .. } => {
                    Self::Conflict(t.to_string())
                }
                t => t.into(),
            },
            ClusterError::Terminate(d) => d.into(),
            other => Self::Upstream(other.to_string()),
        }
    }
}

/// A cluster create or delete accepted for the background.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterAccepted {
    /// The cluster's record id (`GET /v1/deployments/{id}/history`, events).
    pub id: String,
    /// Cluster name (`GET /v1/clusters/{name}`; `k8s:<name>` once active).
    pub name: String,
    /// `creating` or `deleting`.
    pub status: String,
}

/// Labels of the background tasks, so one cluster is not created or deleted twice at once.
fn create_label(name: &str) -> String {
    format!("create cluster {name}")
}
fn delete_label(name: &str) -> String {
    format!("delete cluster {name}")
}

/// Create a managed cluster: the request is checked now (4xx when the name is
/// taken, the provider cannot, a field is wrong), then created in the
/// background and tracked like a VM (TTL, recovery). Answers 202 with the
/// record id; the cluster is `active` (a target `k8s:<name>`) once it runs.
#[utoipa::path(post, path = "/v1/clusters", tag = "clusters", request_body = ClusterRequest,
    responses((status = 202, body = ClusterAccepted, headers(("Location" = String, description = "The cluster's URL"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(mut req): ApiJson<ClusterRequest>,
) -> Result<Response, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    if let Some(id) = &req.deployment_id {
        super::check_id(id)?;
        if state.host().tracker().get(id).is_ok() {
            return Err(ApiError::Conflict(format!(
                "record {id:?} already exists; choose another id or omit deployment_id"
            )));
        }
    }
    if state.work().is_running(&create_label(&req.name)) {
        return Err(ApiError::Conflict(format!(
            "cluster {} is being created right now",
            req.name
        )));
    }
    state.host().orchestrator().check_cluster_request(&req)?;
    let id = req.deployment_id.clone().unwrap_or_else(new_deployment_id);
    req.deployment_id = Some(id.clone());
    let name = req.name.clone();
    let host = state.host().clone();
    let opts = ClusterOptions {
        deploy: state.deploy_options().clone(),
        ..ClusterOptions::default()
    };
    state.work().spawn(
        TaskKind::Request,
        create_label(&name),
        async move {
            let name = req.name.clone();
            match host.create_cluster(req, &opts).await {
                Ok(rec) => {
                    tracing::info!(target: "bpr::serve", "cluster {name} ({}) is {}", rec.id, rec.status)
                }
                Err(e) => tracing::warn!(target: "bpr::serve", "cluster {name}: {e}"),
            }
        },
        |_| {},
    )?;
    Ok((
        StatusCode::ACCEPTED,
        [(http::header::LOCATION, format!("/v1/clusters/{name}"))],
        Json(ClusterAccepted {
            id,
            name,
            status: "creating".into(),
        }),
    )
        .into_response())
}

/// Filters of `GET /v1/clusters`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClusterListParams {
    /// Also the terminated and failed ones.
    pub all: Option<bool>,
}

/// Tracked managed clusters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterList {
    /// Their records, oldest first (`cluster` is the name, `instance_id` the
    /// provider's id, `address` the API server).
    pub clusters: Vec<DeploymentRecord>,
}

/// Tracked managed clusters, oldest first (live ones unless `all=true`).
#[utoipa::path(get, path = "/v1/clusters", tag = "clusters", params(ClusterListParams),
    responses((status = 200, body = ClusterList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ClusterListParams>,
) -> Result<Json<ClusterList>, ApiError> {
    let all = p.all.unwrap_or(false);
    let clusters = state
        .host()
        .managed_clusters()?
        .into_iter()
        .filter(|r| {
            all || !matches!(
                r.status,
                DeploymentStatus::Terminated | DeploymentStatus::Failed
            ) || r.holds_resources()
        })
        .collect();
    Ok(Json(ClusterList { clusters }))
}

/// Checks a cluster name or record id from a path.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            "name",
            "a cluster name or record id is 1-64 characters of [a-z0-9-]",
        ))
    }
}

/// One managed cluster by name (the live one, else the newest) or record id.
#[utoipa::path(get, path = "/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path, description = "Cluster name or record id")),
    responses((status = 200, body = DeploymentRecord),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The id is a deployment, not a cluster"),
        (status = 422, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    check_name(&name)?;
    Ok(Json(state.host().managed_cluster(&name)?))
}

/// Delete options.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Also terminate the Kubernetes deployments running on it (else their
    /// presence is a 409 naming them).
    pub force: Option<bool>,
}

/// Delete a managed cluster in the background (202); a cluster already gone
/// is answered with its record (200).
#[utoipa::path(delete, path = "/v1/clusters/{name}", tag = "clusters",
    params(("name" = String, Path, description = "Cluster name or record id"), DeleteParams),
    responses((status = 202, body = ClusterAccepted), (status = 200, body = DeploymentRecord, description = "Already gone"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Deployments run on it (without force), or it is being created"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiQuery(p): ApiQuery<DeleteParams>,
) -> Result<Response, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    check_name(&name)?;
    let rec = state.host().managed_cluster(&name)?;
    let cluster = rec.cluster.clone().unwrap_or_else(|| name.clone());
    let over = rec.status == DeploymentStatus::Terminated
        || (rec.status == DeploymentStatus::Failed && !rec.holds_resources());
    if over {
        return Ok(Json(rec).into_response());
    }
    if state.work().is_running(&create_label(&cluster)) {
        return Err(ApiError::Conflict(format!(
            "cluster {cluster} is being created right now; delete it once its status is active or failed"
        )));
    }
    let force = p.force.unwrap_or(false);
    if !force {
        let on: Vec<String> = state
            .host()
            .tracker()
            .live_on_cluster(&cluster)?
            .into_iter()
            .map(|r| r.id)
            .collect();
        if !on.is_empty() {
            return Err(ClusterError::InUse {
                name: cluster,
                deployments: on,
            }
            .into());
        }
    }
    if !state.work().is_running(&delete_label(&cluster)) {
        let (host, opts, id) = (
            state.host().clone(),
            state.deploy_options().clone(),
            rec.id.clone(),
        );
        state.work().spawn(
            TaskKind::Request,
            delete_label(&cluster),
            async move {
                match host.delete_cluster(&id, force, &opts).await {
                    Ok(r) => tracing::info!(target: "bpr::serve", "cluster record {} is {}", r.id, r.status),
                    Err(e) => {
                        tracing::warn!(target: "bpr::serve", "deleting cluster record {id}: {e}");
                        let _ = host
                            .tracker()
                            .note_error(&id, &format!("deletion through the API: {e}"));
                    }
                }
            },
            |_| {},
        )?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(ClusterAccepted {
            id: rec.id,
            name: cluster,
            status: "deleting".into(),
        }),
    )
        .into_response())
}
