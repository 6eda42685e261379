//! Believable prices per price family (per vCPU-hour, per GPU-hour, per
//! whole flagship GPU-hour): the sanity check that drops scraping errors.

use serde::{Deserialize, Serialize};

use super::gpu::model_by_canonical;
use crate::placement::Offer;

/// Believable list prices, per *price family*:
/// - an offer without GPUs is priced per vCPU-hour;
/// - an offer with GPUs (or other accelerators) is priced per GPU-hour
///   (price / GPU count, so a fractional GPU is scaled up);
/// - a whole flagship GPU (A100, H100, H200, B200, MI300X, MI325X) also has
///   its own floor: a "$0.05 H100" is a scraping error, not a bargain.
///
/// A price outside its family's range drops the offer; a spot price under
/// the minimum (or above on-demand) only loses the spot price. Bounds are
/// compared with list prices, before discounts.
///
/// Defaults are about 2.5x outside what the recorded data in
/// `shared/pricing/` spans: CPU-only offers run from $0.00103 (Azure
/// `Standard_B2pts_v2` spot) to $0.41 (`x2iedn.32xlarge`) per vCPU-hour; GPU
/// offers from $0.026 (Azure `NV4as_v4` spot) to $12.29 (`p5.48xlarge`) per
/// GPU-hour, and SkyPilot's GCP TPU rows use 700 as a "no price" sentinel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SanityBounds {
    /// Minimum USD per vCPU-hour for offers without GPUs. Default 0.0005.
    pub min_usd_per_vcpu_hour: f64,
    /// Maximum USD per vCPU-hour for offers without GPUs. Default 1.0.
    pub max_usd_per_vcpu_hour: f64,
    /// Minimum USD per GPU-hour. Default 0.01.
    pub min_usd_per_gpu_hour: f64,
    /// Maximum USD per GPU-hour. Default 50.
    pub max_usd_per_gpu_hour: f64,
    /// Minimum on-demand USD per GPU-hour for a whole flagship GPU.
    /// Default 0.20.
    pub min_usd_per_flagship_gpu_hour: f64,
}

impl Default for SanityBounds {
    fn default() -> Self {
        SanityBounds {
            min_usd_per_vcpu_hour: 0.0005,
            max_usd_per_vcpu_hour: 1.0,
            min_usd_per_gpu_hour: 0.01,
            max_usd_per_gpu_hour: 50.0,
            min_usd_per_flagship_gpu_hour: 0.20,
        }
    }
}

/// Which price-family bound an offer broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriceUnit {
    /// USD per vCPU-hour (offers without GPUs).
    PerVcpuHour,
    /// USD per GPU-hour.
    PerGpuHour,
    /// USD per GPU-hour of a whole flagship GPU.
    PerFlagshipGpuHour,
}

/// `(unit, units in the offer, min, max)` of the offer's price family.
pub(super) fn price_family(offer: &Offer, bounds: &SanityBounds) -> (PriceUnit, f64, f64, f64) {
    if offer.gpus > 0.0 {
        let whole_flagship = !offer.fractional_gpu
            && offer
                .gpu_model
                .as_deref()
                .and_then(model_by_canonical)
                .is_some_and(|m| m.flagship);
        if whole_flagship {
            (
                PriceUnit::PerFlagshipGpuHour,
                f64::from(offer.gpus),
                bounds.min_usd_per_flagship_gpu_hour,
                bounds.max_usd_per_gpu_hour,
            )
        } else {
            (
                PriceUnit::PerGpuHour,
                f64::from(offer.gpus),
                bounds.min_usd_per_gpu_hour,
                bounds.max_usd_per_gpu_hour,
            )
        }
    } else {
        (
            PriceUnit::PerVcpuHour,
            f64::from(offer.vcpus),
            bounds.min_usd_per_vcpu_hour,
            bounds.max_usd_per_vcpu_hour,
        )
    }
}

/// Spot prices of flagship GPUs are legitimately deep discounts, so spot is
/// checked against the general per-GPU floor only.
pub(super) fn bounds_min_for_spot(unit: PriceUnit, bounds: &SanityBounds) -> f64 {
    match unit {
        PriceUnit::PerVcpuHour => bounds.min_usd_per_vcpu_hour,
        PriceUnit::PerGpuHour | PriceUnit::PerFlagshipGpuHour => bounds.min_usd_per_gpu_hour,
    }
}
