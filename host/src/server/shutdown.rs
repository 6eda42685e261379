//! Stopping on SIGTERM or SIGINT without losing anything.
//!
//! 1. **Stop taking work.** `/readyz` answers 503, and so does every request
//!    that would start work (deploy, terminate, renew, plan); reads go on.
//!    The supervisor finishes the pass it is in and does not start another.
//! 2. **Let work finish** for `[serve] drain_secs` (default 10 s).
//! 3. **Stop what is left between two provider calls**: a task whose provider
//!    call is running finishes that call (each call ends by its own deadline)
//!    and stops before its next one. The tracker has written the intent of
//!    every step before its call and the result right after, so a deployment
//!    stopped here is `provisioning`/`deploying`/`terminating` with what it
//!    holds recorded: the next start's recovery adopts or deletes it.
//! 4. The event streams end, the listener closes, the process exits 0.
//!
//! A second signal skips step 2; a third stops waiting in step 3.

use std::time::{Duration, Instant};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::state::AppState;

/// SIGTERM and SIGINT.
#[derive(Debug)]
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Listens from now on (install before anything slow, so an early signal
    /// is not the default "terminate").
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal's name.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// What the drain left behind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Tasks stopped between provider calls (their records resume at recovery).
    pub stopped: Vec<String>,
    /// Tasks still in a provider call when the hard limit passed.
    pub abandoned: Vec<String>,
}

/// Steps 1-3 above. `supervisor` is cancelled to end the supervisor loop after
/// its pass; `hard` bounds step 3 (the longest provider call deadline and a
/// margin).
pub async fn drain(
    state: &AppState,
    signals: &mut Signals,
    supervisor: &CancellationToken,
    hard: Duration,
) -> DrainReport {
    state.begin_drain();
    supervisor.cancel();
    let work = state.work();
    let drain = state.settings().drain;
    let started = Instant::now();
    let running = work.running();
    if !running.is_empty() {
        tracing::info!(
            target: "bpr::serve",
            "draining: {} request(s) in flight, up to {} s to finish: {}",
            running.len(),
            drain.as_secs(),
            running.join(", ")
        );
    }
    // Step 2: requests may finish on their own.
    let finished = async {
        while work.in_flight() > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        () = finished => {}
        () = tokio::time::sleep(drain) => {}
        s = signals.next() => tracing::info!(target: "bpr::serve", "{s} again: stopping work now"),
    }
    // Step 3: the rest stops between provider calls.
    let stopped = work.running();
    work.stop();
    tokio::select! {
        () = work.wait() => {}
        () = tokio::time::sleep(hard) => {}
        s = signals.next() => tracing::warn!(target: "bpr::serve", "{s} again: not waiting for provider calls in flight"),
    }
    let abandoned = work.running();
    let report = DrainReport {
        stopped: stopped
            .into_iter()
            .filter(|l| !abandoned.contains(l))
            .collect(),
        abandoned,
    };
    if !report.stopped.is_empty() {
        tracing::info!(target: "bpr::serve", "stopped between provider calls (recovery resumes them): {}", report.stopped.join(", "));
    }
    if !report.abandoned.is_empty() {
        tracing::warn!(target: "bpr::serve", "still in a provider call after {} s, left to recovery: {}", started.elapsed().as_secs(), report.abandoned.join(", "));
    }
    report
}
