//! The host's store: one database shared by the price cache, the
//! deployment tracker, the usage ledger and the SSH host capacities, behind
//! one backend-neutral interface with two implementations:
//!
//! - **SQLite** (the default): one file (WAL) on this host;
//! - **PostgreSQL** (`[host] database = "postgres://user@host:port/db"`):
//!   shared by several `bpr` processes or `bpr serve` replicas on several
//!   machines (issue 17).
//!
//! The interface is a small executor, so that the SQL of each store module is
//! written once, not once per backend: [`Database::execute`],
//! [`Database::query`], [`Database::query_opt`] for single statements and
//! [`Database::write`] for a read-then-write job, with parameters and columns
//! as [`Value`]s (`params![...]`) and rows as [`Row`]s. Statements are
//! written with numbered placeholders (`?1`), in the SQL both engines speak
//! (`ON CONFLICT ... DO UPDATE`, `RETURNING`, `CAST(? AS BIGINT)` where a
//! parameter's type is not implied, `CASE` rather than two-argument `MAX`);
//! the PostgreSQL side rewrites the placeholders to `$1`. The schema is the
//! only part written per dialect (`migrations` for SQLite,
//! `postgres::migrations` for PostgreSQL; a new migration is appended to
//! both).
//!
//! Each module owns its tables and adds its migrations; a migration is never
//! edited once it has landed, only followed by another.
//!
//! What the SQLite file layer guarantees, with many `bpr` processes at once:
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
//!
//! On PostgreSQL the same guarantees come from the server: migrations run
//! once under `pg_advisory_lock` (several replicas start at once), a database
//! with tables but without bpr's schema is refused, and [`Database::write`]
//! takes a transaction-scoped advisory lock first (see `postgres`), so a
//! read-then-write job sees no other writer in between, as on SQLite.

mod backup;
mod file;
mod migrations;
mod postgres;
mod sqlite;
#[cfg(test)]
pub(crate) mod testing;
mod value;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

pub use self::postgres::{PasswordSource, PostgresTarget, TlsMode, TlsSettings};
pub use crate::__db_params as params;
pub use value::{FromValue, Row, ToValue, Value};

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
    /// A column held another kind of value than the reader expected.
    #[error("database column {index} holds {found}, expected {expected}")]
    Column {
        /// Column index in the `SELECT`.
        index: usize,
        /// What the reader wanted.
        expected: &'static str,
        /// What it held.
        found: &'static str,
    },
    /// `[host] database` is not a usable PostgreSQL URL, or its password
    /// source cannot be read. Never contains the password.
    #[error("database {url}: {message}")]
    BadUrl {
        /// The URL as given, without any password.
        url: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// `[database] tls` / `ca_file` cannot be used. Nothing was connected.
    #[error("database {database}: {message}")]
    BadTls {
        /// The database, as `postgres://user@host:port/db` (no password).
        database: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// The PostgreSQL server could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL database {database}: {detail}. {hint}")]
    Unreachable {
        /// The database, as `postgres://user@host:port/db` (no password).
        database: String,
        /// The cause with every cause under it (a TLS failure's reason is two
        /// levels down).
        detail: String,
        /// What to check.
        hint: &'static str,
        /// Cause.
        #[source]
        source: ::postgres::Error,
    },
    /// A statement on PostgreSQL failed (or the connection was lost during it).
    #[error("PostgreSQL database {database}: {source}")]
    Postgres {
        /// The database, as `postgres://user@host:port/db` (no password).
        database: String,
        /// Cause.
        #[source]
        source: ::postgres::Error,
    },
    /// A PostgreSQL database has tables but not bpr's schema; nothing was changed.
    #[error(
        "PostgreSQL database {database} {problem}; bpr does not create its tables beside \
         someone else's. Point [host] database at an empty database (CREATE DATABASE bpr) or at bpr's own"
    )]
    ForeignSchema {
        /// The database.
        database: String,
        /// What was found.
        problem: String,
    },
    /// A PostgreSQL migration failed; the database is left at the previous version.
    #[error("PostgreSQL database {database}: migration {name} failed: {source}")]
    PgMigrationFailed {
        /// The database.
        database: String,
        /// Migration name.
        name: &'static str,
        /// Cause.
        #[source]
        source: ::postgres::Error,
    },
    /// Every PostgreSQL connection of this process stayed busy for the busy timeout.
    #[error(
        "PostgreSQL database {database}: all {connections} connections of this process stayed busy \
         for {waited:?}; raise [database] max_connections or busy_timeout_ms"
    )]
    Busy {
        /// The database.
        database: String,
        /// The pool's size.
        connections: usize,
        /// How long the caller waited.
        waited: Duration,
    },
    /// The thread that owns a PostgreSQL connection is gone (it panicked).
    #[error("PostgreSQL database {database}: its connection thread stopped")]
    WorkerGone {
        /// The database.
        database: String,
    },
}

impl DbError {
    /// True when a statement broke a unique (or, on SQLite, any) constraint:
    /// another writer got there first.
    pub fn is_constraint_violation(&self) -> bool {
        match self {
            DbError::QueryFailed(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            DbError::Postgres { source, .. } => {
                source.code() == Some(&::postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }
}

/// Result of the database layer.
pub type Result<T, E = DbError> = std::result::Result<T, E>;

/// Which engine a [`Database`] runs on, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// The embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Where the database is (`[host] database`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (no password in it: see [`DatabaseSettings::password`]).
    Postgres(PostgresTarget),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => t.fmt(f),
        }
    }
}

/// How the database is opened (`[database]` in the operator config).
///
/// ```toml
/// [database]
/// busy_timeout_ms = 30000   # how long a write waits for another process's
/// initialize = false        # true: start empty over an unusable file (kept aside)
/// password_file = "/run/secrets/bpr-db"   # PostgreSQL: the password, from a file...
/// password_env = "BPR_DATABASE_PASSWORD"  # ...or an environment variable
/// max_connections = 4       # PostgreSQL: connections of this process
/// tls = "verify-full"       # PostgreSQL: "verify-full" | "require" | "disable"
/// ca_file = "/etc/bpr/db-ca.pem"          # PostgreSQL: roots the server's certificate chains to
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
    /// PostgreSQL: where the password is read from at connect time (never
    /// from the URL). Default: none (the server's own authentication).
    pub password: Option<PasswordSource>,
    /// PostgreSQL: connections this process opens at most. Default: 4.
    pub max_connections: usize,
    /// PostgreSQL: TLS to the server. Default: `verify-full` against the
    /// system's roots, except on loopback (plain TCP).
    pub tls: TlsSettings,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(30),
            initialize: false,
            password: None,
            max_connections: 4,
            tls: TlsSettings::default(),
        }
    }
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Database {
    backend: Arc<Backend>,
}

enum Backend {
    Sqlite {
        conn: Mutex<Connection>,
        path: PathBuf,
    },
    Postgres(postgres::Pool),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("location", &self.describe())
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
    // Every store statement is prepared once per connection.
    conn.set_prepared_statement_cache_capacity(128);
    Ok(())
}

impl Database {
    /// Open (creating if needed) and migrate the database at `location`.
    pub fn open_location(location: &Location, settings: &DatabaseSettings) -> Result<Self> {
        match location {
            Location::Sqlite(path) => Self::open_with(path, settings),
            Location::Postgres(target) => Self::connect(target, settings),
        }
    }

    /// Connect to (and migrate) the PostgreSQL database `target`.
    pub fn connect(target: &PostgresTarget, settings: &DatabaseSettings) -> Result<Self> {
        let pool = postgres::Pool::open(target.clone(), settings)?;
        Ok(Self {
            backend: Arc::new(Backend::Postgres(pool)),
        })
    }

    /// Open (creating if needed) and migrate the SQLite database at `path`,
    /// with default [`DatabaseSettings`].
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, &DatabaseSettings::default())
    }

    /// Open (creating if needed) and migrate the SQLite database at `path`.
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
            backend: Arc::new(Backend::Sqlite {
                conn: Mutex::new(conn),
                path: path.to_path_buf(),
            }),
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

    /// The SQLite file; `None` on PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        match &*self.backend {
            Backend::Sqlite { path, .. } => Some(path),
            Backend::Postgres(_) => None,
        }
    }

    /// The file, or the PostgreSQL URL without its password: for messages.
    pub fn describe(&self) -> String {
        match &*self.backend {
            Backend::Sqlite { path, .. } => path.display().to_string(),
            Backend::Postgres(pool) => pool.target().to_string(),
        }
    }

    /// Which engine this is.
    pub fn dialect(&self) -> Dialect {
        match &*self.backend {
            Backend::Sqlite { .. } => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Exclusive access to the SQLite connection for a short, synchronous
    /// job; `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<MutexGuard<'_, Connection>> {
        match &*self.backend {
            Backend::Sqlite { conn, .. } => Some(conn.lock().unwrap_or_else(|p| p.into_inner())),
            Backend::Postgres(_) => None,
        }
    }

    /// On SQLite, commits survive a power loss too, not only a process
    /// crash (`synchronous = FULL`; in WAL mode NORMAL may lose the last
    /// commits). PostgreSQL commits are durable by the server's settings.
    pub fn require_full_durability(&self) {
        if let Some(conn) = self.sqlite()
            && let Err(e) = conn.pragma_update(None, "synchronous", "FULL")
        {
            tracing::warn!("cannot set synchronous=FULL on {}: {e}", self.describe());
        }
    }

    /// This host's identity: a random id made with the database, stored on
    /// every cloud resource it creates as the `bpr-host` label, so that a
    /// sweep for resources no record owns never touches another host's (two
    /// hosts may share one cloud account). Replicas sharing one PostgreSQL
    /// database share it: they are one host.
    pub fn host_id(&self) -> Result<String> {
        let row = self.query_opt("SELECT id FROM host_identity WHERE \"only\" = 1", params![])?;
        match row {
            Some(r) => r.get(0),
            None => Err(DbError::Column {
                index: 0,
                expected: "the host identity row",
                found: "no row",
            }),
        }
    }

    /// Run one statement (its own transaction); returns the rows changed.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<usize> {
        match &*self.backend {
            Backend::Sqlite { .. } => sqlite::execute(&self.sqlite_conn(), sql, params),
            Backend::Postgres(pool) => pool.session()?.execute(sql, params),
        }
    }

    /// Every row of a query.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match &*self.backend {
            Backend::Sqlite { .. } => sqlite::query(&self.sqlite_conn(), sql, params),
            Backend::Postgres(pool) => pool.session()?.query(sql, params),
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    fn sqlite_conn(&self) -> MutexGuard<'_, Connection> {
        match &*self.backend {
            Backend::Sqlite { conn, .. } => conn.lock().unwrap_or_else(|p| p.into_inner()),
            Backend::Postgres(_) => unreachable!("only called on the SQLite backend"),
        }
    }

    /// Run `job` as one transaction that holds the write lock from its
    /// first statement: on SQLite an immediate transaction (waiting up to
    /// the busy timeout for other processes), on PostgreSQL a transaction
    /// that first takes bpr's write advisory lock. So a job that reads, then
    /// writes, never sees another writer in between. Committed when `job`
    /// returns `Ok`, rolled back otherwise.
    pub fn write<T, E>(&self, job: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<DbError>,
    {
        match &*self.backend {
            Backend::Sqlite { .. } => {
                let mut conn = self.sqlite_conn();
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(DbError::from)?;
                let out = job(&mut Tx {
                    inner: TxInner::Sqlite(&tx),
                })?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            }
            Backend::Postgres(pool) => {
                let mut session = pool.session()?;
                session.begin_write()?;
                let out = job(&mut Tx {
                    inner: TxInner::Postgres(&mut session),
                })?;
                session.commit()?;
                Ok(out)
            }
        }
    }
}

/// A transaction in progress (see [`Database::write`]).
pub struct Tx<'a> {
    inner: TxInner<'a>,
}

enum TxInner<'a> {
    Sqlite(&'a rusqlite::Transaction<'a>),
    Postgres(&'a mut postgres::Session),
}

impl Tx<'_> {
    /// Run one statement; returns the rows changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => sqlite::execute(tx, sql, params),
            TxInner::Postgres(s) => s.execute(sql, params),
        }
    }

    /// Every row of a query.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => sqlite::query(tx, sql, params),
            TxInner::Postgres(s) => s.query(sql, params),
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Which engine this is.
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            TxInner::Sqlite(_) => Dialect::Sqlite,
            TxInner::Postgres(_) => Dialect::Postgres,
        }
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
            .sqlite()
            .unwrap()
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

    use super::testing::{Scratch, TestDb, admin_sql, on_both_backends};

    on_both_backends! {
        fn a_read_then_write_job_waits_for_another_writer_instead_of_losing_an_update(backend) {
            let tdb = TestDb::new(backend);
            let a = tdb.db();
            let b = tdb.reopen();
            // A counter table of the test's own.
            a.execute(
                "CREATE TABLE counter (name TEXT PRIMARY KEY, n BIGINT NOT NULL)",
                &[],
            )
            .unwrap();
            a.execute("INSERT INTO counter VALUES ('n', 0)", &[]).unwrap();
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let db = if i % 2 == 0 { a.clone() } else { b.clone() };
                    std::thread::spawn(move || {
                        for _ in 0..25 {
                            db.write(|tx| {
                                let n: i64 = tx
                                    .query_opt("SELECT n FROM counter WHERE name = 'n'", &[])?
                                    .expect("the row")
                                    .get(0)?;
                                tx.execute(
                                    "UPDATE counter SET n = ?1 WHERE name = 'n'",
                                    params![n + 1],
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
                .query_opt("SELECT n FROM counter WHERE name = 'n'", &[])
                .unwrap()
                .unwrap()
                .get(0)
                .unwrap();
            assert_eq!(n, 200, "no update was lost");
        }

        fn a_failed_write_job_leaves_nothing_behind(backend) {
            let tdb = TestDb::new(backend);
            let db = tdb.db();
            db.execute("CREATE TABLE t (x BIGINT)", &[]).unwrap();
            let r = db.write(|tx| {
                tx.execute("INSERT INTO t VALUES (1)", &[])?;
                Err::<(), _>(DbError::Column {
                    index: 0,
                    expected: "nothing",
                    found: "a test",
                })
            });
            assert!(r.is_err());
            let n: i64 = db
                .query_opt("SELECT COUNT(*) FROM t", &[])
                .unwrap()
                .unwrap()
                .get(0)
                .unwrap();
            assert_eq!(n, 0, "rolled back");
        }

        fn values_of_every_kind_round_trip(backend) {
            let tdb = TestDb::new(backend);
            let db = tdb.db();
            db.execute(
                "CREATE TABLE v (i BIGINT, r DOUBLE PRECISION, t TEXT, b BYTEA, n TEXT)",
                &[],
            )
            // (SQLite takes any type name.)
            .unwrap();
            let none: Option<String> = None;
            db.execute(
                "INSERT INTO v VALUES (?1, ?2, ?3, ?4, ?5)",
                params![i64::MIN, 0.25f64, "ünï", vec![0u8, 255], none],
            )
            .unwrap();
            let r = db.query_opt("SELECT i, r, t, b, n FROM v", &[]).unwrap().unwrap();
            assert_eq!(r.get::<i64>(0).unwrap(), i64::MIN);
            assert_eq!(r.get::<f64>(1).unwrap(), 0.25);
            assert_eq!(r.get::<String>(2).unwrap(), "ünï");
            assert_eq!(r.get::<Vec<u8>>(3).unwrap(), vec![0, 255]);
            assert_eq!(r.get::<Option<String>>(4).unwrap(), None);
        }
    }

    // --- PostgreSQL only -------------------------------------------------

    /// The test server's scratch database, or `None` (skipped) without one.
    fn scratch(dir: &std::path::Path) -> Option<Scratch> {
        super::testing::postgres_available().then(|| Scratch::create(dir))
    }

    #[test]
    fn many_replicas_starting_at_once_migrate_a_postgres_database_once() {
        let dir = tempfile::tempdir().unwrap();
        let Some(s) = scratch(dir.path()) else { return };
        let s = std::sync::Arc::new(s);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || s.open().map(|db| db.host_id().unwrap()))
            })
            .collect();
        let ids: Vec<String> = threads
            .into_iter()
            .map(|t| t.join().unwrap().expect("every open succeeds"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "one host id: {ids:?}");
        assert_eq!(ids[0].len(), 16);
        let db = s.open().unwrap();
        let v: i64 = db
            .query_opt("SELECT version FROM bpr_schema", &[])
            .unwrap()
            .unwrap()
            .get(0)
            .unwrap();
        assert_eq!(v as usize, postgres::migrations::ALL.len());
        assert_eq!(db.dialect(), Dialect::Postgres);
        drop(db);
        drop_scratch(s);
    }

    fn drop_scratch(s: std::sync::Arc<Scratch>) {
        if let Ok(s) = std::sync::Arc::try_unwrap(s) {
            let admin = std::env::var("BPR_TEST_DATABASE_URL").unwrap();
            admin_sql(
                &admin,
                &format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    s.settings().0.dbname()
                ),
            );
        }
    }

    #[test]
    fn a_postgres_database_with_someone_elses_tables_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let Some(s) = scratch(dir.path()) else { return };
        let s = std::sync::Arc::new(s);
        let admin = std::env::var("BPR_TEST_DATABASE_URL").unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(s.settings().0.dbname());
        admin_sql(url.as_str(), "CREATE TABLE deployments (x INT)");
        let err = s.open().unwrap_err();
        assert!(matches!(err, DbError::ForeignSchema { .. }), "{err}");
        assert!(err.to_string().contains("bpr_schema"), "{err}");
        drop_scratch(s);
    }

    #[test]
    fn a_lost_postgres_connection_is_reopened_for_the_next_statement() {
        let dir = tempfile::tempdir().unwrap();
        let Some(s) = scratch(dir.path()) else { return };
        let s = std::sync::Arc::new(s);
        let db = s.open().unwrap();
        let id = db.host_id().unwrap();
        // The server ends every connection of ours (a restart, a failover).
        let admin = std::env::var("BPR_TEST_DATABASE_URL").unwrap();
        admin_sql(
            &admin,
            &format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}'",
                s.settings().0.dbname()
            ),
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        for _ in 0..6 {
            assert_eq!(db.host_id().unwrap(), id);
        }
        drop(db);
        drop_scratch(s);
    }

    #[test]
    fn the_postgres_password_never_appears_in_errors_or_log_lines() {
        let dir = tempfile::tempdir().unwrap();
        let Some(s) = scratch(dir.path()) else { return };
        let (target, _) = s.settings();
        let secret = "correct-horse-battery-staple-7731";
        let pw = dir.path().join("wrong-password");
        std::fs::write(&pw, secret).unwrap();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        let mut texts = Vec::new();
        tracing::subscriber::with_default(subscriber, || {
            // A wrong password, a server that is down, a URL with a password.
            let settings = DatabaseSettings {
                password: Some(PasswordSource::File(pw.clone())),
                ..DatabaseSettings::default()
            };
            let err = Database::connect(&target, &settings).unwrap_err();
            assert!(matches!(err, DbError::Unreachable { .. }), "{err}");
            texts.push(format!("{err} {err:?}"));
            let down = PostgresTarget::parse("postgres://bpr@127.0.0.1:1/bpr").unwrap();
            let err = Database::connect(&down, &settings).unwrap_err();
            assert!(
                err.to_string().contains("postgres://bpr@127.0.0.1:1/bpr"),
                "{err}"
            );
            texts.push(format!("{err} {err:?}"));
            let err = PostgresTarget::parse(&format!("postgres://bpr:{secret}@127.0.0.1/bpr"))
                .unwrap_err();
            texts.push(format!("{err} {err:?}"));
            texts.push(format!("{settings:?} {target:?} {target}"));
        });
        let logged = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
        for t in texts.iter().chain([&logged]) {
            assert!(!t.contains(secret), "the password leaked: {t}");
        }
        let admin = std::env::var("BPR_TEST_DATABASE_URL").unwrap();
        admin_sql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", target.dbname()),
        );
    }

    struct LogSink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for LogSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
