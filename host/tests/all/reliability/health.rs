//! Issue 20 item 5: a health wait stops as soon as the provider says the
//! instance is not found, instead of polling on to its deadline.

use std::time::{Duration, Instant};

use blueprint_remote_providers::provisioning::{
    DeployOptions, DeployRequest, HealthCheck, RetryPolicy, Target,
};
use blueprint_remote_providers::tracking::DeploymentStatus;

use super::harness::{Moto, aws_section, unique_id, write_creds};
use crate::support::{TestEnv, moto_lock};

#[tokio::test(flavor = "multi_thread")]
async fn a_health_wait_ends_when_the_provider_no_longer_knows_the_instance() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    env.add("aws");
    let creds = write_creds(&env);
    let host = env.start(&aws_section(&moto.url, &creds)).await;
    let id = unique_id("health-gone");
    let mut req = DeployRequest::new("7", "42");
    req.deployment_id = Some(id.clone());
    // moto's addresses answer nobody: the check can only keep waiting.
    req.health = Some(HealthCheck {
        port: 8080,
        path: Some("/healthz".into()),
    });
    let opts = DeployOptions {
        retry: RetryPolicy {
            max_tries: 3,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
        },
        health_timeout: Duration::from_secs(90),
        poll_initial: Duration::from_millis(100),
        poll_max: Duration::from_millis(300),
        ..DeployOptions::default()
    };
    let target = Target {
        provider: "aws".into(),
        region: "us-east-1".into(),
        zone: None,
        instance_type: "t3.micro".into(),
        spot: false,
        hourly_usd: Some(0.01),
    };
    let deploying = {
        let host = host.clone();
        tokio::spawn(async move { host.deploy_with(req, vec![target], &opts).await })
    };
    let started = Instant::now();
    loop {
        let status = host
            .status(Some(&id))
            .ok()
            .and_then(|mut v| v.pop())
            .map(|r| r.status);
        if status == Some(DeploymentStatus::Deploying) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never reached deploying: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The instance disappears (moto restarted empty).
    moto.reset().await;
    let gone = Instant::now();
    let err = deploying
        .await
        .unwrap()
        .expect_err("no instance, no deployment");
    let text = err.to_string();
    assert!(
        text.contains("no longer exists"),
        "the failure says why, not that a deadline passed: {text}"
    );
    assert!(
        gone.elapsed() < Duration::from_secs(45),
        "ended long before its 90 s health deadline ({:?})",
        gone.elapsed()
    );
    host.shutdown().await;
}
