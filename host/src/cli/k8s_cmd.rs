//! `bpr k8s render | clusters | create | delete | list`: review the Kubernetes
//! objects of a service before deploying, check the clusters of
//! `[operator.kubernetes]`, and create, delete and list the managed clusters a
//! provider makes (see `clusters_cmd`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};

use super::table;
use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::kubernetes::{
    Cluster, ClusterConfig, DeploymentRequest, HealthProbe, ScalingPolicy, ServicePort,
    StorageRequest, Tier, render,
};

/// How long `bpr k8s clusters` waits for each API server.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// `bpr k8s ...`
#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// Print the manifests a deployment would apply (multi-document YAML), for review.
    Render(Box<RenderArgs>),
    /// List the clusters of `[operator.kubernetes]` and whether each answers; exits
    /// non-zero when one does not.
    Clusters,
    /// Create a managed cluster on a provider (EKS, DOKS, GKE, AKS, VKE), tracked
    /// like a VM: time to live, crash recovery, history. Once it runs it is the
    /// target `k8s:<name>`.
    Create(Box<super::clusters_cmd::CreateArgs>),
    /// Delete a managed cluster made with `bpr k8s create` (by name or record id).
    Delete(super::clusters_cmd::DeleteArgs),
    /// The managed clusters made with `bpr k8s create`.
    List(super::clusters_cmd::ListArgs),
}

/// Flags of `bpr k8s render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Blueprint id.
    #[arg(long)]
    pub blueprint_id: u64,
    /// Service instance id.
    #[arg(long)]
    pub service_id: u64,
    /// Container image reference.
    #[arg(long)]
    pub image: String,
    /// Payment tier: basic, standard or premium.
    #[arg(long, default_value = "basic")]
    pub tier: String,
    /// A TCP port the service listens on (repeatable).
    #[arg(long = "port")]
    pub ports: Vec<u16>,
    /// Port of the health endpoint: adds readiness and liveness probes.
    #[arg(long)]
    pub health_port: Option<u16>,
    /// HTTP path of the health endpoint (needs --health-port); without it the probes
    /// open a TCP connection.
    #[arg(long, requires = "health_port")]
    pub health_path: Option<String>,
    /// Persistent storage size (e.g. 10Gi): renders a StatefulSet.
    #[arg(long)]
    pub storage: Option<String>,
    /// Where the storage is mounted.
    #[arg(long, default_value = "/data", requires = "storage")]
    pub storage_mount: String,
    /// GPUs per replica (default: the tier's).
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Expose through a LoadBalancer Service.
    #[arg(long)]
    pub public: bool,
    /// High availability: at least 2 replicas and a PodDisruptionBudget.
    #[arg(long)]
    pub ha: bool,
    /// Pod runtimeClassName (e.g. kata).
    #[arg(long)]
    pub runtime_class: Option<String>,
    /// Environment variable K=V (repeatable).
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// Deployment id put in the labels.
    #[arg(long, default_value = "preview")]
    pub deployment_id: String,
}

/// The request `bpr k8s render` renders, with the operator's scaling bounds.
pub(crate) fn build_request(
    args: &RenderArgs,
    scaling: &ScalingPolicy,
) -> anyhow::Result<DeploymentRequest> {
    let tier: Tier = args.tier.parse().context("--tier")?;
    let mut request = DeploymentRequest::new(
        args.deployment_id.clone(),
        args.blueprint_id,
        args.service_id,
        args.image.clone(),
        tier,
    );
    request.scaling = *scaling;
    for (i, port) in args.ports.iter().enumerate() {
        if *port == 0 {
            bail!("--port #{}: 0 is not a port; give 1-65535", i + 1);
        }
        if args.ports[..i].contains(port) {
            bail!("--port {port} is given twice");
        }
        // Empty name: the renderer names it `p<port>`.
        request.ports.push(ServicePort::tcp("", *port));
    }
    request.health = args.health_port.map(|port| HealthProbe {
        port,
        path: args.health_path.clone(),
    });
    request.storage = args.storage.as_ref().map(|size| StorageRequest {
        size: size.clone(),
        mount_path: args.storage_mount.clone(),
        storage_class: None,
    });
    request.gpus = args.gpus;
    request.public = args.public;
    request.high_availability = args.ha;
    request.runtime_class_name = args.runtime_class.clone();
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--env `{kv}`: expected KEY=VALUE");
        };
        if request.env.insert(k.to_owned(), v.to_owned()).is_some() {
            bail!("--env {k} is given twice");
        }
    }
    Ok(request)
}

/// The YAML stream `bpr k8s render` prints; the renderer checks names, quantities and
/// everything else it validates.
pub(crate) fn render_yaml(args: &RenderArgs, config: &Config) -> anyhow::Result<String> {
    let request = build_request(args, &config.operator.scaling)?;
    let manifests = render(&request)?;
    Ok(manifests.to_yaml_stream()?)
}

/// Connects one configured cluster and asks its API server for its version, under
/// [`PROBE_TIMEOUT`]. `Ok` carries the server's `gitVersion`.
pub(crate) async fn probe(config: &ClusterConfig) -> Result<String, String> {
    let cluster = Cluster::connect(config).await.map_err(|e| e.to_string())?;
    version_of(&config.name, &cluster).await
}

/// The API server's `gitVersion`, under [`PROBE_TIMEOUT`].
async fn version_of(name: &str, cluster: &Cluster) -> Result<String, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, cluster.client().apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(e)) => Err(format!("cluster `{name}`: API server did not answer: {e}")),
        Err(_) => Err(format!(
            "cluster `{name}`: API server did not answer within {}s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

/// Run a `k8s` subcommand.
pub async fn run(cmd: K8sCommand, config: Config) -> anyhow::Result<ExitCode> {
    match cmd {
        K8sCommand::Create(args) => {
            let mut config = config;
            config.host.watch = false;
            super::clusters_cmd::create(*args, config).await
        }
        K8sCommand::Delete(args) => {
            let mut config = config;
            config.host.watch = false;
            super::clusters_cmd::delete(args, config).await
        }
        K8sCommand::List(args) => {
            let mut config = config;
            config.host.watch = false;
            super::clusters_cmd::list(args, config).await
        }
        K8sCommand::Render(args) => {
            print!("{}", render_yaml(&args, &config)?);
            Ok(ExitCode::SUCCESS)
        }
        K8sCommand::Clusters => {
            let k8s = config.operator.kubernetes.clone();
            if k8s.clusters.is_empty() && k8s.managed.is_empty() {
                bail!(
                    "no clusters in [operator.kubernetes] of {}; add clusters = [{{ name, kubeconfig, context }}] or managed = [{{ name, provider, region, id }}]",
                    config.origin
                );
            }
            let mut rows = Vec::new();
            let mut errors = Vec::new();
            let mut status_of = |result: Result<String, String>| match result {
                Ok(version) => format!("ok ({version})"),
                Err(e) => {
                    errors.push(e);
                    "failed (see error below)".to_owned()
                }
            };
            for c in &k8s.clusters {
                let cc = ClusterConfig {
                    name: c.name.clone(),
                    kubeconfig: c.kubeconfig.clone(),
                    context: c.context.clone(),
                };
                rows.push(vec![
                    c.name.clone(),
                    c.kubeconfig.display().to_string(),
                    c.context.clone().unwrap_or_else(|| "(current)".into()),
                    status_of(probe(&cc).await),
                ]);
            }
            if !k8s.managed.is_empty() {
                // Managed clusters are looked up through the provider that made them.
                let mut config = config;
                config.host.watch = false;
                let host = blueprint_remote_providers::Host::start(config).await?;
                for m in &k8s.managed {
                    let result = match host.cluster(&m.name).await {
                        Ok(cluster) => version_of(&m.name, &cluster).await,
                        Err(e) => Err(e.to_string()),
                    };
                    rows.push(vec![
                        m.name.clone(),
                        format!("managed by {} ({}, id {})", m.provider, m.region, m.id),
                        "-".into(),
                        status_of(result),
                    ]);
                }
            }
            print!(
                "{}",
                table::render(&["NAME", "KUBECONFIG", "CONTEXT", "STATUS"], &rows)
            );
            for e in &errors {
                eprintln!("error: {e}");
            }
            Ok(if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
