//! Issue 13 items 5 and 7 over HTTP: the real `bpr serve` binary with the
//! `digitalocean` component against the DigitalOcean fake behind Prism
//! (managed clusters: `/v1/clusters`) and kmock (`/v1/deployments/{id}/logs`
//! of a Kubernetes deployment).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use blueprint_remote_providers::kubernetes::{LABEL_MANAGED_BY, LABEL_NAME, MANAGER, Tier};
use blueprint_remote_providers::provisioning::ClusterRequest;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::digitalocean::Fixture;
use crate::serve::{Serve, TOKEN};
use crate::support::TestEnv;

/// `bpr serve`'s config: the DigitalOcean provider of `f`, the kmock clusters.
fn write_config(env: &TestEnv, f: &Fixture) -> PathBuf {
    env.add("digitalocean");
    let token = env.dir.path().join("api-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(
        &token,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let kubeconfig = env.dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: a\n  cluster:\n    server: {}\n\
             contexts:\n- name: a\n  context:\n    cluster: a\n    user: tester\n\
             users:\n- name: tester\n  user:\n    token: test-token\n",
            crate::kubernetes::kmock_url()
        ),
    )
    .unwrap();
    let path = env.dir.path().join("bpr.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n[serve]\nlisten = \"127.0.0.1:0\"\ntoken_file = {token:?}\nsupervisor_interval_secs = 1\n\
             [operator.kubernetes]\nclusters = [ {{ name = \"kmock-a\", kubeconfig = {kubeconfig:?}, context = \"a\" }} ]\n{}",
            env.host_section("warn", false),
            f.provider_section,
        ),
    )
    .unwrap();
    path
}

async fn wait_cluster(serve: &Serve, name: &str, want: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let (code, v) = serve.get(&format!("/v1/clusters/{name}")).await;
        if code == 200 && v["status"] == want {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "cluster {name} not {want}: {code} {v}\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_managed_cluster_is_created_listed_and_deleted_through_the_api() {
    let kmock = crate::kubernetes::kmock_url();
    let f = Fixture::new().await;
    f.stand
        .control(
            "/_fake/config",
            json!({ "k8s_endpoint": kmock, "cluster_running_after_gets": 2 }),
        )
        .await;
    let env = TestEnv::new();
    let serve = Serve::start(&write_config(&env, &f));
    serve.ready().await;
    let name = format!("api-doks-{}", crate::kubernetes::unique_service());
    let body = serde_json::to_value(ClusterRequest::new(
        &name,
        "digitalocean",
        "nyc1",
        "s-1vcpu-1gb",
        1,
    ))
    .unwrap();

    let (code, bad) = serve
        .post(
            "/v1/clusters",
            json!({"name": "Bad_Name", "provider": "digitalocean"}),
        )
        .await;
    assert_eq!(code, 400, "{bad}");
    let mut unfit = body.clone();
    unfit["provider"] = json!("nope");
    let (code, v) = serve.post("/v1/clusters", unfit).await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (422, Some("provider")),
        "{v}"
    );

    let (code, accepted) = serve.post("/v1/clusters", body.clone()).await;
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    let rec = wait_cluster(&serve, &name, "active").await;
    assert_eq!(rec["id"], id.as_str());
    assert_eq!(rec["deployment_type"], "cluster");
    assert_eq!(rec["address"], kmock.as_str());
    let (code, taken) = serve.post("/v1/clusters", body).await;
    assert_eq!(code, 409, "a live name is taken: {taken}");
    let (_, list) = serve.get("/v1/clusters").await;
    assert!(
        list["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str()),
        "{list}"
    );
    let (_, history) = serve.get(&format!("/v1/deployments/{id}/history")).await;
    assert!(history.to_string().contains("active"), "{history}");
    // A cluster is not a workload: its logs say where to look.
    let (code, v) = serve.get(&format!("/v1/deployments/{id}/logs")).await;
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("bpr logs <deployment id>"),
        "{v}"
    );

    let (code, v) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/clusters/{name}"),
            None,
        )
        .await;
    assert_eq!((code, v["status"].as_str()), (202, Some("deleting")), "{v}");
    wait_cluster(&serve, &id, "terminated").await;
    let fake = f.stand.state().await;
    assert!(
        fake["clusters"].as_array().unwrap().is_empty(),
        "nothing left at the provider: {fake}"
    );
    drop(serve);
    f.finish().await;
}

fn pod(name: &str, workload: &str, log: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name,
            "labels": {LABEL_MANAGED_BY: MANAGER, LABEL_NAME: workload},
            "annotations": {"kmock-shim/log": log}},
        "spec": {"containers": [{"name": "service", "image": "ghcr.io/tangle/svc:1.0"}]}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_logs_are_served_as_ndjson_and_followed_over_http() {
    let f = Fixture::new().await;
    let env = TestEnv::new();
    let serve = Serve::start(&write_config(&env, &f));
    serve.ready().await;
    let service = crate::kubernetes::unique_service();
    let ns = format!("bpr-7-{service}");
    let client = kube::Client::try_from(kube::Config::new(
        crate::kubernetes::kmock_url().parse().unwrap(),
    ))
    .unwrap();
    let ctl = crate::kubernetes::controller(client.clone(), ns.clone());
    let body = serde_json::to_value(crate::kubernetes::request(
        service,
        "kmock-a",
        Tier::Standard,
    ))
    .unwrap();
    let (code, accepted) = serve.post("/v1/deployments", body).await;
    assert_eq!(code, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    let rec = serve
        .wait_status(&id, &|s| s == "active" || s == "failed")
        .await;
    assert_eq!(rec["status"], "active", "{rec}");
    let workload = rec["kubernetes"]["name"].as_str().unwrap().to_string();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(
        &PostParams::default(),
        &pod("p-1", &workload, "one\ntwo\nthree\n"),
    )
    .await
    .unwrap();

    let http = reqwest::Client::new();
    let resp = http
        .get(format!("{}/v1/deployments/{id}/logs?tail=2", serve.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"source": "p-1", "line": "two"}),
            json!({"source": "p-1", "line": "three"})
        ]
    );
    let (code, v) = serve
        .get(&format!("/v1/deployments/{id}/logs?tail=0"))
        .await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (422, Some("tail")),
        "{v}"
    );
    let (code, _) = serve.get("/v1/deployments/dep-none/logs").await;
    assert_eq!(code, 404);

    // Following: a line printed later arrives on the open response.
    let resp = http
        .get(format!(
            "{}/v1/deployments/{id}/logs?tail=1&follow=true",
            serve.url
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut read_line = async || -> Value {
        loop {
            if let Some(end) = buf.find('\n') {
                let line: String = buf.drain(..=end).collect();
                return serde_json::from_str(line.trim()).unwrap();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), stream.next())
                .await
                .expect("a line within 15 s")
                .expect("the stream is open")
                .unwrap();
            buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    assert_eq!(read_line().await["line"], "three");
    pods.patch(
        "p-1",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"kmock-shim/log": "one\ntwo\nthree\nfour\n"}}}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(read_line().await["line"], "four");
    drop(stream);

    let (code, _) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(code, 202);
    serve.wait_status(&id, &|s| s == "terminated").await;
    ctl.abort();
    drop(serve);
    f.finish().await;
}
