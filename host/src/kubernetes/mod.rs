//! Kubernetes deployments: render a service's objects, server-side apply them to any
//! number of clusters, wait for the rollout, scale, inspect and delete.
//!
//! - [`render()`] is pure: a [`DeploymentRequest`] (image, ports, tier, options) becomes
//!   [`Manifests`], one namespace per service with ServiceAccount, Role/RoleBinding,
//!   NetworkPolicy, Service, Deployment or StatefulSet, PodDisruptionBudget and
//!   HorizontalPodAutoscaler, all labelled with the deployment, blueprint and service ids.
//! - [`Deployer`] applies them with one field manager ([`MANAGER`]) and operates on a
//!   deployed [`WorkloadRef`] (what the tracker stores).
//! - [`Clusters`] connects the clusters of `[operator.kubernetes]`; the host's
//!   [`ClusterDirectory`] resolves `k8s:<name>` to any of them, managed ones included.
//! - `managed.rs` builds clients for clusters a provider created (endpoint + CA from the
//!   provider, credentials minted or fetched by the host).
//!
//! ```no_run
//! # async fn f() -> blueprint_remote_providers::kubernetes::Result<()> {
//! use blueprint_remote_providers::kubernetes::*;
//! let clusters = Clusters::connect_all(&[ClusterConfig {
//!     name: "local".into(),
//!     kubeconfig: "/root/.kube/config".into(),
//!     context: None,
//! }])
//! .await?;
//! let mut request = DeploymentRequest::new("dep-1", 7, 42, "ghcr.io/org/svc:1.0", Tier::Standard);
//! request.ports.push(ServicePort::tcp("rpc", 9944));
//! let status = clusters.get("local")?.deployer().deploy(&request).await?;
//! println!("{}/{} ready", status.ready, status.desired);
//! # Ok(()) }
//! ```

mod address;
mod cluster;
mod deploy;
mod directory;
mod error;
mod managed;
mod render;
mod spec;

#[cfg(test)]
mod tests;

pub use address::ServiceAddress;
pub use cluster::{Cluster, ClusterConfig, Clusters};
pub use deploy::{Deployer, RESTARTED_AT, RolloutOptions, WorkloadCondition, WorkloadStatus};
pub use directory::ClusterDirectory;
pub use error::{Error, ManagedError, Result};
pub use render::{
    CONTAINER_NAME, DATA_VOLUME, Manifest, Manifests, Replicas, labels, render, replicas,
};
pub use spec::{
    DeploymentRequest, HealthProbe, Protocol, ScalingPolicy, ServicePort, StorageRequest, Tier,
    TierProfile, WorkloadKind, WorkloadRef,
};

/// The one server-side apply field manager, and the `managed-by` label value.
pub const MANAGER: &str = "bpr";
/// Standard label saying who manages the object (value [`MANAGER`]).
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Standard name label: the object name shared by every object of the deployment.
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
/// The host's deployment id (same key as on cloud instances).
pub const LABEL_DEPLOYMENT: &str = "bpr-deployment";
/// Blueprint id.
pub const LABEL_BLUEPRINT: &str = "bpr-blueprint";
/// Service instance id.
pub const LABEL_SERVICE: &str = "bpr-service";
/// Extended resource name of NVIDIA GPUs.
pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
/// Node label set by NVIDIA GPU feature discovery on GPU nodes.
pub const GPU_NODE_LABEL: &str = "nvidia.com/gpu.present";
