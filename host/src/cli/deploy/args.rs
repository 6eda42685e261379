//! `bpr deploy` flags and the request they build (checked before anything
//! starts, so an invalid request writes nothing).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use blueprint_remote_providers::kubernetes::StorageRequest;
use blueprint_remote_providers::provisioning::{
    DeployRequest, HealthCheck, InstanceTarget, KubernetesOptions, RequestFile,
};
use blueprint_remote_providers::tracking::DeploymentType;
use blueprint_remote_providers::workload::{PortSpec, WorkloadSource, WorkloadSpec};

/// `bpr deploy` flags.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// Request file (`.json` or `.toml`): `[request]` and optional `[[candidates]]`.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Blueprint id (without --file).
    #[arg(long)]
    pub blueprint: Option<String>,
    /// Service id (without --file).
    #[arg(long)]
    pub service: Option<String>,
    /// Deployment id to use (default `dep-<uuid>`).
    #[arg(long)]
    pub id: Option<String>,
    /// Provider of the single candidate (until `bpr plan` ranks them).
    #[arg(long, requires_all = ["region", "instance_type"])]
    pub provider: Option<String>,
    /// Region of the single candidate.
    #[arg(long)]
    pub region: Option<String>,
    /// Machine type of the single candidate.
    #[arg(long = "type")]
    pub instance_type: Option<String>,
    /// Zone of the single candidate.
    #[arg(long)]
    pub zone: Option<String>,
    /// Run as spot.
    #[arg(long)]
    pub spot: bool,
    /// More candidates, in order, as `provider/region/type`.
    #[arg(long = "candidate")]
    pub candidates: Vec<String>,
    /// Minimum vCPUs: with no candidate given, rank every provider's offers
    /// (as `bpr plan` does) and try the best ones in order.
    #[arg(long)]
    pub cpu: Option<f32>,
    /// Minimum memory in GiB (ranking mode).
    #[arg(long)]
    pub memory: Option<f32>,
    /// Minimum disk in GiB (ranking mode).
    #[arg(long)]
    pub storage: Option<f32>,
    /// Minimum GPUs (ranking mode).
    #[arg(long)]
    pub gpus: Option<f32>,
    /// Required GPU model (ranking mode).
    #[arg(long)]
    pub gpu_model: Option<String>,
    /// How many ranked candidates to try before giving up (ranking mode).
    #[arg(long, default_value_t = 5)]
    pub failover: usize,
    /// Container image to run.
    #[arg(long)]
    pub container: Option<String>,
    /// Published container port (`80` or `8080:80`), repeatable.
    #[arg(long = "port")]
    pub ports: Vec<String>,
    /// Environment `KEY=VALUE` for the workload, repeatable.
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// Label `key=value`, repeatable.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Time to live in seconds.
    #[arg(long)]
    pub ttl: Option<u64>,
    /// Image override (AMI id, slug...).
    #[arg(long)]
    pub image: Option<String>,
    /// OpenSSH public key line to install.
    #[arg(long = "ssh-public-key")]
    pub ssh_public_keys: Vec<String>,
    /// HTTP health check port.
    #[arg(long)]
    pub health_port: Option<u16>,
    /// HTTP health check path (default /).
    #[arg(long)]
    pub health_path: Option<String>,
    /// URL POSTed with the cleanup outcome.
    #[arg(long)]
    pub webhook: Option<String>,
    /// Deadline for `running` and for the health check, in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Print the final record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Deploy to a Kubernetes cluster instead of a VM: `k8s:<cluster>` (a cluster of
    /// `[operator.kubernetes]`). Needs --container.
    #[arg(long)]
    pub target: Option<String>,
    /// Kubernetes: payment tier (basic, standard, premium): replicas, requests and
    /// limits, autoscaling, GPUs.
    #[arg(long)]
    pub tier: Option<String>,
    /// Kubernetes: expose through a LoadBalancer Service (default ClusterIP only).
    #[arg(long)]
    pub public: bool,
    /// Kubernetes: at least 2 replicas and a PodDisruptionBudget.
    #[arg(long)]
    pub ha: bool,
    /// Kubernetes: pod runtimeClassName (e.g. kata).
    #[arg(long)]
    pub runtime_class: Option<String>,
    /// Kubernetes: use this existing namespace instead of one per service.
    #[arg(long)]
    pub namespace: Option<String>,
    /// Kubernetes: persistent volume size (e.g. 10Gi); the workload becomes a StatefulSet.
    #[arg(long)]
    pub volume: Option<String>,
    /// Kubernetes: where the volume is mounted.
    #[arg(long, default_value = "/data", requires = "volume")]
    pub volume_mount: String,
    /// Kubernetes: UID the container runs as (default: the image's numeric USER).
    #[arg(long)]
    pub run_as_user: Option<i64>,
}

/// The Kubernetes options from `--target k8s:<cluster>` and the k8s flags.
fn kubernetes_options(a: &DeployArgs, target: &str) -> anyhow::Result<KubernetesOptions> {
    let Some(cluster) = target.strip_prefix("k8s:").filter(|c| !c.is_empty()) else {
        anyhow::bail!(
            "--target {target:?}: expected k8s:<cluster> (a cluster of [operator.kubernetes]; see `bpr k8s clusters`)"
        );
    };
    if a.provider.is_some() || !a.candidates.is_empty() {
        anyhow::bail!(
            "--target k8s:{cluster} deploys to a cluster; do not combine it with --provider or --candidate"
        );
    }
    let mut k = KubernetesOptions::new(cluster);
    if let Some(t) = &a.tier {
        k.tier = t.parse().map_err(|e| anyhow::anyhow!("--tier: {e}"))?;
    } else if a.cpu.is_some() || a.memory.is_some() || a.gpus.is_some() {
        // Placement picks the cheapest tier whose replicas get what was asked.
        let request = blueprint_remote_providers::placement::Request {
            min_vcpus: a.cpu.unwrap_or(0.0),
            min_memory_gib: a.memory.unwrap_or(0.0),
            min_gpus: a.gpus.unwrap_or(0.0),
            ..blueprint_remote_providers::placement::Request::default()
        };
        k.tier = blueprint_remote_providers::placement::kubernetes_tier(&request)
            .map_err(|e| anyhow::anyhow!("--target k8s:{cluster}: {e}"))?;
    }
    if let Some(g) = a.gpus {
        if g < 0.0 || g.fract() != 0.0 {
            anyhow::bail!("--gpus {g}: Kubernetes requests whole GPUs; give 0, 1, 2...");
        }
        k.gpus = Some(g as u32);
    }
    k.public = a.public;
    k.high_availability = a.ha;
    k.runtime_class_name = a.runtime_class.clone();
    k.namespace = a.namespace.clone();
    k.run_as_user = a.run_as_user;
    k.storage = a.volume.as_ref().map(|size| StorageRequest {
        size: size.clone(),
        mount_path: a.volume_mount.clone(),
        storage_class: None,
    });
    Ok(k)
}

fn kv(what: &str, s: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("--{what} {s:?}: expected KEY=VALUE"))?;
    Ok((k.to_string(), v.to_string()))
}

fn parse_target(s: &str) -> anyhow::Result<InstanceTarget> {
    let parts: Vec<&str> = s.split('/').collect();
    let [provider, region, instance_type] = parts.as_slice() else {
        anyhow::bail!(
            "--candidate {s:?}: expected provider/region/type (e.g. aws/us-east-1/t3.micro)"
        );
    };
    Ok(InstanceTarget {
        provider: provider.to_string(),
        region: region.to_string(),
        zone: None,
        instance_type: instance_type.to_string(),
        spot: false,
        hourly_usd: None,
    })
}

/// The request and candidates from flags and/or the file; checked, nothing written.
pub(super) fn build_request(
    a: &DeployArgs,
) -> anyhow::Result<(DeployRequest, Vec<InstanceTarget>)> {
    let (mut req, mut candidates) = match &a.file {
        Some(path) => {
            let f =
                RequestFile::load(path).map_err(|e| anyhow::anyhow!("invalid request file {e}"))?;
            (f.request, f.candidates)
        }
        None => {
            let (Some(b), Some(s)) = (&a.blueprint, &a.service) else {
                anyhow::bail!("give --file, or --blueprint and --service");
            };
            (DeployRequest::new(b, s), Vec::new())
        }
    };
    if let Some(id) = &a.id {
        req.deployment_id = Some(id.clone());
    }
    if let Some(t) = a.ttl {
        req.ttl_secs = Some(t);
    }
    if let Some(i) = &a.image {
        req.image = Some(i.clone());
    }
    if let Some(w) = &a.webhook {
        req.cleanup_webhook = Some(w.clone());
    }
    req.ssh_public_keys
        .extend(a.ssh_public_keys.iter().cloned());
    for l in &a.labels {
        let (k, v) = kv("label", l)?;
        req.labels.insert(k, v);
    }
    if let Some(image) = &a.container {
        let mut ports = Vec::new();
        for p in &a.ports {
            let (host, container) = match p.split_once(':') {
                Some((h, c)) => (Some(h.parse::<u16>()?), c.parse::<u16>()?),
                None => (
                    None,
                    p.parse::<u16>()
                        .map_err(|e| anyhow::anyhow!("--port {p:?}: {e}"))?,
                ),
            };
            ports.push(PortSpec {
                container_port: container,
                host_port: host,
                public: true,
            });
        }
        let env: BTreeMap<String, String> = a
            .env
            .iter()
            .map(|e| kv("env", e))
            .collect::<anyhow::Result<_>>()?;
        req.workload = Some(WorkloadSpec {
            source: WorkloadSource::Container {
                image: image.clone(),
                args: vec![],
                env,
                ports,
            },
            cpu_limit: None,
            memory_limit_mib: None,
        });
    }
    if let Some(port) = a.health_port {
        req.health = Some(HealthCheck {
            port,
            path: a.health_path.clone(),
        });
    }
    if let Some(p) = &a.provider {
        candidates.push(InstanceTarget {
            provider: p.clone(),
            region: a.region.clone().unwrap_or_default(),
            zone: a.zone.clone(),
            instance_type: a.instance_type.clone().unwrap_or_default(),
            spot: a.spot,
            hourly_usd: None,
        });
    }
    for c in &a.candidates {
        candidates.push(parse_target(c)?);
    }
    let k8s_only = a.tier.is_some()
        || a.public
        || a.ha
        || a.runtime_class.is_some()
        || a.namespace.is_some()
        || a.volume.is_some()
        || a.run_as_user.is_some();
    match &a.target {
        Some(t) => {
            req.deployment_type = DeploymentType::Kubernetes;
            req.kubernetes = Some(kubernetes_options(a, t)?);
            req.validate()
                .map_err(|e| anyhow::anyhow!("invalid request: {e}"))?;
            return Ok((req, Vec::new()));
        }
        None if k8s_only => anyhow::bail!(
            "--tier, --public, --ha, --runtime-class, --namespace, --volume and --run-as-user are Kubernetes options: add --target k8s:<cluster>"
        ),
        None if req.deployment_type == DeploymentType::Kubernetes => {
            req.validate()
                .map_err(|e| anyhow::anyhow!("invalid request: {e}"))?;
            return Ok((req, Vec::new()));
        }
        None => {}
    }
    let ranked = a.cpu.is_some() || a.memory.is_some() || a.gpus.is_some();
    if candidates.is_empty() && req.candidates.is_empty() && ranked {
        // The library ranks every provider's offers for these requirements with
        // the operator's policy, as `bpr plan` shows them.
        let mut r = req.requirements.take().unwrap_or_default();
        r.min_vcpus = a.cpu.unwrap_or(r.min_vcpus);
        r.min_memory_gib = a.memory.unwrap_or(r.min_memory_gib);
        r.min_storage_gib = a.storage.unwrap_or(r.min_storage_gib);
        r.min_gpus = a.gpus.unwrap_or(r.min_gpus);
        if a.gpu_model.is_some() {
            r.gpu_model = a.gpu_model.clone();
        }
        if let Some(region) = &a.region {
            r.regions = vec![region.clone()];
        }
        r.allow_spot |= a.spot;
        req.requirements = Some(r);
        req.failover = Some(a.failover.max(1));
    }
    req.validate()
        .map_err(|e| anyhow::anyhow!("invalid request: {e}"))?;
    if candidates.is_empty() && req.candidates.is_empty() && req.requirements.is_none() {
        anyhow::bail!(
            "no candidate: give requirements to rank (--cpu, --memory, --gpus...), or --provider, --region and --type, --candidate provider/region/type, or [[candidates]] / [request.requirements] in the request file"
        );
    }
    Ok((req, candidates))
}
