//! Test component `hostile_request`: one request built exactly as its
//! settings say, for the checks the host makes on a request before anything
//! reaches the network: methods it may not use (`TRACE`), an authority with
//! userinfo, a scheme other than http(s), `content-length` that does not
//! match the body or is set without one, forbidden headers, IPv6 forms that
//! hide a private IPv4, and bodies of any size finished before or after
//! `handle`. Whatever the host answers is the result. See
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
use wasip2::http::types::{Fields, OutgoingBody, Scheme};
use wasip2::io::streams::OutputStream;

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_request";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![describe::Capability::Instances],
            &[
                ("url", "where `list-instances` sends its one request"),
                (
                    "method",
                    "the method, as written (default GET; TRACE, PROPFIND...)",
                ),
                (
                    "authority",
                    "replaces the URL's authority; `none` leaves it unset",
                ),
                ("scheme", "replaces the URL's scheme (e.g. `ftp`)"),
                ("header", "`name=value` appended to the request's fields"),
                ("content_length", "a content-length header value"),
                (
                    "body_len",
                    "send a body of this many bytes (unset: no body)",
                ),
                (
                    "finish",
                    "`before` (default) or `after` handle finishes the body; `never` drops it",
                ),
            ],
        )
    }
}

impl Component {
    /// Builds and sends the request; the report is the response body, or
    /// the error the host gave (`denied(...)` / `other(<code>)`).
    fn run() -> Result<Instance, Error> {
        let mut url = raw::parse_url(&raw::setting("url")?)?;
        if let Some(s) = blueprint::provider::settings::get("scheme") {
            url.scheme = Scheme::Other(s);
        }
        let headers = Fields::new();
        if let Some(h) = blueprint::provider::settings::get("header") {
            let (name, value) = h.split_once('=').unwrap_or((h.as_str(), ""));
            headers
                .append(name, value.as_bytes())
                .map_err(|e| Error::Other(format!("header refused: {e:?}")))?;
        }
        if let Some(cl) = blueprint::provider::settings::get("content_length") {
            headers
                .append("content-length", cl.as_bytes())
                .map_err(|e| Error::Other(format!("content-length refused: {e:?}")))?;
        }
        let method = raw::method(
            &blueprint::provider::settings::get("method").unwrap_or_else(|| "GET".into()),
        );
        let request = wasip2::http::types::OutgoingRequest::new(headers);
        request
            .set_method(&method)
            .map_err(|()| Error::Other("method refused".into()))?;
        request
            .set_scheme(Some(&url.scheme))
            .map_err(|()| Error::Other("scheme refused".into()))?;
        match blueprint::provider::settings::get("authority").as_deref() {
            Some("none") => {}
            Some(a) => request
                .set_authority(Some(a))
                .map_err(|()| Error::Other("authority refused".into()))?,
            None => request
                .set_authority(Some(&url.authority))
                .map_err(|()| Error::Other("authority refused".into()))?,
        }
        request
            .set_path_with_query(Some(&url.path))
            .map_err(|()| Error::Other("path refused".into()))?;

        let body_len = blueprint::provider::settings::get("body_len").and_then(|v| v.parse().ok());
        let finish =
            blueprint::provider::settings::get("finish").unwrap_or_else(|| "before".into());
        let response = match body_len {
            None => raw::send(request)?,
            Some(len) => {
                let bytes = vec![b'b'; len];
                let body = request
                    .body()
                    .map_err(|()| Error::Other("body refused".into()))?;
                let stream = body
                    .write()
                    .map_err(|()| Error::Other("body stream refused".into()))?;
                match finish.as_str() {
                    "after" => {
                        let future = outgoing_handler::handle(request, None).map_err(raw::code)?;
                        let written = raw::write_all(&stream, &bytes, true);
                        drop::<OutputStream>(stream);
                        let finished = OutgoingBody::finish(body, None);
                        // The future's answer says most (the host reads the
                        // body before sending); then a write or finish error.
                        match (raw::wait(&future), written, finished) {
                            (Err(e), _, _) | (Ok(_), Err(e), _) => return Err(e),
                            (Ok(_), Ok(()), Err(c)) => return Err(raw::code(c)),
                            (Ok(r), Ok(()), Ok(())) => r,
                        }
                    }
                    "never" => {
                        raw::write_all(&stream, &bytes, false)?;
                        drop::<OutputStream>(stream);
                        drop(body);
                        raw::send(request)?
                    }
                    _ => {
                        raw::write_all(&stream, &bytes, false)?;
                        drop::<OutputStream>(stream);
                        // A finish error (content-length mismatch) does not
                        // stop us: the point is what `handle` makes of it.
                        let _ = OutgoingBody::finish(body, None);
                        raw::send(request)?
                    }
                }
            }
        };
        let (status, bytes) = raw::read(response)?;
        Ok(raw::report(
            String::from_utf8_lossy(&bytes).into_owned(),
            status,
        ))
    }
}

raw::compute_instances_only!(Component);
common::kubernetes_unsupported!(Component);
