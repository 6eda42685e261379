//! [`LeaseStore`]: the `leases` table, each lease decision of [`super::lease`]
//! run as one read-then-write transaction.

use std::sync::Arc;

use super::error::{CoordinationError, Result};
use super::lease::{self, Acquired, Lease, LeaseRow};
use crate::db::{Database, DbError, Dialect, Tx, Value, params};

/// How many leases one renewal statement names at most (well under
/// SQLite's and PostgreSQL's limits on parameters).
pub const RENEW_BATCH: usize = 500;

/// The time in ms since 1970, as leases count it (injected in tests).
pub type NowMs = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock in ms since 1970.
pub fn system_now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The database's clock in ms since 1970, as one SQL expression: every
/// replica's lease arithmetic uses the one clock of the shared database, so
/// the replicas' own clocks may disagree (PostgreSQL's `clock_timestamp()` is
/// the time of the statement, not of the transaction's start).
pub fn now_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

/// Where a lease store takes the time from.
#[derive(Clone)]
enum Clock {
    /// The database's clock ([`now_sql`]): what replicas use.
    Database,
    /// An injected clock: unit tests of the decisions.
    Injected(NowMs),
}

/// Leases in the host's database; cheap to clone.
#[derive(Clone)]
pub struct LeaseStore {
    db: Database,
    clock: Clock,
}

impl std::fmt::Debug for LeaseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseStore").field("db", &self.db).finish()
    }
}

fn read(tx: &mut Tx<'_>, name: &str) -> Result<Option<LeaseRow>, DbError> {
    tx.query_opt(
        "SELECT owner, token, expires_at_ms FROM leases WHERE name = ?1",
        params![name],
    )?
    .map(|r| {
        Ok(LeaseRow {
            owner: r.get(0)?,
            token: r.get(1)?,
            expires_at_ms: r.get(2)?,
        })
    })
    .transpose()
}

// Portable SQL: the same statement on SQLite and PostgreSQL.
fn write(tx: &mut Tx<'_>, name: &str, row: &LeaseRow) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO leases (name, owner, token, expires_at_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, token = excluded.token,
             expires_at_ms = excluded.expires_at_ms",
        params![name, row.owner, row.token, row.expires_at_ms],
    )
    .map(|_| ())
}

impl LeaseStore {
    /// Leases in `db`, timed by the database's clock.
    pub fn new(db: Database) -> Self {
        Self {
            db,
            clock: Clock::Database,
        }
    }

    /// Leases in `db`, timed by `now` (unit tests).
    pub fn with_clock(db: Database, now: NowMs) -> Self {
        Self {
            db,
            clock: Clock::Injected(now),
        }
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The injected clock's time, or `None` when the database's clock is used
    /// (then a holder measures its lease on its own monotonic clock from the
    /// moment it asked).
    pub fn injected_now_ms(&self) -> Option<i64> {
        match &self.clock {
            Clock::Database => None,
            Clock::Injected(now) => Some(now()),
        }
    }

    /// The time as this store counts it, as SQL for a statement in `dialect`:
    /// the database's clock, or the injected time as a literal.
    pub fn now_sql(&self, dialect: Dialect) -> String {
        match &self.clock {
            Clock::Database => now_sql(dialect).to_string(),
            Clock::Injected(now) => format!("CAST({} AS BIGINT)", now()),
        }
    }

    /// The time as this store counts it, read inside `tx`.
    pub fn now_in(&self, tx: &mut Tx<'_>) -> Result<i64, DbError> {
        match &self.clock {
            Clock::Injected(now) => Ok(now()),
            Clock::Database => {
                let sql = format!("SELECT {}", now_sql(tx.dialect()));
                match tx.query_opt(&sql, params![])? {
                    Some(row) => row.get(0),
                    None => Ok(0),
                }
            }
        }
    }

    fn transact<T>(
        &self,
        name: &str,
        job: impl FnOnce(&mut Tx<'_>, i64) -> Result<T>,
    ) -> Result<T> {
        self.db
            .write(|tx| {
                let now = self.now_in(tx)?;
                job(tx, now)
            })
            .map_err(|e| match e {
                CoordinationError::StoreFailed { source, .. } => CoordinationError::StoreFailed {
                    name: name.to_string(),
                    source,
                },
                other => other,
            })
    }

    /// Take lease `name` for `owner` for `ttl_ms` (or extend it, when `owner`
    /// holds it unexpired); [`CoordinationError::HeldElsewhere`] when another
    /// owner holds it unexpired.
    pub fn acquire(&self, name: &str, owner: &str, ttl_ms: i64) -> Result<Lease> {
        self.transact(name, |tx, now| {
            match lease::acquire(read(tx, name)?.as_ref(), owner, now, ttl_ms) {
                Acquired::Granted(row) => {
                    write(tx, name, &row)?;
                    Ok(Lease {
                        name: name.to_string(),
                        owner: row.owner,
                        token: row.token,
                        expires_at_ms: row.expires_at_ms,
                    })
                }
                Acquired::Held(row) => Err(CoordinationError::HeldElsewhere {
                    name: name.to_string(),
                    owner: row.owner,
                    until_ms: row.expires_at_ms,
                }),
            }
        })
    }

    /// Extend `lease` by `ttl_ms` from now; [`CoordinationError::Fenced`] when
    /// it lapsed or another owner holds it (nothing is written then).
    pub fn renew(&self, lease: &Lease, ttl_ms: i64) -> Result<Lease> {
        self.transact(&lease.name, |tx, now| {
            match lease::renew(read(tx, &lease.name)?.as_ref(), lease, now, ttl_ms) {
                Ok(row) => {
                    write(tx, &lease.name, &row)?;
                    Ok(Lease {
                        expires_at_ms: row.expires_at_ms,
                        ..lease.clone()
                    })
                }
                Err(why) => Err(fenced(lease, why)),
            }
        })
    }

    /// Give `lease` up now (a no-op when it was already lost).
    pub fn release(&self, lease: &Lease) -> Result<()> {
        self.transact(&lease.name, |tx, _| {
            if let Some(row) = lease::release(read(tx, &lease.name)?.as_ref(), lease) {
                write(tx, &lease.name, &row)?;
            }
            Ok(())
        })
    }

    /// `Ok` when `lease` is still the current, unexpired holding: what a
    /// holder asks before each side effect; [`CoordinationError::Fenced`]
    /// otherwise.
    pub fn check(&self, lease: &Lease) -> Result<()> {
        self.transact(&lease.name, |tx, now| {
            match lease::lost(read(tx, &lease.name)?.as_ref(), lease, now) {
                None => Ok(()),
                Some(why) => Err(fenced(lease, why)),
            }
        })
    }

    /// Take lease `name` for `owner` as [`LeaseStore::acquire`] does, or,
    /// when another owner holds it unexpired and `dead` says that owner is
    /// known dead, take it over at once ([`lease::take_over`]). `None` when
    /// a live owner holds it.
    pub fn acquire_or_take_over(
        &self,
        name: &str,
        owner: &str,
        ttl_ms: i64,
        dead: impl FnOnce(&LeaseRow) -> bool,
    ) -> Result<Option<Lease>> {
        self.transact(name, |tx, now| {
            let row = read(tx, name)?;
            let granted = match lease::acquire(row.as_ref(), owner, now, ttl_ms) {
                Acquired::Granted(row) => row,
                Acquired::Held(held) if dead(&held) => {
                    lease::take_over(Some(&held), owner, now, ttl_ms)
                }
                Acquired::Held(_) => return Ok(None),
            };
            write(tx, name, &granted)?;
            Ok(Some(Lease {
                name: name.to_string(),
                owner: granted.owner,
                token: granted.token,
                expires_at_ms: granted.expires_at_ms,
            }))
        })
    }

    /// Renew the unexpired leases among `names` that `owner` holds, by
    /// `ttl_ms` from now, in one statement per [`RENEW_BATCH`] names: the
    /// `(name, token)` of each lease renewed. A name missing from the answer
    /// lapsed or was taken (or was released meanwhile). Only the names given
    /// are touched: a lease taken after the caller listed them is not.
    pub fn renew_all(
        &self,
        owner: &str,
        names: &[String],
        ttl_ms: i64,
    ) -> Result<Vec<(String, i64)>> {
        let mut out = Vec::with_capacity(names.len());
        for batch in names.chunks(RENEW_BATCH) {
            let renewed = self.db.write(|tx| {
                let now = self.now_sql(tx.dialect());
                let list = (0..batch.len())
                    .map(|i| format!("?{}", i + 3))
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut args = params![owner, ttl_ms].to_vec();
                args.extend(batch.iter().map(|n| Value::Text(n.clone())));
                let rows = tx.query(
                    &format!(
                        "UPDATE leases SET expires_at_ms = {now} + CAST(?2 AS BIGINT)
                         WHERE owner = ?1 AND expires_at_ms > {now} AND name IN ({list})
                         RETURNING name, token"
                    ),
                    &args,
                )?;
                rows.iter()
                    .map(|r| Ok((r.get(0)?, r.get(1)?)))
                    .collect::<Result<Vec<(String, i64)>, DbError>>()
            });
            out.extend(renewed.map_err(|e| CoordinationError::StoreFailed {
                name: format!("leases of {owner}"),
                source: Box::new(e),
            })?);
        }
        Ok(out)
    }

    /// Why `lease` no longer stands, read inside `tx` (one statement: the
    /// row and the time), or `None` when it is still the current, unexpired
    /// holding: the fence a holder's write checks in its own transaction.
    pub fn lost_in(&self, tx: &mut Tx<'_>, lease: &Lease) -> Result<Option<lease::Lost>, DbError> {
        let now = self.now_sql(tx.dialect());
        let row = tx.query_opt(
            &format!(
                "SELECT l.owner, l.token, l.expires_at_ms, {now} FROM (SELECT 1 AS one) AS x
                 LEFT JOIN leases l ON l.name = ?1"
            ),
            params![lease.name],
        )?;
        let Some(row) = row else {
            return Ok(Some(lease::Lost::Gone));
        };
        let now: i64 = row.get(3)?;
        let owner: Option<String> = row.get(0)?;
        let stored = match owner {
            None => None,
            Some(owner) => Some(LeaseRow {
                owner,
                token: row.get(1)?,
                expires_at_ms: row.get(2)?,
            }),
        };
        Ok(lease::lost(stored.as_ref(), lease, now))
    }

    /// The row of lease `name` as stored, if any.
    pub fn get(&self, name: &str) -> Result<Option<LeaseRow>> {
        self.transact(name, |tx, _| Ok(read(tx, name)?))
    }
}

fn fenced(lease: &Lease, why: lease::Lost) -> CoordinationError {
    CoordinationError::Fenced {
        name: lease.name.clone(),
        owner: lease.owner.clone(),
        token: lease.token,
        why,
    }
}

impl From<DbError> for CoordinationError {
    fn from(source: DbError) -> Self {
        Self::StoreFailed {
            name: String::new(),
            source: Box::new(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::db::testing::{TestDb, on_both_backends};

    fn clocked(db: Database, clock: &Arc<AtomicI64>) -> LeaseStore {
        let clock = clock.clone();
        LeaseStore::with_clock(db, Arc::new(move || clock.load(Ordering::SeqCst)))
    }

    on_both_backends! {
        fn two_processes_on_one_database_never_both_hold_a_lease(backend) {
            let t = TestDb::new(backend);
            let clock = Arc::new(AtomicI64::new(1_000));
            // Two handles, as two processes open the database.
            let (a, b) = (clocked(t.db(), &clock), clocked(t.reopen(), &clock));
            let held = a.acquire("supervisor", "a", 500).expect("a takes it");
            assert_eq!(held.token, 1);
            assert!(matches!(
                b.acquire("supervisor", "b", 500),
                Err(CoordinationError::HeldElsewhere { ref owner, until_ms: 1_500, .. }) if owner == "a"
            ));
            a.check(&held).expect("a still holds it");
            // a stops renewing; at its expiry b takes over with a higher token.
            clock.store(1_500, Ordering::SeqCst);
            let taken = b.acquire("supervisor", "b", 500).expect("b takes it");
            assert_eq!(taken.token, 2);
            // a, resumed, is fenced: its check and its renewal fail, and its
            // release leaves b's lease alone.
            assert!(matches!(
                a.check(&held),
                Err(CoordinationError::Fenced { token: 1, .. })
            ));
            assert!(a.renew(&held, 500).is_err());
            a.release(&held).unwrap();
            b.check(&taken).expect("b unaffected");
        }

        fn a_released_lease_is_free_at_once_for_another_owner(backend) {
            let t = TestDb::new(backend);
            let clock = Arc::new(AtomicI64::new(1_000));
            let s = clocked(t.db(), &clock);
            let a = s.acquire("supervisor", "a", 60_000).unwrap();
            s.release(&a).unwrap();
            let b = s.acquire("supervisor", "b", 60_000).unwrap();
            assert_eq!(b.token, 2);
            assert_eq!(s.get("supervisor").unwrap().unwrap().owner, "b");
        }

        fn renewal_moves_the_expiry_and_keeps_the_token(backend) {
            let t = TestDb::new(backend);
            let clock = Arc::new(AtomicI64::new(1_000));
            let s = clocked(t.db(), &clock);
            let a = s.acquire("supervisor", "a", 500).unwrap();
            clock.store(1_400, Ordering::SeqCst);
            let renewed = s.renew(&a, 500).unwrap();
            assert_eq!((renewed.token, renewed.expires_at_ms), (1, 1_900));
            clock.store(1_800, Ordering::SeqCst);
            s.check(&renewed).expect("renewed lease still current");
        }

        fn of_eight_threads_racing_for_a_free_lease_exactly_one_wins(backend) {
            let t = TestDb::new(backend);
            let clock = Arc::new(AtomicI64::new(1_000));
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let s = clocked(t.reopen(), &clock);
                    std::thread::spawn(move || s.acquire("supervisor", &format!("r{i}"), 60_000).is_ok())
                })
                .collect();
            let won = threads
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .filter(|&ok| ok)
                .count();
            assert_eq!(won, 1, "exactly one replica took the lease");
        }
    }
}
