//! The deployment event stream: what happened to a deployment, for whoever
//! subscribed (Blueprint Manager's event loop, an HTTP service's server-sent
//! events). Every status change the orchestrator makes is published, from
//! deploys, terminations, recovery and the supervisor alike.
//!
//! A broadcast channel: a subscriber that falls behind by more than
//! [`EVENT_BUFFER`] events misses the oldest (it receives a `Lagged` error
//! saying how many) and should read the records again; publishing never
//! blocks the orchestrator.

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::tracking::DeploymentRecord;

/// Events kept for a slow subscriber before the oldest are dropped.
pub const EVENT_BUFFER: usize = 1024;

/// One thing that happened to one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentEvent {
    /// The deployment.
    pub deployment_id: String,
    /// Its Blueprint id.
    pub blueprint_id: String,
    /// Its service id.
    pub service_id: String,
    /// When (unix seconds).
    pub at: i64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened. Serialized with an `event` tag (`provisioning`, `running`...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    /// A place is being tried: `provider/region/type`, or `k8s:<cluster>`.
    Provisioning {
        /// The candidate.
        candidate: String,
    },
    /// It runs and passed its health check (or runs, without one).
    Running {
        /// Where it is reached (IP address, Service name or load balancer), when known.
        endpoint: Option<String>,
        /// `provider/region/type` (or `kubernetes/<cluster>/<tier>`).
        placement: String,
        /// The provider's instance id (or Kubernetes `namespace/name`).
        instance: Option<String>,
    },
    /// A running deployment failed its health check.
    Unhealthy {
        /// What the check saw.
        reason: String,
    },
    /// Its time to live ran out; it is being terminated.
    Expired {
        /// The time to live it had, in seconds.
        ttl_secs: Option<u64>,
    },
    /// Everything it created is gone.
    Terminated {
        /// Why it was terminated.
        reason: String,
    },
    /// It failed (what it created is being, or was, deleted).
    Failed {
        /// Why.
        reason: String,
    },
}

/// The publishing side. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<DeploymentEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(EVENT_BUFFER).0,
        }
    }
}

impl EventBus {
    /// A new receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeploymentEvent> {
        self.tx.subscribe()
    }

    /// Publishes `kind` for `rec` (nobody listening is fine).
    pub fn publish(&self, rec: &DeploymentRecord, kind: EventKind) {
        let _ = self.tx.send(DeploymentEvent {
            deployment_id: rec.id.clone(),
            blueprint_id: rec.blueprint_id.clone(),
            service_id: rec.service_id.clone(),
            at: crate::clock::unix_now(),
            kind,
        });
    }
}

/// The event a transition into `rec.status` is, if any.
pub(super) fn for_transition(rec: &DeploymentRecord, reason: &str) -> Option<EventKind> {
    use crate::tracking::DeploymentStatus::*;
    match rec.status {
        Active => Some(EventKind::Running {
            endpoint: rec.address.clone(),
            placement: format!(
                "{}/{}/{}",
                rec.provider.as_deref().unwrap_or("-"),
                rec.region.as_deref().unwrap_or("-"),
                rec.instance_type.as_deref().unwrap_or("-")
            ),
            instance: rec.instance_id.clone(),
        }),
        Terminated => Some(EventKind::Terminated {
            reason: reason.to_string(),
        }),
        Failed => Some(EventKind::Failed {
            reason: reason.to_string(),
        }),
        Planned | Provisioning | Provisioned | Deploying | Terminating => None,
    }
}
