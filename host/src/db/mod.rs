//! The host's embedded database: one SQLite file (WAL) shared by the price
//! cache and the deployment tracker, with ordered, append-only migrations.
//!
//! Each module owns its tables and adds its migrations to `migrations::ALL`;
//! a migration is never edited once it has landed, only followed by another.
//!
//! What the file layer guarantees, with many `bpr` processes at once:
//! - a new database appears complete or not at all (built under a temporary
//!   name, then linked into place);
//! - a file that is empty, not SQLite, or SQLite without bpr's schema is
//!   refused with [`DbError::Refused`] unless [`DatabaseSettings::initialize`]
//!   is set (it then is moved aside, never deleted): the records of running
//!   instances may have been in it;
//! - migrations run once, under the write lock, after a backup
//!   (`<file>.v<N>-<time>.bak`);
//! - [`Database::write`] runs a read-then-write job as an immediate
//!   transaction, which waits for the busy timeout instead of failing at once.

mod backup;
mod file;
mod migrations;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

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
    /// The file (or its directory) could not be read.
    #[error("cannot read database {path}: {source}")]
    Unreadable {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A new database could not be put in place.
    #[error("cannot create database {path}: {source}")]
    CreateFailed {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a usable bpr database; nothing was changed.
    #[error(
        "database {path} {problem}. bpr does not start a new one over it by itself: the records \
         of instances that may still run were in it. Restore it from a copy (bpr keeps one from \
         before each migration as {path}.v<N>-<time>.bak), or start an empty database with \
         `bpr --initialize-database ...` (or `[database] initialize = true`): the file is then \
         kept as {path}.{kind}-<time>"
    )]
    Refused {
        /// The file.
        path: String,
        /// What is wrong with it.
        problem: String,
        /// Short name used when it is moved aside.
        kind: &'static str,
    },
    /// SQLite could not read the file's schema (damaged pages).
    #[error(
        "database {path} is damaged ({source}); restore it from a copy, or start an empty one with `bpr --initialize-database ...`"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// Cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The copy taken before a migration failed; nothing was migrated.
    #[error("database {path}: cannot back it up to {backup} before migrating: {source}")]
    BackupFailed {
        /// The file.
        path: String,
        /// The copy's path.
        backup: String,
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

/// How the database is opened (`[database]` in the operator config).
///
/// ```toml
/// [database]
/// busy_timeout_ms = 30000   # how long a write waits for another process's
/// initialize = false        # true: start empty over an unusable file (kept aside)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// How long a statement waits for another process holding the write lock
    /// before failing with "database is locked". Default: 30 s.
    pub busy_timeout: Duration,
    /// Start a new, empty database when the file is empty (0 bytes), not a
    /// SQLite file, or SQLite without bpr's schema; the old file is moved to
    /// `<file>.<kind>-<time>`. Default: false (such a file is refused).
    pub initialize: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(30),
            initialize: false,
        }
    }
}

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

/// Connection settings every connection gets.
fn configure(conn: &Connection, path: &str, settings: &DatabaseSettings) -> Result<()> {
    let open_err = |source| DbError::OpenFailed {
        path: path.to_string(),
        source,
    };
    conn.busy_timeout(settings.busy_timeout).map_err(open_err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_err)?;
    Ok(())
}

impl Database {
    /// Open (creating if needed) and migrate the database at `path`, with
    /// default [`DatabaseSettings`].
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &DatabaseSettings::default())
    }

    /// Open (creating if needed) and migrate the database at `path`.
    pub fn open_with(path: &Path, settings: &DatabaseSettings) -> Result<Self> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let refused = |problem: &str, kind: &'static str| DbError::Refused {
            path: display.clone(),
            problem: problem.to_string(),
            kind,
        };
        let create = || {
            file::create_atomically(path, |conn, _| {
                configure(conn, &display, settings)?;
                migrations::run(conn, path, true).map(|_| ())
            })
        };
        let problem = match file::inspect(path)? {
            file::OnDisk::Missing => {
                create()?;
                None
            }
            file::OnDisk::Empty => Some(refused("is empty (0 bytes)", "empty")),
            file::OnDisk::NotSqlite => Some(refused("is not a SQLite database", "unreadable")),
            file::OnDisk::Sqlite => None,
        };
        let conn = match problem {
            Some(e) => Self::start_over(path, settings, e, create)?,
            None => {
                let conn = Self::open_existing(path, settings);
                match conn {
                    Err(e @ (DbError::Refused { .. } | DbError::Corrupt { .. })) => {
                        Self::start_over(path, settings, e, create)?
                    }
                    other => other?,
                }
            }
        };
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            path: path.to_path_buf(),
        })
    }

    fn open_existing(path: &Path, settings: &DatabaseSettings) -> Result<Connection> {
        let display = path.display().to_string();
        let mut conn = Connection::open(path).map_err(|source| DbError::OpenFailed {
            path: display.clone(),
            source,
        })?;
        configure(&conn, &display, settings).map_err(|e| match e {
            DbError::OpenFailed { path, source }
                if matches!(
                    source.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
                ) =>
            {
                DbError::Corrupt { path, source }
            }
            other => other,
        })?;
        migrations::run(&mut conn, path, false)?;
        Ok(conn)
    }

    /// An unusable file: refused, unless the operator asked to initialise.
    fn start_over(
        path: &Path,
        settings: &DatabaseSettings,
        problem: DbError,
        create: impl Fn() -> Result<()>,
    ) -> Result<Connection> {
        if !settings.initialize {
            return Err(problem);
        }
        let kind = match &problem {
            DbError::Refused { kind, .. } => kind,
            _ => "damaged",
        };
        let aside = file::move_aside(path, kind)?;
        tracing::warn!(
            "database {} was unusable ({problem}); initialising a new one as asked, the old file is kept as {}",
            path.display(),
            aside.display()
        );
        create()?;
        Self::open_existing(path, settings)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Exclusive access to the connection for a short, synchronous job.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This host's identity: a random id made with the database, stored on
    /// every cloud resource it creates as the `bpr-host` label, so that a
    /// sweep for resources no record owns never touches another host's (two
    /// hosts may share one cloud account).
    pub fn host_id(&self) -> Result<String> {
        Ok(self
            .lock()
            .query_row("SELECT id FROM host_identity WHERE only = 1", [], |r| {
                r.get(0)
            })?)
    }

    /// Run `job` in an immediate transaction: the write lock is taken first
    /// (waiting up to the busy timeout for other processes), so a job that
    /// reads, then writes, never fails because another process wrote in
    /// between. Committed when `job` returns `Ok`, rolled back otherwise.
    pub fn write<T, E>(&self, job: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = job(&tx)?;
        tx.commit()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_database_file_is_refused_with_what_to_do_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        std::fs::write(&path, b"").unwrap();
        let err = Database::open(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("is empty (0 bytes)"), "{text}");
        assert!(text.contains("--initialize-database"), "{text}");
        assert!(text.contains(".bak"), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        std::fs::write(&path, b"{\"deployments\": []}\n").unwrap();
        let err = Database::open(&path).unwrap_err();
        assert!(err.to_string().contains("not a SQLite database"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"deployments\": []}\n");
    }

    #[test]
    fn initialising_over_an_empty_file_keeps_it_aside_and_starts_a_new_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        std::fs::write(&path, b"").unwrap();
        let settings = DatabaseSettings {
            initialize: true,
            ..DatabaseSettings::default()
        };
        let db = Database::open_with(&path, &settings).unwrap();
        let tables: i64 = db
            .lock()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'deployments'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 1);
        let aside: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with("bpr.sqlite3.empty-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        // Initialising again over a good database changes nothing.
        drop(db);
        Database::open_with(&path, &settings).unwrap();
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert!(files <= 4, "{files} files");
    }

    #[test]
    fn the_host_id_is_made_once_with_the_database_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        let id = Database::open(&path).unwrap().host_id().unwrap();
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        assert_eq!(Database::open(&path).unwrap().host_id().unwrap(), id);
        let other = Database::open(&dir.path().join("other.sqlite3")).unwrap();
        assert_ne!(other.host_id().unwrap(), id);
    }

    #[test]
    fn a_read_then_write_job_waits_for_another_writer_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        let a = Database::open(&path).unwrap();
        let b = Database::open(&path).unwrap();
        // A counter table of the test's own.
        a.lock()
            .execute_batch(
                "CREATE TABLE counter (provider TEXT PRIMARY KEY, fetched_at INTEGER NOT NULL);
                 INSERT INTO counter VALUES ('n', 0);",
            )
            .unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let db = if i % 2 == 0 { a.clone() } else { b.clone() };
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        db.write(|tx| {
                            let n: i64 = tx.query_row(
                                "SELECT fetched_at FROM counter WHERE provider = 'n'",
                                [],
                                |r| r.get(0),
                            )?;
                            tx.execute(
                                "UPDATE counter SET fetched_at = ?1 WHERE provider = 'n'",
                                [n + 1],
                            )?;
                            Ok::<_, DbError>(())
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n: i64 = a
            .lock()
            .query_row(
                "SELECT fetched_at FROM counter WHERE provider = 'n'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 200, "no update was lost");
    }
}
