//! The event hub behind `GET /v1/events`: every deployment event the
//! orchestrator publishes (provisioning, running, unhealthy, expired,
//! terminated, failed) plus the service's own (`accepted`, `rejected` for an
//! asynchronous deploy), numbered in the order they happened.
//!
//! The last [`RING`] events are kept, so a client that reconnects with
//! `Last-Event-ID` gets what it missed; one that fell further behind gets a
//! `lagged` event and should read the records again. A slow client never
//! slows publishing: each has a bounded buffer and skips ahead when it is
//! full.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::provisioning::DeploymentEvent;

/// Events kept for clients that reconnect.
pub const RING: usize = 4096;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum HubEvent {
    /// A deployment event of the orchestrator.
    Deployment(DeploymentEvent),
    /// An event of the service itself.
    Service(ServiceEvent),
}

/// What the service itself says about an asynchronous deploy (or service
/// initiation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceEvent {
    /// The deployment; absent for a service initiation whose deployment was
    /// not created yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    /// Its Blueprint id.
    pub blueprint_id: String,
    /// Its service id.
    pub service_id: String,
    /// When (unix seconds).
    pub at: i64,
    /// What happened.
    #[serde(flatten)]
    pub kind: ServiceEventKind,
}

/// What happened to an asynchronous deploy before its record existed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ServiceEventKind {
    /// The deploy was accepted (202) and runs in the background.
    Accepted,
    /// The deploy failed before anything was recorded or created.
    Rejected {
        /// Why.
        reason: String,
    },
}

impl HubEvent {
    /// The `event:` name on the stream (`running`, `accepted`...).
    pub fn name(&self) -> &'static str {
        use crate::provisioning::EventKind as K;
        match self {
            Self::Deployment(e) => match e.kind {
                K::Provisioning { .. } => "provisioning",
                K::Running { .. } => "running",
                K::Unhealthy { .. } => "unhealthy",
                K::Expired { .. } => "expired",
                K::Suspended { .. } => "suspended",
                K::Renewed { .. } => "renewed",
                K::Replacing { .. } => "replacing",
                K::Replaced { .. } => "replaced",
                K::BudgetAlert { .. } => "budget-alert",
                K::Terminated { .. } => "terminated",
                K::Failed { .. } => "failed",
            },
            Self::Service(e) => match e.kind {
                ServiceEventKind::Accepted => "accepted",
                ServiceEventKind::Rejected { .. } => "rejected",
            },
        }
    }

    /// (deployment, blueprint, service) it concerns.
    pub fn subject(&self) -> (&str, &str, &str) {
        match self {
            Self::Deployment(e) => (&e.deployment_id, &e.blueprint_id, &e.service_id),
            Self::Service(e) => (
                e.deployment_id.as_deref().unwrap_or(""),
                &e.blueprint_id,
                &e.service_id,
            ),
        }
    }
}

/// An event with its place in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Numbered {
    /// 1, 2, 3... in publishing order; the SSE `id:`.
    pub seq: u64,
    /// The event.
    pub event: HubEvent,
}

/// The hub. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Arc<Numbered>>,
}

#[derive(Debug, Default)]
struct Ring {
    next: u64,
    events: VecDeque<Arc<Numbered>>,
}

/// What a new subscriber starts from.
#[derive(Debug)]
pub struct Subscription {
    /// Events after the one it last saw, still in the ring.
    pub backlog: Vec<Arc<Numbered>>,
    /// Events it asked for that are no longer kept.
    pub missed: u64,
    /// Everything published from now on.
    pub live: broadcast::Receiver<Arc<Numbered>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                ring: Mutex::new(Ring {
                    next: 1,
                    events: VecDeque::with_capacity(RING),
                }),
                tx: broadcast::channel(RING).0,
            }),
        }
    }
}

impl EventHub {
    /// Numbers and publishes `event`.
    pub fn publish(&self, event: HubEvent) {
        let mut ring = self.inner.ring.lock().unwrap_or_else(|p| p.into_inner());
        let numbered = Arc::new(Numbered {
            seq: ring.next,
            event,
        });
        ring.next += 1;
        if ring.events.len() == RING {
            ring.events.pop_front();
        }
        ring.events.push_back(numbered.clone());
        // Sent under the lock, so live order is ring order.
        let _ = self.inner.tx.send(numbered);
    }

    /// A subscriber that last saw `last_seen` (none: only what comes next).
    pub fn subscribe(&self, last_seen: Option<u64>) -> Subscription {
        let ring = self.inner.ring.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.inner.tx.subscribe();
        let (backlog, missed) = match last_seen {
            None => (Vec::new(), 0),
            Some(seen) => {
                let oldest = ring.events.front().map(|e| e.seq).unwrap_or(ring.next);
                let missed = oldest.saturating_sub(seen + 1);
                let backlog = ring
                    .events
                    .iter()
                    .filter(|e| e.seq > seen)
                    .cloned()
                    .collect();
                (backlog, missed)
            }
        };
        Subscription {
            backlog,
            missed,
            live,
        }
    }

    /// Republishes every event of `rx` (the orchestrator's bus) until it
    /// closes.
    pub async fn forward(self, mut rx: broadcast::Receiver<DeploymentEvent>) {
        loop {
            match rx.recv().await {
                Ok(e) => self.publish(HubEvent::Deployment(e)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(target: "bpr::serve", "event hub missed {n} deployment events");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(id: &str) -> HubEvent {
        HubEvent::Service(ServiceEvent {
            deployment_id: Some(id.into()),
            blueprint_id: "1".into(),
            service_id: "2".into(),
            at: 0,
            kind: ServiceEventKind::Accepted,
        })
    }

    #[test]
    fn a_reconnecting_subscriber_gets_what_it_missed_in_order() {
        let hub = EventHub::default();
        for i in 0..5 {
            hub.publish(accepted(&format!("d{i}")));
        }
        let sub = hub.subscribe(Some(2));
        let seqs: Vec<u64> = sub.backlog.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![3, 4, 5]);
        assert_eq!(sub.missed, 0);
    }

    #[test]
    fn a_subscriber_further_behind_than_the_ring_is_told_how_much_it_missed() {
        let hub = EventHub::default();
        for i in 0..(RING + 10) {
            hub.publish(accepted(&format!("d{i}")));
        }
        let sub = hub.subscribe(Some(0));
        assert_eq!(sub.missed, 10);
        assert_eq!(sub.backlog.first().map(|e| e.seq), Some(11));
    }

    #[tokio::test]
    async fn live_events_follow_the_backlog_without_a_gap() {
        let hub = EventHub::default();
        hub.publish(accepted("a"));
        let mut sub = hub.subscribe(Some(0));
        hub.publish(accepted("b"));
        assert_eq!(sub.backlog.len(), 1);
        assert_eq!(sub.live.recv().await.unwrap().seq, 2);
    }

    #[test]
    fn events_serialize_with_their_kind_in_an_event_field() {
        let v = serde_json::to_value(accepted("a")).unwrap();
        assert_eq!(v["event"], "accepted");
        assert_eq!(v["deployment_id"], "a");
    }
}
