//! Starting a host: the engine, the shared HTTP client, the database, the SSH
//! pool and the loader wired together, every provider loaded, the watch
//! started.

use std::sync::Arc;

use super::{Host, Parts};
use crate::capabilities::SshBackend;
use crate::capabilities::{HttpClientConfig, SharedHttpClient};
use crate::config::Config;
use crate::db::DbError;
use crate::kubernetes::ClusterDirectory;
use crate::pricing::NormalizeError;
use crate::pricing::PricingService;
use crate::providers::Loader;
use crate::providers::Providers;
use crate::provisioning::Orchestrator;
use crate::runtime::engine::EngineHandle;
use crate::tracking::Tracker;

/// The host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The state directory, the artifact cache or its key is not private to
    /// this host (other users could write it), or could not be set up.
    #[error("{0}")]
    StateDirNotPrivate(#[source] crate::runtime::cache::CacheError),
    /// The state directory could not be created.
    #[error("cannot create state directory {path}: {source}")]
    StateDirUnusable {
        /// The directory.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The providers directory does not exist.
    #[error(
        "providers directory {0} does not exist; set [host] providers_dir or build the in-tree components"
    )]
    ProvidersDirMissing(String),
    /// wasmtime could not be set up.
    #[error("cannot set up the WebAssembly engine: {0}")]
    EngineFailed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The HTTP client could not be built (e.g. no trust store).
    #[error("cannot build the HTTP client: {0}")]
    HttpClientFailed(#[source] std::io::Error),
    /// The embedded database could not be opened or migrated.
    #[error(transparent)]
    DatabaseFailed(#[from] DbError),
    /// The `[ssh]` hosts could not be set up (bad key file, bad alias...).
    #[error("[[ssh.hosts]]: {0}")]
    SshFailed(#[source] crate::ssh::SshError),
    /// The directory watch could not start.
    #[error("cannot watch {path}: {source}")]
    WatchFailed {
        /// The directory.
        path: String,
        /// Cause.
        #[source]
        source: notify::Error,
    },
    /// A `price_multiplier` cannot be applied.
    #[error(transparent)]
    PricingFailed(#[from] NormalizeError),
}

/// Options of [`Host::start_with`].
#[derive(Default)]
pub struct HostOptions {
    /// SSH backend for `ssh-provider` components.
    pub ssh: Option<Arc<dyn SshBackend>>,
    /// Timeouts of the shared HTTP client.
    pub http: HttpClientConfig,
}

/// Start: load every provider, start the watch (when configured).
pub(super) async fn start(config: Config, options: HostOptions) -> Result<Host, HostError> {
    let state_dir = config.host.state_dir.clone();
    crate::runtime::private_dir::create(&state_dir).map_err(|source| {
        HostError::StateDirUnusable {
            path: state_dir.display().to_string(),
            source,
        }
    })?;
    let dir = config.host.providers_dir.clone();
    if !dir.is_dir() {
        return Err(HostError::ProvidersDirMissing(dir.display().to_string()));
    }
    // Slots for concurrent calls, each as large as the largest memory cap.
    let max_memory = config
        .providers
        .values()
        .map(|p| p.memory_bytes)
        .chain(std::iter::once(
            crate::config::ProviderConfig::unconfigured().memory_bytes,
        ))
        .max()
        .unwrap_or(256 << 20);
    let engine = Arc::new(
        EngineHandle::new(config.host.max_concurrent_calls, max_memory)
            .map_err(|e| HostError::EngineFailed(e.into()))?,
    );
    // Before the database or any artifact is read: the state directory must be ours alone.
    let cache = crate::runtime::cache::ArtifactCache::open(&config.host, engine.engine())
        .map_err(HostError::StateDirNotPrivate)?;
    let client = SharedHttpClient::new(options.http).map_err(HostError::HttpClientFailed)?;
    let db = config.open_database()?;
    let ssh_pool = crate::ssh::inventory::build_pool(&config, &db).map_err(HostError::SshFailed)?;
    let ssh_backend: Option<Arc<dyn SshBackend>> = match (options.ssh, &ssh_pool) {
        (Some(b), _) => Some(b),
        (None, Some(p)) => Some(p.clone()),
        (None, None) => None,
    };
    let loader = Arc::new(
        Loader::new(engine, cache, client, ssh_backend)
            .map_err(|e| HostError::EngineFailed(e.into()))?,
    );
    let config = Arc::new(config);
    let providers = Providers::load(config.clone(), loader).await;
    let pricing = PricingService::new(providers.clone(), db.clone(), &config)?;
    let tracker = Tracker::new(db.clone(), &config.host.state_dir.join("deployments"))
        .with_lease_settings(config.coordination.clone());
    let clusters =
        ClusterDirectory::with_tracker(config.clone(), providers.clone(), tracker.clone());
    let orchestrator = Orchestrator::new(
        config.clone(),
        providers.clone(),
        pricing.clone(),
        clusters.clone(),
        tracker,
    );
    if config.host.watch {
        providers.watch().map_err(|source| HostError::WatchFailed {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(Host {
        parts: Arc::new(Parts {
            config,
            db,
            ssh_pool,
            providers,
            pricing,
            clusters,
            orchestrator,
        }),
    })
}
