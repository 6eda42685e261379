//! `bpr deploy | status | terminate | cleanup | update | suspend | resume | history`.

mod args;
mod output;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Subcommand;

use blueprint_remote_providers::Host;
use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::kubernetes::Tier;
use blueprint_remote_providers::provisioning::{
    DeployEvent, DeployOptions, KubernetesChange, SupervisorOptions,
};
use blueprint_remote_providers::tracking::{DeploymentStatus, DeploymentType};

pub use self::args::DeployArgs;
use self::args::build_request;
use self::output::{
    cleanup_text, k8s_opts, progress_line, status_table, when, workload_json, workload_text,
};
use super::table;

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
    /// (recovery), delete what failed deployments still hold and what no
    /// record owns (the sweep); prints every deployment it resolved.
    Cleanup {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
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

/// Run a deployment subcommand.
pub async fn run(cmd: DeployCommand, mut config: Config) -> anyhow::Result<ExitCode> {
    config.host.watch = false;
    match cmd {
        DeployCommand::Deploy(a) => {
            // Checked before the host starts: an invalid request writes nothing.
            let (mut req, candidates) = build_request(&a)?;
            let host = Host::start(config).await?;
            // The library decides where: the given candidates, or the offers it
            // ranks with the operator's policy.
            if !candidates.is_empty() {
                req.candidates = candidates;
            }
            let plan = host.plan(&req).await?;
            for s in &plan.skipped {
                println!("{}: not deployable from here: {}", s.provider, s.reason);
            }
            let candidates = plan.candidates.clone();
            if let Some(k) = &plan.kubernetes {
                println!("Plan: Kubernetes cluster {}, tier {}", k.cluster, k.tier);
            } else {
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
                        // Why it failed is the error printed last: said once.
                        let reason = match status {
                            DeploymentStatus::Failed => "(see the error below)",
                            _ => reason.as_str(),
                        };
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
        DeployCommand::Cleanup { json } => {
            let host = Host::start(config).await?;
            let report = host.cleanup(&SupervisorOptions::default(), true).await;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", cleanup_text(&report));
            }
            for (id, e) in &report.errors {
                eprintln!("{id}: {e}");
            }
            Ok(if report.errors.is_empty() {
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
