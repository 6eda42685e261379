//! What a ranking returns: the candidates in order, the exclusions per family
//! and the high-availability outcome. Plain data, shared by `rank.rs` (which
//! builds it), `check.rs` (which builds candidates) and `explain.rs`.

use serde::{Deserialize, Serialize};

use super::offer::Offer;
use super::rules::Rule;

/// A request or policy value placement cannot work with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlacementError {
    /// A numeric field is negative or not a finite number.
    #[error("placement {field} is {value}; it must be a finite number >= 0")]
    InvalidNumber {
        /// The field, e.g. `request.min_vcpus`.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// `max_cost_per_hour` is zero, negative or not finite.
    #[error(
        "policy max_cost_per_hour is {0}; set a positive price in USD per hour or remove the cap"
    )]
    InvalidCostCap(f64),
    /// `max_candidates` is zero.
    #[error("policy max_candidates is 0; set it to at least 1 (default 20)")]
    NoCandidatesAllowed,
}

/// Where an instance fails together with others: provider, region and zone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FailureDomain {
    /// Provider name.
    pub provider: String,
    /// Region code.
    pub region: String,
    /// Zone; `None` means "some zone of the region, not known in advance".
    pub zone: Option<String>,
}

impl FailureDomain {
    /// True when the two cannot fail together as far as we know: different
    /// provider, different region, or both zones known and different. A
    /// missing zone may be any zone, so it is never distinct from a zone of
    /// the same region.
    pub fn is_distinct_from(&self, other: &FailureDomain) -> bool {
        self.provider != other.provider
            || self.region != other.region
            || matches!((&self.zone, &other.zone), (Some(a), Some(b)) if a != b)
    }
}

/// One placement the orchestrator may try, in ranked order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The offer (normalised, prices after discount).
    pub offer: Offer,
    /// Run as spot / preemptible.
    pub spot: bool,
    /// The price that would be paid, USD per hour.
    pub hourly_usd: f64,
    /// The provider is one of the operator's preferred providers.
    pub preferred: bool,
    /// Short human-readable reason for this position.
    pub why: String,
}

impl Candidate {
    /// The candidate's failure domain.
    pub fn failure_domain(&self) -> FailureDomain {
        FailureDomain {
            provider: self.offer.provider.clone(),
            region: self.offer.region.clone(),
            zone: self.offer.zone.clone(),
        }
    }
}

/// How many offers of one family one rule excluded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleCount {
    /// The rule (the first one these offers failed).
    pub rule: Rule,
    /// How many offers.
    pub offers: u32,
    /// The first such offer, described with its numbers.
    pub example: String,
}

/// Why offers of one instance family (provider + family, e.g. `aws/m5`)
/// were excluded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyExclusion {
    /// Provider name.
    pub provider: String,
    /// Instance family (see [`instance_family`](super::offer::instance_family)).
    pub family: String,
    /// Offers of the family excluded.
    pub offers_excluded: u32,
    /// Offers of the family that satisfied every rule.
    pub offers_kept: u32,
    /// Per rule, in check order; each offer counted under its first failed
    /// rule. The first entry is the first rule that excluded the family.
    pub reasons: Vec<RuleCount>,
}

/// Outcome of a high-availability request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum HaOutcome {
    /// Candidates `primary` and `secondary` (indexes into
    /// [`Ranking::candidates`]) are in distinct failure domains.
    Met {
        /// Index of the primary (always 0).
        primary: usize,
        /// Index of the cheapest candidate distinct from the primary.
        secondary: usize,
    },
    /// Every satisfying offer shares the winner's failure domain, so no
    /// candidates are returned.
    Unsatisfiable {
        /// The only failure domain available.
        domain: FailureDomain,
    },
}

/// The answer of [`rank`](super::rank()).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    /// Best first; at most `policy.max_candidates` (plus one when high
    /// availability needs a second failure domain and `max_candidates` is 1).
    pub candidates: Vec<Candidate>,
    /// Offers looked at.
    pub offers_considered: usize,
    /// Offers that satisfied every rule.
    pub offers_satisfying: usize,
    /// Families with at least one excluded offer, by provider then family.
    pub excluded: Vec<FamilyExclusion>,
    /// Set when the request asked for high availability and at least one
    /// offer satisfied every rule.
    pub high_availability: Option<HaOutcome>,
}

impl Ranking {
    /// Excluded offers per rule over all families, in check order, zeros left
    /// out.
    pub fn excluded_by_rule(&self) -> Vec<(Rule, u32)> {
        let mut totals = [0u32; Rule::COUNT];
        for family in &self.excluded {
            for reason in &family.reasons {
                totals[reason.rule as usize] += reason.offers;
            }
        }
        Rule::ALL
            .into_iter()
            .zip(totals)
            .filter(|&(_, n)| n > 0)
            .collect()
    }
}
