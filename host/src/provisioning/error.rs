//! Why a deployment or a termination failed.

use super::request::RequestError;
use crate::tracking::TrackError;

/// Why a deployment (or a termination) failed. Every case that concerns a
/// recorded deployment names its id: `bpr history <id>` shows the rest.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The request is invalid; nothing was written.
    #[error("invalid deploy request: {0}")]
    InvalidRequest(#[from] RequestError),
    /// No candidate was given.
    #[error("no candidate to deploy on: give at least one (provider, region, instance type)")]
    NoCandidates,
    /// Another process is working on this deployment right now.
    #[error("deployment {0} is being worked on by another bpr process; try again when it is done")]
    Busy(String),
    /// The tracker failed.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// An error no other candidate would fix (unauthorized, invalid, denied).
    #[error("deployment {id}: stopped at {candidate}: {message}")]
    Stopped {
        /// Deployment id.
        id: String,
        /// The candidate (`provider/region/type`).
        candidate: String,
        /// Why.
        message: String,
    },
    /// Every candidate failed over.
    #[error("deployment {id}: no candidate could serve it: {}", reasons.join("; "))]
    Exhausted {
        /// Deployment id.
        id: String,
        /// One reason per candidate.
        reasons: Vec<String>,
    },
    /// It failed after the instance was created (health, workload); what was
    /// created was deleted.
    #[error("deployment {id}: {message}; its instance was deleted")]
    Unhealthy {
        /// Deployment id.
        id: String,
        /// Why.
        message: String,
    },
    /// Something created could not be deleted (yet). The record is `failed`
    /// and still holds the instance; `bpr cleanup` (or the supervisor) retries.
    #[error(
        "deployment {id}: {message}; its instance {instance} could not be deleted yet ({cleanup}); run `bpr cleanup` to retry"
    )]
    CleanupFailed {
        /// Deployment id.
        id: String,
        /// The original failure.
        message: String,
        /// Instance id.
        instance: String,
        /// Why deletion failed.
        cleanup: String,
    },
    /// A Kubernetes operation (update, suspend, resume, status) failed.
    #[error("deployment {id}: {message}")]
    Kubernetes {
        /// Deployment id.
        id: String,
        /// Why.
        message: String,
    },
    /// A Kubernetes-only operation was asked of another kind of deployment.
    #[error(
        "deployment {0} is not a Kubernetes deployment; update, suspend and resume apply to `k8s:` deployments"
    )]
    NotKubernetes(String),
    /// A termination failed; the record stays `terminating` and is retried.
    #[error(
        "deployment {id}: termination failed: {message}; it stays terminating and `bpr cleanup` retries"
    )]
    TerminateFailed {
        /// Deployment id.
        id: String,
        /// Why.
        message: String,
    },
}
