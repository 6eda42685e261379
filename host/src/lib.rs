//! Blueprint Remote Providers: a host that runs cloud provider plugins as
//! sandboxed WebAssembly components, and decides, creates and tracks where
//! Blueprint services run.
//!
//! Start with [`Host`]: [`Host::start`] loads every provider component of the
//! configured directory (see [`Config`]), and [`Host::provider`] gives a
//! [`ProviderHandle`] whose methods call the component's WIT exports, each in
//! a fresh sandboxed store under a deadline and a memory cap.
//!
//! Modules:
//! - [`config`]: the operator's TOML configuration.
//! - [`bindings`]: the one `bindgen!` of the WIT package (the ground floor).
//! - [`runtime`]: engine, linker, limits, load-time checks, artifact cache.
//! - [`capabilities`]: what a component may import: outbound HTTP (allowlist,
//!   credentials, shared client), log, settings, ssh.
//! - [`providers`]: loading, the registry, typed handles, lock file, hot reload.
//! - [`db`]: the embedded SQLite database (price cache, deployment tracker).
//! - [`pricing`]: offers from every provider, normalised and cached.
//! - [`placement`]: the pure ranking of offers against a request (no I/O).
//! - [`ssh`]: the operator's own machines over SSH (the `ssh` capability's native side).
//! - [`kubernetes`]: rendering and server-side applying a deployment's objects to any cluster.

pub mod bindings;
pub mod capabilities;
#[doc(hidden)]
pub mod cli;
pub mod config;
pub mod db;
mod host;
pub mod kubernetes;
pub mod operator_hosts;
pub mod placement;
pub mod pricing;
pub mod providers;
pub mod provisioning;
pub mod runtime;
pub mod ssh;
pub mod tracking;
pub mod workload;

pub use bindings::wit;
pub use config::Config;
pub use host::{Host, HostError, HostOptions};
pub use providers::ProviderHandle;
pub use runtime::{CallError, LoadError};
