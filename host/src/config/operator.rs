//! The seed's `[operator.*]` sections: deployment defaults, Kubernetes
//! clusters, scaling bounds.

use std::path::PathBuf;

/// How the operator wants deployments placed (`[operator.deployment] mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeploymentMode {
    /// Cheapest offer that meets the requirements (the default).
    #[default]
    AutoCheapest,
    /// Preferred providers first, cheapest within them.
    Preferred,
    /// Only the operator's own machines and clusters.
    Local,
}

/// `[operator.deployment]`.
#[derive(Debug, Clone)]
pub struct DeploymentDefaults {
    /// Placement mode. Default: auto-cheapest.
    pub mode: DeploymentMode,
    /// Providers to prefer. Default: none.
    pub preferred_providers: Vec<String>,
    /// Providers never used. Default: none.
    pub excluded_providers: Vec<String>,
    /// Highest acceptable hourly price. Default: no cap.
    pub max_cost_per_hour: Option<f64>,
    /// Whether spot instances may be chosen. Default: false.
    pub allow_spot_instances: bool,
    /// Regions used when the customer names none. Default: any.
    pub default_regions: Vec<String>,
    /// Whether fractional GPUs satisfy a GPU requirement. Default: false.
    pub allow_fractional_gpus: bool,
    /// Whether promotional/legacy SKUs are considered. Default: false.
    pub allow_promotional: bool,
    /// Catalogue refresh interval in seconds. Default: 6 h.
    pub price_refresh_secs: u64,
    /// Per-provider deadline for gathering offers, in seconds. Default: 20.
    pub price_fetch_timeout_secs: u64,
}

impl Default for DeploymentDefaults {
    fn default() -> Self {
        Self {
            mode: DeploymentMode::AutoCheapest,
            preferred_providers: Vec::new(),
            excluded_providers: Vec::new(),
            max_cost_per_hour: None,
            allow_spot_instances: false,
            default_regions: Vec::new(),
            allow_fractional_gpus: false,
            allow_promotional: false,
            price_refresh_secs: 6 * 3600,
            price_fetch_timeout_secs: 20,
        }
    }
}

/// One Kubernetes cluster from a kubeconfig file.
#[derive(Debug, Clone)]
pub struct KubernetesCluster {
    /// Name used in `--target k8s:<name>`.
    pub name: String,
    /// Kubeconfig path.
    pub kubeconfig: PathBuf,
    /// Context; `None` = the file's current context.
    pub context: Option<String>,
}

/// One managed cluster a provider created (EKS, DOKS...): the host asks the provider
/// for its endpoint and CA (`get-cluster`) and authenticates itself (an EKS token it
/// mints, or the credentials `get-credentials` returns).
#[derive(Debug, Clone)]
pub struct ManagedKubernetesCluster {
    /// Name used in `--target k8s:<name>`.
    pub name: String,
    /// Provider that created it (the `.wasm` file stem).
    pub provider: String,
    /// Region it runs in.
    pub region: String,
    /// The provider's cluster id.
    pub id: String,
    /// The provider's cluster name; default `id`.
    pub cluster_name: Option<String>,
}

/// `[operator.kubernetes]`.
#[derive(Debug, Clone, Default)]
pub struct KubernetesConfig {
    /// Clusters from kubeconfig files. Default: none.
    pub clusters: Vec<KubernetesCluster>,
    /// Managed clusters a provider created. Default: none.
    pub managed: Vec<ManagedKubernetesCluster>,
}

/// `[operator.scaling]`.
#[derive(Debug, Clone)]
pub struct ScalingConfig {
    /// Whether autoscaling objects are created. Default: true.
    pub enabled: bool,
    /// Lower replica bound. Default: 1.
    pub min_replicas: u32,
    /// Upper replica bound. Default: 10.
    pub max_replicas: u32,
    /// Target CPU utilisation percent. Default: 70.
    pub target_cpu: u32,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_replicas: 1,
            max_replicas: 10,
            target_cpu: 70,
        }
    }
}

/// All `[operator.*]` sections.
#[derive(Debug, Clone, Default)]
pub struct OperatorConfig {
    /// `[operator.deployment]`.
    pub deployment: DeploymentDefaults,
    /// `[operator.kubernetes]`.
    pub kubernetes: KubernetesConfig,
    /// `[operator.scaling]`.
    pub scaling: ScalingConfig,
}
