//! The operator's spend limits (`[operator.budget]`), checked before a
//! deployment is created: the hourly run rate of everything held plus the new
//! deployment's price, and the month's spend — accrued, plus what running
//! deployments and the new one commit until the month (or their paid time)
//! ends. Pure; the orchestrator gathers the figures and publishes the alerts.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::period_cost;
use crate::config::BudgetSettings;
use crate::tracking::UsagePeriod;

/// Which limit.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Limit {
    /// `[operator.deployment] max_cost_per_hour`: the price of one deployment.
    Deployment,
    /// `[operator.budget] max_cost_per_hour`.
    Hourly,
    /// `[operator.budget] monthly_usd`.
    Monthly,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Deployment => "operator.deployment.max_cost_per_hour",
            Self::Hourly => "max_cost_per_hour",
            Self::Monthly => "monthly_usd",
        })
    }
}

/// What is spent and committed now.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Spend {
    /// USD per hour of everything held now.
    pub hourly_now: f64,
    /// USD accrued since the month began.
    pub month_accrued: f64,
    /// USD that what is held now will accrue until the month ends (or its
    /// paid time does, when sooner).
    pub month_committed: f64,
    /// Start of the current UTC calendar month (unix seconds).
    pub month_start: i64,
    /// Start of the next one.
    pub month_end: i64,
}

impl Spend {
    /// The month's spend as the monthly limit counts it.
    pub fn month_projected(&self) -> f64 {
        self.month_accrued + self.month_committed
    }

    /// How far `limit` is used, in USD (per hour for [`Limit::Hourly`]).
    pub fn used(&self, limit: Limit) -> f64 {
        match limit {
            Limit::Deployment | Limit::Hourly => self.hourly_now,
            Limit::Monthly => self.month_projected(),
        }
    }
}

/// `[start, end)` of the UTC calendar month holding unix second `now`.
pub fn month_bounds(now: i64) -> (i64, i64) {
    use chrono::{Datelike, TimeZone, Utc};
    let Some(t) = Utc.timestamp_opt(now, 0).single() else {
        return (now, now);
    };
    let start = Utc
        .with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
        .single()
        .map_or(now, |d| d.timestamp());
    let (y, m) = if t.month() == 12 {
        (t.year() + 1, 1)
    } else {
        (t.year(), t.month() + 1)
    };
    let end = Utc
        .with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map_or(now, |d| d.timestamp());
    (start, end)
}

/// Spend and commitments of `periods` at `now`; `expires_at` gives a
/// deployment's end of paid time (after which it is no longer billed).
pub fn spend(periods: &[UsagePeriod], expires_at: &dyn Fn(&str) -> Option<i64>, now: i64) -> Spend {
    let (month_start, month_end) = month_bounds(now);
    let mut s = Spend {
        hourly_now: 0.0,
        month_accrued: 0.0,
        month_committed: 0.0,
        month_start,
        month_end,
    };
    for p in periods {
        s.month_accrued += period_cost(p, month_start, now);
        if p.ended_at.is_none() {
            let hourly = p.hourly_usd.unwrap_or(0.0);
            s.hourly_now += hourly;
            let until = expires_at(&p.deployment_id).map_or(month_end, |e| e.min(month_end));
            s.month_committed += hourly * (until - now).max(0) as f64 / 3600.0;
        }
    }
    s
}

/// What a deployment about to be created would add.
#[derive(Debug, Clone, PartialEq)]
pub struct Addition {
    /// Its price, USD per hour.
    pub hourly_usd: f64,
    /// When its paid time ends (unix seconds), if limited.
    pub expires_at: Option<i64>,
    /// Where (`provider/region/type` or `k8s:<cluster>/<tier>`), for messages.
    pub placement: String,
}

impl Addition {
    /// USD it commits until the month ends (or its paid time does).
    pub fn month_commitment(&self, s: &Spend, now: i64) -> f64 {
        let until = self.expires_at.map_or(s.month_end, |e| e.min(s.month_end));
        self.hourly_usd * (until - now).max(0) as f64 / 3600.0
    }
}

/// A deployment the budget does not allow.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", refusal_text(self))]
pub struct BudgetRefusal {
    /// The limit it would exceed.
    pub limit: Limit,
    /// The limit, USD (per hour for [`Limit::Hourly`]).
    pub limit_usd: f64,
    /// How much of it is used without the deployment.
    pub used_usd: f64,
    /// What the deployment adds.
    pub adds_usd: f64,
    /// Where it would have run.
    pub placement: String,
}

fn refusal_text(r: &BudgetRefusal) -> String {
    match r.limit {
        Limit::Deployment => format!(
            "refused by the budget: [operator.deployment] max_cost_per_hour is ${:.4}/h and {} costs ${:.4}/h; choose a cheaper place or raise the limit",
            r.limit_usd, r.placement, r.adds_usd
        ),
        Limit::Hourly => format!(
            "refused by the budget: [operator.budget] max_cost_per_hour is ${:.4}/h; deployments holding resources cost ${:.4}/h now and {} adds ${:.4}/h; raise the limit or terminate something first",
            r.limit_usd, r.used_usd, r.placement, r.adds_usd
        ),
        Limit::Monthly => format!(
            "refused by the budget: [operator.budget] monthly_usd is ${:.2}; this month ${:.2} is spent or committed by running deployments and {} adds ${:.2} until the month (or its TTL) ends; raise the limit, shorten the TTL or terminate something first",
            r.limit_usd, r.used_usd, r.placement, r.adds_usd
        ),
    }
}

/// A budget whose alert share is reached.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetAlert {
    /// The limit.
    pub limit: Limit,
    /// The limit, USD (per hour for [`Limit::Hourly`]).
    pub limit_usd: f64,
    /// How much is used.
    pub used_usd: f64,
    /// `used / limit`.
    pub fraction: f64,
}

/// Whether `add` fits the budget on top of `s`: `Err` names the first limit
/// it would exceed.
pub fn admit(b: &BudgetSettings, s: &Spend, add: &Addition, now: i64) -> Result<(), BudgetRefusal> {
    if let Some(max) = b.max_cost_per_hour
        && s.hourly_now + add.hourly_usd > max + 1e-9
    {
        return Err(BudgetRefusal {
            limit: Limit::Hourly,
            limit_usd: max,
            used_usd: s.hourly_now,
            adds_usd: add.hourly_usd,
            placement: add.placement.clone(),
        });
    }
    if let Some(max) = b.monthly_usd {
        let adds = add.month_commitment(s, now);
        if s.month_projected() + adds > max + 1e-9 {
            return Err(BudgetRefusal {
                limit: Limit::Monthly,
                limit_usd: max,
                used_usd: s.month_projected(),
                adds_usd: adds,
                placement: add.placement.clone(),
            });
        }
    }
    Ok(())
}

/// The limits of `b` whose alert share `s` has reached.
pub fn alerts(b: &BudgetSettings, s: &Spend) -> Vec<BudgetAlert> {
    [
        (Limit::Hourly, b.max_cost_per_hour),
        (Limit::Monthly, b.monthly_usd),
    ]
    .into_iter()
    .filter_map(|(limit, max)| {
        let max = max?;
        let used = s.used(limit);
        (used >= b.alert_fraction * max - 1e-9).then(|| BudgetAlert {
            limit,
            limit_usd: max,
            used_usd: used,
            fraction: used / max,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01T00:00:00Z and 2027-01-01T00:00:00Z.
    const DEC1: i64 = 1_796_083_200;
    const JAN1: i64 = 1_798_761_600;

    fn open(dep: &str, hourly: f64, start: i64) -> UsagePeriod {
        UsagePeriod {
            seq: 0,
            deployment_id: dep.into(),
            instance_id: "i".into(),
            provider: "aws".into(),
            region: "r".into(),
            zone: None,
            instance_type: "t".into(),
            spot: false,
            hourly_usd: Some(hourly),
            resources: Vec::new(),
            started_at: start,
            ended_at: None,
            end_reason: None,
        }
    }

    fn budget(hourly: Option<f64>, monthly: Option<f64>) -> BudgetSettings {
        BudgetSettings {
            max_cost_per_hour: hourly,
            monthly_usd: monthly,
            alert_fraction: 0.8,
        }
    }

    #[test]
    fn the_month_is_the_utc_calendar_month() {
        assert_eq!(month_bounds(DEC1), (DEC1, JAN1));
        assert_eq!(month_bounds(JAN1 - 1), (DEC1, JAN1));
    }

    #[test]
    fn spend_counts_what_was_accrued_and_what_runs_until_its_ttl_or_the_month_end() {
        let now = DEC1 + 10 * 3600;
        // `a` since Nov 30 22:00 at 1 $/h, no TTL; `b` at 0.5 $/h expiring in 2 h.
        let periods = [
            open("a", 1.0, DEC1 - 2 * 3600),
            open("b", 0.5, DEC1 + 9 * 3600),
        ];
        let s = spend(&periods, &|d| (d == "b").then_some(now + 7200), now);
        assert!((s.hourly_now - 1.5).abs() < 1e-12);
        // Accrued in December: a 10 h, b 1 h at 0.5.
        assert!((s.month_accrued - 10.5).abs() < 1e-9);
        // Committed: a until Jan 1 (734 h), b 2 h at 0.5.
        let a_hours = (JAN1 - now) as f64 / 3600.0;
        assert!((s.month_committed - (a_hours + 1.0)).abs() < 1e-9);
    }

    #[test]
    fn a_deployment_over_the_hourly_limit_is_refused_with_the_figures() {
        let now = DEC1;
        let s = spend(&[open("a", 0.9, DEC1 - 60)], &|_| None, now);
        let add = Addition {
            hourly_usd: 0.2,
            expires_at: None,
            placement: "aws/us-east-1/t3.small".into(),
        };
        let err = admit(&budget(Some(1.0), None), &s, &add, now).unwrap_err();
        assert_eq!(err.limit, Limit::Hourly);
        let text = err.to_string();
        assert!(text.contains("max_cost_per_hour is $1.0000/h"), "{text}");
        assert!(text.contains("$0.9000/h now"), "{text}");
        assert!(
            text.contains("aws/us-east-1/t3.small adds $0.2000/h"),
            "{text}"
        );
        // Exactly at the limit is allowed.
        let fits = Addition {
            hourly_usd: 0.1,
            ..add
        };
        assert!(admit(&budget(Some(1.0), None), &s, &fits, now).is_ok());
    }

    #[test]
    fn the_monthly_limit_counts_the_new_deployments_time_until_its_ttl() {
        let now = DEC1;
        let s = spend(&[], &|_| None, now);
        // 1 $/h for the rest of December (744 h) is over 500; with a 10 h TTL it is 10.
        let forever = Addition {
            hourly_usd: 1.0,
            expires_at: None,
            placement: "p".into(),
        };
        let err = admit(&budget(None, Some(500.0)), &s, &forever, now).unwrap_err();
        assert_eq!(err.limit, Limit::Monthly);
        assert!((err.adds_usd - 744.0).abs() < 1e-9);
        let short = Addition {
            expires_at: Some(now + 36_000),
            ..forever
        };
        assert!(admit(&budget(None, Some(500.0)), &s, &short, now).is_ok());
    }

    #[test]
    fn an_alert_is_due_from_the_alert_share_on() {
        let now = DEC1;
        let s = spend(&[open("a", 0.79, now)], &|_| None, now);
        assert!(alerts(&budget(Some(1.0), None), &s).is_empty());
        let s = spend(&[open("a", 0.80, now)], &|_| None, now);
        let a = alerts(&budget(Some(1.0), None), &s);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].limit, Limit::Hourly);
        assert!((a[0].fraction - 0.8).abs() < 1e-12);
    }
}
