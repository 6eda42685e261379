//! The host-memory budget of one call: every byte the host holds on a
//! guest's behalf for wasi:http (header fields, strings of a request, request
//! bodies queued or in flight, response bytes not yet read by the guest) is
//! charged here, and a charge past the budget fails.
//!
//! Charges are counted with atomics because some are released on other
//! threads (a body dropped by a spawned request task).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A charge did not fit in the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "host memory budget of {budget} bytes exceeded: the call already holds {used} bytes and asked for {wanted} more"
)]
pub struct BudgetExceeded {
    /// The budget.
    pub budget: usize,
    /// Held before the charge.
    pub used: usize,
    /// The refused charge.
    pub wanted: usize,
}

/// The ledger of one call.
#[derive(Debug)]
pub struct HostMemory {
    budget: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    exceeded: AtomicBool,
}

impl HostMemory {
    /// A ledger allowing `budget` bytes.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            exceeded: AtomicBool::new(false),
        }
    }

    /// Charge `bytes`, or refuse (and remember that the budget was hit).
    pub fn charge(&self, bytes: usize) -> Result<(), BudgetExceeded> {
        if bytes == 0 {
            return Ok(());
        }
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let next = used.saturating_add(bytes);
            if next > self.budget {
                self.exceeded.store(true, Ordering::Relaxed);
                return Err(BudgetExceeded {
                    budget: self.budget,
                    used,
                    wanted: bytes,
                });
            }
            match self
                .used
                .compare_exchange_weak(used, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    return Ok(());
                }
                Err(now) => used = now,
            }
        }
    }

    /// Give back `bytes` (never below zero).
    pub fn release(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most ever held at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// The budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Whether a charge was ever refused: the call then fails, whatever the
    /// guest makes of the error it got.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }
}

/// Bytes charged for as long as this value lives.
#[derive(Debug)]
pub struct Charge {
    memory: Arc<HostMemory>,
    bytes: usize,
}

impl Charge {
    /// Charge `bytes` to `memory` until the returned value is dropped.
    pub fn new(memory: &Arc<HostMemory>, bytes: usize) -> Result<Self, BudgetExceeded> {
        memory.charge(bytes)?;
        Ok(Self {
            memory: memory.clone(),
            bytes,
        })
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.memory.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_past_the_budget_is_refused_and_remembered() {
        let m = HostMemory::new(100);
        m.charge(60).unwrap();
        let err = m.charge(41).unwrap_err();
        assert_eq!(
            err,
            BudgetExceeded {
                budget: 100,
                used: 60,
                wanted: 41
            }
        );
        assert!(m.exceeded());
        assert_eq!(m.used(), 60);
        m.charge(40).unwrap();
        assert_eq!(m.peak(), 100);
    }

    #[test]
    fn a_release_never_goes_below_zero() {
        let m = HostMemory::new(10);
        m.charge(5).unwrap();
        m.release(50);
        assert_eq!(m.used(), 0);
    }

    #[test]
    fn a_charge_guard_gives_its_bytes_back_when_dropped() {
        let m = Arc::new(HostMemory::new(10));
        let c = Charge::new(&m, 8).unwrap();
        assert!(Charge::new(&m, 3).is_err());
        drop(c);
        assert_eq!(m.used(), 0);
        assert!(Charge::new(&m, 10).is_ok());
    }
}
