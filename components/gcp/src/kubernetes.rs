//! GKE (container v1): clusters with node pools (never the deprecated
//! `initialNodeCount` + `nodeConfig` form), read (endpoint and CA), delete.
//!
//! The host authenticates to the API server itself, with an OAuth token for the
//! `cloud-platform` scope minted from the provider's service account
//! (`cluster-auth = provider-oauth(scope)`), as `gke-gcloud-auth-plugin` does.
//!
//! Location: a zone (`us-central1-a`) makes a zonal cluster; a region makes a
//! regional one, whose node pools count nodes *per zone*. So that `count` stays
//! the total the spec asked for, a regional pool is placed in `min(count, zones)`
//! zones of the region with `ceil(count / zones)` nodes each (the total is rounded
//! up when `count` does not divide), and autoscaling uses GKE's total bounds.
//! The cluster, its nodes and their VMs carry the deployment label.

use provider_sdk::types::{
    Cluster, ClusterAuth, ClusterRef, ClusterSpec, ClusterState, DeleteStatus, ResourceRef,
};
use provider_sdk::{Error, log, settings};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

use crate::api::{self, Api, Outcome, last_segment};
use crate::model::Region;
use crate::names::{self, LABEL_IDEMPOTENCY};

/// The OAuth scope the host mints GKE API server tokens for.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Resource kind of a node pool in `resources`.
pub const KIND_NODE_POOL: &str = "node-pool";

/// A GKE cluster (the fields this component reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GkeCluster {
    /// Name.
    pub name: String,
    /// Location (zone or region).
    #[serde(default)]
    pub location: Option<String>,
    /// `PROVISIONING`, `RUNNING`, `RECONCILING`, `STOPPING`, `ERROR`, `DEGRADED`.
    #[serde(default)]
    pub status: String,
    /// Why, when Google says.
    #[serde(default)]
    pub status_message: Option<String>,
    /// API server address (an IP, no scheme), once running.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// CA and (deprecated) basic auth.
    #[serde(default)]
    pub master_auth: Option<MasterAuth>,
    /// Control plane version.
    #[serde(default)]
    pub current_master_version: Option<String>,
    /// Labels as stored.
    #[serde(default)]
    pub resource_labels: BTreeMap<String, String>,
    /// Node pools.
    #[serde(default)]
    pub node_pools: Vec<GkeNodePool>,
}

/// `masterAuth`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterAuth {
    /// Base64 of the PEM CA bundle.
    #[serde(default)]
    pub cluster_ca_certificate: Option<String>,
}

/// A node pool.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GkeNodePool {
    /// Name.
    pub name: String,
}

/// WIT state of a GKE status.
pub fn state(status: &str) -> ClusterState {
    match status {
        "PROVISIONING" => ClusterState::Provisioning,
        "RUNNING" | "DEGRADED" => ClusterState::Running,
        "RECONCILING" => ClusterState::Updating,
        "STOPPING" => ClusterState::Deleting,
        "ERROR" => ClusterState::Failed,
        _ => ClusterState::Unknown,
    }
}

/// The WIT cluster of `c` in `location`. `scheme` is the API server URL scheme
/// (`https`; a stand-in may say `http`, which the host accepts on loopback only).
pub fn to_cluster(c: &GkeCluster, location: &str, scheme: &str) -> Cluster {
    let ca = c
        .master_auth
        .as_ref()
        .and_then(|m| m.cluster_ca_certificate.as_deref())
        .and_then(pem_from_base64);
    let endpoint = c
        .endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
        .map(|e| format!("{scheme}://{e}"));
    let detail = match (&c.status_message, c.status.as_str()) {
        (Some(m), s) if !m.is_empty() => Some(format!("{s}: {m}")),
        (_, "DEGRADED") => Some("DEGRADED: serving, but needs attention".into()),
        _ => None,
    };
    Cluster {
        id: c.name.clone(),
        name: c.name.clone(),
        region: c.location.clone().unwrap_or_else(|| location.to_string()),
        state: state(&c.status),
        endpoint,
        ca_certificate_pem: ca,
        auth: ClusterAuth::ProviderOauth(CLOUD_PLATFORM.into()),
        kubernetes_version: c.current_master_version.clone(),
        labels: names::decode_labels(&c.resource_labels, None),
        resources: c
            .node_pools
            .iter()
            .map(|p| ResourceRef {
                kind: KIND_NODE_POOL.into(),
                id: p.name.clone(),
            })
            .collect(),
        detail,
    }
}

fn pem_from_base64(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let pem = String::from_utf8(bytes).ok()?;
    pem.contains("-----BEGIN CERTIFICATE-----").then_some(pem)
}

fn check_name(name: &str, what: &str) -> Result<(), Error> {
    if names::valid_name(name, 40) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "{what} `{name}` must be 1-40 characters of [a-z0-9-], start with a letter and end with a letter or digit"
        )))
    }
}

/// True when `location` names a zone (`us-central1-a`) rather than a region.
pub fn is_zone(location: &str) -> bool {
    location.matches('-').count() >= 2
}

/// The `projects.locations.clusters.create` body. `zones` are the zones of a
/// regional location (sorted), empty for a zonal one.
pub fn create_body(spec: &ClusterSpec, zones: &[String], version: &str) -> Result<Value, Error> {
    let labels = names::encode_labels(&spec.labels, &spec.deployment_id, &spec.idempotency_key)?;
    let mut pools = Vec::new();
    for p in &spec.node_pools {
        check_name(&p.name, "node pool name")?;
        if p.count == 0 {
            return Err(Error::InvalidRequest(format!(
                "node pool {} asks for 0 nodes; GKE needs at least 1",
                p.name
            )));
        }
        crate::machine::MachineSpec::parse(&p.instance_type).and_then(|m| {
            if m.attached.is_some() {
                Err(Error::InvalidRequest(format!(
                    "node pool {}: GKE node pools take a plain machine type, not `{}`",
                    p.name, p.instance_type
                )))
            } else {
                Ok(())
            }
        })?;
        let mut config = json!({
            "machineType": p.instance_type,
            "resourceLabels": labels,
            "oauthScopes": [CLOUD_PLATFORM],
        });
        if let Some(gib) = p.disk_gib {
            config["diskSizeGb"] = json!(gib);
        }
        if p.spot {
            config["spot"] = json!(true);
        }
        let mut pool = json!({
            "name": p.name,
            "config": config,
            "management": { "autoRepair": true, "autoUpgrade": true },
        });
        let per_zone = if zones.is_empty() {
            p.count
        } else {
            let k = (p.count as usize).min(zones.len()).max(1);
            pool["locations"] = json!(zones[..k]);
            p.count.div_ceil(k as u32)
        };
        pool["initialNodeCount"] = json!(per_zone);
        if let (Some(min), Some(max)) = (p.min_count, p.max_count) {
            if min > max {
                return Err(Error::InvalidRequest(format!(
                    "node pool {}: min-count {min} is above max-count {max}",
                    p.name
                )));
            }
            pool["autoscaling"] = json!({
                "enabled": true,
                "totalMinNodeCount": min,
                "totalMaxNodeCount": max,
                "locationPolicy": "BALANCED",
            });
        }
        pools.push(pool);
    }
    Ok(json!({
        "cluster": {
            "name": spec.name,
            "description": format!("bpr deployment {}", spec.deployment_id),
            "resourceLabels": labels,
            "initialClusterVersion": version,
            "nodePools": pools,
        }
    }))
}

/// The sorted zones of region `region` (Compute Engine `regions.get`).
fn zones_of(api: &Api, region: &str) -> Result<Vec<String>, Error> {
    let url = api.compute(&format!("regions/{region}"))?;
    let r: Region = api
        .get::<Region>(&url, &format!("reading the zones of {region}"))?
        .found()?
        .ok_or_else(|| {
            Error::RegionUnavailable(format!(
                "region `{region}` does not exist or is not enabled for this project"
            ))
        })?;
    let mut zones: Vec<String> = r
        .zones
        .iter()
        .map(|z| last_segment(z).to_string())
        .collect();
    zones.sort();
    if zones.is_empty() {
        return Err(Error::RegionUnavailable(format!(
            "region `{region}` has no zones"
        )));
    }
    Ok(zones)
}

fn scheme() -> String {
    match settings::get_or("cluster_endpoint_scheme", "https").as_str() {
        "http" => "http".into(),
        _ => "https".into(),
    }
}

fn read(api: &Api, location: &str, name: &str) -> Result<Option<GkeCluster>, Error> {
    let url = api.container(location, &format!("clusters/{name}"))?;
    api.get(&url, &format!("reading cluster {name} in {location}"))?
        .found()
}

/// `kubernetes.create-cluster`. A repeat (same name and idempotency key)
/// returns the cluster the first call started.
pub fn create(spec: &ClusterSpec) -> Result<Cluster, Error> {
    let api = Api::from_settings();
    check_name(&spec.name, "cluster name")?;
    api::check_segment(&spec.region, "location")?;
    if spec.node_pools.is_empty() {
        return Err(Error::InvalidRequest(
            "a cluster needs at least one node pool".into(),
        ));
    }
    let version = spec
        .kubernetes_version
        .clone()
        .or_else(|| settings::get("kubernetes_version"))
        .unwrap_or_else(|| "latest".into());
    let zones = if is_zone(&spec.region) {
        Vec::new()
    } else {
        zones_of(&api, &spec.region)?
    };
    let body = create_body(spec, &zones, &version)?;
    let what = format!("creating cluster {} in {}", spec.name, spec.region);
    let url = api.container(&spec.region, "clusters")?;
    match api.post::<Value>(&url, &body, &what)? {
        Outcome::Ok(_) => {}
        Outcome::Failed(f) if f.already_exists() => {
            let existing = read(&api, &spec.region, &spec.name)?.ok_or_else(|| {
                Error::Transient(format!("{what}: it exists but cannot be read yet; retry"))
            })?;
            if existing.resource_labels.get(LABEL_IDEMPOTENCY)
                != Some(&names::idempotency_label(&spec.idempotency_key))
            {
                return Err(Error::InvalidRequest(format!(
                    "{what}: the name is taken by a cluster this request did not create"
                )));
            }
            log::info(&format!("{what}: it exists from an earlier attempt"));
        }
        Outcome::Failed(f) => return Err(f.into_error()),
    }
    let scheme = scheme();
    Ok(match read(&api, &spec.region, &spec.name)? {
        Some(c) => to_cluster(&c, &spec.region, &scheme),
        None => Cluster {
            id: spec.name.clone(),
            name: spec.name.clone(),
            region: spec.region.clone(),
            state: ClusterState::Provisioning,
            endpoint: None,
            ca_certificate_pem: None,
            auth: ClusterAuth::ProviderOauth(CLOUD_PLATFORM.into()),
            kubernetes_version: None,
            labels: spec.labels.clone(),
            resources: vec![],
            detail: Some("create accepted".into()),
        },
    })
}

fn target_name(target: &ClusterRef) -> Result<&str, Error> {
    let name = if target.name.is_empty() {
        target.id.as_str()
    } else {
        target.name.as_str()
    };
    check_name(name, "cluster name")?;
    api::check_segment(&target.region, "location")?;
    Ok(name)
}

/// `kubernetes.get-cluster`.
pub fn get(target: &ClusterRef) -> Result<Cluster, Error> {
    let api = Api::from_settings();
    let name = target_name(target)?;
    let c = read(&api, &target.region, name)?.ok_or_else(|| {
        Error::NotFound(format!(
            "cluster {name} does not exist in {}",
            target.region
        ))
    })?;
    Ok(to_cluster(&c, &target.region, &scheme()))
}

/// `kubernetes.delete-cluster`: `in-progress` until GKE no longer knows it.
pub fn delete(target: &ClusterRef) -> Result<DeleteStatus, Error> {
    let api = Api::from_settings();
    let name = target_name(target)?;
    let Some(c) = read(&api, &target.region, name)? else {
        return Ok(DeleteStatus::Deleted);
    };
    if c.status != "STOPPING" {
        let url = api.container(&target.region, &format!("clusters/{name}"))?;
        match api.delete::<Value>(&url, &format!("deleting cluster {name}"))? {
            Outcome::Ok(_) => {}
            Outcome::Failed(f) if f.status == 404 => return Ok(DeleteStatus::Deleted),
            Outcome::Failed(f) => return Err(f.into_error()),
        }
    }
    Ok(DeleteStatus::InProgress)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_sdk::types::NodePoolSpec;

    fn spec(region: &str, count: u32) -> ClusterSpec {
        ClusterSpec {
            name: "bpr-k1".into(),
            deployment_id: "dep-k".into(),
            idempotency_key: "dep-k-c1".into(),
            region: region.into(),
            kubernetes_version: None,
            node_pools: vec![NodePoolSpec {
                name: "pool-1".into(),
                instance_type: "e2-standard-4".into(),
                count,
                min_count: Some(1),
                max_count: Some(5),
                spot: true,
                disk_gib: Some(50),
            }],
            labels: vec![("bpr-deployment".into(), "dep-k".into())],
        }
    }

    #[test]
    fn the_body_uses_node_pools_only_with_labels_spot_and_total_autoscaling() {
        let b = create_body(&spec("us-central1-a", 3), &[], "latest").unwrap();
        let c = &b["cluster"];
        assert!(c.get("initialNodeCount").is_none() && c.get("nodeConfig").is_none());
        assert_eq!(c["resourceLabels"]["bpr-deployment"], "dep-k");
        let p = &c["nodePools"][0];
        assert_eq!(p["initialNodeCount"], 3);
        assert!(p.get("locations").is_none());
        assert_eq!(p["config"]["machineType"], "e2-standard-4");
        assert_eq!(p["config"]["spot"], true);
        assert_eq!(p["config"]["diskSizeGb"], 50);
        assert_eq!(p["config"]["resourceLabels"]["bpr-deployment"], "dep-k");
        assert_eq!(p["autoscaling"]["totalMaxNodeCount"], 5);
    }

    #[test]
    fn a_regional_pool_keeps_the_total_node_count() {
        let zones: Vec<String> = [
            "us-central1-a",
            "us-central1-b",
            "us-central1-c",
            "us-central1-f",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let b = create_body(&spec("us-central1", 2), &zones, "1.31").unwrap();
        let p = &b["cluster"]["nodePools"][0];
        assert_eq!(p["locations"], json!(["us-central1-a", "us-central1-b"]));
        assert_eq!(p["initialNodeCount"], 1);
        let b = create_body(&spec("us-central1", 8), &zones, "1.31").unwrap();
        assert_eq!(b["cluster"]["nodePools"][0]["initialNodeCount"], 2);
        assert_eq!(b["cluster"]["initialClusterVersion"], "1.31");
    }

    #[test]
    fn a_running_cluster_has_an_https_endpoint_its_ca_and_provider_oauth() {
        use base64::Engine as _;
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let c: GkeCluster = serde_json::from_value(json!({
            "name": "bpr-k1", "status": "RUNNING", "endpoint": "34.118.1.10",
            "masterAuth": {"clusterCaCertificate": base64::engine::general_purpose::STANDARD.encode(pem)},
            "currentMasterVersion": "1.31.5-gke.1023000",
            "resourceLabels": {"bpr-deployment": "dep-k", "bpr-idem": "x"},
            "nodePools": [{"name": "pool-1"}]
        }))
        .unwrap();
        let w = to_cluster(&c, "us-central1", "https");
        assert_eq!(w.state, ClusterState::Running);
        assert_eq!(w.endpoint.as_deref(), Some("https://34.118.1.10"));
        assert_eq!(w.ca_certificate_pem.as_deref(), Some(pem));
        assert!(matches!(&w.auth, ClusterAuth::ProviderOauth(s) if s == CLOUD_PLATFORM));
        assert_eq!(
            w.labels,
            vec![("bpr-deployment".to_string(), "dep-k".to_string())]
        );
        assert_eq!(state("STOPPING"), ClusterState::Deleting);
        assert_eq!(state("ERROR"), ClusterState::Failed);
    }

    #[test]
    fn bad_names_counts_and_gpu_pools_are_invalid_requests() {
        let mut s = spec("us-central1-a", 1);
        s.name = "x".repeat(41);
        assert!(check_name(&s.name, "cluster name").is_err());
        assert!(create_body(&spec("us-central1-a", 0), &[], "latest").is_err());
        let mut s = spec("us-central1-a", 1);
        s.node_pools[0].instance_type = "n1-standard-4+1xnvidia-tesla-t4".into();
        assert!(create_body(&s, &[], "latest").is_err());
        let mut s = spec("us-central1-a", 1);
        s.node_pools[0].min_count = Some(9);
        assert!(create_body(&s, &[], "latest").is_err());
    }
}
