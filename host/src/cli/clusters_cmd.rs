//! `bpr k8s create | delete | list`: managed clusters a provider creates (EKS,
//! DOKS, GKE, AKS, VKE), tracked like a VM (TTL, crash recovery, history).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;

use super::deploy::output::{progress_line, when};
use super::table;
use blueprint_remote_providers::Host;
use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::provisioning::{
    ClusterOptions, ClusterRequest, DeployEvent, DeployOptions, NodePool,
};
use blueprint_remote_providers::tracking::{DeploymentRecord, DeploymentStatus};

/// Flags of `bpr k8s create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Cluster name: the provider's cluster name and `k8s:<name>` once it runs
    /// (`[a-z][a-z0-9-]`, at most 40 characters).
    #[arg(long, required_unless_present = "file")]
    pub name: Option<String>,
    /// Provider that creates it (aws, digitalocean, gcp, azure, vultr...).
    #[arg(long, required_unless_present = "file")]
    pub provider: Option<String>,
    /// Region (or zone, for providers with zonal clusters).
    #[arg(long, required_unless_present = "file")]
    pub region: Option<String>,
    /// Machine type of the nodes of the one node pool.
    #[arg(long, required_unless_present = "file")]
    pub node_type: Option<String>,
    /// Nodes in the pool.
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    /// Autoscaling lower bound (with --max-nodes).
    #[arg(long, requires = "max_nodes")]
    pub min_nodes: Option<u32>,
    /// Autoscaling upper bound (with --min-nodes).
    #[arg(long, requires = "min_nodes")]
    pub max_nodes: Option<u32>,
    /// Spot nodes.
    #[arg(long)]
    pub spot: bool,
    /// Node disk in GiB (default: the provider's).
    #[arg(long)]
    pub disk_gib: Option<u32>,
    /// Kubernetes version (default: the provider's).
    #[arg(long)]
    pub kubernetes_version: Option<String>,
    /// Label K=V stored on the cluster (repeatable).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Time to live in seconds: the cluster is deleted when it runs out.
    #[arg(long)]
    pub ttl: Option<u64>,
    /// What the cluster costs per hour (for cost accounting).
    #[arg(long)]
    pub hourly_usd: Option<f64>,
    /// The whole request from a file (.toml or .json; several node pools);
    /// the flags above are then not allowed.
    #[arg(long, conflicts_with_all = ["name", "provider", "region", "node_type"])]
    pub file: Option<PathBuf>,
    /// Return once the provider accepted it; `bpr cleanup` (or `bpr serve`)
    /// marks it active when it runs.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the cluster to run, in seconds.
    #[arg(long, default_value_t = 1800)]
    pub timeout_secs: u64,
    /// Print the record as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `bpr k8s delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Cluster name or record id.
    pub name: String,
    /// Also terminate the Kubernetes deployments running on it.
    #[arg(long)]
    pub force: bool,
    /// How long the deletion may take, in seconds (it continues in `bpr cleanup`).
    #[arg(long, default_value_t = 1800)]
    pub timeout_secs: u64,
}

/// Flags of `bpr k8s list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Also the terminated and failed ones.
    #[arg(long)]
    pub all: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The request `bpr k8s create` makes from its flags or file.
pub(crate) fn build_request(a: &CreateArgs) -> anyhow::Result<ClusterRequest> {
    let mut req = match &a.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let is_json = path.extension().is_some_and(|e| e == "json");
            if is_json {
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a cluster request", path.display()))?
            } else {
                toml::from_str(&text)
                    .with_context(|| format!("{} is not a cluster request", path.display()))?
            }
        }
        None => {
            // clap makes these required without --file.
            let need = |v: &Option<String>, flag: &str| {
                v.clone()
                    .ok_or_else(|| anyhow::anyhow!("--{flag} is required without --file"))
            };
            let mut req = ClusterRequest::new(
                need(&a.name, "name")?,
                need(&a.provider, "provider")?,
                need(&a.region, "region")?,
                need(&a.node_type, "node-type")?,
                a.nodes,
            );
            req.node_pools = vec![NodePool {
                name: "pool-1".into(),
                instance_type: need(&a.node_type, "node-type")?,
                count: a.nodes,
                min_count: a.min_nodes,
                max_count: a.max_nodes,
                spot: a.spot,
                disk_gib: a.disk_gib,
            }];
            req.kubernetes_version = a.kubernetes_version.clone();
            req
        }
    };
    let mut labels = BTreeMap::new();
    for kv in &a.labels {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--label `{kv}`: expected KEY=VALUE");
        };
        if labels.insert(k.to_string(), v.to_string()).is_some() {
            bail!("--label {k} is given twice");
        }
    }
    req.labels.extend(labels);
    if a.ttl.is_some() {
        req.ttl_secs = a.ttl;
    }
    if a.hourly_usd.is_some() {
        req.hourly_usd = a.hourly_usd;
    }
    // Checked before the host starts: an invalid request writes nothing.
    req.validate()?;
    Ok(req)
}

fn progress() -> DeployOptions {
    DeployOptions {
        progress: Some(Arc::new(|e: &DeployEvent| {
            if let DeployEvent::Status { id, status, reason } = e {
                if *status == DeploymentStatus::Planned {
                    println!("cluster record {id}");
                }
                let reason = match status {
                    DeploymentStatus::Failed => "(see the error below)",
                    _ => reason.as_str(),
                };
                println!("{}", progress_line(*status, reason));
            }
        })),
        ..DeployOptions::default()
    }
}

/// The table `bpr k8s list` prints.
pub(crate) fn clusters_table(records: &[DeploymentRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.cluster.clone().unwrap_or_else(|| "-".into()),
                r.status.to_string(),
                format!(
                    "{}/{}",
                    r.provider.as_deref().unwrap_or("-"),
                    r.region.as_deref().unwrap_or("-")
                ),
                r.instance_type.clone().unwrap_or_else(|| "-".into()),
                match (&r.instance_id, r.released_at) {
                    (Some(i), None) => i.clone(),
                    (Some(i), Some(_)) => format!("{i} (deleted)"),
                    (None, _) => "-".into(),
                },
                r.address.clone().unwrap_or_else(|| "-".into()),
                when(r.expires_at),
                r.id.clone(),
            ]
        })
        .collect();
    table::render(
        &[
            "NAME",
            "STATUS",
            "PROVIDER/REGION",
            "NODES",
            "CLUSTER ID",
            "API SERVER",
            "EXPIRES",
            "RECORD",
        ],
        &rows,
    )
}

/// `bpr k8s create`.
pub async fn create(a: CreateArgs, config: Config) -> anyhow::Result<ExitCode> {
    let req = build_request(&a)?;
    let host = Host::start(config).await?;
    let opts = ClusterOptions {
        deploy: progress(),
        running_timeout: Duration::from_secs(a.timeout_secs),
        wait: !a.no_wait,
    };
    let rec = host.create_cluster(req, &opts).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        print!("{}", clusters_table(std::slice::from_ref(&rec)));
        if rec.status == DeploymentStatus::Active
            && let Some(name) = &rec.cluster
        {
            println!("deploy to it with --target k8s:{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `bpr k8s delete`.
pub async fn delete(a: DeleteArgs, config: Config) -> anyhow::Result<ExitCode> {
    let host = Host::start(config).await?;
    let opts = DeployOptions {
        delete_timeout: Duration::from_secs(a.timeout_secs),
        ..progress()
    };
    let rec = host.delete_cluster(&a.name, a.force, &opts).await?;
    println!(
        "{}",
        progress_line(
            rec.status,
            &format!(
                "cluster {} deleted",
                rec.cluster.as_deref().unwrap_or(&rec.id)
            )
        )
    );
    Ok(ExitCode::SUCCESS)
}

/// `bpr k8s list`.
pub async fn list(a: ListArgs, config: Config) -> anyhow::Result<ExitCode> {
    let host = Host::start(config).await?;
    let records: Vec<DeploymentRecord> = host
        .managed_clusters()?
        .into_iter()
        .filter(|r| a.all || !r.status.is_final() || r.holds_resources())
        .collect();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&records)?);
    } else if records.is_empty() {
        println!("no managed clusters (create one with `bpr k8s create`)");
    } else {
        print!("{}", clusters_table(&records));
    }
    Ok(ExitCode::SUCCESS)
}
