//! Healing: an unhealthy (or interrupted) active deployment replaced through
//! the failover path — the candidates tried in order for a new instance
//! first, the record switched to it once it is healthy, the old one deleted
//! after — with the history saying why at every step.
//!
//! A provider that places workloads on the operator's machines (`ssh`) runs
//! one workload per deployment on a machine (named by the deployment), so a
//! replacement on the machine it already runs on cannot start next to the
//! old one: that candidate, where the plan ranks it, is a restart in place —
//! the old workload removed first, then created again. Any other candidate
//! (another host, a cloud) gets a new instance while the old one serves.
//!
//! Nothing is lost on a crash: the new instance's attempt is recorded before
//! the provider is called and its usage period right after (see
//! `tracking::usage`); [`Orchestrator::finish_interrupted_heals`] deletes an
//! instance whose period is open but which the record does not name (the old
//! one after the switch, or a new one whose heal did not finish), and sweeps
//! the labelled instances a replacement attempt may have left before its
//! period was written.
//!
//! A Kubernetes deployment is healed by re-applying what it should run
//! (objects deleted outside the host come back) and restarting its rollout
//! (new pods replace the ones that stopped being ready, as `kubectl rollout
//! restart` does), then waiting for it.

use std::collections::BTreeSet;

use super::error::{DeployError, StepError};
use super::events::{self, EventKind};
use super::health;
use super::instances::{address_of, labels_of, resources_of};
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::request::{DeployRequest, InstanceTarget};
use super::verdict::{Verdict, verdict};
use crate::runtime::bindings::wit::{InstanceRef, InstanceSpec, ResourceRef};
use crate::tracking::{
    AttemptIntent, AttemptOutcome, DeploymentRecord, DeploymentStatus, DeploymentType, NewPeriod,
    Replacement, TrackError, UsagePeriod,
};

/// Marks the idempotency key of a heal's attempt (`<id>-heal-<unix>-<n>`).
const HEAL_KEY: &str = "-heal-";

/// Why a heal did not replace the deployment.
#[derive(Debug, thiserror::Error)]
pub enum HealError {
    /// Another task or process works on the deployment; the next pass retries.
    #[error("deployment {0} is being worked on; the heal waits for the next pass")]
    Busy(String),
    /// The deployment is no longer active (terminated, suspended meanwhile).
    #[error("deployment {id} is {status}, not active; nothing to heal")]
    NotActive {
        /// Deployment id.
        id: String,
        /// Its status.
        status: DeploymentStatus,
    },
    /// No candidate gave a healthy replacement; the old instance still serves.
    #[error("deployment {id}: no replacement became healthy: {}", failures.join("; "))]
    NoReplacement {
        /// Deployment id.
        id: String,
        /// One line per candidate tried.
        failures: Vec<String>,
    },
    /// Re-applying a Kubernetes deployment failed.
    #[error(transparent)]
    Kubernetes(DeployError),
    /// The tracker failed.
    #[error(transparent)]
    Track(#[from] TrackError),
}

impl Orchestrator {
    /// Replace deployment `id`, which is unhealthy because of `reason`: for a
    /// VM, a new instance on the first candidate that works and is healthy,
    /// then the old instance deleted; for Kubernetes, its objects re-applied
    /// and the rollout waited for. Returns the record as it is afterwards.
    pub async fn heal(
        &self,
        id: &str,
        reason: &str,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, HealError> {
        let rec = self.tracker.get(id)?;
        if rec.deployment_type == DeploymentType::Kubernetes {
            return self.heal_kubernetes(&rec, reason, opts).await;
        }
        let _lock = self
            .tracker
            .try_lock(id)?
            .ok_or_else(|| HealError::Busy(id.to_string()))?;
        self.heal_locked(id, reason, opts).await
    }

    /// [`Orchestrator::heal`] of a VM while holding its lock.
    pub(super) async fn heal_locked(
        &self,
        id: &str,
        reason: &str,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, HealError> {
        let tracker = &self.tracker;
        let rec = tracker.get(id)?;
        if rec.status != DeploymentStatus::Active || !rec.holds_resources() {
            return Err(HealError::NotActive {
                id: id.to_string(),
                status: rec.status,
            });
        }
        let req: DeployRequest =
            serde_json::from_str(&rec.request_json).map_err(|e| TrackError::Corrupt {
                id: id.to_string(),
                message: format!("request_json: {e}"),
            })?;
        let candidates = self.heal_candidates(&rec, &req).await;
        let old = rec.instance_id.clone();
        let old_placement = placement_of(&rec);
        let plan = candidates
            .iter()
            .map(InstanceTarget::label)
            .collect::<Vec<_>>()
            .join(", ");
        tracker.note_history(
            id,
            &format!(
                "healing ({reason}): replacing instance {} on {old_placement}; trying {} candidate(s): {plan}",
                old.as_deref().unwrap_or("-"),
                candidates.len()
            ),
        )?;
        self.publish(
            &rec,
            EventKind::Replacing {
                reason: reason.to_string(),
                old_instance: old.clone(),
            },
        );
        let user_data = req.user_data(id).map_err(|e| TrackError::Corrupt {
            id: id.to_string(),
            message: format!("stored request: {e}"),
        })?;
        let workload = req.wit_workload().map_err(|e| TrackError::Corrupt {
            id: id.to_string(),
            message: format!("stored request: {e}"),
        })?;
        let labels = labels_of(&rec);
        let stamp = crate::clock::unix_now();
        let mut failures = Vec::new();
        // The old workload was removed for a restart in place.
        let mut removed = false;
        for (i, target) in candidates.iter().enumerate() {
            let restart = self.same_machine(&rec, target);
            let key = format!("{id}{HEAL_KEY}{stamp}-{}", i + 1);
            let intent = AttemptIntent {
                provider: &target.provider,
                region: &target.region,
                zone: target.zone.as_deref(),
                instance_type: &target.instance_type,
                spot: target.spot,
                hourly_usd: target.hourly_usd,
                idempotency_key: &key,
            };
            let n = tracker.begin_replacement(id, &intent)?;
            if restart && !removed {
                if let Err(e) = self.remove_for_restart(&rec, target, opts).await {
                    let detail = format!("could not remove the old workload to restart it: {e}");
                    tracker.finish_attempt(id, n, AttemptOutcome::Failed, &detail)?;
                    failures.push(format!("{}: {detail}", target.label()));
                    continue;
                }
                removed = true;
            }
            let workloads = self.runs_workloads(&target.provider);
            let spec = InstanceSpec {
                deployment_id: id.to_string(),
                idempotency_key: key.clone(),
                region: target.region.clone(),
                zone: target.zone.clone(),
                instance_type: target.instance_type.clone(),
                spot: target.spot,
                image: req.image.clone(),
                disk_gib: req.disk_gib,
                ssh_public_keys: req.ssh_public_keys.clone(),
                user_data: if workloads { None } else { user_data.clone() },
                open_ports: req.port_rules(),
                labels: labels.clone(),
                workload: if workloads { workload.clone() } else { None },
            };
            match self
                .try_replacement(&rec, target, n, spec, &req, workloads, restart, opts)
                .await
            {
                Ok((instance, address, seq)) => {
                    let resources = resources_of(&instance);
                    let why = format!(
                        "healed ({reason}): instance {} on {} replaced {} on {old_placement}",
                        instance.id,
                        target.label(),
                        old.as_deref().unwrap_or("-")
                    );
                    let swapped = tracker.swap_instance(
                        id,
                        &Replacement {
                            attempt: n,
                            intent,
                            instance_id: &instance.id,
                            resources: &resources,
                            address: address.as_deref(),
                        },
                        &why,
                    );
                    let rec_now = match swapped {
                        Ok(r) => r,
                        Err(e) => {
                            // The record still names the old instance; the new one
                            // is held by its open period and deleted by the next pass.
                            let _ = tracker.close_period(seq, "heal could not be recorded");
                            return Err(e.into());
                        }
                    };
                    self.publish(
                        &rec_now,
                        EventKind::Replaced {
                            old_instance: old.clone(),
                            new_instance: instance.id.clone(),
                            placement: target.label(),
                            endpoint: address.clone(),
                        },
                    );
                    if let Some(kind) = events::for_transition(&rec_now, &why) {
                        self.publish(&rec_now, kind);
                    }
                    if !removed {
                        self.retire_old(&rec, opts).await;
                    }
                    return Ok(tracker.get(id)?);
                }
                Err((detail, stop)) => {
                    tracker.finish_attempt(id, n, AttemptOutcome::Failed, &detail)?;
                    failures.push(format!("{}: {detail}", target.label()));
                    if stop {
                        break;
                    }
                }
            }
        }
        let e = HealError::NoReplacement {
            id: id.to_string(),
            failures,
        };
        let text = e.to_string();
        let old = old.as_deref().unwrap_or("-");
        let now = match removed {
            true => format!(
                "its workload {old} was removed for the restart and nothing runs now; the next health pass finds it gone and heals again"
            ),
            false => format!("instance {old} keeps serving"),
        };
        tracker.note_history(
            id,
            &format!(
                "heal failed: {}; {now}",
                text.strip_prefix(&format!("deployment {id}: "))
                    .unwrap_or(&text),
            ),
        )?;
        Err(e)
    }

    /// Where a replacement may go: the candidates the stored request plans
    /// to now, else (no plan possible) the placement it has.
    async fn heal_candidates(
        &self,
        rec: &DeploymentRecord,
        req: &DeployRequest,
    ) -> Vec<InstanceTarget> {
        match self.plan(req).await {
            Ok(plan) if !plan.candidates.is_empty() => plan.candidates,
            other => {
                if let Err(e) = other {
                    tracing::warn!(deployment = %rec.id, "heal: cannot plan ({e}); retrying the current placement");
                }
                vec![InstanceTarget {
                    provider: rec.provider.clone().unwrap_or_default(),
                    region: rec.region.clone().unwrap_or_default(),
                    zone: rec.zone.clone(),
                    instance_type: rec.instance_type.clone().unwrap_or_default(),
                    spot: rec.spot,
                    hourly_usd: rec.hourly_usd,
                }]
            }
        }
    }

    /// One replacement candidate: created, held by a usage period, running
    /// and healthy. `Err((why, stop))`; what it created is deleted again.
    #[allow(clippy::too_many_arguments, reason = "one private step of heal_locked")]
    async fn try_replacement(
        &self,
        rec: &DeploymentRecord,
        target: &InstanceTarget,
        n: u32,
        spec: InstanceSpec,
        req: &DeployRequest,
        workloads: bool,
        restart: bool,
        opts: &DeployOptions,
    ) -> Result<(crate::runtime::bindings::wit::Instance, Option<String>, i64), (String, bool)>
    {
        let id = &rec.id;
        let provider = self
            .providers
            .get(&target.provider)
            .map_err(|e| (StepError::call("load", e).to_string(), false))?;
        self.tracker
            .check_lease(id)
            .map_err(|e| (e.to_string(), false))?;
        let created = opts
            .retry
            .run(|| provider.create_instance(spec.clone()))
            .await;
        let instance = match created {
            Ok(i) => i,
            Err(e) => {
                let v = verdict(&e);
                let why = StepError::call("create-instance", e).to_string();
                if v == Verdict::Unknown {
                    // The create may have happened: delete what carries our label
                    // there, except the instance that still serves.
                    if let Err(sweep) = self
                        .sweep_except(
                            &provider,
                            &target.region,
                            id,
                            rec.instance_id.as_deref(),
                            opts,
                        )
                        .await
                    {
                        return Err((format!("{why}; sweeping failed: {sweep}"), false));
                    }
                }
                return Err((why, v == Verdict::Stop));
            }
        };
        // A provider answering with the instance that serves (the same machine
        // under another name, say) made nothing new: it is not deleted here.
        if !restart && rec.instance_id.as_deref() == Some(instance.id.as_str()) {
            return Err((
                format!(
                    "{} answered with instance {}, which is the one being replaced: no replacement was made",
                    target.provider, instance.id
                ),
                false,
            ));
        }
        if let Err(e) = self.tracker.record_replacement_created(id, n, &instance.id) {
            tracing::warn!(deployment = %id, "heal: cannot record attempt {n}: {e}");
        }
        let resources = resources_of(&instance);
        let seq = match self.tracker.open_period(
            id,
            &NewPeriod {
                instance_id: &instance.id,
                provider: &target.provider,
                region: &target.region,
                zone: target.zone.as_deref(),
                instance_type: &target.instance_type,
                spot: target.spot,
                hourly_usd: target.hourly_usd,
                resources: &resources,
            },
        ) {
            Ok(seq) => seq,
            Err(e) => {
                // Without a period nothing would remember it: it must not keep running.
                let r = super::instances::instance_ref(&instance, &spec.labels);
                let gone = self.delete_until_gone(&provider, &r, opts).await;
                return Err((
                    format!(
                        "cannot record instance {}: {e}{}",
                        instance.id,
                        gone.err()
                            .map(|g| format!("; deleting it failed: {g}"))
                            .unwrap_or_default()
                    ),
                    true,
                ));
            }
        };
        let fail = async |why: String| {
            let r = super::instances::instance_ref(&instance, &spec.labels);
            match self.delete_until_gone(&provider, &r, opts).await {
                Ok(()) => {
                    let _ = self
                        .tracker
                        .close_period(seq, "deleted: replacement failed");
                    Err((format!("{why}; instance {} deleted", instance.id), false))
                }
                // Its period stays open: the next pass deletes it.
                Err(cleanup) => Err((
                    format!("{why}; deleting instance {} failed: {cleanup}", instance.id),
                    false,
                )),
            }
        };
        let running = match self
            .wait_running(&provider, &instance, &spec.labels, opts)
            .await
        {
            Ok(r) => r,
            Err(e) => return fail(e.to_string()).await,
        };
        let check = req.health.as_ref().filter(|_| !workloads);
        match health::wait_healthy(&provider, &running, check, opts).await {
            Ok(h) => Ok((
                running.clone(),
                h.address.or_else(|| address_of(&running)),
                seq,
            )),
            Err(e) => fail(format!("health check failed: {e}")).await,
        }
    }

    /// Whether a replacement on `t` lands on the machine `rec` runs on, with a
    /// provider that places workloads there (one per deployment).
    fn same_machine(&self, rec: &DeploymentRecord, t: &InstanceTarget) -> bool {
        self.runs_workloads(&t.provider)
            && rec.provider.as_deref() == Some(t.provider.as_str())
            && rec.region.as_deref() == Some(t.region.as_str())
            && rec.instance_type.as_deref() == Some(t.instance_type.as_str())
    }

    /// Removes `rec`'s workload from its machine so that it can be created
    /// there again (a restart in place), closing its usage period; the
    /// history says so first.
    async fn remove_for_restart(
        &self,
        rec: &DeploymentRecord,
        target: &InstanceTarget,
        opts: &DeployOptions,
    ) -> Result<(), StepError> {
        let old = rec.instance_id.as_deref().unwrap_or("-");
        let _ = self.tracker.note_history(
            &rec.id,
            &format!(
                "restarting in place on {}: removing workload {old} first ({} runs one workload per deployment on a machine)",
                target.label(),
                target.provider
            ),
        );
        self.delete_old(rec, opts, "deleted: restarted in place by a heal")
            .await
    }

    /// Deletes the instance `old` (the record before the swap) named and closes
    /// its period. A failure is logged and noted: its period stays open, so
    /// the next supervisor pass deletes it.
    async fn retire_old(&self, old: &DeploymentRecord, opts: &DeployOptions) {
        let Err(e) = self
            .delete_old(old, opts, "replaced: deleted after heal")
            .await
        else {
            return;
        };
        let iid = old.instance_id.as_deref().unwrap_or("-");
        tracing::warn!(deployment = %old.id, "heal: deleting the replaced instance {iid} failed: {e}");
        let _ = self.tracker.note_history(
            &old.id,
            &format!("deleting the replaced instance {iid} failed ({e}); the supervisor retries"),
        );
    }

    /// delete-instance until gone of the instance `old` names, then its open
    /// usage periods closed with `reason` (left open on a failure).
    async fn delete_old(
        &self,
        old: &DeploymentRecord,
        opts: &DeployOptions,
        reason: &str,
    ) -> Result<(), StepError> {
        let Some(iid) = old.instance_id.clone() else {
            return Ok(());
        };
        let periods: Vec<UsagePeriod> = self
            .tracker
            .usage_of(&old.id)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.ended_at.is_none() && p.instance_id == iid)
            .collect();
        let r = InstanceRef {
            id: iid.clone(),
            region: old.region.clone().unwrap_or_default(),
            zone: old.zone.clone(),
            resources: old.resources.iter().map(ResourceRef::from).collect(),
            labels: labels_of(old),
        };
        let outcome = match self
            .providers
            .get(old.provider.as_deref().unwrap_or_default())
        {
            Ok(p) => self.delete_until_gone(&p, &r, opts).await,
            Err(e) => Err(StepError::call("load", e)),
        };
        outcome?;
        for p in periods {
            let _ = self.tracker.close_period(p.seq, reason);
        }
        Ok(())
    }

    /// Delete every instance labelled for `id` in `region`, except `keep`.
    async fn sweep_except(
        &self,
        provider: &crate::providers::ProviderHandle,
        region: &str,
        id: &str,
        keep: Option<&str>,
        opts: &DeployOptions,
    ) -> Result<usize, StepError> {
        let found = self.find_labelled(provider, region, id, opts).await?;
        let mut n = 0;
        for i in found
            .iter()
            .filter(|i| Some(i.id.as_str()) != keep && !i.id.is_empty())
        {
            self.delete_until_gone(
                provider,
                &super::instances::instance_ref(i, &i.labels),
                opts,
            )
            .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Re-apply a Kubernetes deployment and wait for its rollout.
    async fn heal_kubernetes(
        &self,
        rec: &DeploymentRecord,
        reason: &str,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, HealError> {
        if rec.status != DeploymentStatus::Active {
            return Err(HealError::NotActive {
                id: rec.id.clone(),
                status: rec.status,
            });
        }
        self.tracker.note_history(
            &rec.id,
            &format!(
                "healing ({reason}): re-applying its objects to {} and restarting its pods",
                placement_of(rec)
            ),
        )?;
        self.publish(
            rec,
            EventKind::Replacing {
                reason: reason.to_string(),
                old_instance: rec.instance_id.clone(),
            },
        );
        match self.restart_kubernetes(&rec.id, opts).await {
            Ok(status) => {
                self.tracker.note_history(
                    &rec.id,
                    &format!("healed ({reason}): {}", status.describe()),
                )?;
                let now = self.tracker.get(&rec.id)?;
                self.publish(
                    &now,
                    EventKind::Replaced {
                        old_instance: rec.instance_id.clone(),
                        new_instance: now.instance_id.clone().unwrap_or_default(),
                        placement: placement_of(&now),
                        endpoint: now.address.clone(),
                    },
                );
                Ok(now)
            }
            Err(DeployError::Busy(id)) => Err(HealError::Busy(id)),
            Err(e) => {
                let _ = self
                    .tracker
                    .note_history(&rec.id, &format!("heal failed: {e}"));
                Err(HealError::Kubernetes(e))
            }
        }
    }

    /// Deletes what interrupted heals left: every open usage period (not
    /// Kubernetes) whose instance the record does not name — or whose record
    /// is over — and every instance a replacement attempt may have created
    /// before its period was written. Deployments a live task holds are left
    /// alone. Returns the instances deleted and the errors.
    pub async fn finish_interrupted_heals(
        &self,
        opts: &DeployOptions,
    ) -> (Vec<String>, Vec<(String, String)>) {
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        let open = match self.tracker.open_periods() {
            Ok(v) => v,
            Err(e) => return (deleted, vec![("*".into(), e.to_string())]),
        };
        let mut ids: BTreeSet<String> = open
            .iter()
            .filter(|p| p.provider != "kubernetes")
            .map(|p| p.deployment_id.clone())
            .collect();
        match self.tracker.unfinished_replacements() {
            Ok(v) => ids.extend(v.into_iter().map(|(id, _)| id)),
            Err(e) => errors.push(("*".into(), e.to_string())),
        }
        for id in ids {
            let Ok(Some(_lock)) = self.tracker.try_lock(&id) else {
                continue;
            };
            let Ok(rec) = self.tracker.get(&id) else {
                continue;
            };
            // Mid-flight deploys and terminations belong to recovery.
            if rec.status.is_in_flight() {
                continue;
            }
            let current = rec.instance_id.clone().filter(|_| rec.holds_resources());
            let strays: Vec<UsagePeriod> = open
                .iter()
                .filter(|p| p.deployment_id == id && p.provider != "kubernetes")
                .filter(|p| Some(&p.instance_id) != current.as_ref())
                .cloned()
                .collect();
            for p in strays {
                match self.delete_period_instance(&rec, &p, opts).await {
                    Ok(()) => {
                        let _ = self
                            .tracker
                            .close_period(p.seq, "deleted: not the deployment's instance");
                        let _ = self.tracker.note_history(
                            &id,
                            &format!(
                                "deleted instance {} on {}/{}/{}: left by an interrupted heal",
                                p.instance_id, p.provider, p.region, p.instance_type
                            ),
                        );
                        deleted.push(p.instance_id.clone());
                    }
                    Err(e) => errors.push((id.clone(), e.to_string())),
                }
            }
            let attempts = match self.tracker.attempts(&id) {
                Ok(a) => a,
                Err(e) => {
                    errors.push((id.clone(), e.to_string()));
                    continue;
                }
            };
            for a in attempts.into_iter().filter(|a| {
                a.idempotency_key.contains(HEAL_KEY)
                    && matches!(a.outcome, AttemptOutcome::Pending | AttemptOutcome::Created)
            }) {
                let swept = match self.providers.get(&a.provider) {
                    Ok(p) => {
                        self.sweep_except(&p, &a.region, &id, current.as_deref(), opts)
                            .await
                    }
                    Err(e) => Err(StepError::call("load", e)),
                };
                match swept {
                    Ok(n) => {
                        let detail =
                            format!("the heal was interrupted; {n} unrecorded instance(s) deleted");
                        let _ =
                            self.tracker
                                .finish_attempt(&id, a.n, AttemptOutcome::Failed, &detail);
                    }
                    Err(e) => errors.push((id.clone(), e.to_string())),
                }
            }
        }
        (deleted, errors)
    }

    /// delete-instance until gone, for the instance a usage period names.
    pub(super) async fn delete_period_instance(
        &self,
        rec: &DeploymentRecord,
        p: &UsagePeriod,
        opts: &DeployOptions,
    ) -> Result<(), StepError> {
        let provider = self
            .providers
            .get(&p.provider)
            .map_err(|e| StepError::call("load", e))?;
        let r = InstanceRef {
            id: p.instance_id.clone(),
            region: p.region.clone(),
            zone: p.zone.clone(),
            resources: p.resources.iter().map(ResourceRef::from).collect(),
            labels: labels_of(rec),
        };
        self.delete_until_gone(&provider, &r, opts).await
    }
}

/// `provider/region/type` of the record.
fn placement_of(rec: &DeploymentRecord) -> String {
    format!(
        "{}/{}/{}",
        rec.provider.as_deref().unwrap_or("-"),
        rec.region.as_deref().unwrap_or("-"),
        rec.instance_type.as_deref().unwrap_or("-")
    )
}
