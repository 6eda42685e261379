//! Issue 17 items 1 and 4 end to end: the store on PostgreSQL (the stand-in
//! started by `scripts/standins/postgres.sh`), with the real aws component
//! under wasmtime against moto — `bpr deploy`, `status`, `history`, `costs`
//! and `terminate` as processes; `bpr serve` once; and the same service event
//! sent to two hosts sharing one database at once, which yields one
//! deployment and one instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use blueprint_remote_providers::db::{Database, DatabaseSettings, PasswordSource, PostgresTarget};
use blueprint_remote_providers::embedding::{EmbeddingOptions, RemoteDeployments, ServiceKey};
use blueprint_remote_providers::provisioning::{DeployOptions, RetryPolicy};
use blueprint_remote_providers::tracking::{DeploymentRecord, DeploymentStatus, Tracker};
use blueprint_remote_providers::{Config, Host};

use crate::deploy::{Moto, aws_section, unique_id, write_creds};
use crate::support::{TestEnv, moto_lock};

/// A database of the test's own on the test server, dropped afterwards.
pub(crate) struct PgDatabase {
    admin: String,
    target: PostgresTarget,
    password_file: PathBuf,
}

impl PgDatabase {
    /// `None` (skipped, with a message) without a server, except under CI.
    pub(crate) fn create(dir: &Path) -> Option<Self> {
        let Ok(admin) = std::env::var("BPR_TEST_DATABASE_URL") else {
            assert!(
                !matches!(std::env::var("CI").as_deref(), Ok("true" | "1")),
                "BPR_TEST_DATABASE_URL is not set under CI=true; start PostgreSQL with \
                 `eval \"$(scripts/standins/postgres.sh start)\"`"
            );
            eprintln!(
                "skipped: BPR_TEST_DATABASE_URL is not set (run `eval \"$(scripts/standins/postgres.sh start)\"`)"
            );
            return None;
        };
        let mut url = url::Url::parse(&admin).expect("BPR_TEST_DATABASE_URL is a URL");
        let password = url.password().unwrap_or_default().to_string();
        url.set_password(None).unwrap();
        let name = format!("bpr_it_{}", unique_id("db").replace('-', "_"));
        url.set_path(&name);
        admin_sql(&admin, &format!("CREATE DATABASE {name}"));
        let password_file = dir.join("pg-password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        Some(Self {
            admin,
            target: PostgresTarget::parse(url.as_str()).unwrap(),
            password_file,
        })
    }

    /// The `[host] database` line and the `[database]` section. When the
    /// stand-in says where its CA is (`BPR_TEST_PG_CA_FILE`), bpr connects
    /// over TLS and checks the server's certificate against it, as a
    /// deployment reaching a managed database does.
    pub(crate) fn config_lines(&self) -> (String, String) {
        let tls = std::env::var("BPR_TEST_PG_CA_FILE").map_or(String::new(), |ca| {
            format!("tls = \"verify-full\"\nca_file = {ca:?}\n")
        });
        (
            format!("database = {:?}\n", self.target.to_string()),
            format!(
                "[database]\npassword_file = {:?}\n{tls}",
                self.password_file
            ),
        )
    }

    /// The library's own handle on it.
    fn open(&self) -> Database {
        let settings = DatabaseSettings {
            password: Some(PasswordSource::File(self.password_file.clone())),
            ..DatabaseSettings::default()
        };
        let target = self.target.clone();
        // The sync client must not be driven from a runtime thread.
        std::thread::spawn(move || Database::connect(&target, &settings))
            .join()
            .unwrap()
            .expect("connect")
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        admin_sql(
            &self.admin,
            &format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.target.dbname()
            ),
        );
    }
}

fn admin_sql(admin: &str, sql: &str) {
    let (admin, sql) = (admin.to_string(), sql.to_string());
    std::thread::spawn(move || {
        ::postgres::Client::connect(&admin, ::postgres::NoTls)
            .expect("connect to BPR_TEST_DATABASE_URL")
            .batch_execute(&sql)
            .expect("admin statement");
    })
    .join()
    .unwrap();
}

/// The operator config: aws on moto, the store on `pg`.
fn write_config(env: &TestEnv, pg: &PgDatabase, moto: &str) -> PathBuf {
    env.add("aws");
    let creds = write_creds(env);
    let (host_line, database) = pg.config_lines();
    let path = env.dir.path().join("bpr.toml");
    std::fs::write(
        &path,
        format!(
            "{}{host_line}\n{database}\n{}",
            env.host_section("warn", false),
            aws_section(moto, &creds)
        ),
    )
    .unwrap();
    path
}

fn bpr(config: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bpr"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bpr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_deploys_lists_reports_costs_and_terminates_with_its_store_on_postgres() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let Some(pg) = PgDatabase::create(env.dir.path()) else {
        return;
    };
    let moto = Moto::new();
    let config = write_config(&env, &pg, &moto.url);
    let id = unique_id("pg-dep");
    bpr(
        &config,
        &[
            "deploy",
            "--blueprint",
            "bp",
            "--service",
            "svc",
            "--provider",
            "aws",
            "--region",
            "us-east-1",
            "--type",
            "t3.micro",
            "--id",
            &id,
        ],
    );
    assert_eq!(moto.live_instances_of(&id).await.len(), 1);

    let out = bpr(&config, &["status", "--json"]);
    let records: Vec<DeploymentRecord> = serde_json::from_slice(&out.stdout).unwrap();
    let rec = records.iter().find(|r| r.id == id).expect("listed");
    assert_eq!(rec.status, DeploymentStatus::Active);

    let out = bpr(&config, &["costs", "--by", "deployment", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        report["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["key"] == id.as_str()),
        "{report}"
    );

    bpr(&config, &["terminate", &id]);
    assert!(moto.live_instances_of(&id).await.is_empty());
    let out = bpr(&config, &["history", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("terminated") && text.contains("t3.micro"),
        "bpr history shows the transitions and the attempt:\n{text}"
    );

    // Everything is in PostgreSQL; no SQLite file was made.
    assert!(!env.state.join("bpr.sqlite3").exists());
    let db = pg.open();
    let tracker = Tracker::new(db, &env.state.join("deployments"));
    assert_eq!(
        tracker.get(&id).unwrap().status,
        DeploymentStatus::Terminated
    );
    let usage = tracker.usage_of(&id).unwrap();
    assert_eq!(usage.len(), 1);
    assert!(usage[0].ended_at.is_some(), "{usage:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_with_a_password_or_a_server_that_is_down_is_a_clear_error_without_the_password() {
    let env = TestEnv::new();
    let secret = "pg-secret-never-shown-4411";
    for (host_line, database, want) in [
        (
            format!("database = \"postgres://bpr:{secret}@127.0.0.1:1/bpr\"\n"),
            String::new(),
            "password_file",
        ),
        (
            "database = \"postgres://bpr@127.0.0.1:1/bpr\"\n".to_string(),
            "[database]\npassword_env = \"BPR_IT_PG_PW\"\n".to_string(),
            "postgres://bpr@127.0.0.1:1/bpr",
        ),
    ] {
        let path = env.dir.path().join("bpr.toml");
        std::fs::write(
            &path,
            format!("{}{host_line}\n{database}", env.host_section("warn", false)),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_bpr"))
            .arg("--config")
            .arg(&path)
            .args(["status"])
            .env("BPR_IT_PG_PW", secret)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{all}");
        assert!(all.contains(want), "{want}: {all}");
        assert!(!all.contains(secret), "the password leaked: {all}");
    }
}

fn fast() -> EmbeddingOptions {
    EmbeddingOptions {
        deploy: DeployOptions {
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
        },
        ..EmbeddingOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_service_event_sent_to_two_hosts_on_one_postgres_at_once_yields_one_deployment() {
    let _moto = moto_lock().await;
    let moto = Moto::new();
    // Two hosts with their own state directories (two machines), one database.
    let (env_a, env_b) = (TestEnv::new(), TestEnv::new());
    let Some(pg) = PgDatabase::create(env_a.dir.path()) else {
        return;
    };
    let mut hosts = Vec::new();
    for env in [&env_a, &env_b] {
        let config = write_config(env, &pg, &moto.url);
        let host = Host::start(Config::load(Some(&config)).unwrap())
            .await
            .expect("host starts on PostgreSQL");
        hosts.push(RemoteDeployments::new(host, fast()));
    }
    let blueprint = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000_000) as u64;
    let key = ServiceKey::new(blueprint, 7);
    let (a, b) = (hosts[0].clone(), hosts[1].clone());
    let (ra, rb) = tokio::join!(
        a.on_service_initiated(blueprint, 7, None, None, HashMap::new()),
        b.on_service_initiated(blueprint, 7, None, None, HashMap::new()),
    );
    let (ra, rb) = (ra.expect("host a"), rb.expect("host b"));
    assert_eq!(ra.id, rb.id, "one deployment for the service");
    let keyed: Vec<_> = a
        .host()
        .tracker()
        .list()
        .unwrap()
        .into_iter()
        .filter(|r| r.service_key.as_deref() == Some(key.to_string().as_str()))
        .collect();
    assert_eq!(keyed.len(), 1, "one record: {keyed:?}");
    // The loser may have answered while the winner was still deploying.
    let mut rec = a.deployment(key).unwrap().unwrap();
    for _ in 0..100 {
        if rec.status == DeploymentStatus::Active {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rec = a.deployment(key).unwrap().unwrap();
    }
    assert_eq!(rec.status, DeploymentStatus::Active);
    assert_eq!(
        moto.live_instances_of(&rec.id).await.len(),
        1,
        "one instance"
    );
    let done = b
        .on_service_terminated(blueprint, 7)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.status, DeploymentStatus::Terminated);
    assert!(moto.live_instances_of(&rec.id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_serve_on_postgres_deploys_and_terminates_through_its_api() {
    use crate::serve::{Serve, deploy_body};
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let Some(pg) = PgDatabase::create(env.dir.path()) else {
        return;
    };
    let moto = Moto::new();
    let (host_line, database) = pg.config_lines();
    let config = crate::serve::write_config(&env, &moto.url, "warn", &database);
    let text = std::fs::read_to_string(&config).unwrap().replacen(
        "[host]\n",
        &format!("[host]\n{host_line}"),
        1,
    );
    std::fs::write(&config, text).unwrap();
    let serve = Serve::start(&config);
    serve.ready().await;
    let id = unique_id("pg-serve");
    let (code, v) = serve.post("/v1/deployments", deploy_body(&id)).await;
    assert_eq!(code, 202, "{v}");
    let rec = serve
        .wait_status(&id, &|s| s == "active" || s == "failed")
        .await;
    assert_eq!(rec["status"], "active", "{rec}\n{}", serve.log());
    // The service's record, read from PostgreSQL by another client.
    let tracker = Tracker::new(pg.open(), &env.state.join("deployments"));
    assert_eq!(tracker.get(&id).unwrap().status, DeploymentStatus::Active);
    let (code, v) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(code, 202, "{v}");
    serve.wait_status(&id, &|s| s == "terminated").await;
    assert!(moto.live_instances_of(&id).await.is_empty());
    assert!(!env.state.join("bpr.sqlite3").exists());
}
