//! Deploy throughput of `bpr serve` with one replica and with three replicas
//! sharing one database, measured as the operator runs it: release binaries
//! as their own processes, over real HTTP, the real `aws` component against
//! moto. Run with
//!
//! ```sh
//! eval "$(MOTO_PORT=5000 scripts/standins/moto.sh start)"
//! RUST_BACKTRACE=0 chrt -f 20 cargo bench -p blueprint-remote-providers --bench replicas
//! ```
//!
//! With `BPR_BENCH_DATABASE_URL` (or `BPR_TEST_DATABASE_URL`, which
//! `scripts/standins/postgres.sh start` exports) naming a PostgreSQL server
//! with a role that may create databases, each round runs on a fresh database
//! of its own and every replica has its own state directory, as replicas in
//! separate pods do; without it the replicas share one SQLite file (replicas
//! on one host).
//!
//! Each round posts [`DEPLOYS`] deployments at once, spread round-robin over
//! the replicas, and times until every one is `active` (each a real
//! create-instance on moto's EC2 and a wait for running); then terminates them
//! all the same way and times that. The shapes run in the same process, one
//! after the other (1, 3, 1 replicas), so their ratio compares like with like.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "support/serve_process.rs"]
mod serve_process;
use serve_process::{Serve, TOKEN, load_average, ready, start};

const DEPLOYS: usize = 90;

/// Where the replicas keep their state: one SQLite file in a shared state
/// directory, or a PostgreSQL database (`url` without the password, which
/// is in `password_file`) with a state directory per replica.
enum Store {
    Sqlite,
    Postgres {
        admin: String,
        url: String,
        name: String,
        password_file: PathBuf,
    },
}

impl Store {
    /// A fresh database on the server `BPR_BENCH_DATABASE_URL` (or
    /// `BPR_TEST_DATABASE_URL`) names, else SQLite.
    fn create(dir: &Path) -> Self {
        let Some(admin) = std::env::var("BPR_BENCH_DATABASE_URL")
            .or_else(|_| std::env::var("BPR_TEST_DATABASE_URL"))
            .ok()
        else {
            return Self::Sqlite;
        };
        let mut url = url::Url::parse(&admin).expect("the database URL is a URL");
        let password = url.password().unwrap_or_default().to_string();
        url.set_password(None).unwrap();
        let name = format!(
            "bpr_bench_{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_micros()
        );
        url.set_path(&name);
        admin_sql(&admin, &format!("CREATE DATABASE {name}"));
        let password_file = dir.join("pg-password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        Self::Postgres {
            admin,
            url: url.to_string(),
            name,
            password_file,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite, one state directory",
            Self::Postgres { .. } => "PostgreSQL, a state directory per replica",
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Self::Postgres { admin, name, .. } = self {
            admin_sql(
                admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            );
        }
    }
}

/// One statement as the server's admin role, on a thread of its own (the sync
/// client must not be driven from a runtime thread).
fn admin_sql(admin: &str, sql: &str) {
    let (admin, sql) = (admin.to_string(), sql.to_string());
    std::thread::spawn(move || {
        postgres::Client::connect(&admin, postgres::NoTls)
            .expect("connect to the benchmark's PostgreSQL")
            .batch_execute(&sql)
            .expect("admin statement");
    })
    .join()
    .unwrap();
}

/// The providers dir, credentials and token under `dir` (shared by every
/// replica), and replica `i`'s config naming its state: the shared state
/// directory with SQLite, its own with PostgreSQL.
fn setup(dir: &Path, moto: &str, store: &Store, i: usize) -> PathBuf {
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
    let signed_host = moto.split_once("://").map_or(moto, |(_, h)| h);
    let (state, database, section) = match store {
        Store::Sqlite => (dir.join("state"), String::new(), String::new()),
        Store::Postgres {
            url, password_file, ..
        } => (
            dir.join(format!("state-{i}")),
            format!("database = {url:?}\n"),
            format!("[database]\npassword_file = {password_file:?}\n"),
        ),
    };
    let config = dir.join(format!("bpr-{i}.toml"));
    std::fs::write(
        &config,
        format!(
            "[host]\nproviders_dir = {providers:?}\nstate_dir = {state:?}\nintegrity = \"warn\"\n{database}{section}\
             [serve]\nlisten = \"127.0.0.1:0\"\ntoken_file = {token:?}\n\
             [coordination]\nlease_secs = 15\nrenew_secs = 5\n\
             [providers.aws]\nallow = [{moto:?}]\ncall_timeout_ms = 60000\n\
             [providers.aws.settings]\nregions = \"us-east-1\"\nendpoint = {moto:?}\n\
             image_owner = \"amazon\"\nimage_name_filter = \"amzn2-ami-hvm-*-x86_64-gp2\"\n\
             [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {creds:?}\nprofile = \"default\"\n\
             hosts = [{signed_host:?}]\n",
        ),
    )
    .unwrap();
    config
}

/// How many deployments of Blueprint `bp` are in `status`, asked of `url`.
async fn count(http: &reqwest::Client, url: &str, bp: &str, status: &str) -> usize {
    let v: Value = http
        .get(format!(
            "{url}/v1/deployments?blueprint_id={bp}&status={status}&limit=1000"
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["deployments"].as_array().map_or(0, Vec::len)
}

/// Waits until `n` deployments of `bp` are `status` (or `failed`); the time
/// from `t0` and how many failed.
async fn wait(
    http: &reqwest::Client,
    url: &str,
    bp: &str,
    status: &str,
    t0: Instant,
) -> (Duration, usize) {
    loop {
        let (done, failed) = (
            count(http, url, bp, status).await,
            count(http, url, bp, "failed").await,
        );
        if done + failed >= DEPLOYS {
            return (t0.elapsed(), failed);
        }
        assert!(t0.elapsed() < Duration::from_secs(900), "stuck at {done}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn round(moto: &str, replicas: usize) {
    let reset = reqwest::Client::new()
        .post(format!("{moto}/moto-api/reset"))
        .send()
        .await
        .expect("moto answers");
    assert!(
        reset.status().is_success(),
        "moto reset: {}",
        reset.status()
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::create(dir.path());
    let serves: Vec<Serve> = (0..replicas)
        .map(|i| start(&setup(dir.path(), moto, &store, i)))
        .collect();
    let http = reqwest::Client::new();
    for s in &serves {
        ready(&http, &s.url).await;
    }
    let bp = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000_000)
        .to_string();
    let t0 = Instant::now();
    let posts: Vec<_> = (0..DEPLOYS)
        .map(|i| {
            let url = serves[i % replicas].url.clone();
            let http = http.clone();
            let body = json!({
                "deployment_id": format!("bench-{bp}-{i}"), "blueprint_id": bp, "service_id": i.to_string(),
                "ttl_secs": 3600,
                "workload": {"source": {"kind": "container", "image": "ghcr.io/example/app:1.2"}},
                "candidates": [{"provider": "aws", "region": "us-east-1", "instance_type": "t3.micro", "hourly_usd": 0.0104}]
            });
            tokio::spawn(async move {
                let r = http
                    .post(format!("{url}/v1/deployments"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202, "{}", r.text().await.unwrap());
            })
        })
        .collect();
    for p in posts {
        p.await.unwrap();
    }
    let (deployed, failed) = wait(&http, &serves[0].url, &bp, "active", t0).await;
    println!(
        "{replicas} replica(s) ({}): {DEPLOYS} deploys active in {:.1} s ({:.2} deploys/s), {failed} failed",
        store.describe(),
        deployed.as_secs_f64(),
        DEPLOYS as f64 / deployed.as_secs_f64()
    );
    let t0 = Instant::now();
    let deletes: Vec<_> = (0..DEPLOYS)
        .map(|i| {
            let url = serves[i % replicas].url.clone();
            let http = http.clone();
            let id = format!("bench-{bp}-{i}");
            tokio::spawn(async move {
                let r = http
                    .delete(format!("{url}/v1/deployments/{id}"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
            })
        })
        .collect();
    for d in deletes {
        d.await.unwrap();
    }
    let (ended, _) = wait(&http, &serves[0].url, &bp, "terminated", t0).await;
    println!(
        "{replicas} replica(s): {DEPLOYS} terminations in {:.1} s ({:.2} /s)",
        ended.as_secs_f64(),
        DEPLOYS as f64 / ended.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter word selects nothing here.
    let Ok(moto) = std::env::var("BPR_TEST_MOTO_URL") else {
        eprintln!(
            "BPR_TEST_MOTO_URL is not set: start moto with `scripts/standins/moto.sh start` and export the line it prints"
        );
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // 1, 3, then 1 again, each on a moto emptied first (`/moto-api/reset`):
    // moto keeps every instance it ever made and slows as they pile up (an
    // unreset third round took 6x as long to terminate as the first), so
    // every round starts from the same empty cloud and the repeated
    // one-replica round shows what is left of the order.
    println!("load average before: {}", load_average());
    for replicas in [1, 3, 1] {
        rt.block_on(round(&moto, replicas));
        println!("load average: {}", load_average());
    }
}
