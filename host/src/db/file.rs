//! The database file itself, before SQLite opens it: what is on disk, creating
//! a new one atomically, and moving a bad one aside.
//!
//! A new database is built under a temporary name and linked into place only
//! once its schema is complete, so the real path is either absent or a
//! complete bpr database: a 0-byte or foreign file there was not left by a
//! crash of ours, and is refused (see [`super::DbError::Empty`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{DbError, Result};

/// The first 16 bytes of every SQLite 3 database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// What is at the database path.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OnDisk {
    /// Nothing: a new database is created.
    Missing,
    /// A file of 0 bytes (disk full, truncated copy).
    Empty,
    /// A file that does not start with the SQLite header.
    NotSqlite,
    /// A SQLite file.
    Sqlite,
}

/// Look at `path` without opening it as a database.
pub(super) fn inspect(path: &Path) -> Result<OnDisk> {
    let unreadable = |source| DbError::Unreadable {
        path: path.display().to_string(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(OnDisk::Missing),
        Err(e) => return Err(unreadable(e)),
    };
    if !meta.is_file() {
        return Err(unreadable(std::io::Error::other("not a regular file")));
    }
    if meta.len() == 0 {
        return Ok(OnDisk::Empty);
    }
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(unreadable)?;
    let n = read_up_to(&mut file, &mut head).map_err(unreadable)?;
    Ok(if n == head.len() && &head == SQLITE_MAGIC {
        OnDisk::Sqlite
    } else {
        OnDisk::NotSqlite
    })
}

fn read_up_to(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Move a refused file aside as `<path>.<why>-<unix time>` (never deleted: it
/// may be all that is left of the records), returning the new name.
pub(super) fn move_aside(path: &Path, why: &str) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let aside = sibling(path, &format!("{why}-{stamp}"));
    std::fs::rename(path, &aside).map_err(|source| DbError::Unreadable {
        path: path.display().to_string(),
        source,
    })?;
    for ext in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{ext}", path.display()));
        if side.exists() {
            let _ = std::fs::rename(&side, format!("{}{ext}", aside.display()));
        }
    }
    Ok(aside)
}

/// `<path>.<suffix>` next to `path`.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Create the database at `path` if it does not exist yet: built complete
/// under a temporary name by `init`, then hard-linked into place. When several
/// processes race, one link wins and the others drop their copy; none of them
/// ever sees a half-made file at `path`.
pub(super) fn create_atomically(
    path: &Path,
    init: impl FnOnce(&mut Connection, &str) -> Result<()>,
) -> Result<()> {
    let display = path.display().to_string();
    let tmp = sibling(
        path,
        &format!("new-{}-{:08x}", std::process::id(), rand::random::<u32>()),
    );
    let result = (|| {
        let mut conn = Connection::open(&tmp).map_err(|source| DbError::OpenFailed {
            path: display.clone(),
            source,
        })?;
        init(&mut conn, &display)?;
        // Closing the last connection checkpoints the WAL into the main file.
        conn.close().map_err(|(_, source)| DbError::OpenFailed {
            path: display.clone(),
            source,
        })?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            // A file system without hard links: a rename, checked first (a
            // narrow race with another first start, never a half-made file).
            Err(_) if !path.exists() => {
                std::fs::rename(&tmp, path).map_err(|source| DbError::CreateFailed {
                    path: display.clone(),
                    source,
                })
            }
            Err(source) => Err(DbError::CreateFailed {
                path: display.clone(),
                source,
            }),
        }
    })();
    for p in [
        tmp.clone(),
        PathBuf::from(format!("{}-wal", tmp.display())),
        PathBuf::from(format!("{}-shm", tmp.display())),
    ] {
        let _ = std::fs::remove_file(p);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_tells_missing_empty_foreign_and_sqlite_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("db");
        assert_eq!(inspect(&p).unwrap(), OnDisk::Missing);
        std::fs::write(&p, b"").unwrap();
        assert_eq!(inspect(&p).unwrap(), OnDisk::Empty);
        std::fs::write(&p, b"hello, not a database at all").unwrap();
        assert_eq!(inspect(&p).unwrap(), OnDisk::NotSqlite);
        std::fs::remove_file(&p).unwrap();
        Connection::open(&p)
            .unwrap()
            .execute_batch("CREATE TABLE t(x)")
            .unwrap();
        assert_eq!(inspect(&p).unwrap(), OnDisk::Sqlite);
    }

    #[test]
    fn a_moved_aside_file_keeps_its_bytes_under_a_new_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bpr.sqlite3");
        std::fs::write(&p, b"precious").unwrap();
        let aside = move_aside(&p, "unreadable").unwrap();
        assert!(!p.exists());
        assert_eq!(std::fs::read(&aside).unwrap(), b"precious");
        assert!(
            aside
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("bpr.sqlite3.unreadable-")
        );
    }
}
