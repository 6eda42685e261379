//! Crash recovery of managed-cluster records: each state a dead process (or a
//! create run without waiting) left is resolved by asking the provider.

use super::super::error::StepError;
use super::super::options::DeployOptions;
use super::super::orchestrator::Orchestrator;
use super::super::recover::RecoveryReport;
use super::{cluster_ref, endpoint_of, resources_of, state_name, stored_request};
use crate::providers::ProviderHandle;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{self, ClusterState, ProviderError};
use crate::tracking::{AttemptOutcome, DeploymentRecord, DeploymentStatus};

/// What recovery did with one record.
enum Outcome {
    Adopted,
    Failed,
    Terminated,
    /// Checked: in place (active), or still on its way (provisioning).
    Verified,
}

impl Orchestrator {
    /// Resolves cluster record `rec` (the caller holds its lock):
    ///
    /// - `planned`: the provider was never called: `failed`;
    /// - `provisioning` without an id: the create's outcome is unknown, so the
    ///   provider is asked (by name, see [`Orchestrator::create_cluster`]): its
    ///   cluster is adopted, or the record is `failed` when it has none;
    /// - `provisioning`/`provisioned`/`deploying` with an id: `active` once the
    ///   cluster runs, left as is while it provisions, deleted and `failed` when
    ///   it failed, `failed` when it is gone;
    /// - `active`: checked to exist (`failed` when it is gone);
    /// - `terminating`: deleted until gone, then `terminated`.
    pub(in crate::provisioning) async fn recover_cluster(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> RecoveryReport {
        let mut report = RecoveryReport::default();
        let id = rec.id.clone();
        match self.recover_cluster_inner(rec, opts, &mut report).await {
            Ok(Outcome::Adopted) => report.adopted.push(id),
            Ok(Outcome::Failed) => report.failed.push(id),
            Ok(Outcome::Terminated) => report.terminated.push(id),
            Ok(Outcome::Verified) => report.verified.push(id),
            Err(e) => {
                let _ = self.tracker.note_error(&id, &format!("recovery: {e}"));
                report.errors.push((id, e.to_string()));
            }
        }
        report
    }

    async fn recover_cluster_inner(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
        report: &mut RecoveryReport,
    ) -> Result<Outcome, StepError> {
        let tracker = &self.tracker;
        let id = rec.id.as_str();
        let req = stored_request(rec)?;
        let attempts = tracker.attempts(id)?;
        #[allow(
            clippy::result_large_err,
            reason = "StepError is the layer's error; not hot"
        )]
        let fail_attempts = |why: &str| -> Result<(), StepError> {
            for a in &attempts {
                if matches!(a.outcome, AttemptOutcome::Pending | AttemptOutcome::Created) {
                    tracker.finish_attempt(id, a.n, AttemptOutcome::Failed, why)?;
                }
            }
            Ok(())
        };
        if rec.status == DeploymentStatus::Planned
            || (rec.status == DeploymentStatus::Provisioning && attempts.is_empty())
        {
            self.transition(
                id,
                DeploymentStatus::Failed,
                &format!(
                    "recovery: interrupted at {} before {} was asked; no cluster was created",
                    rec.status, req.provider
                ),
            )?;
            return Ok(Outcome::Failed);
        }
        let provider = self
            .providers
            .get(&req.provider)
            .map_err(|e| StepError::call("load", e))?;
        if rec.status == DeploymentStatus::Terminating {
            if let Some(r) = cluster_ref(rec, &req).filter(|_| rec.holds_resources()) {
                self.delete_cluster_until_gone(&provider, &r, opts).await?;
                self.clusters.forget(&req.name);
                report.deleted_instances.push(r.id);
            }
            tracker.record_released(id)?;
            self.transition(
                id,
                DeploymentStatus::Terminated,
                &format!("recovery: finished deleting cluster {}", req.name),
            )?;
            return Ok(Outcome::Terminated);
        }

        // The cluster as the provider sees it now.
        let seen: Option<wit::Cluster> = match cluster_ref(rec, &req) {
            None => {
                // Created or not? Only the provider knows.
                let Some(last) = attempts.last() else {
                    return Ok(Outcome::Verified);
                };
                match self
                    .find_cluster(&provider, rec, &req, &last.idempotency_key, opts)
                    .await?
                {
                    None => {
                        let why = format!(
                            "recovery: interrupted at {}; {} has no cluster {}, so none was created",
                            rec.status, req.provider, req.name
                        );
                        fail_attempts("interrupted by a crash")?;
                        self.transition(id, DeploymentStatus::Failed, &why)?;
                        return Ok(Outcome::Failed);
                    }
                    Some(c) => {
                        tracker.record_instance(
                            id,
                            Some(last.n),
                            &c.id,
                            &resources_of(&c),
                            endpoint_of(&c),
                        )?;
                        self.transition(
                            id,
                            DeploymentStatus::Provisioned,
                            &format!(
                                "recovery: {} has cluster {} ({}), created before the answer was recorded: adopted",
                                req.provider,
                                c.id,
                                state_name(c.state)
                            ),
                        )?;
                        Some(c)
                    }
                }
            }
            Some(r) => match opts.retry.run(|| provider.get_cluster(r.clone())).await {
                Ok(c) => Some(c),
                Err(CallError::Provider(ProviderError::NotFound(_))) => None,
                Err(e) => {
                    return Err(StepError::call(
                        format!("get-cluster {} ({})", r.name, r.id),
                        e,
                    ));
                }
            },
        };
        let status = tracker.get(id)?.status;
        let Some(c) = seen.filter(|c| c.state != ClusterState::Deleted) else {
            tracker.record_released(id)?;
            fail_attempts("its cluster is gone")?;
            self.transition(
                id,
                DeploymentStatus::Failed,
                &format!(
                    "recovery: cluster {} no longer exists at {}",
                    req.name, req.provider
                ),
            )?;
            return Ok(Outcome::Failed);
        };
        match c.state {
            ClusterState::Failed | ClusterState::Deleting => {
                let why = format!(
                    "recovery: cluster {} is {}{}",
                    req.name,
                    state_name(c.state),
                    c.detail
                        .as_deref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                );
                fail_attempts(&why)?;
                self.transition(id, DeploymentStatus::Failed, &why)?;
                self.delete_failed_cluster(&provider, rec, &req, &c, opts)
                    .await?;
                report.deleted_instances.push(c.id.clone());
                Ok(Outcome::Failed)
            }
            ClusterState::Running if endpoint_of(&c).is_some() => {
                if status == DeploymentStatus::Active {
                    return Ok(Outcome::Verified);
                }
                tracker.record_instance(id, None, &c.id, &resources_of(&c), endpoint_of(&c))?;
                for a in &attempts {
                    if matches!(a.outcome, AttemptOutcome::Pending | AttemptOutcome::Created) {
                        tracker.finish_attempt(
                            id,
                            a.n,
                            AttemptOutcome::Used,
                            &format!("recovery: cluster {} running", c.id),
                        )?;
                    }
                }
                self.walk_to_active(
                    id,
                    status,
                    &format!(
                        "recovery: cluster {} runs; API server {}",
                        req.name,
                        endpoint_of(&c).unwrap_or("-")
                    ),
                )?;
                Ok(Outcome::Adopted)
            }
            // Provisioning, updating, unknown (or running without an endpoint yet):
            // on its way; the next pass looks again.
            _ => {
                if status == DeploymentStatus::Provisioned {
                    self.transition(
                        id,
                        DeploymentStatus::Deploying,
                        &format!(
                            "recovery: waiting for cluster {} to run ({})",
                            req.name,
                            state_name(c.state)
                        ),
                    )?;
                }
                Ok(Outcome::Verified)
            }
        }
    }

    /// Deletes the cluster of a record that just failed (it holds it), then
    /// records it released. A deletion that does not finish leaves the record
    /// failed and holding it: the supervisor's cleanup deletes it later.
    async fn delete_failed_cluster(
        &self,
        provider: &ProviderHandle,
        rec: &DeploymentRecord,
        req: &super::ClusterRequest,
        c: &wit::Cluster,
        opts: &DeployOptions,
    ) -> Result<(), StepError> {
        let r = cluster_ref(rec, req).unwrap_or_else(|| wit::ClusterRef {
            id: c.id.clone(),
            name: req.name.clone(),
            region: req.region.clone(),
            resources: c.resources.clone(),
        });
        self.delete_cluster_until_gone(provider, &r, opts).await?;
        self.clusters.forget(&req.name);
        self.tracker.record_released(&rec.id)?;
        Ok(())
    }
}
