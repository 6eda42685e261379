//! Deployments: plan, deploy (asynchronous: 202 and an id), list, status,
//! history, renew, terminate (asynchronous).
//!
//! A deploy is planned before it is accepted, so a request that cannot be
//! placed is a 422 at once; what happens after the 202 is on the event stream
//! and in the record (`GET /v1/deployments/{id}`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::check_id;
use super::query::ApiQuery;
use crate::provisioning::{DeployRequest, KubernetesPlacement, Plan, new_deployment_id};
use crate::server::error::ErrorBody;
use crate::server::events::{HubEvent, ServiceEvent, ServiceEventKind};
use crate::server::json::ApiJson;
use crate::server::work::{Accepted, Ended, TaskKind};
use crate::server::{ApiError, AppState};
use crate::tracking::{Attempt, DeploymentQuery, DeploymentRecord, DeploymentStatus, Transition};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(plan))
        .routes(routes!(deploy, list))
        .routes(routes!(status, terminate))
        .routes(routes!(history))
        .routes(routes!(renew))
}

/// Where the request would be deployed, and how that was decided. Records
/// nothing and creates nothing.
#[utoipa::path(post, path = "/v1/plan", tag = "deployments", request_body = DeployRequest,
    responses((status = 200, body = Plan),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "An invalid field, or no place fits"),
        (status = 503, body = ErrorBody)))]
pub async fn plan(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<DeployRequest>,
) -> Result<Json<Plan>, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    check(&state, &req)?;
    Ok(Json(state.host().plan(&req).await?))
}

/// Checks every field of `req`, and that each candidate's provider is loaded.
fn check(state: &AppState, req: &DeployRequest) -> Result<(), ApiError> {
    req.validate()
        .map_err(|e| ApiError::field(e.field, e.message))?;
    for (i, c) in req.candidates.iter().enumerate() {
        if state.host().provider(&c.provider).is_err() {
            return Err(ApiError::field(
                format!("candidates[{i}].provider"),
                format!(
                    "no provider {:?} is loaded (GET /v1/providers lists them)",
                    c.provider
                ),
            ));
        }
    }
    Ok(())
}

/// A deploy accepted for the background.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeployAccepted {
    /// The deployment id: `GET /v1/deployments/{id}`, `GET /v1/events?deployment={id}`.
    pub id: String,
    /// Always `accepted`.
    pub status: String,
    /// Its Blueprint id.
    pub blueprint_id: String,
    /// Its service id.
    pub service_id: String,
    /// The VM candidates it will try, in order (`provider/region/type`).
    pub candidates: Vec<String>,
    /// The cluster and tier, for a Kubernetes deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<KubernetesPlacement>,
}

/// Deploy: the request is checked and planned now (4xx when it cannot be), then
/// provisioned in the background with failover. Answers 202 with the id at
/// once; follow it on `/v1/events` or `GET /v1/deployments/{id}`.
#[utoipa::path(post, path = "/v1/deployments", tag = "deployments", request_body = DeployRequest,
    responses((status = 202, body = DeployAccepted, headers(("Location" = String, description = "The deployment's URL"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The deployment id is taken"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "An invalid field, no place fits, or over the operator's budget (code over-budget)"),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn deploy(
    State(state): State<AppState>,
    ApiJson(mut req): ApiJson<DeployRequest>,
) -> Result<Response, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    check(&state, &req)?;
    if let Some(id) = &req.deployment_id
        && (state.host().tracker().get(id).is_ok() || state.work().pending(id).is_some())
    {
        return Err(ApiError::Conflict(format!(
            "deployment {id:?} already exists; choose another id or omit deployment_id"
        )));
    }
    let plan = state.host().plan(&req).await?;
    // Over budget is refused now, like a request that cannot be placed.
    state.host().check_budget(&req, &plan)?;
    let id = req.deployment_id.clone().unwrap_or_else(new_deployment_id);
    req.deployment_id = Some(id.clone());
    let accepted = Accepted {
        id: id.clone(),
        blueprint_id: req.blueprint_id.clone(),
        service_id: req.service_id.clone(),
        at: crate::clock::unix_now(),
    };
    let body = DeployAccepted {
        id: id.clone(),
        status: "accepted".into(),
        blueprint_id: req.blueprint_id.clone(),
        service_id: req.service_id.clone(),
        candidates: plan.candidates.iter().map(|c| c.label()).collect(),
        kubernetes: plan.kubernetes.clone(),
    };
    state.work().accept(accepted.clone());
    let (host, opts, work, events) = (
        state.host().clone(),
        state.deploy_options().clone(),
        state.work().clone(),
        state.events().clone(),
    );
    let (end_work, end_host, end_events, end_accepted) =
        (work.clone(), host.clone(), events.clone(), accepted.clone());
    let task_id = id.clone();
    let spawned = state.work().spawn(
        TaskKind::Request,
        format!("deploy {id}"),
        async move {
            match host.deploy_with(req, plan.candidates, &opts).await {
                Ok(rec) => {
                    tracing::info!(target: "bpr::serve", "deployment {} is {}", rec.id, rec.status)
                }
                Err(e) => {
                    tracing::warn!(target: "bpr::serve", "deployment {task_id}: {e}");
                    if host.tracker().get(&task_id).is_err() {
                        reject(&work, &events, &task_id, e.to_string());
                    }
                }
            }
            work.settle(&task_id, None);
        },
        move |ended| {
            // Stopped for shutdown before anything was recorded: nothing exists.
            if ended == Ended::Stopped && end_host.tracker().get(&end_accepted.id).is_err() {
                reject(
                    &end_work,
                    &end_events,
                    &end_accepted.id,
                    "the service shut down before the deploy started; nothing was created".into(),
                );
            }
            end_work.settle(&end_accepted.id, None);
        },
    );
    if let Err(e) = spawned {
        state.work().settle(&id, None);
        return Err(e);
    }
    state.events().publish(HubEvent::Service(ServiceEvent {
        deployment_id: Some(accepted.id.clone()),
        blueprint_id: accepted.blueprint_id.clone(),
        service_id: accepted.service_id.clone(),
        at: accepted.at,
        kind: ServiceEventKind::Accepted,
    }));
    Ok((
        StatusCode::ACCEPTED,
        [(http::header::LOCATION, format!("/v1/deployments/{id}"))],
        Json(body),
    )
        .into_response())
}

/// Remembers `id` as rejected and says so on the event stream.
pub(crate) fn reject(
    work: &crate::server::work::Work,
    events: &crate::server::events::EventHub,
    id: &str,
    reason: String,
) {
    if let Some(a) = work.pending(id) {
        work.settle(id, Some(reason.clone()));
        // A service initiation is remembered by its key, not a deployment id.
        let deployment_id = (!a.id.contains('/')).then_some(a.id);
        events.publish(HubEvent::Service(ServiceEvent {
            deployment_id,
            blueprint_id: a.blueprint_id,
            service_id: a.service_id,
            at: crate::clock::unix_now(),
            kind: ServiceEventKind::Rejected { reason },
        }));
    }
}

/// Filters and page of `GET /v1/deployments`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this status.
    pub status: Option<DeploymentStatus>,
    /// Only this Blueprint.
    pub blueprint_id: Option<String>,
    /// Only this service.
    pub service_id: Option<String>,
    /// Only this provider.
    pub provider: Option<String>,
    /// Page size, 1-1000. Default 100.
    pub limit: Option<usize>,
    /// The `next` of the previous page.
    pub after: Option<String>,
}

/// One page of deployments, oldest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeploymentPage {
    /// The records.
    pub deployments: Vec<DeploymentRecord>,
    /// Pass as `after` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Default and largest page.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Deployments, oldest first, a page at a time.
#[utoipa::path(get, path = "/v1/deployments", tag = "deployments", params(ListParams),
    responses((status = 200, body = DeploymentPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<DeploymentPage>, ApiError> {
    let limit = p.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("must be 1-{MAX_PAGE}")));
    }
    let after = match &p.after {
        None => None,
        Some(c) => Some(
            c.split_once(':')
                .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_string())))
                .ok_or_else(|| ApiError::field("after", "must be the `next` of a previous page"))?,
        ),
    };
    let q = DeploymentQuery {
        status: p.status,
        blueprint_id: p.blueprint_id,
        service_id: p.service_id,
        provider: p.provider,
        after,
        limit,
    };
    let tracker = state.host().tracker();
    let deployments = tokio::task::spawn_blocking(move || tracker.query(&q))
        .await
        .map_err(|e| ApiError::Internal(format!("list failed: {e}")))??;
    let next = (deployments.len() == limit)
        .then(|| {
            deployments
                .last()
                .map(|r| format!("{}:{}", r.created_at, r.id))
        })
        .flatten();
    Ok(Json(DeploymentPage { deployments, next }))
}

/// A deploy accepted whose record does not exist (yet, or ever).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PendingDeployment {
    /// Deployment id.
    pub id: String,
    /// `accepted` (its record is about to be written) or `rejected` (it
    /// failed before anything was recorded or created).
    pub status: String,
    /// Blueprint id.
    pub blueprint_id: String,
    /// Service id.
    pub service_id: String,
    /// When it was accepted (unix seconds).
    pub accepted_at: i64,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A deployment's record, or what is known of an accepted deploy without one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant, reason = "built once per response")]
pub enum DeploymentView {
    /// The tracker's record (boxed: it is four times a pending one).
    Recorded(Box<DeploymentRecord>),
    /// Accepted, not recorded.
    Pending(PendingDeployment),
}

/// One deployment: its record (status, placement, instance, address,
/// expiry...), or `accepted`/`rejected` for a deploy that has none.
#[utoipa::path(get, path = "/v1/deployments/{id}", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")),
    responses((status = 200, body = DeploymentView),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    check_id(&id)?;
    match state.host().tracker().get(&id) {
        Ok(rec) => return Ok(Json(DeploymentView::Recorded(Box::new(rec)))),
        Err(crate::tracking::TrackError::NotFound(_)) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(a) = state.work().pending(&id) {
        return Ok(Json(DeploymentView::Pending(PendingDeployment {
            id: a.id,
            status: "accepted".into(),
            blueprint_id: a.blueprint_id,
            service_id: a.service_id,
            accepted_at: a.at,
            last_error: None,
        })));
    }
    // Its record may have been written between the two looks.
    if let Ok(rec) = state.host().tracker().get(&id) {
        return Ok(Json(DeploymentView::Recorded(Box::new(rec))));
    }
    if let Some(r) = state.work().rejected(&id) {
        return Ok(Json(DeploymentView::Pending(PendingDeployment {
            id: r.accepted.id,
            status: "rejected".into(),
            blueprint_id: r.accepted.blueprint_id,
            service_id: r.accepted.service_id,
            accepted_at: r.accepted.at,
            last_error: Some(r.reason),
        })));
    }
    Err(ApiError::NotFound(format!("no deployment {id:?}")))
}

/// A deployment's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// Deployment id.
    pub id: String,
    /// Status changes with their reasons, oldest first.
    pub transitions: Vec<Transition>,
    /// The candidates tried, in order, and what became of each.
    pub attempts: Vec<Attempt>,
}

/// Every transition of a deployment with its reason, and every candidate tried.
#[utoipa::path(get, path = "/v1/deployments/{id}/history", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")),
    responses((status = 200, body = History),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<History>, ApiError> {
    check_id(&id)?;
    let tracker = state.host().tracker();
    tracker.get(&id)?;
    Ok(Json(History {
        transitions: tracker.history(&id)?,
        attempts: tracker.attempts(&id)?,
        id,
    }))
}

/// A payment renewed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// New time to live in seconds from now; absent: no limit.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
}

/// Renew a deployment's time to live (a payment arrived): it lives `ttl_secs`
/// more from now; a suspended Kubernetes deployment is scaled back up.
#[utoipa::path(post, path = "/v1/deployments/{id}/renew", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")), request_body = RenewRequest,
    responses((status = 200, body = DeploymentRecord),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody)))]
pub async fn renew(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RenewRequest>,
) -> Result<Json<DeploymentRecord>, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    check_id(&id)?;
    if body.ttl_secs == Some(0) {
        return Err(ApiError::field(
            "ttl_secs",
            "must be at least 1 (omit it for no limit; terminate to end the deployment)",
        ));
    }
    if let Some(t) = body.ttl_secs
        && t > i64::MAX as u64 / 2
    {
        return Err(ApiError::field("ttl_secs", "is larger than any date"));
    }
    let rec = state.host().tracker().get(&id)?;
    if rec.status.is_final() {
        return Err(ApiError::Conflict(format!(
            "deployment {id} is {}; a new deploy is needed",
            rec.status
        )));
    }
    let opts = state.deploy_options().clone();
    Ok(Json(state.host().renew(&id, body.ttl_secs, &opts).await?))
}

/// How long a termination waits for another holder of the deployment (the
/// supervisor checking it, a `bpr` command) before giving up.
const BUSY_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// Terminates `id`, waiting (with backoff) while something else holds it.
pub(crate) async fn terminate_when_free(host: &crate::Host, id: &str, opts: &crate::DeployOptions) {
    match host
        .orchestrator()
        .terminate_when_free(id, opts, "terminated through the API", BUSY_FOR)
        .await
    {
        Ok(_) => tracing::info!(target: "bpr::serve", "deployment {id} terminated"),
        Err(e) => {
            tracing::warn!(target: "bpr::serve", "terminating {id}: {e}");
            let _ = host
                .tracker()
                .note_error(id, &format!("termination through the API: {e}"));
        }
    }
}

/// A termination accepted for the background.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TerminateAccepted {
    /// Deployment id.
    pub id: String,
    /// Always `terminating`.
    pub status: String,
}

/// Terminate: everything the deployment created is deleted in the background
/// (202); `terminated` follows on the event stream. A deployment already over
/// is answered with its record (200).
#[utoipa::path(delete, path = "/v1/deployments/{id}", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id")),
    responses((status = 202, body = TerminateAccepted), (status = 200, body = DeploymentRecord, description = "Already over"),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "This service is deploying it right now"),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn terminate(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    check_id(&id)?;
    let tracker = state.host().tracker();
    let rec = match tracker.get(&id) {
        Ok(r) => r,
        Err(crate::tracking::TrackError::NotFound(_)) if state.work().pending(&id).is_some() => {
            return Err(ApiError::Conflict(format!(
                "deployment {id} is being deployed; terminate it once it is recorded"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let over = rec.status == DeploymentStatus::Terminated
        || (rec.status == DeploymentStatus::Failed && !rec.holds_resources());
    if over {
        return Ok(Json(rec).into_response());
    }
    let work = state.work();
    if work.is_running(&format!("deploy {id}")) {
        return Err(ApiError::Conflict(format!(
            "deployment {id} is being deployed right now; terminate it once its status is active or failed"
        )));
    }
    if !work.is_running(&format!("terminate {id}")) {
        let (host, opts, task_id) = (
            state.host().clone(),
            state.deploy_options().clone(),
            id.clone(),
        );
        work.spawn(
            TaskKind::Request,
            format!("terminate {id}"),
            async move { terminate_when_free(&host, &task_id, &opts).await },
            |_| {},
        )?;
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(TerminateAccepted {
            id,
            status: "terminating".into(),
        }),
    )
        .into_response())
}
