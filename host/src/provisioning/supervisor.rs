//! The TTL supervisor: expired deployments terminated, crashed ones resolved,
//! failed ones' leftovers deleted, active ones' health checked, every
//! `interval`; what no record owns swept every `sweep_interval`. `bpr cleanup`
//! is one pass with a sweep.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::error::DeployError;
use super::events::EventKind;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::recover::RecoveryReport;
use super::request::DeployRequest;
use super::sweep::SweepReport;
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
    /// Time between sweeps for what no record owns (listing every provider
    /// this host deployed to, in every region it serves). Default: 10 min.
    pub sweep_interval: Duration,
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
            sweep_interval: Duration::from_secs(600),
            health_checks: true,
        }
    }
}

/// What one cleanup pass resolved; `bpr cleanup` prints it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    /// Deployments terminated because their time to live ran out.
    pub expired: Vec<String>,
    /// Records a dead process left mid-flight, resolved (and active ones checked).
    pub recovery: RecoveryReport,
    /// Failed deployments whose leftovers were deleted (now terminated).
    pub released: Vec<String>,
    /// What the sweep deleted, when one ran in this pass.
    pub sweep: Option<SweepReport>,
    /// Deployments another live process is working on (left alone).
    pub busy: Vec<String>,
    /// What could not be resolved now (retried next pass), with why.
    pub errors: Vec<(String, String)>,
}

impl CleanupReport {
    /// Deployments terminated in this pass, for whatever reason.
    pub fn terminated(&self) -> Vec<String> {
        let mut out = self.expired.clone();
        out.extend(self.recovery.terminated.iter().cloned());
        out.extend(self.released.iter().cloned());
        out
    }

    /// One line counting everything, e.g. `1 adopted, 2 failed, 3 terminated ...`.
    pub fn summary(&self) -> String {
        let swept = self.sweep.as_ref().map_or(0, |s| s.deleted.len());
        format!(
            "{} adopted, {} failed, {} terminated ({} expired), {} active checked, {} swept, {} busy, {} error(s)",
            self.recovery.adopted.len(),
            self.recovery.failed.len(),
            self.terminated().len(),
            self.expired.len(),
            self.recovery.verified.len(),
            swept,
            self.busy.len(),
            self.errors.len()
        )
    }
}

impl Orchestrator {
    /// Terminate every expired deployment now (and only those), with
    /// retries, then finish what dead processes left (see [`Orchestrator::recover`]),
    /// delete what failed deployments still hold, and sweep for what no
    /// record owns. Returns the ids terminated and the errors; see
    /// [`Orchestrator::cleanup`] for everything that was resolved.
    pub async fn cleanup_once(
        &self,
        opts: &SupervisorOptions,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let report = self.cleanup(opts, true).await;
        (report.terminated(), report.errors)
    }

    /// One cleanup pass (with a sweep when `sweep`), and what it resolved.
    pub async fn cleanup(&self, opts: &SupervisorOptions, sweep: bool) -> CleanupReport {
        let tracker = self.tracker.clone();
        let mut report = CleanupReport::default();
        let expired = match tracker.expired(now()) {
            Ok(v) => v,
            Err(e) => {
                report.errors.push(("*".into(), e.to_string()));
                return report;
            }
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
                        report.expired.push(rec.id.clone());
                        break;
                    }
                    // A live process is deploying it: the next scan gets it.
                    Err(DeployError::Busy(_)) => {
                        report.busy.push(rec.id.clone());
                        break;
                    }
                    Err(e) => {
                        last = Some(e.to_string());
                        tokio::time::sleep(opts.deploy.retry.backoff(attempt, None)).await;
                    }
                }
            }
            if let Some(e) = last {
                report.errors.push((rec.id.clone(), e));
            }
        }
        let recovery = self.recover_with(&opts.deploy).await;
        report.errors.extend(recovery.errors.iter().cloned());
        report.busy.extend(recovery.busy.iter().cloned());
        report.recovery = recovery;
        // Failed ones that may still hold something (an instance that could
        // not be deleted, a create whose outcome is unknown).
        match tracker.with_status(DeploymentStatus::Failed) {
            Ok(failed) => {
                for rec in failed.into_iter().filter(DeploymentRecord::holds_resources) {
                    match self
                        .terminate_with(
                            &rec.id,
                            &opts.deploy,
                            "deleting what a failed deployment still holds",
                        )
                        .await
                    {
                        Ok(_) => report.released.push(rec.id.clone()),
                        Err(DeployError::Busy(_)) => report.busy.push(rec.id.clone()),
                        Err(e) => report.errors.push((rec.id.clone(), e.to_string())),
                    }
                }
            }
            Err(e) => report.errors.push(("*".into(), e.to_string())),
        }
        if sweep {
            let swept = self.sweep_orphans(&opts.deploy).await;
            report.errors.extend(swept.errors.iter().cloned());
            report.busy.extend(swept.busy.iter().cloned());
            report.sweep = Some(swept);
        }
        report
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
        let mut last_sweep: Option<Instant> = None;
        let mut unhealthy = BTreeSet::new();
        loop {
            // A pass in progress is finished, not cut by the shutdown: its
            // terminations and cleanup webhooks complete (each step is bounded
            // by its own deadline).
            let sweep = last_sweep.is_none_or(|t| t.elapsed() >= opts.sweep_interval);
            if sweep {
                last_sweep = Some(Instant::now());
            }
            let report = self.cleanup(&opts, sweep).await;
            for id in report.terminated() {
                tracing::info!("supervisor: deployment {id} terminated");
            }
            for id in &report.recovery.adopted {
                tracing::info!("supervisor: deployment {id} adopted after a crash");
            }
            for line in report.sweep.iter().flat_map(|s| s.deleted.iter()) {
                tracing::warn!("supervisor: deleted what no record owns: {line}");
            }
            for (id, e) in &report.errors {
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
                Observed::Unhealthy(reason) if unhealthy.insert(rec.id.clone()) => {
                    tracing::warn!(deployment = %rec.id, "unhealthy: {reason}");
                    self.publish(&rec, EventKind::Unhealthy { reason });
                }
                Observed::Healthy if unhealthy.remove(&rec.id) => {
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
    async fn health_of(&self, rec: &DeploymentRecord) -> Option<Observed> {
        // A managed cluster's existence is checked by recovery each pass.
        if rec.deployment_type == DeploymentType::Cluster {
            return None;
        }
        if rec.deployment_type == DeploymentType::Kubernetes {
            let target = rec.kubernetes.clone()?;
            let deployer = match self.deployer_of(rec, &DeployOptions::default()).await {
                Ok(d) => d,
                Err(e) => return Some(Observed::Unhealthy(e.to_string())),
            };
            return Some(match deployer.status(&target).await {
                Ok(s) if s.desired > 0 && s.ready == 0 => {
                    Observed::Unhealthy(format!("no replica ready ({})", s.describe()))
                }
                Ok(_) => Observed::Healthy,
                Err(e) => Observed::Unhealthy(e.to_string()),
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
                Ok(i) if i.state == InstanceState::Running => Observed::Healthy,
                Ok(i) => Observed::Unhealthy(format!(
                    "instance {} is {:?}{}",
                    i.id,
                    i.state,
                    i.detail.map(|d| format!(": {d}")).unwrap_or_default()
                )),
                Err(e) => Observed::Unhealthy(e.to_string()),
            });
        }
        let check = req.health.as_ref()?;
        let address = rec.address.as_deref()?;
        Some(match super::health::check_once(address, check).await {
            Ok(_) => Observed::Healthy,
            Err(e) => Observed::Unhealthy(e.to_string()),
        })
    }
}

/// One health observation of an active deployment. Unhealthy carries the
/// sentence published in the event (events are serialised, so it is text).
enum Observed {
    /// The check passed.
    Healthy,
    /// The check failed, saying what it saw.
    Unhealthy(String),
}
