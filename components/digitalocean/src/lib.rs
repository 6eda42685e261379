//! DigitalOcean provider component: priced offers from `/v2/sizes` (with an
//! embedded snapshot as fallback), droplets with an SSH key, cloud-init and a
//! tag-bound cloud firewall, and DOKS clusters whose credentials the host
//! fetches, and (optional `power` export) droplets powered off and on for the
//! host's payment suspension. The host applies the bearer token; this
//! component never sees it.

mod api;
mod clusters;
mod codec;
mod droplets;
mod firewalls;
mod keys;
mod leftovers;
mod model;
mod offers;
mod power;

#[allow(missing_docs, clippy::all, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "blueprint:provider/powered-provider",
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

use bindings::exports::blueprint::provider::{compute, describe, kubernetes, power as powered};
use provider_sdk::types::{
    Cluster, ClusterCredentials, ClusterRef, ClusterSpec, DeleteStatus, Error, Instance,
    InstanceQuery, InstanceRef, InstanceSpec, Offer, OfferQuery,
};

use api::Api;

/// Provider name; equals the `.wasm` file stem.
const NAME: &str = "digitalocean";
/// Default droplet image: the current Ubuntu LTS.
const DEFAULT_IMAGE: &str = "ubuntu-24-04-x64";
/// Resource kinds this component returns in `resources`.
const KIND_FIREWALL: &str = "firewall";
const KIND_SSH_KEY: &str = "ssh-key";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        use describe::{Capability, CredentialKind, SettingInfo};
        let setting = |key: &str, description: &str, default: Option<&str>| SettingInfo {
            key: key.into(),
            description: description.into(),
            default_value: default.map(Into::into),
        };
        describe::ProviderInfo {
            name: NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: vec![
                Capability::Offers,
                Capability::Instances,
                Capability::ManagedKubernetes,
                Capability::Gpus,
            ],
            credential: CredentialKind::Bearer,
            expected_hosts: vec!["api.digitalocean.com".into()],
            regions: vec![],
            settings: vec![
                setting(
                    "endpoint",
                    "DigitalOcean API base URL (tests point it at a stand-in)",
                    Some(api::DEFAULT_ENDPOINT),
                ),
                setting(
                    "image",
                    "Droplet image slug or id when the instance spec names none",
                    Some(DEFAULT_IMAGE),
                ),
                setting(
                    "kubernetes-version",
                    "DOKS version slug when the cluster spec names none",
                    Some(clusters::DEFAULT_K8S_VERSION),
                ),
            ],
        }
    }
}

impl compute::Guest for Component {
    fn list_offers(query: OfferQuery) -> Result<Vec<Offer>, Error> {
        offers::list(query)
    }

    fn create_instance(spec: InstanceSpec) -> Result<Instance, Error> {
        droplets::create_instance(&Api::from_settings(), spec)
    }

    fn get_instance(target: InstanceRef) -> Result<Instance, Error> {
        droplets::get(target)
    }

    fn delete_instance(target: InstanceRef) -> Result<DeleteStatus, Error> {
        droplets::delete_instance(&Api::from_settings(), target)
    }

    fn list_instances(query: InstanceQuery) -> Result<Vec<Instance>, Error> {
        droplets::list(query)
    }
}

impl powered::Guest for Component {
    fn stop_instance(target: InstanceRef) -> Result<Instance, Error> {
        power::stop(&Api::from_settings(), target)
    }

    fn start_instance(target: InstanceRef) -> Result<Instance, Error> {
        power::start(&Api::from_settings(), target)
    }
}

impl kubernetes::Guest for Component {
    fn create_cluster(spec: ClusterSpec) -> Result<Cluster, Error> {
        clusters::create_cluster(&Api::from_settings(), spec)
    }

    fn get_cluster(target: ClusterRef) -> Result<Cluster, Error> {
        clusters::get(target)
    }

    fn delete_cluster(target: ClusterRef) -> Result<DeleteStatus, Error> {
        clusters::delete(target)
    }

    fn get_credentials(target: ClusterRef) -> Result<ClusterCredentials, Error> {
        clusters::credentials(target)
    }
}

// The generated export glue is `unsafe` (FFI); the workspace denies unsafe
// code everywhere else.
#[allow(unsafe_code)]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}
