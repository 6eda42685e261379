//! Test component `well_behaved`: a provider that does everything right, so
//! the host tests have something to call after each hostile component and an
//! outbound-HTTP path through the sandbox. See `tests/components/README.md`.

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
#[allow(
    dead_code,
    reason = "shared helpers; not every component uses all of them"
)]
mod http {
    include!("../../http.rs");
}

use blueprint::provider::settings;
use blueprint::provider::types::{
    DeleteStatus, Error, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState, Offer,
    OfferQuery,
};
use exports::blueprint::provider::{compute, describe};

/// Provider name: the `.wasm` file stem.
const NAME: &str = "well_behaved";

/// Build-time version marker, so a hot-swap test can build a second version
/// (`BPR_TEST_VERSION=2 cargo build ...`) and tell which one answered.
const VERSION: &str = match option_env!("BPR_TEST_VERSION") {
    Some(version) => version,
    None => "1",
};

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        let mut info = common::info(
            vec![
                describe::Capability::Offers,
                describe::Capability::Instances,
            ],
            &[
                ("url", "URL that `list-instances` fetches with one GET"),
                (
                    "address",
                    "public address every instance reports as running at (deployment tests)",
                ),
            ],
        );
        // Build metadata keeps it semver whatever the marker is (`0.1.0+v2`).
        info.version = format!("{}+v{VERSION}", info.version);
        info
    }
}

impl compute::Guest for Component {
    /// Two fixed offers, no network.
    fn list_offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        Ok(vec![
            common::offer("wb.small".into(), 2.0, 4.0, 0.02),
            common::offer("wb.large".into(), 8.0, 32.0, 0.16),
        ])
    }

    /// Echoes the spec back as a pending instance whose id is the idempotency
    /// key, so a repeat returns the same instance. No network.
    fn create_instance(spec: InstanceSpec) -> Result<Instance, Error> {
        Ok(Instance {
            id: spec.idempotency_key,
            region: spec.region,
            zone: spec.zone,
            instance_type: spec.instance_type,
            state: InstanceState::Pending,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: spec.spot,
            labels: spec.labels,
            resources: Vec::new(),
            created_at: None,
            detail: Some(format!("deployment {}", spec.deployment_id)),
        })
    }

    /// The instance `version` exists; its detail is [`VERSION`]. With the
    /// setting `address` set, every instance exists, is running and has that
    /// public address (so the host's HTTP health check can be exercised).
    fn get_instance(target: InstanceRef) -> Result<Instance, Error> {
        if target.id != "version"
            && let Some(address) = settings::get("address")
        {
            let mut i = instance(target.id, target.region, "addressed".into(), target.labels);
            i.public_ipv4 = Some(address);
            return Ok(i);
        }
        if target.id != "version" {
            return Err(Error::NotFound(format!(
                "instance `{}`: {NAME} only knows the instance `version`",
                target.id
            )));
        }
        Ok(instance(
            target.id,
            target.region,
            VERSION.to_string(),
            Vec::new(),
        ))
    }

    /// Nothing to delete: everything is already gone.
    fn delete_instance(_target: InstanceRef) -> Result<DeleteStatus, Error> {
        Ok(DeleteStatus::Deleted)
    }

    /// One GET to the `url` setting; returns one instance whose detail is the
    /// response body and whose label `http-status` is the status code. With
    /// `address` set instead (the deployment tests), nothing is left to list:
    /// deleted instances are gone.
    fn list_instances(_query: InstanceQuery) -> Result<Vec<Instance>, Error> {
        if settings::get("url").is_none() && settings::get("address").is_some() {
            return Ok(Vec::new());
        }
        let url = settings::get("url").ok_or_else(|| {
            Error::InvalidRequest(format!("{NAME}: set `url` in the provider's settings"))
        })?;
        let response = http::get(&url, wasip2::http::types::Fields::new())?;
        Ok(vec![instance(
            "fetched".to_string(),
            "test-1".to_string(),
            response.body,
            vec![("http-status".to_string(), response.status.to_string())],
        )])
    }
}

common::kubernetes_unsupported!(Component);

/// A running instance with the given detail and labels.
fn instance(id: String, region: String, detail: String, labels: Vec<(String, String)>) -> Instance {
    Instance {
        id,
        region,
        zone: None,
        instance_type: "wb.small".to_string(),
        state: InstanceState::Running,
        public_ipv4: None,
        private_ipv4: None,
        public_ipv6: None,
        spot: false,
        labels,
        resources: Vec::new(),
        created_at: None,
        detail: Some(detail),
    }
}
