//! The `vultr` provider component: offers from Vultr's public plan lists
//! (cloud, Cloud GPU with fractional GPUs, bare metal) with an embedded dated
//! snapshot as fallback; instances and bare-metal machines with a registered
//! SSH key, base64 user data, tags and a firewall group opening only the
//! requested ports; VKE clusters whose credentials the host fetches. The host
//! applies the bearer API key; this component never sees it.
//!
//! Settings: `endpoint` (API base URL, default `https://api.vultr.com/v2`; tests
//! point it at a stand-in), `plans_endpoint` (base URL of the plan lists;
//! default `endpoint`), `image` (what machines boot, see [`images`]),
//! `kubernetes_version`.

mod api;
mod codec;
mod errors;
mod firewall;
mod images;
mod instances;
mod keys;
mod kubernetes;
mod model;
mod offers;

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

use bindings::exports::blueprint::provider::{compute, describe, kubernetes as k8s};
use describe::{Capability, CredentialKind, ProviderInfo, SettingInfo};
use provider_sdk::Error;
use provider_sdk::types::{
    Cluster, ClusterCredentials, ClusterRef, ClusterSpec, DeleteStatus, Instance, InstanceQuery,
    InstanceRef, InstanceSpec, Offer, OfferQuery,
};

/// Provider name; equals the `.wasm` file stem.
const NAME: &str = "vultr";

/// The component.
struct Component;

fn setting(key: &str, description: &str, default: Option<&str>) -> SettingInfo {
    SettingInfo {
        key: key.into(),
        description: description.into(),
        default_value: default.map(str::to_string),
    }
}

impl describe::Guest for Component {
    fn info() -> ProviderInfo {
        ProviderInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: vec![
                Capability::Offers,
                Capability::Instances,
                Capability::ManagedKubernetes,
                Capability::Gpus,
            ],
            credential: CredentialKind::Bearer,
            expected_hosts: vec!["api.vultr.com".into()],
            regions: vec![],
            settings: vec![
                setting(
                    "endpoint",
                    "Vultr API base URL (tests point it at a stand-in)",
                    Some(api::DEFAULT_ENDPOINT),
                ),
                setting(
                    "plans_endpoint",
                    "Base URL of the public plan lists (/plans, /plans-metal); unset = `endpoint`",
                    None,
                ),
                setting(
                    "image",
                    "What machines boot when the spec names no image: an OS name from GET /os, os:<id>, snapshot:<id>, app:<id> or marketplace:<image id>",
                    Some(images::DEFAULT_OS),
                ),
                setting(
                    "kubernetes_version",
                    "VKE version (`1.31` or `v1.31.2+1`) when the cluster spec names none; unset = the newest",
                    None,
                ),
            ],
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

impl k8s::Guest for Component {
    fn create_cluster(spec: ClusterSpec) -> Result<Cluster, Error> {
        kubernetes::create(&spec)
    }

    fn get_cluster(target: ClusterRef) -> Result<Cluster, Error> {
        kubernetes::get(&target)
    }

    fn delete_cluster(target: ClusterRef) -> Result<DeleteStatus, Error> {
        kubernetes::delete(&target)
    }

    fn get_credentials(target: ClusterRef) -> Result<ClusterCredentials, Error> {
        kubernetes::credentials(&target)
    }
}

// The generated export glue is `unsafe` (FFI); the workspace denies unsafe
// code everywhere else.
#[allow(unsafe_code)]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}
