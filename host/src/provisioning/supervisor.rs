//! The TTL supervisor: expired deployments terminated, crashed ones resolved,
//! failed ones' leftovers deleted, every `interval`.

use std::future::Future;
use std::time::Duration;

use super::error::DeployError;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
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
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            tries: 3,
            deploy: DeployOptions::default(),
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
            tokio::select! {
                () = tokio::time::sleep(opts.interval) => {}
                () = &mut shutdown => return,
            }
        }
    }
}
