//! One PostgreSQL connection on a thread of its own.
//!
//! The `postgres` client is synchronous and drives its own runtime inside
//! each call, so it panics when called from a thread that runs a tokio
//! runtime, and `bpr` calls the store from async code (current-thread
//! runtimes in tests, so `block_in_place` is no way out). So each connection
//! lives on a dedicated thread, and the caller hands it one owned request at
//! a time over a channel and waits for the answer: correct under every
//! runtime, and the caller blocks exactly as it does on SQLite's mutex.
//!
//! A lost connection is reopened at the next request; a single statement
//! outside a transaction is then retried once. Inside a transaction it is
//! not (what the transaction did is gone): the error goes to the caller.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender};

use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};

use super::tls::RustlsConnect;

use super::super::{DbError, Result, Row, Value};

/// Starts a transaction whose session the server ends once it waited more
/// than 5 s for its client inside it (a paused or wedged replica), so the
/// write advisory lock it holds is not held by a process that does not run.
const IDLE_IN_TRANSACTION: &str = "BEGIN; SET LOCAL idle_in_transaction_session_timeout = '5s'";

/// What a caller asks of the connection.
pub(super) enum Request {
    /// One statement; answers [`Outcome::Count`].
    Execute(String, Vec<Value>),
    /// One query; answers [`Outcome::Rows`].
    Query(String, Vec<Value>),
    /// Statements without parameters or results (migrations).
    Batch(String),
    /// Starts a transaction, taking the advisory lock `lock` first if given.
    Begin { lock: Option<i64> },
    /// Commits the transaction.
    Commit,
    /// Rolls the transaction back (nothing when the connection is gone).
    Rollback,
}

/// The answer to a [`Request`].
pub(super) enum Outcome {
    Count(usize),
    Rows(Vec<Row>),
    Done,
}

/// How a connection is opened: the client's settings and, with TLS, the
/// connector.
pub(super) struct Dial {
    config: postgres::Config,
    tls: Option<RustlsConnect>,
}

impl Dial {
    fn connect(&self) -> std::result::Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        }
    }
}

pub(super) struct Worker {
    dial: Dial,
    /// The database, for errors (no password).
    pub(super) database: String,
    client: Option<Client>,
    statements: HashMap<String, Statement>,
    in_tx: bool,
}

impl Worker {
    pub(super) fn new(
        config: postgres::Config,
        tls: Option<RustlsConnect>,
        database: String,
    ) -> Self {
        Self {
            dial: Dial { config, tls },
            database,
            client: None,
            statements: HashMap::new(),
            in_tx: false,
        }
    }

    /// Serves requests until the pool drops its end of the channel.
    pub(super) fn run(mut self, requests: Receiver<Request>, answers: Sender<Result<Outcome>>) {
        while let Ok(request) = requests.recv() {
            let answer = self.handle(request);
            if answers.send(answer).is_err() {
                break;
            }
        }
    }

    fn failed(&self, source: postgres::Error) -> DbError {
        DbError::Postgres {
            database: self.database.clone(),
            source,
        }
    }

    /// The open connection, opening one if there is none (or it was lost).
    fn client(&mut self) -> Result<&mut Client> {
        connected(
            &mut self.client,
            &mut self.statements,
            &self.dial,
            &self.database,
        )
    }

    fn handle(&mut self, request: Request) -> Result<Outcome> {
        match request {
            Request::Execute(sql, params) => self
                .statement(&sql, &params, false)
                .map(|o| o.unwrap_or(Outcome::Count(0))),
            Request::Query(sql, params) => self
                .statement(&sql, &params, true)
                .map(|o| o.unwrap_or(Outcome::Rows(Vec::new()))),
            Request::Batch(sql) => {
                let r = self.client()?.batch_execute(&sql);
                r.map_err(|e| self.lost(e)).map(|()| Outcome::Done)
            }
            Request::Begin { lock } => {
                let begin = |client: &mut Client| {
                    // A process paused (SIGSTOP) inside a transaction would
                    // hold the write lock of every replica: the server ends
                    // such a session, and the transaction with it.
                    client
                        .batch_execute(IDLE_IN_TRANSACTION)
                        .and_then(|()| match lock {
                            Some(key) => client
                                .execute("SELECT pg_advisory_xact_lock($1)", &[&key])
                                .map(|_| ()),
                            None => Ok(()),
                        })
                };
                let mut r = begin(self.client()?);
                // Nothing ran yet: on a connection lost meanwhile, once more.
                if let Err(e) = &r
                    && self.is_lost(e)
                {
                    self.client = None;
                    r = begin(self.client()?);
                }
                match r {
                    Ok(()) => {
                        self.in_tx = true;
                        Ok(Outcome::Done)
                    }
                    Err(e) => {
                        if let Some(c) = self.client.as_mut() {
                            let _ = c.batch_execute("ROLLBACK");
                        }
                        Err(self.lost(e))
                    }
                }
            }
            Request::Commit => {
                self.in_tx = false;
                let r = match self.client.as_mut() {
                    Some(c) => c.batch_execute("COMMIT"),
                    None => return Ok(Outcome::Done),
                };
                r.map_err(|e| self.lost(e)).map(|()| Outcome::Done)
            }
            Request::Rollback => {
                self.in_tx = false;
                if let Some(c) = self.client.as_mut().filter(|c| !c.is_closed()) {
                    let _ = c.batch_execute("ROLLBACK");
                }
                Ok(Outcome::Done)
            }
        }
    }

    /// True when `e` means the connection is gone: closed, or ended by the
    /// server (SQLSTATE class 57P: an administrator, a restart, a failover).
    fn is_lost(&self, e: &postgres::Error) -> bool {
        e.is_closed()
            || self.client.as_ref().is_none_or(Client::is_closed)
            || e.code().is_some_and(|c| c.code().starts_with("57P"))
    }

    /// Notes a lost connection (reopened at the next request) and wraps `e`.
    fn lost(&mut self, e: postgres::Error) -> DbError {
        if self.is_lost(&e) {
            self.client = None;
            self.statements.clear();
        }
        self.failed(e)
    }

    /// Runs one statement; outside a transaction, once more on a new
    /// connection when the old one was lost.
    fn statement(&mut self, sql: &str, params: &[Value], rows: bool) -> Result<Option<Outcome>> {
        let client = connected(
            &mut self.client,
            &mut self.statements,
            &self.dial,
            &self.database,
        )?;
        match run(client, &mut self.statements, sql, params, rows) {
            Err(e) if !self.in_tx && self.is_lost(&e) => {
                self.client = None;
                tracing::warn!(
                    database = %self.database,
                    "the connection to PostgreSQL was lost; reconnecting"
                );
                let client = connected(
                    &mut self.client,
                    &mut self.statements,
                    &self.dial,
                    &self.database,
                )?;
                run(client, &mut self.statements, sql, params, rows)
                    .map_err(|e| self.lost(e))
                    .map(Some)
            }
            other => other.map_err(|e| self.lost(e)).map(Some),
        }
    }
}

/// `client`, connected: opened when there is none or it was lost.
fn connected<'c>(
    client: &'c mut Option<Client>,
    statements: &mut HashMap<String, Statement>,
    dial: &Dial,
    database: &str,
) -> Result<&'c mut Client> {
    if client.as_ref().is_some_and(Client::is_closed) {
        *client = None;
    }
    match client {
        Some(c) => Ok(c),
        None => {
            statements.clear();
            let c = dial.connect().map_err(|source| DbError::Unreachable {
                database: database.to_string(),
                detail: causes(&source),
                hint: if dial.tls.is_some() && is_tls_failure(&source) {
                    "Check [database] tls and ca_file: with verify-full the server's \
                         certificate must chain to ca_file (or the system's roots) and name the \
                         URL's host; a server without TLS needs tls = \"disable\""
                } else {
                    "Check that the server runs and accepts this user, and the password in \
                         [database] password_file / password_env"
                },
                source,
            })?;
            Ok(client.insert(c))
        }
    }
}

/// `e` and its causes, outermost first.
fn causes(e: &postgres::Error) -> String {
    let mut out = e.to_string();
    let mut next = std::error::Error::source(e);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// Whether the connection failed in the TLS handshake (or the server offered none).
fn is_tls_failure(e: &postgres::Error) -> bool {
    let text = causes(e);
    text.contains("TLS") || text.contains("certificate") || text.contains("tls")
}

/// One statement on `client` (prepared once per connection).
fn run(
    client: &mut Client,
    statements: &mut HashMap<String, Statement>,
    sql: &str,
    params: &[Value],
    rows: bool,
) -> std::result::Result<Outcome, postgres::Error> {
    let statement = match statements.get(sql) {
        Some(s) => s.clone(),
        None => {
            let s = client.prepare(&super::placeholders(sql))?;
            statements.insert(sql.to_string(), s.clone());
            s
        }
    };
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    if rows {
        let found = client.query(&statement, &refs)?;
        let mut out = Vec::with_capacity(found.len());
        for r in &found {
            let mut values = Vec::with_capacity(r.len());
            for i in 0..r.len() {
                values.push(r.try_get::<_, Value>(i)?);
            }
            out.push(Row { values });
        }
        Ok(Outcome::Rows(out))
    } else {
        Ok(Outcome::Count(
            usize::try_from(client.execute(&statement, &refs)?).unwrap_or(usize::MAX),
        ))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        let mismatch = |what: &str| -> BoxError { format!("{what} cannot be sent as {ty}").into() };
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(mismatch("an integer")),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                Type::FLOAT4 => (*f as f32).to_sql(ty, out),
                _ => Err(mismatch("a real")),
            },
            Value::Text(s) if <&str as ToSql>::accepts(ty) => s.as_str().to_sql(ty, out),
            Value::Text(_) => Err(mismatch("text")),
            Value::Blob(b) if *ty == Type::BYTEA => b.as_slice().to_sql(ty, out),
            Value::Blob(_) => Err(mismatch("a blob")),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, BoxError> {
        // `to_sql` checks each kind against the type itself.
        self.to_sql(ty, out)
    }
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(match *ty {
            Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
            Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
            Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
            Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::BYTEA => Value::Blob(<Vec<u8>>::from_sql(ty, raw)?),
            _ if <String as FromSql>::accepts(ty) => Value::Text(String::from_sql(ty, raw)?),
            _ => return Err(format!("bpr does not read columns of type {ty}").into()),
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
