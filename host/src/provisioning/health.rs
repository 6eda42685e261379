//! Health of a deployment: an HTTP check on the instance's address and port
//! when the request gives one, else the provider's running state.

use std::time::{Duration, Instant};

use super::error::StepError;
use super::{DeployOptions, HealthCheck};
use crate::host_http::{self, HostHttpError};
use crate::providers::ProviderHandle;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{Instance, InstanceRef, InstanceState, ProviderError};

/// Deadline of one HTTP check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A passed health check.
pub(super) struct Healthy {
    /// The address it was reached on (or the provider reported).
    pub address: Option<String>,
    /// What passed, for the history.
    pub message: String,
}

/// Why one HTTP health check did not pass.
#[derive(Debug, thiserror::Error)]
pub(super) enum CheckFailed {
    /// It answered, with a status outside 2xx.
    #[error("{url} answered {status}")]
    Status {
        /// The URL checked.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// No answer (refused, timed out, broken off).
    #[error(transparent)]
    Unreachable(#[from] HostHttpError),
}

/// One HTTP check of `check` on `address`: `Ok(message)` when it answered 2xx.
pub(super) async fn check_once(address: &str, check: &HealthCheck) -> Result<String, CheckFailed> {
    let host = if address.contains(':') {
        format!("[{address}]")
    } else {
        address.to_string()
    };
    let url = format!("http://{host}:{}{}", check.port, check.path());
    let a = host_http::get(&url, CHECK_TIMEOUT).await?;
    if a.is_success() {
        Ok(format!("{url} answered {}", a.status))
    } else {
        Err(CheckFailed::Status {
            url,
            status: a.status,
        })
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
                        Err(seen) => last = seen.to_string(),
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
            // It ran before the wait began: not found now means it is gone,
            // and no deadline will bring it back.
            Err(CallError::Provider(ProviderError::NotFound(m))) => {
                return Err(StepError::Vanished {
                    instance: instance.id.clone(),
                    detail: m,
                });
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
