//! The exclusion rules, in the order they are checked. An offer is reported
//! under the *first* rule it fails, so the order is the decision hierarchy:
//! blueprint requirements, then customer preferences, then operator defaults.

use serde::{Deserialize, Serialize};

use super::offer::Offer;
use super::request::{Policy, Request};

/// Why an offer was not placed. Declaration order is check order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// Price not positive and finite, or hardware numbers nonsensical.
    InvalidOffer,
    // 1. Blueprint requirements (hard).
    /// Fewer vCPUs than `min_vcpus`.
    Vcpus,
    /// Less memory than `min_memory_gib`.
    Memory,
    /// Fixed disk smaller than `min_storage_gib`.
    Storage,
    /// Fewer GPUs than `min_gpus`.
    GpuCount,
    /// GPU model is not the required one.
    GpuModel,
    /// No confidential computing when it is required.
    Confidential,
    /// Wrong CPU architecture.
    Arch,
    /// Shared-core vCPUs when dedicated ones are required.
    SharedCpu,
    // 2. Customer preferences.
    /// Provider not among the requested providers.
    Provider,
    /// Region not among the requested regions.
    Region,
    /// Region not in the requested geography (or of unknown geography).
    Geography,
    /// Below the payment tier's per-instance CPU/memory floor.
    TierFloor,
    // 3. Operator defaults.
    /// `mode = "local"` and the offer is not the operator's own capacity.
    NotLocal,
    /// Provider excluded by the operator.
    ExcludedProvider,
    /// Promotional SKU and the operator does not allow them.
    Promotional,
    /// Fractional GPU towards a GPU requirement, not allowed by the operator.
    FractionalGpu,
    /// Region not among the operator's default regions.
    DefaultRegion,
    /// Every usable price is above `max_cost_per_hour`.
    MaxCost,
}

impl Rule {
    /// Number of rules.
    pub const COUNT: usize = Rule::MaxCost as usize + 1;

    /// Every rule, in check order.
    pub const ALL: [Rule; Rule::COUNT] = [
        Rule::InvalidOffer,
        Rule::Vcpus,
        Rule::Memory,
        Rule::Storage,
        Rule::GpuCount,
        Rule::GpuModel,
        Rule::Confidential,
        Rule::Arch,
        Rule::SharedCpu,
        Rule::Provider,
        Rule::Region,
        Rule::Geography,
        Rule::TierFloor,
        Rule::NotLocal,
        Rule::ExcludedProvider,
        Rule::Promotional,
        Rule::FractionalGpu,
        Rule::DefaultRegion,
        Rule::MaxCost,
    ];

    /// Stable kebab-case name (for `--json` and logs).
    pub fn name(self) -> &'static str {
        match self {
            Rule::InvalidOffer => "invalid-offer",
            Rule::Vcpus => "vcpus",
            Rule::Memory => "memory",
            Rule::Storage => "storage",
            Rule::GpuCount => "gpu-count",
            Rule::GpuModel => "gpu-model",
            Rule::Confidential => "confidential",
            Rule::Arch => "arch",
            Rule::SharedCpu => "shared-cpu",
            Rule::Provider => "provider",
            Rule::Region => "region",
            Rule::Geography => "geography",
            Rule::TierFloor => "tier-floor",
            Rule::NotLocal => "not-local",
            Rule::ExcludedProvider => "excluded-provider",
            Rule::Promotional => "promotional",
            Rule::FractionalGpu => "fractional-gpu",
            Rule::DefaultRegion => "default-region",
            Rule::MaxCost => "max-cost",
        }
    }

    /// Which level of the decision hierarchy the rule belongs to
    /// (0 = validity, 1 = blueprint, 2 = customer, 3 = operator).
    pub fn level(self) -> u8 {
        match self {
            Rule::InvalidOffer => 0,
            Rule::Vcpus
            | Rule::Memory
            | Rule::Storage
            | Rule::GpuCount
            | Rule::GpuModel
            | Rule::Confidential
            | Rule::Arch
            | Rule::SharedCpu => 1,
            Rule::Provider | Rule::Region | Rule::Geography | Rule::TierFloor => 2,
            Rule::NotLocal
            | Rule::ExcludedProvider
            | Rule::Promotional
            | Rule::FractionalGpu
            | Rule::DefaultRegion
            | Rule::MaxCost => 3,
        }
    }

    /// One line saying why `offer` fails this rule under `request` and
    /// `policy`, with the numbers involved.
    pub fn describe(self, offer: &Offer, request: &Request, policy: &Policy) -> String {
        let what = format!("{} in {}", offer.instance_type, offer.region);
        match self {
            Rule::InvalidOffer => format!(
                "{what}: invalid offer (price {} $/h, {} vCPU, {} GiB, {} GPU)",
                offer.hourly_usd, offer.vcpus, offer.memory_gib, offer.gpus
            ),
            Rule::Vcpus => format!("{what}: {} vCPU, needs {}", offer.vcpus, request.min_vcpus),
            Rule::Memory => format!(
                "{what}: {} GiB memory, needs {}",
                offer.memory_gib, request.min_memory_gib
            ),
            Rule::Storage => format!(
                "{what}: fixed disk {} GiB, needs {}",
                offer.storage_gib.unwrap_or(0.0),
                request.min_storage_gib
            ),
            Rule::GpuCount => format!("{what}: {} GPU, needs {}", offer.gpus, request.min_gpus),
            Rule::GpuModel => format!(
                "{what}: GPU {}, needs {}",
                offer.gpu_model.as_deref().unwrap_or("none"),
                request.gpu_model.as_deref().unwrap_or("any")
            ),
            Rule::Confidential => format!("{what}: no confidential computing"),
            Rule::Arch => format!(
                "{what}: arch {:?}, needs {:?}",
                offer.arch,
                request.arch.unwrap_or(offer.arch)
            ),
            Rule::SharedCpu => format!("{what}: shared-core vCPUs, dedicated required"),
            Rule::Provider => format!(
                "{what}: provider {} not in requested [{}]",
                offer.provider,
                request.providers.join(", ")
            ),
            Rule::Region => format!(
                "{what}: region not in requested [{}]",
                request.regions.join(", ")
            ),
            Rule::Geography => match super::geography::geography_of(&offer.region) {
                Some(geo) => format!(
                    "{what}: geography {geo}, requested {}",
                    request.geography.map_or("any", |g| g.code())
                ),
                None => format!("{what}: region of unknown geography"),
            },
            Rule::TierFloor => {
                let (cpu, mem) = request.tier.map_or((0.0, 0.0), |t| t.vm_floor());
                format!(
                    "{what}: {} vCPU / {} GiB below the {:?} tier floor of {cpu} vCPU / {mem} GiB",
                    offer.vcpus,
                    offer.memory_gib,
                    request.tier.unwrap_or_default()
                )
            }
            Rule::NotLocal => format!(
                "{what}: provider {} is not the operator's own capacity (mode = \"local\")",
                offer.provider
            ),
            Rule::ExcludedProvider => format!("{what}: provider {} excluded", offer.provider),
            Rule::Promotional => format!("{what}: promotional SKU not allowed"),
            Rule::FractionalGpu => {
                format!("{what}: fractional GPU ({}) not allowed", offer.gpus)
            }
            Rule::DefaultRegion => format!(
                "{what}: region not in default regions [{}]",
                policy.default_regions.join(", ")
            ),
            Rule::MaxCost => {
                let spot = offer
                    .spot_hourly_usd
                    .map(|s| format!(", spot {s:.4}"))
                    .unwrap_or_default();
                format!(
                    "{what}: {:.4} $/h{spot} above the cap of {:.4} $/h",
                    offer.hourly_usd,
                    policy.max_cost_per_hour.unwrap_or(f64::INFINITY)
                )
            }
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// True when an offer's GPU model satisfies a required model: equal ignoring
/// case, or the required words appear as consecutive words of the offer's
/// model (`A100` and `NVIDIA A100` both match `NVIDIA A100 80GB`; `T4` does
/// not match `NVIDIA T4G`).
pub fn gpu_model_matches(required: &str, offered: &str) -> bool {
    let want: Vec<&str> = required.split_whitespace().collect();
    let have: Vec<&str> = offered.split_whitespace().collect();
    if want.is_empty() {
        return true;
    }
    have.windows(want.len()).any(|window| {
        window
            .iter()
            .zip(&want)
            .all(|(h, w)| h.eq_ignore_ascii_case(w))
    })
}
