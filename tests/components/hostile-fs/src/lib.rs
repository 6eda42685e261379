//! Test component `hostile_fs`: `list-offers` reads `/etc/passwd` with
//! `std::fs`, which makes the component import `wasi:filesystem`. The host must
//! refuse to load it at all. See `tests/components/README.md`.

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

use blueprint::provider::types::{Error, Offer, OfferQuery};
use exports::blueprint::provider::describe;

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_fs";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(vec![describe::Capability::Offers], &[])
    }
}

impl Component {
    /// Only runs if the host wrongly loaded this component.
    fn offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        match std::fs::read_to_string("/etc/passwd") {
            Ok(text) => Err(Error::Other(format!(
                "{NAME} read {} bytes of /etc/passwd: the host let the filesystem through",
                text.len()
            ))),
            Err(error) => Err(Error::Other(format!(
                "{NAME} ran although it imports wasi:filesystem (reading /etc/passwd: {error}); \
                 the host should have refused it at load time"
            ))),
        }
    }
}

common::compute_offers_only!(Component);
common::kubernetes_unsupported!(Component);
