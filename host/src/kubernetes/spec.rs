//! What the host asks for: the deployment request, payment tiers and operator bounds.
//!
//! These are plain data with no Kubernetes types, so the tracker and the CLI can build
//! and store them without depending on `k8s-openapi`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::placement::{Tier, TierProfile};

/// The operator's `[operator.scaling]` bounds, applied on top of the tier.
///
/// ```toml
/// [operator.scaling]
/// enabled = true      # false: never create an autoscaler
/// min_replicas = 1
/// max_replicas = 10
/// target_cpu = 70     # percent of the CPU request
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingPolicy {
    /// Whether autoscaling is allowed at all. Default `true`.
    pub enabled: bool,
    /// Lower bound on replicas. Default 1.
    pub min_replicas: u32,
    /// Upper bound on replicas (caps the tier's maximum). Default 10.
    pub max_replicas: u32,
    /// Target average CPU utilisation in percent of the request. Default 70.
    pub target_cpu: u32,
}

impl Default for ScalingPolicy {
    fn default() -> Self {
        ScalingPolicy {
            enabled: true,
            min_replicas: 1,
            max_replicas: 10,
            target_cpu: 70,
        }
    }
}

/// Transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Protocol {
    /// TCP (default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    pub(crate) fn as_k8s(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
}

/// A port the service listens on; it is opened in the NetworkPolicy and exposed by the
/// Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    /// Port name: lower-case letters, digits and `-`, at most 15 characters (IANA
    /// service name rules). Empty: `p<port>`.
    pub name: String,
    /// Container port, also used as the Service port.
    pub port: u16,
    /// Default TCP.
    pub protocol: Protocol,
}

impl ServicePort {
    /// A TCP port with a name.
    pub fn tcp(name: impl Into<String>, port: u16) -> Self {
        ServicePort {
            name: name.into(),
            port,
            protocol: Protocol::Tcp,
        }
    }
}

/// The health endpoint as the cluster probes it: readiness and liveness probes are
/// created when it is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProbe {
    /// Port to probe.
    pub port: u16,
    /// HTTP path to GET (e.g. `/health`); `None` probes a TCP connection instead.
    pub path: Option<String>,
}

/// Persistent storage: the workload becomes a StatefulSet with a volumeClaimTemplate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StorageRequest {
    /// Size as a Kubernetes quantity, e.g. `10Gi`.
    pub size: String,
    /// Absolute path where the volume is mounted in the container.
    pub mount_path: String,
    /// StorageClass; `None` uses the cluster default.
    pub storage_class: Option<String>,
}

/// Everything needed to render the objects of one service deployment.
///
/// Build it with [`DeploymentRequest::new`] and set the optional fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRequest {
    /// The host's deployment id; a Kubernetes label value (at most 63 characters of
    /// `[A-Za-z0-9._-]`, starting and ending alphanumeric).
    pub deployment_id: String,
    /// Blueprint id.
    pub blueprint_id: u64,
    /// Service instance id.
    pub service_id: u64,
    /// Container image reference.
    pub image: String,
    /// Arguments to the image's entrypoint (the container's `args`). Default none.
    #[serde(default)]
    pub args: Vec<String>,
    /// Plain environment variables (names `[A-Za-z_][A-Za-z0-9_.-]*`). Not for secrets.
    pub env: BTreeMap<String, String>,
    /// Ports; empty means no Service and an ingress-closed NetworkPolicy.
    pub ports: Vec<ServicePort>,
    /// Health endpoint for probes; `None` means no probes.
    pub health: Option<HealthProbe>,
    /// Payment tier.
    pub tier: Tier,
    /// Operator scaling bounds. Default [`ScalingPolicy::default`].
    pub scaling: ScalingPolicy,
    /// Persistent storage; `None` means a stateless Deployment.
    pub storage: Option<StorageRequest>,
    /// GPUs per replica; `None` takes the tier's (premium: 1, others: 0).
    pub gpus: Option<u32>,
    /// Expose through a LoadBalancer Service (default `false`: ClusterIP only).
    pub public: bool,
    /// Pod `runtimeClassName`, e.g. `kata` on local clusters. Default none.
    pub runtime_class_name: Option<String>,
    /// At least 2 replicas and a PodDisruptionBudget. Default `false`.
    pub high_availability: bool,
    /// Put the objects in this existing namespace instead of creating one per service.
    /// The namespace is then neither created nor deleted. Default `None`.
    pub namespace: Option<String>,
    /// UID the container runs as; `None` leaves it to the image (which must then use a
    /// numeric non-root `USER`, since `runAsNonRoot` is always set).
    pub run_as_user: Option<i64>,
    /// Payment expired: 0 replicas and no autoscaler. Default `false`.
    pub suspended: bool,
}

impl DeploymentRequest {
    /// A request with the required fields; every option at its default.
    pub fn new(
        deployment_id: impl Into<String>,
        blueprint_id: u64,
        service_id: u64,
        image: impl Into<String>,
        tier: Tier,
    ) -> Self {
        DeploymentRequest {
            deployment_id: deployment_id.into(),
            blueprint_id,
            service_id,
            image: image.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            ports: Vec::new(),
            health: None,
            tier,
            scaling: ScalingPolicy::default(),
            storage: None,
            gpus: None,
            public: false,
            runtime_class_name: None,
            high_availability: false,
            namespace: None,
            run_as_user: None,
            suspended: false,
        }
    }

    /// The name of the per-service namespace, `bpr-<blueprint>-<service>`.
    pub fn service_namespace(&self) -> String {
        format!("bpr-{}-{}", self.blueprint_id, self.service_id)
    }

    /// Where this deployment lives: what the tracker records to find it again.
    pub fn target(&self) -> WorkloadRef {
        let owns_namespace = self.namespace.is_none();
        WorkloadRef {
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| self.service_namespace()),
            name: format!("bpr-{}-{}", self.blueprint_id, self.service_id),
            workload: if self.storage.is_some() {
                WorkloadKind::StatefulSet
            } else {
                WorkloadKind::Deployment
            },
            owns_namespace,
            deployment_id: self.deployment_id.clone(),
        }
    }
}

/// The kind of the workload object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum WorkloadKind {
    /// apps/v1 Deployment (no storage).
    Deployment,
    /// apps/v1 StatefulSet (storage requested).
    StatefulSet,
}

impl WorkloadKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
        }
    }
}

/// Where a deployment's objects are, inside one cluster; the tracker stores it next to
/// the cluster name. Every object of the deployment is named [`WorkloadRef::name`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorkloadRef {
    /// Namespace of every namespaced object.
    pub namespace: String,
    /// Name of every object (workload, Service, ServiceAccount, ...).
    pub name: String,
    /// Deployment or StatefulSet.
    pub workload: WorkloadKind,
    /// Whether the namespace was created for this service (and is deleted with it).
    pub owns_namespace: bool,
    /// The host's deployment id (the `bpr-deployment` label).
    pub deployment_id: String,
}

impl WorkloadRef {
    /// `namespace/name`, for messages.
    pub fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}
