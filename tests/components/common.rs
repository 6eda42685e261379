// Helpers shared by the test components. Each component generates its own
// bindings (`wit_bindgen::generate!` must run in the crate that exports the
// world), so this cannot be a library crate: every `src/lib.rs` pulls it in with
// `mod common { include!("../../common.rs"); }` after defining `NAME` and the
// bindings. Items a given component does not use are allowed to be dead there.

use crate::blueprint::provider::types::{Arch, Error, Offer, PriceSource};
use crate::exports::blueprint::provider::describe::{
    Capability, CredentialKind, ProviderInfo, SettingInfo,
};

/// `unsupported` naming this component and the operation it does not do.
pub fn unsupported<T>(operation: &str) -> Result<T, Error> {
    Err(Error::Unsupported(format!(
        "test component `{}` does not implement {operation}",
        crate::NAME
    )))
}

/// A provider-info for a test component: no credential, no expected hosts, no
/// regions, reading the given settings (`(key, description)`).
pub fn info(capabilities: Vec<Capability>, settings: &[(&str, &str)]) -> ProviderInfo {
    ProviderInfo {
        name: crate::NAME.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        capabilities,
        credential: CredentialKind::None,
        expected_hosts: Vec::new(),
        regions: vec!["test-1".to_string()],
        settings: settings
            .iter()
            .map(|(key, description)| SettingInfo {
                key: key.to_string(),
                description: description.to_string(),
                default_value: None,
            })
            .collect(),
    }
}

/// A small fixed offer in region `test-1`, priced from a (fake) snapshot.
pub fn offer(instance_type: String, vcpus: f32, memory_gib: f32, hourly_usd: f64) -> Offer {
    Offer {
        instance_type,
        region: "test-1".to_string(),
        zone: None,
        vcpus,
        memory_gib,
        storage_gib: None,
        gpus: 0.0,
        gpu_model: None,
        gpu_memory_gib: None,
        arch: Arch::X8664,
        hourly_usd,
        spot_hourly_usd: None,
        shared_cpu: false,
        confidential: false,
        promotional: false,
        source: PriceSource {
            source: format!("snapshot:{}", crate::NAME),
            observed_at: 1_767_225_600, // 2026-01-01T00:00:00Z
            from_snapshot: true,
        },
    }
}

/// Implements `kubernetes` for the given type by answering `unsupported` to
/// every function: no test component has managed Kubernetes.
macro_rules! kubernetes_unsupported {
    ($component:ty) => {
        const _: () = {
            use crate::blueprint::provider::types as t;
            use crate::common::unsupported;

            impl crate::exports::blueprint::provider::kubernetes::Guest for $component {
                fn create_cluster(_spec: t::ClusterSpec) -> Result<t::Cluster, t::Error> {
                    unsupported("kubernetes.create-cluster")
                }
                fn get_cluster(_target: t::ClusterRef) -> Result<t::Cluster, t::Error> {
                    unsupported("kubernetes.get-cluster")
                }
                fn delete_cluster(_target: t::ClusterRef) -> Result<t::DeleteStatus, t::Error> {
                    unsupported("kubernetes.delete-cluster")
                }
                fn get_credentials(
                    _target: t::ClusterRef,
                ) -> Result<t::ClusterCredentials, t::Error> {
                    unsupported("kubernetes.get-credentials")
                }
            }
        };
    };
}
pub(crate) use kubernetes_unsupported;

/// Implements `compute` for the given type with `list-offers` delegating to
/// `<$component>::offers(query)` and every other function `unsupported`: the
/// hostile components misbehave in `list-offers` only.
macro_rules! compute_offers_only {
    ($component:ty) => {
        const _: () = {
            use crate::blueprint::provider::types as t;
            use crate::common::unsupported;

            impl crate::exports::blueprint::provider::compute::Guest for $component {
                fn list_offers(query: t::OfferQuery) -> Result<Vec<t::Offer>, t::Error> {
                    <$component>::offers(query)
                }
                fn create_instance(_spec: t::InstanceSpec) -> Result<t::Instance, t::Error> {
                    unsupported("compute.create-instance")
                }
                fn get_instance(_target: t::InstanceRef) -> Result<t::Instance, t::Error> {
                    unsupported("compute.get-instance")
                }
                fn delete_instance(_target: t::InstanceRef) -> Result<t::DeleteStatus, t::Error> {
                    unsupported("compute.delete-instance")
                }
                fn list_instances(_query: t::InstanceQuery) -> Result<Vec<t::Instance>, t::Error> {
                    unsupported("compute.list-instances")
                }
            }
        };
    };
}
pub(crate) use compute_offers_only;
