//! Issue 13 item 4: cost accounting and the operator's budget, through the
//! library and the `bpr` binary with the real components under wasmtime —
//! accrued spend from each deployment's hourly price and the seconds it held
//! resources (across a suspension, a renewal and a heal), checked against the
//! hand computation; budget refusals before anything is written; the
//! `budget-alert` event at 80 %.

use std::process::Command;
use std::time::Duration;

use blueprint_remote_providers::costs::GroupBy;
use blueprint_remote_providers::costs::{Limit, month_bounds};
use blueprint_remote_providers::provisioning::{DeployError, HealthWatch, SupervisorOptions};
use blueprint_remote_providers::tracking::DeploymentStatus;
use blueprint_remote_providers::{EventKind, Host};

use crate::lifecycle::{Moto, aws_section, aws_target, fast, request, unique_id, wb_target};
use crate::support::{TestEnv, moto_lock};

/// 36 USD per hour: one cent per second, so seconds are easy to read in USD.
const PRICE: f64 = 36.0;

/// `[lo, hi]` unix seconds around `f`.
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, i64, i64) {
    let lo = chrono::Utc::now().timestamp();
    let out = f.await;
    (out, lo, chrono::Utc::now().timestamp())
}

fn within(t: i64, (lo, hi): (i64, i64), what: &str) {
    assert!(
        lo <= t && t <= hi,
        "{what} at {t}, expected within [{lo}, {hi}]"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn accrued_cost_across_a_suspension_a_renewal_and_a_heal_matches_the_hand_computation() {
    let _moto = moto_lock().await;
    let env = TestEnv::new();
    let rest = format!(
        "{}\n[operator.payment]\ngrace_secs = 3600\n[operator.health]\nauto_heal = true\n",
        aws_section(&env)
    );
    let host = env.start(&rest).await;
    let moto = Moto::new();
    let id = unique_id("cost");
    let mut req = request(&id);
    req.ttl_secs = Some(2);
    let sup = SupervisorOptions {
        deploy: fast(),
        ..SupervisorOptions::default()
    };

    // Runs, is suspended at expiry, renewed, interrupted and healed, terminated.
    let (rec, d_lo, d_hi) = timed(host.deploy_with(req, vec![aws_target(PRICE)], &fast())).await;
    let rec = rec.expect("deploys");
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let (_, s_lo, s_hi) = timed(host.cleanup_once(&sup)).await;
    assert_eq!(
        host.tracker().get(&id).unwrap().status,
        DeploymentStatus::Suspended
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (r, r_lo, r_hi) = timed(host.renew(&id, Some(3600), &fast())).await;
    assert_eq!(r.expect("renews").status, DeploymentStatus::Active);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    moto.ec2(&[
        ("Action", "StopInstances"),
        ("InstanceId.1", rec.instance_id.as_deref().unwrap()),
    ])
    .await;
    let mut watch = HealthWatch::default();
    let (report, h_lo, h_hi) = timed(host.health_pass(&mut watch, &fast())).await;
    assert_eq!(report.healed.len(), 1, "{report:?}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (done, t_lo, t_hi) = timed(host.terminate(&id)).await;
    assert_eq!(done.unwrap().status, DeploymentStatus::Terminated);

    // The ledger: the first instance until its suspension, the same instance
    // from the renewal until the heal deleted it, the replacement until the end.
    let usage = host.tracker().usage_of(&id).unwrap();
    assert_eq!(usage.len(), 3, "{usage:#?}");
    let (p1, p2, p3) = (&usage[0], &usage[1], &usage[2]);
    assert_eq!(p1.instance_id, p2.instance_id, "resumed the same VM");
    assert_ne!(p3.instance_id, p2.instance_id, "healed on a new VM");
    within(p1.started_at, (d_lo, d_hi), "first period start");
    within(p1.ended_at.unwrap(), (s_lo, s_hi), "suspension");
    within(p2.started_at, (r_lo, r_hi), "renewal");
    within(p3.started_at, (h_lo, h_hi), "replacement start");
    within(
        p2.ended_at.unwrap(),
        (h_lo, h_hi),
        "old instance deleted after the heal",
    );
    within(p3.ended_at.unwrap(), (t_lo, t_hi), "termination");
    assert_eq!(
        p1.end_reason.as_deref(),
        Some("suspended: instance stopped")
    );
    assert_eq!(
        p2.end_reason.as_deref(),
        Some("replaced: deleted after heal")
    );
    assert_eq!(p3.end_reason.as_deref(), Some("deleted"));
    assert!(usage.iter().all(|p| p.hourly_usd == Some(PRICE)));

    // By hand: 36 USD/h is 0.01 USD per second held.
    let held: i64 = usage
        .iter()
        .map(|p| p.ended_at.unwrap() - p.started_at)
        .sum();
    let expected = held as f64 * 0.01;
    let report = host.costs(None, GroupBy::Deployment).unwrap();
    let line = report.lines.iter().find(|l| l.key == id).expect("a line");
    assert_eq!(line.seconds, held);
    assert!(
        (line.usd - expected).abs() < 1e-9,
        "{} vs {expected}",
        line.usd
    );
    assert_eq!(line.hourly_usd_now, 0.0, "nothing held any more");
    // The suspension (at least the 1.5 s between suspension and renewal)
    // is not billed: the held time is shorter than the deployment's life.
    assert!(held < t_hi - d_lo, "held {held} s of {} s", t_hi - d_lo);

    // The same figure through `bpr costs --json`, from the database alone.
    let config = env.dir.path().join("costs.toml");
    std::fs::write(
        &config,
        format!("{}\n{rest}", env.host_section("warn", false)),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bpr"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "costs",
            "--by",
            "deployment",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cli = json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["key"] == id.as_str())
        .expect("the deployment's line");
    assert!(
        (cli["usd"].as_f64().unwrap() - expected).abs() < 1e-9,
        "{cli}"
    );
    assert_eq!(cli["seconds"].as_i64().unwrap(), held);

    let out = Command::new(env!("CARGO_BIN_EXE_bpr"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "costs",
            "--by",
            "provider",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("PROVIDER"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("aws ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("TOTAL")), "{text}");
}

/// A host with `well_behaved` and `extra` config.
async fn wb_host(env: &TestEnv, extra: &str) -> Host {
    env.add("well_behaved");
    env.start(&format!(
        "[providers.well_behaved.settings]\naddress = \"127.0.0.1\"\n{extra}"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hourly_budget_alerts_at_80_percent_and_refuses_what_would_exceed_it() {
    let env = TestEnv::new();
    let host = wb_host(&env, "[operator.budget]\nmax_cost_per_hour = 0.05\n").await;
    let mut events = host.subscribe();
    let a = unique_id("budget-a");
    host.deploy_with(request(&a), vec![wb_target(0.02)], &fast())
        .await
        .expect("0.02 of 0.05 fits");
    let b = unique_id("budget-b");
    host.deploy_with(request(&b), vec![wb_target(0.02)], &fast())
        .await
        .expect("0.04 of 0.05 fits");
    // 0.04 is 80 % of 0.05: one alert.
    let alert = loop {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an alert")
            .unwrap();
        if let EventKind::BudgetAlert {
            limit,
            limit_usd,
            used_usd,
        } = e.kind
        {
            assert!(e.deployment_id.is_empty(), "a budget is no deployment's");
            break (limit, limit_usd, used_usd);
        }
    };
    assert_eq!(alert.0, Limit::Hourly);
    assert_eq!(alert.1, 0.05);
    assert!((alert.2 - 0.04).abs() < 1e-9, "{alert:?}");

    let c = unique_id("budget-c");
    let err = host
        .deploy_with(request(&c), vec![wb_target(0.02)], &fast())
        .await
        .expect_err("0.06 is over 0.05");
    assert!(matches!(err, DeployError::BudgetExceeded(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("max_cost_per_hour is $0.0500/h")
            && text.contains("cost $0.0400/h now")
            && text.contains("well_behaved/test-1/wb.small adds $0.0200/h"),
        "{text}"
    );
    assert!(host.status(Some(&c)).is_err(), "nothing was recorded");

    // Room again once one is gone.
    host.terminate(&a).await.unwrap();
    host.deploy_with(request(&c), vec![wb_target(0.02)], &fast())
        .await
        .expect("fits after a termination");
    for id in [&b, &c] {
        host.terminate(id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_monthly_budget_counts_what_a_deployment_commits_until_its_ttl() {
    let env = TestEnv::new();
    let host = wb_host(&env, "[operator.budget]\nmonthly_usd = 10.0\n").await;
    let now = chrono::Utc::now().timestamp();
    let (_, month_end) = month_bounds(now);
    // 100 USD/h until the month ends is over 10 USD unless 6 minutes are left.
    if month_end - now > 600 {
        let id = unique_id("month-open");
        let err = host
            .deploy_with(request(&id), vec![wb_target(100.0)], &fast())
            .await
            .expect_err("unlimited at 100 USD/h is over the month's 10 USD");
        let text = err.to_string();
        assert!(text.contains("monthly_usd is $10.00"), "{text}");
        assert!(host.status(Some(&id)).is_err(), "nothing was recorded");
    }
    // A 60 s TTL commits 100/60 = 1.67 USD.
    let id = unique_id("month-ttl");
    let mut req = request(&id);
    req.ttl_secs = Some(60);
    host.deploy_with(req, vec![wb_target(100.0)], &fast())
        .await
        .expect("a short paid time fits");
    let spend = host.spend().unwrap();
    assert!(
        spend.month_committed <= 100.0 * 60.0 / 3600.0 + 1e-9,
        "{spend:?}"
    );
    assert!((spend.hourly_now - 100.0).abs() < 1e-9);
    host.terminate(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_candidate_above_the_operators_price_cap_is_refused_before_anything_is_written() {
    let env = TestEnv::new();
    let host = wb_host(&env, "[operator.deployment]\nmax_cost_per_hour = 0.01\n").await;
    let id = unique_id("cap");
    let err = host
        .deploy_with(request(&id), vec![wb_target(0.02)], &fast())
        .await
        .expect_err("0.02 is above the cap");
    let text = err.to_string();
    assert!(
        text.contains("[operator.deployment] max_cost_per_hour is $0.0100/h")
            && text.contains("well_behaved/test-1/wb.small costs $0.0200/h"),
        "{text}"
    );
    assert!(host.status(Some(&id)).is_err());
    // A cheaper candidate behind it is used.
    let ok = host
        .deploy_with(
            request(&id),
            vec![wb_target(0.02), wb_target(0.005)],
            &fast(),
        )
        .await
        .expect("the cheaper candidate fits");
    assert_eq!(ok.hourly_usd, Some(0.005));
    host.terminate(&id).await.unwrap();
}
