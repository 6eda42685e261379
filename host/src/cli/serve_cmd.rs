//! `bpr serve`: the host as a long-running service (see the library's
//! `server` module and the README's "Running bpr serve as a service").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use blueprint_remote_providers::Config;
use blueprint_remote_providers::provisioning::DeployOptions;
use clap::Args;

/// Flags of `bpr serve`; each overrides its `[serve]` key.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (`[serve] listen`, default 127.0.0.1:8765).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// File holding the API's bearer token, mode 0600 (`[serve] token_file`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
}

/// Runs the service until SIGTERM or SIGINT.
pub async fn run(args: ServeArgs, mut config: Config) -> anyhow::Result<ExitCode> {
    if let Some(l) = args.listen {
        config.serve.listen = l;
    }
    if let Some(t) = args.token_file {
        config.serve.token_file = Some(t);
    }
    blueprint_remote_providers::server::serve(config, DeployOptions::default()).await?;
    Ok(ExitCode::SUCCESS)
}
