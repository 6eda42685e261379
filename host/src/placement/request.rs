//! What placement is asked for: the blueprint's hard requirements and the
//! customer's preferences ([`Request`]), and the operator's defaults
//! ([`Policy`]). Every field documents its default.

use serde::{Deserialize, Serialize};

use super::geography::Geography;
use super::offer::Arch;
use super::tier::Tier;

/// One placement question: hard requirements (level 1 of the decision
/// hierarchy) and customer preferences (level 2).
///
/// `Request::default()` asks for nothing: every valid offer satisfies it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Request {
    // --- 1. Blueprint requirements (hard) -------------------------------
    /// Minimum vCPUs. Default 0.
    pub min_vcpus: f32,
    /// Minimum memory in GiB. Default 0.
    pub min_memory_gib: f32,
    /// Minimum disk in GiB. Offers whose disk is sized at creation
    /// (`storage_gib: None`) always meet it. Default 0.
    pub min_storage_gib: f32,
    /// Minimum GPU count (may be fractional, see
    /// [`Policy::allow_fractional_gpus`]). Default 0.
    pub min_gpus: f32,
    /// Required GPU model in the host vocabulary (`NVIDIA A100`); normalise
    /// user input with `pricing::canonical_gpu_model` first.
    /// Matching ignores case and accepts variants: `NVIDIA A100` matches
    /// `NVIDIA A100 80GB`, and `A100` matches both. Default `None` (any).
    pub gpu_model: Option<String>,
    /// Require confidential computing. Default false.
    pub confidential: bool,
    /// Required CPU architecture (the workload's binary). Default `None` (any).
    pub arch: Option<Arch>,
    /// Refuse shared-core / burstable vCPUs. Default false.
    pub dedicated_cpu: bool,

    // --- 2. Customer preferences (from the payment) ---------------------
    /// Acceptable region codes of any provider. Empty = no region
    /// preference (then [`Policy::default_regions`] applies). Default empty.
    pub regions: Vec<String>,
    /// Acceptable geography. Combined with `regions` by AND when both are
    /// set. Default `None`.
    pub geography: Option<Geography>,
    /// Acceptable providers (component names). Empty = any. Default empty.
    pub providers: Vec<String>,
    /// High availability: the ranking must offer candidates in at least two
    /// distinct failure domains (see [`crate::placement::FailureDomain`]);
    /// otherwise it returns no candidates. Default false.
    pub high_availability: bool,
    /// Payment tier. For VMs it is a per-instance floor of CPU and memory
    /// (see [`Tier::vm_floor`]). Default `None` (no floor).
    pub tier: Option<Tier>,
    /// The workload tolerates interruption, so spot prices may be used when
    /// the operator allows them ([`Policy::allow_spot_instances`]).
    /// Default false.
    pub allow_spot: bool,
}

/// How the operator wants deployments placed (`[operator.deployment] mode`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Cheapest first; a preferred provider wins only an exact price tie.
    #[default]
    AutoCheapest,
    /// Every candidate of a preferred provider comes before every other one;
    /// within each group, cheapest first.
    Preferred,
    /// Only the operator's own capacity: its SSH hosts (offers of providers
    /// with the `workloads` capability) and its configured Kubernetes
    /// clusters; cheapest first.
    Local,
}

/// The operator's defaults (level 3 of the decision hierarchy), from
/// `[operator.deployment]`.
///
/// `Policy::default()` is the conservative setting: no cap, no spot, no
/// fractional GPUs, no promotional SKUs, at most 20 candidates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Ordering mode. Default [`Mode::AutoCheapest`].
    pub mode: Mode,
    /// Preferred providers, highest first (the list order breaks exact ties).
    /// Default empty.
    pub preferred_providers: Vec<String>,
    /// Providers never to use. Default empty.
    pub excluded_providers: Vec<String>,
    /// Most an instance may cost, USD per hour, compared with the price that
    /// would be paid (spot when spot is used, after discounts). Per instance:
    /// high availability runs two. Default `None` (no cap).
    pub max_cost_per_hour: Option<f64>,
    /// Spot / preemptible capacity may be used (also needs
    /// [`Request::allow_spot`]). Default false.
    pub allow_spot_instances: bool,
    /// Region codes used when the request names neither regions nor a
    /// geography. Default empty (everywhere).
    pub default_regions: Vec<String>,
    /// A fractional GPU counts towards a GPU requirement. Default false.
    pub allow_fractional_gpus: bool,
    /// Promotional / legacy SKUs may be used. Default false.
    pub allow_promotional: bool,
    /// How many candidates the ranking returns at most (the failover depth).
    /// Default 20; at least 1 is always returned when any offer qualifies.
    pub max_candidates: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::AutoCheapest,
            preferred_providers: Vec::new(),
            excluded_providers: Vec::new(),
            max_cost_per_hour: None,
            allow_spot_instances: false,
            default_regions: Vec::new(),
            allow_fractional_gpus: false,
            allow_promotional: false,
            max_candidates: 20,
        }
    }
}
