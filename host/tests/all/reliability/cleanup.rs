//! Issue 20 items 1 and 5: `bpr cleanup` says what it resolved, and its sweep
//! finds instances and side resources labelled as this host's that no record
//! owns (while leaving another host's alone).

use blueprint_remote_providers::Host;
use blueprint_remote_providers::db::Database;
use blueprint_remote_providers::wit::{InstanceRef, InstanceSpec, PortRule, Protocol};

use super::harness::{
    Bpr, Fault, KillProxy, Moto, SSH_KEY, aws_section, is, run_until_killed, text, unique_id,
    write_creds,
};
use crate::support::{TestEnv, moto_lock};

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_names_every_deployment_it_resolved_and_how() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let proxy = KillProxy::start(moto.url.clone()).await;
    let env = TestEnv::new();
    let bpr = Bpr::for_aws(&env, &proxy.url());
    let run = unique_id("report");
    let (adoptable, halfmade) = (format!("{run}-a"), format!("{run}-h"));
    for (id, fault) in [
        (&adoptable, Fault::KillAfter),
        (&halfmade, Fault::KillBefore),
    ] {
        proxy.set_plan(move |_, call| {
            if is(call, "RunInstances") {
                fault
            } else {
                Fault::Forward
            }
        });
        assert!(
            run_until_killed(&proxy, bpr.deploy(id)).await,
            "{id} was killed"
        );
    }
    proxy.forward_all();
    let out = bpr.run(&["cleanup"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("adopted {adoptable}"))),
        "{}",
        text(&out)
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with(&format!("failed {halfmade}"))),
        "{}",
        text(&out)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains("1 adopted") && summary.contains("1 failed"),
        "the summary counts what was resolved: {summary}"
    );
    assert!(moto.leftovers(&halfmade).await.is_empty());
    let out = bpr.run(&["terminate", &adoptable]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(moto.leftovers(&adoptable).await.is_empty());
}

fn spec(deployment: &str, host_id: &str) -> InstanceSpec {
    InstanceSpec {
        deployment_id: deployment.into(),
        idempotency_key: format!("{deployment}-c1"),
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
        labels: vec![
            ("bpr-deployment".into(), deployment.into()),
            ("bpr-host".into(), host_id.into()),
            ("bpr-managed".into(), "true".into()),
        ],
        workload: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_deletes_what_only_this_host_labelled_and_no_record_owns() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    let proxy = KillProxy::start(moto.url.clone()).await;
    let env = TestEnv::new();
    let bpr = Bpr::for_aws(&env, &proxy.url());
    // The host's database (and so its id) exists from the first command.
    let out = bpr.run(&["status"]);
    assert!(out.status.success(), "{}", text(&out));
    let ours = Database::open(&env.state.join("bpr.sqlite3"))
        .unwrap()
        .host_id()
        .unwrap();
    let creds = write_creds(&env);
    let host: Host = env.start(&aws_section(&proxy.url(), &creds)).await;
    let aws = host.provider("aws").unwrap();
    let run = unique_id("orphan");
    let (whole, half, foreign) = (format!("{run}-w"), format!("{run}-h"), format!("{run}-f"));

    // An instance (with its key pair and group) no record knows of: a
    // database restored from an old copy, a host that lost its records.
    proxy.forward_all();
    aws.create_instance(spec(&whole, &ours))
        .await
        .expect("made");
    // Only a key pair and a group: RunInstances never arrived.
    let mut down = false;
    proxy.set_plan(move |_, call| {
        down |= is(call, "RunInstances");
        if down { Fault::Reset } else { Fault::Forward }
    });
    assert!(aws.create_instance(spec(&half, &ours)).await.is_err());
    // Another host's instance, on the same account.
    proxy.forward_all();
    aws.create_instance(spec(&foreign, "0123456789abcdef"))
        .await
        .expect("made");
    for id in [&whole, &half, &foreign] {
        assert!(!moto.leftovers(id).await.is_empty(), "{id} exists in moto");
    }

    let out = bpr.run(&["cleanup"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for id in [&whole, &half] {
        assert!(
            moto.leftovers(id).await.is_empty(),
            "{id} is left: {:?}",
            moto.leftovers(id).await
        );
        assert!(
            stdout.contains(id.as_str()),
            "{id} is reported: {}",
            text(&out)
        );
    }
    let theirs = moto.leftovers(&foreign).await;
    assert_eq!(theirs.instances.len(), 1, "another host's instance stays");
    assert!(!stdout.contains(foreign.as_str()), "{}", text(&out));

    // Tidy up the other host's things.
    let r = InstanceRef {
        id: String::new(),
        region: "us-east-1".into(),
        zone: None,
        resources: vec![],
        labels: vec![("bpr-deployment".into(), foreign.clone())],
    };
    for _ in 0..50 {
        if aws.delete_instance(r.clone()).await.unwrap()
            == blueprint_remote_providers::wit::DeleteStatus::Deleted
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(moto.leftovers(&foreign).await.is_empty());
    host.shutdown().await;
}
