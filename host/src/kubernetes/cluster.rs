//! Clusters from kubeconfig files and contexts, several at once.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde::{Deserialize, Serialize};

use super::deploy::Deployer;
use super::error::{Error, Result};

/// One entry of `[operator.kubernetes] clusters`.
///
/// ```toml
/// [operator.kubernetes]
/// clusters = [ { name = "aws-prod", kubeconfig = "/etc/k8s/aws.config", context = "prod" } ]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// Operator's name for the cluster (`bpr deploy --target k8s:<name>`).
    pub name: String,
    /// Path of the kubeconfig file.
    pub kubeconfig: PathBuf,
    /// Context in that file; `None` uses the file's `current-context`.
    pub context: Option<String>,
}

/// A connected cluster: a name and a `kube::Client`.
#[derive(Clone)]
pub struct Cluster {
    name: String,
    client: kube::Client,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("name", &self.name).finish()
    }
}

impl Cluster {
    /// Reads the kubeconfig file and selects the context. Does no network I/O: a
    /// cluster that is down is only noticed by the first request.
    ///
    /// Errors name the cluster, the file and the context: [`Error::KubeconfigUnreadable`]
    /// (missing file, bad YAML), [`Error::ContextNotFound`] (with the contexts the file
    /// has), [`Error::KubeconfigInvalid`] (no current context, bad server URL,
    /// unreadable certificate).
    pub async fn connect(config: &ClusterConfig) -> Result<Self> {
        let kubeconfig = Kubeconfig::read_from(&config.kubeconfig).map_err(|source| {
            Error::KubeconfigUnreadable {
                cluster: config.name.clone(),
                path: config.kubeconfig.clone(),
                source,
            }
        })?;
        if let Some(context) = &config.context
            && !kubeconfig.contexts.iter().any(|c| &c.name == context)
        {
            let names: Vec<&str> = kubeconfig
                .contexts
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(Error::ContextNotFound {
                cluster: config.name.clone(),
                path: config.kubeconfig.clone(),
                context: context.clone(),
                available: if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                },
            });
        }
        let options = KubeConfigOptions {
            context: config.context.clone(),
            ..KubeConfigOptions::default()
        };
        let client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| Error::KubeconfigInvalid {
                cluster: config.name.clone(),
                path: config.kubeconfig.clone(),
                context: config
                    .context
                    .clone()
                    .unwrap_or_else(|| "<current-context>".to_owned()),
                source,
            })?;
        let client =
            kube::Client::try_from(client_config).map_err(|source| Error::ClientBuildFailed {
                cluster: config.name.clone(),
                source,
            })?;
        Ok(Cluster {
            name: config.name.clone(),
            client,
        })
    }

    /// A cluster over an existing client (managed clusters, tests).
    pub fn from_client(name: impl Into<String>, client: kube::Client) -> Self {
        Cluster {
            name: name.into(),
            client,
        }
    }

    /// The operator's name for it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// A [`Deployer`] for this cluster with default rollout options.
    pub fn deployer(&self) -> Deployer {
        Deployer::new(self.client.clone())
    }
}

/// Every configured cluster, by name.
#[derive(Debug, Clone, Default)]
pub struct Clusters {
    clusters: BTreeMap<String, Cluster>,
}

impl Clusters {
    /// Connects every configured cluster; the first bad entry fails the whole set, so
    /// configuration errors surface at start-up.
    pub async fn connect_all(configs: &[ClusterConfig]) -> Result<Self> {
        let mut clusters = BTreeMap::new();
        for config in configs {
            if clusters.contains_key(&config.name) {
                return Err(Error::DuplicateCluster {
                    name: config.name.clone(),
                });
            }
            clusters.insert(config.name.clone(), Cluster::connect(config).await?);
        }
        Ok(Clusters { clusters })
    }

    /// Adds a cluster (e.g. a managed one a provider created), replacing one with the
    /// same name.
    pub fn insert(&mut self, cluster: Cluster) {
        self.clusters.insert(cluster.name.clone(), cluster);
    }

    /// The cluster with this name, or [`Error::UnknownCluster`] listing the known ones.
    pub fn get(&self, name: &str) -> Result<&Cluster> {
        self.clusters
            .get(name)
            .ok_or_else(|| Error::UnknownCluster {
                name: name.to_owned(),
                known: if self.clusters.is_empty() {
                    "none".to_owned()
                } else {
                    self.names().collect::<Vec<_>>().join(", ")
                },
            })
    }

    /// Cluster names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.clusters.keys().map(String::as_str)
    }
}
