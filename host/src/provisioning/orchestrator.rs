//! The [`Orchestrator`]: the part of the host that plans, deploys, terminates
//! and recovers. It owns nothing but shared handles on the providers, the
//! pricing service, the cluster directory, the tracker and the event bus, so
//! it is cheap to clone into tasks.

use std::sync::Arc;

use super::error::DeployError;
use super::events::{self, EventBus, EventKind};
use super::options::{DeployEvent, DeployOptions};
use super::request::{DeployRequest, InstanceTarget, KubernetesOptions};
use crate::config::Config;
use crate::kubernetes::ClusterDirectory;
use crate::pricing::PricingService;
use crate::providers::Providers;
use crate::tracking::{
    DeploymentRecord, DeploymentStatus, DeploymentType, NewDeployment, TrackError, Tracker,
    Transition,
};

/// Plans and deploys with failover, terminates and recovers deployments; see
/// the module docs of [`crate::provisioning`] for the error policy. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    pub(super) config: Arc<Config>,
    pub(super) providers: Providers,
    pub(super) pricing: Arc<PricingService>,
    pub(super) clusters: ClusterDirectory,
    pub(super) tracker: Tracker,
    pub(super) events: EventBus,
    pub(super) budget: super::budget::BudgetState,
}

/// A fresh deployment id.
pub fn new_deployment_id() -> String {
    format!("dep-{}", uuid::Uuid::new_v4())
}

impl Orchestrator {
    /// An orchestrator over these parts.
    pub fn new(
        config: Arc<Config>,
        providers: Providers,
        pricing: Arc<PricingService>,
        clusters: ClusterDirectory,
        tracker: Tracker,
    ) -> Self {
        Self {
            config,
            providers,
            pricing,
            clusters,
            tracker,
            events: EventBus::default(),
            budget: Default::default(),
        }
    }

    /// The deployment tracker.
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The event bus every status change is published on.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Plan `req` (see [`Orchestrator::plan`]) and deploy it on the first
    /// candidate that works, with default timing.
    pub async fn deploy(&self, req: DeployRequest) -> Result<DeploymentRecord, DeployError> {
        self.deploy_with(req, Vec::new(), &DeployOptions::default())
            .await
    }

    /// Deploy `req` on the first candidate that works: `candidates` (in ranked
    /// order) when given, else those the request names, else those
    /// [`Orchestrator::plan`] ranks from its requirements. A Kubernetes request
    /// names its cluster and takes no candidates. See the module docs for the
    /// error policy.
    pub async fn deploy_with(
        &self,
        req: DeployRequest,
        candidates: Vec<InstanceTarget>,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        self.deploy_keyed(req, candidates, opts, None).await
    }

    /// [`Orchestrator::deploy_with`], the record carrying `service_key` (unique
    /// among live deployments; see the embedding API).
    pub(crate) async fn deploy_keyed(
        &self,
        mut req: DeployRequest,
        candidates: Vec<InstanceTarget>,
        opts: &DeployOptions,
        service_key: Option<String>,
    ) -> Result<DeploymentRecord, DeployError> {
        req.validate()?;
        if let Some(url) = &req.cleanup_webhook {
            super::webhook::check_allowed(&self.config.operator.webhooks, url)?;
        }
        if req.deployment_type == DeploymentType::Kubernetes {
            // The cluster is named in the request; there is nothing to rank.
            let _reserved = self.admit_kubernetes_request(&req)?;
            return self.deploy_kubernetes(req, opts, service_key).await;
        }
        if !candidates.is_empty() {
            req.candidates = candidates;
        }
        let plan = self.plan(&req).await?;
        if let Some(k) = plan.kubernetes.filter(|_| plan.candidates.is_empty()) {
            // `mode = "local"`: no SSH host fits, one of the operator's clusters does.
            req.deployment_type = DeploymentType::Kubernetes;
            let mut options = KubernetesOptions::new(k.cluster);
            options.tier = k.tier;
            req.kubernetes = Some(options);
            req.requirements = None;
            let _reserved = self.admit_kubernetes_request(&req)?;
            return self.deploy_kubernetes(req, opts, service_key).await;
        }
        // The operator's limits before anything is recorded.
        let (candidates, _reserved) = self.admit_vm(&req, plan.candidates)?;
        self.deploy_vm(req, candidates, opts, service_key).await
    }

    /// Creates deployment `id`'s record (`planned`) from the request it stores,
    /// and reports it: the first durable step of every deploy, VM or Kubernetes.
    pub(super) fn record_planned(
        &self,
        id: &str,
        stored: &DeployRequest,
        opts: &DeployOptions,
        service_key: Option<String>,
    ) -> Result<DeploymentRecord, DeployError> {
        let record = self.tracker.create(&NewDeployment {
            id: id.to_string(),
            blueprint_id: stored.blueprint_id.clone(),
            service_id: stored.service_id.clone(),
            deployment_type: stored.deployment_type,
            labels: stored.labels.clone(),
            ttl_secs: stored.ttl_secs,
            cleanup_webhook: stored.cleanup_webhook.clone(),
            request_json: serde_json::to_string(stored).unwrap_or_default(),
            service_key,
        })?;
        opts.emit(DeployEvent::Status {
            id: id.to_string(),
            status: DeploymentStatus::Planned,
            reason: "request recorded".into(),
        });
        Ok(record)
    }

    /// Moves `id` to `to` and publishes the event that is (running, failed,
    /// terminated).
    pub(super) fn transition(
        &self,
        id: &str,
        to: DeploymentStatus,
        reason: &str,
    ) -> Result<DeploymentRecord, TrackError> {
        let rec = self.tracker.transition(id, to, reason)?;
        if let Some(kind) = events::for_transition(&rec, reason) {
            self.events.publish(&rec, kind);
        }
        Ok(rec)
    }

    /// Publishes `kind` for deployment `rec`.
    pub(super) fn publish(&self, rec: &DeploymentRecord, kind: EventKind) {
        self.events.publish(rec, kind);
    }

    /// [`Orchestrator::transition`], reported to the deploy's progress callback.
    pub(super) fn step(
        &self,
        opts: &DeployOptions,
        id: &str,
        to: DeploymentStatus,
        reason: &str,
    ) -> Result<DeploymentRecord, TrackError> {
        let r = self.transition(id, to, reason)?;
        opts.emit(DeployEvent::Status {
            id: id.to_string(),
            status: to,
            reason: reason.to_string(),
        });
        Ok(r)
    }

    /// Every record (oldest first), or one.
    pub fn status(&self, id: Option<&str>) -> Result<Vec<DeploymentRecord>, TrackError> {
        match id {
            Some(id) => Ok(vec![self.tracker.get(id)?]),
            None => self.tracker.list(),
        }
    }

    /// The transitions of `id`, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<Transition>, TrackError> {
        self.tracker.history(id)
    }

    /// A new time to live for deployment `id` from now (a renewed payment),
    /// in the history and as a `renewed` event; a suspended deployment is
    /// brought back (a VM started, a Kubernetes one scaled back to its tier).
    /// `None` removes the limit.
    pub async fn renew(
        &self,
        id: &str,
        ttl_secs: Option<u64>,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        // The renewed period first, so the supervisor does not reap it meanwhile.
        let rec = self.tracker.set_ttl(id, ttl_secs)?;
        self.tracker.note_history(
            id,
            &format!(
                "payment renewed: {}",
                match ttl_secs {
                    Some(t) => format!("{t} s from now"),
                    None => "no time limit".into(),
                }
            ),
        )?;
        self.publish(
            &rec,
            super::events::EventKind::Renewed {
                expires_at: rec.expires_at,
            },
        );
        if rec.status == DeploymentStatus::Suspended {
            self.resume_paid(id, opts).await?;
        } else if rec.deployment_type == DeploymentType::Kubernetes
            && rec.status == DeploymentStatus::Active
            && super::kubernetes::is_suspended(&rec)
        {
            self.resume(id, opts).await?;
        }
        Ok(self.tracker.get(id)?)
    }
}
