//! VM deployments: the ranked candidates tried in order, the instance created,
//! recorded, waited for and health-checked, or deleted again.

use std::time::Instant;

use super::error::DeployError;
use super::health;
use super::instances::{address_of, instance_ref, labels_of, resources_of};
use super::options::{DeployEvent, DeployOptions};
use super::orchestrator::{Orchestrator, record_planned};
use super::request::{DeployRequest, InstanceTarget};
use super::verdict::{Verdict, describe_error, verdict};
use crate::providers::ProviderHandle;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{Instance, InstanceSpec, InstanceState, ProviderError};
use crate::tracking::{AttemptIntent, AttemptOutcome, DeploymentRecord, DeploymentStatus, Tracker};

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

impl Orchestrator {
    /// The VM branch of [`Orchestrator::deploy_with`]: the candidates in order.
    pub(super) async fn deploy_vm(
        &self,
        req: DeployRequest,
        candidates: Vec<InstanceTarget>,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        if candidates.is_empty() {
            return Err(DeployError::NoCandidates);
        }
        for (i, c) in candidates.iter().enumerate() {
            c.validate(i)?;
        }
        let tracker = self.tracker.clone();
        let id = req
            .deployment_id
            .clone()
            .unwrap_or_else(super::orchestrator::new_deployment_id);
        let _lock = tracker
            .try_lock(&id)?
            .ok_or_else(|| DeployError::Busy(id.clone()))?;
        let user_data = req.user_data(&id)?;
        let record = record_planned(&tracker, &id, &req, opts)?;
        let plan = candidates
            .iter()
            .map(InstanceTarget::label)
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
            .providers
            .get(&target.provider)
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

    #[allow(clippy::too_many_arguments, reason = "one private step of deploy_with")]
    async fn try_candidate(
        &self,
        tracker: &Tracker,
        record: &DeploymentRecord,
        req: &DeployRequest,
        target: &InstanceTarget,
        n: u32,
        key: &str,
        user_data: Option<String>,
        opts: &DeployOptions,
    ) -> Result<Instance, CandidateError> {
        let id = &record.id;
        let provider = match self.providers.get(&target.provider) {
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
}
