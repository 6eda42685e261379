//! The TTL supervisor: expired deployments terminated, crashed ones resolved,
//! failed ones' leftovers deleted, active ones' health checked, every
//! `interval`.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use super::error::DeployError;
use super::events::EventKind;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::request::DeployRequest;
use crate::clock::unix_now as now;
use crate::runtime::bindings::wit::{InstanceRef, InstanceState, ResourceRef};
use crate::tracking::{DeploymentRecord, DeploymentStatus, DeploymentType};

/// Timing of [`Orchestrator::run_supervisor`].
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// Time between scans.
    pub interval: Duration,
    /// Terminations tried per expired deployment per scan.
    pub tries: u32,
    /// Timing of the provider calls.
    pub deploy: DeployOptions,
    /// Check active deployments' health each pass and publish
    /// [`EventKind::Unhealthy`]. Default: true.
    pub health_checks: bool,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            tries: 3,
            deploy: DeployOptions::default(),
            health_checks: true,
        }
    }
}

impl Orchestrator {
    /// Terminate every expired deployment now (and only those), with
    /// retries, then finish what dead processes left (see [`Orchestrator::recover`])
    /// and delete what failed deployments still hold. Returns the ids
    /// terminated and the errors.
    pub async fn cleanup_once(
        &self,
        opts: &SupervisorOptions,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let tracker = self.tracker.clone();
        let mut done = Vec::new();
        let mut errors = Vec::new();
        let expired = match tracker.expired(now()) {
            Ok(v) => v,
            Err(e) => return (done, vec![("*".into(), e.to_string())]),
        };
        for rec in expired {
            if !rec.status.is_final() {
                self.publish(
                    &rec,
                    EventKind::Expired {
                        ttl_secs: rec.ttl_secs,
                    },
                );
            }
            let mut last = None;
            for attempt in 1..=opts.tries.max(1) {
                let reason = format!("TTL of {} s expired", rec.ttl_secs.unwrap_or(0));
                match self.terminate_with(&rec.id, &opts.deploy, &reason).await {
                    Ok(_) => {
                        last = None;
                        done.push(rec.id.clone());
                        break;
                    }
                    // A live process is deploying it: the next scan gets it.
                    Err(DeployError::Busy(_)) => {
                        last = Some("busy".to_string());
                        break;
                    }
                    Err(e) => {
                        last = Some(e.to_string());
                        tokio::time::sleep(opts.deploy.retry.backoff(attempt, None)).await;
                    }
                }
            }
            if let Some(e) = last {
                errors.push((rec.id.clone(), e));
            }
        }
        let report = self.recover_with(&opts.deploy).await;
        errors.extend(report.errors);
        if let Ok(failed) = tracker.with_status(DeploymentStatus::Failed) {
            for rec in failed.into_iter().filter(DeploymentRecord::holds_resources) {
                match self
                    .terminate_with(
                        &rec.id,
                        &opts.deploy,
                        "deleting what a failed deployment still holds",
                    )
                    .await
                {
                    Ok(_) => done.push(rec.id.clone()),
                    Err(DeployError::Busy(_)) => {}
                    Err(e) => errors.push((rec.id.clone(), e.to_string())),
                }
            }
        }
        (done, errors)
    }

    /// The supervisor loop: [`Orchestrator::cleanup_once`] every `interval` until
    /// `shutdown` completes; a pass already running when it does is finished.
    pub async fn run_supervisor(&self, shutdown: impl Future<Output = ()>) {
        self.run_supervisor_with(shutdown, SupervisorOptions::default())
            .await;
    }

    /// [`Orchestrator::run_supervisor`] with explicit options.
    pub async fn run_supervisor_with(
        &self,
        shutdown: impl Future<Output = ()>,
        opts: SupervisorOptions,
    ) {
        tokio::pin!(shutdown);
        let mut unhealthy = BTreeSet::new();
        loop {
            // A pass in progress is finished, not cut by the shutdown: its
            // terminations and cleanup webhooks complete (each step is bounded
            // by its own deadline).
            let (done, errors) = self.cleanup_once(&opts).await;
            for id in &done {
                tracing::info!("supervisor: deployment {id} terminated");
            }
            for (id, e) in &errors {
                tracing::warn!("supervisor: deployment {id}: {e}");
            }
            if opts.health_checks {
                self.check_health(&mut unhealthy).await;
            }
            tokio::select! {
                () = tokio::time::sleep(opts.interval) => {}
                () = &mut shutdown => return,
            }
        }
    }

    /// Checks every active deployment's health once: an HTTP check for a VM
    /// whose request gave one, the provider's state for one placed by a
    /// `workloads` provider, ready replicas for Kubernetes. A failing one is
    /// published as [`EventKind::Unhealthy`] once per streak (`unhealthy` holds
    /// the ids currently failing), and as running again when it recovers.
    pub async fn check_health(&self, unhealthy: &mut BTreeSet<String>) {
        let Ok(active) = self.tracker.with_status(DeploymentStatus::Active) else {
            return;
        };
        unhealthy.retain(|id| active.iter().any(|r| &r.id == id));
        for rec in active {
            let Some(outcome) = self.health_of(&rec).await else {
                continue;
            };
            match outcome {
                Err(reason) if unhealthy.insert(rec.id.clone()) => {
                    tracing::warn!(deployment = %rec.id, "unhealthy: {reason}");
                    self.publish(&rec, EventKind::Unhealthy { reason });
                }
                Ok(()) if unhealthy.remove(&rec.id) => {
                    if let Some(kind) = super::events::for_transition(&rec, "healthy again") {
                        self.publish(&rec, kind);
                    }
                }
                _ => {}
            }
        }
    }

    /// One health observation of an active deployment; `None` when it has no
    /// check to run.
    async fn health_of(&self, rec: &DeploymentRecord) -> Option<Result<(), String>> {
        if rec.deployment_type == DeploymentType::Kubernetes {
            let target = rec.kubernetes.clone()?;
            let deployer = match self.deployer_of(rec, &DeployOptions::default()).await {
                Ok(d) => d,
                Err(e) => return Some(Err(e.to_string())),
            };
            return Some(match deployer.status(&target).await {
                Ok(s) if s.desired > 0 && s.ready == 0 => {
                    Err(format!("no replica ready ({})", s.describe()))
                }
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            });
        }
        let provider = rec.provider.as_deref()?;
        let req: DeployRequest = serde_json::from_str(&rec.request_json).ok()?;
        if self.runs_workloads(provider) {
            let handle = self.providers.get(provider).ok()?;
            let r = InstanceRef {
                id: rec.instance_id.clone()?,
                region: rec.region.clone()?,
                zone: rec.zone.clone(),
                resources: rec.resources.iter().map(ResourceRef::from).collect(),
                labels: super::instances::labels_of(rec),
            };
            return Some(match handle.get_instance(r).await {
                Ok(i) if i.state == InstanceState::Running => Ok(()),
                Ok(i) => Err(format!(
                    "instance {} is {:?}{}",
                    i.id,
                    i.state,
                    i.detail.map(|d| format!(": {d}")).unwrap_or_default()
                )),
                Err(e) => Err(e.to_string()),
            });
        }
        let check = req.health.as_ref()?;
        let address = rec.address.as_deref()?;
        Some(super::health::check_once(address, check).await.map(drop))
    }
}
