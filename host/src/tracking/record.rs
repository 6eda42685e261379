//! What the tracker stores: one deployment ([`DeploymentRecord`]), its history
//! ([`Transition`]) and the candidates it tried ([`Attempt`]), and what new rows
//! start with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::status::{DeploymentStatus, DeploymentType};
use crate::kubernetes::WorkloadRef;
use crate::runtime::bindings::wit::ResourceRef;

/// The seed's `DeploymentRecord` plus status: one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeploymentRecord {
    /// `dep-<uuid>`.
    pub id: String,
    /// Blueprint id.
    pub blueprint_id: String,
    /// Service id.
    pub service_id: String,
    /// vm / kubernetes / ssh.
    pub deployment_type: DeploymentType,
    /// Current status.
    pub status: DeploymentStatus,
    /// Provider of the current (last) attempt.
    pub provider: Option<String>,
    /// Region of the current attempt.
    pub region: Option<String>,
    /// Zone of the current attempt.
    pub zone: Option<String>,
    /// Machine type of the current attempt.
    pub instance_type: Option<String>,
    /// Spot.
    pub spot: bool,
    /// Price per hour of the current attempt, when known.
    pub hourly_usd: Option<f64>,
    /// The provider's instance id, recorded right after create-instance.
    pub instance_id: Option<String>,
    /// Resources the provider created next to the instance (for delete).
    pub resources: Vec<ResourceRefRecord>,
    /// Public (else private) IPv4 once known.
    pub address: Option<String>,
    /// When the instance was confirmed deleted (unix seconds).
    pub released_at: Option<i64>,
    /// Labels stored on the cloud resources (always `bpr-deployment`).
    pub labels: BTreeMap<String, String>,
    /// Optional webhook POSTed with the cleanup outcome.
    pub cleanup_webhook: Option<String>,
    /// The last error, when something failed.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// Time to live in seconds, when limited.
    pub ttl_secs: Option<u64>,
    /// `created_at + ttl`, when limited (unix seconds).
    pub expires_at: Option<i64>,
    /// The request it was made from (JSON); for Kubernetes deployments, updated by
    /// `update` / `suspend` / `resume` to what the cluster now runs.
    pub request_json: String,
    /// Kubernetes: the cluster's name (`k8s:<cluster>`).
    pub cluster: Option<String>,
    /// Kubernetes: where its objects are (namespace, name, workload kind). Recorded
    /// before the first object is applied.
    pub kubernetes: Option<WorkloadRef>,
    /// A provider may hold something made for it that no listing by its label
    /// has confirmed deleted (a create whose answer was lost while nothing
    /// answered). `bpr cleanup` and the supervisor keep at it until one has.
    #[serde(default)]
    pub unresolved: bool,
    /// The embedding API's service key (`<blueprint>/<service>`), when a service
    /// event created it; unique among live deployments.
    #[serde(default)]
    pub service_key: Option<String>,
}

impl DeploymentRecord {
    /// True when it points at an instance (or Kubernetes objects) not confirmed
    /// deleted, or may hold something no listing has ruled out (`unresolved`).
    pub fn holds_resources(&self) -> bool {
        (self.instance_id.is_some() && self.released_at.is_none()) || self.unresolved
    }
}

/// A stored WIT `resource-ref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceRefRecord {
    /// Provider-defined kind.
    pub kind: String,
    /// Provider id.
    pub id: String,
}

impl From<&ResourceRef> for ResourceRefRecord {
    fn from(r: &ResourceRef) -> Self {
        Self {
            kind: r.kind.clone(),
            id: r.id.clone(),
        }
    }
}

impl From<&ResourceRefRecord> for ResourceRef {
    fn from(r: &ResourceRefRecord) -> Self {
        Self {
            kind: r.kind.clone(),
            id: r.id.clone(),
        }
    }
}

/// One row of a deployment's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Transition {
    /// Unix seconds.
    pub at: i64,
    /// Previous status (`None` for the first row).
    pub from: Option<DeploymentStatus>,
    /// New status.
    pub to: DeploymentStatus,
    /// Why.
    pub reason: String,
}

/// What became of one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    /// Intent recorded; the provider call may or may not have happened.
    Pending,
    /// create-instance answered with an instance.
    Created,
    /// The candidate could not serve (capacity, quota, region...); the next one was tried.
    Failover,
    /// An error that no other candidate would fix (unauthorized, invalid, denied).
    Stopped,
    /// It failed after creation; what was created was deleted.
    Failed,
    /// This candidate runs the deployment.
    Used,
}

impl AttemptOutcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Created => "created",
            Self::Failover => "failover",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
            Self::Used => "used",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Created,
            Self::Failover,
            Self::Stopped,
            Self::Failed,
            Self::Used,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One candidate tried for a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1-based order.
    pub n: u32,
    /// Provider.
    pub provider: String,
    /// Region.
    pub region: String,
    /// Zone.
    pub zone: Option<String>,
    /// Machine type.
    pub instance_type: String,
    /// Spot.
    pub spot: bool,
    /// Price per hour, when known.
    pub hourly_usd: Option<f64>,
    /// Idempotency key passed to create-instance.
    pub idempotency_key: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds.
    pub finished_at: Option<i64>,
    /// Outcome.
    pub outcome: AttemptOutcome,
    /// Why (error text, cleanup done).
    pub detail: Option<String>,
    /// Instance created by this attempt, if any.
    pub instance_id: Option<String>,
}

/// What a new record starts with.
#[derive(Debug, Clone, Default)]
pub struct NewDeployment {
    /// `dep-<uuid>`.
    pub id: String,
    /// Blueprint id.
    pub blueprint_id: String,
    /// Service id.
    pub service_id: String,
    /// Type.
    pub deployment_type: DeploymentType,
    /// Labels (the tracker adds `bpr-deployment` and `bpr-managed`).
    pub labels: BTreeMap<String, String>,
    /// TTL in seconds.
    pub ttl_secs: Option<u64>,
    /// Cleanup webhook.
    pub cleanup_webhook: Option<String>,
    /// The request (JSON).
    pub request_json: String,
    /// The embedding API's service key; at most one live deployment has it.
    pub service_key: Option<String>,
}

/// The candidate an attempt is about to try.
#[derive(Debug, Clone)]
pub struct AttemptIntent<'a> {
    /// Provider.
    pub provider: &'a str,
    /// Region.
    pub region: &'a str,
    /// Zone.
    pub zone: Option<&'a str>,
    /// Machine type.
    pub instance_type: &'a str,
    /// Spot.
    pub spot: bool,
    /// Price per hour.
    pub hourly_usd: Option<f64>,
    /// Idempotency key.
    pub idempotency_key: &'a str,
}
