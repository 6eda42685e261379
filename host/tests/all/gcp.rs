//! Issue 14: the gcp component under wasmtime against the project's stateful fake
//! of Compute Engine and GKE (`tests/standins/gcp/fake_gcp.py`), behind two Prism
//! processes in proxy mode with Google's official specs. The host authenticates with
//! its `gcp-service-account` credential: it signs the JWT grant with a key made for
//! the test, and the fake's token endpoint checks that signature and accepts only
//! the tokens it minted. Every test ends by checking that Prism reported no schema
//! violation.
//!
//! Needs `scripts/standins/gcp.sh start` and its exports (`BPR_TEST_GCP_*`), and for
//! the GKE deployment test kmock (`BPR_TEST_KMOCK_URL`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use blueprint_remote_providers::tracking::{AttemptOutcome, DeploymentRecord, DeploymentStatus};
use blueprint_remote_providers::wit::{
    ClusterAuth, ClusterRef, ClusterSpec, ClusterState, DeleteStatus, Instance, InstanceQuery,
    InstanceRef, InstanceSpec, InstanceState, NodePoolSpec, OfferQuery, PortRule, Protocol,
    ProviderError,
};
use blueprint_remote_providers::{CallError, Host, ProviderHandle};
use serde_json::{Value, json};

use crate::support::TestEnv;

/// The fake keeps one global state, so GCP tests run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PROJECT: &str = "bpr-test";
const CLIENT_EMAIL: &str = "bpr@bpr-test.iam.gserviceaccount.com";
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0d6pZ8fWzMZb2y1q8e0x6Hn2W0e3Y9v2bX7t1m4kR test@bpr";
/// The warning Prism logs for every Google error answer: the Discovery-derived
/// specs declare only 200 answers (see tests/standins/gcp/README.md).
const UNDECLARED_STATUS: &str = "Unable to match the returned status code";

/// The service account key made for this test run: (PEM private key, modulus hex).
fn service_account() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("sa.pem");
        let ok = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&pem)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs")
            .success();
        assert!(ok, "openssl genpkey failed");
        let out = Command::new("openssl")
            .args(["rsa", "-noout", "-modulus", "-in"])
            .arg(&pem)
            .output()
            .expect("openssl runs");
        let modulus = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .strip_prefix("Modulus=")
            .expect("openssl prints Modulus=")
            .to_string();
        (std::fs::read_to_string(&pem).unwrap(), modulus)
    })
}

/// Where the stand-in runs.
struct Stand {
    compute: String,
    container: String,
    fake: String,
    prism_logs: Vec<PathBuf>,
    http: reqwest::Client,
}

impl Stand {
    fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name).unwrap_or_else(|_| {
                panic!(
                    "{name} is not set: run `scripts/standins/gcp.sh start` and export the variables \
                     it prints (Prism in front of the fake Google Cloud)"
                )
            })
        };
        let prism_logs: Vec<PathBuf> = var("BPR_TEST_GCP_PRISM_LOGS")
            .split(':')
            .map(PathBuf::from)
            .collect();
        for l in &prism_logs {
            assert!(l.exists(), "Prism's log {} is missing", l.display());
        }
        Stand {
            compute: var("BPR_TEST_GCP_COMPUTE_URL"),
            container: var("BPR_TEST_GCP_CONTAINER_URL"),
            fake: var("BPR_TEST_GCP_FAKE_URL"),
            prism_logs,
            http: reqwest::Client::new(),
        }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.fake))
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the fake Google Cloud at {} does not answer: {e}",
                    self.fake
                )
            });
        assert!(resp.status().is_success(), "fake control {path} failed");
        serde_json::from_str(&resp.text().await.unwrap()).unwrap()
    }

    async fn fetch(&self, path: &str) -> Value {
        let text = self
            .http
            .get(format!("{}{path}", self.fake))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    async fn state(&self) -> Value {
        self.fetch("/_fake/state").await
    }

    /// `(method, path, body)` of every request the fake served.
    async fn requests(&self) -> Vec<(String, String, Value)> {
        self.fetch("/_fake/log").await["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap().to_string(),
                    r["path"].as_str().unwrap().to_string(),
                    r["body"].clone(),
                )
            })
            .collect()
    }

    async fn config(&self, cfg: Value) {
        self.control("/_fake/config", cfg).await;
    }

    async fn inject(&self, fault: Value) {
        self.control("/_fake/next-error", fault).await;
    }

    /// Forget everything and register this run's service account key.
    async fn reset(&self) {
        self.control("/_fake/reset", json!({})).await;
        self.control("/_fake/key", json!({"n": service_account().1, "e": 65537}))
            .await;
        self.config(json!({"client_email": CLIENT_EMAIL})).await;
    }

    fn log_lens(&self) -> Vec<usize> {
        self.prism_logs
            .iter()
            .map(|l| std::fs::read(l).map(|b| b.len()).unwrap_or(0))
            .collect()
    }

    /// Prism's verdicts since `from` (one offset per log), except the warning for
    /// Google's undeclared error statuses.
    async fn violations_since(&self, from: &[usize]) -> Vec<String> {
        let (mut last, mut quiet) = (self.log_lens(), 0);
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.log_lens();
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
            if quiet >= 6 {
                break;
            }
        }
        let mut out = Vec::new();
        for (log, from) in self.prism_logs.iter().zip(from) {
            let bytes = std::fs::read(log).expect("read Prism's log");
            out.extend(
                String::from_utf8_lossy(&bytes[(*from).min(bytes.len())..])
                    .lines()
                    .filter(|l| {
                        (l.contains("prism/errors#") || l.contains("[VALIDATOR]"))
                            && !l.contains(UNDECLARED_STATUS)
                    })
                    .map(str::to_string),
            );
        }
        out
    }
}

/// The `[providers.gcp]` section pointing at the stand-in, with the test's key.
fn gcp_section(stand: &Stand, dir: &Path, extra_settings: &str) -> String {
    let key_file = dir.join("gcp-sa.json");
    std::fs::write(
        &key_file,
        json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-key-1",
            "private_key": service_account().0,
            "client_email": CLIENT_EMAIL,
            "token_uri": format!("{}/token", stand.fake),
        })
        .to_string(),
    )
    .unwrap();
    format!(
        "[providers.gcp]\nallow = [{:?}, {:?}, {:?}]\ncall_timeout_ms = 60000\n\
         [providers.gcp.settings]\nproject = {PROJECT:?}\ncompute_endpoint = {:?}\ncontainer_endpoint = {:?}\n\
         catalog_url = \"{}/skypilot-catalog/master/catalogs/v8/gcp/vms.csv\"\n\
         billing_url = \"{}/v1/services/6F81-5844-456A/skus\"\noperation_timeout_ms = \"20000\"\n\
         cluster_endpoint_scheme = \"http\"\n{extra_settings}\
         [providers.gcp.credential]\nkind = \"gcp-service-account\"\nkey_file = {key_file:?}\n",
        stand.compute,
        stand.container,
        stand.fake,
        stand.compute,
        stand.container,
        stand.fake,
        stand.fake,
    )
}

/// A host with only the gcp component, pointed at the stand-in.
struct Fixture {
    stand: Stand,
    env: TestEnv,
    provider_section: String,
    host: Host,
    gcp: ProviderHandle,
    log_from: Vec<usize>,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_settings("").await
    }

    async fn with_settings(extra: &str) -> Self {
        let serial = SERIAL.lock().await;
        let stand = Stand::from_env();
        stand.reset().await;
        let env = TestEnv::new();
        env.add("gcp");
        let provider_section = gcp_section(&stand, env.dir.path(), extra);
        let host = env.start(&provider_section).await;
        let gcp = host.provider("gcp").expect("gcp.wasm loads");
        let log_from = stand.log_lens();
        Fixture {
            stand,
            env,
            provider_section,
            host,
            gcp,
            log_from,
            _serial: serial,
        }
    }

    /// Every test ends here: Prism saw no request or answer outside the specs.
    async fn finish(self) {
        let v = self.stand.violations_since(&self.log_from).await;
        assert!(
            v.is_empty(),
            "Prism reported schema violations:\n{}",
            v.join("\n")
        );
        self.host.shutdown().await;
    }
}

fn spec(deployment: &str, key: &str, instance_type: &str) -> InstanceSpec {
    InstanceSpec {
        deployment_id: deployment.into(),
        idempotency_key: key.into(),
        region: "us-central1".into(),
        zone: None,
        instance_type: instance_type.into(),
        spot: false,
        image: None,
        disk_gib: 0,
        ssh_public_keys: vec![SSH_KEY.into()],
        user_data: Some("#cloud-config\nruncmd: [echo hi]\n".into()),
        open_ports: vec![
            PortRule {
                port: 22,
                end_port: None,
                protocol: Protocol::Tcp,
                source_cidrs: vec!["198.51.100.0/24".into()],
            },
            PortRule {
                port: 9000,
                end_port: Some(9001),
                protocol: Protocol::Udp,
                source_cidrs: vec![],
            },
        ],
        labels: vec![
            ("bpr-deployment".into(), deployment.into()),
            ("bpr-managed".into(), "true".into()),
            ("team".into(), "a_b/C".into()),
        ],
        workload: None,
    }
}

fn as_ref(i: &Instance) -> InstanceRef {
    InstanceRef {
        id: i.id.clone(),
        region: i.region.clone(),
        zone: None,
        resources: i.resources.clone(),
        labels: i.labels.clone(),
    }
}

fn provider_error(r: Result<impl std::fmt::Debug, CallError>) -> ProviderError {
    match r {
        Ok(v) => panic!("expected a provider error, got {v:?}"),
        Err(e) => e
            .provider_error()
            .cloned()
            .unwrap_or_else(|| panic!("expected a provider error, got {e}")),
    }
}

fn count(state: &Value, kind: &str) -> usize {
    state[kind].as_array().map(Vec::len).unwrap_or(0)
}

/// The body of the instance `name` as the fake received it.
fn inserted(state: &Value, name: &str) -> Value {
    state["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no instance {name} in {state}"))["body"]
        .clone()
}

fn metadata(body: &Value, key: &str) -> Option<String> {
    body["metadata"]["items"]
        .as_array()?
        .iter()
        .find(|i| i["key"] == key)
        .and_then(|i| i["value"].as_str().map(str::to_string))
}

fn name_of(i: &Instance) -> &str {
    i.id.split_once('/').unwrap().1
}

async fn get_until(gcp: &ProviderHandle, i: &Instance, want: InstanceState) -> Instance {
    let mut got = gcp.get_instance(as_ref(i)).await.expect("get");
    for _ in 0..10 {
        if got.state == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = gcp.get_instance(as_ref(i)).await.expect("get");
    }
    assert_eq!(got.state, want, "{got:?}");
    got
}

async fn delete_until_gone(gcp: &ProviderHandle, r: InstanceRef) {
    for _ in 0..20 {
        match gcp.delete_instance(r.clone()).await.expect("delete") {
            DeleteStatus::Deleted => return,
            DeleteStatus::InProgress => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    panic!("{} still not deleted", r.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_lifecycle_creates_exactly_what_was_asked_and_deletes_everything() {
    let f = Fixture::new().await;
    let created = f
        .gcp
        .create_instance(spec("dep-life", "dep-life-c1", "e2-medium"))
        .await
        .expect("create");
    // The first zone of the region that offers the type; the id carries it.
    assert_eq!(created.id, "us-central1-a/bpr-dep-life-c1");
    assert_eq!(
        (
            created.region.as_str(),
            created.zone.as_deref(),
            created.instance_type.as_str()
        ),
        ("us-central1", Some("us-central1-a"), "e2-medium")
    );
    assert!(
        created
            .labels
            .contains(&("team".to_string(), "a_b/C".to_string())),
        "{:?}",
        created.labels
    );

    // What Compute Engine received is exactly the request.
    let state = f.stand.state().await;
    assert_eq!(count(&state, "instances"), 1);
    let body = inserted(&state, "bpr-dep-life-c1");
    assert_eq!(
        body["machineType"],
        "zones/us-central1-a/machineTypes/e2-medium"
    );
    assert_eq!(
        metadata(&body, "ssh-keys").as_deref(),
        Some(format!("ubuntu:{SSH_KEY}").as_str()),
        "the operator's key, not upstream's empty value"
    );
    assert_eq!(
        metadata(&body, "user-data").as_deref(),
        Some("#cloud-config\nruncmd: [echo hi]\n")
    );
    assert_eq!(body["labels"]["bpr-deployment"], "dep-life");
    assert_eq!(body["labels"]["team"], "a__b_2f_43", "reversible encoding");
    assert_eq!(body["disks"][0]["autoDelete"], true);
    assert_eq!(body["tags"]["items"], json!(["bpr-dep-life-c1"]));
    // Two rules: one per source list, both targeting only this instance.
    let fws = state["firewalls"].as_array().unwrap();
    assert_eq!(fws.len(), 2, "{fws:?}");
    for fw in fws {
        assert_eq!(fw["targetTags"], json!(["bpr-dep-life-c1"]), "{fw}");
    }
    let office = fws
        .iter()
        .find(|f| f["sourceRanges"] == json!(["198.51.100.0/24"]))
        .unwrap();
    assert_eq!(
        office["allowed"],
        json!([{"IPProtocol": "tcp", "ports": ["22"]}])
    );
    let world = fws
        .iter()
        .find(|f| f["sourceRanges"] == json!(["0.0.0.0/0"]))
        .unwrap();
    assert_eq!(
        world["allowed"],
        json!([{"IPProtocol": "udp", "ports": ["9000-9001"]}])
    );
    assert_eq!(
        created
            .resources
            .iter()
            .filter(|r| r.kind == "firewall")
            .count(),
        2
    );

    // The insert carried a requestId and its operation was waited on with `wait`.
    let requests = f.stand.requests().await;
    assert!(
        requests
            .iter()
            .any(|(m, p, _)| m == "POST" && p.contains("/zones/us-central1-a/instances?requestId=")),
        "{requests:?}"
    );
    assert!(
        requests.iter().any(|(m, p, _)| m == "POST"
            && p.contains("/zones/us-central1-a/operations/")
            && p.ends_with("/wait")),
        "{requests:?}"
    );
    // The host minted the token with the service account's signed assertion.
    let mints = &f.stand.fetch("/_fake/log").await["mints"];
    assert_eq!(mints[0]["iss"], CLIENT_EMAIL);
    assert_eq!(mints[0]["scope"], CLOUD_PLATFORM);

    let got = get_until(&f.gcp, &created, InstanceState::Running).await;
    assert!(
        got.public_ipv4.is_some() && got.private_ipv4.is_some(),
        "{got:?}"
    );

    // list by label finds it (crash recovery).
    let listed = f
        .gcp
        .list_instances(InstanceQuery {
            regions: vec![],
            labels: vec![("bpr-deployment".into(), "dep-life".into())],
        })
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![created.id.as_str()]
    );

    // delete removes instance, boot disk and both rules; a repeat is fine.
    delete_until_gone(&f.gcp, as_ref(&created)).await;
    let state = f.stand.state().await;
    for kind in ["instances", "disks", "firewalls"] {
        assert_eq!(count(&state, kind), 0, "{kind} left after delete: {state}");
    }
    assert_eq!(
        f.gcp
            .delete_instance(as_ref(&created))
            .await
            .expect("second delete"),
        DeleteStatus::Deleted
    );
    assert!(matches!(
        provider_error(f.gcp.get_instance(as_ref(&created)).await),
        ProviderError::NotFound(_)
    ));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_insert_with_the_same_request_id_gives_one_instance() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"lost_response": true, "method": "POST", "path": "/projects/bpr-test/zones/us-central1-a/instances"}))
        .await;
    let first = provider_error(
        f.gcp
            .create_instance(spec("dep-lost", "dep-lost-c1", "e2-medium"))
            .await,
    );
    assert!(matches!(first, ProviderError::Transient(_)), "{first:?}");
    assert_eq!(
        count(&f.stand.state().await, "instances"),
        1,
        "the insert did happen"
    );

    let retried = f
        .gcp
        .create_instance(spec("dep-lost", "dep-lost-c1", "e2-medium"))
        .await
        .expect("retry");
    let state = f.stand.state().await;
    assert_eq!(count(&state, "instances"), 1, "still one instance: {state}");
    assert_eq!(retried.id, "us-central1-a/bpr-dep-lost-c1");
    let inserts: Vec<String> = f
        .stand
        .requests()
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.contains("/instances?requestId="))
        .map(|(_, p, _)| p)
        .collect();
    assert_eq!(inserts.len(), 2, "{inserts:?}");
    assert_eq!(inserts[0], inserts[1], "the retry sent the same requestId");
    // Compute Engine answered the retry with the first operation.
    let ops = state["operations"].as_array().unwrap();
    assert_eq!(
        ops.iter()
            .filter(|o| o["operationType"] == "insert"
                && o["targetLink"].as_str().unwrap().contains("/instances/"))
            .count(),
        1,
        "{ops:?}"
    );
    delete_until_gone(&f.gcp, as_ref(&retried)).await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_instance_is_adopted_only_when_it_carries_this_creates_key() {
    let f = Fixture::new().await;
    let first = f
        .gcp
        .create_instance(spec("dep-409", "dep-409-c1", "e2-medium"))
        .await
        .expect("create");
    // Compute Engine forgot the requestId (it only remembers it for a while):
    // the retry meets 409 alreadyExists and adopts its own instance.
    f.stand.config(json!({"forget_request_ids": true})).await;
    let again = f
        .gcp
        .create_instance(spec("dep-409", "dep-409-c1", "e2-medium"))
        .await
        .expect("adopted");
    assert_eq!(again.id, first.id);
    assert_eq!(count(&f.stand.state().await, "instances"), 1);
    let conflicts = f.stand.fetch("/_fake/log").await["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 409)
        .count();
    assert!(conflicts >= 1, "the retry met 409");

    // The same name held by an instance without this create's idempotency label.
    f.stand.config(json!({"require_token": false})).await;
    let r = f
        .stand
        .http
        .post(format!(
            "{}/projects/{PROJECT}/zones/us-central1-a/instances",
            f.stand.fake
        ))
        .body(
            json!({"name": "bpr-dep-other-c1", "machineType": "zones/us-central1-a/machineTypes/e2-medium",
                   "disks": [{"boot": true, "autoDelete": true, "initializeParams": {
                       "sourceImage": "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"}}],
                   "networkInterfaces": [{"network": "global/networks/default"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    f.stand.config(json!({"require_token": true})).await;
    let err = provider_error(
        f.gcp
            .create_instance(spec("dep-other", "dep-other-c1", "e2-medium"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::InvalidRequest(m) if m.contains("taken")),
        "{err:?}"
    );
    delete_until_gone(&f.gcp, as_ref(&first)).await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spot_asks_for_a_spot_vm_deleted_on_preemption() {
    let f = Fixture::new().await;
    let mut s = spec("dep-spot", "dep-spot-c1", "n2-standard-2");
    s.spot = true;
    let created = f.gcp.create_instance(s).await.expect("create");
    let body = inserted(&f.stand.state().await, name_of(&created));
    assert_eq!(
        body["scheduling"],
        json!({"provisioningModel": "SPOT", "instanceTerminationAction": "DELETE",
               "onHostMaintenance": "TERMINATE", "automaticRestart": false})
    );
    let got = f.gcp.get_instance(as_ref(&created)).await.expect("get");
    assert!(got.spot);
    delete_until_gone(&f.gcp, as_ref(&created)).await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn n1_with_a_t4_attaches_the_gpu_and_a2_brings_its_own() {
    let f = Fixture::new().await;
    let n1 = f
        .gcp
        .create_instance(spec(
            "dep-t4",
            "dep-t4-c1",
            "n1-standard-4+1xnvidia-tesla-t4",
        ))
        .await
        .expect("n1 + t4");
    let a2 = f
        .gcp
        .create_instance(spec("dep-a2", "dep-a2-c1", "a2-highgpu-1g"))
        .await
        .expect("a2");
    let state = f.stand.state().await;
    let b = inserted(&state, name_of(&n1));
    assert_eq!(
        b["machineType"],
        "zones/us-central1-a/machineTypes/n1-standard-4"
    );
    assert_eq!(
        b["guestAccelerators"],
        json!([{"acceleratorType": "projects/bpr-test/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4",
                "acceleratorCount": 1}])
    );
    assert_eq!(b["scheduling"]["onHostMaintenance"], "TERMINATE");
    let b = inserted(&state, name_of(&a2));
    assert_eq!(
        b["machineType"],
        "zones/us-central1-a/machineTypes/a2-highgpu-1g"
    );
    assert!(b.get("guestAccelerators").is_none(), "{b}");
    assert_eq!(b["scheduling"]["onHostMaintenance"], "TERMINATE");
    // The type reads back as the offer named it.
    assert_eq!(
        f.gcp.get_instance(as_ref(&n1)).await.unwrap().instance_type,
        "n1-standard-4+1xnvidia-tesla-t4"
    );
    // Upstream's invented type is refused by Compute Engine, as invalid.
    let err = provider_error(
        f.gcp
            .create_instance(spec("dep-bad", "dep-bad-c1", "n1-standard-4-nvidia-t4"))
            .await,
    );
    assert!(matches!(err, ProviderError::InvalidRequest(_)), "{err:?}");
    delete_until_gone(&f.gcp, as_ref(&n1)).await;
    delete_until_gone(&f.gcp, as_ref(&a2)).await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stockout_is_capacity_unavailable_and_leaves_nothing() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"op_errors": [{"machine_type": "n2-standard-2", "code": "ZONE_RESOURCE_POOL_EXHAUSTED",
            "message": "The zone 'projects/bpr-test/zones/us-central1-a' does not have enough resources available to fulfill the request.",
            "http_status": 503}]}))
        .await;
    let err = provider_error(
        f.gcp
            .create_instance(spec("dep-stock", "dep-stock-c1", "n2-standard-2"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::CapacityUnavailable(m) if m.contains("ZONE_RESOURCE_POOL_EXHAUSTED")),
        "{err:?}"
    );
    let state = f.stand.state().await;
    for kind in ["instances", "disks", "firewalls"] {
        assert_eq!(
            count(&state, kind),
            0,
            "{kind} left after a stockout: {state}"
        );
    }
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_rate_limit_auth_and_unknown_names_map_to_their_cases() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"op_errors": [{"machine_type": "c2-standard-4", "code": "QUOTA_EXCEEDED",
            "message": "Quota 'C2_CPUS' exceeded. Limit: 0.0 in region us-central1.", "http_status": 403}]}))
        .await;
    let err = provider_error(
        f.gcp
            .create_instance(spec("dep-q", "dep-q-c1", "c2-standard-4"))
            .await,
    );
    assert!(matches!(err, ProviderError::QuotaExceeded(_)), "{err:?}");

    f.stand
        .inject(
            json!({"status": 403, "reason": "rateLimitExceeded", "domain": "usageLimits",
                       "message": "Rate Limit Exceeded", "retry_after": 3, "method": "GET"}),
        )
        .await;
    let err = provider_error(
        f.gcp
            .list_instances(InstanceQuery {
                regions: vec![],
                labels: vec![("bpr-managed".into(), "true".into())],
            })
            .await,
    );
    let ProviderError::RateLimited(rl) = err else {
        panic!("a 403 rateLimitExceeded is rate-limited, not unauthorized: {err:?}")
    };
    assert_eq!(rl.retry_after_ms, Some(3000));

    f.stand
        .inject(json!({"status": 403, "reason": "forbidden", "message": "Required 'compute.instances.get' permission"}))
        .await;
    let missing = InstanceRef {
        id: "us-central1-a/bpr-nothing".into(),
        region: "us-central1".into(),
        zone: None,
        resources: vec![],
        labels: vec![],
    };
    let err = provider_error(f.gcp.get_instance(missing.clone()).await);
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    let err = provider_error(f.gcp.get_instance(missing.clone()).await);
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    assert_eq!(
        f.gcp
            .delete_instance(missing)
            .await
            .expect("deleting what is gone"),
        DeleteStatus::Deleted
    );

    let mut s = spec("dep-r", "dep-r-c1", "e2-medium");
    s.region = "mars-north1".into();
    let err = provider_error(f.gcp.create_instance(s).await);
    assert!(
        matches!(err, ProviderError::RegionUnavailable(_)),
        "{err:?}"
    );
    let err = provider_error(
        f.gcp
            .create_instance(spec("dep-t", "dep-t-c1", "e2-huge-999"))
            .await,
    );
    assert!(matches!(err, ProviderError::InvalidRequest(_)), "{err:?}");
    let mut s = spec("dep-a", "dep-a-c1", "a2-highgpu-1g");
    s.region = "us-east4".into(); // the fake's data has no A2 there
    let err = provider_error(f.gcp.create_instance(s).await);
    assert!(
        matches!(err, ProviderError::CapacityUnavailable(_)),
        "{err:?}"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn operations_going_pending_running_done_over_several_polls_are_waited_out() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"op_steps": 4, "op_done_after_ms": 60000}))
        .await;
    let created = f
        .gcp
        .create_instance(spec("dep-slow", "dep-slow-c1", "e2-medium"))
        .await
        .expect("create");
    let waits = f
        .stand
        .requests()
        .await
        .iter()
        .filter(|(m, p, _)| m == "POST" && p.ends_with("/wait") && p.contains("/zones/"))
        .count();
    assert!(waits >= 4, "waited {waits} times");
    delete_until_gone(&f.gcp, as_ref(&created)).await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_insert_that_outlasts_the_budget_is_pending_then_failed_and_delete_cleans_up() {
    let f = Fixture::with_settings("").await;
    // Operations finish only after 3 s whatever is polled; a call waits 0.3 s for each.
    let host = f
        .env
        .start(&f.provider_section.replace(
            "operation_timeout_ms = \"20000\"",
            "operation_timeout_ms = \"300\"",
        ))
        .await;
    let gcp = host.provider("gcp").unwrap();
    f.stand
        .config(json!({"op_steps": 1000, "op_done_after_ms": 3000,
            "op_errors": [{"machine_type": "n2d-standard-2", "code": "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                           "message": "no n2d-standard-2 left", "http_status": 503}]}))
        .await;
    let mut quick = spec("dep-late", "dep-late-c1", "e2-medium");
    quick.open_ports.truncate(1);
    let ok = gcp.create_instance(quick).await.expect("accepted");
    let mut s = spec("dep-doom", "dep-doom-c1", "n2d-standard-2");
    s.open_ports.truncate(1);
    let doomed = gcp
        .create_instance(s)
        .await
        .expect("accepted; the stockout is not known yet");
    for i in [&ok, &doomed] {
        assert_eq!(i.state, InstanceState::Pending, "{i:?}");
        assert!(i.resources.iter().any(|r| r.kind == "operation"), "{i:?}");
    }
    tokio::time::sleep(Duration::from_millis(3200)).await;
    get_until(&gcp, &ok, InstanceState::Running).await;
    let failed = gcp.get_instance(as_ref(&doomed)).await.expect("get");
    assert_eq!(failed.state, InstanceState::Failed, "{failed:?}");
    assert!(
        failed
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("ZONE_RESOURCE_POOL_EXHAUSTED"),
        "{failed:?}"
    );
    delete_until_gone(&gcp, as_ref(&doomed)).await;
    delete_until_gone(&gcp, as_ref(&ok)).await;
    let state = f.stand.state().await;
    for kind in ["instances", "disks", "firewalls"] {
        assert_eq!(count(&state, kind), 0, "{kind} left: {state}");
    }
    host.shutdown().await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_reads_every_page_of_every_zone_and_filters_by_label() {
    let f = Fixture::new().await;
    f.stand.config(json!({"max_results_cap": 2})).await;
    let mut made = Vec::new();
    for (i, zone) in ["us-central1-a", "us-central1-b", "us-central1-c"]
        .iter()
        .enumerate()
    {
        let mut s = spec("dep-many", &format!("dep-many-c{i}"), "e2-medium");
        s.zone = Some(zone.to_string());
        s.open_ports.clear();
        made.push(f.gcp.create_instance(s).await.expect("create"));
    }
    let mut other = spec("dep-other", "dep-other-c1", "e2-medium");
    other.open_ports.clear();
    let other = f.gcp.create_instance(other).await.expect("create");
    let mut listed: Vec<String> = f
        .gcp
        .list_instances(InstanceQuery {
            regions: vec!["us-central1".into()],
            labels: vec![
                ("bpr-deployment".into(), "dep-many".into()),
                ("team".into(), "a_b/C".into()),
            ],
        })
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.id)
        .collect();
    listed.sort();
    let mut want: Vec<String> = made.iter().map(|i| i.id.clone()).collect();
    want.sort();
    assert_eq!(listed, want);
    let pages = f
        .stand
        .requests()
        .await
        .iter()
        .filter(|(m, p, _)| {
            m == "GET" && p.contains("/aggregated/instances") && p.contains("dep-many")
        })
        .count();
    assert_eq!(pages, 2, "3 instances in pages of 2");
    let elsewhere = f
        .gcp
        .list_instances(InstanceQuery {
            regions: vec!["europe-west4".into()],
            labels: vec![("bpr-deployment".into(), "dep-many".into())],
        })
        .await
        .expect("list");
    assert!(elsewhere.is_empty());
    for i in made.iter().chain([&other]) {
        delete_until_gone(&f.gcp, as_ref(i)).await;
    }
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_firewall_left_without_its_instance_is_a_leftover_the_empty_id_deletes() {
    let f = Fixture::new().await;
    let created = f
        .gcp
        .create_instance(spec("dep-orphan", "dep-orphan-c1", "e2-medium"))
        .await
        .expect("create");
    // The instance goes away behind the host's back (a Spot preemption with
    // DELETE, a crash between the two deletes...); its rules stay.
    f.stand.config(json!({"require_token": false})).await;
    let r = f
        .stand
        .http
        .delete(format!(
            "{}/projects/{PROJECT}/zones/us-central1-a/instances/{}",
            f.stand.fake,
            name_of(&created)
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    f.stand
        .config(json!({"require_token": true, "op_done_after_ms": 0}))
        .await;
    let found = f
        .gcp
        .list_instances(InstanceQuery {
            regions: vec![],
            labels: vec![("bpr-deployment".into(), "dep-orphan".into())],
        })
        .await
        .expect("list");
    // The leftovers convention (wit/provider.wit): one entry with an empty id,
    // state terminated, the deployment's labels and the rules themselves.
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, "");
    assert_eq!(found[0].state, InstanceState::Terminated);
    assert_eq!(found[0].region, "us-central1");
    assert!(
        found[0]
            .labels
            .contains(&("bpr-deployment".to_string(), "dep-orphan".to_string())),
        "{found:?}"
    );
    assert!(
        !found[0].resources.is_empty() && found[0].resources.iter().all(|r| r.kind == "firewall"),
        "{found:?}"
    );
    // What the host does with it: delete-instance with the empty id and the
    // deployment's label.
    delete_until_gone(&f.gcp, as_ref(&found[0])).await;
    let again = f
        .gcp
        .list_instances(InstanceQuery {
            regions: vec![],
            labels: vec![("bpr-deployment".into(), "dep-orphan".into())],
        })
        .await
        .expect("list");
    assert!(again.is_empty(), "{again:?}");
    let state = f.stand.state().await;
    for kind in ["instances", "disks", "firewalls"] {
        assert_eq!(count(&state, kind), 0, "{kind} left: {state}");
    }
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answer_outside_the_schema_is_caught_by_prism() {
    // Proves the violation check of every other test is live.
    let f = Fixture::new().await;
    let mut s = spec("dep-broken", "dep-broken-c1", "e2-medium");
    s.open_ports.clear();
    let created = f.gcp.create_instance(s).await.expect("create");
    f.stand
        .inject(json!({"break_response": true, "method": "GET", "path": "/projects/bpr-test/zones/us-central1-a/instances/"}))
        .await;
    let err = provider_error(f.gcp.get_instance(as_ref(&created)).await);
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert!(
        !f.stand.violations_since(&f.log_from).await.is_empty(),
        "Prism logged the violation"
    );
    delete_until_gone(&f.gcp, as_ref(&created)).await;
    f.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_outside_the_schema_is_rejected_by_prism_before_the_fake() {
    let f = Fixture::new().await;
    let resp = f
        .stand
        .http
        .post(format!(
            "{}/projects/{PROJECT}/zones/us-central1-a/instances",
            f.stand.compute
        ))
        .header("authorization", "Bearer test")
        .header("content-type", "application/json")
        .body(json!({"name": 123, "labels": {"a": 1}}).to_string())
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(resp.status().as_u16(), 422);
    assert!(resp.text().await.unwrap().contains("name must be string"));
    assert!(f.stand.requests().await.is_empty(), "nothing was forwarded");
    assert!(!f.stand.violations_since(&f.log_from).await.is_empty());
    f.host.shutdown().await;
}

// ---- GKE ---------------------------------------------------------------------------

fn cluster_spec(name: &str, region: &str, count: u32) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        deployment_id: format!("dep-{name}"),
        idempotency_key: format!("dep-{name}-c1"),
        region: region.into(),
        kubernetes_version: None,
        node_pools: vec![NodePoolSpec {
            name: "pool-1".into(),
            instance_type: "e2-standard-4".into(),
            count,
            min_count: None,
            max_count: None,
            spot: false,
            disk_gib: None,
        }],
        labels: vec![("bpr-deployment".into(), format!("dep-{name}"))],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gke_cluster_lifecycle_uses_node_pools_and_host_minted_auth() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"cluster_running_after_gets": 2}))
        .await;
    let spec = cluster_spec("bpr-gke1", "us-central1", 2);
    let created = f.gcp.create_cluster(spec.clone()).await.expect("create");
    assert_eq!(created.state, ClusterState::Provisioning);
    let again = f.gcp.create_cluster(spec).await.expect("repeat create");
    assert_eq!(again.id, created.id, "a repeat returns the same cluster");
    let state = f.stand.state().await;
    assert_eq!(count(&state, "clusters"), 1);
    let body = &state["clusters"][0]["body"];
    assert!(
        body.get("initialNodeCount").is_none() && body.get("nodeConfig").is_none(),
        "never the deprecated form: {body}"
    );
    let pool = &body["nodePools"][0];
    // Regional: 2 nodes in total, one in each of the first two zones.
    assert_eq!(pool["initialNodeCount"], 1);
    assert_eq!(pool["locations"], json!(["us-central1-a", "us-central1-b"]));
    assert_eq!(pool["config"]["machineType"], "e2-standard-4");
    assert_eq!(body["resourceLabels"]["bpr-deployment"], "dep-bpr-gke1");

    let r = ClusterRef {
        id: created.id.clone(),
        name: created.name.clone(),
        region: "us-central1".into(),
        resources: vec![],
    };
    let got = f.gcp.get_cluster(r.clone()).await.expect("get");
    assert_eq!(got.state, ClusterState::Running);
    assert!(
        got.endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://34.118.")),
        "{got:?}"
    );
    assert!(
        got.ca_certificate_pem
            .as_deref()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );
    assert!(matches!(&got.auth, ClusterAuth::ProviderOauth(s) if s == CLOUD_PLATFORM));
    assert!(matches!(
        provider_error(f.gcp.get_credentials(r.clone()).await),
        ProviderError::Unsupported(_)
    ));

    let mut status = f.gcp.delete_cluster(r.clone()).await.expect("delete");
    for _ in 0..10 {
        if status == DeleteStatus::Deleted {
            break;
        }
        status = f.gcp.delete_cluster(r.clone()).await.expect("delete");
    }
    assert_eq!(status, DeleteStatus::Deleted);
    assert!(matches!(
        provider_error(f.gcp.get_cluster(r).await),
        ProviderError::NotFound(_)
    ));
    assert_eq!(count(&f.stand.state().await, "clusters"), 0);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gke_cluster_named_in_the_config_is_a_deployment_target_with_a_host_minted_token() {
    let kmock = crate::kubernetes::kmock_url();
    let f = Fixture::new().await;
    // Running clusters report kmock as their API server (GKE reports an address).
    f.stand
        .config(json!({"k8s_endpoint": kmock.trim_start_matches("http://")}))
        .await;
    let created = f
        .gcp
        .create_cluster(cluster_spec("bpr-gke2", "us-central1-a", 1))
        .await
        .expect("create cluster");
    let host = f
        .env
        .start(&format!(
            "{}[operator.kubernetes]\nmanaged = [{{ name = \"gke\", provider = \"gcp\", region = \"us-central1-a\", id = {:?} }}]\n",
            f.provider_section, created.id
        ))
        .await;
    let cluster = host.cluster("gke").await.expect("managed cluster resolves");
    let service = crate::kubernetes::unique_service();
    let ctl = crate::kubernetes::controller(cluster.client().clone(), format!("bpr-7-{service}"));
    let rec = host
        .deploy_with(
            crate::kubernetes::request(
                service,
                "gke",
                blueprint_remote_providers::kubernetes::Tier::Basic,
            ),
            vec![],
            &crate::kubernetes::fast(),
        )
        .await
        .expect("deploys to the GKE cluster");
    assert_eq!(rec.cluster.as_deref(), Some("gke"));
    let done = host.terminate(&rec.id).await.expect("terminate");
    ctl.abort();
    assert_eq!(done.status, DeploymentStatus::Terminated);
    // The host asked the component for the cluster, minted the token itself, and
    // never asked for credentials.
    let log = f.stand.fetch("/_fake/log").await;
    assert!(
        log["mints"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["scope"] == CLOUD_PLATFORM && m["iss"] == CLIENT_EMAIL)
    );
    assert!(log["requests"].as_array().unwrap().iter().any(|r| {
        r["path"]
            .as_str()
            .unwrap()
            .ends_with("/locations/us-central1-a/clusters/bpr-gke2")
    }));
    host.shutdown().await;
    f.finish().await;
}

// ---- offers ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn offers_from_the_skypilot_catalogue_add_the_a2_gpus_and_skip_tpus() {
    let f = Fixture::new().await;
    let offers = f
        .gcp
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("offers");
    let find = |t: &str, r: &str| {
        offers
            .iter()
            .find(|o| o.instance_type == t && o.region == r)
    };
    // Hand-computed from the recorded rows: host 0.73948 + one A100 2.933908.
    let a2 = find("a2-highgpu-1g", "us-central1").expect("a2-highgpu-1g");
    assert!((a2.hourly_usd - 3.673388).abs() < 1e-9, "{}", a2.hourly_usd);
    assert_eq!(
        (a2.gpus, a2.gpu_model.as_deref()),
        (1.0, Some("nvidia-tesla-a100"))
    );
    let a2x8 = find("a2-highgpu-8g", "us-central1").expect("a2-highgpu-8g");
    assert!(
        (a2x8.hourly_usd - (5.91582 + 23.471264)).abs() < 1e-9,
        "{}",
        a2x8.hourly_usd
    );
    // No A100 price in asia-northeast1, no H100 price anywhere: left out.
    assert!(find("a2-highgpu-1g", "asia-northeast1").is_none());
    assert!(!offers.iter().any(|o| o.instance_type.starts_with("a3-")));
    assert!(!offers.iter().any(|o| o.instance_type.contains("tpu")));
    let n1 = find("n1-highmem-8", "us-central2").expect("n1-highmem-8");
    assert_eq!(
        (n1.hourly_usd, n1.spot_hourly_usd),
        (0.47321, Some(0.09962))
    );
    assert!(
        offers
            .iter()
            .all(|o| !o.source.from_snapshot && o.source.source.ends_with("/gcp/vms.csv"))
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_from_the_billing_skus_price_e2_medium_by_its_fractional_vcpu() {
    let f = Fixture::with_settings("catalog = \"billing\"\n").await;
    let offers = f
        .gcp
        .list_offers(OfferQuery {
            regions: vec!["us-central1".into()],
        })
        .await
        .expect("offers");
    let find = |t: &str| offers.iter().find(|o| o.instance_type == t);
    // 1 billable vCPU x 0.02181159 + 4 GiB x 0.00292353.
    let e2 = find("e2-medium").expect("e2-medium");
    assert!(
        (e2.hourly_usd - 0.03350571).abs() < 1e-9,
        "{}",
        e2.hourly_usd
    );
    assert!((e2.spot_hourly_usd.unwrap() - (0.00459195 + 4.0 * 0.00061548)).abs() < 1e-9);
    assert!(e2.shared_cpu);
    // 4 x 0.031611 + 15 GiB x 0.004237.
    let n1 = find("n1-standard-4").expect("n1-standard-4");
    assert!((n1.hourly_usd - 0.189999).abs() < 1e-9, "{}", n1.hourly_usd);
    // 12 x 0.031611 + 85 x 0.004237 + one A100 2.933908.
    let a2 = find("a2-highgpu-1g").expect("a2-highgpu-1g");
    assert!((a2.hourly_usd - 3.673385).abs() < 1e-9, "{}", a2.hourly_usd);
    assert!(
        offers
            .iter()
            .all(|o| o.region == "us-central1" && !o.source.from_snapshot)
    );
    // Three SKU pages, each with the host's token.
    let skus = f
        .stand
        .requests()
        .await
        .into_iter()
        .filter(|(_, p, _)| p.starts_with("/v1/services/6F81-5844-456A/skus"))
        .count();
    assert_eq!(skus, 3);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_catalogue_falls_back_to_the_dated_snapshot() {
    let f = Fixture::with_settings("").await;
    let host = f
        .env
        .start(&f.provider_section.replace(
            &format!("{}/skypilot-catalog", f.stand.fake),
            &format!("{}/no-such-catalogue", f.stand.fake),
        ))
        .await;
    let offers = host
        .provider("gcp")
        .unwrap()
        .list_offers(OfferQuery {
            regions: vec!["us-central1".into()],
        })
        .await
        .expect("snapshot offers");
    assert!(!offers.is_empty());
    assert!(offers.iter().all(|o| o.source.from_snapshot
        && o.source.source == "snapshot:gcp-2023-08-06"
        && o.source.observed_at == 1_691_280_000));
    let e2 = offers
        .iter()
        .find(|o| o.instance_type == "e2-medium")
        .unwrap();
    assert!((e2.hourly_usd - 0.03350571).abs() < 1e-6);
    host.shutdown().await;
    f.finish().await;
}

// ---- the bpr binary ----------------------------------------------------------------

fn bpr(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpr"));
    c.arg("--config").arg(config).env("RUST_LOG", "error");
    c
}

fn write_config(f: &Fixture, extra: &str) -> PathBuf {
    let path = f.env.dir.path().join("bpr.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n{}{extra}",
            f.env.host_section("warn", false),
            f.provider_section
        ),
    )
    .unwrap();
    path
}

/// Issue 14: a stockout on the first candidate of a tracked `bpr deploy` fails over
/// to the next one; terminating leaves nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_stockout_fails_over_to_the_next_candidate_in_a_tracked_bpr_deploy() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"op_errors": [{"machine_type": "n2-standard-2", "code": "ZONE_RESOURCE_POOL_EXHAUSTED",
            "message": "The zone 'projects/bpr-test/zones/us-central1-a' does not have enough resources available to fulfill the request.",
            "http_status": 503}]}))
        .await;
    let config = write_config(&f, "");
    let id = format!("dep-gcp-failover-{}", std::process::id());
    let out = bpr(&config)
        .args([
            "deploy",
            "--blueprint",
            "7",
            "--service",
            "14",
            "--id",
            &id,
            "--provider",
            "gcp",
            "--region",
            "us-central1",
            "--type",
            "n2-standard-2",
            "--candidate",
            "gcp/us-central1/e2-medium",
            "--ssh-public-key",
            SSH_KEY,
            "--json",
            "--timeout-secs",
            "60",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bpr deploy failed: {stderr}");
    let rec: DeploymentRecord = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .skip_while(|l| !l.starts_with(b"{"))
            .collect::<Vec<_>>()
            .join(&b'\n')
            .as_slice(),
    )
    .unwrap_or_else(|e| {
        panic!(
            "--json prints the record ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.instance_type.as_deref(), Some("e2-medium"));

    // The attempts, read back from the database the binary wrote.
    let host = f.env.start(&f.provider_section).await;
    let attempts = host.tracker().attempts(&id).unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        (attempts[0].instance_type.as_str(), attempts[0].outcome),
        ("n2-standard-2", AttemptOutcome::Failover)
    );
    let why = attempts[0].detail.clone().unwrap_or_default();
    assert!(why.contains("ZONE_RESOURCE_POOL_EXHAUSTED"), "{why}");
    assert_eq!(
        (attempts[1].instance_type.as_str(), attempts[1].outcome),
        ("e2-medium", AttemptOutcome::Used)
    );
    let state = f.stand.state().await;
    assert_eq!(count(&state, "instances"), 1, "{state}");
    assert_eq!(
        state["instances"][0]["machineType"], "e2-medium",
        "only the second candidate runs"
    );
    host.shutdown().await;

    let out = bpr(&config).args(["terminate", &id]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = f.stand.state().await;
    for kind in ["instances", "disks", "firewalls"] {
        assert_eq!(
            count(&state, kind),
            0,
            "{kind} left after terminate: {state}"
        );
    }
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_plan_ranks_gcp_offers_from_the_live_catalogue() {
    let f = Fixture::new().await;
    let config = write_config(&f, "");
    let out = bpr(&config)
        .args([
            "plan",
            "--cpu",
            "4",
            "--memory",
            "16",
            "--gpus",
            "1",
            "--region",
            "us-central1",
            "--provider",
            "gcp",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["offline"], false, "{v}");
    let first = &v["candidates"][0]["offer"];
    assert_eq!(first["provider"], "gcp");
    assert_eq!(first["instance_type"], "a2-highgpu-1g", "{v}");
    assert!(
        (first["hourly_usd"].as_f64().unwrap() - 3.673388).abs() < 1e-6,
        "{first}"
    );
    f.finish().await;
}

#[test]
fn bpr_lists_gcp_and_plans_with_its_snapshot_offline_on_embedded_defaults() {
    let state = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bpr"))
            .args(args)
            .env("XDG_STATE_HOME", state.path())
            .env("HOME", state.path())
            .env_remove("BPR_CONFIG")
            .env("RUST_LOG", "error")
            .output()
            .expect("bpr runs")
    };
    let out = run(&["providers", "list"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("gcp"))
        .unwrap_or_else(|| panic!("gcp missing:\n{stdout}"));
    assert!(line.ends_with("loaded"), "{line}");

    // Ranked next to the other providers, from the embedded snapshots.
    let out = run(&[
        "plan", "--cpu", "2", "--memory", "8", "--region", "us", "--limit", "5000", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(v["offline"], true, "{v}");
    // The ranked list is capped, and which providers fill it depends on every
    // snapshot's prices; gcp must be among them, and every provider's catalogue
    // must have been gathered next to it.
    let providers: std::collections::BTreeSet<&str> = v["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["offer"]["provider"].as_str())
        .collect();
    assert!(providers.contains("gcp"), "gcp missing: {providers:?}");
    let gathered: std::collections::BTreeMap<&str, u64> = v["catalogues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| Some((c["provider"].as_str()?, c["offers"].as_u64()?)))
        .collect();
    for p in ["gcp", "aws", "digitalocean"] {
        assert!(
            gathered.get(p).is_some_and(|n| *n > 0),
            "{p} not gathered: {gathered:?}"
        );
    }

    let out = run(&[
        "plan",
        "--cpu",
        "2",
        "--memory",
        "8",
        "--region",
        "us-central1",
        "--provider",
        "gcp",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let first = &v["candidates"][0]["offer"];
    assert_eq!(first["provider"], "gcp", "{v}");
    // The cheapest 2 vCPU / 8 GiB type in the snapshot: e2-standard-2,
    // 2 x 0.02181159 + 8 x 0.00292353.
    assert_eq!(first["instance_type"], "e2-standard-2", "{v}");
    assert!(
        (first["hourly_usd"].as_f64().unwrap() - 0.06701142).abs() < 1e-6,
        "{first}"
    );
    assert_eq!(v["offline"], true, "{v}");
}
