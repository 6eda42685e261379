//! Reading the ec2instances.info `instances.json` catalogue into offers, as
//! a stream.
//!
//! The live file is ~100 MB: one JSON array with an object per instance
//! type, holding its prices per region and operating system. The array is
//! cut into its elements as the bytes arrive ([`split`]); each instance type
//! is parsed from its own bytes into a small record of the fields offers need
//! (every other field, operating system and reserved price is skipped
//! without being built), and its offers are made before the next type is
//! read. No document tree is ever built: guest memory holds the offers plus
//! one instance type, whatever the size of the catalogue.
//!
//! Offers are the bulk of what is left. Each costs its WIT record and three
//! strings of its own (type, region, source: the canonical ABI gives every
//! string its own allocation), each made with its exact length.

mod record;
mod split;

use std::io::Read;

use provider_sdk::Error;
use provider_sdk::types::{Arch, Offer, PriceSource};

use record::TypeRecord;
use split::{SplitError, SplitOr, for_each_element};

/// The largest instance-type record accepted: the biggest real one (every
/// operating system and reserved term in 30 regions) is ~250 KB.
const MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

/// Where a catalogue's prices came from; the same for all its offers.
#[derive(Debug, Clone)]
pub struct Source {
    /// URL or `snapshot:<name>`.
    pub source: String,
    /// When the prices were published (or recorded), Unix seconds.
    pub observed_at: u64,
    /// True for the embedded snapshot.
    pub from_snapshot: bool,
}

/// The offers of the catalogue read from `reader`: one per instance type and
/// region with a positive Linux on-demand price, in `regions` (every region
/// when empty). `what` names the document in errors.
pub fn read_offers(
    reader: impl Read,
    regions: &[String],
    source: &Source,
    what: &str,
) -> Result<Vec<Offer>, Error> {
    let mut offers = Vec::new();
    let mut prices = Vec::new();
    let result = for_each_element(reader, MAX_RECORD_BYTES, |bytes| {
        let record = TypeRecord::parse(bytes, regions, &mut prices)?;
        add_offers(record, &mut prices, source, &mut offers);
        Ok::<(), serde_json::Error>(())
    });
    match result {
        Ok(()) => Ok(offers),
        Err(SplitOr::Split(SplitError::Io(e))) => {
            Err(Error::Transient(format!("reading {what} failed: {e}")))
        }
        Err(SplitOr::Split(e)) => Err(Error::Other(format!(
            "could not read {what}: {e}; the catalogue format may have changed"
        ))),
        Err(SplitOr::Element(e)) => Err(Error::Other(format!(
            "could not read an instance type of {what} ({e}); the catalogue format may have changed"
        ))),
    }
}

/// A price of one region of the record being read.
#[derive(Debug)]
struct RegionPrice {
    region: String,
    hourly: f64,
    spot: Option<f64>,
}

/// Appends the offers of one instance type (its prices are drained).
fn add_offers(
    record: TypeRecord<'_>,
    prices: &mut Vec<RegionPrice>,
    source: &Source,
    out: &mut Vec<Offer>,
) {
    let (Some(vcpus), Some(memory)) = (record.vcpus, record.memory) else {
        prices.clear();
        return;
    };
    let gpus = record.gpus.filter(|g| *g > 0.0).unwrap_or(0.0);
    let gpu_model = record
        .gpu_model
        .filter(|m| gpus > 0.0 && !m.trim().is_empty())
        .map(|m| m.into_owned());
    // ec2instances.info's `GPU_memory` is the instance's total (p4d: 320 for
    // 8 x A100 40GB). Per GPU is the total over the count; a slice of one GPU
    // (g6f: 0.125 of an L4, 3 GB) gets the memory of its slice.
    let gpu_memory = record
        .gpu_memory
        .filter(|m| *m > 0.0 && gpus > 0.0)
        .map(|total| (total / gpus.max(1.0)) as f32);
    let family = record.instance_type.split('.').next().unwrap_or("");
    let shared_cpu = is_burstable(family);
    let confidential = is_confidential(family);
    let instance_type: &str = &record.instance_type;
    out.reserve(prices.len());
    for price in prices.drain(..) {
        out.push(Offer {
            instance_type: instance_type.to_owned(),
            region: price.region,
            zone: None,
            vcpus: vcpus as f32,
            memory_gib: memory as f32,
            storage_gib: record.storage_gib,
            gpus: gpus as f32,
            gpu_model: gpu_model.clone(),
            gpu_memory_gib: gpu_memory,
            arch: record.arch,
            hourly_usd: price.hourly,
            spot_hourly_usd: price.spot,
            shared_cpu,
            confidential,
            promotional: false,
            source: PriceSource {
                source: source.source.clone(),
                observed_at: source.observed_at,
                from_snapshot: source.from_snapshot,
            },
        });
    }
}

/// Burstable (shared-core) families: t1, t2, t3, t3a, t4g.
fn is_burstable(family: &str) -> bool {
    family.starts_with('t') && family[1..].starts_with(|c: char| c.is_ascii_digit())
}

/// Families with AMD SEV-SNP (AWS: M6a, C6a, R6a).
fn is_confidential(family: &str) -> bool {
    matches!(family, "m6a" | "c6a" | "r6a")
}

/// The architecture an `arch` list names: ARM when it lists `arm64`.
fn arch_of(names: &[&str]) -> Arch {
    if names.contains(&"arm64") {
        Arch::Arm64
    } else {
        Arch::X8664
    }
}

#[cfg(test)]
mod tests;
