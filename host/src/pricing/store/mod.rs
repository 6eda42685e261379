//! The price store: each provider's last good catalogue, normalised, in the
//! embedded database, laid out so that a plan reads only what it needs.
//!
//! Per provider, one `price_catalogue` row holds what is said once per
//! catalogue: when it was fetched, where its prices came from and when they
//! were published (its *sources*), how many offers were listed and kept, what
//! normalisation dropped, and the *shapes* blob: every distinct machine
//! (instance type, hardware, marks) once, with the catalogue's strings. Then
//! one `price_rows` row per region holds that region's offers as fixed-size
//! records (shape, zone, source, prices), read in place (see [`format`]).
//!
//! A plan for one region reads the catalogue row and that region's rows; no
//! JSON is parsed and no offer is built unless it can be a candidate. Writing
//! replaces a provider's catalogue in one transaction.

mod format;

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::db::{Database, Result, params};
use crate::placement::Offer;
use format::{Damaged, FORMAT, Row, Shape, Strings};

/// Where a catalogue's prices came from; stored once per catalogue, not per
/// offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// URL or `snapshot:<name>`.
    pub source: String,
    /// When the prices were published (or recorded), Unix seconds.
    pub observed_at: u64,
    /// True for a component's embedded snapshot.
    pub from_snapshot: bool,
}

/// What normalisation dropped from a catalogue when it was fetched: the
/// count, and the first [`MAX_DROPS_KEPT`] as text for the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drops {
    /// Offers dropped.
    pub count: usize,
    /// `(offer, reason)`, the first ones.
    pub first: Vec<(String, String)>,
}

/// How many dropped offers are kept with their reasons.
pub const MAX_DROPS_KEPT: usize = 200;

impl Drops {
    /// Records one more dropped offer.
    pub fn push(&mut self, offer: String, reason: String) {
        self.count += 1;
        if self.first.len() < MAX_DROPS_KEPT {
            self.first.push((offer, reason));
        }
    }
}

/// What is said once about a stored catalogue (no offers).
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogueMeta {
    /// When it was fetched, Unix seconds.
    pub fetched_at: u64,
    /// Where its prices came from; rows refer to these by index.
    pub sources: Vec<Provenance>,
    /// Offers the provider listed.
    pub listed: usize,
    /// Offers kept by normalisation (stored).
    pub offers: usize,
    /// What normalisation dropped.
    pub drops: Drops,
    /// The sanity bounds normalisation ran with (to notice when they change).
    pub normalized_with: String,
}

impl CatalogueMeta {
    /// The oldest publication date of its prices.
    pub fn observed_at(&self) -> Option<u64> {
        self.sources.iter().map(|s| s.observed_at).min()
    }

    /// True when every offer comes from a component's embedded snapshot.
    pub fn from_snapshot(&self) -> bool {
        !self.sources.is_empty() && self.sources.iter().all(|s| s.from_snapshot)
    }
}

/// A catalogue in its stored form, built from normalised offers one at a
/// time (see [`Encoder`]).
#[derive(Debug, Clone)]
pub struct Encoded {
    sources: Vec<Provenance>,
    shapes: Vec<u8>,
    /// Region -> (offers, rows blob), sorted by region.
    regions: BTreeMap<String, (usize, Vec<u8>)>,
    offers: usize,
}

impl Encoded {
    /// Offers encoded.
    pub fn offers(&self) -> usize {
        self.offers
    }

    /// Where the prices came from.
    pub fn sources(&self) -> &[Provenance] {
        &self.sources
    }

    /// The catalogue as if read back from the store, every region.
    pub fn into_loaded(self, provider: &str, meta: CatalogueMeta) -> Option<Loaded> {
        let all_regions = self.regions.keys().cloned().collect();
        let segments = self
            .regions
            .into_iter()
            .map(|(region, (_, rows))| (region, rows))
            .collect();
        Loaded::decode(provider, meta, &self.shapes, segments, all_regions)
    }
}

/// Builds an [`Encoded`] catalogue.
#[derive(Debug, Default)]
pub struct Encoder {
    strings: Vec<String>,
    string_ids: HashMap<String, u32, Fx>,
    shapes: Vec<Shape>,
    shape_ids: HashMap<[u32; 8], u32, Fx>,
    sources: Vec<Provenance>,
    regions: BTreeMap<String, (usize, Vec<u8>)>,
    offers: usize,
}

impl Encoder {
    /// An empty catalogue.
    pub fn new() -> Self {
        let mut e = Encoder::default();
        e.intern(""); // id 0: no GPU model, no zone
        e
    }

    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.string_ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.to_owned());
        self.string_ids.insert(s.to_owned(), id);
        id
    }

    /// Adds one normalised offer (at its list price). Its provider is the
    /// catalogue's and is not stored.
    pub fn push(&mut self, offer: &Offer) {
        let shape = format::shape_of(offer, |s| self.intern(s));
        let zone = offer.zone.as_deref().map_or(0, |z| self.intern(z));
        let key = format::shape_key(&shape);
        let next = self.shapes.len() as u32;
        let shape_id = *self.shape_ids.entry(key).or_insert_with(|| {
            self.shapes.push(shape);
            next
        });
        // A catalogue has one source or a few: compare, do not allocate.
        let same = |p: &Provenance| {
            p.source == offer.source
                && p.observed_at == offer.observed_at
                && p.from_snapshot == offer.from_snapshot
        };
        let provenance_id = match self.sources.iter().rposition(same) {
            Some(i) => i,
            None => {
                self.sources.push(Provenance {
                    source: offer.source.clone(),
                    observed_at: offer.observed_at,
                    from_snapshot: offer.from_snapshot,
                });
                self.sources.len() - 1
            }
        };
        let (count, rows) = match self.regions.get_mut(offer.region.as_str()) {
            Some(r) => r,
            None => self
                .regions
                .entry(offer.region.clone())
                .or_insert_with(|| (0, Vec::new())),
        };
        *count += 1;
        format::encode_row(
            rows,
            &Row {
                shape: shape_id,
                zone,
                // More than 65,535 distinct sources in one catalogue is not a
                // catalogue; they share the last id.
                provenance: provenance_id.min(u16::MAX as usize) as u16,
                hourly_usd: offer.hourly_usd,
                spot_usd: offer.spot_hourly_usd.unwrap_or(f64::NAN),
            },
        );
        self.offers += 1;
    }

    /// The finished catalogue.
    pub fn finish(self) -> Encoded {
        Encoded {
            shapes: format::encode_shapes(&self.strings, &self.shapes),
            sources: self.sources,
            regions: self.regions,
            offers: self.offers,
        }
    }
}

/// FxHash (rustc's): interning a quarter million short strings and shape
/// keys is hashing-bound, and SipHash's flooding resistance buys nothing
/// for keys the host builds from one catalogue.
#[derive(Debug, Default, Clone, Copy)]
struct Fx;

impl std::hash::BuildHasher for Fx {
    type Hasher = FxHasher;
    fn build_hasher(&self) -> FxHasher {
        FxHasher(0)
    }
}

struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.add(u64::from(v));
    }
    fn write_usize(&mut self, v: usize) {
        self.add(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A catalogue read for a plan: its meta, its machines, and the rows of the
/// regions read.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Provider.
    pub provider: String,
    /// What is said once about it.
    pub meta: CatalogueMeta,
    /// True when every region was read.
    pub complete: bool,
    /// Every region of the stored catalogue, read or not (sorted).
    pub all_regions: Vec<String>,
    strings: Strings,
    shapes: Vec<Shape>,
    /// (region, rows blob), rows checked.
    segments: Vec<(String, Vec<u8>)>,
}

/// One row of a [`Loaded`] catalogue.
#[derive(Debug, Clone, Copy)]
pub struct RowRef {
    /// Index of the region (segment).
    pub segment: u32,
    /// The row.
    pub row: Row,
}

impl Loaded {
    fn decode(
        provider: &str,
        meta: CatalogueMeta,
        shapes_blob: &[u8],
        segments: Vec<(String, Vec<u8>)>,
        all_regions: Vec<String>,
    ) -> Option<Loaded> {
        let complete = segments.len() == all_regions.len();
        let checked = (|| -> Result<_, Damaged> {
            let (strings, shapes) = format::decode_shapes(shapes_blob)?;
            for (_, rows) in &segments {
                format::check_rows(rows, shapes.len(), strings.len(), meta.sources.len())?;
            }
            Ok((strings, shapes))
        })();
        match checked {
            Ok((strings, shapes)) => Some(Loaded {
                provider: provider.to_string(),
                meta,
                complete,
                all_regions,
                strings,
                shapes,
                segments,
            }),
            Err(e) => {
                tracing::warn!(provider, "{e}; it is fetched again");
                None
            }
        }
    }

    /// The machines, indexed by [`Row::shape`].
    pub fn shapes(&self) -> &[Shape] {
        &self.shapes
    }

    /// String `id` of the catalogue.
    pub fn string(&self, id: u32) -> &str {
        self.strings.get(id)
    }

    /// The regions read.
    pub fn regions(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().map(|(r, _)| r.as_str())
    }

    /// Every row of the regions read, in storage order.
    pub fn rows(&self) -> impl Iterator<Item = RowRef> + '_ {
        self.segments
            .iter()
            .enumerate()
            .flat_map(move |(segment, (_, blob))| {
                format::rows(blob).map(move |row| RowRef {
                    segment: segment as u32,
                    row,
                })
            })
    }

    /// The region of segment `segment`.
    pub fn region(&self, segment: u32) -> &str {
        &self.segments[segment as usize].0
    }

    /// The offer of `r`, at its list price.
    pub fn offer(&self, r: &RowRef) -> Offer {
        let shape = &self.shapes[r.row.shape as usize];
        let source = &self.meta.sources[r.row.provenance as usize];
        Offer {
            provider: self.provider.clone(),
            instance_type: self.string(shape.instance_type).to_owned(),
            region: self.region(r.segment).to_owned(),
            zone: (r.row.zone != 0).then(|| self.string(r.row.zone).to_owned()),
            vcpus: shape.vcpus,
            memory_gib: shape.memory_gib,
            storage_gib: shape.storage(),
            gpus: shape.gpus,
            gpu_model: (shape.gpu_model != 0).then(|| self.string(shape.gpu_model).to_owned()),
            gpu_memory_gib: shape.gpu_memory(),
            arch: shape.arch(),
            hourly_usd: r.row.hourly_usd,
            spot_hourly_usd: r.row.spot(),
            shared_cpu: shape.shared_cpu(),
            confidential: shape.confidential(),
            promotional: shape.promotional(),
            fractional_gpu: shape.fractional_gpu(),
            operator_owned: shape.operator_owned(),
            source: source.source.clone(),
            observed_at: source.observed_at,
            from_snapshot: source.from_snapshot,
        }
    }
}

/// Reads and writes stored catalogues.
#[derive(Debug, Clone)]
pub struct CatalogueStore {
    db: Database,
}

impl CatalogueStore {
    /// A store over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// What is said once about the stored catalogue of `provider` (reads no
    /// offers). A catalogue written in another format is absent.
    pub fn meta(&self, provider: &str) -> Result<Option<CatalogueMeta>> {
        let Some(r) = self.db.query_opt(
            "SELECT format, fetched_at, sources_json, listed, offers, dropped_json, normalized
             FROM price_catalogue WHERE provider = ?1",
            params![provider],
        )?
        else {
            return Ok(None);
        };
        let format: i64 = r.get(0)?;
        let fetched_at: i64 = r.get(1)?;
        let sources: String = r.get(2)?;
        let listed: i64 = r.get(3)?;
        let offers: i64 = r.get(4)?;
        let drops: String = r.get(5)?;
        let normalized_with: String = r.get(6)?;
        if format != FORMAT {
            return Ok(None);
        }
        let (Ok(sources), Ok(drops)) =
            (serde_json::from_str(&sources), serde_json::from_str(&drops))
        else {
            tracing::warn!(
                provider,
                "stored price catalogue is damaged; it is fetched again"
            );
            return Ok(None);
        };
        Ok(Some(CatalogueMeta {
            fetched_at: fetched_at.max(0) as u64,
            sources,
            listed: listed.max(0) as usize,
            offers: offers.max(0) as usize,
            drops,
            normalized_with,
        }))
    }

    /// The stored catalogue of `provider` with the rows of the regions
    /// `wanted` accepts. `None` when nothing (readable) is stored.
    pub fn load(&self, provider: &str, wanted: impl Fn(&str) -> bool) -> Result<Option<Loaded>> {
        let Some(meta) = self.meta(provider)? else {
            return Ok(None);
        };
        let Some(shapes) = self.db.query_opt(
            "SELECT shapes FROM price_catalogue WHERE provider = ?1",
            params![provider],
        )?
        else {
            return Ok(None);
        };
        let shapes: Vec<u8> = shapes.get(0)?;
        let regions: Vec<String> = self
            .db
            .query(
                "SELECT region FROM price_rows WHERE provider = ?1 ORDER BY region",
                params![provider],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_>>()?;
        let mut segments = Vec::new();
        for region in regions.iter().filter(|r| wanted(r)) {
            let Some(row) = self.db.query_opt(
                "SELECT rows FROM price_rows WHERE provider = ?1 AND region = ?2",
                params![provider, region],
            )?
            else {
                // Replaced meanwhile by a catalogue without this region.
                continue;
            };
            segments.push((region.clone(), row.get::<Vec<u8>>(0)?));
        }
        Ok(Loaded::decode(provider, meta, &shapes, segments, regions))
    }

    /// Replaces the catalogue of `provider` (one transaction).
    pub fn put(
        &self,
        provider: &str,
        fetched_at: u64,
        listed: usize,
        drops: &Drops,
        normalized_with: &str,
        encoded: &Encoded,
    ) -> Result<()> {
        // Serialising these plain structs cannot fail; were it to, the
        // catalogue is stored without them and fetched again when read.
        let sources = serde_json::to_string(&encoded.sources).unwrap_or_default();
        let drops = serde_json::to_string(drops).unwrap_or_default();
        self.db.write(|tx| {
            tx.execute(
                "DELETE FROM price_rows WHERE provider = ?1",
                params![provider],
            )?;
            tx.execute(
                "INSERT INTO price_catalogue
                    (provider, format, fetched_at, sources_json, listed, offers, dropped_json, normalized, shapes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(provider) DO UPDATE SET format = excluded.format,
                    fetched_at = excluded.fetched_at, sources_json = excluded.sources_json,
                    listed = excluded.listed, offers = excluded.offers,
                    dropped_json = excluded.dropped_json, normalized = excluded.normalized,
                    shapes = excluded.shapes",
                params![
                    provider,
                    FORMAT,
                    fetched_at,
                    sources,
                    listed,
                    encoded.offers,
                    drops,
                    normalized_with,
                    encoded.shapes,
                ],
            )?;
            for (region, (count, rows)) in &encoded.regions {
                tx.execute(
                    "INSERT INTO price_rows (provider, region, offers, rows) VALUES (?1, ?2, ?3, ?4)",
                    params![provider, region, *count, rows],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;
