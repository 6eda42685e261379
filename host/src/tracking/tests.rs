//! Unit tests of the state machine and the tracker store.

use std::collections::BTreeMap;

use super::*;
use crate::clock::unix_now as now;
use crate::db::testing::{Backend, TestDb, on_both_backends};
use DeploymentStatus::*;

/// The allowed transitions, exhaustively: (from, to, needs resources?).
/// `None` = allowed regardless, `Some(true)` = only while holding resources.
const ALLOWED: &[(DeploymentStatus, DeploymentStatus, Option<bool>)] = &[
    (Planned, Provisioning, None),
    (Planned, Failed, None),
    (Provisioning, Provisioned, None),
    (Provisioning, Terminating, Some(true)),
    (Provisioning, Failed, None),
    (Provisioned, Deploying, None),
    (Provisioned, Terminating, None),
    (Provisioned, Failed, None),
    (Deploying, Active, None),
    (Deploying, Terminating, None),
    (Deploying, Failed, None),
    (Active, Suspended, None),
    (Active, Terminating, None),
    (Active, Failed, None),
    (Suspended, Active, None),
    (Suspended, Terminating, None),
    (Suspended, Failed, None),
    (Terminating, Terminated, None),
    (Terminating, Failed, None),
    (Failed, Terminating, Some(true)),
];

#[test]
fn every_pair_of_statuses_follows_the_transition_table() {
    for from in DeploymentStatus::ALL {
        for to in DeploymentStatus::ALL {
            for holds in [false, true] {
                let expected = ALLOWED
                    .iter()
                    .any(|(f, t, need)| *f == from && *t == to && need.is_none_or(|n| n == holds));
                assert_eq!(
                    from.can_become(to, holds),
                    expected,
                    "{from} -> {to} (holds resources: {holds})"
                );
            }
        }
    }
}

#[test]
fn failed_is_reachable_from_every_non_final_state_and_from_no_final_one() {
    for from in DeploymentStatus::ALL {
        assert_eq!(
            from.can_become(Failed, false),
            !from.is_final(),
            "{from} -> failed"
        );
    }
}

#[test]
fn terminated_is_a_dead_end() {
    for to in DeploymentStatus::ALL {
        assert!(!Terminated.can_become(to, true), "terminated -> {to}");
    }
}

#[test]
fn failed_with_resources_may_only_be_terminated() {
    for to in DeploymentStatus::ALL {
        assert_eq!(
            Failed.can_become(to, true),
            to == Terminating,
            "failed -> {to}"
        );
        assert!(
            !Failed.can_become(to, false),
            "failed without resources -> {to}"
        );
    }
}

#[test]
fn no_status_can_skip_ahead_or_go_back() {
    assert!(!Planned.can_become(Active, true));
    assert!(!Provisioning.can_become(Active, true));
    assert!(!Active.can_become(Provisioning, true));
    assert!(!Terminating.can_become(Active, true));
    for s in DeploymentStatus::ALL {
        assert!(!s.can_become(s, true), "{s} -> {s}");
    }
}

#[test]
fn status_names_round_trip() {
    for s in DeploymentStatus::ALL {
        assert_eq!(s.as_str().parse::<DeploymentStatus>().unwrap(), s);
    }
    assert!("running".parse::<DeploymentStatus>().is_err());
}

fn tracker(backend: Backend) -> (TestDb, Tracker) {
    let tdb = TestDb::new(backend);
    let t = Tracker::new(tdb.db(), &tdb.dir().join("locks"));
    (tdb, t)
}

fn new_dep(id: &str, ttl: Option<u64>) -> NewDeployment {
    NewDeployment {
        id: id.into(),
        blueprint_id: "bp-1".into(),
        service_id: "svc-1".into(),
        deployment_type: DeploymentType::Vm,
        labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
        ttl_secs: ttl,
        cleanup_webhook: None,
        request_json: "{}".into(),
        service_key: None,
    }
}

fn intent<'a>(key: &'a str) -> AttemptIntent<'a> {
    AttemptIntent {
        provider: "aws",
        region: "us-east-1",
        zone: None,
        instance_type: "t3.micro",
        spot: false,
        hourly_usd: Some(0.0104),
        idempotency_key: key,
    }
}

on_both_backends! {
    fn a_new_record_is_planned_with_the_deployment_labels_and_one_history_row(backend) {
        let (_d, t) = tracker(backend);
        let r = t.create(&new_dep("dep-a", Some(60))).unwrap();
        assert_eq!(r.status, Planned);
        assert_eq!(
            r.labels.get("bpr-deployment").map(String::as_str),
            Some("dep-a")
        );
        assert_eq!(
            r.labels.get("bpr-managed").map(String::as_str),
            Some("true")
        );
        assert_eq!(r.expires_at, Some(r.created_at + 60));
        let h = t.history("dep-a").unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!((h[0].from, h[0].to), (None, Planned));
        assert!(matches!(
            t.create(&new_dep("dep-a", None)),
            Err(TrackError::AlreadyExists(_))
        ));
    }
}

on_both_backends! {
    fn a_disallowed_transition_is_an_error_and_writes_nothing(backend) {
        let (_d, t) = tracker(backend);
        t.create(&new_dep("dep-b", None)).unwrap();
        let err = t.transition("dep-b", Active, "skip").unwrap_err();
        assert!(
            matches!(
                err,
                TrackError::TransitionNotAllowed {
                    from: Planned,
                    to: Active,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(t.get("dep-b").unwrap().status, Planned);
        assert_eq!(t.history("dep-b").unwrap().len(), 1);
        assert!(matches!(
            t.transition("nope", Active, "x"),
            Err(TrackError::NotFound(_))
        ));
    }
}

on_both_backends! {
    fn a_full_lifecycle_is_recorded_with_reasons_attempts_and_ids(backend) {
        let (_d, t) = tracker(backend);
        t.create(&new_dep("dep-c", None)).unwrap();
        t.transition("dep-c", Provisioning, "2 candidates").unwrap();
        let n1 = t.begin_attempt("dep-c", &intent("dep-c-1")).unwrap();
        t.finish_attempt("dep-c", n1, AttemptOutcome::Failover, "capacity")
            .unwrap();
        let n2 = t.begin_attempt("dep-c", &intent("dep-c-2")).unwrap();
        assert_eq!((n1, n2), (1, 2));
        // Provisioning -> terminating needs resources.
        assert!(t.transition("dep-c", Terminating, "x").is_err());
        let res = vec![ResourceRefRecord {
            kind: "security-group".into(),
            id: "sg-1".into(),
        }];
        t.record_instance("dep-c", Some(n2), "i-1", &res, Some("10.0.0.1"))
            .unwrap();
        let r = t.get("dep-c").unwrap();
        assert!(r.holds_resources());
        assert_eq!(r.resources, res);
        for (to, why) in [
            (Provisioned, "running"),
            (Deploying, "workload"),
            (Active, "healthy"),
            (Terminating, "asked"),
            (Terminated, "gone"),
        ] {
            t.transition("dep-c", to, why).unwrap();
        }
        t.record_released("dep-c").unwrap();
        let r = t.get("dep-c").unwrap();
        assert!(!r.holds_resources());
        let h = t.history("dep-c").unwrap();
        assert_eq!(
            h.iter().map(|x| x.to).collect::<Vec<_>>(),
            vec![
                Planned,
                Provisioning,
                Provisioned,
                Deploying,
                Active,
                Terminating,
                Terminated
            ]
        );
        assert_eq!(h[4].reason, "healthy");
        let a = t.attempts("dep-c").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].outcome, AttemptOutcome::Failover);
        assert_eq!(a[1].outcome, AttemptOutcome::Created);
        assert_eq!(a[1].instance_id.as_deref(), Some("i-1"));
    }
}

on_both_backends! {
    fn failed_with_resources_can_be_terminated_but_failed_without_cannot(backend) {
        let (_d, t) = tracker(backend);
        t.create(&new_dep("dep-d", None)).unwrap();
        t.transition("dep-d", Failed, "boom").unwrap();
        assert_eq!(t.get("dep-d").unwrap().last_error.as_deref(), Some("boom"));
        assert!(t.transition("dep-d", Terminating, "x").is_err());

        t.create(&new_dep("dep-e", None)).unwrap();
        t.transition("dep-e", Provisioning, "go").unwrap();
        let n = t.begin_attempt("dep-e", &intent("dep-e-1")).unwrap();
        t.record_instance("dep-e", Some(n), "i-2", &[], None)
            .unwrap();
        t.transition("dep-e", Failed, "never ran").unwrap();
        t.transition("dep-e", Terminating, "cleanup").unwrap();
    }
}

on_both_backends! {
    fn only_expired_records_that_still_need_terminating_are_listed(backend) {
        let (_d, t) = tracker(backend);
        t.create(&new_dep("dep-old", Some(0))).unwrap();
        t.create(&new_dep("dep-young", Some(3600))).unwrap();
        t.create(&new_dep("dep-forever", None)).unwrap();
        t.create(&new_dep("dep-done", Some(0))).unwrap();
        t.transition("dep-done", Failed, "nothing made").unwrap();
        let ids: Vec<_> = t
            .expired(now())
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec!["dep-old".to_string()]);
    }
}

on_both_backends! {
    fn a_deployment_lock_excludes_a_second_holder_until_dropped(backend) {
        let (_d, t) = tracker(backend);
        let first = t.try_lock("dep-l").unwrap();
        assert!(first.is_some());
        assert!(t.try_lock("dep-l").unwrap().is_none());
        drop(first);
        assert!(t.try_lock("dep-l").unwrap().is_some());
    }
}

on_both_backends! {
    fn an_unresolved_failed_record_holds_resources_until_cleared(backend) {
        let (_d, t) = tracker(backend);
        t.create(&new_dep("dep-u", None)).unwrap();
        t.transition("dep-u", Provisioning, "go").unwrap();
        t.begin_attempt("dep-u", &intent("dep-u-c1")).unwrap();
        t.transition("dep-u", Failed, "create answer lost").unwrap();
        assert!(!t.get("dep-u").unwrap().holds_resources());
        t.mark_unresolved("dep-u", "listing failed").unwrap();
        let r = t.get("dep-u").unwrap();
        assert!(r.unresolved && r.holds_resources(), "{r:?}");
        assert_eq!(r.last_error.as_deref(), Some("listing failed"));
        // Only terminate may take it further, and only clearing ends it.
        t.transition("dep-u", Terminating, "clear it").unwrap();
        assert!(t.transition("dep-u", Terminated, "done").is_ok());
        t.record_cleared("dep-u").unwrap();
        assert!(!t.get("dep-u").unwrap().holds_resources());
        assert!(matches!(
            t.mark_unresolved("dep-none", "x"),
            Err(TrackError::NotFound(_))
        ));
    }
}

on_both_backends! {
    fn new_records_carry_the_host_label_and_list_the_providers_used(backend) {
        let (_d, t) = tracker(backend);
        let r = t.create(&new_dep("dep-h", None)).unwrap();
        assert_eq!(
            r.labels.get(HOST_LABEL),
            Some(&t.database().host_id().unwrap())
        );
        assert!(t.providers_used().unwrap().is_empty());
        t.transition("dep-h", Provisioning, "go").unwrap();
        t.begin_attempt("dep-h", &intent("dep-h-c1")).unwrap();
        assert_eq!(t.providers_used().unwrap(), ["aws"]);
    }
}

on_both_backends! {
    fn a_service_key_has_at_most_one_live_deployment_and_is_free_again_once_it_ends(backend) {
        let (_d, t) = tracker(backend);
        let keyed = |id: &str| NewDeployment {
            service_key: Some("7/42".into()),
            ..new_dep(id, None)
        };
        t.create(&keyed("dep-a")).unwrap();
        assert_eq!(t.live_by_service_key("7/42").unwrap().unwrap().id, "dep-a");
        let err = t.create(&keyed("dep-b")).unwrap_err();
        assert!(
            matches!(&err, TrackError::ServiceKeyTaken { existing, .. } if existing == "dep-a"),
            "{err}"
        );
        assert!(t.get("dep-b").is_err(), "nothing was written");
        // The database itself refuses a second live row, whoever writes it.
        let raw = t.database().execute(
            "INSERT INTO deployments (id, blueprint_id, service_id, deployment_type, status, request_json,
               created_at, updated_at, service_key) VALUES ('dep-c', 'b', 's', 'vm', 'active', '{}', 0, 0, '7/42')",
            &[],
        );
        assert!(
            raw.as_ref().is_err_and(crate::db::DbError::is_constraint_violation),
            "the partial unique index holds: {raw:?}"
        );

        t.transition("dep-a", Failed, "gave up").unwrap();
        assert!(t.live_by_service_key("7/42").unwrap().is_none());
        t.create(&keyed("dep-d")).unwrap();
        assert_eq!(
            t.live_keyed()
                .unwrap()
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            ["dep-d"]
        );
    }
}

on_both_backends! {
    fn the_same_service_key_sent_to_two_processes_at_once_yields_one_deployment(backend) {
        let tdb = TestDb::new(backend);
        // Two handles with their own connections, as two processes (or
        // replicas) have.
        let a = Tracker::new(tdb.db(), &tdb.dir().join("locks-a"));
        let b = Tracker::new(tdb.reopen(), &tdb.dir().join("locks-b"));
        for round in 0..10 {
            let key = format!("7/{round}");
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
            let racers: Vec<_> = [(a.clone(), "a"), (b.clone(), "b")]
                .into_iter()
                .map(|(t, who)| {
                    let (key, barrier) = (key.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        t.create(&NewDeployment {
                            service_key: Some(key),
                            ..new_dep(&format!("dep-{round}-{who}"), None)
                        })
                    })
                })
                .collect();
            let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
            let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(won.len(), 1, "round {round}: {results:?}");
            for r in &results {
                if let Err(e) = r {
                    assert!(matches!(e, TrackError::ServiceKeyTaken { .. }), "{e}");
                }
            }
            let live = a.live_by_service_key(&key).unwrap().unwrap();
            assert_eq!(live.id, won[0].id);
        }
        assert_eq!(a.list().unwrap().len(), 10, "no loser left a row");
    }
}
