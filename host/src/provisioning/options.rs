//! How a deployment runs: timing, and the progress events it reports.

use std::sync::Arc;
use std::time::Duration;

use super::request::InstanceTarget;
use super::retry::RetryPolicy;
use crate::tracking::{AttemptOutcome, DeploymentStatus};

/// One step of a deployment, for progress output.
#[derive(Debug, Clone)]
pub enum DeployEvent {
    /// The record moved to a status.
    Status {
        /// Deployment id.
        id: String,
        /// New status.
        status: DeploymentStatus,
        /// Why.
        reason: String,
    },
    /// A candidate is being tried.
    Trying {
        /// Attempt number (1-based).
        n: u32,
        /// The candidate.
        target: InstanceTarget,
    },
    /// An attempt ended.
    AttemptDone {
        /// Attempt number.
        n: u32,
        /// Outcome.
        outcome: AttemptOutcome,
        /// Why.
        detail: String,
    },
}

/// Receives [`DeployEvent`]s.
pub type ProgressFn = Arc<dyn Fn(&DeployEvent) + Send + Sync>;

/// Timing of a deployment. Defaults suit real clouds; tests shorten them.
#[derive(Clone)]
pub struct DeployOptions {
    /// Retries of one provider call on rate-limited / transient errors.
    pub retry: RetryPolicy,
    /// How long an instance may take to reach `running`.
    pub running_timeout: Duration,
    /// How long the health check may take to pass.
    pub health_timeout: Duration,
    /// How long deleting an instance may take (delete-instance until `deleted`).
    pub delete_timeout: Duration,
    /// First poll interval (doubles up to `poll_max`).
    pub poll_initial: Duration,
    /// Largest poll interval.
    pub poll_max: Duration,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for DeployOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployOptions")
            .field("retry", &self.retry)
            .field("running_timeout", &self.running_timeout)
            .field("health_timeout", &self.health_timeout)
            .field("delete_timeout", &self.delete_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            retry: RetryPolicy::default(),
            running_timeout: Duration::from_secs(600),
            health_timeout: Duration::from_secs(600),
            delete_timeout: Duration::from_secs(600),
            poll_initial: Duration::from_millis(500),
            poll_max: Duration::from_secs(10),
            progress: None,
        }
    }
}

impl DeployOptions {
    pub(super) fn emit(&self, e: DeployEvent) {
        if let Some(p) = &self.progress {
            p(&e);
        }
    }
}
