//! The tracker's errors.

use super::status::DeploymentStatus;
use crate::db::DbError;

/// A tracker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TrackError {
    /// No deployment has this id.
    #[error("no deployment {0:?} (see `bpr status`)")]
    NotFound(String),
    /// A live deployment already has this service key.
    #[error("service {key} already has a live deployment ({existing})")]
    ServiceKeyTaken {
        /// The key.
        key: String,
        /// The live deployment's id (empty when another process won a race and it is not visible yet).
        existing: String,
    },
    /// A live managed cluster already has this name.
    #[error(
        "a managed cluster named {name} is already tracked ({existing}); choose another name or delete it first"
    )]
    ClusterNameTaken {
        /// The name.
        name: String,
        /// The live record's id (empty when another process won a race and it is not visible yet).
        existing: String,
    },
    /// A deployment with this id already exists.
    #[error("deployment {0:?} already exists; choose another id or omit it")]
    AlreadyExists(String),
    /// The state machine does not allow this transition.
    #[error(
        "deployment {id}: {from} -> {to} is not allowed (holds cloud resources: {holds_resources})"
    )]
    TransitionNotAllowed {
        /// Deployment id.
        id: String,
        /// Current status.
        from: DeploymentStatus,
        /// Requested status.
        to: DeploymentStatus,
        /// Whether it still held resources.
        holds_resources: bool,
    },
    /// A stored row could not be read back (edited by hand, or a newer bpr).
    #[error("deployment {id}: stored row is unreadable: {message}")]
    Corrupt {
        /// Deployment id.
        id: String,
        /// What was wrong.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// This process's lease on the deployment no longer stands (it lapsed
    /// while the process was paused or cut off, or another replica took it):
    /// the write was refused and nothing was written.
    #[error(
        "deployment {id}: this process no longer holds the deployment's lease ({why}); nothing was written: another process or replica may be working on it now"
    )]
    Fenced {
        /// Deployment id.
        id: String,
        /// What happened to the lease.
        why: String,
    },
    /// The deployment's lease could not be taken (the database failed).
    #[error("deployment {id}: cannot take its lease: {source}")]
    LeaseFailed {
        /// Deployment id.
        id: String,
        /// Cause.
        #[source]
        source: Box<crate::coordination::CoordinationError>,
    },
    /// The per-deployment lock file could not be used.
    #[error("cannot lock {path}: {source}")]
    LockFailed {
        /// Lock file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result of the tracker.
pub type Result<T, E = TrackError> = std::result::Result<T, E>;
