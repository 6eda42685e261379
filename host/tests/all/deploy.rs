//! Issue 6: deployments that are never lost. The real `aws` component under
//! wasmtime against moto (started by `scripts/standins/moto.sh start`, which
//! prints `BPR_TEST_MOTO_URL`), through `Host::deploy`, the supervisor,
//! recovery and the real `bpr` binary.
//!
//! These tests expect moto's SigV4 checking off (its default): they never
//! switch it, and they check moto with unsigned calls.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blueprint_remote_providers::Host;
use blueprint_remote_providers::provisioning::{
    DeployError, DeployOptions, DeployRequest, RetryPolicy, SupervisorOptions, Target,
};
use blueprint_remote_providers::tracking::{AttemptOutcome, DeploymentRecord, DeploymentStatus};
use blueprint_remote_providers::workload::{PortSpec, WorkloadSource, WorkloadSpec};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::support::TestEnv;

pub(crate) fn moto_url() -> String {
    std::env::var("BPR_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "BPR_TEST_MOTO_URL is not set. Start moto with `scripts/standins/moto.sh start` \
             (from /work/main) and export BPR_TEST_MOTO_URL=http://127.0.0.1:5000"
        )
    })
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/deploy")
        .join(name)
}

/// A deployment id unique to this run (moto keeps state between runs).
pub(crate) fn unique_id(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000_000;
    format!("{prefix}-{nanos:x}{}", N.fetch_add(1, Ordering::SeqCst))
}

pub(crate) fn aws_section(endpoint: &str, creds: &Path) -> String {
    // The credential signs for the stand-in the component is pointed at.
    let signed_host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    format!(
        "[providers.aws]\nallow = [{endpoint:?}]\ncall_timeout_ms = 60000\n\
         [providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {endpoint:?}\n\
         image_owner = \"amazon\"\nimage_name_filter = \"amzn2-ami-hvm-*-x86_64-gp2\"\n\
         [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {creds:?}\nprofile = \"default\"\n\
         hosts = [{signed_host:?}]\n"
    )
}

pub(crate) fn write_creds(env: &TestEnv) -> PathBuf {
    let path = env.dir.path().join("aws-credentials");
    std::fs::write(&path, "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = bpr-test-secret\n").unwrap();
    path
}

/// A host whose aws component talks to `endpoint` (moto or a proxy in front of it).
async fn host_for(env: &TestEnv, endpoint: &str) -> Host {
    env.add("aws");
    let creds = write_creds(env);
    env.start(&aws_section(endpoint, &creds)).await
}

/// Short timings: moto answers at once.
fn fast() -> DeployOptions {
    DeployOptions {
        retry: RetryPolicy {
            max_tries: 12,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(400),
            max_retry_after: Duration::from_secs(5),
        },
        running_timeout: Duration::from_secs(30),
        health_timeout: Duration::from_secs(30),
        delete_timeout: Duration::from_secs(30),
        poll_initial: Duration::from_millis(100),
        poll_max: Duration::from_millis(500),
        progress: None,
    }
}

fn target(instance_type: &str) -> Target {
    Target {
        provider: "aws".into(),
        region: "us-east-1".into(),
        zone: None,
        instance_type: instance_type.into(),
        spot: false,
        hourly_usd: Some(0.01),
    }
}

fn request(id: &str) -> DeployRequest {
    let mut r = DeployRequest::new("bp-test", "svc-test");
    r.deployment_id = Some(id.to_string());
    r.workload = Some(WorkloadSpec {
        source: WorkloadSource::Container {
            image: "ghcr.io/example/app:1.2".into(),
            args: vec![],
            env: Default::default(),
            ports: vec![PortSpec {
                container_port: 80,
                host_port: Some(8080),
                public: true,
            }],
        },
        cpu_limit: Some(1.0),
        memory_limit_mib: Some(256),
    });
    r
}

/// Direct, unsigned access to moto, to check what exists independently of the host.
pub(crate) struct Moto {
    pub(crate) url: String,
    http: reqwest::Client,
}

fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

impl Moto {
    pub(crate) fn new() -> Self {
        Self {
            url: moto_url(),
            http: reqwest::Client::new(),
        }
    }

    async fn ec2(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2016-11-15");
        for (k, v) in params {
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            body.push_str(&format!("&{k}={enc}"));
        }
        let resp = self
            .http
            .post(format!("{}/", self.url))
            .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto at {} does not answer ({e}); start it with scripts/standins/moto.sh start", self.url));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "moto answered {status}: {text}");
        text
    }

    /// (instance id, state) of every instance ever tagged `bpr-deployment=id`,
    /// terminated ones included (moto keeps them).
    pub(crate) async fn instances_of(&self, id: &str) -> Vec<(String, String)> {
        let xml = self
            .ec2(&[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", "tag:bpr-deployment"),
                ("Filter.1.Value.1", id),
            ])
            .await;
        let ids = xml_texts(&xml, "instanceId");
        // Each instance's <instanceState> holds <code> and <name>.
        let states: Vec<String> = xml_texts(&xml, "instanceState")
            .iter()
            .flat_map(|s| xml_texts(s, "name"))
            .collect();
        ids.into_iter().zip(states).collect()
    }

    pub(crate) async fn live_instances_of(&self, id: &str) -> Vec<String> {
        self.instances_of(id)
            .await
            .into_iter()
            .filter(|(_, s)| s != "terminated" && s != "shutting-down")
            .map(|(i, _)| i)
            .collect()
    }

    async fn security_groups_named(&self, name: &str) -> usize {
        let xml = self
            .ec2(&[
                ("Action", "DescribeSecurityGroups"),
                ("Filter.1.Name", "group-name"),
                ("Filter.1.Value.1", name),
            ])
            .await;
        xml_texts(&xml, "groupId").len()
    }
}

/// What the test proxy does with request number `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Action {
    Forward,
    /// Answer with a status and body without forwarding.
    Respond(u16, &'static str),
    /// Close the connection without answering, without forwarding.
    Reset,
    /// Forward (moto acts on it), then close without answering: the caller
    /// cannot know whether its call happened.
    ForwardThenReset,
}

/// A local server task, stopped on drop.
struct Served {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Records the body of every request (the cleanup webhook's receiver).
async fn recorder() -> (Served, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Default::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen2 = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen2.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        seen.lock()
                            .unwrap()
                            .push(String::from_utf8_lossy(&body).to_string());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (Served { addr, task }, seen)
}

/// A proxy in front of moto that can replace answers.
pub(crate) struct Proxy {
    server: Served,
    counts: Arc<Mutex<std::collections::BTreeMap<String, usize>>>,
}

pub(crate) type Decide = dyn Fn(usize, &str) -> Action + Send + Sync;

impl Proxy {
    pub(crate) async fn start(upstream: String, decide: Arc<Decide>) -> Self {
        let counts: Arc<Mutex<std::collections::BTreeMap<String, usize>>> = Default::default();
        let n = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts2 = counts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, decide, n, counts) = (
                    client.clone(),
                    upstream.clone(),
                    decide.clone(),
                    n.clone(),
                    counts2.clone(),
                );
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (client, upstream, decide, n, counts) = (
                            client.clone(),
                            upstream.clone(),
                            decide.clone(),
                            n.clone(),
                            counts.clone(),
                        );
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let text = String::from_utf8_lossy(&body).to_string();
                            let action = decide(n.fetch_add(1, Ordering::SeqCst), &text);
                            *counts
                                .lock()
                                .unwrap()
                                .entry(format!("{action:?}"))
                                .or_default() += 1;
                            let forward = || async {
                                let mut rb = client.request(
                                    parts.method.clone(),
                                    format!("{upstream}{}", parts.uri),
                                );
                                for (k, v) in &parts.headers {
                                    if k != "host" && k != "content-length" {
                                        rb = rb.header(k, v);
                                    }
                                }
                                let resp = rb
                                    .body(body.clone())
                                    .send()
                                    .await
                                    .expect("moto answers the proxy");
                                let status = resp.status();
                                let ct = resp.headers().get("content-type").cloned();
                                let bytes = resp.bytes().await.unwrap_or_default();
                                let mut out = Response::builder().status(status);
                                if let Some(ct) = ct {
                                    out = out.header("content-type", ct);
                                }
                                out.body(Full::new(bytes)).unwrap()
                            };
                            match action {
                                Action::Forward => Ok::<_, std::io::Error>(forward().await),
                                Action::Respond(status, body) => Ok(Response::builder()
                                    .status(status)
                                    .header("content-type", "text/xml")
                                    .body(Full::new(Bytes::from_static(body.as_bytes())))
                                    .unwrap()),
                                Action::Reset => Err(std::io::Error::other("injected reset")),
                                Action::ForwardThenReset => {
                                    let _ = forward().await;
                                    Err(std::io::Error::other("injected reset after forwarding"))
                                }
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            server: Served { addr, task },
            counts,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    fn count(&self, action: &str) -> usize {
        self.counts
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(action))
            .map(|(_, v)| v)
            .sum()
    }
}

fn statuses(h: &[blueprint_remote_providers::tracking::Transition]) -> Vec<DeploymentStatus> {
    h.iter().map(|t| t.to).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_reaches_active_and_terminate_leaves_nothing_in_moto() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let host = host_for(&env, &moto.url).await;
    let id = unique_id("dep-life");

    let rec = host
        .deploy_with(request(&id), vec![target("t3.micro")], &fast())
        .await
        .expect("deploys on moto");
    assert_eq!(rec.status, DeploymentStatus::Active);
    let instance = rec.instance_id.clone().expect("instance id recorded");
    assert_eq!(
        moto.live_instances_of(&id).await,
        vec![instance.clone()],
        "exactly the recorded instance runs"
    );
    assert!(
        rec.resources.iter().any(|r| r.kind == "security-group"),
        "{:?}",
        rec.resources
    );
    assert_eq!(
        statuses(&host.history(&id).unwrap()),
        [
            DeploymentStatus::Planned,
            DeploymentStatus::Provisioning,
            DeploymentStatus::Provisioned,
            DeploymentStatus::Deploying,
            DeploymentStatus::Active
        ]
    );
    let attempts = host.tracker().attempts(&id).unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Used);
    assert_eq!(attempts[0].idempotency_key, format!("{id}-c1"));

    let done = host
        .terminate_with(&id, &fast(), "test done")
        .await
        .expect("terminates");
    assert_eq!(done.status, DeploymentStatus::Terminated);
    assert!(!done.holds_resources());
    assert!(
        moto.live_instances_of(&id).await.is_empty(),
        "nothing left running in moto"
    );
    assert_eq!(
        moto.security_groups_named(&format!("bpr-{id}")).await,
        0,
        "its security group is gone too"
    );
    // Terminating again is a no-op, not an error.
    assert_eq!(
        host.terminate_with(&id, &fast(), "again")
            .await
            .unwrap()
            .status,
        DeploymentStatus::Terminated
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn capacity_unavailable_on_the_first_candidate_fails_over_to_the_second() {
    let _serial = crate::support::moto_lock().await;
    // The aws component has one `endpoint` setting, not one per region, so the
    // error server is a proxy in front of moto that answers RunInstances for
    // m5.large with recorded EC2 error XML, and forwards everything else.
    let moto = Moto::new();
    let xml: &'static str = Box::leak(
        std::fs::read_to_string(fixture("insufficient-capacity.xml"))
            .unwrap()
            .into_boxed_str(),
    );
    let proxy = Proxy::start(
        moto.url.clone(),
        Arc::new(move |_, body: &str| {
            if body.contains("Action=RunInstances") && body.contains("InstanceType=m5.large") {
                Action::Respond(500, xml)
            } else {
                Action::Forward
            }
        }),
    )
    .await;
    let env = TestEnv::new();
    let host = host_for(&env, &proxy.url()).await;
    let id = unique_id("dep-failover");

    let rec = host
        .deploy_with(
            request(&id),
            vec![target("m5.large"), target("t3.micro")],
            &fast(),
        )
        .await
        .expect("the second candidate serves");
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.instance_type.as_deref(), Some("t3.micro"));
    let attempts = host.tracker().attempts(&id).unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(
        (attempts[0].instance_type.as_str(), attempts[0].outcome),
        ("m5.large", AttemptOutcome::Failover)
    );
    let why = attempts[0].detail.clone().unwrap_or_default();
    assert!(
        why.contains("capacity unavailable") && why.contains("InsufficientInstanceCapacity"),
        "{why}"
    );
    assert_eq!(
        (attempts[1].instance_type.as_str(), attempts[1].outcome),
        ("t3.micro", AttemptOutcome::Used)
    );
    assert_ne!(attempts[0].idempotency_key, attempts[1].idempotency_key);
    assert_eq!(
        moto.live_instances_of(&id).await,
        vec![rec.instance_id.clone().unwrap()]
    );
    assert!(proxy.count("Respond") >= 1);

    host.terminate_with(&id, &fast(), "test done")
        .await
        .unwrap();
    assert!(moto.live_instances_of(&id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthorized_stops_without_trying_the_next_candidate() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let denied: &'static str = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>AuthFailure</Code>\
        <Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>r</RequestID></Response>";
    let proxy = Proxy::start(
        moto.url.clone(),
        Arc::new(move |_, body: &str| {
            if body.contains("Action=RunInstances") {
                Action::Respond(401, denied)
            } else {
                Action::Forward
            }
        }),
    )
    .await;
    let env = TestEnv::new();
    let host = host_for(&env, &proxy.url()).await;
    let id = unique_id("dep-stop");
    let err = host
        .deploy_with(
            request(&id),
            vec![target("t3.micro"), target("t3.small")],
            &fast(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Stopped { .. }), "{err}");
    let rec = host.tracker().get(&id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Failed);
    let attempts = host.tracker().attempts(&id).unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "the second candidate is never tried: {attempts:?}"
    );
    assert_eq!(attempts[0].outcome, AttemptOutcome::Stopped);
    assert!(moto.live_instances_of(&id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn deployments_converge_through_a_proxy_injecting_5xx_429_and_resets() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    // A fixed schedule ("a set rate", 10%): of every 60 requests, 2 get a 503,
    // 2 a 429, 1 a reset before forwarding and 1 a reset after moto acted on it.
    // One create-instance is ~8 requests, so about half of the creates see a fault.
    let proxy = Proxy::start(
        moto.url.clone(),
        Arc::new(|n, _: &str| match n % 60 {
            7 | 37 => Action::Respond(503, "<Response><Errors><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error></Errors></Response>"),
            17 | 47 => Action::Respond(429, "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>injected</Message></Error></Errors></Response>"),
            27 => Action::Reset,
            57 => Action::ForwardThenReset,
            _ => Action::Forward,
        }),
    )
    .await;
    let env = TestEnv::new();
    let host = host_for(&env, &proxy.url()).await;
    let ids: Vec<String> = (0..6).map(|_| unique_id("dep-faults")).collect();
    for id in &ids {
        let rec = host
            .deploy_with(request(id), vec![target("t3.micro")], &fast())
            .await
            .expect("converges despite faults");
        assert_eq!(rec.status, DeploymentStatus::Active);
        assert_eq!(
            moto.instances_of(id).await.len(),
            1,
            "{id}: one instance made, despite retried creates"
        );
    }
    for id in &ids {
        host.terminate_with(id, &fast(), "test done")
            .await
            .expect("terminates despite faults");
        assert!(
            moto.live_instances_of(id).await.is_empty(),
            "{id} left something running"
        );
    }
    let injected = proxy.count("Respond") + proxy.count("Reset") + proxy.count("ForwardThenReset");
    let total = injected + proxy.count("Forward");
    eprintln!("fault injection: {injected} of {total} requests faulted");
    assert!(
        proxy.count("Respond") >= 4
            && proxy.count("Reset") >= 1
            && proxy.count("ForwardThenReset") >= 1,
        "faults were injected"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_supervisor_terminates_an_expired_deployment_and_only_that_one() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let (webhook, hooks) = recorder().await;
    // The operator allows the webhook's exact host and port (a loopback address).
    env.add("aws");
    let creds = write_creds(&env);
    let host = env
        .start(&format!(
            "[operator.webhooks]\nallow = [\"http://{}\"]\n{}",
            webhook.addr,
            aws_section(&moto.url, &creds)
        ))
        .await;
    let short = unique_id("dep-ttl");
    let long = unique_id("dep-keep");
    let mut req = request(&short);
    req.ttl_secs = Some(2);
    req.cleanup_webhook = Some(format!("http://{}/cleanup", webhook.addr));
    host.deploy_with(req, vec![target("t3.micro")], &fast())
        .await
        .unwrap();
    host.deploy_with(request(&long), vec![target("t3.micro")], &fast())
        .await
        .unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sup_host = host.clone();
    let supervisor = tokio::spawn(async move {
        let opts = SupervisorOptions {
            interval: Duration::from_millis(300),
            tries: 3,
            deploy: fast(),
            ..SupervisorOptions::default()
        };
        sup_host
            .run_supervisor_with(
                async {
                    let _ = stopped.await;
                },
                opts,
            )
            .await;
    });
    let started = Instant::now();
    while host.tracker().get(&short).unwrap().status != DeploymentStatus::Terminated {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the expired deployment was not terminated within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(());
    supervisor.await.unwrap();
    assert!(moto.live_instances_of(&short).await.is_empty());
    assert_eq!(
        host.tracker().get(&long).unwrap().status,
        DeploymentStatus::Active,
        "a deployment without TTL is left alone"
    );
    assert_eq!(moto.live_instances_of(&long).await.len(), 1);
    assert!(
        host.history(&short)
            .unwrap()
            .iter()
            .any(|t| t.reason.contains("TTL"))
    );
    let hooks = hooks.lock().unwrap().clone();
    assert_eq!(
        hooks.len(),
        1,
        "the cleanup webhook was called once: {hooks:?}"
    );
    let hook: serde_json::Value = serde_json::from_str(&hooks[0]).unwrap();
    assert_eq!(hook["deployment_id"], short.as_str());
    assert_eq!(hook["status"], "terminated");
    assert_eq!(hook["event"], "cleanup");
    host.terminate_with(&long, &fast(), "test done")
        .await
        .unwrap();
}

fn write_bpr_config(env: &TestEnv, endpoint: &str) -> PathBuf {
    env.add("aws");
    let creds = write_creds(env);
    let path = env.dir.path().join("bpr.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n{}",
            env.host_section("warn", false),
            aws_section(endpoint, &creds)
        ),
    )
    .unwrap();
    path
}

fn bpr(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpr"));
    c.arg("--config").arg(config).env("RUST_LOG", "error");
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_request_files_are_refused_naming_file_and_field_and_write_nothing() {
    let env = TestEnv::new();
    let config = write_bpr_config(&env, "http://127.0.0.1:5000");
    std::fs::remove_dir_all(&env.state).unwrap();
    for (file, field) in [
        ("bad-sha256.json", "sha256"),
        ("unknown-field.toml", "ttl_sec"),
        ("reserved-label.toml", "labels.bpr-deployment"),
    ] {
        let out = bpr(&config)
            .arg("deploy")
            .arg("--file")
            .arg(fixture(file))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file} was accepted");
        assert!(
            stderr.contains(file) && stderr.contains(field),
            "{file}: error must name the file and `{field}`: {stderr}"
        );
        assert!(
            !env.state.exists(),
            "{file}: something was written to the state dir"
        );
    }
    // The example file is valid (parsed only: no candidates are reachable here).
    blueprint_remote_providers::provisioning::RequestFile::load(&fixture("example.toml"))
        .expect("the example request file is valid");
}

/// Records by id from `bpr status --json`.
fn bpr_status(config: &Path) -> Vec<DeploymentRecord> {
    let out = bpr(config).args(["status", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "bpr status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("bpr status --json prints records")
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkilled_deploys_are_recovered_with_no_leak_no_dangling_record_and_no_duplicate() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let config = write_bpr_config(&env, &moto.url);
    let run = unique_id("dep-crash");
    let deploy = |id: &str| {
        let mut c = bpr(&config);
        c.args([
            "deploy",
            "--blueprint",
            "bp",
            "--service",
            "svc",
            "--provider",
            "aws",
        ])
        .args(["--region", "us-east-1", "--type", "t3.micro", "--id", id]);
        c
    };

    // Calibrate: the fastest of three uninterrupted deploys, so the kill points
    // cover a whole deploy (the first run may still be warming caches).
    let mut full = Duration::MAX;
    for k in 0..3 {
        let t0 = Instant::now();
        let out = deploy(&format!("{run}-cal{k}")).output().unwrap();
        assert!(
            out.status.success(),
            "bpr deploy failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        full = full.min(t0.elapsed());
    }
    // Deploy until 20 runs were killed mid-way (at most 40 runs).
    let mut ids = Vec::new();
    let mut killed = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15 ^ (full.as_nanos() as u64);
    while killed < 20 && ids.len() < 40 {
        let id = format!("{run}-{}", ids.len());
        let mut child = deploy(&id)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        ids.push(id);
        // xorshift: a kill point uniformly in [0, 1.1 x a full deploy).
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = full.mul_f64((seed % 1000) as f64 / 1000.0 * 1.1);
        tokio::time::sleep(at).await;
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        killed >= 20,
        "only {killed} of {} runs were still running at their kill point",
        ids.len()
    );

    // Restart: cleanup runs recovery for everything the dead processes left.
    let out = bpr(&config).arg("cleanup").output().unwrap();
    assert!(
        out.status.success(),
        "bpr cleanup failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let records = bpr_status(&config);
    let mut active = 0;
    for id in &ids {
        let made = moto.instances_of(id).await;
        let live = moto.live_instances_of(id).await;
        assert!(
            made.len() <= 1,
            "{id} made {} instances: {made:?}",
            made.len()
        );
        match records.iter().find(|r| &r.id == id) {
            None => assert!(
                made.is_empty(),
                "{id}: an instance exists without a record (killed before the record was written?)"
            ),
            Some(r) => {
                assert!(
                    !r.status.is_in_flight(),
                    "{id} left {} after recovery",
                    r.status
                );
                if r.status == DeploymentStatus::Active {
                    active += 1;
                    assert_eq!(
                        live,
                        vec![r.instance_id.clone().unwrap_or_default()],
                        "{id}: active record must point at its live instance"
                    );
                } else {
                    assert!(
                        live.is_empty(),
                        "{id} is {} but instance(s) {live:?} still run",
                        r.status
                    );
                    assert!(
                        !r.holds_resources(),
                        "{id} is {} and still points at an instance",
                        r.status
                    );
                }
            }
        }
    }
    let mut by_status = std::collections::BTreeMap::<String, usize>::new();
    for r in records.iter().filter(|r| ids.contains(&r.id)) {
        *by_status.entry(r.status.to_string()).or_default() += 1;
    }
    let unrecorded = ids
        .iter()
        .filter(|id| !records.iter().any(|r| &r.id == *id))
        .count();
    eprintln!(
        "crash test: {} deploys, {killed} SIGKILLed, {active} active; after recovery {by_status:?}, \
         {unrecorded} killed before their record (full deploy {full:?})",
        ids.len()
    );

    // And all of it can be torn down.
    for r in records
        .iter()
        .filter(|r| r.status == DeploymentStatus::Active)
    {
        let out = bpr(&config).args(["terminate", &r.id]).output().unwrap();
        assert!(
            out.status.success(),
            "bpr terminate {} failed: {}",
            r.id,
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(moto.live_instances_of(&r.id).await.is_empty());
    }
    let out = bpr(&config)
        .args(["history", &format!("{run}-cal0")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("terminated") && text.contains("t3.micro"),
        "bpr history shows the transitions and the attempt:\n{text}"
    );
}

/// The host's HTTP health check, end to end through a real component whose
/// instances report a loopback address: a 200 makes the deployment active; a
/// check that never passes fails it and deletes what was created.
#[tokio::test(flavor = "multi_thread")]
async fn the_http_health_check_gates_active_and_a_failing_one_deletes_the_instance() {
    use blueprint_remote_providers::provisioning::HealthCheck;

    let server = crate::support::TestServer::start(|req| {
        let status = if req.uri().path() == "/healthz" {
            200
        } else {
            404
        };
        Response::builder()
            .status(status)
            .body(Full::new(Bytes::from_static(b"ok")))
            .unwrap()
    })
    .await;
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start("[providers.well_behaved.settings]\naddress = \"127.0.0.1\"\n")
        .await;
    let mut opts = fast();
    opts.health_timeout = Duration::from_secs(3);
    let target = Target {
        provider: "well_behaved".into(),
        region: "test-1".into(),
        zone: None,
        instance_type: "wb.small".into(),
        spot: false,
        hourly_usd: Some(0.02),
    };

    let mut good = request(&unique_id("health-ok"));
    good.health = Some(HealthCheck {
        port: server.addr.port(),
        path: Some("/healthz".into()),
    });
    let rec = host
        .deploy_with(good, vec![target.clone()], &opts)
        .await
        .expect("deploy");
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.address.as_deref(), Some("127.0.0.1"));

    let mut bad = request(&unique_id("health-bad"));
    bad.health = Some(HealthCheck {
        port: server.addr.port(),
        path: Some("/missing".into()),
    });
    let err = host.deploy_with(bad.clone(), vec![target], &opts).await;
    assert!(
        err.is_err(),
        "a health check answering 404 must not become active"
    );
    let id = bad.deployment_id.unwrap();
    let rec = host
        .status(Some(&id))
        .unwrap()
        .pop()
        .expect("the record exists");
    // What was created is deleted and the record says why.
    assert!(
        matches!(
            rec.status,
            DeploymentStatus::Terminated | DeploymentStatus::Failed
        ),
        "{rec:?}"
    );
    assert!(
        rec.released_at.is_some(),
        "the instance was deleted after the failed check: {rec:?}"
    );
    let why = rec.last_error.as_deref().unwrap_or_default();
    assert!(
        why.contains("health check failed") && why.contains("404"),
        "{why}"
    );
}
