//! The deployment leases this process holds: one row of the `leases` table
//! per deployment (`deployment/<id>`), taken with the same pure decisions as
//! the supervisor's lease ([`crate::coordination::lease`]), renewed all at
//! once by one thread per [`Leases`], checked inside every tracker write
//! ([`Leases::fence`]).
//!
//! The owner names the lock directory it came from (`<dir id>:<replica>`):
//! a process that got a deployment's OS file lock and finds the lease held,
//! unexpired, by an owner of the SAME lock directory knows that owner is dead
//! (alive, it would still hold the file lock) and takes over at once, so
//! one-host recovery after a SIGKILL does not wait for the lease to lapse.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::error::{Result, TrackError};
use crate::coordination::{LeaderSettings, Lease, LeaseStore, replica_id};
use crate::db::Tx;

/// The lease name of deployment `id`.
pub fn lease_name(id: &str) -> String {
    format!("deployment/{id}")
}

/// The file in a lock directory naming it (random, made once).
const DIR_ID_FILE: &str = ".lock-dir-id";

/// The deployment leases of one tracker (shared by its clones).
#[derive(Clone)]
pub(super) struct Leases {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    store: LeaseStore,
    lock_dir: PathBuf,
    settings: LeaderSettings,
    /// `<dir id>:<replica>`, made at the first lease taken.
    owner: Mutex<Option<String>>,
    /// Deployment id -> the lease held on it.
    held: Mutex<HashMap<String, Held>>,
    renewer: AtomicBool,
    /// Whether locks take a lease at all (PostgreSQL; see [`super::DeploymentLock`]).
    enabled: bool,
}

/// One lease held, as the registry and its [`super::DeploymentLock`] see it.
#[derive(Clone)]
pub(super) struct Held {
    pub(super) lease: Lease,
    state: Arc<State>,
}

struct State {
    /// When (monotonic) the last acquisition or renewal that counted was
    /// asked: the database's expiry is at least a lease after it.
    asked: Mutex<Instant>,
    /// Why it was found lost, once it was.
    lost: Mutex<Option<String>>,
}

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("lock_dir", &self.shared.lock_dir)
            .field("held", &guard(&self.shared.held).len())
            .finish()
    }
}

/// The id of lock directory `dir`, made (atomically: written aside, then
/// hard-linked into place) by the first process that needs it.
fn dir_id(dir: &Path) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(DIR_ID_FILE);
    let read = |p: &Path| std::fs::read_to_string(p).map(|s| s.trim().to_string());
    if let Ok(id) = read(&path)
        && !id.is_empty()
    {
        return Ok(id);
    }
    let id = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    let aside = dir.join(format!("{DIR_ID_FILE}.{}.{id}", std::process::id()));
    std::fs::write(&aside, &id)?;
    let linked = std::fs::hard_link(&aside, &path);
    let _ = std::fs::remove_file(&aside);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(&path),
        Err(e) => Err(e),
    }
}

fn same_dir(owner: &str, dir_id: &str) -> bool {
    owner.split_once(':').map(|(d, _)| d) == Some(dir_id)
}

impl Leases {
    /// Leases in `store` for locks in `lock_dir`.
    pub(super) fn new(
        store: LeaseStore,
        lock_dir: &Path,
        settings: LeaderSettings,
        enabled: bool,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                lock_dir: lock_dir.to_path_buf(),
                settings,
                owner: Mutex::new(None),
                held: Mutex::new(HashMap::new()),
                renewer: AtomicBool::new(false),
                enabled,
            }),
        }
    }

    /// Whether locks take a database lease.
    pub(super) fn enabled(&self) -> bool {
        self.shared.enabled
    }

    fn owner(&self) -> Result<String> {
        let mut owner = guard(&self.shared.owner);
        if let Some(o) = owner.as_ref() {
            return Ok(o.clone());
        }
        let dir = &self.shared.lock_dir;
        let id = dir_id(dir).map_err(|source| TrackError::LockFailed {
            path: dir.join(DIR_ID_FILE).display().to_string(),
            source,
        })?;
        let made = format!("{id}:{}", replica_id());
        *owner = Some(made.clone());
        Ok(made)
    }

    /// This process's owner name, once it took a lease.
    #[cfg(test)]
    pub(super) fn owner_name(&self) -> Option<String> {
        guard(&self.shared.owner).clone()
    }

    /// Take deployment `id`'s lease; the caller holds its OS file lock.
    /// `Ok(None)` when a live owner (of another lock directory) holds it.
    pub(super) fn acquire(&self, id: &str) -> Result<Option<HeldLease>> {
        let owner = self.owner()?;
        let dir = owner.split_once(':').map_or("", |(d, _)| d).to_string();
        let asked = Instant::now();
        let name = lease_name(id);
        let lease = self
            .shared
            .store
            .acquire_or_take_over(&name, &owner, ms(self.shared.settings.lease), |row| {
                same_dir(&row.owner, &dir)
            })
            .map_err(|source| TrackError::LeaseFailed {
                id: id.to_string(),
                source: Box::new(source),
            })?;
        let Some(lease) = lease else {
            return Ok(None);
        };
        let held = Held {
            lease,
            state: Arc::new(State {
                asked: Mutex::new(asked),
                lost: Mutex::new(None),
            }),
        };
        guard(&self.shared.held).insert(id.to_string(), held.clone());
        self.start_renewer();
        // The provider calls this task makes while it holds the lease check
        // it before each request they send (capabilities' fence).
        let fence = {
            let (shared, id, held) = (self.shared.clone(), id.to_string(), held.clone());
            crate::capabilities::register_fence(Arc::new(move || {
                check(&shared.settings, &id, &held).map_err(|e| e.to_string())
            }))
        };
        Ok(Some(HeldLease {
            shared: self.shared.clone(),
            id: id.to_string(),
            held,
            _fence: fence,
        }))
    }

    fn start_renewer(&self) {
        if self.shared.renewer.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak: Weak<Shared> = Arc::downgrade(&self.shared);
        let every = self.shared.settings.renew;
        let spawned = std::thread::Builder::new()
            .name("bpr-deployment-leases".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(every);
                    let Some(shared) = weak.upgrade() else {
                        return;
                    };
                    shared.renew_all();
                }
            });
        if let Err(e) = spawned {
            // Without a renewer leases lapse: check() fails before they do.
            self.shared.renewer.store(false, Ordering::SeqCst);
            tracing::warn!("cannot start the deployment lease renewer: {e}");
        }
    }

    /// Renew every lease held now, in one statement (the renewer's round,
    /// callable by tests): how many were renewed.
    #[cfg(test)]
    pub(super) fn renew_all(&self) -> usize {
        self.shared.renew_all()
    }

    /// [`check`] of this process's lease on `id`; `Ok` when it holds none.
    pub(super) fn check(&self, id: &str) -> Result<()> {
        let held = guard(&self.shared.held).get(id).cloned();
        match held {
            Some(h) => check(&self.shared.settings, id, &h),
            None => Ok(()),
        }
    }

    /// Inside a tracker write's transaction: `Ok` unless this process holds
    /// deployment `id`'s lease and it no longer stands (lost, taken, expired
    /// in the database), then [`TrackError::Fenced`] and the caller's
    /// transaction writes nothing. A deployment this process holds no lease
    /// on is not checked (see the write-path audit in the crate's notes).
    pub(super) fn fence(&self, tx: &mut Tx<'_>, id: &str) -> Result<()> {
        let Some(held) = guard(&self.shared.held).get(id).cloned() else {
            return Ok(());
        };
        if let Some(why) = guard(&held.state.lost).clone() {
            return Err(fenced(id, why));
        }
        match self.shared.store.lost_in(tx, &held.lease)? {
            None => Ok(()),
            Some(why) => {
                let why = why.to_string();
                *guard(&held.state.lost) = Some(why.clone());
                Err(fenced(id, why))
            }
        }
    }
}

/// `Ok` while `held` can be trusted without asking the database: not found
/// lost, and its last acquisition or renewal asked less than the lease minus
/// a margin (a fifth of it) ago on the monotonic clock, so a process paused
/// past its lease (SIGSTOP) knows it on waking.
fn check(settings: &LeaderSettings, id: &str, held: &Held) -> Result<()> {
    if let Some(why) = guard(&held.state.lost).clone() {
        return Err(fenced(id, why));
    }
    let lease = settings.lease;
    let trusted = lease.saturating_sub(lease / 5);
    let since = guard(&held.state.asked).elapsed();
    if since >= trusted {
        return Err(fenced(
            id,
            format!(
                "not renewed for {} ms (lease {} ms)",
                since.as_millis(),
                lease.as_millis()
            ),
        ));
    }
    Ok(())
}

fn fenced(id: &str, why: String) -> TrackError {
    TrackError::Fenced {
        id: id.to_string(),
        why,
    }
}

impl Shared {
    fn renew_all(&self) -> usize {
        let held: Vec<(String, Held)> = guard(&self.held)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let Some(owner) = guard(&self.owner).clone() else {
            return 0;
        };
        if held.is_empty() {
            return 0;
        }
        let names: Vec<String> = held.iter().map(|(_, h)| h.lease.name.clone()).collect();
        let asked = Instant::now();
        let renewed = match self
            .store
            .renew_all(&owner, &names, ms(self.settings.lease))
        {
            Ok(r) => r,
            Err(e) => {
                // Nothing marked: check() fails on its own once the lease
                // (minus the margin) passed since the last renewal.
                tracing::warn!(target: "bpr::leases", "cannot renew the deployment leases: {e}");
                return 0;
            }
        };
        let renewed: HashMap<String, i64> = renewed.into_iter().collect();
        let mut count = 0;
        for (id, h) in &held {
            if renewed.get(&h.lease.name) == Some(&h.lease.token) {
                *guard(&h.state.asked) = asked;
                count += 1;
                continue;
            }
            // Released meanwhile (its lock was dropped): nothing to say.
            let current = guard(&self.held).get(id).map(|c| c.lease.token);
            if current != Some(h.lease.token) {
                continue;
            }
            let mut lost = guard(&h.state.lost);
            if lost.is_none() {
                tracing::warn!(
                    target: "bpr::leases",
                    deployment = %id,
                    token = h.lease.token,
                    "the deployment's lease lapsed or was taken: this process acts on it no more"
                );
                *lost = Some("its renewal found it lapsed or taken".into());
            }
        }
        count
    }
}

/// The database half of a [`super::DeploymentLock`]: released on drop.
pub(super) struct HeldLease {
    shared: Arc<Shared>,
    id: String,
    held: Held,
    /// This lease's check on the holding task's provider calls.
    _fence: Option<crate::capabilities::FenceRegistration>,
}

impl HeldLease {
    /// The fencing token it was granted with.
    pub(super) fn token(&self) -> i64 {
        self.held.lease.token
    }

    /// See [`check`].
    pub(super) fn check(&self) -> Result<()> {
        check(&self.shared.settings, &self.id, &self.held)
    }

    /// Forget the lease without releasing it, as a process that died would.
    #[cfg(test)]
    pub(super) fn abandon(mut self) {
        guard(&self.shared.held).remove(&self.id);
        drop(self._fence.take());
        std::mem::forget(self);
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        {
            let mut held = guard(&self.shared.held);
            if held.get(&self.id).map(|h| h.lease.token) == Some(self.held.lease.token) {
                held.remove(&self.id);
            }
        }
        // Never panics: a database that is gone leaves the lease to lapse.
        if let Err(e) = self.shared.store.release(&self.held.lease) {
            tracing::warn!(
                target: "bpr::leases",
                deployment = %self.id,
                "cannot release the deployment's lease (it lapses on its own): {e}"
            );
        }
    }
}
