//! The PostgreSQL backend: a small pool of connections, each on a thread of
//! its own (see [`worker`]), checked out as a [`Session`] for one statement
//! or one transaction.
//!
//! Read-then-write jobs ([`crate::db::Database::write`]) keep SQLite's
//! immediate-transaction semantics through a transaction-scoped advisory
//! lock, `pg_advisory_xact_lock(WRITE_LOCK)`, taken first: writers run one
//! at a time, across every process and replica on the database, and the
//! lock goes with the commit, the rollback or the lost connection. Chosen
//! over SERIALIZABLE with retry because a job is a Rust closure run once
//! (`FnOnce`, it may have looked at the clock or built ids); retrying it
//! would need every caller to be re-runnable. The cost is one writer at a
//! time, which is what the SQLite file has always had; reads do not wait.
//!
//! Advisory lock keys bpr uses (per database): [`WRITE_LOCK`] and
//! [`MIGRATE_LOCK`].

pub(super) mod migrations;
mod target;
mod tls;
mod worker;

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub use target::{PasswordSource, PostgresTarget};
pub use tls::{TlsMode, TlsSettings};
use worker::{Outcome, Request, Worker};

use super::{DatabaseSettings, DbError, Result, Row, Value};

/// The advisory lock every [`crate::db::Database::write`] job holds.
pub const WRITE_LOCK: i64 = 0x6270_7200_0000_0001;
/// The advisory lock migrations run under.
pub const MIGRATE_LOCK: i64 = 0x6270_7200_0000_0002;

/// Connections to one PostgreSQL database.
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

struct Inner {
    target: PostgresTarget,
    config: postgres::Config,
    tls: Option<tls::RustlsConnect>,
    idle: Mutex<Vec<Conn>>,
    returned: Condvar,
    /// How long a caller waits for a free connection.
    wait: Duration,
    size: usize,
}

/// The caller's ends of one worker's channels.
struct Conn {
    requests: mpsc::Sender<Request>,
    answers: mpsc::Receiver<Result<Outcome>>,
}

impl Conn {
    fn spawn(
        config: &postgres::Config,
        tls: &Option<tls::RustlsConnect>,
        database: String,
        n: usize,
    ) -> Result<Conn> {
        let (requests, requests_rx) = mpsc::channel();
        let (answers_tx, answers) = mpsc::channel();
        let worker = Worker::new(config.clone(), tls.clone(), database.clone());
        std::thread::Builder::new()
            .name(format!("bpr-pg-{n}"))
            .spawn(move || worker.run(requests_rx, answers_tx))
            .map_err(|_| DbError::WorkerGone { database })?;
        Ok(Conn { requests, answers })
    }
}

impl Pool {
    /// Connects to `target` and brings its schema up to date.
    pub(crate) fn open(target: PostgresTarget, settings: &DatabaseSettings) -> Result<Pool> {
        let tls = tls::connector(&target, &settings.tls)?;
        let mut config = target.client_config(settings.password.as_ref())?;
        // With a connector, `require` refuses a server that does not offer TLS
        // (the client never falls back to clear text).
        config.ssl_mode(if tls.is_some() {
            postgres::config::SslMode::Require
        } else {
            postgres::config::SslMode::Disable
        });
        let size = settings.max_connections.max(1);
        let mut conns = Vec::with_capacity(size);
        for n in 0..size {
            conns.push(Conn::spawn(&config, &tls, target.to_string(), n)?);
        }
        let pool = Pool {
            inner: Arc::new(Inner {
                target,
                config,
                tls,
                idle: Mutex::new(conns),
                returned: Condvar::new(),
                wait: settings.busy_timeout,
                size,
            }),
        };
        migrations::run(&mut pool.session()?)?;
        Ok(pool)
    }

    /// The database (no password).
    pub(crate) fn target(&self) -> &PostgresTarget {
        &self.inner.target
    }

    /// A connection of the pool for a while, waiting for one to be free.
    pub(crate) fn session(&self) -> Result<Session> {
        let deadline = Instant::now() + self.inner.wait;
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(Session {
                    pool: self.inner.clone(),
                    conn: Some(conn),
                    in_tx: false,
                    broken: false,
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DbError::Busy {
                    database: self.inner.target.to_string(),
                    connections: self.inner.size,
                    waited: self.inner.wait,
                });
            }
            idle = self
                .inner
                .returned
                .wait_timeout(idle, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// One connection, checked out: statements run on it in order; dropped
/// inside a transaction, it rolls back.
pub(crate) struct Session {
    pool: Arc<Inner>,
    conn: Option<Conn>,
    in_tx: bool,
    broken: bool,
}

impl Session {
    fn call(&mut self, request: Request) -> Result<Outcome> {
        let gone = || DbError::WorkerGone {
            database: self.pool.target.to_string(),
        };
        let Some(conn) = self.conn.as_ref() else {
            return Err(gone());
        };
        if conn.requests.send(request).is_err() {
            self.broken = true;
            return Err(gone());
        }
        match conn.answers.recv() {
            Ok(answer) => answer,
            Err(_) => {
                self.broken = true;
                Err(gone())
            }
        }
    }

    /// Runs one statement; returns the rows changed.
    pub(crate) fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize> {
        match self.call(Request::Execute(sql.to_string(), params.to_vec()))? {
            Outcome::Count(n) => Ok(n),
            _ => Ok(0),
        }
    }

    /// Every row of a query.
    pub(crate) fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match self.call(Request::Query(sql.to_string(), params.to_vec()))? {
            Outcome::Rows(rows) => Ok(rows),
            _ => Ok(Vec::new()),
        }
    }

    /// Statements without parameters (migrations).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<()> {
        self.call(Request::Batch(sql.to_string())).map(|_| ())
    }

    /// Starts a transaction holding the write lock.
    pub(crate) fn begin_write(&mut self) -> Result<()> {
        self.begin(Some(WRITE_LOCK))
    }

    /// Starts a transaction, holding advisory lock `lock` if given.
    pub(crate) fn begin(&mut self, lock: Option<i64>) -> Result<()> {
        self.call(Request::Begin { lock })?;
        self.in_tx = true;
        Ok(())
    }

    /// Rolls the transaction back.
    pub(crate) fn rollback(&mut self) -> Result<()> {
        self.in_tx = false;
        self.call(Request::Rollback).map(|_| ())
    }

    /// Commits the transaction.
    pub(crate) fn commit(&mut self) -> Result<()> {
        self.in_tx = false;
        self.call(Request::Commit).map(|_| ())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.in_tx {
            let _ = self.call(Request::Rollback);
        }
        let conn = if self.broken {
            // Its thread is gone: a new one takes its place.
            Conn::spawn(
                &self.pool.config,
                &self.pool.tls,
                self.pool.target.to_string(),
                self.pool.size,
            )
            .ok()
        } else {
            self.conn.take()
        };
        if let Some(conn) = conn {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            self.pool.returned.notify_one();
        }
    }
}

/// `sql` with SQLite's numbered placeholders (`?1`) as PostgreSQL's (`$1`);
/// quoted strings and identifiers are left alone.
pub(super) fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None => match c {
                '\'' | '"' => {
                    quote = Some(c);
                    out.push(c);
                }
                '?' if chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
                _ => out.push(c),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::placeholders;

    #[test]
    fn numbered_placeholders_become_dollar_ones_outside_quotes() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND \"?3\" = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND \"?3\" = $12"
        );
        assert_eq!(
            placeholders("x = 'it''s ?1' OR y = ?2"),
            "x = 'it''s ?1' OR y = $2"
        );
    }
}
