//! DOKS clusters: created (found again by name on a retry), read with their CA
//! (by id, or by name when the host lost the id), deleted, and the credentials
//! the host asks for.

use provider_sdk::settings;
use provider_sdk::types::{
    BearerCredential, ClientCertificate, Cluster, ClusterCredentials, ClusterRef, ClusterSpec,
    DeleteStatus, Error,
};
use serde_json::{Value, json};

use crate::api::{Api, PER_PAGE};
use crate::codec;
use crate::droplets::path_segment;
use crate::model::{self, KubeClusterEnvelope, KubeClustersPage, KubeCredentials};

/// Default DOKS version slug.
pub(crate) const DEFAULT_K8S_VERSION: &str = "latest";

pub(crate) fn create_cluster(api: &Api, spec: ClusterSpec) -> Result<Cluster, Error> {
    if spec.node_pools.is_empty() {
        return Err(Error::InvalidRequest(
            "a DOKS cluster needs at least one node pool".into(),
        ));
    }
    if spec.node_pools.iter().any(|p| p.spot) {
        return Err(Error::Unsupported(
            "DigitalOcean has no spot nodes; ask for on-demand node pools".into(),
        ));
    }
    let mut labels = spec.labels.clone();
    if !labels.iter().any(|(k, _)| k == "bpr-deployment") {
        labels.push(("bpr-deployment".into(), spec.deployment_id.clone()));
    }
    let mut tags: Vec<String> = labels
        .iter()
        .map(|(k, v)| model::label_tag(k, v))
        .collect::<Result<_, _>>()?;
    tags.push(model::idempotency_tag(&spec.idempotency_key)?);

    // Retry safety: cluster names are unique per account, so an earlier
    // attempt's cluster is found by name (and must carry our tag).
    let clusters = api.all_pages(
        &format!("/v2/kubernetes/clusters?per_page={PER_PAGE}"),
        "listing clusters",
        |p: KubeClustersPage| (p.kubernetes_clusters, p.links),
    )?;
    if let Some(c) = clusters.iter().find(|c| c.name == spec.name) {
        if c.tags.iter().any(|t| tags.last() == Some(t)) {
            return Ok(model::cluster_from_api(c));
        }
        return Err(Error::InvalidRequest(format!(
            "a DOKS cluster named {} already exists and was not created by this deployment; choose another name",
            spec.name
        )));
    }

    let pools: Vec<Value> = spec
        .node_pools
        .iter()
        .map(|p| {
            let mut pool = json!({
                "name": p.name,
                "size": p.instance_type,
                "count": p.count,
                "tags": tags[..tags.len() - 1],
            });
            if let (Some(min), Some(max)) = (p.min_count, p.max_count) {
                pool["auto_scale"] = json!(true);
                pool["min_nodes"] = json!(min);
                pool["max_nodes"] = json!(max);
            }
            pool
        })
        .collect();
    let version = spec
        .kubernetes_version
        .clone()
        .or_else(|| settings::get("kubernetes-version"))
        .unwrap_or_else(|| DEFAULT_K8S_VERSION.to_string());
    let env: KubeClusterEnvelope = api.post_json(
        "/v2/kubernetes/clusters",
        &json!({
            "name": spec.name,
            "region": spec.region,
            "version": version,
            "node_pools": pools,
            "tags": tags,
        }),
        &format!("creating DOKS cluster {} in {}", spec.name, spec.region),
    )?;
    Ok(model::cluster_from_api(&env.kubernetes_cluster))
}

/// The id of the cluster named `name` in `region`, found by listing (the host
/// asks by name when create-cluster's answer was lost); `not-found` when there
/// is none.
fn id_by_name(api: &Api, name: &str, region: &str) -> Result<String, Error> {
    let clusters = api.all_pages(
        &format!("/v2/kubernetes/clusters?per_page={PER_PAGE}"),
        "listing clusters",
        |p: KubeClustersPage| (p.kubernetes_clusters, p.links),
    )?;
    clusters
        .into_iter()
        .find(|c| c.name == name && (region.is_empty() || c.region == region))
        .map(|c| c.id)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "DigitalOcean has no cluster named {name} in {region}"
            ))
        })
}

pub(crate) fn get(target: ClusterRef) -> Result<Cluster, Error> {
    let api = Api::from_settings();
    let found;
    let id = if target.id.is_empty() {
        found = id_by_name(&api, &target.name, &target.region)?;
        path_segment(&found, "cluster id")?
    } else {
        path_segment(&target.id, "cluster id")?
    };
    let env: KubeClusterEnvelope = api.get_json(
        &format!("/v2/kubernetes/clusters/{id}"),
        &format!("reading cluster {}", target.name),
    )?;
    let mut cluster = model::cluster_from_api(&env.kubernetes_cluster);
    if cluster.endpoint.is_some() {
        // DigitalOcean serves the CA only with the credentials; the token
        // that comes with it is dropped here (the host asks for it through
        // get-credentials).
        let creds = fetch_credentials(&api, id, &target.name)?;
        cluster.ca_certificate_pem = creds
            .certificate_authority_data
            .as_deref()
            .and_then(pem_from_base64);
    }
    Ok(cluster)
}

pub(crate) fn delete(target: ClusterRef) -> Result<DeleteStatus, Error> {
    let api = Api::from_settings();
    let id = path_segment(&target.id, "cluster id")?;
    let path = format!("/v2/kubernetes/clusters/{id}");
    api.delete(&path, &format!("deleting cluster {}", target.name))?;
    match api.get_json::<KubeClusterEnvelope>(&path, &format!("reading cluster {}", target.name)) {
        Err(Error::NotFound(_)) => Ok(DeleteStatus::Deleted),
        Ok(env)
            if env
                .kubernetes_cluster
                .status
                .as_ref()
                .and_then(|s| s.state.as_deref())
                == Some("deleted") =>
        {
            Ok(DeleteStatus::Deleted)
        }
        Ok(_) => Ok(DeleteStatus::InProgress),
        Err(e) => Err(e),
    }
}

pub(crate) fn credentials(target: ClusterRef) -> Result<ClusterCredentials, Error> {
    let api = Api::from_settings();
    let id = path_segment(&target.id, "cluster id")?;
    let creds = fetch_credentials(&api, id, &target.name)?;
    if let Some(token) = creds.token.filter(|t| !t.is_empty()) {
        return Ok(ClusterCredentials::BearerToken(BearerCredential {
            token,
            expires_at: creds
                .expires_at
                .as_deref()
                .and_then(provider_sdk::time::parse_rfc3339),
        }));
    }
    match (
        creds
            .client_certificate_data
            .as_deref()
            .and_then(pem_from_base64),
        creds.client_key_data.as_deref().and_then(pem_from_base64),
    ) {
        (Some(certificate_pem), Some(key_pem)) => {
            Ok(ClusterCredentials::ClientCertificate(ClientCertificate {
                certificate_pem,
                key_pem,
            }))
        }
        _ => Err(Error::Other(format!(
            "DigitalOcean returned no token and no client certificate for cluster {}; retry later",
            target.name
        ))),
    }
}

fn fetch_credentials(api: &Api, id: &str, name: &str) -> Result<KubeCredentials, Error> {
    // Never log this answer: it carries the cluster token.
    api.get_json(
        &format!("/v2/kubernetes/clusters/{id}/credentials"),
        &format!("reading the credentials of cluster {name}"),
    )
}

fn pem_from_base64(data: &str) -> Option<String> {
    codec::base64_decode(data).and_then(|b| String::from_utf8(b).ok())
}
