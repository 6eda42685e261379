//! Unit tests of the usage ledger and of instance replacement in the tracker.

use std::collections::BTreeMap;

use super::*;
use crate::db::testing::{Backend, TestDb, on_both_backends};
use DeploymentStatus::*;

fn tracker(backend: Backend) -> (TestDb, Tracker) {
    let tdb = TestDb::new(backend);
    let t = Tracker::new(tdb.db(), &tdb.dir().join("locks"));
    (tdb, t)
}

fn intent<'a>(key: &'a str, provider: &'a str, hourly: f64) -> AttemptIntent<'a> {
    AttemptIntent {
        provider,
        region: "us-east-1",
        zone: None,
        instance_type: "t3.micro",
        spot: false,
        hourly_usd: Some(hourly),
        idempotency_key: key,
    }
}

/// `id` active on instance `i-1` at 0.5 USD/h.
fn active(t: &Tracker, id: &str) {
    t.create(&NewDeployment {
        id: id.into(),
        blueprint_id: "bp".into(),
        service_id: "svc".into(),
        labels: BTreeMap::new(),
        request_json: "{}".into(),
        ..NewDeployment::default()
    })
    .unwrap();
    t.transition(id, Provisioning, "go").unwrap();
    let n = t.begin_attempt(id, &intent("k1", "aws", 0.5)).unwrap();
    t.record_instance(id, Some(n), "i-1", &[], Some("10.0.0.1"))
        .unwrap();
    for s in [Provisioned, Deploying, Active] {
        t.transition(id, s, "up").unwrap();
    }
}

on_both_backends! {
    fn recording_an_instance_opens_one_period_at_its_price_and_releasing_closes_it(backend) {
        let (_d, t) = tracker(backend);
        active(&t, "dep-1");
        // Recording the same instance again (its running details) opens nothing new.
        t.record_instance("dep-1", None, "i-1", &[], None).unwrap();
        let p = t.usage_of("dep-1").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].instance_id, "i-1");
        assert_eq!(p[0].hourly_usd, Some(0.5));
        assert_eq!(p[0].provider, "aws");
        assert!(p[0].ended_at.is_none());
        t.transition("dep-1", Terminating, "bye").unwrap();
        t.record_released("dep-1").unwrap();
        let p = t.usage_of("dep-1").unwrap();
        assert!(p[0].ended_at.is_some());
        assert_eq!(p[0].end_reason.as_deref(), Some("deleted"));
        assert!(t.open_periods().unwrap().is_empty());
    }
}

on_both_backends! {
    fn suspension_closes_the_period_and_resumption_opens_a_new_one(backend) {
        let (_d, t) = tracker(backend);
        active(&t, "dep-2");
        t.close_usage("dep-2", "suspended: instance stopped")
            .unwrap();
        t.transition("dep-2", Suspended, "payment expired").unwrap();
        t.reopen_usage("dep-2").unwrap();
        t.transition("dep-2", Active, "renewed").unwrap();
        let p = t.usage_of("dep-2").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].end_reason.as_deref(),
            Some("suspended: instance stopped")
        );
        assert!(p[1].ended_at.is_none());
        assert_eq!(p[1].instance_id, "i-1");
    }
}

on_both_backends! {
    fn reconciling_opens_a_missing_period_and_closes_a_suspended_ones(backend) {
        let (_d, t) = tracker(backend);
        active(&t, "dep-3");
        active(&t, "dep-4");
        // A crash between the ledger write and the transition, both ways.
        t.close_usage("dep-3", "suspended").unwrap();
        t.transition("dep-4", Suspended, "payment expired").unwrap();
        assert_eq!(t.reconcile_usage().unwrap(), 2);
        assert!(
            t.usage_of("dep-3")
                .unwrap()
                .iter()
                .any(|p| p.ended_at.is_none())
        );
        assert!(
            t.usage_of("dep-4")
                .unwrap()
                .iter()
                .all(|p| p.ended_at.is_some())
        );
        assert_eq!(t.reconcile_usage().unwrap(), 0, "nothing left to fix");
    }
}

on_both_backends! {
    fn a_replacement_keeps_the_record_on_the_old_instance_until_the_swap(backend) {
        let (_d, t) = tracker(backend);
        active(&t, "dep-5");
        let i = intent("dep-5-heal-1-1", "digitalocean", 0.25);
        let n = t.begin_replacement("dep-5", &i).unwrap();
        assert_eq!(t.get("dep-5").unwrap().provider.as_deref(), Some("aws"));
        assert_eq!(
            t.unfinished_replacements().unwrap(),
            vec![("dep-5".to_string(), n)]
        );
        t.record_replacement_created("dep-5", n, "d-9").unwrap();
        let seq = t
            .open_period(
                "dep-5",
                &NewPeriod {
                    instance_id: "d-9",
                    provider: "digitalocean",
                    region: "us-east-1",
                    zone: None,
                    instance_type: "t3.micro",
                    spot: false,
                    hourly_usd: Some(0.25),
                    resources: &[],
                },
            )
            .unwrap();
        // Both instances are held while the new one is checked.
        assert_eq!(t.open_periods().unwrap().len(), 2);
        let rec = t
            .swap_instance(
                "dep-5",
                &Replacement {
                    attempt: n,
                    intent: i,
                    instance_id: "d-9",
                    resources: &[],
                    address: Some("10.0.0.9"),
                },
                "healed: d-9 replaced i-1",
            )
            .unwrap();
        assert_eq!(rec.status, Active);
        assert_eq!(rec.instance_id.as_deref(), Some("d-9"));
        assert_eq!(rec.provider.as_deref(), Some("digitalocean"));
        assert_eq!(rec.hourly_usd, Some(0.25));
        assert_eq!(rec.address.as_deref(), Some("10.0.0.9"));
        assert!(t.unfinished_replacements().unwrap().is_empty());
        let h = t.history("dep-5").unwrap();
        let last = h.last().unwrap();
        assert_eq!((last.from, last.to), (Some(Active), Active));
        assert_eq!(last.reason, "healed: d-9 replaced i-1");
        // The old instance's period stays open until it is deleted.
        let open: Vec<String> = t
            .open_periods()
            .unwrap()
            .into_iter()
            .map(|p| p.instance_id)
            .collect();
        assert_eq!(open, ["i-1", "d-9"]);
        let old = t.usage_of("dep-5").unwrap()[0].seq;
        t.close_period(old, "replaced").unwrap();
        assert_eq!(t.open_periods().unwrap()[0].seq, seq);
    }
}

on_both_backends! {
    fn a_history_note_changes_no_status(backend) {
        let (_d, t) = tracker(backend);
        active(&t, "dep-6");
        t.note_history("dep-6", "unhealthy: 3 consecutive failed checks")
            .unwrap();
        assert_eq!(t.get("dep-6").unwrap().status, Active);
        assert!(matches!(
            t.note_history("nope", "x"),
            Err(TrackError::NotFound(_))
        ));
    }
}
