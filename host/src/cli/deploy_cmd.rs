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
use crate::provisioning::{
    DeployEvent, DeployOptions, DeployRequest, HealthCheck, RequestFile, SupervisorOptions, Target,
};
use crate::tracking::{DeploymentRecord, DeploymentStatus};
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
    let pricing = crate::pricing::PricingService::new(host.clone())?;
    let report = pricing.gather(false, &|_| {}).await;
    let ranking = crate::placement::rank_offers(report.offers, &request, &policy)?;
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

/// Run a deployment subcommand.
pub async fn run(cmd: DeployCommand, mut config: Config) -> anyhow::Result<ExitCode> {
    config.host.watch = false;
    match cmd {
        DeployCommand::Deploy(a) => {
            // Checked before the host starts: an invalid request writes nothing.
            let (req, mut candidates) = build_request(&a)?;
            let host = Host::start(config).await?;
            if candidates.is_empty() {
                candidates = ranked_candidates(&a, &host).await?;
            }
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
            let records = host.status(id.as_deref())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&records)?);
            } else {
                print!("{}", status_table(&records));
            }
            Ok(ExitCode::SUCCESS)
        }
        DeployCommand::Terminate { id } => {
            let host = Host::start(config).await?;
            let rec = host.terminate(&id).await?;
            println!("{}", progress_line(rec.status, "deployment terminated"));
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
