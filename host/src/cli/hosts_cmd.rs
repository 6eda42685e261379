//! `bpr hosts probe | list`: the operator's own machines (`[[ssh.hosts]]`).

use std::process::ExitCode;

use clap::Subcommand;

use super::table;
use blueprint_remote_providers::Host;
use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::ssh::store_capacity;

/// `bpr hosts ...`
#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// Probe capacity over SSH (nproc, /proc/meminfo, df, nvidia-smi) and
    /// store it; `bpr plan` offers it from then on.
    Probe {
        /// Only this alias (default: every host).
        alias: Option<String>,
    },
    /// Show the configured hosts with stored capacity and usage.
    List,
}

fn gib(v: f32) -> String {
    format!("{v:.1}")
}

/// Run a `hosts` subcommand.
pub async fn run(cmd: HostsCommand, mut config: Config) -> anyhow::Result<ExitCode> {
    config.host.watch = false;
    let host = Host::start(config).await?;
    let Some(pool) = host.ssh_pool().cloned() else {
        anyhow::bail!(
            "no [[ssh.hosts]] are configured in {}",
            host.config().origin
        );
    };
    match cmd {
        HostsCommand::Probe { alias } => {
            let aliases: Vec<String> = match alias {
                Some(a) => vec![a],
                None => pool.hosts().into_iter().map(|h| h.alias).collect(),
            };
            let mut failed = false;
            for a in aliases {
                match pool.probe(&a).await {
                    Ok(r) => {
                        store_capacity(host.database(), &a, &r)?;
                        println!(
                            "{a}: {} vCPU, {} GiB memory, {} GiB disk, {} GPU{}",
                            r.vcpus,
                            gib(r.memory_gib),
                            gib(r.storage_gib),
                            r.gpus,
                            r.gpu_model.map(|m| format!(" ({m})")).unwrap_or_default()
                        );
                    }
                    Err(e) => {
                        failed = true;
                        eprintln!("{a}: probe failed: {e}");
                    }
                }
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        HostsCommand::List => {
            let rows: Vec<Vec<String>> = pool
                .hosts()
                .into_iter()
                .map(|h| {
                    let cap = h
                        .capacity
                        .map(|c| {
                            format!(
                                "{} vCPU / {} GiB / {} GiB / {} GPU",
                                c.vcpus,
                                gib(c.memory_gib),
                                gib(c.storage_gib),
                                c.gpus
                            )
                        })
                        .unwrap_or_else(|| "not probed (run `bpr hosts probe`)".into());
                    vec![h.alias, h.region, format!("{:.4}", h.hourly_usd), cap]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &[
                        "ALIAS",
                        "REGION",
                        "$/H",
                        "CAPACITY (CPU / MEMORY / DISK / GPU)"
                    ],
                    &rows
                )
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
