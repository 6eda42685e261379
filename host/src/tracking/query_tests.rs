//! The list page's query plan (`Tracker::query`): every shape of page the API
//! serves is an index range in (created_at, id) order, never a scan of the
//! table followed by a sort (23 ms per page of 50 at 100,000 records before
//! migration 0011; see BENCHMARKS.md, "The store on SQLite and PostgreSQL").

use super::store::{SELECT_FOR_PLANS, query_clause};
use super::*;
use crate::db::testing::{Backend, TestDb};

/// SQLite's plan for the page `q`, one line per step.
fn plan(db: &crate::db::Database, q: &DeploymentQuery) -> String {
    let (clause, args) = query_clause(q);
    db.query(
        &format!("EXPLAIN QUERY PLAN {SELECT_FOR_PLANS} {clause}"),
        &args,
    )
    .unwrap()
    .iter()
    .map(|r| r.get::<String>(3).unwrap())
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn every_filtered_or_unfiltered_list_page_is_an_index_range_without_a_sort() {
    let t = TestDb::new(Backend::Sqlite);
    let db = t.db();
    let after = Some((1_700_000_000, "dep-42".to_string()));
    let pages = [
        DeploymentQuery {
            limit: 50,
            ..Default::default()
        },
        DeploymentQuery {
            after: after.clone(),
            limit: 50,
            ..Default::default()
        },
        DeploymentQuery {
            status: Some(DeploymentStatus::Active),
            after: after.clone(),
            limit: 50,
            ..Default::default()
        },
        DeploymentQuery {
            blueprint_id: Some("bp-7".into()),
            after: after.clone(),
            limit: 50,
            ..Default::default()
        },
        DeploymentQuery {
            status: Some(DeploymentStatus::Terminated),
            blueprint_id: Some("bp-7".into()),
            limit: 50,
            ..Default::default()
        },
    ];
    for q in &pages {
        let plan = plan(&db, q);
        assert!(!plan.contains("TEMP B-TREE"), "{q:?} sorts:\n{plan}");
        assert!(plan.contains("USING INDEX"), "{q:?} scans:\n{plan}");
        assert!(
            !plan.starts_with("SCAN deployments\n") && plan != "SCAN deployments",
            "{q:?}:\n{plan}"
        );
    }
}

crate::db::testing::on_both_backends! {
    fn pages_of_a_list_return_every_record_once_in_created_then_id_order(backend) {
        let tdb = TestDb::new(backend);
        let db = tdb.db();
        let t = Tracker::new(db.clone(), &tdb.dir().join("locks"));
        // Ties on created_at (one second holds many deployments) are ordered
        // by id, across page boundaries too.
        let created = [5, 5, 5, 3, 3, 9, 5];
        for (i, at) in created.iter().enumerate() {
            let id = format!("p-{i}");
            t.create(&NewDeployment {
                id: id.clone(),
                blueprint_id: if i.is_multiple_of(2) { "bp-even" } else { "bp-odd" }.into(),
                service_id: i.to_string(),
                deployment_type: DeploymentType::Vm,
                labels: Default::default(),
                ttl_secs: None,
                cleanup_webhook: None,
                request_json: "{}".into(),
                service_key: None,
            })
            .unwrap();
            db.execute(
                "UPDATE deployments SET created_at = ?1 WHERE id = ?2",
                crate::db::params![*at as i64, id],
            )
            .unwrap();
        }
        let mut want: Vec<(i64, String)> = created
            .iter()
            .enumerate()
            .map(|(i, at)| (*at as i64, format!("p-{i}")))
            .collect();
        want.sort();
        for (filter, keep) in [
            (DeploymentQuery::default(), None),
            (
                DeploymentQuery {
                    status: Some(DeploymentStatus::Planned),
                    ..Default::default()
                },
                None,
            ),
            (
                DeploymentQuery {
                    blueprint_id: Some("bp-even".into()),
                    ..Default::default()
                },
                Some("bp-even"),
            ),
        ] {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = t
                    .query(&DeploymentQuery {
                        after: after.clone(),
                        limit: 2,
                        ..filter.clone()
                    })
                    .unwrap();
                if page.is_empty() {
                    break;
                }
                assert!(page.len() <= 2);
                let last = page.last().unwrap();
                after = Some((last.created_at, last.id.clone()));
                got.extend(page.into_iter().map(|r| (r.created_at, r.id)));
            }
            let expected: Vec<(i64, String)> = want
                .iter()
                .filter(|(_, id)| {
                    keep.is_none_or(|bp| {
                        let i: usize = id[2..].parse().unwrap();
                        (bp == "bp-even") == i.is_multiple_of(2)
                    })
                })
                .cloned()
                .collect();
            assert_eq!(got, expected, "{filter:?}");
        }
    }
}
