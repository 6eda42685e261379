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
//! Offers are the bulk of what is left, and the canonical ABI decides their
//! cost: the WIT list being returned is built while the Rust one is alive
//! (128 bytes each per offer on wasm32), and every string of every offer is
//! an allocation of its own (type, region, source). So while reading, an
//! offer is a 24-byte row pointing at its machine and region, kept in
//! fixed-size chunks; only once the count is known are the offers built, into
//! a vector of exactly that size, each chunk freed as soon as it is used.
//! No vector of offers is ever grown and copied, which would leave holes of
//! freed copies behind in linear memory (it never shrinks).

mod record;
mod split;

use std::collections::HashMap;
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
    let mut table = Table::default();
    let mut prices = Vec::new();
    let result = for_each_element(reader, MAX_RECORD_BYTES, |bytes| {
        let record = TypeRecord::parse(bytes, regions, &mut table.regions, &mut prices)?;
        table.add(record, &mut prices);
        Ok::<(), serde_json::Error>(())
    });
    match result {
        Ok(()) => Ok(table.into_offers(source)),
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
    region: u16,
    hourly: f64,
    spot: Option<f64>,
}

/// Region names, each stored once; offers name them by id while reading.
#[derive(Debug, Default)]
pub struct Regions {
    names: Vec<String>,
    ids: HashMap<String, u16>,
}

impl Regions {
    /// The id of `name`; `None` past 65,536 distinct names.
    fn id(&mut self, name: &str) -> Option<u16> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = u16::try_from(self.names.len()).ok()?;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        Some(id)
    }
}

/// What offers of one instance type share.
#[derive(Debug)]
struct Machine {
    instance_type: String,
    vcpus: f32,
    memory_gib: f32,
    storage_gib: Option<f32>,
    gpus: f32,
    gpu_model: Option<String>,
    gpu_memory_gib: Option<f32>,
    arch: Arch,
    shared_cpu: bool,
    confidential: bool,
}

/// One offer while reading: 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Row {
    machine: u32,
    region: u16,
    hourly: f64,
    /// NaN when there is no spot price.
    spot: f64,
}

/// Rows per chunk: a chunk is allocated once, at this size, and never grows.
const CHUNK_ROWS: usize = 4096;

/// The catalogue read so far.
#[derive(Debug, Default)]
struct Table {
    machines: Vec<Machine>,
    regions: Regions,
    chunks: Vec<Vec<Row>>,
    rows: usize,
}

impl Table {
    /// Adds the offers of one instance type (its prices are drained).
    fn add(&mut self, record: TypeRecord<'_>, prices: &mut Vec<RegionPrice>) {
        let (Some(vcpus), Some(memory)) = (record.vcpus, record.memory) else {
            prices.clear();
            return;
        };
        if prices.is_empty() {
            return;
        }
        let gpus = record.gpus.filter(|g| *g > 0.0).unwrap_or(0.0);
        // ec2instances.info's `GPU_memory` is the instance's total (p4d: 320
        // for 8 x A100 40GB). Per GPU is the total over the count; a slice of
        // one GPU (g6f: 0.125 of an L4, 3 GB) gets the memory of its slice.
        let gpu_memory = record
            .gpu_memory
            .filter(|m| *m > 0.0 && gpus > 0.0)
            .map(|total| (total / gpus.max(1.0)) as f32);
        let family = record.instance_type.split('.').next().unwrap_or("");
        let machine = self.machines.len() as u32;
        self.machines.push(Machine {
            shared_cpu: is_burstable(family),
            confidential: is_confidential(family),
            instance_type: record.instance_type.into_owned(),
            vcpus: vcpus as f32,
            memory_gib: memory as f32,
            storage_gib: record.storage_gib,
            gpus: gpus as f32,
            gpu_model: record
                .gpu_model
                .filter(|m| gpus > 0.0 && !m.trim().is_empty())
                .map(|m| m.into_owned()),
            gpu_memory_gib: gpu_memory,
            arch: record.arch,
        });
        for price in prices.drain(..) {
            if self.chunks.last().is_none_or(|c| c.len() == CHUNK_ROWS) {
                self.chunks.push(Vec::with_capacity(CHUNK_ROWS));
            }
            if let Some(chunk) = self.chunks.last_mut() {
                chunk.push(Row {
                    machine,
                    region: price.region,
                    hourly: price.hourly,
                    spot: price.spot.unwrap_or(f64::NAN),
                });
            }
            self.rows += 1;
        }
    }

    /// The offers, in catalogue order, in a vector of exactly their number.
    fn into_offers(self, source: &Source) -> Vec<Offer> {
        let mut out = Vec::with_capacity(self.rows);
        for chunk in self.chunks {
            for row in &chunk {
                let m = &self.machines[row.machine as usize];
                out.push(Offer {
                    instance_type: m.instance_type.clone(),
                    region: self.regions.names[usize::from(row.region)].clone(),
                    zone: None,
                    vcpus: m.vcpus,
                    memory_gib: m.memory_gib,
                    storage_gib: m.storage_gib,
                    gpus: m.gpus,
                    gpu_model: m.gpu_model.clone(),
                    gpu_memory_gib: m.gpu_memory_gib,
                    arch: m.arch,
                    hourly_usd: row.hourly,
                    spot_hourly_usd: (!row.spot.is_nan()).then_some(row.spot),
                    shared_cpu: m.shared_cpu,
                    confidential: m.confidential,
                    promotional: false,
                    source: PriceSource {
                        source: source.source.clone(),
                        observed_at: source.observed_at,
                        from_snapshot: source.from_snapshot,
                    },
                });
            }
            // The chunk is freed here; the strings of the next offers reuse it.
        }
        out
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
