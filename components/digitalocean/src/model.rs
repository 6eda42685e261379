//! DigitalOcean API shapes (the fields we read) and their mapping onto the WIT
//! records. Pure functions: no HTTP here.

use provider_sdk::types::{
    Arch, Cluster, ClusterAuth, ClusterState, Error, Instance, InstanceState, Label, Offer,
    PriceSource, ResourceRef,
};
use serde::Deserialize;

/// Prefix of the tags that carry host labels: `bpr:<key>:<encoded value>`.
pub const LABEL_TAG_PREFIX: &str = "bpr:";
/// Prefix of the tag that carries the idempotency key of a create.
pub const IDEMPOTENCY_TAG_PREFIX: &str = "bpr-idem:";
/// DigitalOcean's limit on a tag name.
const MAX_TAG_LEN: usize = 255;

/// `links` of a paged DigitalOcean answer.
#[derive(Debug, Default, Deserialize)]
pub struct Links {
    /// `first`, `prev`, `next`, `last`; absent on a single page.
    #[serde(default)]
    pub pages: Option<Pages>,
}

/// Page links; only `next` is followed.
#[derive(Debug, Default, Deserialize)]
pub struct Pages {
    /// Absolute URL of the next page, absent on the last page.
    #[serde(default)]
    pub next: Option<String>,
}

impl Links {
    /// The next page's URL, if any.
    pub fn next(&self) -> Option<String> {
        self.pages.as_ref().and_then(|p| p.next.clone())
    }
}

/// One page of `GET /v2/sizes` (also the format of the embedded snapshot).
#[derive(Debug, Deserialize)]
pub struct SizesPage {
    /// The sizes on this page.
    pub sizes: Vec<Size>,
    /// Page links.
    #[serde(default)]
    pub links: Links,
}

/// A droplet size.
#[derive(Debug, Deserialize)]
pub struct Size {
    /// Size slug (`s-2vcpu-4gb`).
    pub slug: String,
    /// Memory in MiB.
    pub memory: f64,
    /// vCPU count.
    pub vcpus: f64,
    /// Disk in GB (DigitalOcean's GB are GiB, see `disk_info.size.unit`).
    #[serde(default)]
    pub disk: Option<f64>,
    /// USD per hour.
    pub price_hourly: f64,
    /// Regions where the size can be created.
    #[serde(default)]
    pub regions: Vec<String>,
    /// False when the size cannot be created anywhere now.
    #[serde(default = "yes")]
    pub available: bool,
    /// `Basic`, `General Purpose`, `H100 GPU - 8X`...
    #[serde(default)]
    pub description: Option<String>,
    /// GPU details on GPU sizes.
    #[serde(default)]
    pub gpu_info: Option<GpuInfo>,
}

fn yes() -> bool {
    true
}

/// `gpu_info` of a GPU size.
#[derive(Debug, Deserialize)]
pub struct GpuInfo {
    /// GPU count.
    #[serde(default)]
    pub count: Option<f64>,
    /// Model (`nvidia_h100`).
    #[serde(default)]
    pub model: Option<String>,
    /// Total GPU memory of the size.
    #[serde(default)]
    pub vram: Option<Amount>,
}

/// An amount with a unit (`{amount: 640, unit: "gib"}`).
#[derive(Debug, Deserialize)]
pub struct Amount {
    /// The number.
    pub amount: f64,
    /// `gib` (the only unit seen).
    #[serde(default)]
    pub unit: Option<String>,
}

/// Offers of `sizes`: one per (size, region), skipping unavailable sizes,
/// non-positive prices and regions outside `regions` (when not empty).
pub fn offers_from_sizes(sizes: &[Size], regions: &[String], source: &PriceSource) -> Vec<Offer> {
    let mut out = Vec::new();
    for size in sizes {
        if !size.available || size.price_hourly.is_nan() || size.price_hourly <= 0.0 {
            continue;
        }
        let gpus = size
            .gpu_info
            .as_ref()
            .and_then(|g| g.count)
            .unwrap_or(0.0)
            .max(0.0);
        let gpu_model = if gpus > 0.0 {
            size.gpu_info.as_ref().and_then(|g| g.model.clone())
        } else {
            None
        };
        let gpu_memory_gib = size
            .gpu_info
            .as_ref()
            .and_then(|g| g.vram.as_ref())
            .filter(|v| {
                v.unit
                    .as_deref()
                    .is_none_or(|u| u.eq_ignore_ascii_case("gib"))
            })
            .filter(|_| gpus > 0.0)
            .map(|v| (v.amount / gpus) as f32);
        // DigitalOcean's shared-CPU plans are the Basic `s-*` sizes.
        let shared_cpu = size.slug.starts_with("s-")
            || size
                .description
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case("basic"));
        for region in &size.regions {
            if !regions.is_empty() && !regions.iter().any(|r| r == region) {
                continue;
            }
            out.push(Offer {
                instance_type: size.slug.clone(),
                region: region.clone(),
                zone: None,
                vcpus: size.vcpus as f32,
                memory_gib: (size.memory / 1024.0) as f32,
                storage_gib: size.disk.filter(|d| *d > 0.0).map(|d| d as f32),
                gpus: gpus as f32,
                gpu_model: gpu_model.clone(),
                gpu_memory_gib,
                arch: Arch::X8664,
                hourly_usd: size.price_hourly,
                spot_hourly_usd: None,
                shared_cpu,
                confidential: false,
                promotional: false,
                source: source.clone(),
            });
        }
    }
    out
}

/// A droplet (the fields we read).
#[derive(Debug, Deserialize)]
pub struct Droplet {
    /// Droplet id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// `new`, `active`, `off`, `archive`.
    pub status: String,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Size slug.
    #[serde(default)]
    pub size_slug: Option<String>,
    /// Region object.
    #[serde(default)]
    pub region: Option<RegionRef>,
    /// Addresses.
    #[serde(default)]
    pub networks: Option<Networks>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// The region object of a droplet.
#[derive(Debug, Deserialize)]
pub struct RegionRef {
    /// Region slug (`nyc3`).
    pub slug: String,
}

/// `networks` of a droplet.
#[derive(Debug, Default, Deserialize)]
pub struct Networks {
    /// IPv4 addresses.
    #[serde(default)]
    pub v4: Vec<Address>,
    /// IPv6 addresses.
    #[serde(default)]
    pub v6: Vec<Address>,
}

/// One address of a droplet.
#[derive(Debug, Deserialize)]
pub struct Address {
    /// The address.
    pub ip_address: String,
    /// `public` or `private`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `{droplet: ...}`.
#[derive(Debug, Deserialize)]
pub struct DropletEnvelope {
    /// The droplet.
    pub droplet: Droplet,
}

/// One page of `GET /v2/droplets`.
#[derive(Debug, Deserialize)]
pub struct DropletsPage {
    /// Droplets on this page.
    pub droplets: Vec<Droplet>,
    /// Page links.
    #[serde(default)]
    pub links: Links,
}

/// DigitalOcean droplet status -> WIT instance state.
pub fn instance_state(status: &str) -> InstanceState {
    match status {
        "new" => InstanceState::Pending,
        "active" => InstanceState::Running,
        "off" => InstanceState::Stopped,
        "archive" => InstanceState::Terminated,
        _ => InstanceState::Unknown,
    }
}

fn address(nets: Option<&Networks>, v6: bool, kind: &str) -> Option<String> {
    let nets = nets?;
    let list = if v6 { &nets.v6 } else { &nets.v4 };
    list.iter()
        .find(|a| a.kind == kind)
        .map(|a| a.ip_address.clone())
}

/// A droplet as a WIT instance; `resources` are the ones the host passed back
/// (or those just created).
pub fn instance_from_droplet(d: &Droplet, resources: Vec<ResourceRef>) -> Instance {
    Instance {
        id: d.id.to_string(),
        region: d
            .region
            .as_ref()
            .map(|r| r.slug.clone())
            .unwrap_or_default(),
        zone: None,
        instance_type: d.size_slug.clone().unwrap_or_default(),
        state: instance_state(&d.status),
        public_ipv4: address(d.networks.as_ref(), false, "public"),
        private_ipv4: address(d.networks.as_ref(), false, "private"),
        public_ipv6: address(d.networks.as_ref(), true, "public"),
        spot: false,
        labels: labels_from_tags(&d.tags),
        resources,
        created_at: d
            .created_at
            .as_deref()
            .and_then(provider_sdk::time::parse_rfc3339),
        detail: Some(format!("droplet {} is {}", d.name, d.status)),
    }
}

/// Encode a label value into tag characters (`[a-zA-Z0-9_:-]`) reversibly:
/// letters, digits and `-` stay, `_` becomes `__`, any other byte `_XX` (hex).
pub fn encode_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => out.push(b as char),
            b'_' => out.push_str("__"),
            other => out.push_str(&format!("_{other:02x}")),
        }
    }
    out
}

/// Reverse of [`encode_tag_value`]; `None` when the text was not produced by it.
pub fn decode_tag_value(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            if bytes.get(i + 1) == Some(&b'_') {
                out.push(b'_');
                i += 2;
            } else {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The tag storing one label: `bpr:<key>:<encoded value>`.
pub fn label_tag(key: &str, value: &str) -> Result<String, Error> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(Error::InvalidRequest(format!(
            "label key `{key}` must be lower-case [a-z0-9_-] to be stored as a DigitalOcean tag"
        )));
    }
    let tag = format!("{LABEL_TAG_PREFIX}{key}:{}", encode_tag_value(value));
    check_tag_len(&tag, &format!("label `{key}`"))?;
    Ok(tag)
}

/// The tag marking the droplet created for one idempotency key.
pub fn idempotency_tag(key: &str) -> Result<String, Error> {
    let tag = format!("{IDEMPOTENCY_TAG_PREFIX}{}", encode_tag_value(key));
    check_tag_len(&tag, "the idempotency key")?;
    Ok(tag)
}

fn check_tag_len(tag: &str, what: &str) -> Result<(), Error> {
    if tag.len() > MAX_TAG_LEN {
        return Err(Error::InvalidRequest(format!(
            "{what} is too long for a DigitalOcean tag ({} > {MAX_TAG_LEN} characters once encoded); shorten it",
            tag.len()
        )));
    }
    Ok(())
}

/// Labels read back from tags written by [`label_tag`]; other tags are ignored.
pub fn labels_from_tags(tags: &[String]) -> Vec<Label> {
    tags.iter()
        .filter_map(|t| {
            let rest = t.strip_prefix(LABEL_TAG_PREFIX)?;
            let (key, value) = rest.split_once(':')?;
            Some((key.to_string(), decode_tag_value(value)?))
        })
        .collect()
}

/// A hostname-safe name (`[a-zA-Z0-9.-]`, starts and ends alphanumeric, at
/// most `max` characters) made from `prefix` and `raw`.
pub fn safe_name(prefix: &str, raw: &str, max: usize) -> String {
    let mut name: String = format!("{prefix}{raw}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(max);
    let trimmed = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "bpr".to_string()
    } else {
        trimmed.to_string()
    }
}

/// A Kubernetes cluster (the fields we read).
#[derive(Debug, Deserialize)]
pub struct KubeCluster {
    /// Cluster id (uuid).
    pub id: String,
    /// Name.
    pub name: String,
    /// Region slug.
    pub region: String,
    /// Version slug (`1.31.1-do.5`).
    #[serde(default)]
    pub version: Option<String>,
    /// API server URL, empty until provisioned.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Tags (DigitalOcean adds `k8s` and `k8s:<id>`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Status.
    #[serde(default)]
    pub status: Option<KubeStatus>,
    /// Node pools.
    #[serde(default)]
    pub node_pools: Vec<KubeNodePool>,
}

/// `status` of a cluster.
#[derive(Debug, Deserialize)]
pub struct KubeStatus {
    /// `running`, `provisioning`, `degraded`, `error`, `deleted`, `upgrading`, `deleting`.
    #[serde(default)]
    pub state: Option<String>,
    /// Human-readable message.
    #[serde(default)]
    pub message: Option<String>,
}

/// A node pool of a cluster.
#[derive(Debug, Deserialize)]
pub struct KubeNodePool {
    /// Pool id.
    #[serde(default)]
    pub id: Option<String>,
}

/// `{kubernetes_cluster: ...}`.
#[derive(Debug, Deserialize)]
pub struct KubeClusterEnvelope {
    /// The cluster.
    pub kubernetes_cluster: KubeCluster,
}

/// One page of `GET /v2/kubernetes/clusters`.
#[derive(Debug, Deserialize)]
pub struct KubeClustersPage {
    /// Clusters on this page.
    pub kubernetes_clusters: Vec<KubeCluster>,
    /// Page links.
    #[serde(default)]
    pub links: Links,
}

/// `GET /v2/kubernetes/clusters/{id}/credentials`.
#[derive(Deserialize)]
pub struct KubeCredentials {
    /// Base64 PEM CA bundle.
    #[serde(default)]
    pub certificate_authority_data: Option<String>,
    /// Base64 PEM client certificate (older clusters).
    #[serde(default)]
    pub client_certificate_data: Option<String>,
    /// Base64 PEM client key (older clusters).
    #[serde(default)]
    pub client_key_data: Option<String>,
    /// Bearer token.
    #[serde(default)]
    pub token: Option<String>,
    /// RFC 3339 expiry of the token.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// DigitalOcean cluster state -> WIT cluster state.
pub fn cluster_state(state: Option<&str>) -> ClusterState {
    match state {
        Some("running") | Some("degraded") => ClusterState::Running,
        Some("provisioning") => ClusterState::Provisioning,
        Some("upgrading") => ClusterState::Updating,
        Some("deleting") => ClusterState::Deleting,
        Some("deleted") => ClusterState::Deleted,
        Some("error") => ClusterState::Failed,
        _ => ClusterState::Unknown,
    }
}

/// A cluster as a WIT record (without its CA, which needs another call).
pub fn cluster_from_api(c: &KubeCluster) -> Cluster {
    let state_text = c.status.as_ref().and_then(|s| s.state.as_deref());
    Cluster {
        id: c.id.clone(),
        name: c.name.clone(),
        region: c.region.clone(),
        state: cluster_state(state_text),
        endpoint: c.endpoint.clone().filter(|e| !e.is_empty()),
        ca_certificate_pem: None,
        auth: ClusterAuth::Fetched,
        kubernetes_version: c.version.clone(),
        labels: labels_from_tags(&c.tags),
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
        detail: c.status.as_ref().map(|s| {
            format!(
                "{}: {}",
                s.state.as_deref().unwrap_or("unknown"),
                s.message.as_deref().unwrap_or("")
            )
        }),
    }
}

/// Classify a DigitalOcean 4xx message beyond the status code: an unknown
/// region is `region-unavailable`, the size/region-unavailable texts are
/// capacity problems, the droplet limit is a quota. `None` when the message is
/// not one of those.
pub fn classify_message(message: &str) -> Option<fn(String) -> Error> {
    let m = message.to_ascii_lowercase();
    // DigitalOcean's answer to a region slug it does not know.
    if m.contains("invalid region") {
        return Some(Error::RegionUnavailable);
    }
    if m.contains("exceed") && m.contains("limit") {
        return Some(Error::QuotaExceeded);
    }
    if (m.contains("size") || m.contains("region") || m.contains("capacity"))
        && (m.contains("not available") || m.contains("unavailable") || m.contains("capacity"))
    {
        return Some(Error::CapacityUnavailable);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> PriceSource {
        PriceSource {
            source: "test".into(),
            observed_at: 0,
            from_snapshot: false,
        }
    }

    #[test]
    fn each_available_region_of_a_size_becomes_one_offer() {
        let page: SizesPage = serde_json::from_str(
            r#"{"sizes":[{"slug":"gpu-h100x8-640gb","memory":1966080,"vcpus":160,"disk":2046,
            "price_hourly":23.92,"regions":["nyc1","tor1"],"available":true,
            "gpu_info":{"count":8,"vram":{"amount":640,"unit":"gib"},"model":"nvidia_h100"}},
            {"slug":"s-1vcpu-1gb","memory":1024,"vcpus":1,"disk":25,"price_hourly":0.00744,
            "regions":["nyc3"],"available":false}]}"#,
        )
        .expect("valid test JSON");
        let offers = offers_from_sizes(&page.sizes, &[], &source());
        assert_eq!(offers.len(), 2);
        let o = &offers[0];
        assert_eq!(
            (o.instance_type.as_str(), o.region.as_str()),
            ("gpu-h100x8-640gb", "nyc1")
        );
        assert_eq!(
            (o.vcpus, o.memory_gib, o.storage_gib),
            (160.0, 1920.0, Some(2046.0))
        );
        assert_eq!(
            (o.gpus, o.gpu_model.as_deref(), o.gpu_memory_gib),
            (8.0, Some("nvidia_h100"), Some(80.0))
        );
        let only_tor = offers_from_sizes(&page.sizes, &["tor1".to_string()], &source());
        assert_eq!(only_tor.len(), 1);
    }

    #[test]
    fn label_tags_round_trip_any_value() {
        let tag = label_tag("bpr-deployment", "dep_1/ä b").expect("valid key");
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b)),
            "{tag}"
        );
        let labels = labels_from_tags(&[tag, "k8s".into(), "bpr-idem:x".into()]);
        assert_eq!(
            labels,
            vec![("bpr-deployment".to_string(), "dep_1/ä b".to_string())]
        );
    }

    #[test]
    fn upper_case_label_keys_are_invalid_requests() {
        assert!(matches!(
            label_tag("Bad", "x"),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn droplet_statuses_map_to_instance_states() {
        assert!(matches!(instance_state("new"), InstanceState::Pending));
        assert!(matches!(instance_state("active"), InstanceState::Running));
        assert!(matches!(instance_state("off"), InstanceState::Stopped));
        assert!(matches!(
            instance_state("archive"),
            InstanceState::Terminated
        ));
    }

    #[test]
    fn size_unavailable_messages_are_capacity_and_limits_are_quota() {
        let cap =
            classify_message("Size is not available in this region.").map(|f| f(String::new()));
        assert!(matches!(cap, Some(Error::CapacityUnavailable(_))));
        let quota =
            classify_message("creating this/these droplet(s) will exceed your droplet limit")
                .map(|f| f(String::new()));
        assert!(matches!(quota, Some(Error::QuotaExceeded(_))));
        assert!(classify_message("You specified an invalid image for Droplet creation.").is_none());
    }

    #[test]
    fn an_unknown_region_slug_is_region_unavailable() {
        let e = classify_message("You specified an invalid region for Droplet creation.")
            .map(|f| f(String::new()));
        assert!(matches!(e, Some(Error::RegionUnavailable(_))));
    }

    #[test]
    fn safe_names_are_hostnames() {
        assert_eq!(safe_name("bpr-", "dep_1/x", 63), "bpr-dep-1-x");
        assert_eq!(safe_name("", "__", 63), "bpr");
    }
}
