//! What `bpr deploy | status | history` print: the progress bar, the status
//! table, a Kubernetes workload's live state.

use std::time::Duration;

use blueprint_remote_providers::kubernetes::WorkloadStatus;
use blueprint_remote_providers::provisioning::{CleanupReport, DeployOptions};
use blueprint_remote_providers::tracking::{DeploymentRecord, DeploymentStatus};

use crate::cli::table;

const CHAIN: [DeploymentStatus; 5] = [
    DeploymentStatus::Planned,
    DeploymentStatus::Provisioning,
    DeploymentStatus::Provisioned,
    DeploymentStatus::Deploying,
    DeploymentStatus::Active,
];

pub(super) fn progress_line(status: DeploymentStatus, reason: &str) -> String {
    let pos = CHAIN.iter().position(|s| *s == status);
    let bar: String = match pos {
        Some(p) => (0..CHAIN.len())
            .map(|i| if i <= p { '#' } else { '-' })
            .collect(),
        None => "x".repeat(CHAIN.len()), // terminating, terminated, failed: off the way up
    };
    format!("[{bar}] {status:<12} {reason}")
}

pub(super) fn when(t: Option<i64>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| "-".into())
}

pub(super) fn status_table(records: &[DeploymentRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                r.status.to_string(),
                format!(
                    "{}/{}/{}",
                    r.provider.as_deref().unwrap_or("-"),
                    r.region.as_deref().unwrap_or("-"),
                    r.instance_type.as_deref().unwrap_or("-")
                ),
                match (&r.instance_id, r.released_at) {
                    (Some(i), None) => i.clone(),
                    (Some(i), Some(_)) => format!("{i} (deleted)"),
                    (None, _) => "-".into(),
                },
                r.address.clone().unwrap_or_else(|| "-".into()),
                when(r.expires_at),
                r.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table::render(
        &[
            "ID",
            "STATUS",
            "PROVIDER/REGION/TYPE",
            "INSTANCE",
            "ADDRESS",
            "EXPIRES",
            "LAST ERROR",
        ],
        &rows,
    )
}

pub(super) fn k8s_opts(timeout_secs: u64) -> DeployOptions {
    DeployOptions {
        health_timeout: Duration::from_secs(timeout_secs),
        ..DeployOptions::default()
    }
}

pub(super) fn workload_json(s: &WorkloadStatus) -> serde_json::Value {
    serde_json::json!({
        "kind": s.kind.as_str(),
        "desired": s.desired,
        "current": s.current,
        "ready": s.ready,
        "available": s.available,
        "updated": s.updated,
        "rolled_out": s.rolled_out(),
        "conditions": s.conditions.iter().map(|c| serde_json::json!({
            "type": c.type_, "status": c.status, "reason": c.reason, "message": c.message,
        })).collect::<Vec<_>>(),
    })
}

pub(super) fn workload_text(s: &WorkloadStatus) -> String {
    let mut out = format!(
        "workload: {} {}/{} ready, {} available, {} updated, {} pods{}\n",
        s.kind.as_str(),
        s.ready,
        s.desired,
        s.available,
        s.updated,
        s.current,
        if s.rolled_out() { " (rolled out)" } else { "" }
    );
    for c in &s.conditions {
        out.push_str(&format!(
            "  {}={} {} {}\n",
            c.type_,
            c.status,
            c.reason.as_deref().unwrap_or(""),
            c.message.as_deref().unwrap_or("")
        ));
    }
    out
}

/// What `bpr cleanup` resolved: one line per deployment and what happened to
/// it, then a line counting everything.
pub(super) fn cleanup_text(r: &CleanupReport) -> String {
    let mut out = String::new();
    let mut line = |verb: &str, id: &str, why: &str| {
        out.push_str(&format!("{verb} {id} ({why})\n"));
    };
    for id in &r.expired {
        line("terminated", id, "its time to live ran out");
    }
    for id in &r.recovery.adopted {
        line(
            "adopted",
            id,
            "its instance was running: found by its label after its process stopped",
        );
    }
    for id in &r.recovery.failed {
        line(
            "failed",
            id,
            "its process stopped and nothing of it ran; what it made was deleted",
        );
    }
    for id in &r.recovery.terminated {
        line("terminated", id, "an interrupted termination was finished");
    }
    for id in &r.released {
        line(
            "terminated",
            id,
            "what a failed deployment still held or might hold was deleted",
        );
    }
    for what in r.sweep.iter().flat_map(|s| s.deleted.iter()) {
        out.push_str(&format!("swept {what} (no record owns it)\n"));
    }
    for id in &r.busy {
        out.push_str(&format!(
            "busy {id} (another bpr process is working on it)\n"
        ));
    }
    out.push_str(&format!("cleanup: {}\n", r.summary()));
    out
}
