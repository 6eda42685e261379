//! A copy of the database taken before a migration changes it.
//!
//! Taken while the migrating connection holds the write lock (and has written
//! nothing yet), through a second connection: WAL readers are not blocked by
//! a writer, so the copy is exactly the state the migration starts from, and
//! no other process can change it in between.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{DbError, Result, file};

/// Copy the database at `path` (at schema `version`) to
/// `<path>.v<version>-<UTC time>.bak`, a complete SQLite file of its own.
pub(super) fn take(path: &Path, version: usize) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let target = file::sibling(path, &format!("v{version}-{stamp}.bak"));
    let fail = |source| DbError::BackupFailed {
        path: path.display().to_string(),
        backup: target.display().to_string(),
        source,
    };
    let reader = Connection::open(path).map_err(fail)?;
    reader
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(fail)?;
    reader
        .execute("VACUUM INTO ?1", [target.to_string_lossy().as_ref()])
        .map_err(fail)?;
    Ok(target)
}
