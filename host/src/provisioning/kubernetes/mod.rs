//! Kubernetes deployments through the tracker: the same records, states, locks, TTL
//! and recovery as VM deployments, with a cluster where a provider would be.
//!
//! Durability follows the VM path: the record (and its one attempt) is committed
//! before anything is applied, and where the objects go (cluster, namespace, name;
//! all deterministic) is recorded before the first object is applied, so a crash at
//! any point leaves a record that knows what to delete.
//!
//! The record's `provider/region/type` reads `kubernetes/<cluster>/<tier>`;
//! `instance_id` is `namespace/name`.

mod change;
mod deploy;
mod recover;

use super::error::{DeployError, StepError};
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::request::DeployRequest;
use crate::kubernetes::{self, Cluster, Deployer, RolloutOptions, WorkloadRef};
use crate::tracking::{DeploymentRecord, DeploymentType, TrackError, Tracker};

/// What [`Orchestrator::update`] changes in a running Kubernetes deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesChange {
    /// New container image.
    pub image: Option<String>,
    /// New payment tier.
    pub tier: Option<kubernetes::Tier>,
}

fn rollout(opts: &DeployOptions) -> RolloutOptions {
    RolloutOptions {
        deadline: opts.health_timeout,
        poll_interval: opts.poll_initial.min(opts.poll_max),
    }
}

fn stored_request(rec: &DeploymentRecord) -> Result<DeployRequest, DeployError> {
    serde_json::from_str(&rec.request_json).map_err(|e| {
        DeployError::Track(TrackError::Corrupt {
            id: rec.id.clone(),
            message: format!("request_json: {e}"),
        })
    })
}

impl Orchestrator {
    /// A deployer for the record's cluster.
    pub(in crate::provisioning) async fn deployer_of(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> Result<Deployer, StepError> {
        let name = rec
            .cluster
            .as_deref()
            .ok_or_else(|| StepError::NoCluster(rec.id.clone()))?;
        let cluster: Cluster = self.clusters.cluster(name).await?;
        Ok(cluster.deployer().with_rollout(rollout(opts)))
    }

    pub(super) fn kubernetes_target(
        &self,
        rec: &DeploymentRecord,
    ) -> Result<kubernetes::WorkloadRef, DeployError> {
        if rec.deployment_type != DeploymentType::Kubernetes {
            return Err(DeployError::NotKubernetes(rec.id.clone()));
        }
        rec.kubernetes
            .clone()
            .filter(|_| rec.holds_resources())
            .ok_or_else(|| DeployError::Kubernetes {
                id: rec.id.clone(),
                source: Box::new(StepError::WrongState(format!(
                    "nothing is deployed (status {})",
                    rec.status
                ))),
            })
    }
}

/// Records where the deployment's Service is reached. Best effort: the rollout
/// succeeded whatever this read does, and `bpr status` reads it again.
async fn record_address(tracker: &Tracker, deployer: &Deployer, id: &str, target: &WorkloadRef) {
    match deployer.service_address(target).await {
        Ok(Some(a)) => {
            if let Err(e) = tracker.record_address(id, a.preferred()) {
                tracing::warn!(deployment = id, error = %e, "could not record the service address");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(deployment = id, error = %e, "could not read the service address");
        }
    }
}

/// True when the stored request of Kubernetes deployment `rec` is suspended
/// (scaled to zero after its payment expired).
pub(super) fn is_suspended(rec: &DeploymentRecord) -> bool {
    serde_json::from_str::<DeployRequest>(&rec.request_json)
        .ok()
        .and_then(|r| r.kubernetes)
        .is_some_and(|k| k.suspended)
}
