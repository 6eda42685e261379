//! Issue 20 item 3 (and 5's unknown region), at the `aws` component: what it
//! creates next to an instance (key pair, security group) is labelled with
//! the deployment as it is created, and `delete-instance` finds and deletes
//! it also when the instance never existed, is unknown or is already gone.
//!
//! The contract (wit/provider.wit, `delete-instance`): an `instance-ref` with
//! an empty `id` and the deployment's `bpr-deployment` label asks for
//! everything that deployment left in that region.

use std::time::Duration;

use blueprint_remote_providers::provisioning::{DeployOptions, RetryPolicy, Target};
use blueprint_remote_providers::tracking::{AttemptOutcome, DeploymentStatus};
use blueprint_remote_providers::wit::{
    DeleteStatus, InstanceQuery, InstanceRef, InstanceSpec, InstanceState, PortRule, Protocol,
    ProviderError,
};
use blueprint_remote_providers::{CallError, Host, ProviderHandle};

use super::harness::{Fault, KillProxy, Moto, SSH_KEY, aws_section, is, unique_id, write_creds};
use crate::support::{TestEnv, moto_lock};

fn spec(deployment: &str, attempt: u32) -> InstanceSpec {
    InstanceSpec {
        deployment_id: deployment.into(),
        idempotency_key: format!("{deployment}-c{attempt}"),
        region: "us-east-1".into(),
        zone: None,
        instance_type: "t3.micro".into(),
        spot: false,
        image: None,
        disk_gib: 0,
        ssh_public_keys: vec![SSH_KEY.into()],
        user_data: None,
        open_ports: vec![PortRule {
            port: 8080,
            end_port: None,
            protocol: Protocol::Tcp,
            source_cidrs: vec![],
        }],
        labels: labels(deployment),
        workload: None,
    }
}

fn labels(deployment: &str) -> Vec<(String, String)> {
    vec![
        ("bpr-deployment".into(), deployment.into()),
        ("bpr-managed".into(), "true".into()),
    ]
}

/// What the host passes when it knows no instance: the deployment's labels.
fn leftovers_ref(deployment: &str) -> InstanceRef {
    InstanceRef {
        id: String::new(),
        region: "us-east-1".into(),
        zone: None,
        resources: vec![],
        labels: labels(deployment),
    }
}

async fn delete_until_gone(aws: &ProviderHandle, r: &InstanceRef) {
    for _ in 0..60 {
        match aws.delete_instance(r.clone()).await {
            Ok(DeleteStatus::Deleted) => return,
            Ok(DeleteStatus::InProgress) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => panic!("delete-instance {r:?} failed: {e}"),
        }
    }
    panic!("delete-instance {r:?} still in progress after 60 calls");
}

async fn host(env: &TestEnv, endpoint: &str) -> (Host, ProviderHandle) {
    env.add("aws");
    let creds = write_creds(env);
    let host = env.start(&aws_section(endpoint, &creds)).await;
    let aws = host.provider("aws").expect("aws loads");
    (host, aws)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_id_deletes_the_key_pair_and_security_group_a_create_left_without_an_instance() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let proxy = KillProxy::start(moto.url.clone()).await;
    let env = TestEnv::new();
    let (host, aws) = host(&env, &proxy.url()).await;
    let dep = unique_id("left");

    // RunInstances never arrives and nothing answers after it: the create's
    // own cleanup cannot run either (as when the process is killed there).
    let mut down = false;
    proxy.set_plan(move |_, call| {
        down |= is(call, "RunInstances");
        if down { Fault::Reset } else { Fault::Forward }
    });
    assert!(aws.create_instance(spec(&dep, 1)).await.is_err());
    let left = moto.leftovers(&dep).await;
    assert!(left.instances.is_empty(), "{left:?}");
    assert_eq!(
        (left.security_groups.len(), left.key_pairs.len()),
        (1, 1),
        "both were made, labelled with the deployment, before RunInstances: {left:?}"
    );

    // A listing by label reports what is left without an instance: an entry
    // with an empty id, terminated, carrying the deployment's labels and resources.
    proxy.forward_all();
    let listed = aws
        .list_instances(InstanceQuery {
            regions: vec!["us-east-1".into()],
            labels: vec![("bpr-deployment".into(), dep.clone())],
        })
        .await
        .expect("list-instances");
    let entry = listed
        .iter()
        .find(|i| i.id.is_empty())
        .unwrap_or_else(|| panic!("no leftovers entry in {listed:?}"));
    assert_eq!(entry.state, InstanceState::Terminated);
    assert!(
        entry
            .labels
            .contains(&("bpr-deployment".into(), dep.clone()))
    );
    let kinds: Vec<&str> = entry.resources.iter().map(|r| r.kind.as_str()).collect();
    assert!(
        kinds.contains(&"security-group") && kinds.contains(&"key-pair"),
        "{kinds:?}"
    );

    delete_until_gone(&aws, &leftovers_ref(&dep)).await;
    let left = moto.leftovers(&dep).await;
    assert!(left.is_empty(), "left in moto: {left:?}");
    // And again: nothing to do is `deleted`, not an error.
    assert_eq!(
        aws.delete_instance(leftovers_ref(&dep)).await.unwrap(),
        DeleteStatus::Deleted
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_an_unknown_instance_id_still_removes_what_its_deployment_left() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let (host, aws) = host(&env, &moto.url).await;
    let dep = unique_id("gone");
    let made = aws.create_instance(spec(&dep, 1)).await.expect("created");
    // The instance dies outside the host (spot reclaim, a console click).
    moto.ec2(&[("Action", "TerminateInstances"), ("InstanceId.1", &made.id)])
        .await;
    // The host only knows an id EC2 no longer reports, and no resources.
    let r = InstanceRef {
        id: "i-0123456789abcdef0".into(),
        region: "us-east-1".into(),
        zone: None,
        resources: vec![],
        labels: labels(&dep),
    };
    delete_until_gone(&aws, &r).await;
    let left = moto.leftovers(&dep).await;
    assert!(left.is_empty(), "left in moto: {left:?}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_of_one_deployment_keep_the_shared_security_group_until_the_last_goes() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let (host, aws) = host(&env, &moto.url).await;
    let dep = unique_id("pair");
    let first = aws.create_instance(spec(&dep, 1)).await.expect("first");
    let second = aws.create_instance(spec(&dep, 2)).await.expect("second");
    assert_ne!(first.id, second.id);

    let r = |i: &blueprint_remote_providers::wit::Instance| InstanceRef {
        id: i.id.clone(),
        region: i.region.clone(),
        zone: None,
        resources: i.resources.clone(),
        labels: labels(&dep),
    };
    delete_until_gone(&aws, &r(&first)).await;
    let left = moto.leftovers(&dep).await;
    assert_eq!(left.instances, vec![second.id.clone()], "{left:?}");
    assert_eq!(
        left.security_groups.len(),
        1,
        "still used by the second: {left:?}"
    );
    delete_until_gone(&aws, &r(&second)).await;
    let left = moto.leftovers(&dep).await;
    assert!(left.is_empty(), "left in moto: {left:?}");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_region_is_refused_by_name_without_calling_ec2_and_the_next_candidate_runs() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let proxy = KillProxy::start(moto.url.clone()).await;
    let env = TestEnv::new();
    let (host, aws) = host(&env, &proxy.url()).await;

    let err = aws
        .create_instance(InstanceSpec {
            region: "xx-nowhere-1".into(),
            ..spec(&unique_id("region"), 1)
        })
        .await;
    match err {
        Err(CallError::Provider(ProviderError::RegionUnavailable(m))) => {
            assert!(m.contains("xx-nowhere-1"), "{m}")
        }
        other => panic!("expected region-unavailable, got {other:?}"),
    }

    // Through the orchestrator with its default retries: no minute of
    // retries, the next candidate is tried at once.
    let id = unique_id("region");
    let mut req = blueprint_remote_providers::provisioning::DeployRequest::new("7", "42");
    req.deployment_id = Some(id.clone());
    let candidate = |region: &str| Target {
        provider: "aws".into(),
        region: region.into(),
        zone: None,
        instance_type: "t3.micro".into(),
        spot: false,
        hourly_usd: Some(0.01),
    };
    let opts = DeployOptions {
        retry: RetryPolicy::default(),
        poll_initial: Duration::from_millis(50),
        ..DeployOptions::default()
    };
    proxy.forward_all();
    let rec = host
        .deploy_with(
            req,
            vec![candidate("xx-nowhere-1"), candidate("us-east-1")],
            &opts,
        )
        .await
        .expect("the second candidate deploys");
    assert_eq!(rec.status, DeploymentStatus::Active);
    let attempts = host.tracker().attempts(&id).unwrap();
    assert_eq!(attempts[0].outcome, AttemptOutcome::Failover);
    assert!(
        attempts[0]
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("xx-nowhere-1")),
        "{attempts:?}"
    );
    let calls = proxy.actions();
    assert!(
        !calls.iter().any(|c| c.ends_with("@xx-nowhere-1")),
        "EC2 was called in the unknown region: {calls:?}"
    );
    host.terminate_with(&id, &opts, "test done").await.unwrap();
    assert!(moto.leftovers(&id).await.is_empty());
    host.shutdown().await;
}
