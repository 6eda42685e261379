//! The one `Linker` shared by every provider: WASI io/clocks/random/cli with
//! an empty context, wasi:http through the host's own `handle` and the
//! crate's `types` with host memory charged, and our host interfaces.
//! Filesystem and sockets are deliberately absent (and refused earlier by
//! `inspect`).

use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::p2::bindings::{cli, random};
use wasmtime_wasi::random::WasiRandom;

use super::state::HostState;
use crate::bindings::blueprint::provider;
use crate::capabilities::{ProviderImports, http_types};

/// Build the linker.
pub fn build(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut l = Linker::new(engine);
    // io, clocks, random, cli stdin/stdout/stderr (the proxy world's).
    wasmtime_wasi::p2::add_to_linker_proxy_interfaces_async(&mut l)?;
    // wasi:http: the crate's types (charged), our outgoing-handler.
    http_types::add_to_linker(&mut l, HostState::http_view)?;
    // What std on wasm32-wasip2 always imports besides the proxy world.
    cli::environment::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::exit::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_input::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_output::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stdin::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stdout::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    cli::terminal_stderr::add_to_linker::<HostState, WasiCli>(&mut l, HostState::cli)?;
    random::insecure::add_to_linker::<HostState, WasiRandom>(&mut l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<HostState, WasiRandom>(&mut l, |t| {
        t.ctx().ctx.random()
    })?;
    // Ours.
    provider::types::add_to_linker::<HostState, HasSelf<ProviderImports>>(
        &mut l,
        HostState::imports,
    )?;
    provider::log::add_to_linker::<HostState, HasSelf<ProviderImports>>(
        &mut l,
        HostState::imports,
    )?;
    provider::settings::add_to_linker::<HostState, HasSelf<ProviderImports>>(
        &mut l,
        HostState::imports,
    )?;
    provider::ssh::add_to_linker::<HostState, HasSelf<ProviderImports>>(
        &mut l,
        HostState::imports,
    )?;
    Ok(l)
}
