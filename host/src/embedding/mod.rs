//! The embedding API for Blueprint Manager: service events in, deployments
//! out, with the shapes the manager already uses.
//!
//! ```no_run
//! # async fn f(host: blueprint_remote_providers::Host) -> Result<(), Box<dyn std::error::Error>> {
//! use std::collections::HashMap;
//! use blueprint_remote_providers::embedding::*;
//!
//! let remote = RemoteDeployments::new(host, EmbeddingOptions::default());
//! let mut events = remote.subscribe();
//! // ServiceActivated on chain:
//! let rec = remote
//!     .on_service_initiated(7, 42, Some(ResourceSpec::default()),
//!         Some(DeployArtifact::ContainerImage("ghcr.io/acme/agent:1.2".into())), HashMap::new())
//!     .await?;
//! // A payment arrived: one more day.
//! remote.renew(ServiceKey::new(7, 42), 86_400).await?;
//! // ServiceTerminated on chain:
//! remote.on_service_terminated(7, 42).await?;
//! // After a restart: tear down what the chain no longer has.
//! let report = remote.reconcile(&[]).await;
//! # let _ = (rec, report, events.try_recv()); Ok(()) }
//! ```
//!
//! # Guarantees
//! - **One deployment per service.** A service key is unique among live
//!   deployments in the tracker (a partial unique index), so
//!   [`RemoteDeployments::on_service_initiated`] is idempotent: a replay (a
//!   restarted manager, a second delivery, a process killed mid-deploy)
//!   returns the same deployment and never starts a second machine. A
//!   deployment a dead process left mid-flight is recovered first: adopted
//!   when its instance runs (found by its label), else failed and cleaned up,
//!   and then deployed anew.
//! - **Nothing is lost on restart.** Every deployment is a record in the
//!   host's database; [`RemoteDeployments::reconcile`] tears down the ones
//!   whose service is no longer active and reports what it did.
//! - **Events flow back.** [`RemoteDeployments::subscribe`] yields every
//!   deployment's events (provisioning, running with its endpoint, unhealthy,
//!   expired, terminated, failed), serde-serializable as they are.
//! - **Payment is time.** A deployment's time to live is renewed by
//!   [`RemoteDeployments::renew`] (VMs and Kubernetes alike; a suspended
//!   Kubernetes deployment scales back up); the host's supervisor
//!   ([`crate::Host::run_supervisor`]) terminates expired ones.

mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use tokio::sync::broadcast;

pub use types::{BadServiceKey, DeployArtifact, QosParameters, ResourceSpec, ServiceKey};

use crate::Host;
use crate::placement::{Arch, Request};
use crate::provisioning::{
    DeployError, DeployOptions, DeployRequest, DeploymentEvent, HealthCheck,
};
use crate::tracking::{DeploymentRecord, TrackError};
use crate::workload::{PortSpec, WorkloadSource, WorkloadSpec};

/// How long a termination waits for another holder of the deployment: the
/// supervisor checks every active one (holding it for one provider call), and
/// a service the manager says is over must not be left running because of that.
const BUSY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// How service events become deployments. Every field documents its default.
#[derive(Debug, Clone)]
pub struct EmbeddingOptions {
    /// Time to live of a new deployment, in seconds; renewed by
    /// [`RemoteDeployments::renew`]. Default: `None` (until terminated).
    pub default_ttl_secs: Option<u64>,
    /// Ports the service listens on, published and opened in the firewall.
    /// Default: none.
    pub ports: Vec<PortSpec>,
    /// HTTP health check of the service. Default: none (the provider's
    /// running state counts).
    pub health: Option<HealthCheck>,
    /// Ranked candidates tried before a deployment fails. Default: 5.
    pub failover: usize,
    /// CPU architecture the artifacts are built for (a release binary is built
    /// for one, and so is an image that is not multi-arch); `None` = any.
    /// Default: x86_64.
    pub arch: Option<Arch>,
    /// Timing of provider calls, waits and retries. Default:
    /// [`DeployOptions::default`].
    pub deploy: DeployOptions,
}

impl Default for EmbeddingOptions {
    fn default() -> Self {
        Self {
            default_ttl_secs: None,
            ports: Vec::new(),
            health: None,
            failover: crate::provisioning::DEFAULT_FAILOVER,
            arch: Some(Arch::X86_64),
            deploy: DeployOptions::default(),
        }
    }
}

/// A service event could not be acted on.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddingError {
    /// Deploying, terminating or renewing failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The tracker failed.
    #[error(transparent)]
    Track(#[from] TrackError),
    /// The resources cannot be asked for.
    #[error("service {key}: invalid resources: {reason}")]
    InvalidResources {
        /// The service.
        key: ServiceKey,
        /// What is wrong.
        reason: String,
    },
    /// No live deployment serves this service.
    #[error("service {0} has no live deployment")]
    NoDeployment(ServiceKey),
}

/// One service and its deployment, in a [`ReconcileReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceDeployment {
    /// The service.
    pub key: ServiceKey,
    /// Its deployment.
    pub deployment_id: String,
}

/// What [`RemoteDeployments::reconcile`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Active services whose deployment is live: kept.
    pub kept: Vec<ServiceDeployment>,
    /// Deployments of services no longer active: terminated.
    pub terminated: Vec<ServiceDeployment>,
    /// Active services without a live deployment (call
    /// [`RemoteDeployments::on_service_initiated`] for them).
    pub missing: Vec<ServiceKey>,
    /// Deployments that could not be terminated now (the supervisor retries),
    /// with why.
    pub errors: Vec<(ServiceDeployment, String)>,
}

/// The manager-facing side of a [`Host`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RemoteDeployments {
    host: Host,
    options: EmbeddingOptions,
}

impl RemoteDeployments {
    /// Service events of `host`'s deployments, turned into deployments as
    /// `options` say.
    pub fn new(host: Host, options: EmbeddingOptions) -> Self {
        Self { host, options }
    }

    /// The host underneath.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// Every deployment event from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DeploymentEvent> {
        self.host.subscribe()
    }

    /// The live deployment of `key`, if any.
    pub fn deployment(&self, key: ServiceKey) -> Result<Option<DeploymentRecord>, TrackError> {
        self.host.tracker().live_by_service_key(&key.to_string())
    }

    /// A service was activated (upstream's signature): deploy it, or return
    /// the deployment it already has. `resource_requirements` defaults to
    /// [`ResourceSpec::default`]; without an `artifact` a VM comes up idle (as
    /// upstream's manager does today). `extra_env` reaches the workload with
    /// `BLUEPRINT_ID` and `SERVICE_ID` set by the host.
    ///
    /// Idempotent per service: see the module docs. A deployment another live
    /// process is working on right now is returned as it stands (in flight);
    /// its events say when it runs.
    pub async fn on_service_initiated(
        &self,
        blueprint_id: u64,
        service_id: u64,
        resource_requirements: Option<ResourceSpec>,
        artifact: Option<DeployArtifact>,
        extra_env: HashMap<String, String>,
    ) -> Result<DeploymentRecord, EmbeddingError> {
        let key = ServiceKey::new(blueprint_id, service_id);
        let tracker = self.host.tracker();
        let orchestrator = self.host.orchestrator();
        if let Some(rec) = tracker.live_by_service_key(&key.to_string())? {
            match orchestrator.resolve(&rec.id, &self.options.deploy).await {
                // Running, or being deployed by a live process: that is the deployment.
                Ok(r) if !r.status.is_final() => return Ok(r),
                Err(DeployError::Busy(_)) => return Ok(tracker.get(&rec.id)?),
                // Recovery found nothing to adopt: deploy anew below.
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let req = self.request(key, resource_requirements, artifact, extra_env)?;
        match orchestrator
            .deploy_keyed(req, Vec::new(), &self.options.deploy, Some(key.to_string()))
            .await
        {
            Ok(rec) => Ok(rec),
            // Another process (or task) created it meanwhile: that one is the deployment.
            Err(DeployError::Track(TrackError::ServiceKeyTaken { .. })) => tracker
                .live_by_service_key(&key.to_string())?
                .ok_or(EmbeddingError::NoDeployment(key)),
            Err(e) => Err(e.into()),
        }
    }

    /// What [`RemoteDeployments::on_service_initiated`] would check before it
    /// records anything, checked now without deploying: the request is planned
    /// and held against the operator's budget. For a caller that answers
    /// before it deploys (`bpr serve` answers 202 first); the deploy checks
    /// again. A plan that fails now is not an error here: the deploy meets
    /// (and reports) the same failure, which may also be transient.
    pub async fn check_initiation(
        &self,
        key: ServiceKey,
        resource_requirements: Option<ResourceSpec>,
        artifact: Option<DeployArtifact>,
        extra_env: HashMap<String, String>,
    ) -> Result<(), EmbeddingError> {
        let req = self.request(key, resource_requirements, artifact, extra_env)?;
        let Ok(plan) = self.host.plan(&req).await else {
            return Ok(());
        };
        Ok(self.host.check_budget(&req, &plan)?)
    }

    /// A service was terminated (upstream's signature): terminate its
    /// deployment. `Ok(None)` when it has none (already terminated: idempotent).
    pub async fn on_service_terminated(
        &self,
        blueprint_id: u64,
        service_id: u64,
    ) -> Result<Option<DeploymentRecord>, EmbeddingError> {
        let key = ServiceKey::new(blueprint_id, service_id);
        let Some(rec) = self.host.tracker().live_by_service_key(&key.to_string())? else {
            return Ok(None);
        };
        let done = self
            .host
            .orchestrator()
            .terminate_when_free(
                &rec.id,
                &self.options.deploy,
                &format!("service {key} terminated"),
                BUSY_PATIENCE,
            )
            .await?;
        Ok(Some(done))
    }

    /// A payment arrived: `key`'s deployment lives `ttl_secs` more from now
    /// (VM or Kubernetes; a suspended Kubernetes deployment scales back up).
    pub async fn renew(
        &self,
        key: ServiceKey,
        ttl_secs: u64,
    ) -> Result<DeploymentRecord, EmbeddingError> {
        let rec = self
            .deployment(key)?
            .ok_or(EmbeddingError::NoDeployment(key))?;
        Ok(self
            .host
            .orchestrator()
            .renew(&rec.id, Some(ttl_secs.max(1)), &self.options.deploy)
            .await?)
    }

    /// After the manager restarts: `active` are the services the chain still
    /// has. Every live deployment of another service is terminated (waiting
    /// while another holder, such as the supervisor, has it); what was done
    /// is reported, and active services without a deployment are listed.
    pub async fn reconcile(&self, active: &[ServiceKey]) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        let active: BTreeSet<ServiceKey> = active.iter().copied().collect();
        let live = match self.host.tracker().live_keyed() {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!("reconcile: cannot read the deployments: {e}");
                return report;
            }
        };
        let mut served: BTreeMap<ServiceKey, String> = BTreeMap::new();
        for rec in live {
            let Some(key) = rec
                .service_key
                .as_deref()
                .and_then(|k| k.parse::<ServiceKey>().ok())
            else {
                continue;
            };
            let entry = ServiceDeployment {
                key,
                deployment_id: rec.id.clone(),
            };
            if active.contains(&key) {
                served.insert(key, rec.id.clone());
                report.kept.push(entry);
                continue;
            }
            match self
                .host
                .orchestrator()
                .terminate_when_free(
                    &rec.id,
                    &self.options.deploy,
                    &format!("reconcile: service {key} is no longer active"),
                    BUSY_PATIENCE,
                )
                .await
            {
                Ok(_) => report.terminated.push(entry),
                Err(e) => report.errors.push((entry, e.to_string())),
            }
        }
        report.missing = active
            .into_iter()
            .filter(|k| !served.contains_key(k))
            .collect();
        report
    }

    /// The deploy request a service event becomes.
    fn request(
        &self,
        key: ServiceKey,
        resources: Option<ResourceSpec>,
        artifact: Option<DeployArtifact>,
        extra_env: HashMap<String, String>,
    ) -> Result<DeployRequest, EmbeddingError> {
        let spec = resources.unwrap_or_default();
        let invalid = |reason: String| EmbeddingError::InvalidResources { key, reason };
        for (name, v) in [
            ("cpu", spec.cpu),
            ("memory_gb", spec.memory_gb),
            ("storage_gb", spec.storage_gb),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(invalid(format!("{name} is {v}; give a number >= 0")));
            }
        }
        let mut req = DeployRequest::new(key.blueprint_id.to_string(), key.service_id.to_string());
        req.requirements = Some(Request {
            min_vcpus: spec.cpu,
            min_memory_gib: spec.memory_gb,
            min_storage_gib: spec.storage_gb,
            min_gpus: spec.gpu_count.unwrap_or(0) as f32,
            allow_spot: spec.allow_spot,
            arch: self.options.arch,
            ..Request::default()
        });
        req.failover = Some(self.options.failover.max(1));
        // On the instance too, so what a service runs on can be found by its key.
        req.labels
            .insert("blueprint-id".into(), key.blueprint_id.to_string());
        req.labels
            .insert("service-id".into(), key.service_id.to_string());
        req.ttl_secs = self.options.default_ttl_secs;
        req.health = self.options.health.clone();
        let mut env: BTreeMap<String, String> = extra_env.into_iter().collect();
        env.insert("BLUEPRINT_ID".into(), key.blueprint_id.to_string());
        env.insert("SERVICE_ID".into(), key.service_id.to_string());
        let ports = self.options.ports.clone();
        req.workload = artifact.map(|a| WorkloadSpec {
            source: match a {
                DeployArtifact::ContainerImage(image) => WorkloadSource::Container {
                    image,
                    args: Vec::new(),
                    env,
                    ports,
                },
                DeployArtifact::GithubBinary {
                    archive_url,
                    sha256_hex,
                    binary_name,
                } => WorkloadSource::Archive {
                    url: archive_url,
                    sha256: sha256_hex.to_ascii_lowercase(),
                    binary: binary_name,
                    args: Vec::new(),
                    env,
                    ports,
                },
            },
            cpu_limit: None,
            memory_limit_mib: None,
        });
        Ok(req)
    }
}
