//! Creating a managed cluster: the record and the attempt's intent are
//! committed before create-cluster is called and the provider's id right after
//! it answers; then the wait for the cluster to run.

use super::super::error::StepError;
use super::super::events::EventKind;
use super::super::instances::labels_of;
use super::super::options::{DeployEvent, DeployOptions};
use super::super::orchestrator::{Orchestrator, new_deployment_id};
use super::super::verdict::{Verdict, verdict};
use super::{ClusterError, ClusterOptions, ClusterRequest, endpoint_of, resources_of, state_name};
use crate::providers::ProviderHandle;
use crate::runtime::bindings::wit::{self, ClusterRef};
use crate::tracking::{
    AttemptIntent, AttemptOutcome, DeploymentRecord, DeploymentStatus, DeploymentType,
    NewDeployment,
};

impl Orchestrator {
    /// Creates the managed cluster `req` asks for and tracks it like a VM: a
    /// record of type `cluster` (see `crate::provisioning::clusters`) with its
    /// history, events, time to live and crash recovery. Returns the record once
    /// the cluster runs (`active`: a deployment target `k8s:<name>`), or once the
    /// provider accepted it when `opts.wait` is off.
    ///
    /// Nothing is written for an invalid request, a provider without managed
    /// Kubernetes or a name already in use. A refused create ends `failed`; a
    /// cluster that fails after creation is deleted again; one that runs late
    /// stays tracked ([`ClusterError::StillProvisioning`]).
    pub async fn create_cluster(
        &self,
        req: ClusterRequest,
        opts: &ClusterOptions,
    ) -> Result<DeploymentRecord, ClusterError> {
        self.check_cluster_request(&req)?;
        let provider = self.cluster_provider(&req.provider)?;
        let tracker = self.tracker.clone();
        let id = req.deployment_id.clone().unwrap_or_else(new_deployment_id);
        let _lock = tracker
            .try_lock(&id)?
            .ok_or_else(|| ClusterError::Busy(id.clone()))?;
        let mut stored = req.clone();
        stored.deployment_id = Some(id.clone());
        let record = tracker.create_cluster(
            &NewDeployment {
                id: id.clone(),
                blueprint_id: String::new(),
                service_id: String::new(),
                deployment_type: DeploymentType::Cluster,
                labels: req.labels.clone(),
                ttl_secs: req.ttl_secs,
                cleanup_webhook: req.cleanup_webhook.clone(),
                request_json: serde_json::to_string(&stored).unwrap_or_default(),
                service_key: None,
            },
            &req.name,
        )?;
        let d = &opts.deploy;
        d.emit(DeployEvent::Status {
            id: id.clone(),
            status: DeploymentStatus::Planned,
            reason: format!("cluster {} requested", req.name),
        });
        self.step(
            d,
            &id,
            DeploymentStatus::Provisioning,
            &format!(
                "creating cluster {} on {} in {} ({})",
                req.name,
                req.provider,
                req.region,
                req.pools_label()
            ),
        )?;
        let key = format!("{id}-c1");
        let n = tracker.begin_attempt(
            &id,
            &AttemptIntent {
                provider: &req.provider,
                region: &req.region,
                zone: None,
                instance_type: &req.pools_label(),
                spot: req.node_pools.iter().any(|p| p.spot),
                hourly_usd: req.hourly_usd,
                idempotency_key: &key,
            },
        )?;
        self.publish(
            &record,
            EventKind::Provisioning {
                candidate: format!("{}/{}/cluster {}", req.provider, req.region, req.name),
            },
        );
        let spec = stored.spec(&id, &key, labels_of(&record));
        // The same key on every retry: a create that did happen is returned, not repeated.
        let created = match d.retry.run(|| provider.create_cluster(spec.clone())).await {
            Ok(c) => c,
            Err(e) => {
                let v = verdict(&e);
                let error = StepError::call("create-cluster", e);
                if v != Verdict::Unknown {
                    // The provider refused before creating anything.
                    return Err(self.refused(&record, &stored, n, error, "", d)?);
                }
                // The create may have happened: ask the provider.
                match self
                    .find_cluster(&provider, &record, &stored, &key, d)
                    .await
                {
                    Ok(Some(c)) => {
                        tracing::info!(
                            deployment = %id,
                            "create-cluster answered `{error}`, but the provider has cluster {} for this record: adopted",
                            c.id
                        );
                        c
                    }
                    Ok(None) => {
                        let note = format!("; the provider has no cluster {}", req.name);
                        return Err(self.refused(&record, &stored, n, error, &note, d)?);
                    }
                    Err(lookup) => {
                        let _ = tracker.note_error(&id, &format!("{error}; then {lookup}"));
                        return Err(ClusterError::Unresolved {
                            name: req.name,
                            id,
                            source: Box::new(error),
                        });
                    }
                }
            }
        };
        // Durable right after the provider answered.
        if let Err(e) = tracker.record_instance(
            &id,
            Some(n),
            &created.id,
            &resources_of(&created),
            endpoint_of(&created),
        ) {
            // Without a record of it, it must not keep running.
            let failure = StepError::NotRecorded {
                instance: created.id.clone(),
                source: e,
            };
            return Err(self
                .delete_unrecorded(&provider, &stored, &created, failure, &id, d)
                .await);
        }
        self.step(
            d,
            &id,
            DeploymentStatus::Provisioned,
            &format!(
                "cluster {} accepted by {} as {} ({})",
                req.name,
                req.provider,
                created.id,
                state_name(created.state)
            ),
        )?;
        if !opts.wait {
            return Ok(tracker.get(&id)?);
        }
        self.step(
            d,
            &id,
            DeploymentStatus::Deploying,
            &format!("waiting for cluster {} to run", req.name),
        )?;
        let r = ClusterRef {
            id: created.id.clone(),
            name: req.name.clone(),
            region: req.region.clone(),
            resources: created.resources.clone(),
        };
        match self
            .wait_cluster_running(&provider, &r, &created, opts.running_timeout, d)
            .await
        {
            Ok(running) => {
                if let Err(e) = tracker.record_instance(
                    &id,
                    None,
                    &running.id,
                    &resources_of(&running),
                    endpoint_of(&running),
                ) {
                    tracing::warn!(deployment = %id, "cannot update the cluster's details: {e}");
                }
                let detail = format!("cluster {} running", running.id);
                tracker.finish_attempt(&id, n, AttemptOutcome::Used, &detail)?;
                d.emit(DeployEvent::AttemptDone {
                    n,
                    outcome: AttemptOutcome::Used,
                    detail,
                });
                self.step(
                    d,
                    &id,
                    DeploymentStatus::Active,
                    &format!(
                        "cluster {} runs; API server {}",
                        req.name,
                        endpoint_of(&running).unwrap_or("-")
                    ),
                )?;
                Ok(tracker.get(&id)?)
            }
            Err(late @ StepError::ClusterNotRunning { .. }) => {
                tracker.note_error(&id, &late.to_string())?;
                Err(ClusterError::StillProvisioning {
                    name: req.name,
                    id,
                    source: Box::new(late),
                })
            }
            Err(error) => {
                let why = error.to_string();
                tracker.finish_attempt(&id, n, AttemptOutcome::Failed, &why)?;
                self.step(d, &id, DeploymentStatus::Failed, &why)?;
                match self
                    .terminate_locked(&id, d, "deleting the cluster of a failed create")
                    .await
                {
                    Ok(_) => Err(ClusterError::Failed {
                        name: req.name,
                        id,
                        source: Box::new(error),
                    }),
                    Err(cleanup) => Err(ClusterError::CleanupFailed {
                        name: req.name,
                        id,
                        failure: why,
                        source: Box::new(StepError::from_cleanup(cleanup)),
                    }),
                }
            }
        }
    }

    /// Refuses a name that already means a configured cluster (`k8s:<name>`
    /// would be ambiguous); the tracker refuses a live tracked one.
    /// Everything [`Orchestrator::create_cluster`] checks before it writes
    /// anything: the request's fields, its webhook, that the name is free (not
    /// a configured cluster, not a live tracked one) and that the provider
    /// creates managed clusters. `bpr serve` calls it to answer at once.
    pub fn check_cluster_request(&self, req: &ClusterRequest) -> Result<(), ClusterError> {
        req.validate()?;
        if let Some(url) = &req.cleanup_webhook {
            super::super::webhook::check_allowed(&self.config.operator.webhooks, url)?;
        }
        self.check_cluster_name(&req.name)?;
        if let Some(live) = self.tracker.live_cluster(&req.name)? {
            return Err(crate::tracking::TrackError::ClusterNameTaken {
                name: req.name.clone(),
                existing: live.id,
            }
            .into());
        }
        self.cluster_provider(&req.provider).map(|_| ())
    }

    fn check_cluster_name(&self, name: &str) -> Result<(), ClusterError> {
        let k8s = &self.config.operator.kubernetes;
        let by = if k8s.clusters.iter().any(|c| c.name == name) {
            Some("a cluster of [operator.kubernetes] clusters")
        } else if k8s.managed.iter().any(|m| m.name == name) {
            Some("a cluster of [operator.kubernetes] managed")
        } else {
            None
        };
        match by {
            Some(by) => Err(ClusterError::NameTaken {
                name: name.to_string(),
                by: by.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The create was refused (or provably never happened): attempt and record
    /// end failed. `note` is added to the history's reason.
    fn refused(
        &self,
        record: &DeploymentRecord,
        req: &ClusterRequest,
        n: u32,
        error: StepError,
        note: &str,
        d: &DeployOptions,
    ) -> Result<ClusterError, ClusterError> {
        let why = format!("{error}{note}");
        self.tracker
            .finish_attempt(&record.id, n, AttemptOutcome::Stopped, &why)?;
        d.emit(DeployEvent::AttemptDone {
            n,
            outcome: AttemptOutcome::Stopped,
            detail: why.clone(),
        });
        self.step(d, &record.id, DeploymentStatus::Failed, &why)?;
        Ok(ClusterError::Refused {
            name: req.name.clone(),
            id: record.id.clone(),
            source: Box::new(error),
        })
    }

    /// The cluster could not be recorded: delete it again so nothing runs that
    /// the tracker does not know.
    async fn delete_unrecorded(
        &self,
        provider: &ProviderHandle,
        req: &ClusterRequest,
        created: &wit::Cluster,
        failure: StepError,
        id: &str,
        d: &DeployOptions,
    ) -> ClusterError {
        let r = ClusterRef {
            id: created.id.clone(),
            name: req.name.clone(),
            region: req.region.clone(),
            resources: created.resources.clone(),
        };
        let _ = self
            .transition(id, DeploymentStatus::Failed, &failure.to_string())
            .map_err(|e| tracing::warn!(deployment = id, "cannot mark failed: {e}"));
        match self.delete_cluster_until_gone(provider, &r, d).await {
            Ok(()) => ClusterError::Failed {
                name: req.name.clone(),
                id: id.to_string(),
                source: Box::new(failure),
            },
            Err(cleanup) => ClusterError::CleanupFailed {
                name: req.name.clone(),
                id: id.to_string(),
                failure: failure.to_string(),
                source: Box::new(cleanup),
            },
        }
    }
}
