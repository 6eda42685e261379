//! Cost accounting: what deployments spent, computed from the usage ledger
//! (`tracking::UsagePeriod`: which priced resource a deployment held, from
//! when to when, at which hourly price). Pure: no I/O, so every figure can be
//! checked by hand.
//!
//! [`report`] reads the ledger; [`accrue`] is the arithmetic.
//!
//! A period costs `hourly_usd × seconds held / 3600`, to the second; a stopped
//! (suspended) VM or a Kubernetes deployment scaled to zero holds no period,
//! and a heal's old and new instances each have their own, so the overlap
//! while both ran is paid twice, as the cloud bills it. A period without a
//! price counts its time as unpriced.
//!
//! The budget (`budget.rs`) holds the spend limits checked before a deployment
//! is created: [`Spend`], [`Limit`], [`BudgetRefusal`], [`BudgetAlert`].

pub(crate) mod budget;

pub use budget::{Addition, BudgetAlert, BudgetRefusal, Limit, Spend, month_bounds};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tracking::{TrackError, Tracker, UsagePeriod};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// How [`accrue`] groups the spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One line per deployment (the default).
    #[default]
    Deployment,
    /// One line per Blueprint id.
    Blueprint,
    /// One line per provider (`kubernetes` for clusters).
    Provider,
    /// One line per UTC day (`YYYY-MM-DD`); a period over midnight is split.
    Day,
}

/// A grouping [`GroupBy`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown grouping {0:?}; use deployment, blueprint, provider or day")]
pub struct UnknownGrouping(pub String);

impl std::str::FromStr for GroupBy {
    type Err = UnknownGrouping;
    fn from_str(s: &str) -> Result<Self, UnknownGrouping> {
        match s {
            "deployment" => Ok(Self::Deployment),
            "blueprint" => Ok(Self::Blueprint),
            "provider" => Ok(Self::Provider),
            "day" => Ok(Self::Day),
            other => Err(UnknownGrouping(other.into())),
        }
    }
}

/// The spend of one group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostLine {
    /// The deployment id, Blueprint id, provider or day.
    pub key: String,
    /// Accrued spend in USD.
    pub usd: f64,
    /// Seconds of priced resources held (summed over periods).
    pub seconds: i64,
    /// Seconds held without a known price (not in `usd`).
    pub unpriced_seconds: i64,
    /// What it costs per hour now (the sum of its open periods' prices).
    pub hourly_usd_now: f64,
}

/// Accrued spend over a window, grouped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CostReport {
    /// Start of the window (unix seconds); `None`: since the first record.
    pub since: Option<i64>,
    /// End of the window (unix seconds): now.
    pub until: i64,
    /// The grouping.
    pub by: GroupBy,
    /// One line per group, sorted by key.
    pub lines: Vec<CostLine>,
    /// Sum of `lines[].usd`.
    pub total_usd: f64,
    /// What everything held costs per hour now.
    pub hourly_usd_now: f64,
}

/// Seconds period `p` was held within `[from, to]`.
pub fn held_seconds(p: &UsagePeriod, from: i64, to: i64) -> i64 {
    let start = p.started_at.max(from);
    let end = p.ended_at.unwrap_or(to).min(to);
    (end - start).max(0)
}

/// What period `p` cost within `[from, to]`, in USD (0 when unpriced).
pub fn period_cost(p: &UsagePeriod, from: i64, to: i64) -> f64 {
    p.hourly_usd.unwrap_or(0.0) * held_seconds(p, from, to) as f64 / 3600.0
}

/// `YYYY-MM-DD` of unix second `t` (UTC).
fn day_of(t: i64) -> String {
    chrono::DateTime::from_timestamp(t - t.rem_euclid(DAY), 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// The spend of `periods` within `[since, until]`, grouped by `by`.
/// `blueprint_of` names a deployment's Blueprint (for [`GroupBy::Blueprint`]).
pub fn accrue(
    periods: &[UsagePeriod],
    blueprint_of: &dyn Fn(&str) -> Option<String>,
    since: Option<i64>,
    until: i64,
    by: GroupBy,
) -> CostReport {
    let from = since.unwrap_or(i64::MIN);
    let mut lines: BTreeMap<String, CostLine> = BTreeMap::new();
    let mut add = |key: String, p: &UsagePeriod, a: i64, b: i64, open: bool| {
        let line = lines.entry(key.clone()).or_insert_with(|| CostLine {
            key,
            usd: 0.0,
            seconds: 0,
            unpriced_seconds: 0,
            hourly_usd_now: 0.0,
        });
        let secs = held_seconds(p, a, b);
        match p.hourly_usd {
            Some(_) => line.seconds += secs,
            None => line.unpriced_seconds += secs,
        }
        line.usd += period_cost(p, a, b);
        if open {
            line.hourly_usd_now += p.hourly_usd.unwrap_or(0.0);
        }
    };
    let mut now_total = 0.0;
    for p in periods {
        let open = p.ended_at.is_none();
        if open {
            now_total += p.hourly_usd.unwrap_or(0.0);
        }
        if held_seconds(p, from, until) == 0 && !open {
            continue;
        }
        match by {
            GroupBy::Deployment => add(p.deployment_id.clone(), p, from, until, open),
            GroupBy::Provider => add(p.provider.clone(), p, from, until, open),
            GroupBy::Blueprint => {
                let key = blueprint_of(&p.deployment_id).unwrap_or_else(|| "?".into());
                add(key, p, from, until, open)
            }
            GroupBy::Day => {
                let start = p.started_at.max(from);
                let end = p.ended_at.unwrap_or(until).min(until);
                let mut day = start - start.rem_euclid(DAY);
                while day < end.max(start + 1) {
                    let (a, b) = (day.max(start), (day + DAY).min(end));
                    // The open period's rate counts on the day that holds `until`.
                    let today = open && until >= day && until < day + DAY;
                    add(day_of(day), p, a, b, today);
                    day += DAY;
                }
            }
        }
    }
    let lines: Vec<CostLine> = lines.into_values().collect();
    CostReport {
        since,
        until,
        by,
        total_usd: lines.iter().map(|l| l.usd).sum(),
        hourly_usd_now: now_total,
        lines,
    }
}

/// The spend recorded in `tracker`'s ledger since `since` (unix seconds;
/// everything without) until now, grouped by `by`.
pub fn report(
    tracker: &Tracker,
    since: Option<i64>,
    by: GroupBy,
) -> Result<CostReport, TrackError> {
    let periods = tracker.usage_since(since)?;
    let mut blueprints = BTreeMap::new();
    if by == GroupBy::Blueprint {
        for p in &periods {
            if !blueprints.contains_key(&p.deployment_id) {
                let b = tracker.get(&p.deployment_id)?.blueprint_id;
                blueprints.insert(p.deployment_id.clone(), b);
            }
        }
    }
    Ok(accrue(
        &periods,
        &|d| blueprints.get(d).cloned(),
        since,
        crate::clock::unix_now(),
        by,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(
        dep: &str,
        provider: &str,
        hourly: Option<f64>,
        start: i64,
        end: Option<i64>,
    ) -> UsagePeriod {
        UsagePeriod {
            seq: 0,
            deployment_id: dep.into(),
            instance_id: format!("i-{dep}-{start}"),
            provider: provider.into(),
            region: "r".into(),
            zone: None,
            instance_type: "t".into(),
            spot: false,
            hourly_usd: hourly,
            resources: Vec::new(),
            started_at: start,
            ended_at: end,
            end_reason: None,
        }
    }

    /// 2026-12-01T00:00:00Z.
    const DEC1: i64 = 1_796_083_200;

    #[test]
    fn a_period_costs_its_price_times_the_seconds_held() {
        // 0.0416 USD/h for 90 minutes = 0.0624; to the second.
        let p = period("a", "aws", Some(0.0416), DEC1, Some(DEC1 + 5400));
        assert!((period_cost(&p, i64::MIN, DEC1 + 10_000) - 0.0624).abs() < 1e-12);
        // One extra second is 0.0416 / 3600 more.
        let q = period("a", "aws", Some(0.0416), DEC1, Some(DEC1 + 5401));
        let extra = period_cost(&q, i64::MIN, i64::MAX) - period_cost(&p, i64::MIN, i64::MAX);
        assert!((extra - 0.0416 / 3600.0).abs() < 1e-15);
    }

    #[test]
    fn suspension_and_a_heal_are_counted_from_their_periods() {
        // Ran 1 h, suspended 2 h (no period), resumed 30 min, healed: the old
        // instance overlapped the new one by 10 min, the new one ran 1 h.
        let periods = [
            period("d", "aws", Some(0.10), DEC1, Some(DEC1 + 3600)),
            period(
                "d",
                "aws",
                Some(0.10),
                DEC1 + 3 * 3600,
                Some(DEC1 + 3 * 3600 + 1800 + 600),
            ),
            period(
                "d",
                "digitalocean",
                Some(0.06),
                DEC1 + 3 * 3600 + 1800,
                Some(DEC1 + 3 * 3600 + 1800 + 3600),
            ),
        ];
        let r = accrue(
            &periods,
            &|_| None,
            None,
            DEC1 + 10 * 3600,
            GroupBy::Deployment,
        );
        // 0.10 x 1 h + 0.10 x 40 min + 0.06 x 1 h = 0.10 + 0.0666.. + 0.06
        let expected = 0.10 + 0.10 * 2400.0 / 3600.0 + 0.06;
        assert_eq!(r.lines.len(), 1);
        assert!((r.lines[0].usd - expected).abs() < 1e-12, "{r:?}");
        assert_eq!(r.lines[0].seconds, 3600 + 2400 + 3600);
        let by_provider = accrue(
            &periods,
            &|_| None,
            None,
            DEC1 + 10 * 3600,
            GroupBy::Provider,
        );
        assert_eq!(by_provider.lines[0].key, "aws");
        assert!((by_provider.lines[1].usd - 0.06).abs() < 1e-12);
    }

    #[test]
    fn an_open_period_accrues_until_now_and_counts_in_the_hourly_rate() {
        let periods = [period("d", "aws", Some(0.5), DEC1, None)];
        let r = accrue(&periods, &|_| None, None, DEC1 + 720, GroupBy::Deployment);
        assert!((r.total_usd - 0.1).abs() < 1e-12);
        assert!((r.hourly_usd_now - 0.5).abs() < 1e-12);
    }

    #[test]
    fn since_clips_periods_that_started_before_it() {
        let periods = [period("d", "aws", Some(1.0), DEC1, Some(DEC1 + 7200))];
        let r = accrue(
            &periods,
            &|_| None,
            Some(DEC1 + 3600),
            DEC1 + 9000,
            GroupBy::Deployment,
        );
        assert!((r.total_usd - 1.0).abs() < 1e-12);
    }

    #[test]
    fn by_day_splits_a_period_over_midnight() {
        // 23:00 on Dec 1 to 02:00 on Dec 2 at 0.24/h: 0.24 on the 1st, 0.48 on the 2nd.
        let periods = [period(
            "d",
            "aws",
            Some(0.24),
            DEC1 + 23 * 3600,
            Some(DEC1 + 26 * 3600),
        )];
        let r = accrue(&periods, &|_| None, None, DEC1 + 30 * 3600, GroupBy::Day);
        let days: Vec<(&str, f64)> = r.lines.iter().map(|l| (l.key.as_str(), l.usd)).collect();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].0, "2026-12-01");
        assert!((days[0].1 - 0.24).abs() < 1e-12);
        assert_eq!(days[1].0, "2026-12-02");
        assert!((days[1].1 - 0.48).abs() < 1e-12);
    }

    #[test]
    fn unpriced_time_is_reported_apart_and_costs_nothing() {
        let periods = [period("k", "kubernetes", None, DEC1, Some(DEC1 + 600))];
        let r = accrue(
            &periods,
            &|_| Some("bp-1".into()),
            None,
            DEC1 + 600,
            GroupBy::Blueprint,
        );
        assert_eq!(r.lines[0].key, "bp-1");
        assert_eq!(r.lines[0].unpriced_seconds, 600);
        assert_eq!(r.lines[0].usd, 0.0);
    }
}
