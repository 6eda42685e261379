//! The concurrency driver: many `bpr deploy` processes at once against moto,
//! on a new database and on one in use, then as many `bpr terminate`s. Every
//! one must succeed: the only shared thing is the SQLite file, and waiting
//! for it is never a reason to fail.
//!
//! CI runs 40 processes per phase; `BPR_TEST_CONCURRENT_PROCESSES=200` runs
//! the full load, best with `BPR_TEST_BPR_BIN=target/release/bpr`
//! (see BENCHMARKS.md for the numbers and the exact command).

use std::process::Output;
use std::time::{Duration, Instant};

use blueprint_remote_providers::tracking::DeploymentStatus;

use super::harness::{Bpr, Moto, text, unique_id};
use crate::support::{TestEnv, moto_lock};

fn processes() -> usize {
    std::env::var("BPR_TEST_CONCURRENT_PROCESSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

/// Start every command at once; wait for all of them.
async fn all_at_once(cmds: Vec<std::process::Command>) -> (Vec<Output>, Duration) {
    let started = Instant::now();
    let children: Vec<_> = cmds
        .into_iter()
        .map(|mut c| {
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("bpr starts")
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    (outputs, started.elapsed())
}

fn failures(ids: &[String], outs: &[Output]) -> Vec<String> {
    ids.iter()
        .zip(outs)
        .filter(|(_, o)| !o.status.success())
        .map(|(id, o)| format!("{id}: {}", text(o)))
        .collect()
}

/// `n` deploys at once, then `n` terminates at once, on `bpr`'s database.
async fn deploy_and_terminate_concurrently(bpr: &Bpr, moto: &Moto, run: &str, n: usize) {
    let ids: Vec<String> = (0..n).map(|i| format!("{run}-{i}")).collect();
    let (outs, took) = all_at_once(ids.iter().map(|id| bpr.deploy(id)).collect()).await;
    let failed = failures(&ids, &outs);
    assert!(
        failed.is_empty(),
        "{} of {n} concurrent deploys failed:\n{}",
        failed.len(),
        failed.join("\n---\n")
    );
    let records = bpr.status();
    for id in &ids {
        let r = records.iter().find(|r| &r.id == id).expect("recorded");
        assert_eq!(r.status, DeploymentStatus::Active, "{r:?}");
    }
    eprintln!("{n} concurrent bpr deploy: all active in {took:?}");

    let (outs, took) = all_at_once(
        ids.iter()
            .map(|id| {
                let mut c = bpr.command();
                c.args(["terminate", id]);
                c
            })
            .collect(),
    )
    .await;
    let failed = failures(&ids, &outs);
    assert!(
        failed.is_empty(),
        "{} of {n} concurrent terminates failed:\n{}",
        failed.len(),
        failed.join("\n---\n")
    );
    eprintln!("{n} concurrent bpr terminate: all terminated in {took:?}");
    for id in &ids {
        let left = moto.leftovers(id).await;
        assert!(left.is_empty(), "{id} left {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deploys_on_a_new_database_all_succeed_and_terminate() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    // moto answers in time proportional to what it holds; start it empty.
    moto.reset().await;
    let env = TestEnv::new();
    let bpr = Bpr::for_aws(&env, &moto.url);
    // Compile the component once (shared artifact cache), then start from no database.
    let out = bpr.run(&["providers", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    for entry in std::fs::read_dir(&env.state).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("bpr.sqlite3")
        {
            std::fs::remove_file(p).unwrap();
        }
    }
    deploy_and_terminate_concurrently(&bpr, &moto, &unique_id("conc-new"), processes()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deploys_on_a_database_in_use_all_succeed_and_terminate() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    // moto answers in time proportional to what it holds; start it empty.
    moto.reset().await;
    let env = TestEnv::new();
    let bpr = Bpr::for_aws(&env, &moto.url);
    let run = unique_id("conc-old");
    let first = format!("{run}-first");
    let out = bpr.deploy(&first).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    deploy_and_terminate_concurrently(&bpr, &moto, &run, processes()).await;
    let out = bpr.run(&["terminate", &first]);
    assert!(out.status.success(), "{}", text(&out));
}
