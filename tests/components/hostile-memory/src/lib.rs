//! Test component `hostile_memory`: makes the host hold memory on its behalf
//! through wasi:http, outside its own linear memory: `fields` resources it
//! never drops (`mode=fields`, default 30,000 of 64 KiB), request bodies it
//! writes but never sends (`mode=queued`), or responses it asks for and never
//! reads (`mode=responses`, default 60 at once). Its own memory stays small,
//! so only a host-side budget can stop it. See `tests/components/README.md`.

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
const NAME: &str = "hostile_memory";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![describe::Capability::Instances],
            &[
                ("mode", "`fields` (default), `queued` or `responses`"),
                (
                    "count",
                    "how many (fields: 30000, queued: 64, responses: 60)",
                ),
                (
                    "size",
                    "bytes per field or queued body (fields: 65536, queued: 1048576)",
                ),
                ("url", "where `queued` and `responses` send their requests"),
                (
                    "hold_ms",
                    "how long `responses` holds its unread responses (500)",
                ),
            ],
        )
    }
}

impl Component {
    fn run() -> Result<Instance, Error> {
        let mode = blueprint::provider::settings::get("mode").unwrap_or_else(|| "fields".into());
        match mode.as_str() {
            "fields" => fields(),
            "queued" => queued(),
            "responses" => responses(),
            other => Err(Error::InvalidRequest(format!("unknown mode `{other}`"))),
        }
    }
}

/// Fields of `size` bytes each, all kept until the call ends.
fn fields() -> Result<Instance, Error> {
    let count = raw::number("count", 30_000) as usize;
    let size = raw::number("size", 64 * 1024) as usize;
    let value = vec![b'f'; size];
    let mut kept = Vec::with_capacity(count);
    for i in 0..count {
        let f = Fields::new();
        f.append("x-fill", &value)
            .map_err(|e| Error::Other(format!("field {i} refused: {e:?}")))?;
        kept.push(f);
    }
    Ok(raw::report(
        format!("kept {} fields of {size} bytes", kept.len()),
        0,
    ))
}

/// Request bodies written and never sent.
fn queued() -> Result<Instance, Error> {
    let url = raw::parse_url(&raw::setting("url")?)?;
    let count = raw::number("count", 64) as usize;
    let size = raw::number("size", 1 << 20) as usize;
    let bytes = vec![b'q'; size];
    let mut kept = Vec::with_capacity(count);
    for _ in 0..count {
        let request = raw::request(&Method::Post, &url, Fields::new())?;
        let body = request
            .body()
            .map_err(|()| Error::Other("body refused".into()))?;
        let stream = body
            .write()
            .map_err(|()| Error::Other("body stream refused".into()))?;
        raw::write_all(&stream, &bytes, false)?;
        kept.push((stream, body, request));
    }
    Ok(raw::report(
        format!("queued {} bodies of {size} bytes", kept.len()),
        0,
    ))
}

/// Responses requested all at once and never read.
fn responses() -> Result<Instance, Error> {
    let url = raw::parse_url(&raw::setting("url")?)?;
    let count = raw::number("count", 60) as usize;
    let hold_ms = raw::number("hold_ms", 500);
    // A body still open at `handle` makes the host send each request on a
    // task of its own, so all of them are in flight at once.
    let mut futures = Vec::with_capacity(count);
    let mut refused = 0;
    for _ in 0..count {
        let request = raw::request(&Method::Get, &url, Fields::new())?;
        let body = request
            .body()
            .map_err(|()| Error::Other("body refused".into()))?;
        match outgoing_handler::handle(request, None) {
            Ok(f) => futures.push((f, body)),
            Err(_) => refused += 1,
        }
    }
    let mut pending = Vec::with_capacity(futures.len());
    for (future, body) in futures {
        let _ = OutgoingBody::finish(body, None);
        pending.push(future);
    }
    let mut held = Vec::new();
    let mut errors = Vec::new();
    for future in &pending {
        match raw::wait(future) {
            Ok(response) => {
                let body = response.consume().ok();
                let stream = body.as_ref().and_then(|b| b.stream().ok());
                held.push((stream, body, response));
            }
            Err(e) => errors.push(format!("{e:?}")),
        }
    }
    wasip2::clocks::monotonic_clock::subscribe_duration(hold_ms * 1_000_000).block();
    let report = format!(
        "held {} unread responses; {} refused at handle; errors: {}",
        held.len(),
        refused,
        errors.join(", ")
    );
    for (stream, body, response) in held {
        drop(stream);
        drop(body);
        drop(response);
    }
    Ok(raw::report(report, 0))
}

raw::compute_instances_only!(Component);
common::kubernetes_unsupported!(Component);
