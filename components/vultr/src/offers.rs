//! Offers: one per (plan, location) from the public plan lists, with an
//! embedded dated snapshot when they cannot be read.
//!
//! Sources (no key needed): `GET /plans` (every type but Cloud GPU),
//! `GET /plans?type=vcg` (Cloud GPU, which the default listing leaves out) and
//! `GET /plans-metal` (bare metal, offered as their own `vbm-*` types), all
//! cursor-paged. The `plans_endpoint` setting points them elsewhere (a mirror,
//! a test server).
//!
//! Rules:
//! - **price**: `hourly_cost` where the plan has one; otherwise the monthly
//!   cost over the hours of a month: 730 for cloud plans (8760 / 12: the
//!   recorded GPU plans' `monthly_cost / hourly_cost` is 730.1, e.g. 1750 /
//!   2.397) and 672 for bare metal (28 days: the recorded metal plans'
//!   ratio is exactly 672, e.g. 16074.24 / 23.92). Plans without a positive
//!   price are skipped.
//! - plans with `deploy_ondemand: false` cannot be deployed on demand and are
//!   skipped; a plan yields offers only in its `locations`.
//! - **GPUs**: a Cloud GPU plan (`vcg-*`) sells `gpu_vram_gb` of a GPU model
//!   (`gpu_type`, else the model in the id); its GPU count is that memory over
//!   the memory of one whole card of the model ([`GPU_CARDS`]), so a 4 GB
//!   slice of an 80 GB A100 is 0.05 GPU (fractional: placement tells it from a
//!   whole GPU) and 320 GB of A100 is 4 GPUs. `gpu-memory-gib` is one whole
//!   card's memory. A model missing from the table counts as one GPU with
//!   the plan's memory. Bare-metal GPU plans name count and model in the id
//!   (`vbm-112c-2048gb-8-h100-gpu`).
//! - `vc2`, `vhf` and `vhp` plans have shared vCPUs; bare metal reports
//!   `cpu_threads` as vCPUs. RAM is in MiB (Vultr's "MB"), disk in GB (taken as
//!   GiB; bare metal: one disk of `disk_count`).

use provider_sdk::types::{Arch, Error, Offer, OfferQuery, PriceSource};
use provider_sdk::{errors, log};
use serde::{Deserialize, Deserializer};

use crate::api::Api;
use crate::model::{Meta, null_default};

/// The embedded price snapshot (see `snapshot/README.md`).
const SNAPSHOT: &str = include_str!("../snapshot/plans.json");
/// What the snapshot's `price-source.source` names start with; each plan
/// carries the name and date of the recording it was copied from.
pub const SNAPSHOT_PREFIX: &str = "snapshot:vultr-";
/// Hours in the month Vultr divides cloud plans' monthly cost by.
pub const CLOUD_HOURS_PER_MONTH: f64 = 730.0;
/// Hours in the month Vultr divides bare-metal plans' monthly cost by.
pub const METAL_HOURS_PER_MONTH: f64 = 672.0;

/// Memory of one whole card (GiB) and vendor of the GPU models Vultr sells,
/// by the lower-case model word in `gpu_type` or the plan id.
pub const GPU_CARDS: &[(&str, &str, f32)] = &[
    ("a100", "NVIDIA", 80.0),
    ("h100", "NVIDIA", 80.0),
    ("h200", "NVIDIA", 141.0),
    ("b200", "NVIDIA", 180.0),
    ("gh200", "NVIDIA", 96.0),
    ("l40s", "NVIDIA", 48.0),
    ("l40", "NVIDIA", 48.0),
    ("a40", "NVIDIA", 48.0),
    ("a16", "NVIDIA", 16.0),
    ("mi300x", "AMD", 192.0),
    ("mi325x", "AMD", 256.0),
    ("mi355x", "AMD", 288.0),
];

/// A cloud plan of `GET /plans`.
#[derive(Debug, Clone, Deserialize)]
pub struct Plan {
    /// Plan id (`vc2-1c-1gb`).
    pub id: String,
    /// vCPUs.
    #[serde(default, deserialize_with = "number")]
    pub vcpu_count: f64,
    /// RAM in MiB.
    #[serde(default, deserialize_with = "number")]
    pub ram: f64,
    /// Disk in GB.
    #[serde(default, deserialize_with = "number")]
    pub disk: f64,
    /// USD per month (an integer in the spec, fractional in live answers).
    #[serde(default, deserialize_with = "opt_number")]
    pub monthly_cost: Option<f64>,
    /// USD per hour (live answers only).
    #[serde(default, deserialize_with = "opt_number")]
    pub hourly_cost: Option<f64>,
    /// `vc2`, `vhf`, `vhp`, `vdc`, `voc`, `vcg`, `vdm`...
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub kind: String,
    /// Region ids where it can be deployed.
    #[serde(default, deserialize_with = "null_default")]
    pub locations: Vec<String>,
    /// GPU memory sold with the plan, GB.
    #[serde(default, deserialize_with = "opt_number")]
    pub gpu_vram_gb: Option<f64>,
    /// GPU model (`NVIDIA_A100`).
    #[serde(default)]
    pub gpu_type: Option<String>,
    /// GPU vendor when `gpu_type` is absent (`NVIDIA`).
    #[serde(default)]
    pub gpu_brand: Option<String>,
    /// False when the plan cannot be deployed on demand.
    #[serde(default)]
    pub deploy_ondemand: Option<bool>,
}

/// A bare-metal plan of `GET /plans-metal`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetalPlan {
    /// Plan id (`vbm-4c-32gb`).
    pub id: String,
    /// Physical cores.
    #[serde(default, deserialize_with = "opt_number")]
    pub cpu_count: Option<f64>,
    /// Hardware threads.
    #[serde(default, deserialize_with = "opt_number")]
    pub cpu_threads: Option<f64>,
    /// RAM in MiB.
    #[serde(default, deserialize_with = "number")]
    pub ram: f64,
    /// Size of one disk, GB (a string in the spec, a number in live answers).
    #[serde(default, deserialize_with = "opt_number")]
    pub disk: Option<f64>,
    /// USD per month.
    #[serde(default, deserialize_with = "opt_number")]
    pub monthly_cost: Option<f64>,
    /// USD per hour (newer answers).
    #[serde(default, deserialize_with = "opt_number")]
    pub hourly_cost: Option<f64>,
    /// Region ids where it can be deployed.
    #[serde(default, deserialize_with = "null_default")]
    pub locations: Vec<String>,
    /// False when the plan cannot be deployed on demand.
    #[serde(default)]
    pub deploy_ondemand: Option<bool>,
}

/// A number sent as a JSON number or a numeric string; `null` is absent.
fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    Ok(match Option::<Raw>::deserialize(d)? {
        Some(Raw::Number(n)) => Some(n),
        Some(Raw::Text(t)) => t.trim().parse().ok(),
        None => None,
    })
}

fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(opt_number(d)?.unwrap_or(0.0))
}

/// One page of `GET /plans` (`plans`) or `GET /plans-metal` (`plans_metal`);
/// also the format of the embedded snapshot.
#[derive(Debug, Deserialize)]
pub struct PlansPage {
    /// Cloud plans.
    #[serde(default, deserialize_with = "null_default")]
    pub plans: Vec<Plan>,
    /// Bare-metal plans.
    #[serde(default, deserialize_with = "null_default")]
    pub plans_metal: Vec<MetalPlan>,
    /// Cursors.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// Every plan, cloud and bare metal.
#[derive(Debug, Default)]
pub struct Catalogue {
    /// Cloud plans (all types, Cloud GPU included).
    pub plans: Vec<Plan>,
    /// Bare-metal plans.
    pub metal: Vec<MetalPlan>,
}

/// `compute.list-offers`: the live plan lists, or the snapshot when any of
/// them cannot be read.
pub fn list_offers(query: &OfferQuery) -> Result<Vec<Offer>, Error> {
    let api = Api::for_plans();
    match live_catalogue(&api) {
        Ok(cat) => {
            let source = PriceSource {
                source: api.url("/plans"),
                observed_at: provider_sdk::time::now_unix(),
                from_snapshot: false,
            };
            Ok(offers_from(&cat, &query.regions, &source))
        }
        Err(e) => {
            log::warn(&format!(
                "reading the Vultr plans failed, answering from the embedded snapshot (prices recorded 2021-2026, see each offer's source): {}",
                errors::message(&e)
            ));
            snapshot_offers(&query.regions)
        }
    }
}

/// Read the three plan lists (every page of each).
pub fn live_catalogue(api: &Api) -> Result<Catalogue, Error> {
    let split = |p: PlansPage| (p.plans, p.meta);
    let mut plans = api.all_pages("/plans", "listing Vultr plans", split)?;
    let gpu = api.all_pages("/plans?type=vcg", "listing Vultr Cloud GPU plans", split)?;
    for p in gpu {
        if !plans.iter().any(|q| q.id == p.id) {
            plans.push(p);
        }
    }
    let metal = api.all_pages(
        "/plans-metal",
        "listing Vultr bare-metal plans",
        |p: PlansPage| (p.plans_metal, p.meta),
    )?;
    Ok(Catalogue { plans, metal })
}

/// The embedded snapshot: the API's plan objects, unchanged, and which
/// recording each was copied from.
#[derive(Deserialize)]
struct Snapshot {
    sources: Vec<SnapshotSource>,
    #[serde(flatten)]
    page: PlansPage,
}

/// One recording the snapshot copied plans from.
#[derive(Deserialize)]
struct SnapshotSource {
    /// `price-source.source` of its offers.
    source: String,
    /// When its prices were recorded (RFC 3339): the offers' `observed-at`.
    observed: String,
    /// The plan ids copied from it.
    plans: Vec<String>,
}

/// The embedded snapshot's offers, marked `from-snapshot`, each dated by the
/// recording its plan came from (not by when the snapshot was assembled).
pub fn snapshot_offers(regions: &[String]) -> Result<Vec<Offer>, Error> {
    let snap: Snapshot =
        provider_sdk::json::parse(SNAPSHOT.as_bytes(), "the embedded price snapshot")?;
    let dated: Vec<PriceSource> = snap
        .sources
        .iter()
        .map(|s| PriceSource {
            source: s.source.clone(),
            observed_at: provider_sdk::time::parse_rfc3339(&s.observed).unwrap_or(0),
            from_snapshot: true,
        })
        .collect();
    // A plan no recording claims gets the oldest date: an older date only
    // makes the planner warn sooner. The unit tests keep every plan claimed.
    let oldest = dated
        .iter()
        .min_by_key(|s| s.observed_at)
        .cloned()
        .unwrap_or(PriceSource {
            source: format!("{SNAPSHOT_PREFIX}unknown"),
            observed_at: 0,
            from_snapshot: true,
        });
    let cat = Catalogue {
        plans: snap.page.plans,
        metal: snap.page.plans_metal,
    };
    let mut offers = offers_from(&cat, regions, &oldest);
    for offer in &mut offers {
        if let Some(i) = snap
            .sources
            .iter()
            .position(|s| s.plans.contains(&offer.instance_type))
        {
            offer.source = dated[i].clone();
        }
    }
    Ok(offers)
}

/// GPUs of an offer.
#[derive(Debug, Clone, PartialEq)]
pub struct Gpus {
    /// Count; fractional for a slice of one card.
    pub count: f32,
    /// Model as `<vendor> <MODEL>` (`NVIDIA A100`).
    pub model: String,
    /// Memory of one whole card, GiB.
    pub memory_gib: f32,
}

fn card(model_word: &str) -> Option<(&'static str, &'static str, f32)> {
    let w = model_word.to_ascii_lowercase();
    GPU_CARDS.iter().copied().find(|(key, _, _)| *key == w)
}

fn round4(x: f64) -> f32 {
    ((x * 10_000.0).round() / 10_000.0) as f32
}

/// GPUs of a cloud plan: none unless it sells GPU memory or is a `vcg-*`
/// plan whose id names the model and memory (`vcg-a40-24c-120g-48vram`).
pub fn cloud_plan_gpus(plan: &Plan) -> Option<Gpus> {
    let id_parts: Vec<&str> = plan.id.split('-').collect();
    let from_id = plan.id.starts_with("vcg-");
    let vram = plan.gpu_vram_gb.or_else(|| {
        from_id
            .then(|| {
                id_parts
                    .iter()
                    .find_map(|p| p.strip_suffix("vram").and_then(|n| n.parse::<f64>().ok()))
            })
            .flatten()
    })?;
    if vram <= 0.0 {
        return None;
    }
    // `NVIDIA_A100` -> (NVIDIA, A100); else the id's second part (`a40`).
    let (vendor, word) = match plan.gpu_type.as_deref().filter(|t| !t.is_empty()) {
        Some(t) => match t.split_once(['_', ' ']) {
            Some((vendor, model)) => (Some(vendor.to_string()), model.to_string()),
            None => (None, t.to_string()),
        },
        None => (
            plan.gpu_brand.clone(),
            id_parts.get(1).copied().unwrap_or_default().to_string(),
        ),
    };
    match card(&word) {
        Some((_, card_vendor, memory_gib)) => Some(Gpus {
            count: round4(vram / f64::from(memory_gib)),
            model: format!(
                "{} {}",
                vendor.as_deref().unwrap_or(card_vendor),
                word.to_ascii_uppercase()
            ),
            memory_gib,
        }),
        None => Some(Gpus {
            count: 1.0,
            model: match vendor {
                Some(v) => format!("{v} {}", word.to_ascii_uppercase()),
                None => word.to_ascii_uppercase(),
            },
            memory_gib: vram as f32,
        }),
    }
}

/// GPUs of a bare-metal plan from its id: `...-<count>-<model>-gpu`, or
/// `...-<model>-gpu` for one.
pub fn metal_plan_gpus(id: &str) -> Option<Gpus> {
    let parts: Vec<&str> = id.split('-').collect();
    let gpu_at = parts.iter().rposition(|p| *p == "gpu")?;
    let word = parts.get(gpu_at.checked_sub(1)?)?;
    let count = gpu_at
        .checked_sub(2)
        .and_then(|i| parts.get(i))
        .and_then(|n| n.parse::<f32>().ok())
        .unwrap_or(1.0);
    let (vendor, memory_gib) = card(word)
        .map(|(_, v, m)| (Some(v), m))
        .unwrap_or((None, 0.0));
    Some(Gpus {
        count,
        model: match vendor {
            Some(v) => format!("{v} {}", word.to_ascii_uppercase()),
            None => word.to_ascii_uppercase(),
        },
        memory_gib,
    })
}

fn price(hourly: Option<f64>, monthly: Option<f64>, hours: f64) -> Option<f64> {
    hourly
        .filter(|h| h.is_finite() && *h > 0.0)
        .or_else(|| monthly.map(|m| m / hours))
        .filter(|p| p.is_finite() && *p > 0.0)
}

fn wanted(location: &str, regions: &[String]) -> bool {
    regions.is_empty() || regions.iter().any(|r| r == location)
}

/// Offers of a catalogue: one per (plan, location), following the module's
/// rules, for `regions` (all when empty).
pub fn offers_from(cat: &Catalogue, regions: &[String], source: &PriceSource) -> Vec<Offer> {
    let mut out = Vec::new();
    let mut push = |id: &str,
                    locations: &[String],
                    vcpus: f64,
                    ram: f64,
                    disk: Option<f64>,
                    gpus: Option<Gpus>,
                    hourly: f64,
                    shared_cpu: bool| {
        for location in locations.iter().filter(|l| wanted(l, regions)) {
            out.push(Offer {
                instance_type: id.to_string(),
                region: location.clone(),
                zone: None,
                vcpus: vcpus as f32,
                memory_gib: (ram / 1024.0) as f32,
                storage_gib: disk.filter(|d| *d > 0.0).map(|d| d as f32),
                gpus: gpus.as_ref().map_or(0.0, |g| g.count),
                gpu_model: gpus.as_ref().map(|g| g.model.clone()),
                gpu_memory_gib: gpus.as_ref().map(|g| g.memory_gib).filter(|m| *m > 0.0),
                arch: Arch::X8664,
                hourly_usd: hourly,
                spot_hourly_usd: None,
                shared_cpu,
                confidential: false,
                promotional: false,
                source: source.clone(),
            });
        }
    };
    for plan in &cat.plans {
        if plan.deploy_ondemand == Some(false) || plan.vcpu_count <= 0.0 {
            continue;
        }
        let Some(hourly) = price(plan.hourly_cost, plan.monthly_cost, CLOUD_HOURS_PER_MONTH) else {
            continue;
        };
        let kind = if plan.kind.is_empty() {
            plan.id.split('-').next().unwrap_or_default()
        } else {
            plan.kind.as_str()
        };
        let shared = matches!(kind, "vc2" | "vhf" | "vhp");
        push(
            &plan.id,
            &plan.locations,
            plan.vcpu_count,
            plan.ram,
            Some(plan.disk),
            cloud_plan_gpus(plan),
            hourly,
            shared,
        );
    }
    for plan in &cat.metal {
        if plan.deploy_ondemand == Some(false) {
            continue;
        }
        let Some(vcpus) = plan.cpu_threads.or(plan.cpu_count).filter(|v| *v > 0.0) else {
            continue;
        };
        let Some(hourly) = price(plan.hourly_cost, plan.monthly_cost, METAL_HOURS_PER_MONTH) else {
            continue;
        };
        push(
            &plan.id,
            &plan.locations,
            vcpus,
            plan.ram,
            plan.disk,
            metal_plan_gpus(&plan.id),
            hourly,
            false,
        );
    }
    out
}

/// The plan `id` in `cat`: `Some(locations)` when it exists and can be
/// deployed on demand, `Some([])` when it exists but cannot, `None` when no
/// plan has that id.
pub fn plan_locations(cat: &Catalogue, id: &str) -> Option<Vec<String>> {
    let (ondemand, locations) = cat
        .plans
        .iter()
        .find(|p| p.id == id)
        .map(|p| (p.deploy_ondemand, &p.locations))
        .or_else(|| {
            cat.metal
                .iter()
                .find(|p| p.id == id)
                .map(|p| (p.deploy_ondemand, &p.locations))
        })?;
    Some(if ondemand == Some(false) {
        vec![]
    } else {
        locations.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> PriceSource {
        PriceSource {
            source: "test".into(),
            observed_at: 0,
            from_snapshot: false,
        }
    }

    fn snapshot() -> Catalogue {
        let snap: Snapshot = serde_json::from_str(SNAPSHOT).expect("snapshot is valid JSON");
        Catalogue {
            plans: snap.page.plans,
            metal: snap.page.plans_metal,
        }
    }

    fn find<'a>(offers: &'a [Offer], id: &str, region: &str) -> &'a Offer {
        offers
            .iter()
            .find(|o| o.instance_type == id && o.region == region)
            .unwrap_or_else(|| panic!("no offer {id} in {region}"))
    }

    #[test]
    fn monthly_only_plans_cost_a_730th_of_their_month() {
        let offers = offers_from(&snapshot(), &[], &source());
        let o = find(&offers, "vc2-1c-1gb", "ewr");
        assert_eq!(o.hourly_usd, 5.0 / 730.0);
        assert_eq!(
            (o.vcpus, o.memory_gib, o.storage_gib),
            (1.0, 1.0, Some(25.0))
        );
        assert!(o.shared_cpu && o.gpus == 0.0 && o.gpu_model.is_none());
        assert!(!find(&offers, "vdc-2vcpu-8gb", "ewr").shared_cpu);
    }

    #[test]
    fn hourly_cost_wins_over_the_monthly_rule() {
        let offers = offers_from(&snapshot(), &[], &source());
        // Recorded: monthly 800 (800 / 730 = 1.096), hourly 1.397.
        assert_eq!(
            find(&offers, "vcg-a100-6c-60g-40vram", "ewr").hourly_usd,
            1.397
        );
        // Bare metal: recorded hourly 23.92 (monthly 16074.24 = 672 x 23.92).
        let h100 = find(&offers, "vbm-112c-2048gb-8-h100-gpu", "sea");
        assert_eq!(h100.hourly_usd, 23.92);
        assert_eq!(
            (h100.gpus, h100.gpu_model.as_deref(), h100.gpu_memory_gib),
            (8.0, Some("NVIDIA H100"), Some(80.0))
        );
        assert_eq!(h100.vcpus, 224.0);
        // 2021 bare metal has no hourly price: monthly 120 over 672 hours.
        assert_eq!(
            find(&offers, "vbm-4c-32gb", "ewr").hourly_usd,
            120.0 / 672.0
        );
    }

    #[test]
    fn a_gpu_slice_is_a_fraction_of_one_card() {
        let offers = offers_from(&snapshot(), &[], &source());
        let slice = find(&offers, "vcg-a100-1c-6g-4vram", "ewr");
        assert_eq!(slice.hourly_usd, 0.123);
        assert_eq!(
            (slice.gpus, slice.gpu_model.as_deref(), slice.gpu_memory_gib),
            (0.05, Some("NVIDIA A100"), Some(80.0))
        );
        assert_eq!(find(&offers, "vcg-a100-6c-60g-40vram", "ewr").gpus, 0.5);
        assert_eq!(find(&offers, "vcg-a100-12c-120g-80vram", "ewr").gpus, 1.0);
        // No gpu_type: model and memory from the id, vendor from gpu_brand.
        let a40 = find(&offers, "vcg-a40-24c-120g-48vram", "blr");
        assert_eq!(
            (a40.gpus, a40.gpu_model.as_deref()),
            (1.0, Some("NVIDIA A40"))
        );
    }

    #[test]
    fn plans_not_deployable_on_demand_or_without_locations_give_no_offers() {
        let offers = offers_from(&snapshot(), &[], &source());
        assert!(
            !offers
                .iter()
                .any(|o| o.instance_type.starts_with("vcg-mi325x")
                    || o.instance_type == "vdc-8vcpu-32gb")
        );
        assert!(
            offers
                .iter()
                .all(|o| o.hourly_usd > 0.0 && o.vcpus > 0.0 && o.memory_gib > 0.0)
        );
    }

    #[test]
    fn region_filter_keeps_only_those_locations() {
        let only = offers_from(&snapshot(), &["blr".to_string()], &source());
        assert_eq!(only.len(), 1);
        assert_eq!(only[0].instance_type, "vcg-a40-24c-120g-48vram");
    }

    #[test]
    fn string_and_numeric_disks_and_costs_both_parse() {
        let page: PlansPage = serde_json::from_str(
            r#"{"plans_metal":[{"id":"vbm-x","cpu_count":4,"ram":1024,"disk":"240","monthly_cost":"67.2","locations":["ewr"]}],
                "plans":[{"id":"vc2-x","vcpu_count":1,"ram":512,"disk":10,"monthly_cost":3.65,"type":"vc2","locations":null}]}"#,
        )
        .expect("valid test JSON");
        assert_eq!(page.plans_metal[0].disk, Some(240.0));
        assert_eq!(page.plans_metal[0].monthly_cost, Some(67.2));
        assert!(page.plans[0].locations.is_empty());
    }

    #[test]
    fn unknown_gpu_models_count_as_one_gpu_with_the_plan_memory() {
        let plan: Plan = serde_json::from_str(
            r#"{"id":"vcg-x9-2c-16g-24vram","vcpu_count":2,"ram":16384,"gpu_vram_gb":24,"gpu_type":"NVIDIA_X9","locations":["ewr"]}"#,
        )
        .unwrap();
        assert_eq!(
            cloud_plan_gpus(&plan),
            Some(Gpus {
                count: 1.0,
                model: "NVIDIA X9".into(),
                memory_gib: 24.0
            })
        );
        assert_eq!(
            metal_plan_gpus("vbm-64c-2048gb-l40-gpu").map(|g| g.count),
            Some(1.0)
        );
        assert_eq!(metal_plan_gpus("vbm-4c-32gb"), None);
    }

    #[test]
    fn plan_locations_tell_unknown_plans_from_unavailable_ones() {
        let cat = snapshot();
        assert_eq!(plan_locations(&cat, "no-such-plan"), None);
        assert_eq!(plan_locations(&cat, "vdc-8vcpu-32gb"), Some(vec![]));
        assert_eq!(
            plan_locations(&cat, "vcg-mi325x-252c-2872g-1536vram"),
            Some(vec![])
        );
        assert!(
            plan_locations(&cat, "vbm-4c-32gb").is_some_and(|l| l.contains(&"ewr".to_string()))
        );
    }

    /// 2026-12-06T00:00:00Z, the day the snapshot was assembled: no offer
    /// may claim it (that was the defect: the assembly date as observed-at).
    const ASSEMBLED: u64 = 1_796_515_200;

    #[test]
    fn every_snapshot_plan_is_claimed_by_exactly_one_dated_recording() {
        let snap: Snapshot = serde_json::from_str(SNAPSHOT).unwrap();
        let ids: Vec<&str> = snap
            .page
            .plans
            .iter()
            .map(|p| p.id.as_str())
            .chain(snap.page.plans_metal.iter().map(|p| p.id.as_str()))
            .collect();
        for id in &ids {
            let claims = snap
                .sources
                .iter()
                .filter(|s| s.plans.iter().any(|p| p == id))
                .count();
            assert_eq!(claims, 1, "{id} is claimed by {claims} recordings");
        }
        for s in &snap.sources {
            assert!(s.source.starts_with(SNAPSHOT_PREFIX), "{}", s.source);
            assert!(
                provider_sdk::time::parse_rfc3339(&s.observed).is_some(),
                "{}",
                s.observed
            );
            for p in &s.plans {
                assert!(
                    ids.contains(&p.as_str()),
                    "{} names unknown plan {p}",
                    s.source
                );
            }
        }
    }

    #[test]
    fn snapshot_offers_carry_the_date_of_their_recording_not_of_the_assembly() {
        let offers = snapshot_offers(&[]).unwrap();
        assert!(offers.iter().all(|o| o.source.from_snapshot));
        assert!(offers.iter().all(|o| o.source.observed_at < ASSEMBLED));
        let dated = |id: &str| find(&offers, id, "ewr").source.clone();
        // A 2021 libcloud recording of GET /v2/plans (author date of
        // apache/libcloud c69a7abd).
        let cpu = dated("vc2-1c-1gb");
        assert_eq!(cpu.source, "snapshot:vultr-libcloud-2021-09-01");
        assert_eq!(cpu.observed_at, 1_630_506_908);
        // gpuhunt's fixture, values as of dstackai/gpuhunt cf190683.
        let gpu = dated("vcg-a100-1c-6g-4vram");
        assert_eq!(gpu.source, "snapshot:vultr-gpuhunt-2024-12-20");
        assert_eq!(gpu.observed_at, 1_734_714_855);
        assert_eq!(
            find(&offers, "vbm-4c-32gb", "ewr").source.observed_at,
            1_630_506_908
        );
    }
}
