//! Issue 13 item 5: managed clusters go through the tracker like a VM. The real
//! DigitalOcean component against the project's fake behind Prism (DOKS) and the
//! real AWS component against moto (EKS): create and delete through the tracker,
//! a crash between create-cluster and its record resolved by recovery, a TTL
//! that runs out deleting the cluster, and the `bpr k8s` commands killed
//! mid-create and resumed by `bpr cleanup`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use blueprint_remote_providers::provisioning::{
    ClusterError, ClusterOptions, ClusterRequest, DeployOptions, EventKind, RetryPolicy,
    SupervisorOptions,
};
use blueprint_remote_providers::tracking::{
    AttemptIntent, AttemptOutcome, DeploymentStatus, DeploymentType, NewDeployment,
};
use blueprint_remote_providers::wit::ClusterSpec;
use serde_json::json;

use crate::aws::{Moto, moto_host, unique};
use crate::digitalocean::Fixture;
use crate::support::{TestEnv, moto_lock};

/// Timing for stand-ins: short polls, short deadlines.
fn fast() -> ClusterOptions {
    ClusterOptions {
        deploy: fast_deploy(),
        running_timeout: Duration::from_secs(30),
        wait: true,
    }
}

fn fast_deploy() -> DeployOptions {
    DeployOptions {
        retry: RetryPolicy {
            max_tries: 4,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(2),
        },
        delete_timeout: Duration::from_secs(30),
        poll_initial: Duration::from_millis(50),
        poll_max: Duration::from_millis(200),
        health_timeout: Duration::from_secs(10),
        ..DeployOptions::default()
    }
}

/// A one-node DOKS cluster named `name` in nyc1.
fn doks(name: &str) -> ClusterRequest {
    ClusterRequest::new(name, "digitalocean", "nyc1", "s-1vcpu-1gb", 1)
}

fn statuses(host: &blueprint_remote_providers::Host, id: &str) -> Vec<DeploymentStatus> {
    host.history(id).unwrap().iter().map(|t| t.to).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_doks_cluster_is_tracked_from_create_to_delete_and_is_a_deployment_target_meanwhile() {
    let kmock = crate::kubernetes::kmock_url();
    let f = Fixture::new().await;
    f.stand
        .control(
            "/_fake/config",
            json!({ "k8s_endpoint": kmock, "cluster_running_after_gets": 3 }),
        )
        .await;
    let mut events = f.host.subscribe();
    let name = format!("doks-{}", crate::kubernetes::unique_service());
    let mut req = doks(&name);
    req.hourly_usd = Some(0.018);
    req.labels.insert("team".into(), "infra".into());
    let rec = f
        .host
        .create_cluster(req, &fast())
        .await
        .expect("the cluster is created and runs");

    assert_eq!(rec.deployment_type, DeploymentType::Cluster);
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.cluster.as_deref(), Some(name.as_str()));
    assert_eq!(
        (
            rec.provider.as_deref(),
            rec.region.as_deref(),
            rec.instance_type.as_deref(),
            rec.hourly_usd
        ),
        (
            Some("digitalocean"),
            Some("nyc1"),
            Some("1x s-1vcpu-1gb"),
            Some(0.018)
        )
    );
    let fake = f.stand.state().await;
    let clusters = fake["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 1, "{fake}");
    assert_eq!(rec.instance_id.as_deref(), clusters[0]["id"].as_str());
    assert_eq!(rec.address.as_deref(), Some(kmock.as_str()));
    assert_eq!(
        statuses(&f.host, &rec.id),
        [
            DeploymentStatus::Planned,
            DeploymentStatus::Provisioning,
            DeploymentStatus::Provisioned,
            DeploymentStatus::Deploying,
            DeploymentStatus::Active
        ]
    );
    let attempts = f.host.tracker().attempts(&rec.id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Used);
    assert_eq!(attempts[0].instance_id, rec.instance_id);
    // The cluster carries the record's labels (as DigitalOcean tags).
    let tags: Vec<&str> = clusters[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(
        tags.iter().any(|t| t.contains("bpr-deployment"))
            && tags.iter().any(|t| t.contains("team")),
        "{tags:?}"
    );
    // Events: the candidate tried, then running with the API server as endpoint.
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.deployment_id == rec.id {
            kinds.push(e.kind);
        }
    }
    assert!(
        matches!(&kinds[..], [EventKind::Provisioning { candidate }, EventKind::Running { endpoint, instance, .. }]
            if candidate.contains(&name) && endpoint.as_deref() == Some(kmock.as_str()) && instance == &rec.instance_id),
        "{kinds:?}"
    );
    // A second cluster of the same name is refused before anything is written.
    let before = f.host.managed_clusters().unwrap().len();
    let err = f
        .host
        .create_cluster(doks(&name), &fast())
        .await
        .expect_err("the name is taken");
    assert!(
        matches!(&err, ClusterError::Track(_)) && err.to_string().contains(&name),
        "{err}"
    );
    assert_eq!(f.host.managed_clusters().unwrap().len(), before);

    // Running, it is the target k8s:<name>.
    let cluster = f.host.cluster(&name).await.expect("the cluster resolves");
    let service = crate::kubernetes::unique_service();
    let ctl = crate::kubernetes::controller(cluster.client().clone(), format!("bpr-7-{service}"));
    let dep = f
        .host
        .deploy_with(
            crate::kubernetes::request(
                service,
                &name,
                blueprint_remote_providers::kubernetes::Tier::Basic,
            ),
            vec![],
            &crate::kubernetes::fast(),
        )
        .await
        .expect("deploys to the new cluster");
    assert_eq!(dep.cluster.as_deref(), Some(name.as_str()));

    // Deleting it would strand that deployment: refused without force.
    let err = f
        .host
        .delete_cluster(&name, false, &fast_deploy())
        .await
        .expect_err("in use");
    assert!(
        matches!(&err, ClusterError::InUse { deployments, .. } if deployments == &vec![dep.id.clone()]),
        "{err}"
    );
    assert_eq!(
        f.host.managed_cluster(&name).unwrap().status,
        DeploymentStatus::Active
    );
    // With force, the deployment goes first, then the cluster.
    let done = f
        .host
        .delete_cluster(&name, true, &fast_deploy())
        .await
        .expect("deleted");
    ctl.abort();
    assert_eq!(done.status, DeploymentStatus::Terminated);
    assert!(done.released_at.is_some());
    assert_eq!(
        f.host.tracker().get(&dep.id).unwrap().status,
        DeploymentStatus::Terminated
    );
    let reason = f
        .host
        .history(&rec.id)
        .unwrap()
        .last()
        .unwrap()
        .reason
        .clone();
    assert!(reason.contains(&dep.id), "{reason}");
    assert!(
        f.stand.state().await["clusters"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Gone, it is no target any more.
    assert!(f.host.cluster(&name).await.is_err());
    // Deleting again is a no-op.
    let again = f
        .host
        .delete_cluster(&rec.id, false, &fast_deploy())
        .await
        .expect("idempotent");
    assert_eq!(again.status, DeploymentStatus::Terminated);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eks_cluster_is_tracked_from_create_to_delete_on_moto() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    moto.set_auth(false).await;
    let env = TestEnv::new();
    let host = moto_host(&env, &moto, ("AKIDEKSTRACK", "eks-secret")).await;
    let name = unique("eks");
    let mut req = ClusterRequest::new(&name, "aws", "us-east-1", "t3.medium", 2);
    req.node_pools[0].min_count = Some(1);
    req.node_pools[0].max_count = Some(3);
    req.ttl_secs = Some(3600);
    let rec = host
        .create_cluster(req, &fast())
        .await
        .expect("EKS cluster created");
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.instance_id.as_deref(), Some(name.as_str()));
    assert!(rec.expires_at.is_some());
    assert!(
        rec.address
            .as_deref()
            .is_some_and(|a| a.starts_with("https://")),
        "{rec:?}"
    );
    // The node group EKS made once the control plane ran is recorded for delete.
    assert!(
        rec.resources
            .iter()
            .any(|r| r.kind == "node-group" && r.id == "pool-1"),
        "{:?}",
        rec.resources
    );
    let (status, body) = moto.eks_get(&format!("/clusters/{name}")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&rec.id), "tagged with the record id: {body}");

    let done = host
        .delete_cluster(&name, false, &fast_deploy())
        .await
        .expect("EKS cluster deleted");
    assert_eq!(done.status, DeploymentStatus::Terminated);
    let (status, _) = moto.eks_get(&format!("/clusters/{name}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        statuses(&host, &rec.id)[4..],
        [
            DeploymentStatus::Active,
            DeploymentStatus::Terminating,
            DeploymentStatus::Terminated
        ]
    );
    host.shutdown().await;
}

/// The record exactly as `create_cluster` leaves it right before calling the
/// provider: `provisioning`, the attempt's intent committed. Returns the spec the
/// provider would get.
fn record_intent(
    host: &blueprint_remote_providers::Host,
    id: &str,
    req: &ClusterRequest,
) -> ClusterSpec {
    let tracker = host.tracker();
    let mut stored = req.clone();
    stored.deployment_id = Some(id.to_string());
    let rec = tracker
        .create_cluster(
            &NewDeployment {
                id: id.to_string(),
                deployment_type: DeploymentType::Cluster,
                ttl_secs: req.ttl_secs,
                request_json: serde_json::to_string(&stored).unwrap(),
                ..NewDeployment::default()
            },
            &req.name,
        )
        .unwrap();
    tracker
        .transition(id, DeploymentStatus::Provisioning, "creating")
        .unwrap();
    let key = format!("{id}-c1");
    tracker
        .begin_attempt(
            id,
            &AttemptIntent {
                provider: &req.provider,
                region: &req.region,
                zone: None,
                instance_type: &req.pools_label(),
                spot: false,
                hourly_usd: None,
                idempotency_key: &key,
            },
        )
        .unwrap();
    ClusterSpec {
        name: req.name.clone(),
        deployment_id: id.to_string(),
        idempotency_key: key,
        region: req.region.clone(),
        kubernetes_version: None,
        node_pools: vec![blueprint_remote_providers::wit::NodePoolSpec {
            name: "pool-1".into(),
            instance_type: req.node_pools[0].instance_type.clone(),
            count: req.node_pools[0].count,
            min_count: None,
            max_count: None,
            spot: false,
            disk_gib: None,
        }],
        labels: rec.labels.into_iter().collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_create_cluster_and_its_record_is_resolved_by_asking_the_provider() {
    let f = Fixture::new().await;
    let n = crate::kubernetes::unique_service();
    // Crashed after the provider created the cluster, before its answer was recorded.
    let created_id = format!("dep-crash-created-{n}");
    let created_req = doks(&format!("crash-a-{n}"));
    let spec = record_intent(&f.host, &created_id, &created_req);
    let made = f
        .do_
        .create_cluster(spec)
        .await
        .expect("the provider creates it");
    // Crashed after recording the intent, before the provider was called.
    let never_id = format!("dep-crash-never-{n}");
    record_intent(&f.host, &never_id, &doks(&format!("crash-b-{n}")));

    let report = f.host.recover_with(&fast_deploy()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.failed, vec![never_id.clone()]);

    // The created one: found by name, adopted with the provider's id, and (once it
    // runs) active; one more pass if it was still provisioning.
    let mut rec = f.host.tracker().get(&created_id).unwrap();
    if rec.status != DeploymentStatus::Active {
        let again = f.host.recover_with(&fast_deploy()).await;
        assert!(again.errors.is_empty(), "{:?}", again.errors);
        rec = f.host.tracker().get(&created_id).unwrap();
    }
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.instance_id.as_deref(), Some(made.id.as_str()));
    let history = f.host.history(&created_id).unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.reason.contains("created before the answer was recorded")),
        "{history:?}"
    );
    // The provider was asked by name: a GET of the cluster list, never a second create.
    let posts = f
        .stand
        .requests()
        .await
        .into_iter()
        .filter(|(m, p)| m == "POST" && p.starts_with("/v2/kubernetes/clusters"))
        .count();
    assert_eq!(posts, 1);

    // The never-created one: failed, nothing at the provider, nothing held.
    let never = f.host.tracker().get(&never_id).unwrap();
    assert_eq!(never.status, DeploymentStatus::Failed);
    assert!(!never.holds_resources());
    assert_eq!(
        f.host.tracker().attempts(&never_id).unwrap()[0].outcome,
        AttemptOutcome::Failed
    );
    assert_eq!(
        f.stand.state().await["clusters"].as_array().unwrap().len(),
        1
    );

    // Nothing leaks: terminating the adopted record deletes the cluster.
    f.host
        .terminate_with(&created_id, &fast_deploy(), "test over")
        .await
        .expect("terminated");
    assert!(
        f.stand.state().await["clusters"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_create_cluster_and_its_record_is_resolved_on_eks_too() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    moto.set_auth(false).await;
    let env = TestEnv::new();
    let host = moto_host(&env, &moto, ("AKIDEKSCRASH", "eks-secret")).await;
    let id = unique("dep-eks-crash");
    let req = ClusterRequest::new(unique("eks-crash"), "aws", "us-east-1", "t3.medium", 1);
    let spec = record_intent(&host, &id, &req);
    host.provider("aws")
        .unwrap()
        .create_cluster(spec)
        .await
        .expect("EKS creates it");
    let report = host.recover_with(&fast_deploy()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.adopted.contains(&id), "{report:?}");
    let rec = host.tracker().get(&id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.instance_id.as_deref(), Some(req.name.as_str()));
    host.terminate_with(&id, &fast_deploy(), "test over")
        .await
        .expect("terminated");
    let (status, _) = moto.eks_get(&format!("/clusters/{}", req.name)).await;
    assert_eq!(status, 404);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_whose_time_to_live_ran_out_is_deleted_by_the_supervisor() {
    let f = Fixture::new().await;
    let mut events = f.host.subscribe();
    let name = format!("ttl-{}", crate::kubernetes::unique_service());
    let mut req = doks(&name);
    req.ttl_secs = Some(1);
    let rec = f.host.create_cluster(req, &fast()).await.expect("created");
    assert_eq!(rec.status, DeploymentStatus::Active);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let opts = SupervisorOptions {
        deploy: fast_deploy(),
        ..SupervisorOptions::default()
    };
    let (done, errors) = f.host.cleanup_once(&opts).await;
    assert!(done.contains(&rec.id), "{done:?} {errors:?}");
    let rec = f.host.tracker().get(&rec.id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Terminated);
    let history = f.host.history(&rec.id).unwrap();
    assert!(
        history
            .iter()
            .any(|t| t.to == DeploymentStatus::Terminating
                && t.reason.contains("TTL of 1 s expired")),
        "{history:?}"
    );
    assert!(
        f.stand.state().await["clusters"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        if e.deployment_id == rec.id {
            kinds.push(e.kind);
        }
    }
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EventKind::Expired { ttl_secs: Some(1) }))
            && matches!(kinds.last(), Some(EventKind::Terminated { .. })),
        "{kinds:?}"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_create_ends_failed_and_an_invalid_one_writes_nothing() {
    let f = Fixture::new().await;
    // DigitalOcean has no spot nodes: the component refuses before creating.
    let mut spot = doks(&format!("spot-{}", crate::kubernetes::unique_service()));
    spot.node_pools[0].spot = true;
    let err = f
        .host
        .create_cluster(spot, &fast())
        .await
        .expect_err("refused");
    let ClusterError::Refused { id, .. } = &err else {
        panic!("{err}");
    };
    assert!(err.to_string().contains("spot"), "{err}");
    let rec = f.host.tracker().get(id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Failed);
    assert!(!rec.holds_resources());
    assert!(
        f.stand.state().await["clusters"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let before = f.host.status(None).unwrap().len();
    let mut bad = doks("Bad_Name");
    bad.ttl_secs = Some(60);
    let err = f
        .host
        .create_cluster(bad, &fast())
        .await
        .expect_err("invalid");
    assert!(
        matches!(&err, ClusterError::InvalidRequest(e) if e.field == "name"),
        "{err}"
    );
    let err = f
        .host
        .create_cluster(
            ClusterRequest::new("no-k8s", "nowhere", "nyc1", "s-1vcpu-1gb", 1),
            &fast(),
        )
        .await
        .expect_err("unknown provider");
    assert!(matches!(&err, ClusterError::ProviderUnfit { .. }), "{err}");
    assert_eq!(f.host.status(None).unwrap().len(), before);
    f.finish().await;
}

// --- the `bpr` binary -------------------------------------------------------

fn bpr(config: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpr"));
    c.args(args)
        .env("BPR_CONFIG", config)
        .env("RUST_LOG", "error");
    c
}

fn run(config: &Path, args: &[&str]) -> (Output, String, String) {
    let out = bpr(config, args).output().expect("bpr runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (out, stdout, stderr)
}

fn write_config(f: &Fixture) -> PathBuf {
    let path = f._env.dir.path().join("operator.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n{}",
            f._env.host_section("warn", false),
            f.provider_section
        ),
    )
    .unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_k8s_create_killed_while_waiting_is_finished_by_bpr_cleanup_and_deleted() {
    let f = Fixture::new().await;
    // The cluster stays provisioning until the test lets it run.
    f.stand
        .control(
            "/_fake/config",
            json!({ "cluster_running_after_gets": 100000 }),
        )
        .await;
    let config = write_config(&f);
    let name = format!("cli-{}", crate::kubernetes::unique_service());
    let mut child = bpr(
        &config,
        &[
            "k8s",
            "create",
            "--name",
            &name,
            "--provider",
            "digitalocean",
            "--region",
            "nyc1",
            "--node-type",
            "s-1vcpu-1gb",
            "--nodes",
            "2",
            "--ttl",
            "3600",
        ],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .expect("bpr starts");
    // Wait until it is waiting for the cluster to run, then kill it.
    let tracker = f.host.tracker();
    let mut waiting = None;
    for _ in 0..600 {
        if let Some(r) = tracker.live_cluster(&name).unwrap()
            && r.status == DeploymentStatus::Deploying
        {
            waiting = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let rec = waiting.expect("bpr k8s create reached deploying");
    assert!(rec.instance_id.is_some());

    // Still provisioning: cleanup checks it and leaves it waiting.
    let (out, stdout, stderr) = run(&config, &["cleanup"]);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        tracker.get(&rec.id).unwrap().status,
        DeploymentStatus::Deploying
    );
    // It runs now: cleanup moves it to active.
    f.stand
        .control("/_fake/config", json!({ "cluster_running_after_gets": 0 }))
        .await;
    let (out, stdout, stderr) = run(&config, &["cleanup"]);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert_eq!(
        tracker.get(&rec.id).unwrap().status,
        DeploymentStatus::Active
    );

    let (out, stdout, stderr) = run(&config, &["k8s", "list"]);
    assert!(out.status.success(), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&name))
        .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"));
    assert!(
        line.contains("active")
            && line.contains("digitalocean/nyc1")
            && line.contains("2x s-1vcpu-1gb"),
        "{line}"
    );
    let (out, stdout, stderr) = run(&config, &["history", &rec.id]);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("recovery: cluster"), "{stdout}");

    let (out, stdout, stderr) = run(&config, &["k8s", "delete", &name]);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("terminated"), "{stdout}");
    assert!(
        f.stand.state().await["clusters"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (out, _, stderr) = run(&config, &["k8s", "delete", "no-such-cluster"]);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no managed cluster \"no-such-cluster\""),
        "{stderr}"
    );
    f.finish().await;
}
