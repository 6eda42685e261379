//! Per-deployment locks: who is working on a deployment right now, on this
//! host (an OS file lock) and across replicas (a lease in the database).

use std::fs::File;
use std::path::Path;

use super::error::{Result, TrackError};
use super::leases::{HeldLease, Leases};

/// An exclusive claim on one deployment, held by the process working on it
/// (deploy, terminate, recovery). Two halves:
/// - an OS file lock in the state directory, released by the kernel when the
///   process dies, even by SIGKILL: on one host, recovery never touches a
///   deployment a live process is still working on, and takes it at once
///   from a dead one;
/// - on PostgreSQL, the deployment's lease in the database (`deployment/<id>`,
///   with a fencing token), which keeps replicas on other hosts off it, is
///   renewed while held, checked inside every tracker write on the
///   deployment, and released on drop. A SQLite file is one host's by
///   construction, where the file lock is exact: no lease is taken there
///   (each would cost two durable writes).
///
/// Call [`DeploymentLock::check`] before each cloud side effect made under it.
pub struct DeploymentLock {
    // Dropped first: the lease is released while the file lock still keeps
    // other processes of this host away. `None` on SQLite (one host by
    // construction: the file lock is exact there).
    lease: Option<HeldLease>,
    _file: File,
}

impl std::fmt::Debug for DeploymentLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeploymentLock")
            .field("token", &self.token())
            .finish()
    }
}

impl DeploymentLock {
    /// `Ok` while this process may still act on the deployment: its lease was
    /// not found lost and was renewed recently enough (in memory, no database
    /// round trip). A [`TrackError::Fenced`] means: make no cloud call and
    /// no write; another replica may own the deployment now.
    pub fn check(&self) -> Result<()> {
        self.lease.as_ref().map_or(Ok(()), HeldLease::check)
    }

    /// The lease's fencing token (`None` without a database lease).
    pub fn token(&self) -> Option<i64> {
        self.lease.as_ref().map(HeldLease::token)
    }

    /// Let go of both halves as a SIGKILLed process would: the file lock is
    /// closed, the lease row stays held until it expires or is taken over.
    #[cfg(test)]
    pub(super) fn abandon(self) {
        let Self { lease, _file } = self;
        if let Some(lease) = lease {
            lease.abandon();
        }
        drop(_file);
    }
}

/// Claim `id`: its file in `dir`, then its lease, failing fast: `Ok(None)`
/// when another process (or task) of this host holds the file, or a live
/// replica elsewhere holds the lease.
pub(super) fn try_lock(dir: &Path, leases: &Leases, id: &str) -> Result<Option<DeploymentLock>> {
    let path = dir.join(format!("{id}.lock"));
    let fail = |source| TrackError::LockFailed {
        path: path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(fail)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
        Err(std::fs::TryLockError::Error(e)) => return Err(fail(e)),
    }
    if !leases.enabled() {
        return Ok(Some(DeploymentLock {
            lease: None,
            _file: file,
        }));
    }
    Ok(leases.acquire(id)?.map(|lease| DeploymentLock {
        lease: Some(lease),
        _file: file,
    }))
}
