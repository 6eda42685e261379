//! Operations on a provider's instances shared by deploy, terminate and
//! recovery: delete until gone, find by label, sweep, and the record's view
//! of an instance.

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
use crate::tracking::{DeploymentRecord, ResourceRefRecord};

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
        loop {
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

    /// Delete every instance labelled for `id` in `region`; returns how many.
    pub(super) async fn sweep(
        &self,
        provider: &ProviderHandle,
        region: &str,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<usize, StepError> {
        let found = self.find_labelled(provider, region, id, opts).await?;
        for i in &found {
            self.delete_until_gone(provider, &instance_ref(i, &i.labels), opts)
                .await?;
        }
        Ok(found.len())
    }
}
