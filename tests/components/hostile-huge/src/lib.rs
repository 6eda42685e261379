//! Test component `hostile_huge`: `list-offers` returns far more data than a
//! host should accept from a provider. See `tests/components/README.md`.

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
use blueprint::provider::types::{Error, Offer, OfferQuery};
use exports::blueprint::provider::describe;

/// Default length of the one huge string (`shape=string`).
const DEFAULT_STRING_BYTES: usize = 64 << 20;
/// Default number of offers (`shape=offers`).
const DEFAULT_OFFER_COUNT: usize = 2_000_000;

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_huge";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![describe::Capability::Offers],
            &[
                (
                    "shape",
                    "`string` (default): one offer with a `size`-byte name; `offers`: `size` offers",
                ),
                (
                    "size",
                    "bytes of the string (default 64 MiB) or number of offers (default 2,000,000)",
                ),
            ],
        )
    }
}

impl Component {
    /// Returns the oversized answer chosen by the `shape` and `size` settings.
    ///
    /// Which host cap this hits: by default one offer whose `instance-type` is a
    /// 64 MiB string. Building it needs more than 64 MiB of guest memory (the
    /// string plus the 1 MiB stack and the heap), so a per-provider memory cap of
    /// 64 MiB or less traps on grow before anything returns; with a larger memory
    /// cap the 64 MiB string reaches the host, whose cap on returned data must
    /// refuse it. `shape=offers` returns `size` (default 2,000,000) small offers
    /// instead: about 400 MiB of guest memory before lowering, past any sane
    /// memory cap. A smaller `size` lets a test aim at the returned-data cap.
    fn offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        let shape = settings::get("shape");
        let size = match settings::get("size") {
            Some(text) => Some(text.parse::<usize>().map_err(|error| {
                Error::InvalidRequest(format!("{NAME}: setting `size` = `{text}`: {error}"))
            })?),
            None => None,
        };
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
            Some(other) => Err(Error::InvalidRequest(format!(
                "{NAME}: unknown shape `{other}`; use `string` or `offers`"
            ))),
        }
    }
}

common::compute_offers_only!(Component);
common::kubernetes_unsupported!(Component);
