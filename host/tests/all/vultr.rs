//! Issue 16: the Vultr component under wasmtime against the project's stateful
//! fake of the Vultr API, behind Prism in proxy mode with Vultr's OpenAPI spec.
//! Every test also checks that Prism reported no schema violation for the
//! requests it made. The pricing tests serve the recorded plan pages
//! (`host/tests/fixtures/vultr/`) from a local server and check hand-computed
//! prices.
//!
//! Needs `scripts/standins/vultr.sh start` and its exports:
//! `BPR_TEST_VULTR_URL` (Prism), optionally `BPR_TEST_VULTR_FAKE_URL` (the
//! fake's `/_fake/*` controls; default: Prism's port + 1) and
//! `BPR_TEST_VULTR_PRISM_LOG` (default: `.standins/vultr/prism.log`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use blueprint_remote_providers::wit::{
    ClusterCredentials, ClusterRef, ClusterSpec, ClusterState, DeleteStatus, Instance,
    InstanceQuery, InstanceRef, InstanceSpec, InstanceState, NodePoolSpec, Offer, OfferQuery,
    PortRule, Protocol, ProviderError,
};
use blueprint_remote_providers::{CallError, Host, ProviderHandle};
use bytes::Bytes;
use http_body_util::Full;
use serde_json::{Value, json};

use crate::support::{TestEnv, TestServer};

/// The fake keeps one global state, so Vultr tests run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0d6pZ8fWzMZb2y1q8e0x6Hn2W0e3Y9v2bX7t1m4kR test@bpr";

/// Where the stand-in runs.
struct Stand {
    prism: String,
    fake: String,
    prism_log: PathBuf,
    http: reqwest::Client,
}

impl Stand {
    fn from_env() -> Self {
        let prism = std::env::var("BPR_TEST_VULTR_URL").unwrap_or_else(|_| {
            panic!(
                "BPR_TEST_VULTR_URL is not set: run `scripts/standins/vultr.sh start` and export \
                 the variables it prints (Prism in front of the fake Vultr API)"
            )
        });
        let prism = prism.trim_end_matches('/').to_string();
        let fake = std::env::var("BPR_TEST_VULTR_FAKE_URL").unwrap_or_else(|_| {
            let (base, port) = prism
                .rsplit_once(':')
                .expect("BPR_TEST_VULTR_URL has a port");
            let port: u16 = port
                .parse()
                .expect("BPR_TEST_VULTR_URL ends in a port number");
            format!("{base}:{}", port + 1)
        });
        let prism_log = std::env::var("BPR_TEST_VULTR_PRISM_LOG")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.standins/vultr/prism.log")
            });
        assert!(
            prism_log.exists(),
            "Prism's log {} is missing; set BPR_TEST_VULTR_PRISM_LOG to the log of the running Prism",
            prism_log.display()
        );
        Stand {
            prism,
            fake,
            prism_log,
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
            .unwrap_or_else(|e| panic!("the fake Vultr API at {} does not answer: {e}", self.fake));
        assert!(
            resp.status().is_success(),
            "fake control {path} failed: {}",
            resp.status()
        );
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

    /// The fake's state (instances, bare metals, keys, firewalls, clusters).
    async fn state(&self) -> Value {
        self.fetch("/_fake/state").await
    }

    /// `(method, path)` of every API request the fake served.
    async fn requests(&self) -> Vec<(String, String)> {
        self.fetch("/_fake/log").await["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap().to_string(),
                    r["path"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// How many requests `method` to a path starting with `prefix` were served.
    async fn count(&self, method: &str, prefix: &str) -> usize {
        self.requests()
            .await
            .iter()
            .filter(|(m, p)| m == method && p.starts_with(prefix))
            .count()
    }

    /// Queue one injected fault (see `fake_vultr.py`).
    async fn inject(&self, fault: Value) {
        self.control("/_fake/next-error", fault).await;
    }

    /// Call the API through Prism directly (setting up what an operator had).
    async fn api_post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.prism))
            .header("authorization", "Bearer test")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "POST {path}: {}", resp.status());
        serde_json::from_str(&resp.text().await.unwrap()).unwrap()
    }

    fn log_len(&self) -> usize {
        std::fs::read(&self.prism_log).map(|b| b.len()).unwrap_or(0)
    }

    /// Prism's verdicts since `from`: lines where it rejected a request or an
    /// answer against the spec (`--errors` turns every violation into one).
    async fn violations_since(&self, from: usize) -> Vec<String> {
        // Prism writes its verdict after answering: wait until the log has
        // stopped growing (300 ms quiet, at most 3 s).
        let (mut last, mut quiet) = (self.log_len(), 0);
        for _ in 0..60 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let now = self.log_len();
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
            if quiet >= 6 {
                break;
            }
        }
        let bytes = std::fs::read(&self.prism_log).expect("read Prism's log");
        String::from_utf8_lossy(&bytes[from.min(bytes.len())..])
            .lines()
            .filter(|l| {
                l.contains("prism/errors#")
                    || l.contains("[VALIDATOR]")
                    || l.contains("sl-violations")
            })
            .map(str::to_string)
            .collect()
    }
}

/// A host with only the Vultr component, pointed at Prism.
struct Fixture {
    stand: Stand,
    env: TestEnv,
    /// The `[providers.vultr]` sections the host runs with.
    provider_section: String,
    host: Host,
    vultr: ProviderHandle,
    log_from: usize,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_endpoint(None).await
    }

    async fn with_endpoint(endpoint: Option<&str>) -> Self {
        let serial = SERIAL.lock().await;
        let stand = Stand::from_env();
        stand.control("/_fake/reset", json!({})).await;
        let env = TestEnv::new();
        env.add("vultr");
        let endpoint = endpoint.unwrap_or(&stand.prism).to_string();
        let provider_section = provider_section(&env, &endpoint);
        let host = env.start(&provider_section).await;
        let vultr = host.provider("vultr").expect("vultr.wasm loads");
        let log_from = stand.log_len();
        Fixture {
            stand,
            env,
            provider_section,
            host,
            vultr,
            log_from,
            _serial: serial,
        }
    }

    /// Every test ends here: Prism saw no request or answer outside the spec.
    async fn finish(self) {
        self.finish_with_undocumented_status(0).await;
    }

    /// [`Fixture::finish`] for a test that injected `n` answers with a status
    /// Vultr sends but its spec does not list for that operation (429: Vultr
    /// documents its rate limit, 30 requests per second, but its spec lists 429
    /// nowhere; 500 on create): Prism reports exactly one "unable to match the
    /// returned status code" per such answer, and nothing else.
    async fn finish_with_undocumented_status(self, n: usize) {
        let v = self.stand.violations_since(self.log_from).await;
        let (status, other): (Vec<String>, Vec<String>) = v
            .into_iter()
            .partition(|l| l.contains("Unable to match the returned status code"));
        assert!(
            other.is_empty(),
            "Prism reported schema violations:\n{}",
            other.join("\n")
        );
        assert_eq!(status.len(), n, "undocumented statuses: {status:?}");
        self.host.shutdown().await;
    }
}

/// `[providers.vultr]` for `endpoint`, with a bearer key from a file.
fn provider_section(env: &TestEnv, endpoint: &str) -> String {
    let token = env.dir.path().join("vultr-key");
    std::fs::write(&token, "VULTRTESTKEY").unwrap();
    format!(
        "[providers.vultr]\nallow = [{endpoint:?}]\ncall_timeout_ms = 60000\n\
         [providers.vultr.settings]\nendpoint = {endpoint:?}\n\
         [providers.vultr.credential]\nkind = \"bearer\"\ntoken_file = {token:?}\n"
    )
}

fn spec(deployment: &str, key: &str) -> InstanceSpec {
    InstanceSpec {
        deployment_id: deployment.into(),
        idempotency_key: key.into(),
        region: "ewr".into(),
        zone: None,
        instance_type: "vc2-1c-1gb".into(),
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
            ("team".into(), "a_b/c".into()),
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

fn len(v: &Value) -> usize {
    v.as_array().map_or(0, Vec::len)
}

/// Nothing the component makes is left in the fake.
async fn assert_nothing_left(stand: &Stand, after: &str) {
    let state = stand.state().await;
    for kind in ["instances", "bare_metals", "firewalls", "ssh_keys"] {
        assert_eq!(len(&state[kind]), 0, "{kind} left after {after}: {state}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_lifecycle_creates_exactly_what_was_asked_and_deletes_everything() {
    let f = Fixture::new().await;
    let created = f
        .vultr
        .create_instance(spec("dep-life", "dep-life-c1"))
        .await
        .expect("create");
    assert_eq!(
        (created.instance_type.as_str(), created.region.as_str()),
        ("vc2-1c-1gb", "ewr")
    );
    assert_eq!(created.state, InstanceState::Pending);
    assert_eq!(created.public_ipv4, None, "0.0.0.0 is no address yet");
    assert!(
        created
            .labels
            .contains(&("team".to_string(), "a_b/c".to_string())),
        "{:?}",
        created.labels
    );

    // What the fake received is exactly the request.
    let state = f.stand.state().await;
    assert_eq!(len(&state["instances"]), 1);
    let i = &state["instances"][0];
    assert_eq!(i["plan"], "vc2-1c-1gb");
    assert_eq!(i["region"], "ewr");
    assert_eq!(i["os_id"], 2284, "Ubuntu 24.04 LTS x64, looked up by name");
    assert_eq!(i["user_data"], "#cloud-config\nruncmd: [echo hi]\n");
    assert_eq!(i["label"], "bpr-dep-life-c1");
    let keys = state["ssh_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["ssh_key"], SSH_KEY);
    assert_eq!(i["sshkey_id"], json!([keys[0]["id"]]));
    // The firewall group opens only the requested ports, and is attached.
    assert_eq!(len(&state["firewalls"]), 1);
    let fw = &state["firewalls"][0];
    assert_eq!(i["firewall_group_id"], fw["id"]);
    let rules: Vec<(String, String, String, String, u64)> = fw["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["ip_type"].as_str().unwrap().into(),
                r["protocol"].as_str().unwrap().into(),
                r["port"].as_str().unwrap().into(),
                r["subnet"].as_str().unwrap().into(),
                r["subnet_size"].as_u64().unwrap(),
            )
        })
        .collect();
    let rule = |t: &str, p: &str, port: &str, s: &str, n: u64| {
        (
            t.to_string(),
            p.to_string(),
            port.to_string(),
            s.to_string(),
            n,
        )
    };
    assert_eq!(
        rules,
        vec![
            rule("v4", "tcp", "22", "198.51.100.0", 24),
            rule("v4", "udp", "9000:9001", "0.0.0.0", 0),
            rule("v6", "udp", "9000:9001", "::", 0),
        ]
    );
    let tags: Vec<&str> = i["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.contains(&"bpr:bpr-deployment:dep-life"), "{tags:?}");
    assert!(tags.contains(&"bpr-idem:dep-life-c1"), "{tags:?}");
    let kinds: Vec<&str> = created.resources.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, vec!["ssh-key", "firewall-group"]);

    // get: pending -> active/installingbooting -> active/ok with addresses.
    let mut got = f.vultr.get_instance(as_ref(&created)).await.expect("get");
    for _ in 0..5 {
        if got.state == InstanceState::Running {
            break;
        }
        got = f.vultr.get_instance(as_ref(&created)).await.expect("get");
    }
    assert_eq!(got.state, InstanceState::Running);
    assert!(
        got.public_ipv4.is_some() && got.private_ipv4.is_some(),
        "{got:?}"
    );

    // list by label finds it (crash recovery), with what its create made.
    let listed = f
        .vultr
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
    assert_eq!(listed[0].resources.len(), 2);

    // delete removes instance, firewall group and the key we registered;
    // a repeat is fine.
    assert_eq!(
        f.vultr
            .delete_instance(as_ref(&created))
            .await
            .expect("delete"),
        DeleteStatus::Deleted
    );
    assert_nothing_left(&f.stand, "delete").await;
    assert_eq!(
        f.vultr
            .delete_instance(as_ref(&created))
            .await
            .expect("second delete"),
        DeleteStatus::Deleted
    );
    assert!(matches!(
        provider_error(f.vultr.get_instance(as_ref(&created)).await),
        ProviderError::NotFound(_)
    ));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_without_resources_finds_the_firewall_and_key_from_the_tags() {
    let f = Fixture::new().await;
    let created = f
        .vultr
        .create_instance(spec("dep-crash", "dep-crash-c1"))
        .await
        .expect("create");
    // The host lost its records and passes only the id.
    let mut bare = as_ref(&created);
    bare.resources.clear();
    assert_eq!(
        f.vultr.delete_instance(bare).await.expect("delete"),
        DeleteStatus::Deleted
    );
    assert_nothing_left(&f.stand, "delete").await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_already_registered_is_found_by_fingerprint_and_kept() {
    let f = Fixture::new().await;
    // The operator registered the same key under another name and comment.
    let theirs = f
        .stand
        .api_post(
            "/ssh-keys",
            json!({"name": "operator laptop", "ssh_key": SSH_KEY.replace("test@bpr", "me@laptop")}),
        )
        .await;
    let their_id = theirs["ssh_key"]["id"].clone();
    let posts_before = f.stand.count("POST", "/ssh-keys").await;
    let created = f
        .vultr
        .create_instance(spec("dep-key", "dep-key-c1"))
        .await
        .expect("create");
    assert_eq!(
        f.stand.count("POST", "/ssh-keys").await,
        posts_before,
        "no second registration"
    );
    let state = f.stand.state().await;
    assert_eq!(state["instances"][0]["sshkey_id"], json!([their_id]));
    assert!(
        created.resources.iter().all(|r| r.kind != "ssh-key"),
        "not ours to delete: {:?}",
        created.resources
    );
    f.vultr
        .delete_instance(as_ref(&created))
        .await
        .expect("delete");
    let state = f.stand.state().await;
    assert_eq!(len(&state["instances"]), 0);
    assert_eq!(len(&state["firewalls"]), 0);
    assert_eq!(
        state["ssh_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].clone())
            .collect::<Vec<_>>(),
        vec![their_id],
        "the operator's key stays"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_retried_after_a_lost_response_gives_one_instance() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"lost_response": true, "method": "POST", "path": "/instances"}))
        .await;
    let first = provider_error(
        f.vultr
            .create_instance(spec("dep-lost", "dep-lost-c1"))
            .await,
    );
    assert!(
        matches!(first, ProviderError::Transient(_)),
        "a lost answer is transient: {first:?}"
    );
    assert_eq!(
        len(&f.stand.state().await["instances"]),
        1,
        "the fake did create it"
    );

    let retried = f
        .vultr
        .create_instance(spec("dep-lost", "dep-lost-c1"))
        .await
        .expect("retry");
    let state = f.stand.state().await;
    let instances = state["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "still one instance: {instances:?}");
    assert_eq!(retried.id, instances[0]["id"].as_str().unwrap());
    assert_eq!(len(&state["firewalls"]), 1);
    assert_eq!(len(&state["ssh_keys"]), 1);
    let mut kinds: Vec<&str> = retried.resources.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        vec!["firewall-group", "ssh-key"],
        "the key and group of the first attempt are found again"
    );
    assert_eq!(
        f.stand.count("POST", "/instances").await,
        1,
        "the retry found the instance instead of creating another"
    );
    assert_eq!(f.stand.count("POST", "/ssh-keys").await, 1);
    assert_eq!(f.stand.count("POST", "/firewalls").await, 1 + 3);
    f.vultr
        .delete_instance(as_ref(&retried))
        .await
        .expect("delete");
    assert_nothing_left(&f.stand, "delete").await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_retried_after_a_server_error_reuses_the_key_and_firewall_group() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"status": 500, "method": "POST", "path": "/instances"}))
        .await;
    let first = provider_error(f.vultr.create_instance(spec("dep-500", "dep-500-c1")).await);
    assert!(matches!(first, ProviderError::Transient(_)), "{first:?}");
    let state = f.stand.state().await;
    assert_eq!(len(&state["instances"]), 0);
    assert_eq!(
        (len(&state["ssh_keys"]), len(&state["firewalls"])),
        (1, 1),
        "kept for the retry"
    );
    let created = f
        .vultr
        .create_instance(spec("dep-500", "dep-500-c1"))
        .await
        .expect("retry");
    let state = f.stand.state().await;
    assert_eq!(len(&state["instances"]), 1);
    assert_eq!(len(&state["firewalls"][0]["rules"]), 3, "no rule twice");
    assert_eq!(f.stand.count("POST", "/ssh-keys").await, 1);
    assert_eq!(f.stand.count("POST", "/firewalls").await, 1 + 3);
    f.vultr
        .delete_instance(as_ref(&created))
        .await
        .expect("delete");
    assert_nothing_left(&f.stand, "delete").await;
    f.finish_with_undocumented_status(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_an_abandoned_attempt_left_goes_with_the_next_create_and_with_the_delete() {
    let f = Fixture::new().await;
    // Attempt 1 of the deployment is abandoned after a server error: its key
    // and firewall group are left, without an instance.
    f.stand
        .inject(json!({"status": 500, "method": "POST", "path": "/instances"}))
        .await;
    provider_error(f.vultr.create_instance(spec("dep-ab", "dep-ab-c1")).await);
    let descriptions = |state: &Value| -> Vec<String> {
        state["firewalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["description"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        descriptions(&f.stand.state().await),
        vec!["bpr-idem:dep-ab-c1 bpr-deployment:dep-ab"]
    );
    // Attempt 2 removes them before making its own.
    let created = f
        .vultr
        .create_instance(spec("dep-ab", "dep-ab-c2"))
        .await
        .expect("create");
    let state = f.stand.state().await;
    assert_eq!(
        descriptions(&state),
        vec!["bpr-idem:dep-ab-c2 bpr-deployment:dep-ab"]
    );
    assert_eq!(len(&state["ssh_keys"]), 1);
    assert_eq!(
        state["ssh_keys"][0]["name"],
        "bpr-idem:dep-ab-c2 bpr-deployment:dep-ab"
    );
    // Another deployment's attempt is not touched.
    let other = f
        .vultr
        .create_instance(spec("dep-other", "dep-other-c1"))
        .await
        .expect("create");
    // Attempt 3 is abandoned too; deleting attempt 2's instance takes its
    // leftovers with it.
    f.stand
        .inject(json!({"status": 500, "method": "POST", "path": "/instances"}))
        .await;
    provider_error(f.vultr.create_instance(spec("dep-ab", "dep-ab-c3")).await);
    assert_eq!(len(&f.stand.state().await["firewalls"]), 3);
    f.vultr
        .delete_instance(as_ref(&created))
        .await
        .expect("delete");
    assert_eq!(
        descriptions(&f.stand.state().await),
        vec!["bpr-idem:dep-other-c1 bpr-deployment:dep-other"]
    );
    f.vultr
        .delete_instance(as_ref(&other))
        .await
        .expect("delete");
    assert_nothing_left(&f.stand, "deleting both deployments").await;
    f.finish_with_undocumented_status(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_create_left_without_a_machine_is_a_leftover_the_empty_id_deletes() {
    let f = Fixture::new().await;
    // Another deployment's live machine, which nothing here may touch.
    let other = f
        .vultr
        .create_instance(spec("dep-keep", "dep-keep-c1"))
        .await
        .expect("create");
    // The only attempt of dep-lo is abandoned after a server error: its key
    // and firewall group stay, and no later create of it will come.
    f.stand
        .inject(json!({"status": 500, "method": "POST", "path": "/instances"}))
        .await;
    provider_error(f.vultr.create_instance(spec("dep-lo", "dep-lo-c1")).await);
    let query = InstanceQuery {
        regions: vec!["ewr".into()],
        labels: vec![("bpr-deployment".into(), "dep-lo".into())],
    };
    let found = f.vultr.list_instances(query.clone()).await.expect("list");
    // The leftovers convention (wit/provider.wit): an empty id, state
    // terminated, the deployment's label and what is left.
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, "");
    assert_eq!(found[0].state, InstanceState::Terminated);
    assert!(
        found[0]
            .labels
            .contains(&("bpr-deployment".to_string(), "dep-lo".to_string())),
        "{found:?}"
    );
    // Its SSH key is dep-keep's (the same public key, found by its
    // fingerprint): not this deployment's to delete.
    let kinds: Vec<&str> = found[0].resources.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["firewall-group"], "{found:?}");
    // What the host does with it: delete-instance with the empty id and the
    // deployment's label, until deleted.
    let mut status = DeleteStatus::InProgress;
    for _ in 0..5 {
        status = f
            .vultr
            .delete_instance(as_ref(&found[0]))
            .await
            .expect("delete");
        if status == DeleteStatus::Deleted {
            break;
        }
    }
    assert_eq!(status, DeleteStatus::Deleted);
    assert!(
        f.vultr
            .list_instances(query)
            .await
            .expect("list")
            .is_empty()
    );
    let state = f.stand.state().await;
    assert_eq!(len(&state["instances"]), 1, "{state}");
    assert_eq!(
        len(&state["firewalls"]),
        1,
        "the other deployment's group stays: {state}"
    );
    assert_eq!(
        len(&state["ssh_keys"]),
        1,
        "the other deployment's key stays: {state}"
    );
    // Without the label an empty id names nothing.
    let mut bare = as_ref(&found[0]);
    bare.labels.clear();
    assert!(matches!(
        provider_error(f.vultr.delete_instance(bare).await),
        ProviderError::InvalidRequest(_)
    ));
    f.vultr
        .delete_instance(as_ref(&other))
        .await
        .expect("delete");
    assert_nothing_left(&f.stand, "deleting both deployments").await;
    f.finish_with_undocumented_status(1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_are_listed_across_pages() {
    let f = Fixture::new().await;
    for i in 0..5 {
        let mut s = spec(&format!("dep-page-{i}"), &format!("dep-page-{i}-c1"));
        s.ssh_public_keys.clear();
        f.vultr.create_instance(s).await.expect("create");
    }
    f.stand
        .control("/_fake/config", json!({"max_per_page": 2}))
        .await;
    let before = f.stand.count("GET", "/instances?").await;
    let listed = f
        .vultr
        .list_instances(InstanceQuery {
            regions: vec!["ewr".into()],
            labels: vec![("bpr-managed".into(), "true".into())],
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 5);
    assert_eq!(
        f.stand.count("GET", "/instances?").await - before,
        3,
        "5 instances in pages of 2"
    );
    assert!(
        f.stand
            .requests()
            .await
            .iter()
            .any(|(_, p)| p.starts_with("/instances?") && p.contains("cursor=")),
        "the next pages were asked by cursor"
    );
    let one = f
        .vultr
        .list_instances(InstanceQuery {
            regions: vec![],
            labels: vec![("bpr-deployment".into(), "dep-page-3".into())],
        })
        .await
        .expect("list");
    assert_eq!(one.len(), 1);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_answer_is_rate_limited_and_the_next_call_succeeds() {
    let f = Fixture::new().await;
    let query = InstanceQuery {
        regions: vec![],
        labels: vec![("bpr-managed".into(), "true".into())],
    };
    f.stand
        .inject(json!({"status": 429, "method": "GET", "path": "/instances"}))
        .await;
    let err = provider_error(f.vultr.list_instances(query.clone()).await);
    let ProviderError::RateLimited(rl) = err else {
        panic!("expected rate-limited, got {err:?}")
    };
    assert_eq!(rl.retry_after_ms, Some(1000), "Vultr's limit is per second");
    f.stand
        .inject(json!({"status": 429, "retry_after": 3, "method": "GET", "path": "/instances"}))
        .await;
    let err = provider_error(f.vultr.list_instances(query.clone()).await);
    assert!(
        matches!(&err, ProviderError::RateLimited(r) if r.retry_after_ms == Some(3000)),
        "{err:?}"
    );
    assert!(
        f.vultr
            .list_instances(query)
            .await
            .expect("list")
            .is_empty()
    );
    f.finish_with_undocumented_status(2).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_not_offered_in_the_region_is_capacity_unavailable_and_leaves_nothing() {
    let f = Fixture::new().await;
    let mut s = spec("dep-cap", "dep-cap-c1");
    // Recorded with no location: sold out everywhere.
    s.instance_type = "vdc-8vcpu-32gb".into();
    let err = provider_error(f.vultr.create_instance(s).await);
    assert!(
        matches!(&err, ProviderError::CapacityUnavailable(m) if m.contains("Invalid plan chosen") && m.contains("not offered in ewr")),
        "{err:?}"
    );
    assert_nothing_left(&f.stand, "a failed create").await;

    let mut s = spec("dep-cap", "dep-cap-c2");
    s.instance_type = "vhf-12c-48gb".into(); // offered, but not in syd
    s.region = "syd".into();
    let err = provider_error(f.vultr.create_instance(s).await);
    assert!(
        matches!(err, ProviderError::CapacityUnavailable(_)),
        "{err:?}"
    );
    assert_nothing_left(&f.stand, "a failed create").await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_plan_or_os_is_an_invalid_request_and_leaves_nothing() {
    let f = Fixture::new().await;
    let mut s = spec("dep-bad", "dep-bad-c1");
    s.instance_type = "vc2-99c-1tb".into();
    let err = provider_error(f.vultr.create_instance(s).await);
    assert!(
        matches!(&err, ProviderError::InvalidRequest(m) if m.contains("has no plan `vc2-99c-1tb`")),
        "{err:?}"
    );
    assert_nothing_left(&f.stand, "a failed create").await;

    let posts = f.stand.count("POST", "/").await;
    let mut s = spec("dep-bad", "dep-bad-c2");
    s.image = Some("Ubuntu 99.04 LTS x64".into());
    let err = provider_error(f.vultr.create_instance(s).await);
    assert!(
        matches!(&err, ProviderError::InvalidRequest(m) if m.contains("Ubuntu 99.04") && m.contains("Ubuntu 24.04 LTS x64")),
        "{err:?}"
    );
    assert_eq!(
        f.stand.count("POST", "/").await,
        posts,
        "nothing was made: the image is resolved first"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_key_is_unauthorized_and_a_quota_is_quota_exceeded() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"status": 401, "method": "GET", "path": "/instances"}))
        .await;
    let err = provider_error(
        f.vultr
            .get_instance(InstanceRef {
                id: "5f0f12e5-1f84-404f-aa84-85f431ea5ec2".into(),
                region: "ewr".into(),
                zone: None,
                resources: vec![],
                labels: vec![],
            })
            .await,
    );
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");

    f.stand
        .inject(
            json!({"status": 400, "method": "POST", "path": "/instances",
            "message": "You have reached the maximum number of instances for your account."}),
        )
        .await;
    let err = provider_error(
        f.vultr
            .create_instance(spec("dep-quota", "dep-quota-c1"))
            .await,
    );
    assert!(matches!(err, ProviderError::QuotaExceeded(_)), "{err:?}");
    assert_nothing_left(&f.stand, "a refused create").await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bare_metal_plan_goes_through_the_bare_metal_api() {
    let f = Fixture::new().await;
    let mut s = spec("dep-metal", "dep-metal-c1");
    s.instance_type = "vbm-4c-32gb".into();
    let created = f.vultr.create_instance(s).await.expect("create");
    let state = f.stand.state().await;
    assert_eq!(len(&state["bare_metals"]), 1);
    assert_eq!(len(&state["instances"]), 0);
    assert_eq!(
        len(&state["firewalls"]),
        0,
        "firewall groups do not apply to bare metal"
    );
    assert_eq!(state["bare_metals"][0]["plan"], "vbm-4c-32gb");
    assert!(created.resources.iter().any(|r| r.kind == "bare-metal"));

    // Found without the marker too (instance API 404, then bare metal).
    let mut bare = as_ref(&created);
    bare.resources.clear();
    let got = f.vultr.get_instance(bare).await.expect("get");
    assert_eq!(got.instance_type, "vbm-4c-32gb");
    let listed = f
        .vultr
        .list_instances(InstanceQuery {
            regions: vec![],
            labels: vec![("bpr-deployment".into(), "dep-metal".into())],
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        f.vultr
            .delete_instance(as_ref(&listed[0]))
            .await
            .expect("delete"),
        DeleteStatus::Deleted
    );
    assert_nothing_left(&f.stand, "delete").await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answer_outside_the_schema_is_caught_by_prism() {
    // Proves the violation check of every other test is live.
    let f = Fixture::new().await;
    let mut s = spec("dep-schema", "dep-schema-c1");
    s.ssh_public_keys.clear();
    let created = f.vultr.create_instance(s).await.expect("create");
    f.stand
        .inject(json!({"break_response": true, "method": "GET", "path": "/instances/"}))
        .await;
    let err = provider_error(f.vultr.get_instance(as_ref(&created)).await);
    assert!(
        matches!(&err, ProviderError::Transient(m) if m.contains("not valid")),
        "{err:?}"
    );
    let v = f.stand.violations_since(f.log_from).await;
    assert!(!v.is_empty(), "Prism logged the violation");
    f.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_outside_the_schema_is_rejected_by_prism_before_the_fake() {
    // Proves Prism's request validation is live: an instance without `plan`
    // and with a numeric region never reaches the fake.
    let f = Fixture::new().await;
    let resp = f
        .stand
        .http
        .post(format!("{}/instances", f.stand.prism))
        .header("authorization", "Bearer test")
        .header("content-type", "application/json")
        .body(json!({"region": 5, "os_id": 2284}).to_string())
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(resp.status().as_u16(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("must have required property 'plan'")
    );
    assert!(
        f.stand.requests().await.is_empty(),
        "nothing was forwarded to the fake"
    );
    assert!(
        !f.stand.violations_since(f.log_from).await.is_empty(),
        "Prism logged the rejection"
    );
    f.host.shutdown().await;
}

// ---- offers ------------------------------------------------------------------

/// The fake's plan data (`tests/standins/vultr/plans.json`).
fn standin_plans() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/standins/vultr/plans.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn offer<'a>(offers: &'a [Offer], id: &str, region: &str) -> &'a Offer {
    offers
        .iter()
        .find(|o| o.instance_type == id && o.region == region)
        .unwrap_or_else(|| panic!("no offer {id} in {region}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_come_from_every_page_of_every_plan_list() {
    let f = Fixture::new().await;
    f.stand
        .control("/_fake/config", json!({"max_per_page": 4}))
        .await;
    let offers = f
        .vultr
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("offers");
    assert!(offers.iter().all(|o| !o.source.from_snapshot));

    // One offer per (plan, location), except plans that cannot be deployed
    // on demand; every recorded plan has a price.
    let plans = standin_plans();
    let expected: usize = ["plans", "plans_metal"]
        .iter()
        .flat_map(|k| plans[*k].as_array().unwrap())
        .filter(|p| p["deploy_ondemand"] != json!(false))
        .map(|p| len(&p["locations"]))
        .sum();
    assert_eq!(offers.len(), expected);
    // 21 plans, 5 GPU plans and 6 bare-metal plans in pages of 4.
    assert_eq!(f.stand.count("GET", "/plans?per_page").await, 6);
    assert_eq!(f.stand.count("GET", "/plans?type=vcg").await, 2);
    assert_eq!(f.stand.count("GET", "/plans-metal").await, 2);

    // Hand-checked from the recorded plans.
    let o = offer(&offers, "vc2-1c-1gb", "ewr");
    assert_eq!(o.hourly_usd, 5.0 / 730.0); // monthly 5, no hourly_cost
    assert_eq!(
        (o.vcpus, o.memory_gib, o.storage_gib),
        (1.0, 1.0, Some(25.0))
    );
    assert!(o.shared_cpu);
    let slice = offer(&offers, "vcg-a100-1c-6g-4vram", "ewr");
    assert_eq!(slice.hourly_usd, 0.123);
    assert_eq!(
        (slice.gpus, slice.gpu_model.as_deref(), slice.gpu_memory_gib),
        (0.05, Some("NVIDIA A100"), Some(80.0)),
        "4 GB of an 80 GB A100"
    );
    assert_eq!(
        offer(&offers, "vbm-4c-32gb", "ewr").hourly_usd,
        120.0 / 672.0
    );
    let mi300 = offer(&offers, "vbm-256c-2048gb-8-mi300x-gpu", "ord");
    assert_eq!(
        (mi300.hourly_usd, mi300.gpus, mi300.gpu_model.as_deref()),
        (17.52, 8.0, Some("AMD MI300X"))
    );

    let only = f
        .vultr
        .list_offers(OfferQuery {
            regions: vec!["sea".into()],
        })
        .await
        .expect("offers");
    assert!(!only.is_empty() && only.iter().all(|o| o.region == "sea"));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_fall_back_to_the_dated_snapshot_when_the_api_is_unreachable() {
    // Port 9 on loopback: nothing listens, the connection is refused.
    let f = Fixture::with_endpoint(Some("http://127.0.0.1:9")).await;
    let offers = f
        .vultr
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("snapshot offers");
    assert!(!offers.is_empty());
    assert!(
        offers
            .iter()
            .all(|o| o.source.from_snapshot && o.source.source.starts_with("snapshot:vultr-"))
    );
    // Dated by the recordings the plans were copied from, never by the day
    // the snapshot was assembled (2026-12-06).
    assert!(offers.iter().all(|o| o.source.observed_at < 1_796_515_200));
    assert_eq!(
        offer(&offers, "vc2-1c-1gb", "ewr").source.source,
        "snapshot:vultr-libcloud-2021-09-01"
    );
    assert_eq!(offer(&offers, "vcg-a100-1c-6g-4vram", "ewr").gpus, 0.05);
    f.finish().await;
}

// ---- VKE ---------------------------------------------------------------------

/// A one-pool cluster `bpr-<name>` in ewr.
fn one_pool_cluster(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: format!("bpr-{name}"),
        deployment_id: format!("dep-{name}"),
        idempotency_key: format!("dep-{name}-c1"),
        region: "ewr".into(),
        kubernetes_version: Some("1.30".into()),
        node_pools: vec![NodePoolSpec {
            name: "pool-1".into(),
            instance_type: "vc2-2c-4gb".into(),
            count: 2,
            min_count: None,
            max_count: None,
            spot: false,
            disk_gib: None,
        }],
        labels: vec![("bpr-deployment".into(), format!("dep-{name}"))],
    }
}

fn cluster_ref(c: &blueprint_remote_providers::wit::Cluster) -> ClusterRef {
    ClusterRef {
        id: c.id.clone(),
        name: c.name.clone(),
        region: c.region.clone(),
        resources: c.resources.clone(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vke_cluster_lifecycle_hands_over_fetched_credentials() {
    let f = Fixture::new().await;
    let spec = one_pool_cluster("k1");
    let created = f
        .vultr
        .create_cluster(spec.clone())
        .await
        .expect("create cluster");
    assert_eq!(created.state, ClusterState::Provisioning);
    assert_eq!(created.endpoint, None);
    let again = f.vultr.create_cluster(spec).await.expect("repeat create");
    assert_eq!(again.id, created.id, "a repeat returns the same cluster");
    let state = f.stand.state().await;
    assert_eq!(len(&state["clusters"]), 1);
    let c = &state["clusters"][0];
    assert_eq!(c["version"], "v1.30.6+1", "newest 1.30");
    let pool = &c["node_pools"][0];
    assert_eq!(
        (
            pool["plan"].as_str(),
            pool["node_quantity"].as_u64(),
            pool["tag"].as_str()
        ),
        (
            Some("vc2-2c-4gb"),
            Some(2),
            Some("bpr:bpr-deployment:dep-k1")
        )
    );
    assert_eq!(
        created.labels,
        vec![("bpr-deployment".to_string(), "dep-k1".to_string())]
    );

    let r = cluster_ref(&created);
    let got = f.vultr.get_cluster(r.clone()).await.expect("get cluster");
    assert_eq!(got.state, ClusterState::Running);
    assert_eq!(
        got.endpoint.as_deref(),
        Some(format!("https://{}.vultr-k8s.com:6443", created.id).as_str())
    );
    assert!(
        got.ca_certificate_pem
            .as_deref()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );
    match f
        .vultr
        .get_credentials(r.clone())
        .await
        .expect("credentials")
    {
        ClusterCredentials::ClientCertificate(c) => {
            assert!(c.certificate_pem.contains("BEGIN CERTIFICATE"));
            assert!(c.key_pem.contains("PRIVATE KEY"));
        }
        other => panic!("expected a client certificate, got {other:?}"),
    }
    assert_eq!(
        f.vultr.delete_cluster(r.clone()).await.expect("delete"),
        DeleteStatus::Deleted
    );
    assert_eq!(
        f.stand
            .count(
                "DELETE",
                &format!(
                    "/kubernetes/clusters/{}/delete-with-linked-resources",
                    created.id
                )
            )
            .await,
        1,
        "linked resources (load balancers, volumes) go with it"
    );
    assert!(matches!(
        provider_error(f.vultr.get_cluster(r).await),
        ProviderError::NotFound(_)
    ));
    assert_eq!(len(&f.stand.state().await["clusters"]), 0);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_label_taken_by_another_deployment_is_refused() {
    let f = Fixture::new().await;
    f.vultr
        .create_cluster(one_pool_cluster("taken"))
        .await
        .expect("create cluster");
    let mut other = one_pool_cluster("taken");
    other.deployment_id = "dep-someone-else".into();
    let err = provider_error(f.vultr.create_cluster(other).await);
    assert!(
        matches!(&err, ProviderError::InvalidRequest(m) if m.contains("bpr-taken")),
        "{err:?}"
    );
    let mut spot = one_pool_cluster("spot");
    spot.node_pools[0].spot = true;
    assert!(matches!(
        provider_error(f.vultr.create_cluster(spot).await),
        ProviderError::Unsupported(_)
    ));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vke_cluster_named_in_the_config_is_a_deployment_target_with_fetched_credentials() {
    let kmock = crate::kubernetes::kmock_url();
    let f = Fixture::new().await;
    // Active clusters' kubeconfigs name kmock as their API server.
    f.stand
        .control("/_fake/config", json!({ "k8s_endpoint": kmock }))
        .await;
    let created = f
        .vultr
        .create_cluster(one_pool_cluster("managed"))
        .await
        .expect("create cluster");
    let host = f
        .env
        .start(&format!(
            "{}[operator.kubernetes]\nmanaged = [{{ name = \"vke\", provider = \"vultr\", region = \"ewr\", id = {:?} }}]\n",
            f.provider_section, created.id
        ))
        .await;
    let cluster = host.cluster("vke").await.expect("managed cluster resolves");
    assert_eq!(cluster.name(), "vke");
    let service = crate::kubernetes::unique_service();
    let ctl = crate::kubernetes::controller(cluster.client().clone(), format!("bpr-7-{service}"));
    let rec = host
        .deploy_with(
            crate::kubernetes::request(
                service,
                "vke",
                blueprint_remote_providers::kubernetes::Tier::Basic,
            ),
            vec![],
            &crate::kubernetes::fast(),
        )
        .await
        .expect("deploys to the VKE cluster");
    assert_eq!(rec.cluster.as_deref(), Some("vke"));
    let done = host.terminate(&rec.id).await.expect("terminate");
    ctl.abort();
    assert_eq!(
        done.status,
        blueprint_remote_providers::tracking::DeploymentStatus::Terminated
    );
    // The host asked the provider for the cluster and its credentials.
    assert!(
        f.stand
            .count(
                "GET",
                &format!("/kubernetes/clusters/{}/config", created.id)
            )
            .await
            >= 1
    );
    host.shutdown().await;
    f.vultr
        .delete_cluster(cluster_ref(&created))
        .await
        .expect("delete cluster");
    f.finish().await;
}

// ---- bpr: tracked deploy, plan -------------------------------------------------

fn bpr(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bpr"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "error")
        .env_remove("VULTR_API_KEY")
        .output()
        .expect("bpr runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_deploy_fails_over_from_a_plan_out_of_capacity_and_terminate_leaves_nothing() {
    let f = Fixture::new().await;
    let config = f.env.dir.path().join("bpr.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n{}",
            f.env.host_section("warn", false),
            f.provider_section
        ),
    )
    .unwrap();
    // One 429 on the second candidate's create: the orchestrator waits and
    // retries the same create.
    f.stand
        .inject(json!({"status": 429, "method": "POST", "path": "/instances", "skip": 1}))
        .await;
    let id = format!("dep-vultr-{}", std::process::id());
    let out = bpr(
        &config,
        &[
            "deploy",
            "--blueprint",
            "7",
            "--service",
            "16",
            "--id",
            &id,
            "--candidate",
            "vultr/ewr/vdc-8vcpu-32gb",
            "--candidate",
            "vultr/ewr/vc2-1c-1gb",
            "--ssh-public-key",
            SSH_KEY,
            "--container",
            "ghcr.io/acme/agent:1.2",
            "--port",
            "8080",
            "--timeout-secs",
            "60",
        ],
    );
    assert!(out.status.success(), "bpr deploy failed:\n{}", text(&out));

    let history = bpr(&config, &["history", &id, "--json"]);
    assert!(history.status.success(), "{}", text(&history));
    let h: Value = serde_json::from_slice(&history.stdout).expect("history --json");
    let attempts = h["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0]["instance_type"], "vdc-8vcpu-32gb");
    assert_eq!(attempts[0]["outcome"], "failover");
    assert!(
        attempts[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not offered in ewr")),
        "{attempts:?}"
    );
    assert_eq!(attempts[1]["instance_type"], "vc2-1c-1gb");
    assert_eq!(attempts[1]["outcome"], "used");
    // One POST for the first candidate, two (429, then created) for the second.
    assert_eq!(f.stand.count("POST", "/instances").await, 3);
    let state = f.stand.state().await;
    assert_eq!(len(&state["instances"]), 1, "{state}");
    let i = &state["instances"][0];
    assert_eq!(i["plan"], "vc2-1c-1gb");
    let rules = state["firewalls"][0]["rules"].as_array().unwrap();
    assert!(
        !rules.is_empty() && rules.iter().all(|r| r["port"] == "8080"),
        "only the published port is open: {rules:?}"
    );
    assert!(
        i["user_data"]
            .as_str()
            .is_some_and(|u| u.contains("docker run") && u.contains("'ghcr.io/acme/agent:1.2'")),
        "the host's user data arrived (base64 on the wire, decoded by the fake): {i}"
    );

    let out = bpr(&config, &["terminate", &id]);
    assert!(
        out.status.success(),
        "bpr terminate failed:\n{}",
        text(&out)
    );
    assert_nothing_left(&f.stand, "bpr terminate").await;
    f.finish_with_undocumented_status(1).await;
}

/// The recorded plan pages (`host/tests/fixtures/vultr/`, see its README).
fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vultr")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A server for the recorded plan lists, paged like Vultr: `/plans` in the two
/// recorded pages, `/plans?type=vcg` the GPU recording, `/plans-metal` the
/// 2021 bare-metal recording then (by cursor) the GPU bare-metal one.
async fn plans_server() -> TestServer {
    let page1 = fixture("plans.page1.repaginated.json");
    let page2 = fixture("plans.page2.repaginated.json");
    let gpu = fixture("plans_gpu.gpuhunt_fixture.json");
    let mut metal1 = fixture("plans_metal.real_libcloud_2021.json");
    metal1["meta"]["total"] = json!(6);
    metal1["meta"]["links"]["next"] = json!("bmV4dF9fdmJtLTI1NmMtMjA0OGdiLTgtbWkzMDB4LWdwdQ==");
    let metal2 = fixture("plans_metal_gpu.gpuhunt_fixture.json");
    TestServer::start(move |req: hyper::Request<hyper::body::Incoming>| {
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let (path, query) = pq.split_once('?').unwrap_or((&pq, ""));
        let paged = query.contains("cursor=");
        let body = match path {
            "/v2/plans" if query.contains("type=vcg") => &gpu,
            "/v2/plans" if paged => &page2,
            "/v2/plans" => &page1,
            "/v2/plans-metal" if paged => &metal2,
            "/v2/plans-metal" => &metal1,
            _ => {
                let mut r = hyper::Response::new(Full::new(Bytes::from_static(
                    br#"{"error":"Not found","status":404}"#,
                )));
                *r.status_mut() = hyper::StatusCode::NOT_FOUND;
                return r;
            }
        };
        hyper::Response::new(Full::new(Bytes::from(body.to_string())))
    })
    .await
}

/// `bpr` with only the Vultr provider; `plans_endpoint` set when given.
fn plan_config(env: &TestEnv, plans: Option<&TestServer>) -> PathBuf {
    env.add("vultr");
    let section = match plans {
        Some(s) => {
            let base = s.url("");
            format!(
                "[providers.vultr]\nallow = [{base:?}]\n[providers.vultr.settings]\nplans_endpoint = \"{base}/v2\"\n\
                 [providers.vultr.credential]\nkind = \"none\"\n"
            )
        }
        // Offline: the real API host, and no key in the environment.
        None => "[providers.vultr]\nallow = [\"https://api.vultr.com\"]\n[providers.vultr.credential]\nkind = \"bearer\"\ntoken_env = \"VULTR_API_KEY\"\n".to_string(),
    };
    let path = env.dir.path().join("plan.toml");
    std::fs::write(
        &path,
        format!("{}\n{section}", env.host_section("warn", false)),
    )
    .unwrap();
    path
}

fn plan_json(config: &Path, args: &[&str]) -> Value {
    let mut all = vec!["plan", "--json", "--explain", "--provider", "vultr"];
    all.extend_from_slice(args);
    let out = bpr(config, &all);
    assert!(out.status.success(), "bpr plan failed:\n{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}:\n{}", text(&out)))
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_plan_ranks_vultr_offers_online_from_the_plans_endpoint_with_exact_prices() {
    let server = plans_server().await;
    let env = TestEnv::new();
    let config = plan_config(&env, Some(&server));

    let v = plan_json(&config, &["--cpu", "1", "--memory", "1", "--region", "ewr"]);
    assert_eq!(v["offline"], false, "{v}");
    let first = &v["candidates"][0];
    assert_eq!(first["offer"]["provider"], "vultr");
    assert_eq!(first["offer"]["instance_type"], "vc2-1c-1gb");
    // Hand-computed: monthly_cost 5 over 730 hours (no hourly_cost recorded).
    assert_eq!(first["hourly_usd"].as_f64(), Some(5.0 / 730.0));
    assert_eq!(v["candidates"][1]["offer"]["instance_type"], "vhf-1c-1gb");
    assert_eq!(v["candidates"][1]["hourly_usd"].as_f64(), Some(6.0 / 730.0));

    // A slice of an A100: the 4 GB plan is 0.05 of an 80 GB card, which
    // placement sees as fractional and excludes unless the operator allows it;
    // then the cheapest whole card is the 80 GB plan at its recorded price.
    let v = plan_json(&config, &["--gpus", "0.05", "--gpu-model", "A100"]);
    assert_eq!(
        v["candidates"][0]["offer"]["instance_type"],
        "vcg-a100-12c-120g-80vram"
    );
    assert_eq!(v["candidates"][0]["hourly_usd"].as_f64(), Some(2.397));
    let excluded = v["excluded"].to_string();
    assert!(excluded.contains("fractional-gpu"), "{excluded}");
    let allowing = env.dir.path().join("fractions.toml");
    std::fs::write(
        &allowing,
        format!(
            "{}\n[operator.deployment]\nallow_fractional_gpus = true\n",
            std::fs::read_to_string(&config).unwrap()
        ),
    )
    .unwrap();
    let v = plan_json(&allowing, &["--gpus", "0.05", "--gpu-model", "A100"]);
    let slice = &v["candidates"][0];
    assert_eq!(slice["offer"]["instance_type"], "vcg-a100-1c-6g-4vram");
    assert_eq!(slice["hourly_usd"].as_f64(), Some(0.123));
    assert_eq!(slice["offer"]["gpus"].as_f64(), Some(f64::from(0.05f32)));
    assert_eq!(slice["offer"]["gpu_model"], "NVIDIA A100 80GB");
    assert_eq!(slice["offer"]["fractional_gpu"], true);

    // Bare metal from the second /plans-metal page: 8 x H100 at 23.92 $/h.
    let v = plan_json(&config, &["--gpus", "8", "--gpu-model", "H100"]);
    assert_eq!(
        v["candidates"][0]["offer"]["instance_type"],
        "vbm-112c-2048gb-8-h100-gpu"
    );
    assert_eq!(v["candidates"][0]["hourly_usd"].as_f64(), Some(23.92));
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_plan_ranks_vultr_offers_offline_from_the_embedded_snapshot() {
    let env = TestEnv::new();
    let config = plan_config(&env, None);
    let v = plan_json(&config, &["--cpu", "2", "--memory", "4", "--region", "ewr"]);
    assert_eq!(v["offline"], true, "{v}");
    let first = &v["candidates"][0];
    assert_eq!(first["offer"]["provider"], "vultr");
    // vc2-2c-4gb: monthly 20 over 730 hours.
    assert_eq!(first["offer"]["instance_type"], "vc2-2c-4gb");
    assert_eq!(first["hourly_usd"].as_f64(), Some(20.0 / 730.0));
    let out = bpr(&config, &["providers", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("vultr") && l.ends_with("loaded")),
        "{}",
        text(&out)
    );
}
