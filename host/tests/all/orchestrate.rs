//! Issue 12: the library decides and deploys by itself.
//!
//! - planning under every `[operator.deployment] mode` (`auto-cheapest`,
//!   `preferred`, `local`), on the components' embedded price snapshots;
//! - the person-facing refusals: an unknown region, a credential that cannot be
//!   resolved (before any record), nothing local that fits;
//! - a ranked deploy that lands on the operator's own machine (the sshd
//!   stand-in) through the real `ssh.wasm`, health-checked there, and
//!   terminated without a trace, by the library and by `bpr deploy`;
//! - a ranked deploy that fails over from an unreachable SSH host to moto.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use blueprint_remote_providers::db::Database;
use blueprint_remote_providers::placement::{Arch, Geography, Request};
use blueprint_remote_providers::provisioning::{
    DeployError, DeployOptions, DeployRequest, HealthCheck, PlanError, RetryPolicy,
};
use blueprint_remote_providers::ssh::Resources;
use blueprint_remote_providers::tracking::{AttemptOutcome, DeploymentStatus};
use blueprint_remote_providers::workload::{PortSpec, WorkloadSource, WorkloadSpec};
use blueprint_remote_providers::{Config, Host};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use sha2::{Digest, Sha256};

use crate::support::{TestEnv, TestServer};

// ------------------------------------------------------------------ helpers

fn sshd_dir() -> Option<PathBuf> {
    std::env::var_os("BPR_TEST_SSHD_DIR").map(PathBuf::from)
}

fn sshd() -> PathBuf {
    sshd_dir().expect(
        "BPR_TEST_SSHD_DIR is not set: start the stand-in with `scripts/standins/sshd.sh start` \
         and export BPR_TEST_SSHD_DIR (scripts/test.sh does both)",
    )
}

fn sshd_port() -> u16 {
    std::fs::read_to_string(sshd().join("port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn fingerprint() -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(sshd().join("host_ed25519.pub"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `[[ssh.hosts]]` for `alias` on the stand-in (or on `port` when given).
pub(crate) fn ssh_host_section(alias: &str, port: Option<u16>) -> String {
    format!(
        "[[ssh.hosts]]\nalias = {alias:?}\naddress = \"127.0.0.1\"\nport = {}\nuser = \"deploy\"\n\
         private_key_file = {:?}\nhost_key_fingerprint = {:?}\nhourly_usd = 0.0\nregion = \"lab\"\n",
        port.unwrap_or_else(sshd_port),
        sshd().join("client_ed25519"),
        fingerprint(),
    )
}

/// Stores `alias`'s capacity, as `bpr hosts probe` would, before the host starts.
pub(crate) fn store_capacity(env: &TestEnv, alias: &str, vcpus: f32, memory_gib: f32) {
    let db = Database::open(&env.state.join("bpr.sqlite3")).unwrap();
    blueprint_remote_providers::ssh::store_capacity(
        &db,
        alias,
        &Resources {
            vcpus,
            memory_gib,
            storage_gib: 20.0,
            gpus: 0.0,
            gpu_model: None,
        },
    )
    .unwrap();
}

fn aws_creds(env: &TestEnv) -> PathBuf {
    let path = env.dir.path().join("aws-credentials");
    std::fs::write(
        &path,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = bpr-test-secret\n",
    )
    .unwrap();
    path
}

/// The aws component offline (its embedded price snapshot), with credentials.
fn aws_offline(env: &TestEnv) -> String {
    format!(
        "[providers.aws]\n[providers.aws.settings]\nregions = \"us-east-1\"\n\
         [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {:?}\n",
        aws_creds(env)
    )
}

/// The digitalocean component offline, with a token file.
fn digitalocean_offline(env: &TestEnv) -> String {
    let token = env.dir.path().join("do-token");
    std::fs::write(&token, "test-token\n").unwrap();
    format!(
        "[providers.digitalocean]\n[providers.digitalocean.credential]\nkind = \"bearer\"\ntoken_file = {token:?}\n"
    )
}

pub(crate) async fn start_async(env: &TestEnv, rest: &str) -> Host {
    let text = format!("{}\n{rest}", env.host_section("warn", false));
    let cfg = Config::from_toml_str(&text, "test.toml").expect("test config parses");
    Host::start(cfg).await.expect("host starts")
}

pub(crate) fn ranked(req: Request) -> DeployRequest {
    let mut r = DeployRequest::new("7", "4242");
    r.requirements = Some(req);
    r
}

fn small_us() -> Request {
    Request {
        min_vcpus: 2.0,
        min_memory_gib: 4.0,
        geography: Some(Geography::Us),
        arch: Some(Arch::X86_64),
        ..Request::default()
    }
}

pub(crate) fn fast() -> DeployOptions {
    DeployOptions {
        retry: RetryPolicy {
            max_tries: 6,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        },
        running_timeout: Duration::from_secs(60),
        health_timeout: Duration::from_secs(60),
        delete_timeout: Duration::from_secs(60),
        poll_initial: Duration::from_millis(100),
        poll_max: Duration::from_millis(500),
        progress: None,
    }
}

// ----------------------------------------------------------------- planning

#[tokio::test(flavor = "multi_thread")]
async fn auto_cheapest_ranks_by_price_and_preferred_puts_the_preferred_provider_first() {
    let env = TestEnv::new();
    env.add("aws").add("digitalocean");
    let providers = format!("{}\n{}", aws_offline(&env), digitalocean_offline(&env));
    let host = start_async(&env, &providers).await;
    let mut req = ranked(small_us());
    req.failover = Some(20);
    let plan = host.plan(&req).await.expect("a plan");
    assert_eq!(plan.mode, blueprint_remote_providers::Mode::AutoCheapest);
    let prices: Vec<f64> = plan
        .candidates
        .iter()
        .map(|c| c.hourly_usd.unwrap())
        .collect();
    assert!(
        prices.windows(2).all(|w| w[0] <= w[1]),
        "cheapest first: {prices:?}"
    );
    assert!(
        plan.offline,
        "offline tests price from the embedded snapshots"
    );
    let cheapest = plan.candidates[0].provider.clone();
    let other = if cheapest == "aws" {
        "digitalocean"
    } else {
        "aws"
    };
    assert!(
        plan.candidates.iter().any(|c| c.provider == other),
        "both providers offer 2 vCPU / 4 GiB in the US: {:?}",
        plan.candidates
    );
    host.shutdown().await;

    // The same offers under `preferred`, preferring the provider that is not cheapest.
    let env2 = TestEnv::new();
    env2.add("aws").add("digitalocean");
    let providers = format!(
        "[operator.deployment]\nmode = \"preferred\"\npreferred_providers = [{other:?}]\n{}\n{}",
        aws_offline(&env2),
        digitalocean_offline(&env2)
    );
    let host = start_async(&env2, &providers).await;
    let plan = host.plan(&req).await.expect("a plan");
    assert_eq!(plan.mode, blueprint_remote_providers::Mode::Preferred);
    let first_other = plan
        .candidates
        .iter()
        .position(|c| c.provider != other)
        .unwrap_or(plan.candidates.len());
    assert!(
        first_other > 0,
        "the preferred provider comes first: {:?}",
        plan.candidates
    );
    assert!(
        plan.candidates[first_other..]
            .iter()
            .all(|c| c.provider != other),
        "every preferred candidate before every other one: {:?}",
        plan.candidates
    );
    assert!(
        plan.candidates[0].hourly_usd
            > plan
                .ranking
                .as_ref()
                .unwrap()
                .candidates
                .iter()
                .filter(|c| c.offer.provider == cheapest)
                .map(|c| Some(c.hourly_usd))
                .next()
                .flatten(),
        "the preferred provider wins although it is dearer"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn local_mode_ranks_only_the_operators_own_machines_and_says_why_when_none_fits() {
    if sshd_dir().is_none() {
        sshd();
    }
    let env = TestEnv::new();
    env.add("aws").add("ssh");
    store_capacity(&env, "rack1", 4.0, 8.0);
    let rest = format!(
        "[operator.deployment]\nmode = \"local\"\n[providers.ssh]\nallow_ssh = true\n{}\n{}",
        aws_offline(&env),
        ssh_host_section("rack1", None)
    );
    let host = start_async(&env, &rest).await;
    let mut req = ranked(Request {
        min_vcpus: 1.0,
        min_memory_gib: 1.0,
        ..Request::default()
    });
    req.workload = Some(WorkloadSpec {
        source: WorkloadSource::Container {
            image: "ghcr.io/acme/agent:1.2".into(),
            args: vec![],
            env: Default::default(),
            ports: vec![],
        },
        cpu_limit: Some(1.0),
        memory_limit_mib: Some(512),
    });
    let plan = host.plan(&req).await.expect("the host fits");
    assert!(!plan.candidates.is_empty());
    assert!(
        plan.candidates
            .iter()
            .all(|c| c.provider == "ssh" && c.instance_type == "rack1"),
        "only the operator's own machine: {:?}",
        plan.candidates
    );
    let ranking = plan.ranking.as_ref().unwrap();
    assert!(
        ranking
            .excluded_by_rule()
            .iter()
            .any(|(r, n)| r.name() == "not-local" && *n > 0),
        "the clouds' offers are excluded as not local"
    );

    // More than the machine has: refused, saying why for hosts and clusters.
    req.requirements = Some(Request {
        min_vcpus: 64.0,
        min_memory_gib: 512.0,
        ..Request::default()
    });
    let err = host.plan(&req).await.expect_err("nothing local fits");
    let text = err.to_string();
    assert!(
        matches!(err, DeployError::Plan(PlanError::NothingLocalFits { .. })),
        "{err:?}"
    );
    assert!(
        text.contains("mode = \"local\"")
            && text.contains("SSH host")
            && text.contains("no Kubernetes cluster"),
        "{text}"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_region_and_an_unresolvable_credential_are_refused_before_anything_is_recorded()
{
    let env = TestEnv::new();
    env.add("aws");
    // No credentials file at all for aws.
    let rest = "[providers.aws]\n[providers.aws.settings]\nregions = \"us-east-1\"\n\
                [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = \"/nonexistent/bpr-credentials\"\n";
    let host = start_async(&env, rest).await;
    let mut req = ranked(Request {
        min_vcpus: 1.0,
        regions: vec!["us-east-9".into()],
        ..Request::default()
    });
    let err = host.deploy(req.clone()).await.expect_err("unknown region");
    let text = err.to_string();
    assert!(
        text.contains("us-east-9") && text.contains("not offered by any loaded provider"),
        "{text}"
    );

    req.requirements.as_mut().unwrap().regions = vec!["us-east-1".into()];
    let err = host.deploy(req.clone()).await.expect_err("no credentials");
    let text = err.to_string();
    assert!(
        text.contains("aws")
            && text.contains("/nonexistent/bpr-credentials")
            && text.contains("AWS_ACCESS_KEY_ID"),
        "names the file and the variables to set: {text}"
    );
    assert_eq!(
        text.matches("AWS_ACCESS_KEY_ID").count(),
        1,
        "said once: {text}"
    );

    // An explicit candidate of that provider is refused the same way.
    req.requirements = None;
    req.candidates = vec![blueprint_remote_providers::InstanceTarget {
        provider: "aws".into(),
        region: "us-east-1".into(),
        zone: None,
        instance_type: "t3.micro".into(),
        spot: false,
        hourly_usd: None,
    }];
    let err = host.deploy(req).await.expect_err("no credentials");
    assert!(
        matches!(
            err,
            DeployError::Plan(PlanError::CredentialUnavailable { .. })
        ),
        "{err:?}"
    );
    assert!(
        host.status(None).unwrap().is_empty(),
        "nothing was recorded"
    );
    host.shutdown().await;
}

// ------------------------------------------------- deploying on own machines

/// Serialises the tests that deploy on the sshd stand-in (with ssh.rs's, which
/// run in this binary too, through the same user's deployments directory).
pub(crate) async fn sshd_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Compiles the fixture HTTP server and serves it; returns (server, sha256).
pub(crate) async fn echo_server_download(env: &TestEnv) -> (TestServer, String) {
    let out = env.dir.path().join("echo_server");
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ssh/echo_server.rs"
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let st = Command::new(rustc)
        .args(["--edition", "2021", "-O", "-C", "strip=symbols", "-o"])
        .arg(&out)
        .arg(src)
        .status()
        .expect("rustc runs");
    assert!(st.success(), "building {src} failed");
    let bytes = Bytes::from(std::fs::read(&out).unwrap());
    let sha = hex::encode(Sha256::digest(&bytes));
    let server = TestServer::start(move |_| Response::new(Full::new(bytes.clone()))).await;
    (server, sha)
}

pub(crate) fn native(url: String, sha256: String, port: u16) -> WorkloadSpec {
    WorkloadSpec {
        source: WorkloadSource::Native {
            url,
            sha256,
            args: vec![port.to_string(), "ranked".into()],
            env: Default::default(),
            ports: vec![PortSpec {
                container_port: port,
                host_port: None,
                public: false,
            }],
        },
        cpu_limit: Some(0.1),
        memory_limit_mib: Some(64),
    }
}

pub(crate) fn remote_procs(needle: &str) -> usize {
    let out = Command::new("pgrep")
        .args(["-u", "deploy", "-f", needle])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

pub(crate) fn dep_dir(id: &str) -> PathBuf {
    PathBuf::from(format!("/home/deploy/.bpr/deployments/{id}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ranked_deploy_lands_on_the_operators_machine_runs_healthy_and_terminates_without_a_trace()
 {
    let _serial = sshd_lock().await;
    let env = TestEnv::new();
    env.add("aws").add("ssh");
    store_capacity(&env, "rack1", 4.0, 8.0);
    let (server, sha) = echo_server_download(&env).await;
    let rest = format!(
        "[providers.ssh]\nallow_ssh = true\ncall_timeout_ms = 120000\n{}\n{}",
        aws_offline(&env),
        ssh_host_section("rack1", None)
    );
    let host = start_async(&env, &rest).await;
    let port = closed_port();
    let mut req = ranked(Request {
        min_vcpus: 0.5,
        min_memory_gib: 0.5,
        ..Request::default()
    });
    req.deployment_id = Some(format!("dep-ranked-{}", std::process::id()));
    req.workload = Some(native(server.url("/echo_server"), sha, port));
    req.health = Some(HealthCheck {
        port,
        path: Some("/healthz".into()),
    });
    let mut events = host.subscribe();
    // The operator's own machine costs 0 and ranks first, ahead of every cloud.
    let rec = host
        .orchestrator()
        .deploy_with(req, vec![], &fast())
        .await
        .expect("deploys on the operator's machine");
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.provider.as_deref(), Some("ssh"));
    assert_eq!(rec.instance_type.as_deref(), Some("rack1"));
    assert!(
        remote_procs(&format!("{port} ranked")) >= 1,
        "the binary runs"
    );
    let running = loop {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event")
            .expect("the bus is open");
        if let blueprint_remote_providers::EventKind::Running { placement, .. } = &e.kind {
            break placement.clone();
        }
    };
    assert_eq!(running, "ssh/lab/rack1");

    // The workload dies (its supervisor first, so nothing restarts it): the
    // supervisor's health pass publishes it as unhealthy, once.
    for needle in [format!("{}/supervise.sh", rec.id), format!("{port} ranked")] {
        Command::new("pkill")
            .args(["-u", "deploy", "-f", &needle])
            .status()
            .unwrap();
    }
    let mut unhealthy = std::collections::BTreeSet::new();
    host.orchestrator().check_health(&mut unhealthy).await;
    assert!(
        unhealthy.contains(&rec.id),
        "the dead workload is unhealthy"
    );
    let reason = loop {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event")
            .expect("the bus is open");
        if let blueprint_remote_providers::EventKind::Unhealthy { reason } = e.kind {
            break reason;
        }
    };
    assert!(
        reason.contains(&rec.id) || reason.contains("Failed"),
        "{reason}"
    );
    host.orchestrator().check_health(&mut unhealthy).await;
    assert!(
        events.try_recv().is_err(),
        "a failing streak is published once"
    );

    let done = host.terminate(&rec.id).await.expect("terminates");
    assert_eq!(done.status, DeploymentStatus::Terminated);
    assert_eq!(remote_procs(&format!("{port} ranked")), 0, "nothing runs");
    assert!(!dep_dir(&rec.id).exists(), "nothing is left on the host");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_deploy_ranks_and_lands_on_the_sshd_stand_in() {
    let _serial = sshd_lock().await;
    let env = TestEnv::new();
    env.add("ssh");
    store_capacity(&env, "rack1", 4.0, 8.0);
    let (server, sha) = echo_server_download(&env).await;
    let config = env.dir.path().join("bpr.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[providers.ssh]\nallow_ssh = true\ncall_timeout_ms = 120000\n{}",
            env.host_section("warn", false),
            ssh_host_section("rack1", None)
        ),
    )
    .unwrap();
    let port = closed_port();
    let id = format!("dep-cli-{}", std::process::id());
    let request = env.dir.path().join("request.toml");
    std::fs::write(
        &request,
        format!(
            "[request]\ndeployment_id = {id:?}\nblueprint_id = \"7\"\nservice_id = \"4243\"\n\
             [request.requirements]\nmin_vcpus = 0.5\nmin_memory_gib = 0.5\n\
             [request.health]\nport = {port}\npath = \"/healthz\"\n\
             [request.workload]\ncpu_limit = 0.1\n\
             [request.workload.source]\nkind = \"native\"\nurl = {:?}\nsha256 = {sha:?}\nargs = [\"{port}\", \"cli\"]\n",
            server.url("/echo_server")
        ),
    )
    .unwrap();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking({
        let (config, request) = (config.clone(), request.clone());
        move || {
            bpr_in(
                &config,
                &[
                    "deploy",
                    "--file",
                    request.to_str().unwrap(),
                    "--timeout-secs",
                    "120",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(ok, "bpr deploy failed: {stderr}\n{stdout}");
    assert!(
        stdout.contains("ssh") && stdout.contains("rack1"),
        "{stdout}"
    );
    assert!(stdout.contains("active"), "{stdout}");
    assert!(remote_procs(&format!("{port} cli")) >= 1, "the binary runs");
    let (ok, _, stderr) = tokio::task::spawn_blocking(move || bpr_in(&config, &["terminate", &id]))
        .await
        .unwrap();
    assert!(ok, "bpr terminate failed: {stderr}");
    assert_eq!(remote_procs(&format!("{port} cli")), 0, "nothing runs");
}

pub(crate) fn bpr_in(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpr"))
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "error")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_ssh_host_fails_over_to_the_next_candidate_on_moto() {
    let Ok(moto) = std::env::var("BPR_TEST_MOTO_URL") else {
        panic!("BPR_TEST_MOTO_URL is not set: start moto with `scripts/standins/moto.sh start`");
    };
    let _serial = crate::support::moto_lock().await;
    let env = TestEnv::new();
    env.add("aws").add("ssh");
    store_capacity(&env, "broken", 8.0, 16.0);
    let rest = format!(
        "[providers.ssh]\nallow_ssh = true\n{}\n\
         [providers.aws]\nallow = [{moto:?}]\ncall_timeout_ms = 60000\n\
         [providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {moto:?}\n\
         image_owner = \"amazon\"\nimage_name_filter = \"amzn2-ami-hvm-*-x86_64-gp2\"\n\
         [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {:?}\n{}",
        ssh_host_section("broken", Some(closed_port())),
        aws_creds(&env),
        crate::support::sigv4_hosts_line(&moto)
    );
    let host = start_async(&env, &rest).await;
    let mut req = ranked(Request {
        min_vcpus: 2.0,
        min_memory_gib: 2.0,
        arch: Some(Arch::X86_64),
        ..Request::default()
    });
    req.deployment_id = Some(format!("dep-failover-{}", std::process::id()));
    req.failover = Some(2);
    req.workload = Some(native(
        "https://example.invalid/agent".into(),
        "a".repeat(64),
        8080,
    ));
    let rec = host
        .orchestrator()
        .deploy_with(req, vec![], &fast())
        .await
        .expect("fails over to moto");
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(rec.provider.as_deref(), Some("aws"));
    let attempts = host.tracker().attempts(&rec.id).unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0].provider, "ssh");
    assert_eq!(attempts[0].outcome, AttemptOutcome::Failover);
    let why = attempts[0].detail.clone().unwrap_or_default();
    assert!(
        why.contains("broken") && why.contains("cannot be reached"),
        "{why}"
    );
    assert_eq!(attempts[1].outcome, AttemptOutcome::Used);
    let done = host.terminate(&rec.id).await.expect("terminates");
    assert_eq!(done.status, DeploymentStatus::Terminated);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_deploy_fails_over_from_a_broken_ssh_host_to_moto() {
    let Ok(moto) = std::env::var("BPR_TEST_MOTO_URL") else {
        panic!("BPR_TEST_MOTO_URL is not set: start moto with `scripts/standins/moto.sh start`");
    };
    let _serial = crate::support::moto_lock().await;
    let env = TestEnv::new();
    env.add("aws").add("ssh");
    // Probed capacity makes the broken host a $0 candidate: it ranks first.
    store_capacity(&env, "broken", 8.0, 16.0);
    let config = env.dir.path().join("bpr.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[providers.ssh]\nallow_ssh = true\n{}\n\
             [providers.aws]\nallow = [{moto:?}]\ncall_timeout_ms = 60000\n\
             [providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {moto:?}\n\
             image_owner = \"amazon\"\nimage_name_filter = \"amzn2-ami-hvm-*-x86_64-gp2\"\n\
             [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {:?}\n{}",
            env.host_section("warn", false),
            ssh_host_section("broken", Some(closed_port())),
            aws_creds(&env),
            crate::support::sigv4_hosts_line(&moto)
        ),
    )
    .unwrap();
    let id = format!("dep-cli-failover-{}", std::process::id());
    let request = env.dir.path().join("request.toml");
    std::fs::write(
        &request,
        format!(
            "[request]\ndeployment_id = {id:?}\nblueprint_id = \"7\"\nservice_id = \"4245\"\nfailover = 2\n\
             [request.requirements]\nmin_vcpus = 2.0\nmin_memory_gib = 2.0\narch = \"x86-64\"\n\
             [request.workload.source]\nkind = \"native\"\nurl = \"https://example.invalid/agent\"\nsha256 = {:?}\n",
            "a".repeat(64)
        ),
    )
    .unwrap();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking({
        let (config, request) = (config.clone(), request.clone());
        move || {
            bpr_in(
                &config,
                &[
                    "deploy",
                    "--file",
                    request.to_str().unwrap(),
                    "--timeout-secs",
                    "120",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(ok, "bpr deploy failed: {stderr}\n{stdout}");
    assert!(
        stdout.contains("candidate 1: ssh/") && stdout.contains("broken"),
        "the operator's host is tried first: {stdout}"
    );
    assert!(
        stdout.contains("cannot be reached"),
        "its failure is said: {stdout}"
    );
    assert!(
        stdout.contains("candidate 2: aws/us-east-1/") && stdout.contains("active"),
        "then moto serves it: {stdout}"
    );
    let (ok, _, stderr) = tokio::task::spawn_blocking(move || bpr_in(&config, &["terminate", &id]))
        .await
        .unwrap();
    assert!(ok, "bpr terminate failed: {stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_endpoint_that_does_not_resolve_is_one_sentence_and_the_regions_other_types_are_not_tried()
 {
    let env = TestEnv::new();
    env.add("aws");
    // A name under `.invalid` never resolves (RFC 2606).
    let endpoint = "http://bpr-test-endpoint.invalid:5000";
    let rest = format!(
        "[providers.aws]\nallow = [{endpoint:?}]\n[providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {endpoint:?}\n\
         [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {:?}\n{}",
        aws_creds(&env),
        crate::support::sigv4_hosts_line(endpoint)
    );
    let host = start_async(&env, &rest).await;
    let mut req = DeployRequest::new("7", "4244");
    req.candidates = ["t3.micro", "t3.small"]
        .into_iter()
        .map(|t| blueprint_remote_providers::InstanceTarget {
            provider: "aws".into(),
            region: "us-east-1".into(),
            zone: None,
            instance_type: t.into(),
            spot: false,
            hourly_usd: None,
        })
        .collect();
    let started = std::time::Instant::now();
    let err = host
        .orchestrator()
        .deploy_with(req, vec![], &fast())
        .await
        .expect_err("nothing resolves");
    let text = err.to_string();
    assert!(
        matches!(err, DeployError::Exhausted { .. }),
        "a name that does not resolve fails over: {err:?}"
    );
    assert!(text.contains("does not resolve"), "{text}");
    for debug in ["DnsError", "ErrorCode", "Payload", "Transient", "temporary"] {
        assert!(
            !text.contains(debug),
            "no Debug text, not transient: {text}"
        );
    }
    assert_eq!(
        text.matches("does not resolve").count(),
        1,
        "said once: {text}"
    );
    assert!(
        text.contains("aws/us-east-1/t3.small: not tried: aws region us-east-1 was unavailable to aws/us-east-1/t3.micro"),
        "the region's other type is skipped, saying why: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "not retried as a transient failure"
    );
    let DeployError::Exhausted { id, .. } = &err else {
        unreachable!()
    };
    let attempts = host.tracker().attempts(id).unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "one call, not one per type: {attempts:?}"
    );
    assert_eq!(attempts[0].outcome, AttemptOutcome::Failover);
    host.shutdown().await;
}
