//! A running Kubernetes deployment read and changed: status, address, a new
//! image or tier, suspension when payment expires and resumption when it is
//! renewed.

use super::super::error::{DeployError, StepError};
use super::super::events::EventKind;
use super::super::options::DeployOptions;
use super::super::orchestrator::Orchestrator;
use super::super::request::DeployRequest;
use super::{KubernetesChange, stored_request};
use crate::kubernetes::{ServiceAddress, WorkloadStatus};
use crate::tracking::DeploymentStatus;

impl Orchestrator {
    /// Replica counts and conditions of Kubernetes deployment `id`, read from its
    /// cluster now.
    pub async fn workload_status(&self, id: &str) -> Result<WorkloadStatus, DeployError> {
        let rec = self.tracker.get(id)?;
        let target = self.kubernetes_target(&rec)?;
        let failed = |source: StepError| DeployError::Kubernetes {
            id: id.to_string(),
            source: Box::new(source),
        };
        let deployer = self
            .deployer_of(&rec, &DeployOptions::default())
            .await
            .map_err(failed)?;
        deployer.status(&target).await.map_err(|e| failed(e.into()))
    }

    /// Where Kubernetes deployment `id`'s Service is reached, read from its cluster now
    /// (`None` without ports). Records the address when it changed, e.g. once the cloud
    /// assigned a public LoadBalancer its ingress after the rollout.
    pub async fn service_address(&self, id: &str) -> Result<Option<ServiceAddress>, DeployError> {
        let tracker = self.tracker.clone();
        let rec = tracker.get(id)?;
        let target = self.kubernetes_target(&rec)?;
        let failed = |source: StepError| DeployError::Kubernetes {
            id: id.to_string(),
            source: Box::new(source),
        };
        let deployer = self
            .deployer_of(&rec, &DeployOptions::default())
            .await
            .map_err(failed)?;
        let address = deployer
            .service_address(&target)
            .await
            .map_err(|e| failed(e.into()))?;
        if let Some(a) = &address
            && rec.address.as_deref() != Some(a.preferred())
        {
            tracker.record_address(id, a.preferred())?;
        }
        Ok(address)
    }

    /// Update a running Kubernetes deployment's image and/or tier, and wait for the
    /// rollout. On a failed rollout the deployment stays active on the cluster (the
    /// previous pods keep serving while Kubernetes retries) and the error says why.
    pub async fn update(
        &self,
        id: &str,
        change: &KubernetesChange,
        opts: &DeployOptions,
    ) -> Result<WorkloadStatus, DeployError> {
        self.change_kubernetes(id, opts, false, |req| {
            let mut what = Vec::new();
            if let Some(image) = &change.image {
                if let Some(crate::workload::WorkloadSpec {
                    source: crate::workload::WorkloadSource::Container { image: old, .. },
                    ..
                }) = req.workload.as_mut()
                {
                    *old = image.clone();
                }
                what.push(format!("image {image}"));
            }
            if let (Some(tier), Some(k)) = (change.tier, req.kubernetes.as_mut()) {
                k.tier = tier;
                what.push(format!("tier {tier}"));
            }
            if what.is_empty() {
                "re-applied unchanged".to_string()
            } else {
                format!("updated to {}", what.join(", "))
            }
        })
        .await
    }

    /// Payment expired: scale Kubernetes deployment `id` to zero (no pods, no
    /// autoscaler; storage, Service and namespace stay) and wait until no pod is
    /// left. The record becomes `suspended` and stops accruing cost.
    pub async fn suspend(
        &self,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<WorkloadStatus, DeployError> {
        self.set_suspended(id, opts, true).await
    }

    /// Payment renewed: scale Kubernetes deployment `id` back to its tier and wait
    /// for the rollout. The record is `active` again.
    pub async fn resume(
        &self,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<WorkloadStatus, DeployError> {
        self.set_suspended(id, opts, false).await
    }

    async fn set_suspended(
        &self,
        id: &str,
        opts: &DeployOptions,
        suspended: bool,
    ) -> Result<WorkloadStatus, DeployError> {
        let status = self
            .change_kubernetes(id, opts, false, |req| {
                if let Some(k) = req.kubernetes.as_mut() {
                    k.suspended = suspended;
                }
                if suspended {
                    "suspended: scaled to zero".to_string()
                } else {
                    "resumed: scaled back to its tier".to_string()
                }
            })
            .await?;
        // The status and the ledger follow what the cluster now runs.
        let rec = self.tracker.get(id)?;
        if suspended {
            self.tracker.close_usage(id, "suspended: scaled to zero")?;
            if rec.status == DeploymentStatus::Active {
                let rec = self.transition(
                    id,
                    DeploymentStatus::Suspended,
                    &format!("scaled to zero: {}", status.describe()),
                )?;
                self.publish(
                    &rec,
                    EventKind::Suspended {
                        reason: "scaled to zero".into(),
                        grace_until: self.grace_until(&rec),
                    },
                );
            }
        } else {
            self.tracker.reopen_usage(id)?;
            if rec.status == DeploymentStatus::Suspended {
                self.transition(
                    id,
                    DeploymentStatus::Active,
                    &format!("scaled back to its tier: {}", status.describe()),
                )?;
            }
        }
        Ok(status)
    }

    /// Applies `edit` to the stored request of an active Kubernetes deployment,
    /// re-applies it and waits for the rollout; records the new request and an event.
    /// Re-apply running Kubernetes deployment `id` as it should be (objects
    /// deleted outside the host come back) and replace its pods (a rollout
    /// restart), then wait for the rollout: how an unhealthy one is healed.
    pub(crate) async fn restart_kubernetes(
        &self,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<WorkloadStatus, DeployError> {
        self.change_kubernetes(id, opts, true, |_| {
            "re-applied and its pods restarted".to_string()
        })
        .await
    }

    /// Applies the stored request as `edit` changes it (with a rollout restart
    /// when `restart`), and waits for the rollout.
    async fn change_kubernetes(
        &self,
        id: &str,
        opts: &DeployOptions,
        restart: bool,
        edit: impl FnOnce(&mut DeployRequest) -> String,
    ) -> Result<WorkloadStatus, DeployError> {
        let tracker = self.tracker.clone();
        tracker.get(id)?;
        let _lock = tracker
            .try_lock(id)?
            .ok_or_else(|| DeployError::Busy(id.to_string()))?;
        let rec = tracker.get(id)?;
        self.kubernetes_target(&rec)?;
        if !matches!(
            rec.status,
            DeploymentStatus::Active | DeploymentStatus::Suspended
        ) {
            return Err(DeployError::Kubernetes {
                id: id.to_string(),
                source: Box::new(StepError::WrongState(format!(
                    "only an active or suspended deployment can be changed; it is {}",
                    rec.status
                ))),
            });
        }
        let mut req = stored_request(&rec)?;
        let what = edit(&mut req);
        let wanted = req.kubernetes_request(id, &self.config.operator.scaling)?;
        let deployer =
            self.deployer_of(&rec, opts)
                .await
                .map_err(|source| DeployError::Kubernetes {
                    id: id.to_string(),
                    source: Box::new(source),
                })?;
        let json = serde_json::to_string(&req).unwrap_or_default();
        // Recorded first: after a crash mid-apply the record describes what the cluster
        // is being moved to, and a re-run converges on it.
        tracker.record_event(id, &format!("{what} (applying)"), &json)?;
        let applied = match restart {
            true => deployer.restart(&wanted).await,
            false => deployer.deploy(&wanted).await,
        };
        let status = applied.map_err(|e| {
            let _ = tracker.note_error(id, &e.to_string());
            DeployError::Kubernetes {
                id: id.to_string(),
                source: Box::new(e.into()),
            }
        })?;
        tracker.record_event(id, &format!("{what}: {}", status.describe()), &json)?;
        Ok(status)
    }
}
