//! [`Leadership`]: one replica at a time runs the supervisor, chosen through
//! the [`SUPERVISOR_LEASE`] lease.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::{CoordinationError, Result};
use super::lease::Lease;
use super::store::LeaseStore;

/// The lease the supervisor's leader holds.
pub const SUPERVISOR_LEASE: &str = "supervisor";

/// Timing of the election (`[coordination]` in the operator config).
///
/// ```toml
/// [coordination]
/// lease_secs = 15    # a leader that stops renewing hands over after this
/// renew_secs = 5     # how often every replica renews or tries to take it
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderSettings {
    /// How long the lease lasts unless renewed: the longest a dead leader's
    /// work waits for another replica. Default 15 s.
    pub lease: Duration,
    /// Time between two renewals (or attempts to take the lease); well under
    /// `lease`, so one slow round does not lose it. Default 5 s.
    pub renew: Duration,
}

impl Default for LeaderSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew: Duration::from_secs(5),
        }
    }
}

/// This replica's name in leases: `BPR_REPLICA_ID` (the pod's name on
/// Kubernetes), else the host name; with the process id and a random
/// suffix, so a restarted replica is never mistaken for its predecessor.
pub fn replica_id() -> String {
    let base = std::env::var("BPR_REPLICA_ID")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().chars().take(63).collect::<String>())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "bpr".into());
    format!(
        "{base}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// Whether this replica leads the supervisor, kept by [`Leadership::run`];
/// cheap to clone.
#[derive(Clone)]
pub struct Leadership {
    inner: Arc<Inner>,
}

struct Inner {
    store: LeaseStore,
    owner: String,
    settings: LeaderSettings,
    /// The lease held, with the moment (monotonic) its last acquisition or
    /// renewal was asked: the database's expiry is at least a lease after it.
    held: Mutex<Option<(Lease, Instant)>>,
    term: watch::Sender<Option<i64>>,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("owner", &self.inner.owner)
            .field("term", &self.term())
            .finish()
    }
}

impl Leadership {
    /// A candidate named `owner`, not leading until [`Leadership::step`] (or
    /// [`Leadership::run`]) takes the lease.
    pub fn new(store: LeaseStore, owner: String, settings: LeaderSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                owner,
                settings,
                held: Mutex::new(None),
                term: watch::channel(None).0,
            }),
        }
    }

    /// This replica's name in the lease.
    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// The election's timing.
    pub fn settings(&self) -> &LeaderSettings {
        &self.inner.settings
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Option<(Lease, Instant)>> {
        self.inner.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, lease: Option<(Lease, Instant)>) {
        let term = lease.as_ref().map(|(l, _)| l.token);
        *self.held() = lease;
        self.inner.term.send_if_modified(|t| {
            let changed = *t != term;
            *t = term;
            changed
        });
    }

    /// The term (fencing token) this replica leads in, as far as it knows
    /// without asking the database: `None` once a lease has passed on its own
    /// monotonic clock since it last asked for it (a paused process knows
    /// that much on waking).
    pub fn term(&self) -> Option<i64> {
        self.held()
            .as_ref()
            .filter(|(l, asked)| !self.lapsed(l, *asked))
            .map(|(l, _)| l.token)
    }

    fn lapsed(&self, lease: &Lease, asked: Instant) -> bool {
        match self.inner.store.injected_now_ms() {
            Some(now) => lease.expires_at_ms <= now,
            None => asked.elapsed() >= self.inner.settings.lease,
        }
    }

    /// True while [`Leadership::term`] is some.
    pub fn is_leader(&self) -> bool {
        self.term().is_some()
    }

    /// Changes of the term (`None`: not leading).
    pub fn subscribe(&self) -> watch::Receiver<Option<i64>> {
        self.inner.term.subscribe()
    }

    /// One round: renew the lease this replica holds, or try to take it.
    /// Returns the term it leads in after the round. A failed renewal (the
    /// lease lapsed, another replica took it, the database did not answer)
    /// loses leadership at once.
    pub fn step(&self) -> Option<i64> {
        let ttl = self.inner.settings.lease.as_millis().min(i64::MAX as u128) as i64;
        let held = self.held().clone().map(|(l, _)| l);
        let asked = Instant::now();
        let outcome = match &held {
            Some(lease) => self.inner.store.renew(lease, ttl),
            None => self
                .inner
                .store
                .acquire(SUPERVISOR_LEASE, &self.inner.owner, ttl),
        };
        match outcome {
            Ok(lease) => {
                if held.as_ref().map(|l| l.token) != Some(lease.token) {
                    tracing::info!(
                        target: "bpr::leader",
                        owner = %self.inner.owner,
                        term = lease.token,
                        "this replica now leads the supervisor"
                    );
                }
                self.set(Some((lease, asked)));
            }
            Err(CoordinationError::HeldElsewhere { .. }) => self.set(None),
            Err(e) => {
                if held.is_some() {
                    tracing::warn!(target: "bpr::leader", owner = %self.inner.owner, "leadership lost: {e}");
                } else {
                    tracing::warn!(target: "bpr::leader", owner = %self.inner.owner, "cannot take part in the election: {e}");
                }
                self.set(None);
            }
        }
        self.term()
    }

    /// `Ok(term)` when this replica still leads, asked of the database:
    /// what the supervisor calls before each side effect. A lease that lapsed
    /// or moved on fails with [`CoordinationError::Fenced`] (and leadership is
    /// dropped at once); a replica that does not lead with
    /// [`CoordinationError::NotLeader`].
    pub fn check(&self) -> Result<i64> {
        let not_leader = || CoordinationError::NotLeader {
            owner: self.inner.owner.clone(),
        };
        let (lease, asked) = self.held().clone().ok_or_else(not_leader)?;
        if self.lapsed(&lease, asked) {
            self.set(None);
            return Err(not_leader());
        }
        match self.inner.store.check(&lease) {
            Ok(()) => Ok(lease.token),
            Err(e) => {
                tracing::warn!(target: "bpr::leader", owner = %self.inner.owner, "leadership lost: {e}");
                self.set(None);
                Err(e)
            }
        }
    }

    /// Renew or take the lease every [`LeaderSettings::renew`] until
    /// `shutdown` completes, then give it up (another replica takes over at
    /// once instead of after the lease).
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            self.step();
            tokio::select! {
                () = tokio::time::sleep(self.inner.settings.renew) => {}
                () = &mut shutdown => break,
            }
        }
        let held = self.held().clone();
        self.set(None);
        if let Some((lease, _)) = held
            && let Err(e) = self.inner.store.release(&lease)
        {
            tracing::warn!(target: "bpr::leader", "cannot release the supervisor lease: {e}");
        }
    }

    /// Run `work` while this replica leads: started when it becomes leader,
    /// dropped (stopped at its next await) when it stops leading, started
    /// again on the next term. Returns when `work` returns or the election
    /// ends.
    pub async fn while_leading<F, Fut>(&self, work: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut rx = self.subscribe();
        loop {
            while rx.borrow_and_update().is_none() {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            let lost = async {
                loop {
                    if rx.changed().await.is_err() || rx.borrow().is_none() {
                        return;
                    }
                }
            };
            tokio::select! {
                () = work() => return,
                () = lost => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::db::Database;

    fn replicas(n: usize) -> (tempfile::TempDir, Arc<AtomicI64>, Vec<Leadership>) {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicI64::new(1_000_000));
        let settings = LeaderSettings {
            lease: Duration::from_millis(3_000),
            renew: Duration::from_millis(1_000),
        };
        let all = (0..n)
            .map(|i| {
                let db = Database::open(&dir.path().join("bpr.sqlite3")).unwrap();
                let c = clock.clone();
                let store = LeaseStore::with_clock(db, Arc::new(move || c.load(Ordering::SeqCst)));
                Leadership::new(store, format!("r{i}"), settings.clone())
            })
            .collect();
        (dir, clock, all)
    }

    fn leaders(all: &[Leadership]) -> Vec<&str> {
        all.iter()
            .filter(|l| l.is_leader())
            .map(|l| l.owner())
            .collect()
    }

    #[test]
    fn of_three_replicas_exactly_one_leads_and_keeps_leading_while_it_renews() {
        let (_dir, clock, all) = replicas(3);
        for round in 0..10 {
            for r in &all {
                r.step();
            }
            assert_eq!(leaders(&all), ["r0"], "round {round}");
            clock.fetch_add(1_000, Ordering::SeqCst);
        }
        assert_eq!(all[0].check().unwrap(), 1, "one term throughout");
    }

    #[test]
    fn a_leader_that_stops_renewing_is_replaced_after_its_lease_with_a_new_term() {
        let (_dir, clock, all) = replicas(3);
        all[0].step();
        all[1].step();
        all[2].step();
        // r0 dies: it never steps again. Before its lease ends nobody else leads.
        clock.fetch_add(2_999, Ordering::SeqCst);
        assert_eq!(all[1].step(), None);
        clock.fetch_add(1, Ordering::SeqCst);
        assert_eq!(all[1].step(), Some(2));
        assert_eq!(all[2].step(), None);
        assert_eq!(leaders(&all), ["r1"]);
    }

    #[test]
    fn a_paused_leader_that_wakes_after_a_takeover_is_fenced_and_follows() {
        let (_dir, clock, all) = replicas(2);
        assert_eq!(all[0].step(), Some(1));
        // r0 is paused (SIGSTOP) past its lease; r1 takes over.
        clock.fetch_add(5_000, Ordering::SeqCst);
        assert_eq!(all[1].step(), Some(2));
        // r0 wakes mid-pass: it knows its lease is over without asking, and
        // the database says so too.
        assert!(!all[0].is_leader());
        assert!(all[0].check().is_err());
        // Even with its own clock wrong (not advanced), the database fences it.
        let (_dir2, clock2, pair) = replicas(2);
        assert_eq!(pair[0].step(), Some(1));
        clock2.fetch_add(5_000, Ordering::SeqCst);
        assert_eq!(pair[1].step(), Some(2));
        clock2.fetch_sub(5_000, Ordering::SeqCst);
        assert!(matches!(
            pair[0].check(),
            Err(CoordinationError::Fenced { token: 1, .. })
        ));
        assert_eq!(pair[0].step(), None, "its renewal fails; it follows");
    }

    #[test]
    fn a_replica_that_is_not_leading_is_told_so_by_check() {
        let (_dir, _clock, all) = replicas(2);
        all[0].step();
        all[1].step();
        assert!(matches!(
            all[1].check(),
            Err(CoordinationError::NotLeader { .. })
        ));
    }

    #[tokio::test]
    async fn shutting_down_releases_the_lease_so_another_replica_takes_over_at_once() {
        let (_dir, _clock, all) = replicas(2);
        let stop = tokio_util::sync::CancellationToken::new();
        let r0 = all[0].clone();
        let run = tokio::spawn({
            let stop = stop.clone();
            async move { r0.run(stop.cancelled_owned()).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(all[0].is_leader());
        stop.cancel();
        run.await.unwrap();
        assert!(!all[0].is_leader());
        assert_eq!(all[1].step(), Some(2));
    }
}
