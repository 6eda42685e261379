//! `bpr service initiated | terminated | renew | reconcile`: the service events
//! Blueprint Manager sends through the embedding API, from the shell (to try
//! the flow by hand, or replay an event). Each prints JSON.

use std::collections::HashMap;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use blueprint_remote_providers::Host;
use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::embedding::{
    DeployArtifact, EmbeddingOptions, RemoteDeployments, ResourceSpec, ServiceKey,
};
use blueprint_remote_providers::workload::PortSpec;

/// Service events.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// A service was activated: deploy it (or return the deployment it has).
    Initiated(Box<InitiatedArgs>),
    /// A service was terminated: terminate its deployment.
    Terminated(KeyArgs),
    /// A payment arrived: the service's deployment lives `--ttl` seconds more.
    Renew {
        /// The service.
        #[command(flatten)]
        key: KeyArgs,
        /// New time to live in seconds from now.
        #[arg(long)]
        ttl: u64,
    },
    /// After a restart: terminate the deployments of services not listed.
    Reconcile {
        /// An active service, `<blueprint>/<service>` (repeatable).
        #[arg(long = "active")]
        active: Vec<ServiceKey>,
    },
}

/// The service a command is about.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// Blueprint id.
    #[arg(long)]
    pub blueprint: u64,
    /// Service id.
    #[arg(long)]
    pub service: u64,
}

/// `bpr service initiated` flags: upstream's `ResourceSpec` and `DeployArtifact`.
#[derive(Debug, Args)]
pub struct InitiatedArgs {
    /// The service.
    #[command(flatten)]
    pub key: KeyArgs,
    /// CPU cores (default 2).
    #[arg(long)]
    pub cpu: Option<f32>,
    /// Memory in GB (default 4).
    #[arg(long)]
    pub memory: Option<f32>,
    /// Storage in GB (default 20).
    #[arg(long)]
    pub storage: Option<f32>,
    /// GPUs.
    #[arg(long)]
    pub gpus: Option<u32>,
    /// Spot capacity may be used.
    #[arg(long)]
    pub spot: bool,
    /// Container image to run.
    #[arg(long, conflicts_with = "archive")]
    pub container: Option<String>,
    /// Release archive URL holding the executable (with --sha256 and --binary).
    #[arg(long, requires_all = ["sha256", "binary"])]
    pub archive: Option<String>,
    /// sha256 of the archive.
    #[arg(long)]
    pub sha256: Option<String>,
    /// File name of the executable in the archive.
    #[arg(long)]
    pub binary: Option<String>,
    /// Environment `KEY=VALUE`, repeatable.
    #[arg(long = "env")]
    pub env: Vec<String>,
    /// Published port, repeatable.
    #[arg(long = "port")]
    pub ports: Vec<u16>,
    /// Time to live in seconds.
    #[arg(long)]
    pub ttl: Option<u64>,
}

/// Run a service command.
pub async fn run(cmd: ServiceCommand, mut config: Config) -> anyhow::Result<ExitCode> {
    config.host.watch = false;
    let mut options = EmbeddingOptions::default();
    if let ServiceCommand::Initiated(a) = &cmd {
        options.default_ttl_secs = a.ttl;
        options.ports = a
            .ports
            .iter()
            .map(|&p| PortSpec {
                container_port: p,
                host_port: None,
                public: true,
            })
            .collect();
    }
    let host = Host::start(config).await?;
    let remote = RemoteDeployments::new(host, options);
    let out = match cmd {
        ServiceCommand::Initiated(a) => {
            let defaults = ResourceSpec::default();
            let spec = ResourceSpec {
                cpu: a.cpu.unwrap_or(defaults.cpu),
                memory_gb: a.memory.unwrap_or(defaults.memory_gb),
                storage_gb: a.storage.unwrap_or(defaults.storage_gb),
                gpu_count: a.gpus,
                allow_spot: a.spot,
                qos: Default::default(),
            };
            let artifact = match (&a.container, &a.archive) {
                (Some(image), _) => Some(DeployArtifact::ContainerImage(image.clone())),
                (None, Some(url)) => Some(DeployArtifact::GithubBinary {
                    archive_url: url.clone(),
                    sha256_hex: a.sha256.clone().unwrap_or_default(),
                    binary_name: a.binary.clone().unwrap_or_default(),
                }),
                (None, None) => None,
            };
            let mut env = HashMap::new();
            for e in &a.env {
                let (k, v) = e
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--env {e:?}: expected KEY=VALUE"))?;
                env.insert(k.to_string(), v.to_string());
            }
            let rec = remote
                .on_service_initiated(a.key.blueprint, a.key.service, Some(spec), artifact, env)
                .await?;
            serde_json::to_value(rec)?
        }
        ServiceCommand::Terminated(k) => {
            serde_json::to_value(remote.on_service_terminated(k.blueprint, k.service).await?)?
        }
        ServiceCommand::Renew { key, ttl } => serde_json::to_value(
            remote
                .renew(ServiceKey::new(key.blueprint, key.service), ttl)
                .await?,
        )?,
        ServiceCommand::Reconcile { active } => {
            let report = remote.reconcile(&active).await;
            let failed = !report.errors.is_empty();
            println!("{}", serde_json::to_string_pretty(&report)?);
            return Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
