//! The per-call side of outbound HTTP: the call's host-memory ledger, its
//! request count and in-flight slots ([`CallShared`], shared with the
//! requests it started), and which wasi:http handles hold how many charged
//! bytes ([`HttpCall`], owned by the store).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::Semaphore;
use wasmtime_wasi_http::WasiBody;

use super::host_memory::{BudgetExceeded, HostMemory};
use super::http_body::BodyQueue;
use super::outbound::OutboundContext;

/// What a call's requests share with it (and outlive it with, briefly).
#[derive(Debug)]
pub struct CallShared {
    /// The call's host-memory ledger.
    pub memory: Arc<HostMemory>,
    /// The leases the call was made under: every request checks them before
    /// it leaves (see `fence.rs`).
    pub(crate) fence: super::CallFence,
    requests: AtomicU32,
    slots: Arc<Semaphore>,
}

impl CallShared {
    /// State for a new call of a provider with `ctx`.
    pub fn new(ctx: &OutboundContext) -> Arc<Self> {
        Arc::new(Self {
            memory: Arc::new(HostMemory::new(ctx.host_memory)),
            // Made on the calling task, before any request is spawned.
            fence: super::CallFence::current(),
            requests: AtomicU32::new(0),
            slots: Arc::new(Semaphore::new(
                ctx.limits.max_concurrent_requests_per_call as usize,
            )),
        })
    }

    /// Count one more request; false once the call's total is used up.
    pub fn count_request(&self, max: u32) -> bool {
        self.requests.fetch_add(1, Ordering::Relaxed) < max
    }

    /// Requests counted so far.
    pub fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }

    /// One of the call's in-flight slots, if one is free.
    pub fn try_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }
}

/// A store's bookkeeping of charged wasi:http handles.
#[derive(Debug)]
pub struct HttpCall {
    /// The provider's outbound context.
    pub ctx: Arc<OutboundContext>,
    /// What the call's requests share.
    pub shared: Arc<CallShared>,
    /// Bytes charged per table entry (fields, requests, responses), by rep.
    held: HashMap<u32, usize>,
    /// The byte queue of each open outgoing body, by the body's rep.
    queues: HashMap<u32, Arc<BodyQueue>>,
    /// Responses `handle` awaited inline, by the rep of the
    /// future-incoming-response the guest holds, until it takes them.
    ready: HashMap<u32, Ready>,
}

/// The outcome of a request awaited inline.
pub type Ready = Result<http::Response<WasiBody>, wasmtime_wasi_http::Error>;

impl HttpCall {
    /// Bookkeeping for one call.
    pub fn new(ctx: Arc<OutboundContext>, shared: Arc<CallShared>) -> Self {
        Self {
            ctx,
            shared,
            held: HashMap::new(),
            queues: HashMap::new(),
            ready: HashMap::new(),
        }
    }

    /// The call's ledger.
    pub fn memory(&self) -> &Arc<HostMemory> {
        &self.shared.memory
    }

    /// Charge `bytes` more to the entry `rep`.
    pub fn charge(&mut self, rep: u32, bytes: usize) -> Result<(), BudgetExceeded> {
        self.shared.memory.charge(bytes)?;
        *self.held.entry(rep).or_default() += bytes;
        Ok(())
    }

    /// Set the entry's charge to `bytes` (more or less than before).
    pub fn set(&mut self, rep: u32, bytes: usize) -> Result<(), BudgetExceeded> {
        let before = self.held.get(&rep).copied().unwrap_or(0);
        if bytes > before {
            self.charge(rep, bytes - before)
        } else {
            self.shared.memory.release(before - bytes);
            self.held.insert(rep, bytes);
            Ok(())
        }
    }

    /// The entry is gone: give back its charge.
    pub fn release(&mut self, rep: u32) {
        if let Some(bytes) = self.held.remove(&rep) {
            self.shared.memory.release(bytes);
        }
    }

    /// The entry's contents moved into entry `to` (fields into a request).
    pub fn transfer(&mut self, from: u32, to: u32) {
        if let Some(bytes) = self.held.remove(&from) {
            *self.held.entry(to).or_default() += bytes;
        }
    }

    /// Remember the queue of the outgoing body `rep`.
    pub fn add_queue(&mut self, rep: u32, queue: Arc<BodyQueue>) {
        self.queues.insert(rep, queue);
    }

    /// The queue of the outgoing body `rep`.
    pub fn queue(&self, rep: u32) -> Option<Arc<BodyQueue>> {
        self.queues.get(&rep).cloned()
    }

    /// The outgoing body `rep` is gone (finished or dropped).
    pub fn remove_queue(&mut self, rep: u32) {
        self.queues.remove(&rep);
    }

    /// Keep the outcome of a request awaited inline for the guest's future `rep`.
    pub fn put_ready(&mut self, rep: u32, outcome: Ready) {
        self.ready.insert(rep, outcome);
    }

    /// Take the outcome kept for the future `rep`, if any.
    pub fn take_ready(&mut self, rep: u32) -> Option<Ready> {
        self.ready.remove(&rep)
    }
}
