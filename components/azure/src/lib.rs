//! The `azure` provider component: Linux VMs through Azure Resource Manager
//! that leave nothing behind, AKS clusters the host reaches with its own Entra
//! ID token, and offers from the keyless Retail Prices API with an embedded
//! dated snapshot as fallback. The host mints and applies the ARM token
//! (`azure-client-credentials`); this component never sees it.
//!
//! Rooms:
//! - [`arm`]: the ARM REST client (endpoint, api-versions, JSON, paging,
//!   long-running operations through `Azure-AsyncOperation` / `Location`);
//! - [`errors`]: ARM error codes and statuses onto the WIT `error`;
//! - [`names`]: deterministic resource names and ids, tags <-> labels;
//! - [`network`]: the request bodies of the vnet, NSG, public IP and NIC;
//! - [`instances`]: create / get / delete / list of VMs;
//! - [`aks`] and [`kubeconfig`]: managed clusters;
//! - [`offers`] and [`sizes`]: priced offers, the size table, the snapshot;
//! - [`settings`]: every setting this component reads, with its default.

mod aks;
mod arm;
mod errors;
mod instances;
mod kubeconfig;
mod names;
mod network;
mod offers;
mod settings;
mod sizes;

#[allow(missing_docs, clippy::all, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "blueprint:provider/provider",
        with: {
            "blueprint:provider/types@0.1.0": provider_sdk::bindings::blueprint::provider::types,
            "blueprint:provider/log@0.1.0": provider_sdk::bindings::blueprint::provider::log,
            "blueprint:provider/settings@0.1.0": provider_sdk::bindings::blueprint::provider::settings,
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
    });
}

use bindings::exports::blueprint::provider::{compute, describe, kubernetes};
use describe::{Capability, CredentialKind, ProviderInfo};
use provider_sdk::Error;
use provider_sdk::types::{
    Cluster, ClusterCredentials, ClusterRef, ClusterSpec, DeleteStatus, Instance, InstanceQuery,
    InstanceRef, InstanceSpec, Offer, OfferQuery,
};

/// Provider name; equals the `.wasm` file stem.
const NAME: &str = "azure";

/// The component.
struct Component;

impl describe::Guest for Component {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: vec![
                Capability::Offers,
                Capability::Instances,
                Capability::Spot,
                Capability::ManagedKubernetes,
                Capability::Gpus,
                Capability::ConfidentialCompute,
            ],
            credential: CredentialKind::AzureOauth,
            expected_hosts: vec!["management.azure.com".into(), "prices.azure.com".into()],
            regions: vec![],
            settings: settings::described(),
        }
    }
}

impl compute::Guest for Component {
    fn list_offers(query: OfferQuery) -> Result<Vec<Offer>, Error> {
        offers::list_offers(&query)
    }

    fn create_instance(spec: InstanceSpec) -> Result<Instance, Error> {
        instances::create(&spec)
    }

    fn get_instance(target: InstanceRef) -> Result<Instance, Error> {
        instances::get(&target)
    }

    fn delete_instance(target: InstanceRef) -> Result<DeleteStatus, Error> {
        instances::delete(&target)
    }

    fn list_instances(query: InstanceQuery) -> Result<Vec<Instance>, Error> {
        instances::list(&query)
    }
}

impl kubernetes::Guest for Component {
    fn create_cluster(spec: ClusterSpec) -> Result<Cluster, Error> {
        aks::create(&spec)
    }

    fn get_cluster(target: ClusterRef) -> Result<Cluster, Error> {
        aks::get(&target)
    }

    fn delete_cluster(target: ClusterRef) -> Result<DeleteStatus, Error> {
        aks::delete(&target)
    }

    fn get_credentials(_target: ClusterRef) -> Result<ClusterCredentials, Error> {
        Err(Error::Unsupported(
            "AKS clusters use provider-oauth: the host mints their Entra ID token itself; there are no credentials to fetch"
                .into(),
        ))
    }
}

// The generated export glue is `unsafe` (FFI); the workspace denies unsafe
// code everywhere else.
#[allow(unsafe_code)]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}
