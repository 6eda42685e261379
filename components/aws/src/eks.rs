//! EKS (REST-JSON): clusters with managed node groups. The host authenticates
//! to the API server itself (`cluster-auth = aws-iam(<cluster name>)`).
//!
//! EKS accepts node groups only on an ACTIVE cluster, and a component keeps no
//! state, so the node pool specs are stored as cluster tags
//! (`bpr-pool-<name>`) and `get-cluster` creates the missing node groups once
//! the cluster is ACTIVE.

use provider_sdk::http::{Request, percent_encode};
use provider_sdk::types::{
    Cluster, ClusterAuth, ClusterRef, ClusterSpec, ClusterState, DeleteStatus, NodePoolSpec,
    RateLimit, ResourceRef,
};
use provider_sdk::{Error, json, settings};
use serde_json::{Value, json};

use crate::ec2::{self, Params, items, text};

/// Resource kind of a node group.
pub const KIND_NODEGROUP: &str = "node-group";
const POOL_TAG: &str = "bpr-pool-";

/// One EKS REST call. Returns the JSON body of a 2xx answer.
fn call(
    region: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    what: &str,
) -> Result<Value, Error> {
    ec2::check_region(region)?;
    let mut req = Request::new(method, format!("{}{path}", ec2::endpoint("eks", region)))
        .header("x-bpr-aws-scope", format!("eks/{region}"))
        .header("accept", "application/json")
        .max_response_bytes(4 * 1024 * 1024);
    if let Some(b) = body {
        req = req.json(b)?;
    }
    let resp = req.send()?;
    if resp.is_success() {
        if resp.body.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(Value::Null);
        }
        return json::parse(&resp.body, &format!("the EKS answer to {what}"));
    }
    let message = provider_sdk::errors::body_message(&resp.body);
    let code = resp
        .header("x-amzn-errortype")
        .map(|t| t.split(':').next().unwrap_or(t).trim().to_string())
        .or_else(|| {
            serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| {
                    v.get("__type")
                        .and_then(|t| t.as_str())
                        .map(|s| s.rsplit('#').next().unwrap_or(s).to_string())
                })
        });
    let what = format!("EKS {what} in {region}");
    Err(match code.as_deref() {
        Some("ResourceInUseException") => {
            Error::Other(format!("{what}: ResourceInUseException: {message}"))
        }
        Some("ResourceLimitExceededException") => {
            Error::QuotaExceeded(format!("{what}: {message}"))
        }
        Some("ThrottlingException") | Some("TooManyRequestsException") => {
            Error::RateLimited(RateLimit {
                retry_after_ms: provider_sdk::errors::retry_after_ms(
                    &resp.headers,
                    provider_sdk::time::now_unix(),
                ),
                message: format!("{what}: {message}"),
            })
        }
        Some(code) => ec2::map_code(code, &message, &what),
        None => provider_sdk::errors::from_status(resp.status, &resp.headers, &message, &what),
    })
}

fn in_use(e: &Error) -> bool {
    matches!(e, Error::Other(m) if m.contains("ResourceInUseException"))
}

fn check_cluster_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "cluster or node pool name `{name}` must start with a letter or digit and use [A-Za-z0-9_-]"
        )))
    }
}

/// Subnets for the cluster: the `eks_subnet_ids` setting, else the default
/// subnets of the region's default VPC.
fn subnets(region: &str) -> Result<Vec<String>, Error> {
    let configured = settings::list("eks_subnet_ids");
    if !configured.is_empty() {
        return Ok(configured);
    }
    let mut p = Params::default();
    p.filter(1, "default-for-az", &["true"]);
    let xml = ec2::call(region, "DescribeSubnets", &p.0)?;
    let doc = ec2::parse(&xml, "DescribeSubnets")?;
    let ids: Vec<String> = items(doc.root_element(), "subnetSet")
        .into_iter()
        .filter_map(|s| text(s, "subnetId"))
        .collect();
    if ids.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "no default subnets in {region}; set `eks_subnet_ids` (comma list) in the aws provider settings"
        )));
    }
    Ok(ids)
}

fn required_setting(key: &str, what: &str) -> Result<String, Error> {
    settings::get(key).ok_or_else(|| {
        Error::InvalidRequest(format!(
            "setting `{key}` is not set: give the ARN of the IAM role for {what} in [providers.aws.settings]"
        ))
    })
}

/// Encode a pool for its tag: `type:count:min:max:spot:disk` (AWS tag values allow `:` but not `,`).
fn encode_pool(p: &NodePoolSpec) -> String {
    let opt = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_default();
    format!(
        "{}:{}:{}:{}:{}:{}",
        p.instance_type,
        p.count,
        opt(p.min_count),
        opt(p.max_count),
        p.spot,
        opt(p.disk_gib)
    )
}

fn decode_pool(name: &str, v: &str) -> Option<NodePoolSpec> {
    let f: Vec<&str> = v.split(':').collect();
    if f.len() != 6 {
        return None;
    }
    let opt = |s: &str| if s.is_empty() { None } else { s.parse().ok() };
    Some(NodePoolSpec {
        name: name.to_string(),
        instance_type: f[0].to_string(),
        count: f[1].parse().ok()?,
        min_count: opt(f[2]),
        max_count: opt(f[3]),
        spot: f[4] == "true",
        disk_gib: opt(f[5]),
    })
}

/// `kubernetes.create-cluster`.
pub fn create(spec: &ClusterSpec) -> Result<Cluster, Error> {
    check_cluster_name(&spec.name)?;
    if spec.node_pools.is_empty() {
        return Err(Error::InvalidRequest(
            "a cluster needs at least one node pool".into(),
        ));
    }
    for p in &spec.node_pools {
        check_cluster_name(&p.name)?;
    }
    let role = required_setting("eks_role_arn", "the EKS cluster")?;
    required_setting("eks_node_role_arn", "the EKS nodes")?;
    let subnet_ids = subnets(&spec.region)?;
    let mut tags = serde_json::Map::new();
    tags.insert("bpr-deployment".into(), json!(spec.deployment_id));
    for (k, v) in &spec.labels {
        tags.insert(k.clone(), json!(v));
    }
    for p in &spec.node_pools {
        tags.insert(format!("{POOL_TAG}{}", p.name), json!(encode_pool(p)));
    }
    let mut body = json!({
        "name": spec.name,
        "roleArn": role,
        "resourcesVpcConfig": { "subnetIds": subnet_ids },
        "clientRequestToken": spec.idempotency_key,
        "tags": tags,
    });
    if let Some(v) = &spec.kubernetes_version {
        body["version"] = json!(v);
    }
    match call(
        &spec.region,
        "POST",
        "/clusters",
        Some(&body),
        "CreateCluster",
    ) {
        Ok(_) => {}
        // A retried create: the cluster is there already.
        Err(e) if in_use(&e) => {}
        Err(e) => return Err(e),
    }
    get(&ClusterRef {
        id: spec.name.clone(),
        name: spec.name.clone(),
        region: spec.region.clone(),
        resources: vec![],
    })
}

/// `kubernetes.get-cluster`; creates the node groups still missing once the
/// cluster is ACTIVE.
pub fn get(target: &ClusterRef) -> Result<Cluster, Error> {
    let name = cluster_name(target);
    check_cluster_name(name)?;
    let path = format!("/clusters/{}", percent_encode(name));
    let v = call(&target.region, "GET", &path, None, "DescribeCluster")?;
    let c = v.get("cluster").cloned().unwrap_or(Value::Null);
    let status = c.get("status").and_then(Value::as_str).unwrap_or("");
    let tags: Vec<(String, String)> = c
        .get("tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let pools: Vec<NodePoolSpec> = tags
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(POOL_TAG).and_then(|n| decode_pool(n, v)))
        .collect();

    let mut state = match status {
        "CREATING" | "PENDING" => ClusterState::Provisioning,
        "ACTIVE" => ClusterState::Running,
        "UPDATING" => ClusterState::Updating,
        "DELETING" => ClusterState::Deleting,
        "FAILED" => ClusterState::Failed,
        _ => ClusterState::Unknown,
    };
    let mut resources = Vec::new();
    let mut detail = None;
    if status == "ACTIVE" {
        let existing = list_nodegroups(&target.region, name)?;
        for pool in &pools {
            if !existing.contains(&pool.name) {
                create_nodegroup(&target.region, name, pool, &c)?;
            }
            let ng = describe_nodegroup(&target.region, name, &pool.name)?;
            let ng_status = ng
                .get("nodegroup")
                .and_then(|n| n.get("status"))
                .and_then(Value::as_str)
                .unwrap_or("");
            match ng_status {
                "ACTIVE" => {}
                "CREATE_FAILED" | "DEGRADED" => {
                    state = ClusterState::Failed;
                    detail = Some(format!("node group {} is {ng_status}", pool.name));
                }
                _ => {
                    if state == ClusterState::Running {
                        state = ClusterState::Provisioning;
                    }
                }
            }
            resources.push(ResourceRef {
                kind: KIND_NODEGROUP.into(),
                id: pool.name.clone(),
            });
        }
    }
    let labels = tags
        .into_iter()
        .filter(|(k, _)| !k.starts_with(POOL_TAG) && !k.starts_with("aws:"))
        .collect();
    let ca = c
        .get("certificateAuthority")
        .and_then(|a| a.get("data"))
        .and_then(Value::as_str)
        .and_then(decode_ca);
    Ok(Cluster {
        id: c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(name)
            .to_string(),
        name: name.to_string(),
        region: target.region.clone(),
        state,
        endpoint: c
            .get("endpoint")
            .and_then(Value::as_str)
            .map(str::to_string),
        ca_certificate_pem: ca,
        auth: ClusterAuth::AwsIam(name.to_string()),
        kubernetes_version: c.get("version").and_then(Value::as_str).map(str::to_string),
        labels,
        resources,
        detail,
    })
}

/// `kubernetes.delete-cluster`: node groups first, then the cluster.
pub fn delete(target: &ClusterRef) -> Result<DeleteStatus, Error> {
    let name = cluster_name(target);
    check_cluster_name(name)?;
    let groups = match list_nodegroups(&target.region, name) {
        Ok(g) => g,
        Err(Error::NotFound(_)) => return Ok(DeleteStatus::Deleted),
        Err(e) => return Err(e),
    };
    if !groups.is_empty() {
        for g in &groups {
            let path = format!(
                "/clusters/{}/node-groups/{}",
                percent_encode(name),
                percent_encode(g)
            );
            match call(&target.region, "DELETE", &path, None, "DeleteNodegroup") {
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) if in_use(&e) => {}
                Err(e) => return Err(e),
            }
        }
        // Groups being deleted block the cluster deletion until they are gone.
        if !list_nodegroups(&target.region, name)
            .unwrap_or_default()
            .is_empty()
        {
            return Ok(DeleteStatus::InProgress);
        }
    }
    let path = format!("/clusters/{}", percent_encode(name));
    match call(&target.region, "DELETE", &path, None, "DeleteCluster") {
        Ok(_) => {}
        Err(Error::NotFound(_)) => return Ok(DeleteStatus::Deleted),
        Err(e) if in_use(&e) => return Ok(DeleteStatus::InProgress),
        Err(e) => return Err(e),
    }
    match call(&target.region, "GET", &path, None, "DescribeCluster") {
        Err(Error::NotFound(_)) => Ok(DeleteStatus::Deleted),
        Ok(_) => Ok(DeleteStatus::InProgress),
        Err(e) => Err(e),
    }
}

fn cluster_name(target: &ClusterRef) -> &str {
    if target.name.is_empty() {
        &target.id
    } else {
        &target.name
    }
}

fn list_nodegroups(region: &str, cluster: &str) -> Result<Vec<String>, Error> {
    provider_sdk::paginate::collect(50, |cursor| {
        let mut path = format!(
            "/clusters/{}/node-groups?maxResults=100",
            percent_encode(cluster)
        );
        if let Some(c) = cursor {
            path.push_str(&format!("&nextToken={}", percent_encode(c)));
        }
        let v = call(region, "GET", &path, None, "ListNodegroups")?;
        let names = v
            .get("nodegroups")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let next = v
            .get("nextToken")
            .and_then(Value::as_str)
            .map(str::to_string);
        Ok((names, next))
    })
}

fn describe_nodegroup(region: &str, cluster: &str, ng: &str) -> Result<Value, Error> {
    let path = format!(
        "/clusters/{}/node-groups/{}",
        percent_encode(cluster),
        percent_encode(ng)
    );
    call(region, "GET", &path, None, "DescribeNodegroup")
}

fn create_nodegroup(
    region: &str,
    cluster: &str,
    pool: &NodePoolSpec,
    c: &Value,
) -> Result<(), Error> {
    let node_role = required_setting("eks_node_role_arn", "the EKS nodes")?;
    let subnets = c
        .get("resourcesVpcConfig")
        .and_then(|r| r.get("subnetIds"))
        .cloned()
        .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
        .map(Ok)
        .unwrap_or_else(|| subnets(region).map(|s| json!(s)))?;
    let min = pool.min_count.unwrap_or(pool.count).min(pool.count);
    let max = pool.max_count.unwrap_or(pool.count).max(pool.count).max(1);
    let mut body = json!({
        "nodegroupName": pool.name,
        "scalingConfig": { "minSize": min, "maxSize": max, "desiredSize": pool.count },
        "subnets": subnets,
        "instanceTypes": [pool.instance_type],
        "nodeRole": node_role,
        "capacityType": if pool.spot { "SPOT" } else { "ON_DEMAND" },
        "clientRequestToken": format!("bpr-{cluster}-{}", pool.name),
        "tags": c.get("tags").cloned().unwrap_or(json!({})),
    });
    if let Some(d) = pool.disk_gib {
        body["diskSize"] = json!(d);
    }
    let path = format!("/clusters/{}/node-groups", percent_encode(cluster));
    match call(region, "POST", &path, Some(&body), "CreateNodegroup") {
        Ok(_) => Ok(()),
        Err(e) if in_use(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// EKS gives the CA as base64 of the PEM; base64 of DER (as some stand-ins
/// answer) is wrapped into PEM armour instead.
fn decode_ca(b64: &str) -> Option<String> {
    use base64::Engine as _;
    let b64 = b64.trim();
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    match String::from_utf8(bytes) {
        Ok(pem) if pem.trim_start().starts_with("-----BEGIN") => Some(pem),
        _ => {
            let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
            for chunk in b64.as_bytes().chunks(64) {
                pem.push_str(&String::from_utf8_lossy(chunk));
                pem.push('\n');
            }
            pem.push_str("-----END CERTIFICATE-----\n");
            Some(pem)
        }
    }
}
