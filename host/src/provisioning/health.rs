//! Health of a new deployment: an HTTP check on the instance's address and
//! port when the request gives one, else the provider's running state.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{DeployOptions, HealthCheck, describe_error};
use crate::providers::ProviderHandle;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{Instance, InstanceRef, InstanceState, ProviderError};

/// A passed health check.
pub(super) struct Healthy {
    /// The address it was reached on (or the provider reported).
    pub address: Option<String>,
    /// What passed, for the history.
    pub message: String,
}

/// One HTTP GET; `Ok(status)` when it answered.
pub(crate) async fn http_get(url: &str, timeout: Duration) -> Result<u16, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    match tokio::time::timeout(timeout, client.get(uri)).await {
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            Ok(status)
        }
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Err(_) => Err(format!(
            "{url}: no answer within {} ms",
            timeout.as_millis()
        )),
    }
}

/// POST a JSON body (http or https); `Ok(status)` when it answered.
pub(crate) async fn http_post_json(
    url: &str,
    body: String,
    timeout: Duration,
) -> Result<u16, String> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no TLS trust store: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = Client::builder(TokioExecutor::new()).build::<_, Full<Bytes>>(https);
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("{url}: {e}"))?;
    match tokio::time::timeout(timeout, client.request(req)).await {
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            let _ = resp.into_body().collect().await;
            Ok(status)
        }
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Err(_) => Err(format!(
            "{url}: no answer within {} ms",
            timeout.as_millis()
        )),
    }
}

/// Wait until `instance` is healthy, under `opts.health_timeout`.
pub(super) async fn wait_healthy(
    provider: &ProviderHandle,
    instance: &Instance,
    check: Option<&HealthCheck>,
    opts: &DeployOptions,
) -> Result<Healthy, String> {
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
                    (Some(h), Some(a)) => {
                        let url = format!("http://{a}:{}{}", h.port, h.path());
                        match http_get(&url, Duration::from_secs(5)).await {
                            Ok(s) if (200..300).contains(&s) => {
                                return Ok(Healthy {
                                    address,
                                    message: format!("{url} answered {s}"),
                                });
                            }
                            Ok(s) => last = format!("{url} answered {s}"),
                            Err(e) => last = e,
                        }
                    }
                    (Some(_), None) => last = format!("instance {} has no address yet", i.id),
                }
            }
            Ok(i) => {
                if matches!(
                    i.state,
                    InstanceState::Failed | InstanceState::Terminated | InstanceState::Terminating
                ) {
                    return Err(format!("instance {} is {:?}", i.id, i.state));
                }
                last = format!("instance {} is {:?}", i.id, i.state);
            }
            // It ran before the wait began: not found now means it is gone,
            // and no deadline will bring it back.
            Err(CallError::Provider(ProviderError::NotFound(m))) => {
                return Err(format!(
                    "instance {} no longer exists (the provider says: {m})",
                    instance.id
                ));
            }
            Err(e) => last = describe_error(&e),
        }
        if started.elapsed() >= opts.health_timeout {
            return Err(format!(
                "not healthy after {} s (last: {last})",
                opts.health_timeout.as_secs()
            ));
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(opts.poll_max);
    }
}
