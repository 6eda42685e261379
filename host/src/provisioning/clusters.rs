//! Where `k8s:<name>` points: a cluster the embedder added, a managed cluster of
//! `[operator.kubernetes] managed` (resolved through the provider that created it,
//! authenticated by the host), or a kubeconfig cluster of `[operator.kubernetes]
//! clusters`.

use std::sync::Arc;

use crate::Host;
use crate::capabilities::credentials::CredentialConfig;
use crate::config::ManagedKubernetesCluster;
use crate::kubernetes::managed::{HostCredentials, ManagedCluster, ManagedError};
use crate::kubernetes::{Cluster, ClusterConfig, Error};
use crate::wit::{ClusterAuth, ClusterRef};

use super::describe_error;

impl Host {
    /// The Kubernetes cluster `name`. Errors name the cluster and what to fix.
    ///
    /// - added with [`Host::add_cluster`]: as added;
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
        let k8s = &self.config().operator.kubernetes;
        if let Some(entry) = k8s.managed.iter().find(|m| m.name == name) {
            return self.managed_cluster(entry).await;
        }
        let Some(entry) = k8s.clusters.iter().find(|c| c.name == name) else {
            let mut known: Vec<String> = k8s
                .clusters
                .iter()
                .map(|c| c.name.clone())
                .chain(k8s.managed.iter().map(|m| m.name.clone()))
                .chain(self.cluster_cache().keys().cloned())
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
    /// [`crate::kubernetes::managed::connect`]); replaces one with the same name. A
    /// client holding a short-lived token must be added again before it expires;
    /// prefer `[operator.kubernetes] managed`, which renews it.
    pub fn add_cluster(&self, cluster: Cluster) {
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
            .provider(&entry.provider)
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
                .map_err(|e| lookup("return credentials", describe_error(&e)))
        };
        let known = self.managed_cache().get(&entry.name).cloned();
        let managed = match known {
            Some(m) => m,
            None => {
                let record = provider
                    .get_cluster(target.clone())
                    .await
                    .map_err(|e| lookup("describe the cluster", describe_error(&e)))?;
                let mut credentials = HostCredentials::default();
                if let Some(CredentialConfig::AwsSigV4 { source, .. }) = self
                    .config()
                    .providers
                    .get(&entry.provider)
                    .map(|p| &p.credential)
                {
                    credentials.aws = Some(source.clone());
                }
                if let Some(credential) = self
                    .config()
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
