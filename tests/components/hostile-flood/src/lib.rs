//! Test component `hostile_flood`: more outbound requests than one call
//! should get: `mode=hold` has `count` (default 2,100) requests in flight at
//! once against a server that never answers, and reports after `hold_ms`
//! how many the host refused; `mode=many` sends `count` (default 5,000)
//! requests one after the other and stops at the first refusal. See
//! `tests/components/README.md`.

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

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_flood";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![describe::Capability::Instances],
            &[
                ("mode", "`hold` (default) or `many`"),
                ("url", "where the requests go"),
                ("count", "how many requests (hold: 2100, many: 5000)"),
                ("hold_ms", "how long `hold` waits before reporting (2000)"),
            ],
        )
    }
}

impl Component {
    fn run() -> Result<Instance, Error> {
        let url = raw::parse_url(&raw::setting("url")?)?;
        match blueprint::provider::settings::get("mode").as_deref() {
            None | Some("hold") => hold(&url),
            Some("many") => many(&url),
            Some(other) => Err(Error::InvalidRequest(format!("unknown mode `{other}`"))),
        }
    }
}

/// All requests in flight at once (a body still open at `handle` sends each
/// on a task of its own), then wait and count.
fn hold(url: &raw::Url) -> Result<Instance, Error> {
    let count = raw::number("count", 2100) as usize;
    let hold_ms = raw::number("hold_ms", 2000);
    let mut futures = Vec::with_capacity(count);
    let mut bodies = Vec::with_capacity(count);
    for _ in 0..count {
        let request = raw::request(&Method::Get, url, Fields::new())?;
        let body = request
            .body()
            .map_err(|()| Error::Other("body refused".into()))?;
        futures.push(outgoing_handler::handle(request, None).map_err(raw::code)?);
        bodies.push(body);
    }
    for body in bodies {
        let _ = OutgoingBody::finish(body, None);
    }
    wasip2::clocks::monotonic_clock::subscribe_duration(hold_ms * 1_000_000).block();
    let (mut pending, mut answered, mut refused) = (0, 0, 0);
    let mut other = Vec::new();
    for f in &futures {
        // `get` only sees what a poll found: poll each once, without waiting.
        let ready = f.subscribe();
        let _ = ready.ready();
        drop(ready);
        match f.get() {
            None => pending += 1,
            Some(Ok(Ok(_))) => answered += 1,
            Some(Ok(Err(wasip2::http::types::ErrorCode::ConnectionLimitReached))) => refused += 1,
            Some(Ok(Err(c))) => other.push(format!("{c:?}")),
            Some(Err(())) => other.push("taken".into()),
        }
    }
    Ok(raw::report(
        format!(
            "pending={pending} answered={answered} refused={refused} other={}",
            other.len()
        ),
        0,
    ))
}

/// One request after the other until the host refuses one.
fn many(url: &raw::Url) -> Result<Instance, Error> {
    let count = raw::number("count", 5000);
    for i in 0..count {
        let request = raw::request(&Method::Get, url, Fields::new())?;
        match raw::send(request).and_then(raw::read) {
            Ok(_) => {}
            Err(e) => return Ok(raw::report(format!("sent={i} stopped by {e:?}"), 0)),
        }
    }
    Ok(raw::report(format!("sent={count}"), 0))
}

raw::compute_instances_only!(Component);
common::kubernetes_unsupported!(Component);
