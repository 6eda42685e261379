//! Offer normalisation: the pure step between the providers' catalogues and
//! placement. No I/O.
//!
//! [`normalize`] takes the offers of every provider and, per offer:
//! 1. drops it when a price is not positive and finite or the hardware
//!    numbers are nonsensical ([`DropReason`]);
//! 2. names its GPU in one vocabulary ([`canonical_gpu_model`]:
//!    `NVIDIA T4 Tensor Core`, `Tesla T4`, `nvidia-tesla-t4` -> `NVIDIA T4`);
//! 3. marks fractional GPUs, shared-core vCPUs and promotional SKUs that the
//!    provider did not mark ([`is_fractional_gpu`], [`is_shared_core`],
//!    [`is_promotional_sku`]);
//! 4. drops it when its list price is absurd for its price family
//!    ([`SanityBounds`]); a bad spot price only removes the spot price;
//! 5. applies the operator's discount multiplier for its provider.
//!
//! Everything dropped or changed is reported ([`NormalizeReport`]) so the
//! operator sees it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::placement::Offer;

/// A normalisation setting the operator must fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormalizeError {
    /// A discount multiplier is not a finite number in (0, 10].
    #[error(
        "discount multiplier for provider `{provider}` is {multiplier}; use a number in (0, 10], e.g. 0.8 for 20% off"
    )]
    InvalidDiscount {
        /// Provider the multiplier was given for.
        provider: String,
        /// The value given.
        multiplier: f64,
    },
    /// A sanity bound is not positive and finite, or its minimum exceeds its
    /// maximum.
    #[error("sanity bound `{name}` is invalid ({min}..{max}); use positive numbers with min < max")]
    InvalidBounds {
        /// Which bound.
        name: &'static str,
        /// Its minimum.
        min: f64,
        /// Its maximum.
        max: f64,
    },
}

// ---------------------------------------------------------------------------
// GPU vocabulary
// ---------------------------------------------------------------------------

/// One GPU model of the vocabulary.
struct GpuModel {
    /// Token that identifies it in provider strings (lower case).
    key: &'static str,
    /// The host's name for it.
    canonical: &'static str,
    /// Memory of one whole GPU in GiB (smallest variant); used to spot
    /// vGPU slices sold as "1 GPU".
    full_memory_gib: Option<f32>,
    /// Large-memory variant: `(min GiB, max GiB, name)`.
    variant: Option<(f32, f32, &'static str)>,
    /// Current datacentre flagship: a whole one under
    /// [`SanityBounds::min_usd_per_flagship_gpu_hour`] is not believable.
    flagship: bool,
}

const fn gpu(key: &'static str, canonical: &'static str, memory: f32) -> GpuModel {
    GpuModel {
        key,
        canonical,
        full_memory_gib: Some(memory),
        variant: None,
        flagship: false,
    }
}

const fn flagship(mut model: GpuModel) -> GpuModel {
    model.flagship = true;
    model
}

const fn with_variant(mut model: GpuModel, min: f32, max: f32, name: &'static str) -> GpuModel {
    model.variant = Some((min, max, name));
    model
}

const fn accelerator(key: &'static str, canonical: &'static str) -> GpuModel {
    GpuModel {
        key,
        canonical,
        full_memory_gib: None,
        variant: None,
        flagship: false,
    }
}

/// The vocabulary. Memory sizes are the vendors' published per-GPU sizes.
/// Strings seen in `shared/pricing/` (ec2instances.info `GPU_model`, SkyPilot
/// `AcceleratorName`, DigitalOcean `gpu_info.model`, Vultr `gpu_type`, GCP
/// SKU descriptions) all resolve through these keys; see the tests.
const GPU_MODELS: &[GpuModel] = &[
    gpu("t4", "NVIDIA T4", 16.0),
    gpu("t4g", "NVIDIA T4G", 16.0),
    gpu("a10g", "NVIDIA A10G", 24.0),
    gpu("a10", "NVIDIA A10", 24.0),
    flagship(with_variant(
        gpu("a100", "NVIDIA A100", 40.0),
        79.0,
        81.0,
        "NVIDIA A100 80GB",
    )),
    flagship(gpu("h100", "NVIDIA H100", 80.0)),
    flagship(gpu("h200", "NVIDIA H200", 141.0)),
    flagship(gpu("b200", "NVIDIA B200", 180.0)),
    gpu("l4", "NVIDIA L4", 24.0),
    gpu("l40s", "NVIDIA L40S", 48.0),
    gpu("l40", "NVIDIA L40", 48.0),
    gpu("a40", "NVIDIA A40", 48.0),
    with_variant(
        gpu("v100", "NVIDIA V100", 16.0),
        31.0,
        33.0,
        "NVIDIA V100 32GB",
    ),
    gpu("p100", "NVIDIA P100", 12.0),
    gpu("p4", "NVIDIA P4", 8.0),
    gpu("k80", "NVIDIA K80", 12.0),
    gpu("m60", "NVIDIA M60", 8.0),
    gpu("mi25", "AMD MI25", 16.0),
    flagship(gpu("mi300x", "AMD MI300X", 192.0)),
    flagship(gpu("mi325x", "AMD MI325X", 256.0)),
    gpu("v520", "AMD Radeon Pro V520", 8.0),
    accelerator("inferentia", "AWS Inferentia"),
    accelerator("inferentia2", "AWS Inferentia2"),
    accelerator("trainium", "AWS Trainium"),
    accelerator("trainium2", "AWS Trainium2"),
];

/// Google TPU generations: `tpu-v6e-1` -> `Google TPU v6e`.
const TPU_GENERATIONS: &[(&str, &str)] = &[
    ("v2", "Google TPU v2"),
    ("v3", "Google TPU v3"),
    ("v4", "Google TPU v4"),
    ("v5e", "Google TPU v5e"),
    ("v5litepod", "Google TPU v5e"),
    ("v5p", "Google TPU v5p"),
    ("v6e", "Google TPU v6e"),
];

fn lookup(key: &str) -> Option<&'static GpuModel> {
    GPU_MODELS.iter().find(|m| m.key == key)
}

fn model_by_canonical(canonical: &str) -> Option<&'static GpuModel> {
    GPU_MODELS
        .iter()
        .find(|m| m.canonical == canonical || m.variant.is_some_and(|(_, _, v)| v == canonical))
}

/// The host's name for a GPU model as a provider spells it, or `None` when
/// the string names no known model.
///
/// The string is split into lower-case words at anything not a letter or
/// digit; the first word that is a known model key decides (`Tesla`,
/// `Tensor Core`, vendor names and `x8` count suffixes are ignored). A
/// large-memory variant (`A100 80GB`, `V100 32GB`) is chosen by a `<n>gb`
/// word in the string or by `memory_gib_per_gpu` in the variant's range; a
/// hint outside every range (e.g. a total over several GPUs) is ignored.
pub fn canonical_gpu_model(raw: &str, memory_gib_per_gpu: Option<f32>) -> Option<&'static str> {
    let words: Vec<String> = raw
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let memory_word = words
        .iter()
        .find_map(|w| w.strip_suffix("gb").and_then(|n| n.parse::<f32>().ok()));
    for (i, word) in words.iter().enumerate() {
        if word == "tpu" {
            let generation = words.get(i + 1)?;
            return TPU_GENERATIONS
                .iter()
                .find(|(g, _)| g == generation)
                .map(|&(_, name)| name);
        }
        let model = lookup(word).or_else(|| lookup(strip_count_suffix(word)));
        if let Some(model) = model {
            let memory = memory_word.or(memory_gib_per_gpu);
            if let (Some((min, max, name)), Some(gib)) = (model.variant, memory)
                && (min..=max).contains(&gib)
            {
                return Some(name);
            }
            return Some(model.canonical);
        }
    }
    None
}

/// `h100x8` -> `h100` (DigitalOcean slugs carry the GPU count).
fn strip_count_suffix(word: &str) -> &str {
    match word.rfind('x') {
        Some(x)
            if x > 0 && x + 1 < word.len() && word[x + 1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            &word[..x]
        }
        _ => word,
    }
}

/// True when an offer's GPU is a slice of a physical GPU: a count that is not
/// a whole number, or memory per GPU under 3/4 of the model's smallest whole
/// size (a vGPU sold as "1 GPU", e.g. Vultr's 4 GB A100).
pub fn is_fractional_gpu(
    gpus: f32,
    canonical_model: Option<&str>,
    memory_gib_per_gpu: Option<f32>,
) -> bool {
    if gpus <= 0.0 {
        return false;
    }
    if gpus.fract() != 0.0 {
        return true;
    }
    let full = canonical_model
        .and_then(model_by_canonical)
        .and_then(|m| m.full_memory_gib);
    matches!((full, memory_gib_per_gpu), (Some(full), Some(gib)) if gib < 0.75 * full)
}

/// True when the machine type has shared-core or burstable vCPUs, by the
/// providers' published family rules:
/// AWS `t1`/`t2`/`t3`/`t3a`/`t4g`; GCP `e2-micro`/`e2-small`/`e2-medium`,
/// `f1-micro`, `g1-small`; Azure B-series and A0; DigitalOcean Basic (`s-`)
/// and legacy `<n>gb` slugs; Vultr `vc2`/`vhf`/`vhp`.
pub fn is_shared_core(provider: &str, instance_type: &str) -> bool {
    match provider {
        "aws" => {
            let family = instance_type.split('.').next().unwrap_or_default();
            matches!(family, "t1" | "t2" | "t3" | "t3a" | "t4g")
        }
        "gcp" | "google" => matches!(
            instance_type,
            "e2-micro" | "e2-small" | "e2-medium" | "f1-micro" | "g1-small"
        ),
        "azure" => {
            instance_type.starts_with("Standard_B")
                || instance_type == "Standard_A0"
                || instance_type == "Basic_A0"
        }
        "digitalocean" | "do" => {
            instance_type.starts_with("s-")
                || instance_type
                    .strip_suffix("gb")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                || instance_type == "512mb"
        }
        "vultr" => ["vc2-", "vhf-", "vhp-"]
            .iter()
            .any(|p| instance_type.starts_with(p)),
        _ => false,
    }
}

/// True for SKUs whose price is not a list price: Azure's legacy `_Promo`
/// sizes (very cheap in the recorded data).
pub fn is_promotional_sku(provider: &str, instance_type: &str) -> bool {
    provider == "azure" && instance_type.ends_with("_Promo")
}

// ---------------------------------------------------------------------------
// Sanity bounds and discounts
// ---------------------------------------------------------------------------

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

/// The settings of [`normalize`]. Build with [`NormalizeConfig::new`] to
/// validate them; `default()` has the default bounds and no discounts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NormalizeConfig {
    bounds: SanityBounds,
    discounts: BTreeMap<String, f64>,
}

impl NormalizeConfig {
    /// Validates `bounds` and the per-provider discount `multipliers`
    /// (`0.8` = 20% off the list price, applied to on-demand and spot).
    pub fn new(
        bounds: SanityBounds,
        discounts: BTreeMap<String, f64>,
    ) -> Result<NormalizeConfig, NormalizeError> {
        let ranges = [
            (
                "usd_per_vcpu_hour",
                bounds.min_usd_per_vcpu_hour,
                bounds.max_usd_per_vcpu_hour,
            ),
            (
                "usd_per_gpu_hour",
                bounds.min_usd_per_gpu_hour,
                bounds.max_usd_per_gpu_hour,
            ),
            (
                "min_usd_per_flagship_gpu_hour",
                bounds.min_usd_per_flagship_gpu_hour,
                bounds.max_usd_per_gpu_hour,
            ),
        ];
        for (name, min, max) in ranges {
            if !(min.is_finite() && max.is_finite() && min > 0.0 && min < max) {
                return Err(NormalizeError::InvalidBounds { name, min, max });
            }
        }
        for (provider, &multiplier) in &discounts {
            if !(multiplier.is_finite() && multiplier > 0.0 && multiplier <= 10.0) {
                return Err(NormalizeError::InvalidDiscount {
                    provider: provider.clone(),
                    multiplier,
                });
            }
        }
        Ok(NormalizeConfig { bounds, discounts })
    }

    /// The sanity bounds.
    pub fn bounds(&self) -> &SanityBounds {
        &self.bounds
    }

    /// The discount multiplier of `provider` (1.0 when none is set).
    pub fn discount(&self, provider: &str) -> f64 {
        self.discounts.get(provider).copied().unwrap_or(1.0)
    }
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

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

/// Why an offer was dropped.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// On-demand price is zero or negative.
    NonPositivePrice(f64),
    /// On-demand price is NaN or infinite.
    NonFinitePrice,
    /// A hardware number is impossible (`vcpus` or `memory_gib` not > 0,
    /// `gpus` or `storage_gib` negative, anything not finite).
    InvalidHardware {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// The list price is outside its price family's bounds.
    PriceOutOfBounds {
        /// Which bound.
        unit: PriceUnit,
        /// The offer's price in that unit.
        value: f64,
        /// Lowest believable.
        min: f64,
        /// Highest believable.
        max: f64,
    },
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::NonPositivePrice(p) => write!(f, "price {p} $/h is not positive"),
            DropReason::NonFinitePrice => f.write_str("price is not a finite number"),
            DropReason::InvalidHardware { field, value } => {
                write!(f, "{field} is {value}, which is impossible")
            }
            DropReason::PriceOutOfBounds {
                unit,
                value,
                min,
                max,
            } => write!(
                f,
                "{value:.5} $ {} is outside the believable {min}..{max}",
                match unit {
                    PriceUnit::PerVcpuHour => "per vCPU-hour",
                    PriceUnit::PerGpuHour => "per GPU-hour",
                    PriceUnit::PerFlagshipGpuHour => "per flagship GPU-hour",
                }
            ),
        }
    }
}

/// A change made to an offer that was kept, worth telling the operator.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adjustment {
    /// The spot price was removed; the on-demand price stays.
    SpotPriceRemoved {
        /// The spot price given.
        spot: f64,
        /// Why: `not positive`, `not finite`, `above on-demand`, `below bound`.
        why: &'static str,
    },
    /// The GPU model is not in the vocabulary; kept as given (trimmed).
    UnknownGpuModel(String),
    /// A GPU model was given with 0 GPUs; the model was removed.
    GpuModelWithoutGpus(String),
}

/// Which offer a report entry is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferId {
    /// Provider name.
    pub provider: String,
    /// Machine type.
    pub instance_type: String,
    /// Region code.
    pub region: String,
    /// Zone, when the offer had one.
    pub zone: Option<String>,
}

impl OfferId {
    fn of(offer: &Offer) -> OfferId {
        OfferId {
            provider: offer.provider.clone(),
            instance_type: offer.instance_type.clone(),
            region: offer.region.clone(),
            zone: offer.zone.clone(),
        }
    }
}

impl std::fmt::Display for OfferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} in {}",
            self.provider, self.instance_type, self.region
        )?;
        if let Some(zone) = &self.zone {
            write!(f, " ({zone})")?;
        }
        Ok(())
    }
}

/// What [`normalize`] dropped and changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NormalizeReport {
    /// Dropped offers, in input order.
    pub dropped: Vec<(OfferId, DropReason)>,
    /// Kept offers that were changed, in input order.
    pub adjusted: Vec<(OfferId, Adjustment)>,
    /// Offers whose prices a discount multiplier changed.
    pub discounted: usize,
}

// ---------------------------------------------------------------------------
// normalize
// ---------------------------------------------------------------------------

/// Normalises every offer (see the module docs); returns the kept offers in
/// input order and the report.
pub fn normalize(offers: Vec<Offer>, config: &NormalizeConfig) -> (Vec<Offer>, NormalizeReport) {
    let mut report = NormalizeReport::default();
    let mut kept = Vec::with_capacity(offers.len());
    for offer in offers {
        match normalize_offer(offer, config, &mut report.adjusted) {
            Ok((offer, discounted)) => {
                report.discounted += usize::from(discounted);
                kept.push(offer);
            }
            Err(dropped) => report.dropped.push(*dropped),
        }
    }
    (kept, report)
}

/// Normalises one offer. `Ok((offer, discounted))` when kept (changes worth
/// reporting are pushed to `adjusted`), `Err` with the reason when dropped.
pub fn normalize_offer(
    mut offer: Offer,
    config: &NormalizeConfig,
    adjusted: &mut Vec<(OfferId, Adjustment)>,
) -> Result<(Offer, bool), Box<(OfferId, DropReason)>> {
    if let Err(reason) = check_numbers(&offer) {
        return Err(Box::new((OfferId::of(&offer), reason)));
    }

    // GPU model and marks.
    if offer.gpus == 0.0 {
        if let Some(model) = offer.gpu_model.take() {
            adjusted.push((OfferId::of(&offer), Adjustment::GpuModelWithoutGpus(model)));
        }
    } else if let Some(raw) = offer.gpu_model.take() {
        match canonical_gpu_model(&raw, offer.gpu_memory_gib) {
            Some(name) => offer.gpu_model = Some(name.to_owned()),
            None => {
                let trimmed = raw.trim().to_owned();
                adjusted.push((
                    OfferId::of(&offer),
                    Adjustment::UnknownGpuModel(trimmed.clone()),
                ));
                offer.gpu_model = Some(trimmed);
            }
        }
    }
    offer.fractional_gpu |=
        is_fractional_gpu(offer.gpus, offer.gpu_model.as_deref(), offer.gpu_memory_gib);
    offer.shared_cpu |= is_shared_core(&offer.provider, &offer.instance_type);
    offer.promotional |= is_promotional_sku(&offer.provider, &offer.instance_type);

    // Bounds on list prices.
    let bounds = &config.bounds;
    let (unit, per_unit, min, max) = price_family(&offer, bounds);
    let value = offer.hourly_usd / per_unit;
    if !offer.operator_owned && !(min..=max).contains(&value) {
        let reason = DropReason::PriceOutOfBounds {
            unit,
            value,
            min,
            max,
        };
        return Err(Box::new((OfferId::of(&offer), reason)));
    }
    if let Some(spot) = offer.spot_hourly_usd {
        let why = if !spot.is_finite() {
            Some("not finite")
        } else if spot <= 0.0 {
            Some("not positive")
        } else if spot > offer.hourly_usd {
            Some("above on-demand")
        } else if spot / per_unit < bounds_min_for_spot(unit, bounds) {
            Some("below bound")
        } else {
            None
        };
        if let Some(why) = why {
            offer.spot_hourly_usd = None;
            adjusted.push((
                OfferId::of(&offer),
                Adjustment::SpotPriceRemoved { spot, why },
            ));
        }
    }

    // Discount.
    let multiplier = config.discount(&offer.provider);
    let discounted = multiplier != 1.0;
    if discounted {
        offer.hourly_usd *= multiplier;
        offer.spot_hourly_usd = offer.spot_hourly_usd.map(|s| s * multiplier);
    }
    Ok((offer, discounted))
}

fn check_numbers(offer: &Offer) -> Result<(), DropReason> {
    if !offer.hourly_usd.is_finite() {
        return Err(DropReason::NonFinitePrice);
    }
    // The operator's own machines may cost nothing; nothing else may.
    if offer.hourly_usd < 0.0 || (offer.hourly_usd == 0.0 && !offer.operator_owned) {
        return Err(DropReason::NonPositivePrice(offer.hourly_usd));
    }
    let positive = [("vcpus", offer.vcpus), ("memory_gib", offer.memory_gib)];
    for (field, value) in positive {
        if !(value.is_finite() && value > 0.0) {
            return Err(DropReason::InvalidHardware {
                field,
                value: f64::from(value),
            });
        }
    }
    let non_negative = [
        ("gpus", Some(offer.gpus)),
        ("storage_gib", offer.storage_gib),
        ("gpu_memory_gib", offer.gpu_memory_gib),
    ];
    for (field, value) in non_negative {
        if let Some(value) = value
            && !(value.is_finite() && value >= 0.0)
        {
            return Err(DropReason::InvalidHardware {
                field,
                value: f64::from(value),
            });
        }
    }
    Ok(())
}

/// `(unit, units in the offer, min, max)` of the offer's price family.
fn price_family(offer: &Offer, bounds: &SanityBounds) -> (PriceUnit, f64, f64, f64) {
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
fn bounds_min_for_spot(unit: PriceUnit, bounds: &SanityBounds) -> f64 {
    match unit {
        PriceUnit::PerVcpuHour => bounds.min_usd_per_vcpu_hour,
        PriceUnit::PerGpuHour | PriceUnit::PerFlagshipGpuHour => bounds.min_usd_per_gpu_hour,
    }
}

#[cfg(test)]
#[path = "normalize/tests.rs"]
mod tests;
