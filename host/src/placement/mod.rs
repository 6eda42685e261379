//! Placement: which offer to run on, decided without any I/O.
//!
//! Given normalised offers (see `pricing::normalize`), a [`Request`] and the
//! operator's [`Policy`], [`rank`] returns the offers that satisfy every rule,
//! best first, plus for every instance family (`aws/m5`) the first rule that
//! excluded its offers. The orchestrator tries candidates in order (failover);
//! `bpr plan --explain` prints the exclusions.
//!
//! # Decision hierarchy
//! Rules are checked in this order and an offer is reported under the first
//! one it fails ([`Rule`] lists them):
//! 1. blueprint requirements (hard): vCPU, memory, storage, GPU count and
//!    model, confidential computing, architecture, dedicated CPU;
//! 2. customer preferences: providers, regions, geography ([`Geography`]), payment tier
//!    floor ([`Tier::vm_floor`]), high availability (a property of the whole
//!    result, see [`HaOutcome`]);
//! 3. operator defaults: excluded providers, promotional SKUs, fractional
//!    GPUs, default regions, `max_cost_per_hour`, spot, preferred providers
//!    (ordering only, see [`Mode`]); in [`Mode::Local`] only the operator's own
//!    capacity.
//!
//! # Using it
//! ```
//! use blueprint_remote_providers::placement::{Catalog, Policy, Request, rank};
//!
//! let offers = Vec::new(); // normalised offers from the pricing service
//! let catalog = Catalog::new(offers); // once per catalogue refresh
//! let request = Request { min_vcpus: 2.0, min_memory_gib: 4.0, ..Request::default() };
//! let ranking = rank(&catalog, &request, &Policy::default())?;
//! for candidate in &ranking.candidates {
//!     // try candidate.offer (as spot when candidate.spot), in order
//! }
//! # Ok::<(), blueprint_remote_providers::placement::PlacementError>(())
//! ```
//!
//! # Files
//! - `offer.rs`: [`Offer`], [`Arch`], [`instance_family`];
//! - `request.rs`: [`Request`], [`Policy`], [`Mode`];
//! - `tier.rs`: [`Tier`], the one table of the payment tiers;
//! - `geography.rs`: region code -> [`Geography`];
//! - `rules.rs`: [`Rule`] and GPU model matching;
//! - `catalog.rs`: [`Catalog`], offers interned for fast ranking;
//! - `rank.rs`: [`rank`], the one pass over the catalogue;
//! - `ranking.rs`: what it returns: [`Ranking`], [`Candidate`], [`FamilyExclusion`];
//! - `check.rs`: one offer against every rule, and its sort key;
//! - `select.rs`: top-k selection and the high-availability pair;
//! - `kubernetes.rs`: the payment tier that fits a request on a Kubernetes cluster;
//! - `explain.rs`: exclusions per instance family.

mod catalog;
mod check;
mod explain;
mod geography;
mod kubernetes;
mod offer;
mod rank;
mod ranking;
mod request;
mod rules;
mod select;
mod tier;

#[cfg(test)]
mod tests;

pub use catalog::Catalog;
pub use geography::{Geography, geography_of};
pub use kubernetes::{NoTierFits, kubernetes_tier, tier_resources};
pub use offer::{Arch, Offer, identity_cmp, instance_family};
pub use rank::{rank, rank_offers};
pub use ranking::{
    Candidate, FailureDomain, FamilyExclusion, HaOutcome, PlacementError, Ranking, RuleCount,
};
pub use request::{Mode, Policy, Request};
pub use rules::{Rule, gpu_model_matches};
pub use tier::{Tier, TierProfile, UnknownTier};
