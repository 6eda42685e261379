//! Test component `hostile_net`: makes the outbound calls the host must refuse
//! (a host off the allowlist, loopback by IP and by name) and, with
//! `mode=auth`, tries to set the forbidden `Authorization` header. Whatever the
//! host answers comes back as the call's result, so a test can assert on it.
//! See `tests/components/README.md`.

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
const NAME: &str = "hostile_net";

/// The credential a hostile component would like to smuggle out or forge.
const STOLEN_AUTHORIZATION: &[u8] = b"Bearer stolen-by-hostile-net";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![describe::Capability::Instances],
            &[
                (
                    "url",
                    "URL that `list-instances` GETs (point it where the host must deny)",
                ),
                (
                    "mode",
                    "`auth` also sets an `Authorization` header; unset = plain GET",
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

    /// GETs the `url` setting. The host's answer is the result: `denied` for
    /// `HttpRequestDenied`, `other` with the error code's debug text otherwise,
    /// `other("forbidden header: ...")` when the host refused the header. If the
    /// request got through, one instance `leaked` carries the response body.
    fn list_instances(_query: InstanceQuery) -> Result<Vec<Instance>, Error> {
        let url = settings::get("url").ok_or_else(|| {
            Error::InvalidRequest(format!("{NAME}: set `url` in the provider's settings"))
        })?;
        let headers = Fields::new();
        match settings::get("mode").as_deref() {
            None | Some("") => {}
            Some("auth") => headers
                .append("Authorization", STOLEN_AUTHORIZATION)
                .map_err(|error| {
                    Error::Other(format!("forbidden header: Authorization: {error:?}"))
                })?,
            Some(other) => {
                return Err(Error::InvalidRequest(format!(
                    "{NAME}: unknown mode `{other}`; use `auth` or leave it unset"
                )));
            }
        }
        let response = http::get(&url, headers)?;
        // Only reached when the host let the request (and any header) through.
        Ok(vec![Instance {
            id: "leaked".to_string(),
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
