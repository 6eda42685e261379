//! Issue 12: the embedding API for Blueprint Manager, against moto.
//!
//! A `bpr service initiated` process is SIGKILLed at points spread over a
//! whole deploy; the manager's replay of the same service event (through the
//! library) must return one deployment and leave exactly one instance. Then
//! the rest of the manager's loop: events, renewal, termination, reconcile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blueprint_remote_providers::embedding::{
    DeployArtifact, EmbeddingOptions, RemoteDeployments, ResourceSpec, ServiceKey,
};
use blueprint_remote_providers::provisioning::{DeployOptions, EventKind, RetryPolicy};
use blueprint_remote_providers::tracking::DeploymentStatus;
use blueprint_remote_providers::{Config, Host};

use crate::support::TestEnv;

fn moto_url() -> String {
    std::env::var("BPR_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!("BPR_TEST_MOTO_URL is not set: start moto with `scripts/standins/moto.sh start`")
    })
}

/// A Blueprint id no earlier run used (moto keeps its instances).
fn fresh_blueprint() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (nanos % 1_000_000_000_000) as u64
}

/// Writes the operator config (aws on moto) and returns its path.
fn write_config(env: &TestEnv) -> PathBuf {
    env.add("aws");
    let moto = moto_url();
    let creds = env.dir.path().join("aws-credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = bpr-test-secret\n",
    )
    .unwrap();
    let path = env.dir.path().join("bpr.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n[providers.aws]\nallow = [{moto:?}]\ncall_timeout_ms = 60000\n\
             [providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {moto:?}\n\
             image_owner = \"amazon\"\nimage_name_filter = \"amzn2-ami-hvm-*-x86_64-gp2\"\n\
             [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {creds:?}\n{}",
            env.host_section("warn", false),
            crate::support::sigv4_hosts_line(&moto)
        ),
    )
    .unwrap();
    path
}

async fn host_of(config: &Path) -> Host {
    Host::start(Config::load(Some(config)).expect("config loads"))
        .await
        .expect("host starts")
}

fn fast() -> EmbeddingOptions {
    EmbeddingOptions {
        deploy: DeployOptions {
            retry: RetryPolicy {
                max_tries: 12,
                base: Duration::from_millis(20),
                max_backoff: Duration::from_millis(400),
                max_retry_after: Duration::from_secs(5),
            },
            running_timeout: Duration::from_secs(30),
            health_timeout: Duration::from_secs(30),
            delete_timeout: Duration::from_secs(30),
            poll_initial: Duration::from_millis(100),
            poll_max: Duration::from_millis(500),
            progress: None,
        },
        ..EmbeddingOptions::default()
    }
}

fn resources() -> ResourceSpec {
    ResourceSpec {
        cpu: 1.0,
        memory_gb: 1.0,
        ..ResourceSpec::default()
    }
}

fn image() -> Option<DeployArtifact> {
    Some(DeployArtifact::ContainerImage(
        "ghcr.io/acme/agent:1.2".into(),
    ))
}

/// Instances of service `key` still alive in moto (by the tags the host sets).
async fn live_instances(host: &Host, key: ServiceKey) -> Vec<String> {
    use blueprint_remote_providers::wit::{InstanceQuery, InstanceState};
    host.provider("aws")
        .unwrap()
        .list_instances(InstanceQuery {
            regions: vec!["us-east-1".into()],
            labels: vec![
                ("blueprint-id".into(), key.blueprint_id.to_string()),
                ("service-id".into(), key.service_id.to_string()),
            ],
        })
        .await
        .expect("moto lists instances")
        .into_iter()
        .filter(|i| {
            !matches!(
                i.state,
                InstanceState::Terminated | InstanceState::Terminating
            )
        })
        .map(|i| i.id)
        .collect()
}

fn initiated(config: &Path, key: ServiceKey) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpr"));
    c.arg("--config")
        .arg(config)
        .env("RUST_LOG", "error")
        .args(["service", "initiated", "--blueprint"])
        .arg(key.blueprint_id.to_string())
        .arg("--service")
        .arg(key.service_id.to_string())
        .args([
            "--cpu",
            "1",
            "--memory",
            "1",
            "--container",
            "ghcr.io/acme/agent:1.2",
        ]);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_event_replayed_after_a_sigkill_returns_one_deployment_and_one_instance() {
    let _serial = crate::support::moto_lock().await;
    let env = TestEnv::new();
    let config = write_config(&env);
    let blueprint = fresh_blueprint();

    // Calibrate: one whole `bpr service initiated`, so the kill points cover
    // it. The shortest of two runs: the first may also compile the component
    // (later runs load the cached artifact), which would put kill points
    // after the runs being killed have finished.
    let mut full = Duration::MAX;
    for service in [1000, 1001] {
        let t0 = Instant::now();
        let out = initiated(&config, ServiceKey::new(blueprint, service))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bpr service initiated failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        full = full.min(t0.elapsed());
    }

    let mut killed = 0;
    let mut keys = Vec::new();
    for n in 0..8u64 {
        let key = ServiceKey::new(blueprint, n);
        keys.push(key);
        let mut child = initiated(&config, key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill points spread over the whole deploy.
        tokio::time::sleep(full.mul_f64(n as f64 / 8.0)).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(killed >= 4, "only {killed} of 8 runs were killed mid-way");

    // The manager restarts and the chain delivers the events again.
    let host = host_of(&config).await;
    let remote = RemoteDeployments::new(host.clone(), fast());
    for key in keys {
        let first = remote
            .on_service_initiated(
                key.blueprint_id,
                key.service_id,
                Some(resources()),
                image(),
                HashMap::new(),
            )
            .await
            .unwrap_or_else(|e| panic!("replay of {key}: {e}"));
        assert_eq!(first.status, DeploymentStatus::Active, "{key}: {first:?}");
        let again = remote
            .on_service_initiated(
                key.blueprint_id,
                key.service_id,
                Some(resources()),
                image(),
                HashMap::new(),
            )
            .await
            .unwrap();
        assert_eq!(
            again.id, first.id,
            "{key}: a replay returns the same deployment"
        );
        let live = live_instances(&host, key).await;
        assert_eq!(live.len(), 1, "{key}: exactly one instance runs: {live:?}");
        assert_eq!(Some(&live[0]), first.instance_id.as_ref());
        let keyed: Vec<_> = host
            .tracker()
            .live_keyed()
            .unwrap()
            .into_iter()
            .filter(|r| r.service_key.as_deref() == Some(key.to_string().as_str()))
            .collect();
        assert_eq!(keyed.len(), 1, "{key}: one live deployment: {keyed:?}");
    }

    // Reconcile with nothing active: every one is torn down and reported.
    let report = remote.reconcile(&[]).await;
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.terminated.len(), 10, "{report:?}");
    for n in (0..8).chain([1000, 1001]) {
        let key = ServiceKey::new(blueprint, n);
        assert!(
            live_instances(&host, key).await.is_empty(),
            "{key} left an instance"
        );
    }
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_manager_loop_sees_events_renews_terminates_and_reconciles() {
    let _serial = crate::support::moto_lock().await;
    let env = TestEnv::new();
    let config = write_config(&env);
    let host = host_of(&config).await;
    let remote = RemoteDeployments::new(
        host.clone(),
        EmbeddingOptions {
            default_ttl_secs: Some(600),
            ..fast()
        },
    );
    let mut events = remote.subscribe();
    let blueprint = fresh_blueprint();
    let (a, b) = (ServiceKey::new(blueprint, 1), ServiceKey::new(blueprint, 2));
    let ra = remote
        .on_service_initiated(
            a.blueprint_id,
            a.service_id,
            Some(resources()),
            image(),
            HashMap::new(),
        )
        .await
        .unwrap();
    let rb = remote
        .on_service_initiated(b.blueprint_id, b.service_id, None, None, HashMap::new())
        .await
        .unwrap();
    assert_eq!(ra.status, DeploymentStatus::Active);
    assert_eq!(
        rb.status,
        DeploymentStatus::Active,
        "an idle VM, as upstream starts today"
    );
    assert_ne!(ra.id, rb.id);

    // Events: provisioning then running (with where it is reached) for each.
    let mut seen = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
        seen.push(e);
    }
    for rec in [&ra, &rb] {
        let mine: Vec<_> = seen.iter().filter(|e| e.deployment_id == rec.id).collect();
        assert!(
            matches!(mine.first().map(|e| &e.kind), Some(EventKind::Provisioning { candidate }) if candidate.starts_with("aws/us-east-1/")),
            "{mine:?}"
        );
        assert!(
            matches!(
                mine.last().map(|e| &e.kind),
                Some(EventKind::Running {
                    endpoint: Some(_),
                    ..
                })
            ),
            "{mine:?}"
        );
        // Serializable as they are, for an HTTP layer.
        let json = serde_json::to_value(mine.last().unwrap()).unwrap();
        assert_eq!(json["event"], "running");
    }

    // A payment: a longer life, from now.
    let renewed = remote.renew(a, 86_400).await.unwrap();
    assert!(renewed.expires_at.unwrap() > ra.expires_at.unwrap() + 80_000);

    // The manager restarts; only `a` is still active on chain.
    let report = remote.reconcile(&[a]).await;
    assert_eq!(report.kept.len(), 1, "{report:?}");
    assert_eq!(report.kept[0].deployment_id, ra.id);
    assert_eq!(report.terminated.len(), 1, "{report:?}");
    assert_eq!(report.terminated[0].deployment_id, rb.id);
    assert!(
        report.missing.is_empty() && report.errors.is_empty(),
        "{report:?}"
    );
    assert!(live_instances(&host, b).await.is_empty());

    // ServiceTerminated, delivered twice.
    let done = remote
        .on_service_terminated(a.blueprint_id, a.service_id)
        .await
        .unwrap();
    assert_eq!(done.map(|r| r.status), Some(DeploymentStatus::Terminated));
    assert!(
        remote
            .on_service_terminated(a.blueprint_id, a.service_id)
            .await
            .unwrap()
            .is_none()
    );
    let terminated = loop {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event")
            .unwrap();
        if e.deployment_id == ra.id && matches!(e.kind, EventKind::Terminated { .. }) {
            break e;
        }
    };
    assert_eq!(terminated.service_id, a.service_id.to_string());
    // Nothing is live for the Blueprint any more: a new event deploys anew.
    assert!(remote.deployment(a).unwrap().is_none());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deployment_whose_payment_ran_out_is_published_expired_then_terminated() {
    let _serial = crate::support::moto_lock().await;
    let env = TestEnv::new();
    let config = write_config(&env);
    let host = host_of(&config).await;
    let remote = RemoteDeployments::new(
        host.clone(),
        EmbeddingOptions {
            default_ttl_secs: Some(1),
            ..fast()
        },
    );
    let mut events = remote.subscribe();
    let key = ServiceKey::new(fresh_blueprint(), 1);
    let rec = remote
        .on_service_initiated(
            key.blueprint_id,
            key.service_id,
            Some(resources()),
            image(),
            HashMap::new(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let opts = blueprint_remote_providers::SupervisorOptions {
        deploy: fast().deploy,
        ..Default::default()
    };
    let (done, errors) = host.cleanup_once(&opts).await;
    assert!(done.contains(&rec.id), "{done:?} {errors:?}");
    let mut kinds = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
        if e.deployment_id == rec.id {
            kinds.push(e.kind);
        }
    }
    let expired = kinds
        .iter()
        .position(|k| matches!(k, EventKind::Expired { ttl_secs: Some(1) }));
    let terminated = kinds
        .iter()
        .position(|k| matches!(k, EventKind::Terminated { .. }));
    assert!(
        matches!((expired, terminated), (Some(a), Some(b)) if a < b),
        "expired, then terminated: {kinds:?}"
    );
    assert!(remote.deployment(key).unwrap().is_none());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_terminates_a_deployment_the_supervisor_holds_once_it_lets_go() {
    let _serial = crate::support::moto_lock().await;
    let env = TestEnv::new();
    let config = write_config(&env);
    let host = host_of(&config).await;
    let remote = RemoteDeployments::new(host.clone(), fast());
    let key = ServiceKey::new(fresh_blueprint(), 1);
    let rec = remote
        .on_service_initiated(
            key.blueprint_id,
            key.service_id,
            Some(resources()),
            image(),
            HashMap::new(),
        )
        .await
        .unwrap();
    assert_eq!(rec.status, DeploymentStatus::Active, "{rec:?}");
    // Another holder (as the supervisor checking an active deployment is)
    // has it when the manager reconciles, and lets go a moment later.
    let held = host.tracker().try_lock(&rec.id).unwrap().expect("free");
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        drop(held);
    });
    let report = remote.reconcile(&[]).await;
    release.await.unwrap();
    assert!(report.errors.is_empty(), "{report:?}");
    assert_eq!(report.terminated.len(), 1, "{report:?}");
    assert_eq!(report.terminated[0].deployment_id, rec.id);
    assert!(live_instances(&host, key).await.is_empty());
    host.shutdown().await;
}
