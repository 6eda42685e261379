//! A [`Catalog`] is a set of offers prepared once for fast ranking.
//!
//! Building it interns every string placement compares (provider, region,
//! zone, instance family, GPU model) into small integer ids and packs what
//! every offer is checked on into one 32-byte [`Row`] (prices and location,
//! read only for offers that pass, live in a parallel [`Cold`] array). Rows
//! are stored in the deterministic tie-break order, so ranking never
//! compares strings. Build one per catalogue refresh and rank against it
//! as often as needed; building costs about one sort of the offers.

use std::collections::HashMap;

use super::offer::{Offer, identity_cmp};

/// Offers prepared for ranking. Immutable once built.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub(super) offers: Vec<Offer>,
    /// In tie-break order (see [`identity_cmp`]), not input order.
    pub(super) rows: Vec<Row>,
    /// Parallel to `rows`.
    pub(super) cold: Vec<Cold>,
    pub(super) providers: Vec<String>,
    pub(super) regions: Vec<String>,
    /// `(provider id, family name)` per family id.
    pub(super) families: Vec<(u32, String)>,
    /// GPU model names; id 0 is "no model".
    pub(super) gpu_models: Vec<String>,
    /// Offer index (into `offers`) of each row.
    pub(super) by_order: Vec<u32>,
    /// Number of `(provider, region)` pairs.
    pub(super) locations: usize,
}

/// What every offer is checked on; kept to 32 bytes because ranking streams
/// through all of them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Row {
    pub vcpus: f32,
    pub memory: f32,
    /// `INFINITY` when the disk is sized at creation.
    pub storage: f32,
    pub gpus: f32,
    pub family: u32,
    pub region: u32,
    pub gpu_model: u32,
    pub provider: u16,
    pub flags: u8,
}

/// What is read only for offers that pass every other rule.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cold {
    pub hourly: f64,
    /// NaN when the offer has no usable spot price.
    pub spot: f64,
    /// 0 when the offer names no zone.
    pub zone: u32,
    /// `(provider, region)` pair id, for high availability.
    pub location: u32,
}

pub(super) const SHARED_CPU: u8 = 1;
pub(super) const CONFIDENTIAL: u8 = 1 << 1;
pub(super) const PROMOTIONAL: u8 = 1 << 2;
pub(super) const FRACTIONAL_GPU: u8 = 1 << 3;
pub(super) const ARM64: u8 = 1 << 4;
/// Price or hardware is not a finite, sensible number: never placeable.
pub(super) const INVALID: u8 = 1 << 5;
/// One of the operator's own machines (see [`Offer::operator_owned`]).
pub(super) const OPERATOR_OWNED: u8 = 1 << 6;

/// Maps strings to dense ids in first-seen order.
#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32, Fnv>,
    names: Vec<String>,
    /// The last id returned: catalogues list many offers of one provider,
    /// region or type in a row, and a string compare is cheaper than a hash.
    last: Option<u32>,
}

impl Interner {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(last) = self.last
            && self.names[last as usize] == name
        {
            return last;
        }
        let id = match self.ids.get(name) {
            Some(&id) => id,
            None => {
                let id = self.names.len() as u32;
                self.ids.insert(name.to_owned(), id);
                self.names.push(name.to_owned());
                id
            }
        };
        self.last = Some(id);
        id
    }
}

/// FNV-1a: much faster than the default SipHash on the short keys interned
/// here; the keys come from our own providers, so hash flooding is moot.
#[derive(Default, Clone, Copy)]
struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Catalog {
    /// Prepares `offers` for ranking. Offers with a non-positive or
    /// non-finite price or nonsensical hardware are kept but never placed
    /// (ranking reports them under `invalid-offer`); `pricing::normalize`
    /// normally drops them before.
    ///
    /// # Panics
    /// Never for bad offers; only beyond `u32::MAX` offers or 65,535 distinct
    /// provider names.
    pub fn new(offers: Vec<Offer>) -> Catalog {
        assert!(
            u32::try_from(offers.len()).is_ok(),
            "a catalog holds at most u32::MAX offers"
        );
        let mut providers = Interner::default();
        let mut regions = Interner::default();
        let mut zones = Interner::default();
        zones.id(""); // id 0 = no zone
        let mut gpu_models = Interner::default();
        gpu_models.id(""); // id 0 = no model
        let mut instance_types = Interner::default();
        let mut locations: HashMap<(u32, u32), u32, Fnv> = HashMap::default();
        // Per offer: instance type id, for the tie-break sort.
        let mut type_ids = Vec::with_capacity(offers.len());
        // Per provider id: family name -> family id.
        let mut families: Vec<HashMap<String, u32, Fnv>> = Vec::new();
        let mut family_names: Vec<(u32, String)> = Vec::new();

        let mut rows = Vec::with_capacity(offers.len());
        let mut cold = Vec::with_capacity(offers.len());
        for offer in &offers {
            let provider = providers.id(&offer.provider);
            let family_name = offer.family();
            if families.len() <= provider as usize {
                families.resize_with(provider as usize + 1, HashMap::default);
            }
            let of_provider = &mut families[provider as usize];
            let family = match of_provider.get(family_name.as_ref()) {
                Some(&id) => id,
                None => {
                    let id = family_names.len() as u32;
                    of_provider.insert(family_name.to_string(), id);
                    family_names.push((provider, family_name.into_owned()));
                    id
                }
            };
            let region = regions.id(&offer.region);
            let next_location = locations.len() as u32;
            let location = *locations.entry((provider, region)).or_insert(next_location);
            type_ids.push(instance_types.id(&offer.instance_type));
            rows.push(Row {
                vcpus: offer.vcpus,
                memory: offer.memory_gib,
                storage: offer.storage_gib.unwrap_or(f32::INFINITY),
                gpus: offer.gpus,
                family,
                region,
                gpu_model: offer.gpu_model.as_deref().map_or(0, |m| gpu_models.id(m)),
                provider: u16::try_from(provider)
                    .expect("a catalog holds at most 65,535 providers (one per loaded component)"),
                flags: flags_of(offer),
            });
            cold.push(Cold {
                hourly: offer.hourly_usd,
                spot: match offer.spot_hourly_usd {
                    Some(p) if p.is_finite() && p > 0.0 => p,
                    _ => f64::NAN,
                },
                zone: offer.zone.as_deref().map_or(0, |z| zones.id(z)),
                location,
            });
        }

        // Tie-break order: sort the few distinct strings once, then the offers
        // by those ranks; only offers equal on all four fall back to comparing
        // every field.
        let provider_rank = lexical_ranks(&providers.names);
        let region_rank = lexical_ranks(&regions.names);
        let type_rank = lexical_ranks(&instance_types.names);
        let zone_rank = lexical_ranks(&zones.names);
        let sort_key = |index: usize| -> u128 {
            let (row, cold) = (&rows[index], &cold[index]);
            (u128::from(provider_rank[row.provider as usize]) << 96)
                | (u128::from(region_rank[row.region as usize]) << 64)
                | (u128::from(type_rank[type_ids[index] as usize]) << 32)
                | u128::from(zone_rank[cold.zone as usize])
        };
        let mut keyed: Vec<(u128, u32)> = (0..offers.len())
            .map(|index| (sort_key(index), index as u32))
            .collect();
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                identity_cmp(&offers[a.1 as usize], &offers[b.1 as usize]).then(a.1.cmp(&b.1))
            })
        });
        let by_order: Vec<u32> = keyed.into_iter().map(|(_, index)| index).collect();
        // Rows are stored in tie-break order: a row's position is its rank
        // among equal prices, and the first row that fails a rule is the
        // smallest in that order.
        let rows = by_order.iter().map(|&i| rows[i as usize]).collect();
        let cold = by_order.iter().map(|&i| cold[i as usize]).collect();

        Catalog {
            offers,
            rows,
            cold,
            providers: providers.names,
            regions: regions.names,
            families: family_names,
            gpu_models: gpu_models.names,
            by_order,
            locations: locations.len(),
        }
    }

    /// The offers, in the order they were given.
    pub fn offers(&self) -> &[Offer] {
        &self.offers
    }

    /// Number of offers.
    pub fn len(&self) -> usize {
        self.offers.len()
    }

    /// True when there are no offers.
    pub fn is_empty(&self) -> bool {
        self.offers.is_empty()
    }
}

/// For each name, its position among the names sorted (zone id 0, the empty
/// string, sorts first, so "no zone" comes before any zone as `None` does).
fn lexical_ranks(names: &[String]) -> Vec<u32> {
    let mut sorted: Vec<u32> = (0..names.len() as u32).collect();
    sorted.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
    let mut ranks = vec![0u32; names.len()];
    for (rank, &id) in sorted.iter().enumerate() {
        ranks[id as usize] = rank as u32;
    }
    ranks
}

fn flags_of(offer: &Offer) -> u8 {
    let mut flags = 0;
    let mut set = |on: bool, flag: u8| {
        if on {
            flags |= flag;
        }
    };
    set(offer.shared_cpu, SHARED_CPU);
    set(offer.confidential, CONFIDENTIAL);
    set(offer.promotional, PROMOTIONAL);
    set(offer.fractional_gpu, FRACTIONAL_GPU);
    set(offer.arch == super::offer::Arch::Arm64, ARM64);
    set(offer.operator_owned, OPERATOR_OWNED);
    let storage_ok = offer.storage_gib.is_none_or(|s| s.is_finite() && s >= 0.0);
    let valid = offer.hourly_usd.is_finite()
        && (offer.hourly_usd > 0.0 || (offer.operator_owned && offer.hourly_usd == 0.0))
        && offer.vcpus.is_finite()
        && offer.vcpus > 0.0
        && offer.memory_gib.is_finite()
        && offer.memory_gib > 0.0
        && offer.gpus.is_finite()
        && offer.gpus >= 0.0
        && storage_ok;
    set(!valid, INVALID);
    flags
}
