//! `ProviderHandle`: typed calls into a provider by name. Each call uses the
//! version serving when it starts, in a store of its own.

use std::sync::Arc;

use super::loader::LoadedProvider;
use super::registry::Registry;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{
    Cluster, ClusterCredentials, ClusterRef, ClusterSpec, DeleteStatus, Instance, InstanceQuery,
    InstanceRef, InstanceSpec, Offer, OfferQuery, ProviderInfo,
};

/// A cheap, cloneable handle on a provider.
#[derive(Clone)]
pub struct ProviderHandle {
    name: String,
    registry: Arc<Registry>,
}

impl std::fmt::Debug for ProviderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl ProviderHandle {
    pub(crate) fn new(name: String, registry: Arc<Registry>) -> Self {
        Self { name, registry }
    }

    /// Provider name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The version serving now.
    pub fn current(&self) -> Result<Arc<LoadedProvider>, CallError> {
        self.registry
            .get(&self.name)
            .ok_or_else(|| CallError::NotLoaded(self.name.clone()))
    }

    /// `describe.info` (as recorded at load; makes no call).
    pub async fn info(&self) -> Result<ProviderInfo, CallError> {
        Ok(self.current()?.info.clone())
    }

    /// `compute.list-offers`.
    pub async fn list_offers(&self, query: OfferQuery) -> Result<Vec<Offer>, CallError> {
        let provider = self.current()?;
        let answer = provider
            .call("list-offers", async |p, s| {
                p.blueprint_provider_compute(s)?
                    .call_list_offers(s, &query)
                    .await
            })
            .await?;
        provider.check_returned("list-offers", |l| l.check_offers(&answer))?;
        Ok(answer)
    }

    /// `compute.create-instance`.
    pub async fn create_instance(&self, spec: InstanceSpec) -> Result<Instance, CallError> {
        let provider = self.current()?;
        let answer = provider
            .call("create-instance", async |p, s| {
                p.blueprint_provider_compute(s)?
                    .call_create_instance(s, &spec)
                    .await
            })
            .await?;
        provider.check_returned("create-instance", |l| l.check_instance(&answer))?;
        Ok(answer)
    }

    /// `compute.get-instance`.
    pub async fn get_instance(&self, target: InstanceRef) -> Result<Instance, CallError> {
        let provider = self.current()?;
        let answer = provider
            .call("get-instance", async |p, s| {
                p.blueprint_provider_compute(s)?
                    .call_get_instance(s, &target)
                    .await
            })
            .await?;
        provider.check_returned("get-instance", |l| l.check_instance(&answer))?;
        Ok(answer)
    }

    /// `compute.delete-instance`.
    pub async fn delete_instance(&self, target: InstanceRef) -> Result<DeleteStatus, CallError> {
        self.current()?
            .call("delete-instance", async |p, s| {
                p.blueprint_provider_compute(s)?
                    .call_delete_instance(s, &target)
                    .await
            })
            .await
    }

    /// `compute.list-instances`.
    pub async fn list_instances(&self, query: InstanceQuery) -> Result<Vec<Instance>, CallError> {
        let provider = self.current()?;
        let answer = provider
            .call("list-instances", async |p, s| {
                p.blueprint_provider_compute(s)?
                    .call_list_instances(s, &query)
                    .await
            })
            .await?;
        provider.check_returned("list-instances", |l| l.check_instances(&answer))?;
        Ok(answer)
    }

    /// Whether the serving version exports the optional `power` interface
    /// (stop and start instances).
    pub fn supports_power(&self) -> bool {
        self.current().is_ok_and(|p| p.has_power())
    }

    /// `power.stop-instance`; `unsupported` when the component does not
    /// export `power`.
    pub async fn stop_instance(&self, target: InstanceRef) -> Result<Instance, CallError> {
        let current = self.current()?;
        let call = current
            .call_power("stop-instance", async |p, s| {
                p.blueprint_provider_power()
                    .call_stop_instance(s, &target)
                    .await
            })
            .await;
        call.unwrap_or_else(|| Err(self.no_power()))
    }

    /// `power.start-instance`; `unsupported` when the component does not
    /// export `power`.
    pub async fn start_instance(&self, target: InstanceRef) -> Result<Instance, CallError> {
        let current = self.current()?;
        let call = current
            .call_power("start-instance", async |p, s| {
                p.blueprint_provider_power()
                    .call_start_instance(s, &target)
                    .await
            })
            .await;
        call.unwrap_or_else(|| Err(self.no_power()))
    }

    fn no_power(&self) -> CallError {
        CallError::Provider(crate::runtime::bindings::wit::ProviderError::Unsupported(
            format!(
                "provider {} does not export blueprint:provider/power (it cannot stop or start instances)",
                self.name
            ),
        ))
    }

    /// `kubernetes.create-cluster`.
    pub async fn create_cluster(&self, spec: ClusterSpec) -> Result<Cluster, CallError> {
        let provider = self.current()?;
        let answer = provider
            .call("create-cluster", async |p, s| {
                p.blueprint_provider_kubernetes(s)?
                    .call_create_cluster(s, &spec)
                    .await
            })
            .await?;
        provider.check_returned("create-cluster", |l| l.check_cluster(&answer))?;
        Ok(answer)
    }

    /// `kubernetes.get-cluster`.
    pub async fn get_cluster(&self, target: ClusterRef) -> Result<Cluster, CallError> {
        let provider = self.current()?;
        let answer = provider
            .call("get-cluster", async |p, s| {
                p.blueprint_provider_kubernetes(s)?
                    .call_get_cluster(s, &target)
                    .await
            })
            .await?;
        provider.check_returned("get-cluster", |l| l.check_cluster(&answer))?;
        Ok(answer)
    }

    /// `kubernetes.delete-cluster`.
    pub async fn delete_cluster(&self, target: ClusterRef) -> Result<DeleteStatus, CallError> {
        self.current()?
            .call("delete-cluster", async |p, s| {
                p.blueprint_provider_kubernetes(s)?
                    .call_delete_cluster(s, &target)
                    .await
            })
            .await
    }

    /// `kubernetes.get-credentials`.
    pub async fn get_credentials(
        &self,
        target: ClusterRef,
    ) -> Result<ClusterCredentials, CallError> {
        let provider = self.current()?;
        let answer = provider
            .call("get-credentials", async |p, s| {
                p.blueprint_provider_kubernetes(s)?
                    .call_get_credentials(s, &target)
                    .await
            })
            .await?;
        provider.check_returned("get-credentials", |l| l.check_credentials(&answer))?;
        Ok(answer)
    }
}
