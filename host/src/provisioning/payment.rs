//! Payment and expiry (`[operator.payment]`): a deployment's TTL is the time
//! it is paid for. With no grace period it is terminated at expiry. With one,
//! at expiry a Kubernetes deployment is scaled to zero and a VM is stopped
//! where its provider exports `power` (else terminated), the record becomes
//! `suspended` and stops accruing cost; a renewal inside the grace period
//! brings it back (the VM started and health-checked again, the workload
//! scaled back to its tier); once the grace period is over it is terminated.
//! Every step is a transition or a history row, and an event.
//!
//! Each step is idempotent and the supervisor finishes what a crash
//! interrupted: an active record past its expiry is suspended (stopping a
//! stopped VM is a no-op), a suspended one whose paid time was renewed is
//! resumed, and the usage ledger is reconciled with the records.

use std::time::{Duration, Instant};

use super::error::{DeployError, StepError};
use super::events::EventKind;
use super::health;
use super::instances::labels_of;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::request::DeployRequest;
use crate::clock::unix_now as now;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{
    Instance, InstanceRef, InstanceState, ProviderError, ResourceRef,
};
use crate::tracking::{DeploymentRecord, DeploymentStatus, DeploymentType, TrackError};

/// What the supervisor does with an expired deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expiry {
    /// Suspended now (or already, within its grace period): nothing more.
    Suspended,
    /// Terminate it, with this reason for the history.
    Terminate(String),
    /// Busy, or a step failed inside the grace period: the next pass retries.
    Retry(String),
}

/// Why a deployment could not be suspended.
#[derive(Debug, thiserror::Error)]
pub enum SuspendError {
    /// The provider cannot stop instances (no `power` export, or this
    /// instance cannot be stopped): it is terminated at expiry instead.
    #[error("{0}")]
    CannotStop(String),
    /// The instance no longer exists.
    #[error("instance {0} no longer exists")]
    Gone(String),
    /// Another task or process works on it.
    #[error("deployment {0} is being worked on")]
    Busy(String),
    /// A step failed; retried by the next pass.
    #[error(transparent)]
    Failed(#[from] DeployError),
    /// A provider call or wait failed; retried by the next pass.
    #[error(transparent)]
    Step(Box<StepError>),
}

impl From<StepError> for SuspendError {
    fn from(e: StepError) -> Self {
        Self::Step(Box::new(e))
    }
}

impl From<TrackError> for SuspendError {
    fn from(e: TrackError) -> Self {
        Self::Failed(e.into())
    }
}

impl Orchestrator {
    /// The grace period of `[operator.payment]`.
    fn grace(&self) -> Duration {
        self.config.operator.payment.grace
    }

    /// When the grace period of `rec` ends, if it has one.
    pub(super) fn grace_until(&self, rec: &DeploymentRecord) -> Option<i64> {
        let grace = self.grace();
        rec.expires_at
            .filter(|_| !grace.is_zero())
            .map(|e| e.saturating_add(grace.as_secs().min(i64::MAX as u64) as i64))
    }

    /// What to do with `rec`, whose TTL ran out (see the module docs).
    pub(super) async fn on_expiry(&self, rec: &DeploymentRecord, opts: &DeployOptions) -> Expiry {
        let ttl_reason = format!("TTL of {} s expired", rec.ttl_secs.unwrap_or(0));
        // A managed cluster cannot be stopped and kept: it is deleted at expiry.
        let grace = if rec.deployment_type == DeploymentType::Cluster {
            None
        } else {
            self.grace_until(rec)
        };
        let Some(grace_until) = grace else {
            if !rec.status.is_final() {
                self.publish(
                    rec,
                    EventKind::Expired {
                        ttl_secs: rec.ttl_secs,
                    },
                );
            }
            return Expiry::Terminate(ttl_reason);
        };
        match rec.status {
            DeploymentStatus::Active => {
                self.publish(
                    rec,
                    EventKind::Expired {
                        ttl_secs: rec.ttl_secs,
                    },
                );
                match self.suspend_expired(rec, opts).await {
                    Ok(()) => Expiry::Suspended,
                    Err(SuspendError::Busy(_)) => Expiry::Retry("busy".into()),
                    Err(e @ (SuspendError::CannotStop(_) | SuspendError::Gone(_))) => {
                        Expiry::Terminate(format!("{ttl_reason}; not suspended: {e}"))
                    }
                    Err(e) if now() >= grace_until => Expiry::Terminate(format!(
                        "{ttl_reason} and the grace period ended; suspending failed: {e}"
                    )),
                    Err(e) => Expiry::Retry(e.to_string()),
                }
            }
            DeploymentStatus::Suspended if now() < grace_until => Expiry::Suspended,
            DeploymentStatus::Suspended => Expiry::Terminate(format!(
                "{ttl_reason} and its grace period of {} s ended without a renewal",
                self.grace().as_secs()
            )),
            // Failed ones still holding resources, and what a crash left mid-flight.
            _ => Expiry::Terminate(ttl_reason),
        }
    }

    /// Payment expired: suspend active deployment `rec` — scale a Kubernetes
    /// deployment to zero, stop a VM through the provider's `power` export.
    pub async fn suspend_expired(
        &self,
        rec: &DeploymentRecord,
        opts: &DeployOptions,
    ) -> Result<(), SuspendError> {
        if rec.deployment_type == DeploymentType::Kubernetes {
            return match self.suspend(&rec.id, opts).await {
                Ok(_) => Ok(()),
                Err(DeployError::Busy(id)) => Err(SuspendError::Busy(id)),
                Err(e) => Err(e.into()),
            };
        }
        let id = &rec.id;
        let lock = self
            .tracker
            .try_lock(id)?
            .ok_or_else(|| SuspendError::Busy(id.clone()))?;
        let rec = self.tracker.get(id)?;
        if rec.status != DeploymentStatus::Active {
            // Someone else moved it meanwhile; the next pass looks again.
            return Err(SuspendError::Busy(id.clone()));
        }
        let (provider, r) = self.power_target(&rec)?;
        if !provider.supports_power() {
            return Err(SuspendError::CannotStop(format!(
                "provider {} cannot stop instances (its component does not export blueprint:provider/power)",
                provider.name()
            )));
        }
        lock.check()?;
        match opts.retry.run(|| provider.stop_instance(r.clone())).await {
            Ok(_) => {}
            Err(CallError::Provider(ProviderError::NotFound(_))) => {
                return Err(SuspendError::Gone(r.id.clone()));
            }
            Err(CallError::Provider(ProviderError::Unsupported(m))) => {
                return Err(SuspendError::CannotStop(m));
            }
            Err(e) => return Err(StepError::call(format!("stop-instance {}", r.id), e).into()),
        }
        let stopped = self
            .wait_state(&provider, &r, InstanceState::Stopped, opts)
            .await?;
        // The ledger first: a crash before the transition leaves an active
        // record that the next pass suspends again (stopping is idempotent).
        self.tracker
            .close_usage(id, "suspended: instance stopped")?;
        let grace_until = self.grace_until(&rec);
        let reason = format!(
            "payment expired: instance {} stopped{}",
            stopped.id,
            grace_until
                .map(|g| format!("; terminated at {} unless renewed", utc(g)))
                .unwrap_or_default()
        );
        let rec = self.transition(id, DeploymentStatus::Suspended, &reason)?;
        self.publish(
            &rec,
            EventKind::Suspended {
                reason: format!("instance {} stopped", stopped.id),
                grace_until,
            },
        );
        Ok(())
    }

    /// A renewed payment brings suspended deployment `id` back: a VM is
    /// started, health-checked and recorded at its (possibly new) address; a
    /// Kubernetes deployment is scaled back to its tier.
    pub async fn resume_paid(
        &self,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        let rec = self.tracker.get(id)?;
        if rec.deployment_type == DeploymentType::Kubernetes {
            self.resume(id, opts).await?;
            return Ok(self.tracker.get(id)?);
        }
        let lock = self
            .tracker
            .try_lock(id)?
            .ok_or_else(|| DeployError::Busy(id.to_string()))?;
        let rec = self.tracker.get(id)?;
        if rec.status != DeploymentStatus::Suspended {
            return Ok(rec);
        }
        let failed = |source: StepError| DeployError::ResumeFailed {
            id: id.to_string(),
            source: Box::new(source),
        };
        let (provider, r) = self
            .power_target(&rec)
            .map_err(|e| failed(StepError::WrongState(e.to_string())))?;
        lock.check()?;
        opts.retry
            .run(|| provider.start_instance(r.clone()))
            .await
            .map_err(|e| failed(StepError::call(format!("start-instance {}", r.id), e)))?;
        let running = self
            .wait_state(&provider, &r, InstanceState::Running, opts)
            .await
            .map_err(failed)?;
        let req: Option<DeployRequest> = serde_json::from_str(&rec.request_json).ok();
        let check = req
            .as_ref()
            .and_then(|q| q.health.as_ref())
            .filter(|_| !self.runs_workloads(provider.name()));
        let healthy = health::wait_healthy(&provider, &running, check, opts)
            .await
            .map_err(failed)?;
        if let Some(a) = &healthy.address {
            self.tracker.record_address(id, a)?;
        }
        self.tracker.reopen_usage(id)?;
        let reason = format!(
            "payment renewed: instance {} started; {}",
            running.id, healthy.message
        );
        Ok(self.transition(id, DeploymentStatus::Active, &reason)?)
    }

    /// The provider handle and instance reference of a VM record.
    fn power_target(
        &self,
        rec: &DeploymentRecord,
    ) -> Result<(crate::providers::ProviderHandle, InstanceRef), SuspendError> {
        let (Some(pname), Some(iid)) = (rec.provider.as_deref(), rec.instance_id.clone()) else {
            return Err(SuspendError::Gone(rec.id.clone()));
        };
        let provider = self
            .providers
            .get(pname)
            .map_err(|e| SuspendError::from(StepError::call("load", e)))?;
        let r = InstanceRef {
            id: iid,
            region: rec.region.clone().unwrap_or_default(),
            zone: rec.zone.clone(),
            resources: rec.resources.iter().map(ResourceRef::from).collect(),
            labels: labels_of(rec),
        };
        Ok((provider, r))
    }

    /// Poll get-instance until the instance is in `want`, under the running deadline.
    async fn wait_state(
        &self,
        provider: &crate::providers::ProviderHandle,
        r: &InstanceRef,
        want: InstanceState,
        opts: &DeployOptions,
    ) -> Result<Instance, StepError> {
        let started = Instant::now();
        let mut wait = opts.poll_initial;
        let mut last;
        loop {
            match opts.retry.run(|| provider.get_instance(r.clone())).await {
                Ok(i) if i.state == want => return Ok(i),
                Ok(i)
                    if matches!(
                        i.state,
                        InstanceState::Terminated
                            | InstanceState::Terminating
                            | InstanceState::Failed
                    ) =>
                {
                    return Err(StepError::InstanceFailed {
                        instance: i.id,
                        state: i.state,
                        detail: i.detail,
                    });
                }
                Ok(i) => last = format!("{:?}", i.state),
                Err(e) => return Err(StepError::call(format!("get-instance {}", r.id), e)),
            }
            if started.elapsed() >= opts.running_timeout {
                return Err(StepError::NotRunning {
                    instance: r.id.clone(),
                    secs: opts.running_timeout.as_secs(),
                    last: format!("waiting for {want:?}, last {last}"),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(opts.poll_max);
        }
    }

    /// Resumes every suspended deployment whose paid time was renewed (a
    /// renewal a crash interrupted, or one recorded by another process).
    /// Returns the ids resumed and the errors.
    pub(super) async fn resume_renewed(
        &self,
        opts: &DeployOptions,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let mut done = Vec::new();
        let mut errors = Vec::new();
        let Ok(suspended) = self.tracker.with_status(DeploymentStatus::Suspended) else {
            return (done, errors);
        };
        let now = now();
        for rec in suspended
            .into_iter()
            .filter(|r| r.expires_at.is_none_or(|e| e > now))
        {
            match self.resume_paid(&rec.id, opts).await {
                Ok(_) => done.push(rec.id.clone()),
                Err(DeployError::Busy(_)) => {}
                Err(e) => errors.push((rec.id.clone(), e.to_string())),
            }
        }
        (done, errors)
    }
}

/// `YYYY-MM-DD HH:MM:SSZ` of unix second `t`.
fn utc(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| t.to_string())
}
