//! The Azure Resource Manager REST client: base URL from the `endpoint`
//! setting, one api-version per resource provider, JSON through the sdk,
//! ARM's error bodies mapped onto the WIT `error`, `nextLink` paging, and
//! long-running operations followed through `Azure-AsyncOperation` or
//! `Location` with `Retry-After`. The host adds the bearer token.
//!
//! Every URL ARM hands back (operation status, next page) is rebased onto the
//! configured endpoint: the component keeps talking to the one origin the
//! operator allowed, whatever host the server writes into its links.

use provider_sdk::http::{Request, Response};
use provider_sdk::{Error, json, paginate, settings as s};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::errors::{self, ArmError};
use crate::settings::DEFAULT_ENDPOINT;

/// `Microsoft.Compute` (virtual machines, disks): from 2021-03-01 on a VM
/// can mark its disk, NICs and public IPs `deleteOption: Delete`.
pub const COMPUTE_API: &str = "2025-04-01";
/// `Microsoft.Compute/disks` has its own versions.
pub const DISKS_API: &str = "2024-03-02";
/// `Microsoft.Network`.
pub const NETWORK_API: &str = "2024-05-01";
/// `Microsoft.ContainerService` (AKS).
pub const AKS_API: &str = "2025-08-01";
/// `Microsoft.Resources` (resource groups and their resources).
pub const RESOURCES_API: &str = "2021-04-01";

/// Per-request timeout.
const TIMEOUT_MS: u64 = 30_000;
/// Stop following `nextLink` after this many pages.
const MAX_PAGES: usize = 200;
/// Cap on one ARM answer (a page of VMs or resources is far smaller).
const MAX_ANSWER: usize = 8 * 1024 * 1024;
/// Shortest and longest wait between two polls of an operation, in ms.
const POLL_MIN_MS: u64 = 50;
const POLL_MAX_MS: u64 = 10_000;
/// First wait when the server gives no `Retry-After`.
const POLL_FIRST_MS: u64 = 500;

/// Milliseconds on the monotonic clock.
pub fn now_ms() -> u64 {
    wasip2::clocks::monotonic_clock::now() / 1_000_000
}

/// Block for `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    wasip2::clocks::monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
}

/// A client bound to the configured endpoint.
pub struct Arm {
    base: String,
}

/// A long-running operation ARM started: where to ask about it.
#[derive(Debug, Clone, Default)]
pub struct Operation {
    /// `Azure-AsyncOperation`: answers `{status, error}`.
    pub async_url: Option<String>,
    /// `Location`: answers 202 while running, 200/204 when done.
    pub location: Option<String>,
    /// `Retry-After` of the answer that started it, in ms.
    pub retry_after_ms: Option<u64>,
}

impl Operation {
    fn from_response(resp: &Response) -> Self {
        Operation {
            async_url: resp.header("azure-asyncoperation").map(str::to_string),
            location: resp.header("location").map(str::to_string),
            retry_after_ms: retry_after(resp),
        }
    }

    /// True when there is nothing to poll.
    pub fn is_empty(&self) -> bool {
        self.async_url.is_none() && self.location.is_none()
    }
}

/// How a long-running operation ended, as far as one call waited.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `Succeeded` (or done, for a `Location` poll).
    Succeeded,
    /// `Failed` or `Canceled`, with ARM's error.
    Failed(ArmError),
    /// Still running at the deadline.
    Running,
}

#[derive(Deserialize)]
struct OperationStatus {
    #[serde(default)]
    status: String,
    #[serde(default)]
    error: Option<ArmError>,
}

#[derive(Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    #[serde(rename = "nextLink", default)]
    next_link: Option<String>,
}

fn retry_after(resp: &Response) -> Option<u64> {
    resp.header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000))
}

/// True when ARM says a resource's own operation is still running
/// (`provisioningState` other than Succeeded / Failed / Canceled; a missing
/// field means done).
pub fn in_progress(state: Option<&str>) -> bool {
    !matches!(state, None | Some("Succeeded" | "Failed" | "Canceled"))
}

/// `properties.provisioningState` of a resource document.
pub fn provisioning_state(doc: &Value) -> Option<&str> {
    doc.pointer("/properties/provisioningState")
        .and_then(Value::as_str)
}

impl Arm {
    /// A client for the `endpoint` setting (default [`DEFAULT_ENDPOINT`]).
    pub fn from_settings() -> Self {
        Arm {
            base: s::endpoint("endpoint", DEFAULT_ENDPOINT),
        }
    }

    /// Absolute URL of `path` (an ARM id or path) with `api-version`.
    pub fn url(&self, path: &str, api: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}api-version={api}", self.base)
    }

    /// A URL from ARM rebased onto the configured endpoint (path and query kept).
    pub fn rebase(&self, link: &str) -> String {
        if link.starts_with(&self.base) {
            return link.to_string();
        }
        let path = match link.split_once("://") {
            Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
            None => link,
        };
        format!("{}{path}", self.base)
    }

    /// Send; a non-2xx answer becomes the matching WIT `error`.
    pub fn send(&self, req: Request, what: &str) -> Result<Response, Error> {
        let resp = req
            .header("accept", "application/json")
            .timeout_ms(TIMEOUT_MS)
            .max_response_bytes(MAX_ANSWER)
            .send()?;
        if resp.is_success() {
            Ok(resp)
        } else {
            Err(errors::from_response(&resp, what))
        }
    }

    /// GET a resource; `None` when it does not exist (404).
    pub fn get(&self, path: &str, api: &str, what: &str) -> Result<Option<Value>, Error> {
        match self.send(Request::get(self.url(path, api)), what) {
            Ok(resp) => json::parse(&resp.body, what).map(Some),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// PUT a JSON body; returns the answer's document and the operation it started.
    pub fn put(
        &self,
        path: &str,
        api: &str,
        body: &Value,
        what: &str,
    ) -> Result<(Value, Operation), Error> {
        let resp = self.send(Request::put(self.url(path, api)).json(body)?, what)?;
        let doc = if resp.body.is_empty() {
            Value::Null
        } else {
            json::parse(&resp.body, what)?
        };
        Ok((doc, Operation::from_response(&resp)))
    }

    /// POST an action without a body (`listClusterUserCredential`) and parse the answer.
    pub fn post<T: DeserializeOwned>(&self, path: &str, api: &str, what: &str) -> Result<T, Error> {
        let resp = self.send(Request::post(self.url(path, api)), what)?;
        json::parse(&resp.body, what)
    }

    /// DELETE; `None` when the resource was already gone, else the operation.
    pub fn delete(&self, path: &str, api: &str, what: &str) -> Result<Option<Operation>, Error> {
        match self.send(Request::delete(self.url(path, api)), what) {
            Ok(resp) if resp.status == 204 => Ok(None),
            Ok(resp) => Ok(Some(Operation::from_response(&resp))),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every item of a listing, following `nextLink`.
    pub fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        api: &str,
        what: &str,
    ) -> Result<Vec<T>, Error> {
        paginate::collect(MAX_PAGES, |cursor| {
            let url = match cursor {
                None => self.url(path, api),
                Some(link) => self.rebase(link),
            };
            let resp = self.send(Request::get(url), what)?;
            let page: Page<T> = json::parse(&resp.body, what)?;
            Ok((page.value, page.next_link))
        })
    }

    /// Poll `op` until it ends or `deadline_ms` (monotonic) passes.
    pub fn wait(&self, op: &Operation, deadline_ms: u64, what: &str) -> Result<Outcome, Error> {
        if op.is_empty() {
            return Ok(Outcome::Succeeded);
        }
        let mut wait = op.retry_after_ms.unwrap_or(POLL_FIRST_MS);
        loop {
            if now_ms().saturating_add(wait.max(POLL_MIN_MS)) > deadline_ms {
                return Ok(Outcome::Running);
            }
            sleep_ms(wait.clamp(POLL_MIN_MS, POLL_MAX_MS));
            let (outcome, retry) = self.poll_once(op, what)?;
            match outcome {
                Outcome::Running => {
                    wait = retry.unwrap_or_else(|| (wait * 2).min(POLL_MAX_MS));
                }
                done => return Ok(done),
            }
        }
    }

    /// One status request for `op`.
    fn poll_once(&self, op: &Operation, what: &str) -> Result<(Outcome, Option<u64>), Error> {
        let what = format!("{what} (operation status)");
        if let Some(url) = &op.async_url {
            let resp = self.send(Request::get(self.rebase(url)), &what)?;
            let st: OperationStatus = json::parse(&resp.body, &what)?;
            let outcome = match st.status.as_str() {
                "Succeeded" => Outcome::Succeeded,
                "Failed" | "Canceled" => Outcome::Failed(st.error.unwrap_or_else(|| ArmError {
                    code: st.status.clone(),
                    message: "the operation ended without an error object".into(),
                    details: vec![],
                })),
                _ => Outcome::Running,
            };
            return Ok((outcome, retry_after(&resp)));
        }
        let url = op.location.as_deref().unwrap_or_default();
        let resp = self.send(Request::get(self.rebase(url)), &what)?;
        let outcome = if resp.status == 202 {
            Outcome::Running
        } else {
            Outcome::Succeeded
        };
        Ok((outcome, retry_after(&resp)))
    }

    /// Poll a resource's own `provisioningState` (when an earlier call
    /// started its operation and its URL is lost) until it ends or the
    /// deadline passes. `None` when the resource disappeared.
    pub fn wait_resource(
        &self,
        path: &str,
        api: &str,
        deadline_ms: u64,
        what: &str,
    ) -> Result<Option<Value>, Error> {
        let mut wait = POLL_FIRST_MS;
        loop {
            let doc = self.get(path, api, what)?;
            match &doc {
                Some(d) if in_progress(provisioning_state(d)) => {}
                _ => return Ok(doc),
            }
            if now_ms().saturating_add(wait) > deadline_ms {
                return Ok(doc);
            }
            sleep_ms(wait);
            wait = (wait * 2).min(POLL_MAX_MS);
        }
    }
}

/// The deadline (monotonic ms) `setting` milliseconds from now.
pub fn deadline(setting: &str, default_ms: u64) -> u64 {
    now_ms().saturating_add(crate::settings::millis(setting, default_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_from_the_server_are_rebased_onto_the_configured_endpoint() {
        let arm = Arm {
            base: "http://127.0.0.1:26030".into(),
        };
        assert_eq!(
            arm.rebase("https://management.azure.com/subscriptions/s/providers/Microsoft.Compute/locations/eastus/operations/1?api-version=2025-04-01"),
            "http://127.0.0.1:26030/subscriptions/s/providers/Microsoft.Compute/locations/eastus/operations/1?api-version=2025-04-01"
        );
        assert_eq!(
            arm.url("/subscriptions/s/resourcegroups?$filter=x", RESOURCES_API),
            "http://127.0.0.1:26030/subscriptions/s/resourcegroups?$filter=x&api-version=2021-04-01"
        );
    }

    #[test]
    fn only_succeeded_failed_and_canceled_end_an_operation() {
        assert!(in_progress(Some("Creating")));
        assert!(in_progress(Some("Updating")));
        assert!(in_progress(Some("Deleting")));
        assert!(!in_progress(Some("Succeeded")));
        assert!(!in_progress(Some("Failed")));
        assert!(!in_progress(None));
    }
}
