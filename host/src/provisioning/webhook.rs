//! The cleanup webhook: the outcome of a termination POSTed to the URL the
//! request gave.

use std::time::Duration;

use serde::Serialize;

use super::error::DeployError;
use crate::clock::unix_now as now;
use crate::tracking::DeploymentRecord;

/// What the cleanup webhook receives.
#[derive(Debug, Serialize)]
struct WebhookBody<'a> {
    deployment_id: &'a str,
    blueprint_id: &'a str,
    service_id: &'a str,
    event: &'static str,
    status: &'a str,
    error: Option<String>,
    timestamp: i64,
}

/// POST the cleanup outcome to the record's webhook, if it has one (3 tries).
pub(super) async fn post_webhook(rec: &DeploymentRecord, error: Option<&DeployError>) {
    let Some(url) = &rec.cleanup_webhook else {
        return;
    };
    let body = WebhookBody {
        deployment_id: &rec.id,
        blueprint_id: &rec.blueprint_id,
        service_id: &rec.service_id,
        event: "cleanup",
        status: rec.status.as_str(),
        error: error.map(|e| e.to_string()),
        timestamp: now(),
    };
    let text = serde_json::to_string(&body).unwrap_or_default();
    for attempt in 1..=3u32 {
        match super::health::http_post_json(url, text.clone(), Duration::from_secs(10)).await {
            Ok(s) if (200..300).contains(&s) => return,
            Ok(s) => tracing::warn!(
                "cleanup webhook {url} for {} answered {s} (try {attempt}/3)",
                rec.id
            ),
            Err(e) => tracing::warn!(
                "cleanup webhook for {} failed: {e} (try {attempt}/3)",
                rec.id
            ),
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
}
