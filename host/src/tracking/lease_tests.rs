//! Unit tests of the deployment leases: two trackers on one database with
//! their own lock directories stand for two hosts (two pods).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use super::*;
use crate::coordination::{LeaderSettings, LeaseStore};
use crate::db::Database;
use crate::db::testing::{TestDb, on_both_backends};

const LEASE_MS: i64 = 2_000;

/// A tracker on `db` with locks in `dir`, its leases timed by `clock` and
/// never renewed by its thread (tests renew by hand).
fn host(db: Database, dir: &Path, clock: &Arc<AtomicI64>) -> Tracker {
    let c = clock.clone();
    let store = LeaseStore::with_clock(db.clone(), Arc::new(move || c.load(Ordering::SeqCst)));
    let settings = LeaderSettings {
        lease: Duration::from_millis(LEASE_MS as u64),
        renew: Duration::from_secs(3_600),
    };
    Tracker::new(db, dir).with_lease_store(store, settings)
}

fn new_dep(id: &str) -> NewDeployment {
    NewDeployment {
        id: id.into(),
        blueprint_id: "bp-1".into(),
        service_id: "svc-1".into(),
        deployment_type: DeploymentType::Vm,
        labels: Default::default(),
        request_json: "{}".into(),
        cleanup_webhook: None,
        ttl_secs: None,
        service_key: None,
    }
}

fn row(t: &Tracker, id: &str) -> crate::coordination::LeaseRow {
    LeaseStore::new(t.database().clone())
        .get(&lease_name(id))
        .unwrap()
        .expect("a lease row")
}

on_both_backends! {
    fn a_deployment_held_on_one_host_is_busy_on_another_until_its_lease_lapses_then_the_old_holder_is_fenced(backend) {
        let tdb = TestDb::new(backend);
        let clock = Arc::new(AtomicI64::new(1_000_000));
        let a = host(tdb.db(), &tdb.dir().join("locks-a"), &clock);
        let b = host(tdb.reopen(), &tdb.dir().join("locks-b"), &clock);
        a.create(&new_dep("dep-1")).unwrap();
        let held = a.try_lock("dep-1").unwrap().expect("a takes it");
        assert!(b.try_lock("dep-1").unwrap().is_none(), "b sees it busy");
        a.transition("dep-1", DeploymentStatus::Provisioning, "a works").unwrap();
        held.check().expect("a may act");

        // a stops renewing (paused, cut off); one ms before the expiry b still waits.
        clock.fetch_add(LEASE_MS - 1, Ordering::SeqCst);
        assert!(b.try_lock("dep-1").unwrap().is_none());
        clock.fetch_add(1, Ordering::SeqCst);
        let taken = b.try_lock("dep-1").unwrap().expect("b takes the lapsed lease");
        assert!(taken.token() > held.token(), "{:?} after {:?}", taken.token(), held.token());

        // a wakes: its write is refused whole, and from then on it knows.
        let before = a.history("dep-1").unwrap().len();
        let err = a
            .transition("dep-1", DeploymentStatus::Failed, "a, late")
            .unwrap_err();
        assert!(matches!(err, TrackError::Fenced { ref id, .. } if id == "dep-1"), "{err}");
        let text = err.to_string();
        assert!(text.contains("nothing was written"), "{text}");
        let rec = a.get("dep-1").unwrap();
        assert_eq!(rec.status, DeploymentStatus::Provisioning);
        assert_eq!(a.history("dep-1").unwrap().len(), before);
        assert!(matches!(a.note_error("dep-1", "late"), Err(TrackError::Fenced { .. })));
        assert_eq!(a.get("dep-1").unwrap().last_error, None);
        assert!(held.check().is_err(), "a's check fails once fenced");
        assert_eq!(a.leases().renew_all(), 0, "a's renewal finds nothing to renew");

        // b writes; a's late release leaves b's lease alone.
        b.transition("dep-1", DeploymentStatus::Failed, "b took over").unwrap();
        drop(held);
        let now = row(&b, "dep-1");
        assert_eq!(Some(now.token), taken.token());
        assert!(now.expires_at_ms > clock.load(Ordering::SeqCst));
        taken.check().expect("b unaffected");
    }

    fn a_holder_of_the_same_lock_directory_that_died_is_taken_over_at_once(backend) {
        let tdb = TestDb::new(backend);
        let clock = Arc::new(AtomicI64::new(1_000_000));
        let dir = tdb.dir().join("locks");
        let dead = host(tdb.db(), &dir, &clock);
        let next = host(tdb.reopen(), &dir, &clock);
        let other_host = host(tdb.reopen(), &tdb.dir().join("locks-b"), &clock);
        dead.create(&new_dep("dep-1")).unwrap();
        let lock = dead.try_lock("dep-1").unwrap().unwrap();
        let token = lock.token();
        // SIGKILL: the kernel drops the file lock, the row stays unexpired.
        lock.abandon();
        assert!(
            other_host.try_lock("dep-1").unwrap().is_none(),
            "another host cannot know it died: it waits for the expiry"
        );
        let taken = next.try_lock("dep-1").unwrap().expect("taken at once, clock unchanged");
        assert_eq!(taken.token(), token.map(|t| t + 1));
        next.transition("dep-1", DeploymentStatus::Failed, "recovered").unwrap();
        // The dead holder's handle (as a process it no longer is) cannot write.
        assert!(dead.leases().owner_name() != next.leases().owner_name());
    }

    fn a_released_lease_is_free_at_once_for_another_host_with_a_larger_token(backend) {
        let tdb = TestDb::new(backend);
        let clock = Arc::new(AtomicI64::new(1_000_000));
        let a = host(tdb.db(), &tdb.dir().join("locks-a"), &clock);
        let b = host(tdb.reopen(), &tdb.dir().join("locks-b"), &clock);
        let first = a.try_lock("dep-1").unwrap().unwrap();
        let token = first.token();
        drop(first);
        assert_eq!(row(&a, "dep-1").expires_at_ms, 0, "released on drop");
        let second = b.try_lock("dep-1").unwrap().expect("free at once");
        assert_eq!(second.token(), token.map(|t| t + 1));
    }

    fn two_hundred_held_leases_are_renewed_in_one_round_and_stay_held(backend) {
        let tdb = TestDb::new(backend);
        let clock = Arc::new(AtomicI64::new(1_000_000));
        let a = host(tdb.db(), &tdb.dir().join("locks-a"), &clock);
        let b = host(tdb.reopen(), &tdb.dir().join("locks-b"), &clock);
        let locks: Vec<_> = (0..200)
            .map(|i| a.try_lock(&format!("dep-{i}")).unwrap().unwrap())
            .collect();
        clock.fetch_add(LEASE_MS / 2, Ordering::SeqCst);
        let started = Instant::now();
        assert_eq!(a.leases().renew_all(), 200);
        eprintln!("renewed 200 leases in {:?} ({backend:?})", started.elapsed());
        // Past the first expiry, within the renewed one: still held.
        clock.fetch_add(LEASE_MS / 2 + 1, Ordering::SeqCst);
        for i in [0, 99, 199] {
            assert!(b.try_lock(&format!("dep-{i}")).unwrap().is_none(), "dep-{i}");
        }
        for l in &locks {
            l.check().expect("every lease still trusted");
        }
        // A lease that lapsed is not renewed: it is lost.
        drop(locks);
        let l = a.try_lock("dep-x").unwrap().unwrap();
        clock.fetch_add(LEASE_MS, Ordering::SeqCst);
        assert_eq!(a.leases().renew_all(), 0);
        assert!(l.check().is_err());
    }

    fn leases_timed_by_the_database_clock_are_renewed_by_the_process_thread_and_trusted_meanwhile(backend) {
        let tdb = TestDb::new(backend);
        let settings = LeaderSettings {
            lease: Duration::from_millis(600),
            renew: Duration::from_millis(100),
        };
        let (da, db) = (tdb.db(), tdb.reopen());
        let a = Tracker::new(da.clone(), &tdb.dir().join("locks-a"))
            .with_lease_store(LeaseStore::new(da), settings.clone());
        let b = Tracker::new(db.clone(), &tdb.dir().join("locks-b"))
            .with_lease_store(LeaseStore::new(db), settings);
        a.create(&new_dep("dep-1")).unwrap();
        let held = a.try_lock("dep-1").unwrap().unwrap();
        // Several leases long: the renewer keeps it.
        std::thread::sleep(Duration::from_millis(1_500));
        held.check().expect("renewed meanwhile");
        assert!(b.try_lock("dep-1").unwrap().is_none());
        a.transition("dep-1", DeploymentStatus::Provisioning, "still ours").unwrap();
        drop(held);
        assert!(b.try_lock("dep-1").unwrap().is_some());
    }
}

#[test]
fn a_lease_not_renewed_for_most_of_its_time_is_no_longer_trusted_in_memory() {
    let tdb = TestDb::new(crate::db::testing::Backend::Sqlite);
    let settings = LeaderSettings {
        lease: Duration::from_millis(250),
        renew: Duration::from_secs(3_600),
    };
    let db = tdb.db();
    let a = Tracker::new(db.clone(), &tdb.dir().join("locks"))
        .with_lease_store(LeaseStore::new(db), settings);
    let held = a.try_lock("dep-1").unwrap().unwrap();
    held.check().unwrap();
    // Paused past the lease minus its margin (a fifth): no more side effects.
    std::thread::sleep(Duration::from_millis(260));
    let err = held.check().unwrap_err();
    assert!(err.to_string().contains("not renewed for"), "{err}");
}

on_both_backends! {
    fn a_tracker_takes_database_leases_on_postgresql_only(backend) {
        let tdb = TestDb::new(backend);
        let t = Tracker::new(tdb.db(), &tdb.dir().join("locks"));
        let lock = t.try_lock("dep-1").unwrap().unwrap();
        let leased = LeaseStore::new(t.database().clone())
            .get(&lease_name("dep-1"))
            .unwrap()
            .is_some();
        assert_eq!(leased, backend == crate::db::testing::Backend::Postgres);
        assert_eq!(lock.token().is_some(), leased);
        lock.check().unwrap();
    }
}

/// What a lock costs: `try_lock` + drop ×1,000 as `Tracker::new` does it
/// (file lock alone on SQLite) and with the database lease forced, on each
/// backend (`cargo test --lib --release
/// lock_cost -- --ignored --nocapture`; prints, asserts nothing on time).
#[test]
#[ignore = "a measurement: run by hand"]
fn lock_cost() {
    use crate::db::testing::{Backend, postgres_available};
    let mut backends = vec![Backend::Sqlite];
    if postgres_available() {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        let tdb = TestDb::new(backend);
        let plain = Tracker::new(tdb.db(), &tdb.dir().join("plain"));
        let db = tdb.reopen();
        let leased = Tracker::new(db.clone(), &tdb.dir().join("leased"))
            .with_lease_store(LeaseStore::new(db), LeaderSettings::default());
        for (what, t) in [
            ("Tracker::new (a lease on PostgreSQL only)", &plain),
            ("file lock + lease", &leased),
        ] {
            let started = Instant::now();
            for i in 0..1_000 {
                drop(t.try_lock(&format!("dep-{i}")).unwrap().unwrap());
            }
            let each = started.elapsed() / 1_000;
            eprintln!("{backend:?}: try_lock + drop, {what}: {each:?} each (x1000)");
        }
    }
}
