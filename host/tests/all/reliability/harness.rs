//! What the reliability tests share: unsigned access to moto to see what
//! really exists, a proxy in front of a stand-in that can lose answers, cut
//! the service or SIGKILL the `bpr` process at an exact API call, and the
//! `bpr` binary on a test config.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use blueprint_remote_providers::tracking::DeploymentRecord;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::support::TestEnv;

/// moto's base URL (`scripts/standins/moto.sh start` prints it).
pub fn moto_url() -> String {
    std::env::var("BPR_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "BPR_TEST_MOTO_URL is not set. Start moto with `scripts/standins/moto.sh start` \
             and export what it prints"
        )
    })
}

/// A deployment id unique to this run (moto keeps state between runs); at
/// most 48 characters of `[a-z0-9-]`.
pub fn unique_id(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000_000;
    format!("{prefix}-{nanos:x}{}", N.fetch_add(1, Ordering::SeqCst))
}

/// A real ed25519 public key (the one `aws.rs` uses; no private key kept).
pub const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJQN3IyjiZ1UaSfgEqyCSz3TItV+q8giYup9DDglod1H bpr-test";

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

/// What moto holds for one deployment, found independently of the host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Leftovers {
    /// Instances not terminated (shutting-down counts: it still exists).
    pub instances: Vec<String>,
    /// Security groups tagged with the deployment or named after it.
    pub security_groups: Vec<String>,
    /// Key pairs tagged with the deployment or named after it.
    pub key_pairs: Vec<String>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.security_groups.is_empty() && self.key_pairs.is_empty()
    }
}

/// Direct, unsigned access to moto (its SigV4 check is off in these tests).
pub struct Moto {
    pub url: String,
    http: reqwest::Client,
}

impl Moto {
    pub fn new() -> Self {
        Self {
            url: moto_url(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn ec2(&self, params: &[(&str, &str)]) -> String {
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
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00",
            )
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto at {} does not answer ({e})", self.url));
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "moto answered {status}: {text}");
        text
    }

    /// (instance id, state) of every instance tagged `bpr-deployment=id`,
    /// terminated ones included (moto keeps them for a while).
    pub async fn instances_of(&self, id: &str) -> Vec<(String, String)> {
        let xml = self
            .ec2(&[
                ("Action", "DescribeInstances"),
                ("Filter.1.Name", "tag:bpr-deployment"),
                ("Filter.1.Value.1", id),
            ])
            .await;
        let ids = xml_texts(&xml, "instanceId");
        let states: Vec<String> = xml_texts(&xml, "instanceState")
            .iter()
            .flat_map(|s| xml_texts(s, "name"))
            .collect();
        ids.into_iter().zip(states).collect()
    }

    /// Instances of `id` that still exist.
    pub async fn live_instances_of(&self, id: &str) -> Vec<String> {
        self.instances_of(id)
            .await
            .into_iter()
            .filter(|(_, s)| s != "terminated")
            .map(|(i, _)| i)
            .collect()
    }

    async fn ids_by_filter(&self, action: &str, id_tag: &str, filter: (&str, &str)) -> Vec<String> {
        let xml = self
            .ec2(&[
                ("Action", action),
                ("Filter.1.Name", filter.0),
                ("Filter.1.Value.1", filter.1),
            ])
            .await;
        xml_texts(&xml, id_tag)
    }

    /// Security groups of `id`: tagged `bpr-deployment=id` or named `bpr-<id>`.
    pub async fn security_groups_of(&self, id: &str) -> Vec<String> {
        let mut out = self
            .ids_by_filter(
                "DescribeSecurityGroups",
                "groupId",
                ("tag:bpr-deployment", id),
            )
            .await;
        out.extend(
            self.ids_by_filter(
                "DescribeSecurityGroups",
                "groupId",
                ("group-name", &format!("bpr-{id}")),
            )
            .await,
        );
        out.sort();
        out.dedup();
        out
    }

    /// Key pairs of `id`: tagged `bpr-deployment=id` or named `bpr-<id>-*`.
    pub async fn key_pairs_of(&self, id: &str) -> Vec<String> {
        let mut out = self
            .ids_by_filter("DescribeKeyPairs", "keyName", ("tag:bpr-deployment", id))
            .await;
        out.extend(
            self.ids_by_filter(
                "DescribeKeyPairs",
                "keyName",
                ("key-name", &format!("bpr-{id}-*")),
            )
            .await,
        );
        out.sort();
        out.dedup();
        out
    }

    /// Everything of `id` that still exists in moto.
    pub async fn leftovers(&self, id: &str) -> Leftovers {
        Leftovers {
            instances: self.live_instances_of(id).await,
            security_groups: self.security_groups_of(id).await,
            key_pairs: self.key_pairs_of(id).await,
        }
    }

    /// moto killed and restarted empty: every resource is forgotten. Only
    /// while holding [`crate::support::moto_lock`].
    pub async fn reset(&self) {
        let resp = self
            .http
            .post(format!("{}/moto-api/reset", self.url))
            .send()
            .await
            .expect("moto answers /moto-api/reset");
        assert!(resp.status().is_success());
    }
}

/// What [`KillProxy`] does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass it on to moto.
    Forward,
    /// Close the connection without forwarding (moto down).
    Reset,
    /// Forward (EC2 acts), then close without answering: the answer is lost.
    ForwardThenReset,
    /// SIGKILL the `bpr` process before forwarding.
    KillBefore,
    /// Forward (EC2 acts), then SIGKILL the `bpr` process before it hears back.
    KillAfter,
}

type Plan = dyn FnMut(usize, &str) -> Fault + Send;

/// A proxy in front of a stand-in (moto, Prism) that applies a [`Fault`] per
/// request, chosen by a plan from the request's number (0-based, since the
/// plan was set) and what it is (see `call_of`: `<Action>@<region>` for EC2,
/// `<METHOD> <path>` otherwise).
pub struct KillProxy {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
    plan: Arc<Mutex<Box<Plan>>>,
    seen: Arc<Mutex<Vec<String>>>,
    pid: Arc<AtomicU32>,
}

impl Drop for KillProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a request is: `<Action>@<region>` for EC2 (the action from the form
/// body, the region from the SigV4 credential scope the host signed with),
/// `<METHOD> <path>` for a REST API.
fn call_of(method: &hyper::Method, path: &str, body: &str, headers: &hyper::HeaderMap) -> String {
    let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) else {
        return format!("{method} {}", path.split('?').next().unwrap_or(path));
    };
    let region = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(2))
        .unwrap_or("?");
    format!("{action}@{region}")
}

/// True when `call` (`<Action>@<region>`) is `action`.
pub fn is(call: &str, action: &str) -> bool {
    call.split('@').next() == Some(action)
}

/// SIGKILL `pid` (waiting up to 5 s for the test to have set it).
fn kill_process(pid: &AtomicU32) {
    let started = Instant::now();
    let mut p = pid.load(Ordering::SeqCst);
    while p == 0 && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(2));
        p = pid.load(Ordering::SeqCst);
    }
    assert!(p != 0, "no bpr process to kill");
    let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
}

impl KillProxy {
    pub async fn start(upstream: String) -> Self {
        let plan: Arc<Mutex<Box<Plan>>> = Arc::new(Mutex::new(Box::new(|_, _| Fault::Forward)));
        let seen: Arc<Mutex<Vec<String>>> = Default::default();
        let pid = Arc::new(AtomicU32::new(0));
        let client = reqwest::Client::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (plan2, seen2, pid2) = (plan.clone(), seen.clone(), pid.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, plan, seen, pid) = (
                    client.clone(),
                    upstream.clone(),
                    plan2.clone(),
                    seen2.clone(),
                    pid2.clone(),
                );
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (client, upstream, plan, seen, pid) = (
                            client.clone(),
                            upstream.clone(),
                            plan.clone(),
                            seen.clone(),
                            pid.clone(),
                        );
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            let action = call_of(
                                &parts.method,
                                parts.uri.path(),
                                &String::from_utf8_lossy(&body),
                                &parts.headers,
                            );
                            let fault = {
                                let mut seen = seen.lock().unwrap();
                                let n = seen.len();
                                seen.push(action.clone());
                                (plan.lock().unwrap())(n, &action)
                            };
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
                                let resp = rb.body(body.clone()).send().await.ok()?;
                                let status = resp.status();
                                let ct = resp.headers().get("content-type").cloned();
                                let bytes = resp.bytes().await.unwrap_or_default();
                                let mut out = Response::builder().status(status);
                                if let Some(ct) = ct {
                                    out = out.header("content-type", ct);
                                }
                                out.body(Full::new(bytes)).ok()
                            };
                            let lost = || Err(std::io::Error::other("injected: no answer"));
                            match fault {
                                Fault::Forward => match forward().await {
                                    Some(r) => Ok::<_, std::io::Error>(r),
                                    None => lost(),
                                },
                                Fault::Reset => lost(),
                                Fault::ForwardThenReset => {
                                    let _ = forward().await;
                                    lost()
                                }
                                Fault::KillBefore => {
                                    kill_process(&pid);
                                    lost()
                                }
                                Fault::KillAfter => {
                                    let _ = forward().await;
                                    kill_process(&pid);
                                    lost()
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
            addr,
            task,
            plan,
            seen,
            pid,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A new plan; request numbers start again at 0.
    pub fn set_plan(&self, plan: impl FnMut(usize, &str) -> Fault + Send + 'static) {
        let mut seen = self.seen.lock().unwrap();
        seen.clear();
        *self.plan.lock().unwrap() = Box::new(plan);
    }

    /// Forward everything.
    pub fn forward_all(&self) {
        self.set_plan(|_, _| Fault::Forward);
    }

    /// The calls (`<Action>@<region>`) seen since the plan was set, in order.
    pub fn actions(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The process a `Kill*` fault kills (0: none yet).
    pub fn set_pid(&self, pid: u32) {
        self.pid.store(pid, Ordering::SeqCst);
    }
}

/// `[providers.aws]` for a host whose component talks to `endpoint`.
pub fn aws_section(endpoint: &str, creds: &Path) -> String {
    format!(
        "[providers.aws]\nallow = [{endpoint:?}]\ncall_timeout_ms = 60000\n\
         [providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {endpoint:?}\n\
         image_owner = \"amazon\"\nimage_name_filter = \"amzn2-ami-hvm-*-x86_64-gp2\"\n\
         [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {creds:?}\nprofile = \"default\"\n{}",
        crate::support::sigv4_hosts_line(endpoint)
    )
}

pub fn write_creds(env: &TestEnv) -> PathBuf {
    let path = env.dir.path().join("aws-credentials");
    std::fs::write(
        &path,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = bpr-test-secret\n",
    )
    .unwrap();
    path
}

/// The `bpr` binary on a test config with one provider.
pub struct Bpr {
    pub config: PathBuf,
    /// The one candidate deploys use: provider, region, type.
    candidate: [&'static str; 3],
}

impl Bpr {
    /// The aws provider talks to `endpoint` (moto, or a proxy in front of it).
    pub fn for_aws(env: &TestEnv, endpoint: &str) -> Self {
        env.add("aws");
        let creds = write_creds(env);
        let config = env.dir.path().join("bpr.toml");
        std::fs::write(
            &config,
            format!(
                "{}\n{}",
                env.host_section("warn", false),
                aws_section(endpoint, &creds)
            ),
        )
        .unwrap();
        Self {
            config,
            candidate: ["aws", "us-east-1", "t3.micro"],
        }
    }

    /// The digitalocean provider talks to `endpoint` (Prism in front of the
    /// fake, or a proxy in front of Prism).
    pub fn for_digitalocean(env: &TestEnv, endpoint: &str) -> Self {
        env.add("digitalocean");
        let token = env.dir.path().join("do-token");
        std::fs::write(&token, "dop_v1_test_token").unwrap();
        let config = env.dir.path().join("bpr.toml");
        std::fs::write(
            &config,
            format!(
                "{}\n[providers.digitalocean]\nallow = [{endpoint:?}]\ncall_timeout_ms = 60000\n\
                 [providers.digitalocean.settings]\nendpoint = {endpoint:?}\n\
                 [providers.digitalocean.credential]\nkind = \"bearer\"\ntoken_file = {token:?}\n",
                env.host_section("warn", false),
            ),
        )
        .unwrap();
        Self {
            config,
            candidate: ["digitalocean", "nyc3", "s-1vcpu-1gb"],
        }
    }

    /// `bpr` with this config: the binary built with the tests, or the one
    /// `BPR_TEST_BPR_BIN` names (a release build, for measuring).
    pub fn command(&self) -> Command {
        let bin = std::env::var_os("BPR_TEST_BPR_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bpr")));
        let mut c = Command::new(bin);
        c.arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "error")
            .env("RUST_BACKTRACE", "0");
        c
    }

    /// `bpr deploy` on the one candidate with everything a component creates
    /// next to an instance: an SSH key, a firewall (security group) with an
    /// opening.
    pub fn deploy(&self, id: &str) -> Command {
        let [provider, region, instance_type] = self.candidate;
        let mut c = self.command();
        c.args(["deploy", "--blueprint", "7", "--service", "42"])
            .args(["--provider", provider, "--region", region])
            .args(["--type", instance_type])
            .args([
                "--container",
                "ghcr.io/example/app:1.2",
                "--port",
                "8080:80",
            ])
            .args(["--ssh-public-key", SSH_KEY, "--id", id]);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Every record, from `bpr status --json`.
    pub fn status(&self) -> Vec<DeploymentRecord> {
        let out = self.run(&["status", "--json"]);
        assert!(
            out.status.success(),
            "bpr status failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("bpr status --json prints records")
    }
}

/// stdout and stderr of a finished command, for messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `cmd` with the proxy set to kill it; true when it was SIGKILLed.
pub async fn run_until_killed(proxy: &KillProxy, mut cmd: std::process::Command) -> bool {
    proxy.set_pid(0);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    proxy.set_pid(child.id());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    status.signal() == Some(9)
}

/// Runs `cmd` and SIGKILLs it after `after` unless it finished; true when killed.
pub async fn run_and_kill_at(mut cmd: std::process::Command, after: Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    tokio::time::sleep(after).await;
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        child.kill().unwrap(); // SIGKILL
    }
    tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    killed
}

/// xorshift64: reproducible kill times.
pub fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}
