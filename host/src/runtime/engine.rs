//! The wasmtime `Engine` (epoch interruption on) and the thread that ticks
//! its epoch, which drives every per-call deadline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the epoch advances; the granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Dirty bytes of a linear memory reset in place when its slot is returned;
/// a guest that dirtied more gets the rest madvised away. Covers a Rust
/// provider's working set (stack top, data, heap) with room to spare.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;

/// Bytes of a table reset in place when its slot is returned.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// An engine plus its epoch ticker, stopped on drop.
pub struct EngineHandle {
    engine: wasmtime::Engine,
    stop: Arc<AtomicBool>,
}

impl EngineHandle {
    /// Build the engine used for every component, with a pooling allocator
    /// sized for `max_calls` concurrent calls whose guests may use up to
    /// `max_memory` bytes of linear memory each.
    pub fn new(max_calls: u32, max_memory: usize) -> wasmtime::Result<Self> {
        let mut cfg = wasmtime::Config::new();
        cfg.wasm_component_model(true);
        cfg.epoch_interruption(true);
        // Pre-reserved instance slots: instantiation without mmap/munmap per
        // call (one store per call makes this the hot path).
        let mut pool = wasmtime::PoolingAllocationConfig::default();
        pool.total_component_instances(max_calls)
            // A Rust wasip2 component has several core instances; wasmtime's
            // measured guidance is at least 5x component instances.
            .total_core_instances(max_calls.saturating_mul(8))
            .max_core_instances_per_component(32)
            .total_memories(max_calls.saturating_mul(2))
            .max_memories_per_component(4)
            .total_tables(max_calls.saturating_mul(8))
            .total_stacks(max_calls)
            .max_memory_size(max_memory);
        // Reset a returned slot with memset instead of madvise(DONTNEED):
        // in a multi-threaded process every madvise is a TLB shootdown IPI to
        // the other cores, which cost more than the whole instantiation here
        // (instantiate + call 47 -> 26 us in an A/B). Tables are reset only up to their
        // used size, so this is cheap everywhere.
        pool.table_keep_resident(TABLE_KEEP_RESIDENT);
        // Memories only with PAGEMAP_SCAN (Linux >= 6.7): it finds the pages a
        // guest dirtied and resets just those. Without it wasmtime would
        // memset the lowest bytes whether dirty or not, slower than madvise.
        if wasmtime::PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(wasmtime::Enabled::Auto)
                .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT);
        }
        cfg.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
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
