//! Coordination between several `bpr serve` replicas sharing one database:
//! leases with fencing tokens, and the supervisor's leader election built on
//! them.
//!
//! # Leases
//!
//! A lease is one row of the `leases` table (migration
//! `0010_replicas_leases`): a name, the owner holding it, the time it expires
//! and a fencing token. [`lease`] decides, as pure functions of the row and
//! the time, what acquiring, renewing, releasing and checking do; [`store`]
//! runs each decision as one read-then-write transaction of the database
//! ([`crate::db::Database::write`]: an immediate transaction, so two replicas
//! never both see a lease free). The token strictly increases every time the
//! lease changes hands (or its holder lets it lapse and takes it again): a
//! holder that was paused past its expiry holds an old token, and every
//! [`LeaseStore::check`] it makes fails from then on.
//!
//! # Leadership
//!
//! [`Leadership`] holds the lease named [`SUPERVISOR_LEASE`]: every replica
//! tries to take or renew it every [`LeaderSettings::renew`]; the one holding
//! it runs the supervisor (TTL cleanup, recovery, health and heal, payment,
//! price refresh), the others serve the API only. Leadership is lost when a
//! renewal fails (the database is unreachable, or another replica took the
//! lease after it expired). Before each side effect the supervisor makes, it
//! calls [`Leadership::check`], which reads the row: a leader that was paused
//! (SIGSTOP) past its lease and resumed finds a newer token there and does
//! nothing.
//!
//! Time is the database's clock (milliseconds since 1970, read in the same
//! transaction as the row; injected for unit tests): the replicas' own clocks
//! never enter the arithmetic. A holder measures how long it may still trust
//! its lease on its own monotonic clock, from the moment it asked for it.
//!
//! Per-deployment exclusion uses the same leases, one per deployment
//! (`deployment/<id>`, see [`crate::tracking::DeploymentLock`]).

mod error;
mod leader;
pub mod lease;
mod store;

pub use error::{CoordinationError, Result};
pub use leader::{LeaderSettings, Leadership, SUPERVISOR_LEASE, replica_id};
pub use lease::{Lease, LeaseRow, Lost};
pub use store::{LeaseStore, NowMs, now_sql, system_now_ms};
