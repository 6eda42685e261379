//! Health of a deployment: an HTTP check on the instance's address and port
//! when the request gives one, else the provider's running state.

use std::time::{Duration, Instant};

use super::error::StepError;
use super::{DeployOptions, HealthCheck};
use crate::host_http;
use crate::providers::ProviderHandle;
use crate::runtime::bindings::wit::{Instance, InstanceRef, InstanceState};

/// Deadline of one HTTP check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A passed health check.
pub(super) struct Healthy {
    /// The address it was reached on (or the provider reported).
    pub address: Option<String>,
    /// What passed, for the history.
    pub message: String,
}

/// One HTTP check of `check` on `address`: `Ok(message)` when it answered 2xx,
/// `Err(what it saw)` otherwise.
pub(super) async fn check_once(address: &str, check: &HealthCheck) -> Result<String, String> {
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    let url = format!("http://{host}:{}{}", check.port, check.path());
    match host_http::get(&url, CHECK_TIMEOUT).await {
        Ok(a) if a.is_success() => Ok(format!("{url} answered {}", a.status)),
        Ok(a) => Err(format!("{url} answered {}", a.status)),
        Err(e) => Err(e.to_string()),
    }
}

/// Wait until `instance` is healthy, under `opts.health_timeout`.
pub(super) async fn wait_healthy(
    provider: &ProviderHandle,
    instance: &Instance,
    check: Option<&HealthCheck>,
    opts: &DeployOptions,
) -> Result<Healthy, StepError> {
    let started = Instant::now();
    let r = InstanceRef {
        id: instance.id.clone(),
        region: instance.region.clone(),
        zone: instance.zone.clone(),
        resources: instance.resources.clone(),
        labels: instance.labels.clone(),
    };
    let mut wait = opts.poll_initial;
    let mut last;
    loop {
        match opts.retry.run(|| provider.get_instance(r.clone())).await {
            Ok(i) if i.state == InstanceState::Running => {
                let address = i.public_ipv4.clone().or_else(|| i.private_ipv4.clone());
                match (check, &address) {
                    (None, _) => {
                        return Ok(Healthy {
                            address,
                            message: format!("instance {} running (provider state)", i.id),
                        });
                    }
                    (Some(h), Some(a)) => match check_once(a, h).await {
                        Ok(message) => return Ok(Healthy { address, message }),
                        Err(seen) => last = seen,
                    },
                    (Some(_), None) => last = format!("instance {} has no address yet", i.id),
                }
            }
            Ok(i) => {
                if matches!(
                    i.state,
                    InstanceState::Failed | InstanceState::Terminated | InstanceState::Terminating
                ) {
                    return Err(StepError::InstanceFailed {
                        instance: i.id,
                        state: i.state,
                        detail: i.detail,
                    });
                }
                last = format!("instance {} is {:?}", i.id, i.state);
            }
            Err(e) => last = e.to_string(),
        }
        if started.elapsed() >= opts.health_timeout {
            return Err(StepError::Unhealthy {
                secs: opts.health_timeout.as_secs(),
                last,
            });
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(opts.poll_max);
    }
}
