//! `bpr deploy | status | terminate | cleanup | history`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::table;
use crate::Host;
use crate::config::Config;
use crate::kubernetes::{StorageRequest, Tier, WorkloadStatus};
use crate::provisioning::{
    DeployEvent, DeployOptions, DeployRequest, HealthCheck, KubernetesChange, KubernetesOptions,
    RequestFile, SupervisorOptions, Target,
};
use crate::tracking::{DeploymentRecord, DeploymentStatus, DeploymentType};
use crate::workload::{PortSpec, WorkloadSource, WorkloadSpec};

/// Deployment commands.
#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Deploy a service: from flags or a request file (.json/.toml); shows the
    /// plan and the progress through the states.
    Deploy(Box<DeployArgs>),
    /// Show deployments (all, or one) as a table or JSON.
    Status {
        /// One deployment.
        id: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Terminate a deployment: delete its instance, mark it terminated.
    Terminate {
        /// Deployment id.
        id: String,
    },
    /// Terminate expired deployments now, finish what crashed runs left
    /// (recovery), and delete what failed deployments still hold.
    Cleanup,
    /// Kubernetes deployments: change the image and/or the payment tier, and wait for
    /// the rollout.
    Update {
        /// Deployment id.
        id: String,
        /// New container image.
        #[arg(long)]
        image: Option<String>,
        /// New payment tier: basic, standard or premium.
        #[arg(long)]
        tier: Option<String>,
        /// Rollout deadline in seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Kubernetes deployments: payment expired, scale to zero (storage, Service and
    /// namespace stay).
    Suspend {
        /// Deployment id.
        id: String,
        /// Deadline in seconds for the pods to go.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Kubernetes deployments: payment renewed, scale back to the tier.
    Resume {
        /// Deployment id.
        id: String,
        /// New time to live in seconds from now (the renewed payment period).
        #[arg(long)]
        ttl: Option<u64>,
        /// Rollout deadline in seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
    },
    /// Show a deployment's transitions and the candidates it tried.
    History {
        /// Deployment id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

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
    /// Deployment id to use (default dep-<uuid>).
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
        let request = crate::placement::Request {
            min_vcpus: a.cpu.unwrap_or(0.0),
            min_memory_gib: a.memory.unwrap_or(0.0),
            min_gpus: a.gpus.unwrap_or(0.0),
            ..crate::placement::Request::default()
        };
        k.tier = match crate::placement::kubernetes_tier(&request)
            .map_err(|e| anyhow::anyhow!("--target k8s:{cluster}: {e}"))?
        {
            crate::placement::Tier::Basic => Tier::Basic,
            crate::placement::Tier::Standard => Tier::Standard,
            crate::placement::Tier::Premium => Tier::Premium,
        };
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

fn parse_target(s: &str) -> anyhow::Result<Target> {
    let parts: Vec<&str> = s.split('/').collect();
    let [provider, region, instance_type] = parts.as_slice() else {
        anyhow::bail!(
            "--candidate {s:?}: expected provider/region/type (e.g. aws/us-east-1/t3.micro)"
        );
    };
    Ok(Target {
        provider: provider.to_string(),
        region: region.to_string(),
        zone: None,
        instance_type: instance_type.to_string(),
        spot: false,
        hourly_usd: None,
    })
}

/// The request and candidates from flags and/or the file; checked, nothing written.
fn build_request(a: &DeployArgs) -> anyhow::Result<(DeployRequest, Vec<Target>)> {
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
        candidates.push(Target {
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
    req.validate()
        .map_err(|e| anyhow::anyhow!("invalid request: {e}"))?;
    if candidates.is_empty() && a.cpu.is_none() && a.memory.is_none() && a.gpus.is_none() {
        anyhow::bail!(
            "no candidate: give requirements to rank (--cpu, --memory, --gpus...), or --provider, --region and --type, --candidate provider/region/type, or [[candidates]] in the request file"
        );
    }
    Ok((req, candidates))
}

/// The best offers for the flags' requirements, ranked as `bpr plan` ranks
/// them, as deployment candidates.
async fn ranked_candidates(a: &DeployArgs, host: &Host) -> anyhow::Result<Vec<Target>> {
    use crate::cli::plan_cmd::{PlanArgs, request_and_policy};
    let plan = PlanArgs {
        cpu: a.cpu.unwrap_or(0.0),
        memory: a.memory.unwrap_or(0.0),
        storage: a.storage.unwrap_or(0.0),
        gpus: a.gpus.unwrap_or(0.0),
        gpu_model: a.gpu_model.clone(),
        region: a.region.iter().cloned().collect(),
        confidential: false,
        arch: None,
        spot: a.spot,
        ha: false,
        tier: None,
        provider: Vec::new(),
        limit: a.failover,
        refresh: false,
        json: false,
        explain: false,
    };
    let (request, mut policy) = request_and_policy(&plan, host.config())?;
    policy.max_candidates = a.failover.max(1);
    let pricing = host.pricing()?;
    let options = crate::pricing::PlanOptions::default();
    let ranking = pricing
        .plan(&request, &policy, &options, &|_| {})
        .await?
        .ranking;
    if ranking.candidates.is_empty() {
        anyhow::bail!("no offer meets the requirements; see `bpr plan ... --explain`");
    }
    Ok(ranking
        .candidates
        .iter()
        .take(a.failover.max(1))
        .map(|c| Target {
            provider: c.offer.provider.clone(),
            region: c.offer.region.clone(),
            zone: c.offer.zone.clone(),
            instance_type: c.offer.instance_type.clone(),
            spot: c.spot,
            hourly_usd: Some(c.hourly_usd),
        })
        .collect())
}

const CHAIN: [DeploymentStatus; 5] = [
    DeploymentStatus::Planned,
    DeploymentStatus::Provisioning,
    DeploymentStatus::Provisioned,
    DeploymentStatus::Deploying,
    DeploymentStatus::Active,
];

fn progress_line(status: DeploymentStatus, reason: &str) -> String {
    let pos = CHAIN.iter().position(|s| *s == status);
    let bar: String = match pos {
        Some(p) => (0..CHAIN.len())
            .map(|i| if i <= p { '#' } else { '-' })
            .collect(),
        None => "x".repeat(CHAIN.len()), // terminating, terminated, failed: off the way up
    };
    format!("[{bar}] {status:<12} {reason}")
}

fn when(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

fn status_table(records: &[DeploymentRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.status.to_string(),
                format!(
                    "{}/{}/{}",
                    r.provider.as_deref().unwrap_or("-"),
                    r.region.as_deref().unwrap_or("-"),
                    r.instance_type.as_deref().unwrap_or("-")
                ),
                match (&r.instance_id, r.released_at) {
                    (Some(i), None) => i.clone(),
                    (Some(i), Some(_)) => format!("{i} (deleted)"),
                    (None, _) => "-".into(),
                },
                r.address.clone().unwrap_or_else(|| "-".into()),
                when(r.expires_at),
                r.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "STATUS",
            "PROVIDER/REGION/TYPE",
            "INSTANCE",
            "ADDRESS",
            "EXPIRES",
            "LAST ERROR",
        ],
        &rows,
    )
}

fn k8s_opts(timeout_secs: u64) -> DeployOptions {
    DeployOptions {
        health_timeout: Duration::from_secs(timeout_secs),
        ..DeployOptions::default()
    }
}

fn workload_json(s: &WorkloadStatus) -> serde_json::Value {
    serde_json::json!({
        "kind": s.kind.as_str(),
        "desired": s.desired,
        "current": s.current,
        "ready": s.ready,
        "available": s.available,
        "updated": s.updated,
        "rolled_out": s.rolled_out(),
        "conditions": s.conditions.iter().map(|c| serde_json::json!({
            "type": c.type_, "status": c.status, "reason": c.reason, "message": c.message,
        })).collect::<Vec<_>>(),
    })
}

fn workload_text(s: &WorkloadStatus) -> String {
    let mut out = format!(
        "workload: {} {}/{} ready, {} available, {} updated, {} pods{}\n",
        s.kind.as_str(),
        s.ready,
        s.desired,
        s.available,
        s.updated,
        s.current,
        if s.rolled_out() { " (rolled out)" } else { "" }
    );
    for c in &s.conditions {
        out.push_str(&format!(
            "  {}={} {} {}\n",
            c.type_,
            c.status,
            c.reason.as_deref().unwrap_or(""),
            c.message.as_deref().unwrap_or("")
        ));
    }
    out
}

/// Run a deployment subcommand.
pub async fn run(cmd: DeployCommand, mut config: Config) -> anyhow::Result<ExitCode> {
    config.host.watch = false;
    match cmd {
        DeployCommand::Deploy(a) => {
            // Checked before the host starts: an invalid request writes nothing.
            let (req, mut candidates) = build_request(&a)?;
            let host = Host::start(config).await?;
            let k8s = req.deployment_type == DeploymentType::Kubernetes;
            if k8s {
                let k = req
                    .kubernetes
                    .as_ref()
                    .map(|k| (k.cluster.as_str(), k.tier));
                if let Some((cluster, tier)) = k {
                    println!("Plan: Kubernetes cluster {cluster}, tier {tier}");
                }
            } else if candidates.is_empty() {
                candidates = ranked_candidates(&a, &host).await?;
            }
            if !k8s {
                println!("Plan ({} candidate(s), tried in order):", candidates.len());
                let rows: Vec<Vec<String>> = candidates
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        vec![
                            (i + 1).to_string(),
                            c.provider.clone(),
                            c.region.clone(),
                            c.zone.clone().unwrap_or_else(|| "-".into()),
                            c.instance_type.clone(),
                            if c.spot { "spot" } else { "on-demand" }.into(),
                            c.hourly_usd
                                .map(|p| format!("{p:.4}"))
                                .unwrap_or_else(|| "-".into()),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    table::render(
                        &["#", "PROVIDER", "REGION", "ZONE", "TYPE", "MARKET", "USD/H"],
                        &rows
                    )
                );
            }
            let opts = DeployOptions {
                running_timeout: Duration::from_secs(a.timeout_secs),
                health_timeout: Duration::from_secs(a.timeout_secs),
                progress: Some(Arc::new(|e: &DeployEvent| match e {
                    DeployEvent::Status { id, status, reason } => {
                        if *status == DeploymentStatus::Planned {
                            println!("deployment {id}");
                        }
                        println!("{}", progress_line(*status, reason));
                    }
                    DeployEvent::Trying { n, target } => {
                        println!("  candidate {n}: {}", target.label())
                    }
                    DeployEvent::AttemptDone { n, outcome, detail } => {
                        println!(
                            "  candidate {n}: {} ({detail})",
                            serde_json::to_value(outcome)
                                .ok()
                                .and_then(|v| v.as_str().map(String::from))
                                .unwrap_or_default()
                        )
                    }
                })),
                ..DeployOptions::default()
            };
            let rec = host.deploy_with(req, candidates, &opts).await?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rec)?);
            } else {
                print!("{}", status_table(std::slice::from_ref(&rec)));
            }
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Status { id, json } => {
            let host = Host::start(config).await?;
            let mut records = host.status(id.as_deref())?;
            // One Kubernetes deployment: also what its cluster reports now (the
            // Service address first: reading it may record a newly assigned one).
            let mut live = None;
            if let (Some(id), [r]) = (&id, records.as_slice())
                && r.deployment_type == DeploymentType::Kubernetes
                && r.holds_resources()
            {
                let service = host.service_address(id).await.map_err(|e| e.to_string());
                let workload = host.workload_status(id).await.map_err(|e| e.to_string());
                records = host.status(Some(id))?;
                live = Some((workload, service));
            }
            if json {
                let mut value = serde_json::to_value(&records)?;
                if let (Some((workload, service)), Some(first)) = (&live, value.get_mut(0)) {
                    first["workload"] = match workload {
                        Ok(s) => workload_json(s),
                        Err(e) => serde_json::json!({ "error": e }),
                    };
                    first["service"] = match service {
                        Ok(a) => serde_json::to_value(a)?,
                        Err(e) => serde_json::json!({ "error": e }),
                    };
                }
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                print!("{}", status_table(&records));
                if let Some((workload, service)) = live {
                    match workload {
                        Ok(s) => print!("{}", workload_text(&s)),
                        Err(e) => println!("workload: cannot read it from the cluster: {e}"),
                    }
                    match service {
                        Ok(Some(a)) => println!("service: {}", a.describe()),
                        Ok(None) => println!("service: none (the deployment exposes no ports)"),
                        Err(e) => println!("service: cannot read it from the cluster: {e}"),
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Terminate { id } => {
            let host = Host::start(config).await?;
            let rec = host.terminate(&id).await?;
            println!("{}", progress_line(rec.status, "deployment terminated"));
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Update {
            id,
            image,
            tier,
            timeout_secs,
        } => {
            let tier: Option<Tier> = tier
                .map(|t| t.parse())
                .transpose()
                .map_err(|e| anyhow::anyhow!("--tier: {e}"))?;
            if image.is_none() && tier.is_none() {
                anyhow::bail!("nothing to update: give --image and/or --tier");
            }
            let host = Host::start(config).await?;
            let status = host
                .update(
                    &id,
                    &KubernetesChange { image, tier },
                    &k8s_opts(timeout_secs),
                )
                .await?;
            print!("{}", workload_text(&status));
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Suspend { id, timeout_secs } => {
            let host = Host::start(config).await?;
            let status = host.suspend(&id, &k8s_opts(timeout_secs)).await?;
            print!("{}", workload_text(&status));
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Resume {
            id,
            ttl,
            timeout_secs,
        } => {
            if ttl == Some(0) {
                anyhow::bail!(
                    "--ttl must be at least 1 second (omit it to keep the current expiry)"
                );
            }
            let host = Host::start(config).await?;
            // The renewed period first, so the supervisor does not reap it meanwhile.
            if let Some(t) = ttl {
                let rec = host.tracker().set_ttl(&id, Some(t))?;
                println!("expires at {}", when(rec.expires_at));
            }
            let status = host.resume(&id, &k8s_opts(timeout_secs)).await?;
            print!("{}", workload_text(&status));
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Cleanup => {
            let host = Host::start(config).await?;
            let (done, errors) = host.cleanup_once(&SupervisorOptions::default()).await;
            for id in &done {
                println!("terminated {id}");
            }
            for (id, e) in &errors {
                eprintln!("{id}: {e}");
            }
            println!("{} terminated, {} error(s)", done.len(), errors.len());
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        DeployCommand::History { id, json } => {
            let host = Host::start(config).await?;
            let history = host.history(&id)?;
            let attempts = host.tracker().attempts(&id)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "history": history, "attempts": attempts })
                    )?
                );
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = history
                .iter()
                .map(|t| {
                    vec![
                        when(Some(t.at)),
                        t.from.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
                        t.to.to_string(),
                        t.reason.clone(),
                    ]
                })
                .collect();
            print!("{}", table::render(&["AT", "FROM", "TO", "REASON"], &rows));
            let rows: Vec<Vec<String>> = attempts
                .iter()
                .map(|a| {
                    vec![
                        a.n.to_string(),
                        format!("{}/{}/{}", a.provider, a.region, a.instance_type),
                        serde_json::to_value(a.outcome)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                        a.instance_id.clone().unwrap_or_else(|| "-".into()),
                        a.detail.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            println!();
            print!(
                "{}",
                table::render(&["#", "CANDIDATE", "OUTCOME", "INSTANCE", "DETAIL"], &rows)
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
