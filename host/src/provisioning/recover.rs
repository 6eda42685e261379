//! Crash recovery: records a dead process left mid-flight resolved by asking
//! the provider what carries their label.

use std::collections::BTreeSet;

use serde::Serialize;

use super::instances::{address_of, instance_ref, labels_of, places_of, resources_of};
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use crate::runtime::bindings::wit::{Instance, InstanceState};
use crate::tracking::{AttemptOutcome, DeploymentRecord, DeploymentStatus};

/// What [`Orchestrator::recover`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecoveryReport {
    /// Records adopted as active (their instance existed and ran).
    pub adopted: Vec<String>,
    /// Records marked failed (nothing usable existed; half-made instances deleted).
    pub failed: Vec<String>,
    /// Records whose termination was finished.
    pub terminated: Vec<String>,
    /// Active records checked and found in place.
    pub verified: Vec<String>,
    /// Instances deleted.
    pub deleted_instances: Vec<String>,
    /// Records another live process is working on (left alone).
    pub busy: Vec<String>,
    /// Records that could not be resolved now (retried next time), with why.
    pub errors: Vec<(String, String)>,
}

impl Orchestrator {
    /// Deployment `id` as it stands once nobody works on it: one a dead process
    /// left mid-flight is recovered first (adopted if its instance runs, else
    /// failed and cleaned up). [`super::DeployError::Busy`] while a live process
    /// works on it.
    pub async fn resolve(
        &self,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, super::DeployError> {
        let _lock = self
            .tracker
            .try_lock(id)?
            .ok_or_else(|| super::DeployError::Busy(id.to_string()))?;
        let rec = self.tracker.get(id)?;
        if rec.status.is_in_flight() {
            let report = self.recover_one(&rec, opts).await;
            for (_, e) in report.errors {
                tracing::warn!(deployment = id, "recovery: {e}");
            }
        }
        Ok(self.tracker.get(id)?)
    }

    /// Moves an adopted record from `from` up the chain to `active`, one allowed
    /// step at a time, each with `why` in the history.
    pub(super) fn walk_to_active(
        &self,
        id: &str,
        from: DeploymentStatus,
        why: &str,
    ) -> Result<(), crate::tracking::TrackError> {
        let mut at = from;
        for next in [
            DeploymentStatus::Provisioning,
            DeploymentStatus::Provisioned,
            DeploymentStatus::Deploying,
            DeploymentStatus::Active,
        ] {
            if at.can_become(next, true) {
                self.transition(id, next, why)?;
                at = next;
            }
        }
        Ok(())
    }

    /// Resolve every deployment a dead process left mid-flight, and check
    /// active ones still exist. Each is resolved by asking its provider
    /// (`list-instances` with `bpr-deployment=<id>` in every region it
    /// tried): a running instance is adopted (the deployment becomes active),
    /// half-made ones are deleted and the record is marked failed; a
    /// `terminating` one is finished. Deployments a live process holds are
    /// left alone.
    pub async fn recover(&self) -> RecoveryReport {
        self.recover_with(&DeployOptions::default()).await
    }

    /// [`Orchestrator::recover`] with explicit timing.
    pub async fn recover_with(&self, opts: &DeployOptions) -> RecoveryReport {
        let tracker = self.tracker.clone();
        let mut report = RecoveryReport::default();
        let records = match (
            tracker.in_flight(),
            tracker.with_status(DeploymentStatus::Active),
        ) {
            (Ok(mut a), Ok(b)) => {
                a.extend(b);
                a
            }
            (Err(e), _) | (_, Err(e)) => {
                report.errors.push(("*".into(), e.to_string()));
                return report;
            }
        };
        for rec in records {
            let lock = match tracker.try_lock(&rec.id) {
                Ok(Some(l)) => l,
                Ok(None) => {
                    report.busy.push(rec.id.clone());
                    continue;
                }
                Err(e) => {
                    report.errors.push((rec.id.clone(), e.to_string()));
                    continue;
                }
            };
            // Re-read under the lock: its owner may have finished meanwhile.
            let rec = match tracker.get(&rec.id) {
                Ok(r) => r,
                Err(e) => {
                    report.errors.push((rec.id.clone(), e.to_string()));
                    continue;
                }
            };
            let one = self.recover_one(&rec, opts).await;
            drop(lock);
            report.deleted_instances.extend(one.deleted_instances);
            report.adopted.extend(one.adopted);
            report.failed.extend(one.failed);
            report.terminated.extend(one.terminated);
            report.verified.extend(one.verified);
            report.errors.extend(one.errors);
        }
        report
    }

    /// Resolve one record; the caller holds its lock.
    pub(super) async fn recover_one(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> RecoveryReport {
        let tracker = &self.tracker;
        let mut report = RecoveryReport::default();
        let id = rec.id.clone();
        if !rec.status.is_in_flight() && rec.status != DeploymentStatus::Active {
            return report;
        }
        if rec.deployment_type == crate::tracking::DeploymentType::Kubernetes {
            return self.recover_kubernetes(rec, opts).await;
        }
        if rec.deployment_type == crate::tracking::DeploymentType::Cluster {
            return self.recover_cluster(rec, opts).await;
        }
        let attempts = match tracker.attempts(&id) {
            Ok(a) => a,
            Err(e) => {
                report.errors.push((id, e.to_string()));
                return report;
            }
        };
        // Every (provider, region) it may have created something in.
        let places = places_of(rec, &attempts);
        let mut found: Vec<(String, Instance)> = Vec::new();
        for (pname, region) in &places {
            let provider = match self.providers.get(pname) {
                Ok(p) => p,
                Err(e) => {
                    report.errors.push((id.clone(), format!("{pname}: {e}")));
                    return report;
                }
            };
            match self.find_labelled(&provider, region, &id, opts).await {
                Ok(v) => found.extend(v.into_iter().map(|i| (pname.clone(), i))),
                Err(e) => {
                    report.errors.push((id.clone(), format!("{pname}: {e}")));
                    return report;
                }
            }
        }
        let labels = labels_of(rec);

        // Which one, if any, to keep.
        let keep: Option<usize> = match rec.status {
            DeploymentStatus::Terminating => None,
            DeploymentStatus::Active => found.iter().position(|(_, i)| {
                Some(&i.id) == rec.instance_id.as_ref() && i.state != InstanceState::Failed
            }),
            _ => {
                let running = |i: &Instance| i.state == InstanceState::Running;
                found
                    .iter()
                    .position(|(_, i)| running(i) && Some(&i.id) == rec.instance_id.as_ref())
                    .or_else(|| {
                        // Created but not yet recorded (a crash right after create): the
                        // newest attempt's place.
                        let last = attempts.last()?;
                        found.iter().position(|(p, i)| {
                            running(i) && *p == last.provider && i.region == last.region
                        })
                    })
            }
        };
        // Delete everything else: duplicates, half-made ones, or all when terminating.
        for (k, (pname, inst)) in found.iter().enumerate() {
            if Some(k) == keep {
                continue;
            }
            let Ok(provider) = self.providers.get(pname) else {
                continue;
            };
            match self
                .delete_until_gone(&provider, &instance_ref(inst, &labels), opts)
                .await
            {
                Ok(()) => report.deleted_instances.push(inst.id.clone()),
                Err(e) => {
                    let _ = tracker.note_error(&id, &format!("recovery: {e}"));
                    report.errors.push((id.clone(), e.to_string()));
                    return report;
                }
            }
        }
        // What it made next to its instances (keys, firewalls...): all of it
        // unless an instance is kept; then what other places hold.
        let clear: BTreeSet<(String, String)> = match (rec.status, keep) {
            (DeploymentStatus::Active, Some(_)) => BTreeSet::new(),
            (DeploymentStatus::Terminating, _) | (_, None) => places.clone(),
            (_, Some(k)) => {
                let (pname, inst) = &found[k];
                places
                    .iter()
                    .filter(|(p, r)| !(p == pname && *r == inst.region))
                    .cloned()
                    .collect()
            }
        };
        if !clear.is_empty() {
            match self.clear_places(rec, &clear, opts).await {
                Ok(more) => {
                    for i in more {
                        if !report.deleted_instances.contains(&i) {
                            report.deleted_instances.push(i);
                        }
                    }
                }
                // Nothing is decided on a place that could not be cleared: the
                // record stays as it is and the next pass tries again.
                Err(e) if keep.is_none() => {
                    let _ = tracker.note_error(&id, &format!("recovery: {e}"));
                    report.errors.push((id.clone(), e.to_string()));
                    return report;
                }
                // The instance it keeps runs anyway; terminate clears the rest.
                Err(e) => {
                    let _ = tracker.note_error(&id, &format!("recovery: {e}"));
                }
            }
        }
        let deleted = report.deleted_instances.len();
        let result: Result<(), crate::tracking::TrackError> = (|| {
            match (rec.status, keep) {
                (DeploymentStatus::Terminating, _) => {
                    tracker.record_cleared(&id)?;
                    self.transition(
                        &id,
                        DeploymentStatus::Terminated,
                        &format!("recovery: finished terminating ({deleted} instance(s) deleted; nothing else of it left)"),
                    )?;
                    report.terminated.push(id.clone());
                }
                (DeploymentStatus::Active, Some(_)) => {
                    if deleted > 0 {
                        tracker.note_error(
                            &id,
                            &format!("recovery: deleted {deleted} stray instance(s)"),
                        )?;
                    }
                    report.verified.push(id.clone());
                }
                // With auto-heal the health pass replaces an instance that is gone
                // (a spot interruption) instead of failing the deployment.
                (DeploymentStatus::Active, None) if self.config.operator.health.auto_heal => {}
                (DeploymentStatus::Active, None) => {
                    tracker.record_cleared(&id)?;
                    self.transition(
                        &id,
                        DeploymentStatus::Failed,
                        "recovery: its instance no longer exists",
                    )?;
                    report.failed.push(id.clone());
                }
                (status, Some(k)) => {
                    let (pname, inst) = &found[k];
                    let n = attempts
                        .iter()
                        .rev()
                        .find(|a| a.provider == *pname && a.region == inst.region)
                        .map(|a| a.n);
                    tracker.record_instance(
                        &id,
                        None,
                        &inst.id,
                        &resources_of(inst),
                        address_of(inst).as_deref(),
                    )?;
                    for a in &attempts {
                        if Some(a.n) == n {
                            tracker.finish_attempt(
                                &id,
                                a.n,
                                AttemptOutcome::Used,
                                &format!("recovery: adopted running instance {}", inst.id),
                            )?;
                        } else if a.outcome == AttemptOutcome::Pending
                            || a.outcome == AttemptOutcome::Created
                        {
                            tracker.finish_attempt(
                                &id,
                                a.n,
                                AttemptOutcome::Failed,
                                "interrupted by a crash",
                            )?;
                        }
                    }
                    let why = format!(
                        "recovery: adopted running instance {} (found by label after the process stopped at {status})",
                        inst.id
                    );
                    self.walk_to_active(&id, status, &why)?;
                    report.adopted.push(id.clone());
                }
                (status, None) => {
                    tracker.record_cleared(&id)?;
                    for a in &attempts {
                        if a.outcome == AttemptOutcome::Pending
                            || a.outcome == AttemptOutcome::Created
                        {
                            tracker.finish_attempt(
                                &id,
                                a.n,
                                AttemptOutcome::Failed,
                                "interrupted by a crash",
                            )?;
                        }
                    }
                    self.transition(
                        &id,
                        DeploymentStatus::Failed,
                        &format!("recovery: interrupted at {status}; nothing running to adopt; {deleted} half-made instance(s) and everything made next to them deleted"),
                    )?;
                    report.failed.push(id.clone());
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            report.errors.push((id, e.to_string()));
        }
        report
    }
}
