//! The health pass: every active deployment observed, its consecutive
//! failures counted, marked unhealthy after `failures_before_unhealthy` of
//! them (at once when the provider stopped or deleted its instance: a spot
//! interruption), and — with `[operator.health] auto_heal` — healed.
//!
//! An observation is the HTTP check when the request gave one, else the
//! provider's instance state (a `workloads` provider checks on the machine
//! itself), or for Kubernetes the ready replicas. A provider or cluster that
//! does not answer teaches nothing about the deployment: the streak is left
//! as it is rather than healing because of someone else's outage.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::events::{self, EventKind};
use super::heal::HealError;
use super::instances::labels_of;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::request::DeployRequest;
use crate::config::HealthSettings;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{InstanceRef, InstanceState, ProviderError, ResourceRef};
use crate::tracking::{DeploymentRecord, DeploymentStatus, DeploymentType};

/// What one observation of an active deployment saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Its check passed.
    Healthy,
    /// Its check failed (HTTP check, instance not running, a Kubernetes
    /// rollout not available).
    Failing(String),
    /// The provider stopped or deleted its instance (a spot interruption, or
    /// an action outside the host): unhealthy at once.
    Interrupted(String),
    /// Nothing could be learned (the provider or cluster did not answer).
    Unknown(String),
}

/// What a new observation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Nothing worth an event.
    None,
    /// It just became unhealthy, for this reason.
    BecameUnhealthy(String),
    /// It was unhealthy and passed its check.
    Recovered,
}

/// What the health pass remembers between passes: consecutive failures and
/// the last reason per deployment, and which are unhealthy now.
#[derive(Debug, Default, Clone)]
pub struct HealthWatch {
    failures: BTreeMap<String, (u32, String)>,
    unhealthy: BTreeSet<String>,
}

impl HealthWatch {
    /// Consecutive failed checks of `id`.
    pub fn failures(&self, id: &str) -> u32 {
        self.failures.get(id).map_or(0, |f| f.0)
    }

    /// Whether `id` is unhealthy now.
    pub fn is_unhealthy(&self, id: &str) -> bool {
        self.unhealthy.contains(id)
    }

    /// The deployments unhealthy now.
    pub fn unhealthy(&self) -> impl Iterator<Item = &str> {
        self.unhealthy.iter().map(String::as_str)
    }

    /// Counts `obs` for `id` against `threshold` consecutive failures.
    fn record(&mut self, id: &str, obs: &Observation, threshold: u32) -> Change {
        let threshold = threshold.max(1);
        let (n, reason) = match obs {
            Observation::Healthy => {
                self.failures.remove(id);
                return match self.unhealthy.remove(id) {
                    true => Change::Recovered,
                    false => Change::None,
                };
            }
            Observation::Unknown(_) => return Change::None,
            Observation::Failing(r) => (self.failures(id) + 1, r.clone()),
            Observation::Interrupted(r) => (self.failures(id).max(threshold), r.clone()),
        };
        self.failures.insert(id.to_string(), (n, reason.clone()));
        if n >= threshold && self.unhealthy.insert(id.to_string()) {
            let why = match obs {
                Observation::Interrupted(_) => reason,
                _ => format!("{n} consecutive failed check(s), last: {reason}"),
            };
            return Change::BecameUnhealthy(why);
        }
        Change::None
    }

    /// The last failing reason of `id`.
    fn reason(&self, id: &str) -> String {
        self.failures
            .get(id)
            .map(|f| f.1.clone())
            .unwrap_or_default()
    }

    /// A heal did not work: `threshold` more failures before the next one.
    fn heal_failed(&mut self, id: &str) {
        if let Some(f) = self.failures.get_mut(id) {
            f.0 = 0;
        }
    }

    /// Forget deployments that are no longer active, and a healed one.
    fn retain(&mut self, active: &BTreeSet<&str>) {
        self.failures.retain(|id, _| active.contains(id.as_str()));
        self.unhealthy.retain(|id| active.contains(id.as_str()));
    }

    fn forget(&mut self, id: &str) {
        self.failures.remove(id);
        self.unhealthy.remove(id);
    }
}

/// What one health pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HealthReport {
    /// Deployments observed.
    pub checked: Vec<String>,
    /// Deployments that became unhealthy, with why.
    pub unhealthy: Vec<(String, String)>,
    /// Deployments that passed again after being unhealthy.
    pub recovered: Vec<String>,
    /// Deployments healed, with their new instance.
    pub healed: Vec<(String, String)>,
    /// Heals that did not work, with why (the old instance keeps serving).
    pub heal_failed: Vec<(String, String)>,
    /// Deployments another task held (observed next pass).
    pub busy: Vec<String>,
}

impl Orchestrator {
    /// One health pass under `[operator.health]`; see the module docs.
    pub async fn health_pass(&self, watch: &mut HealthWatch, opts: &DeployOptions) -> HealthReport {
        let settings = self.config.operator.health.clone();
        self.health_pass_with(watch, &settings, opts).await
    }

    /// [`Orchestrator::health_pass`] with explicit settings.
    pub async fn health_pass_with(
        &self,
        watch: &mut HealthWatch,
        settings: &HealthSettings,
        opts: &DeployOptions,
    ) -> HealthReport {
        let mut report = HealthReport::default();
        let Ok(active) = self.tracker.with_status(DeploymentStatus::Active) else {
            return report;
        };
        watch.retain(&active.iter().map(|r| r.id.as_str()).collect());
        let threshold = settings.failures_before_unhealthy;
        for rec in active {
            // A managed cluster's existence is checked by recovery each pass;
            // it has no workload to observe or heal.
            if rec.deployment_type == DeploymentType::Cluster {
                continue;
            }
            let id = rec.id.clone();
            // A deployment someone works on (deploying, suspending, healing) is not observed.
            let lock = match self.tracker.try_lock(&id) {
                Ok(Some(l)) => l,
                _ => {
                    report.busy.push(id);
                    continue;
                }
            };
            let Ok(rec) = self.tracker.get(&id) else {
                continue;
            };
            if rec.status != DeploymentStatus::Active {
                continue;
            }
            let obs = self.observe(&rec).await;
            report.checked.push(id.clone());
            match watch.record(&id, &obs, threshold) {
                Change::BecameUnhealthy(why) => {
                    tracing::warn!(deployment = %id, "unhealthy: {why}");
                    let _ = self.tracker.note_history(&id, &format!("unhealthy: {why}"));
                    self.publish(
                        &rec,
                        EventKind::Unhealthy {
                            reason: why.clone(),
                        },
                    );
                    report.unhealthy.push((id.clone(), why));
                }
                Change::Recovered => {
                    let _ = self.tracker.note_history(&id, "healthy again");
                    if let Some(kind) = events::for_transition(&rec, "healthy again") {
                        self.publish(&rec, kind);
                    }
                    report.recovered.push(id.clone());
                }
                Change::None => {}
            }
            if !(settings.auto_heal && watch.is_unhealthy(&id) && watch.failures(&id) >= threshold)
            {
                continue;
            }
            let reason = watch.reason(&id);
            let healed = if rec.deployment_type == DeploymentType::Kubernetes {
                // Re-applying takes the deployment's lock itself.
                drop(lock);
                self.heal(&id, &reason, opts).await
            } else {
                let out = self.heal_locked(&id, &reason, opts).await;
                drop(lock);
                out
            };
            match healed {
                Ok(now) => {
                    watch.forget(&id);
                    report
                        .healed
                        .push((id.clone(), now.instance_id.unwrap_or_default()));
                }
                Err(HealError::Busy(_)) => report.busy.push(id.clone()),
                Err(e) => {
                    tracing::warn!(deployment = %id, "heal failed: {e}");
                    watch.heal_failed(&id);
                    report.heal_failed.push((id.clone(), e.to_string()));
                }
            }
        }
        report
    }

    /// Checks every active deployment's health once and publishes
    /// [`EventKind::Unhealthy`] on the first failed check (once per streak;
    /// `unhealthy` holds the ids failing now) and running again when one
    /// recovers. Heals nothing: [`Orchestrator::health_pass`] is the pass the
    /// supervisor runs, with the operator's threshold and auto-heal.
    pub async fn check_health(&self, unhealthy: &mut BTreeSet<String>) {
        let mut watch = HealthWatch {
            failures: BTreeMap::new(),
            unhealthy: std::mem::take(unhealthy),
        };
        let settings = HealthSettings {
            failures_before_unhealthy: 1,
            auto_heal: false,
            ..HealthSettings::default()
        };
        self.health_pass_with(&mut watch, &settings, &DeployOptions::default())
            .await;
        *unhealthy = watch.unhealthy;
    }

    /// One observation of active deployment `rec`.
    pub async fn observe(&self, rec: &DeploymentRecord) -> Observation {
        if rec.deployment_type == DeploymentType::Kubernetes {
            let Some(target) = rec.kubernetes.clone() else {
                return Observation::Unknown("no Kubernetes target recorded".into());
            };
            let deployer = match self.deployer_of(rec, &DeployOptions::default()).await {
                Ok(d) => d,
                Err(e) => return Observation::Unknown(e.to_string()),
            };
            return match deployer.status(&target).await {
                // No pod ready, or the rollout says it is not available (a
                // Deployment's `Available=False`: fewer ready than it needs).
                Ok(s) if s.desired > 0 && (s.ready == 0 || unavailable(&s)) => {
                    Observation::Failing(format!("not available ({})", s.describe()))
                }
                Ok(_) => Observation::Healthy,
                Err(e) => Observation::Unknown(e.to_string()),
            };
        }
        let (Some(pname), Some(iid)) = (rec.provider.as_deref(), rec.instance_id.clone()) else {
            return Observation::Unknown("no instance recorded".into());
        };
        let provider = match self.providers.get(pname) {
            Ok(p) => p,
            Err(e) => return Observation::Unknown(e.to_string()),
        };
        let r = InstanceRef {
            id: iid.clone(),
            region: rec.region.clone().unwrap_or_default(),
            zone: rec.zone.clone(),
            resources: rec.resources.iter().map(ResourceRef::from).collect(),
            labels: labels_of(rec),
        };
        let instance = match provider.get_instance(r).await {
            Ok(i) => i,
            Err(CallError::Provider(ProviderError::NotFound(m))) => {
                return Observation::Interrupted(format!(
                    "instance {iid} no longer exists at {pname} ({m}): reclaimed (spot) or deleted outside bpr"
                ));
            }
            Err(e) => return Observation::Unknown(e.to_string()),
        };
        let detail = instance
            .detail
            .as_deref()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        match instance.state {
            InstanceState::Running => {}
            InstanceState::Stopping
            | InstanceState::Stopped
            | InstanceState::Terminating
            | InstanceState::Terminated => {
                return Observation::Interrupted(format!(
                    "instance {} is {}{detail}: stopped by the provider (a spot interruption) or outside bpr",
                    instance.id,
                    state_name(instance.state)
                ));
            }
            s => {
                return Observation::Failing(format!(
                    "instance {} is {}{detail}",
                    instance.id,
                    state_name(s)
                ));
            }
        }
        // A provider that places workloads reports running only while its check passes.
        if self.runs_workloads(pname) {
            return Observation::Healthy;
        }
        let Some(check) = serde_json::from_str::<DeployRequest>(&rec.request_json)
            .ok()
            .and_then(|r| r.health)
        else {
            return Observation::Healthy;
        };
        let Some(address) = instance
            .public_ipv4
            .clone()
            .or(instance.private_ipv4.clone())
            .or(rec.address.clone())
        else {
            return Observation::Failing(format!("instance {} has no address", instance.id));
        };
        match super::health::check_once(&address, &check).await {
            Ok(_) => Observation::Healthy,
            Err(seen) => Observation::Failing(seen.to_string()),
        }
    }
}

/// Whether the workload reports the condition `Available=False`.
fn unavailable(s: &crate::kubernetes::WorkloadStatus) -> bool {
    s.conditions
        .iter()
        .any(|c| c.type_ == "Available" && c.status == "False")
}

/// The WIT name of an instance state, for messages.
fn state_name(s: InstanceState) -> &'static str {
    match s {
        InstanceState::Pending => "pending",
        InstanceState::Running => "running",
        InstanceState::Stopping => "stopping",
        InstanceState::Stopped => "stopped",
        InstanceState::Terminating => "terminating",
        InstanceState::Terminated => "terminated",
        InstanceState::Failed => "failed",
        InstanceState::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing() -> Observation {
        Observation::Failing("http://10.0.0.1:80/ answered 500".into())
    }

    #[test]
    fn a_deployment_is_unhealthy_after_the_threshold_of_consecutive_failures() {
        let mut w = HealthWatch::default();
        assert_eq!(w.record("d", &failing(), 3), Change::None);
        assert_eq!(w.record("d", &failing(), 3), Change::None);
        let Change::BecameUnhealthy(why) = w.record("d", &failing(), 3) else {
            panic!("the third failure makes it unhealthy");
        };
        assert!(
            why.starts_with("3 consecutive failed check(s), last: http://"),
            "{why}"
        );
        // Once per streak.
        assert_eq!(w.record("d", &failing(), 3), Change::None);
        assert_eq!(w.failures("d"), 4);
    }

    #[test]
    fn a_passing_check_resets_the_streak() {
        let mut w = HealthWatch::default();
        w.record("d", &failing(), 3);
        w.record("d", &failing(), 3);
        assert_eq!(w.record("d", &Observation::Healthy, 3), Change::None);
        assert_eq!(w.failures("d"), 0);
        assert_eq!(w.record("d", &failing(), 3), Change::None);
    }

    #[test]
    fn an_interruption_is_unhealthy_at_once() {
        let mut w = HealthWatch::default();
        let obs = Observation::Interrupted("instance i-1 is Stopped".into());
        assert_eq!(
            w.record("d", &obs, 3),
            Change::BecameUnhealthy("instance i-1 is Stopped".into())
        );
        assert!(w.is_unhealthy("d"));
    }

    #[test]
    fn an_unknown_observation_leaves_the_streak_alone() {
        let mut w = HealthWatch::default();
        w.record("d", &failing(), 2);
        assert_eq!(
            w.record("d", &Observation::Unknown("timeout".into()), 2),
            Change::None
        );
        assert_eq!(w.failures("d"), 1);
    }

    #[test]
    fn recovering_is_reported_once() {
        let mut w = HealthWatch::default();
        w.record("d", &failing(), 1);
        assert_eq!(w.record("d", &Observation::Healthy, 1), Change::Recovered);
        assert_eq!(w.record("d", &Observation::Healthy, 1), Change::None);
    }

    #[test]
    fn a_rollout_reporting_available_false_is_unavailable_and_one_without_conditions_is_not() {
        use crate::kubernetes::{WorkloadCondition, WorkloadKind, WorkloadStatus};
        let mut s = WorkloadStatus {
            kind: WorkloadKind::Deployment,
            desired: 2,
            current: 2,
            ready: 2,
            available: 2,
            updated: 2,
            generation: 1,
            observed_generation: 1,
            conditions: vec![],
        };
        assert!(!unavailable(&s));
        s.conditions.push(WorkloadCondition {
            type_: "Available".into(),
            status: "False".into(),
            reason: Some("MinimumReplicasUnavailable".into()),
            message: None,
        });
        assert!(unavailable(&s));
    }

    #[test]
    fn a_failed_heal_waits_for_a_new_streak() {
        let mut w = HealthWatch::default();
        w.record("d", &failing(), 2);
        w.record("d", &failing(), 2);
        w.heal_failed("d");
        assert!(w.is_unhealthy("d"), "still unhealthy");
        assert_eq!(w.failures("d"), 0);
        w.record("d", &failing(), 2);
        assert_eq!(w.failures("d"), 1);
    }
}
