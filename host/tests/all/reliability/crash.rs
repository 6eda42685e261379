//! The crash driver: the real `bpr deploy` and `bpr terminate` SIGKILLed at
//! every EC2 call they make (before the call reaches moto, and after moto
//! acted on it) and at random times; answers lost after EC2 acted; moto
//! restarted empty. After `bpr cleanup`, nothing may be left in moto that no
//! active record points at: no instance, no security group, no key pair.

use std::time::{Duration, Instant};

use blueprint_remote_providers::provisioning::{DeployOptions, RetryPolicy, Target};
use blueprint_remote_providers::tracking::{DeploymentRecord, DeploymentStatus};

use super::harness::{
    Bpr, Fault, KillProxy, Moto, aws_section, is, next, run_and_kill_at, run_until_killed, text,
    unique_id, write_creds,
};
use crate::support::{TestEnv, moto_lock};

/// Nothing of `ids` is left half-done, and nothing is left in moto except the
/// instance of each active record, which is then terminated through `bpr`.
async fn assert_nothing_leaked(bpr: &Bpr, moto: &Moto, ids: &[String]) -> Vec<DeploymentRecord> {
    let records = bpr.status();
    let record = |id: &str| records.iter().find(|r| r.id == id).cloned();
    for id in ids {
        let made = moto.instances_of(id).await;
        assert!(
            made.len() <= 1,
            "{id} made {} instances: {made:?}",
            made.len()
        );
        let Some(r) = record(id) else {
            assert!(
                moto.leftovers(id).await.is_empty(),
                "{id}: something exists in moto without a record"
            );
            continue;
        };
        assert!(
            !r.status.is_in_flight(),
            "{id} left {} after cleanup: {r:?}",
            r.status
        );
        if r.status == DeploymentStatus::Active {
            assert_eq!(
                moto.live_instances_of(id).await,
                vec![r.instance_id.clone().unwrap_or_default()],
                "{id}: an active record points at its one live instance"
            );
            let out = bpr.run(&["terminate", id]);
            assert!(out.status.success(), "bpr terminate {id}: {}", text(&out));
        } else {
            assert!(
                !r.holds_resources(),
                "{id} is {} and still holds resources: {r:?}",
                r.status
            );
        }
        let left = moto.leftovers(id).await;
        assert!(
            left.is_empty(),
            "{id} (record {}) left in moto: {left:?}; history: {}",
            r.status,
            String::from_utf8_lossy(&bpr.run(&["history", id]).stdout)
        );
    }
    records
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkills_at_every_ec2_call_of_deploy_and_terminate_leave_nothing_in_moto_after_cleanup() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    // moto answers in time proportional to what it holds; start it empty.
    moto.reset().await;
    let proxy = KillProxy::start(moto.url.clone()).await;
    let env = TestEnv::new();
    let bpr = Bpr::for_aws(&env, &proxy.url());
    let run = unique_id("kill");

    // Calibrate: the EC2 calls of one whole deploy and of one whole terminate.
    let cal = format!("{run}-cal");
    proxy.forward_all();
    let started = Instant::now();
    let out = bpr.deploy(&cal).output().unwrap();
    let full_deploy = started.elapsed();
    assert!(out.status.success(), "bpr deploy: {}", text(&out));
    let deploy_calls = proxy.actions();
    let pos = |a: &str| deploy_calls.iter().position(|c| is(c, a));
    let (key, sg, run_at) = (
        pos("ImportKeyPair"),
        pos("CreateSecurityGroup"),
        pos("RunInstances"),
    );
    assert!(
        matches!((key, sg, run_at), (Some(k), Some(s), Some(r)) if k < r && s < r),
        "the key pair and security group are made before the instance: {deploy_calls:?}"
    );
    proxy.forward_all();
    let out = bpr.run(&["terminate", &cal]);
    assert!(out.status.success(), "bpr terminate: {}", text(&out));
    let terminate_calls = proxy.actions();

    let mut ids = vec![cal];
    let mut kills = 0;
    // Deploys: a SIGKILL at every EC2 call, before moto sees it and after it acted.
    for k in 0..deploy_calls.len() {
        for (tag, fault) in [("b", Fault::KillBefore), ("a", Fault::KillAfter)] {
            let id = format!("{run}-d{k}{tag}");
            proxy.set_plan(move |n, _| if n == k { fault } else { Fault::Forward });
            let killed = run_until_killed(&proxy, bpr.deploy(&id)).await;
            assert!(
                killed || k + 1 >= deploy_calls.len(),
                "deploy {id} was not killed at call {k} ({})",
                deploy_calls[k]
            );
            kills += killed as usize;
            ids.push(id);
        }
    }
    // Deploys killed at random times (also between calls, mid-write).
    proxy.forward_all();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..10 {
        let id = format!("{run}-dt{i}");
        let at = full_deploy.mul_f64((next(&mut seed) % 1000) as f64 / 1000.0 * 1.1);
        kills += run_and_kill_at(bpr.deploy(&id), at).await as usize;
        ids.push(id);
    }

    // Terminates: deploy, then SIGKILL the terminate at each of its calls.
    let mut doomed = Vec::new();
    for k in 0..terminate_calls.len() {
        for (tag, fault) in [("b", Fault::KillBefore), ("a", Fault::KillAfter)] {
            doomed.push((format!("{run}-t{k}{tag}"), Some((k, fault))));
        }
    }
    for i in 0..6 {
        doomed.push((format!("{run}-tt{i}"), None));
    }
    for (id, kill) in &doomed {
        proxy.forward_all();
        let out = bpr.deploy(id).output().unwrap();
        assert!(out.status.success(), "bpr deploy {id}: {}", text(&out));
        let mut terminate = bpr.command();
        terminate.args(["terminate", id]);
        match *kill {
            Some((k, fault)) => {
                proxy.set_plan(move |n, _| if n == k { fault } else { Fault::Forward });
                kills += run_until_killed(&proxy, terminate).await as usize;
            }
            None => {
                let at = Duration::from_millis(next(&mut seed) % 1500);
                kills += run_and_kill_at(terminate, at).await as usize;
            }
        }
        ids.push(id.clone());
    }

    // Restart: `bpr cleanup` resolves what the dead processes left.
    proxy.forward_all();
    let out = bpr.run(&["cleanup"]);
    assert!(out.status.success(), "bpr cleanup: {}", text(&out));
    let records = assert_nothing_leaked(&bpr, &moto, &ids).await;
    let mut by_status = std::collections::BTreeMap::<String, usize>::new();
    for r in records.iter().filter(|r| ids.contains(&r.id)) {
        *by_status.entry(r.status.to_string()).or_default() += 1;
    }
    eprintln!(
        "crash driver: {} runs, {kills} SIGKILLed ({} deploy calls, {} terminate calls, full deploy {full_deploy:?}); after cleanup {by_status:?}",
        ids.len(),
        deploy_calls.len(),
        terminate_calls.len()
    );
}

/// Short timings for library deploys against moto.
fn fast() -> DeployOptions {
    DeployOptions {
        retry: RetryPolicy {
            max_tries: 3,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(1),
        },
        running_timeout: Duration::from_secs(20),
        health_timeout: Duration::from_secs(20),
        delete_timeout: Duration::from_secs(5),
        poll_initial: Duration::from_millis(50),
        poll_max: Duration::from_millis(200),
        progress: None,
    }
}

fn us_east(instance_type: &str) -> Target {
    Target {
        provider: "aws".into(),
        region: "us-east-1".into(),
        zone: None,
        instance_type: instance_type.into(),
        spot: false,
        hourly_usd: Some(0.01),
    }
}

fn request(id: &str) -> blueprint_remote_providers::provisioning::DeployRequest {
    let mut r = blueprint_remote_providers::provisioning::DeployRequest::new("7", "42");
    r.deployment_id = Some(id.to_string());
    r.ssh_public_keys = vec![super::harness::SSH_KEY.to_string()];
    r
}

/// Issue 20 item 1: RunInstances accepted, its answer lost, then an outage.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_whose_answer_was_lost_in_an_outage_stays_unresolved_until_a_listing_answers() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let proxy = KillProxy::start(moto.url.clone()).await;
    let env = TestEnv::new();
    let bpr = Bpr::for_aws(&env, &proxy.url());
    let creds = write_creds(&env);
    let host = env.start(&aws_section(&proxy.url(), &creds)).await;
    let id = unique_id("lost");

    // EC2 runs the instance, the answer is lost, and nothing answers after that.
    let mut down = false;
    proxy.set_plan(move |_, call| {
        if down {
            return Fault::Reset;
        }
        if is(call, "RunInstances") {
            down = true;
            return Fault::ForwardThenReset;
        }
        Fault::Forward
    });
    let err = host
        .deploy_with(request(&id), vec![us_east("t3.micro")], &fast())
        .await
        .expect_err("nothing answers: the deploy fails");
    assert_eq!(moto.live_instances_of(&id).await.len(), 1, "EC2 did run it");
    let rec = host.status(Some(&id)).unwrap().pop().unwrap();
    assert!(
        rec.holds_resources() || rec.status.is_in_flight(),
        "the record must stay unresolved while nobody could list by its label: {rec:?} ({err})"
    );

    // Cleanup during the outage resolves nothing and says so.
    let out = bpr.run(&["cleanup"]);
    assert!(
        !out.status.success(),
        "cleanup in an outage: {}",
        text(&out)
    );
    let rec = host.status(Some(&id)).unwrap().pop().unwrap();
    assert!(
        rec.holds_resources() || rec.status.is_in_flight(),
        "still unresolved: {rec:?}"
    );

    // The outage ends: one cleanup finds the instance by its label and deletes it.
    proxy.forward_all();
    let out = bpr.run(&["cleanup"]);
    assert!(out.status.success(), "cleanup: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "cleanup reports what it resolved: {}",
        text(&out)
    );
    let rec = host.status(Some(&id)).unwrap().pop().unwrap();
    assert!(
        rec.status.is_final() && !rec.holds_resources(),
        "resolved: {rec:?}"
    );
    let left = moto.leftovers(&id).await;
    assert!(left.is_empty(), "left in moto: {left:?}");
    host.shutdown().await;
}

/// moto killed (connections refused) and restarted empty while deployments
/// are active and one is mid-flight: an outage resolves nothing wrongly, and
/// once moto answers again the records say what happened.
#[tokio::test(flavor = "multi_thread")]
async fn moto_restarted_empty_leaves_no_record_unresolved_and_none_wrongly_failed_in_the_outage() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let proxy = KillProxy::start(moto.url.clone()).await;
    let env = TestEnv::new();
    let bpr = Bpr::for_aws(&env, &proxy.url());
    let run = unique_id("empty");
    let (active, mid) = (format!("{run}-a"), format!("{run}-m"));

    proxy.forward_all();
    let out = bpr.deploy(&active).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    proxy.set_plan(|_, call| {
        if is(call, "RunInstances") {
            Fault::KillAfter
        } else {
            Fault::Forward
        }
    });
    assert!(run_until_killed(&proxy, bpr.deploy(&mid)).await);

    // moto dies: cleanup fails and changes nothing.
    proxy.set_plan(|_, _| Fault::Reset);
    moto.reset().await;
    let out = bpr.run(&["cleanup"]);
    assert!(!out.status.success(), "{}", text(&out));
    let records = bpr.status();
    let status_of = |id: &str| records.iter().find(|r| r.id == id).unwrap().status;
    assert_eq!(status_of(&active), DeploymentStatus::Active);
    assert!(status_of(&mid).is_in_flight(), "{:?}", status_of(&mid));

    // moto is back, empty: both resolve, nothing is left.
    proxy.forward_all();
    let out = bpr.run(&["cleanup"]);
    assert!(out.status.success(), "{}", text(&out));
    let records = bpr.status();
    for id in [&active, &mid] {
        let r = records.iter().find(|r| &r.id == id).unwrap();
        assert!(r.status.is_final() && !r.holds_resources(), "{id}: {r:?}");
        assert!(moto.leftovers(id).await.is_empty());
    }
}
