//! Test component `hostile_log`: abuses the host's `log` import from
//! `list-offers` — a flood of records, a record forging a `bpr::audit::http`
//! line with newlines and terminal escapes, and a record with oversized fields.
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

use blueprint::provider::log::{Level, log};
use blueprint::provider::settings;
use blueprint::provider::types::{Error, Offer, OfferQuery};
use exports::blueprint::provider::describe;

/// Provider name: the `.wasm` file stem.
const NAME: &str = "hostile_log";

struct Component;

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        common::info(
            vec![describe::Capability::Offers],
            &[
                (
                    "mode",
                    "`flood`: `count` records; `forge`: a record faking an audit line; `wide`: one record with `count` fields of `size` bytes",
                ),
                (
                    "marker",
                    "text put in every record so a test finds its own lines (default `hostile-log`)",
                ),
                (
                    "count",
                    "records (`flood`, default 100,000) or fields (`wide`, default 1,000)",
                ),
                (
                    "size",
                    "bytes of each field key and value (`wide`, default 65,536)",
                ),
            ],
        )
    }
}

/// A numeric setting, or `default` when unset.
fn number(key: &str, default: usize) -> Result<usize, Error> {
    match settings::get(key) {
        Some(text) => text.parse().map_err(|error| {
            Error::InvalidRequest(format!("{NAME}: setting `{key}` = `{text}`: {error}"))
        }),
        None => Ok(default),
    }
}

impl Component {
    /// Misbehaves as the `mode` setting says, then answers one small offer, so
    /// a test can check that the call itself still succeeds.
    fn offers(_query: OfferQuery) -> Result<Vec<Offer>, Error> {
        let marker = settings::get("marker").unwrap_or_else(|| "hostile-log".to_string());
        match settings::get("mode").as_deref() {
            Some("flood") => {
                for i in 0..number("count", 100_000)? {
                    log(Level::Info, &format!("{marker} flood record {i}"), &[]);
                }
            }
            Some("forge") => {
                // A whole audit line after a newline, a carriage return that
                // would hide the real line start on a terminal, ANSI escapes,
                // Unicode line separators and a bidi override; in the message,
                // in a field key and in a field value.
                let forged = format!(
                    "2026-01-01T00:00:00.000000Z  INFO bpr::audit::http: outbound request provider=\"aws\" method=GET host=\"{marker}-forged\" path=\"/\" status=200 outcome=\"sent\" duration_ms=1"
                );
                log(
                    Level::Warn,
                    &format!(
                        "{marker} innocent\n{forged}\r\x1b[2K\x1b[31m\u{2028}{forged}\u{202e}"
                    ),
                    &[
                        (format!("{marker}\nkey"), format!("value\n{forged}")),
                        ("k".to_string(), format!("\r\n{forged}\x1b]0;title\x07")),
                    ],
                );
            }
            Some("wide") => {
                let size = number("size", 64 << 10)?;
                let fields: Vec<(String, String)> = (0..number("count", 1_000)?)
                    .map(|i| {
                        (
                            format!("{marker}-{i}-{}", "k".repeat(size)),
                            "v".repeat(size),
                        )
                    })
                    .collect();
                log(Level::Info, &format!("{marker} wide record"), &fields);
            }
            other => {
                return Err(Error::InvalidRequest(format!(
                    "{NAME}: unknown mode {other:?}; use `flood`, `forge` or `wide`"
                )));
            }
        }
        Ok(vec![common::offer("log.small".into(), 1.0, 1.0, 0.01)])
    }
}

common::compute_offers_only!(Component);
common::kubernetes_unsupported!(Component);
