//! What a deployment asks for, and the candidates it may run on.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::kubernetes::{self, ScalingPolicy, ServicePort, StorageRequest, Tier};
use crate::placement::Request;
use crate::runtime::bindings::wit::{self, PortMapping, PortRule, Protocol};
use crate::tracking::DeploymentType;
use crate::workload::{self, WorkloadSource, WorkloadSpec};

mod limits;

/// A request that cannot be deployed. Names the field and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    /// Field path (`request.workload.source.sha256`, `candidates[1].region`...).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> RequestError {
    RequestError {
        field: field.into(),
        message: message.into(),
    }
}

/// Where to create an instance: one candidate of a deployment, tried in ranked
/// order (placement's [`crate::placement::Candidate`] converts into this).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceTarget {
    /// Provider name (the `.wasm` file stem).
    pub provider: String,
    /// Region code.
    pub region: String,
    /// Zone, when the offer named one.
    #[serde(default)]
    pub zone: Option<String>,
    /// Machine type.
    pub instance_type: String,
    /// Run as spot.
    #[serde(default)]
    pub spot: bool,
    /// Price per hour, when known (recorded).
    #[serde(default)]
    pub hourly_usd: Option<f64>,
}

impl InstanceTarget {
    /// `provider/region/type` (`+spot`).
    pub fn label(&self) -> String {
        format!(
            "{}/{}{}/{}{}",
            self.provider,
            self.region,
            self.zone
                .as_ref()
                .map(|z| format!("({z})"))
                .unwrap_or_default(),
            self.instance_type,
            if self.spot { "+spot" } else { "" }
        )
    }

    pub(crate) fn validate(&self, i: usize) -> Result<(), RequestError> {
        for (name, v) in [
            ("provider", &self.provider),
            ("region", &self.region),
            ("instance_type", &self.instance_type),
        ] {
            if v.trim().is_empty() {
                return Err(bad(format!("candidates[{i}].{name}"), "must not be empty"));
            }
        }
        if let Some(p) = self.hourly_usd
            && !(p.is_finite() && p >= 0.0)
        {
            return Err(bad(
                format!("candidates[{i}].hourly_usd"),
                format!("{p} is not a price"),
            ));
        }
        Ok(())
    }
}

/// An inbound opening on the instance's firewall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenPort {
    /// First port.
    pub port: u16,
    /// Last port (inclusive), for a range.
    #[serde(default)]
    pub end_port: Option<u16>,
    /// `tcp` (default) or `udp`.
    #[serde(default = "tcp")]
    pub protocol: String,
    /// Source CIDRs; empty = anywhere.
    #[serde(default)]
    pub source_cidrs: Vec<String>,
}

fn tcp() -> String {
    "tcp".into()
}

/// The HTTP health check of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// Port on the instance's address.
    pub port: u16,
    /// Path; default `/`.
    #[serde(default)]
    pub path: Option<String>,
}

impl HealthCheck {
    /// The path, `/` by default.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}

/// How a `kubernetes` deployment runs on its cluster. The image, arguments,
/// environment and ports come from the request's container `workload`, the probes
/// from its `health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesOptions {
    /// Cluster name: one of `[operator.kubernetes] clusters`, or a managed cluster
    /// added with `Host::add_cluster`.
    pub cluster: String,
    /// Payment tier: replicas, requests/limits, autoscaling, GPUs. Default basic.
    #[serde(default)]
    pub tier: Tier,
    /// Persistent storage: the workload becomes a StatefulSet.
    #[serde(default)]
    pub storage: Option<StorageRequest>,
    /// GPUs per replica; default the tier's.
    #[serde(default)]
    pub gpus: Option<u32>,
    /// Expose through a LoadBalancer Service (default: ClusterIP only).
    #[serde(default)]
    pub public: bool,
    /// At least 2 replicas and a PodDisruptionBudget.
    #[serde(default)]
    pub high_availability: bool,
    /// Pod `runtimeClassName` (e.g. `kata`).
    #[serde(default)]
    pub runtime_class_name: Option<String>,
    /// An existing namespace to use instead of one per service (neither created nor
    /// deleted).
    #[serde(default)]
    pub namespace: Option<String>,
    /// UID the container runs as; default the image's (which must be numeric, non-root).
    #[serde(default)]
    pub run_as_user: Option<i64>,
    /// Payment expired: 0 replicas, no autoscaler (set by `suspend`, cleared by `resume`).
    #[serde(default)]
    pub suspended: bool,
}

impl KubernetesOptions {
    /// Options for `cluster` with every other field at its default.
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
            tier: Tier::Basic,
            storage: None,
            gpus: None,
            public: false,
            high_availability: false,
            runtime_class_name: None,
            namespace: None,
            run_as_user: None,
            suspended: false,
        }
    }
}

/// A deployment request (from Blueprint Manager, `bpr deploy` flags or a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// Deployment id to use (`[a-z0-9-]`, at most 48); default `dep-<uuid>`.
    #[serde(default)]
    pub deployment_id: Option<String>,
    /// Blueprint id.
    pub blueprint_id: String,
    /// Service id.
    pub service_id: String,
    /// vm (default) or kubernetes (needs `kubernetes` and a container `workload`).
    /// `ssh` deployments go through the ssh provider's `compute` interface as `vm`.
    #[serde(default)]
    pub deployment_type: DeploymentType,
    /// Kubernetes options; required with `deployment_type = "kubernetes"`.
    #[serde(default)]
    pub kubernetes: Option<KubernetesOptions>,
    /// Time to live in seconds from creation; the supervisor terminates it after.
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// Extra labels (`[a-z0-9_-]`, at most 63; `bpr-*` is reserved).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// What to run; turned into cloud-init user data.
    #[serde(default)]
    pub workload: Option<WorkloadSpec>,
    /// Image override (AMI id, slug...).
    #[serde(default)]
    pub image: Option<String>,
    /// Boot disk GiB; 0 = provider default.
    #[serde(default)]
    pub disk_gib: u32,
    /// OpenSSH public keys to install.
    #[serde(default)]
    pub ssh_public_keys: Vec<String>,
    /// Firewall openings; default: the workload's public ports.
    #[serde(default)]
    pub open_ports: Vec<OpenPort>,
    /// HTTP health check; without one the provider's running state counts.
    #[serde(default)]
    pub health: Option<HealthCheck>,
    /// URL POSTed with the cleanup outcome; its host must be in the operator's
    /// `[operator.webhooks] allow` list.
    #[serde(default)]
    pub cleanup_webhook: Option<String>,
    /// What the blueprint needs and the customer prefers: the host gathers
    /// offers and ranks them with the operator's policy (ignored when
    /// `candidates` are given, and for Kubernetes requests, which name their
    /// cluster).
    #[serde(default)]
    pub requirements: Option<Request>,
    /// Where to try, in order, instead of ranking.
    #[serde(default)]
    pub candidates: Vec<InstanceTarget>,
    /// How many ranked candidates are tried before giving up. Default 5.
    #[serde(default)]
    pub failover: Option<usize>,
}

impl DeployRequest {
    /// A minimal request.
    pub fn new(blueprint_id: impl Into<String>, service_id: impl Into<String>) -> Self {
        Self {
            deployment_id: None,
            blueprint_id: blueprint_id.into(),
            service_id: service_id.into(),
            deployment_type: DeploymentType::Vm,
            kubernetes: None,
            ttl_secs: None,
            labels: BTreeMap::new(),
            workload: None,
            image: None,
            disk_gib: 0,
            ssh_public_keys: Vec::new(),
            open_ports: Vec::new(),
            health: None,
            cleanup_webhook: None,
            requirements: None,
            candidates: Vec::new(),
            failover: None,
        }
    }

    /// Check every field; nothing is written for an invalid request.
    pub fn validate(&self) -> Result<(), RequestError> {
        if let Some(id) = &self.deployment_id {
            let ok = !id.is_empty()
                && id.len() <= 48
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !id.starts_with('-');
            if !ok {
                return Err(bad(
                    "deployment_id",
                    format!("{id:?} must be 1-48 characters of [a-z0-9-], not starting with '-'"),
                ));
            }
        }
        limits::check(self)?;
        match (self.deployment_type, &self.kubernetes) {
            (DeploymentType::Vm, None) | (DeploymentType::Kubernetes, Some(_)) => {}
            (DeploymentType::Kubernetes, None) => {
                return Err(bad(
                    "kubernetes",
                    "a kubernetes deployment needs a [request.kubernetes] section with at least `cluster` (bpr deploy --target k8s:<cluster>)",
                ));
            }
            (DeploymentType::Vm, Some(_)) => {
                return Err(bad(
                    "kubernetes",
                    "given for a vm deployment; set deployment_type = \"kubernetes\" or remove it",
                ));
            }
            (DeploymentType::Ssh, _) => {
                return Err(bad(
                    "deployment_type",
                    "\"ssh\" is deployed as \"vm\" through the ssh provider (candidate ssh/<pool>/<host>); use \"vm\"",
                ));
            }
        }
        if self.ttl_secs == Some(0) {
            return Err(bad("ttl_secs", "must be at least 1 (omit it for no TTL)"));
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
        if let Some(w) = &self.workload {
            workload::validate(w).map_err(|e| bad(format!("workload.{}", e.field), e.message))?;
        }
        for (i, p) in self.open_ports.iter().enumerate() {
            if p.port == 0 || p.end_port.is_some_and(|e| e < p.port) {
                return Err(bad(
                    format!("open_ports[{i}]"),
                    "port must be 1-65535 and end_port >= port",
                ));
            }
            if p.protocol != "tcp" && p.protocol != "udp" {
                return Err(bad(
                    format!("open_ports[{i}].protocol"),
                    format!("{:?} is not tcp or udp", p.protocol),
                ));
            }
        }
        if self.health.as_ref().is_some_and(|h| h.port == 0) {
            return Err(bad("health.port", "must be 1-65535"));
        }
        if let Some(h) = &self.health
            && !h.path().starts_with('/')
        {
            return Err(bad("health.path", "must start with '/'"));
        }
        for (i, c) in self.candidates.iter().enumerate() {
            c.validate(i)?;
        }
        if self.failover == Some(0) {
            return Err(bad("failover", "must be at least 1 (the candidates tried)"));
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

    /// The Kubernetes deployment this request describes, for deployment `id`, with the
    /// operator's scaling bounds. Errors name the request field; the renderer's own
    /// checks (names, quantities, image) run here too, so an invalid request writes
    /// nothing.
    pub fn kubernetes_request(
        &self,
        id: &str,
        scaling: &ScalingPolicy,
    ) -> Result<kubernetes::DeploymentRequest, RequestError> {
        let Some(k) = &self.kubernetes else {
            return Err(bad(
                "kubernetes",
                "missing (deployment_type is not kubernetes)",
            ));
        };
        if k.cluster.trim().is_empty() {
            return Err(bad("kubernetes.cluster", "must not be empty"));
        }
        let numeric = |field: &str, v: &str| {
            v.parse::<u64>().map_err(|_| {
                bad(
                    field,
                    format!("{v:?}: Kubernetes deployments name their namespace bpr-<blueprint>-<service>, so Blueprint and service ids must be numbers (as on chain)"),
                )
            })
        };
        let blueprint = numeric("blueprint_id", &self.blueprint_id)?;
        let service = numeric("service_id", &self.service_id)?;
        let Some(w) = &self.workload else {
            return Err(bad(
                "workload",
                "a kubernetes deployment needs a container workload (bpr deploy --container IMAGE)",
            ));
        };
        let WorkloadSource::Container {
            image,
            args,
            env,
            ports,
        } = &w.source
        else {
            return Err(bad(
                "workload.source",
                "a kubernetes deployment runs a container image; native executables run on vm deployments",
            ));
        };
        for (field, unused) in [
            ("image", self.image.is_some()),
            ("disk_gib", self.disk_gib != 0),
            ("ssh_public_keys", !self.ssh_public_keys.is_empty()),
            ("open_ports", !self.open_ports.is_empty()),
            ("workload.cpu_limit", w.cpu_limit.is_some()),
            ("workload.memory_limit_mib", w.memory_limit_mib.is_some()),
            ("requirements", self.requirements.is_some()),
            ("candidates", !self.candidates.is_empty()),
        ] {
            if unused {
                return Err(bad(
                    field,
                    "not used by kubernetes deployments (the tier sets requests and limits, the NetworkPolicy opens the workload's ports); remove it",
                ));
            }
        }
        let mut r = kubernetes::DeploymentRequest::new(id, blueprint, service, image, k.tier);
        r.args = args.clone();
        r.env = env.clone();
        let mut seen = Vec::new();
        for p in ports {
            if !seen.contains(&p.container_port) {
                seen.push(p.container_port);
                r.ports.push(ServicePort::tcp("", p.container_port));
            }
        }
        r.health = self.health.as_ref().map(|h| kubernetes::HealthProbe {
            port: h.port,
            path: Some(h.path().to_string()),
        });
        r.scaling = *scaling;
        r.storage = k.storage.clone();
        r.gpus = k.gpus;
        r.public = k.public;
        r.high_availability = k.high_availability;
        r.runtime_class_name = k.runtime_class_name.clone();
        r.namespace = k.namespace.clone();
        r.run_as_user = k.run_as_user;
        r.suspended = k.suspended;
        kubernetes::render(&r).map_err(|e| bad("kubernetes", e.to_string()))?;
        Ok(r)
    }

    /// The workload as the WIT takes it, for providers that place workloads
    /// themselves (`None` without a workload, or for an archive, which only VMs
    /// unpack). The health check travels with it: such a provider checks it on
    /// the machine.
    pub(crate) fn wit_workload(&self) -> Result<Option<wit::Workload>, RequestError> {
        let Some(w) = &self.workload else {
            return Ok(None);
        };
        workload::validate(w).map_err(|e| bad(format!("workload.{}", e.field), e.message))?;
        let ports = |ports: &[workload::PortSpec]| {
            ports
                .iter()
                .map(|p| PortMapping {
                    container_port: p.container_port,
                    host_port: p.host_port,
                    public: p.public,
                })
                .collect()
        };
        let env = |env: &BTreeMap<String, String>| {
            env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let source = match &w.source {
            WorkloadSource::Container {
                image,
                args,
                env: e,
                ports: p,
            } => wit::WorkloadSource::Container(wit::ContainerWorkload {
                image: image.clone(),
                args: args.clone(),
                env: env(e),
                ports: ports(p),
            }),
            WorkloadSource::Native {
                url,
                sha256,
                args,
                env: e,
                ports: p,
            } => wit::WorkloadSource::Native(wit::NativeWorkload {
                url: url.clone(),
                sha256: sha256.clone(),
                args: args.clone(),
                env: env(e),
                ports: ports(p),
            }),
            WorkloadSource::Archive { .. } => return Ok(None),
        };
        Ok(Some(wit::Workload {
            source,
            cpu_limit: w.cpu_limit,
            memory_limit_mib: w.memory_limit_mib,
            health_port: self.health.as_ref().map(|h| h.port),
            health_path: self.health.as_ref().map(|h| h.path().to_string()),
        }))
    }

    /// The user data for deployment `id`, when a workload is given.
    pub(crate) fn user_data(&self, id: &str) -> Result<Option<String>, RequestError> {
        self.workload
            .as_ref()
            .map(|w| {
                workload::cloud_init(w, id)
                    .map_err(|e| bad(format!("workload.{}", e.field), e.message))
            })
            .transpose()
    }

    /// The firewall openings: `open_ports`, else the workload's public ports
    /// (and the health port).
    pub(crate) fn port_rules(&self) -> Vec<PortRule> {
        let mut rules: Vec<PortRule> = self
            .open_ports
            .iter()
            .map(|p| PortRule {
                port: p.port,
                end_port: p.end_port,
                protocol: if p.protocol == "udp" {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                },
                source_cidrs: p.source_cidrs.clone(),
            })
            .collect();
        if rules.is_empty() {
            let mut ports: Vec<u16> = self
                .workload
                .iter()
                .flat_map(|w| {
                    w.ports()
                        .iter()
                        .filter(|p| p.public)
                        .map(|p| p.host_port.unwrap_or(p.container_port))
                })
                .collect();
            ports.extend(self.health.as_ref().map(|h| h.port));
            ports.sort_unstable();
            ports.dedup();
            rules = ports
                .into_iter()
                .map(|port| PortRule {
                    port,
                    end_port: None,
                    protocol: Protocol::Tcp,
                    source_cidrs: vec![],
                })
                .collect();
        }
        rules
    }
}

/// A request file for `bpr deploy --file`: `[request]` plus optional
/// `[[candidates]]` (TOML), or `{"request": ..., "candidates": [...]}` (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestFile {
    /// The request.
    pub request: DeployRequest,
    /// Candidates in order, added after `request.candidates`.
    #[serde(default)]
    pub candidates: Vec<InstanceTarget>,
}

impl RequestFile {
    /// Read and check a `.json` or `.toml` file. Errors name the file and field.
    pub fn load(path: &Path) -> Result<Self, RequestError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(shown.clone(), format!("cannot read the request file: {e}")))?;
        let parsed: Self = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => serde_json::from_str(&text)
                .map_err(|e| bad(shown.clone(), format!("invalid JSON: {e}")))?,
            Some("toml") => toml::from_str(&text)
                .map_err(|e| bad(shown.clone(), format!("invalid TOML: {e}")))?,
            _ => return Err(bad(shown, "request files must end in .json or .toml")),
        };
        parsed
            .request
            .validate()
            .map_err(|e| bad(format!("{shown}: request.{}", e.field), e.message))?;
        for (i, c) in parsed.candidates.iter().enumerate() {
            c.validate(i)
                .map_err(|e| bad(format!("{shown}: {}", e.field), e.message))?;
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_request_is_valid_and_opens_the_workload_and_health_ports() {
        let mut r = DeployRequest::new("bp", "svc");
        assert_eq!(r.validate(), Ok(()));
        r.workload = Some(WorkloadSpec {
            source: crate::workload::WorkloadSource::Container {
                image: "nginx:1".into(),
                args: vec![],
                env: BTreeMap::new(),
                ports: vec![
                    crate::workload::PortSpec {
                        container_port: 80,
                        host_port: Some(8080),
                        public: true,
                    },
                    crate::workload::PortSpec {
                        container_port: 9000,
                        host_port: None,
                        public: false,
                    },
                ],
            },
            cpu_limit: None,
            memory_limit_mib: None,
        });
        r.health = Some(HealthCheck {
            port: 8081,
            path: None,
        });
        let ports: Vec<u16> = r.port_rules().iter().map(|p| p.port).collect();
        assert_eq!(
            ports,
            vec![8080, 8081],
            "public workload ports and the health port, not private ones"
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let check = |f: &dyn Fn(&mut DeployRequest), field: &str| {
            let mut r = DeployRequest::new("bp", "svc");
            f(&mut r);
            assert_eq!(r.validate().unwrap_err().field, field);
        };
        check(
            &|r| r.deployment_id = Some("Has Spaces".into()),
            "deployment_id",
        );
        check(&|r| r.blueprint_id = " ".into(), "blueprint_id");
        check(
            &|r| r.deployment_type = DeploymentType::Kubernetes,
            "kubernetes",
        );
        check(
            &|r| r.kubernetes = Some(KubernetesOptions::new("c")),
            "kubernetes",
        );
        check(
            &|r| r.deployment_type = DeploymentType::Ssh,
            "deployment_type",
        );
        check(&|r| r.ttl_secs = Some(0), "ttl_secs");
        check(
            &|r| drop(r.labels.insert("bpr-managed".into(), "x".into())),
            "labels.bpr-managed",
        );
        check(
            &|r| drop(r.labels.insert("UPPER".into(), "x".into())),
            "labels.UPPER",
        );
        check(
            &|r| {
                r.health = Some(HealthCheck {
                    port: 80,
                    path: Some("health".into()),
                })
            },
            "health.path",
        );
        check(
            &|r| r.cleanup_webhook = Some("file:///etc/passwd".into()),
            "cleanup_webhook",
        );
        check(
            &|r| {
                r.open_ports = vec![OpenPort {
                    port: 10,
                    end_port: Some(5),
                    protocol: "tcp".into(),
                    source_cidrs: vec![],
                }]
            },
            "open_ports[0]",
        );
    }

    #[test]
    fn a_request_file_with_an_unknown_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("req.toml");
        std::fs::write(
            &path,
            "[request]\nblueprint_id = \"b\"\nservice_id = \"s\"\nregion = \"x\"\n",
        )
        .unwrap();
        let err = RequestFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("req.toml") && err.contains("region"), "{err}");
        let path = dir.path().join("req.yaml");
        std::fs::write(&path, "").unwrap();
        assert!(
            RequestFile::load(&path)
                .unwrap_err()
                .to_string()
                .contains(".json or .toml")
        );
    }
}
