//! Kubernetes deployments through the tracker: the same records, states, locks, TTL
//! and recovery as VM deployments, with a cluster where a provider would be.
//!
//! Durability follows the VM path: the record (and its one attempt) is committed
//! before anything is applied, and where the objects go (cluster, namespace, name;
//! all deterministic) is recorded before the first object is applied, so a crash at
//! any point leaves a record that knows what to delete.
//!
//! The record's `provider/region/type` reads `kubernetes/<cluster>/<tier>`;
//! `instance_id` is `namespace/name`.

use crate::Host;
use crate::kubernetes::{
    self, Cluster, Deployer, RolloutOptions, ServiceAddress, WorkloadRef, WorkloadStatus,
};
use crate::tracking::{
    AttemptIntent, AttemptOutcome, DeploymentRecord, DeploymentStatus, DeploymentType, TrackError,
    Tracker,
};

use super::recover::RecoveryReport;
use super::request::RequestError;
use super::{DeployError, DeployEvent, DeployOptions, DeployRequest, new_deployment_id};

/// What `Host::update` changes in a running Kubernetes deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesChange {
    /// New container image.
    pub image: Option<String>,
    /// New payment tier.
    pub tier: Option<kubernetes::Tier>,
}

fn rollout(opts: &DeployOptions) -> RolloutOptions {
    RolloutOptions {
        deadline: opts.health_timeout,
        poll_interval: opts.poll_initial.min(opts.poll_max),
    }
}

fn stored_request(rec: &DeploymentRecord) -> Result<DeployRequest, DeployError> {
    serde_json::from_str(&rec.request_json).map_err(|e| {
        DeployError::Track(TrackError::Corrupt {
            id: rec.id.clone(),
            message: format!("request_json: {e}"),
        })
    })
}

impl Host {
    /// A deployer for the record's cluster.
    async fn deployer_of(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> Result<Deployer, String> {
        let name = rec
            .cluster
            .as_deref()
            .ok_or_else(|| format!("deployment {} names no cluster", rec.id))?;
        let cluster: Cluster = self.cluster(name).await.map_err(|e| e.to_string())?;
        Ok(cluster.deployer().with_rollout(rollout(opts)))
    }

    /// The Kubernetes branch of [`Host::deploy_with`].
    pub(super) async fn deploy_kubernetes(
        &self,
        req: DeployRequest,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        let id = req.deployment_id.clone().unwrap_or_else(new_deployment_id);
        // Everything checkable is checked before the record exists.
        let wanted = req.kubernetes_request(&id, &self.config().operator.scaling)?;
        let cluster_name = req
            .kubernetes
            .as_ref()
            .map(|k| k.cluster.clone())
            .unwrap_or_default();
        let cluster = self.cluster(&cluster_name).await.map_err(|e| {
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

        let tracker = self.tracker();
        let _lock = tracker
            .try_lock(&id)?
            .ok_or_else(|| DeployError::Busy(id.clone()))?;
        let mut stored = req.clone();
        stored.deployment_id = Some(id.clone());
        super::record_planned(&tracker, &id, &stored, opts)?;
        let tier = wanted.tier.as_str();
        self.step(
            &tracker,
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
                hourly_usd: None,
                idempotency_key: &format!("{id}-c1"),
            },
        )?;
        tracker.record_kubernetes(&id, n, &cluster_name, &target)?;
        let deployer = cluster.deployer().with_rollout(rollout(opts));

        if let Err(e) = deployer.apply(&manifests).await {
            let why = format!("applying to cluster {cluster_name} failed: {e}");
            tracker.finish_attempt(&id, n, AttemptOutcome::Failed, &why)?;
            return self
                .fail_kubernetes(&tracker, &id, opts, why, &target.object())
                .await;
        }
        self.step(
            &tracker,
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
            &tracker,
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
                record_address(&tracker, &deployer, &id, &target).await;
                tracker.finish_attempt(&id, n, AttemptOutcome::Used, &detail)?;
                opts.emit(DeployEvent::AttemptDone {
                    n,
                    outcome: AttemptOutcome::Used,
                    detail: detail.clone(),
                });
                self.step(&tracker, opts, &id, DeploymentStatus::Active, &detail)?;
                Ok(tracker.get(&id)?)
            }
            Err(e) => {
                let why = e.to_string();
                tracker.finish_attempt(&id, n, AttemptOutcome::Failed, &why)?;
                self.fail_kubernetes(&tracker, &id, opts, why, &target.object())
                    .await
            }
        }
    }

    /// Marks a Kubernetes deployment failed and deletes what it applied.
    async fn fail_kubernetes(
        &self,
        tracker: &Tracker,
        id: &str,
        opts: &DeployOptions,
        why: String,
        object: &str,
    ) -> Result<DeploymentRecord, DeployError> {
        self.step(tracker, opts, id, DeploymentStatus::Failed, &why)?;
        match self
            .terminate_locked(
                tracker,
                id,
                opts,
                "deleting the objects of a failed deployment",
            )
            .await
        {
            Ok(_) => Err(DeployError::Unhealthy {
                id: id.to_string(),
                message: why,
            }),
            Err(e) => Err(DeployError::CleanupFailed {
                id: id.to_string(),
                message: why,
                instance: object.to_string(),
                cleanup: e.to_string(),
            }),
        }
    }

    /// Deletes a Kubernetes deployment's objects (the caller holds its lock and has
    /// moved it to `terminating`). Returns what was deleted, for the history.
    pub(super) async fn delete_kubernetes(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> Result<String, String> {
        let Some(target) = rec.kubernetes.as_ref().filter(|_| rec.holds_resources()) else {
            return Ok("nothing was applied".into());
        };
        let deployer = self.deployer_of(rec, opts).await?;
        deployer.delete(target).await.map_err(|e| e.to_string())?;
        Ok(if target.owns_namespace {
            format!(
                "namespace {} deleted (the cluster deletes what is in it)",
                target.namespace
            )
        } else {
            format!("objects {} deleted", target.object())
        })
    }

    /// The Kubernetes branch of recovery; the caller holds the record's lock.
    pub(super) async fn recover_kubernetes(
        &self,
        tracker: &Tracker,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> RecoveryReport {
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
        let result: Result<(), String> = async {
            let Some(target) = rec.kubernetes.clone().filter(|_| rec.holds_resources()) else {
                // Nothing was applied (the target is recorded before the first object).
                fail_attempts(tracker).map_err(|e| e.to_string())?;
                if rec.status == DeploymentStatus::Terminating {
                    tracker
                        .transition(
                            &id,
                            DeploymentStatus::Terminated,
                            "recovery: nothing was applied",
                        )
                        .map_err(|e| e.to_string())?;
                    report.terminated.push(id.clone());
                } else if rec.status != DeploymentStatus::Active {
                    tracker
                        .transition(
                            &id,
                            DeploymentStatus::Failed,
                            &format!(
                                "recovery: interrupted at {} before anything was applied",
                                rec.status
                            ),
                        )
                        .map_err(|e| e.to_string())?;
                    report.failed.push(id.clone());
                }
                return Ok(());
            };
            let deployer = self.deployer_of(rec, opts).await?;
            let status = match deployer.status(&target).await {
                Ok(s) => Some(s),
                Err(kubernetes::Error::WorkloadNotFound { .. }) => None,
                Err(e) => return Err(e.to_string()),
            };
            match (rec.status, status) {
                (DeploymentStatus::Terminating, _) => {
                    let what = self.delete_kubernetes(rec, opts).await?;
                    tracker.record_released(&id).map_err(|e| e.to_string())?;
                    tracker
                        .transition(
                            &id,
                            DeploymentStatus::Terminated,
                            &format!("recovery: finished terminating; {what}"),
                        )
                        .map_err(|e| e.to_string())?;
                    report.terminated.push(id.clone());
                }
                (DeploymentStatus::Active, Some(_)) => report.verified.push(id.clone()),
                (DeploymentStatus::Active, None) => {
                    // Whatever is left (namespace, Service...) is deleted by cleanup's
                    // pass over failed records that still hold resources.
                    tracker
                        .transition(
                            &id,
                            DeploymentStatus::Failed,
                            &format!(
                                "recovery: its {} {} no longer exists",
                                target.workload.as_str(),
                                target.object()
                            ),
                        )
                        .map_err(|e| e.to_string())?;
                    report.failed.push(id.clone());
                }
                (at, Some(s)) if s.rolled_out() => {
                    let why = format!(
                        "recovery: adopted {} (rolled out after the process stopped at {at}: {})",
                        target.object(),
                        s.describe()
                    );
                    for a in tracker.attempts(&id).map_err(|e| e.to_string())? {
                        if matches!(a.outcome, AttemptOutcome::Pending | AttemptOutcome::Created) {
                            tracker
                                .finish_attempt(&id, a.n, AttemptOutcome::Used, &why)
                                .map_err(|e| e.to_string())?;
                        }
                    }
                    record_address(tracker, &deployer, &id, &target).await;
                    super::recover::walk_to_active(tracker, &id, at, &why)
                        .map_err(|e| e.to_string())?;
                    report.adopted.push(id.clone());
                }
                (at, _) => {
                    fail_attempts(tracker).map_err(|e| e.to_string())?;
                    tracker
                        .transition(
                            &id,
                            DeploymentStatus::Failed,
                            &format!("recovery: interrupted at {at} before the rollout completed"),
                        )
                        .map_err(|e| e.to_string())?;
                    tracker
                        .transition(
                            &id,
                            DeploymentStatus::Terminating,
                            "recovery: deleting what was applied",
                        )
                        .map_err(|e| e.to_string())?;
                    let what = self.delete_kubernetes(rec, opts).await?;
                    tracker.record_released(&id).map_err(|e| e.to_string())?;
                    tracker
                        .transition(
                            &id,
                            DeploymentStatus::Terminated,
                            &format!("recovery: {what}"),
                        )
                        .map_err(|e| e.to_string())?;
                    report.deleted_instances.push(target.object());
                    report.failed.push(id.clone());
                }
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            let _ = tracker.note_error(&id, &format!("recovery: {e}"));
            report.errors.push((id, e));
        }
        report
    }

    /// Replica counts and conditions of Kubernetes deployment `id`, read from its
    /// cluster now.
    pub async fn workload_status(&self, id: &str) -> Result<WorkloadStatus, DeployError> {
        let rec = self.tracker().get(id)?;
        let target = self.kubernetes_target(&rec)?;
        let deployer = self
            .deployer_of(&rec, &DeployOptions::default())
            .await
            .map_err(|message| DeployError::Kubernetes {
                id: id.to_string(),
                message,
            })?;
        deployer
            .status(&target)
            .await
            .map_err(|e| DeployError::Kubernetes {
                id: id.to_string(),
                message: e.to_string(),
            })
    }

    /// Where Kubernetes deployment `id`'s Service is reached, read from its cluster now
    /// (`None` without ports). Records the address when it changed, e.g. once the cloud
    /// assigned a public LoadBalancer its ingress after the rollout.
    pub async fn service_address(&self, id: &str) -> Result<Option<ServiceAddress>, DeployError> {
        let tracker = self.tracker();
        let rec = tracker.get(id)?;
        let target = self.kubernetes_target(&rec)?;
        let failed = |message: String| DeployError::Kubernetes {
            id: id.to_string(),
            message,
        };
        let deployer = self
            .deployer_of(&rec, &DeployOptions::default())
            .await
            .map_err(failed)?;
        let address = deployer
            .service_address(&target)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if let Some(a) = &address
            && rec.address.as_deref() != Some(a.preferred())
        {
            tracker.record_address(id, a.preferred())?;
        }
        Ok(address)
    }

    fn kubernetes_target(
        &self,
        rec: &DeploymentRecord,
    ) -> Result<kubernetes::WorkloadRef, DeployError> {
        if rec.deployment_type != DeploymentType::Kubernetes {
            return Err(DeployError::NotKubernetes(rec.id.clone()));
        }
        rec.kubernetes
            .clone()
            .filter(|_| rec.holds_resources())
            .ok_or_else(|| DeployError::Kubernetes {
                id: rec.id.clone(),
                message: format!("nothing is deployed (status {})", rec.status),
            })
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
        self.change_kubernetes(id, opts, |req| {
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
    /// autoscaler; storage, Service and namespace stay) and wait until no pod is left.
    pub async fn suspend(
        &self,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<WorkloadStatus, DeployError> {
        self.set_suspended(id, opts, true).await
    }

    /// Payment renewed: scale Kubernetes deployment `id` back to its tier and wait
    /// for the rollout.
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
        self.change_kubernetes(id, opts, |req| {
            if let Some(k) = req.kubernetes.as_mut() {
                k.suspended = suspended;
            }
            if suspended {
                "suspended: scaled to zero".to_string()
            } else {
                "resumed: scaled back to its tier".to_string()
            }
        })
        .await
    }

    /// Applies `edit` to the stored request of an active Kubernetes deployment,
    /// re-applies it and waits for the rollout; records the new request and an event.
    async fn change_kubernetes(
        &self,
        id: &str,
        opts: &DeployOptions,
        edit: impl FnOnce(&mut DeployRequest) -> String,
    ) -> Result<WorkloadStatus, DeployError> {
        let tracker = self.tracker();
        tracker.get(id)?;
        let _lock = tracker
            .try_lock(id)?
            .ok_or_else(|| DeployError::Busy(id.to_string()))?;
        let rec = tracker.get(id)?;
        self.kubernetes_target(&rec)?;
        if rec.status != DeploymentStatus::Active {
            return Err(DeployError::Kubernetes {
                id: id.to_string(),
                message: format!(
                    "only an active deployment can be changed; it is {}",
                    rec.status
                ),
            });
        }
        let mut req = stored_request(&rec)?;
        let what = edit(&mut req);
        let wanted = req.kubernetes_request(id, &self.config().operator.scaling)?;
        let deployer =
            self.deployer_of(&rec, opts)
                .await
                .map_err(|message| DeployError::Kubernetes {
                    id: id.to_string(),
                    message,
                })?;
        let json = serde_json::to_string(&req).unwrap_or_default();
        // Recorded first: after a crash mid-apply the record describes what the cluster
        // is being moved to, and a re-run converges on it.
        tracker.record_event(id, &format!("{what} (applying)"), &json)?;
        let status = deployer.deploy(&wanted).await.map_err(|e| {
            let message = e.to_string();
            let _ = tracker.note_error(id, &message);
            DeployError::Kubernetes {
                id: id.to_string(),
                message,
            }
        })?;
        tracker.record_event(id, &format!("{what}: {}", status.describe()), &json)?;
        Ok(status)
    }
}

/// Records where the deployment's Service is reached. Best effort: the rollout
/// succeeded whatever this read does, and `bpr status` reads it again.
async fn record_address(tracker: &Tracker, deployer: &Deployer, id: &str, target: &WorkloadRef) {
    match deployer.service_address(target).await {
        Ok(Some(a)) => {
            if let Err(e) = tracker.record_address(id, a.preferred()) {
                tracing::warn!(deployment = id, error = %e, "could not record the service address");
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(deployment = id, error = %e, "could not read the service address");
        }
    }
}
