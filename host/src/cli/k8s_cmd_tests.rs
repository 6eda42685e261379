//! `bpr k8s render | clusters`: flags parsed by clap as the binary does, the YAML
//! printed, bad input refused with a message naming the flag, cluster probes.

use std::process::ExitCode;

use clap::Parser;

use std::path::Path;

use blueprint_remote_providers::config::Config;
use blueprint_remote_providers::kubernetes::ClusterConfig;

use crate::cli::k8s_cmd::{self, K8sCommand, RenderArgs};
use crate::cli::{Cli, Command};

/// A kubeconfig with one cluster per `(context, server)` and a token user.
fn kubeconfig(contexts: &[(&str, &str)], current: &str) -> String {
    let mut clusters = String::new();
    let mut ctxs = String::new();
    for (name, server) in contexts {
        clusters.push_str(&format!(
            "- name: {name}\n  cluster:\n    server: {server}\n"
        ));
        ctxs.push_str(&format!(
            "- name: {name}\n  context:\n    cluster: {name}\n    user: tester\n"
        ));
    }
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: {current}\nclusters:\n{clusters}contexts:\n{ctxs}users:\n- name: tester\n  user:\n    token: test-token\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

fn render_args(extra: &[&str]) -> RenderArgs {
    let mut argv = vec![
        "bpr",
        "k8s",
        "render",
        "--blueprint-id",
        "7",
        "--service-id",
        "42",
        "--image",
        "ghcr.io/tangle/svc:1.0",
    ];
    argv.extend_from_slice(extra);
    match Cli::try_parse_from(argv).expect("flags parse").command {
        Command::K8s(K8sCommand::Render(args)) => *args,
        other => panic!("parsed as {other:?}"),
    }
}

fn config(toml: &str) -> Config {
    Config::from_toml_str(toml, "test.toml").expect("config")
}

/// The documents of the stream: `to_yaml_stream` writes JSON documents after `---`
/// lines (valid YAML), so each one parses as JSON.
fn documents(yaml: &str) -> Vec<serde_json::Value> {
    yaml.split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_json::from_str(d).unwrap_or_else(|e| panic!("{e}: {d}")))
        .collect()
}

fn kinds(docs: &[serde_json::Value]) -> Vec<&str> {
    docs.iter()
        .map(|d| d["kind"].as_str().unwrap_or_default())
        .collect()
}

fn doc_of<'a>(docs: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

#[test]
fn render_prints_every_object_of_a_standard_service_with_the_operator_scaling_bounds() {
    let args = render_args(&[
        "--tier",
        "standard",
        "--port",
        "9944",
        "--port",
        "9615",
        "--health-port",
        "8080",
        "--health-path",
        "/health",
        "--env",
        "RUST_LOG=info",
        "--ha",
    ]);
    let yaml = k8s_cmd::render_yaml(
        &args,
        &config("[operator.scaling]\nmax_replicas = 4\ntarget_cpu = 55\n"),
    )
    .expect("render");
    let docs = documents(&yaml);
    let kinds = kinds(&docs);
    for kind in [
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    // Standard autoscales to 5; the operator caps it at 4, with its CPU target.
    let hpa = doc_of(&docs, "HorizontalPodAutoscaler");
    assert_eq!(hpa["spec"]["maxReplicas"], 4, "{hpa}");
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 55,
        "{hpa}"
    );
    let container = &doc_of(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let ports: Vec<&serde_json::Value> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| &p["containerPort"])
        .collect();
    assert!(
        ports.contains(&&serde_json::json!(9944)) && ports.contains(&&serde_json::json!(9615)),
        "{ports:?}"
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/health");
    assert!(
        container["env"]
            .as_array()
            .expect("env")
            .iter()
            .any(|e| e["name"] == "RUST_LOG" && e["value"] == "info"),
        "{container}"
    );
    assert_eq!(doc_of(&docs, "Service")["spec"]["type"], "ClusterIP");
}

#[test]
fn render_with_storage_gpus_public_and_runtime_class_renders_a_statefulset() {
    let args = render_args(&[
        "--storage",
        "10Gi",
        "--gpus",
        "2",
        "--public",
        "--runtime-class",
        "kata",
        "--port",
        "80",
    ]);
    let yaml = k8s_cmd::render_yaml(&args, &config("")).expect("render");
    let docs = documents(&yaml);
    let set = doc_of(&docs, "StatefulSet");
    let pod = &set["spec"]["template"]["spec"];
    assert_eq!(pod["runtimeClassName"], "kata");
    assert_eq!(
        pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"], "2",
        "{pod}"
    );
    assert!(
        pod["containers"][0]["volumeMounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .any(|m| m["mountPath"] == "/data"),
        "{pod}"
    );
    assert_eq!(
        set["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "10Gi"
    );
    assert_eq!(doc_of(&docs, "Service")["spec"]["type"], "LoadBalancer");
    assert!(!kinds(&docs).contains(&"Deployment"));
}

#[test]
fn render_refuses_an_unknown_tier_naming_the_flag() {
    let err =
        k8s_cmd::render_yaml(&render_args(&["--tier", "gold"]), &config("")).expect_err("bad tier");
    let message = format!("{err:#}");
    assert!(message.contains("--tier"), "{message}");
    assert!(message.contains("gold"), "{message}");
}

#[test]
fn render_refuses_env_without_an_equals_sign() {
    let err = k8s_cmd::render_yaml(&render_args(&["--env", "NOVALUE"]), &config(""))
        .expect_err("bad env");
    assert!(format!("{err:#}").contains("--env `NOVALUE`"), "{err:#}");
}

#[test]
fn render_refuses_a_bad_storage_size_with_the_renderer_message() {
    let err = k8s_cmd::render_yaml(&render_args(&["--storage", "lots"]), &config(""))
        .expect_err("bad size");
    let message = format!("{err:#}");
    assert!(message.contains("storage.size"), "{message}");
}

#[test]
fn render_refuses_port_zero_and_duplicate_ports() {
    let err =
        k8s_cmd::render_yaml(&render_args(&["--port", "0"]), &config("")).expect_err("port 0");
    assert!(format!("{err:#}").contains("--port"), "{err:#}");
    let err = k8s_cmd::render_yaml(&render_args(&["--port", "80", "--port", "80"]), &config(""))
        .expect_err("duplicate");
    assert!(format!("{err:#}").contains("given twice"), "{err:#}");
}

#[test]
fn health_path_without_health_port_is_a_usage_error() {
    let argv = [
        "bpr",
        "k8s",
        "render",
        "--blueprint-id",
        "1",
        "--service-id",
        "2",
        "--image",
        "x",
        "--health-path",
        "/h",
    ];
    assert!(Cli::try_parse_from(argv).is_err());
}

#[tokio::test]
async fn clusters_probe_names_the_cluster_that_does_not_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Port 1 on loopback: nothing listens, connection refused at once.
    let path = write(
        dir.path(),
        "config",
        &kubeconfig(&[("down", "http://127.0.0.1:1")], "down"),
    );
    let err = k8s_cmd::probe(&ClusterConfig {
        name: "edge-1".into(),
        kubeconfig: path.clone(),
        context: None,
    })
    .await
    .expect_err("unreachable");
    assert!(err.contains("cluster `edge-1`"), "{err}");
    let err = k8s_cmd::probe(&ClusterConfig {
        name: "edge-2".into(),
        kubeconfig: path,
        context: Some("nope".into()),
    })
    .await
    .expect_err("unknown context");
    assert!(err.contains("edge-2") && err.contains("nope"), "{err}");
}

#[tokio::test]
async fn clusters_command_fails_when_a_configured_cluster_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "config",
        &kubeconfig(&[("down", "http://127.0.0.1:1")], "down"),
    );
    let toml = format!(
        "[operator.kubernetes]\nclusters = [ {{ name = \"edge\", kubeconfig = {:?} }} ]\n",
        path.display().to_string()
    );
    let code = k8s_cmd::run(K8sCommand::Clusters, config(&toml))
        .await
        .expect("runs");
    assert_eq!(code, ExitCode::FAILURE);
}

#[tokio::test]
async fn kmock_clusters_probe_reports_the_server_version() {
    let url = std::env::var("BPR_TEST_KMOCK_URL").unwrap_or_else(|_| {
        panic!(
            "BPR_TEST_KMOCK_URL is not set: start the stand-in with `scripts/standins/kmock.sh start` \
             and export BPR_TEST_KMOCK_URL=http://127.0.0.1:6443 (CI does both)"
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "config", &kubeconfig(&[("a", &url)], "a"));
    let version = k8s_cmd::probe(&ClusterConfig {
        name: "kmock".into(),
        kubeconfig: path,
        context: Some("a".into()),
    })
    .await
    .expect("kmock answers /version");
    assert!(version.starts_with('v'), "{version}");
}
