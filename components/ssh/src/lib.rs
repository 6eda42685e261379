//! SSH provider component: the operator's own machines as offers, and
//! workloads (containers or native binaries) placed on them over the host's
//! `ssh` capability. The component never sees an address or a key: it names
//! hosts by alias and sends argv lists that the host quotes.
//!
//! # What a deployment installs on a host
//! Everything lives under `$HOME/.bpr/deployments/<deployment-id>/`:
//! `meta.json` (what was installed, read back by get/list/delete), `env`
//! (0600) and, for native binaries, `bin`, `log`, and either a systemd unit
//! (`/etc/systemd/system/bpr-<id>.service` as root, else
//! `~/.config/systemd/user/bpr-<id>.service`) when systemd is PID 1, or
//! `supervise.sh` with `pid`/`supervisor.pid` files otherwise. Containers run
//! as `bpr-<id>` with label `bpr-deployment=<id>`. Delete removes all of it.
//!
//! # Settings
//! - `native_supervisor`: `auto` (default; systemd when `/run/systemd/system`
//!   exists), `systemd` or `process`.
//! - `container_engine`: `auto` (default; docker, else podman), `docker`, `podman`.
//! - `container_read_only`: read-only root filesystem with tmpfs `/tmp`
//!   (default `true`).
//! - `arch`: `x86-64` (default) or `arm64`, reported in offers.
//!
//! # Capacity in offers
//! An offer is the host's probed capacity minus what its deployments take.
//! The host's tracker does not record ssh deployments, so `list-offers` reads
//! every `meta.json` on the host (one command per host) and sums the
//! workloads' CPU limits (cores) and memory limits (MiB, as GiB). A workload
//! without a limit counts as 0 for that resource: nothing bounds what it uses,
//! so any other figure would be a guess. The host-reported `in-use` is still
//! honoured, as the larger of the two per resource rather than their sum,
//! because the same deployment may be counted by both and must not be
//! subtracted twice. An unreachable host keeps its offer with the
//! host-reported `in-use` only, and a warning is logged.

#[allow(missing_docs, clippy::all, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "blueprint:provider/ssh-provider",
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

mod capacity;
mod deploy;
mod files;
mod listing;
mod meta;
mod observe;
mod remote;

use bindings::exports::blueprint::provider::{compute, describe, kubernetes};
use provider_sdk::errors::unsupported;
use provider_sdk::types::{
    Cluster, ClusterCredentials, ClusterRef, ClusterSpec, DeleteStatus, Error, Instance,
    InstanceQuery, InstanceRef, InstanceSpec, Offer, OfferQuery,
};

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        let s = |k: &str, d: &str, v: Option<&str>| describe::SettingInfo {
            key: k.into(),
            description: d.into(),
            default_value: v.map(String::from),
        };
        describe::ProviderInfo {
            name: "ssh".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: vec![
                describe::Capability::Offers,
                describe::Capability::Instances,
                describe::Capability::Workloads,
                describe::Capability::Gpus,
            ],
            credential: describe::CredentialKind::None,
            expected_hosts: vec![],
            regions: vec![],
            settings: vec![
                s(
                    "native_supervisor",
                    "auto | systemd | process: how native binaries are kept running",
                    Some("auto"),
                ),
                s("container_engine", "auto | docker | podman", Some("auto")),
                s(
                    "container_read_only",
                    "run containers with a read-only root filesystem and tmpfs /tmp",
                    Some("true"),
                ),
                s("arch", "x86-64 | arm64, reported in offers", Some("x86-64")),
            ],
        }
    }
}

impl compute::Guest for Component {
    fn list_offers(q: OfferQuery) -> Result<Vec<Offer>, Error> {
        capacity::offers(q)
    }

    fn create_instance(spec: InstanceSpec) -> Result<Instance, Error> {
        deploy::create(&spec)
    }

    fn get_instance(target: InstanceRef) -> Result<Instance, Error> {
        deploy::get(target)
    }

    fn delete_instance(target: InstanceRef) -> Result<DeleteStatus, Error> {
        deploy::delete(target)
    }

    fn list_instances(q: InstanceQuery) -> Result<Vec<Instance>, Error> {
        listing::list(q)
    }
}

impl kubernetes::Guest for Component {
    fn create_cluster(_s: ClusterSpec) -> Result<Cluster, Error> {
        Err(unsupported("managed Kubernetes"))
    }
    fn get_cluster(_s: ClusterRef) -> Result<Cluster, Error> {
        Err(unsupported("managed Kubernetes"))
    }
    fn delete_cluster(_s: ClusterRef) -> Result<DeleteStatus, Error> {
        Err(unsupported("managed Kubernetes"))
    }
    fn get_credentials(_s: ClusterRef) -> Result<ClusterCredentials, Error> {
        Err(unsupported("managed Kubernetes"))
    }
}

// The generated export glue is `unsafe` FFI; the workspace denies unsafe code
// everywhere else.
#[allow(unsafe_code)]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}
