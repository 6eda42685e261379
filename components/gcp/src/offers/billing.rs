//! Offers from the Cloud Billing Catalog SKUs of Compute Engine (service
//! `6F81-5844-456A`) and the project's machine types.
//!
//! Google prices a VM by its parts: a per-vCPU-hour core SKU and a
//! per-GiB-hour RAM SKU per family and region, plus a per-GPU-hour SKU for each
//! GPU. So an offer's price is `billable vCPUs x core + GiB x RAM + GPUs x GPU`,
//! where the E2 shared-core types bill a fraction of a vCPU (e2-micro 0.25,
//! e2-small 0.5, e2-medium 1). Spot prices come from the `Preemptible` SKUs the
//! same way, and exist only when every part has one. A type whose family or GPU
//! has no SKU in a region is left out there. Every `n1-standard` type is also
//! offered with each GPU that attaches to N1 and that the region prices, in the
//! counts its vCPUs allow (`n1-standard-4+1xnvidia-tesla-t4`).
//!
//! SKUs are recognised by their description (`[Preemptible ]<family phrase>
//! running in <place>`), their `usageType` (`OnDemand` or `Preemptible`) and unit
//! (`h` for cores and GPUs, `GiBy.h` for RAM); the price is the last tier's
//! `unitPrice` (`units + nanos / 1e9`), i.e. past any free usage.

use std::collections::BTreeMap;

use provider_sdk::types::{Arch, Offer, PriceSource};
use serde::Deserialize;

use crate::machine;
use crate::model::MachineType;

/// One SKU (the fields this component reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sku {
    /// Human description; carries the family and resource.
    #[serde(default)]
    pub description: String,
    /// `resourceFamily`, `usageType`...
    #[serde(default)]
    pub category: Category,
    /// Regions the price applies to.
    #[serde(default)]
    pub service_regions: Vec<String>,
    /// Prices (the first entry is current).
    #[serde(default)]
    pub pricing_info: Vec<PricingInfo>,
}

/// `category`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Category {
    /// `Compute`, `Storage`...
    #[serde(default)]
    pub resource_family: String,
    /// `OnDemand`, `Preemptible`, `Commit1Yr`...
    #[serde(default)]
    pub usage_type: String,
}

/// `pricingInfo[]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricingInfo {
    /// The expression.
    #[serde(default)]
    pub pricing_expression: PricingExpression,
    /// RFC 3339 time the price took effect.
    #[serde(default)]
    pub effective_time: Option<String>,
}

/// `pricingExpression`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricingExpression {
    /// `h`, `GiBy.h`...
    #[serde(default)]
    pub usage_unit: String,
    /// Tiers.
    #[serde(default)]
    pub tiered_rates: Vec<TieredRate>,
}

/// One tier.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TieredRate {
    /// Price per unit.
    #[serde(default)]
    pub unit_price: Money,
}

/// `{units, nanos}` in USD.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Money {
    /// Whole units (a decimal string).
    #[serde(default)]
    pub units: Option<String>,
    /// Billionths.
    #[serde(default)]
    pub nanos: i64,
    /// Currency.
    #[serde(rename = "currencyCode", default)]
    pub currency_code: Option<String>,
}

impl Money {
    fn usd(&self) -> Option<f64> {
        if self.currency_code.as_deref().is_some_and(|c| c != "USD") {
            return None;
        }
        let units: f64 = self.units.as_deref().unwrap_or("0").parse().ok()?;
        Some(units + self.nanos as f64 / 1e9)
    }
}

/// A page of `services.skus.list`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SkuPage {
    /// SKUs.
    #[serde(default)]
    pub skus: Vec<Sku>,
    /// Next page; absent or empty on the last.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// What a SKU prices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    /// vCPU-hours of a family.
    Core(&'static str),
    /// GiB-hours of a family.
    Ram(&'static str),
    /// GPU-hours of an accelerator type.
    Gpu(&'static str),
}

/// Family phrases of the SKU descriptions (Google's naming).
const FAMILIES: &[(&str, &str)] = &[
    ("E2 Instance", "e2"),
    ("N1 Predefined Instance", "n1"),
    ("N2 Instance", "n2"),
    ("N2D AMD Instance", "n2d"),
    ("Compute optimized", "c2"),
    ("C2D AMD Instance", "c2d"),
    ("C3 Instance", "c3"),
    ("C3D Instance", "c3d"),
    ("T2D AMD Instance", "t2d"),
    ("T2A Arm Instance", "t2a"),
    ("A2 Instance", "a2"),
    ("A3 Instance", "a3"),
    ("G2 Instance", "g2"),
];

/// What `description` prices, and whether it is the Spot (preemptible) rate.
fn part(description: &str) -> Option<Part> {
    let d = description
        .strip_prefix("Preemptible ")
        .unwrap_or(description);
    let (what, _) = d.split_once(" running in ")?;
    for (phrase, family) in FAMILIES {
        if let Some(rest) = what.strip_prefix(phrase) {
            return match rest {
                " Core" => Some(Part::Core(family)),
                " Ram" => Some(Part::Ram(family)),
                _ => None,
            };
        }
    }
    machine::GPUS
        .iter()
        .find(|g| what == g.sku)
        .map(|g| Part::Gpu(g.accelerator))
}

/// Rates by (part, region): (on-demand, spot).
#[derive(Debug, Default)]
pub struct Rates {
    rates: BTreeMap<(Part, String), (Option<f64>, Option<f64>)>,
    /// Newest `effectiveTime` seen (Unix seconds).
    pub newest: Option<u64>,
}

impl Rates {
    /// Add the Compute Engine SKUs of one page.
    pub fn add(&mut self, skus: &[Sku]) {
        for sku in skus {
            if sku.category.resource_family != "Compute" {
                continue;
            }
            let spot = match sku.category.usage_type.as_str() {
                "OnDemand" => false,
                "Preemptible" => true,
                _ => continue,
            };
            let Some(part) = part(&sku.description) else {
                continue;
            };
            let Some(info) = sku.pricing_info.first() else {
                continue;
            };
            let unit_ok = match part {
                Part::Ram(_) => info.pricing_expression.usage_unit == "GiBy.h",
                _ => info.pricing_expression.usage_unit == "h",
            };
            let Some(price) = info
                .pricing_expression
                .tiered_rates
                .last()
                .and_then(|t| t.unit_price.usd())
                .filter(|p| p.is_finite() && *p > 0.0)
            else {
                continue;
            };
            if !unit_ok {
                continue;
            }
            if let Some(t) = info
                .effective_time
                .as_deref()
                .and_then(provider_sdk::time::parse_rfc3339)
            {
                self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
            }
            for region in &sku.service_regions {
                let e = self.rates.entry((part, region.clone())).or_default();
                if spot {
                    e.1 = Some(price);
                } else {
                    e.0 = Some(price);
                }
            }
        }
    }

    fn get(&self, part: Part, region: &str) -> (Option<f64>, Option<f64>) {
        self.rates
            .get(&(part, region.to_string()))
            .copied()
            .unwrap_or_default()
    }
}

/// Offers for `machine_types` (one per (type, region), from any zone of the
/// region) priced by `rates`, in `regions` (all when empty).
pub fn offers(
    rates: &Rates,
    machine_types: &[MachineType],
    regions: &[String],
    source: &PriceSource,
) -> Vec<Offer> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for mt in machine_types {
        let zone = crate::api::last_segment(&mt.zone);
        let region = crate::model::region_of(zone);
        if !regions.is_empty() && !regions.iter().any(|r| r == region) {
            continue;
        }
        if !seen.insert((mt.name.clone(), region.to_string())) {
            continue;
        }
        let Some(family) = FAMILIES
            .iter()
            .map(|(_, f)| *f)
            .find(|f| *f == machine::family(&mt.name))
        else {
            continue;
        };
        let vcpus = machine::billable_vcpus(&mt.name, mt.guest_cpus);
        let gib = mt.memory_mb / 1024.0;
        let (core, core_spot) = rates.get(Part::Core(family), region);
        let (ram, ram_spot) = rates.get(Part::Ram(family), region);
        let (Some(core), Some(ram)) = (core, ram) else {
            continue;
        };
        let mut hourly = vcpus * core + gib * ram;
        let mut spot = core_spot.zip(ram_spot).map(|(c, r)| vcpus * c + gib * r);
        let gpus = match mt.accelerators.first() {
            None => None,
            Some(a) => match machine::by_accelerator(&a.guest_accelerator_type) {
                Some(g) => Some((g, a.guest_accelerator_count)),
                // A GPU we cannot price: never offered at the host's price.
                None => continue,
            },
        };
        if let Some((gpu, n)) = gpus {
            let (g, gs) = rates.get(Part::Gpu(gpu.accelerator), region);
            let Some(g) = g else {
                continue;
            };
            hourly += n as f64 * g;
            spot = spot.zip(gs).map(|(s, g)| s + n as f64 * g);
        }
        let arm = mt.architecture.as_deref() == Some("ARM64") || machine::is_arm(&mt.name);
        if family == "n1" && mt.name.starts_with("n1-standard-") {
            out.extend(attached_offers(rates, mt, region, hourly, spot, source));
        }
        out.push(Offer {
            instance_type: mt.name.clone(),
            region: region.to_string(),
            zone: None,
            vcpus: mt.guest_cpus as f32,
            memory_gib: gib as f32,
            storage_gib: None,
            gpus: gpus.map(|(_, n)| n as f32).unwrap_or(0.0),
            gpu_model: gpus.map(|(g, _)| g.accelerator.to_string()),
            gpu_memory_gib: gpus.map(|(g, _)| g.memory_gib),
            arch: if arm { Arch::Arm64 } else { Arch::X8664 },
            hourly_usd: hourly,
            spot_hourly_usd: spot,
            shared_cpu: mt.is_shared_cpu || machine::is_shared_core(&mt.name),
            confidential: machine::is_confidential(&mt.name),
            promotional: false,
            source: source.clone(),
        });
    }
    out
}

/// An N1 machine with each GPU model and count it may take, where the region
/// prices that GPU (`n1-standard-4+1xnvidia-tesla-t4`): host + GPUs.
fn attached_offers(
    rates: &Rates,
    mt: &MachineType,
    region: &str,
    host: f64,
    host_spot: Option<f64>,
    source: &PriceSource,
) -> Vec<Offer> {
    let mut out = Vec::new();
    for gpu in machine::GPUS {
        let (Some(g), gs) = rates.get(Part::Gpu(gpu.accelerator), region) else {
            continue;
        };
        for n in [1u32, 2, 4, 8] {
            if machine::n1_max_vcpus(gpu, n).is_none_or(|max| mt.guest_cpus > max as f64) {
                continue;
            }
            out.push(Offer {
                instance_type: machine::attached_name(&mt.name, gpu, n),
                region: region.to_string(),
                zone: None,
                vcpus: mt.guest_cpus as f32,
                memory_gib: (mt.memory_mb / 1024.0) as f32,
                storage_gib: None,
                gpus: n as f32,
                gpu_model: Some(gpu.accelerator.to_string()),
                gpu_memory_gib: Some(gpu.memory_gib),
                arch: Arch::X8664,
                hourly_usd: host + n as f64 * g,
                spot_hourly_usd: host_spot.zip(gs).map(|(h, g)| h + n as f64 * g),
                shared_cpu: false,
                confidential: false,
                promotional: false,
                source: source.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MachineAccelerator;

    fn sku(
        description: &str,
        usage: &str,
        unit: &str,
        region: &str,
        units: &str,
        nanos: i64,
    ) -> Sku {
        serde_json::from_value(serde_json::json!({
            "description": description,
            "category": {"resourceFamily": "Compute", "usageType": usage},
            "serviceRegions": [region],
            "pricingInfo": [{"pricingExpression": {"usageUnit": unit,
                "tieredRates": [{"unitPrice": {"currencyCode": "USD", "units": units, "nanos": nanos}}]},
                "effectiveTime": "2023-08-06T15:34:36Z"}]
        }))
        .unwrap()
    }

    fn mt(name: &str, cpus: f64, mem_gib: f64, gpu: Option<(&str, u32)>) -> MachineType {
        MachineType {
            name: name.into(),
            guest_cpus: cpus,
            memory_mb: mem_gib * 1024.0,
            is_shared_cpu: machine::is_shared_core(name),
            accelerators: gpu
                .map(|(t, n)| {
                    vec![MachineAccelerator {
                        guest_accelerator_type: t.into(),
                        guest_accelerator_count: n,
                    }]
                })
                .unwrap_or_default(),
            architecture: None,
            zone: "us-central1-a".into(),
        }
    }

    fn src() -> PriceSource {
        PriceSource {
            source: "t".into(),
            observed_at: 0,
            from_snapshot: false,
        }
    }

    #[test]
    fn e2_medium_is_one_billable_vcpu_plus_four_gib() {
        let mut r = Rates::default();
        r.add(&[
            sku(
                "E2 Instance Core running in Americas",
                "OnDemand",
                "h",
                "us-central1",
                "0",
                21_811_590,
            ),
            sku(
                "E2 Instance Ram running in Americas",
                "OnDemand",
                "GiBy.h",
                "us-central1",
                "0",
                2_923_530,
            ),
            sku(
                "Preemptible E2 Instance Core running in Americas",
                "Preemptible",
                "h",
                "us-central1",
                "0",
                4_591_950,
            ),
            sku(
                "Preemptible E2 Instance Ram running in Americas",
                "Preemptible",
                "GiBy.h",
                "us-central1",
                "0",
                615_480,
            ),
        ]);
        let o = offers(&r, &[mt("e2-medium", 2.0, 4.0, None)], &[], &src());
        assert_eq!(o.len(), 1);
        assert!(
            (o[0].hourly_usd - 0.03350571).abs() < 1e-12,
            "{}",
            o[0].hourly_usd
        );
        assert!((o[0].spot_hourly_usd.unwrap() - (0.00459195 + 4.0 * 0.00061548)).abs() < 1e-12);
        assert_eq!(o[0].vcpus, 2.0);
        assert!(o[0].shared_cpu);
        assert_eq!(r.newest, Some(1_691_336_076));
    }

    #[test]
    fn an_a2_price_includes_its_a100() {
        let mut r = Rates::default();
        r.add(&[
            sku(
                "A2 Instance Core running in Americas",
                "OnDemand",
                "h",
                "us-central1",
                "0",
                31_611_000,
            ),
            sku(
                "A2 Instance Ram running in Americas",
                "OnDemand",
                "GiBy.h",
                "us-central1",
                "0",
                4_237_000,
            ),
            sku(
                "Nvidia Tesla A100 GPU running in Americas",
                "OnDemand",
                "h",
                "us-central1",
                "2",
                933_908_000,
            ),
        ]);
        let o = offers(
            &r,
            &[mt(
                "a2-highgpu-1g",
                12.0,
                85.0,
                Some(("nvidia-tesla-a100", 1)),
            )],
            &[],
            &src(),
        );
        assert!(
            (o[0].hourly_usd - 3.673385).abs() < 1e-9,
            "{}",
            o[0].hourly_usd
        );
        assert_eq!(o[0].gpus, 1.0);
        assert_eq!(o[0].spot_hourly_usd, None);
        // Without the GPU SKU the A2 is not offered at all.
        let mut r2 = Rates::default();
        r2.add(&[
            sku(
                "A2 Instance Core running in Americas",
                "OnDemand",
                "h",
                "us-central1",
                "0",
                31_611_000,
            ),
            sku(
                "A2 Instance Ram running in Americas",
                "OnDemand",
                "GiBy.h",
                "us-central1",
                "0",
                4_237_000,
            ),
        ]);
        assert!(
            offers(
                &r2,
                &[mt(
                    "a2-highgpu-1g",
                    12.0,
                    85.0,
                    Some(("nvidia-tesla-a100", 1))
                )],
                &[],
                &src()
            )
            .is_empty()
        );
    }

    #[test]
    fn an_n1_type_is_also_offered_with_the_gpus_the_region_prices() {
        let mut r = Rates::default();
        r.add(&[
            sku(
                "N1 Predefined Instance Core running in Americas",
                "OnDemand",
                "h",
                "us-central1",
                "0",
                31_611_000,
            ),
            sku(
                "N1 Predefined Instance Ram running in Americas",
                "OnDemand",
                "GiBy.h",
                "us-central1",
                "0",
                4_237_000,
            ),
            sku(
                "Nvidia Tesla T4 GPU running in Americas",
                "OnDemand",
                "h",
                "us-central1",
                "0",
                350_000_000,
            ),
        ]);
        let o = offers(&r, &[mt("n1-standard-4", 4.0, 15.0, None)], &[], &src());
        let names: Vec<&str> = o.iter().map(|o| o.instance_type.as_str()).collect();
        assert_eq!(
            names,
            [
                "n1-standard-4+1xnvidia-tesla-t4",
                "n1-standard-4+2xnvidia-tesla-t4",
                "n1-standard-4+4xnvidia-tesla-t4",
                "n1-standard-4"
            ]
        );
        assert!(
            (o[0].hourly_usd - (0.189999 + 0.35)).abs() < 1e-9,
            "{}",
            o[0].hourly_usd
        );
        assert_eq!(o[2].gpus, 4.0);
    }

    #[test]
    fn other_skus_units_and_families_are_ignored() {
        let mut r = Rates::default();
        r.add(&[
            sku(
                "N2 Custom Instance Core running in Americas",
                "OnDemand",
                "h",
                "us-central1",
                "0",
                1,
            ),
            sku(
                "Commitment v1: N2 Cpu in Americas for 1 Year",
                "Commit1Yr",
                "h",
                "us-central1",
                "0",
                1,
            ),
            sku(
                "N2 Instance Ram running in Americas",
                "OnDemand",
                "GiBy.mo",
                "us-central1",
                "0",
                1,
            ),
        ]);
        assert!(offers(&r, &[mt("n2-standard-2", 2.0, 8.0, None)], &[], &src()).is_empty());
        assert!(offers(&r, &[mt("m1-ultramem-40", 40.0, 961.0, None)], &[], &src()).is_empty());
    }
}
