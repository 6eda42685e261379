//! `HostState`, the `T` of every `Store<T>`: one per call.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::limits::MemoryLimiter;
use crate::capabilities::ProviderEnv;
use crate::capabilities::outbound::OutboundHttp;

/// Bytes of guest stderr kept per call (panic messages end up here).
pub const STDERR_CAP: usize = 64 * 1024;

/// State of one store.
pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHttp,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) env: Arc<ProviderEnv>,
    pub(crate) stderr: MemoryOutputPipe,
    pub(crate) log: crate::capabilities::guest_log::LogGate,
}

impl HostState {
    /// Fresh state: an empty WASI context (no env, args, preopens or network
    /// sockets; stderr into a capped memory pipe).
    pub fn new(env: Arc<ProviderEnv>, hooks: OutboundHttp, memory_bytes: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAP);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        Self {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks,
            limiter: MemoryLimiter::new(memory_bytes),
            log: crate::capabilities::guest_log::LogGate::new(env.clone()),
            env,
            stderr,
        }
    }

    /// What the guest wrote to stderr (lossy UTF-8).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
