//! Spend, checked and reported: the operator's budget enforced before a
//! deployment is created (a clear refusal, nothing written), a
//! `budget-alert` event when a budget's alert share is reached, and the
//! accrued-cost report (`bpr costs`, the service's cost endpoint).
//!
//! Figures come from the usage ledger; deployments admitted but not yet
//! holding anything (between the check and their first instance) are counted
//! through in-memory reservations, so concurrent deploys in one process
//! cannot overrun a budget together.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use super::error::DeployError;
use super::events::EventKind;
use super::orchestrator::Orchestrator;
use super::plan::Plan;
use super::request::{DeployRequest, InstanceTarget};
use crate::clock::unix_now as now;
use crate::costs::budget::{self, Addition, BudgetRefusal, Limit, Spend};
use crate::costs::{self, CostReport, GroupBy};
use crate::kubernetes::Tier;
use crate::tracking::{DeploymentType, TrackError};

/// Admissions in flight and alerts already published. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(super) struct BudgetState {
    inner: Arc<Mutex<BudgetInner>>,
}

#[derive(Debug, Default)]
struct BudgetInner {
    next: u64,
    /// Admitted deployments not finished yet: (USD per hour, end of paid time).
    reserved: BTreeMap<u64, (f64, Option<i64>)>,
    /// Alerts published: the hourly one while above its share, the monthly
    /// one per month (its start).
    alerted: BTreeSet<(Limit, i64)>,
}

/// An admitted deployment's share of the budget, released when dropped (the
/// deploy finished: from then on its usage periods count).
#[derive(Debug)]
pub(super) struct Reservation {
    state: BudgetState,
    key: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut inner = self.state.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.reserved.remove(&self.key);
    }
}

impl Orchestrator {
    /// What is spent and committed now (see `budget::spend`), including
    /// deployments being admitted.
    pub fn spend(&self) -> Result<Spend, TrackError> {
        let now = now();
        let (month_start, _) = budget::month_bounds(now);
        let periods = self.tracker.usage_since(Some(month_start))?;
        let mut expiry = BTreeMap::new();
        for p in periods.iter().filter(|p| p.ended_at.is_none()) {
            if !expiry.contains_key(&p.deployment_id) {
                let e = self.tracker.get(&p.deployment_id)?.expires_at;
                expiry.insert(p.deployment_id.clone(), e);
            }
        }
        let mut s = budget::spend(&periods, &|d| expiry.get(d).copied().flatten(), now);
        let inner = self.budget.inner.lock().unwrap_or_else(|p| p.into_inner());
        for (hourly, expires_at) in inner.reserved.values() {
            let add = Addition {
                hourly_usd: *hourly,
                expires_at: *expires_at,
                placement: String::new(),
            };
            s.month_committed += add.month_commitment(&s, now);
            s.hourly_now += hourly;
        }
        Ok(s)
    }

    /// Accrued spend since `since` (unix seconds; everything without), grouped
    /// (see [`costs::report`]).
    pub fn costs(&self, since: Option<i64>, by: GroupBy) -> Result<CostReport, TrackError> {
        costs::report(&self.tracker, since, by)
    }

    /// Whether the operator's limits let `req` go ahead on `plan` (one of its
    /// VM candidates, or its cluster): the check a deploy makes before it
    /// records anything, made early by a service that answers before it
    /// deploys. Holds no share of the budget; the deploy checks again.
    pub fn check_budget(&self, req: &DeployRequest, plan: &Plan) -> Result<(), DeployError> {
        if req.deployment_type == DeploymentType::Kubernetes {
            return self.admit_kubernetes_request(req).map(drop);
        }
        if let Some(k) = plan
            .kubernetes
            .as_ref()
            .filter(|_| plan.candidates.is_empty())
        {
            return self.admit_kubernetes(req, &k.cluster, k.tier).map(drop);
        }
        self.admit_vm(req, plan.candidates.clone()).map(drop)
    }

    /// The hourly price of `tier` on cluster `cluster`: its share of the
    /// cluster's price in `[operator.costs.clusters]`, `None` when unpriced.
    pub fn kubernetes_hourly(&self, cluster: &str, tier: Tier) -> Option<f64> {
        let cost = self.config.operator.costs.clusters.get(cluster)?;
        let p = tier.profile();
        Some(cost.share_hourly(p.replicas, p.cpu_millis, p.memory_mib, p.gpus))
    }

    /// The VM candidates of `req` the operator's limits allow, in order, with
    /// the reservation that holds their share until the deploy ends. A
    /// candidate above `[operator.deployment] max_cost_per_hour` or one the
    /// budget cannot take is dropped; none left is a refusal naming the limit.
    pub(super) fn admit_vm(
        &self,
        req: &DeployRequest,
        candidates: Vec<InstanceTarget>,
    ) -> Result<(Vec<InstanceTarget>, Option<Reservation>), DeployError> {
        let cap = self.config.operator.deployment.policy.max_cost_per_hour;
        let b = &self.config.operator.budget;
        if cap.is_none() && b.max_cost_per_hour.is_none() && b.monthly_usd.is_none() {
            return Ok((candidates, None));
        }
        let now = now();
        let expires_at = req
            .ttl_secs
            .map(|t| now.saturating_add(t.min(i64::MAX as u64) as i64));
        let s = self.spend()?;
        let mut first_refusal = None;
        let mut kept = Vec::new();
        for c in candidates {
            let add = Addition {
                hourly_usd: c.hourly_usd.unwrap_or(0.0),
                expires_at,
                placement: c.label(),
            };
            let verdict = match cap {
                Some(max) if add.hourly_usd > max + 1e-9 => Err(BudgetRefusal {
                    limit: Limit::Deployment,
                    limit_usd: max,
                    used_usd: 0.0,
                    adds_usd: add.hourly_usd,
                    placement: add.placement.clone(),
                }),
                _ => budget::admit(b, &s, &add, now),
            };
            match verdict {
                Ok(()) => kept.push(c),
                Err(r) => {
                    tracing::info!("budget: candidate {} dropped: {r}", c.label());
                    first_refusal.get_or_insert(r);
                }
            }
        }
        if kept.is_empty() {
            if let Some(r) = first_refusal {
                return Err(r.into());
            }
            return Ok((kept, None));
        }
        let most = kept
            .iter()
            .map(|c| c.hourly_usd.unwrap_or(0.0))
            .fold(0.0, f64::max);
        let reservation = self.reserve(most, expires_at);
        self.publish_budget_alerts();
        Ok((kept, Some(reservation)))
    }

    /// A Kubernetes deployment of `tier` on `cluster` checked like
    /// [`Orchestrator::admit_vm`].
    pub(super) fn admit_kubernetes(
        &self,
        req: &DeployRequest,
        cluster: &str,
        tier: Tier,
    ) -> Result<Option<Reservation>, DeployError> {
        let hourly = self.kubernetes_hourly(cluster, tier).unwrap_or(0.0);
        let target = InstanceTarget {
            provider: "kubernetes".into(),
            region: cluster.to_string(),
            zone: None,
            instance_type: tier.as_str().to_string(),
            spot: false,
            hourly_usd: Some(hourly),
        };
        let (_, reservation) = self.admit_vm(req, vec![target])?;
        Ok(reservation)
    }

    /// [`Orchestrator::admit_kubernetes`] for a Kubernetes request.
    pub(super) fn admit_kubernetes_request(
        &self,
        req: &DeployRequest,
    ) -> Result<Option<Reservation>, DeployError> {
        match &req.kubernetes {
            Some(k) => self.admit_kubernetes(req, &k.cluster, k.tier),
            None => Ok(None),
        }
    }

    fn reserve(&self, hourly: f64, expires_at: Option<i64>) -> Reservation {
        let mut inner = self.budget.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.next += 1;
        let key = inner.next;
        inner.reserved.insert(key, (hourly, expires_at));
        Reservation {
            state: self.budget.clone(),
            key,
        }
    }

    /// Publishes a `budget-alert` for each budget whose alert share is reached
    /// and was not reached before (the hourly one again after it fell below;
    /// the monthly one once a month). Returns the alerts published.
    pub fn publish_budget_alerts(&self) -> Vec<budget::BudgetAlert> {
        let b = &self.config.operator.budget;
        if b.max_cost_per_hour.is_none() && b.monthly_usd.is_none() {
            return Vec::new();
        }
        let Ok(s) = self.spend() else {
            return Vec::new();
        };
        let due = budget::alerts(b, &s);
        let mut inner = self.budget.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !due.iter().any(|a| a.limit == Limit::Hourly) {
            inner.alerted.remove(&(Limit::Hourly, 0));
        }
        let mut published = Vec::new();
        for a in due {
            let key = match a.limit {
                Limit::Monthly => (Limit::Monthly, s.month_start),
                other => (other, 0),
            };
            if inner.alerted.insert(key) {
                tracing::warn!(
                    "budget: {} is {:.0} % used (${:.4} of ${:.4})",
                    a.limit,
                    a.fraction * 100.0,
                    a.used_usd,
                    a.limit_usd
                );
                self.events.publish_operator(EventKind::BudgetAlert {
                    limit: a.limit,
                    limit_usd: a.limit_usd,
                    used_usd: a.used_usd,
                });
                published.push(a);
            }
        }
        published
    }
}
