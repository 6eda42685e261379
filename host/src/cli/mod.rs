//! The `bpr` command line. Thin: parses flags, loads config, calls the
//! library, prints.

mod clusters_cmd;
mod costs_cmd;
mod deploy;
mod hosts_cmd;
pub(crate) mod k8s_cmd;
#[cfg(test)]
mod k8s_cmd_tests;
mod logs_cmd;
pub(crate) mod plan_cmd;
mod providers_cmd;
mod serve_cmd;
mod service_cmd;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Blueprint Remote Providers: run Blueprint services on the cheapest cloud,
/// with each cloud provider a sandboxed WebAssembly component.
#[derive(Debug, Parser)]
#[command(name = "bpr", version, about)]
pub struct Cli {
    /// Operator config file (TOML). Without it, embedded defaults load the
    /// in-tree components.
    #[arg(long, global = true, env = "BPR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Start a new, empty database when the existing one is unusable (empty,
    /// not SQLite, damaged); the old file is kept aside. Same as
    /// `[database] initialize = true`.
    #[arg(long, global = true)]
    pub initialize_database: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Provider components: list, inspect, approve.
    #[command(subcommand)]
    Providers(providers_cmd::ProvidersCommand),
    /// The cheapest offers that meet a request, across all loaded providers.
    Plan(plan_cmd::PlanArgs),
    /// The operator's own machines over SSH: probe capacity, list.
    #[command(subcommand)]
    Hosts(hosts_cmd::HostsCommand),
    /// Kubernetes: render a service's manifests for review, check the clusters.
    #[command(subcommand)]
    K8s(k8s_cmd::K8sCommand),
    /// Deployments: deploy, status, terminate, update, suspend, resume, cleanup, history.
    #[command(flatten)]
    Deployments(deploy::DeployCommand),
    /// What a deployment's workload printed: pod logs (Kubernetes), container or
    /// unit logs (SSH hosts); for a VM, what is available instead.
    Logs(logs_cmd::LogsArgs),
    /// Accrued spend per deployment, Blueprint, provider or day.
    Costs(costs_cmd::CostsArgs),
    /// Run as a service: HTTP API, hot reload, supervisor, price refresh, metrics.
    Serve(serve_cmd::ServeArgs),
    /// Blueprint Manager's service events through the embedding API: initiated,
    /// terminated, renew, reconcile.
    #[command(subcommand)]
    Service(service_cmd::ServiceCommand),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A service logs what it does; a one-shot command only what went wrong.
    init_tracing(if matches!(cli.command, Command::Serve(_)) {
        "info,bpr::provider=warn"
    } else {
        "warn,bpr::provider=error"
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let mut config = blueprint_remote_providers_config(cli.config.as_deref())?;
        config.database.initialize |= cli.initialize_database;
        match cli.command {
            Command::Providers(cmd) => providers_cmd::run(cmd, config).await,
            Command::Plan(args) => plan_cmd::run(args, config).await,
            Command::Hosts(cmd) => hosts_cmd::run(cmd, config).await,
            Command::K8s(cmd) => k8s_cmd::run(cmd, config).await,
            Command::Deployments(cmd) => deploy::run(cmd, config).await,
            Command::Logs(args) => logs_cmd::run(args, config).await,
            Command::Serve(args) => serve_cmd::run(args, config).await,
            Command::Service(cmd) => service_cmd::run(cmd, config).await,
            Command::Costs(args) => costs_cmd::run(args, config).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", sentence(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes as one sentence, each said once: the library's
/// errors already name their cause, so a cause whose text is in what came
/// before is not repeated.
fn sentence(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn blueprint_remote_providers_config(
    path: Option<&std::path::Path>,
) -> anyhow::Result<blueprint_remote_providers::Config> {
    Ok(blueprint_remote_providers::Config::load(path)?)
}

/// Logs to stderr; `RUST_LOG` overrides `default` (for one-shot commands:
/// warnings, and only errors from components, whose fallbacks `bpr` reports
/// itself).
fn init_tracing(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
