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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Its time to live ran out; it is being suspended (within the operator's
    /// grace period) or terminated.
    Expired {
        /// The time to live it had, in seconds.
        ttl_secs: Option<u64>,
    },
    /// Payment expired: stopped (a VM) or scaled to zero (Kubernetes) until a
    /// renewal, or terminated when the grace period ends.
    Suspended {
        /// What was done (`instance i-... stopped`, `scaled to zero`).
        reason: String,
        /// When the grace period ends (unix seconds).
        grace_until: Option<i64>,
    },
    /// A renewed payment: a new end of paid time (a suspended deployment is
    /// brought back; `running` follows).
    Renewed {
        /// The new end of paid time (unix seconds); `None`: unlimited.
        expires_at: Option<i64>,
    },
    /// An unhealthy (or interrupted) deployment's instance is being replaced.
    Replacing {
        /// Why.
        reason: String,
        /// The instance being replaced.
        old_instance: Option<String>,
    },
    /// A replacement is healthy and serves; the old instance is deleted.
    Replaced {
        /// The instance it replaced.
        old_instance: Option<String>,
        /// The new instance.
        new_instance: String,
        /// `provider/region/type` of the new instance.
        placement: String,
        /// Where it is reached now.
        endpoint: Option<String>,
    },
    /// A share of an operator budget (`[operator.budget] alert_fraction`) is
    /// reached. Budgets concern no single deployment: the deployment fields
    /// are empty.
    BudgetAlert {
        /// `hourly` (`max_cost_per_hour`) or `monthly` (`monthly_usd`).
        limit: crate::costs::budget::Limit,
        /// The limit, USD (per hour for the hourly one).
        limit_usd: f64,
        /// How much is used (spent plus committed for the monthly one).
        used_usd: f64,
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

    /// Publishes `kind` concerning no single deployment (a budget alert): the
    /// deployment fields are empty.
    pub fn publish_operator(&self, kind: EventKind) {
        let _ = self.tx.send(DeploymentEvent {
            deployment_id: String::new(),
            blueprint_id: String::new(),
            service_id: String::new(),
            at: crate::clock::unix_now(),
            kind,
        });
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
        // Suspension is published with its grace period by the payment pass.
        Planned | Provisioning | Provisioned | Deploying | Terminating | Suspended => None,
    }
}
