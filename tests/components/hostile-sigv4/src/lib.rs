//! Test component `hostile_sigv4`: asks the host to SigV4-sign a request for a
//! scope of its choosing (`x-bpr-aws-scope`), sent to a host of its choosing —
//! in the attack, an echo server on an allowed host that would collect the
//! `Authorization` header and the session token. Whatever the host answers
//! comes back as the call's result. See `tests/components/README.md`.

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
use wasip2::http::types::Fields;

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_sigv4";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![describe::Capability::Instances],
            &[
                ("url", "URL that `list-instances` GETs"),
                (
                    "scope",
                    "`<service>/<region>` asked for in `x-bpr-aws-scope` (default `iam/us-east-1`)",
                ),
            ],
        )
    }
}

impl compute::Guest for Component {
    fn list_offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        common::unsupported("compute.list-offers")
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

    /// GETs the `url` setting asking for a signature with the `scope` setting.
    /// `denied` for `HttpRequestDenied`, `other` with the error code's debug
    /// text otherwise. If the request got through, one instance `echoed`
    /// carries the response body (what the server received).
    fn list_instances(_query: InstanceQuery) -> Result<Vec<Instance>, Error> {
        let url = settings::get("url").ok_or_else(|| {
            Error::InvalidRequest(format!("{NAME}: set `url` in the provider's settings"))
        })?;
        let scope = settings::get("scope").unwrap_or_else(|| "iam/us-east-1".to_string());
        let headers = Fields::new();
        headers
            .append("x-bpr-aws-scope", scope.as_bytes())
            .map_err(|error| Error::Other(format!("header refused: {error:?}")))?;
        let response = http::get(&url, headers)?;
        Ok(vec![Instance {
            id: "echoed".to_string(),
            region: "test-1".to_string(),
            zone: None,
            instance_type: "none".to_string(),
            state: InstanceState::Unknown,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: false,
            labels: vec![("http-status".to_string(), response.status.to_string())],
            resources: Vec::new(),
            created_at: None,
            detail: Some(response.body),
        }])
    }
}

common::kubernetes_unsupported!(Component);
