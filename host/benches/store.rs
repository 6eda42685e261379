//! The store's status read on both backends (issue 17): 100,000 ended
//! deployments with 7 history rows each, then the reads `bpr status <id>` and
//! `GET /v1/deployments/{id}` make (`Tracker::get`), one at a time, and a
//! 50-record list page (`Tracker::query`), with p50/p99 for each. Run with
//!
//! ```sh
//! eval "$(BPR_PG_PORT=5433 scripts/standins/postgres.sh start)"
//! RUST_BACKTRACE=0 chrt -f 20 cargo bench -p blueprint-remote-providers --bench store
//! ```
//!
//! Without `BPR_TEST_DATABASE_URL` only SQLite is measured.
//! `BPR_BENCH_RECORDS` changes the record count.

use std::time::{Duration, Instant};

use blueprint_remote_providers::db::{
    Database, DatabaseSettings, DbError, PasswordSource, PostgresTarget, params,
};
use blueprint_remote_providers::tracking::{DeploymentQuery, DeploymentStatus, Tracker};

const READS: usize = 20_000;
const PAGES: usize = 2_000;

/// Writes `n` ended deployments as the tracker leaves them: the record and
/// its seven history rows, in batches of one transaction each.
fn seed(db: &Database, n: usize) {
    let t0 = Instant::now();
    let statuses = [
        (None, "planned", "request recorded"),
        (Some("planned"), "provisioning", "trying 1 candidate(s)"),
        (Some("provisioning"), "provisioned", "instance i-0 running"),
        (Some("provisioned"), "deploying", "workload starting"),
        (Some("deploying"), "active", "running"),
        (Some("active"), "terminating", "TTL expired"),
        (Some("terminating"), "terminated", "deleted"),
    ];
    for start in (0..n).step_by(5_000) {
        db.write(|tx| {
            for i in start..(start + 5_000).min(n) {
                let id = format!("dep-bench-{i:06}");
                let at = 1_800_000_000 + i as i64;
                tx.execute(
                    "INSERT INTO deployments (id, blueprint_id, service_id, deployment_type, status, provider,
                       region, instance_type, hourly_usd, instance_id, labels_json, request_json,
                       created_at, updated_at, released_at)
                     VALUES (?1, ?2, ?3, 'vm', 'terminated', 'aws', 'us-east-1', 't3.micro', 0.0104, ?4,
                       '{\"bpr-managed\":\"true\"}', '{}', ?5, ?5, ?5)",
                    params![id, (i % 50).to_string(), i.to_string(), format!("i-{i:08x}"), at],
                )?;
                for (from, to, why) in statuses {
                    tx.execute(
                        "INSERT INTO deployment_history (deployment_id, at, from_status, to_status, reason)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![id, at, from, to, why],
                    )?;
                }
            }
            Ok::<_, DbError>(())
        })
        .unwrap();
    }
    println!(
        "  seeded {n} records (7 history rows each) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1e6;
    (at(0.5), at(0.99), at(1.0))
}

fn measure(name: &str, db: Database, n: usize) {
    println!("{name}:");
    seed(&db, n);
    let dir = tempfile::tempdir().unwrap();
    let tracker = Tracker::new(db, &dir.path().join("locks"));
    let id = |k: usize| format!("dep-bench-{:06}", (k * 104_729) % n);
    // Warm-up: connections, prepared statements, caches.
    for k in 0..1_000 {
        tracker.get(&id(k)).unwrap();
    }
    let mut gets = Vec::with_capacity(READS);
    let t0 = Instant::now();
    for k in 0..READS {
        let t = Instant::now();
        let r = tracker.get(&id(k + 7)).unwrap();
        gets.push(t.elapsed());
        assert_eq!(r.status, DeploymentStatus::Terminated);
    }
    let wall = t0.elapsed();
    let (p50, p99, max) = percentiles(gets);
    println!(
        "  status read (Tracker::get), {n} records: p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.0} µs, {:.0} reads/s",
        READS as f64 / wall.as_secs_f64()
    );
    let mut pages = Vec::with_capacity(PAGES);
    for k in 0..PAGES {
        let after = (k * 7_919) % n;
        let q = DeploymentQuery {
            status: Some(DeploymentStatus::Terminated),
            after: Some((
                1_800_000_000 + after as i64,
                format!("dep-bench-{after:06}"),
            )),
            limit: 50,
            ..DeploymentQuery::default()
        };
        let t = Instant::now();
        let page = tracker.query(&q).unwrap();
        pages.push(t.elapsed());
        assert!(page.len() <= 50);
    }
    let (p50, p99, max) = percentiles(pages);
    println!(
        "  list page of 50 (Tracker::query, keyset): p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.0} µs"
    );
    let mut hist = Vec::with_capacity(PAGES);
    for k in 0..PAGES {
        let t = Instant::now();
        let h = tracker.history(&id(k + 3)).unwrap();
        hist.push(t.elapsed());
        assert_eq!(h.len(), 7);
    }
    let (p50, p99, max) = percentiles(hist);
    println!(
        "  history of one (Tracker::history): p50 {p50:.1} µs, p99 {p99:.1} µs, max {max:.0} µs"
    );
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let n: usize = std::env::var("BPR_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    println!("load average before: {}", loadavg());
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Database::open(&dir.path().join("bpr.sqlite3")).unwrap();
    measure("SQLite (WAL, synchronous=FULL)", sqlite, n);
    println!("load average: {}", loadavg());

    let Ok(admin) = std::env::var("BPR_TEST_DATABASE_URL") else {
        println!(
            "PostgreSQL: skipped (BPR_TEST_DATABASE_URL is not set; see scripts/standins/postgres.sh)"
        );
        return;
    };
    let mut url = url::Url::parse(&admin).unwrap();
    let password = url.password().unwrap_or_default().to_string();
    url.set_password(None).unwrap();
    let name = format!("bpr_bench_{}", std::process::id());
    let admin_sql = |sql: String| {
        let admin = admin.clone();
        std::thread::spawn(move || {
            postgres::Client::connect(&admin, postgres::NoTls)
                .unwrap()
                .batch_execute(&sql)
                .unwrap()
        })
        .join()
        .unwrap()
    };
    admin_sql(format!("CREATE DATABASE {name}"));
    url.set_path(&name);
    let pw = dir.path().join("pg-password");
    std::fs::write(&pw, password).unwrap();
    let settings = DatabaseSettings {
        password: Some(PasswordSource::File(pw)),
        ..DatabaseSettings::default()
    };
    let target = PostgresTarget::parse(url.as_str()).unwrap();
    let pg = Database::connect(&target, &settings).unwrap();
    measure(&format!("PostgreSQL 15 ({target}, loopback TCP)"), pg, n);
    println!("load average after: {}", loadavg());
    admin_sql(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
