//! Where `k8s:<name>` points: a cluster the embedder added, a managed cluster of
//! `[operator.kubernetes] managed` or one created with `bpr k8s create` (both
//! resolved through the provider that created it, authenticated by the host), or
//! a kubeconfig cluster of `[operator.kubernetes] clusters`. The
//! [`ClusterDirectory`] resolves names and keeps the connected ones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::cluster::{Cluster, ClusterConfig};
use super::error::{Error, ManagedError};
use super::managed::{HostCredentials, ManagedCluster};
use crate::capabilities::CredentialConfig;
use crate::config::{Config, ManagedKubernetesCluster};
use crate::providers::Providers;
use crate::tracking::{DeploymentStatus, Tracker};
use crate::wit::{ClusterAuth, ClusterRef};

/// The Kubernetes clusters deployments may target, by name. Cheap to clone.
#[derive(Clone)]
pub struct ClusterDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    providers: Providers,
    /// Kubeconfig clusters connected so far, and clusters added by the embedder.
    clusters: Mutex<BTreeMap<String, Cluster>>,
    /// `[operator.kubernetes] managed` clusters resolved through their provider.
    managed: Mutex<BTreeMap<String, Arc<ManagedCluster>>>,
    /// Where clusters created with `bpr k8s create` are recorded, when known.
    tracker: Option<Tracker>,
}

impl std::fmt::Debug for ClusterDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterDirectory")
            .field(
                "connected",
                &self.cluster_cache().keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl ClusterDirectory {
    /// The clusters of `config`, managed ones resolved through `providers`.
    pub fn new(config: Arc<Config>, providers: Providers) -> Self {
        Self::build(config, providers, None)
    }

    /// [`ClusterDirectory::new`], also resolving the running clusters `tracker`
    /// records (created with `bpr k8s create`) by their name.
    pub fn with_tracker(config: Arc<Config>, providers: Providers, tracker: Tracker) -> Self {
        Self::build(config, providers, Some(tracker))
    }

    fn build(config: Arc<Config>, providers: Providers, tracker: Option<Tracker>) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                providers,
                clusters: Mutex::new(BTreeMap::new()),
                managed: Mutex::new(BTreeMap::new()),
                tracker,
            }),
        }
    }

    /// Drops what is kept for cluster `name` (its client, its provider record):
    /// the next [`ClusterDirectory::cluster`] resolves it afresh. Called when a
    /// tracked cluster is deleted, so a new one of the same name is not confused
    /// with it.
    pub fn forget(&self, name: &str) {
        self.cluster_cache().remove(name);
        self.managed_cache().remove(name);
    }

    /// The live tracked cluster `name`, as a managed-cluster entry once it runs.
    fn tracked(&self, name: &str) -> Result<Option<ManagedKubernetesCluster>, Error> {
        let Some(tracker) = &self.inner.tracker else {
            return Ok(None);
        };
        let Ok(Some(rec)) = tracker.live_cluster(name) else {
            return Ok(None);
        };
        // Terminating: its deployments are deleted before it is.
        if !matches!(
            rec.status,
            DeploymentStatus::Active | DeploymentStatus::Terminating
        ) {
            return Err(Error::TrackedClusterNotReady {
                cluster: name.to_string(),
                id: rec.id,
                status: rec.status.to_string(),
            });
        }
        match (rec.provider, rec.region, rec.instance_id) {
            (Some(provider), Some(region), Some(id)) => {
                // Another process may have deleted the cluster and made a new one of
                // the same name: what is kept must be this one's.
                let stale = self
                    .managed_cache()
                    .get(name)
                    .is_some_and(|m| m.record().id != id);
                if stale {
                    self.forget(name);
                }
                Ok(Some(ManagedKubernetesCluster {
                    name: name.to_string(),
                    provider,
                    region,
                    id,
                    cluster_name: Some(name.to_string()),
                }))
            }
            _ => Ok(None),
        }
    }

    /// Names of the live tracked clusters (for "unknown cluster" messages).
    fn tracked_names(&self) -> Vec<String> {
        self.inner
            .tracker
            .as_ref()
            .and_then(|t| t.clusters().ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|r| !r.status.is_final())
            .filter_map(|r| r.cluster)
            .collect()
    }

    fn cluster_cache(&self) -> MutexGuard<'_, BTreeMap<String, Cluster>> {
        self.inner
            .clusters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn managed_cache(&self) -> MutexGuard<'_, BTreeMap<String, Arc<ManagedCluster>>> {
        self.inner.managed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The Kubernetes cluster `name`. Errors name the cluster and what to fix.
    ///
    /// - added with [`ClusterDirectory::add`]: as added;
    /// - `[operator.kubernetes] managed`: the provider's `get-cluster` gives endpoint
    ///   and CA; the host authenticates with an EKS token it mints from that
    ///   provider's `aws-sigv4` credentials, or with what `get-credentials` returns
    ///   (fetched again when a fetched token expires). The client is rebuilt before a
    ///   minted token ages out, so call this before each operation;
    /// - `[operator.kubernetes] clusters`: connected on first use from its kubeconfig
    ///   (no network I/O).
    pub async fn cluster(&self, name: &str) -> Result<Cluster, Error> {
        if let Some(c) = self.cluster_cache().get(name) {
            return Ok(c.clone());
        }
        let k8s = &self.inner.config.operator.kubernetes;
        if let Some(entry) = k8s.managed.iter().find(|m| m.name == name) {
            return self.managed_cluster(entry).await;
        }
        if let Some(entry) = self.tracked(name)? {
            return self.managed_cluster(&entry).await;
        }
        let Some(entry) = k8s.clusters.iter().find(|c| c.name == name) else {
            let mut known: Vec<String> = k8s
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .chain(k8s.managed.iter().map(|m| m.name.clone()))
                .chain(self.cluster_cache().keys().cloned())
                .chain(self.tracked_names())
                .collect();
            known.sort();
            known.dedup();
            return Err(Error::UnknownCluster {
                name: name.to_string(),
                known: if known.is_empty() {
                    "none (add clusters = [{ name, kubeconfig, context }] to [operator.kubernetes])"
                        .into()
                } else {
                    known.join(", ")
                },
            });
        };
        let cluster = Cluster::connect(&ClusterConfig {
            name: entry.name.clone(),
            kubeconfig: entry.kubeconfig.clone(),
            context: entry.context.clone(),
        })
        .await?;
        self.cluster_cache()
            .insert(name.to_string(), cluster.clone());
        Ok(cluster)
    }

    /// Make a cluster a deployment target under its name (e.g. one connected with
    /// `super::managed::connect`); replaces one with the same name. A
    /// client holding a short-lived token must be added again before it expires;
    /// prefer `[operator.kubernetes] managed`, which renews it.
    pub fn add(&self, cluster: Cluster) {
        self.cluster_cache()
            .insert(cluster.name().to_string(), cluster);
    }

    async fn managed_cluster(&self, entry: &ManagedKubernetesCluster) -> Result<Cluster, Error> {
        let lookup = |what: &'static str, message: String| Error::ManagedLookupFailed {
            cluster: entry.name.clone(),
            provider: entry.provider.clone(),
            what,
            message,
        };
        let provider = self
            .inner
            .providers
            .get(&entry.provider)
            .map_err(|e| lookup("load", e.to_string()))?;
        let target = ClusterRef {
            id: entry.id.clone(),
            name: entry
                .cluster_name
                .clone()
                .unwrap_or_else(|| entry.id.clone()),
            region: entry.region.clone(),
            resources: Vec::new(),
        };
        let fetch = async || {
            provider
                .get_credentials(target.clone())
                .await
                .map_err(|e| lookup("return credentials", e.to_string()))
        };
        let known = self.managed_cache().get(&entry.name).cloned();
        let managed = match known {
            Some(m) => m,
            None => {
                let record = provider
                    .get_cluster(target.clone())
                    .await
                    .map_err(|e| lookup("describe the cluster", e.to_string()))?;
                let mut credentials = HostCredentials::default();
                if let Some(CredentialConfig::AwsSigV4 { source, .. }) = self
                    .inner
                    .config
                    .providers
                    .get(&entry.provider)
                    .map(|p| &p.credential)
                {
                    credentials.aws = Some(source.clone());
                }
                if let Some(credential) = self
                    .inner
                    .config
                    .providers
                    .get(&entry.provider)
                    .map(|p| &p.credential)
                {
                    credentials.oauth = credential.oauth_source();
                }
                if matches!(record.auth, ClusterAuth::Fetched) {
                    credentials.fetched = Some(fetch().await?);
                }
                Arc::new(ManagedCluster::new(record, credentials))
            }
        };
        let cluster = match managed.cluster().await {
            Err(ManagedError::CredentialsExpired { .. }) => {
                managed.set_fetched(fetch().await?).await;
                managed.cluster().await?
            }
            other => other?,
        };
        // Kept only once a client could be built: a cluster still provisioning is
        // asked about again next time.
        self.managed_cache()
            .insert(entry.name.clone(), managed.clone());
        Ok(Cluster::from_client(
            entry.name.clone(),
            cluster.client().clone(),
        ))
    }
}
