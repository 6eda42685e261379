//! What a managed cluster asks for ([`ClusterRequest`]): stored as the record's
//! request, checked before anything is written, and turned into the WIT
//! `cluster-spec` the provider gets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::super::request::RequestError;
use crate::runtime::bindings::wit::{ClusterSpec, NodePoolSpec};

/// Longest cluster name: the WIT `cluster-spec` contract (providers put it in
/// their own names, some of which are short).
pub const MAX_CLUSTER_NAME: usize = 40;
/// Most node pools one request may ask for.
pub const MAX_NODE_POOLS: usize = 10;
/// Most nodes one pool may start with.
pub const MAX_POOL_NODES: u32 = 1000;

fn bad(field: impl Into<String>, message: impl Into<String>) -> RequestError {
    RequestError {
        field: field.into(),
        message: message.into(),
    }
}

/// One node pool of a managed cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodePool {
    /// Pool name, `[a-z0-9-]`, at most 40 characters.
    pub name: String,
    /// The provider's machine type of the nodes (`s-2vcpu-4gb`, `m5.large`...).
    pub instance_type: String,
    /// Nodes to start with; at least 1.
    pub count: u32,
    /// Autoscaling lower bound (with `max_count`), when the provider supports it.
    #[serde(default)]
    pub min_count: Option<u32>,
    /// Autoscaling upper bound.
    #[serde(default)]
    pub max_count: Option<u32>,
    /// Spot nodes.
    #[serde(default)]
    pub spot: bool,
    /// Node disk in GiB; default: the provider's.
    #[serde(default)]
    pub disk_gib: Option<u32>,
}

/// A managed Kubernetes cluster to create and track (`bpr k8s create`). Once it
/// runs it is a deployment target under its name (`k8s:<name>`), and it lives
/// until it is deleted or its time to live runs out.
///
/// ```toml
/// name = "doks-1"
/// provider = "digitalocean"
/// region = "nyc1"
/// ttl_secs = 86400
/// [[node_pools]]
/// name = "pool-1"
/// instance_type = "s-2vcpu-4gb"
/// count = 3
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterRequest {
    /// Name: `k8s:<name>` for deployments and the provider's cluster name.
    /// `[a-z][a-z0-9-]*`, at most [`MAX_CLUSTER_NAME`] characters, not ending in `-`.
    pub name: String,
    /// Provider that creates it (the `.wasm` file stem); it must announce
    /// `managed-kubernetes`.
    pub provider: String,
    /// Region (or zone, for providers with zonal clusters).
    pub region: String,
    /// Kubernetes version (`1.31`); default: the provider's.
    #[serde(default)]
    pub kubernetes_version: Option<String>,
    /// Node pools; 1 to [`MAX_NODE_POOLS`].
    pub node_pools: Vec<NodePool>,
    /// Labels stored on the cluster (keys `[a-z0-9_-]`, not starting with `bpr-`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Time to live in seconds: deleted by the supervisor when it runs out.
    /// Default: none.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// What the cluster costs per hour, for cost accounting; default unknown.
    #[serde(default)]
    pub hourly_usd: Option<f64>,
    /// POSTed with the outcome when the cluster is deleted (must be allowed by
    /// `[operator.webhooks]`).
    #[serde(default)]
    pub cleanup_webhook: Option<String>,
    /// The record id; default a fresh `dep-<uuid>`.
    #[serde(default)]
    pub deployment_id: Option<String>,
}

fn check_name(field: &str, name: &str, max: usize) -> Result<(), RequestError> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            format!(
                "{name:?} must be 1-{max} characters of [a-z0-9-], start with a letter and not end with '-'"
            ),
        ))
    }
}

fn check_word(field: &str, value: &str) -> Result<(), RequestError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c));
    if ok {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("{value:?} must be 1-128 characters of [A-Za-z0-9._/-]"),
        ))
    }
}

impl ClusterRequest {
    /// A one-pool request with `count` nodes of `instance_type`.
    pub fn new(
        name: impl Into<String>,
        provider: impl Into<String>,
        region: impl Into<String>,
        instance_type: impl Into<String>,
        count: u32,
    ) -> Self {
        Self {
            name: name.into(),
            provider: provider.into(),
            region: region.into(),
            kubernetes_version: None,
            node_pools: vec![NodePool {
                name: "pool-1".into(),
                instance_type: instance_type.into(),
                count,
                min_count: None,
                max_count: None,
                spot: false,
                disk_gib: None,
            }],
            labels: BTreeMap::new(),
            ttl_secs: None,
            hourly_usd: None,
            cleanup_webhook: None,
            deployment_id: None,
        }
    }

    /// Checks every field; the error names the field and what to do.
    pub fn validate(&self) -> Result<(), RequestError> {
        check_name("name", &self.name, MAX_CLUSTER_NAME)?;
        check_word("provider", &self.provider)?;
        check_word("region", &self.region)?;
        if let Some(v) = &self.kubernetes_version {
            check_word("kubernetes_version", v)?;
        }
        if let Some(id) = &self.deployment_id {
            let ok = !id.is_empty()
                && id.len() <= 63
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !ok {
                return Err(bad(
                    "deployment_id",
                    format!("{id:?} must be 1-63 characters of [a-z0-9_-]"),
                ));
            }
        }
        if self.node_pools.is_empty() || self.node_pools.len() > MAX_NODE_POOLS {
            return Err(bad(
                "node_pools",
                format!("give 1 to {MAX_NODE_POOLS} node pools"),
            ));
        }
        for (i, p) in self.node_pools.iter().enumerate() {
            let field = |f: &str| format!("node_pools[{i}].{f}");
            check_name(&field("name"), &p.name, MAX_CLUSTER_NAME)?;
            if self.node_pools[..i].iter().any(|q| q.name == p.name) {
                return Err(bad(field("name"), format!("{:?} is used twice", p.name)));
            }
            check_word(&field("instance_type"), &p.instance_type)?;
            if p.count == 0 || p.count > MAX_POOL_NODES {
                return Err(bad(
                    field("count"),
                    format!("must be 1-{MAX_POOL_NODES} nodes"),
                ));
            }
            match (p.min_count, p.max_count) {
                (None, None) => {}
                (Some(min), Some(max)) if min <= p.count && p.count <= max => {}
                (Some(_), Some(_)) => {
                    return Err(bad(
                        field("count"),
                        "autoscaling needs min_count <= count <= max_count",
                    ));
                }
                _ => {
                    return Err(bad(
                        field("min_count"),
                        "autoscaling needs both min_count and max_count",
                    ));
                }
            }
            if p.disk_gib == Some(0) {
                return Err(bad(field("disk_gib"), "must be at least 1 (or omitted)"));
            }
        }
        for k in self.labels.keys() {
            let ok = !k.is_empty()
                && k.len() <= 63
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
            if !ok {
                return Err(bad(
                    format!("labels.{k}"),
                    "label keys are 1-63 characters of [a-z0-9_-]",
                ));
            }
            if k.starts_with("bpr-") {
                return Err(bad(
                    format!("labels.{k}"),
                    "keys starting with bpr- are reserved for the host",
                ));
            }
        }
        if self.ttl_secs == Some(0) {
            return Err(bad("ttl_secs", "must be at least 1 (omit it for no TTL)"));
        }
        if let Some(h) = self.hourly_usd
            && !(h.is_finite() && h >= 0.0)
        {
            return Err(bad("hourly_usd", "must be a price of 0 or more"));
        }
        if let Some(u) = &self.cleanup_webhook {
            let ok = (u.starts_with("http://") || u.starts_with("https://"))
                && url::Url::parse(u).is_ok();
            if !ok {
                return Err(bad(
                    "cleanup_webhook",
                    format!("{u:?} is not an http(s) URL"),
                ));
            }
        }
        Ok(())
    }

    /// The node pools as one line (`3x s-2vcpu-4gb, 1x g-4vcpu`): the record's
    /// "instance type".
    pub fn pools_label(&self) -> String {
        self.node_pools
            .iter()
            .map(|p| format!("{}x {}", p.count, p.instance_type))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The WIT spec for deployment `id`, created under `idempotency_key`, with the
    /// record's `labels` (which carry `bpr-deployment`).
    pub(crate) fn spec(
        &self,
        id: &str,
        idempotency_key: &str,
        labels: Vec<(String, String)>,
    ) -> ClusterSpec {
        ClusterSpec {
            name: self.name.clone(),
            deployment_id: id.to_string(),
            idempotency_key: idempotency_key.to_string(),
            region: self.region.clone(),
            kubernetes_version: self.kubernetes_version.clone(),
            node_pools: self
                .node_pools
                .iter()
                .map(|p| NodePoolSpec {
                    name: p.name.clone(),
                    instance_type: p.instance_type.clone(),
                    count: p.count,
                    min_count: p.min_count,
                    max_count: p.max_count,
                    spot: p.spot,
                    disk_gib: p.disk_gib,
                })
                .collect(),
            labels,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: &ClusterRequest) -> String {
        r.validate().expect_err("invalid").field
    }

    #[test]
    fn a_one_pool_request_is_valid_and_labels_its_pools() {
        let r = ClusterRequest::new("doks-1", "digitalocean", "nyc1", "s-2vcpu-4gb", 3);
        r.validate().expect("valid");
        assert_eq!(r.pools_label(), "3x s-2vcpu-4gb");
    }

    /// A field's name and how to spoil it.
    type BadField = (&'static str, Box<dyn Fn(&mut ClusterRequest)>);

    #[test]
    fn each_bad_field_is_named() {
        let ok = ClusterRequest::new("doks-1", "digitalocean", "nyc1", "s-2vcpu-4gb", 3);
        let cases: Vec<BadField> = vec![
            ("name", Box::new(|r| r.name = "Doks".into())),
            ("name", Box::new(|r| r.name = "1doks".into())),
            ("name", Box::new(|r| r.name = "doks-".into())),
            ("name", Box::new(|r| r.name = "a".repeat(41))),
            ("provider", Box::new(|r| r.provider = String::new())),
            ("region", Box::new(|r| r.region = "nyc 1".into())),
            ("node_pools", Box::new(|r| r.node_pools.clear())),
            (
                "node_pools[0].count",
                Box::new(|r| r.node_pools[0].count = 0),
            ),
            (
                "node_pools[0].instance_type",
                Box::new(|r| r.node_pools[0].instance_type = "a b".into()),
            ),
            (
                "node_pools[0].count",
                Box::new(|r| {
                    r.node_pools[0].min_count = Some(4);
                    r.node_pools[0].max_count = Some(5);
                }),
            ),
            (
                "node_pools[0].min_count",
                Box::new(|r| r.node_pools[0].max_count = Some(5)),
            ),
            (
                "node_pools[1].name",
                Box::new(|r| {
                    let p = r.node_pools[0].clone();
                    r.node_pools.push(p);
                }),
            ),
            (
                "labels.bpr-x",
                Box::new(|r| {
                    r.labels.insert("bpr-x".into(), "1".into());
                }),
            ),
            ("ttl_secs", Box::new(|r| r.ttl_secs = Some(0))),
            ("hourly_usd", Box::new(|r| r.hourly_usd = Some(-1.0))),
            ("hourly_usd", Box::new(|r| r.hourly_usd = Some(f64::NAN))),
            (
                "cleanup_webhook",
                Box::new(|r| r.cleanup_webhook = Some("ftp://x".into())),
            ),
            (
                "deployment_id",
                Box::new(|r| r.deployment_id = Some("Dep 1".into())),
            ),
        ];
        for (want, change) in cases {
            let mut r = ok.clone();
            change(&mut r);
            assert_eq!(field_of(&r), want, "{r:?}");
        }
    }

    #[test]
    fn the_spec_carries_the_pools_the_key_and_the_record_labels() {
        let mut r = ClusterRequest::new("eks-1", "aws", "us-east-1", "m5.large", 2);
        r.node_pools[0].min_count = Some(1);
        r.node_pools[0].max_count = Some(4);
        let spec = r.spec(
            "dep-1",
            "dep-1-c1",
            vec![("bpr-deployment".into(), "dep-1".into())],
        );
        assert_eq!(spec.name, "eks-1");
        assert_eq!(spec.idempotency_key, "dep-1-c1");
        assert_eq!(spec.node_pools[0].count, 2);
        assert_eq!(spec.node_pools[0].max_count, Some(4));
        assert_eq!(spec.labels[0].1, "dep-1");
    }

    #[test]
    fn unknown_fields_are_refused_when_read_from_json() {
        let err = serde_json::from_str::<ClusterRequest>(
            r#"{"name":"a","provider":"p","region":"r","node_pools":[],"nodes":3}"#,
        )
        .expect_err("unknown field");
        assert!(err.to_string().contains("nodes"), "{err}");
    }
}
