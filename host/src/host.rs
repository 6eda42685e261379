//! `Host`: the embeddable entry point. It owns the engine, the loaded
//! providers and the hot-reload watch. Blueprint Manager and `bpr` both use it.

use std::sync::{Arc, Mutex};

use crate::capabilities::SshBackend;
use crate::capabilities::http_client::{HttpClientConfig, SharedHttpClient};
use crate::config::Config;
use crate::db::{Database, DbError};
use crate::providers::loader::Loader;
use crate::providers::watch::{self, DirWatch};
use crate::providers::{ProviderHandle, ProviderStatus, Registry};
use crate::runtime::CallError;
use crate::runtime::engine::EngineHandle;

/// The host could not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
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
    EngineFailed(String),
    /// The HTTP client could not be built (e.g. no trust store).
    #[error("cannot build the HTTP client: {0}")]
    HttpClientFailed(#[source] std::io::Error),
    /// The embedded database could not be opened or migrated.
    #[error(transparent)]
    DatabaseFailed(#[from] DbError),
    /// The `[ssh]` hosts could not be set up (bad key file, bad alias...).
    #[error("ssh hosts: {0}")]
    SshFailed(String),
    /// The directory watch could not start.
    #[error("cannot watch {path}: {message}")]
    WatchFailed {
        /// The directory.
        path: String,
        /// Cause.
        message: String,
    },
}

struct Inner {
    config: Arc<Config>,
    db: Database,
    ssh_pool: Option<Arc<crate::ssh::SshPool>>,
    loader: Arc<Loader>,
    registry: Arc<Registry>,
    watch: Mutex<Option<DirWatch>>,
    /// Kubernetes clusters connected so far, and managed ones added by the embedder.
    clusters: Mutex<std::collections::BTreeMap<String, crate::kubernetes::Cluster>>,
    /// `[operator.kubernetes] managed` clusters resolved through their provider.
    managed:
        Mutex<std::collections::BTreeMap<String, Arc<crate::kubernetes::managed::ManagedCluster>>>,
}

/// A running host. Cheap to clone.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("origin", &self.inner.config.origin)
            .finish_non_exhaustive()
    }
}

/// Options of [`Host::start_with`].
#[derive(Default)]
pub struct HostOptions {
    /// SSH backend for `ssh-provider` components.
    pub ssh: Option<Arc<dyn SshBackend>>,
    /// Timeouts of the shared HTTP client.
    pub http: HttpClientConfig,
}

impl Host {
    /// Start with default options: load every provider, start the watch.
    pub async fn start(config: Config) -> Result<Self, HostError> {
        Self::start_with(config, HostOptions::default()).await
    }

    /// Start with options.
    pub async fn start_with(config: Config, options: HostOptions) -> Result<Self, HostError> {
        let state_dir = config.host.state_dir.clone();
        std::fs::create_dir_all(&state_dir).map_err(|source| HostError::StateDirUnusable {
            path: state_dir.display().to_string(),
            source,
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
                .map_err(|e| HostError::EngineFailed(format!("{e:#}")))?,
        );
        let client = SharedHttpClient::new(options.http).map_err(HostError::HttpClientFailed)?;
        let db = Database::open(&config.database_path())?;
        let ssh_pool = crate::operator_hosts::build_pool(&config, &db)
            .map_err(|e| HostError::SshFailed(e.to_string()))?;
        let ssh_backend: Option<Arc<dyn SshBackend>> = match (options.ssh, &ssh_pool) {
            (Some(b), _) => Some(b),
            (None, Some(p)) => Some(p.clone()),
            (None, None) => None,
        };
        let loader = Arc::new(
            Loader::new(
                engine,
                config.host.artifact_dir.clone(),
                client,
                ssh_backend,
            )
            .map_err(|e| HostError::EngineFailed(format!("{e:#}")))?,
        );
        let registry = Arc::new(Registry::default());
        let config = Arc::new(config);

        let loads = watch::wasm_files(&dir).into_iter().map(|path| {
            let (config, loader, registry) = (config.clone(), loader.clone(), registry.clone());
            async move { watch::reload(&config, &loader, &registry, &path).await }
        });
        futures::future::join_all(loads).await;

        let host = Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                db,
                ssh_pool,
                loader,
                registry,
                watch: Mutex::new(None),
                clusters: Mutex::new(Default::default()),
                managed: Mutex::new(Default::default()),
            }),
        };
        if config.host.watch {
            let w = watch::spawn(
                config.clone(),
                host.inner.loader.clone(),
                host.inner.registry.clone(),
            )
            .map_err(|e| HostError::WatchFailed {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
            *host.inner.watch.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
        }
        Ok(host)
    }

    /// The configuration the host runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The embedded database (price cache, deployment tracker).
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The pool of `[[ssh.hosts]]`, when any are configured.
    pub fn ssh_pool(&self) -> Option<&Arc<crate::ssh::SshPool>> {
        self.inner.ssh_pool.as_ref()
    }

    /// A handle on provider `name`.
    pub fn provider(&self, name: &str) -> Result<ProviderHandle, CallError> {
        if self.inner.registry.get(name).is_none() {
            return Err(CallError::NotLoaded(name.to_string()));
        }
        Ok(ProviderHandle::new(
            name.to_string(),
            self.inner.registry.clone(),
        ))
    }

    /// The registry of loaded providers (what the pricing service calls).
    pub fn registry(&self) -> Arc<Registry> {
        self.inner.registry.clone()
    }

    /// A pricing service over this host's providers, database and config.
    pub fn pricing(
        &self,
    ) -> Result<Arc<crate::pricing::PricingService>, crate::pricing::normalize::NormalizeError>
    {
        let config = crate::pricing::PricingConfig::from_config(self.config())?;
        Ok(crate::pricing::PricingService::new(
            self.registry(),
            self.database().clone(),
            config,
        ))
    }

    /// Handles on every serving provider, sorted by name.
    pub fn providers(&self) -> Vec<ProviderHandle> {
        self.inner
            .registry
            .names()
            .into_iter()
            .map(|n| ProviderHandle::new(n, self.inner.registry.clone()))
            .collect()
    }

    /// Every provider seen, loaded or refused.
    pub fn statuses(&self) -> Vec<ProviderStatus> {
        self.inner.registry.statuses()
    }

    /// Reload one file now (what the watch does on a change).
    pub async fn reload(&self, path: &std::path::Path) {
        watch::reload(
            &self.inner.config,
            &self.inner.loader,
            &self.inner.registry,
            path,
        )
        .await;
    }

    /// Kubernetes clusters connected so far (kubeconfig ones) and added by the embedder.
    pub(crate) fn cluster_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, crate::kubernetes::Cluster>>
    {
        self.inner
            .clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Managed clusters resolved so far (they rebuild their client when a token ages).
    pub(crate) fn managed_cache(
        &self,
    ) -> std::sync::MutexGuard<
        '_,
        std::collections::BTreeMap<String, Arc<crate::kubernetes::managed::ManagedCluster>>,
    > {
        self.inner.managed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop the watch. Calls in flight finish.
    pub async fn shutdown(&self) {
        self.inner
            .watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}
