//! Offers from the ec2instances.info / instances.vantage.sh `instances.json`
//! catalogue, with an embedded dated snapshot as fallback.

use std::collections::BTreeMap;

use provider_sdk::http::Request;
use provider_sdk::types::{Arch, Offer, OfferQuery, PriceSource};
use provider_sdk::{Error, json, log, settings, time};
use serde::Deserialize;
use serde_json::Value;

/// Default catalogue URL (keyless, public).
pub const DEFAULT_CATALOG_URL: &str = "https://instances.vantage.sh/instances.json";

/// The embedded snapshot (see `snapshot/README.md`).
const SNAPSHOT: &str = include_str!("../snapshot/instances.snapshot.json");
/// `price-source.source` of snapshot offers.
pub const SNAPSHOT_SOURCE: &str = "snapshot:aws-instances-2023-08-06";
/// Snapshot date, 2023-08-06T00:00:00Z.
pub const SNAPSHOT_OBSERVED_AT: u64 = 1_691_280_000;

/// The live catalogue is ~100 MB; it is parsed as a stream, never held whole.
const MAX_CATALOG_BYTES: usize = 512 * 1024 * 1024;

/// One record of `instances.json` (only the fields we use; others are skipped).
#[derive(Debug, Deserialize)]
pub struct CatalogType {
    instance_type: String,
    #[serde(rename = "vCPU", default)]
    vcpu: Value,
    #[serde(default)]
    memory: Value,
    #[serde(rename = "GPU", default)]
    gpu: Value,
    #[serde(rename = "GPU_model", default)]
    gpu_model: Value,
    #[serde(rename = "GPU_memory", default)]
    gpu_memory: Value,
    #[serde(default)]
    arch: Value,
    #[serde(default)]
    storage: Value,
    #[serde(default)]
    pricing: BTreeMap<String, RegionPricing>,
}

/// `pricing[<region>]`: only Linux is read.
#[derive(Debug, Deserialize)]
pub struct RegionPricing {
    #[serde(default)]
    linux: Option<LinuxPricing>,
}

/// `pricing[<region>].linux`.
#[derive(Debug, Deserialize)]
pub struct LinuxPricing {
    #[serde(default)]
    ondemand: Value,
    #[serde(default)]
    spot_avg: Value,
    #[serde(default)]
    spot_min: Value,
    #[serde(default)]
    spot_max: Value,
}

/// A number given as a JSON number or a numeric string.
fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

/// Where offers came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// URL or `snapshot:<name>`.
    pub source: String,
    /// When it was published or recorded.
    pub observed_at: u64,
    /// True for the embedded snapshot.
    pub from_snapshot: bool,
}

/// `compute.list-offers`: the live catalogue, or the snapshot when it cannot be read.
pub fn list_offers(query: &OfferQuery) -> Result<Vec<Offer>, Error> {
    let regions = wanted_regions(query);
    let url = settings::get_or("catalog_url", DEFAULT_CATALOG_URL);
    match fetch_live(&url) {
        Ok((types, observed_at)) => {
            let src = Source {
                source: url,
                observed_at,
                from_snapshot: false,
            };
            Ok(to_offers(&types, &regions, &src))
        }
        Err(e) => {
            log::log(
                log::Level::Warn,
                "live AWS catalogue unreadable; using the embedded snapshot",
                &[
                    ("url", provider_sdk::http::redact(&url)),
                    ("reason", provider_sdk::errors::message(&e)),
                ],
            );
            let types = snapshot_types()?;
            let src = Source {
                source: SNAPSHOT_SOURCE.to_string(),
                observed_at: SNAPSHOT_OBSERVED_AT,
                from_snapshot: true,
            };
            Ok(to_offers(&types, &regions, &src))
        }
    }
}

/// The regions asked for: the query's, else the `regions` setting, else all
/// (empty = no filter).
fn wanted_regions(query: &OfferQuery) -> Vec<String> {
    if !query.regions.is_empty() {
        query.regions.clone()
    } else {
        settings::list("regions")
    }
}

fn fetch_live(url: &str) -> Result<(Vec<CatalogType>, u64), Error> {
    let resp = Request::get(url)
        .header("accept", "application/json")
        .max_response_bytes(MAX_CATALOG_BYTES)
        .send_streaming()?;
    if !resp.is_success() {
        return Err(provider_sdk::errors::from_status(
            resp.status,
            &resp.headers,
            "",
            "reading the AWS instance catalogue",
        ));
    }
    let observed_at = resp
        .header("last-modified")
        .and_then(time::parse_http_date)
        .unwrap_or_else(time::now_unix);
    let types: Vec<CatalogType> = json::parse_reader(resp.body, "the AWS instance catalogue")?;
    Ok((types, observed_at))
}

/// The embedded snapshot, parsed.
pub fn snapshot_types() -> Result<Vec<CatalogType>, Error> {
    json::parse(SNAPSHOT.as_bytes(), "the embedded AWS catalogue snapshot")
}

/// One offer per (type, region) with a positive Linux on-demand price, in
/// `regions` (all when empty).
pub fn to_offers(types: &[CatalogType], regions: &[String], src: &Source) -> Vec<Offer> {
    let mut out = Vec::new();
    for t in types {
        let (Some(vcpus), Some(memory)) = (num(&t.vcpu), num(&t.memory)) else {
            continue;
        };
        let gpus = num(&t.gpu).unwrap_or(0.0);
        let gpu_model = match &t.gpu_model {
            Value::String(s) if gpus > 0.0 && !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let gpu_memory = num(&t.gpu_memory).filter(|m| *m > 0.0 && gpus > 0.0);
        let arch = match &t.arch {
            Value::Array(a) if a.iter().any(|v| v.as_str() == Some("arm64")) => Arch::Arm64,
            Value::String(s) if s == "arm64" => Arch::Arm64,
            _ => Arch::X8664,
        };
        let storage = storage_gib(&t.storage);
        let family = t.instance_type.split('.').next().unwrap_or("");
        for (region, p) in &t.pricing {
            if !regions.is_empty() && !regions.iter().any(|r| r == region) {
                continue;
            }
            let Some(linux) = &p.linux else { continue };
            let Some(hourly) = num(&linux.ondemand).filter(|p| *p > 0.0) else {
                continue;
            };
            let spot = num(&linux.spot_avg)
                .or_else(|| num(&linux.spot_max))
                .or_else(|| num(&linux.spot_min))
                .filter(|p| *p > 0.0);
            out.push(Offer {
                instance_type: t.instance_type.clone(),
                region: region.clone(),
                zone: None,
                vcpus: vcpus as f32,
                memory_gib: memory as f32,
                storage_gib: storage,
                gpus: gpus as f32,
                gpu_model: gpu_model.clone(),
                gpu_memory_gib: gpu_memory.map(|m| m as f32),
                arch,
                hourly_usd: hourly,
                spot_hourly_usd: spot,
                shared_cpu: is_burstable(family),
                confidential: is_confidential(family),
                promotional: false,
                source: PriceSource {
                    source: src.source.clone(),
                    observed_at: src.observed_at,
                    from_snapshot: src.from_snapshot,
                },
            });
        }
    }
    out
}

/// Instance-store size in GiB from the catalogue's `storage {devices, size}`
/// (size per device in GB).
fn storage_gib(v: &Value) -> Option<f32> {
    let size = num(v.get("size")?)?;
    let devices = v.get("devices").and_then(num).unwrap_or(1.0);
    let gib = size * devices * 1e9 / (1u64 << 30) as f64;
    (gib > 0.0).then_some(gib as f32)
}

/// Burstable (shared-core) families: t1, t2, t3, t3a, t4g.
fn is_burstable(family: &str) -> bool {
    family.starts_with('t') && family[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// Families with AMD SEV-SNP (AWS: M6a, C6a, R6a).
fn is_confidential(family: &str) -> bool {
    matches!(family, "m6a" | "c6a" | "r6a")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_parses_and_t3_medium_has_no_us_east_1() {
        let types = snapshot_types().expect("snapshot parses");
        let src = Source {
            source: SNAPSHOT_SOURCE.into(),
            observed_at: SNAPSHOT_OBSERVED_AT,
            from_snapshot: true,
        };
        let offers = to_offers(&types, &["us-east-1".to_string()], &src);
        assert!(offers.iter().all(|o| o.region == "us-east-1"));
        assert!(!offers.iter().any(|o| o.instance_type == "t3.medium"));
        assert!(
            offers
                .iter()
                .any(|o| o.instance_type == "m5.large" && o.hourly_usd == 0.102)
        );
    }
}
