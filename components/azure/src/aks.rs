//! AKS managed clusters: create (a system node pool first, as the host
//! sized it; further pools are user pools, spot allowed there), get (state;
//! endpoint and CA from `listClusterUserCredential` once running), delete.
//!
//! Authentication is `provider-oauth` with the AKS server application's scope:
//! the host mints an Entra ID token with its own `azure-client-credentials`
//! identity. Clusters are created with managed Entra ID integration so that
//! such a token is accepted; the identity needs a cluster-admin role there
//! (Azure RBAC, or the `aks_admin_group_object_ids` setting).

use serde_json::{Value, json};

use provider_sdk::types::{
    Cluster, ClusterAuth, ClusterRef, ClusterSpec, ClusterState, DeleteStatus, NodePoolSpec,
    ResourceRef,
};
use provider_sdk::{Error, settings as s};

use crate::arm::{self, AKS_API, Arm, Outcome, RESOURCES_API};
use crate::errors;
use crate::instances::delete_group;
use crate::kubeconfig;
use crate::names::{self, OWNER, Place, ResourceId, TAG_CLUSTER, TAG_DEPLOYMENT, TAG_OWNER};
use crate::settings::{self, DEFAULT_OPERATION_WAIT_MS};

/// Entra ID scope of AKS API servers (the fixed AKS server application).
pub const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
/// ARM type of a managed cluster.
const MANAGED_CLUSTER: &str = "Microsoft.ContainerService/managedClusters";

/// `kubernetes.create-cluster`.
pub fn create(spec: &ClusterSpec) -> Result<Cluster, Error> {
    check_cluster_name(&spec.name)?;
    names::check_region(&spec.region)?;
    let pools = pool_profiles(&spec.node_pools)?;
    let base = names::base_name(&spec.deployment_id, &spec.idempotency_key);
    let place = Place::new(
        settings::subscription_id()?,
        settings::resource_group(),
        base,
    );
    let arm = Arm::from_settings();
    let path = place.resource_id(MANAGED_CLUSTER, &spec.name);
    let what = format!("creating AKS cluster {} in {}", spec.name, spec.region);

    // A retried create returns the cluster the first attempt made.
    if let Some(doc) = arm.get(&path, AKS_API, &what)? {
        if names::tag(doc.get("tags"), TAG_DEPLOYMENT) == Some(spec.deployment_id.as_str()) {
            return Ok(cluster_from(&doc, &place, &spec.name));
        }
        return Err(Error::InvalidRequest(format!(
            "an AKS cluster named {} already exists in resource group {} and was not created by this deployment; choose another name",
            spec.name, place.group
        )));
    }

    names::check_operator_group(&arm, &place)?;
    let tags = names::tags(
        &spec.labels,
        &spec.deployment_id,
        (TAG_CLUSTER, &spec.name),
        false,
    )?;
    if place.owned_group {
        let mut group_tags = tags.clone();
        group_tags.insert(TAG_OWNER.into(), Value::String(OWNER.into()));
        arm.put(
            &place.group_id(),
            RESOURCES_API,
            &json!({ "location": spec.region, "tags": group_tags }),
            &format!("creating resource group {}", place.group),
        )?;
    }
    let mut properties = json!({
        "dnsPrefix": spec.name,
        "enableRBAC": true,
        "aadProfile": aad_profile(),
        "agentPoolProfiles": pools,
    });
    if let Some(v) = spec
        .kubernetes_version
        .clone()
        .or_else(|| s::get("kubernetes_version"))
    {
        properties["kubernetesVersion"] = json!(v);
    }
    let body = json!({
        "location": spec.region,
        "tags": tags,
        "identity": { "type": "SystemAssigned" },
        "properties": properties,
    });
    match arm.put(&path, AKS_API, &body, &what) {
        // Accepted: the host polls get-cluster until it runs.
        Ok((doc, _)) if doc.is_object() => Ok(cluster_from(&doc, &place, &spec.name)),
        Ok(_) => Ok(Cluster {
            state: ClusterState::Provisioning,
            ..cluster_from(&json!({ "location": spec.region }), &place, &spec.name)
        }),
        Err(e) if errors::is_retryable(&e) => Err(e),
        Err(e) => {
            if place.owned_group {
                let deadline = arm::deadline("operation_wait_ms", DEFAULT_OPERATION_WAIT_MS);
                let group = json!({});
                let _ = delete_group(&arm, &place, &group, deadline);
            }
            Err(e)
        }
    }
}

/// Managed Entra ID integration: with admin groups when the operator names
/// them, else Azure RBAC for Kubernetes authorization.
fn aad_profile() -> Value {
    let groups = s::list("aks_admin_group_object_ids");
    if groups.is_empty() {
        json!({ "managed": true, "enableAzureRBAC": true })
    } else {
        json!({ "managed": true, "enableAzureRBAC": false, "adminGroupObjectIDs": groups })
    }
}

/// `agentPoolProfiles`: the first pool is the system pool (AKS needs one and
/// it cannot be spot); the others are user pools.
pub fn pool_profiles(pools: &[NodePoolSpec]) -> Result<Vec<Value>, Error> {
    if pools.is_empty() {
        return Err(Error::InvalidRequest(
            "an AKS cluster needs at least one node pool".into(),
        ));
    }
    if pools[0].spot {
        return Err(Error::InvalidRequest(format!(
            "node pool {}: the first pool is AKS's system pool, which cannot be spot; put spot nodes in a second pool",
            pools[0].name
        )));
    }
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for (i, p) in pools.iter().enumerate() {
        if p.count == 0 || p.count > 1000 {
            return Err(Error::InvalidRequest(format!(
                "node pool {}: count {} is outside 1-1000",
                p.name, p.count
            )));
        }
        if !p
            .instance_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || p.instance_type.is_empty()
        {
            return Err(Error::InvalidRequest(format!(
                "node pool {}: `{}` is not an Azure VM size",
                p.name, p.instance_type
            )));
        }
        let mut name = pool_name(&p.name);
        if names.contains(&name) {
            name = format!("{}{i}", &name[..name.len().min(11)]);
        }
        names.push(name.clone());
        let mut profile = json!({
            "name": name,
            "count": p.count,
            "vmSize": p.instance_type,
            "osType": "Linux",
            "type": "VirtualMachineScaleSets",
            "mode": if i == 0 { "System" } else { "User" },
        });
        if let (Some(min), Some(max)) = (p.min_count, p.max_count) {
            profile["enableAutoScaling"] = json!(true);
            profile["minCount"] = json!(min);
            profile["maxCount"] = json!(max);
        }
        if let Some(gib) = p.disk_gib {
            profile["osDiskSizeGB"] = json!(gib);
        }
        if p.spot {
            profile["scaleSetPriority"] = json!("Spot");
            profile["scaleSetEvictionPolicy"] = json!("Delete");
            profile["spotMaxPrice"] = json!(-1);
        }
        out.push(profile);
    }
    Ok(out)
}

/// An agent pool name AKS accepts (`^[a-z][a-z0-9]{0,11}$`) from a WIT pool name.
fn pool_name(name: &str) -> String {
    let mut n: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if !n.starts_with(|c: char| c.is_ascii_lowercase()) {
        n.insert(0, 'p');
    }
    n.truncate(12);
    n
}

/// A cluster name (WIT: lower-case `[a-z0-9-]`, at most 40 characters).
fn check_cluster_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "cluster name `{name}` must be 1-40 characters of [a-z0-9-], not starting or ending with `-`"
        )))
    }
}

/// The WIT cluster of a managedCluster document (no endpoint yet).
fn cluster_from(doc: &Value, place: &Place, name: &str) -> Cluster {
    let props = doc.get("properties");
    let provisioning = arm::provisioning_state(doc);
    let power = doc
        .pointer("/properties/powerState/code")
        .and_then(Value::as_str);
    let state = match provisioning {
        None | Some("Creating") | Some("Accepted") => ClusterState::Provisioning,
        Some("Succeeded") if power == Some("Stopped") => ClusterState::Unknown,
        Some("Succeeded") => ClusterState::Running,
        Some("Deleting") => ClusterState::Deleting,
        Some("Failed" | "Canceled") => ClusterState::Failed,
        Some(_) => ClusterState::Updating,
    };
    let mut resources = Vec::new();
    if place.owned_group {
        resources.push(ResourceRef {
            kind: "resource-group".into(),
            id: place.group_id(),
        });
    }
    if let Some(nrg) = props
        .and_then(|p| p.get("nodeResourceGroup"))
        .and_then(Value::as_str)
    {
        resources.push(ResourceRef {
            kind: "node-resource-group".into(),
            id: format!("/subscriptions/{}/resourceGroups/{nrg}", place.subscription),
        });
    }
    Cluster {
        id: place.resource_id(MANAGED_CLUSTER, name),
        name: name.to_string(),
        region: doc
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        state,
        endpoint: None,
        ca_certificate_pem: None,
        auth: ClusterAuth::ProviderOauth(AKS_SCOPE.into()),
        kubernetes_version: props
            .and_then(|p| {
                p.get("currentKubernetesVersion")
                    .or_else(|| p.get("kubernetesVersion"))
            })
            .and_then(Value::as_str)
            .map(str::to_string),
        labels: names::labels_from_tags(doc.get("tags")),
        resources,
        detail: props
            .and_then(|p| p.get("fqdn"))
            .and_then(Value::as_str)
            .map(|f| format!("fqdn {f}")),
    }
}

/// The cluster a ref names: a managedCluster id, or `<resource group>/<name>`.
fn parse_ref(target: &ClusterRef) -> Result<ResourceId, Error> {
    if target.id.starts_with('/') {
        return ResourceId::parse(&target.id, MANAGED_CLUSTER, "AKS cluster");
    }
    match target.id.split_once('/') {
        Some((group, name)) if names::is_safe_segment(group) && names::is_safe_segment(name) => {
            Ok(ResourceId {
                subscription: settings::subscription_id()?,
                group: group.to_string(),
                kind: MANAGED_CLUSTER.to_string(),
                name: name.to_string(),
            })
        }
        _ => Err(Error::InvalidRequest(format!(
            "`{}` is neither an AKS cluster id (/subscriptions/.../managedClusters/<name>) nor <resource group>/<name>",
            target.id
        ))),
    }
}

/// The place of a cluster: owned when its group was created for it.
fn place_of(id: &ResourceId, group: &Value) -> Place {
    let tags = group.get("tags");
    Place {
        subscription: id.subscription.clone(),
        group: id.group.clone(),
        base: id.name.clone(),
        owned_group: names::tag(tags, TAG_OWNER) == Some(OWNER)
            && names::tag(tags, TAG_CLUSTER) == Some(id.name.as_str()),
    }
}

#[derive(serde::Deserialize)]
struct Credentials {
    #[serde(default)]
    kubeconfigs: Vec<Kubeconfig>,
}

#[derive(serde::Deserialize)]
struct Kubeconfig {
    #[serde(default)]
    value: String,
}

/// `kubernetes.get-cluster`.
pub fn get(target: &ClusterRef) -> Result<Cluster, Error> {
    let id = parse_ref(target)?;
    let arm = Arm::from_settings();
    let path = id.place().resource_id(MANAGED_CLUSTER, &id.name);
    let what = format!("reading AKS cluster {}", id.name);
    let doc = arm.get(&path, AKS_API, &what)?.ok_or_else(|| {
        Error::NotFound(format!(
            "AKS cluster {} not found in resource group {}",
            id.name, id.group
        ))
    })?;
    let group = arm
        .get(&id.place().group_id(), RESOURCES_API, &what)?
        .unwrap_or_default();
    let mut cluster = cluster_from(&doc, &place_of(&id, &group), &id.name);
    if cluster.state == ClusterState::Running {
        // The kubeconfig's user entry is never read (it may hold a token or a
        // kubelogin exec entry); only the server and its CA are kept.
        let creds: Credentials = arm.post(
            &format!("{path}/listClusterUserCredential"),
            AKS_API,
            &format!("reading the API server of AKS cluster {}", id.name),
        )?;
        let access = creds
            .kubeconfigs
            .iter()
            .filter_map(|k| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(k.value.trim())
                    .ok()
            })
            .filter_map(|b| String::from_utf8(b).ok())
            .find_map(|yaml| kubeconfig::cluster_access(&yaml));
        match access {
            Some(a) => {
                cluster.endpoint = Some(a.server);
                cluster.ca_certificate_pem = a.ca_pem;
            }
            None => {
                cluster.endpoint = doc
                    .pointer("/properties/fqdn")
                    .and_then(Value::as_str)
                    .map(|f| format!("https://{f}:443"));
            }
        }
    }
    Ok(cluster)
}

/// `kubernetes.delete-cluster`: its own resource group when this component
/// created it (node pools and the `MC_*` node group go with the cluster), else
/// the cluster. `in-progress` until it is gone.
pub fn delete(target: &ClusterRef) -> Result<DeleteStatus, Error> {
    let id = parse_ref(target)?;
    let arm = Arm::from_settings();
    let deadline = arm::deadline("operation_wait_ms", DEFAULT_OPERATION_WAIT_MS);
    let what = format!("deleting AKS cluster {}", id.name);
    let Some(group) = arm.get(&id.place().group_id(), RESOURCES_API, &what)? else {
        return Ok(DeleteStatus::Deleted);
    };
    let place = place_of(&id, &group);
    if place.owned_group {
        return delete_group(&arm, &place, &group, deadline);
    }
    let path = place.resource_id(MANAGED_CLUSTER, &id.name);
    let Some(doc) = arm.get(&path, AKS_API, &what)? else {
        return Ok(DeleteStatus::Deleted);
    };
    if arm::provisioning_state(&doc) == Some("Deleting") {
        return Ok(DeleteStatus::InProgress);
    }
    let Some(op) = arm.delete(&path, AKS_API, &what)? else {
        return Ok(DeleteStatus::Deleted);
    };
    match arm.wait(&op, deadline, &what)? {
        Outcome::Succeeded => Ok(if arm.get(&path, AKS_API, &what)?.is_none() {
            DeleteStatus::Deleted
        } else {
            DeleteStatus::InProgress
        }),
        Outcome::Running => Ok(DeleteStatus::InProgress),
        Outcome::Failed(err) => Err(errors::from_operation(&err, &what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, spot: bool) -> NodePoolSpec {
        NodePoolSpec {
            name: name.into(),
            instance_type: "Standard_D2s_v3".into(),
            count: 2,
            min_count: Some(1),
            max_count: Some(3),
            spot,
            disk_gib: Some(64),
        }
    }

    #[test]
    fn the_first_pool_is_the_system_pool_and_spot_goes_to_user_pools() {
        let p = pool_profiles(&[pool("pool-1", false), pool("spot-pool", true)]).unwrap();
        assert_eq!(p[0]["mode"], "System");
        assert_eq!(p[0]["name"], "pool1");
        assert_eq!(p[0]["vmSize"], "Standard_D2s_v3");
        assert_eq!(p[0]["count"], 2);
        assert_eq!(p[0]["enableAutoScaling"], true);
        assert_eq!(p[0]["osDiskSizeGB"], 64);
        assert!(p[0].get("scaleSetPriority").is_none());
        assert_eq!(p[1]["mode"], "User");
        assert_eq!(p[1]["name"], "spotpool");
        assert_eq!(p[1]["scaleSetPriority"], "Spot");
        assert_eq!(p[1]["scaleSetEvictionPolicy"], "Delete");
        assert_eq!(p[1]["spotMaxPrice"], -1);
        assert!(pool_profiles(&[pool("a", true)]).is_err());
        assert!(pool_profiles(&[]).is_err());
    }

    #[test]
    fn pool_names_follow_the_aks_pattern() {
        assert_eq!(pool_name("1-pool"), "p1pool");
        assert_eq!(pool_name("a-very-long-pool-name"), "averylongpoo");
        let p = pool_profiles(&[pool("pool-1", false), pool("pool_1", false)]).unwrap();
        assert_ne!(p[0]["name"], p[1]["name"]);
    }

    #[test]
    fn cluster_states_follow_provisioning_and_power_state() {
        let place = Place::new("s".into(), None, "bpr-d-1".into());
        let doc = |p: &str| json!({"location": "eastus", "properties": {"provisioningState": p, "powerState": {"code": "Running"}}});
        assert_eq!(
            cluster_from(&doc("Creating"), &place, "k").state,
            ClusterState::Provisioning
        );
        assert_eq!(
            cluster_from(&doc("Succeeded"), &place, "k").state,
            ClusterState::Running
        );
        assert_eq!(
            cluster_from(&doc("Upgrading"), &place, "k").state,
            ClusterState::Updating
        );
        assert_eq!(
            cluster_from(&doc("Deleting"), &place, "k").state,
            ClusterState::Deleting
        );
        assert_eq!(
            cluster_from(&doc("Failed"), &place, "k").state,
            ClusterState::Failed
        );
        let c = cluster_from(&doc("Succeeded"), &place, "k");
        assert!(matches!(c.auth, ClusterAuth::ProviderOauth(ref s) if s == AKS_SCOPE));
        assert_eq!(
            c.id,
            "/subscriptions/s/resourceGroups/bpr-d-1/providers/Microsoft.ContainerService/managedClusters/k"
        );
    }
}
