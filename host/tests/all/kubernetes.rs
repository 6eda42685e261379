//! Issue 8: Kubernetes deployments through the tracker, against kmock plus the
//! project's shim (`scripts/standins/kmock.sh start`, URL in `BPR_TEST_KMOCK_URL`):
//! `Host::deploy` with a `kubernetes` request, status, update, suspend and resume,
//! terminate, TTL cleanup, recovery after a crash, and the real `bpr` binary.
//!
//! Nothing reconciles in kmock, so [`controller`] plays the workload controllers of a
//! real cluster: it marks the Deployments/StatefulSets of one namespace rolled out.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blueprint_remote_providers::Host;
use blueprint_remote_providers::kubernetes::{self, LABEL_DEPLOYMENT, Tier, WorkloadKind};
use blueprint_remote_providers::provisioning::{
    DeployError, DeployOptions, DeployRequest, HealthCheck, KubernetesChange, KubernetesOptions,
    SupervisorOptions,
};
use blueprint_remote_providers::tracking::{
    AttemptIntent, AttemptOutcome, DeploymentStatus, DeploymentType, NewDeployment,
};
use blueprint_remote_providers::workload::{PortSpec, WorkloadSource, WorkloadSpec};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Service};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::support::TestEnv;

pub(crate) fn kmock_url() -> String {
    std::env::var("BPR_TEST_KMOCK_URL").unwrap_or_else(|_| {
        panic!(
            "BPR_TEST_KMOCK_URL is not set: start the stand-in with `scripts/standins/kmock.sh start` \
             and export BPR_TEST_KMOCK_URL=http://127.0.0.1:6443 (CI does both)"
        )
    })
}

/// A service id no earlier run used: kmock keeps state between runs.
pub(crate) fn unique_service() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    u64::try_from(nanos % 1_000_000_000_000).unwrap() * 100 + N.fetch_add(1, Ordering::SeqCst)
}

/// A kubeconfig with two contexts on kmock (`a` on 127.0.0.1, `b` on localhost).
fn kubeconfig(dir: &Path) -> PathBuf {
    let url = kmock_url();
    let alt = url.replace("127.0.0.1", "localhost");
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n\
         - name: a\n  cluster:\n    server: {url}\n- name: b\n  cluster:\n    server: {alt}\n\
         contexts:\n- name: a\n  context:\n    cluster: a\n    user: tester\n\
         - name: b\n  context:\n    cluster: b\n    user: tester\n\
         users:\n- name: tester\n  user:\n    token: test-token\n"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text).unwrap();
    path
}

/// The `[operator.kubernetes]` section: clusters `kmock-a` and `kmock-b`.
fn clusters_section(dir: &Path) -> String {
    let path = kubeconfig(dir);
    format!(
        "[operator.kubernetes]\nclusters = [\n  {{ name = \"kmock-a\", kubeconfig = {path:?}, context = \"a\" }},\n  \
         {{ name = \"kmock-b\", kubeconfig = {path:?}, context = \"b\" }},\n]\n"
    )
}

async fn start(env: &TestEnv) -> Host {
    env.start(&clusters_section(env.dir.path())).await
}

pub(crate) fn fast() -> DeployOptions {
    DeployOptions {
        health_timeout: Duration::from_secs(10),
        poll_initial: Duration::from_millis(50),
        poll_max: Duration::from_millis(50),
        ..DeployOptions::default()
    }
}

pub(crate) fn request(service: u64, cluster: &str, tier: Tier) -> DeployRequest {
    let mut r = DeployRequest::new("7", service.to_string());
    r.deployment_type = DeploymentType::Kubernetes;
    let mut k = KubernetesOptions::new(cluster);
    k.tier = tier;
    r.kubernetes = Some(k);
    r.workload = Some(WorkloadSpec {
        source: WorkloadSource::Container {
            image: "ghcr.io/tangle/svc:1.0".into(),
            args: vec!["--serve".into()],
            env: [("RUST_LOG".to_string(), "info".to_string())].into(),
            ports: vec![PortSpec {
                container_port: 8080,
                host_port: None,
                public: true,
            }],
        },
        cpu_limit: None,
        memory_limit_mib: None,
    });
    r.health = Some(HealthCheck {
        port: 8080,
        path: Some("/health".into()),
    });
    r
}

/// Marks the workloads of `namespace` rolled out for their generation and replicas.
pub(crate) fn controller(client: kube::Client, namespace: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
            if let Ok(list) = deployments.list(&Default::default()).await {
                for d in list.items {
                    let n = d.spec.replicas.unwrap_or(1);
                    let generation = d.metadata.generation.unwrap_or(1);
                    let s = d.status.clone().unwrap_or_default();
                    if s.observed_generation != Some(generation) || s.replicas != Some(n) {
                        let status = json!({"status": {"observedGeneration": generation, "replicas": n,
                            "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n,
                            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]}});
                        let name = d.metadata.name.clone().unwrap_or_default();
                        let _ = deployments
                            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                            .await;
                    }
                }
            }
            let sets: Api<StatefulSet> = Api::namespaced(client.clone(), &namespace);
            if let Ok(list) = sets.list(&Default::default()).await {
                for d in list.items {
                    let n = d.spec.replicas.unwrap_or(1);
                    let generation = d.metadata.generation.unwrap_or(1);
                    let s = d.status.clone().unwrap_or_default();
                    if s.observed_generation != Some(generation) || s.replicas != n {
                        let status = json!({"status": {"observedGeneration": generation, "replicas": n,
                            "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n}});
                        let name = d.metadata.name.clone().unwrap_or_default();
                        let _ = sets
                            .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                            .await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    })
}

async fn namespace_exists(host: &Host, cluster: &str, ns: &str) -> bool {
    let client = host.cluster(cluster).await.unwrap().client().clone();
    Api::<Namespace>::all(client)
        .get_opt(ns)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_kubernetes_deployment_is_tracked_from_planned_to_active_updated_suspended_resumed_and_terminated()
 {
    let env = TestEnv::new();
    let host = start(&env).await;
    let service = unique_service();
    let ns = format!("bpr-7-{service}");
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let ctl = controller(client.clone(), ns.clone());

    let rec = host
        .deploy_with(request(service, "kmock-a", Tier::Standard), vec![], &fast())
        .await
        .expect("deploys");
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.deployment_type, DeploymentType::Kubernetes);
    assert_eq!(rec.cluster.as_deref(), Some("kmock-a"));
    let target = rec.kubernetes.clone().expect("target recorded");
    assert_eq!(
        (target.namespace.as_str(), target.workload),
        (ns.as_str(), WorkloadKind::Deployment)
    );
    assert_eq!(
        (
            rec.provider.as_deref(),
            rec.region.as_deref(),
            rec.instance_type.as_deref()
        ),
        (Some("kubernetes"), Some("kmock-a"), Some("standard"))
    );
    assert_eq!(rec.instance_id.as_deref(), Some(target.object().as_str()));
    assert_eq!(
        rec.address,
        Some(format!("{}.{ns}.svc", target.name)),
        "a ClusterIP service is recorded by its in-cluster DNS name"
    );
    let history: Vec<DeploymentStatus> = host
        .history(&rec.id)
        .unwrap()
        .iter()
        .map(|t| t.to)
        .collect();
    assert_eq!(
        history,
        [
            DeploymentStatus::Planned,
            DeploymentStatus::Provisioning,
            DeploymentStatus::Provisioned,
            DeploymentStatus::Deploying,
            DeploymentStatus::Active
        ]
    );
    let attempts = host.tracker().attempts(&rec.id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Used);

    // What the server holds: labelled by the deployment, the container from the workload.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let d = deployments.get(&target.name).await.unwrap();
    let labels = d.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(LABEL_DEPLOYMENT), Some(&rec.id));
    // kmock keeps no managedFields; the field manager and patch type of every request
    // are asserted with kube's tower-test mock (kubernetes::tests::mock_tests).
    let container = &d.spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container.args.as_deref(),
        Some(&["--serve".to_string()][..])
    );
    assert_eq!(container.image.as_deref(), Some("ghcr.io/tangle/svc:1.0"));
    assert!(container.readiness_probe.is_some(), "health check → probes");

    let status = host.workload_status(&rec.id).await.expect("live status");
    assert_eq!((status.desired, status.ready), (2, 2));

    // Update image and tier.
    let status = host
        .update(
            &rec.id,
            &KubernetesChange {
                image: Some("ghcr.io/tangle/svc:1.1".into()),
                tier: Some(Tier::Premium),
            },
            &fast(),
        )
        .await
        .expect("update");
    assert_eq!(status.desired, 3, "premium: 3 replicas");
    let d = deployments.get(&target.name).await.unwrap();
    let pod = d.spec.template.spec.unwrap();
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("ghcr.io/tangle/svc:1.1")
    );
    let stored: DeployRequest =
        serde_json::from_str(&host.tracker().get(&rec.id).unwrap().request_json).unwrap();
    assert_eq!(stored.kubernetes.unwrap().tier, Tier::Premium);

    // Payment expiry and renewal.
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let status = host.suspend(&rec.id, &fast()).await.expect("suspend");
    assert_eq!((status.desired, status.current), (0, 0));
    assert!(hpas.get_opt(&target.name).await.unwrap().is_none());
    let status = host.resume(&rec.id, &fast()).await.expect("resume");
    assert_eq!((status.desired, status.ready), (3, 3));
    assert!(hpas.get_opt(&target.name).await.unwrap().is_some());
    let events: Vec<String> = host
        .history(&rec.id)
        .unwrap()
        .into_iter()
        .filter(|t| t.from == Some(t.to))
        .map(|t| t.reason)
        .collect();
    assert!(
        events.iter().any(|e| e.starts_with("suspended"))
            && events.iter().any(|e| e.starts_with("resumed")),
        "{events:?}"
    );

    let done = host.terminate(&rec.id).await.expect("terminate");
    ctl.abort();
    assert_eq!(done.status, DeploymentStatus::Terminated);
    assert!(!done.holds_resources());
    assert!(
        !namespace_exists(&host, "kmock-a", &ns).await,
        "namespace gone"
    );
    let again = host.terminate(&rec.id).await.expect("idempotent");
    assert_eq!(again.status, DeploymentStatus::Terminated);
}

#[tokio::test]
async fn a_public_deployment_is_recorded_at_its_load_balancer_address_once_the_cloud_assigns_one() {
    let env = TestEnv::new();
    let host = start(&env).await;
    let service = unique_service();
    let ns = format!("bpr-7-{service}");
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let ctl = controller(client.clone(), ns.clone());
    let mut req = request(service, "kmock-a", Tier::Basic);
    req.kubernetes.as_mut().unwrap().public = true;

    let rec = host
        .deploy_with(req, vec![], &fast())
        .await
        .expect("deploys");
    let target = rec.kubernetes.clone().unwrap();
    let in_cluster = format!("{}.{ns}.svc", target.name);
    assert_eq!(rec.address.as_deref(), Some(in_cluster.as_str()));
    let pending = host
        .service_address(&rec.id)
        .await
        .unwrap()
        .expect("a Service");
    assert_eq!(pending.type_, "LoadBalancer");
    assert!(pending.external_pending(), "{pending:?}");
    assert_eq!(pending.ports, ["8080/TCP"]);

    // The cloud's load-balancer controller fills in the ingress later.
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    services
        .patch_status(
            &target.name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}),
            ),
        )
        .await
        .expect("kmock stores the Service status");
    let assigned = host.service_address(&rec.id).await.unwrap().unwrap();
    assert_eq!(assigned.external.as_deref(), Some("203.0.113.7"));
    assert_eq!(
        host.tracker().get(&rec.id).unwrap().address.as_deref(),
        Some("203.0.113.7"),
        "the newly assigned address is recorded"
    );

    host.terminate(&rec.id).await.expect("terminate");
    ctl.abort();
    assert!(matches!(
        host.service_address(&rec.id).await,
        Err(DeployError::Kubernetes { .. })
    ));
}

#[tokio::test]
async fn two_clusters_in_one_config_each_run_their_deployment() {
    let env = TestEnv::new();
    let host = start(&env).await;
    let base = unique_service();
    let mut ids = Vec::new();
    for (i, cluster) in ["kmock-a", "kmock-b"].into_iter().enumerate() {
        let service = base + 50 + i as u64;
        let client = host.cluster(cluster).await.unwrap().client().clone();
        let ctl = controller(client, format!("bpr-7-{service}"));
        let rec = host
            .deploy_with(request(service, cluster, Tier::Basic), vec![], &fast())
            .await
            .expect("deploys");
        ctl.abort();
        assert_eq!(rec.cluster.as_deref(), Some(cluster));
        assert_eq!(rec.status, DeploymentStatus::Active);
        ids.push(rec.id);
    }
    for id in ids {
        host.terminate(&id).await.expect("terminate");
    }
}

#[tokio::test]
async fn an_unknown_cluster_or_a_bad_kubeconfig_is_refused_naming_it_and_nothing_is_recorded() {
    let env = TestEnv::new();
    let broken = env.dir.path().join("broken.kubeconfig");
    std::fs::write(&broken, "clusters: [oops").unwrap();
    let section = clusters_section(env.dir.path()).replace(
        "clusters = [\n",
        &format!("clusters = [\n  {{ name = \"broken\", kubeconfig = {broken:?} }},\n"),
    );
    let host = env.start(&section).await;

    let err = host
        .deploy_with(
            request(unique_service(), "nope", Tier::Basic),
            vec![],
            &fast(),
        )
        .await
        .expect_err("unknown cluster");
    let text = err.to_string();
    assert!(matches!(err, DeployError::InvalidRequest(_)), "{err:?}");
    assert!(
        text.contains("nope") && text.contains("kmock-a") && text.contains("kubernetes.cluster"),
        "{text}"
    );

    let err = host
        .deploy_with(
            request(unique_service(), "broken", Tier::Basic),
            vec![],
            &fast(),
        )
        .await
        .expect_err("bad kubeconfig");
    let text = err.to_string();
    assert!(
        text.contains("broken") && text.contains("broken.kubeconfig"),
        "{text}"
    );
    assert!(host.status(None).unwrap().is_empty(), "nothing recorded");
}

#[tokio::test]
async fn an_invalid_kubernetes_request_names_the_field_and_records_nothing() {
    let env = TestEnv::new();
    let host = start(&env).await;
    let mut r = request(unique_service(), "kmock-a", Tier::Basic);
    r.blueprint_id = "my-blueprint".into();
    let err = host.deploy_with(r, vec![], &fast()).await.unwrap_err();
    assert!(err.to_string().contains("blueprint_id"), "{err}");

    let mut r = request(unique_service(), "kmock-a", Tier::Basic);
    r.disk_gib = 40;
    let err = host.deploy_with(r, vec![], &fast()).await.unwrap_err();
    assert!(err.to_string().contains("disk_gib"), "{err}");

    let mut r = request(unique_service(), "kmock-a", Tier::Basic);
    if let Some(k) = r.kubernetes.as_mut() {
        k.storage = Some(kubernetes::StorageRequest {
            size: "ten gigs".into(),
            mount_path: "/data".into(),
            storage_class: None,
        });
    }
    let err = host.deploy_with(r, vec![], &fast()).await.unwrap_err();
    assert!(err.to_string().contains("storage"), "{err}");
    assert!(host.status(None).unwrap().is_empty());
}

#[tokio::test]
async fn a_rollout_that_does_not_converge_fails_and_deletes_what_it_applied() {
    let env = TestEnv::new();
    let host = start(&env).await;
    let service = unique_service();
    let opts = DeployOptions {
        health_timeout: Duration::from_millis(600),
        ..fast()
    };
    // No controller: the Deployment never reports ready replicas.
    let err = host
        .deploy_with(request(service, "kmock-a", Tier::Basic), vec![], &opts)
        .await
        .expect_err("rollout times out");
    let DeployError::Unhealthy { id, source } = &err else {
        panic!("{err:?}");
    };
    let message = source.to_string();
    assert!(
        message.contains("did not") || message.contains("deadline"),
        "{message}"
    );
    let rec = host.tracker().get(id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Terminated);
    assert!(!rec.holds_resources());
    assert!(
        rec.last_error
            .is_some_and(|e| e.contains(&format!("bpr-7-{service}")))
    );
    assert!(!namespace_exists(&host, "kmock-a", &format!("bpr-7-{service}")).await);
}

#[tokio::test]
async fn a_kubernetes_deployment_whose_ttl_expired_is_terminated_by_cleanup() {
    let env = TestEnv::new();
    let host = start(&env).await;
    let service = unique_service();
    let ns = format!("bpr-7-{service}");
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let ctl = controller(client, ns.clone());
    let mut r = request(service, "kmock-a", Tier::Basic);
    r.ttl_secs = Some(1);
    let rec = host.deploy_with(r, vec![], &fast()).await.expect("deploys");
    ctl.abort();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let opts = SupervisorOptions {
        deploy: fast(),
        ..SupervisorOptions::default()
    };
    let (done, errors) = host.cleanup_once(&opts).await;
    assert!(done.contains(&rec.id), "{done:?} {errors:?}");
    let rec = host.tracker().get(&rec.id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Terminated);
    assert!(!namespace_exists(&host, "kmock-a", &ns).await);
}

/// Leaves a record as a process killed mid-deploy would: target recorded, objects
/// applied, status `deploying`.
async fn crashed_mid_deploy(host: &Host, service: u64) -> String {
    let req = request(service, "kmock-a", Tier::Basic);
    let id = format!("dep-crash-{service}");
    let wanted = req
        .kubernetes_request(&id, &host.config().operator.scaling)
        .unwrap();
    let tracker = host.tracker();
    tracker
        .create(&NewDeployment {
            id: id.clone(),
            blueprint_id: "7".into(),
            service_id: service.to_string(),
            deployment_type: DeploymentType::Kubernetes,
            labels: Default::default(),
            ttl_secs: None,
            cleanup_webhook: None,
            request_json: serde_json::to_string(&req).unwrap(),
            service_key: None,
        })
        .unwrap();
    tracker
        .transition(&id, DeploymentStatus::Provisioning, "test")
        .unwrap();
    let n = tracker
        .begin_attempt(
            &id,
            &AttemptIntent {
                provider: "kubernetes",
                region: "kmock-a",
                zone: None,
                instance_type: "basic",
                spot: false,
                hourly_usd: None,
                idempotency_key: "k",
            },
        )
        .unwrap();
    tracker
        .record_kubernetes(&id, n, "kmock-a", &wanted.target())
        .unwrap();
    let cluster = host.cluster("kmock-a").await.unwrap();
    cluster
        .deployer()
        .apply(&kubernetes::render(&wanted).unwrap())
        .await
        .unwrap();
    for s in [DeploymentStatus::Provisioned, DeploymentStatus::Deploying] {
        tracker.transition(&id, s, "test").unwrap();
    }
    id
}

#[tokio::test]
async fn recovery_adopts_a_crashed_deployment_that_rolled_out_and_deletes_one_that_did_not() {
    let env = TestEnv::new();
    let host = start(&env).await;
    let rolled = unique_service();
    let stuck = rolled + 1;
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let adopted_id = crashed_mid_deploy(&host, rolled).await;
    let stuck_id = crashed_mid_deploy(&host, stuck).await;
    // Only the first one's controller acts (as if its pods came up after the crash).
    let ctl = controller(client, format!("bpr-7-{rolled}"));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let report = host.recover_with(&fast()).await;
    ctl.abort();
    assert!(report.adopted.contains(&adopted_id), "{report:?}");
    assert!(report.failed.contains(&stuck_id), "{report:?}");
    assert_eq!(
        host.tracker().get(&adopted_id).unwrap().status,
        DeploymentStatus::Active
    );
    let stuck_rec = host.tracker().get(&stuck_id).unwrap();
    assert_eq!(stuck_rec.status, DeploymentStatus::Terminated);
    assert!(!namespace_exists(&host, "kmock-a", &format!("bpr-7-{stuck}")).await);
    host.terminate(&adopted_id).await.expect("terminate");
}

#[tokio::test]
async fn bpr_deploy_target_k8s_status_and_terminate_through_the_binary() {
    let env = TestEnv::new();
    let config = env.dir.path().join("bpr.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n{}",
            env.host_section("warn", false),
            clusters_section(env.dir.path())
        ),
    )
    .unwrap();
    let service = unique_service();
    let host = start(&env).await;
    let client = host.cluster("kmock-b").await.unwrap().client().clone();
    let ctl = controller(client, format!("bpr-7-{service}"));
    let bpr = |args: Vec<String>| {
        let config = config.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_bpr"))
                .arg("--config")
                .arg(&config)
                .args(&args)
                .env("RUST_LOG", "warn")
                .output()
                .await
                .unwrap()
        }
    };
    let id = format!("dep-cli-{service}");
    let out = bpr([
        "deploy",
        "--target",
        "k8s:kmock-b",
        "--blueprint",
        "7",
        "--service",
        &service.to_string(),
        "--id",
        &id,
        "--container",
        "ghcr.io/tangle/svc:1.0",
        "--port",
        "8080",
        "--health-port",
        "8080",
        "--tier",
        "standard",
        "--timeout-secs",
        "20",
    ]
    .map(String::from)
    .to_vec())
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Kubernetes cluster kmock-b"), "{stdout}");
    assert!(stdout.contains("active"), "{stdout}");

    let out = bpr(vec!["status".into(), id.clone()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("kubernetes/kmock-b/standard") && stdout.contains("2/2 ready"),
        "{stdout}"
    );
    assert!(
        stdout.contains("service: ClusterIP ") && stdout.contains(".svc ports 8080/TCP"),
        "{stdout}"
    );

    let out = bpr(vec![
        "suspend".into(),
        id.clone(),
        "--timeout-secs".into(),
        "20".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("0/0 ready"));

    let out = bpr(vec![
        "resume".into(),
        id.clone(),
        "--ttl".into(),
        "3600".into(),
        "--timeout-secs".into(),
        "20".into(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2/2 ready"));
    let rec = host.tracker().get(&id).unwrap();
    assert_eq!(rec.ttl_secs, Some(3600));
    assert!(rec.expires_at.is_some_and(|e| e > rec.created_at + 3500));

    let out = bpr(vec!["terminate".into(), id.clone()]).await;
    ctl.abort();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        host.tracker().get(&id).unwrap().status,
        DeploymentStatus::Terminated
    );

    // A target that is not k8s:<cluster>, and a cluster that does not exist.
    let out = bpr([
        "deploy",
        "--target",
        "kmock-b",
        "--blueprint",
        "7",
        "--service",
        "1",
        "--container",
        "x:1",
    ]
    .map(String::from)
    .to_vec())
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("k8s:<cluster>"));
    let out = bpr([
        "deploy",
        "--target",
        "k8s:elsewhere",
        "--blueprint",
        "7",
        "--service",
        "1",
        "--container",
        "x:1",
    ]
    .map(String::from)
    .to_vec())
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("elsewhere") && stderr.contains("kmock-a, kmock-b"),
        "{stderr}"
    );
}

#[tokio::test]
#[ignore = "needs cluster: KUBECONFIG pointing at k3d, kind or minikube"]
async fn real_cluster_tracked_deployment_goes_active_and_terminates() {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG must point at a test cluster");
    let env = TestEnv::new();
    let host = env
        .start(&format!(
            "[operator.kubernetes]\nclusters = [ {{ name = \"real\", kubeconfig = {path:?} }} ]\n"
        ))
        .await;
    let mut r = request(unique_service(), "real", Tier::Basic);
    // An image that runs as a numeric non-root user with a read-only root.
    if let Some(WorkloadSpec {
        source: WorkloadSource::Container { image, args, .. },
        ..
    }) = r.workload.as_mut()
    {
        *image = "nginxinc/nginx-unprivileged:1.27-alpine".into();
        args.clear();
    }
    if let Some(k) = r.kubernetes.as_mut() {
        k.run_as_user = Some(101);
    }
    r.health = Some(HealthCheck {
        port: 8080,
        path: Some("/".into()),
    });
    let opts = DeployOptions {
        health_timeout: Duration::from_secs(300),
        ..DeployOptions::default()
    };
    let rec = host.deploy_with(r, vec![], &opts).await.expect("deploys");
    assert_eq!(rec.status, DeploymentStatus::Active);
    let status = host.workload_status(&rec.id).await.expect("status");
    assert!(status.rolled_out(), "{}", status.describe());
    let done = host.terminate(&rec.id).await.expect("terminate");
    assert_eq!(done.status, DeploymentStatus::Terminated);
}

/// Issue 12: a service event under `mode = "local"` with no SSH host lands on the
/// operator's cluster; a payment renews its TTL and scales it back up after
/// suspension; the service's end deletes it.
#[tokio::test]
async fn in_local_mode_a_service_event_lands_on_the_cluster_and_a_payment_scales_it_back_up() {
    use blueprint_remote_providers::embedding::{
        DeployArtifact, EmbeddingOptions, RemoteDeployments, ResourceSpec, ServiceKey,
    };
    let env = TestEnv::new();
    let host = env
        .start(&format!(
            "[operator.deployment]\nmode = \"local\"\n{}",
            clusters_section(env.dir.path())
        ))
        .await;
    let service = unique_service();
    let ns = format!("bpr-7-{service}");
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let ctl = controller(client, ns.clone());
    let remote = RemoteDeployments::new(
        host.clone(),
        EmbeddingOptions {
            default_ttl_secs: Some(60),
            arch: None,
            deploy: fast(),
            ..EmbeddingOptions::default()
        },
    );
    let small = ResourceSpec {
        cpu: 0.5,
        memory_gb: 0.5,
        storage_gb: 0.0,
        ..ResourceSpec::default()
    };
    let rec = remote
        .on_service_initiated(
            7,
            service,
            Some(small),
            Some(DeployArtifact::ContainerImage(
                "ghcr.io/tangle/svc:1.0".into(),
            )),
            Default::default(),
        )
        .await
        .expect("lands on the operator's cluster");
    assert_eq!(rec.deployment_type, DeploymentType::Kubernetes);
    assert_eq!(rec.cluster.as_deref(), Some("kmock-a"));
    assert_eq!(
        rec.instance_type.as_deref(),
        Some("standard"),
        "the tier that fits"
    );
    assert_eq!(rec.status, DeploymentStatus::Active);
    let expires = rec.expires_at.expect("a TTL");

    // Payment expired: scaled to zero. A new payment: a new TTL, scaled back.
    let suspended = host.suspend(&rec.id, &fast()).await.unwrap();
    assert_eq!(suspended.desired, 0);
    let key = ServiceKey::new(7, service);
    let renewed = remote.renew(key, 3600).await.expect("renews");
    assert!(renewed.expires_at.unwrap() >= expires + 3000, "{renewed:?}");
    let status = host.workload_status(&rec.id).await.unwrap();
    assert_eq!(
        (status.desired, status.ready),
        (2, 2),
        "scaled back to its tier"
    );

    let done = remote
        .on_service_terminated(7, service)
        .await
        .unwrap()
        .expect("it had a deployment");
    assert_eq!(done.status, DeploymentStatus::Terminated);
    assert!(!namespace_exists(&host, "kmock-a", &ns).await);
    ctl.abort();
}
