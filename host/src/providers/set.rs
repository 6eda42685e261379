//! [`Providers`]: the loaded providers as one part the host owns, for the
//! orchestrator, the pricing service and the cluster directory to share:
//! handles by name, statuses, reloads and the directory watch.

use std::path::Path;
use std::sync::{Arc, Mutex};

use super::ProviderHandle;
use super::loader::Loader;
use super::registry::{ProviderStatus, Registry};
use super::watch::{self, DirWatch};
use crate::config::Config;
use crate::runtime::CallError;

/// Every provider of the providers directory, hot-reloaded. Cheap to clone.
#[derive(Clone)]
pub struct Providers {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    loader: Arc<Loader>,
    registry: Arc<Registry>,
    watch: Mutex<Option<DirWatch>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("serving", &self.inner.registry.names())
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// Load every `.wasm` file of the configured directory (concurrently; a
    /// refused file is recorded in its status, never fatal).
    pub(crate) async fn load(config: Arc<Config>, loader: Arc<Loader>) -> Self {
        let registry = Arc::new(Registry::default());
        let loads = watch::wasm_files(&config.host.providers_dir)
            .into_iter()
            .map(|path| {
                let (config, loader, registry) = (config.clone(), loader.clone(), registry.clone());
                async move { watch::reload(&config, &loader, &registry, &path).await }
            });
        futures::future::join_all(loads).await;
        Self {
            inner: Arc::new(Inner {
                config,
                loader,
                registry,
                watch: Mutex::new(None),
            }),
        }
    }

    /// Start hot reload: the providers directory is watched until
    /// [`Providers::stop_watching`].
    pub(crate) fn watch(&self) -> notify::Result<()> {
        let w = watch::spawn(
            self.inner.config.clone(),
            self.inner.loader.clone(),
            self.inner.registry.clone(),
        )?;
        *self.inner.watch.lock().unwrap_or_else(|p| p.into_inner()) = Some(w);
        Ok(())
    }

    /// Stop the watch. Calls in flight finish.
    pub fn stop_watching(&self) {
        self.inner
            .watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    /// A handle on provider `name`.
    pub fn get(&self, name: &str) -> Result<ProviderHandle, CallError> {
        if self.inner.registry.get(name).is_none() {
            return Err(CallError::NotLoaded(name.to_string()));
        }
        Ok(ProviderHandle::new(
            name.to_string(),
            self.inner.registry.clone(),
        ))
    }

    /// Handles on every serving provider, sorted by name.
    pub fn all(&self) -> Vec<ProviderHandle> {
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
    pub async fn reload(&self, path: &Path) {
        watch::reload(
            &self.inner.config,
            &self.inner.loader,
            &self.inner.registry,
            path,
        )
        .await;
    }
}
