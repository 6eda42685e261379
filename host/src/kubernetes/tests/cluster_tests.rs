//! Clusters from kubeconfig files: offline checks of the error paths.

use std::path::Path;

use super::*;

/// A kubeconfig with one cluster per `(context, server)` and a token user.
pub(super) fn kubeconfig(contexts: &[(&str, &str)], current: &str) -> String {
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

pub(super) fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write kubeconfig");
    path
}

#[tokio::test]
async fn a_missing_kubeconfig_file_is_unreadable_naming_cluster_and_path() {
    let err = Cluster::connect(&ClusterConfig {
        name: "prod".into(),
        kubeconfig: "/nonexistent/kube.config".into(),
        context: None,
    })
    .await
    .expect_err("missing file");
    assert!(matches!(err, Error::KubeconfigUnreadable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`prod`") && text.contains("/nonexistent/kube.config"),
        "{text}"
    );
}

#[tokio::test]
async fn a_kubeconfig_that_is_not_yaml_is_unreadable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "bad", "clusters: [ this is : not yaml");
    let err = Cluster::connect(&ClusterConfig {
        name: "prod".into(),
        kubeconfig: path.clone(),
        context: None,
    })
    .await
    .expect_err("bad yaml");
    assert!(matches!(err, Error::KubeconfigUnreadable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn an_unknown_context_is_context_not_found_listing_the_available_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "config",
        &kubeconfig(
            &[
                ("alpha", "https://10.0.0.1:6443"),
                ("beta", "https://10.0.0.2:6443"),
            ],
            "alpha",
        ),
    );
    let err = Cluster::connect(&ClusterConfig {
        name: "prod".into(),
        kubeconfig: path,
        context: Some("gamma".into()),
    })
    .await
    .expect_err("unknown context");
    match &err {
        Error::ContextNotFound {
            cluster,
            context,
            available,
            ..
        } => {
            assert_eq!(
                (cluster.as_str(), context.as_str(), available.as_str()),
                ("prod", "gamma", "alpha, beta")
            );
        }
        other => panic!("expected ContextNotFound, got {other:?}"),
    }
    assert!(err.to_string().contains("`gamma`"), "{err}");
}

#[tokio::test]
async fn a_context_without_its_cluster_is_kubeconfig_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "apiVersion: v1\nkind: Config\ncontexts:\n- name: lonely\n  context:\n    cluster: nowhere\n    user: u\nusers:\n- name: u\n  user: {}\n";
    let path = write(dir.path(), "config", text);
    let err = Cluster::connect(&ClusterConfig {
        name: "prod".into(),
        kubeconfig: path,
        context: Some("lonely".into()),
    })
    .await
    .expect_err("dangling cluster");
    assert!(
        matches!(err, Error::KubeconfigInvalid { ref context, .. } if context == "lonely"),
        "{err:?}"
    );
}

#[tokio::test]
async fn duplicate_cluster_names_are_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "config",
        &kubeconfig(&[("a", "https://10.0.0.1:6443")], "a"),
    );
    let one = ClusterConfig {
        name: "same".into(),
        kubeconfig: path,
        context: None,
    };
    let err = Clusters::connect_all(&[one.clone(), one])
        .await
        .expect_err("duplicate");
    assert!(
        matches!(err, Error::DuplicateCluster { ref name } if name == "same"),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_cluster_name_lists_the_configured_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "config",
        &kubeconfig(
            &[
                ("a", "https://10.0.0.1:6443"),
                ("b", "https://10.0.0.2:6443"),
            ],
            "a",
        ),
    );
    let clusters = Clusters::connect_all(&[
        ClusterConfig {
            name: "east".into(),
            kubeconfig: path.clone(),
            context: Some("a".into()),
        },
        ClusterConfig {
            name: "west".into(),
            kubeconfig: path,
            context: Some("b".into()),
        },
    ])
    .await
    .expect("two clusters from one file");
    assert_eq!(clusters.names().collect::<Vec<_>>(), vec!["east", "west"]);
    let err = clusters.get("north").expect_err("unknown");
    assert!(err.to_string().contains("east, west"), "{err}");
}
