//! WIT `offer` → host [`Offer`].

use crate::placement::{Arch, Offer};
use crate::runtime::bindings::wit;

/// Convert one WIT offer of `provider`; `operator_owned` for providers with
/// the `workloads` capability (the operator's own machines). Normalisation (GPU names, marks,
/// sanity bounds, discounts) happens later, in `normalize`.
pub fn from_wit(provider: &str, operator_owned: bool, o: wit::Offer) -> Offer {
    Offer {
        provider: provider.to_string(),
        instance_type: o.instance_type,
        region: o.region,
        zone: o.zone,
        vcpus: o.vcpus,
        memory_gib: o.memory_gib,
        storage_gib: o.storage_gib,
        gpus: o.gpus,
        gpu_model: o.gpu_model,
        gpu_memory_gib: o.gpu_memory_gib,
        arch: match o.arch {
            wit::Arch::X8664 => Arch::X86_64,
            wit::Arch::Arm64 => Arch::Arm64,
        },
        hourly_usd: o.hourly_usd,
        spot_hourly_usd: o.spot_hourly_usd,
        shared_cpu: o.shared_cpu,
        confidential: o.confidential,
        promotional: o.promotional,
        fractional_gpu: false,
        operator_owned,
        source: o.source.source,
        observed_at: o.source.observed_at,
        from_snapshot: o.source.from_snapshot,
    }
}
