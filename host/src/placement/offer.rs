//! The host-side offer: one machine type in one region (and maybe one zone)
//! with its hardware and price, independent of the WIT bindings.
//!
//! The host converts each WIT `offer` into an [`Offer`], adding the provider
//! name, then runs it through `pricing::normalize` before placement sees it.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// CPU architecture of an offer (mirrors the WIT `arch` enum).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// x86-64 (Intel or AMD).
    X86_64,
    /// 64-bit ARM (e.g. AWS Graviton).
    Arm64,
}

/// One machine type a provider can start in one region, with its price.
///
/// Units follow the WIT: USD per hour, GiB, seconds since the Unix epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// Provider name (the component's file stem: `aws`, `digitalocean`...).
    pub provider: String,
    /// The provider's machine type (`m6i.large`, `s-2vcpu-4gb`...).
    pub instance_type: String,
    /// Provider region code (`us-east-1`, `nyc3`, `eastus`...).
    pub region: String,
    /// Zone, when the price or availability is per zone.
    pub zone: Option<String>,
    /// Virtual CPUs (nominal count for shared-core types, see `shared_cpu`).
    pub vcpus: f32,
    /// Memory in GiB.
    pub memory_gib: f32,
    /// Disk that comes fixed with the type, in GiB. `None` means the disk is
    /// network storage sized at creation (EBS, persistent disk), so any storage
    /// requirement can be met.
    pub storage_gib: Option<f32>,
    /// GPU count; fractional for partial GPUs (0.125 = one eighth).
    pub gpus: f32,
    /// GPU model in the host vocabulary (`NVIDIA T4`, `NVIDIA A100 80GB`)
    /// after normalisation; `None` when there is no GPU or it is unknown.
    pub gpu_model: Option<String>,
    /// Memory per GPU in GiB, when known.
    pub gpu_memory_gib: Option<f32>,
    /// CPU architecture.
    pub arch: Arch,
    /// On-demand price in USD per hour (after the operator's discount once
    /// normalised).
    pub hourly_usd: f64,
    /// Spot / preemptible price in USD per hour, when the type can run as spot.
    pub spot_hourly_usd: Option<f64>,
    /// Burstable or shared-core vCPUs.
    pub shared_cpu: bool,
    /// Supports confidential computing (SEV-SNP, TDX, Nitro enclaves...).
    pub confidential: bool,
    /// Promotional or legacy SKU whose price is not a list price.
    pub promotional: bool,
    /// The GPU is a slice of a physical GPU (set by normalisation).
    pub fractional_gpu: bool,
    /// One of the operator's own machines (a provider with the `workloads`
    /// capability): its cost may be 0 and price-family bounds do not apply.
    #[serde(default)]
    pub operator_owned: bool,
    /// Where the price came from (URL or `snapshot:<name>`).
    pub source: String,
    /// When the price was observed, seconds since the Unix epoch.
    pub observed_at: u64,
    /// True when the price comes from the component's embedded snapshot.
    pub from_snapshot: bool,
}

impl Offer {
    /// The instance family of this offer's type; see [`instance_family`].
    pub fn family(&self) -> Cow<'_, str> {
        instance_family(&self.instance_type)
    }
}

/// The instance family of a machine type: the unit `--explain` reports on.
///
/// Rule, in order:
/// - a type with a `.` is cut before it: `m5.large` -> `m5` (AWS);
/// - an Azure size (`Standard_`/`Basic_` prefix) loses the digits and the
///   constrained-core suffix of its size segment: `Standard_D2s_v3` ->
///   `Standard_Ds_v3`, `Standard_NC40ads_H100_v5` -> `Standard_NCads_H100_v5`;
/// - otherwise the type is cut before the first `-`: `n2-standard-4` -> `n2`
///   (GCP), `s-2vcpu-4gb` -> `s` (DigitalOcean), `vc2-1c-1gb` -> `vc2` (Vultr);
/// - a type with neither is its own family.
pub fn instance_family(instance_type: &str) -> Cow<'_, str> {
    if let Some(dot) = instance_type.find('.') {
        return Cow::Borrowed(&instance_type[..dot]);
    }
    if let Some((prefix, rest)) = instance_type.split_once('_')
        && (prefix == "Standard" || prefix == "Basic")
    {
        let (size, tail) = match rest.split_once('_') {
            Some((size, tail)) => (size, Some(tail)),
            None => (rest, None),
        };
        // `M64-16ms`: the `-16` says how many cores are enabled, not the series.
        let size: String = match size.split_once('-') {
            Some((head, constrained)) => {
                let suffix = constrained.trim_start_matches(|c: char| c.is_ascii_digit());
                format!("{head}{suffix}")
            }
            None => size.to_owned(),
        };
        let series: String = size.chars().filter(|c| !c.is_ascii_digit()).collect();
        return Cow::Owned(match tail {
            Some(tail) => format!("{prefix}_{series}_{tail}"),
            None => format!("{prefix}_{series}"),
        });
    }
    match instance_type.find('-') {
        Some(dash) if dash > 0 => Cow::Borrowed(&instance_type[..dash]),
        _ => Cow::Borrowed(instance_type),
    }
}

/// A total order over offers by identity, used as the last tie-break so that
/// ranking does not depend on input order: provider, region, instance type,
/// zone, then every remaining field.
pub fn identity_cmp(a: &Offer, b: &Offer) -> Ordering {
    a.provider
        .cmp(&b.provider)
        .then_with(|| a.region.cmp(&b.region))
        .then_with(|| a.instance_type.cmp(&b.instance_type))
        .then_with(|| a.zone.cmp(&b.zone))
        .then_with(|| a.hourly_usd.total_cmp(&b.hourly_usd))
        .then_with(|| cmp_opt_f64(a.spot_hourly_usd, b.spot_hourly_usd))
        .then_with(|| a.vcpus.total_cmp(&b.vcpus))
        .then_with(|| a.memory_gib.total_cmp(&b.memory_gib))
        .then_with(|| cmp_opt_f32(a.storage_gib, b.storage_gib))
        .then_with(|| a.gpus.total_cmp(&b.gpus))
        .then_with(|| a.gpu_model.cmp(&b.gpu_model))
        .then_with(|| cmp_opt_f32(a.gpu_memory_gib, b.gpu_memory_gib))
        .then_with(|| a.arch.cmp(&b.arch))
        .then_with(|| {
            (
                a.shared_cpu,
                a.confidential,
                a.promotional,
                a.fractional_gpu,
            )
                .cmp(&(
                    b.shared_cpu,
                    b.confidential,
                    b.promotional,
                    b.fractional_gpu,
                ))
        })
        .then_with(|| a.source.cmp(&b.source))
        .then_with(|| a.observed_at.cmp(&b.observed_at))
        .then_with(|| a.from_snapshot.cmp(&b.from_snapshot))
}

fn cmp_opt_f64(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.is_some().cmp(&b.is_some()),
    }
}

fn cmp_opt_f32(a: Option<f32>, b: Option<f32>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(&y),
        _ => a.is_some().cmp(&b.is_some()),
    }
}
