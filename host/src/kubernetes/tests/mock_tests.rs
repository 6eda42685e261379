//! Exact requests with kube's tower-test pattern: a `tower_test::mock::pair` stands in
//! for the API server, records every request and answers from a small in-memory map.

use std::collections::{BTreeMap, HashMap};
use std::pin::pin;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

use super::*;

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    content_type: Option<String>,
    body: Value,
}

type Responder =
    Box<dyn FnMut(&Seen, &mut HashMap<String, Value>) -> Option<(StatusCode, Value)> + Send>;

/// Serves requests until the client is dropped. `override_` answers first; otherwise a
/// tiny store: apply stores and echoes the object (201 if new), GET returns it or 404,
/// DELETE removes it or 404.
fn serve(
    override_: Responder,
    store: HashMap<String, Value>,
) -> (kube::Client, tokio::task::JoinHandle<Vec<Seen>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let task = tokio::spawn(async move {
        let mut override_ = override_;
        let mut store = store;
        let mut seen = Vec::new();
        let mut handle = pin!(handle);
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.expect("request body");
            let s = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(url_pairs).unwrap_or_default(),
                content_type: parts
                    .headers
                    .get(http::header::CONTENT_TYPE)
                    .map(|v| v.to_str().expect("ascii").to_owned()),
                body: if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).expect("json body")
                },
            };
            let (status, value) =
                override_(&s, &mut store).unwrap_or_else(|| default_answer(&s, &mut store));
            seen.push(s);
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&value).expect("json")))
                .expect("response");
            send.send_response(response);
        }
        seen
    });
    (kube::Client::new(service, "default"), task)
}

fn url_pairs(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

fn not_found(path: &str) -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
               "code": 404, "message": format!("{path} not found")}),
    )
}

fn default_answer(s: &Seen, store: &mut HashMap<String, Value>) -> (StatusCode, Value) {
    match s.method.as_str() {
        "PATCH" => {
            let mut obj = s.body.clone();
            let created = !store.contains_key(&s.path);
            obj["metadata"]["uid"] = json!("uid-1");
            obj["metadata"]["generation"] = json!(1);
            store.insert(s.path.clone(), obj.clone());
            (
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                obj,
            )
        }
        "GET" => match store.get(&s.path) {
            Some(obj) => {
                let mut obj = obj.clone();
                // Rolled out: what a controller would have written.
                if obj["kind"] == "Deployment" || obj["kind"] == "StatefulSet" {
                    let n = obj["spec"]["replicas"].as_i64().unwrap_or(1);
                    obj["status"] = json!({"observedGeneration": 1, "replicas": n, "readyReplicas": n,
                        "availableReplicas": n, "updatedReplicas": n});
                }
                (StatusCode::OK, obj)
            }
            None => not_found(&s.path),
        },
        "DELETE" => match store.remove(&s.path) {
            Some(obj) => (StatusCode::OK, obj),
            None => not_found(&s.path),
        },
        _ => (StatusCode::METHOD_NOT_ALLOWED, json!({})),
    }
}

fn fast() -> RolloutOptions {
    RolloutOptions {
        deadline: Duration::from_millis(300),
        poll_interval: Duration::from_millis(20),
    }
}

const NS: &str = "/api/v1/namespaces/bpr-7-42";
const APPS: &str = "/apis/apps/v1/namespaces/bpr-7-42";

#[tokio::test]
async fn deploy_applies_every_object_by_server_side_apply_in_dependency_order() {
    let (client, server) = serve(Box::new(|_, _| None), HashMap::new());
    let status = Deployer::new(client)
        .with_rollout(fast())
        .deploy(&request(Tier::Basic))
        .await
        .expect("deploy");
    assert_eq!((status.desired, status.ready), (1, 1));
    let seen = server.await.expect("server");
    let calls: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.method.clone(), s.path.clone()))
        .collect();
    let expected: Vec<(&str, String)> = vec![
        ("PATCH", NS.to_owned()),
        ("PATCH", format!("{NS}/serviceaccounts/bpr-7-42")),
        (
            "PATCH",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/bpr-7-42/roles/bpr-7-42".to_owned(),
        ),
        (
            "PATCH",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/bpr-7-42/rolebindings/bpr-7-42"
                .to_owned(),
        ),
        (
            "PATCH",
            "/apis/networking.k8s.io/v1/namespaces/bpr-7-42/networkpolicies/bpr-7-42".to_owned(),
        ),
        ("PATCH", format!("{NS}/services/bpr-7-42")),
        ("PATCH", format!("{APPS}/deployments/bpr-7-42")),
        // Pruning what a basic, non-HA deployment does not have.
        (
            "DELETE",
            "/apis/autoscaling/v2/namespaces/bpr-7-42/horizontalpodautoscalers/bpr-7-42".to_owned(),
        ),
        (
            "DELETE",
            "/apis/policy/v1/namespaces/bpr-7-42/poddisruptionbudgets/bpr-7-42".to_owned(),
        ),
        ("DELETE", format!("{APPS}/statefulsets/bpr-7-42")),
        // Rollout check.
        ("GET", format!("{APPS}/deployments/bpr-7-42")),
    ];
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p))
        .collect();
    assert_eq!(calls, expected);
    for patch in seen.iter().filter(|s| s.method == "PATCH") {
        assert_eq!(
            patch.query.get("fieldManager").map(String::as_str),
            Some("bpr"),
            "{}",
            patch.path
        );
        assert_eq!(
            patch.query.get("force").map(String::as_str),
            Some("true"),
            "{}",
            patch.path
        );
        assert_eq!(
            patch.content_type.as_deref(),
            Some("application/apply-patch+yaml"),
            "{}",
            patch.path
        );
        let labels = &patch.body["metadata"]["labels"];
        assert_eq!(labels["bpr-deployment"], "dep-1", "{}", patch.path);
        assert_eq!(labels["bpr-blueprint"], "7", "{}", patch.path);
        assert_eq!(labels["bpr-service"], "42", "{}", patch.path);
        assert_eq!(
            labels["app.kubernetes.io/managed-by"], "bpr",
            "{}",
            patch.path
        );
        assert!(
            patch.body["apiVersion"].is_string() && patch.body["kind"].is_string(),
            "{}",
            patch.path
        );
    }
    let deployment = &seen[6].body;
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/tangle/svc:1.0"
    );
}

#[tokio::test]
async fn reapply_keeps_the_autoscalers_replica_count_within_the_new_bounds() {
    // The autoscaler scaled the standard deployment to 4; an image update must not reset it to 2.
    let path = format!("{APPS}/deployments/bpr-7-42");
    let mut existing = render(&request(Tier::Standard))
        .expect("render")
        .workload()
        .expect("workload")
        .to_json()
        .expect("json");
    existing["spec"]["replicas"] = json!(4);
    let store = HashMap::from([(path.clone(), existing)]);
    let (client, server) = serve(Box::new(|_, _| None), store);
    let mut updated = request(Tier::Standard);
    updated.image = "ghcr.io/tangle/svc:1.1".into();
    let status = Deployer::new(client)
        .with_rollout(fast())
        .update(&updated)
        .await
        .expect("update");
    assert_eq!(status.desired, 4);
    let seen = server.await.expect("server");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("GET", path.as_str())
    );
    let applied = seen
        .iter()
        .find(|s| s.method == "PATCH" && s.path == path)
        .expect("deployment applied");
    assert_eq!(applied.body["spec"]["replicas"], 4);
    assert_eq!(
        applied.body["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/tangle/svc:1.1"
    );
    let hpa = seen
        .iter()
        .find(|s| s.path.ends_with("/horizontalpodautoscalers/bpr-7-42"))
        .expect("hpa");
    assert_eq!(hpa.method, "PATCH");
    assert_eq!(hpa.body["spec"]["minReplicas"], 2);
    assert_eq!(hpa.body["spec"]["maxReplicas"], 5);
}

#[tokio::test]
async fn a_refused_apply_is_apply_failed_naming_the_object_and_reason() {
    let (client, server) = serve(
        Box::new(|s, _| {
            s.path.contains("/roles/").then(|| {
                (
                    StatusCode::FORBIDDEN,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
                           "reason": "Forbidden", "message": "roles is forbidden: user cannot patch"}),
                )
            })
        }),
        HashMap::new(),
    );
    let err = Deployer::new(client)
        .with_rollout(fast())
        .deploy(&request(Tier::Basic))
        .await
        .expect_err("forbidden");
    match &err {
        Error::ApplyFailed { kind, object, .. } => {
            assert_eq!((*kind, object.as_str()), ("Role", "bpr-7-42/bpr-7-42"));
        }
        other => panic!("expected ApplyFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("forbidden"), "{err}");
    let seen = server.await.expect("server");
    assert!(
        seen.last().expect("calls").path.contains("/roles/"),
        "stopped at the failing object"
    );
}

fn lagging_deployment(conditions: Value) -> Responder {
    Box::new(move |s, store| {
        if s.method != "GET" || !s.path.ends_with("/deployments/bpr-7-42") {
            return None;
        }
        let mut obj = store.get(&s.path)?.clone();
        obj["status"] = json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
            "readyReplicas": 0, "availableReplicas": 0, "conditions": conditions.clone()});
        Some((StatusCode::OK, obj))
    })
}

#[tokio::test]
async fn a_rollout_that_does_not_converge_times_out_with_the_failing_condition() {
    let (client, _server) = serve(
        lagging_deployment(json!([{"type": "Available", "status": "False",
            "reason": "MinimumReplicasUnavailable", "message": "Deployment does not have minimum availability."}])),
        HashMap::new(),
    );
    let err = Deployer::new(client)
        .with_rollout(fast())
        .deploy(&request(Tier::Basic))
        .await
        .expect_err("timeout");
    match &err {
        Error::RolloutTimedOut {
            kind,
            object,
            deadline,
            reason,
        } => {
            assert_eq!(
                (*kind, object.as_str()),
                ("Deployment", "bpr-7-42/bpr-7-42")
            );
            assert_eq!(*deadline, Duration::from_millis(300));
            assert!(reason.contains("0/1 available"), "{reason}");
            assert!(reason.contains("MinimumReplicasUnavailable"), "{reason}");
        }
        other => panic!("expected RolloutTimedOut, got {other:?}"),
    }
}

#[tokio::test]
async fn progress_deadline_exceeded_fails_the_rollout_before_the_deadline() {
    let (client, _server) = serve(
        lagging_deployment(json!([{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"x\" has timed out progressing."}])),
        HashMap::new(),
    );
    let started = std::time::Instant::now();
    let err = Deployer::new(client)
        .with_rollout(RolloutOptions {
            deadline: Duration::from_secs(30),
            poll_interval: Duration::from_millis(20),
        })
        .deploy(&request(Tier::Basic))
        .await
        .expect_err("failed rollout");
    assert!(started.elapsed() < Duration::from_secs(10));
    match &err {
        Error::RolloutFailed { reason, .. } => {
            assert!(reason.contains("timed out progressing"), "{reason}")
        }
        other => panic!("expected RolloutFailed, got {other:?}"),
    }
}

fn namespace_with(labels: Value) -> HashMap<String, Value> {
    HashMap::from([(
        NS.to_owned(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bpr-7-42", "labels": labels}}),
    )])
}

#[tokio::test]
async fn delete_removes_the_owned_namespace_after_checking_its_labels() {
    let (client, server) = serve(
        Box::new(|_, _| None),
        namespace_with(json!({"app.kubernetes.io/managed-by": "bpr", "bpr-deployment": "dep-1"})),
    );
    Deployer::new(client)
        .delete(&request(Tier::Basic).target())
        .await
        .expect("delete");
    let seen = server.await.expect("server");
    let calls: Vec<(&str, &str)> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.path.as_str()))
        .collect();
    assert_eq!(calls, vec![("GET", NS), ("DELETE", NS)]);
    assert_eq!(
        seen[1].query.get("propagationPolicy"),
        None,
        "body carries the policy"
    );
    assert_eq!(seen[1].body["propagationPolicy"], "Background");
}

#[tokio::test]
async fn delete_refuses_a_namespace_labelled_for_another_deployment() {
    let (client, server) = serve(
        Box::new(|_, _| None),
        namespace_with(
            json!({"app.kubernetes.io/managed-by": "bpr", "bpr-deployment": "dep-other"}),
        ),
    );
    let err = Deployer::new(client)
        .delete(&request(Tier::Basic).target())
        .await
        .expect_err("not owned");
    assert!(
        matches!(&err, Error::NamespaceNotOwned { namespace, .. } if namespace == "bpr-7-42"),
        "{err:?}"
    );
    assert!(err.to_string().contains("dep-other"), "{err}");
    let seen = server.await.expect("server");
    assert!(seen.iter().all(|s| s.method != "DELETE"), "nothing deleted");
}

#[tokio::test]
async fn delete_of_a_missing_namespace_succeeds() {
    let (client, _server) = serve(Box::new(|_, _| None), HashMap::new());
    Deployer::new(client)
        .delete(&request(Tier::Basic).target())
        .await
        .expect("idempotent delete");
}

#[tokio::test]
async fn delete_in_a_shared_namespace_removes_each_object_by_name() {
    let (client, server) = serve(Box::new(|_, _| None), HashMap::new());
    let mut r = request(Tier::Basic);
    r.namespace = Some("shared".into());
    Deployer::new(client)
        .delete(&r.target())
        .await
        .expect("delete");
    let seen = server.await.expect("server");
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert!(seen.iter().all(|s| s.method == "DELETE"));
    assert_eq!(
        paths,
        vec![
            "/apis/autoscaling/v2/namespaces/shared/horizontalpodautoscalers/bpr-7-42",
            "/apis/policy/v1/namespaces/shared/poddisruptionbudgets/bpr-7-42",
            "/apis/apps/v1/namespaces/shared/statefulsets/bpr-7-42",
            "/apis/apps/v1/namespaces/shared/deployments/bpr-7-42",
            "/api/v1/namespaces/shared/services/bpr-7-42",
            "/apis/networking.k8s.io/v1/namespaces/shared/networkpolicies/bpr-7-42",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/shared/rolebindings/bpr-7-42",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/shared/roles/bpr-7-42",
            "/api/v1/namespaces/shared/serviceaccounts/bpr-7-42",
        ]
    );
}

#[tokio::test]
async fn status_reports_replica_counts_and_conditions() {
    let (client, _server) = serve(
        lagging_deployment(
            json!([{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"}]),
        ),
        HashMap::from([(
            format!("{APPS}/deployments/bpr-7-42"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "bpr-7-42", "namespace": "bpr-7-42", "generation": 1},
                   "spec": {"replicas": 1, "selector": {}, "template": {}}}),
        )]),
    );
    let status = Deployer::new(client)
        .status(&request(Tier::Basic).target())
        .await
        .expect("status");
    assert_eq!(
        (
            status.desired,
            status.current,
            status.ready,
            status.available,
            status.updated
        ),
        (1, 1, 0, 0, 1)
    );
    assert!(!status.rolled_out());
    assert_eq!(status.conditions.len(), 1);
    assert_eq!(
        status.conditions[0].reason.as_deref(),
        Some("MinimumReplicasUnavailable")
    );
}

#[tokio::test]
async fn status_of_a_missing_workload_is_workload_not_found() {
    let (client, _server) = serve(Box::new(|_, _| None), HashMap::new());
    let err = Deployer::new(client)
        .status(&request(Tier::Basic).target())
        .await
        .expect_err("missing");
    assert!(
        matches!(
            err,
            Error::WorkloadNotFound {
                kind: "Deployment",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn delete_of_a_terminating_namespace_sends_no_second_delete() {
    // A real apiserver answers 409 to DELETE on a namespace that is already terminating.
    let mut store =
        namespace_with(json!({"app.kubernetes.io/managed-by": "bpr", "bpr-deployment": "dep-1"}));
    store.get_mut(NS).expect("ns")["metadata"]["deletionTimestamp"] = json!("2026-11-26T00:00:00Z");
    let (client, server) = serve(Box::new(|_, _| None), store);
    Deployer::new(client)
        .delete(&request(Tier::Basic).target())
        .await
        .expect("delete");
    let seen = server.await.expect("server");
    assert!(seen.iter().all(|s| s.method == "GET"), "{seen:?}");
}
