//! The `gcp` provider component: Compute Engine instances and GKE clusters,
//! authorised by the host (`gcp-oauth`: an OAuth token minted from the
//! operator's service account; this component never sees it), offers from a
//! keyless catalogue or the Cloud Billing SKUs, with an embedded dated snapshot
//! as fallback.
//!
//! Rooms:
//! - [`offers`]: `list-offers` (SkyPilot v8 CSV, Cloud Billing SKUs, snapshot);
//! - [`instances`] with [`firewall`]: create / get / delete / list instances;
//! - [`kubernetes`]: GKE clusters;
//! - [`operations`]: waiting on Compute Engine operations;
//! - [`errors`]: Google errors -> WIT errors;
//! - [`model`], [`machine`], [`names`]: Google's JSON, machine-type knowledge,
//!   names and labels within Google's rules;
//! - [`api`]: the endpoints and JSON calls.

mod api;
mod errors;
mod firewall;
mod instances;
mod kubernetes;
mod machine;
mod model;
mod names;
mod offers;
mod operations;

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
            name: "gcp".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: vec![
                Capability::Offers,
                Capability::Instances,
                Capability::Spot,
                Capability::ManagedKubernetes,
                Capability::Gpus,
                Capability::ConfidentialCompute,
            ],
            credential: CredentialKind::GcpOauth,
            expected_hosts: vec![
                "compute.googleapis.com".into(),
                "container.googleapis.com".into(),
                "cloudbilling.googleapis.com".into(),
                "raw.githubusercontent.com".into(),
            ],
            regions: vec![],
            settings: vec![
                setting(
                    "project",
                    "Google Cloud project id the instances and clusters are created in (required for them, and for catalog = billing)",
                    None,
                ),
                setting(
                    "regions",
                    "Comma list of regions to list offers and instances in; unset = all",
                    None,
                ),
                setting(
                    "catalog",
                    "Price source: `skypilot` (the keyless SkyPilot v8 CSV) or `billing` (Cloud Billing SKUs x the project's machine types)",
                    Some("skypilot"),
                ),
                setting(
                    "catalog_url",
                    "URL of the SkyPilot v8 gcp/vms.csv catalogue",
                    Some(offers::DEFAULT_CATALOG_URL),
                ),
                setting(
                    "billing_url",
                    "URL of the Cloud Billing Catalog SKU list of Compute Engine",
                    Some(offers::DEFAULT_BILLING_URL),
                ),
                setting(
                    "compute_endpoint",
                    "Compute Engine v1 base URL (tests point it at a stand-in)",
                    Some(api::DEFAULT_COMPUTE),
                ),
                setting(
                    "container_endpoint",
                    "GKE base URL (tests point it at a stand-in)",
                    Some(api::DEFAULT_CONTAINER),
                ),
                setting(
                    "image",
                    "Boot image when the instance spec names none; unset = Ubuntu 24.04 LTS (amd64 or arm64 family)",
                    None,
                ),
                setting(
                    "ssh_user",
                    "Login user the operator's keys are installed for (`ssh-keys` metadata)",
                    Some("ubuntu"),
                ),
                setting(
                    "network",
                    "VPC network of instances and their firewall rules",
                    Some("default"),
                ),
                setting(
                    "subnetwork",
                    "Subnetwork (in the instance's region); unset = the network's default",
                    None,
                ),
                setting(
                    "external_ip",
                    "Give instances an external IPv4 address",
                    Some("true"),
                ),
                setting(
                    "disk_gib",
                    "Boot disk size when the spec asks for 0",
                    Some("20"),
                ),
                setting("disk_type", "Boot disk type", Some("pd-balanced")),
                setting(
                    "operation_timeout_ms",
                    "How long a call waits for one Compute Engine operation before returning it as pending",
                    Some("90000"),
                ),
                setting(
                    "kubernetes_version",
                    "GKE version when the cluster spec names none",
                    Some("latest"),
                ),
                setting(
                    "cluster_endpoint_scheme",
                    "Scheme of the API server URL built from GKE's endpoint address; `http` only for local stand-ins (the host refuses cleartext except on loopback)",
                    Some("https"),
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

    fn get_credentials(_target: ClusterRef) -> Result<ClusterCredentials, Error> {
        Err(Error::Unsupported(
            "GKE clusters use provider-oauth auth minted by the host; there are no credentials to fetch"
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
