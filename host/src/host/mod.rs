//! [`Host`]: the embeddable entry point, a thin facade over the parts it owns
//! and wires together at start:
//!
//! - [`Providers`]: the loaded provider components (hot-reloaded);
//! - [`PricingService`]: offers from every provider, cached and normalised;
//! - [`ClusterDirectory`]: the Kubernetes clusters deployments may target;
//! - [`Orchestrator`]: deploy, terminate, recover, supervise.
//!
//! Blueprint Manager and `bpr` both use it. Every method here forwards to one of
//! those parts; the logic lives in them.

mod start;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::broadcast;

pub use start::{HostError, HostOptions};

use crate::config::Config;
use crate::costs::budget::Spend;
use crate::costs::{CostReport, GroupBy};
use crate::db::Database;
use crate::kubernetes::{self, Cluster, ClusterDirectory, ServiceAddress, WorkloadStatus};
use crate::pricing::PricingService;
use crate::providers::{ProviderHandle, ProviderStatus, Providers};
use crate::provisioning::{
    CleanupReport, ClusterError, ClusterOptions, ClusterRequest, DeployError, DeployOptions,
    DeployRequest, DeploymentEvent, HealError, HealthReport, HealthWatch, InstanceTarget,
    KubernetesChange, Orchestrator, Plan, RecoveryReport, SupervisorOptions,
};
use crate::runtime::CallError;
use crate::ssh::SshPool;
use crate::tracking::{DeploymentRecord, TrackError, Tracker, Transition};

/// What a running host owns.
struct Parts {
    config: Arc<Config>,
    db: Database,
    ssh_pool: Option<Arc<SshPool>>,
    providers: Providers,
    pricing: Arc<PricingService>,
    clusters: ClusterDirectory,
    orchestrator: Orchestrator,
}

/// A running host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    parts: Arc<Parts>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("origin", &self.parts.config.origin)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Start with default options: load every provider, start the watch.
    pub async fn start(config: Config) -> Result<Self, HostError> {
        Self::start_with(config, HostOptions::default()).await
    }

    /// Start with options.
    pub async fn start_with(config: Config, options: HostOptions) -> Result<Self, HostError> {
        start::start(config, options).await
    }

    /// Stop the watch. Calls in flight finish.
    pub async fn shutdown(&self) {
        self.parts.providers.stop_watching();
    }

    // --- The parts ---------------------------------------------------------

    /// The configuration the host runs with.
    pub fn config(&self) -> &Config {
        &self.parts.config
    }

    /// The embedded database (price cache, deployment tracker).
    pub fn database(&self) -> &Database {
        &self.parts.db
    }

    /// The pool of `[[ssh.hosts]]`, when any are configured.
    pub fn ssh_pool(&self) -> Option<&Arc<SshPool>> {
        self.parts.ssh_pool.as_ref()
    }

    /// The loaded providers.
    pub fn provider_set(&self) -> &Providers {
        &self.parts.providers
    }

    /// The pricing service (offers of every provider, cached).
    pub fn pricing(&self) -> &Arc<PricingService> {
        &self.parts.pricing
    }

    /// The Kubernetes clusters deployments may target.
    pub fn clusters(&self) -> &ClusterDirectory {
        &self.parts.clusters
    }

    /// The orchestrator: deploy, terminate, recover, supervise.
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.parts.orchestrator
    }

    /// The deployment tracker (lock files under `<state_dir>/deployments`).
    pub fn tracker(&self) -> Tracker {
        self.parts.orchestrator.tracker().clone()
    }

    // --- Providers ---------------------------------------------------------

    /// A handle on provider `name`.
    pub fn provider(&self, name: &str) -> Result<ProviderHandle, CallError> {
        self.parts.providers.get(name)
    }

    /// Handles on every serving provider, sorted by name.
    pub fn providers(&self) -> Vec<ProviderHandle> {
        self.parts.providers.all()
    }

    /// Every provider seen, loaded or refused.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        self.parts.providers.statuses()
    }

    /// Reload one file now (what the watch does on a change).
    pub async fn reload(&self, path: &Path) {
        self.parts.providers.reload(path).await;
    }

    // --- Kubernetes clusters ------------------------------------------------

    /// The Kubernetes cluster `name` (see [`ClusterDirectory::cluster`]).
    pub async fn cluster(&self, name: &str) -> Result<Cluster, kubernetes::Error> {
        self.parts.clusters.cluster(name).await
    }

    /// Make a connected cluster a deployment target (see [`ClusterDirectory::add`]).
    pub fn add_cluster(&self, cluster: Cluster) {
        self.parts.clusters.add(cluster);
    }

    /// Create a managed cluster and track it like a VM; once it runs it is the
    /// target `k8s:<name>` (see [`Orchestrator::create_cluster`]).
    pub async fn create_cluster(
        &self,
        req: ClusterRequest,
        opts: &ClusterOptions,
    ) -> Result<DeploymentRecord, ClusterError> {
        self.parts.orchestrator.create_cluster(req, opts).await
    }

    /// Delete the tracked managed cluster `name_or_id` (see
    /// [`Orchestrator::delete_cluster`]).
    pub async fn delete_cluster(
        &self,
        name_or_id: &str,
        force: bool,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, ClusterError> {
        self.parts
            .orchestrator
            .delete_cluster(name_or_id, force, opts)
            .await
    }

    /// Start reading what deployment `id`'s workload printed (see [`crate::logs`]).
    pub async fn logs(
        &self,
        id: &str,
        opts: &crate::logs::LogOptions,
    ) -> Result<crate::logs::Logs, crate::logs::LogError> {
        crate::logs::open(self, id, opts).await
    }

    /// Every tracked managed-cluster record, oldest first.
    pub fn managed_clusters(&self) -> Result<Vec<DeploymentRecord>, TrackError> {
        self.parts.orchestrator.managed_clusters()
    }

    /// The tracked managed cluster `name_or_id` (a name or a record id).
    pub fn managed_cluster(&self, name_or_id: &str) -> Result<DeploymentRecord, ClusterError> {
        self.parts.orchestrator.managed_cluster(name_or_id)
    }

    // --- Deployments ---------------------------------------------------------

    /// Where `req` would be deployed: its candidates, or those ranked from its
    /// requirements under `[operator.deployment]` (see
    /// [`Orchestrator::plan`]). Records nothing.
    pub async fn plan(&self, req: &DeployRequest) -> Result<Plan, DeployError> {
        self.parts.orchestrator.plan(req).await
    }

    /// Plan `req` and deploy it on the first candidate that works, with
    /// default timing (see [`Orchestrator::deploy_with`]).
    pub async fn deploy(&self, req: DeployRequest) -> Result<DeploymentRecord, DeployError> {
        self.parts.orchestrator.deploy(req).await
    }

    /// Every deployment event from now on (provisioning, running, unhealthy,
    /// expired, terminated, failed).
    pub fn subscribe(&self) -> broadcast::Receiver<DeploymentEvent> {
        self.parts.orchestrator.events().subscribe()
    }

    /// A renewed payment: deployment `id` lives `ttl_secs` more from now (a
    /// suspended Kubernetes deployment is scaled back up).
    pub async fn renew(
        &self,
        id: &str,
        ttl_secs: Option<u64>,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        self.parts.orchestrator.renew(id, ttl_secs, opts).await
    }

    /// Deploy `req` on the first of `candidates` that works (a Kubernetes
    /// request names its cluster and takes none); see
    /// [`Orchestrator::deploy_with`].
    pub async fn deploy_with(
        &self,
        req: DeployRequest,
        candidates: Vec<InstanceTarget>,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, DeployError> {
        self.parts
            .orchestrator
            .deploy_with(req, candidates, opts)
            .await
    }

    /// Terminate deployment `id` (idempotent); see [`Orchestrator::terminate`].
    pub async fn terminate(&self, id: &str) -> Result<DeploymentRecord, DeployError> {
        self.parts.orchestrator.terminate(id).await
    }

    /// [`Host::terminate`] with explicit timing and the reason for the history.
    pub async fn terminate_with(
        &self,
        id: &str,
        opts: &DeployOptions,
        reason: &str,
    ) -> Result<DeploymentRecord, DeployError> {
        self.parts
            .orchestrator
            .terminate_with(id, opts, reason)
            .await
    }

    /// Every record (oldest first), or one.
    pub fn status(&self, id: Option<&str>) -> Result<Vec<DeploymentRecord>, TrackError> {
        self.parts.orchestrator.status(id)
    }

    /// The transitions of `id`, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<Transition>, TrackError> {
        self.parts.orchestrator.history(id)
    }

    /// Resolve what dead processes left mid-flight; see [`Orchestrator::recover`].
    pub async fn recover(&self) -> RecoveryReport {
        self.parts.orchestrator.recover().await
    }

    /// [`Host::recover`] with explicit timing.
    pub async fn recover_with(&self, opts: &DeployOptions) -> RecoveryReport {
        self.parts.orchestrator.recover_with(opts).await
    }

    /// One supervisor pass; see [`Orchestrator::cleanup_once`].
    pub async fn cleanup_once(
        &self,
        opts: &SupervisorOptions,
    ) -> (Vec<String>, Vec<(String, String)>) {
        self.parts.orchestrator.cleanup_once(opts).await
    }

    /// One cleanup pass (with a sweep for what no record owns when `sweep`),
    /// and everything it resolved; see [`Orchestrator::cleanup`].
    pub async fn cleanup(&self, opts: &SupervisorOptions, sweep: bool) -> CleanupReport {
        self.parts.orchestrator.cleanup(opts, sweep).await
    }

    /// The supervisor loop until `shutdown` completes; see
    /// [`Orchestrator::run_supervisor`].
    pub async fn run_supervisor(&self, shutdown: impl Future<Output = ()>) {
        self.parts.orchestrator.run_supervisor(shutdown).await;
    }

    /// [`Host::run_supervisor`] with explicit options.
    pub async fn run_supervisor_with(
        &self,
        shutdown: impl Future<Output = ()>,
        opts: SupervisorOptions,
    ) {
        self.parts
            .orchestrator
            .run_supervisor_with(shutdown, opts)
            .await;
    }

    /// One health pass under `[operator.health]` (see
    /// [`Orchestrator::health_pass`]); `watch` carries the streaks between passes.
    pub async fn health_pass(&self, watch: &mut HealthWatch, opts: &DeployOptions) -> HealthReport {
        self.parts.orchestrator.health_pass(watch, opts).await
    }

    /// Replace unhealthy deployment `id` (see [`Orchestrator::heal`]).
    pub async fn heal(
        &self,
        id: &str,
        reason: &str,
        opts: &DeployOptions,
    ) -> Result<DeploymentRecord, HealError> {
        self.parts.orchestrator.heal(id, reason, opts).await
    }

    /// Accrued spend since `since` (unix seconds), grouped (see
    /// [`Orchestrator::costs`]).
    pub fn costs(&self, since: Option<i64>, by: GroupBy) -> Result<CostReport, TrackError> {
        self.parts.orchestrator.costs(since, by)
    }

    /// Whether the operator's limits let `req` go ahead on `plan` (see
    /// [`Orchestrator::check_budget`]).
    pub fn check_budget(&self, req: &DeployRequest, plan: &Plan) -> Result<(), DeployError> {
        self.parts.orchestrator.check_budget(req, plan)
    }

    /// What is spent this month and committed now (see [`Orchestrator::spend`]).
    pub fn spend(&self) -> Result<Spend, TrackError> {
        self.parts.orchestrator.spend()
    }

    /// Replica counts and conditions of Kubernetes deployment `id`, read now.
    pub async fn workload_status(&self, id: &str) -> Result<WorkloadStatus, DeployError> {
        self.parts.orchestrator.workload_status(id).await
    }

    /// Where Kubernetes deployment `id`'s Service is reached, read now.
    pub async fn service_address(&self, id: &str) -> Result<Option<ServiceAddress>, DeployError> {
        self.parts.orchestrator.service_address(id).await
    }

    /// A new image and/or tier for Kubernetes deployment `id`.
    pub async fn update(
        &self,
        id: &str,
        change: &KubernetesChange,
        opts: &DeployOptions,
    ) -> Result<WorkloadStatus, DeployError> {
        self.parts.orchestrator.update(id, change, opts).await
    }

    /// Payment expired: scale Kubernetes deployment `id` to zero.
    pub async fn suspend(
        &self,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<WorkloadStatus, DeployError> {
        self.parts.orchestrator.suspend(id, opts).await
    }

    /// Payment renewed: scale Kubernetes deployment `id` back to its tier.
    pub async fn resume(
        &self,
        id: &str,
        opts: &DeployOptions,
    ) -> Result<WorkloadStatus, DeployError> {
        self.parts.orchestrator.resume(id, opts).await
    }
}
