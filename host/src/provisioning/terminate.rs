//! Termination: delete what a deployment holds until it is gone, then
//! everything it left in every place it tried, then mark it `terminated` and
//! call its cleanup webhook.

use std::time::{Duration, Instant};

use super::error::{DeployError, StepError};
use super::instances::{labels_of, places_of};
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::webhook::post_webhook;
use crate::runtime::bindings::wit::{InstanceRef, ResourceRef};
use crate::tracking::{DeploymentRecord, DeploymentStatus, DeploymentType};

impl Orchestrator {
    /// Terminate deployment `id`: delete its instance until gone, then mark it
    /// `terminated` (and call its cleanup webhook). Idempotent: an already
    /// terminated deployment is returned as is.
    pub async fn terminate(&self, id: &str) -> Result<DeploymentRecord, DeployError> {
        self.terminate_with(id, &DeployOptions::default(), "terminated on request")
            .await
    }

    /// [`Orchestrator::terminate`] with explicit timing and the reason for the history.
    pub async fn terminate_with(
        &self,
        id: &str,
        opts: &DeployOptions,
        reason: &str,
    ) -> Result<DeploymentRecord, DeployError> {
        let tracker = &self.tracker;
        tracker.get(id)?;
        let _lock = tracker
            .try_lock(id)?
            .ok_or_else(|| DeployError::Busy(id.to_string()))?;
        let rec = tracker.get(id)?;
        if rec.status.is_in_flight() && rec.status != DeploymentStatus::Terminating {
            // Left mid-flight by a process that died (we hold its lock): resolve it first.
            self.recover_one(&rec, opts).await;
        }
        let out = self.terminate_locked(id, opts, reason).await;
        let rec = tracker.get(id)?;
        post_webhook(&self.config.operator.webhooks, &rec, out.as_ref().err()).await;
        out
    }

    /// [`Orchestrator::terminate_with`], waiting (with backoff) while another
    /// holder has the deployment (the supervisor checking an active one holds
    /// it for a `list-instances` call) for up to `patience`; after that it is
    /// [`DeployError::Busy`]. For callers that must terminate now, not "next
    /// pass": an API termination, the manager's `terminated` and reconcile.
    pub async fn terminate_when_free(
        &self,
        id: &str,
        opts: &DeployOptions,
        reason: &str,
        patience: Duration,
    ) -> Result<DeploymentRecord, DeployError> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            match self.terminate_with(id, opts, reason).await {
                Err(DeployError::Busy(_)) if started.elapsed() < patience => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                out => return out,
            }
        }
    }

    /// Terminate while holding the deployment's lock.
    pub(super) async fn terminate_locked(
        &self,
        id: &str,
        opts: &DeployOptions,
        reason: &str,
    ) -> Result<DeploymentRecord, DeployError> {
        let tracker = &self.tracker;
        let rec = tracker.get(id)?;
        match rec.status {
            DeploymentStatus::Terminated => return Ok(rec),
            DeploymentStatus::Failed if !rec.holds_resources() => return Ok(rec),
            DeploymentStatus::Terminating => {}
            _ => {
                self.step(opts, id, DeploymentStatus::Terminating, reason)?;
            }
        }
        // Every delete below runs under this process's lease on `id`.
        tracker.check_lease(id)?;
        let fail = |source: StepError| {
            let _ = tracker.note_error(id, &source.to_string());
            DeployError::TerminateFailed {
                id: id.to_string(),
                source: Box::new(source),
            }
        };
        if rec.deployment_type == DeploymentType::Kubernetes {
            let what = self.delete_kubernetes(&rec, opts).await.map_err(fail)?;
            tracker.record_released(id)?;
            self.step(opts, id, DeploymentStatus::Terminated, &what)?;
            return Ok(tracker.get(id)?);
        }
        if rec.deployment_type == DeploymentType::Cluster {
            let what = self.delete_cluster_of(&rec, opts).await.map_err(fail)?;
            tracker.record_released(id)?;
            self.step(opts, id, DeploymentStatus::Terminated, &what)?;
            return Ok(tracker.get(id)?);
        }
        let (Some(pname), Some(region)) = (rec.provider.clone(), rec.region.clone()) else {
            self.step(
                opts,
                id,
                DeploymentStatus::Terminated,
                "nothing was created",
            )?;
            return Ok(tracker.get(id)?);
        };
        let provider = self
            .providers
            .get(&pname)
            .map_err(|e| fail(StepError::call("load", e)))?;
        let labels = labels_of(&rec);
        let mut deleted = Vec::new();
        if let Some(iid) = rec
            .instance_id
            .clone()
            .filter(|_| rec.released_at.is_none())
        {
            let r = InstanceRef {
                id: iid.clone(),
                region: region.clone(),
                zone: rec.zone.clone(),
                resources: rec.resources.iter().map(ResourceRef::from).collect(),
                labels: labels.clone(),
            };
            tracker.check_lease(id)?;
            self.delete_until_gone(&provider, &r, opts)
                .await
                .map_err(fail)?;
            deleted.push(iid);
        }
        // Instances an interrupted heal left: held by an open usage period,
        // not named by the record (possibly on another provider or region).
        for p in tracker.usage_of(id)?.into_iter().filter(|p| {
            p.ended_at.is_none()
                && p.provider != "kubernetes"
                && Some(&p.instance_id) != rec.instance_id.as_ref()
        }) {
            tracker.check_lease(id)?;
            self.delete_period_instance(&rec, &p, opts)
                .await
                .map_err(fail)?;
            deleted.push(p.instance_id);
        }
        // Everything else it made, in every place it tried (a crash between
        // create and record, a key or a firewall made before the instance):
        // "terminated" means nothing of it is left.
        let attempts = tracker.attempts(id)?;
        for i in self
            .clear_places(&rec, &places_of(&rec, &attempts), opts)
            .await
            .map_err(fail)?
        {
            if !deleted.contains(&i) {
                deleted.push(i);
            }
        }
        tracker.record_cleared(id)?;
        let why = if deleted.is_empty() {
            "no instance left to delete; nothing else of it left".to_string()
        } else {
            format!(
                "deleted instance(s) {}; nothing else of it left",
                deleted.join(", ")
            )
        };
        self.step(opts, id, DeploymentStatus::Terminated, &why)?;
        Ok(tracker.get(id)?)
    }
}
