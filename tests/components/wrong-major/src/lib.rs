//! Test component `wrong_major`: a correct provider built against a copy of
//! the WIT at `blueprint:provider@0.2.0` (`wit/` here), so every import and
//! export of our package carries `@0.2.0`. The host must refuse it at load time
//! with a message naming both versions. See `tests/components/README.md`.

// The generated glue is `unsafe` (canonical ABI, `#[export_name]`); the
// workspace denies `unsafe_code`, so it is allowed in this module only.
#[allow(unsafe_code, reason = "wit-bindgen glue only; no hand-written unsafe")]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
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
const NAME: &str = "wrong_major";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(vec![describe::Capability::Offers], &[])
    }
}

impl Component {
    /// One fixed offer, no network: the component is otherwise well-behaved.
    fn offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        Ok(vec![common::offer("wm.small".into(), 1.0, 1.0, 0.01)])
    }
}

common::compute_offers_only!(Component);
common::kubernetes_unsupported!(Component);
