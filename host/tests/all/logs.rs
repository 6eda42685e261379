//! Issue 13 item 7: `bpr logs` through the library, against kmock (pod logs
//! seeded through the shim's `kmock-shim/log` annotation) and the sshd
//! stand-in (the recording `docker` shim answers `docker logs` from
//! `~/.bpr-shim/logs/<container>`; a native binary's `log` file is real).

use std::collections::BTreeMap;
use std::time::Duration;

use blueprint_remote_providers::Host;
use blueprint_remote_providers::kubernetes::{LABEL_MANAGED_BY, LABEL_NAME, MANAGER, Tier};
use blueprint_remote_providers::logs::{LogError, LogLine, LogOptions, Logs, MAX_LINE};
use blueprint_remote_providers::placement::Request;
use blueprint_remote_providers::tracking::{DeploymentStatus, DeploymentType, NewDeployment};
use blueprint_remote_providers::workload::{WorkloadSource, WorkloadSpec};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::kubernetes::{
    controller, fast as k8s_fast, request, start as start_k8s, unique_service,
};
use crate::orchestrate::{
    bpr_in, dep_dir, echo_server_download, fast, native, ranked, ssh_host_section, sshd_lock,
    start_async, store_capacity,
};
use crate::support::TestEnv;

/// Every line until the reader ends (bounded by `within`).
async fn all_lines(logs: &mut Logs, within: Duration) -> Vec<LogLine> {
    let mut out = Vec::new();
    tokio::time::timeout(within, async {
        while let Some(item) = logs.next().await {
            out.push(item.expect("a line, not an error"));
        }
    })
    .await
    .expect("the reader ends");
    out
}

/// The next line that is not a note from bpr.
async fn next_line(logs: &mut Logs) -> LogLine {
    loop {
        let l = tokio::time::timeout(Duration::from_secs(15), logs.next())
            .await
            .expect("a line within 15 s")
            .expect("the reader is open")
            .expect("a line, not an error");
        if l.source != "bpr" {
            return l;
        }
    }
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

#[tokio::test]
async fn the_logs_of_every_pod_of_a_kubernetes_deployment_are_read_tailed_and_followed() {
    let env = TestEnv::new();
    let host = start_k8s(&env).await;
    let service = unique_service();
    let ns = format!("bpr-7-{service}");
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let ctl = controller(client.clone(), ns.clone());
    let rec = host
        .deploy_with(
            request(service, "kmock-a", Tier::Standard),
            vec![],
            &k8s_fast(),
        )
        .await
        .expect("deploys");
    assert_eq!(rec.status, DeploymentStatus::Active);
    let target = rec.kubernetes.clone().unwrap();

    // Nothing runs pods on kmock: seed two of the workload, one of another.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams::default();
    let long = "x".repeat(MAX_LINE + 100);
    pods.create(&pp, &pod("w-b", &target.name, "b1\nb2\nb3\n"))
        .await
        .unwrap();
    pods.create(&pp, &pod("w-a", &target.name, &format!("a1\n{long}\na3\n")))
        .await
        .unwrap();
    pods.create(&pp, &pod("other", "bpr-7-other", "not this one\n"))
        .await
        .unwrap();

    let opts = LogOptions {
        tail: 2,
        ..LogOptions::default()
    };
    let mut logs = host.logs(&rec.id, &opts).await.expect("logs open");
    assert_eq!(
        logs.sources(),
        ["w-a", "w-b"],
        "the workload's pods, by name"
    );
    let lines = all_lines(&mut logs, Duration::from_secs(15)).await;
    let got: Vec<(&str, &str, bool)> = lines
        .iter()
        .map(|l| {
            (
                l.source.as_str(),
                &l.line[..l.line.len().min(3)],
                l.truncated,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("w-a", "xxx", true),
            ("w-a", "a3", false),
            ("w-b", "b2", false),
            ("w-b", "b3", false)
        ],
        "the last 2 lines of each pod, one pod after the other; the long line cut"
    );
    assert_eq!(lines[0].line.len(), MAX_LINE);

    // Following: what a pod prints later arrives on the open reader.
    let follow = LogOptions {
        tail: 1,
        follow: true,
        ..LogOptions::default()
    };
    let mut logs = host.logs(&rec.id, &follow).await.expect("logs open");
    let mut first = [next_line(&mut logs).await, next_line(&mut logs).await];
    first.sort_by(|a, b| a.source.cmp(&b.source));
    assert_eq!(
        first.iter().map(|l| l.line.as_str()).collect::<Vec<_>>(),
        ["a3", "b3"]
    );
    pods.patch(
        "w-b",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"kmock-shim/log": "b1\nb2\nb3\nb4 later\n"}}}),
        ),
    )
    .await
    .unwrap();
    let later = next_line(&mut logs).await;
    assert_eq!(
        (later.source.as_str(), later.line.as_str()),
        ("w-b", "b4 later")
    );
    drop(logs);

    host.terminate(&rec.id).await.expect("terminates");
    let err = host.logs(&rec.id, &opts).await.expect_err("nothing runs");
    assert!(matches!(err, LogError::NoWorkload { .. }), "{err}");
    ctl.abort();
    host.shutdown().await;
}

#[tokio::test]
async fn following_a_kubernetes_deployment_picks_up_pods_created_after_it_opened_until_it_ends() {
    let env = TestEnv::new();
    let host = start_k8s(&env).await;
    let service = unique_service();
    let ns = format!("bpr-7-{service}");
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let ctl = controller(client.clone(), ns.clone());
    let rec = host
        .deploy_with(
            request(service, "kmock-a", Tier::Standard),
            vec![],
            &k8s_fast(),
        )
        .await
        .expect("deploys");
    let target = rec.kubernetes.clone().unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let pp = PostParams::default();
    pods.create(&pp, &pod("w-a", &target.name, "a1\n"))
        .await
        .unwrap();

    let follow = LogOptions {
        tail: 10,
        follow: true,
        poll: Duration::from_millis(200),
    };
    let mut logs = host.logs(&rec.id, &follow).await.expect("logs open");
    assert_eq!(logs.sources(), ["w-a"]);
    let l = next_line(&mut logs).await;
    assert_eq!((l.source.as_str(), l.line.as_str()), ("w-a", "a1"));

    // A rollout replaces the pod after the reader opened: another workload's
    // pod appears too, and is not read.
    pods.create(&pp, &pod("other", "bpr-7-other", "not this one\n"))
        .await
        .unwrap();
    pods.delete("w-a", &Default::default()).await.unwrap();
    pods.create(&pp, &pod("w-b", &target.name, "b1\nb2\n"))
        .await
        .unwrap();
    let got = [next_line(&mut logs).await, next_line(&mut logs).await];
    assert_eq!(
        got.iter()
            .map(|l| (l.source.as_str(), l.line.as_str()))
            .collect::<Vec<_>>(),
        [("w-b", "b1"), ("w-b", "b2")],
        "the new pod from its first line"
    );
    // What it prints later arrives as well.
    pods.patch(
        "w-b",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"kmock-shim/log": "b1\nb2\nb3 later\n"}}}),
        ),
    )
    .await
    .unwrap();
    let l = next_line(&mut logs).await;
    assert_eq!((l.source.as_str(), l.line.as_str()), ("w-b", "b3 later"));

    // The deployment ends: so does the reader, with a note saying why.
    host.terminate(&rec.id).await.expect("terminates");
    let rest = all_lines(&mut logs, Duration::from_secs(15)).await;
    assert!(
        rest.iter().all(|l| l.source == "bpr" || l.source == "w-b"),
        "{rest:?}"
    );
    assert!(
        rest.iter()
            .any(|l| l.source == "bpr" && l.line.contains("being terminated")),
        "{rest:?}"
    );
    ctl.abort();
    host.shutdown().await;
}

#[tokio::test]
async fn a_vm_says_what_is_available_instead_of_its_logs_and_bad_options_are_refused() {
    let env = TestEnv::new();
    let host = env.start("").await;
    let id = format!("dep-vmlogs-{}", std::process::id());
    let tracker = host.tracker();
    tracker
        .create(&NewDeployment {
            id: id.clone(),
            blueprint_id: "7".into(),
            service_id: "1".into(),
            deployment_type: DeploymentType::Vm,
            labels: BTreeMap::new(),
            ttl_secs: None,
            cleanup_webhook: None,
            request_json: "{}".into(),
            service_key: None,
        })
        .unwrap();
    tracker
        .record_instance(&id, None, "i-0abc", &[], Some("203.0.113.7"))
        .unwrap();
    let err = host
        .logs(&id, &LogOptions::default())
        .await
        .expect_err("a VM's logs are not readable");
    let msg = err.to_string();
    assert!(matches!(err, LogError::NotAvailable { .. }));
    for part in [
        "serial console",
        &format!("docker logs bpr-{id}"),
        &format!("journalctl -u bpr-{id}"),
        "203.0.113.7",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    let err = host
        .logs(
            &id,
            &LogOptions {
                tail: 0,
                ..LogOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("tail: must be 1-5000"), "{err}");
    let config = env.dir.path().join("bpr.toml");
    std::fs::write(&config, env.host_section("warn", false)).unwrap();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking({
        let id = id.clone();
        move || bpr_in(&config, &["logs", &id])
    })
    .await
    .unwrap();
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("serial console"), "{stderr}");
    let err = host
        .logs("dep-nope", &LogOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("dep-nope"), "{err}");
    host.shutdown().await;
}

fn container() -> WorkloadSpec {
    WorkloadSpec {
        source: WorkloadSource::Container {
            image: "ghcr.io/tangle/svc:1.0".into(),
            args: vec![],
            env: Default::default(),
            ports: vec![],
        },
        // No limits: the stand-in's offers (asserted exactly elsewhere) stay as they are.
        cpu_limit: None,
        memory_limit_mib: None,
    }
}

fn small() -> Request {
    Request {
        min_vcpus: 0.5,
        min_memory_gib: 0.5,
        ..Request::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_on_an_ssh_host_is_read_with_docker_logs_tailed_then_followed() {
    let _serial = sshd_lock().await;
    let env = TestEnv::new();
    env.add("ssh");
    store_capacity(&env, "rack1", 4.0, 8.0);
    let rest = format!(
        "[providers.ssh]\nallow_ssh = true\ncall_timeout_ms = 120000\n{}",
        ssh_host_section("rack1", None)
    );
    let host: Host = start_async(&env, &rest).await;
    let mut req = ranked(small());
    req.deployment_id = Some(format!("dep-ctrlogs-{}", std::process::id()));
    req.workload = Some(container());
    let rec = host
        .orchestrator()
        .deploy_with(req, vec![], &fast())
        .await
        .expect("deploys on the stand-in");
    assert_eq!(rec.provider.as_deref(), Some("ssh"));
    let name = rec
        .resources
        .iter()
        .find(|r| r.kind == "container")
        .expect("the container is recorded")
        .id
        .clone();
    // What the container "printed", as the docker shim serves it.
    let dir = std::path::Path::new("/home/deploy/.bpr-shim/logs");
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join(&name);
    let ts = |n: u32| format!("2026-12-06T10:00:{n:02}.000000000Z");
    std::fs::write(
        &file,
        format!("{} one\n{} two\n{} three \u{1b}[2J\n", ts(1), ts(2), ts(3)),
    )
    .unwrap();

    let opts = LogOptions {
        tail: 2,
        ..LogOptions::default()
    };
    let mut logs = host.logs(&rec.id, &opts).await.expect("logs open");
    assert_eq!(logs.sources(), [format!("rack1/{name}")]);
    let lines = all_lines(&mut logs, Duration::from_secs(30)).await;
    assert_eq!(
        lines
            .iter()
            .map(|l| (l.time.clone().unwrap(), l.line.as_str()))
            .collect::<Vec<_>>(),
        [(ts(2), "two"), (ts(3), "three \u{1b}[2J")],
        "the last 2 lines with their time; bytes as printed (the CLI escapes them)"
    );
    // The same through `bpr logs`: the escape sequence is shown, not run.
    let config = env.dir.path().join("bpr.toml");
    std::fs::write(
        &config,
        format!("{}\n{rest}", env.host_section("warn", false)),
    )
    .unwrap();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking({
        let (config, id) = (config.clone(), rec.id.clone());
        move || bpr_in(&config, &["logs", &id, "--tail", "2"])
    })
    .await
    .unwrap();
    assert!(ok, "bpr logs failed: {stderr}");
    assert_eq!(stdout, "two\nthree \\u{1b}[2J\n");
    let (ok, stdout, _) = tokio::task::spawn_blocking({
        let (config, id) = (config.clone(), rec.id.clone());
        move || bpr_in(&config, &["logs", &id, "--tail", "1", "--json"])
    })
    .await
    .unwrap();
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["time"], ts(3).as_str());

    let follow = LogOptions {
        tail: 1,
        follow: true,
        poll: Duration::from_millis(200),
    };
    let mut logs = host.logs(&rec.id, &follow).await.expect("logs open");
    assert_eq!(next_line(&mut logs).await.time, Some(ts(3)));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        format!("{} four\n{} five\n", ts(4), ts(5)).as_bytes(),
    )
    .unwrap();
    assert_eq!(next_line(&mut logs).await.line, "four");
    assert_eq!(next_line(&mut logs).await.line, "five", "each line once");

    // Terminating it ends the followed reader.
    host.terminate(&rec.id).await.expect("terminates");
    let rest = all_lines(&mut logs, Duration::from_secs(15)).await;
    assert!(
        rest.iter().all(|l| l.source == "bpr"),
        "only the closing note: {rest:?}"
    );
    let _ = std::fs::remove_file(&file);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_native_binary_on_an_ssh_host_is_read_from_its_log_file() {
    let _serial = sshd_lock().await;
    let env = TestEnv::new();
    env.add("ssh");
    store_capacity(&env, "rack1", 4.0, 8.0);
    let (server, sha) = echo_server_download(&env).await;
    let rest = format!(
        "[providers.ssh]\nallow_ssh = true\ncall_timeout_ms = 120000\n{}",
        ssh_host_section("rack1", None)
    );
    let host = start_async(&env, &rest).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut req = ranked(small());
    req.deployment_id = Some(format!("dep-nativelogs-{}", std::process::id()));
    let mut w = native(server.url("/echo_server"), sha, port);
    w.cpu_limit = None;
    w.memory_limit_mib = None;
    req.workload = Some(w);
    let rec = host
        .orchestrator()
        .deploy_with(req, vec![], &fast())
        .await
        .expect("deploys on the stand-in");
    // The supervisor appends the binary's output here; add lines of our own.
    let log = dep_dir(&rec.id).join("log");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    std::io::Write::write_all(&mut f, b"native one\nnative two\n").unwrap();

    let follow = LogOptions {
        tail: 1,
        follow: true,
        poll: Duration::from_millis(200),
    };
    let mut logs = host.logs(&rec.id, &follow).await.expect("logs open");
    assert_eq!(logs.sources(), ["rack1/log"]);
    assert_eq!(next_line(&mut logs).await.line, "native two");
    std::io::Write::write_all(&mut f, b"native three\nnative fo").unwrap();
    assert_eq!(next_line(&mut logs).await.line, "native three");
    std::io::Write::write_all(&mut f, b"ur\n").unwrap();
    assert_eq!(
        next_line(&mut logs).await.line,
        "native four",
        "a line being written is sent whole"
    );
    drop(logs);
    host.terminate(&rec.id).await.expect("terminates");
    host.shutdown().await;
}
