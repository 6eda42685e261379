//! `--explain`: turning the per-family, per-rule counters of one ranking pass
//! into [`FamilyExclusion`]s.

use super::catalog::Catalog;
use super::ranking::{FamilyExclusion, RuleCount};
use super::request::{Policy, Request};
use super::rules::Rule;

/// One entry per family with an excluded offer, by provider then family.
/// `counts` and `examples` (first row position) are indexed by
/// `family * Rule::COUNT + rule`, `kept` by family.
pub(super) fn explain(
    catalog: &Catalog,
    request: &Request,
    policy: &Policy,
    counts: &[u32],
    examples: &[u32],
    kept: &[u32],
) -> Vec<FamilyExclusion> {
    let mut out: Vec<FamilyExclusion> = catalog
        .families
        .iter()
        .enumerate()
        .filter_map(|(family, (provider, name))| {
            let cells = &counts[family * Rule::COUNT..(family + 1) * Rule::COUNT];
            let excluded: u32 = cells.iter().sum();
            if excluded == 0 {
                return None;
            }
            let reasons = Rule::ALL
                .into_iter()
                .zip(cells)
                .enumerate()
                .filter(|(_, (_, n))| **n > 0)
                .map(|(r, (rule, &offers))| {
                    let position = examples[family * Rule::COUNT + r] as usize;
                    let example = catalog.by_order[position] as usize;
                    RuleCount {
                        rule,
                        offers,
                        example: rule.describe(&catalog.offers[example], request, policy),
                    }
                })
                .collect();
            Some(FamilyExclusion {
                provider: catalog.providers[*provider as usize].clone(),
                family: name.clone(),
                offers_excluded: excluded,
                offers_kept: kept[family],
                reasons,
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.provider, &a.family).cmp(&(&b.provider, &b.family)));
    out
}
