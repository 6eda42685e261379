//! [`CoordinationError`]: why a lease could not be taken, kept or trusted.

/// A lease operation failed, or a lease is no longer held.
#[derive(Debug, thiserror::Error)]
pub enum CoordinationError {
    /// The lease row could not be read or written.
    #[error("lease {name}: the database failed: {source}")]
    StoreFailed {
        /// The lease.
        name: String,
        /// Cause.
        #[source]
        source: Box<crate::db::DbError>,
    },
    /// Another owner holds the lease and it has not expired.
    #[error("lease {name} is held by {owner} until {until_ms} ms")]
    HeldElsewhere {
        /// The lease.
        name: String,
        /// Who holds it.
        owner: String,
        /// When it expires unless renewed (ms since 1970).
        until_ms: i64,
    },
    /// The lease this holder had was lost: it expired, or another owner took
    /// it (its token moved past `token`). Whatever the holder was about to do
    /// under it must not be done.
    #[error("lease {name} (token {token}) is no longer held by {owner}: {why}")]
    Fenced {
        /// The lease.
        name: String,
        /// The holder that lost it.
        owner: String,
        /// The token it held.
        token: i64,
        /// What the row says now.
        why: super::lease::Lost,
    },
    /// This replica does not lead (it never did, or it lost the lease).
    #[error("this replica ({owner}) is not the supervisor's leader")]
    NotLeader {
        /// This replica.
        owner: String,
    },
}

/// Result of the coordination layer.
pub type Result<T, E = CoordinationError> = std::result::Result<T, E>;
