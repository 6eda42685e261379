//! The wasmtime `Engine` (epoch interruption on) and the thread that ticks
//! its epoch, which drives every per-call deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the epoch advances; the granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// An engine plus its epoch ticker, stopped on drop.
pub struct EngineHandle {
    engine: wasmtime::Engine,
    stop: Arc<AtomicBool>,
}

impl EngineHandle {
    /// Build the engine used for every component.
    pub fn new() -> wasmtime::Result<Self> {
        let mut cfg = wasmtime::Config::new();
        cfg.wasm_component_model(true);
        cfg.epoch_interruption(true);
        let engine = wasmtime::Engine::new(&cfg)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (e, s) = (engine.clone(), stop.clone());
        std::thread::Builder::new()
            .name("bpr-epoch".into())
            .spawn(move || {
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    e.increment_epoch();
                }
            })
            .map_err(|e| wasmtime::Error::msg(format!("cannot start epoch thread: {e}")))?;
        Ok(Self { engine, stop })
    }

    /// The engine.
    pub fn engine(&self) -> &wasmtime::Engine {
        &self.engine
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
