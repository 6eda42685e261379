//! The host's embedded database: one SQLite file (WAL) shared by the price
//! cache and the deployment tracker, with ordered, append-only migrations.
//!
//! Each module owns its tables and adds its migrations to [`migrations::ALL`];
//! a migration is never edited once it has landed, only followed by another.

mod migrations;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

/// The database could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Opening or configuring the file failed.
    #[error("cannot open database {path}: {source}")]
    OpenFailed {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A migration failed; the database is left at the previous version.
    #[error("database {path}: migration {name} failed: {source}")]
    MigrationFailed {
        /// The file.
        path: String,
        /// Migration name.
        name: &'static str,
        /// Cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer `bpr`.
    #[error(
        "database {path} is at schema version {found}, newer than this bpr knows ({known}); upgrade bpr"
    )]
    TooNew {
        /// The file.
        path: String,
        /// Version in the file.
        found: usize,
        /// Versions this build knows.
        known: usize,
    },
    /// A query failed.
    #[error("database query failed: {0}")]
    QueryFailed(#[from] rusqlite::Error),
}

/// Result of the database layer.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Database {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.path)
            .finish()
    }
}

impl Database {
    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let open_err = |source| DbError::OpenFailed {
            path: display.clone(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrations::run(&mut conn, &display)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Exclusive access to the connection for a short, synchronous job.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
