//! Work the service runs in the background: asynchronous deploys and
//! terminations accepted with 202, the supervisor, the price refresher.
//!
//! Each runs in its own task inside a [`CallGate`], so on shutdown it can be
//! stopped at a moment when none of its provider calls is running
//! ([`Work::stop`]): a provider call is never cut short by the service (it
//! ends at its own deadline), and what the task recorded before it stopped is
//! in a state recovery understands (the tracker writes intent before every
//! call and the result right after).
//!
//! A deploy accepted but not yet recorded is remembered here
//! ([`Work::pending`]), and one that failed before anything was recorded is
//! kept for a while ([`Work::rejected`]), so `GET /v1/deployments/{id}` can
//! answer for it.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::ApiError;
use crate::telemetry::CallGate;

/// Rejected deploys remembered for `GET /v1/deployments/{id}`.
pub const REJECTED_KEPT: usize = 1024;

/// A deploy accepted (202) whose record may not exist yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Deployment id.
    pub id: String,
    /// Blueprint id.
    pub blueprint_id: String,
    /// Service id.
    pub service_id: String,
    /// Unix seconds.
    pub at: i64,
}

/// A deploy that failed before anything was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// What was accepted.
    pub accepted: Accepted,
    /// Why it failed.
    pub reason: String,
}

/// What a background task is, for limits and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// A deploy, termination or renewal a client asked for (counts against
    /// `[serve] max_in_flight`).
    Request,
    /// The supervisor, the price refresher (no limit).
    Background,
}

/// The background work. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Work {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tasks: TaskTracker,
    stop: CancellationToken,
    limit: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Requests running, by label (deployment id and what is done to it).
    running: HashMap<u64, String>,
    next: u64,
    pending: HashMap<String, Accepted>,
    rejected: VecDeque<Rejected>,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It ran to completion.
    Finished,
    /// It was stopped by [`Work::stop`], between two provider calls.
    Stopped,
}

impl Work {
    /// Work running at most `limit` requests at once.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
                limit,
                state: Mutex::new(State::default()),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `fut` in the background; `label` names it in logs
    /// (`deploy dep-...`). `on_end` is told how it ended. Refused (429) when
    /// `kind` is a request and the limit is reached, and (503) once stopping.
    pub fn spawn<F>(
        &self,
        kind: TaskKind,
        label: String,
        fut: F,
        on_end: impl FnOnce(Ended) + Send + 'static,
    ) -> Result<(), ApiError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.inner.stop.is_cancelled() || self.inner.tasks.is_closed() {
            return Err(ApiError::ShuttingDown);
        }
        let slot = {
            let mut s = self.state();
            if kind == TaskKind::Request && s.running.len() >= self.inner.limit {
                return Err(ApiError::TooBusy {
                    in_flight: self.inner.limit,
                });
            }
            s.next += 1;
            let slot = s.next;
            if kind == TaskKind::Request {
                s.running.insert(slot, label.clone());
            }
            slot
        };
        let gate = CallGate::new();
        let stop = self.inner.stop.clone();
        let work = self.clone();
        self.inner.tasks.spawn(async move {
            let run = gate.scope(fut);
            let ended = tokio::select! {
                () = run => Ended::Finished,
                () = async {
                    stop.cancelled().await;
                    gate.idle().await;
                } => Ended::Stopped,
            };
            if ended == Ended::Stopped {
                tracing::info!(target: "bpr::serve", "{label}: stopped between provider calls for shutdown; recovery resumes it");
            }
            work.state().running.remove(&slot);
            on_end(ended);
        });
        Ok(())
    }

    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.state().running.len()
    }

    /// Labels of the requests running now.
    pub fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state().running.values().cloned().collect();
        v.sort();
        v
    }

    /// Whether a request labelled `label` runs now.
    pub fn is_running(&self, label: &str) -> bool {
        self.state().running.values().any(|l| l == label)
    }

    /// Remembers an accepted deploy until its record exists.
    pub fn accept(&self, a: Accepted) {
        self.state().pending.insert(a.id.clone(), a);
    }

    /// Forgets an accepted deploy; `reason` keeps it as rejected.
    pub fn settle(&self, id: &str, reason: Option<String>) {
        let mut s = self.state();
        if let Some(accepted) = s.pending.remove(id)
            && let Some(reason) = reason
        {
            if s.rejected.len() == REJECTED_KEPT {
                s.rejected.pop_front();
            }
            s.rejected.push_back(Rejected { accepted, reason });
        }
    }

    /// The accepted deploy `id`, when its task still runs.
    pub fn pending(&self, id: &str) -> Option<Accepted> {
        self.state().pending.get(id).cloned()
    }

    /// The deploy `id`, when it failed before anything was recorded.
    pub fn rejected(&self, id: &str) -> Option<Rejected> {
        self.state()
            .rejected
            .iter()
            .rev()
            .find(|r| r.accepted.id == id)
            .cloned()
    }

    /// No new task from now on.
    pub fn close(&self) {
        self.inner.tasks.close();
    }

    /// Every task stops at its next moment without a provider call running.
    pub fn stop(&self) {
        self.close();
        self.inner.stop.cancel();
    }

    /// A token cancelled by [`Work::stop`].
    pub fn stop_token(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    /// Waits until every task ended (call [`Work::close`] first).
    pub async fn wait(&self) {
        self.inner.tasks.wait().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::telemetry::CallScope;

    #[tokio::test]
    async fn requests_past_the_limit_are_refused_with_429() {
        let work = Work::new(1);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        work.spawn(
            TaskKind::Request,
            "a".into(),
            async { drop(rx.await) },
            |_| {},
        )
        .unwrap();
        let e = work
            .spawn(TaskKind::Request, "b".into(), async {}, |_| {})
            .unwrap_err();
        assert!(matches!(e, ApiError::TooBusy { in_flight: 1 }));
        work.spawn(TaskKind::Background, "c".into(), async {}, |_| {})
            .unwrap();
        tx.send(()).unwrap();
        work.close();
        work.wait().await;
        assert_eq!(work.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_stopped_task_ends_only_once_its_provider_call_has_returned() {
        let work = Work::new(4);
        let (release, held) = tokio::sync::oneshot::channel::<()>();
        let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
        let finished_call = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = finished_call.clone();
        let (ended_tx, ended) = tokio::sync::oneshot::channel();
        work.spawn(
            TaskKind::Request,
            "deploy d".into(),
            async move {
                let call = CallScope::start("p", "create-instance");
                started_tx.send(()).unwrap();
                held.await.unwrap();
                call.finish::<()>(&Ok(()));
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                // The next step would be another call: never reached.
                std::future::pending::<()>().await;
            },
            move |e| {
                let _ = ended_tx.send(e);
            },
        )
        .unwrap();
        started.await.unwrap();
        work.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!finished_call.load(std::sync::atomic::Ordering::SeqCst));
        release.send(()).unwrap();
        assert_eq!(ended.await.unwrap(), Ended::Stopped);
        assert!(finished_call.load(std::sync::atomic::Ordering::SeqCst));
        work.wait().await;
        assert!(
            work.spawn(TaskKind::Request, "late".into(), async {}, |_| {})
                .is_err()
        );
    }

    #[test]
    fn a_rejected_deploy_is_remembered_and_a_settled_one_forgotten() {
        let work = Work::new(1);
        let a = |id: &str| Accepted {
            id: id.into(),
            blueprint_id: "1".into(),
            service_id: "2".into(),
            at: 0,
        };
        work.accept(a("x"));
        work.accept(a("y"));
        assert!(work.pending("x").is_some());
        work.settle("x", Some("no offer".into()));
        work.settle("y", None);
        assert!(work.pending("x").is_none());
        assert_eq!(work.rejected("x").unwrap().reason, "no offer");
        assert!(work.rejected("y").is_none());
    }
}
