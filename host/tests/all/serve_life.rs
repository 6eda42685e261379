//! Issue 13 items 2-4 against the running `bpr serve` binary over HTTP, with
//! the aws component under wasmtime against moto: the service's supervisor
//! heals an instance the provider stopped, suspends a deployment at expiry
//! and resumes it on a renewal through the API, terminates it after the grace
//! period; `GET /v1/costs` and `/metrics` give the spend the ledger says; a
//! deploy over the operator's budget is a 422 and nothing is recorded.

use std::time::{Duration, Instant};

use blueprint_remote_providers::Database;
use blueprint_remote_providers::tracking::Tracker;
use serde_json::{Value, json};

use crate::deploy::unique_id;
use crate::lifecycle::{Moto, moto_url};
use crate::serve::{EventReader, Serve, write_config};
use crate::support::{TestEnv, moto_lock};

/// A deploy request on moto's t3.micro at `hourly` USD, paid for `ttl` s.
fn body(id: &str, hourly: f64, ttl: u64) -> Value {
    json!({
        "deployment_id": id,
        "blueprint_id": "13",
        "service_id": "1",
        "ttl_secs": ttl,
        "workload": {"source": {"kind": "container", "image": "ghcr.io/example/app:1.2"}},
        "candidates": [{"provider": "aws", "region": "us-east-1", "instance_type": "t3.micro", "hourly_usd": hourly}]
    })
}

/// Starts `bpr serve` on moto with `extra` config and waits until it is ready.
async fn serve_with(env: &TestEnv, extra: &str) -> Serve {
    let config = write_config(env, &moto_url(), "warn", extra);
    let serve = Serve::start(&config);
    serve.ready().await;
    serve
}

/// Deploys `id` through the API and waits until it is active; its instance.
async fn deploy_active(serve: &Serve, id: &str, hourly: f64, ttl: u64) -> String {
    let (code, v) = serve.post("/v1/deployments", body(id, hourly, ttl)).await;
    assert_eq!(code, 202, "{v}");
    let rec = serve.wait_status(id, &|s| s == "active").await;
    rec["instance_id"]
        .as_str()
        .expect("an instance")
        .to_string()
}

/// A payment through the API: `id` lives `ttl` s from now. The record.
async fn renew(serve: &Serve, id: &str, ttl: u64) -> Value {
    let (code, v) = serve
        .post(
            &format!("/v1/deployments/{id}/renew"),
            json!({ "ttl_secs": ttl }),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    v
}

/// Waits until moto reports `state` for `instance`.
async fn wait_moto(moto: &Moto, instance: &str, state: &str) {
    let t0 = Instant::now();
    loop {
        let now = moto.state(instance).await;
        if now == state {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{instance} is {now}, not {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// History lines of `id` over the API: `from -> to: reason`.
async fn history(serve: &Serve, id: &str) -> Vec<String> {
    let (code, v) = serve.get(&format!("/v1/deployments/{id}/history")).await;
    assert_eq!(code, 200, "{v}");
    v["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| {
            format!(
                "{} -> {}: {}",
                t["from"].as_str().unwrap_or("-"),
                t["to"].as_str().unwrap_or("-"),
                t["reason"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn names(events: &EventReader, id: &str) -> Vec<String> {
    events.names_for(id)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_service_heals_an_instance_the_provider_stopped_and_deletes_the_old_one() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let serve = serve_with(
        &env,
        "[operator.health]\ninterval_secs = 1\nauto_heal = true\n",
    )
    .await;
    let events = serve.events("").await;
    let moto = Moto::new();
    let id = unique_id("srv-heal");
    let first = deploy_active(&serve, &id, 0.0104, 3600).await;

    // A spot interruption: the provider stops the instance.
    moto.ec2(&[("Action", "StopInstances"), ("InstanceId.1", &first)])
        .await;
    events.wait_for(&id, "replaced").await;
    let rec = serve.wait_status(&id, &|s| s == "active").await;
    let second = rec["instance_id"].as_str().unwrap().to_string();
    assert_ne!(second, first, "{rec}");
    assert_eq!(moto.state(&second).await, "running");
    wait_moto(&moto, &first, "terminated").await;
    let seen = names(&events, &id);
    let at = |n: &str| seen.iter().position(|e| e == n).unwrap_or(usize::MAX);
    assert!(
        at("unhealthy") < at("replacing") && at("replacing") < at("replaced"),
        "{seen:?}"
    );
    let h = history(&serve, &id).await;
    assert!(
        h.iter().any(|l| l.contains("stopped by the provider")),
        "{h:#?}"
    );

    let (code, v) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{id}"),
            None,
        )
        .await;
    assert!(code == 202 || code == 200, "{code} {v}");
    serve.wait_status(&id, &|s| s == "terminated").await;
    wait_moto(&moto, &second, "terminated").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_api_expiry_suspends_a_renewal_resumes_and_costs_match_the_ledger() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let serve = serve_with(&env, "[operator.payment]\ngrace_secs = 3600\n").await;
    let events = serve.events("").await;
    let moto = Moto::new();
    let id = unique_id("srv-pay");
    // 36 USD per hour: one cent per second held. Paid for 1 s more once active.
    let instance = deploy_active(&serve, &id, 36.0, 3600).await;
    renew(&serve, &id, 1).await;

    let rec = serve.wait_status(&id, &|s| s == "suspended").await;
    assert_eq!(rec["instance_id"], instance.as_str(), "{rec}");
    assert_eq!(moto.state(&instance).await, "stopped");
    // Suspended for a while: no spend accrues.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let v = renew(&serve, &id, 3600).await;
    assert_eq!(v["status"], "active", "{v}");
    assert_eq!(v["instance_id"], instance.as_str(), "the same instance");
    assert_eq!(moto.state(&instance).await, "running");
    events.wait_for(&id, "running").await;
    let seen = names(&events, &id);
    let tail: Vec<&str> = seen
        .iter()
        .map(String::as_str)
        .skip_while(|e| *e != "expired")
        .collect();
    assert_eq!(
        tail,
        ["expired", "suspended", "renewed", "running"],
        "{seen:?}"
    );
    let h = history(&serve, &id).await;
    assert!(
        h.iter()
            .any(|l| l.contains("active -> suspended") && l.contains("payment expired")),
        "{h:#?}"
    );
    assert!(
        h.iter()
            .any(|l| l.contains("suspended -> active") && l.contains("payment renewed")),
        "{h:#?}"
    );

    // The report against the hand computation from the ledger the service
    // wrote: each period's seconds (to the report's `until` when open) × price.
    let (code, v) = serve.get("/v1/costs?by=deployment").await;
    assert_eq!(code, 200, "{v}");
    let until = v["report"]["until"].as_i64().unwrap();
    let tracker = Tracker::new(
        Database::open(&database_path(&env)).expect("the service's database"),
        &env.dir.path().join("locks"),
    );
    let periods = tracker.usage_of(&id).unwrap();
    assert_eq!(periods.len(), 2, "running, then running again: {periods:?}");
    let held: i64 = periods
        .iter()
        .map(|p| p.ended_at.unwrap_or(until).min(until) - p.started_at)
        .sum();
    let line = v["report"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == id.as_str())
        .unwrap_or_else(|| panic!("no line for {id}: {v}"))
        .clone();
    assert_eq!(
        line["seconds"].as_i64().unwrap(),
        held,
        "{line} {periods:?}"
    );
    let usd = line["usd"].as_f64().unwrap();
    assert!(
        (usd - held as f64 * 0.01).abs() < 1e-9,
        "{usd} for {held} s"
    );
    assert!((line["hourly_usd_now"].as_f64().unwrap() - 36.0).abs() < 1e-9);
    // The suspension is not paid: held time is less than the time since the
    // first period began by at least most of the 2 s it was stopped.
    let span = until - periods[0].started_at;
    assert!(held < span, "held {held} s of {span} s");
    assert!(v["budget"]["spend"]["hourly_now"].as_f64().unwrap() >= 36.0);

    // The same figure in /metrics (at least: time passes between the reads).
    let (code, text) = serve.get("/metrics").await;
    assert_eq!(code, 200);
    let text = text.as_str().unwrap().to_string();
    let (code, v) = serve.get("/v1/costs?by=provider").await;
    assert_eq!(code, 200, "{v}");
    let aws_report = v["report"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == "aws")
        .unwrap()["usd"]
        .as_f64()
        .unwrap();
    let metric = text
        .lines()
        .find_map(|l| l.strip_prefix("bpr_accrued_cost_usd_total{provider=\"aws\"} "))
        .unwrap_or_else(|| panic!("no accrued cost metric: {text}"))
        .parse::<f64>()
        .unwrap();
    assert!(
        metric >= usd - 1e-9 && metric <= aws_report + 1e-9,
        "metric {metric}, deployment {usd}, aws {aws_report}"
    );
    assert!(
        text.contains("# TYPE bpr_accrued_cost_usd_total counter")
            && text.contains("bpr_cost_per_hour_usd{provider=\"aws\"}"),
        "{text}"
    );

    let (code, v) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{id}"),
            None,
        )
        .await;
    assert!(code == 202 || code == 200, "{code} {v}");
    serve.wait_status(&id, &|s| s == "terminated").await;
    assert_eq!(moto.state(&instance).await, "terminated");
}

/// The database `bpr serve` writes for `env` (`<state_dir>/bpr.sqlite3`
/// unless the config says otherwise).
fn database_path(env: &TestEnv) -> std::path::PathBuf {
    let config =
        blueprint_remote_providers::config::Config::load(Some(&env.dir.path().join("bpr.toml")))
            .expect("the test config loads");
    config.database_path()
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_api_a_suspended_vm_is_terminated_when_the_grace_period_ends() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let serve = serve_with(&env, "[operator.payment]\ngrace_secs = 2\n").await;
    let moto = Moto::new();
    let id = unique_id("srv-grace");
    let instance = deploy_active(&serve, &id, 0.0104, 3600).await;
    renew(&serve, &id, 1).await;
    serve.wait_status(&id, &|s| s == "suspended").await;
    serve.wait_status(&id, &|s| s == "terminated").await;
    assert_eq!(moto.state(&instance).await, "terminated");
    let h = history(&serve, &id).await;
    assert!(
        h.iter()
            .any(|l| l.contains("suspended -> terminating") && l.contains("grace period")),
        "{h:#?}"
    );
    // Nothing is held any more: the deployment accrues nothing now.
    let (_, v) = serve.get("/v1/costs").await;
    let line = v["report"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no line for {id}: {v}"));
    assert_eq!(line["hourly_usd_now"].as_f64(), Some(0.0), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_api_a_deploy_over_budget_is_a_422_naming_the_limit_and_nothing_is_recorded() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let serve = serve_with(&env, "[operator.budget]\nmax_cost_per_hour = 0.012\n").await;
    let events = serve.events("").await;
    let moto = Moto::new();
    let first = unique_id("srv-budget");
    let instance = deploy_active(&serve, &first, 0.0104, 3600).await;
    // 0.0104 of 0.012 per hour is 87 %: the 80 % alert.
    let t0 = Instant::now();
    while !events.all().iter().any(|(e, _, _)| e == "budget-alert") {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no budget-alert: {:?}",
            events.all()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let alert = events
        .all()
        .into_iter()
        .find(|(e, _, _)| e == "budget-alert")
        .unwrap()
        .2;
    assert_eq!(alert["limit"], "hourly", "{alert}");

    let second = unique_id("srv-budget");
    let (code, v) = serve
        .post("/v1/deployments", body(&second, 0.0104, 3600))
        .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["error"]["code"], "over-budget", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("max_cost_per_hour"), "{msg}");
    let (code, _) = serve.get(&format!("/v1/deployments/{second}")).await;
    assert_eq!(code, 404, "nothing recorded");
    let (_, v) = serve.get("/metrics").await;
    let text = v.as_str().unwrap();
    let ratio = text
        .lines()
        .find_map(|l| l.strip_prefix("bpr_budget_used_ratio{limit=\"hourly\"} "))
        .unwrap_or_else(|| panic!("no budget ratio: {text}"))
        .parse::<f64>()
        .unwrap();
    assert!((ratio - 0.0104 / 0.012).abs() < 1e-9, "{ratio}");

    let (code, v) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{first}"),
            None,
        )
        .await;
    assert!(code == 202 || code == 200, "{code} {v}");
    serve.wait_status(&first, &|s| s == "terminated").await;
    assert_eq!(moto.state(&instance).await, "terminated");
}

#[tokio::test(flavor = "multi_thread")]
async fn over_the_api_a_service_initiated_over_budget_is_a_422_before_the_202_and_a_replay_of_a_running_one_is_answered()
 {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let moto = Moto::new();
    let mut serve = serve_with(&env, "").await;
    let s = crate::serve::unique_service();
    let path = |s: u64| format!("/v1/services/13/{s}");
    let body = json!({
        "resource_requirements": {"cpu": 1.0, "memory_gb": 1.0, "storage_gb": 8.0, "gpu_count": null, "allow_spot": false},
        "artifact": {"ContainerImage": "ghcr.io/example/app:1.2"},
        "ttl_secs": 3600
    });
    let (code, v) = serve
        .post(&format!("{}/initiated", path(s)), body.clone())
        .await;
    assert_eq!(code, 202, "{v}");
    let t0 = Instant::now();
    let rec = loop {
        let (_, v) = serve.get(&path(s)).await;
        if v["status"] == "active" {
            break v["deployment"].clone();
        }
        assert!(
            v["status"] != "rejected" && t0.elapsed() < Duration::from_secs(120),
            "{v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = rec["id"].as_str().unwrap().to_string();
    let hourly = rec["hourly_usd"].as_f64().expect("a priced placement");
    assert!(hourly > 0.0, "{rec}");

    // The operator sets a budget the running service fits and a second does not.
    serve.signal("TERM");
    assert_eq!(serve.wait_exit(Duration::from_secs(60)), Some(0));
    let limit = hourly * 1.5;
    let mut serve = serve_with(
        &env,
        &format!("[operator.budget]\nmax_cost_per_hour = {limit}\n"),
    )
    .await;
    let events = serve.events("").await;

    // A replay of the running service is answered with its deployment.
    let (code, v) = serve
        .post(&format!("{}/initiated", path(s)), body.clone())
        .await;
    assert_eq!(
        (code, v["deployment"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{v}"
    );
    // A new service is refused before the 202, naming the limit and the figures.
    let (code, v) = serve
        .post(&format!("{}/initiated", path(s + 1)), body.clone())
        .await;
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (422, Some("over-budget")),
        "{v}"
    );
    let msg = v["error"]["message"].as_str().unwrap();
    for figure in [
        "[operator.budget] max_cost_per_hour".to_string(),
        format!("${limit:.4}/h"),
        format!("cost ${hourly:.4}/h now"),
        format!("adds ${hourly:.4}/h"),
    ] {
        assert!(msg.contains(&figure), "{figure:?} not in {msg}");
    }
    // Nothing was accepted, recorded or started for it.
    let (code, v) = serve.get(&path(s + 1)).await;
    assert_eq!(code, 404, "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = (s + 1).to_string();
    assert!(
        !events
            .all()
            .iter()
            .any(|(_, _, v)| v["service_id"] == refused.as_str()),
        "{:?}",
        events.all()
    );
    let (_, v) = serve.get("/v1/deployments?limit=1000").await;
    assert!(
        !v["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["service_key"] == format!("13/{}", s + 1)),
        "{v}"
    );

    let (code, v) = serve
        .post(&format!("{}/terminated", path(s)), json!({}))
        .await;
    assert_eq!(code, 202, "{v}");
    let rec = serve.wait_status(&id, &|s| s == "terminated").await;
    wait_moto(&moto, rec["instance_id"].as_str().unwrap(), "terminated").await;
    serve.signal("TERM");
    assert_eq!(serve.wait_exit(Duration::from_secs(60)), Some(0));
}
