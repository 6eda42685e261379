//! The cleanup webhook: the outcome of a termination POSTed to the URL the
//! request gave, if the operator's `[operator.webhooks] allow` list permits
//! it (checked when the request is made, and again before each POST: the
//! list may have changed, and the name may now resolve elsewhere).

use std::time::Duration;

use serde::Serialize;

use super::error::DeployError;
use super::request::RequestError;
use crate::capabilities::{Denied, HttpPolicy, Target};
use crate::clock::unix_now as now;
use crate::config::WebhookSettings;
use crate::host_http;
use crate::tracking::DeploymentRecord;

/// Deadline of one POST.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Whether the allowlist permits `url`'s scheme, host and port.
pub(super) fn check_allowed(settings: &WebhookSettings, url: &str) -> Result<(), RequestError> {
    let refused = |message: String| RequestError {
        field: "cleanup_webhook".into(),
        message,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|_| refused(format!("{url:?} is not an http(s) URL")))?;
    let target = Target::of(&uri).map_err(|e| refused(e.to_string()))?;
    HttpPolicy::new(settings.allow.clone())
        .check_target(&target)
        .map_err(|_| {
            refused(format!(
                "{0}://{1}:{2} is not in [operator.webhooks] allow; add \"{0}://{1}:{2}\" to send cleanup webhooks there",
                target.scheme, target.host, target.port
            ))
        })
}

/// Why a cleanup webhook is not sent to the addresses its host resolves to.
#[derive(Debug, thiserror::Error)]
enum AddressRefused {
    /// The URL does not parse.
    #[error("{url}: {source}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What the parser said.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The policy refuses the URL or an address it resolves to.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The host name does not resolve.
    #[error("cannot resolve {host}: {source}")]
    Unresolved {
        /// The host name.
        host: String,
        /// What the resolver said.
        #[source]
        source: std::io::Error,
    },
}

/// Resolves `url`'s host and refuses non-public addresses no exact rule permits.
async fn check_addresses(settings: &WebhookSettings, url: &str) -> Result<(), AddressRefused> {
    let uri: http::Uri = url.parse().map_err(|source| AddressRefused::BadUrl {
        url: url.to_string(),
        source,
    })?;
    let target = Target::of(&uri)?;
    let addrs: Vec<std::net::IpAddr> = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(|source| AddressRefused::Unresolved {
            host: target.host.clone(),
            source,
        })?
        .map(|a| a.ip())
        .collect();
    Ok(HttpPolicy::new(settings.allow.clone()).check_addresses(&target, &addrs)?)
}

/// POST the cleanup outcome to the record's webhook, if it has one (3 tries).
pub(super) async fn post_webhook(
    settings: &WebhookSettings,
    rec: &DeploymentRecord,
    error: Option<&DeployError>,
) {
    let Some(url) = &rec.cleanup_webhook else {
        return;
    };
    if let Err(e) = check_allowed(settings, url) {
        tracing::warn!(deployment = %rec.id, "cleanup webhook not sent: {e}");
        return;
    }
    if let Err(e) = check_addresses(settings, url).await {
        tracing::warn!(deployment = %rec.id, "cleanup webhook not sent: {e}");
        return;
    }
    let body = WebhookBody {
        deployment_id: &rec.id,
        blueprint_id: &rec.blueprint_id,
        service_id: &rec.service_id,
        event: "cleanup",
        status: rec.status.as_str(),
        error: error.map(|e| e.to_string()),
        timestamp: now(),
    };
    let text = serde_json::to_vec(&body).unwrap_or_default();
    for attempt in 1..=3u32 {
        match host_http::post_json(url, text.clone(), POST_TIMEOUT).await {
            Ok(a) if a.is_success() => return,
            Ok(a) => tracing::warn!(
                "cleanup webhook {url} for {} answered {} (try {attempt}/3)",
                rec.id,
                a.status
            ),
            Err(e) => tracing::warn!(
                "cleanup webhook for {} failed: {e} (try {attempt}/3)",
                rec.id
            ),
        }
        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
    }
}
