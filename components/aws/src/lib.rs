//! The `aws` provider component: EC2 instances and EKS clusters, signed by the
//! host (every request carries `x-bpr-aws-scope: <service>/<region>`), offers
//! from the ec2instances.info `instances.json` catalogue with an embedded
//! snapshot as fallback. Exports the optional `power` interface (stop and start
//! instances) for the host's payment suspension.
//!
//! Settings: `endpoint` (stand-in base URL, e.g. `http://127.0.0.1:5000`),
//! `regions`, `catalog_url`, `image`, `image_owner`, `image_name_filter`,
//! `vpc_id`, `subnet_id`,
//! `eks_role_arn`, `eks_node_role_arn`, `eks_subnet_ids`, `home_region`.

mod catalogue;
mod ec2;
mod eks;
mod instances;
mod leftovers;
mod offers;
mod power;
mod regions;

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
            name: "aws".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: vec![
                Capability::Offers,
                Capability::Instances,
                Capability::Spot,
                Capability::ManagedKubernetes,
                Capability::Gpus,
                Capability::ConfidentialCompute,
            ],
            credential: CredentialKind::AwsSigv4,
            expected_hosts: vec!["*.amazonaws.com".into(), "instances.vantage.sh".into()],
            regions: vec![],
            settings: vec![
                setting(
                    "endpoint",
                    "Base URL replacing https://<service>.<region>.amazonaws.com (for stand-ins such as moto)",
                    None,
                ),
                setting(
                    "regions",
                    "Comma list of regions to list offers and instances in; unset = every region (DescribeRegions)",
                    None,
                ),
                setting(
                    "catalog_url",
                    "URL of the instances.json price catalogue",
                    Some(offers::DEFAULT_CATALOG_URL),
                ),
                setting("image", "AMI id to boot instead of looking one up", None),
                setting(
                    "image_owner",
                    "Owner (id or alias) of the AMI looked up",
                    Some("amazon"),
                ),
                setting(
                    "image_name_filter",
                    "Name filter of the AMI looked up (newest match wins)",
                    Some("al2023-ami-2023.*-<arch>"),
                ),
                setting(
                    "vpc_id",
                    "VPC for the security groups; unset = the default VPC",
                    None,
                ),
                setting(
                    "subnet_id",
                    "Subnet to launch instances in (must be in `vpc_id`); unset = a default subnet",
                    None,
                ),
                setting(
                    "eks_role_arn",
                    "IAM role ARN for EKS clusters (required for clusters)",
                    None,
                ),
                setting(
                    "eks_node_role_arn",
                    "IAM role ARN for EKS node groups (required for clusters)",
                    None,
                ),
                setting(
                    "eks_subnet_ids",
                    "Comma list of subnet ids for EKS; unset = the default VPC's default subnets",
                    None,
                ),
                setting(
                    "home_region",
                    "Region asked for DescribeRegions",
                    Some("us-east-1"),
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

impl powered::Guest for Component {
    fn stop_instance(target: InstanceRef) -> Result<Instance, Error> {
        power::stop(&target)
    }

    fn start_instance(target: InstanceRef) -> Result<Instance, Error> {
        power::start(&target)
    }
}

impl kubernetes::Guest for Component {
    fn create_cluster(spec: ClusterSpec) -> Result<Cluster, Error> {
        eks::create(&spec)
    }

    fn get_cluster(target: ClusterRef) -> Result<Cluster, Error> {
        eks::get(&target)
    }

    fn delete_cluster(target: ClusterRef) -> Result<DeleteStatus, Error> {
        eks::delete(&target)
    }

    fn get_credentials(_target: ClusterRef) -> Result<ClusterCredentials, Error> {
        Err(Error::Unsupported(
            "EKS clusters use aws-iam auth minted by the host; there are no credentials to fetch"
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
