//! The orchestrator: [`crate::Host::deploy`] tries ranked candidates in
//! order, with the tracker's intent written before every provider call and
//! the ids right after; [`crate::Host::terminate`], [`crate::Host::recover`]
//! and [`crate::Host::run_supervisor`] make sure nothing it created is ever
//! forgotten.
//!
//! Error handling per WIT `error` case (wit/types.wit):
//! - capacity-unavailable, quota-exceeded, region-unavailable, unsupported,
//!   provider not loaded: next candidate (the attempt records why);
//! - rate-limited (honouring retry-after), transient, call deadline: retried
//!   with capped exponential backoff and full jitter, a bounded number of times;
//! - unauthorized, invalid-request, denied: stop, no other candidate is tried;
//! - anything failing after create-instance returned: the instance is deleted
//!   (delete-instance until `deleted`) and the record says so.

mod clusters;
mod health;
mod kubernetes;
mod recover;
mod request;
mod retry;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Host;
use crate::providers::ProviderHandle;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{
    DeleteStatus, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState, ProviderError,
    ResourceRef,
};
use crate::tracking::{
    AttemptIntent, AttemptOutcome, DeploymentRecord, DeploymentStatus, NewDeployment,
    ResourceRefRecord, TrackError, Tracker, Transition,
};

pub use kubernetes::KubernetesChange;
pub use recover::{RecoveryReport, SupervisorOptions};
pub use request::{
    DeployRequest, HealthCheck, KubernetesOptions, OpenPort, RequestError, RequestFile, Target,
};
pub use retry::RetryPolicy;

/// Why a deployment (or a termination) failed. Every case that concerns a
/// recorded deployment names its id: `bpr history <id>` shows the rest.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The request is invalid; nothing was written.
    #[error("invalid deploy request: {0}")]
    InvalidRequest(#[from] RequestError),
    /// No candidate was given.
    #[error("no candidate to deploy on: give at least one (provider, region, instance type)")]
    NoCandidates,
    /// Another process is working on this deployment right now.
    #[error("deployment {0} is being worked on by another bpr process; try again when it is done")]
    Busy(String),
    /// The tracker failed.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// An error no other candidate would fix (unauthorized, invalid, denied).
    #[error("deployment {id}: stopped at {candidate}: {message}")]
    Stopped {
        /// Deployment id.
        id: String,
        /// The candidate (`provider/region/type`).
        candidate: String,
        /// Why.
        message: String,
    },
    /// Every candidate failed over.
    #[error("deployment {id}: no candidate could serve it: {}", reasons.join("; "))]
    Exhausted {
        /// Deployment id.
        id: String,
        /// One reason per candidate.
        reasons: Vec<String>,
    },
    /// It failed after the instance was created (health, workload); what was
    /// created was deleted.
    #[error("deployment {id}: {message}; its instance was deleted")]
    Unhealthy {
        /// Deployment id.
        id: String,
        /// Why.
        message: String,
    },
    /// Something created could not be deleted (yet). The record is `failed`
    /// and still holds the instance; `bpr cleanup` (or the supervisor) retries.
    #[error(
        "deployment {id}: {message}; its instance {instance} could not be deleted yet ({cleanup}); run `bpr cleanup` to retry"
    )]
    CleanupFailed {
        /// Deployment id.
        id: String,
        /// The original failure.
        message: String,
        /// Instance id.
        instance: String,
        /// Why deletion failed.
        cleanup: String,
    },
    /// A Kubernetes operation (update, suspend, resume, status) failed.
    #[error("deployment {id}: {message}")]
    Kubernetes {
        /// Deployment id.
        id: String,
        /// Why.
        message: String,
    },
    /// A Kubernetes-only operation was asked of another kind of deployment.
    #[error(
        "deployment {0} is not a Kubernetes deployment; update, suspend and resume apply to `k8s:` deployments"
    )]
    NotKubernetes(String),
    /// A termination failed; the record stays `terminating` and is retried.
    #[error(
        "deployment {id}: termination failed: {message}; it stays terminating and `bpr cleanup` retries"
    )]
    TerminateFailed {
        /// Deployment id.
        id: String,
        /// Why.
        message: String,
    },
}

/// One step of a deployment, for progress output.
#[derive(Debug, Clone)]
pub enum DeployEvent {
    /// The record moved to a status.
    Status {
        /// Deployment id.
        id: String,
        /// New status.
        status: DeploymentStatus,
        /// Why.
        reason: String,
    },
    /// A candidate is being tried.
    Trying {
        /// Attempt number (1-based).
        n: u32,
        /// The candidate.
        target: Target,
    },
    /// An attempt ended.
    AttemptDone {
        /// Attempt number.
        n: u32,
        /// Outcome.
        outcome: AttemptOutcome,
        /// Why.
        detail: String,
    },
}

/// Receives [`DeployEvent`]s.
pub type ProgressFn = Arc<dyn Fn(&DeployEvent) + Send + Sync>;

/// Timing of a deployment. Defaults suit real clouds; tests shorten them.
#[derive(Clone)]
pub struct DeployOptions {
    /// Retries of one provider call on rate-limited / transient errors.
    pub retry: RetryPolicy,
    /// How long an instance may take to reach `running`.
    pub running_timeout: Duration,
    /// How long the health check may take to pass.
    pub health_timeout: Duration,
    /// How long deleting an instance may take (delete-instance until `deleted`).
    pub delete_timeout: Duration,
    /// First poll interval (doubles up to `poll_max`).
    pub poll_initial: Duration,
    /// Largest poll interval.
    pub poll_max: Duration,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for DeployOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployOptions")
            .field("retry", &self.retry)
            .field("running_timeout", &self.running_timeout)
            .field("health_timeout", &self.health_timeout)
            .field("delete_timeout", &self.delete_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            running_timeout: Duration::from_secs(600),
            health_timeout: Duration::from_secs(600),
            delete_timeout: Duration::from_secs(600),
            poll_initial: Duration::from_millis(500),
            poll_max: Duration::from_secs(10),
            progress: None,
        }
    }
}

impl DeployOptions {
    fn emit(&self, e: DeployEvent) {
        if let Some(p) = &self.progress {
            p(&e);
        }
    }
}

/// What to do after a failed provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Try the next candidate.
    Failover,
    /// Stop the deployment.
    Stop,
    /// The outcome is unknown (retries exhausted, trap, other): sweep, then fail over.
    Unknown,
}

fn verdict(e: &CallError) -> Verdict {
    match e {
        CallError::Provider(p) => match p {
            ProviderError::CapacityUnavailable(_)
            | ProviderError::QuotaExceeded(_)
            | ProviderError::RegionUnavailable(_)
            | ProviderError::Unsupported(_) => Verdict::Failover,
            ProviderError::Unauthorized(_)
            | ProviderError::InvalidRequest(_)
            | ProviderError::Denied(_) => Verdict::Stop,
            ProviderError::NotFound(_) => Verdict::Stop,
            ProviderError::RateLimited(_)
            | ProviderError::Transient(_)
            | ProviderError::Other(_) => Verdict::Unknown,
        },
        CallError::NotLoaded(_) | CallError::Unsupported { .. } => Verdict::Failover,
        _ => Verdict::Unknown,
    }
}

/// A short, human text for a call error.
pub fn describe_error(e: &CallError) -> String {
    match e {
        CallError::Provider(p) => match p {
            ProviderError::Unauthorized(m) => format!("unauthorized: {m}"),
            ProviderError::NotFound(m) => format!("not found: {m}"),
            ProviderError::InvalidRequest(m) => format!("invalid request: {m}"),
            ProviderError::CapacityUnavailable(m) => format!("capacity unavailable: {m}"),
            ProviderError::QuotaExceeded(m) => format!("quota exceeded: {m}"),
            ProviderError::RegionUnavailable(m) => format!("region unavailable: {m}"),
            ProviderError::RateLimited(r) => format!("rate limited: {}", r.message),
            ProviderError::Unsupported(m) => format!("unsupported: {m}"),
            ProviderError::Denied(m) => format!("denied by network policy: {m}"),
            ProviderError::Transient(m) => format!("transient: {m}"),
            ProviderError::Other(m) => format!("error: {m}"),
        },
        other => other.to_string(),
    }
}

fn address_of(i: &Instance) -> Option<String> {
    i.public_ipv4.clone().or_else(|| i.private_ipv4.clone())
}

fn resources_of(i: &Instance) -> Vec<ResourceRefRecord> {
    i.resources.iter().map(ResourceRefRecord::from).collect()
}

fn labels_of(r: &DeploymentRecord) -> Vec<(String, String)> {
    r.labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Why one candidate did not work.
enum CandidateError {
    Failover(String),
    Stop(String),
    /// Created, then failed, and deleting it failed too: the record holds it.
    Leaked {
        message: String,
        instance: String,
        cleanup: String,
    },
}

/// Creates deployment `id`'s record (`planned`) from the request it stores, and
/// reports it: the first durable step of every deploy, VM or Kubernetes.
pub(super) fn record_planned(
    tracker: &Tracker,
    id: &str,
    stored: &DeployRequest,
    opts: &DeployOptions,
) -> Result<DeploymentRecord, DeployError> {
    let record = tracker.create(&NewDeployment {
        id: id.to_string(),
        blueprint_id: stored.blueprint_id.clone(),
        service_id: stored.service_id.clone(),
        deployment_type: stored.deployment_type,
        labels: stored.labels.clone(),
        ttl_secs: stored.ttl_secs,
        cleanup_webhook: stored.cleanup_webhook.clone(),
        request_json: serde_json::to_string(stored).unwrap_or_default(),
    })?;
    opts.emit(DeployEvent::Status {
        id: id.to_string(),
        status: DeploymentStatus::Planned,
        reason: "request recorded".into(),
    });
    Ok(record)
}

/// A fresh deployment id.
pub fn new_deployment_id() -> String {
    format!("dep-{}", uuid::Uuid::new_v4())
}

impl Host {
    /// The deployment tracker (over [`Host::database`]; lock files under
    /// `<state_dir>/deployments`).
    pub fn tracker(&self) -> Tracker {
        Tracker::new(
            self.database().clone(),
            &self.config().host.state_dir.join("deployments"),
        )
    }

    /// Deploy `req` on the first of `candidates` (in ranked order) that
    /// works, with default timing. See the module docs for the error policy.
    pub async fn deploy(
        &self,
        req: DeployRequest,
        candidates: Vec<Target>,
    ) -> Result<DeploymentRecord, DeployError> {
        self.deploy_with(req, candidates, &DeployOptions::default())
            .await
    }

    /// [`Host::deploy`] with explicit timing and a progress callback.
    pub async fn deploy_with(
        &self,
        req: DeployRequest,
        candidates: Vec<Target>,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        req.validate()?;
        if req.deployment_type == crate::tracking::DeploymentType::Kubernetes {
            // The cluster is named in the request; there is nothing to rank.
            return self.deploy_kubernetes(req, opts).await;
        }
        if candidates.is_empty() {
            return Err(DeployError::NoCandidates);
        }
        for (i, c) in candidates.iter().enumerate() {
            c.validate(i)?;
        }
        let tracker = self.tracker();
        let id = req.deployment_id.clone().unwrap_or_else(new_deployment_id);
        let _lock = tracker
            .try_lock(&id)?
            .ok_or_else(|| DeployError::Busy(id.clone()))?;
        let user_data = req.user_data(&id)?;
        let record = record_planned(&tracker, &id, &req, opts)?;
        let plan = candidates
            .iter()
            .map(Target::label)
            .collect::<Vec<_>>()
            .join(", ");
        self.step(
            &tracker,
            opts,
            &id,
            DeploymentStatus::Provisioning,
            &format!("trying {} candidate(s): {plan}", candidates.len()),
        )?;

        let mut reasons = Vec::new();
        let mut chosen = None;
        for (i, target) in candidates.iter().enumerate() {
            let key = format!("{id}-c{}", i + 1);
            let n = tracker.begin_attempt(
                &id,
                &AttemptIntent {
                    provider: &target.provider,
                    region: &target.region,
                    zone: target.zone.as_deref(),
                    instance_type: &target.instance_type,
                    spot: target.spot,
                    hourly_usd: target.hourly_usd,
                    idempotency_key: &key,
                },
            )?;
            opts.emit(DeployEvent::Trying {
                n,
                target: target.clone(),
            });
            match self
                .try_candidate(
                    &tracker,
                    &record,
                    &req,
                    target,
                    n,
                    &key,
                    user_data.clone(),
                    opts,
                )
                .await
            {
                Ok(instance) => {
                    let detail = format!("instance {} running", instance.id);
                    tracker.finish_attempt(&id, n, AttemptOutcome::Used, &detail)?;
                    opts.emit(DeployEvent::AttemptDone {
                        n,
                        outcome: AttemptOutcome::Used,
                        detail,
                    });
                    chosen = Some((target.clone(), instance));
                    break;
                }
                Err(CandidateError::Failover(why)) => {
                    tracker.finish_attempt(&id, n, AttemptOutcome::Failover, &why)?;
                    opts.emit(DeployEvent::AttemptDone {
                        n,
                        outcome: AttemptOutcome::Failover,
                        detail: why.clone(),
                    });
                    reasons.push(format!("{}: {why}", target.label()));
                }
                Err(CandidateError::Stop(why)) => {
                    tracker.finish_attempt(&id, n, AttemptOutcome::Stopped, &why)?;
                    opts.emit(DeployEvent::AttemptDone {
                        n,
                        outcome: AttemptOutcome::Stopped,
                        detail: why.clone(),
                    });
                    let message = format!("{}: {why}", target.label());
                    self.step(&tracker, opts, &id, DeploymentStatus::Failed, &message)?;
                    return Err(DeployError::Stopped {
                        id,
                        candidate: target.label(),
                        message: why,
                    });
                }
                Err(CandidateError::Leaked {
                    message,
                    instance,
                    cleanup,
                }) => {
                    let detail =
                        format!("{message}; deleting instance {instance} failed: {cleanup}");
                    tracker.finish_attempt(&id, n, AttemptOutcome::Failed, &detail)?;
                    opts.emit(DeployEvent::AttemptDone {
                        n,
                        outcome: AttemptOutcome::Failed,
                        detail: detail.clone(),
                    });
                    self.step(&tracker, opts, &id, DeploymentStatus::Failed, &detail)?;
                    return Err(DeployError::CleanupFailed {
                        id,
                        message,
                        instance,
                        cleanup,
                    });
                }
            }
        }
        let Some((target, instance)) = chosen else {
            let why = format!("no candidate could serve it: {}", reasons.join("; "));
            self.step(&tracker, opts, &id, DeploymentStatus::Failed, &why)?;
            return Err(DeployError::Exhausted { id, reasons });
        };
        let addr = address_of(&instance);
        self.step(
            &tracker,
            opts,
            &id,
            DeploymentStatus::Provisioned,
            &format!(
                "instance {} running on {} at {}",
                instance.id,
                target.label(),
                addr.as_deref().unwrap_or("no address")
            ),
        )?;
        let how = match &req.health {
            Some(h) => format!(
                "waiting for http://{}:{}{}",
                addr.as_deref().unwrap_or("?"),
                h.port,
                h.path()
            ),
            None => "no health check given: the provider's running state counts".into(),
        };
        self.step(
            &tracker,
            opts,
            &id,
            DeploymentStatus::Deploying,
            &format!("workload starting; {how}"),
        )?;
        let provider = self
            .provider(&target.provider)
            .map_err(|e| DeployError::Stopped {
                id: id.clone(),
                candidate: target.label(),
                message: e.to_string(),
            })?;
        match health::wait_healthy(&provider, &instance, req.health.as_ref(), opts).await {
            Ok(detail) => {
                if let Some(a) = &detail.address {
                    tracker.record_address(&id, a)?;
                }
                self.step(
                    &tracker,
                    opts,
                    &id,
                    DeploymentStatus::Active,
                    &detail.message,
                )?;
                Ok(tracker.get(&id)?)
            }
            Err(why) => {
                self.step(
                    &tracker,
                    opts,
                    &id,
                    DeploymentStatus::Failed,
                    &format!("health check failed: {why}"),
                )?;
                match self
                    .terminate_locked(
                        &tracker,
                        &id,
                        opts,
                        "deleting the instance of a failed deployment",
                    )
                    .await
                {
                    Ok(_) => Err(DeployError::Unhealthy {
                        id,
                        message: format!("health check failed: {why}"),
                    }),
                    Err(e) => Err(DeployError::CleanupFailed {
                        id,
                        message: format!("health check failed: {why}"),
                        instance: instance.id,
                        cleanup: e.to_string(),
                    }),
                }
            }
        }
    }

    fn step(
        &self,
        tracker: &Tracker,
        opts: &DeployOptions,
        id: &str,
        to: DeploymentStatus,
        reason: &str,
    ) -> Result<DeploymentRecord, TrackError> {
        let r = tracker.transition(id, to, reason)?;
        opts.emit(DeployEvent::Status {
            id: id.to_string(),
            status: to,
            reason: reason.to_string(),
        });
        Ok(r)
    }

    #[allow(clippy::too_many_arguments, reason = "one private step of deploy_with")]
    async fn try_candidate(
        &self,
        tracker: &Tracker,
        record: &DeploymentRecord,
        req: &DeployRequest,
        target: &Target,
        n: u32,
        key: &str,
        user_data: Option<String>,
        opts: &DeployOptions,
    ) -> Result<Instance, CandidateError> {
        let id = &record.id;
        let provider = match self.provider(&target.provider) {
            Ok(p) => p,
            Err(e) => return Err(CandidateError::Failover(e.to_string())),
        };
        let labels = labels_of(record);
        let spec = InstanceSpec {
            deployment_id: id.clone(),
            idempotency_key: key.to_string(),
            region: target.region.clone(),
            zone: target.zone.clone(),
            instance_type: target.instance_type.clone(),
            spot: target.spot,
            image: req.image.clone(),
            disk_gib: req.disk_gib,
            ssh_public_keys: req.ssh_public_keys.clone(),
            user_data,
            open_ports: req.port_rules(),
            labels: labels.clone(),
            workload: None,
        };
        // The same key on every retry: a create that did happen is returned, not repeated.
        let created = opts
            .retry
            .run(|| provider.create_instance(spec.clone()))
            .await;
        let instance = match created {
            Ok(i) => i,
            Err(e) => {
                let why = describe_error(&e);
                return match verdict(&e) {
                    Verdict::Failover => Err(CandidateError::Failover(why)),
                    Verdict::Stop => Err(CandidateError::Stop(why)),
                    Verdict::Unknown => {
                        // The create may have happened: find and delete what carries our label here.
                        match self.sweep(&provider, &target.region, id, opts).await {
                            Ok(0) => Err(CandidateError::Failover(why)),
                            Ok(k) => Err(CandidateError::Failover(format!(
                                "{why}; deleted {k} instance(s) it may have made"
                            ))),
                            Err(sweep) => Err(CandidateError::Leaked {
                                message: why,
                                instance: "(unknown: listing failed)".into(),
                                cleanup: sweep,
                            }),
                        }
                    }
                };
            }
        };
        // Durable right after the provider answered.
        if let Err(e) = tracker.record_instance(
            id,
            Some(n),
            &instance.id,
            &resources_of(&instance),
            address_of(&instance).as_deref(),
        ) {
            // Without a record of it, it must not keep running.
            let cleanup = self
                .delete_until_gone(&provider, &instance_ref(&instance, &labels), opts)
                .await;
            return Err(CandidateError::Leaked {
                message: format!("cannot record instance {}: {e}", instance.id),
                instance: instance.id.clone(),
                cleanup: cleanup.err().unwrap_or_else(|| "deleted".into()),
            });
        }
        match self.wait_running(&provider, &instance, &labels, opts).await {
            Ok(running) => {
                if let Err(e) = tracker.record_instance(
                    id,
                    None,
                    &running.id,
                    &resources_of(&running),
                    address_of(&running).as_deref(),
                ) {
                    tracing::warn!("deployment {id}: cannot update instance details: {e}");
                }
                Ok(running)
            }
            Err(why) => {
                let r = instance_ref(&instance, &labels);
                match self.delete_until_gone(&provider, &r, opts).await {
                    Ok(()) => {
                        let _ = tracker.record_released(id);
                        Err(CandidateError::Failover(format!(
                            "{why}; instance {} deleted",
                            instance.id
                        )))
                    }
                    Err(cleanup) => Err(CandidateError::Leaked {
                        message: why,
                        instance: instance.id.clone(),
                        cleanup,
                    }),
                }
            }
        }
    }

    /// Poll get-instance with growing intervals until running, under the deadline.
    async fn wait_running(
        &self,
        provider: &ProviderHandle,
        created: &Instance,
        labels: &[(String, String)],
        opts: &DeployOptions,
    ) -> Result<Instance, String> {
        let started = Instant::now();
        let r = instance_ref(created, labels);
        let mut wait = opts.poll_initial;
        let mut last = format!("{:?}", created.state);
        if created.state == InstanceState::Running {
            return Ok(created.clone());
        }
        loop {
            match opts.retry.run(|| provider.get_instance(r.clone())).await {
                Ok(i) => match i.state {
                    InstanceState::Running => return Ok(i),
                    InstanceState::Failed
                    | InstanceState::Terminated
                    | InstanceState::Terminating => {
                        return Err(format!(
                            "instance {} went {:?} before running{}",
                            i.id,
                            i.state,
                            i.detail.map(|d| format!(": {d}")).unwrap_or_default()
                        ));
                    }
                    s => last = format!("{s:?}"),
                },
                // Eventual consistency right after a create: keep polling until the deadline.
                Err(CallError::Provider(ProviderError::NotFound(m))) => {
                    last = format!("not found yet ({m})")
                }
                Err(e) if verdict(&e) == Verdict::Unknown => last = describe_error(&e),
                Err(e) => return Err(format!("get-instance failed: {}", describe_error(&e))),
            }
            if started.elapsed() >= opts.running_timeout {
                return Err(format!(
                    "instance {} not running after {} s (last: {last})",
                    created.id,
                    opts.running_timeout.as_secs()
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(opts.poll_max);
        }
    }

    /// delete-instance until `deleted` (not-found counts), under the deadline.
    async fn delete_until_gone(
        &self,
        provider: &ProviderHandle,
        r: &InstanceRef,
        opts: &DeployOptions,
    ) -> Result<(), String> {
        let started = Instant::now();
        let mut wait = opts.poll_initial;
        loop {
            match opts.retry.run(|| provider.delete_instance(r.clone())).await {
                Ok(DeleteStatus::Deleted)
                | Err(CallError::Provider(ProviderError::NotFound(_))) => return Ok(()),
                Ok(DeleteStatus::InProgress) => {}
                Err(e)
                    if verdict(&e) == Verdict::Unknown
                        && started.elapsed() < opts.delete_timeout => {}
                Err(e) => return Err(format!("delete-instance {}: {}", r.id, describe_error(&e))),
            }
            if started.elapsed() >= opts.delete_timeout {
                return Err(format!(
                    "instance {} still not deleted after {} s",
                    r.id,
                    opts.delete_timeout.as_secs()
                ));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(opts.poll_max);
        }
    }

    /// Instances labelled `bpr-deployment=<id>` in `region` of `provider`.
    async fn find_labelled(
        &self,
        provider: &ProviderHandle,
        region: &str,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<Vec<Instance>, String> {
        let q = InstanceQuery {
            regions: vec![region.to_string()],
            labels: vec![("bpr-deployment".to_string(), id.to_string())],
        };
        opts.retry
            .run(|| provider.list_instances(q.clone()))
            .await
            .map(|v| {
                v.into_iter()
                    .filter(|i| !matches!(i.state, InstanceState::Terminated))
                    .collect()
            })
            .map_err(|e| format!("list-instances in {region}: {}", describe_error(&e)))
    }

    /// Delete every instance labelled for `id` in `region`; returns how many.
    async fn sweep(
        &self,
        provider: &ProviderHandle,
        region: &str,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<usize, String> {
        let found = self.find_labelled(provider, region, id, opts).await?;
        for i in &found {
            self.delete_until_gone(provider, &instance_ref(i, &i.labels), opts)
                .await?;
        }
        Ok(found.len())
    }

    /// Terminate deployment `id`: delete its instance until gone, then mark it
    /// `terminated` (and call its cleanup webhook). Idempotent: an already
    /// terminated deployment is returned as is.
    pub async fn terminate(&self, id: &str) -> Result<DeploymentRecord, DeployError> {
        self.terminate_with(id, &DeployOptions::default(), "terminated on request")
            .await
    }

    /// [`Host::terminate`] with explicit timing and the reason for the history.
    pub async fn terminate_with(
        &self,
        id: &str,
        opts: &DeployOptions,
        reason: &str,
    ) -> Result<DeploymentRecord, DeployError> {
        let tracker = self.tracker();
        tracker.get(id)?;
        let _lock = tracker
            .try_lock(id)?
            .ok_or_else(|| DeployError::Busy(id.to_string()))?;
        let rec = tracker.get(id)?;
        if rec.status.is_in_flight() && rec.status != DeploymentStatus::Terminating {
            // Left mid-flight by a process that died (we hold its lock): resolve it first.
            self.recover_one(&tracker, &rec, opts).await;
        }
        let out = self.terminate_locked(&tracker, id, opts, reason).await;
        let rec = tracker.get(id)?;
        recover::post_webhook(&rec, out.as_ref().err()).await;
        out
    }

    /// Terminate while holding the deployment's lock.
    async fn terminate_locked(
        &self,
        tracker: &Tracker,
        id: &str,
        opts: &DeployOptions,
        reason: &str,
    ) -> Result<DeploymentRecord, DeployError> {
        let rec = tracker.get(id)?;
        match rec.status {
            DeploymentStatus::Terminated => return Ok(rec),
            DeploymentStatus::Failed if !rec.holds_resources() => return Ok(rec),
            DeploymentStatus::Terminating => {}
            _ => {
                self.step(tracker, opts, id, DeploymentStatus::Terminating, reason)?;
            }
        }
        let fail = |message: String| {
            let _ = tracker.note_error(id, &message);
            DeployError::TerminateFailed {
                id: id.to_string(),
                message,
            }
        };
        if rec.deployment_type == crate::tracking::DeploymentType::Kubernetes {
            let what = self.delete_kubernetes(&rec, opts).await.map_err(fail)?;
            tracker.record_released(id)?;
            self.step(tracker, opts, id, DeploymentStatus::Terminated, &what)?;
            return Ok(tracker.get(id)?);
        }
        let (Some(pname), Some(region)) = (rec.provider.clone(), rec.region.clone()) else {
            self.step(
                tracker,
                opts,
                id,
                DeploymentStatus::Terminated,
                "nothing was created",
            )?;
            return Ok(tracker.get(id)?);
        };
        let provider = self.provider(&pname).map_err(|e| fail(e.to_string()))?;
        let labels = labels_of(&rec);
        let mut deleted = Vec::new();
        if let Some(iid) = rec.instance_id.clone().filter(|_| rec.holds_resources()) {
            let r = InstanceRef {
                id: iid.clone(),
                region: region.clone(),
                zone: rec.zone.clone(),
                resources: rec.resources.iter().map(ResourceRef::from).collect(),
                labels: labels.clone(),
            };
            self.delete_until_gone(&provider, &r, opts)
                .await
                .map_err(fail)?;
            deleted.push(iid);
        }
        // Anything else carrying its label in that region (a crash between create and record).
        for i in self
            .find_labelled(&provider, &region, id, opts)
            .await
            .map_err(fail)?
        {
            self.delete_until_gone(&provider, &instance_ref(&i, &i.labels), opts)
                .await
                .map_err(fail)?;
            deleted.push(i.id);
        }
        tracker.record_released(id)?;
        let why = if deleted.is_empty() {
            "no instance left to delete".to_string()
        } else {
            format!("deleted instance(s) {}", deleted.join(", "))
        };
        self.step(tracker, opts, id, DeploymentStatus::Terminated, &why)?;
        Ok(tracker.get(id)?)
    }

    /// Every record (oldest first), or one.
    pub fn status(&self, id: Option<&str>) -> Result<Vec<DeploymentRecord>, TrackError> {
        let t = self.tracker();
        match id {
            Some(id) => Ok(vec![t.get(id)?]),
            None => t.list(),
        }
    }

    /// The transitions of `id`, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<Transition>, TrackError> {
        self.tracker().history(id)
    }
}

fn instance_ref(i: &Instance, labels: &[(String, String)]) -> InstanceRef {
    InstanceRef {
        id: i.id.clone(),
        region: i.region.clone(),
        zone: i.zone.clone(),
        resources: i.resources.clone(),
        labels: labels.to_vec(),
    }
}
