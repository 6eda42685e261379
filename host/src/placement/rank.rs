//! Ranking: one pass that checks every offer against the [`Rule`]s, then a
//! top-k selection of the survivors, sorted by a packed integer key.
//!
//! # Order
//! Candidates are sorted by, in turn:
//! 1. in [`Mode::Preferred`], preferred providers before the others;
//! 2. the price that would be paid (spot or on-demand), cheapest first;
//! 3. the provider's position in `preferred_providers` (listed ones first);
//! 4. provider, region, instance type, zone, then the other offer fields
//!    (see [`identity_cmp`](super::offer::identity_cmp));
//! 5. on-demand before spot.
//!
//! This is a total order, so the result does not depend on input order.
//!
//! # Spot
//! When spot is allowed (policy *and* request), an offer with a spot price
//! yields two candidates, spot and on-demand, so failover can fall back from
//! spot to on-demand capacity of the same type.

use super::catalog::Catalog;
use super::check::{Context, bit};
use super::explain::explain;
use super::offer::Offer;
use super::ranking::{FailureDomain, HaOutcome, PlacementError, Ranking};
use super::request::{Policy, Request};
use super::rules::Rule;
use super::select::{LocationBest, TopK, cheapest_distinct, distinct};

/// Builds a [`Catalog`] from `offers` and ranks it. Prefer building the
/// catalog once and calling [`rank`] when ranking the same offers repeatedly.
pub fn rank_offers(
    offers: Vec<Offer>,
    request: &Request,
    policy: &Policy,
) -> Result<Ranking, PlacementError> {
    rank(&Catalog::new(offers), request, policy)
}

/// Ranks the catalogue's offers for `request` under `policy`: the offers that
/// satisfy every [`Rule`], best first (see the module docs for the order), and
/// for every instance family the rules that excluded its offers.
pub fn rank(
    catalog: &Catalog,
    request: &Request,
    policy: &Policy,
) -> Result<Ranking, PlacementError> {
    validate(request, policy)?;
    let ctx = Context::new(catalog, request, policy);

    let families = catalog.families.len();
    let mut counts = vec![0u32; families * Rule::COUNT];
    let mut examples = vec![u32::MAX; families * Rule::COUNT];
    let mut kept = vec![0u32; families];
    let mut top = TopK::new(policy.max_candidates);
    let mut ha = request
        .high_availability
        .then(|| vec![LocationBest::EMPTY; catalog.locations]);
    let mut satisfying = 0usize;

    for (position, (row, cold)) in catalog.rows.iter().zip(&catalog.cold).enumerate() {
        let position = position as u32;
        let mut failed = ctx.failed_rules(row);
        let mut usable = (false, false);
        if failed == 0 {
            // Prices are read only here, for offers that passed every other
            // rule; NaN (no spot price) compares false.
            usable = (
                cold.hourly <= ctx.cap,
                ctx.spot_allowed && cold.spot <= ctx.cap,
            );
            if usable == (false, false) {
                failed = bit(Rule::MaxCost);
            }
        }
        if failed != 0 {
            // The first failed rule in check order is the lowest set bit.
            let cell = row.family as usize * Rule::COUNT + failed.trailing_zeros() as usize;
            counts[cell] += 1;
            // Rows are in tie-break order, so the example is the first offer
            // in that order and the explanation does not depend on input order.
            examples[cell] = examples[cell].min(position);
            continue;
        }
        satisfying += 1;
        kept[row.family as usize] += 1;
        for (usable, price, spot) in [(usable.0, cold.hourly, false), (usable.1, cold.spot, true)] {
            if usable {
                let key = ctx.key(row, position, price, spot);
                top.offer(key);
                if let Some(ha) = &mut ha {
                    ha[cold.location as usize].update(key, cold.zone);
                }
            }
        }
    }
    let mut top = top.into_sorted();

    let mut high_availability = None;
    if let (Some(locations), Some(&winner_key)) = (&ha, top.first()) {
        let winner = ctx.place(winner_key);
        let secondary = match top.iter().position(|&k| distinct(&winner, &ctx.place(k))) {
            Some(position) => Some(position),
            // Not in the top k: the cheapest distinct survivor replaces the
            // last candidate (or is appended when there is only one).
            None => cheapest_distinct(locations, &winner).map(|key| {
                if top.len() >= 2 {
                    top.pop();
                }
                top.push(key);
                top.len() - 1
            }),
        };
        high_availability = Some(match secondary {
            Some(secondary) => HaOutcome::Met {
                primary: 0,
                secondary,
            },
            None => {
                let offer = &catalog.offers[ctx.offer_index(winner_key)];
                top.clear();
                HaOutcome::Unsatisfiable {
                    domain: FailureDomain {
                        provider: offer.provider.clone(),
                        region: offer.region.clone(),
                        zone: offer.zone.clone(),
                    },
                }
            }
        });
    }

    let ha_secondary = match high_availability {
        Some(HaOutcome::Met { secondary, .. }) => Some(secondary),
        _ => None,
    };
    let candidates = top
        .iter()
        .enumerate()
        .map(|(position, &key)| ctx.candidate(key, position, ha_secondary == Some(position)))
        .collect();

    Ok(Ranking {
        candidates,
        offers_considered: catalog.rows.len(),
        offers_satisfying: satisfying,
        excluded: explain(catalog, request, policy, &counts, &examples, &kept),
        high_availability,
    })
}

fn validate(request: &Request, policy: &Policy) -> Result<(), PlacementError> {
    let numbers = [
        ("request.min_vcpus", request.min_vcpus),
        ("request.min_memory_gib", request.min_memory_gib),
        ("request.min_storage_gib", request.min_storage_gib),
        ("request.min_gpus", request.min_gpus),
    ];
    for (field, value) in numbers {
        if !value.is_finite() || value < 0.0 {
            return Err(PlacementError::InvalidNumber {
                field,
                value: f64::from(value),
            });
        }
    }
    if let Some(cap) = policy.max_cost_per_hour
        && !(cap.is_finite() && cap > 0.0)
    {
        return Err(PlacementError::InvalidCostCap(cap));
    }
    if policy.max_candidates == 0 {
        return Err(PlacementError::NoCandidatesAllowed);
    }
    Ok(())
}
