//! Operations on a provider's instances shared by deploy, terminate and
//! recovery: delete until gone, find by label, clear what a deployment left
//! in a place, and the record's view of an instance.

use std::collections::BTreeSet;
use std::time::Instant;

use super::error::StepError;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use super::verdict::{Verdict, verdict};
use crate::providers::ProviderHandle;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{
    DeleteStatus, Instance, InstanceQuery, InstanceRef, InstanceState, ProviderError,
};
use crate::tracking::{Attempt, AttemptOutcome, DeploymentRecord, ResourceRefRecord};

pub(super) fn address_of(i: &Instance) -> Option<String> {
    i.public_ipv4.clone().or_else(|| i.private_ipv4.clone())
}

pub(super) fn resources_of(i: &Instance) -> Vec<ResourceRefRecord> {
    i.resources.iter().map(ResourceRefRecord::from).collect()
}

pub(super) fn labels_of(r: &DeploymentRecord) -> Vec<(String, String)> {
    r.labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every (provider, region) a deployment may have created something in: the
/// places of its attempts and its current one. An attempt that ended in
/// failover or stop had its answer: the provider cleaned up what that create
/// made (the create contract), an unanswered create was cleared before
/// failing over, and a created instance was deleted until gone; such a place
/// holds nothing of it (and may not even be reachable: an SSH host that
/// refused the connection).
pub(super) fn places_of(
    rec: &DeploymentRecord,
    attempts: &[Attempt],
) -> BTreeSet<(String, String)> {
    let mut places: BTreeSet<(String, String)> = attempts
        .iter()
        .filter(|a| {
            !matches!(
                a.outcome,
                AttemptOutcome::Failover | AttemptOutcome::Stopped
            )
        })
        .map(|a| (a.provider.clone(), a.region.clone()))
        .collect();
    if let (Some(p), Some(r)) = (&rec.provider, &rec.region) {
        places.insert((p.clone(), r.clone()));
    }
    places
}

pub(super) fn instance_ref(i: &Instance, labels: &[(String, String)]) -> InstanceRef {
    InstanceRef {
        id: i.id.clone(),
        region: i.region.clone(),
        zone: i.zone.clone(),
        resources: i.resources.clone(),
        labels: labels.to_vec(),
    }
}

impl Orchestrator {
    /// delete-instance until `deleted` (not-found counts), under the deadline.
    pub(super) async fn delete_until_gone(
        &self,
        provider: &ProviderHandle,
        r: &InstanceRef,
        opts: &DeployOptions,
    ) -> Result<(), StepError> {
        let started = Instant::now();
        let mut wait = opts.poll_initial;
        let deployment = r
            .labels
            .iter()
            .find(|(k, _)| k == "bpr-deployment")
            .map(|(_, v)| v.clone());
        loop {
            // Not after this process lost the deployment to another replica.
            if let Some(dep) = &deployment {
                self.tracker.check_lease(dep).map_err(StepError::Track)?;
            }
            match opts.retry.run(|| provider.delete_instance(r.clone())).await {
                Ok(DeleteStatus::Deleted)
                | Err(CallError::Provider(ProviderError::NotFound(_))) => return Ok(()),
                Ok(DeleteStatus::InProgress) => {}
                Err(e)
                    if verdict(&e) == Verdict::Unknown
                        && started.elapsed() < opts.delete_timeout => {}
                Err(e) => return Err(StepError::call(format!("delete-instance {}", r.id), e)),
            }
            if started.elapsed() >= opts.delete_timeout {
                return Err(StepError::NotDeleted {
                    instance: r.id.clone(),
                    secs: opts.delete_timeout.as_secs(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(opts.poll_max);
        }
    }

    /// Instances labelled `bpr-deployment=<id>` in `region` of `provider`.
    pub(super) async fn find_labelled(
        &self,
        provider: &ProviderHandle,
        region: &str,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<Vec<Instance>, StepError> {
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
            .map_err(|e| StepError::call(format!("list-instances in {region}"), e))
    }

    /// Delete everything deployment `id` left in `region` of `provider`:
    /// what a listing by its label finds, then what was created next to its
    /// instances (delete-instance with an empty id and the deployment's
    /// `labels`, until `deleted`: see wit/provider.wit). Returns the instances
    /// deleted. A provider that refuses an empty id (an older component) has
    /// its labelled instances deleted one by one instead. An error means the
    /// place could not be cleared now: the caller keeps the record unresolved.
    pub(super) async fn clear_place(
        &self,
        provider: &ProviderHandle,
        region: &str,
        id: &str,
        labels: &[(String, String)],
        opts: &DeployOptions,
    ) -> Result<Vec<String>, StepError> {
        let found = self.find_labelled(provider, region, id, opts).await?;
        let everything = InstanceRef {
            id: String::new(),
            region: region.to_string(),
            zone: None,
            resources: Vec::new(),
            labels: labels.to_vec(),
        };
        let started = Instant::now();
        let mut wait = opts.poll_initial;
        loop {
            self.tracker.check_lease(id).map_err(StepError::Track)?;
            match opts
                .retry
                .run(|| provider.delete_instance(everything.clone()))
                .await
            {
                Ok(DeleteStatus::Deleted)
                | Err(CallError::Provider(ProviderError::NotFound(_))) => break,
                Ok(DeleteStatus::InProgress) => {}
                Err(CallError::Provider(
                    ProviderError::InvalidRequest(m) | ProviderError::Unsupported(m),
                )) => {
                    tracing::warn!(
                        "provider {} cannot delete by deployment label in {region} ({m}); \
                         deleting deployment {id}'s labelled instances one by one",
                        provider.name()
                    );
                    for i in &found {
                        self.delete_until_gone(provider, &instance_ref(i, &i.labels), opts)
                            .await?;
                    }
                    break;
                }
                Err(e)
                    if verdict(&e) == Verdict::Unknown
                        && started.elapsed() < opts.delete_timeout => {}
                Err(e) => {
                    return Err(StepError::call(
                        format!("delete-instance (what {id} left in {region})"),
                        e,
                    ));
                }
            }
            if started.elapsed() >= opts.delete_timeout {
                return Err(StepError::NotCleared {
                    deployment: id.to_string(),
                    place: format!("{}/{region}", provider.name()),
                    secs: opts.delete_timeout.as_secs(),
                });
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(opts.poll_max);
        }
        Ok(found.into_iter().map(|i| i.id).collect())
    }

    /// [`Orchestrator::clear_place`] for every place `rec` tried. Returns the
    /// instances deleted; the first place that cannot be cleared is an error.
    pub(super) async fn clear_places(
        &self,
        rec: &DeploymentRecord,
        places: &BTreeSet<(String, String)>,
        opts: &DeployOptions,
    ) -> Result<Vec<String>, StepError> {
        let labels = labels_of(rec);
        let mut deleted = Vec::new();
        for (pname, region) in places {
            let provider = self
                .providers
                .get(pname)
                .map_err(|e| StepError::call(format!("load {pname}"), e))?;
            deleted.extend(
                self.clear_place(&provider, region, &rec.id, &labels, opts)
                    .await?,
            );
        }
        Ok(deleted)
    }
}
