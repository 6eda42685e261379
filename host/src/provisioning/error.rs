//! Why a deployment or a termination failed ([`DeployError`]), and why one of
//! its steps did ([`StepError`]). Every error keeps its cause as its
//! `source`; each displays as one sentence, said once.

use std::fmt;

use super::plan::PlanError;
use super::request::RequestError;
use crate::kubernetes;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::InstanceState;
use crate::tracking::TrackError;

/// One step of a deployment that did not work: a provider call, a wait that
/// ran out, a cluster operation, the tracker.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A call into the provider failed.
    #[error("{op}: {source}")]
    Call {
        /// The WIT function (`create-instance`, `delete-instance i-123`...).
        op: String,
        /// What the provider (or its sandbox) answered.
        #[source]
        source: CallError,
    },
    /// The instance failed or went away before it ran.
    #[error("instance {instance} went {state:?} before running{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    InstanceFailed {
        /// Instance id.
        instance: String,
        /// The state it reached.
        state: InstanceState,
        /// The provider's detail.
        detail: Option<String>,
    },
    /// The provider no longer finds an instance it reported running: no
    /// deadline brings it back, so the wait ends at once.
    #[error("instance {instance} no longer exists (the provider says: {detail})")]
    Vanished {
        /// Instance id.
        instance: String,
        /// The provider's words.
        detail: String,
    },
    /// The instance did not run before the deadline.
    #[error("instance {instance} not running after {secs} s (last: {last})")]
    NotRunning {
        /// Instance id.
        instance: String,
        /// The deadline in seconds.
        secs: u64,
        /// The last state or error seen.
        last: String,
    },
    /// The instance was not confirmed deleted before the deadline.
    #[error("instance {instance} still not deleted after {secs} s")]
    NotDeleted {
        /// Instance id.
        instance: String,
        /// The deadline in seconds.
        secs: u64,
    },
    /// A managed cluster failed or went away before it ran.
    #[error("cluster {cluster} went {state} before running{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    ClusterFailed {
        /// Cluster name (and provider id).
        cluster: String,
        /// The state it reached (`failed`, `deleted`, `not found`).
        state: String,
        /// The provider's detail.
        detail: Option<String>,
    },
    /// A managed cluster did not run before the deadline.
    #[error("cluster {cluster} not running after {secs} s (last: {last})")]
    ClusterNotRunning {
        /// Cluster name (and provider id).
        cluster: String,
        /// The deadline in seconds.
        secs: u64,
        /// The last state or error seen.
        last: String,
    },
    /// A managed cluster was not confirmed deleted before the deadline.
    #[error("cluster {cluster} still not deleted after {secs} s")]
    ClusterNotDeleted {
        /// Cluster name (and provider id).
        cluster: String,
        /// The deadline in seconds.
        secs: u64,
    },
    /// The provider has a cluster of that name that this record did not create
    /// (its `bpr-deployment` label says otherwise); it is left alone.
    #[error(
        "the provider's cluster {cluster} is not this record's (labelled bpr-deployment={owner}); it is left alone"
    )]
    ClusterNotOurs {
        /// Cluster name.
        cluster: String,
        /// Its `bpr-deployment` label, or `(none)`.
        owner: String,
    },
    /// Not tried: an earlier candidate of the same provider and region was
    /// told the region is unavailable (WIT `region-unavailable`: unknown,
    /// disabled, or its endpoint unreachable), which no instance type changes.
    #[error("not tried: {provider} region {region} was unavailable to {earlier}")]
    RegionSkipped {
        /// The provider.
        provider: String,
        /// The region.
        region: String,
        /// The candidate that found it unavailable (`provider/region/type`).
        earlier: String,
    },
    /// What a deployment left in a place (its instances, keys, firewalls...)
    /// was not confirmed deleted before the deadline.
    #[error("what {deployment} left in {place} is still not deleted after {secs} s")]
    NotCleared {
        /// Deployment id.
        deployment: String,
        /// `provider/region`.
        place: String,
        /// The deadline in seconds.
        secs: u64,
    },
    /// The health check did not pass before the deadline.
    #[error("not healthy after {secs} s (last: {last})")]
    Unhealthy {
        /// The deadline in seconds.
        secs: u64,
        /// The last check's outcome.
        last: String,
    },
    /// A Kubernetes operation failed.
    #[error(transparent)]
    Kubernetes(#[from] kubernetes::Error),
    /// The tracker failed.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// The operation needs a deployment in another state.
    #[error("{0}")]
    WrongState(String),
    /// A Kubernetes record names no cluster (written by hand, or corrupt).
    #[error("deployment {0} names no cluster")]
    NoCluster(String),
    /// Cleaning up after a failure failed in a way of its own.
    #[error(transparent)]
    Cleanup(Box<DeployError>),
    /// Recording the created instance failed; it was deleted again (or not: see
    /// the enclosing error).
    #[error("cannot record instance {instance}: {source}")]
    NotRecorded {
        /// Instance id.
        instance: String,
        /// The tracker's error.
        #[source]
        source: TrackError,
    },
}

impl StepError {
    /// The step error inside a failed termination (cleanup after a failure).
    pub(super) fn from_cleanup(e: DeployError) -> Self {
        match e {
            DeployError::TerminateFailed { source, .. } => *source,
            DeployError::Track(t) => Self::Track(t),
            other => Self::Cleanup(Box::new(other)),
        }
    }

    /// A failed provider call.
    pub(super) fn call(op: impl Into<String>, source: CallError) -> Self {
        Self::Call {
            op: op.into(),
            source,
        }
    }
}

/// Why one candidate did not serve a deployment.
#[derive(Debug)]
pub struct CandidateFailure {
    /// The candidate (`provider/region/type`).
    pub candidate: String,
    /// Why.
    pub error: StepError,
}

impl fmt::Display for CandidateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.candidate, self.error)
    }
}

/// The failures of every candidate, each said once: candidates that failed the
/// same way (a provider that cannot be reached from here fails every region
/// alike, each naming its own region's endpoint) are listed together, with the
/// first one's words.
fn summary(failures: &[CandidateFailure]) -> String {
    // (the failure with its region blanked out, the first one's text, candidates)
    let mut groups: Vec<(String, String, Vec<&str>)> = Vec::new();
    for f in failures {
        let why = f.error.to_string();
        let region = f.candidate.split('/').nth(1).unwrap_or_default();
        let same = match region {
            "" => why.clone(),
            r => why.replace(r.split('(').next().unwrap_or(r), "<region>"),
        };
        match groups.iter_mut().find(|(s, _, _)| *s == same) {
            Some((_, _, names)) => names.push(&f.candidate),
            None => groups.push((same, why, vec![&f.candidate])),
        }
    }
    groups
        .iter()
        .map(|(_, why, names)| format!("{}: {why}", names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a deployment (or a termination) failed. Every case that concerns a
/// recorded deployment names its id: `bpr history <id>` shows the rest.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The request is invalid; nothing was written.
    #[error("invalid deploy request: {0}")]
    InvalidRequest(#[from] RequestError),
    /// No place to deploy could be planned; nothing was written.
    #[error(transparent)]
    Plan(#[from] PlanError),
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
    #[error("deployment {id}: stopped at {candidate}: {source}")]
    Stopped {
        /// Deployment id.
        id: String,
        /// The candidate (`provider/region/type`).
        candidate: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// Every candidate failed over.
    #[error("deployment {id}: no candidate could serve it: {}", summary(failures))]
    Exhausted {
        /// Deployment id.
        id: String,
        /// One failure per candidate, in the order tried.
        failures: Vec<CandidateFailure>,
    },
    /// It failed after the instance was created (health, workload); what was
    /// created was deleted.
    #[error("deployment {id}: {source}; what it created was deleted")]
    Unhealthy {
        /// Deployment id.
        id: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// Something created could not be deleted (yet). The record is `failed`
    /// and still holds the instance; `bpr cleanup` (or the supervisor) retries.
    #[error(
        "deployment {id}: {failure}; {instance} could not be deleted yet ({source}); run `bpr cleanup` to retry"
    )]
    CleanupFailed {
        /// Deployment id.
        id: String,
        /// The original failure, as a sentence.
        failure: String,
        /// Instance id (or Kubernetes `namespace/name`).
        instance: String,
        /// Why deletion failed.
        #[source]
        source: Box<StepError>,
    },
    /// A Kubernetes operation (update, suspend, resume, status) failed.
    #[error("deployment {id}: {source}")]
    Kubernetes {
        /// Deployment id.
        id: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// A Kubernetes-only operation was asked of another kind of deployment.
    #[error(
        "deployment {0} is not a Kubernetes deployment; update, suspend and resume apply to `k8s:` deployments"
    )]
    NotKubernetes(String),
    /// The operator's budget does not allow it; nothing was written.
    #[error(transparent)]
    BudgetExceeded(#[from] crate::costs::budget::BudgetRefusal),
    /// Bringing a suspended deployment back failed; it stays suspended and the
    /// supervisor retries while its paid time lasts.
    #[error(
        "deployment {id}: resuming failed: {source}; it stays suspended and the supervisor retries"
    )]
    ResumeFailed {
        /// Deployment id.
        id: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// A termination failed; the record stays `terminating` and is retried.
    #[error(
        "deployment {id}: termination failed: {source}; it stays terminating and `bpr cleanup` retries"
    )]
    TerminateFailed {
        /// Deployment id.
        id: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
}
