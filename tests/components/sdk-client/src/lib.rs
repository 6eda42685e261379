//! Test component `sdk_client`: a well-behaved provider whose HTTP goes
//! through `components/sdk`, the helpers every shipped provider uses, so the
//! tests exercise exactly what they do. `list-instances` POSTs a body of
//! setting `body_len` bytes to setting `url` and reports the answer;
//! `list-offers` streams the AWS-format catalogue at setting `catalog_url`
//! through `json::parse_reader` and reports what it counted (one offer whose
//! `instance-type` is `types=<n> prices=<n>`). Setting `catalog_parse`
//! picks how: `reader` (default, the stream), `slice` (read whole, then
//! parse) or `none` (read and count the bytes only: `bytes=<n>`), so the
//! benchmark can tell the boundary's cost from the guest's parse. See
//! `tests/components/README.md`.

mod catalog;

// The generated glue is `unsafe` (canonical ABI, `#[export_name]`); the
// workspace denies `unsafe_code`, so it is allowed in this module only.
#[allow(unsafe_code, reason = "wit-bindgen glue only; no hand-written unsafe")]
mod bindings {
    wit_bindgen::generate!({
        path: "../../../wit",
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
    // Exported on wasm only: natively the `:` in the export names breaks the
    // cdylib link, and a native build of a component is never used anyway.
    #[cfg(target_arch = "wasm32")]
    use super::Component;
    #[cfg(target_arch = "wasm32")]
    export!(Component with_types_in self);
}
use bindings::exports;
/// The shared types, where `common.rs` looks for them.
mod blueprint {
    pub use provider_sdk::bindings::blueprint::provider;
}

#[allow(
    dead_code,
    unused_imports,
    unused_macros,
    reason = "shared helpers; not every component uses all of them"
)]
mod common {
    include!("../../common.rs");
}

use std::io::Read;

use exports::blueprint::provider::{compute, describe};
use provider_sdk::http::Request;
use provider_sdk::types::{
    DeleteStatus, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState, Offer,
    OfferQuery,
};
use provider_sdk::{Error, json, settings};

/// Provider name: the `.wasm` file stem.
const NAME: &str = "sdk_client";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![
                describe::Capability::Offers,
                describe::Capability::Instances,
            ],
            &[
                ("url", "where `list-instances` POSTs its body"),
                ("body_len", "bytes of that body (0)"),
                (
                    "catalog_url",
                    "the AWS-format catalogue `list-offers` streams",
                ),
                (
                    "catalog_parse",
                    "reader (default), slice, or none (count bytes only)",
                ),
            ],
        )
    }
}

impl compute::Guest for Component {
    fn list_offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        let url = settings::get("catalog_url")
            .ok_or_else(|| Error::InvalidRequest("set `catalog_url`".into()))?;
        let resp = Request::get(&url)
            .max_response_bytes(1 << 30)
            .send_streaming()?;
        if !resp.is_success() {
            return Err(Error::Other(format!("catalogue answered {}", resp.status)));
        }
        let s: catalog::Summary = match settings::get("catalog_parse").as_deref() {
            None | Some("reader") => json::parse_reader(resp.body, "the catalogue")?,
            Some("slice") => {
                // Sized from content-length: no doubling copies in the guest.
                let len = provider_sdk::http::header(&resp.headers, "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut all = Vec::with_capacity(len);
                let mut body = resp.body;
                body.read_to_end(&mut all)
                    .map_err(|e| Error::Transient(format!("reading the catalogue: {e}")))?;
                json::parse(&all, "the catalogue")?
            }
            Some("none") => {
                let (mut body, mut buf, mut n) = (resp.body, vec![0; 1 << 20], 0usize);
                loop {
                    match body.read(&mut buf) {
                        Ok(0) => break,
                        Ok(k) => n += k,
                        Err(e) => {
                            return Err(Error::Transient(format!("reading the catalogue: {e}")));
                        }
                    }
                }
                return Ok(vec![common::offer(format!("bytes={n}"), 1.0, 1.0, 0.0)]);
            }
            Some(other) => {
                return Err(Error::InvalidRequest(format!(
                    "`catalog_parse` is `{other}`; use reader, slice or none"
                )));
            }
        };
        Ok(vec![common::offer(
            format!("types={} prices={}", s.types, s.prices),
            1.0,
            1.0,
            s.cheapest,
        )])
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

    /// POSTs `body_len` bytes of `x` to `url` and reports the answer.
    fn list_instances(_query: InstanceQuery) -> Result<Vec<Instance>, Error> {
        let url = settings::get("url").ok_or_else(|| Error::InvalidRequest("set `url`".into()))?;
        let len: usize = settings::get("body_len")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let resp = Request::post(&url).body(vec![b'x'; len]).send()?;
        Ok(vec![Instance {
            id: "answer".into(),
            region: "test-1".into(),
            zone: None,
            instance_type: "none".into(),
            state: InstanceState::Unknown,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: false,
            labels: vec![("http-status".into(), resp.status.to_string())],
            resources: Vec::new(),
            created_at: None,
            detail: Some(resp.text()),
        }])
    }
}

common::kubernetes_unsupported!(Component);
