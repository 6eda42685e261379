//! `bpr serve` under load, measured as the operator runs it: the release
//! binary as its own process, over real HTTP, the real `aws` component against
//! moto. Run with
//!
//! ```sh
//! eval "$(MOTO_PORT=5000 scripts/standins/moto.sh start)"
//! RUST_BACKTRACE=0 cargo bench -p blueprint-remote-providers --bench serve
//! ```
//!
//! 1. **Status reads with 10,000 records**: the database is seeded with
//!    10,000 ended deployments (what a long-running service accumulates),
//!    then `GET /v1/deployments/{id}` of random ids: one client in sequence
//!    (latency), then 16 concurrent clients (throughput); a list page and a
//!    metrics scrape for comparison.
//! 2. **200 deployments in flight**: 200 `POST /v1/deployments` at once, each
//!    a real deploy on moto's EC2 (create-instance, wait for running), then
//!    200 terminations; throughput, and the process's peak RSS (`VmHWM`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use blueprint_remote_providers::Config;
use blueprint_remote_providers::tracking::{DeploymentStatus, NewDeployment, Tracker};
use serde_json::{Value, json};

#[path = "support/serve_process.rs"]
mod serve_process;
use serve_process::{Serve, TOKEN, load_average, ready, start};

const RECORDS: usize = 10_000;
const IN_FLIGHT: usize = 200;

/// A providers dir with the shipped aws component, the token file and the
/// config, under `dir`.
fn setup(dir: &Path, moto: &str) -> PathBuf {
    let providers = dir.join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::copy(
        Path::new(blueprint_remote_providers::config::BUILTIN_PROVIDERS_DIR).join("aws.wasm"),
        providers.join("aws.wasm"),
    )
    .unwrap();
    let creds = dir.join("aws-credentials");
    std::fs::write(
        &creds,
        "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = bpr-bench\n",
    )
    .unwrap();
    let token = dir.join("api-token");
    std::fs::write(&token, TOKEN).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The credential signs only for the stand-in the component talks to.
    let signed_host = moto.split_once("://").map_or(moto, |(_, h)| h);
    let config = dir.join("bpr.toml");
    std::fs::write(
        &config,
        format!(
            "[host]\nproviders_dir = {providers:?}\nstate_dir = {:?}\nintegrity = \"warn\"\n\
             [serve]\nlisten = \"127.0.0.1:0\"\ntoken_file = {token:?}\n\
             [providers.aws]\nallow = [{moto:?}]\ncall_timeout_ms = 60000\n\
             [providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {moto:?}\n\
             image_owner = \"amazon\"\nimage_name_filter = \"amzn2-ami-hvm-*-x86_64-gp2\"\n\
             [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {creds:?}\nprofile = \"default\"\n\
             hosts = [{signed_host:?}]\n",
            dir.join("state"),
        ),
    )
    .unwrap();
    config
}

/// (VmHWM, VmRSS) of `pid` in MiB.
fn memory(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmHWM:") / 1024.0, kib("VmRSS:") / 1024.0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, mut d: Vec<Duration>, wall: Duration) {
    d.sort();
    println!(
        "{name}: n={} p50={:.0} us p90={:.0} us p99={:.0} us max={:.0} us; {:.0} req/s",
        d.len(),
        pct(&d, 0.5).as_secs_f64() * 1e6,
        pct(&d, 0.9).as_secs_f64() * 1e6,
        pct(&d, 0.99).as_secs_f64() * 1e6,
        d.last().unwrap().as_secs_f64() * 1e6,
        d.len() as f64 / wall.as_secs_f64()
    );
}

/// One authenticated GET, read to the end; how long it took.
async fn timed_get(http: reqwest::Client, url: String) -> Duration {
    let t = Instant::now();
    let r = http.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let _ = r.bytes().await.unwrap();
    t.elapsed()
}

/// Sends SIGTERM and waits for the exit; the time it took.
fn stop(mut serve: Serve) -> Duration {
    let t0 = Instant::now();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(serve.child.id().to_string())
        .status();
    let status = serve.child.wait().unwrap();
    assert!(status.success(), "bpr serve exited with {status}");
    t0.elapsed()
}

async fn status_reads(moto: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), moto);
    // Seed through the tracker, as the service itself writes them.
    let cfg = Config::load(Some(&config)).unwrap();
    std::fs::create_dir_all(&cfg.host.state_dir).unwrap();
    let db = blueprint_remote_providers::Database::open(&cfg.database_path()).unwrap();
    let tracker = Tracker::new(db, &cfg.host.state_dir.join("deployments"));
    let t0 = Instant::now();
    let ids: Vec<String> = (0..RECORDS).map(|i| format!("dep-bench-{i:05}")).collect();
    for (i, id) in ids.iter().enumerate() {
        tracker
            .create(&NewDeployment {
                id: id.clone(),
                blueprint_id: format!("{}", i % 50),
                service_id: format!("{i}"),
                request_json: "{}".into(),
                ..NewDeployment::default()
            })
            .unwrap();
        for (to, why) in [
            (DeploymentStatus::Provisioning, "trying 1 candidate(s)"),
            (DeploymentStatus::Provisioned, "instance i-0 running"),
            (DeploymentStatus::Deploying, "workload starting"),
            (DeploymentStatus::Active, "running"),
            (DeploymentStatus::Terminating, "TTL expired"),
            (DeploymentStatus::Terminated, "deleted"),
        ] {
            tracker.transition(id, to, why).unwrap();
        }
    }
    println!(
        "seeded {RECORDS} records (7 transitions each) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    drop(tracker);

    let serve = start(&config);
    let pid = serve.child.id();
    let http = reqwest::Client::new();
    ready(&http, &serve.url).await;
    let base = serve.url.clone();
    let get = move |path: String| timed_get(http.clone(), format!("{base}{path}"));
    // Warm-up: connection, page cache, prepared statements.
    for i in 0..500 {
        get(format!("/v1/deployments/{}", ids[(i * 7919) % RECORDS])).await;
    }
    let mut seq = Vec::new();
    let t0 = Instant::now();
    for i in 0..5000 {
        seq.push(get(format!("/v1/deployments/{}", ids[(i * 104_729) % RECORDS])).await);
    }
    report(
        "GET /v1/deployments/{id}, 1 client, 10,000 records",
        seq,
        t0.elapsed(),
    );
    let t0 = Instant::now();
    let tasks: Vec<_> = (0..16)
        .map(|c| {
            let get = get.clone();
            let ids = ids.clone();
            tokio::spawn(async move {
                let mut v = Vec::new();
                for i in 0..1000 {
                    v.push(
                        get(format!(
                            "/v1/deployments/{}",
                            ids[(c * 1000 + i * 7) % RECORDS]
                        ))
                        .await,
                    );
                }
                v
            })
        })
        .collect();
    let mut par = Vec::new();
    for t in tasks {
        par.extend(t.await.unwrap());
    }
    report(
        "GET /v1/deployments/{id}, 16 clients, 10,000 records",
        par,
        t0.elapsed(),
    );
    // Every page of 100, walked with the `next` cursor.
    let mut pages = Vec::new();
    let mut after = String::new();
    let t0 = Instant::now();
    loop {
        let t = Instant::now();
        let v: Value = reqwest::Client::new()
            .get(format!("{}/v1/deployments?limit=100{after}", serve.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages.push(t.elapsed());
        match v["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
    }
    // A full last page still names a `next`, which then reads empty.
    assert!((RECORDS / 100..=RECORDS / 100 + 1).contains(&pages.len()));
    report(
        "GET /v1/deployments?limit=100 (a page)",
        pages,
        t0.elapsed(),
    );
    let mut scrapes = Vec::new();
    let t0 = Instant::now();
    for _ in 0..100 {
        scrapes.push(get("/metrics".into()).await);
    }
    report("GET /metrics, 10,000 records", scrapes, t0.elapsed());
    let (hwm, rss) = memory(pid);
    println!("memory after reads: peak RSS {hwm:.1} MiB, RSS {rss:.1} MiB");
    println!("stop (SIGTERM, idle): {:.2} s", stop(serve).as_secs_f64());
}

async fn deploys_in_flight(moto: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), moto);
    let serve = start(&config);
    let pid = serve.child.id();
    let http = reqwest::Client::new();
    ready(&http, &serve.url).await;
    let (hwm0, rss0) = memory(pid);
    println!("memory when ready: peak RSS {hwm0:.1} MiB, RSS {rss0:.1} MiB");
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let ids: Vec<String> = (0..IN_FLIGHT)
        .map(|i| format!("dep-bench-{run}-{i}"))
        .collect();
    let body = |id: &str| {
        json!({
            "deployment_id": id, "blueprint_id": "7", "service_id": id,
            "ttl_secs": 3600,
            "workload": {"source": {"kind": "container", "image": "ghcr.io/example/app:1.2",
                "ports": [{"container_port": 80, "host_port": 8080}]}},
            "candidates": [{"provider": "aws", "region": "us-east-1", "instance_type": "t3.micro", "hourly_usd": 0.0104}]
        })
    };
    let t0 = Instant::now();
    let posts: Vec<_> = ids
        .iter()
        .map(|id| {
            let (http, url, b) = (http.clone(), serve.url.clone(), body(id));
            tokio::spawn(async move {
                let t = Instant::now();
                let r = http
                    .post(format!("{url}/v1/deployments"))
                    .bearer_auth(TOKEN)
                    .json(&b)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
                t.elapsed()
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for p in posts {
        accepted.push(p.await.unwrap());
    }
    report(
        "POST /v1/deployments (202), 200 at once",
        accepted,
        t0.elapsed(),
    );
    let count = |status: &'static str| {
        let (http, url) = (http.clone(), serve.url.clone());
        async move {
            let v: Value = http
                .get(format!("{url}/v1/deployments?status={status}&limit=1000"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["deployments"].as_array().unwrap().len()
        }
    };
    let mut peak_in_flight = 0;
    let mut peak_rss: f64 = 0.0;
    loop {
        let v: Value = http
            .get(format!("{}/readyz", serve.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        peak_in_flight = peak_in_flight.max(v["work_in_flight"].as_u64().unwrap_or(0));
        peak_rss = peak_rss.max(memory(pid).1);
        let (active, failed) = (count("active").await, count("failed").await);
        if active + failed == IN_FLIGHT {
            let wall = t0.elapsed();
            println!(
                "{IN_FLIGHT} deploys: {active} active, {failed} failed in {:.1} s ({:.1} deploys/s); \
                 peak {peak_in_flight} in flight",
                wall.as_secs_f64(),
                IN_FLIGHT as f64 / wall.as_secs_f64()
            );
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(900), "deploys stuck");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (hwm, _) = memory(pid);
    println!(
        "memory with {IN_FLIGHT} deploys in flight: peak RSS (VmHWM) {hwm:.1} MiB (sampled RSS max {peak_rss:.1} MiB)"
    );
    let t1 = Instant::now();
    for id in &ids {
        let r = http
            .delete(format!("{}/v1/deployments/{id}", serve.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    while count("terminated").await < IN_FLIGHT {
        assert!(
            t1.elapsed() < Duration::from_secs(900),
            "terminations stuck"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = t1.elapsed();
    println!(
        "{IN_FLIGHT} terminations in {:.1} s ({:.1}/s)",
        wall.as_secs_f64(),
        IN_FLIGHT as f64 / wall.as_secs_f64()
    );
    let (hwm, _) = memory(pid);
    println!("memory at the end: peak RSS (VmHWM) {hwm:.1} MiB");
    println!("stop (SIGTERM, idle): {:.2} s", stop(serve).as_secs_f64());
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // useful either: this always runs in full.
    let Ok(moto) = std::env::var("BPR_TEST_MOTO_URL") else {
        eprintln!(
            "serve bench: BPR_TEST_MOTO_URL is not set; start moto with `scripts/standins/moto.sh start` and export what it prints"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // `BPR_BENCH_PHASES=reads` or `=deploys` runs one of the two.
    let phases = std::env::var("BPR_BENCH_PHASES").unwrap_or_else(|_| "reads,deploys".into());
    println!("load average before: {}", load_average());
    rt.block_on(async {
        if phases.contains("reads") {
            status_reads(&moto).await;
            println!("load average: {}", load_average());
        }
        if phases.contains("deploys") {
            deploys_in_flight(&moto).await;
            println!("load average: {}", load_average());
        }
    });
}
