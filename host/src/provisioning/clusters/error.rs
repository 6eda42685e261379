//! Why a managed-cluster operation failed ([`ClusterError`]). Every case about a
//! recorded cluster names its name and record id (`bpr history <id>` shows the rest).

use super::super::error::{DeployError, StepError};
use super::super::request::RequestError;
use crate::tracking::TrackError;

/// A managed-cluster operation (create, delete, look up) failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The request is invalid; nothing was written.
    #[error("invalid cluster request: {0}")]
    InvalidRequest(#[from] RequestError),
    /// The provider cannot create clusters (not loaded, or no managed Kubernetes);
    /// nothing was written.
    #[error("provider {provider} cannot create a managed cluster: {reason}")]
    ProviderUnfit {
        /// Provider name.
        provider: String,
        /// Why.
        reason: String,
    },
    /// The name already means another cluster (`[operator.kubernetes]`); nothing was written.
    #[error("cluster name {name} is already {by}; choose another name")]
    NameTaken {
        /// The name.
        name: String,
        /// What has it.
        by: String,
    },
    /// Another process is working on this cluster right now.
    #[error(
        "managed cluster record {0} is being worked on by another bpr process; try again when it is done"
    )]
    Busy(String),
    /// The tracker failed (a live cluster with the name, a database error...).
    #[error(transparent)]
    Track(#[from] TrackError),
    /// No tracked cluster has this name or record id.
    #[error("no managed cluster {0:?} is tracked (see `bpr k8s list`)")]
    NotFound(String),
    /// The record is not a managed cluster.
    #[error("{id} is a {kind} deployment, not a managed cluster; use `bpr terminate {id}`")]
    NotACluster {
        /// Record id.
        id: String,
        /// Its deployment type.
        kind: &'static str,
    },
    /// The provider refused the create; nothing was created. The record is `failed`.
    #[error("cluster {name} ({id}): {source}")]
    Refused {
        /// Cluster name.
        name: String,
        /// Record id.
        id: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// The create's outcome is unknown (its answer was lost and the provider
    /// could not be asked): the record stays `provisioning` and recovery asks
    /// the provider again (`bpr cleanup`, or the supervisor of `bpr serve`).
    #[error(
        "cluster {name} ({id}): {source}; whether it was created is not known yet, so the record stays provisioning and `bpr cleanup` resolves it"
    )]
    Unresolved {
        /// Cluster name.
        name: String,
        /// Record id.
        id: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// It failed after the provider created it; the cluster was deleted again.
    #[error("cluster {name} ({id}): {source}; the cluster was deleted again")]
    Failed {
        /// Cluster name.
        name: String,
        /// Record id.
        id: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// It failed after the provider created it, and deleting it failed too: the
    /// record is `failed` and still holds the cluster, which `bpr cleanup` deletes.
    #[error(
        "cluster {name} ({id}): {failure}; deleting it failed too ({source}); the record holds it and `bpr cleanup` retries"
    )]
    CleanupFailed {
        /// Cluster name.
        name: String,
        /// Record id.
        id: String,
        /// The original failure, as a sentence.
        failure: String,
        /// Why deletion failed.
        #[source]
        source: Box<StepError>,
    },
    /// The create was accepted but the cluster did not run within the wait; it
    /// stays tracked (`deploying`) and recovery moves it to active once it runs.
    #[error(
        "cluster {name} ({id}): {source}; it stays tracked (deploying) and becomes active once it runs (`bpr cleanup` or `bpr serve` check it), or delete it with `bpr k8s delete {name}`"
    )]
    StillProvisioning {
        /// Cluster name.
        name: String,
        /// Record id.
        id: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// Live Kubernetes deployments run on the cluster; deleting it would strand them.
    #[error(
        "cluster {name} runs {} live Kubernetes deployment(s) ({}); terminate them first, or delete with force to terminate them with it",
        deployments.len(),
        deployments.join(", ")
    )]
    InUse {
        /// Cluster name.
        name: String,
        /// The deployments' ids.
        deployments: Vec<String>,
    },
    /// Deleting the cluster (or a deployment on it) failed; see the cause.
    #[error(transparent)]
    Terminate(#[from] DeployError),
}
