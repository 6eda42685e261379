//! Managed Kubernetes clusters through the tracker (`bpr k8s create|delete`):
//! the same records, states, locks, history, events, TTL and crash recovery as
//! a VM, with a cluster where the instance would be.
//!
//! A cluster record is a deployment of type `cluster`: `cluster` is its name
//! (unique among live records, and its `k8s:<name>` once it runs),
//! `provider/region` where it is, `instance_type` its node pools
//! (`3x s-2vcpu-4gb`), `instance_id` the provider's cluster id and `address` its
//! API server. The states read:
//!
//! ```text
//! planned       recorded; the provider was not called
//! provisioning  create-cluster called (intent recorded first); its answer not yet recorded
//! provisioned   the provider's cluster id recorded
//! deploying     waiting for the cluster to run
//! active        running: a deployment target (`k8s:<name>`)
//! terminating   delete-cluster until gone (its Kubernetes deployments first)
//! ```
//!
//! A record left in `provisioning` without an id (a crash, or a lost answer,
//! between create-cluster and the record) is resolved by asking the provider:
//! `get-cluster` by name (an empty id), or, for a provider that finds clusters
//! by id only, create-cluster again with the same idempotency key, which the WIT
//! contract says returns the cluster the lost answer described. A cluster is
//! adopted only when its `bpr-deployment` label names the record.
//!
//! Files: `request.rs` (what is asked), `create.rs`, `remove.rs` (delete and the
//! terminate branch), `recover.rs`, `error.rs`.

mod create;
mod error;
mod recover;
mod remove;
mod request;

use std::time::{Duration, Instant};

pub use error::ClusterError;
pub use request::{ClusterRequest, MAX_CLUSTER_NAME, MAX_NODE_POOLS, MAX_POOL_NODES, NodePool};

use super::error::StepError;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::verdict::{Verdict, verdict};
use crate::providers::ProviderHandle;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{
    self, Capability, ClusterRef, ClusterState, DeleteStatus, ProviderError, ResourceRef,
};
use crate::tracking::{DeploymentRecord, DeploymentType, ResourceRefRecord, TrackError};

/// How [`Orchestrator::create_cluster`] runs.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Retries, polling, delete deadline and progress.
    pub deploy: DeployOptions,
    /// How long the cluster may take to run before the create returns
    /// [`ClusterError::StillProvisioning`] (it stays tracked). Default 30 min:
    /// managed control planes take 5 to 20.
    pub running_timeout: Duration,
    /// Wait for the cluster to run. Without it the create returns once the
    /// provider accepted it (`provisioned`), and recovery (`bpr cleanup`, the
    /// supervisor of `bpr serve`) moves the record to `active` when it runs.
    /// Default: true.
    pub wait: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            deploy: DeployOptions::default(),
            running_timeout: Duration::from_secs(30 * 60),
            wait: true,
        }
    }
}

/// The lower-case name of a cluster state, for messages.
fn state_name(s: ClusterState) -> &'static str {
    match s {
        ClusterState::Provisioning => "provisioning",
        ClusterState::Running => "running",
        ClusterState::Updating => "updating",
        ClusterState::Deleting => "deleting",
        ClusterState::Deleted => "deleted",
        ClusterState::Failed => "failed",
        ClusterState::Unknown => "unknown",
    }
}

/// The request a cluster record was made from.
fn stored_request(rec: &DeploymentRecord) -> Result<ClusterRequest, TrackError> {
    serde_json::from_str(&rec.request_json).map_err(|e| TrackError::Corrupt {
        id: rec.id.clone(),
        message: format!("request_json of a cluster record: {e}"),
    })
}

/// What the record knows about its cluster, once the provider's id is recorded.
fn cluster_ref(rec: &DeploymentRecord, req: &ClusterRequest) -> Option<ClusterRef> {
    Some(ClusterRef {
        id: rec.instance_id.clone()?,
        name: req.name.clone(),
        region: req.region.clone(),
        resources: rec.resources.iter().map(ResourceRef::from).collect(),
    })
}

fn resources_of(c: &wit::Cluster) -> Vec<ResourceRefRecord> {
    c.resources.iter().map(ResourceRefRecord::from).collect()
}

/// The cluster's API server, when it has one.
fn endpoint_of(c: &wit::Cluster) -> Option<&str> {
    c.endpoint.as_deref().filter(|e| !e.is_empty())
}

/// The `bpr-deployment` label the provider read back.
fn owner_of(c: &wit::Cluster) -> Option<&str> {
    c.labels
        .iter()
        .find(|(k, _)| k == "bpr-deployment")
        .map(|(_, v)| v.as_str())
}

impl Orchestrator {
    /// Provider `name`, if it is loaded and announces managed Kubernetes.
    fn cluster_provider(&self, name: &str) -> Result<ProviderHandle, ClusterError> {
        let unfit = |reason: String| ClusterError::ProviderUnfit {
            provider: name.to_string(),
            reason,
        };
        let handle = self.providers.get(name).map_err(|e| unfit(e.to_string()))?;
        let current = handle.current().map_err(|e| unfit(e.to_string()))?;
        if !current
            .info
            .capabilities
            .contains(&Capability::ManagedKubernetes)
        {
            return Err(unfit(
                "it does not announce managed-kubernetes (see `bpr providers inspect`)".into(),
            ));
        }
        Ok(handle)
    }

    /// Every managed-cluster record (`bpr k8s list`), oldest first.
    pub fn managed_clusters(&self) -> Result<Vec<DeploymentRecord>, TrackError> {
        self.tracker.clusters()
    }

    /// The managed-cluster record `name_or_id`: a record id, else the live
    /// cluster of that name, else the newest record of that name.
    pub fn managed_cluster(&self, name_or_id: &str) -> Result<DeploymentRecord, ClusterError> {
        let rec = match self.tracker.get(name_or_id) {
            Ok(r) => r,
            Err(TrackError::NotFound(_)) => match self.tracker.live_cluster(name_or_id)? {
                Some(r) => r,
                None => self
                    .tracker
                    .clusters()?
                    .into_iter()
                    .rev()
                    .find(|r| r.cluster.as_deref() == Some(name_or_id))
                    .ok_or_else(|| ClusterError::NotFound(name_or_id.to_string()))?,
            },
            Err(e) => return Err(e.into()),
        };
        if rec.deployment_type != DeploymentType::Cluster {
            return Err(ClusterError::NotACluster {
                id: rec.id,
                kind: rec.deployment_type.as_str(),
            });
        }
        Ok(rec)
    }

    /// delete-cluster until `deleted` (not-found counts), under the deadline.
    async fn delete_cluster_until_gone(
        &self,
        provider: &ProviderHandle,
        r: &ClusterRef,
        opts: &DeployOptions,
    ) -> Result<(), StepError> {
        let started = Instant::now();
        let mut wait = opts.poll_initial;
        loop {
            match opts.retry.run(|| provider.delete_cluster(r.clone())).await {
                Ok(DeleteStatus::Deleted)
                | Err(CallError::Provider(ProviderError::NotFound(_))) => return Ok(()),
                Ok(DeleteStatus::InProgress) => {}
                Err(e)
                    if verdict(&e) == Verdict::Unknown
                        && started.elapsed() < opts.delete_timeout => {}
                Err(e) => {
                    return Err(StepError::call(
                        format!("delete-cluster {} ({})", r.name, r.id),
                        e,
                    ));
                }
            }
            if started.elapsed() >= opts.delete_timeout {
                return Err(StepError::ClusterNotDeleted {
                    cluster: format!("{} ({})", r.name, r.id),
                    secs: opts.delete_timeout.as_secs(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(opts.poll_max);
        }
    }

    /// Polls get-cluster until the cluster runs with an API server, under `timeout`.
    /// A cluster that failed or went away is an error at once.
    async fn wait_cluster_running(
        &self,
        provider: &ProviderHandle,
        r: &ClusterRef,
        first: &wit::Cluster,
        timeout: Duration,
        opts: &DeployOptions,
    ) -> Result<wit::Cluster, StepError> {
        let started = Instant::now();
        let what = format!("{} ({})", r.name, r.id);
        let mut wait = opts.poll_initial;
        let mut seen = first.clone();
        loop {
            match seen.state {
                ClusterState::Running if endpoint_of(&seen).is_some() => return Ok(seen),
                ClusterState::Failed | ClusterState::Deleting | ClusterState::Deleted => {
                    return Err(StepError::ClusterFailed {
                        cluster: what,
                        state: state_name(seen.state).into(),
                        detail: seen.detail,
                    });
                }
                _ => {}
            }
            let mut last = match &seen.detail {
                Some(d) => format!("{}: {d}", state_name(seen.state)),
                None => state_name(seen.state).to_string(),
            };
            loop {
                let left = timeout.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(StepError::ClusterNotRunning {
                        cluster: what,
                        secs: timeout.as_secs(),
                        last,
                    });
                }
                tokio::time::sleep(wait.min(left)).await;
                wait = (wait * 2).min(opts.poll_max);
                match opts.retry.run(|| provider.get_cluster(r.clone())).await {
                    Ok(c) => {
                        seen = c;
                        break;
                    }
                    Err(CallError::Provider(ProviderError::NotFound(m))) => {
                        return Err(StepError::ClusterFailed {
                            cluster: what,
                            state: "not found".into(),
                            detail: Some(m),
                        });
                    }
                    // Transient trouble reading it is not the cluster's failure.
                    Err(e) if verdict(&e) == Verdict::Unknown => last = e.to_string(),
                    Err(e) => {
                        return Err(StepError::call(format!("get-cluster {what}"), e));
                    }
                }
            }
        }
    }

    /// Asks the provider for the cluster of record `rec` whose create answer was
    /// lost: `get-cluster` by name; for a provider that finds clusters by id only,
    /// create-cluster again under the attempt's idempotency key (the WIT contract:
    /// a repeat returns the same cluster). `None` when the provider has none. A
    /// cluster of that name labelled for another record is an error, never adopted.
    async fn find_cluster(
        &self,
        provider: &ProviderHandle,
        rec: &DeploymentRecord,
        req: &ClusterRequest,
        idempotency_key: &str,
        opts: &DeployOptions,
    ) -> Result<Option<wit::Cluster>, StepError> {
        let by_name = ClusterRef {
            id: String::new(),
            name: req.name.clone(),
            region: req.region.clone(),
            resources: Vec::new(),
        };
        let found = match opts
            .retry
            .run(|| provider.get_cluster(by_name.clone()))
            .await
        {
            Ok(c) => c,
            Err(CallError::Provider(ProviderError::NotFound(_))) => return Ok(None),
            Err(CallError::Provider(
                ProviderError::InvalidRequest(_) | ProviderError::Unsupported(_),
            )) => {
                let spec = req.spec(&rec.id, idempotency_key, super::instances::labels_of(rec));
                opts.retry
                    .run(|| provider.create_cluster(spec.clone()))
                    .await
                    .map_err(|e| {
                        StepError::call(
                            format!(
                                "create-cluster {} (repeated to learn its outcome)",
                                req.name
                            ),
                            e,
                        )
                    })?
            }
            Err(e) => {
                return Err(StepError::call(
                    format!("get-cluster {} (by name)", req.name),
                    e,
                ));
            }
        };
        if found.state == ClusterState::Deleted {
            return Ok(None);
        }
        if owner_of(&found) != Some(rec.id.as_str()) {
            return Err(StepError::ClusterNotOurs {
                cluster: format!("{} ({})", found.name, found.id),
                owner: owner_of(&found).unwrap_or("(none)").to_string(),
            });
        }
        Ok(Some(found))
    }
}
