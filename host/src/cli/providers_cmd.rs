//! `bpr providers list | inspect | lock`.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Subcommand;
use sha2::{Digest, Sha256};

use super::table;
use blueprint_remote_providers::Host;
use blueprint_remote_providers::capabilities::AllowRule;
use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::providers::{LockFile, LockedProvider};
use blueprint_remote_providers::providers::{ProviderState, ProviderStatus};
use blueprint_remote_providers::wit::{Capability, CredentialKind};

/// `bpr providers ...`
#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// List providers: name, version, WIT version, sha256, capabilities, allowed hosts, state.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one provider's imports, exports, settings and limits.
    Inspect {
        /// Provider name.
        name: String,
    },
    /// Approve the current provider files and allowlists in the lock file,
    /// after showing what changes.
    Lock {
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Run a `providers` subcommand.
pub async fn run(cmd: ProvidersCommand, mut config: Config) -> anyhow::Result<ExitCode> {
    match cmd {
        ProvidersCommand::Lock { dry_run } => lock(&config, dry_run),
        ProvidersCommand::List { json } => {
            config.host.watch = false;
            let host = Host::start(config).await?;
            let statuses = host.statuses();
            if json {
                let rows: Vec<_> = statuses.iter().map(status_json).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", list_table(&statuses));
            }
            Ok(ExitCode::SUCCESS)
        }
        ProvidersCommand::Inspect { name } => {
            config.host.watch = false;
            let host = Host::start(config).await?;
            let Some(status) = host.statuses().into_iter().find(|s| s.name == name) else {
                anyhow::bail!(
                    "no provider named {name:?} in {}",
                    host.config().host.providers_dir.display()
                );
            };
            print!("{}", inspect_text(&status));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn capability_name(c: &Capability) -> &'static str {
    match c {
        Capability::Offers => "offers",
        Capability::Instances => "instances",
        Capability::Spot => "spot",
        Capability::ManagedKubernetes => "managed-kubernetes",
        Capability::Gpus => "gpus",
        Capability::ConfidentialCompute => "confidential-compute",
        Capability::Workloads => "workloads",
    }
}

fn credential_name(c: &CredentialKind) -> &'static str {
    match c {
        CredentialKind::None => "none",
        CredentialKind::Bearer => "bearer",
        CredentialKind::AwsSigv4 => "aws-sigv4",
        CredentialKind::GcpOauth => "gcp-oauth",
        CredentialKind::AzureOauth => "azure-oauth",
    }
}

fn state_text(s: &ProviderState) -> String {
    match s {
        ProviderState::Loaded => "loaded".into(),
        ProviderState::ServingPrevious(r) => {
            format!("serving previous version; newest refused: {r}")
        }
        ProviderState::Refused(r) => format!("refused: {r}"),
    }
}

fn list_table(statuses: &[ProviderStatus]) -> String {
    let rows: Vec<Vec<String>> = statuses
        .iter()
        .map(|s| match &s.current {
            Some(p) => vec![
                s.name.clone(),
                p.info.version.clone(),
                p.surface.wit_version.clone(),
                p.sha256[..12].to_string(),
                p.info
                    .capabilities
                    .iter()
                    .map(capability_name)
                    .collect::<Vec<_>>()
                    .join(","),
                p.config
                    .allow
                    .iter()
                    .map(AllowRule::as_str)
                    .collect::<Vec<_>>()
                    .join(" "),
                state_text(&s.state),
            ],
            None => vec![
                s.name.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                state_text(&s.state),
            ],
        })
        .collect();
    table::render(
        &[
            "NAME",
            "VERSION",
            "WIT",
            "SHA256",
            "CAPABILITIES",
            "ALLOWED HOSTS",
            "STATE",
        ],
        &rows,
    )
}

fn status_json(s: &ProviderStatus) -> serde_json::Value {
    let mut v = serde_json::json!({ "name": s.name, "state": state_text(&s.state) });
    if let Some(p) = &s.current {
        v["version"] = p.info.version.clone().into();
        v["wit_version"] = p.surface.wit_version.clone().into();
        v["sha256"] = p.sha256.clone().into();
        v["signature"] = p.signature.describe().into();
        v["capabilities"] = p
            .info
            .capabilities
            .iter()
            .map(capability_name)
            .collect::<Vec<_>>()
            .into();
        v["credential"] = credential_name(&p.info.credential).into();
        v["allowed_hosts"] = p
            .config
            .allow
            .iter()
            .map(|r| r.as_str().to_string())
            .collect::<Vec<_>>()
            .into();
        v["size_bytes"] = p.size_bytes.into();
        v["path"] = p.path.display().to_string().into();
    }
    v
}

fn inspect_text(s: &ProviderStatus) -> String {
    let mut out = format!(
        "provider   {}\nstate      {}\n",
        s.name,
        state_text(&s.state)
    );
    let Some(p) = &s.current else { return out };
    let i = &p.info;
    out.push_str(&format!(
        "version    {}\nwit        blueprint:provider@{}\nfile       {} ({} bytes)\nsha256     {}\nsignature  {}\ncredential {} (configured: {})\nloaded     {} in {:.1} ms\n",
        i.version,
        p.surface.wit_version,
        p.path.display(),
        p.size_bytes,
        p.sha256,
        p.signature.describe(),
        credential_name(&i.credential),
        p.config.credential.kind(),
        if p.compile.from_cache { "from artifact cache" } else { "compiled" },
        p.compile.duration.as_secs_f64() * 1000.0,
    ));
    out.push_str(&format!(
        "limits     call deadline {} ms, memory {} MiB, request body {} KiB, response body {} KiB\n\
         returned   at most {} offers, {} instances, {} items per list, {} KiB per string, {} MiB per answer\n\
         log        {} records at once, then {} per second, per call\n",
        p.config.call_timeout.as_millis(),
        p.config.memory_bytes >> 20,
        p.config.max_request_body >> 10,
        p.config.max_response_body >> 10,
        p.config.returned.max_offers,
        p.config.returned.max_instances,
        p.config.returned.max_list_items,
        p.config.returned.max_string_bytes >> 10,
        p.config.returned.max_total_bytes >> 20,
        p.config.log.burst,
        p.config.log.per_second,
    ));
    out.push_str(&format!(
        "capabilities {}\n",
        i.capabilities
            .iter()
            .map(capability_name)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str("allowed hosts (operator):\n");
    for r in &p.config.allow {
        out.push_str(&format!("  {r}\n"));
    }
    out.push_str("expected hosts (component):\n");
    for h in &i.expected_hosts {
        out.push_str(&format!("  {h}\n"));
    }
    out.push_str("imports:\n");
    for name in &p.surface.imports {
        out.push_str(&format!("  {name}\n"));
    }
    out.push_str("exports:\n");
    for name in &p.surface.exports {
        out.push_str(&format!("  {name}\n"));
    }
    out.push_str("settings:\n");
    for st in &i.settings {
        let value = p.config.settings.get(&st.key).cloned();
        out.push_str(&format!(
            "  {:<18} {}{}\n",
            st.key,
            st.description,
            match (value, &st.default_value) {
                (Some(v), _) => format!(" [set: {v}]"),
                (None, Some(d)) => format!(" [default: {d}]"),
                (None, None) => String::new(),
            }
        ));
    }
    out
}

fn lock(config: &Config, dry_run: bool) -> anyhow::Result<ExitCode> {
    let path = &config.host.lock_file;
    let old = LockFile::read(path).map_err(anyhow::Error::msg)?;
    let mut new = LockFile {
        providers: BTreeMap::new(),
        ssh_host_keys: old.ssh_host_keys.clone(),
    };
    for file in blueprint_remote_providers::providers::wasm_files(&config.host.providers_dir) {
        let Some(name) = blueprint_remote_providers::providers::provider_name(&file) else {
            continue;
        };
        let bytes = std::fs::read(&file)?;
        let allowed_hosts = config
            .provider(&name)
            .allow
            .iter()
            .map(|r| r.as_str().to_string())
            .collect();
        new.providers.insert(
            name,
            LockedProvider {
                sha256: hex::encode(Sha256::digest(&bytes)),
                allowed_hosts,
            },
        );
    }
    let mut changes = Vec::new();
    for (name, p) in &new.providers {
        match old.providers.get(name) {
            None => changes.push(format!(
                "+ {name}  sha256 {}  hosts {:?}",
                p.sha256, p.allowed_hosts
            )),
            Some(o) if o != p => {
                if o.sha256 != p.sha256 {
                    changes.push(format!("~ {name}  sha256 {} -> {}", o.sha256, p.sha256));
                }
                if o.allowed_hosts != p.allowed_hosts {
                    changes.push(format!(
                        "~ {name}  hosts {:?} -> {:?}",
                        o.allowed_hosts, p.allowed_hosts
                    ));
                }
            }
            Some(_) => {}
        }
    }
    for name in old
        .providers
        .keys()
        .filter(|n| !new.providers.contains_key(*n))
    {
        changes.push(format!("- {name}"));
    }
    if changes.is_empty() {
        println!("{} is up to date", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!("changes to {}:", path.display());
    for c in &changes {
        println!("  {c}");
    }
    if dry_run {
        println!("(dry run: nothing written)");
    } else {
        new.write(path)?;
        println!("written");
    }
    Ok(ExitCode::SUCCESS)
}
