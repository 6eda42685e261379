//! Per-deployment OS file locks: who is working on a deployment right now.

use std::fs::File;
use std::path::Path;

use super::error::{Result, TrackError};

/// An exclusive claim on one deployment, held by the process working on it
/// (deploy, terminate, recovery). It is an OS file lock, so it is released
/// when the process dies, even by SIGKILL: recovery never touches a
/// deployment a live process is still working on.
#[derive(Debug)]
pub struct DeploymentLock {
    _file: File,
}

/// Claim `id` in `dir`, failing fast: `Ok(None)` when another process (or task)
/// holds it.
pub(super) fn try_lock(dir: &Path, id: &str) -> Result<Option<DeploymentLock>> {
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
        Ok(()) => Ok(Some(DeploymentLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(fail(e)),
    }
}
