//! The seed's `[operator.*]` sections: deployment defaults, Kubernetes
//! clusters, scaling bounds.

use std::path::PathBuf;

use crate::capabilities::AllowRule;
use crate::kubernetes::ScalingPolicy;
use crate::placement::Policy;

/// `[operator.deployment]`: the placement policy, and how often prices are
/// refreshed.
///
/// ```toml
/// [operator.deployment]
/// mode = "auto-cheapest"         # | "preferred" | "local"
/// preferred_providers = []       # highest first
/// excluded_providers = []
/// max_cost_per_hour = 1.0        # default: no cap
/// allow_spot_instances = false
/// default_regions = []           # default: everywhere
/// allow_fractional_gpus = false
/// allow_promotional = false
/// price_refresh_secs = 21600     # 6 h
/// price_fetch_timeout_secs = 20
/// ```
#[derive(Debug, Clone)]
pub struct DeploymentDefaults {
    /// The operator's placement defaults (the one deployment-policy type;
    /// `max_candidates` is not configured and stays at its default).
    pub policy: Policy,
    /// Catalogue refresh interval in seconds. Default: 6 h.
    pub price_refresh_secs: u64,
    /// Per-provider deadline for gathering offers, in seconds. Default: 20.
    pub price_fetch_timeout_secs: u64,
}

impl Default for DeploymentDefaults {
    fn default() -> Self {
        Self {
            policy: Policy::default(),
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

/// `[operator.webhooks]`: where cleanup webhooks may be POSTed.
///
/// ```toml
/// [operator.webhooks]
/// allow = ["https://hooks.example.com"]   # scheme://host[:port], host exact or *.domain
/// ```
///
/// A request naming a webhook outside the list is refused before anything is
/// recorded; a host that resolves to a loopback, private or link-local
/// address needs a rule naming exactly that host and port. Default: none
/// allowed.
#[derive(Debug, Clone, Default)]
pub struct WebhookSettings {
    /// The allowlist. Default: empty.
    pub allow: Vec<AllowRule>,
}

/// All `[operator.*]` sections.
#[derive(Debug, Clone, Default)]
pub struct OperatorConfig {
    /// `[operator.deployment]`.
    pub deployment: DeploymentDefaults,
    /// `[operator.kubernetes]`.
    pub kubernetes: KubernetesConfig,
    /// `[operator.scaling]`.
    pub scaling: ScalingPolicy,
    /// `[operator.webhooks]`.
    pub webhooks: WebhookSettings,
    /// `[operator.health]`.
    pub health: super::lifecycle::HealthSettings,
    /// `[operator.payment]`.
    pub payment: super::lifecycle::PaymentSettings,
    /// `[operator.budget]`.
    pub budget: super::lifecycle::BudgetSettings,
    /// `[operator.costs]`.
    pub costs: super::lifecycle::CostSettings,
}
