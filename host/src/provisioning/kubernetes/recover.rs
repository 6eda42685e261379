//! Recovery of a Kubernetes deployment a dead process left mid-flight.

use super::super::error::StepError;
use super::super::options::DeployOptions;
use super::super::orchestrator::Orchestrator;
use super::super::recover::RecoveryReport;
use super::record_address;
use crate::kubernetes;
use crate::tracking::{AttemptOutcome, DeploymentRecord, DeploymentStatus, TrackError, Tracker};

impl Orchestrator {
    /// The Kubernetes branch of recovery; the caller holds the record's lock.
    pub(in crate::provisioning) async fn recover_kubernetes(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> RecoveryReport {
        let tracker = &self.tracker;
        let mut report = RecoveryReport::default();
        let id = rec.id.clone();
        let fail_attempts = |tracker: &Tracker| -> Result<(), TrackError> {
            for a in tracker.attempts(&id)? {
                if matches!(a.outcome, AttemptOutcome::Pending | AttemptOutcome::Created) {
                    tracker.finish_attempt(
                        &id,
                        a.n,
                        AttemptOutcome::Failed,
                        "interrupted by a crash",
                    )?;
                }
            }
            Ok(())
        };
        let result: Result<(), StepError> = async {
            let Some(target) = rec.kubernetes.clone().filter(|_| rec.holds_resources()) else {
                // Nothing was applied (the target is recorded before the first object).
                fail_attempts(tracker)?;
                if rec.status == DeploymentStatus::Terminating {
                    self.transition(
                        &id,
                        DeploymentStatus::Terminated,
                        "recovery: nothing was applied",
                    )?;
                    report.terminated.push(id.clone());
                } else if rec.status != DeploymentStatus::Active {
                    self.transition(
                        &id,
                        DeploymentStatus::Failed,
                        &format!(
                            "recovery: interrupted at {} before anything was applied",
                            rec.status
                        ),
                    )?;
                    report.failed.push(id.clone());
                }
                return Ok(());
            };
            let deployer = self.deployer_of(rec, opts).await?;
            let status = match deployer.status(&target).await {
                Ok(s) => Some(s),
                Err(kubernetes::Error::WorkloadNotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            match (rec.status, status) {
                (DeploymentStatus::Terminating, _) => {
                    let what = self.delete_kubernetes(rec, opts).await?;
                    tracker.record_released(&id)?;
                    self.transition(
                        &id,
                        DeploymentStatus::Terminated,
                        &format!("recovery: finished terminating; {what}"),
                    )?;
                    report.terminated.push(id.clone());
                }
                (DeploymentStatus::Active, Some(_)) => report.verified.push(id.clone()),
                (DeploymentStatus::Active, None) => {
                    // Whatever is left (namespace, Service...) is deleted by cleanup's
                    // pass over failed records that still hold resources.
                    self.transition(
                        &id,
                        DeploymentStatus::Failed,
                        &format!(
                            "recovery: its {} {} no longer exists",
                            target.workload.as_str(),
                            target.object()
                        ),
                    )?;
                    report.failed.push(id.clone());
                }
                (at, Some(s)) if s.rolled_out() => {
                    let why = format!(
                        "recovery: adopted {} (rolled out after the process stopped at {at}: {})",
                        target.object(),
                        s.describe()
                    );
                    for a in tracker.attempts(&id)? {
                        if matches!(a.outcome, AttemptOutcome::Pending | AttemptOutcome::Created) {
                            tracker.finish_attempt(&id, a.n, AttemptOutcome::Used, &why)?;
                        }
                    }
                    record_address(tracker, &deployer, &id, &target).await;
                    self.walk_to_active(&id, at, &why)?;
                    report.adopted.push(id.clone());
                }
                (at, _) => {
                    fail_attempts(tracker)?;
                    self.transition(
                        &id,
                        DeploymentStatus::Failed,
                        &format!("recovery: interrupted at {at} before the rollout completed"),
                    )?;
                    self.transition(
                        &id,
                        DeploymentStatus::Terminating,
                        "recovery: deleting what was applied",
                    )?;
                    let what = self.delete_kubernetes(rec, opts).await?;
                    tracker.record_released(&id)?;
                    self.transition(
                        &id,
                        DeploymentStatus::Terminated,
                        &format!("recovery: {what}"),
                    )?;
                    report.deleted_instances.push(target.object());
                    report.failed.push(id.clone());
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tracker.note_error(&id, &format!("recovery: {e}"));
            report.errors.push((id, e.to_string()));
        }
        report
    }
}
