//! The binary form of a stored catalogue: fixed-size little-endian records
//! that are read in place, never parsed.
//!
//! A catalogue is one *shapes* blob and one *rows* blob per region:
//! - shapes blob: `u32` string count, then per string `u32` length and its
//!   UTF-8 bytes (instance types, GPU models, zones; id 0 is the empty
//!   string), then `u32` shape count and [`SHAPE_BYTES`]-byte shapes: the
//!   machine of an offer, shared by every region it is sold in;
//! - rows blob: [`ROW_BYTES`]-byte rows, one per offer of the region: shape,
//!   zone, provenance (an index into the catalogue's sources) and prices.
//!
//! Absent values are NaN (storage, GPU memory, spot) or id 0 (GPU model,
//! zone). [`FORMAT`] is stored with the catalogue; another value means the
//! blobs were written by another `bpr` and are not read.

use crate::placement::{Arch, Offer};

/// The version of this encoding.
pub const FORMAT: i64 = 1;
/// Bytes per shape.
pub const SHAPE_BYTES: usize = 32;
/// Bytes per row.
pub const ROW_BYTES: usize = 28;

const ARM64: u8 = 1;
const SHARED_CPU: u8 = 1 << 1;
const CONFIDENTIAL: u8 = 1 << 2;
const PROMOTIONAL: u8 = 1 << 3;
const FRACTIONAL_GPU: u8 = 1 << 4;
const OPERATOR_OWNED: u8 = 1 << 5;

/// A stored blob that does not decode (truncated, or ids out of range).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("stored price catalogue is damaged: {0}")]
pub struct Damaged(pub &'static str);

/// The machine of an offer: everything but where it runs and its price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// String id of the instance type.
    pub instance_type: u32,
    /// String id of the GPU model; 0 for none.
    pub gpu_model: u32,
    /// Virtual CPUs.
    pub vcpus: f32,
    /// Memory in GiB.
    pub memory_gib: f32,
    /// Fixed disk in GiB; NaN when the disk is sized at creation.
    pub storage_gib: f32,
    /// GPU count.
    pub gpus: f32,
    /// Memory per GPU in GiB; NaN when unknown.
    pub gpu_memory_gib: f32,
    flags: u8,
}

impl Shape {
    /// CPU architecture.
    pub fn arch(&self) -> Arch {
        if self.flags & ARM64 != 0 {
            Arch::Arm64
        } else {
            Arch::X86_64
        }
    }
    /// Burstable or shared-core vCPUs.
    pub fn shared_cpu(&self) -> bool {
        self.flags & SHARED_CPU != 0
    }
    /// Confidential computing.
    pub fn confidential(&self) -> bool {
        self.flags & CONFIDENTIAL != 0
    }
    /// Promotional SKU.
    pub fn promotional(&self) -> bool {
        self.flags & PROMOTIONAL != 0
    }
    /// A slice of a GPU.
    pub fn fractional_gpu(&self) -> bool {
        self.flags & FRACTIONAL_GPU != 0
    }
    /// One of the operator's own machines.
    pub fn operator_owned(&self) -> bool {
        self.flags & OPERATOR_OWNED != 0
    }
    /// Fixed disk in GiB, when the type has one.
    pub fn storage(&self) -> Option<f32> {
        some_unless_nan(self.storage_gib)
    }
    /// Memory per GPU in GiB, when known.
    pub fn gpu_memory(&self) -> Option<f32> {
        some_unless_nan(self.gpu_memory_gib)
    }
}

/// One offer of a region: which shape, where, from which source, at what price.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// Index of the shape.
    pub shape: u32,
    /// String id of the zone; 0 for none.
    pub zone: u32,
    /// Index into the catalogue's sources.
    pub provenance: u16,
    /// On-demand USD per hour, list price.
    pub hourly_usd: f64,
    /// NaN when the offer has no spot price.
    pub spot_usd: f64,
}

impl Row {
    /// Spot USD per hour, list price, when there is one.
    pub fn spot(&self) -> Option<f64> {
        (!self.spot_usd.is_nan()).then_some(self.spot_usd)
    }
}

fn some_unless_nan(v: f32) -> Option<f32> {
    (!v.is_nan()).then_some(v)
}

/// The shape of `offer` (strings interned with `intern`).
pub fn shape_of(offer: &Offer, mut intern: impl FnMut(&str) -> u32) -> Shape {
    let mut flags = 0;
    for (on, flag) in [
        (offer.arch == Arch::Arm64, ARM64),
        (offer.shared_cpu, SHARED_CPU),
        (offer.confidential, CONFIDENTIAL),
        (offer.promotional, PROMOTIONAL),
        (offer.fractional_gpu, FRACTIONAL_GPU),
        (offer.operator_owned, OPERATOR_OWNED),
    ] {
        if on {
            flags |= flag;
        }
    }
    Shape {
        instance_type: intern(&offer.instance_type),
        gpu_model: offer.gpu_model.as_deref().map_or(0, &mut intern),
        vcpus: offer.vcpus,
        memory_gib: offer.memory_gib,
        storage_gib: offer.storage_gib.unwrap_or(f32::NAN),
        gpus: offer.gpus,
        gpu_memory_gib: offer.gpu_memory_gib.unwrap_or(f32::NAN),
        flags,
    }
}

/// The shape as the key of a map (floats by their bits).
pub fn shape_key(shape: &Shape) -> [u32; 8] {
    [
        shape.instance_type,
        shape.gpu_model,
        shape.vcpus.to_bits(),
        shape.memory_gib.to_bits(),
        shape.storage_gib.to_bits(),
        shape.gpus.to_bits(),
        shape.gpu_memory_gib.to_bits(),
        u32::from(shape.flags),
    ]
}

/// Encodes the strings and shapes blob.
pub fn encode_shapes(strings: &[String], shapes: &[Shape]) -> Vec<u8> {
    let text: usize = strings.iter().map(|s| s.len() + 4).sum();
    let mut out = Vec::with_capacity(8 + text + shapes.len() * SHAPE_BYTES);
    out.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    for s in strings {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&(shapes.len() as u32).to_le_bytes());
    for s in shapes {
        for word in [s.instance_type, s.gpu_model] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        for v in [
            s.vcpus,
            s.memory_gib,
            s.storage_gib,
            s.gpus,
            s.gpu_memory_gib,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&[s.flags, 0, 0, 0]);
    }
    out
}

/// Appends one row.
pub fn encode_row(out: &mut Vec<u8>, row: &Row) {
    out.extend_from_slice(&row.shape.to_le_bytes());
    out.extend_from_slice(&row.zone.to_le_bytes());
    out.extend_from_slice(&row.provenance.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&row.hourly_usd.to_le_bytes());
    out.extend_from_slice(&row.spot_usd.to_le_bytes());
}

/// The strings of a shapes blob, as one text and the range of each.
#[derive(Debug, Clone, Default)]
pub struct Strings {
    text: String,
    ranges: Vec<(u32, u32)>,
}

impl Strings {
    /// String `id`; ids were checked when decoding.
    pub fn get(&self, id: u32) -> &str {
        let (start, end) = self.ranges[id as usize];
        &self.text[start as usize..end as usize]
    }

    /// Number of strings.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }
}

/// Decodes a shapes blob; every string id in it is checked.
pub fn decode_shapes(blob: &[u8]) -> Result<(Strings, Vec<Shape>), Damaged> {
    let mut at = 0usize;
    let count = read_u32(blob, &mut at)? as usize;
    // Each string takes at least 4 bytes: a count past that is damage, and
    // checking it first bounds the allocation.
    if count > blob.len() / 4 {
        return Err(Damaged("string count"));
    }
    let mut text = String::new();
    let mut ranges = Vec::with_capacity(count);
    for _ in 0..count {
        let len = read_u32(blob, &mut at)? as usize;
        let bytes = blob
            .get(at..at.checked_add(len).ok_or(Damaged("string length"))?)
            .ok_or(Damaged("string bytes"))?;
        let s = std::str::from_utf8(bytes).map_err(|_| Damaged("string encoding"))?;
        let start = text.len() as u32;
        text.push_str(s);
        ranges.push((start, text.len() as u32));
        at += len;
    }
    let strings = Strings { text, ranges };
    let count = read_u32(blob, &mut at)? as usize;
    let body = blob.get(at..).ok_or(Damaged("shapes"))?;
    if body.len()
        != count
            .checked_mul(SHAPE_BYTES)
            .ok_or(Damaged("shape count"))?
    {
        return Err(Damaged("shape table length"));
    }
    let shapes: Vec<Shape> = body
        .chunks_exact(SHAPE_BYTES)
        .map(|c| Shape {
            instance_type: u32_at(c, 0),
            gpu_model: u32_at(c, 4),
            vcpus: f32_at(c, 8),
            memory_gib: f32_at(c, 12),
            storage_gib: f32_at(c, 16),
            gpus: f32_at(c, 20),
            gpu_memory_gib: f32_at(c, 24),
            flags: c[28],
        })
        .collect();
    let n = strings.len() as u32;
    if shapes
        .iter()
        .any(|s| s.instance_type >= n || s.gpu_model >= n)
    {
        return Err(Damaged("string id in a shape"));
    }
    Ok((strings, shapes))
}

/// Checks a rows blob against the shape, string and source counts.
pub fn check_rows(
    blob: &[u8],
    shapes: usize,
    strings: usize,
    sources: usize,
) -> Result<(), Damaged> {
    if !blob.len().is_multiple_of(ROW_BYTES) {
        return Err(Damaged("rows length"));
    }
    let bad = rows(blob).any(|r| {
        r.shape as usize >= shapes || r.zone as usize >= strings || r.provenance as usize >= sources
    });
    if bad {
        return Err(Damaged("id in a row"));
    }
    Ok(())
}

/// The rows of a rows blob (checked with [`check_rows`] when read).
pub fn rows(blob: &[u8]) -> impl Iterator<Item = Row> + '_ {
    blob.chunks_exact(ROW_BYTES).map(|c| Row {
        shape: u32_at(c, 0),
        zone: u32_at(c, 4),
        provenance: u16::from_le_bytes([c[8], c[9]]),
        hourly_usd: f64_at(c, 12),
        spot_usd: f64_at(c, 20),
    })
}

fn read_u32(blob: &[u8], at: &mut usize) -> Result<u32, Damaged> {
    let bytes = blob.get(*at..*at + 4).ok_or(Damaged("truncated"))?;
    *at += 4;
    Ok(u32_at(bytes, 0))
}

fn u32_at(c: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([c[at], c[at + 1], c[at + 2], c[at + 3]])
}

fn f32_at(c: &[u8], at: usize) -> f32 {
    f32::from_bits(u32_at(c, at))
}

fn f64_at(c: &[u8], at: usize) -> f64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&c[at..at + 8]);
    f64::from_le_bytes(b)
}
