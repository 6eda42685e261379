//! Test component `hostile_huge`: `list-offers`, `list-instances`,
//! `get-cluster` and `get-credentials` return far more data than a host should
//! accept from a provider. See `tests/components/README.md`.

// The generated glue is `unsafe` (canonical ABI, `#[export_name]`); the
// workspace denies `unsafe_code`, so it is allowed in this module only.
#[allow(unsafe_code, reason = "wit-bindgen glue only; no hand-written unsafe")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "blueprint:provider/provider",
        with: {
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
    });
    // Exported on wasm only: natively the `:` in the export names breaks the
    // cdylib link, and a native build of a component is never used anyway.
    #[cfg(target_arch = "wasm32")]
    use super::Component;
    #[cfg(target_arch = "wasm32")]
    export!(Component with_types_in self);
}
use bindings::{blueprint, exports};

#[allow(
    dead_code,
    unused_imports,
    unused_macros,
    reason = "shared helpers; not every component uses all of them"
)]
mod common {
    include!("../../common.rs");
}

use blueprint::provider::settings;
use blueprint::provider::types::{
    Cluster, ClusterAuth, ClusterCredentials, ClusterRef, ClusterSpec, ClusterState, DeleteStatus,
    Error, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState, Offer, OfferQuery,
    ResourceRef,
};
use exports::blueprint::provider::{compute, describe, kubernetes};

/// Default length of the one huge string (`shape=string`).
const DEFAULT_STRING_BYTES: usize = 64 << 20;
/// Default number of offers (`shape=offers`).
const DEFAULT_OFFER_COUNT: usize = 2_000_000;
/// Default length of each of the several huge strings (`strings`, `detail`,
/// clusters, credentials).
const DEFAULT_EACH_BYTES: usize = 10 << 20;
/// Default number of huge strings (`strings`, `detail`).
const DEFAULT_STRING_COUNT: usize = 10;

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_huge";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![
                describe::Capability::Offers,
                describe::Capability::Instances,
                describe::Capability::ManagedKubernetes,
            ],
            &[
                (
                    "shape",
                    "list-offers: `string` (default): one offer with a `size`-byte name; `offers`: `size` offers; `strings`: `count` offers with `size`-byte names. list-instances (unsupported under the other shapes): `instances`: `count` instances; `labels`: one instance with `count` labels; `detail`: `count` instances with a `size`-byte detail",
                ),
                (
                    "size",
                    "bytes of a string (default 64 MiB for `string`, else 10 MiB) or number of offers (`offers`, default 2,000,000)",
                ),
                (
                    "count",
                    "how many strings, instances, labels or cluster resources (default 10 strings, 100,000 instances or labels, 0 resources)",
                ),
            ],
        )
    }
}

/// A numeric setting, or `None` when unset.
fn number(key: &str) -> Result<Option<usize>, Error> {
    match settings::get(key) {
        Some(text) => text.parse::<usize>().map(Some).map_err(|error| {
            Error::InvalidRequest(format!("{NAME}: setting `{key}` = `{text}`: {error}"))
        }),
        None => Ok(None),
    }
}

/// A small instance whose `detail` is `detail`.
fn instance(id: String, labels: Vec<(String, String)>, detail: Option<String>) -> Instance {
    Instance {
        id,
        region: "test-1".to_string(),
        zone: None,
        instance_type: "huge.small".to_string(),
        state: InstanceState::Running,
        public_ipv4: None,
        private_ipv4: None,
        public_ipv6: None,
        spot: false,
        labels,
        resources: Vec::new(),
        created_at: None,
        detail,
    }
}

impl compute::Guest for Component {
    /// Returns the oversized answer chosen by the `shape`, `size` and `count`
    /// settings.
    ///
    /// Which host cap this hits: by default one offer whose `instance-type` is a
    /// 64 MiB string. Building it needs more than 64 MiB of guest memory (the
    /// string plus the 1 MiB stack and the heap), so a per-provider memory cap of
    /// 64 MiB or less traps on grow before anything returns; with a larger memory
    /// cap the 64 MiB string reaches the host, whose cap on returned data must
    /// refuse it. `shape=offers` returns `size` (default 2,000,000) small offers
    /// instead: about 400 MiB of guest memory before lowering, past any sane
    /// memory cap. A smaller `size` lets a test aim at the returned-data cap.
    /// `shape=strings` returns `count` (default 10) offers whose names are `size`
    /// bytes (default 10 MiB).
    fn list_offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        let shape = settings::get("shape");
        let size = number("size")?;
        match shape.as_deref() {
            None | Some("string") => {
                let bytes = size.unwrap_or(DEFAULT_STRING_BYTES);
                Ok(vec![common::offer("x".repeat(bytes), 1.0, 1.0, 0.01)])
            }
            Some("offers") => {
                let count = size.unwrap_or(DEFAULT_OFFER_COUNT);
                Ok((0..count)
                    .map(|i| common::offer(format!("huge.{i}"), 1.0, 1.0, 0.01))
                    .collect())
            }
            Some("strings") => {
                let bytes = size.unwrap_or(DEFAULT_EACH_BYTES);
                let count = number("count")?.unwrap_or(DEFAULT_STRING_COUNT);
                Ok((0..count)
                    .map(|i| common::offer(format!("{i}{}", "x".repeat(bytes)), 1.0, 1.0, 0.01))
                    .collect())
            }
            Some(other) => Err(Error::InvalidRequest(format!(
                "{NAME}: unknown shape `{other}` for list-offers; use `string`, `offers` or `strings`"
            ))),
        }
    }

    fn create_instance(_spec: InstanceSpec) -> Result<Instance, Error> {
        common::unsupported("compute.create-instance")
    }

    fn get_instance(_target: InstanceRef) -> Result<Instance, Error> {
        common::unsupported("compute.get-instance")
    }

    fn delete_instance(_target: InstanceRef) -> Result<DeleteStatus, Error> {
        common::unsupported("compute.delete-instance")
    }

    /// `shape=instances`: `count` (default 100,000) small instances;
    /// `labels`: one instance with `count` labels; `detail`: `count` (default 10)
    /// instances whose `detail` is `size` bytes (default 10 MiB).
    fn list_instances(_query: InstanceQuery) -> Result<Vec<Instance>, Error> {
        let size = number("size")?.unwrap_or(DEFAULT_EACH_BYTES);
        let count = number("count")?;
        match settings::get("shape").as_deref() {
            Some("instances") => Ok((0..count.unwrap_or(100_000))
                .map(|i| instance(format!("i-{i}"), Vec::new(), None))
                .collect()),
            Some("labels") => {
                let labels = (0..count.unwrap_or(100_000))
                    .map(|i| (format!("label-{i}"), "v".to_string()))
                    .collect();
                Ok(vec![instance("i-labels".to_string(), labels, None)])
            }
            Some("detail") => Ok((0..count.unwrap_or(DEFAULT_STRING_COUNT))
                .map(|i| instance(format!("i-{i}"), Vec::new(), Some("d".repeat(size))))
                .collect()),
            // The offers shapes (and no shape) leave this call well-behaved, so
            // a test of list-offers can check that the next call works.
            _ => common::unsupported("compute.list-instances without an instances shape"),
        }
    }
}

impl kubernetes::Guest for Component {
    fn create_cluster(_spec: ClusterSpec) -> Result<Cluster, Error> {
        common::unsupported("kubernetes.create-cluster")
    }

    /// A cluster whose CA certificate is `size` bytes (default 10 MiB) and
    /// which carries `count` resources (default 0).
    fn get_cluster(target: ClusterRef) -> Result<Cluster, Error> {
        let size = number("size")?.unwrap_or(DEFAULT_EACH_BYTES);
        let resources = (0..number("count")?.unwrap_or(0))
            .map(|i| ResourceRef {
                kind: "node-group".to_string(),
                id: format!("ng-{i}"),
            })
            .collect();
        Ok(Cluster {
            id: target.id,
            name: target.name,
            region: target.region,
            state: ClusterState::Running,
            endpoint: Some("https://127.0.0.1:6443".to_string()),
            ca_certificate_pem: Some("c".repeat(size)),
            auth: ClusterAuth::Fetched,
            kubernetes_version: None,
            labels: Vec::new(),
            resources,
            detail: None,
        })
    }

    fn delete_cluster(_target: ClusterRef) -> Result<DeleteStatus, Error> {
        common::unsupported("kubernetes.delete-cluster")
    }

    /// A kubeconfig of `size` bytes (default 10 MiB).
    fn get_credentials(_target: ClusterRef) -> Result<ClusterCredentials, Error> {
        let size = number("size")?.unwrap_or(DEFAULT_EACH_BYTES);
        Ok(ClusterCredentials::Kubeconfig("k".repeat(size)))
    }
}
