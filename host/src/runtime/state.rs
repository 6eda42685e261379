//! `HostState`, the `T` of every `Store<T>`: one per call.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::limits::MemoryLimiter;
use crate::capabilities::HttpCall;
use crate::capabilities::MAX_HANDLES;
use crate::capabilities::OutboundHttp;
use crate::capabilities::http_types::HttpView;
use crate::capabilities::{ProviderEnv, ProviderImports};

/// Bytes of guest stderr kept per call (panic messages end up here).
pub const STDERR_CAP: usize = 64 * 1024;

/// State of one store.
pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) hooks: OutboundHttp,
    pub(crate) call: HttpCall,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) imports: ProviderImports,
    pub(crate) stderr: MemoryOutputPipe,
}

impl HostState {
    /// Fresh state: an empty WASI context (no env, args, preopens or network
    /// sockets; stderr into a capped memory pipe), a resource table of at
    /// most [`MAX_HANDLES`] entries.
    pub(crate) fn new(env: Arc<ProviderEnv>, hooks: OutboundHttp, memory_bytes: usize) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAP);
        let wasi = WasiCtx::builder().stderr(stderr.clone()).build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_HANDLES);
        Self {
            table,
            wasi,
            http: WasiHttpCtx::new(),
            call: hooks.call(),
            hooks,
            limiter: MemoryLimiter::new(memory_bytes),
            imports: ProviderImports::new(env),
            stderr,
        }
    }

    /// What the guest wrote to stderr (lossy UTF-8).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_string()
    }

    /// Whether the call held more host memory (or handles) than it may: it
    /// then fails with [`crate::CallError::HostMemoryExceeded`].
    pub fn host_memory_exceeded(&self) -> bool {
        self.call.memory().exceeded()
    }

    /// The call's host-memory budget in bytes, and the most it held.
    pub fn host_memory(&self) -> (usize, usize) {
        let m = self.call.memory();
        (m.budget(), m.peak())
    }

    /// The view the wasi:http imports work on.
    pub(crate) fn http_view(&mut self) -> HttpView<'_> {
        HttpView {
            http: WasiHttpCtxView {
                ctx: &mut self.http,
                table: &mut self.table,
                hooks: &mut self.hooks,
            },
            call: &mut self.call,
        }
    }

    /// The state of the `log`, `settings` and `ssh` imports.
    pub(crate) fn imports(&mut self) -> &mut ProviderImports {
        &mut self.imports
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
