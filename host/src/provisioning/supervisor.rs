//! The TTL supervisor: expired deployments suspended or terminated (see
//! `payment`), renewed ones resumed, crashed ones resolved, failed ones'
//! leftovers and interrupted heals' instances deleted, the usage ledger
//! reconciled and budget alerts published, every `interval`; and, on its own
//! interval, active ones' health checked and (with auto-heal) healed (see
//! `watchdog`).

use std::future::Future;
use std::time::Duration;

use futures::FutureExt;

use super::error::DeployError;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::payment::Expiry;
use super::watchdog::HealthWatch;
use crate::clock::unix_now as now;
use crate::tracking::{DeploymentRecord, DeploymentStatus};

/// Timing of [`Orchestrator::run_supervisor`].
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// Time between scans.
    pub interval: Duration,
    /// Terminations tried per expired deployment per scan.
    pub tries: u32,
    /// Timing of the provider calls.
    pub deploy: DeployOptions,
    /// Check active deployments' health (and heal them when the operator
    /// enabled it). Default: true.
    pub health_checks: bool,
    /// Time between health passes. Default: `None`, the operator's
    /// `[operator.health] interval_secs`.
    pub health_interval: Option<Duration>,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            tries: 3,
            deploy: DeployOptions::default(),
            health_checks: true,
            health_interval: None,
        }
    }
}

impl Orchestrator {
    /// Deal with every expired deployment now (and only those): suspend it
    /// within the operator's grace period, else terminate it with retries;
    /// resume suspended ones whose payment was renewed; then finish what dead
    /// processes left (see [`Orchestrator::recover`]), delete what failed
    /// deployments and interrupted heals still hold, reconcile the usage
    /// ledger and publish budget alerts. Returns the ids terminated and the
    /// errors.
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
            let reason = match self.on_expiry(&rec, &opts.deploy).await {
                Expiry::Terminate(reason) => reason,
                Expiry::Suspended => continue,
                Expiry::Retry(why) => {
                    if why != "busy" {
                        errors.push((rec.id.clone(), why));
                    }
                    continue;
                }
            };
            let mut last = None;
            for attempt in 1..=opts.tries.max(1) {
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
        let (_, resume_errors) = self.resume_renewed(&opts.deploy).await;
        errors.extend(resume_errors);
        let report = self.recover_with(&opts.deploy).await;
        errors.extend(report.errors);
        let (_, heal_errors) = self.finish_interrupted_heals(&opts.deploy).await;
        errors.extend(heal_errors);
        if let Err(e) = tracker.reconcile_usage() {
            errors.push(("*".into(), e.to_string()));
        }
        self.publish_budget_alerts();
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

    /// The supervisor loop: [`Orchestrator::cleanup_once`] every `interval` and
    /// [`Orchestrator::health_pass`] every health interval, side by side, until
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
        let shutdown = Box::pin(shutdown).shared();
        let cleanup = async {
            loop {
                // A pass in progress is finished, not cut by the shutdown: its
                // terminations and cleanup webhooks complete (each step is bounded
                // by its own deadline).
                // Boxed: the pass is a deep future; the loop holds a pointer to it.
                let (done, errors) = Box::pin(self.cleanup_once(&opts)).await;
                for id in &done {
                    tracing::info!("supervisor: deployment {id} terminated");
                }
                for (id, e) in &errors {
                    tracing::warn!("supervisor: deployment {id}: {e}");
                }
                tokio::select! {
                    () = tokio::time::sleep(opts.interval) => {}
                    () = shutdown.clone() => return,
                }
            }
        };
        let health = async {
            if !opts.health_checks {
                return;
            }
            let interval = opts
                .health_interval
                .unwrap_or(self.config.operator.health.interval);
            let mut watch = HealthWatch::default();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = shutdown.clone() => return,
                }
                let report = Box::pin(self.health_pass(&mut watch, &opts.deploy)).await;
                for (id, new) in &report.healed {
                    tracing::info!("supervisor: deployment {id} healed on instance {new}");
                }
            }
        };
        tokio::join!(cleanup, health);
    }
}
