//! The deployment state machine: which status may follow which.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a deployment is in its life.
///
/// ```text
/// planned -> provisioning -> provisioned -> deploying -> active -> terminating -> terminated
///    \            \               \             \           \          \
///     `------------`---------------`-------------`-----------`----------`--> failed
/// active <-> suspended -> terminating (or failed)
/// failed (still holding cloud resources) -> terminating
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    /// Recorded; no provider has been called yet.
    Planned,
    /// Candidates are being tried: intent recorded, create-instance called,
    /// waiting for the instance to run.
    Provisioning,
    /// The instance runs; its ids are recorded.
    Provisioned,
    /// The workload is starting; waiting for the health check.
    Deploying,
    /// Healthy and serving.
    Active,
    /// Its paid time ran out and it is within the operator's grace period:
    /// stopped (a VM) or scaled to zero (Kubernetes), still holding what a
    /// renewal brings back.
    Suspended,
    /// Its cloud resources are being deleted.
    Terminating,
    /// Everything it created is gone. Final.
    Terminated,
    /// It failed. Final when it holds no cloud resources; otherwise it can
    /// only move to `terminating`.
    Failed,
}

impl DeploymentStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 9] = [
        Self::Planned,
        Self::Provisioning,
        Self::Provisioned,
        Self::Deploying,
        Self::Active,
        Self::Suspended,
        Self::Terminating,
        Self::Terminated,
        Self::Failed,
    ];

    /// The lower-case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Provisioning => "provisioning",
            Self::Provisioned => "provisioned",
            Self::Deploying => "deploying",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Terminating => "terminating",
            Self::Terminated => "terminated",
            Self::Failed => "failed",
        }
    }

    /// True for `terminated` and `failed` (a failed record that still holds
    /// resources is final for the deploy, but may still be terminated).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Terminated | Self::Failed)
    }

    /// True for the states a deploy or terminate passes through; a record left
    /// in one of these by a crash is resolved by recovery.
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            Self::Planned
                | Self::Provisioning
                | Self::Provisioned
                | Self::Deploying
                | Self::Terminating
        )
    }

    /// Whether `self -> to` is allowed. `holds_resources` is whether the
    /// record still points at a cloud instance that was not confirmed deleted.
    ///
    /// Rules:
    /// - forward along the chain one step at a time:
    ///   planned→provisioning→provisioned→deploying→active;
    /// - `terminating` from provisioned, deploying, active and suspended
    ///   (something was made), and from provisioning only when something was made;
    /// - `active → suspended → active` (payment expired, then renewed);
    /// - `terminating → terminated`;
    /// - `failed` from every non-final state (terminating included);
    /// - `failed → terminating` only while it holds resources;
    /// - nothing leaves `terminated`; no self-transitions; no skipping.
    pub fn can_become(self, to: Self, holds_resources: bool) -> bool {
        use DeploymentStatus::*;
        match (self, to) {
            (Planned, Provisioning)
            | (Provisioning, Provisioned)
            | (Provisioned, Deploying)
            | (Deploying, Active)
            | (Active, Suspended)
            | (Suspended, Active)
            | (Provisioned | Deploying | Active | Suspended, Terminating)
            | (Terminating, Terminated) => true,
            (Provisioning, Terminating) => holds_resources,
            (Failed, Terminating) => holds_resources,
            (from, Failed) => !from.is_final(),
            _ => false,
        }
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of ours.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown deployment status {0:?} (expected one of planned, provisioning, provisioned, deploying, active, suspended, terminating, terminated, failed)"
)]
pub struct UnknownStatus(pub String);

impl FromStr for DeploymentStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// How a deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentType {
    /// A cloud VM created through a provider's `compute` interface.
    #[default]
    Vm,
    /// Kubernetes objects on a cluster.
    Kubernetes,
    /// A workload on one of the operator's own hosts over SSH.
    Ssh,
    /// A managed Kubernetes cluster a provider created (`bpr k8s create`): the
    /// record's `instance_id` is the provider's cluster id and `cluster` its name.
    Cluster,
}

impl DeploymentType {
    /// The lower-case name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vm => "vm",
            Self::Kubernetes => "kubernetes",
            Self::Ssh => "ssh",
            Self::Cluster => "cluster",
        }
    }
}

/// A deployment type name that is not one of ours.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown deployment type {0:?} (expected vm, kubernetes, ssh or cluster)")]
pub struct UnknownDeploymentType(pub String);

impl FromStr for DeploymentType {
    type Err = UnknownDeploymentType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "vm" => Ok(Self::Vm),
            "kubernetes" => Ok(Self::Kubernetes),
            "ssh" => Ok(Self::Ssh),
            "cluster" => Ok(Self::Cluster),
            other => Err(UnknownDeploymentType(other.to_string())),
        }
    }
}
