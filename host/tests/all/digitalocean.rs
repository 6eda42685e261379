//! Issue 4: the DigitalOcean component under wasmtime against the project's
//! stateful fake of the DigitalOcean API, behind Prism in proxy mode with the
//! official OpenAPI spec. Every test also checks that Prism reported no schema
//! violation for the requests it made.
//!
//! Needs `scripts/standins/digitalocean.sh start` and its exports:
//! `BPR_TEST_DO_URL` (Prism), optionally `BPR_TEST_DO_FAKE_URL` (the fake's
//! `/_fake/*` controls; default: Prism's port + 1) and `BPR_TEST_DO_PRISM_LOG`
//! (default: `.standins/digitalocean/prism.log` in the workspace).

use std::path::PathBuf;

use blueprint_remote_providers::wit::{
    ClusterCredentials, ClusterRef, ClusterSpec, ClusterState, DeleteStatus, InstanceQuery,
    InstanceRef, InstanceSpec, InstanceState, NodePoolSpec, OfferQuery, PortRule, Protocol,
    ProviderError,
};
use blueprint_remote_providers::{CallError, Host, ProviderHandle};
use serde_json::{Value, json};

use crate::support::TestEnv;

/// The fake keeps one global state, so DigitalOcean tests run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0d6pZ8fWzMZb2y1q8e0x6Hn2W0e3Y9v2bX7t1m4kR test@bpr";
/// DigitalOcean's fingerprint (MD5 of the key blob) of `SSH_KEY`.
const SSH_KEY_FP: &str = "dc:2e:c8:c1:4a:4d:5a:3f:88:b6:30:08:af:ed:a0:36";

/// Where the stand-in runs.
pub(crate) struct Stand {
    prism: String,
    fake: String,
    prism_log: PathBuf,
    http: reqwest::Client,
}

impl Stand {
    fn from_env() -> Self {
        let prism = std::env::var("BPR_TEST_DO_URL").unwrap_or_else(|_| {
            panic!(
                "BPR_TEST_DO_URL is not set: run `scripts/standins/digitalocean.sh start` and export \
                 the variables it prints (Prism in front of the fake DigitalOcean API)"
            )
        });
        let prism = prism.trim_end_matches('/').to_string();
        let fake = std::env::var("BPR_TEST_DO_FAKE_URL").unwrap_or_else(|_| {
            let (base, port) = prism.rsplit_once(':').expect("BPR_TEST_DO_URL has a port");
            let port: u16 = port.parse().expect("BPR_TEST_DO_URL ends in a port number");
            format!("{base}:{}", port + 1)
        });
        let prism_log = std::env::var("BPR_TEST_DO_PRISM_LOG")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../.standins/digitalocean/prism.log")
            });
        assert!(
            prism_log.exists(),
            "Prism's log {} is missing; set BPR_TEST_DO_PRISM_LOG to the log of the running Prism",
            prism_log.display()
        );
        Stand {
            prism,
            fake,
            prism_log,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.fake))
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the fake DigitalOcean API at {} does not answer: {e}",
                    self.fake
                )
            });
        assert!(
            resp.status().is_success(),
            "fake control {path} failed: {}",
            resp.status()
        );
        serde_json::from_str(&resp.text().await.unwrap()).unwrap()
    }

    pub(crate) async fn fetch(&self, path: &str) -> Value {
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

    /// The fake's state (droplets, keys, firewalls, clusters).
    pub(crate) async fn state(&self) -> Value {
        self.fetch("/_fake/state").await
    }

    /// `(method, path)` of every API request the fake served.
    pub(crate) async fn requests(&self) -> Vec<(String, String)> {
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

    /// Queue one injected fault (see `fake_do.py`).
    async fn inject(&self, fault: Value) {
        self.control("/_fake/next-error", fault).await;
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

/// A host with only the DigitalOcean component, pointed at Prism.
pub(crate) struct Fixture {
    pub(crate) stand: Stand,
    pub(crate) _env: TestEnv,
    /// The `[providers.digitalocean]` sections the host runs with.
    pub(crate) provider_section: String,
    pub(crate) host: Host,
    pub(crate) do_: ProviderHandle,
    log_from: usize,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        Self::with_endpoint(None).await
    }

    async fn with_endpoint(endpoint: Option<&str>) -> Self {
        let serial = SERIAL.lock().await;
        let stand = Stand::from_env();
        stand.control("/_fake/reset", json!({})).await;
        let env = TestEnv::new();
        env.add("digitalocean");
        let token = env.dir.path().join("do-token");
        std::fs::write(&token, "dop_v1_test_token").unwrap();
        let endpoint = endpoint.unwrap_or(&stand.prism);
        let provider_section = format!(
            "[providers.digitalocean]\nallow = [{:?}]\ncall_timeout_ms = 60000\n\
             [providers.digitalocean.settings]\nendpoint = {endpoint:?}\n\
             [providers.digitalocean.credential]\nkind = \"bearer\"\ntoken_file = {token:?}\n",
            endpoint
        );
        let host = env.start(&provider_section).await;
        let do_ = host
            .provider("digitalocean")
            .expect("digitalocean.wasm loads");
        let log_from = stand.log_len();
        Fixture {
            stand,
            _env: env,
            provider_section,
            host,
            do_,
            log_from,
            _serial: serial,
        }
    }

    /// Every test ends here: Prism saw no request or answer outside the spec.
    pub(crate) async fn finish(self) {
        let v = self.stand.violations_since(self.log_from).await;
        assert!(
            v.is_empty(),
            "Prism reported schema violations:\n{}",
            v.join("\n")
        );
        self.host.shutdown().await;
    }
}

fn spec(deployment: &str, key: &str) -> InstanceSpec {
    InstanceSpec {
        deployment_id: deployment.into(),
        idempotency_key: key.into(),
        region: "nyc3".into(),
        zone: None,
        instance_type: "s-1vcpu-1gb".into(),
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

fn as_ref(i: &blueprint_remote_providers::wit::Instance) -> InstanceRef {
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

#[tokio::test(flavor = "multi_thread")]
async fn droplet_lifecycle_creates_exactly_what_was_asked_and_deletes_everything() {
    let f = Fixture::new().await;
    let created = f
        .do_
        .create_instance(spec("dep-life", "idem-life"))
        .await
        .expect("create");
    assert_eq!(
        (created.instance_type.as_str(), created.region.as_str()),
        ("s-1vcpu-1gb", "nyc3")
    );
    assert_eq!(created.state, InstanceState::Pending);
    assert!(
        created
            .labels
            .contains(&("team".to_string(), "a_b/c".to_string())),
        "{:?}",
        created.labels
    );

    // What the fake received is exactly the request: size, region, image,
    // user data, the registered key, tags; and a firewall with only our ports.
    let state = f.stand.state().await;
    let d = &state["droplets"][0];
    assert_eq!(state["droplets"].as_array().unwrap().len(), 1);
    assert_eq!(d["size_slug"], "s-1vcpu-1gb");
    assert_eq!(d["region"]["slug"], "nyc3");
    assert_eq!(d["image"]["slug"], "ubuntu-24-04-x64");
    let keys = state["ssh_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["fingerprint"], SSH_KEY_FP);
    let fw = &state["firewalls"][0];
    assert_eq!(state["firewalls"].as_array().unwrap().len(), 1);
    let inbound = fw["inbound_rules"].as_array().unwrap();
    assert_eq!(
        inbound.len(),
        2,
        "only the two requested openings: {inbound:?}"
    );
    assert_eq!(inbound[0]["ports"], "22");
    assert_eq!(
        inbound[0]["sources"]["addresses"],
        json!(["198.51.100.0/24"])
    );
    assert_eq!(
        (
            inbound[1]["protocol"].as_str(),
            inbound[1]["ports"].as_str()
        ),
        (Some("udp"), Some("9000-9001"))
    );
    let fw_tags = fw["tags"].as_array().unwrap();
    let droplet_tags = d["tags"].as_array().unwrap();
    assert!(
        fw_tags.iter().all(|t| droplet_tags.contains(t)),
        "firewall bound to the droplet's tag"
    );
    let posted = f.stand.requests().await;
    assert!(
        posted
            .iter()
            .any(|(m, p)| m == "POST" && p == "/v2/account/keys"),
        "key registered: {posted:?}"
    );

    // get: new -> active with addresses.
    let mut got = f.do_.get_instance(as_ref(&created)).await.expect("get");
    for _ in 0..5 {
        if got.state == InstanceState::Running {
            break;
        }
        got = f.do_.get_instance(as_ref(&created)).await.expect("get");
    }
    assert_eq!(got.state, InstanceState::Running);
    assert!(
        got.public_ipv4.is_some() && got.private_ipv4.is_some(),
        "{got:?}"
    );

    // list by label finds it (crash recovery).
    let listed = f
        .do_
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

    // delete removes droplet, firewall and the key we registered; repeat is fine.
    assert_eq!(
        f.do_
            .delete_instance(as_ref(&created))
            .await
            .expect("delete"),
        DeleteStatus::Deleted
    );
    let state = f.stand.state().await;
    for kind in ["droplets", "firewalls", "ssh_keys"] {
        assert_eq!(
            state[kind].as_array().unwrap().len(),
            0,
            "{kind} left after delete: {state}"
        );
    }
    assert_eq!(
        f.do_
            .delete_instance(as_ref(&created))
            .await
            .expect("second delete"),
        DeleteStatus::Deleted
    );
    assert!(matches!(
        provider_error(f.do_.get_instance(as_ref(&created)).await),
        ProviderError::NotFound(_)
    ));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_after_crash_recovery_finds_the_firewall_and_key_itself() {
    let f = Fixture::new().await;
    f.do_
        .create_instance(spec("dep-crash", "idem-crash"))
        .await
        .expect("create");
    // The host lost its records: it only has what list-instances returns.
    let found = f
        .do_
        .list_instances(InstanceQuery {
            regions: vec!["nyc3".into()],
            labels: vec![("bpr-deployment".into(), "dep-crash".into())],
        })
        .await
        .expect("list");
    assert_eq!(found.len(), 1);
    assert!(found[0].resources.is_empty());
    assert_eq!(
        f.do_
            .delete_instance(as_ref(&found[0]))
            .await
            .expect("delete"),
        DeleteStatus::Deleted
    );
    let state = f.stand.state().await;
    for kind in ["droplets", "firewalls", "ssh_keys"] {
        assert_eq!(
            state[kind].as_array().unwrap().len(),
            0,
            "{kind} left after delete: {state}"
        );
    }
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_come_from_every_page_of_sizes() {
    let f = Fixture::new().await;
    f.stand
        .control("/_fake/config", json!({"max_per_page": 2}))
        .await;
    let offers = f
        .do_
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("offers");

    // Expected: one offer per (available size, region) of the fake's data.
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/standins/digitalocean/sizes.json");
    let sizes: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let sizes = sizes["sizes"].as_array().unwrap();
    let expected: usize = sizes
        .iter()
        .map(|s| s["regions"].as_array().unwrap().len())
        .sum();
    assert_eq!(offers.len(), expected);
    assert!(offers.iter().all(|o| !o.source.from_snapshot));
    let pages = f
        .stand
        .requests()
        .await
        .iter()
        .filter(|(m, p)| m == "GET" && p.starts_with("/v2/sizes"))
        .count();
    assert_eq!(pages, sizes.len().div_ceil(2), "one request per page of 2");

    let h100 = offers
        .iter()
        .find(|o| o.instance_type == "gpu-h100x8-640gb" && o.region == "nyc1")
        .unwrap();
    assert_eq!(
        (h100.vcpus, h100.memory_gib, h100.gpus),
        (160.0, 1920.0, 8.0)
    );
    assert_eq!(h100.gpu_model.as_deref(), Some("nvidia_h100"));
    assert_eq!(h100.hourly_usd, 23.92);

    let only = f
        .do_
        .list_offers(OfferQuery {
            regions: vec!["tor1".into()],
        })
        .await
        .expect("offers");
    assert!(!only.is_empty() && only.iter().all(|o| o.region == "tor1"));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_fall_back_to_the_dated_snapshot_when_the_api_is_unreachable() {
    // Port 9 on loopback: nothing listens, the connection is refused.
    let f = Fixture::with_endpoint(Some("http://127.0.0.1:9")).await;
    let offers = f
        .do_
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("snapshot offers");
    assert!(!offers.is_empty());
    assert!(
        offers.iter().all(
            |o| o.source.from_snapshot && o.source.source.starts_with("snapshot:digitalocean-")
        )
    );
    assert!(offers.iter().all(|o| o.hourly_usd > 0.0));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn droplets_are_listed_across_pages() {
    let f = Fixture::new().await;
    for i in 0..5 {
        let mut s = spec(&format!("dep-page-{i}"), &format!("idem-page-{i}"));
        s.ssh_public_keys.clear();
        f.do_.create_instance(s).await.expect("create");
    }
    f.stand
        .control("/_fake/config", json!({"max_per_page": 2}))
        .await;
    let listed = f
        .do_
        .list_instances(InstanceQuery {
            regions: vec![],
            labels: vec![("bpr-managed".into(), "true".into())],
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 5);
    let pages = f
        .stand
        .requests()
        .await
        .iter()
        .filter(|(m, p)| m == "GET" && p.starts_with("/v2/droplets?") && p.contains("bpr-managed"))
        .count();
    assert_eq!(pages, 3, "5 droplets in pages of 2");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_retried_after_a_lost_response_gives_one_droplet() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"lost_response": true, "method": "POST", "path": "/v2/droplets"}))
        .await;
    let first = provider_error(f.do_.create_instance(spec("dep-lost", "idem-lost")).await);
    assert!(
        matches!(first, ProviderError::Transient(_)),
        "a lost answer is transient: {first:?}"
    );
    assert_eq!(
        f.stand.state().await["droplets"].as_array().unwrap().len(),
        1,
        "the fake did create it"
    );

    let retried = f
        .do_
        .create_instance(spec("dep-lost", "idem-lost"))
        .await
        .expect("retry");
    let state = f.stand.state().await;
    let droplets = state["droplets"].as_array().unwrap();
    assert_eq!(droplets.len(), 1, "still one droplet: {droplets:?}");
    assert_eq!(retried.id, droplets[0]["id"].to_string());
    assert_eq!(state["firewalls"].as_array().unwrap().len(), 1);
    assert!(
        retried.resources.iter().any(|r| r.kind == "ssh-key"),
        "the key from the first attempt is still ours"
    );
    let posts = f
        .stand
        .requests()
        .await
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/v2/droplets")
        .count();
    assert_eq!(
        posts, 1,
        "the retry found the droplet instead of creating another"
    );
    let key_posts = f
        .stand
        .requests()
        .await
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/v2/account/keys")
        .count();
    assert_eq!(
        key_posts, 1,
        "the retry found the key registered by the first attempt"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_answer_carries_the_reset_time() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"status": 429, "reset_in_s": 30, "method": "GET", "path": "/v2/droplets"}))
        .await;
    let err = provider_error(
        f.do_
            .list_instances(InstanceQuery {
                regions: vec![],
                labels: vec![("bpr-managed".into(), "true".into())],
            })
            .await,
    );
    let ProviderError::RateLimited(rl) = err else {
        panic!("expected rate-limited, got {err:?}")
    };
    let ms = rl.retry_after_ms.expect("reset time from ratelimit-reset");
    assert!((25_000..=31_000).contains(&ms), "about 30 s, got {ms} ms");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_image_is_invalid_request() {
    let f = Fixture::new().await;
    let mut s = spec("dep-422", "idem-422");
    s.image = Some("no-such-image".into());
    let err = provider_error(f.do_.create_instance(s).await);
    assert!(
        matches!(&err, ProviderError::InvalidRequest(m) if m.contains("invalid image")),
        "{err:?}"
    );
    // The key registered for the failed create is removed again.
    assert_eq!(
        f.stand.state().await["ssh_keys"].as_array().unwrap().len(),
        0
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn size_not_available_in_the_region_is_capacity_unavailable() {
    let f = Fixture::new().await;
    let mut s = spec("dep-cap", "idem-cap");
    s.region = "syd1".into(); // s-1vcpu-1gb is not offered in syd1 in the fake's data
    let err = provider_error(f.do_.create_instance(s).await);
    assert!(
        matches!(err, ProviderError::CapacityUnavailable(_)),
        "{err:?}"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rejected_token_is_unauthorized() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"status": 401, "message": "Unable to authenticate you"}))
        .await;
    let err = provider_error(
        f.do_
            .get_instance(InstanceRef {
                id: "42".into(),
                region: "nyc3".into(),
                zone: None,
                resources: vec![],
                labels: vec![],
            })
            .await,
    );
    assert!(matches!(err, ProviderError::Unauthorized(_)), "{err:?}");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answer_outside_the_schema_is_caught_by_prism() {
    // Proves the violation check of every other test is live.
    let f = Fixture::new().await;
    let mut s = spec("dep-bad", "idem-bad");
    s.ssh_public_keys.clear();
    let created = f.do_.create_instance(s).await.expect("create");
    f.stand
        .inject(json!({"break_response": true, "method": "GET", "path": "/v2/droplets/"}))
        .await;
    let err = provider_error(f.do_.get_instance(as_ref(&created)).await);
    assert!(
        matches!(&err, ProviderError::Transient(m) if m.contains("not valid")),
        "{err:?}"
    );
    let v = f.stand.violations_since(f.log_from).await;
    assert!(!v.is_empty(), "Prism logged the violation");
    f.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn doks_cluster_lifecycle_hands_over_fetched_credentials() {
    let f = Fixture::new().await;
    let spec = ClusterSpec {
        name: "bpr-k1".into(),
        deployment_id: "dep-k8s".into(),
        idempotency_key: "idem-k8s".into(),
        region: "nyc1".into(),
        kubernetes_version: None,
        node_pools: vec![NodePoolSpec {
            name: "pool-1".into(),
            instance_type: "s-1vcpu-1gb".into(),
            count: 2,
            min_count: None,
            max_count: None,
            spot: false,
            disk_gib: None,
        }],
        labels: vec![("bpr-deployment".into(), "dep-k8s".into())],
    };
    let created = f
        .do_
        .create_cluster(spec.clone())
        .await
        .expect("create cluster");
    assert_eq!(created.state, ClusterState::Provisioning);
    let again = f.do_.create_cluster(spec).await.expect("repeat create");
    assert_eq!(again.id, created.id, "a repeat returns the same cluster");
    assert_eq!(
        f.stand.state().await["clusters"].as_array().unwrap().len(),
        1
    );
    let pool = &f.stand.state().await["clusters"][0]["node_pools"][0];
    assert_eq!(
        (pool["size"].as_str(), pool["count"].as_u64()),
        (Some("s-1vcpu-1gb"), Some(2))
    );

    let r = ClusterRef {
        id: created.id.clone(),
        name: created.name.clone(),
        region: "nyc1".into(),
        resources: vec![],
    };
    let got = f.do_.get_cluster(r.clone()).await.expect("get cluster");
    assert_eq!(got.state, ClusterState::Running);
    assert!(
        got.endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("https://"))
    );
    assert!(
        got.ca_certificate_pem
            .as_deref()
            .is_some_and(|c| c.contains("BEGIN CERTIFICATE"))
    );

    match f.do_.get_credentials(r.clone()).await.expect("credentials") {
        ClusterCredentials::BearerToken(t) => {
            assert!(t.token.starts_with("dop_v1_fake_cluster_token_"));
            assert!(t.expires_at.is_some());
        }
        other => panic!("expected a bearer token, got {other:?}"),
    }
    assert_eq!(
        f.do_.delete_cluster(r.clone()).await.expect("delete"),
        DeleteStatus::Deleted
    );
    assert!(matches!(
        provider_error(f.do_.get_cluster(r).await),
        ProviderError::NotFound(_)
    ));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_outside_the_schema_is_rejected_by_prism_before_the_fake() {
    // Proves Prism's request validation is live: a droplet without `size` and
    // with a numeric name never reaches the fake.
    let f = Fixture::new().await;
    let resp = f
        .stand
        .http
        .post(format!("{}/v2/droplets", f.stand.prism))
        .header("authorization", "Bearer test")
        .header("content-type", "application/json")
        .body(json!({"name": 123, "region": "nyc3", "image": "ubuntu-24-04-x64"}).to_string())
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(resp.status().as_u16(), 422);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("must have required property 'size'")
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

/// Issue 6 on DigitalOcean: a tracked deployment through the real component
/// and the fake behind Prism reaches active, and terminating it leaves no
/// droplet, firewall or key behind.
#[tokio::test(flavor = "multi_thread")]
async fn a_tracked_deployment_reaches_active_and_terminate_leaves_nothing() {
    use blueprint_remote_providers::provisioning::{
        DeployOptions, DeployRequest, RetryPolicy, Target,
    };
    use blueprint_remote_providers::tracking::DeploymentStatus;
    use std::time::Duration;

    let f = Fixture::new().await;
    let mut req = DeployRequest::new("bp-do", "svc-do");
    req.deployment_id = Some(format!("dep-do-{}", std::process::id()));
    req.ssh_public_keys = vec![SSH_KEY.into()];
    let opts = DeployOptions {
        retry: RetryPolicy {
            max_tries: 8,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(3),
        },
        running_timeout: Duration::from_secs(60),
        health_timeout: Duration::from_secs(60),
        delete_timeout: Duration::from_secs(60),
        poll_initial: Duration::from_millis(100),
        poll_max: Duration::from_millis(500),
        progress: None,
    };
    let target = Target {
        provider: "digitalocean".into(),
        region: "nyc3".into(),
        zone: None,
        instance_type: "s-1vcpu-1gb".into(),
        spot: false,
        hourly_usd: Some(0.00893),
    };
    let rec = f
        .host
        .deploy_with(req, vec![target], &opts)
        .await
        .expect("deploy");
    assert_eq!(rec.status, DeploymentStatus::Active);
    let state = f.stand.state().await;
    let droplets = state["droplets"].as_array().unwrap();
    assert_eq!(droplets.len(), 1, "exactly one droplet: {state}");
    assert_eq!(
        droplets[0]["size_slug"]
            .as_str()
            .or(droplets[0]["size"].as_str()),
        Some("s-1vcpu-1gb"),
        "{state}"
    );

    let done = f.host.terminate(&rec.id).await.expect("terminate");
    assert_eq!(done.status, DeploymentStatus::Terminated);
    let state = f.stand.state().await;
    for kind in ["droplets", "firewalls", "ssh_keys"] {
        assert_eq!(
            state[kind].as_array().unwrap().len(),
            0,
            "{kind} left after terminate: {state}"
        );
    }
    f.finish().await;
}

/// Issue 13: the optional `power` export powers a droplet off and on through
/// the droplet actions DigitalOcean documents (validated by Prism); asking
/// again in the state it is in is not an error; a deleted droplet is
/// `not-found`.
#[tokio::test(flavor = "multi_thread")]
async fn the_power_export_powers_a_droplet_off_and_on() {
    let f = Fixture::new().await;
    assert!(f.do_.supports_power(), "digitalocean.wasm exports power");
    let created = f
        .do_
        .create_instance(spec("dep-power", "idem-power"))
        .await
        .expect("create");
    // Still being created: refused by DigitalOcean, a transient error for the host.
    let early = provider_error(f.do_.stop_instance(as_ref(&created)).await);
    assert!(matches!(early, ProviderError::Transient(_)), "{early:?}");
    f.stand
        .control("/_fake/config", json!({"active_after_gets": 1}))
        .await;
    let running = f.do_.get_instance(as_ref(&created)).await.unwrap();
    assert_eq!(running.state, InstanceState::Running);

    let stopped = f.do_.stop_instance(as_ref(&created)).await.expect("stop");
    assert_eq!(stopped.state, InstanceState::Stopped);
    assert_eq!(f.stand.state().await["droplets"][0]["status"], "off");
    let again = f.do_.stop_instance(as_ref(&created)).await.expect("again");
    assert_eq!(
        again.state,
        InstanceState::Stopped,
        "stopping a stopped droplet is fine"
    );
    let started = f.do_.start_instance(as_ref(&created)).await.expect("start");
    assert_eq!(started.state, InstanceState::Running);
    assert_eq!(f.stand.state().await["droplets"][0]["status"], "active");
    let actions: Vec<String> = f
        .stand
        .requests()
        .await
        .into_iter()
        .filter(|(m, p)| m == "POST" && p.ends_with("/actions"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(
        actions.len(),
        3,
        "the refused early power_off, one power_off, one power_on: {actions:?}"
    );

    assert_eq!(
        f.do_.delete_instance(as_ref(&created)).await.unwrap(),
        DeleteStatus::Deleted
    );
    let gone = provider_error(f.do_.stop_instance(as_ref(&created)).await);
    assert!(matches!(gone, ProviderError::NotFound(_)), "{gone:?}");
    f.finish().await;
}

/// Issue 13 on DigitalOcean: a deployment whose payment expired is powered
/// off and is `suspended`; a renewal powers it on and it is `active` again.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_droplet_is_powered_off_and_a_renewal_powers_it_on() {
    use blueprint_remote_providers::provisioning::{DeployRequest, SupervisorOptions};
    use blueprint_remote_providers::tracking::DeploymentStatus;
    use std::time::Duration;

    let f = Fixture::new().await;
    f.stand
        .control("/_fake/config", json!({"active_after_gets": 1}))
        .await;
    let host = f
        ._env
        .start(&format!(
            "{}\n[operator.payment]\ngrace_secs = 3600\n",
            f.provider_section
        ))
        .await;
    let mut req = DeployRequest::new("bp-do", "svc-do");
    req.deployment_id = Some(format!("dep-do-pay-{}", std::process::id()));
    req.ttl_secs = Some(1);
    let opts = crate::lifecycle::fast();
    let target = blueprint_remote_providers::provisioning::InstanceTarget {
        provider: "digitalocean".into(),
        region: "nyc3".into(),
        zone: None,
        instance_type: "s-1vcpu-1gb".into(),
        spot: false,
        hourly_usd: Some(0.00893),
    };
    let rec = host
        .deploy_with(req, vec![target], &opts)
        .await
        .expect("deploy");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let sup = SupervisorOptions {
        deploy: opts.clone(),
        ..SupervisorOptions::default()
    };
    let (done, errors) = host.cleanup_once(&sup).await;
    assert!(done.is_empty() && errors.is_empty(), "{done:?} {errors:?}");
    assert_eq!(
        host.tracker().get(&rec.id).unwrap().status,
        DeploymentStatus::Suspended
    );
    assert_eq!(f.stand.state().await["droplets"][0]["status"], "off");
    let back = host.renew(&rec.id, Some(3600), &opts).await.expect("renew");
    assert_eq!(back.status, DeploymentStatus::Active);
    assert_eq!(f.stand.state().await["droplets"][0]["status"], "active");
    host.terminate(&rec.id).await.expect("terminate");
    assert_eq!(
        f.stand.state().await["droplets"].as_array().unwrap().len(),
        0
    );
    host.shutdown().await;
    f.finish().await;
}

/// A one-node cluster `bpr-<name>` in nyc1.
pub(crate) fn one_node_cluster(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: format!("bpr-{name}"),
        deployment_id: format!("dep-{name}"),
        idempotency_key: format!("idem-{name}"),
        region: "nyc1".into(),
        kubernetes_version: None,
        node_pools: vec![NodePoolSpec {
            name: "pool-1".into(),
            instance_type: "s-1vcpu-1gb".into(),
            count: 1,
            min_count: None,
            max_count: None,
            spot: false,
            disk_gib: None,
        }],
        labels: vec![],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_doks_cluster_named_in_the_config_is_a_deployment_target_with_fetched_credentials() {
    let kmock = crate::kubernetes::kmock_url();
    let f = Fixture::new().await;
    // Running clusters report kmock as their API server.
    f.stand
        .control("/_fake/config", json!({ "k8s_endpoint": kmock }))
        .await;
    let created = f
        .do_
        .create_cluster(one_node_cluster("managed"))
        .await
        .expect("create cluster");
    // A host whose operator names that cluster as a target.
    let host = f
        ._env
        .start(&format!(
            "{}[operator.kubernetes]\nmanaged = [{{ name = \"doks\", provider = \"digitalocean\", region = \"nyc1\", id = {:?}, cluster_name = \"bpr-managed\" }}]\n",
            f.provider_section, created.id
        ))
        .await;
    let cluster = host
        .cluster("doks")
        .await
        .expect("managed cluster resolves");
    assert_eq!(cluster.name(), "doks");
    let service = crate::kubernetes::unique_service();
    let ctl = crate::kubernetes::controller(cluster.client().clone(), format!("bpr-7-{service}"));
    let rec = host
        .deploy_with(
            crate::kubernetes::request(
                service,
                "doks",
                blueprint_remote_providers::kubernetes::Tier::Basic,
            ),
            vec![],
            &crate::kubernetes::fast(),
        )
        .await
        .expect("deploys to the managed cluster");
    assert_eq!(rec.cluster.as_deref(), Some("doks"));
    let done = host.terminate(&rec.id).await.expect("terminate");
    ctl.abort();
    assert_eq!(
        done.status,
        blueprint_remote_providers::tracking::DeploymentStatus::Terminated
    );
    // The host asked the provider for the cluster and its credentials.
    let log = f.stand.fetch("/_fake/log").await;
    let paths: Vec<String> = log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str().map(String::from))
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with(&format!("{}/credentials", created.id))),
        "{paths:?}"
    );
    host.shutdown().await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_managed_cluster_still_provisioning_is_refused_with_its_state() {
    let f = Fixture::new().await;
    f.stand
        .control(
            "/_fake/config",
            json!({ "cluster_running_after_gets": 100 }),
        )
        .await;
    let created = f
        .do_
        .create_cluster(one_node_cluster("slow"))
        .await
        .expect("create cluster");
    let host = f
        ._env
        .start(&format!(
            "{}[operator.kubernetes]\nmanaged = [{{ name = \"slow\", provider = \"digitalocean\", region = \"nyc1\", id = {:?} }}]\n",
            f.provider_section, created.id
        ))
        .await;
    let err = host.cluster("slow").await.expect_err("no endpoint yet");
    let text = err.to_string();
    assert!(
        text.contains("slow") && text.contains("provisioning"),
        "{text}"
    );
    host.shutdown().await;
    f.finish().await;
}

/// Issue 20 item 3 on DigitalOcean: the firewall exists before the droplet it
/// protects (a crash never leaves a droplet open on every port), and it is
/// tagged with the deployment as it is created.
#[tokio::test(flavor = "multi_thread")]
async fn a_droplet_is_created_after_its_deployment_firewall_never_before() {
    let f = Fixture::new().await;
    let made = f
        .do_
        .create_instance(spec("dep-fw-first", "dep-fw-first-c1"))
        .await
        .expect("create");
    let requests = f.stand.requests().await;
    let at = |method: &str, path: &str| {
        requests
            .iter()
            .position(|(m, p)| m == method && p.split('?').next() == Some(path))
            .unwrap_or_else(|| panic!("no {method} {path} in {requests:?}"))
    };
    assert!(
        at("POST", "/v2/firewalls") < at("POST", "/v2/droplets"),
        "{requests:?}"
    );
    let state = f.stand.state().await;
    let fw = &state["firewalls"][0];
    assert_eq!(
        fw["tags"],
        json!(["bpr:bpr-deployment:dep-fw-first"]),
        "applies to exactly the deployment's droplets: {state}"
    );
    assert!(made.resources.iter().any(|r| r.kind == "firewall"));
    f.do_.delete_instance(as_ref(&made)).await.expect("delete");
    f.finish().await;
}

/// Issue 20 item 3: a create that fails after registering the key and the
/// firewall leaves them; a listing by label reports them without a droplet,
/// and `delete-instance` with the deployment label and an empty id removes them.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_id_deletes_the_firewall_and_key_a_failed_create_left() {
    let f = Fixture::new().await;
    // The droplet create is answered 500 (nothing made): the component keeps
    // key and firewall for a retry that never comes (the host crashed).
    f.stand
        .inject(json!({"method": "POST", "path": "/v2/droplets", "status": 500}))
        .await;
    let err = f.do_.create_instance(spec("dep-left", "dep-left-c1")).await;
    assert!(
        matches!(provider_error(err), ProviderError::Transient(_)),
        "a 500 is transient"
    );
    let state = f.stand.state().await;
    assert_eq!(state["droplets"].as_array().unwrap().len(), 0, "{state}");
    assert_eq!(state["firewalls"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(state["ssh_keys"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(
        state["ssh_keys"][0]["name"], "bpr:bpr-deployment:dep-left",
        "the key is named after the deployment: {state}"
    );

    let listed = f
        .do_
        .list_instances(InstanceQuery {
            regions: vec!["nyc3".into()],
            labels: vec![("bpr-deployment".into(), "dep-left".into())],
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].id.is_empty() && listed[0].state == InstanceState::Terminated);
    assert_eq!(listed[0].resources.len(), 2, "{listed:?}");

    let r = InstanceRef {
        id: String::new(),
        region: "nyc3".into(),
        zone: None,
        resources: vec![],
        labels: vec![("bpr-deployment".into(), "dep-left".into())],
    };
    assert_eq!(
        f.do_.delete_instance(r.clone()).await.expect("delete"),
        DeleteStatus::Deleted
    );
    let state = f.stand.state().await;
    for kind in ["droplets", "firewalls", "ssh_keys"] {
        assert_eq!(state[kind].as_array().unwrap().len(), 0, "{kind}: {state}");
    }
    // Nothing left: still `deleted`.
    assert_eq!(
        f.do_.delete_instance(r).await.expect("delete"),
        DeleteStatus::Deleted
    );
    f.finish().await;
}

/// Two droplets of one deployment (two attempts) share its firewall and key:
/// deleting one keeps them for the other; deleting the last removes them.
#[tokio::test(flavor = "multi_thread")]
async fn the_deployment_firewall_and_key_stay_until_its_last_droplet_is_deleted() {
    let f = Fixture::new().await;
    let first = f
        .do_
        .create_instance(spec("dep-two", "dep-two-c1"))
        .await
        .expect("first");
    let second = f
        .do_
        .create_instance(spec("dep-two", "dep-two-c2"))
        .await
        .expect("second");
    assert_ne!(first.id, second.id);
    let state = f.stand.state().await;
    assert_eq!(
        state["firewalls"].as_array().unwrap().len(),
        1,
        "one firewall: {state}"
    );

    f.do_
        .delete_instance(as_ref(&first))
        .await
        .expect("delete first");
    let state = f.stand.state().await;
    assert_eq!(state["droplets"].as_array().unwrap().len(), 1, "{state}");
    assert_eq!(
        state["firewalls"].as_array().unwrap().len(),
        1,
        "kept: {state}"
    );
    assert_eq!(
        state["ssh_keys"].as_array().unwrap().len(),
        1,
        "kept: {state}"
    );

    f.do_
        .delete_instance(as_ref(&second))
        .await
        .expect("delete second");
    let state = f.stand.state().await;
    for kind in ["droplets", "firewalls", "ssh_keys"] {
        assert_eq!(state[kind].as_array().unwrap().len(), 0, "{kind}: {state}");
    }
    f.finish().await;
}

/// Issue 20 item 5 on DigitalOcean: a region slug DigitalOcean does not know
/// is `region-unavailable` (the next candidate is tried), not a stop.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_region_moves_the_deployment_to_its_next_candidate() {
    use blueprint_remote_providers::provisioning::{
        DeployOptions, DeployRequest, RetryPolicy, Target,
    };
    use blueprint_remote_providers::tracking::{AttemptOutcome, DeploymentStatus};
    use std::time::Duration;

    let f = Fixture::new().await;
    let id = format!("dep-do-region-{}", std::process::id());
    let mut req = DeployRequest::new("7", "42");
    req.deployment_id = Some(id.clone());
    let opts = DeployOptions {
        retry: RetryPolicy::default(),
        poll_initial: Duration::from_millis(100),
        poll_max: Duration::from_millis(500),
        ..DeployOptions::default()
    };
    let target = |region: &str| Target {
        provider: "digitalocean".into(),
        region: region.into(),
        zone: None,
        instance_type: "s-1vcpu-1gb".into(),
        spot: false,
        hourly_usd: Some(0.00893),
    };
    let rec = f
        .host
        .deploy_with(req, vec![target("xx9"), target("nyc3")], &opts)
        .await
        .expect("the second candidate deploys");
    assert_eq!(rec.status, DeploymentStatus::Active);
    let attempts = f.host.tracker().attempts(&id).unwrap();
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Failover,
        "{attempts:?}"
    );
    assert!(
        attempts[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("region")),
        "{attempts:?}"
    );
    f.host.terminate(&id).await.expect("terminate");
    let state = f.stand.state().await;
    for kind in ["droplets", "firewalls", "ssh_keys"] {
        assert_eq!(state[kind].as_array().unwrap().len(), 0, "{kind}: {state}");
    }
    f.finish().await;
}

/// Issue 20's crash driver on DigitalOcean: the real `bpr deploy` and `bpr
/// terminate` SIGKILLed at every API call they make (before it reaches the
/// fake, and after the fake acted on it). After `bpr cleanup` and the
/// termination of what is active, nothing is left in the fake: no droplet,
/// no firewall, no key.
#[tokio::test(flavor = "multi_thread")]
async fn sigkills_at_every_api_call_of_bpr_deploy_and_terminate_leave_nothing_in_the_fake() {
    use crate::reliability::harness::{Bpr, Fault, KillProxy, run_until_killed, text};

    let _serial = SERIAL.lock().await;
    let stand = Stand::from_env();
    stand.control("/_fake/reset", json!({})).await;
    let log_from = stand.log_len();
    let proxy = KillProxy::start(stand.prism.clone()).await;
    let env = TestEnv::new();
    let bpr = Bpr::for_digitalocean(&env, &proxy.url());
    let run = format!("dokill-{}", std::process::id());

    // Calibrate: the API calls of one whole deploy and one whole terminate.
    let cal = format!("{run}-cal");
    proxy.forward_all();
    let out = bpr.deploy(&cal).output().unwrap();
    assert!(out.status.success(), "bpr deploy: {}", text(&out));
    let deploy_calls = proxy.actions();
    proxy.forward_all();
    let out = bpr.run(&["terminate", &cal]);
    assert!(out.status.success(), "bpr terminate: {}", text(&out));
    let terminate_calls = proxy.actions();
    let empty = |state: &Value| {
        ["droplets", "firewalls", "ssh_keys"]
            .iter()
            .all(|k| state[k].as_array().is_some_and(|a| a.is_empty()))
    };
    let state = stand.state().await;
    assert!(
        empty(&state),
        "a whole deploy + terminate leaves nothing: {state}"
    );

    let mut ids = Vec::new();
    for k in 0..deploy_calls.len() {
        for (tag, fault) in [("b", Fault::KillBefore), ("a", Fault::KillAfter)] {
            let id = format!("{run}-d{k}{tag}");
            proxy.set_plan(move |n, _| if n == k { fault } else { Fault::Forward });
            run_until_killed(&proxy, bpr.deploy(&id)).await;
            ids.push(id);
        }
    }
    for k in 0..terminate_calls.len() {
        for (tag, fault) in [("b", Fault::KillBefore), ("a", Fault::KillAfter)] {
            let id = format!("{run}-t{k}{tag}");
            proxy.forward_all();
            let out = bpr.deploy(&id).output().unwrap();
            assert!(out.status.success(), "bpr deploy {id}: {}", text(&out));
            proxy.set_plan(move |n, _| if n == k { fault } else { Fault::Forward });
            let mut terminate = bpr.command();
            terminate.args(["terminate", &id]);
            run_until_killed(&proxy, terminate).await;
            ids.push(id);
        }
    }

    proxy.forward_all();
    let out = bpr.run(&["cleanup"]);
    assert!(out.status.success(), "bpr cleanup: {}", text(&out));
    for r in bpr.status() {
        assert!(
            !r.status.is_in_flight(),
            "{} left {}: {r:?}",
            r.id,
            r.status
        );
        if r.status == blueprint_remote_providers::tracking::DeploymentStatus::Active {
            let out = bpr.run(&["terminate", &r.id]);
            assert!(
                out.status.success(),
                "bpr terminate {}: {}",
                r.id,
                text(&out)
            );
        } else {
            assert!(
                !r.holds_resources(),
                "{} is {} and holds resources",
                r.id,
                r.status
            );
        }
    }
    let state = stand.state().await;
    assert!(
        empty(&state),
        "after {} killed runs, cleanup and terminate, the fake still holds: {state}",
        ids.len()
    );
    let v = stand.violations_since(log_from).await;
    assert!(
        v.is_empty(),
        "Prism reported schema violations:\n{}",
        v.join("\n")
    );
}
