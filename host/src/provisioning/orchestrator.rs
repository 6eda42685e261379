//! The [`Orchestrator`]: the part of the host that deploys, terminates and
//! recovers. It owns nothing but shared handles on the providers, the cluster
//! directory and the tracker, so it is cheap to clone into tasks.

use std::sync::Arc;

use super::error::DeployError;
use super::options::{DeployEvent, DeployOptions};
use super::request::{DeployRequest, InstanceTarget};
use crate::config::Config;
use crate::kubernetes::ClusterDirectory;
use crate::providers::Providers;
use crate::tracking::{
    DeploymentRecord, DeploymentStatus, NewDeployment, TrackError, Tracker, Transition,
};

/// Deploys with failover, terminates and recovers deployments; see the
/// module docs of [`crate::provisioning`] for the error policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    pub(super) config: Arc<Config>,
    pub(super) providers: Providers,
    pub(super) clusters: ClusterDirectory,
    pub(super) tracker: Tracker,
}

/// Creates deployment `id`'s record (`planned`) from the request it stores, and
/// reports it: the first durable step of every deploy, VM or Kubernetes.
pub(super) fn record_planned(
    tracker: &Tracker,
    id: &str,
    stored: &DeployRequest,
    opts: &DeployOptions,
) -> Result<DeploymentRecord, DeployError> {
    let record = tracker.create(&NewDeployment {
        id: id.to_string(),
        blueprint_id: stored.blueprint_id.clone(),
        service_id: stored.service_id.clone(),
        deployment_type: stored.deployment_type,
        labels: stored.labels.clone(),
        ttl_secs: stored.ttl_secs,
        cleanup_webhook: stored.cleanup_webhook.clone(),
        request_json: serde_json::to_string(stored).unwrap_or_default(),
    })?;
    opts.emit(DeployEvent::Status {
        id: id.to_string(),
        status: DeploymentStatus::Planned,
        reason: "request recorded".into(),
    });
    Ok(record)
}

/// A fresh deployment id.
pub fn new_deployment_id() -> String {
    format!("dep-{}", uuid::Uuid::new_v4())
}

impl Orchestrator {
    /// An orchestrator over these parts.
    pub fn new(
        config: Arc<Config>,
        providers: Providers,
        clusters: ClusterDirectory,
        tracker: Tracker,
    ) -> Self {
        Self {
            config,
            providers,
            clusters,
            tracker,
        }
    }

    /// The deployment tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// Deploy `req` on the first of `candidates` (in ranked order) that
    /// works, with default timing. See the module docs for the error policy.
    pub async fn deploy(
        &self,
        req: DeployRequest,
        candidates: Vec<InstanceTarget>,
    ) -> Result<DeploymentRecord, DeployError> {
        self.deploy_with(req, candidates, &DeployOptions::default())
            .await
    }

    /// [`Orchestrator::deploy`] with explicit timing and a progress callback.
    pub async fn deploy_with(
        &self,
        req: DeployRequest,
        candidates: Vec<InstanceTarget>,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        req.validate()?;
        if req.deployment_type == crate::tracking::DeploymentType::Kubernetes {
            // The cluster is named in the request; there is nothing to rank.
            return self.deploy_kubernetes(req, opts).await;
        }
        self.deploy_vm(req, candidates, opts).await
    }

    pub(super) fn step(
        &self,
        tracker: &Tracker,
        opts: &DeployOptions,
        id: &str,
        to: DeploymentStatus,
        reason: &str,
    ) -> Result<DeploymentRecord, TrackError> {
        let r = tracker.transition(id, to, reason)?;
        opts.emit(DeployEvent::Status {
            id: id.to_string(),
            status: to,
            reason: reason.to_string(),
        });
        Ok(r)
    }

    /// Every record (oldest first), or one.
    pub fn status(&self, id: Option<&str>) -> Result<Vec<DeploymentRecord>, TrackError> {
        let t = self.tracker.clone();
        match id {
            Some(id) => Ok(vec![t.get(id)?]),
            None => t.list(),
        }
    }

    /// The transitions of `id`, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<Transition>, TrackError> {
        self.tracker.clone().history(id)
    }
}
