//! VKE (Vultr Kubernetes Engine) clusters: create with node pools, get
//! (endpoint and CA from the cluster's kubeconfig once it is active), delete
//! with its linked resources, and the credentials the host fetches (`fetched`
//! auth: the client certificate of the kubeconfig `GET
//! /kubernetes/clusters/{id}/config` returns).
//!
//! A VKE cluster has no tags: its `label` is the cluster name, and every node
//! pool's `tag` is the `bpr-deployment` label tag, which is how a repeated
//! create recognises its own cluster.

use provider_sdk::settings;
use provider_sdk::types::{
    BearerCredential, ClientCertificate, Cluster, ClusterAuth, ClusterCredentials, ClusterRef,
    ClusterSpec, ClusterState, DeleteStatus, Error, ResourceRef,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, path_segment};
use crate::codec::{self, KubeconfigFields};
use crate::model::{self, Meta, null_default};

/// A VKE cluster (the fields we read).
#[derive(Debug, Deserialize)]
pub struct VkeCluster {
    /// Id (UUID).
    pub id: String,
    /// Label (our cluster name).
    #[serde(default, deserialize_with = "null_default")]
    pub label: String,
    /// Region id.
    #[serde(default, deserialize_with = "null_default")]
    pub region: String,
    /// `pending`, `active`, ...
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    /// Control-plane host name (`<id>.vultr-k8s.com`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Kubernetes version (`v1.31.2+1`).
    #[serde(default)]
    pub version: Option<String>,
    /// Node pools.
    #[serde(default, deserialize_with = "null_default")]
    pub node_pools: Vec<NodePool>,
}

/// A node pool.
#[derive(Debug, Deserialize)]
pub struct NodePool {
    /// Id.
    #[serde(default)]
    pub id: Option<String>,
    /// The tag we set.
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Deserialize)]
struct VkeEnvelope {
    vke_cluster: VkeCluster,
}

#[derive(Deserialize)]
struct VkePage {
    #[serde(default, deserialize_with = "null_default")]
    vke_clusters: Vec<VkeCluster>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct KubeConfig {
    kube_config: String,
}

#[derive(Deserialize)]
struct Versions {
    #[serde(default, deserialize_with = "null_default")]
    versions: Vec<String>,
}

/// VKE status -> WIT cluster state. The spec lists no values; `pending` and
/// `active` are the ones its examples and the live API show.
pub fn cluster_state(status: &str) -> ClusterState {
    match status {
        "pending" | "provisioning" => ClusterState::Provisioning,
        "active" | "running" => ClusterState::Running,
        "updating" | "upgrading" => ClusterState::Updating,
        "deleting" | "destroying" => ClusterState::Deleting,
        "failed" | "error" => ClusterState::Failed,
        _ => ClusterState::Unknown,
    }
}

/// A cluster as a WIT record, without endpoint and CA (they come from the
/// kubeconfig, see [`get`]).
pub fn cluster_from_api(c: &VkeCluster) -> Cluster {
    let tags: Vec<String> = c.node_pools.iter().filter_map(|p| p.tag.clone()).collect();
    let mut labels = model::labels_from_tags(&tags);
    labels.dedup();
    Cluster {
        id: c.id.clone(),
        name: c.label.clone(),
        region: c.region.clone(),
        state: cluster_state(&c.status),
        endpoint: None,
        ca_certificate_pem: None,
        auth: ClusterAuth::Fetched,
        kubernetes_version: c.version.clone(),
        labels,
        resources: c
            .node_pools
            .iter()
            .filter_map(|p| {
                Some(ResourceRef {
                    kind: "node-pool".into(),
                    id: p.id.clone()?,
                })
            })
            .collect(),
        detail: Some(format!("VKE cluster {} is {}", c.label, c.status)),
    }
}

/// The Vultr version for a requested one: exact (`v1.31.2+1`), or the newest
/// of `available` (newest first, as Vultr lists them) whose minor matches
/// `1.31`; `None` asks for the newest.
pub fn pick_version(requested: Option<&str>, available: &[String]) -> Result<String, Error> {
    let Some(want) = requested.map(str::trim).filter(|v| !v.is_empty()) else {
        return available.first().cloned().ok_or_else(|| {
            Error::Other("Vultr lists no Kubernetes version (GET /kubernetes/versions)".into())
        });
    };
    if available.iter().any(|v| v == want) {
        return Ok(want.to_string());
    }
    let prefix = format!("v{}.", want.trim_start_matches('v'));
    available
        .iter()
        .find(|v| v.starts_with(&prefix))
        .cloned()
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "Kubernetes version `{want}` is not offered by VKE; available: {}",
                available.join(", ")
            ))
        })
}

fn all_clusters(api: &Api) -> Result<Vec<VkeCluster>, Error> {
    api.all_pages(
        "/kubernetes/clusters",
        "listing VKE clusters",
        |p: VkePage| (p.vke_clusters, p.meta),
    )
}

/// `kubernetes.create-cluster`.
pub fn create(spec: &ClusterSpec) -> Result<Cluster, Error> {
    let api = Api::from_settings();
    if spec.node_pools.is_empty() {
        return Err(Error::InvalidRequest(
            "a VKE cluster needs at least one node pool".into(),
        ));
    }
    if spec.node_pools.iter().any(|p| p.spot) {
        return Err(Error::Unsupported(
            "VKE has no spot nodes; ask for on-demand node pools".into(),
        ));
    }
    let tag = model::label_tag("bpr-deployment", &spec.deployment_id)?;
    // Retry safety: the cluster an earlier attempt made has our label and
    // pool tag.
    if let Some(c) = all_clusters(&api)?
        .into_iter()
        .find(|c| c.label == spec.name)
    {
        if c.node_pools.iter().any(|p| p.tag.as_deref() == Some(&tag)) {
            return Ok(cluster_from_api(&c));
        }
        return Err(Error::InvalidRequest(format!(
            "a VKE cluster labelled {} already exists and was not created by this deployment; choose another name",
            spec.name
        )));
    }
    let versions: Versions = api.get_json("/kubernetes/versions", "listing VKE versions")?;
    let version = pick_version(
        spec.kubernetes_version
            .clone()
            .or_else(|| settings::get("kubernetes_version"))
            .as_deref(),
        &versions.versions,
    )?;
    let pools: Vec<Value> = spec
        .node_pools
        .iter()
        .map(|p| {
            if p.disk_gib.is_some() {
                provider_sdk::log::debug(
                    "node-pool disk-gib is ignored: a VKE node's disk comes with its plan",
                );
            }
            let mut pool = json!({
                "node_quantity": p.count.max(1),
                "label": p.name,
                "plan": p.instance_type,
                "tag": tag,
            });
            if let (Some(min), Some(max)) = (p.min_count, p.max_count) {
                pool["auto_scaler"] = json!(true);
                pool["min_nodes"] = json!(min);
                pool["max_nodes"] = json!(max);
            }
            pool
        })
        .collect();
    let env: VkeEnvelope = api.post_json(
        "/kubernetes/clusters",
        &json!({
            "label": spec.name,
            "region": spec.region,
            "version": version,
            "node_pools": pools,
        }),
        &format!("creating VKE cluster {} in {}", spec.name, spec.region),
    )?;
    Ok(cluster_from_api(&env.vke_cluster))
}

/// The cluster's kubeconfig, decoded. Never logged: it holds the client key.
fn kubeconfig(api: &Api, id: &str, name: &str) -> Result<String, Error> {
    let cfg: KubeConfig = api.get_json(
        &format!("/kubernetes/clusters/{id}/config"),
        &format!("reading the kubeconfig of VKE cluster {name}"),
    )?;
    codec::base64_decode(&cfg.kube_config)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            Error::Other(format!(
                "the kubeconfig of VKE cluster {name} is not base64 UTF-8 text"
            ))
        })
}

/// `kubernetes.get-cluster`: once active, the endpoint and CA are the
/// kubeconfig's (`https://<id>.vultr-k8s.com:6443`); the client key in it is
/// dropped here and handed over only by [`credentials`].
pub fn get(target: &ClusterRef) -> Result<Cluster, Error> {
    let api = Api::from_settings();
    let id = path_segment(&target.id, "cluster id")?;
    let env: VkeEnvelope = api.get_json(
        &format!("/kubernetes/clusters/{id}"),
        &format!("reading VKE cluster {}", target.name),
    )?;
    let mut cluster = cluster_from_api(&env.vke_cluster);
    if cluster.state == ClusterState::Running {
        let fields = codec::kubeconfig_fields(&kubeconfig(&api, id, &target.name)?);
        cluster.endpoint = fields.server.clone().or_else(|| {
            env.vke_cluster
                .endpoint
                .as_deref()
                .filter(|e| !e.is_empty())
                .map(|host| format!("https://{host}:6443"))
        });
        cluster.ca_certificate_pem = fields
            .certificate_authority_data
            .as_deref()
            .and_then(codec::pem_from_base64);
    }
    Ok(cluster)
}

/// `kubernetes.delete-cluster`: the cluster with its linked resources (load
/// balancers, block storage its workloads made); `in-progress` until it
/// reads as gone.
pub fn delete(target: &ClusterRef) -> Result<DeleteStatus, Error> {
    let api = Api::from_settings();
    let id = path_segment(&target.id, "cluster id")?;
    api.delete(
        &format!("/kubernetes/clusters/{id}/delete-with-linked-resources"),
        &format!("deleting VKE cluster {}", target.name),
    )?;
    match api.get_json::<VkeEnvelope>(
        &format!("/kubernetes/clusters/{id}"),
        &format!("reading VKE cluster {}", target.name),
    ) {
        Err(Error::NotFound(_)) => Ok(DeleteStatus::Deleted),
        Ok(_) => Ok(DeleteStatus::InProgress),
        Err(e) => Err(e),
    }
}

/// The credentials of a kubeconfig: its client certificate, else its token,
/// else the whole document (the host refuses one that runs commands or reads
/// files).
pub fn credentials_from(yaml: String, name: &str) -> Result<ClusterCredentials, Error> {
    let KubeconfigFields {
        client_certificate_data,
        client_key_data,
        token,
        ..
    } = codec::kubeconfig_fields(&yaml);
    let pem = |d: Option<String>| d.as_deref().and_then(codec::pem_from_base64);
    match (pem(client_certificate_data), pem(client_key_data), token) {
        (Some(certificate_pem), Some(key_pem), _) => {
            Ok(ClusterCredentials::ClientCertificate(ClientCertificate {
                certificate_pem,
                key_pem,
            }))
        }
        (_, _, Some(token)) => Ok(ClusterCredentials::BearerToken(BearerCredential {
            token,
            expires_at: None,
        })),
        _ if yaml.contains("clusters:") => Ok(ClusterCredentials::Kubeconfig(yaml)),
        _ => Err(Error::Other(format!(
            "the kubeconfig of VKE cluster {name} has no client certificate or token; retry later"
        ))),
    }
}

/// `kubernetes.get-credentials`.
pub fn credentials(target: &ClusterRef) -> Result<ClusterCredentials, Error> {
    let api = Api::from_settings();
    let id = path_segment(&target.id, "cluster id")?;
    credentials_from(kubeconfig(&api, id, &target.name)?, &target.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions() -> Vec<String> {
        ["v1.31.2+1", "v1.30.6+1", "v1.30.5+2"]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn versions_match_exactly_or_by_minor_newest_first() {
        assert_eq!(pick_version(None, &versions()).unwrap(), "v1.31.2+1");
        assert_eq!(
            pick_version(Some("1.30"), &versions()).unwrap(),
            "v1.30.6+1"
        );
        assert_eq!(
            pick_version(Some("v1.30.5+2"), &versions()).unwrap(),
            "v1.30.5+2"
        );
        assert!(matches!(
            pick_version(Some("1.3"), &versions()),
            Err(Error::InvalidRequest(m)) if m.contains("v1.31.2+1")
        ));
    }

    #[test]
    fn pool_tags_are_read_back_as_labels_and_pools_as_resources() {
        let c: VkeCluster = serde_json::from_value(json!({
            "id": "c-1", "label": "bpr-k", "region": "ewr", "status": "pending",
            "node_pools": [{"id": "p-1", "tag": "bpr:bpr-deployment:dep-1"}, {"id": "p-2", "tag": "bpr:bpr-deployment:dep-1"}],
        }))
        .unwrap();
        let cluster = cluster_from_api(&c);
        assert_eq!(cluster.state, ClusterState::Provisioning);
        assert_eq!(
            cluster.labels,
            vec![("bpr-deployment".to_string(), "dep-1".to_string())]
        );
        assert_eq!(cluster.resources.len(), 2);
        assert!(matches!(cluster.auth, ClusterAuth::Fetched));
    }

    #[test]
    fn the_client_certificate_of_the_kubeconfig_is_handed_over() {
        let b64 = |s: &str| codec::base64_encode(s.as_bytes());
        let yaml = format!(
            "clusters:\n- cluster:\n    server: https://x:6443\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64("-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n"),
            b64("-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n")
        );
        match credentials_from(yaml, "k").unwrap() {
            ClusterCredentials::ClientCertificate(c) => {
                assert!(c.certificate_pem.contains("BEGIN CERTIFICATE"));
                assert!(c.key_pem.contains("BEGIN PRIVATE KEY"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            credentials_from("nothing here".into(), "k"),
            Err(Error::Other(_))
        ));
    }
}
