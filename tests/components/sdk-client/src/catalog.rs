// The AWS `instances.json` catalogue format (ec2instances.info), read as a
// stream: each instance type is parsed, counted and dropped, so memory stays
// flat however long the catalogue is. Plain serde, no wasm: the `runtime`
// benchmark includes this file to parse the same bytes natively.
//
// The record is the one `components/aws` reads (`CatalogType`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::Value;

/// One record of `instances.json` (only the fields a provider reads).
#[derive(Debug, Deserialize)]
#[allow(
    dead_code,
    reason = "parsed as a provider parses it; only the prices are summed here"
)]
pub struct CatalogType {
    /// e.g. `m5.large`.
    pub instance_type: String,
    /// vCPUs (number or string in the wild).
    #[serde(rename = "vCPU", default)]
    pub vcpu: Value,
    /// GiB.
    #[serde(default)]
    pub memory: Value,
    /// GPU count.
    #[serde(rename = "GPU", default)]
    pub gpu: Value,
    /// GPU model.
    #[serde(rename = "GPU_model", default)]
    pub gpu_model: Value,
    /// Total GPU memory.
    #[serde(rename = "GPU_memory", default)]
    pub gpu_memory: Value,
    /// Architectures.
    #[serde(default)]
    pub arch: Value,
    /// Instance storage.
    #[serde(default)]
    pub storage: Value,
    /// Prices per region.
    #[serde(default)]
    pub pricing: BTreeMap<String, RegionPricing>,
}

/// `pricing[<region>]`: only Linux is read.
#[derive(Debug, Deserialize)]
pub struct RegionPricing {
    /// Linux prices.
    #[serde(default)]
    pub linux: Option<LinuxPricing>,
}

/// `pricing[<region>].linux`.
#[derive(Debug, Deserialize)]
pub struct LinuxPricing {
    /// On-demand $/h.
    #[serde(default)]
    pub ondemand: Value,
}

/// What a pass over the catalogue found.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Instance types read.
    pub types: u64,
    /// (type, region) pairs with a positive Linux on-demand price.
    pub prices: u64,
    /// The lowest such price.
    pub cheapest: f64,
}

impl<'de> Deserialize<'de> for Summary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(SummaryVisitor)
    }
}

struct SummaryVisitor;

impl<'de> Visitor<'de> for SummaryVisitor {
    type Value = Summary;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of instance types")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Summary, A::Error> {
        let mut s = Summary {
            cheapest: f64::INFINITY,
            ..Summary::default()
        };
        while let Some(t) = seq.next_element::<CatalogType>()? {
            s.types += 1;
            for p in t.pricing.values() {
                let price = p.linux.as_ref().and_then(|l| match &l.ondemand {
                    Value::Number(n) => n.as_f64(),
                    Value::String(x) => x.parse().ok(),
                    _ => None,
                });
                if let Some(price) = price.filter(|p| *p > 0.0) {
                    s.prices += 1;
                    s.cheapest = s.cheapest.min(price);
                }
            }
        }
        Ok(s)
    }
}
