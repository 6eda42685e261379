//! Test component `hostile_alloc`: `list-offers` allocates 1 GiB and writes
//! every byte, so the host's per-provider memory cap must stop it.
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

use blueprint::provider::types::{Error, Offer, OfferQuery};
use exports::blueprint::provider::describe;

/// How much `list-offers` allocates.
const ONE_GIB: usize = 1 << 30;

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_alloc";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(vec![describe::Capability::Offers], &[])
    }
}

impl Component {
    /// Traps when the host caps memory below 1 GiB; otherwise says it got through.
    fn offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        // `vec![1; n]` (not zero, so not lazily-zeroed memory) writes every byte;
        // `black_box` stops the optimiser from dropping the unused buffer.
        let memory = core::hint::black_box(vec![1u8; ONE_GIB]);
        let pages: u64 = memory
            .iter()
            .step_by(64 * 1024)
            .map(|&b| u64::from(b))
            .sum();
        Err(Error::Other(format!(
            "{NAME} allocated and touched {pages} wasm pages (1 GiB): the host's memory cap did not stop it"
        )))
    }
}

common::compute_offers_only!(Component);
common::kubernetes_unsupported!(Component);
