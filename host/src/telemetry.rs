//! What the sandbox reports about itself while it works: provider calls
//! (latency by export and outcome, traps, deadline hits, calls in flight) and
//! outbound requests (by provider and status, denied included).
//!
//! The library records through the [`metrics`] facade, which does nothing
//! until the embedding process installs a recorder: `bpr serve` installs a
//! Prometheus one and serves it at `/metrics`; Blueprint Manager may install
//! its own. The metric names are the constants below.
//!
//! A [`CallGate`] lets a task ask "is one of my provider calls running right
//! now?": `bpr serve` stops an interrupted deployment only between provider
//! calls, never in the middle of one (see [`CallGate::idle`]).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

use crate::runtime::CallError;

/// Histogram: seconds per provider call, labels `provider`, `export`, `outcome`.
pub const CALL_DURATION: &str = "bpr_provider_call_duration_seconds";
/// Gauge: provider calls running now, label `provider`.
pub const CALLS_IN_FLIGHT: &str = "bpr_provider_calls_in_flight";
/// Counter: calls stopped by a trap (panic, unreachable, memory cap), labels
/// `provider`, `export`, `kind` (`trap` | `memory-cap`).
pub const SANDBOX_TRAPS: &str = "bpr_sandbox_traps_total";
/// Counter: calls stopped at their deadline, labels `provider`, `export`.
pub const DEADLINE_HITS: &str = "bpr_sandbox_deadline_hits_total";
/// Counter: outbound HTTP requests of components, labels `provider`, `status`
/// (the HTTP status code, `denied` by the allowlist, or `failed` without an
/// answer).
pub const OUTBOUND_REQUESTS: &str = "bpr_outbound_requests_total";

/// The `outcome` label of a finished call.
pub fn call_outcome<T>(result: &Result<T, CallError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(CallError::Provider(_)) => "error",
        Err(CallError::DeadlineExceeded { .. }) => "deadline",
        Err(CallError::MemoryExceeded { .. } | CallError::HostMemoryExceeded { .. }) => {
            "memory-cap"
        }
        Err(CallError::TooManyHandles { .. }) => "trap",
        Err(CallError::Trapped { .. }) => "trap",
        // Answered, but more than the host keeps (integrity's returned-data caps).
        Err(CallError::ReturnedTooMuch { .. }) => "too-large",
        Err(CallError::NotLoaded(_) | CallError::Unsupported { .. }) => "unavailable",
    }
}

/// One provider call being measured; [`CallScope::finish`] records it. Also
/// counts as "in a provider call" for the task's [`CallGate`], until dropped.
#[derive(Debug)]
pub struct CallScope {
    provider: String,
    export: &'static str,
    started: Instant,
    gate: Option<Arc<CallGate>>,
}

impl CallScope {
    /// A call of `export` on `provider` starts now.
    pub fn start(provider: &str, export: &'static str) -> Self {
        metrics::gauge!(CALLS_IN_FLIGHT, "provider" => provider.to_string()).increment(1.0);
        let gate = CURRENT_GATE.try_with(Arc::clone).ok();
        if let Some(g) = &gate {
            g.calls.fetch_add(1, Ordering::SeqCst);
        }
        Self {
            provider: provider.to_string(),
            export,
            started: Instant::now(),
            gate,
        }
    }

    /// The call ended with `result`.
    pub fn finish<T>(self, result: &Result<T, CallError>) {
        let outcome = call_outcome(result);
        let provider = self.provider.clone();
        metrics::histogram!(
            CALL_DURATION,
            "provider" => provider.clone(),
            "export" => self.export,
            "outcome" => outcome
        )
        .record(self.started.elapsed().as_secs_f64());
        match outcome {
            "deadline" => {
                metrics::counter!(DEADLINE_HITS, "provider" => provider, "export" => self.export)
                    .increment(1);
            }
            "trap" | "memory-cap" => {
                metrics::counter!(
                    SANDBOX_TRAPS,
                    "provider" => provider,
                    "export" => self.export,
                    "kind" => outcome
                )
                .increment(1);
            }
            _ => {}
        }
    }
}

impl Drop for CallScope {
    fn drop(&mut self) {
        metrics::gauge!(CALLS_IN_FLIGHT, "provider" => self.provider.clone()).decrement(1.0);
        if let Some(g) = &self.gate
            && g.calls.fetch_sub(1, Ordering::SeqCst) == 1
        {
            g.idle.notify_waiters();
        }
    }
}

/// Records one outbound request of `provider`: `status` when an answer came,
/// else `outcome` (`denied`, `failed`).
pub fn outbound_request(provider: &str, status: Option<u16>, outcome: &'static str) {
    // Codes outside 100..=599 are folded so a hostile server cannot mint labels.
    let status = match status {
        Some(s @ 100..=599) => s.to_string(),
        Some(_) => "other".to_string(),
        None => outcome.to_string(),
    };
    metrics::counter!(OUTBOUND_REQUESTS, "provider" => provider.to_string(), "status" => status)
        .increment(1);
}

tokio::task_local! {
    static CURRENT_GATE: Arc<CallGate>;
}

/// Counts the provider calls running inside the futures it scopes, so whoever
/// owns those futures can wait for a moment when none runs.
#[derive(Debug, Default)]
pub struct CallGate {
    calls: AtomicUsize,
    idle: Notify,
}

impl CallGate {
    /// A new gate with no call running.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Runs `fut` with its provider calls counted by this gate.
    pub fn scope<F: Future>(self: &Arc<Self>, fut: F) -> impl Future<Output = F::Output> + use<F> {
        CURRENT_GATE.scope(self.clone(), fut)
    }

    /// Provider calls running now inside the gate's futures.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Resolves once no provider call runs inside the gate's futures (at once
    /// when none does). The count is read when polled: a future selected
    /// against this one and dropped when it resolves is never dropped in the
    /// middle of a call.
    pub async fn idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a call ending in between is not missed.
            notified.as_mut().enable();
            if self.calls() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gate_is_idle_only_when_no_call_runs_inside_it() {
        let gate = CallGate::new();
        gate.idle().await;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let inner = gate.clone();
        let task = tokio::spawn(gate.scope(async move {
            let scope = CallScope::start("p", "create-instance");
            assert_eq!(inner.calls(), 1);
            rx.await.unwrap();
            scope.finish::<()>(&Ok(()));
        }));
        while gate.calls() == 0 {
            tokio::task::yield_now().await;
        }
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a call is still running");
        tx.send(()).unwrap();
        task.await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("idle once the call ended")
            .unwrap();
    }

    #[test]
    fn a_call_outside_any_gate_is_only_measured() {
        let scope = CallScope::start("p", "describe");
        assert!(scope.gate.is_none());
        scope.finish::<()>(&Err(CallError::NotLoaded("p".into())));
    }

    #[test]
    fn outcomes_name_how_a_call_ended() {
        let dl: Result<(), _> = Err(CallError::DeadlineExceeded {
            provider: "p".into(),
            op: "x",
            deadline_ms: 1,
        });
        assert_eq!(call_outcome(&dl), "deadline");
        assert_eq!(call_outcome::<()>(&Ok(())), "ok");
    }
}
