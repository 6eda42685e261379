//! Blueprint Remote Providers: a host that runs cloud provider plugins as
//! sandboxed WebAssembly components, and decides, creates and tracks where
//! Blueprint services run.
//!
//! Start with [`Host`]: [`Host::start`] loads every provider component of the
//! configured directory (see [`Config`]); [`Host::deploy_with`] places a
//! deployment on the first candidate that works and tracks it until
//! [`Host::terminate`]; [`Host::provider`] gives a [`ProviderHandle`] whose
//! methods call a component's WIT exports, each in a fresh sandboxed store
//! under a deadline and a memory cap.
//!
//! A request walks the rooms in one direction:
//! [`config`] → [`providers`] (the components) → [`pricing`] (their offers)
//! → [`placement`] (pure ranking) → [`provisioning`] (the orchestrator:
//! deploy with failover, terminate, recover) → [`tracking`] (the records),
//! with [`workload`] (what runs on a VM), [`kubernetes`] (what runs on a
//! cluster) and [`ssh`] (the operator's own machines) beside it. `runtime`
//! and [`capabilities`] are the sandbox underneath, both built on
//! `bindings` (the one `bindgen!`, the ground floor; its types are [`wit`]);
//! [`costs`] the accounting of what deployments spent and the operator's
//! budget; [`db`] the store (SQLite or PostgreSQL). Blueprint Manager drives
//! it through [`embedding`]: service events in, deployments and their events
//! out. `telemetry` is what the sandbox reports about itself; [`server`] is
//! `bpr serve`, the host as a long-running service with an HTTP API, and
//! [`coordination`] how several of them share one database (leases, one
//! supervisor leader); [`logs`] reads what a deployment's workload printed
//! (pods, SSH hosts).
//!
//! Each room's `mod.rs` is its table: the files inside are private, and what
//! the room offers is re-exported there (`pub use`). `runtime`, `bindings`,
//! `clock` and `telemetry` are plumbing, private to the crate.

#![warn(missing_docs)]

mod bindings;
pub mod capabilities;
mod clock;
pub mod config;
pub mod coordination;
pub mod costs;
pub mod db;
pub mod embedding;
mod host;
mod host_http;
pub mod kubernetes;
pub mod logs;
pub mod placement;
pub mod pricing;
pub mod providers;
pub mod provisioning;
mod runtime;
pub mod server;
pub mod ssh;
mod telemetry;
pub mod tracking;
pub mod workload;

/// What the crate's own integration tests and benchmarks reach below the
/// public API (the artifact cache, the pooled HTTP client): not for
/// embedders, not covered by semver.
#[doc(hidden)]
pub mod testing {
    pub use crate::capabilities::SharedHttpClient;
    pub use crate::runtime::cache::ArtifactCache;
    pub use crate::runtime::state::HostState;
}

pub use bindings::wit;
pub use capabilities::HttpClientConfig;
pub use capabilities::SshBackend;
pub use config::Config;
pub use db::Database;
pub use embedding::{
    DeployArtifact, EmbeddingOptions, RemoteDeployments, ResourceSpec, ServiceKey,
};
pub use host::{Host, HostError, HostOptions};
pub use kubernetes::ClusterDirectory;
pub use placement::{Mode, Policy, Tier};
pub use pricing::PricingService;
pub use providers::{ProviderHandle, Providers};
pub use provisioning::{
    CleanupReport, DeployError, DeployEvent, DeployOptions, DeployRequest, DeploymentEvent,
    EventKind, HealthWatch, InstanceTarget, Orchestrator, Plan, PlanError, RecoveryReport,
    SupervisorOptions, SweepReport,
};
pub use runtime::{CacheError, CallError, LoadError, NotPrivate};
pub use tracking::{DeploymentRecord, DeploymentStatus};
