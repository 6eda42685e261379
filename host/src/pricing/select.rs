//! What a plan reads of the stored catalogues: only the offers that can be
//! among the ranking's candidates, so placement ranks tens of offers, not a
//! quarter million.
//!
//! A [`Selection`] made for a request and a policy is *exact*:
//! 1. an offer is selected only when it satisfies every placement rule: the
//!    same tests as `placement`'s, on the stored machine (once per machine,
//!    not per offer), the region (once per region: regions that fail are not
//!    even read from the store) and the discounted prices;
//! 2. of those, only the offers whose price could place them among the
//!    policy's `max_candidates` best are kept: every offer whose cheapest
//!    usable (preference group, price) is at most the k-th smallest of all,
//!    ties included. The ranking's order refines (group, price), so the k
//!    best of the selection are the k best of all;
//! 3. for high availability, also the cheapest offers of every
//!    (provider, region, zone), so the second failure domain is found too.
//!
//! The number of offers satisfying every rule is counted on the way, since
//! the ranking only sees the selection. `PricingService::plan` checks the
//! claim of step 1: if placement refuses a selected offer, it ranks every
//! offer instead and logs why.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::store::{Loaded, RowRef};
use crate::placement::{Mode, Offer, Policy, Request, geography_of, gpu_model_matches};

/// Which offers to read.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    providers: Vec<String>,
    scope: Scope,
}

#[derive(Debug, Clone, PartialEq)]
enum Scope {
    /// Every offer (for `--explain`, which reports on every family).
    Everything,
    /// What can be a candidate for this request under this policy.
    Request(Box<(Request, Policy)>),
}

impl Selection {
    /// Every offer of every provider.
    pub fn everything() -> Selection {
        Selection {
            providers: Vec::new(),
            scope: Scope::Everything,
        }
    }

    /// The offers that can be candidates for `request` under `policy`.
    pub fn for_request(request: &Request, policy: &Policy) -> Selection {
        Selection {
            providers: request.providers.clone(),
            scope: Scope::Request(Box::new((request.clone(), policy.clone()))),
        }
    }

    /// Only these providers (none: every provider). Only these are fetched.
    pub fn only_providers(mut self, providers: &[String]) -> Selection {
        self.providers = providers.to_vec();
        self
    }

    /// The providers asked for (empty: every provider).
    pub fn providers(&self) -> &[String] {
        &self.providers
    }

    /// True when `provider` is read.
    pub fn includes_provider(&self, provider: &str) -> bool {
        self.providers.is_empty() || self.providers.iter().any(|p| p == provider)
    }

    /// True for [`Selection::everything`] (with or without a provider list).
    pub fn is_everything(&self) -> bool {
        self.scope == Scope::Everything
    }

    /// True when the offers of `provider` can be selected at all (it is not
    /// excluded by the policy).
    pub fn reads_offers_of(&self, provider: &str) -> bool {
        match &self.scope {
            Scope::Everything => true,
            Scope::Request(rp) => {
                !rp.1.excluded_providers.iter().any(|p| p == provider)
                    && (rp.0.providers.is_empty() || rp.0.providers.iter().any(|p| p == provider))
            }
        }
    }

    /// True when offers in `region` can be selected.
    pub fn wants_region(&self, region: &str) -> bool {
        match &self.scope {
            Scope::Everything => true,
            Scope::Request(rp) => region_ok(&rp.0, &rp.1, region),
        }
    }
}

/// What [`select`] picked.
#[derive(Debug, Default)]
pub struct Selected {
    /// The offers, prices after discount.
    pub offers: Vec<Offer>,
    /// For a request: how many offers satisfy every rule (the selection
    /// keeps only those that can be candidates).
    pub satisfying: Option<usize>,
    /// Offers whose prices a discount changed.
    pub discounted: usize,
}

/// One catalogue to select from, with its provider's discount multiplier.
pub struct Source<'a> {
    /// The catalogue (its rows for the wanted regions).
    pub loaded: &'a Loaded,
    /// The operator's discount multiplier for the provider (1.0: none).
    pub multiplier: f64,
}

/// Applies `selection` to `sources`.
pub fn select(selection: &Selection, sources: &[Source<'_>]) -> Selected {
    match &selection.scope {
        Scope::Everything => everything(sources),
        Scope::Request(rp) => for_request(&rp.0, &rp.1, sources),
    }
}

fn everything(sources: &[Source<'_>]) -> Selected {
    let mut out = Selected::default();
    for source in sources {
        for r in source.loaded.rows() {
            out.offers.push(discounted(source, &r, &mut out.discounted));
        }
    }
    out
}

/// The offer of `r` with the discount applied.
fn discounted(source: &Source<'_>, r: &RowRef, count: &mut usize) -> Offer {
    let mut offer = source.loaded.offer(r);
    if super::normalize::apply_discount(&mut offer, source.multiplier) {
        *count += 1;
    }
    offer
}

/// The region rules of placement: requested regions, geography, and the
/// operator's default regions when the request names neither.
fn region_ok(request: &Request, policy: &Policy, region: &str) -> bool {
    if !request.regions.is_empty() && !request.regions.iter().any(|r| r == region) {
        return false;
    }
    if let Some(geography) = request.geography
        && geography_of(region) != Some(geography)
    {
        return false;
    }
    let use_defaults = request.regions.is_empty() && request.geography.is_none();
    !(use_defaults
        && !policy.default_regions.is_empty()
        && !policy.default_regions.iter().any(|r| r == region))
}

/// The machine rules of placement (hardware, GPU model, confidential
/// computing, architecture, shared CPU, tier floor, promotional SKUs,
/// fractional GPUs), for shape `shape` of `loaded`.
fn shape_ok(request: &Request, policy: &Policy, loaded: &Loaded, shape: usize) -> bool {
    let s = &loaded.shapes()[shape];
    let storage = s.storage();
    let valid = s.vcpus.is_finite()
        && s.vcpus > 0.0
        && s.memory_gib.is_finite()
        && s.memory_gib > 0.0
        && s.gpus.is_finite()
        && s.gpus >= 0.0
        && storage.is_none_or(|g| g.is_finite() && g >= 0.0);
    if !valid {
        return false;
    }
    let storage = storage.unwrap_or(f32::INFINITY);
    let (floor_vcpus, floor_memory) = request.tier.map_or((0.0, 0.0), |t| t.vm_floor());
    let fails = s.vcpus < request.min_vcpus
        || s.memory_gib < request.min_memory_gib
        || storage < request.min_storage_gib
        || s.gpus < request.min_gpus
        || request.gpu_model.as_ref().is_some_and(|required| {
            s.gpu_model == 0 || !gpu_model_matches(required, loaded.string(s.gpu_model))
        })
        || (request.confidential && !s.confidential())
        || request.arch.is_some_and(|a| a != s.arch())
        || (request.dedicated_cpu && s.shared_cpu())
        || s.vcpus < floor_vcpus
        || s.memory_gib < floor_memory
        || (!policy.allow_promotional && s.promotional())
        || (request.min_gpus > 0.0 && !policy.allow_fractional_gpus && s.fractional_gpu());
    !fails
}

/// A row that may be selected: where it is and its (group, cheapest price).
struct Pick {
    source: u32,
    row: RowRef,
    key: (bool, f64),
}

fn key_cmp(a: (bool, f64), b: (bool, f64)) -> Ordering {
    a.0.cmp(&b.0).then(a.1.total_cmp(&b.1))
}

/// The k smallest keys seen, without keeping every key: the k-th smallest so
/// far is the threshold, and only keys at or under it are kept.
struct Threshold {
    k: usize,
    keys: Vec<(bool, f64)>,
    /// The k-th smallest key so far, once k were seen.
    kth: Option<(bool, f64)>,
}

impl Threshold {
    fn new(k: usize) -> Threshold {
        Threshold {
            k,
            keys: Vec::with_capacity(4 * k.max(64)),
            kth: None,
        }
    }

    /// True when `key` is at or under the threshold so far.
    fn admits(&self, key: (bool, f64)) -> bool {
        self.kth
            .is_none_or(|t| key_cmp(key, t) != Ordering::Greater)
    }

    fn offer(&mut self, key: (bool, f64)) {
        if !self.admits(key) {
            return;
        }
        self.keys.push(key);
        if self.keys.len() == self.keys.capacity() {
            self.shrink();
        }
    }

    fn shrink(&mut self) {
        if self.keys.len() >= self.k {
            let k = self.k;
            self.keys
                .select_nth_unstable_by(k - 1, |a, b| key_cmp(*a, *b));
            self.keys.truncate(k);
            self.kth = self.keys.iter().copied().max_by(|a, b| key_cmp(*a, *b));
        }
    }

    /// The k-th smallest key of all, or `None` when there were fewer than k.
    fn finish(mut self) -> Option<(bool, f64)> {
        self.shrink();
        self.kth
    }
}

fn for_request(request: &Request, policy: &Policy, sources: &[Source<'_>]) -> Selected {
    let cap = policy.max_cost_per_hour.unwrap_or(f64::INFINITY);
    let spot_allowed = policy.allow_spot_instances && request.allow_spot;
    let mut threshold = Threshold::new(policy.max_candidates.max(1));
    // Per (provider, region, zone): the cheapest key so far.
    let mut cheapest: HashMap<(u32, u32, u32), (bool, f64)> = HashMap::new();
    // Rows whose key was at or under the threshold, or their place's
    // cheapest, when seen; both only fall, so every row selected in the end
    // is among these.
    let mut picks: Vec<Pick> = Vec::new();
    let mut satisfying = 0usize;
    for (index, source) in sources.iter().enumerate() {
        let loaded = source.loaded;
        let provider = loaded.provider.as_str();
        if policy.excluded_providers.iter().any(|p| p == provider)
            || !(request.providers.is_empty() || request.providers.iter().any(|p| p == provider))
        {
            continue;
        }
        let later = policy.mode == Mode::Preferred
            && !policy.preferred_providers.iter().any(|p| p == provider);
        let shapes: Vec<bool> = (0..loaded.shapes().len())
            .map(|s| shape_ok(request, policy, loaded, s))
            .collect();
        let regions: Vec<bool> = loaded
            .regions()
            .map(|r| region_ok(request, policy, r))
            .collect();
        let m = source.multiplier;
        for r in loaded.rows() {
            if !shapes[r.row.shape as usize] || !regions[r.segment as usize] {
                continue;
            }
            let operator_owned = loaded.shapes()[r.row.shape as usize].operator_owned();
            // Prices as normalisation's discount leaves them.
            let (hourly, spot) = if m == 1.0 {
                (r.row.hourly_usd, r.row.spot())
            } else {
                (r.row.hourly_usd * m, r.row.spot().map(|s| s * m))
            };
            let valid = hourly.is_finite() && (hourly > 0.0 || (operator_owned && hourly == 0.0));
            if !valid {
                continue;
            }
            let spot = match spot {
                Some(p) if p.is_finite() && p > 0.0 => p,
                _ => f64::NAN,
            };
            let on_demand = hourly <= cap;
            let spot_usable = spot_allowed && spot <= cap;
            if !on_demand && !spot_usable {
                continue;
            }
            satisfying += 1;
            let mut best = f64::INFINITY;
            for (usable, price) in [(on_demand, hourly), (spot_usable, spot)] {
                if usable {
                    threshold.offer((later, price));
                    best = best.min(price);
                }
            }
            let key = (later, best);
            let mut keep = threshold.admits(key);
            if request.high_availability {
                let place = (index as u32, r.segment, r.row.zone);
                let min = cheapest.entry(place).or_insert(key);
                if key_cmp(key, *min) != Ordering::Greater {
                    *min = key;
                    keep = true;
                }
            }
            if keep {
                picks.push(Pick {
                    source: index as u32,
                    row: r,
                    key,
                });
            }
        }
    }
    let threshold = threshold.finish();
    let mut out = Selected {
        satisfying: Some(satisfying),
        ..Selected::default()
    };
    for p in &picks {
        let in_top = threshold.is_none_or(|t| key_cmp(p.key, t) != Ordering::Greater);
        let cheapest_here = request.high_availability
            && cheapest.get(&(p.source, p.row.segment, p.row.row.zone)) == Some(&p.key);
        if in_top || cheapest_here {
            let source = &sources[p.source as usize];
            out.offers
                .push(discounted(source, &p.row, &mut out.discounted));
        }
    }
    out
}

#[cfg(test)]
mod tests;
