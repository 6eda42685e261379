//! Issue 13 items 2 and 3: a deployment's life after it is active, through
//! the library with the real components under wasmtime — health checked on
//! an interval, marked unhealthy after N failed checks (at once when the
//! provider stopped or deleted its instance) and healed through the failover
//! path; suspended at expiry within the operator's grace period (a VM stopped
//! through the `power` export, a Kubernetes deployment scaled to zero),
//! brought back by a renewal, terminated once the grace period is over.
//!
//! Stand-ins: moto (`BPR_TEST_MOTO_URL`), kmock (`BPR_TEST_KMOCK_URL`); the
//! HTTP checks use a local server and the `well_behaved` test component, whose
//! instances report a loopback address.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use blueprint_remote_providers::provisioning::{
    DeployOptions, DeployRequest, HealthCheck, HealthWatch, InstanceTarget, RetryPolicy,
    SupervisorOptions,
};
use blueprint_remote_providers::tracking::{AttemptOutcome, DeploymentStatus};
use blueprint_remote_providers::workload::{PortSpec, WorkloadSource, WorkloadSpec};
use blueprint_remote_providers::{DeploymentEvent, EventKind, Host};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use tokio::sync::broadcast;

use crate::support::{TestEnv, TestServer, moto_lock};

pub(crate) fn moto_url() -> String {
    std::env::var("BPR_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "BPR_TEST_MOTO_URL is not set. Start moto with `scripts/standins/moto.sh start` \
             and export the line it prints"
        )
    })
}

/// A deployment id no earlier run used (moto keeps its state between runs).
pub(crate) fn unique_id(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000_000;
    format!("{prefix}-{nanos:x}{}", N.fetch_add(1, Ordering::SeqCst))
}

/// `[providers.aws]` against moto, with a credential file in `env`.
pub(crate) fn aws_section(env: &TestEnv) -> String {
    env.add("aws");
    let creds = env.dir.path().join("aws-credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = bpr-test-secret\n",
    )
    .unwrap();
    // deploy.rs's section: the credential lists moto as a host it signs for.
    crate::deploy::aws_section(&moto_url(), &creds)
}

/// Short timings: the stand-ins answer at once.
pub(crate) fn fast() -> DeployOptions {
    DeployOptions {
        retry: RetryPolicy {
            max_tries: 8,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        },
        running_timeout: Duration::from_secs(30),
        health_timeout: Duration::from_secs(10),
        delete_timeout: Duration::from_secs(30),
        poll_initial: Duration::from_millis(50),
        poll_max: Duration::from_millis(300),
        progress: None,
    }
}

pub(crate) fn aws_target(hourly: f64) -> InstanceTarget {
    InstanceTarget {
        provider: "aws".into(),
        region: "us-east-1".into(),
        zone: None,
        instance_type: "t3.micro".into(),
        spot: false,
        hourly_usd: Some(hourly),
    }
}

pub(crate) fn wb_target(hourly: f64) -> InstanceTarget {
    InstanceTarget {
        provider: "well_behaved".into(),
        region: "test-1".into(),
        zone: None,
        instance_type: "wb.small".into(),
        spot: false,
        hourly_usd: Some(hourly),
    }
}

/// A container request with deployment id `id`.
pub(crate) fn request(id: &str) -> DeployRequest {
    let mut r = DeployRequest::new("bp-life", "svc-life");
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

/// A tiny EC2 Query client for checking moto behind the component's back,
/// and for acting on an instance the way the provider would (a stop, a
/// termination the host did not ask for).
pub(crate) struct Moto {
    url: String,
    http: reqwest::Client,
}

impl Moto {
    pub(crate) fn new() -> Self {
        Self {
            url: moto_url(),
            http: reqwest::Client::new(),
        }
    }

    pub(crate) async fn ec2(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2016-11-15");
        for (k, v) in params {
            body.push_str(&format!("&{k}={v}"));
        }
        let resp = self
            .http
            .post(format!("{}/", self.url))
            .header("authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=00")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("moto answers");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert!(status.is_success(), "moto answered {status}: {text}");
        text
    }

    /// The state moto reports for instance `id`.
    pub(crate) async fn state(&self, id: &str) -> String {
        let xml = self
            .ec2(&[("Action", "DescribeInstances"), ("InstanceId.1", id)])
            .await;
        let i = xml.find("<instanceState>").expect("an instance state");
        let rest = &xml[i..];
        let a = rest.find("<name>").unwrap() + "<name>".len();
        let b = rest.find("</name>").unwrap();
        rest[a..b].to_string()
    }
}

/// Events from `rx` until one `pick` accepts, under a deadline.
pub(crate) async fn next_event<T>(
    rx: &mut broadcast::Receiver<DeploymentEvent>,
    id: &str,
    pick: impl Fn(&EventKind) -> Option<T>,
) -> T {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an event within 10 s")
            .expect("the bus is open");
        if e.deployment_id == id
            && let Some(t) = pick(&e.kind)
        {
            return t;
        }
    }
}

/// Every event of deployment `id` waiting in `rx`, as their tags.
pub(crate) fn drain(rx: &mut broadcast::Receiver<DeploymentEvent>, id: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if e.deployment_id == id {
            let v = serde_json::to_value(&e.kind).unwrap();
            out.push(v["event"].as_str().unwrap_or_default().to_string());
        }
    }
    out
}

fn history(host: &Host, id: &str) -> Vec<String> {
    host.history(id)
        .unwrap()
        .into_iter()
        .map(|t| {
            format!(
                "{} -> {}: {}",
                t.from.map(|f| f.to_string()).unwrap_or_default(),
                t.to,
                t.reason
            )
        })
        .collect()
}

/// A health endpoint that fails the next `fail` requests, then answers 200.
fn flaky_health() -> (
    Arc<AtomicUsize>,
    impl Fn(hyper::Request<hyper::body::Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
) {
    let fail = Arc::new(AtomicUsize::new(0));
    let f = fail.clone();
    let handler = move |_req| {
        let failing = f
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        Response::builder()
            .status(if failing { 500 } else { 200 })
            .body(Full::new(Bytes::from_static(b"health")))
            .unwrap()
    };
    (fail, handler)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_http_check_marks_it_unhealthy_after_n_checks_and_auto_heal_replaces_the_instance()
 {
    let (fail, handler) = flaky_health();
    let server = TestServer::start(handler).await;
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start(
            "[providers.well_behaved.settings]\naddress = \"127.0.0.1\"\n\
             [operator.health]\nfailures_before_unhealthy = 2\nauto_heal = true\n",
        )
        .await;
    let id = unique_id("heal-http");
    let mut req = request(&id);
    req.health = Some(HealthCheck {
        port: server.addr.port(),
        path: Some("/health".into()),
    });
    let rec = host
        .deploy_with(req, vec![wb_target(0.02)], &fast())
        .await
        .expect("deploys");
    assert_eq!(rec.status, DeploymentStatus::Active);
    let old = rec.instance_id.clone().unwrap();
    let mut events = host.subscribe();
    let mut watch = HealthWatch::default();

    // Two failed checks, then the heal's own check fails once more before passing.
    fail.store(3, Ordering::SeqCst);
    let first = host.health_pass(&mut watch, &fast()).await;
    assert_eq!(first.checked, std::slice::from_ref(&id));
    assert!(
        first.unhealthy.is_empty(),
        "one failure is not enough: {first:?}"
    );
    assert_eq!(watch.failures(&id), 1);
    let second = host.health_pass(&mut watch, &fast()).await;
    assert_eq!(second.unhealthy.len(), 1, "{second:?}");
    assert!(
        second.unhealthy[0]
            .1
            .contains("2 consecutive failed check(s)"),
        "{second:?}"
    );
    assert_eq!(second.healed.len(), 1, "auto-heal replaced it: {second:?}");

    let now = host.tracker().get(&id).unwrap();
    assert_eq!(now.status, DeploymentStatus::Active);
    let new = now.instance_id.clone().unwrap();
    assert_ne!(new, old, "a new instance serves");
    assert!(new.contains("-heal-"), "{new}");
    assert_eq!(second.healed[0].1, new);

    // The history says why, at every step.
    let h = history(&host, &id);
    let pos = |needle: &str| {
        h.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in the history: {h:#?}"))
    };
    assert!(pos("unhealthy: 2 consecutive failed check(s)") < pos("healing ("));
    assert!(pos("healing (") < pos("healed ("), "{h:#?}");
    let healed = &h[pos("healed (")];
    assert!(healed.contains(&old) && healed.contains(&new), "{h:#?}");

    // Events: unhealthy, replacing, replaced, running.
    assert_eq!(
        drain(&mut events, &id),
        ["unhealthy", "replacing", "replaced", "running"]
    );

    // The heal's attempt is recorded and used; the old instance's period is
    // closed, the new one's open.
    let attempts = host.tracker().attempts(&id).unwrap();
    let heal = attempts.last().unwrap();
    assert_eq!(heal.outcome, AttemptOutcome::Used);
    assert!(heal.idempotency_key.contains("-heal-"));
    let usage = host.tracker().usage_of(&id).unwrap();
    let old_p = usage.iter().find(|p| p.instance_id == old).unwrap();
    assert_eq!(
        old_p.end_reason.as_deref(),
        Some("replaced: deleted after heal")
    );
    let new_p = usage.iter().find(|p| p.instance_id == new).unwrap();
    assert!(new_p.ended_at.is_none());

    // Healthy from now on: no new event.
    let third = host.health_pass(&mut watch, &fast()).await;
    assert!(
        third.unhealthy.is_empty() && third.healed.is_empty(),
        "{third:?}"
    );
    host.terminate(&id).await.expect("terminates");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_auto_heal_an_unhealthy_deployment_is_reported_once_and_recovers() {
    let (fail, handler) = flaky_health();
    let server = TestServer::start(handler).await;
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start(
            "[providers.well_behaved.settings]\naddress = \"127.0.0.1\"\n\
             [operator.health]\nfailures_before_unhealthy = 1\n",
        )
        .await;
    let id = unique_id("no-heal");
    let mut req = request(&id);
    req.health = Some(HealthCheck {
        port: server.addr.port(),
        path: Some("/health".into()),
    });
    let rec = host
        .deploy_with(req, vec![wb_target(0.02)], &fast())
        .await
        .unwrap();
    let mut events = host.subscribe();
    let mut watch = HealthWatch::default();
    fail.store(2, Ordering::SeqCst);
    let r = host.health_pass(&mut watch, &fast()).await;
    assert_eq!(r.unhealthy.len(), 1);
    assert!(r.healed.is_empty(), "auto-heal is off by default");
    host.health_pass(&mut watch, &fast()).await;
    assert!(watch.is_unhealthy(&id));
    host.health_pass(&mut watch, &fast()).await;
    assert!(!watch.is_unhealthy(&id));
    assert_eq!(drain(&mut events, &id), ["unhealthy", "running"]);
    assert_eq!(
        host.tracker().get(&id).unwrap().instance_id,
        rec.instance_id,
        "nothing replaced"
    );
    assert!(
        history(&host, &id)
            .iter()
            .any(|l| l.ends_with("healthy again"))
    );
    host.terminate(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_the_provider_stopped_or_deleted_is_healed_on_a_new_one_and_the_old_one_deleted()
 {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let host = env
        .start(&format!(
            "{}\n[operator.health]\nauto_heal = true\n",
            aws_section(&env)
        ))
        .await;
    let moto = Moto::new();
    let id = unique_id("heal-spot");
    let rec = host
        .deploy_with(request(&id), vec![aws_target(0.0104)], &fast())
        .await
        .expect("deploys on moto");
    let first = rec.instance_id.clone().unwrap();
    let mut events = host.subscribe();
    let mut watch = HealthWatch::default();

    // The provider stops it (a spot interruption): unhealthy at once, healed.
    moto.ec2(&[("Action", "StopInstances"), ("InstanceId.1", &first)])
        .await;
    let r = host.health_pass(&mut watch, &fast()).await;
    assert_eq!(r.unhealthy.len(), 1, "{r:?}");
    assert!(
        r.unhealthy[0].1.contains("stopped by the provider"),
        "{r:?}"
    );
    assert_eq!(r.healed.len(), 1, "{r:?}");
    let second = host.tracker().get(&id).unwrap().instance_id.unwrap();
    assert_ne!(second, first);
    assert_eq!(moto.state(&second).await, "running");
    assert_eq!(
        moto.state(&first).await,
        "terminated",
        "the old one is deleted"
    );
    let reason = next_event(&mut events, &id, |k| match k {
        EventKind::Replacing { reason, .. } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert!(reason.contains(&first), "{reason}");

    // Deleted behind the host's back: healed the same way.
    moto.ec2(&[("Action", "TerminateInstances"), ("InstanceId.1", &second)])
        .await;
    let r = host.health_pass(&mut watch, &fast()).await;
    assert_eq!(r.healed.len(), 1, "{r:?}");
    let third = host.tracker().get(&id).unwrap().instance_id.unwrap();
    assert!(third != second && third != first);
    assert_eq!(moto.state(&third).await, "running");
    let h = history(&host, &id);
    assert!(
        h.iter()
            .any(|l| l.contains("healing (instance") && l.contains("stopped by the provider")),
        "{h:#?}"
    );
    assert!(
        h.iter()
            .any(|l| l.contains(&format!("unhealthy: instance {second} is terminated"))),
        "{h:#?}"
    );

    let done = host.terminate(&id).await.expect("terminates");
    assert_eq!(done.status, DeploymentStatus::Terminated);
    assert_eq!(moto.state(&third).await, "terminated");
    assert!(
        host.tracker()
            .open_periods()
            .unwrap()
            .iter()
            .all(|p| p.deployment_id != id)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_heal_interrupted_after_creating_its_instance_leaves_nothing_behind() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let host = env.start(&aws_section(&env)).await;
    let moto = Moto::new();
    let id = unique_id("heal-crash");
    let rec = host
        .deploy_with(request(&id), vec![aws_target(0.0104)], &fast())
        .await
        .expect("deploys on moto");
    let serving = rec.instance_id.clone().unwrap();
    // What a heal that died after its create left: an attempt, an instance
    // labelled for the deployment, its period — and a record still naming the
    // serving instance.
    let provider = host.provider("aws").unwrap();
    let tracker = host.tracker();
    let key = format!("{id}-heal-1-1");
    let n = tracker
        .begin_replacement(
            &id,
            &blueprint_remote_providers::tracking::AttemptIntent {
                provider: "aws",
                region: "us-east-1",
                zone: None,
                instance_type: "t3.micro",
                spot: false,
                hourly_usd: Some(0.0104),
                idempotency_key: &key,
            },
        )
        .unwrap();
    let labels: Vec<(String, String)> = rec.labels.clone().into_iter().collect();
    let orphan = provider
        .create_instance(blueprint_remote_providers::wit::InstanceSpec {
            deployment_id: id.clone(),
            idempotency_key: key.clone(),
            region: "us-east-1".into(),
            zone: None,
            instance_type: "t3.micro".into(),
            spot: false,
            image: None,
            disk_gib: 0,
            ssh_public_keys: vec![],
            user_data: None,
            open_ports: vec![],
            labels,
            workload: None,
        })
        .await
        .expect("created");
    tracker
        .record_replacement_created(&id, n, &orphan.id)
        .unwrap();

    let (done, errors) = host.cleanup_once(&SupervisorOptions::default()).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert!(done.is_empty());
    assert_eq!(
        moto.state(&orphan.id).await,
        "terminated",
        "the heal's instance is deleted"
    );
    assert_eq!(
        moto.state(&serving).await,
        "running",
        "the serving one is kept"
    );
    let a = tracker.attempts(&id).unwrap();
    assert_eq!(a.last().unwrap().outcome, AttemptOutcome::Failed);
    assert_eq!(
        tracker.get(&id).unwrap().instance_id.as_deref(),
        Some(serving.as_str())
    );
    host.terminate(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_stops_the_vm_and_a_renewal_inside_the_grace_period_starts_it_again() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let host = env
        .start(&format!(
            "{}\n[operator.payment]\ngrace_secs = 3600\n",
            aws_section(&env)
        ))
        .await;
    let moto = Moto::new();
    let id = unique_id("pay-renew");
    let mut req = request(&id);
    req.ttl_secs = Some(1);
    let rec = host
        .deploy_with(req, vec![aws_target(0.0104)], &fast())
        .await
        .expect("deploys");
    let instance = rec.instance_id.clone().unwrap();
    let mut events = host.subscribe();
    let mut suspensions = host.subscribe();
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let opts = SupervisorOptions {
        deploy: fast(),
        ..SupervisorOptions::default()
    };
    let (terminated, errors) = host.cleanup_once(&opts).await;
    assert!(
        terminated.is_empty() && errors.is_empty(),
        "{terminated:?} {errors:?}"
    );
    let rec = host.tracker().get(&id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Suspended);
    assert_eq!(moto.state(&instance).await, "stopped");
    assert!(rec.holds_resources(), "a stopped VM is still held");
    let grace_until = next_event(&mut suspensions, &id, |k| match k {
        EventKind::Suspended { grace_until, .. } => Some(*grace_until),
        _ => None,
    })
    .await;
    assert_eq!(grace_until, rec.expires_at.map(|e| e + 3600));
    assert!(
        host.tracker()
            .usage_of(&id)
            .unwrap()
            .iter()
            .all(|p| p.ended_at.is_some()),
        "a stopped VM accrues nothing"
    );
    // Within the grace period the next pass leaves it suspended.
    host.cleanup_once(&opts).await;
    assert_eq!(
        host.tracker().get(&id).unwrap().status,
        DeploymentStatus::Suspended
    );

    let renewed = host.renew(&id, Some(3600), &fast()).await.expect("renews");
    assert_eq!(renewed.status, DeploymentStatus::Active);
    assert_eq!(
        renewed.instance_id.as_deref(),
        Some(instance.as_str()),
        "the same instance"
    );
    assert_eq!(moto.state(&instance).await, "running");
    assert!(
        host.tracker()
            .usage_of(&id)
            .unwrap()
            .last()
            .unwrap()
            .ended_at
            .is_none()
    );
    let h = history(&host, &id);
    let expired = h
        .iter()
        .position(|l| l.contains("active -> suspended: payment expired: instance"))
        .expect("suspended in the history");
    let renewal = h
        .iter()
        .position(|l| l.contains("payment renewed: 3600 s from now"))
        .expect("renewal in the history");
    let started = h
        .iter()
        .position(|l| l.contains("suspended -> active: payment renewed: instance"))
        .expect("resumed in the history");
    assert!(expired < renewal && renewal < started, "{h:#?}");
    assert_eq!(
        drain(&mut events, &id),
        ["expired", "suspended", "renewed", "running"]
    );

    // A renewal recorded by a process that died before starting the VM: the
    // supervisor finishes it.
    host.tracker().set_ttl(&id, Some(1)).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    host.cleanup_once(&opts).await;
    assert_eq!(
        host.tracker().get(&id).unwrap().status,
        DeploymentStatus::Suspended
    );
    host.tracker().set_ttl(&id, Some(3600)).unwrap();
    let (_, errors) = host.cleanup_once(&opts).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        host.tracker().get(&id).unwrap().status,
        DeploymentStatus::Active
    );
    assert_eq!(moto.state(&instance).await, "running");

    host.terminate(&id).await.unwrap();
    assert_eq!(moto.state(&instance).await, "terminated");
}

#[tokio::test(flavor = "multi_thread")]
async fn past_the_grace_period_a_suspended_vm_is_terminated() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let host = env
        .start(&format!(
            "{}\n[operator.payment]\ngrace_secs = 1\n",
            aws_section(&env)
        ))
        .await;
    let moto = Moto::new();
    let id = unique_id("pay-grace");
    let mut req = request(&id);
    req.ttl_secs = Some(1);
    let rec = host
        .deploy_with(req, vec![aws_target(0.0104)], &fast())
        .await
        .unwrap();
    let instance = rec.instance_id.unwrap();
    let opts = SupervisorOptions {
        deploy: fast(),
        ..SupervisorOptions::default()
    };
    tokio::time::sleep(Duration::from_millis(2100)).await;
    host.cleanup_once(&opts).await;
    assert_eq!(
        host.tracker().get(&id).unwrap().status,
        DeploymentStatus::Suspended
    );
    assert_eq!(moto.state(&instance).await, "stopped");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (done, errors) = host.cleanup_once(&opts).await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(done, std::slice::from_ref(&id));
    let rec = host.tracker().get(&id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Terminated);
    assert_eq!(moto.state(&instance).await, "terminated");
    let h = history(&host, &id);
    assert!(
        h.iter().any(|l| l.contains("suspended -> terminating")
            && l.contains("grace period of 1 s ended without a renewal")),
        "{h:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_without_power_is_terminated_at_expiry_even_with_a_grace_period() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start(
            "[providers.well_behaved.settings]\naddress = \"127.0.0.1\"\n\
             [operator.payment]\ngrace_secs = 3600\n",
        )
        .await;
    assert!(!host.provider("well_behaved").unwrap().supports_power());
    let id = unique_id("pay-nopower");
    let mut req = request(&id);
    req.ttl_secs = Some(1);
    host.deploy_with(req, vec![wb_target(0.02)], &fast())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (done, errors) = host
        .cleanup_once(&SupervisorOptions {
            deploy: fast(),
            ..SupervisorOptions::default()
        })
        .await;
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(done, std::slice::from_ref(&id));
    let h = history(&host, &id);
    assert!(
        h.iter()
            .any(|l| l.contains("not suspended: provider well_behaved cannot stop instances")),
        "{h:#?}"
    );
}

/// `[operator.kubernetes]` with cluster `kmock-a` on the kmock stand-in.
pub(crate) fn kmock_cluster_section(env: &TestEnv) -> String {
    let url = crate::kubernetes::kmock_url();
    let path = env.dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n\
             - name: a\n  cluster:\n    server: {url}\n\
             contexts:\n- name: a\n  context:\n    cluster: a\n    user: tester\n\
             users:\n- name: tester\n  user:\n    token: test-token\n"
        ),
    )
    .unwrap();
    format!(
        "[operator.kubernetes]\nclusters = [ {{ name = \"kmock-a\", kubeconfig = {path:?}, context = \"a\" }} ]\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubernetes_deployment_is_scaled_to_zero_at_expiry_and_back_at_renewal() {
    use blueprint_remote_providers::kubernetes::Tier;

    let env = TestEnv::new();
    let host = env
        .start(&format!(
            "{}\n[operator.payment]\ngrace_secs = 3600\n\
             [operator.costs.clusters.kmock-a]\nhourly_usd = 0.8\nvcpus = 8\nmemory_gib = 32\n",
            kmock_cluster_section(&env)
        ))
        .await;
    let service = crate::kubernetes::unique_service();
    let mut req = crate::kubernetes::request(service, "kmock-a", Tier::Standard);
    req.ttl_secs = Some(1);
    let ns = format!("bpr-7-{service}");
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let ctl = crate::kubernetes::controller(client, ns);
    let rec = host
        .deploy_with(req, vec![], &crate::kubernetes::fast())
        .await
        .expect("deploys on kmock");
    assert_eq!(rec.status, DeploymentStatus::Active);
    // Standard is 2 x 500m of the cluster's 8 vCPUs: 1/8 of 0.80 USD/h.
    assert_eq!(rec.hourly_usd, Some(0.1));
    let mut events = host.subscribe();
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let opts = SupervisorOptions {
        deploy: crate::kubernetes::fast(),
        ..SupervisorOptions::default()
    };
    let (done, errors) = host.cleanup_once(&opts).await;
    assert!(done.is_empty() && errors.is_empty(), "{done:?} {errors:?}");
    let rec = host.tracker().get(&rec.id).unwrap();
    assert_eq!(rec.status, DeploymentStatus::Suspended);
    let w = host.workload_status(&rec.id).await.unwrap();
    assert_eq!((w.desired, w.current), (0, 0), "scaled to zero");
    let usage = host.tracker().usage_of(&rec.id).unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].hourly_usd, Some(0.1));
    assert!(
        usage[0].ended_at.is_some(),
        "nothing accrues while scaled to zero"
    );

    let renewed = host
        .renew(&rec.id, Some(3600), &crate::kubernetes::fast())
        .await
        .expect("renews");
    assert_eq!(renewed.status, DeploymentStatus::Active);
    let w = host.workload_status(&rec.id).await.unwrap();
    assert_eq!((w.desired, w.ready), (2, 2), "back to its tier");
    assert!(
        host.tracker()
            .usage_of(&rec.id)
            .unwrap()
            .last()
            .unwrap()
            .ended_at
            .is_none()
    );
    assert_eq!(
        drain(&mut events, &rec.id),
        ["expired", "suspended", "renewed", "running"]
    );
    let h = history(&host, &rec.id);
    assert!(
        h.iter()
            .any(|l| l.starts_with("active -> suspended: scaled to zero")),
        "{h:#?}"
    );
    assert!(
        h.iter()
            .any(|l| l.starts_with("suspended -> active: scaled back to its tier")),
        "{h:#?}"
    );

    let done = host.terminate(&rec.id).await.expect("terminates");
    ctl.abort();
    assert_eq!(done.status, DeploymentStatus::Terminated);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubernetes_rollout_that_stops_being_available_is_unhealthy_after_n_checks_and_healed_by_restarting_its_pods()
 {
    use blueprint_remote_providers::kubernetes::{RESTARTED_AT, Tier};
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};

    let env = TestEnv::new();
    let host = env
        .start(&format!(
            "{}\n[operator.health]\nfailures_before_unhealthy = 2\nauto_heal = true\n",
            kmock_cluster_section(&env)
        ))
        .await;
    let service = crate::kubernetes::unique_service();
    let req = crate::kubernetes::request(service, "kmock-a", Tier::Standard);
    let client = host.cluster("kmock-a").await.unwrap().client().clone();
    let ctl = crate::kubernetes::controller(client.clone(), format!("bpr-7-{service}"));
    let opts = crate::kubernetes::fast();
    let rec = host
        .deploy_with(req, vec![], &opts)
        .await
        .expect("deploys on kmock");
    let id = rec.id.clone();
    let target = rec.kubernetes.clone().unwrap();
    let mut events = host.subscribe();
    let mut watch = HealthWatch::default();
    let r = host.health_pass(&mut watch, &opts).await;
    assert!(
        r.checked.contains(&id) && r.unhealthy.is_empty(),
        "healthy once rolled out: {r:?}"
    );

    // Its pods stop being ready (they crash, say): the controller has observed
    // this generation, so nothing changes by itself.
    let deployments: Api<Deployment> = Api::namespaced(client, &target.namespace);
    let generation = deployments
        .get(&target.name)
        .await
        .unwrap()
        .metadata
        .generation
        .unwrap();
    deployments
        .patch_status(
            &target.name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"observedGeneration": generation,
                "replicas": 2, "updatedReplicas": 2, "readyReplicas": 0, "availableReplicas": 0,
                "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                    "message": "Deployment does not have minimum availability."}]}})),
        )
        .await
        .unwrap();
    let first = host.health_pass(&mut watch, &opts).await;
    assert!(
        first.unhealthy.is_empty(),
        "one failure is not enough: {first:?}"
    );
    assert_eq!(watch.failures(&id), 1);
    let second = host.health_pass(&mut watch, &opts).await;
    assert_eq!(second.unhealthy.len(), 1, "{second:?}");
    let why = &second.unhealthy[0].1;
    assert!(
        why.contains("2 consecutive failed check(s), last: not available")
            && why.contains("Available=False"),
        "{why}"
    );
    assert_eq!(second.healed.len(), 1, "auto-heal restarted it: {second:?}");

    // New pods: the template is stamped (generation moved) and rolled out.
    let now = deployments.get(&target.name).await.unwrap();
    assert!(now.metadata.generation.unwrap() > generation);
    let stamped = now
        .spec
        .template
        .metadata
        .and_then(|m| m.annotations)
        .and_then(|a| a.get(RESTARTED_AT).cloned());
    assert!(stamped.is_some(), "the pod template carries {RESTARTED_AT}");
    let w = host.workload_status(&id).await.unwrap();
    assert!(w.rolled_out() && w.ready == 2, "{}", w.describe());
    assert_eq!(
        host.tracker().get(&id).unwrap().status,
        DeploymentStatus::Active
    );

    let h = history(&host, &id);
    let pos = |needle: &str| {
        h.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in the history: {h:#?}"))
    };
    assert!(pos("unhealthy: 2 consecutive failed check(s)") < pos("healing ("));
    assert!(pos("healing (") < pos("re-applied and its pods restarted"));
    assert!(
        pos("re-applied and its pods restarted") < pos("healed ("),
        "{h:#?}"
    );
    assert_eq!(
        drain(&mut events, &id),
        ["unhealthy", "replacing", "replaced"]
    );

    // Healthy from now on.
    let third = host.health_pass(&mut watch, &opts).await;
    assert!(
        third.checked.contains(&id) && third.unhealthy.is_empty() && third.healed.is_empty(),
        "{third:?}"
    );
    let done = host.terminate(&id).await.expect("terminates");
    ctl.abort();
    assert_eq!(done.status, DeploymentStatus::Terminated);
}

/// Pids of the deploy user's processes whose command line has `needle`.
fn remote_pids(needle: &str) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-u", "deploy", "-f", needle])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssh_workload_whose_http_check_fails_is_unhealthy_after_n_checks_and_restarted_in_place_leaving_nothing_behind()
 {
    use blueprint_remote_providers::placement::Request;

    use crate::orchestrate::{
        dep_dir, echo_server_download, native, ranked, remote_procs, ssh_host_section, sshd_lock,
        start_async, store_capacity,
    };

    let _serial = sshd_lock().await;
    let env = TestEnv::new();
    env.add("ssh");
    store_capacity(&env, "rack1", 4.0, 8.0);
    let (server, sha) = echo_server_download(&env).await;
    let host = start_async(
        &env,
        &format!(
            "[providers.ssh]\nallow_ssh = true\ncall_timeout_ms = 120000\n{}\n\
             [operator.health]\nfailures_before_unhealthy = 2\nauto_heal = true\n",
            ssh_host_section("rack1", None)
        ),
    )
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let id = unique_id("ssh-heal");
    let mut req = ranked(Request {
        min_vcpus: 0.5,
        min_memory_gib: 0.5,
        ..Request::default()
    });
    req.deployment_id = Some(id.clone());
    req.workload = Some(native(server.url("/echo_server"), sha, port));
    req.health = Some(HealthCheck {
        port,
        path: Some("/healthz".into()),
    });
    let rec = host
        .orchestrator()
        .deploy_with(req, vec![], &fast())
        .await
        .expect("deploys on the sshd stand-in");
    assert_eq!(
        (rec.provider.as_deref(), rec.instance_type.as_deref()),
        (Some("ssh"), Some("rack1"))
    );
    let instance = rec.instance_id.clone().unwrap();
    let needle = format!("{port} ranked");
    let old_pids = remote_pids(&needle);
    assert_eq!(old_pids.len(), 1, "one workload process: {old_pids:?}");
    let mut events = host.subscribe();
    let mut watch = HealthWatch::default();

    // The process keeps running, but its HTTP check answers 500 from now on.
    let health = format!("http://127.0.0.1:{port}/healthz");
    reqwest::get(format!("http://127.0.0.1:{port}/bpr-test/fail"))
        .await
        .unwrap();
    assert_eq!(reqwest::get(&health).await.unwrap().status(), 500);
    let first = host.health_pass(&mut watch, &fast()).await;
    assert!(
        first.checked.contains(&id) && first.unhealthy.is_empty(),
        "one failure is not enough: {first:?}"
    );
    assert_eq!(watch.failures(&id), 1);
    let second = host.health_pass(&mut watch, &fast()).await;
    assert_eq!(second.unhealthy.len(), 1, "{second:?}");
    let why = &second.unhealthy[0].1;
    assert!(
        why.contains("2 consecutive failed check(s)") && why.contains(&health),
        "{why}"
    );
    assert_eq!(
        second.healed,
        [(id.clone(), instance.clone())],
        "restarted in place on its machine: {second:?}"
    );

    // A new process answers; the old one is gone.
    let new_pids = remote_pids(&needle);
    assert_eq!(new_pids.len(), 1, "one workload process: {new_pids:?}");
    assert_ne!(new_pids, old_pids, "the workload was restarted");
    assert_eq!(reqwest::get(&health).await.unwrap().status(), 200);
    let now = host.tracker().get(&id).unwrap();
    assert_eq!(now.status, DeploymentStatus::Active);
    assert_eq!(now.instance_id.as_deref(), Some(instance.as_str()));

    // The history says why, at every step.
    let h = history(&host, &id);
    let pos = |needle: &str| {
        h.iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in the history: {h:#?}"))
    };
    assert!(pos("unhealthy: 2 consecutive failed check(s)") < pos("healing ("));
    assert!(pos("healing (") < pos("restarting in place on ssh/lab/rack1"));
    assert!(
        pos("restarting in place on ssh/lab/rack1") < pos("healed ("),
        "{h:#?}"
    );
    let seen = drain(&mut events, &id);
    assert_eq!(
        seen[..3],
        ["unhealthy", "replacing", "replaced"],
        "{seen:?}"
    );
    // The ledger: the old workload's period closed at its removal, the new one's open.
    let usage = host.tracker().usage_of(&id).unwrap();
    assert_eq!(usage.len(), 2, "{usage:?}");
    assert_eq!(
        usage[0].end_reason.as_deref(),
        Some("deleted: restarted in place by a heal")
    );
    assert!(usage[1].ended_at.is_none() && usage[1].instance_id == instance);

    // Healthy from now on.
    let third = host.health_pass(&mut watch, &fast()).await;
    assert!(
        third.checked.contains(&id) && third.unhealthy.is_empty() && third.healed.is_empty(),
        "{third:?}"
    );
    let done = host.terminate(&id).await.expect("terminates");
    assert_eq!(done.status, DeploymentStatus::Terminated);
    assert_eq!(remote_procs(&needle), 0, "nothing runs");
    assert!(!dep_dir(&id).exists(), "nothing is left on the host");
    host.shutdown().await;
}
