//! Compute Engine long-running operations (zonal and global).
//!
//! An insert or delete answers HTTP 200 with an `Operation`; the change has
//! happened only when the operation is `DONE` **without** `error` (a failed
//! insert still answers 200, to the insert and to every poll). `wait` blocks on
//! Google's side until DONE or about two minutes, and may return earlier, so it
//! is called in a loop, under a budget. The host cuts any answer that takes
//! longer than its first-byte timeout (30 s); each `wait` therefore asks for
//! less, and a `wait` cut short is followed by a plain GET of the operation.

use provider_sdk::http::Request;
use provider_sdk::{Error, log, settings};
use serde::Deserialize;
use wasip2::clocks::monotonic_clock;

use crate::api::{Api, Outcome};
use crate::errors::{self, OperationErrors};

/// Default budget of one call for waiting on operations: `operation_timeout_ms`.
pub const DEFAULT_BUDGET_MS: u64 = 90_000;
/// What one `wait` request may take before it is given up (under the host's cap).
const WAIT_REQUEST_MS: u64 = 25_000;

/// A Compute Engine operation (the fields this component reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// Operation name.
    pub name: String,
    /// `PENDING`, `RUNNING` or `DONE`.
    #[serde(default)]
    pub status: String,
    /// Set when a DONE operation failed.
    #[serde(default)]
    pub error: Option<OperationErrors>,
    /// HTTP status the failure corresponds to.
    #[serde(default)]
    pub http_error_status_code: Option<u16>,
}

impl Operation {
    /// True once the operation finished (successfully or not).
    pub fn done(&self) -> bool {
        self.status == "DONE"
    }

    /// The failure of a DONE operation, if it failed.
    pub fn failure(&self, what: &str) -> Option<Error> {
        self.error
            .as_ref()
            .filter(|e| !e.errors.is_empty())
            .map(|e| errors::from_operation(e, self.http_error_status_code, what))
    }
}

/// Where an operation lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    /// A zonal operation (instances).
    Zone(String),
    /// A global operation (firewalls).
    Global,
}

impl Scope {
    /// The collection path under the project.
    pub fn path(&self) -> String {
        match self {
            Scope::Zone(z) => format!("zones/{z}/operations"),
            Scope::Global => "global/operations".into(),
        }
    }
}

/// How long one call may spend waiting on operations, all of them together (a
/// create waits on the instance and then on each firewall rule), so that the call
/// stays under the host's deadline.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    start_ms: u64,
    total_ms: u64,
}

impl Budget {
    /// From the `operation_timeout_ms` setting (default 90 s), starting now.
    pub fn from_settings() -> Self {
        Budget {
            start_ms: now_ms(),
            total_ms: settings::get("operation_timeout_ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_BUDGET_MS),
        }
    }

    /// Milliseconds left.
    pub fn remaining_ms(&self) -> u64 {
        self.total_ms
            .saturating_sub(now_ms().saturating_sub(self.start_ms))
    }
}

fn now_ms() -> u64 {
    monotonic_clock::now() / 1_000_000
}

fn sleep_ms(ms: u64) {
    monotonic_clock::subscribe_duration(ms.saturating_mul(1_000_000)).block();
}

/// Wait for `op` until DONE or the budget is spent. `Ok(Some(op))` when it
/// finished successfully, `Ok(None)` when it is still running at the deadline,
/// `Err` with the mapped failure when it finished with `error`.
pub fn wait(
    api: &Api,
    scope: &Scope,
    mut op: Operation,
    budget: &Budget,
    what: &str,
) -> Result<Option<Operation>, Error> {
    let mut quick = 0u32;
    loop {
        if op.done() {
            return match op.failure(what) {
                Some(e) => Err(e),
                None => Ok(Some(op)),
            };
        }
        if budget.remaining_ms() == 0 {
            log::info(&format!(
                "{what}: operation {} still {} when this call's {} ms were spent; it goes on without us",
                op.name, op.status, budget.total_ms
            ));
            return Ok(None);
        }
        let asked = now_ms();
        let base = format!("{}/{}", scope.path(), op.name);
        let waited = api.call::<Operation>(
            Request::post(api.compute(&format!("{base}/wait"))?)
                .timeout_ms(WAIT_REQUEST_MS.min(budget.remaining_ms().max(1000))),
            &format!("waiting for {what}"),
        );
        op = match waited {
            Ok(Outcome::Ok(o)) => o,
            Ok(Outcome::Failed(f)) => return Err(f.into_error()),
            // A wait cut short (host timeout, reset): read the operation instead.
            Err(Error::Transient(_)) => match api.get::<Operation>(
                &api.compute(&base)?,
                &format!("reading the operation of {what}"),
            ) {
                Ok(Outcome::Ok(o)) => o,
                Ok(Outcome::Failed(f)) => return Err(f.into_error()),
                Err(Error::Transient(_)) => op,
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        };
        // `wait` returned early without DONE: back off instead of spinning.
        if !op.done() && now_ms().saturating_sub(asked) < 1000 {
            sleep_ms((100u64 << quick.min(4)).min(1500));
            quick += 1;
        }
    }
}
