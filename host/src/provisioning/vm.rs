//! VM deployments: the candidates tried in order, the instance created,
//! recorded, waited for and health-checked, or deleted again.
//!
//! What runs on it is built by the host: cloud-init user data for a cloud VM,
//! or the WIT `workload` for a provider that places workloads itself (the
//! `workloads` capability: the operator's own machines over SSH).

use std::time::Instant;

use super::error::{CandidateFailure, DeployError, StepError};
use super::events::EventKind;
use super::health;
use super::instances::{address_of, instance_ref, labels_of, places_of, resources_of};
use super::options::{DeployEvent, DeployOptions};
use super::orchestrator::{Orchestrator, new_deployment_id};
use super::request::{DeployRequest, InstanceTarget};
use super::verdict::{Verdict, verdict};
use crate::providers::ProviderHandle;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{
    self, Capability, Instance, InstanceSpec, InstanceState, ProviderError,
};
use crate::tracking::{AttemptIntent, AttemptOutcome, DeploymentRecord, DeploymentStatus};

/// Why one candidate did not work.
enum CandidateError {
    /// The next candidate may work.
    Failover(StepError),
    /// No other candidate would fix it.
    Stop(StepError),
    /// Created, then failed, and deleting it failed too: the record holds it.
    Leaked {
        failure: StepError,
        instance: String,
        cleanup: StepError,
    },
}

/// Whether the provider said the candidate's region is unavailable: true of
/// every instance type there, so the region's other candidates are skipped.
fn region_unavailable(e: &StepError) -> bool {
    matches!(
        e,
        StepError::Call {
            source: CallError::Provider(ProviderError::RegionUnavailable(_)),
            ..
        }
    )
}

/// What runs on the instance, in the form its provider takes.
#[derive(Clone)]
enum Payload {
    /// Cloud-init user data (or nothing to run).
    UserData(Option<String>),
    /// A workload the provider places itself.
    Workload(Option<wit::Workload>),
}

impl Orchestrator {
    /// The VM branch of [`Orchestrator::deploy_with`]: the candidates in order.
    pub(super) async fn deploy_vm(
        &self,
        req: DeployRequest,
        candidates: Vec<InstanceTarget>,
        opts: &DeployOptions,
        service_key: Option<String>,
    ) -> Result<DeploymentRecord, DeployError> {
        if candidates.is_empty() {
            return Err(DeployError::NoCandidates);
        }
        for (i, c) in candidates.iter().enumerate() {
            c.validate(i)?;
        }
        let tracker = self.tracker.clone();
        let id = req.deployment_id.clone().unwrap_or_else(new_deployment_id);
        let _lock = tracker
            .try_lock(&id)?
            .ok_or_else(|| DeployError::Busy(id.clone()))?;
        // Both forms are built (and checked) before anything is recorded.
        let user_data = req.user_data(&id)?;
        let workload = req.wit_workload()?;
        let mut stored = req.clone();
        stored.deployment_id = Some(id.clone());
        let record = self.record_planned(&id, &stored, opts, service_key)?;
        let plan = candidates
            .iter()
            .map(InstanceTarget::label)
            .collect::<Vec<_>>()
            .join(", ");
        self.step(
            opts,
            &id,
            DeploymentStatus::Provisioning,
            &format!("trying {} candidate(s): {plan}", candidates.len()),
        )?;

        let mut failures = Vec::new();
        let mut chosen = None;
        // (provider, region, the candidate that found it unavailable): the rest
        // of that region's candidates would only repeat the same failure.
        let mut unavailable: Vec<(String, String, String)> = Vec::new();
        for (i, target) in candidates.iter().enumerate() {
            if let Some((_, _, earlier)) = unavailable
                .iter()
                .find(|(p, r, _)| *p == target.provider && *r == target.region)
            {
                failures.push(CandidateFailure {
                    candidate: target.label(),
                    error: StepError::RegionSkipped {
                        provider: target.provider.clone(),
                        region: target.region.clone(),
                        earlier: earlier.clone(),
                    },
                });
                continue;
            }
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
            self.publish(
                &record,
                EventKind::Provisioning {
                    candidate: target.label(),
                },
            );
            let payload = match self.runs_workloads(&target.provider) {
                true => Payload::Workload(workload.clone()),
                false => Payload::UserData(user_data.clone()),
            };
            match self
                .try_candidate(&record, &req, target, n, &key, payload, opts)
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
                Err(CandidateError::Failover(error)) => {
                    if region_unavailable(&error) {
                        unavailable.push((
                            target.provider.clone(),
                            target.region.clone(),
                            target.label(),
                        ));
                    }
                    let why = error.to_string();
                    tracker.finish_attempt(&id, n, AttemptOutcome::Failover, &why)?;
                    opts.emit(DeployEvent::AttemptDone {
                        n,
                        outcome: AttemptOutcome::Failover,
                        detail: why,
                    });
                    failures.push(CandidateFailure {
                        candidate: target.label(),
                        error,
                    });
                }
                Err(CandidateError::Stop(error)) => {
                    let why = error.to_string();
                    tracker.finish_attempt(&id, n, AttemptOutcome::Stopped, &why)?;
                    opts.emit(DeployEvent::AttemptDone {
                        n,
                        outcome: AttemptOutcome::Stopped,
                        detail: why.clone(),
                    });
                    let message = format!("{}: {why}", target.label());
                    self.end_failed(opts, &id, &message).await?;
                    return Err(DeployError::Stopped {
                        id,
                        candidate: target.label(),
                        source: Box::new(error),
                    });
                }
                Err(CandidateError::Leaked {
                    failure,
                    instance,
                    cleanup,
                }) => {
                    let detail =
                        format!("{failure}; deleting instance {instance} failed: {cleanup}");
                    tracker.finish_attempt(&id, n, AttemptOutcome::Failed, &detail)?;
                    opts.emit(DeployEvent::AttemptDone {
                        n,
                        outcome: AttemptOutcome::Failed,
                        detail: detail.clone(),
                    });
                    self.end_failed(opts, &id, &detail).await?;
                    return Err(DeployError::CleanupFailed {
                        id,
                        failure: failure.to_string(),
                        instance,
                        source: Box::new(cleanup),
                    });
                }
            }
        }
        let Some((target, instance)) = chosen else {
            let error = DeployError::Exhausted {
                id: id.clone(),
                failures,
            };
            let why = error.to_string();
            let why = why
                .strip_prefix(&format!("deployment {id}: "))
                .unwrap_or(&why);
            self.end_failed(opts, &id, why).await?;
            return Err(error);
        };
        let addr = address_of(&instance);
        self.step(
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
        let workloads = self.runs_workloads(&target.provider);
        let how = match (&req.health, workloads) {
            (Some(h), true) => format!(
                "waiting for the provider's check of port {}{} on the machine",
                h.port,
                h.path()
            ),
            (Some(h), false) => format!(
                "waiting for http://{}:{}{}",
                addr.as_deref().unwrap_or("?"),
                h.port,
                h.path()
            ),
            (None, _) => "no health check given: the provider's running state counts".into(),
        };
        self.step(
            opts,
            &id,
            DeploymentStatus::Deploying,
            &format!("workload starting; {how}"),
        )?;
        let provider = self
            .providers
            .get(&target.provider)
            .map_err(|e| DeployError::Stopped {
                id: id.clone(),
                candidate: target.label(),
                source: Box::new(StepError::call("load", e)),
            })?;
        // A provider that places workloads checks health on the machine itself
        // (and reports running only once it passes); the host checks the others.
        let check = req.health.as_ref().filter(|_| !workloads);
        match health::wait_healthy(&provider, &instance, check, opts).await {
            Ok(detail) => {
                if let Some(a) = &detail.address {
                    tracker.record_address(&id, a)?;
                }
                self.step(opts, &id, DeploymentStatus::Active, &detail.message)?;
                Ok(tracker.get(&id)?)
            }
            Err(error) => {
                let why = format!("health check failed: {error}");
                self.step(opts, &id, DeploymentStatus::Failed, &why)?;
                match self
                    .terminate_locked(&id, opts, "deleting the instance of a failed deployment")
                    .await
                {
                    Ok(_) => Err(DeployError::Unhealthy {
                        id,
                        source: Box::new(error),
                    }),
                    Err(cleanup) => Err(DeployError::CleanupFailed {
                        id,
                        failure: why,
                        instance: instance.id,
                        source: Box::new(StepError::from_cleanup(cleanup)),
                    }),
                }
            }
        }
    }

    /// End a deploy `failed` with `why`, after clearing every place it tried
    /// (see [`Orchestrator::clear_place`]). A place that cannot be cleared now
    /// (an outage, a create whose answer was lost) leaves the record
    /// unresolved: it counts as holding resources, and `bpr cleanup` and the
    /// supervisor clear it once a listing by its label answers.
    async fn end_failed(
        &self,
        opts: &DeployOptions,
        id: &str,
        why: &str,
    ) -> Result<(), DeployError> {
        let tracker = &self.tracker;
        self.step(opts, id, DeploymentStatus::Failed, why)?;
        let rec = tracker.get(id)?;
        let attempts = tracker.attempts(id)?;
        match self
            .clear_places(&rec, &places_of(&rec, &attempts), opts)
            .await
        {
            Ok(_) => tracker.record_cleared(id)?,
            Err(e) => tracker.mark_unresolved(
                id,
                &format!(
                    "{why}; what it may have made could not be checked or deleted yet ({e}); \
                     `bpr cleanup` finishes it once the provider answers"
                ),
            )?,
        }
        Ok(())
    }

    /// True when `provider` places workloads itself (`workloads` capability).
    pub(super) fn runs_workloads(&self, provider: &str) -> bool {
        self.providers
            .get(provider)
            .and_then(|p| p.current())
            .is_ok_and(|c| c.info.capabilities.contains(&Capability::Workloads))
    }

    #[allow(clippy::too_many_arguments, reason = "one private step of deploy_vm")]
    async fn try_candidate(
        &self,
        record: &DeploymentRecord,
        req: &DeployRequest,
        target: &InstanceTarget,
        n: u32,
        key: &str,
        payload: Payload,
        opts: &DeployOptions,
    ) -> Result<Instance, CandidateError> {
        let id = &record.id;
        let tracker = &self.tracker;
        let provider = match self.providers.get(&target.provider) {
            Ok(p) => p,
            Err(e) => return Err(CandidateError::Failover(StepError::call("load", e))),
        };
        let labels = labels_of(record);
        let (user_data, workload) = match payload {
            Payload::UserData(u) => (u, None),
            Payload::Workload(w) => (None, w),
        };
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
            workload,
        };
        // Not after this process lost the deployment to another replica.
        tracker
            .check_lease(id)
            .map_err(|e| CandidateError::Stop(StepError::Track(e)))?;
        // The same key on every retry: a create that did happen is returned, not repeated.
        let created = opts
            .retry
            .run(|| provider.create_instance(spec.clone()))
            .await;
        let instance = match created {
            Ok(i) => i,
            Err(e) => {
                let v = verdict(&e);
                let error = StepError::call("create-instance", e);
                return match v {
                    Verdict::Failover => Err(CandidateError::Failover(error)),
                    Verdict::Stop => Err(CandidateError::Stop(error)),
                    Verdict::Unknown => {
                        // The create may have happened: find and delete what carries
                        // our label here, next to an instance or not.
                        match self
                            .clear_place(&provider, &target.region, id, &labels, opts)
                            .await
                        {
                            Ok(deleted) => {
                                if !deleted.is_empty() {
                                    tracing::info!(
                                        "deployment {id}: deleted instance(s) {} its unanswered create made in {}",
                                        deleted.join(", "),
                                        target.region
                                    );
                                }
                                Err(CandidateError::Failover(error))
                            }
                            Err(sweep) => Err(CandidateError::Leaked {
                                failure: error,
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
            let failure = StepError::NotRecorded {
                instance: instance.id.clone(),
                source: e,
            };
            return match self
                .delete_until_gone(&provider, &instance_ref(&instance, &labels), opts)
                .await
            {
                Ok(()) => Err(CandidateError::Stop(failure)),
                Err(cleanup) => Err(CandidateError::Leaked {
                    failure,
                    instance: instance.id.clone(),
                    cleanup,
                }),
            };
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
                        Err(CandidateError::Failover(why))
                    }
                    Err(cleanup) => Err(CandidateError::Leaked {
                        failure: why,
                        instance: instance.id.clone(),
                        cleanup,
                    }),
                }
            }
        }
    }

    /// Poll get-instance with growing intervals until running, under the deadline.
    pub(super) async fn wait_running(
        &self,
        provider: &ProviderHandle,
        created: &Instance,
        labels: &[(String, String)],
        opts: &DeployOptions,
    ) -> Result<Instance, StepError> {
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
                        return Err(StepError::InstanceFailed {
                            instance: i.id,
                            state: i.state,
                            detail: i.detail,
                        });
                    }
                    s => last = format!("{s:?}"),
                },
                // Eventual consistency right after a create: keep polling until the deadline.
                Err(CallError::Provider(ProviderError::NotFound(m))) => {
                    last = format!("not found yet ({m})")
                }
                Err(e) if verdict(&e) == Verdict::Unknown => last = e.to_string(),
                Err(e) => return Err(StepError::call(format!("get-instance {}", r.id), e)),
            }
            if started.elapsed() >= opts.running_timeout {
                return Err(StepError::NotRunning {
                    instance: created.id.clone(),
                    secs: opts.running_timeout.as_secs(),
                    last,
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(opts.poll_max);
        }
    }
}
