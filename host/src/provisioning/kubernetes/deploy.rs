//! A Kubernetes deployment applied through the tracker, and deleted again.

use super::super::error::{DeployError, StepError};
use super::super::events::EventKind;
use super::super::options::{DeployEvent, DeployOptions};
use super::super::orchestrator::{Orchestrator, new_deployment_id};
use super::super::request::{DeployRequest, RequestError};
use super::{record_address, rollout};
use crate::kubernetes;
use crate::tracking::{AttemptIntent, AttemptOutcome, DeploymentRecord, DeploymentStatus};

impl Orchestrator {
    /// The Kubernetes branch of [`Orchestrator::deploy_with`].
    pub(in crate::provisioning) async fn deploy_kubernetes(
        &self,
        req: DeployRequest,
        opts: &DeployOptions,
        service_key: Option<String>,
    ) -> Result<DeploymentRecord, DeployError> {
        let id = req.deployment_id.clone().unwrap_or_else(new_deployment_id);
        // Everything checkable is checked before the record exists.
        let wanted = req.kubernetes_request(&id, &self.config.operator.scaling)?;
        let cluster_name = req
            .kubernetes
            .as_ref()
            .map(|k| k.cluster.clone())
            .unwrap_or_default();
        let cluster = self.clusters.cluster(&cluster_name).await.map_err(|e| {
            DeployError::InvalidRequest(RequestError {
                field: "kubernetes.cluster".into(),
                message: e.to_string(),
            })
        })?;
        let manifests = kubernetes::render(&wanted).map_err(|e| {
            DeployError::InvalidRequest(RequestError {
                field: "kubernetes".into(),
                message: e.to_string(),
            })
        })?;
        let target = manifests.target().clone();

        let tracker = &self.tracker;
        let _lock = tracker
            .try_lock(&id)?
            .ok_or_else(|| DeployError::Busy(id.clone()))?;
        let mut stored = req.clone();
        stored.deployment_id = Some(id.clone());
        let record = self.record_planned(&id, &stored, opts, service_key)?;
        let tier = wanted.tier.as_str();
        self.publish(
            &record,
            EventKind::Provisioning {
                candidate: format!("k8s:{cluster_name}"),
            },
        );
        self.step(
            opts,
            &id,
            DeploymentStatus::Provisioning,
            &format!(
                "applying {} object(s) to cluster {cluster_name} in {}",
                manifests.objects().len(),
                target.object()
            ),
        )?;
        let n = tracker.begin_attempt(
            &id,
            &AttemptIntent {
                provider: "kubernetes",
                region: &cluster_name,
                zone: None,
                instance_type: tier,
                spot: false,
                hourly_usd: self.kubernetes_hourly(&cluster_name, wanted.tier),
                idempotency_key: &format!("{id}-c1"),
            },
        )?;
        tracker.record_kubernetes(&id, n, &cluster_name, &target)?;
        let deployer = cluster.deployer().with_rollout(rollout(opts));

        if let Err(e) = deployer.apply(&manifests).await {
            let why = format!("applying to cluster {cluster_name} failed: {e}");
            tracker.finish_attempt(&id, n, AttemptOutcome::Failed, &why)?;
            return self
                .fail_kubernetes(&id, opts, e.into(), &target.object())
                .await;
        }
        self.step(
            opts,
            &id,
            DeploymentStatus::Provisioned,
            &format!(
                "{} object(s) applied to {cluster_name}:{} (field manager {})",
                manifests.objects().len(),
                target.object(),
                kubernetes::MANAGER
            ),
        )?;
        self.step(
            opts,
            &id,
            DeploymentStatus::Deploying,
            &format!(
                "waiting for the {} rollout (deadline {} s)",
                target.workload.as_str(),
                opts.health_timeout.as_secs()
            ),
        )?;
        match deployer.wait_for_rollout(&target).await {
            Ok(status) => {
                let detail = format!("rolled out: {}", status.describe());
                record_address(tracker, &deployer, &id, &target).await;
                tracker.finish_attempt(&id, n, AttemptOutcome::Used, &detail)?;
                opts.emit(DeployEvent::AttemptDone {
                    n,
                    outcome: AttemptOutcome::Used,
                    detail: detail.clone(),
                });
                self.step(opts, &id, DeploymentStatus::Active, &detail)?;
                Ok(tracker.get(&id)?)
            }
            Err(e) => {
                tracker.finish_attempt(&id, n, AttemptOutcome::Failed, &e.to_string())?;
                self.fail_kubernetes(&id, opts, e.into(), &target.object())
                    .await
            }
        }
    }

    /// Marks a Kubernetes deployment failed and deletes what it applied.
    pub(in crate::provisioning) async fn fail_kubernetes(
        &self,
        id: &str,
        opts: &DeployOptions,
        error: StepError,
        object: &str,
    ) -> Result<DeploymentRecord, DeployError> {
        self.step(opts, id, DeploymentStatus::Failed, &error.to_string())?;
        match self
            .terminate_locked(id, opts, "deleting the objects of a failed deployment")
            .await
        {
            Ok(_) => Err(DeployError::Unhealthy {
                id: id.to_string(),
                source: Box::new(error),
            }),
            Err(e) => Err(DeployError::CleanupFailed {
                id: id.to_string(),
                failure: error.to_string(),
                instance: object.to_string(),
                source: Box::new(StepError::from_cleanup(e)),
            }),
        }
    }

    /// Deletes a Kubernetes deployment's objects (the caller holds its lock and has
    /// moved it to `terminating`). Returns what was deleted, for the history.
    pub(in crate::provisioning) async fn delete_kubernetes(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> Result<String, StepError> {
        let Some(target) = rec.kubernetes.as_ref().filter(|_| rec.holds_resources()) else {
            return Ok("nothing was applied".into());
        };
        let deployer = self.deployer_of(rec, opts).await?;
        deployer.delete(target).await?;
        Ok(if target.owns_namespace {
            format!(
                "namespace {} deleted (the cluster deletes what is in it)",
                target.namespace
            )
        } else {
            format!("objects {} deleted", target.object())
        })
    }
}
