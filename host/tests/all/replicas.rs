//! Issue 17 items 2, 3 and 5: several real `bpr serve` replicas on one
//! database, the real `aws` component under wasmtime against moto
//! (`scripts/standins/moto.sh start`). Every replica reaches moto through a
//! proxy of its own that records each EC2 call it forwards, so a test can
//! count what each replica did to the cloud (every `TerminateInstances`, by
//! instance id). Leases are short (config keys `[coordination] lease_ms`,
//! `renew_ms`) so a takeover takes seconds.
//!
//! The replicas share one PostgreSQL database when the stand-in runs
//! (`scripts/standins/postgres.sh start` exports `BPR_TEST_DATABASE_URL`;
//! required under `CI=true`), else one SQLite file. Most tests share one
//! state directory, hence one directory of per-deployment OS locks: replicas
//! on one host. The `on_pods` tests give each replica its own state directory,
//! as separate pods have: only the per-deployment leases in PostgreSQL keep
//! them apart (see the README, "Running several replicas").
//!
//! Also here: the Kubernetes manifests for bpr itself (`deploy/kubernetes/`)
//! validate strictly against the Kubernetes schemas, and their `bpr.toml` is
//! a config bpr accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::deploy::{Action, Moto, Proxy};
use crate::lifecycle::moto_url;
use crate::postgres::PgDatabase;
use crate::serve::{Serve, write_config};
use crate::support::{TestEnv, moto_lock};

/// The supervisor lease and its renewal interval in these tests.
const LEASE_MS: u64 = 2000;
const RENEW_MS: u64 = 400;

/// One EC2 call a replica made: its `Action` and the `InstanceId.N` it named.
type Call = (String, Vec<String>);

/// The EC2 calls of one replica, recorded by its proxy in front of moto.
struct Calls {
    proxy: Proxy,
    seen: Arc<Mutex<Vec<Call>>>,
}

/// `Action` and `InstanceId.N` of a form-encoded EC2 query body.
fn parse_call(body: &str) -> Call {
    let mut action = String::new();
    let mut ids = Vec::new();
    for pair in body.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if k == "Action" {
            action = v.to_string();
        } else if k.starts_with("InstanceId.") {
            ids.push(v.to_string());
        }
    }
    (action, ids)
}

impl Calls {
    async fn start(moto: &str) -> Self {
        let seen: Arc<Mutex<Vec<Call>>> = Default::default();
        let sink = seen.clone();
        let proxy = Proxy::start(
            moto.to_string(),
            Arc::new(move |_: usize, body: &str| {
                sink.lock().unwrap().push(parse_call(body));
                Action::Forward
            }),
        )
        .await;
        Self { proxy, seen }
    }

    fn all(&self) -> Vec<Call> {
        self.seen.lock().unwrap().clone()
    }

    /// Instance ids named by every `TerminateInstances` call, one entry per call.
    fn terminated(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|(a, _)| a == "TerminateInstances")
            .flat_map(|(_, ids)| ids)
            .collect()
    }
}

/// Calls that change something in the cloud (anything but a read).
fn mutating(calls: &[Call]) -> Vec<Call> {
    calls
        .iter()
        .filter(|(a, _)| {
            !(a.starts_with("Describe") || a.starts_with("List") || a.starts_with("Get"))
        })
        .cloned()
        .collect()
}

/// `n` replicas of `bpr serve` sharing `env`'s state directory, each with its
/// own config file naming its own proxy.
struct Replicas {
    /// Dropped after the replicas (fields drop in order): the database
    /// outlives its clients.
    serves: Vec<Serve>,
    _pg: Option<PgDatabase>,
    _env: TestEnv,
    calls: Vec<Calls>,
    /// Replicas stopped (SIGSTOP) or killed: not asked anything.
    down: BTreeSet<usize>,
}

impl Replicas {
    async fn start(n: usize, extra: &str) -> Self {
        Self::start_with(n, extra, false).await
    }

    /// `n` replicas as in separate pods: each with a state directory (hence
    /// per-deployment OS locks) of its own, sharing only PostgreSQL; `None`
    /// (skipped) without the PostgreSQL stand-in.
    async fn on_pods(n: usize) -> Option<Self> {
        if std::env::var("BPR_TEST_DATABASE_URL").is_err() {
            // PgDatabase::create says why (and fails under CI=true).
            let _ = PgDatabase::create(TestEnv::new().dir.path());
            return None;
        }
        Some(Self::start_with(n, "", true).await)
    }

    async fn start_with(n: usize, extra: &str, pods: bool) -> Self {
        let env = TestEnv::new();
        // One PostgreSQL database of the test's own, when the stand-in runs.
        let pg = PgDatabase::create(env.dir.path());
        let (host_line, database) = pg.as_ref().map(|p| p.config_lines()).unwrap_or_default();
        let mut calls = Vec::new();
        let mut configs = Vec::new();
        for i in 0..n {
            let c = Calls::start(&moto_url()).await;
            let shared = write_config(
                &env,
                &c.proxy.url(),
                "warn",
                &format!(
                    "[coordination]\nlease_ms = {LEASE_MS}\nrenew_ms = {RENEW_MS}\n\
                     [operator.health]\ninterval_secs = 3600\n{extra}"
                ),
            );
            let own = env.dir.path().join(format!("bpr-{i}.toml"));
            let mut text = std::fs::read_to_string(&shared).unwrap().replacen(
                "[host]\n",
                &format!("[host]\n{host_line}"),
                1,
            );
            if pods {
                let own_state = env.state.join(format!("pod-{i}"));
                text = text.replacen(
                    &format!("state_dir = {:?}", env.state),
                    &format!("state_dir = {own_state:?}"),
                    1,
                );
                assert!(text.contains(&format!("{own_state:?}")), "{text}");
            }
            std::fs::write(&own, format!("{text}\n{database}")).unwrap();
            configs.push(own);
            calls.push(c);
        }
        let serves: Vec<Serve> = configs.iter().map(|c| Serve::start(c)).collect();
        for s in &serves {
            s.ready().await;
        }
        Self {
            serves,
            _pg: pg,
            _env: env,
            calls,
            down: BTreeSet::new(),
        }
    }

    fn up(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.serves.len()).filter(|i| !self.down.contains(i))
    }

    /// `/readyz` of replica `i`.
    async fn readyz(&self, i: usize) -> Value {
        let (code, v) = self.serves[i].get("/readyz").await;
        assert_eq!(code, 200, "replica {i}: {v}");
        v
    }

    /// The replicas (among those up) whose `/readyz` says they lead.
    async fn leaders(&self) -> Vec<usize> {
        let mut out = Vec::new();
        for i in self.up() {
            if self.readyz(i).await["leader"] == true {
                out.push(i);
            }
        }
        out
    }

    /// Waits until exactly one replica up leads; which one.
    async fn one_leader(&self, within: Duration) -> usize {
        let t0 = Instant::now();
        loop {
            let l = self.leaders().await;
            if l.len() == 1 {
                return l[0];
            }
            assert!(
                t0.elapsed() < within,
                "leaders after {within:?}: {l:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        self.serves
            .iter()
            .enumerate()
            .map(|(i, s)| format!("--- replica {i}\n{}", s.log()))
            .collect()
    }

    /// Every deployment of Blueprint `bp`, asked of replica `via`.
    async fn deployments(&self, via: usize, bp: &str) -> Vec<Value> {
        let (code, v) = self.serves[via]
            .get(&format!("/v1/deployments?blueprint_id={bp}&limit=1000"))
            .await;
        assert_eq!(code, 200, "{v}");
        v["deployments"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until Blueprint `bp` has `n` deployments, all `status`; them.
    async fn wait_all(
        &self,
        via: usize,
        bp: &str,
        n: usize,
        status: &str,
        within: Duration,
    ) -> Vec<Value> {
        let t0 = Instant::now();
        loop {
            let deps = self.deployments(via, bp).await;
            let mut by: BTreeMap<String, usize> = BTreeMap::new();
            for d in &deps {
                *by.entry(d["status"].as_str().unwrap_or("?").to_string())
                    .or_default() += 1;
            }
            if deps.len() == n && by.get(status) == Some(&n) {
                return deps;
            }
            assert!(
                t0.elapsed() < within,
                "after {within:?}, {} deployment(s) of {bp}: {by:?}\n{}",
                deps.len(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Deploys `n` deployments of Blueprint `bp` living `ttl` s, request `i`
    /// sent to replica `i % replicas up`, all at once; their ids.
    async fn deploy_spread(&self, bp: &str, n: usize, ttl: u64) -> Vec<String> {
        let up: Vec<usize> = self.up().collect();
        let ids: Vec<String> = (0..n).map(|i| format!("rep-{bp}-{i}")).collect();
        let posts = ids.iter().enumerate().map(|(i, id)| {
            let serve = &self.serves[up[i % up.len()]];
            async move { serve.post("/v1/deployments", body(id, bp, i, ttl)).await }
        });
        for (code, v) in futures::future::join_all(posts).await {
            assert_eq!(code, 202, "{v}");
        }
        ids
    }

    /// Every `TerminateInstances` any replica made, by instance id.
    fn terminations(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for c in &self.calls {
            for id in c.terminated() {
                *out.entry(id).or_default() += 1;
            }
        }
        out
    }

    /// Terminate every deployment of `bp` through the API (spread over the
    /// replicas up) and wait until all are terminated.
    async fn terminate_all(&self, bp: &str, n: usize) {
        let up: Vec<usize> = self.up().collect();
        let deps = self.deployments(up[0], bp).await;
        let deletes = deps
            .iter()
            .enumerate()
            .filter(|(_, d)| d["status"] != "terminated")
            .map(|(i, d)| {
                let serve = &self.serves[up[i % up.len()]];
                let id = d["id"].as_str().unwrap().to_string();
                async move { delete(serve, &id).await }
            });
        for (code, v) in futures::future::join_all(deletes).await {
            assert!(code == 202 || code == 200, "{v}");
        }
        self.wait_all(up[0], bp, n, "terminated", Duration::from_secs(300))
            .await;
    }
}

/// `DELETE /v1/deployments/<id>` on one replica: its status and body.
async fn delete(serve: &Serve, id: &str) -> (u16, Value) {
    serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{id}"),
            None,
        )
        .await
}

/// Sends `DELETE /v1/deployments/<id>` of every deployment in `deps` to
/// every replica in `to`, all at once: each answer is a 202 (accepted), a
/// 200 (already over) or a 409 (busy), never an error.
async fn delete_everywhere(r: &Replicas, deps: &[Value], to: &[usize]) {
    let deletes = deps.iter().flat_map(|d| {
        let id = d["id"].as_str().unwrap().to_string();
        to.iter().map(move |&i| {
            let (serve, id) = (&r.serves[i], id.clone());
            async move { delete(serve, &id).await }
        })
    });
    for (code, v) in futures::future::join_all(deletes).await {
        assert!(code == 202 || code == 200 || code == 409, "{code}: {v}");
    }
}

/// Every instance in `instances` got exactly one `TerminateInstances`, from
/// whichever replica, and nothing else was terminated.
fn terminated_exactly_once(r: &Replicas, instances: &BTreeSet<String>) {
    let done = r.terminations();
    for i in instances {
        assert_eq!(done.get(i), Some(&1), "{i}: {done:?}\n{}", r.logs());
    }
    assert_eq!(done.len(), instances.len(), "{done:?}");
}

fn instances_of(deps: &[Value]) -> BTreeSet<String> {
    deps.iter()
        .map(|d| d["instance_id"].as_str().unwrap().to_string())
        .collect()
}

/// A deploy request on moto's t3.micro for Blueprint `bp`, service `i`.
fn body(id: &str, bp: &str, i: usize, ttl: u64) -> Value {
    json!({
        "deployment_id": id,
        "blueprint_id": bp,
        "service_id": i.to_string(),
        "ttl_secs": ttl,
        "workload": {"source": {"kind": "container", "image": "ghcr.io/example/app:1.2"}},
        "candidates": [{"provider": "aws", "region": "us-east-1", "instance_type": "t3.micro", "hourly_usd": 0.0104}]
    })
}

/// A Blueprint id of this run (moto keeps instances between runs).
fn blueprint() -> String {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000_000)
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_elect_one_leader_and_serve_100_deployments_spread_over_them() {
    let _moto = moto_lock().await;
    let r = Replicas::start(3, "").await;
    let leader = r.one_leader(Duration::from_secs(10)).await;
    // The others say who they are and that they follow.
    for i in r.up().filter(|&i| i != leader) {
        let v = r.readyz(i).await;
        assert_eq!(
            (v["ready"].clone(), v["leader"].clone()),
            (json!(true), json!(false)),
            "{v}"
        );
        assert!(v["replica"].is_string(), "{v}");
    }
    let (code, metrics) = r.serves[leader].get("/metrics").await;
    assert_eq!(code, 200);
    let text = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("bpr_supervisor_leader{") && l.ends_with(" 1")),
        "{text}"
    );

    let bp = blueprint();
    let ids = r.deploy_spread(&bp, 100, 3600).await;
    // Every replica serves every record, whoever deployed it.
    let deps = r
        .wait_all(1, &bp, 100, "active", Duration::from_secs(600))
        .await;
    assert_eq!(r.deployments(2, &bp).await.len(), 100);
    let moto = Moto::new();
    for id in &ids {
        assert_eq!(moto.live_instances_of(id).await.len(), 1, "{id}");
    }
    // Each replica created a third of them (one RunInstances per deployment).
    for (i, c) in r.calls.iter().enumerate() {
        let runs = c.all().iter().filter(|(a, _)| a == "RunInstances").count();
        assert!(
            (33..=34).contains(&runs),
            "replica {i} ran {runs} instance(s)"
        );
    }
    assert!(deps.iter().all(|d| d["instance_id"].is_string()));
    // Still one leader after all that.
    assert_eq!(r.leaders().await.len(), 1);
    r.terminate_all(&bp, 100).await;
    for id in &ids {
        assert!(moto.live_instances_of(id).await.is_empty(), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_service_event_sent_to_three_replicas_at_once_yields_one_deployment() {
    let _moto = moto_lock().await;
    let r = Replicas::start(3, "").await;
    let bp = blueprint();
    let path = format!("/v1/services/{bp}/1");
    let event = json!({
        "resource_requirements": {"cpu": 1.0, "memory_gb": 1.0, "storage_gb": 8.0, "gpu_count": null, "allow_spot": false},
        "artifact": {"ContainerImage": "ghcr.io/example/app:1.2"},
        "ttl_secs": 3600
    });
    let sends = r.serves.iter().map(|s| {
        let (path, event) = (format!("{path}/initiated"), event.clone());
        async move { s.post(&path, event).await }
    });
    for (code, v) in futures::future::join_all(sends).await {
        assert!(code == 202 || code == 200, "{v}");
    }
    let deps = r
        .wait_all(0, &bp, 1, "active", Duration::from_secs(180))
        .await;
    let id = deps[0]["id"].as_str().unwrap().to_string();
    // Every replica answers with that one deployment.
    for s in &r.serves {
        let (code, v) = s.get(&path).await;
        assert_eq!(
            (code, v["deployment"]["id"].as_str()),
            (200, Some(id.as_str())),
            "{v}"
        );
    }
    let runs: usize = r
        .calls
        .iter()
        .map(|c| c.all().iter().filter(|(a, _)| a == "RunInstances").count())
        .sum();
    assert_eq!(runs, 1, "one machine for one service");
    assert_eq!(Moto::new().live_instances_of(&id).await.len(), 1);
    r.terminate_all(&bp, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_leader_during_a_wave_of_30_expiring_deployments_terminates_each_exactly_once()
{
    let _moto = moto_lock().await;
    let mut r = Replicas::start(3, "").await;
    let leader = r.one_leader(Duration::from_secs(10)).await;
    let bp = blueprint();
    let ttl = 45;
    let ids = r.deploy_spread(&bp, 30, ttl).await;
    let deps = r
        .wait_all(
            (leader + 1) % 3,
            &bp,
            30,
            "active",
            Duration::from_secs(300),
        )
        .await;
    let instances: BTreeSet<String> = deps
        .iter()
        .map(|d| d["instance_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(instances.len(), 30);

    // The wave starts on the leader: kill it after its first termination.
    let t0 = Instant::now();
    while r.calls[leader].terminated().is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(ttl + 60),
            "the leader never terminated anything\n{}",
            r.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.serves[leader].signal("KILL");
    let killed = Instant::now();
    r.down.insert(leader);
    let before_kill = r.calls[leader].terminated().len();
    assert!(
        before_kill < 30,
        "the wave was over before the kill ({before_kill})"
    );

    let next = r.one_leader(Duration::from_secs(30)).await;
    let takeover = killed.elapsed();
    assert_ne!(next, leader);
    // Within the lease, plus a renewal round and the polling of /readyz.
    assert!(
        takeover <= Duration::from_millis(LEASE_MS + 2 * RENEW_MS + 1000),
        "takeover took {takeover:?}"
    );

    r.wait_all(next, &bp, 30, "terminated", Duration::from_secs(300))
        .await;
    // Exactly once: every instance of the wave, one TerminateInstances each,
    // whichever replica sent it; nothing else terminated.
    let done = r.terminations();
    for i in &instances {
        assert_eq!(done.get(i), Some(&1), "{i}: {done:?}");
    }
    assert_eq!(done.len(), 30, "{done:?}");
    let moto = Moto::new();
    for id in &ids {
        assert!(
            moto.live_instances_of(id).await.is_empty(),
            "{id} left an instance"
        );
    }
    eprintln!(
        "leader {leader} killed after {before_kill} termination(s); replica {next} led {takeover:?} later"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_paused_past_its_lease_does_not_act_when_it_resumes() {
    let _moto = moto_lock().await;
    let mut r = Replicas::start(3, "").await;
    let leader = r.one_leader(Duration::from_secs(10)).await;
    let bp = blueprint();
    let ttl = 25;
    let started = Instant::now();
    let ids = r.deploy_spread(&bp, 10, ttl).await;
    let deps = r
        .wait_all(
            (leader + 1) % 3,
            &bp,
            10,
            "active",
            Duration::from_secs(120),
        )
        .await;
    let instances: BTreeSet<String> = deps
        .iter()
        .map(|d| d["instance_id"].as_str().unwrap().to_string())
        .collect();
    // Paused shortly before the deployments expire, while it leads.
    let expiry = Duration::from_secs(ttl);
    if let Some(left) = expiry.checked_sub(started.elapsed() + Duration::from_secs(3)) {
        tokio::time::sleep(left).await;
    }
    r.serves[leader].signal("STOP");
    r.down.insert(leader);
    let next = r.one_leader(Duration::from_secs(30)).await;
    assert_ne!(next, leader);
    // The new leader terminates the wave while the old one sleeps, all of
    // it but, at most, the one deployment whose OS lock the old leader held
    // when it was paused (a check of an active deployment in its pass): a
    // stopped process keeps its locks until it runs again or dies.
    let t0 = Instant::now();
    loop {
        let deps = r.deployments(next, &bp).await;
        let ended = deps.iter().filter(|d| d["status"] == "terminated").count();
        if ended >= 9 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "{ended} of 10 terminated\n{}",
            r.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let paused = r.calls[leader].all().len();

    r.serves[leader].signal("CONT");
    r.down.remove(&leader);
    // It wakes: a call it was in finishes, its renewal fails, its pass finds
    // its term over at the next step; the new leader finishes the wave.
    r.wait_all(next, &bp, 10, "terminated", Duration::from_secs(120))
        .await;
    tokio::time::sleep(Duration::from_millis(LEASE_MS)).await;
    let settled = r.calls[leader].all().len();
    tokio::time::sleep(Duration::from_millis(3 * LEASE_MS)).await;
    let after = r.calls[leader].all();
    assert!(
        mutating(&after[paused..]).is_empty(),
        "the resumed old leader changed something: {:?}\n{}",
        mutating(&after[paused..]),
        r.logs()
    );
    assert_eq!(
        after.len(),
        settled,
        "the resumed old leader kept calling the cloud: {:?}",
        &after[settled..]
    );
    assert_eq!(r.readyz(leader).await["leader"], false);
    assert_eq!(r.leaders().await, [next]);
    let done = r.terminations();
    for i in &instances {
        assert_eq!(done.get(i), Some(&1), "{i}: {done:?}");
    }
    assert!(r.calls[leader].terminated().is_empty());
    let moto = Moto::new();
    for id in &ids {
        assert!(moto.live_instances_of(id).await.is_empty(), "{id}");
    }
}

/// `kubernetes-validate` from the kmock venv (`scripts/standins/kmock.sh install`).
fn validator() -> PathBuf {
    let path = std::env::var_os("BPR_K8S_VALIDATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../.standins/k8s/venv/bin/kubernetes-validate")
        });
    assert!(
        path.is_file(),
        "kubernetes-validate not found at {} — run `scripts/standins/kmock.sh install` or set BPR_K8S_VALIDATE",
        path.display()
    );
    path
}

fn manifests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// The Kubernetes objects of `deploy/kubernetes/` (every `.yaml` but the
/// kustomization, which is kustomize's input, not an object).
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifests_dir())
        .expect("deploy/kubernetes")
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn the_kubernetes_manifests_for_bpr_itself_validate_in_strict_mode() {
    let files = manifest_files();
    // The kustomization lists every object file, and only those.
    let kustomization =
        std::fs::read_to_string(manifests_dir().join("kustomization.yaml")).unwrap();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            kustomization.contains(&format!("- {name}")),
            "{name} not in kustomization.yaml"
        );
    }
    for version in ["1.33", "1.37"] {
        let out = Command::new(validator())
            .args(["--strict", "-k", version])
            .args(&files)
            .output()
            .expect("running kubernetes-validate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !text.contains("ERROR"),
            "{version}: {text}"
        );
        for kind in [
            "deployment/bpr",
            "poddisruptionbudget/bpr",
            "service/bpr",
            "configmap/bpr-config",
            "secret/bpr-api-token",
            "secret/bpr-database",
        ] {
            assert!(
                text.contains(&format!("resource {kind} against version {version}")),
                "{kind}: {text}"
            );
        }
    }
}

/// The `data` entry `key` of the ConfigMap in `file` (a block scalar).
fn configmap_entry(file: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let start = text
        .find(&format!("  {key}: |\n"))
        .unwrap_or_else(|| panic!("{key} not in {}", file.display()));
    text[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_bpr_toml_of_the_configmap_is_a_config_bpr_accepts_for_several_replicas() {
    let toml = configmap_entry(&manifests_dir().join("configmap.yaml"), "bpr.toml");
    let config = blueprint_remote_providers::config::Config::from_toml_str(&toml, "configmap.yaml")
        .unwrap_or_else(|e| panic!("{e}\n{toml}"));
    assert!(
        config.serve.open_probes,
        "the kubelet's probes carry no token"
    );
    assert!(
        !config.serve.listen.ip().is_loopback(),
        "the Service must reach it"
    );
    assert_eq!(config.coordination.lease, Duration::from_secs(15));
    // The paths it names are the ones the Deployment mounts.
    let deployment = std::fs::read_to_string(manifests_dir().join("deployment.yaml")).unwrap();
    for mount in ["/etc/bpr", "/run/bpr", "/var/lib/bpr/state"] {
        assert!(
            deployment.contains(&format!("mountPath: {mount}")),
            "{mount}"
        );
    }
    assert!(toml.contains("token_file = \"/run/bpr/api-token\""));
    // The database is reached over TLS checked against the CA the ConfigMap
    // carries (mounted with it under /etc/bpr), a placeholder until replaced.
    assert_eq!(
        config.database.tls.mode,
        Some(blueprint_remote_providers::db::TlsMode::VerifyFull)
    );
    assert_eq!(
        config.database.tls.ca_file.as_deref(),
        Some(Path::new("/etc/bpr/db-ca.pem"))
    );
    let ca = configmap_entry(&manifests_dir().join("configmap.yaml"), "db-ca.pem");
    assert!(ca.contains("REPLACE-ME"), "{ca}");
}

// Issue 17 item 2: replicas in separate pods share no OS lock; the
// per-deployment lease in PostgreSQL keeps two of them off one deployment.

#[tokio::test(flavor = "multi_thread")]
async fn deletes_of_30_deployments_each_sent_to_three_replicas_in_separate_pods_terminate_each_instance_once()
 {
    let _moto = moto_lock().await;
    let Some(r) = Replicas::on_pods(3).await else {
        return;
    };
    r.one_leader(Duration::from_secs(10)).await;
    let bp = blueprint();
    r.deploy_spread(&bp, 30, 3_600).await;
    let deps = r
        .wait_all(0, &bp, 30, "active", Duration::from_secs(300))
        .await;
    let instances = instances_of(&deps);
    assert_eq!(instances.len(), 30);
    delete_everywhere(&r, &deps, &[0, 1, 2]).await;
    r.wait_all(1, &bp, 30, "terminated", Duration::from_secs(300))
        .await;
    terminated_exactly_once(&r, &instances);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_leader_expiring_deployments_while_followers_delete_them_in_separate_pods_terminates_each_instance_once()
 {
    let _moto = moto_lock().await;
    let Some(r) = Replicas::on_pods(3).await else {
        return;
    };
    let leader = r.one_leader(Duration::from_secs(10)).await;
    let followers: Vec<usize> = r.up().filter(|&i| i != leader).collect();
    let bp = blueprint();
    let ttl = 40;
    let asked = Instant::now();
    r.deploy_spread(&bp, 30, ttl).await;
    let deps = r
        .wait_all(followers[0], &bp, 30, "active", Duration::from_secs(300))
        .await;
    let instances = instances_of(&deps);
    // The followers' DELETEs land as the leader's TTL cleanup starts.
    let expiry = Duration::from_secs(ttl);
    if let Some(wait) = expiry.checked_sub(asked.elapsed()) {
        tokio::time::sleep(wait).await;
    }
    delete_everywhere(&r, &deps, &followers).await;
    r.wait_all(leader, &bp, 30, "terminated", Duration::from_secs(300))
        .await;
    terminated_exactly_once(&r, &instances);
    let by_leader = r.calls[leader].terminated().len();
    eprintln!("leader terminated {by_leader} of 30, the followers the rest");
}

// The resumed replica's tracker writes are fenced (it logs `Fenced`), and so
// are the requests of the provider calls it was in the middle of when it was
// paused (create-instance: CreateSecurityGroup, then RunInstances...): each
// checks the deployment's lease right before it leaves (capabilities' fence),
// so none reaches the cloud after SIGCONT.
#[tokio::test(flavor = "multi_thread")]
async fn a_replica_paused_mid_deploy_past_its_leases_makes_no_cloud_call_and_no_write_after_it_resumes()
 {
    let _moto = moto_lock().await;
    let Some(mut r) = Replicas::on_pods(3).await else {
        return;
    };
    let leader = r.one_leader(Duration::from_secs(10)).await;
    // A follower deploys: its own supervisor does nothing meanwhile.
    let f = (leader + 1) % 3;
    let bp = blueprint();
    for i in 0..5 {
        let id = format!("rep-{bp}-{i}");
        let (code, v) = r.serves[f]
            .post("/v1/deployments", body(&id, &bp, i, 3_600))
            .await;
        assert_eq!(code, 202, "{v}");
    }
    // Paused as soon as it created an instance: mid-deploy, holding leases.
    let t0 = Instant::now();
    while !r.calls[f].all().iter().any(|(a, _)| a == "RunInstances") {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no RunInstances\n{}",
            r.logs()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.serves[f].signal("STOP");
    r.down.insert(f);
    // A request it had already written reaches the proxy now, not later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused = r.calls[f].all().len();

    // Its leases lapse; the leader's recovery takes each deployment over
    // and settles it (adopted, or failed and cleaned up).
    let t0 = Instant::now();
    let settled = loop {
        let deps = r.deployments(leader, &bp).await;
        let in_flight = deps
            .iter()
            .filter(|d| {
                !matches!(
                    d["status"].as_str(),
                    Some("active" | "failed" | "terminated")
                )
            })
            .count();
        if deps.len() == 5 && in_flight == 0 {
            break deps;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "{in_flight} of {} still in flight\n{}",
            deps.len(),
            r.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let snapshot = |deps: &[Value]| -> Vec<(String, String, i64)> {
        deps.iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap_or_default().to_string(),
                    d["status"].as_str().unwrap_or_default().to_string(),
                    d["updated_at"].as_i64().unwrap_or_default(),
                )
            })
            .collect()
    };
    let before = snapshot(&settled);

    r.serves[f].signal("CONT");
    r.down.remove(&f);
    tokio::time::sleep(Duration::from_millis(3 * LEASE_MS)).await;
    let after = r.calls[f].all();
    assert!(
        mutating(&after[paused..]).is_empty(),
        "the resumed replica changed something in the cloud: {:?}\n{}",
        mutating(&after[paused..]),
        r.logs()
    );
    assert_eq!(
        snapshot(&r.deployments(leader, &bp).await),
        before,
        "the resumed replica wrote to a record\n{}",
        r.logs()
    );
    let log = r.serves[f].log();
    assert!(
        log.contains("no longer holds the deployment's lease")
            || log.contains("lapsed or was taken"),
        "the resumed replica did not notice it was fenced\n{log}"
    );
    // Whatever was created is accounted for: one TerminateInstances at most.
    for (i, n) in r.terminations() {
        assert_eq!(n, 1, "{i}");
    }
}
