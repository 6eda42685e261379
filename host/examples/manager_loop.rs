//! Blueprint Manager's event loop, driving the embedding API against moto.
//!
//! Run with (moto started by `scripts/standins/moto.sh start`):
//!
//! ```sh
//! BPR_TEST_MOTO_URL=http://127.0.0.1:5000 \
//!   cargo run -p blueprint-remote-providers --example manager_loop
//! ```
//!
//! The chain's events arrive as they would in the manager
//! (`protocol/tangle/event_handler.rs`): a service is activated, the event is
//! delivered again (a replay must not start a second machine), a payment
//! renews it, it is terminated, and after a "restart" the manager reconciles
//! with the services the chain still has. The deployment events the host
//! publishes are printed as they come. It exits non-zero if any step does
//! not do what the manager relies on.

use std::collections::HashMap;
use std::time::Duration;

use blueprint_remote_providers::embedding::{
    DeployArtifact, EmbeddingOptions, RemoteDeployments, ResourceSpec, ServiceKey,
};
use blueprint_remote_providers::provisioning::{DeployOptions, RetryPolicy};
use blueprint_remote_providers::tracking::DeploymentStatus;
use blueprint_remote_providers::{Config, Host};

/// The chain's events, as the manager's handler sees them.
enum ChainEvent {
    ServiceActivated {
        blueprint_id: u64,
        service_id: u64,
    },
    PaymentReceived {
        blueprint_id: u64,
        service_id: u64,
        ttl_secs: u64,
    },
    ServiceTerminated {
        blueprint_id: u64,
        service_id: u64,
    },
}

/// The operator's config: the in-tree aws component (alone in the example's
/// own providers directory, so no other cloud is ranked) pointed at moto, with
/// moto's dummy credentials in a file of the example's state directory.
fn config(moto: &str, state: &std::path::Path) -> Result<Config, Box<dyn std::error::Error>> {
    let creds = state.join("aws-credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = example\n",
    )?;
    let providers = state.join("providers");
    std::fs::create_dir_all(&providers)?;
    let built = std::path::Path::new(blueprint_remote_providers::config::BUILTIN_PROVIDERS_DIR);
    std::fs::copy(built.join("aws.wasm"), providers.join("aws.wasm")).map_err(|e| {
        format!(
            "copying the in-tree aws component from {}: {e}",
            built.display()
        )
    })?;
    // moto is not an AWS endpoint: the credential signs for it only when listed.
    let signed = moto
        .split_once("://")
        .map_or(moto, |(_, rest)| rest)
        .trim_end_matches('/');
    let lock = state.join("providers.lock");
    let text = format!(
        "[host]\nproviders_dir = {providers:?}\nstate_dir = {state:?}\nlock_file = {lock:?}\nintegrity = \"warn\"\nwatch = false\n\
         [providers.aws]\nallow = [{moto:?}]\ncall_timeout_ms = 60000\n\
         [providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {moto:?}\n\
         image_owner = \"amazon\"\nimage_name_filter = \"amzn2-ami-hvm-*-x86_64-gp2\"\n\
         [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {creds:?}\n\
         hosts = [{signed:?}]\n"
    );
    Ok(Config::from_toml_str(&text, "manager_loop example")?)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("manager loop: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let moto = std::env::var("BPR_TEST_MOTO_URL")
        .map_err(|_| "set BPR_TEST_MOTO_URL to a running moto (scripts/standins/moto.sh start)")?;
    let state = tempfile::tempdir()?;
    let host = Host::start(config(&moto, state.path())?).await?;

    // Moto answers at once: short waits keep the example quick.
    let options = EmbeddingOptions {
        default_ttl_secs: Some(3600),
        deploy: DeployOptions {
            retry: RetryPolicy {
                base: Duration::from_millis(50),
                ..RetryPolicy::default()
            },
            poll_initial: Duration::from_millis(100),
            poll_max: Duration::from_millis(500),
            ..DeployOptions::default()
        },
        ..EmbeddingOptions::default()
    };
    let remote = RemoteDeployments::new(host.clone(), options);

    // The manager subscribes once and forwards what happens to its own state.
    let mut events = remote.subscribe();
    let printer = tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            println!("event: {}", serde_json::to_string(&e).unwrap_or_default());
        }
    });

    // Unique per run: moto keeps state between runs.
    let blueprint_id = std::process::id() as u64;
    let chain = [
        ChainEvent::ServiceActivated {
            blueprint_id,
            service_id: 1,
        },
        ChainEvent::ServiceActivated {
            blueprint_id,
            service_id: 1,
        }, // delivered twice
        ChainEvent::ServiceActivated {
            blueprint_id,
            service_id: 2,
        },
        ChainEvent::PaymentReceived {
            blueprint_id,
            service_id: 1,
            ttl_secs: 86_400,
        },
        ChainEvent::ServiceTerminated {
            blueprint_id,
            service_id: 1,
        },
    ];
    let mut first = None;
    for event in chain {
        match event {
            ChainEvent::ServiceActivated {
                blueprint_id,
                service_id,
            } => {
                let resources = ResourceSpec {
                    cpu: 1.0,
                    memory_gb: 1.0,
                    ..ResourceSpec::default()
                };
                let artifact =
                    DeployArtifact::ContainerImage("ghcr.io/tangle-network/example:1".into());
                let rec = remote
                    .on_service_initiated(
                        blueprint_id,
                        service_id,
                        Some(resources),
                        Some(artifact),
                        HashMap::new(),
                    )
                    .await?;
                println!(
                    "service {blueprint_id}/{service_id}: deployment {} {} on {}/{}/{}",
                    rec.id,
                    rec.status,
                    rec.provider.as_deref().unwrap_or("-"),
                    rec.region.as_deref().unwrap_or("-"),
                    rec.instance_type.as_deref().unwrap_or("-"),
                );
                if rec.status != DeploymentStatus::Active {
                    return Err(
                        format!("service {service_id} is {}, not active", rec.status).into(),
                    );
                }
                if service_id == 1 {
                    match &first {
                        None => first = Some(rec.id.clone()),
                        Some(id) if *id == rec.id => {
                            println!("  replay returned the same deployment")
                        }
                        Some(id) => {
                            return Err(format!(
                                "a replay made a second deployment: {id} and {}",
                                rec.id
                            )
                            .into());
                        }
                    }
                }
            }
            ChainEvent::PaymentReceived {
                blueprint_id,
                service_id,
                ttl_secs,
            } => {
                let rec = remote
                    .renew(ServiceKey::new(blueprint_id, service_id), ttl_secs)
                    .await?;
                println!(
                    "service {blueprint_id}/{service_id}: renewed, expires at {:?}",
                    rec.expires_at
                );
            }
            ChainEvent::ServiceTerminated {
                blueprint_id,
                service_id,
            } => {
                let rec = remote
                    .on_service_terminated(blueprint_id, service_id)
                    .await?;
                let status = rec.map(|r| r.status);
                println!("service {blueprint_id}/{service_id}: {status:?}");
                if status != Some(DeploymentStatus::Terminated) {
                    return Err("termination did not terminate".into());
                }
            }
        }
    }

    // The manager restarts; the chain has no active service of this Blueprint any
    // more (service 2 ended while it was down): reconcile tears it down.
    let report = remote.reconcile(&[]).await;
    println!("reconcile: {}", serde_json::to_string(&report)?);
    let ours = |k: &ServiceKey| k.blueprint_id == blueprint_id;
    if !report
        .terminated
        .iter()
        .any(|d| ours(&d.key) && d.key.service_id == 2)
        || !report.errors.is_empty()
    {
        return Err("reconcile did not terminate service 2".into());
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    printer.abort();
    host.shutdown().await;
    println!("manager loop: ok");
    Ok(())
}
