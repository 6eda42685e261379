//! The sections that govern a deployment's life after it is active:
//! `[operator.health]` (checks and auto-heal), `[operator.payment]` (what
//! expiry does), `[operator.budget]` (spend limits) and `[operator.costs]`
//! (what a Kubernetes cluster costs). Parsed here from their own TOML shapes
//! so that `toml_dto.rs` only wires them in.
//!
//! ```toml
//! [operator.health]
//! interval_secs = 60               # time between two checks of an active deployment
//! failures_before_unhealthy = 3    # consecutive failed checks before it is unhealthy
//! auto_heal = false                # replace an unhealthy (or interrupted) instance
//!
//! [operator.payment]
//! grace_secs = 0                   # 0: terminate at expiry; > 0: suspend, then terminate
//!
//! [operator.budget]
//! max_cost_per_hour = 5.0          # all deployments holding resources together; default: none
//! monthly_usd = 1000.0             # UTC calendar month, spent + committed; default: none
//! alert_fraction = 0.8             # an event when this share of a budget is reached
//!
//! [operator.costs.clusters.lab]    # what cluster `lab` costs, for the tier share
//! hourly_usd = 0.40
//! vcpus = 8
//! memory_gib = 32                  # optional
//! gpus = 1                         # optional
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// `[operator.health]`: how active deployments are watched.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// Time between two checks of an active deployment. Default: 60 s.
    pub interval: Duration,
    /// Consecutive failed checks before a deployment is marked unhealthy
    /// (an instance the provider reports gone or stopped counts at once).
    /// Default: 3.
    pub failures_before_unhealthy: u32,
    /// Replace an unhealthy deployment's instance through the failover path:
    /// the new one first, the old one deleted once the new one is healthy.
    /// Default: false (only the event and the history).
    pub auto_heal: bool,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            failures_before_unhealthy: 3,
            auto_heal: false,
        }
    }
}

/// `[operator.payment]`: what happens when a deployment's paid time (its TTL)
/// runs out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaymentSettings {
    /// Time after expiry during which a renewal brings a suspended deployment
    /// back. Zero terminates at expiry. With a grace period, at expiry a
    /// Kubernetes deployment is scaled to zero and a VM is stopped where its
    /// provider exports `power` (else terminated); after the grace period it is
    /// terminated. Default: 0.
    pub grace: Duration,
}

/// `[operator.budget]`: limits on spend, checked before a deployment is
/// created.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSettings {
    /// The hourly price of every deployment holding resources, plus the new
    /// one's, may not exceed this (USD per hour). Default: none.
    pub max_cost_per_hour: Option<f64>,
    /// Spend in the current UTC calendar month (accrued, plus what running
    /// deployments and the new one commit until the month ends or their TTL
    /// does) may not exceed this (USD). Default: none.
    pub monthly_usd: Option<f64>,
    /// Share of a budget at which a `budget-alert` event is published.
    /// Default: 0.8.
    pub alert_fraction: f64,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        Self {
            max_cost_per_hour: None,
            monthly_usd: None,
            alert_fraction: 0.8,
        }
    }
}

/// What one Kubernetes cluster costs: a deployment pays its tier's share.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterCost {
    /// The cluster's price (nodes and control plane), USD per hour.
    pub hourly_usd: f64,
    /// vCPUs its nodes offer to workloads.
    pub vcpus: f64,
    /// Memory its nodes offer, in GiB; without it only CPU decides the share.
    pub memory_gib: Option<f64>,
    /// GPUs its nodes offer; without it GPUs do not count.
    pub gpus: Option<f64>,
}

impl ClusterCost {
    /// The hourly price of `replicas` replicas of `cpu_millis`/`memory_mib`/`gpus`
    /// each: the cluster's price times the largest share of one of its
    /// resources they request (at most the whole cluster).
    pub fn share_hourly(&self, replicas: u32, cpu_millis: u32, memory_mib: u32, gpus: u32) -> f64 {
        let n = f64::from(replicas);
        let mut share = n * f64::from(cpu_millis) / 1000.0 / self.vcpus;
        if let Some(m) = self.memory_gib {
            share = share.max(n * f64::from(memory_mib) / 1024.0 / m);
        }
        if let Some(g) = self.gpus.filter(|g| *g > 0.0) {
            share = share.max(n * f64::from(gpus) / g);
        }
        self.hourly_usd * share.min(1.0)
    }
}

/// `[operator.costs]`: prices the host cannot learn from a provider.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostSettings {
    /// Kubernetes clusters by name. A cluster without an entry costs nothing
    /// in the accounting (and `bpr costs` says it is unpriced).
    pub clusters: BTreeMap<String, ClusterCost>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct HealthToml {
    interval_secs: Option<u64>,
    failures_before_unhealthy: Option<u32>,
    auto_heal: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PaymentToml {
    grace_secs: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct BudgetToml {
    max_cost_per_hour: Option<f64>,
    monthly_usd: Option<f64>,
    alert_fraction: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CostsToml {
    #[serde(default)]
    clusters: BTreeMap<String, ClusterCostToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterCostToml {
    hourly_usd: f64,
    vcpus: f64,
    memory_gib: Option<f64>,
    gpus: Option<f64>,
}

/// The four sections, checked. Errors are `(dotted key, what to do)`.
pub(super) struct Lifecycle {
    pub health: HealthSettings,
    pub payment: PaymentSettings,
    pub budget: BudgetSettings,
    pub costs: CostSettings,
}

fn positive(key: &str, v: f64, what: &str) -> Result<f64, (String, String)> {
    if v > 0.0 && v.is_finite() {
        Ok(v)
    } else {
        Err((
            key.to_string(),
            format!("must be a positive {what}, got {v}"),
        ))
    }
}

pub(super) fn convert(
    health: HealthToml,
    payment: PaymentToml,
    budget: BudgetToml,
    costs: CostsToml,
) -> Result<Lifecycle, (String, String)> {
    let hd = HealthSettings::default();
    let interval = health.interval_secs.unwrap_or(hd.interval.as_secs());
    if interval == 0 {
        return Err((
            "operator.health.interval_secs".into(),
            "must be at least 1 second".into(),
        ));
    }
    let failures = health
        .failures_before_unhealthy
        .unwrap_or(hd.failures_before_unhealthy);
    if failures == 0 {
        return Err((
            "operator.health.failures_before_unhealthy".into(),
            "must be at least 1".into(),
        ));
    }
    let bd = BudgetSettings::default();
    let max_cost_per_hour = budget
        .max_cost_per_hour
        .map(|v| {
            positive(
                "operator.budget.max_cost_per_hour",
                v,
                "number of USD per hour",
            )
        })
        .transpose()?;
    let monthly_usd = budget
        .monthly_usd
        .map(|v| positive("operator.budget.monthly_usd", v, "number of USD"))
        .transpose()?;
    let alert_fraction = budget.alert_fraction.unwrap_or(bd.alert_fraction);
    if !(alert_fraction > 0.0 && alert_fraction <= 1.0) {
        return Err((
            "operator.budget.alert_fraction".into(),
            format!("must be in (0, 1], got {alert_fraction}"),
        ));
    }
    let mut clusters = BTreeMap::new();
    for (name, c) in costs.clusters {
        let key = |k: &str| format!("operator.costs.clusters.{name}.{k}");
        if !(c.hourly_usd >= 0.0 && c.hourly_usd.is_finite()) {
            return Err((
                key("hourly_usd"),
                format!(
                    "must be a number of USD per hour >= 0, got {}",
                    c.hourly_usd
                ),
            ));
        }
        let vcpus = positive(&key("vcpus"), c.vcpus, "number of vCPUs")?;
        let memory_gib = c
            .memory_gib
            .map(|v| positive(&key("memory_gib"), v, "number of GiB"))
            .transpose()?;
        let gpus = c
            .gpus
            .map(|v| positive(&key("gpus"), v, "number of GPUs"))
            .transpose()?;
        clusters.insert(
            name,
            ClusterCost {
                hourly_usd: c.hourly_usd,
                vcpus,
                memory_gib,
                gpus,
            },
        );
    }
    Ok(Lifecycle {
        health: HealthSettings {
            interval: Duration::from_secs(interval),
            failures_before_unhealthy: failures,
            auto_heal: health.auto_heal.unwrap_or(hd.auto_heal),
        },
        payment: PaymentSettings {
            grace: Duration::from_secs(payment.grace_secs.unwrap_or(0)),
        },
        budget: BudgetSettings {
            max_cost_per_hour,
            monthly_usd,
            alert_fraction,
        },
        costs: CostSettings { clusters },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tier_pays_the_largest_share_of_the_cluster_it_requests() {
        let c = ClusterCost {
            hourly_usd: 0.80,
            vcpus: 8.0,
            memory_gib: Some(32.0),
            gpus: None,
        };
        // 2 x 500m of 8 vCPUs = 1/8; 2 x 512Mi of 32 GiB = 1/32: CPU decides.
        assert!((c.share_hourly(2, 500, 512, 0) - 0.10).abs() < 1e-12);
        // 3 x 2000m = 6/8 of CPU; 3 x 4 GiB = 12/32 of memory: CPU decides.
        assert!((c.share_hourly(3, 2000, 4096, 1) - 0.60).abs() < 1e-12);
        // More than the cluster holds is the whole cluster.
        assert!((c.share_hourly(20, 2000, 4096, 0) - 0.80).abs() < 1e-12);
    }

    #[test]
    fn memory_decides_when_it_is_the_larger_share() {
        let c = ClusterCost {
            hourly_usd: 1.0,
            vcpus: 64.0,
            memory_gib: Some(8.0),
            gpus: None,
        };
        // 1 x 4 GiB of 8 GiB = 1/2 beats 1 x 2 vCPU of 64.
        assert!((c.share_hourly(1, 2000, 4096, 0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn zero_failures_before_unhealthy_is_refused_naming_the_key() {
        let err = convert(
            HealthToml {
                failures_before_unhealthy: Some(0),
                ..HealthToml::default()
            },
            PaymentToml::default(),
            BudgetToml::default(),
            CostsToml::default(),
        )
        .err()
        .unwrap();
        assert_eq!(err.0, "operator.health.failures_before_unhealthy");
    }

    #[test]
    fn defaults_are_documented_values() {
        let l = convert(
            HealthToml::default(),
            PaymentToml::default(),
            BudgetToml::default(),
            CostsToml::default(),
        )
        .ok()
        .unwrap();
        assert_eq!(l.health, HealthSettings::default());
        assert_eq!(l.health.interval, Duration::from_secs(60));
        assert_eq!(l.health.failures_before_unhealthy, 3);
        assert!(!l.health.auto_heal);
        assert_eq!(l.payment.grace, Duration::ZERO);
        assert_eq!(l.budget.alert_fraction, 0.8);
        assert!(l.budget.monthly_usd.is_none() && l.budget.max_cost_per_hour.is_none());
    }
}
