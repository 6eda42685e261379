//! The TTL supervisor: expired deployments suspended or terminated (see
//! `payment`), renewed ones resumed, crashed ones resolved, failed ones'
//! leftovers and interrupted heals' instances deleted, the usage ledger
//! reconciled and budget alerts published, every `interval`; what no record
//! owns swept every `sweep_interval`; and, on its own interval, active ones'
//! health checked and (with auto-heal) healed (see `watchdog`). `bpr cleanup`
//! is one pass with a sweep.

use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use futures::FutureExt;

use super::error::DeployError;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::payment::Expiry;
use super::recover::RecoveryReport;
use super::sweep::SweepReport;
use super::watchdog::HealthWatch;
use crate::clock::unix_now as now;
use crate::coordination::Leadership;
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
    /// Time between sweeps for what no record owns (listing every provider
    /// this host deployed to, in every region it serves). Default: 10 min.
    pub sweep_interval: Duration,
    /// Check active deployments' health (and heal them when the operator
    /// enabled it). Default: true.
    pub health_checks: bool,
    /// Time between health passes. Default: `None`, the operator's
    /// `[operator.health] interval_secs`.
    pub health_interval: Option<Duration>,
    /// With several replicas on one database: the election this replica
    /// takes part in. Passes run only while it leads, and each pass checks
    /// its term is still current (in the database) before every side effect,
    /// stopping at the first that is not. Default: `None`, always act (one
    /// process, or `bpr cleanup`).
    pub leader: Option<Leadership>,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            tries: 3,
            deploy: DeployOptions::default(),
            sweep_interval: Duration::from_secs(600),
            health_checks: true,
            health_interval: None,
            leader: None,
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
    /// Expired deployments stopped for the payment grace period (see `payment`).
    pub suspended: Vec<String>,
    /// Suspended deployments started again after their renewal.
    pub resumed: Vec<String>,
    /// Instances interrupted heals left, deleted.
    pub heal_leftovers: Vec<String>,
    /// What could not be resolved now (retried next pass), with why.
    pub errors: Vec<(String, String)>,
    /// The pass stopped early: this replica's leadership was lost (another
    /// replica leads now and does the rest).
    pub fenced: bool,
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
    /// Deal with every expired deployment now (and only those): suspend it
    /// within the operator's grace period, else terminate it with retries;
    /// resume suspended ones whose payment was renewed; then finish what dead
    /// processes left (see [`Orchestrator::recover`]), delete what failed
    /// deployments and interrupted heals still hold, reconcile the usage
    /// ledger, publish budget alerts and sweep for what no record owns.
    /// Returns the ids terminated and the errors; see [`Orchestrator::cleanup`]
    /// for everything that was resolved.
    pub async fn cleanup_once(
        &self,
        opts: &SupervisorOptions,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let report = self.cleanup(opts, true).await;
        (report.terminated(), report.errors)
    }

    /// One cleanup pass (with a sweep when `sweep`), and what it resolved.
    /// With [`SupervisorOptions::leader`], the term is checked before each
    /// step that calls a provider or writes a record, and the pass stops at
    /// the first check that fails ([`CleanupReport::fenced`]).
    pub async fn cleanup(&self, opts: &SupervisorOptions, sweep: bool) -> CleanupReport {
        let tracker = self.tracker.clone();
        let mut report = CleanupReport::default();
        // Whether this replica may still act; records why not in the report.
        let leading = |report: &mut CleanupReport| match &opts.leader {
            None => true,
            Some(l) => match l.check() {
                Ok(_) => true,
                Err(e) => {
                    report.fenced = true;
                    report.errors.push(("*".into(), e.to_string()));
                    false
                }
            },
        };
        if !leading(&mut report) {
            return report;
        }
        let expired = match tracker.expired(now()) {
            Ok(v) => v,
            Err(e) => {
                report.errors.push(("*".into(), e.to_string()));
                return report;
            }
        };
        for rec in expired {
            if !leading(&mut report) {
                return report;
            }
            let reason = match self.on_expiry(&rec, &opts.deploy).await {
                Expiry::Terminate(reason) => reason,
                Expiry::Suspended => {
                    report.suspended.push(rec.id.clone());
                    continue;
                }
                Expiry::Retry(why) => {
                    if why == "busy" {
                        report.busy.push(rec.id.clone());
                    } else {
                        report.errors.push((rec.id.clone(), why));
                    }
                    continue;
                }
            };
            let mut last = None;
            for attempt in 1..=opts.tries.max(1) {
                if !leading(&mut report) {
                    return report;
                }
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
        if !leading(&mut report) {
            return report;
        }
        let (resumed, resume_errors) = self.resume_renewed(&opts.deploy).await;
        report.resumed = resumed;
        report.errors.extend(resume_errors);
        if !leading(&mut report) {
            return report;
        }
        let recovery = self.recover_with(&opts.deploy).await;
        report.errors.extend(recovery.errors.iter().cloned());
        report.busy.extend(recovery.busy.iter().cloned());
        report.recovery = recovery;
        if !leading(&mut report) {
            return report;
        }
        let (heal_leftovers, heal_errors) = self.finish_interrupted_heals(&opts.deploy).await;
        report.heal_leftovers = heal_leftovers;
        report.errors.extend(heal_errors);
        if !leading(&mut report) {
            return report;
        }
        if let Err(e) = tracker.reconcile_usage() {
            report.errors.push(("*".into(), e.to_string()));
        }
        self.publish_budget_alerts();
        // Failed ones that may still hold something (an instance that could
        // not be deleted, a create whose outcome is unknown).
        match tracker.with_status(DeploymentStatus::Failed) {
            Ok(failed) => {
                for rec in failed.into_iter().filter(DeploymentRecord::holds_resources) {
                    if !leading(&mut report) {
                        return report;
                    }
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
        if sweep && leading(&mut report) {
            let swept = self.sweep_orphans(&opts.deploy).await;
            report.errors.extend(swept.errors.iter().cloned());
            report.busy.extend(swept.busy.iter().cloned());
            report.sweep = Some(swept);
        }
        report
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
            let mut last_sweep: Option<Instant> = None;
            loop {
                // A pass in progress is finished, not cut by the shutdown: its
                // terminations and cleanup webhooks complete (each step is bounded
                // by its own deadline).
                // A replica that does not lead waits for its turn.
                if opts.leader.as_ref().is_some_and(|l| !l.is_leader()) {
                    tokio::select! {
                        () = tokio::time::sleep(opts.interval) => continue,
                        () = shutdown.clone() => return,
                    }
                }
                let sweep = last_sweep.is_none_or(|t| t.elapsed() >= opts.sweep_interval);
                if sweep {
                    last_sweep = Some(Instant::now());
                }
                // Boxed: the pass is a deep future; the loop holds a pointer to it.
                let report = Box::pin(self.cleanup(&opts, sweep)).await;
                for id in report.terminated() {
                    tracing::info!("supervisor: deployment {id} terminated");
                }
                for id in &report.suspended {
                    tracing::info!("supervisor: deployment {id} suspended (payment grace)");
                }
                for id in &report.resumed {
                    tracing::info!("supervisor: deployment {id} resumed after renewal");
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
                if let Some(l) = &opts.leader
                    && l.check().is_err()
                {
                    continue;
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
