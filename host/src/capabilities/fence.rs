//! Fences on a task's provider calls. While a task holds a deployment's lease
//! (`crate::tracking`, on PostgreSQL), the lease registers a check here under
//! the task's id; a provider call's store, made on that task, takes the checks
//! registered for it, and every outbound request of the call passes them right
//! before it leaves ([`super::outbound`]). So a replica paused (SIGSTOP) in the
//! middle of a provider call that creates several cloud objects sends none of
//! the remaining requests once its lease has lapsed, even though the guest's
//! call was already under way: the cloud sees nothing more from it.
//!
//! Keyed by task, not by thread: a tokio task moves between worker threads.
//! Code outside a task (a `block_on` future: the `bpr` CLI) registers nothing
//! and its calls are not fenced (the OS file lock still keeps other processes
//! of its host off the deployment).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

/// A check a call's requests must pass: `Err(why)` stops them.
pub type FenceCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

type Registry = HashMap<tokio::task::Id, Vec<(u64, FenceCheck)>>;

static BY_TASK: LazyLock<Mutex<Registry>> = LazyLock::new(Default::default);
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn registry() -> MutexGuard<'static, Registry> {
    BY_TASK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A check registered for a task; removed when dropped (wherever).
#[derive(Debug)]
pub struct FenceRegistration {
    task: tokio::task::Id,
    key: u64,
}

impl Drop for FenceRegistration {
    fn drop(&mut self) {
        let mut all = registry();
        if let Some(checks) = all.get_mut(&self.task) {
            checks.retain(|(k, _)| *k != self.key);
            if checks.is_empty() {
                all.remove(&self.task);
            }
        }
    }
}

/// Register `check` for the current task's provider calls; `None` outside a
/// tokio task (nothing is fenced there).
pub fn register_fence(check: FenceCheck) -> Option<FenceRegistration> {
    let task = tokio::task::try_id()?;
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    registry().entry(task).or_default().push((key, check));
    Some(FenceRegistration { task, key })
}

/// The checks a call made now, on this task, must pass.
#[derive(Clone, Default)]
pub(crate) struct CallFence(Vec<FenceCheck>);

impl std::fmt::Debug for CallFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallFence({} check(s))", self.0.len())
    }
}

impl CallFence {
    /// The checks registered for the current task (none outside a task).
    pub(crate) fn current() -> Self {
        let Some(task) = tokio::task::try_id() else {
            return Self::default();
        };
        Self(
            registry()
                .get(&task)
                .map(|v| v.iter().map(|(_, c)| c.clone()).collect())
                .unwrap_or_default(),
        )
    }

    /// `Err(why)` when one of the checks fails.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.0.iter().try_for_each(|c| c())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[tokio::test]
    async fn a_check_registered_on_a_task_fences_only_that_tasks_calls_until_dropped() {
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        let (registered, other) = tokio::spawn(async move {
            let reg = register_fence(Arc::new(move || {
                if flag.load(Ordering::SeqCst) {
                    Err("the lease lapsed".into())
                } else {
                    Ok(())
                }
            }))
            .expect("inside a task");
            let fence = CallFence::current();
            // Another task sees nothing of it.
            let other = tokio::spawn(async { CallFence::current().0.len() })
                .await
                .unwrap();
            (Some((reg, fence)), other)
        })
        .await
        .unwrap();
        assert_eq!(other, 0);
        let (reg, fence) = registered.unwrap();
        assert!(fence.check().is_ok());
        lost.store(true, Ordering::SeqCst);
        assert_eq!(fence.check().unwrap_err(), "the lease lapsed");
        let task = reg.task;
        drop(reg);
        assert!(!registry().contains_key(&task), "the registration is gone");
    }

    #[test]
    fn outside_a_task_nothing_is_registered_or_fenced() {
        assert!(register_fence(Arc::new(|| Err("x".into()))).is_none());
        assert!(CallFence::current().check().is_ok());
    }
}
