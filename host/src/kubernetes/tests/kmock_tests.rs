//! Stateful flows against kmock plus the project's shim (`scripts/standins/kmock.sh
//! start`, URL in `BPR_TEST_KMOCK_URL`), and the same flow against a real cluster
//! (`KUBECONFIG`, ignored by default).
//!
//! Nothing reconciles in kmock, so [`fake_controller`] plays the workload controllers:
//! it marks every Deployment/StatefulSet in the test's namespaces as rolled out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::cluster_tests::{kubeconfig, write};
use super::*;

fn kmock_url() -> String {
    std::env::var("BPR_TEST_KMOCK_URL").unwrap_or_else(|_| {
        panic!(
            "BPR_TEST_KMOCK_URL is not set: start the stand-in with `scripts/standins/kmock.sh start` \
             and export BPR_TEST_KMOCK_URL=http://127.0.0.1:6443 (CI does both)"
        )
    })
}

/// A service id no earlier run used: kmock keeps state between test runs.
fn unique_id() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    u64::try_from(nanos % 1_000_000_000_000).expect("fits")
}

fn fast() -> RolloutOptions {
    RolloutOptions {
        deadline: Duration::from_secs(10),
        poll_interval: Duration::from_millis(50),
    }
}

/// Marks workloads in `namespace` rolled out for their current generation and replicas,
/// as the Deployment/StatefulSet controllers of a real cluster would.
pub(super) fn fake_controller(
    client: kube::Client,
    namespace: String,
) -> tokio::task::JoinHandle<()> {
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

async fn connect(contexts: &[(&str, &str)]) -> (tempfile::TempDir, Clusters) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "config", &kubeconfig(contexts, contexts[0].0));
    let configs: Vec<ClusterConfig> = contexts
        .iter()
        .map(|(name, _)| ClusterConfig {
            name: format!("k8s-{name}"),
            kubeconfig: path.clone(),
            context: Some((*name).to_owned()),
        })
        .collect();
    let clusters = Clusters::connect_all(&configs)
        .await
        .expect("clusters from kubeconfig");
    (dir, clusters)
}

/// Deploy, update image, change tier, scale to zero and back, delete; asserting the
/// objects the server holds after each step. `rollout` and `controller` differ between
/// kmock and a real cluster.
async fn full_flow(
    cluster: &Cluster,
    mut request: DeploymentRequest,
    rollout: RolloutOptions,
    controller: bool,
) {
    let client = cluster.client().clone();
    let target = request.target();
    let ns = target.namespace.clone();
    let ctl = controller.then(|| fake_controller(client.clone(), ns.clone()));
    let deployer = cluster.deployer().with_rollout(rollout);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);

    // Deploy (standard: 2 replicas, autoscaler 2..5).
    let status = deployer.deploy(&request).await.expect("deploy");
    assert_eq!((status.desired, status.ready, status.available), (2, 2, 2));
    let namespace = Api::<Namespace>::all(client.clone())
        .get(&ns)
        .await
        .expect("namespace created");
    let labels = namespace.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(LABEL_DEPLOYMENT), Some(&request.deployment_id));
    assert!(
        namespace.metadata.uid.is_some_and(|u| !u.is_empty()),
        "server stamped a uid"
    );
    let sa = Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .get(&target.name)
        .await
        .expect("service account");
    assert_eq!(sa.automount_service_account_token, Some(false));
    let svc = Api::<Service>::namespaced(client.clone(), &ns)
        .get(&target.name)
        .await
        .expect("service");
    assert_eq!(svc.spec.and_then(|s| s.type_).as_deref(), Some("ClusterIP"));
    let hpa = hpas.get(&target.name).await.expect("autoscaler");
    assert_eq!((hpa.spec.min_replicas, hpa.spec.max_replicas), (Some(2), 5));
    let first = deployments.get(&target.name).await.expect("deployment");
    let generation = first.metadata.generation.expect("generation");

    // Update the image: same objects, new template, new generation.
    request.image = format!("{}-next", request.image);
    deployer.update(&request).await.expect("update image");
    let updated = deployments.get(&target.name).await.expect("deployment");
    let image = updated
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers[0].image.clone());
    assert_eq!(image.as_deref(), Some(request.image.as_str()));
    assert!(updated.metadata.generation.expect("generation") > generation);
    assert_eq!(updated.metadata.uid, first.metadata.uid, "updated in place");

    // Down to basic: 1 replica, the autoscaler is pruned.
    request.tier = Tier::Basic;
    let status = deployer.update(&request).await.expect("update tier");
    assert_eq!(status.desired, 1);
    assert!(
        hpas.get_opt(&target.name)
            .await
            .expect("read hpa")
            .is_none(),
        "basic has no autoscaler"
    );

    // Payment expiry and renewal, on standard again.
    request.tier = Tier::Standard;
    let status = deployer
        .scale_to_zero(&request)
        .await
        .expect("scale to zero");
    assert_eq!((status.desired, status.current), (0, 0));
    assert!(
        hpas.get_opt(&target.name)
            .await
            .expect("read hpa")
            .is_none(),
        "no autoscaler while suspended"
    );
    let status = deployer.resume(&request).await.expect("resume");
    assert_eq!((status.desired, status.ready), (2, 2));
    assert!(
        hpas.get_opt(&target.name)
            .await
            .expect("read hpa")
            .is_some(),
        "autoscaler back"
    );

    // Delete everything: the namespace, and with it the objects.
    deployer.delete(&target).await.expect("delete");
    if let Some(ctl) = ctl {
        ctl.abort();
    }
    if controller {
        // kmock deletes at once; a real cluster keeps the namespace Terminating a while.
        assert!(
            Api::<Namespace>::all(client.clone())
                .get_opt(&ns)
                .await
                .expect("read ns")
                .is_none()
        );
        assert!(
            deployments
                .get_opt(&target.name)
                .await
                .expect("read deployment")
                .is_none()
        );
        let err = deployer.status(&target).await.expect_err("gone");
        assert!(matches!(err, Error::WorkloadNotFound { .. }), "{err:?}");
    }
    deployer
        .delete(&target)
        .await
        .expect("deleting again is not an error");
}

fn standard_request(service_id: u64) -> DeploymentRequest {
    let mut r = DeploymentRequest::new(
        format!("dep-{service_id}"),
        7,
        service_id,
        "ghcr.io/tangle/svc:1.0",
        Tier::Standard,
    );
    r.ports = vec![ServicePort::tcp("http", 8080)];
    r.health = Some(HealthProbe {
        port: 8080,
        path: Some("/".into()),
    });
    r
}

#[tokio::test]
async fn kmock_deploy_update_scale_to_zero_and_back_then_delete() {
    let url = kmock_url();
    let (_dir, clusters) = connect(&[("a", &url)]).await;
    full_flow(
        clusters.get("k8s-a").expect("cluster"),
        standard_request(unique_id()),
        fast(),
        true,
    )
    .await;
}

#[tokio::test]
async fn kmock_two_clusters_in_one_kubeconfig_each_get_their_deployment() {
    let url = kmock_url();
    // Two contexts, two server URLs (localhost and 127.0.0.1 both reach kmock): each
    // client talks to its own entry.
    let alt = url.replace("127.0.0.1", "localhost");
    let (_dir, clusters) = connect(&[("a", &url), ("b", &alt)]).await;
    let base = unique_id();
    for (i, name) in ["k8s-a", "k8s-b"].into_iter().enumerate() {
        let cluster = clusters.get(name).expect("cluster");
        let request = standard_request(base + i as u64);
        let ctl = fake_controller(cluster.client().clone(), request.target().namespace);
        let status = cluster
            .deployer()
            .with_rollout(fast())
            .deploy(&request)
            .await
            .expect("deploy");
        ctl.abort();
        assert_eq!(status.ready, 2, "{name}");
        let got = cluster
            .deployer()
            .status(&request.target())
            .await
            .expect("status");
        assert_eq!(got.desired, 2, "{name}");
        cluster
            .deployer()
            .delete(&request.target())
            .await
            .expect("delete");
    }
}

#[tokio::test]
async fn kmock_storage_deploys_a_statefulset_and_deletes_it() {
    let url = kmock_url();
    let (_dir, clusters) = connect(&[("a", &url)]).await;
    let cluster = clusters.get("k8s-a").expect("cluster");
    let mut request = standard_request(unique_id());
    request.tier = Tier::Basic;
    request.high_availability = true;
    request.storage = Some(StorageRequest {
        size: "1Gi".into(),
        mount_path: "/data".into(),
        storage_class: None,
    });
    let target = request.target();
    let ctl = fake_controller(cluster.client().clone(), target.namespace.clone());
    let status = cluster
        .deployer()
        .with_rollout(fast())
        .deploy(&request)
        .await
        .expect("deploy");
    ctl.abort();
    assert_eq!(
        (status.kind, status.desired, status.ready),
        (WorkloadKind::StatefulSet, 2, 2)
    );
    let sets: Api<StatefulSet> = Api::namespaced(cluster.client().clone(), &target.namespace);
    let set = sets.get(&target.name).await.expect("statefulset");
    assert_eq!(set.spec.volume_claim_templates.map(|v| v.len()), Some(1));
    cluster.deployer().delete(&target).await.expect("delete");
    assert!(sets.get_opt(&target.name).await.expect("read").is_none());
}

#[tokio::test]
async fn kmock_rollout_without_a_controller_times_out_with_the_reason() {
    let url = kmock_url();
    let (_dir, clusters) = connect(&[("a", &url)]).await;
    let cluster = clusters.get("k8s-a").expect("cluster");
    let request = standard_request(unique_id());
    let err = cluster
        .deployer()
        .with_rollout(RolloutOptions {
            deadline: Duration::from_millis(700),
            poll_interval: Duration::from_millis(50),
        })
        .deploy(&request)
        .await
        .expect_err("nothing reconciles");
    match &err {
        Error::RolloutTimedOut { reason, .. } => {
            assert!(reason.contains("has not observed generation 1"), "{reason}");
        }
        other => panic!("expected RolloutTimedOut, got {other:?}"),
    }
    cluster
        .deployer()
        .delete(&request.target())
        .await
        .expect("cleanup");
}

#[tokio::test]
#[ignore = "needs cluster: KUBECONFIG pointing at k3d, kind or minikube"]
async fn real_cluster_deploy_update_scale_to_zero_and_back_then_delete() {
    let path = std::env::var("KUBECONFIG").expect("KUBECONFIG must point at a test cluster");
    let cluster = Cluster::connect(&ClusterConfig {
        name: "real".into(),
        kubeconfig: path.into(),
        context: None,
    })
    .await
    .expect("cluster");
    // An image that runs as a numeric non-root user with a read-only root (writes /tmp).
    let mut request = standard_request(unique_id());
    request.image = "nginxinc/nginx-unprivileged:1.27-alpine".into();
    request.run_as_user = Some(101);
    full_flow(
        &cluster,
        request,
        RolloutOptions {
            deadline: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
        },
        false,
    )
    .await;
}
