//! Guest helpers shared by every provider component (AWS, DigitalOcean, ...).
//!
//! The crate is an `rlib` built for `wasm32-wasip2`. It owns the one copy of the
//! bindings for `blueprint:provider/{types,log,settings}` (world
//! `blueprint:provider/imports` in `wit/world.wit`) and gives components:
//!
//! - [`http`]: a request builder over `wasi:http/outgoing-handler` that reads the
//!   whole answer with a size cap (or streams it) and maps transport errors onto
//!   the WIT `error` (`denied`, `transient`, ...);
//! - [`errors`]: HTTP status -> WIT `error` (401/403, 404, 400/422, 429 with
//!   `Retry-After` or a reset header, 5xx);
//! - [`json`]: serde_json parsing that names what failed;
//! - [`paginate`]: follow a "next" link or cursor until it is absent, with a page cap;
//! - [`settings`]: `get`, `get_or`, comma lists, booleans;
//! - [`log`]: one-line logging into the host's `tracing`;
//! - [`time`]: wall-clock now and HTTP-date / RFC 3339 parsing.
//!
//! # Using it from a component
//!
//! In the component's `Cargo.toml`: `provider-sdk = { path = "../sdk" }`, plus
//! `wit-bindgen` and `wasip2` from the workspace. Then generate the `provider`
//! world and point every shared interface at the sdk's and wasip2's bindings,
//! so that the types are the same Rust types everywhere:
//!
//! ```ignore
//! mod bindings {
//!     wit_bindgen::generate!({
//!         path: "../../wit",
//!         world: "blueprint:provider/provider",
//!         with: {
//!             "blueprint:provider/types@0.1.0": provider_sdk::bindings::blueprint::provider::types,
//!             "blueprint:provider/log@0.1.0": provider_sdk::bindings::blueprint::provider::log,
//!             "blueprint:provider/settings@0.1.0": provider_sdk::bindings::blueprint::provider::settings,
//!             "wasi:http/types@0.2.12": wasip2::http::types,
//!             "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
//!             "wasi:io/error@0.2.12": wasip2::io::error,
//!             "wasi:io/poll@0.2.12": wasip2::io::poll,
//!             "wasi:io/streams@0.2.12": wasip2::io::streams,
//!             "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
//!         },
//!     });
//! }
//! use bindings::exports::blueprint::provider::{compute, describe, kubernetes};
//! use provider_sdk::types::{Error, Offer /* ... */};
//!
//! struct Component;
//! impl describe::Guest for Component { /* ... */ }
//! // impl compute::Guest / kubernetes::Guest ...
//!
//! // The export glue is `unsafe` FFI and the workspace denies unsafe code, so
//! // invoke it inside a module that allows it.
//! #[allow(unsafe_code)]
//! mod export {
//!     use super::Component;
//!     crate::bindings::export!(Component with_types_in crate::bindings);
//! }
//! ```
//!
//! Put `#[allow(missing_docs, clippy::all, unsafe_code)]` on the `bindings`
//! module too. Check the built `.wasm` with
//! `grep -ac 'wasi:filesystem' target/wasm/wasm32-wasip2/wasm/<name>.wasm`
//! (must print 0).
//!
//! A request:
//!
//! ```ignore
//! use provider_sdk::{http::Request, errors, json};
//! let resp = Request::get("https://api.example.com/v2/sizes?page=1")
//!     .header("accept", "application/json")
//!     .send()?;                       // Err(Error::Denied/Transient/...) on transport failure
//! if !resp.is_success() {
//!     return Err(errors::from_response(&resp, "listing sizes"));
//! }
//! let page: Sizes = json::parse(&resp.body, "the /v2/sizes answer")?;
//! ```
//!
//! Rules the host enforces and this crate does not hide: never set
//! `Authorization` (the host adds credentials), never read files or the
//! environment (the component would be refused at load time).

pub mod errors;
pub mod http;
pub mod json;
pub mod log;
pub mod paginate;
pub mod settings;
pub mod time;

/// Bindings generated once for `blueprint:provider/imports`. Components map
/// `blueprint:provider/{types,log,settings}` onto these modules with `with:`
/// (see the crate doc).
#[allow(missing_docs, clippy::all, unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "blueprint:provider/imports",
        with: {
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
    });
}

/// The shared WIT records, enums and the `error` variant
/// (`blueprint:provider/types`).
pub use bindings::blueprint::provider::types;
/// The WIT `error` variant every provider call returns.
pub use types::Error;

/// Result type of provider calls.
pub type Result<T> = core::result::Result<T, Error>;
