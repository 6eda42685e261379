//! Per-store resource limits: a memory cap that traps on growth failure and
//! records that it did, so the caller can report `MemoryExceeded` rather than
//! a generic trap.

/// Memory limiter of one store (one call).
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    in_use: usize,
    exceeded: bool,
}

impl MemoryLimiter {
    /// A limiter allowing `max_bytes` of linear memory in total.
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            in_use: 0,
            exceeded: false,
        }
    }

    /// Whether a growth was refused.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }

    /// The cap in bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }
}

/// Table entries allowed per table: far above what a Rust component needs.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.in_use - current.min(self.in_use) + desired;
        if total > self.max_bytes {
            self.exceeded = true;
            // Returning an error traps the guest (trap on grow failure): a
            // Rust guest would otherwise abort with a less useful message.
            return Err(wasmtime::Error::msg(format!(
                "memory cap of {} MiB exceeded (growing to {} MiB)",
                self.max_bytes >> 20,
                total >> 20
            )));
        }
        self.in_use = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
