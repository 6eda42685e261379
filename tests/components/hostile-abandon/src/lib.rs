//! Test component `hostile_abandon`: requests that never end the normal way.
//! `mode=drop` fires `count` (default 3) POSTs with a body, lets each reach
//! the server for `wait_ms`, then drops it unanswered and returns;
//! `mode=deadline` sends one POST to a server that never answers and waits
//! for it until the call's deadline cuts it. Either way the server got
//! requests the host must have audited. See `tests/components/README.md`.

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
    unused_imports,
    unused_macros,
    reason = "shared helpers; not every component uses all of them"
)]
mod raw {
    include!("../../raw_http.rs");
}

use blueprint::provider::types::{Error, Instance};
use exports::blueprint::provider::describe;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody};
use wasip2::io::poll;

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_abandon";

/// The body of every request (so the server sees a real POST).
const BODY: &[u8] = b"abandoned-by-hostile-abandon";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![describe::Capability::Instances],
            &[
                ("mode", "`drop` (default) or `deadline`"),
                ("url", "where the POSTs go"),
                ("count", "how many POSTs `drop` abandons (3)"),
                ("wait_ms", "how long `drop` lets each one run first (300)"),
            ],
        )
    }
}

impl Component {
    fn run() -> Result<Instance, Error> {
        let url = raw::parse_url(&raw::setting("url")?)?;
        match blueprint::provider::settings::get("mode").as_deref() {
            None | Some("drop") => abandon(&url),
            Some("deadline") => {
                let request = raw::request(&Method::Post, &url, Fields::new())?;
                let body = request
                    .body()
                    .map_err(|()| Error::Other("body refused".into()))?;
                let stream = body
                    .write()
                    .map_err(|()| Error::Other("body stream refused".into()))?;
                raw::write_all(&stream, BODY, false)?;
                drop(stream);
                OutgoingBody::finish(body, None).map_err(raw::code)?;
                let response = raw::send(request)?;
                Ok(raw::report("the server answered".into(), response.status()))
            }
            Some(other) => Err(Error::InvalidRequest(format!("unknown mode `{other}`"))),
        }
    }
}

/// Fire, wait a little, drop.
fn abandon(url: &raw::Url) -> Result<Instance, Error> {
    let count = raw::number("count", 3);
    let wait_ms = raw::number("wait_ms", 300);
    for _ in 0..count {
        let request = raw::request(&Method::Post, url, Fields::new())?;
        let body = request
            .body()
            .map_err(|()| Error::Other("body refused".into()))?;
        // Finished after `handle`: the request runs on its own task while
        // this guest goes on.
        let future = outgoing_handler::handle(request, None).map_err(raw::code)?;
        let stream = body
            .write()
            .map_err(|()| Error::Other("body stream refused".into()))?;
        raw::write_all(&stream, BODY, true)?;
        drop(stream);
        OutgoingBody::finish(body, None).map_err(raw::code)?;
        let timer = wasip2::clocks::monotonic_clock::subscribe_duration(wait_ms * 1_000_000);
        let ready = future.subscribe();
        poll::poll(&[&timer, &ready]);
        drop(ready);
        drop(future);
    }
    Ok(raw::report(format!("abandoned {count} requests"), 0))
}

raw::compute_instances_only!(Component);
common::kubernetes_unsupported!(Component);
