//! Azure Resource Manager errors onto the WIT `error` the orchestrator acts on.
//!
//! ARM answers `{"error": {"code", "message", "details": [...]}}`; a failed
//! long-running operation carries the same `error` object. The code decides
//! first (the same code comes with different statuses), then the status:
//!
//! | ARM code | WIT error |
//! |---|---|
//! | `SkuNotAvailable`, `AllocationFailed`, `ZonalAllocationFailed`, `Overconstrained*AllocationRequest`, `AllocationFailedVMSeriesNotSupported` | `capacity-unavailable` (next candidate) |
//! | `OperationNotAllowed` about a quota, `QuotaExceeded`, `*QuotaExceeded` | `quota-exceeded` (next candidate) |
//! | `LocationNotAvailableForResourceType`, `LocationNotAvailableForResourceGroup`, `DisallowedLocation`, `NoRegisteredProviderFound` | `region-unavailable` |
//! | `AuthorizationFailed`, `AuthenticationFailed`, `InvalidAuthenticationToken*`, `ExpiredAuthenticationToken`, `LinkedAuthorizationFailed` | `unauthorized` |
//! | `ResourceNotFound`, `ResourceGroupNotFound`, `NotFound` | `not-found` |
//! | `AnotherOperationInProgress`, `RetryableError`, `OperationPreempted`, `ResourceGroupBeingDeleted`, `*InUse*`, `*CannotBeDeleted*` | `transient` (retry later) |
//!
//! Otherwise by status: 401/403 `unauthorized`, 404 `not-found`, 409 `transient`
//! (a conflict with an operation in flight), 429 `rate-limited` with
//! `Retry-After`, 408/5xx `transient`, other 4xx `invalid-request`.

use provider_sdk::Error;
use provider_sdk::errors as sdk;
use provider_sdk::http::Response;
use provider_sdk::types::RateLimit;
use serde::Deserialize;

/// The `error` object of an ARM answer or of a failed operation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ArmError {
    /// Error code (`AllocationFailed`...).
    #[serde(default)]
    pub code: String,
    /// Human text.
    #[serde(default)]
    pub message: String,
    /// Nested errors (the first one often holds the real code).
    #[serde(default)]
    pub details: Vec<ArmError>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Option<ArmError>,
}

impl ArmError {
    /// The error of an ARM answer body, when it has one.
    pub fn from_body(body: &[u8]) -> Option<ArmError> {
        serde_json::from_slice::<Envelope>(body).ok()?.error
    }

    /// `code: message`, with the first detail's code when it says more.
    pub fn text(&self) -> String {
        let mut t = format!("{}: {}", self.code, self.message);
        if let Some(d) = self.details.first()
            && !d.code.is_empty()
            && d.code != self.code
        {
            t.push_str(&format!(" ({}: {})", d.code, d.message));
        }
        t
    }

    /// The most specific known code: this one, or a detail's when this one is generic.
    fn codes(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.code.as_str()).chain(self.details.iter().map(|d| d.code.as_str()))
    }
}

/// What a code alone says, or `None` when the status must decide.
fn by_code(err: &ArmError, text: String) -> Option<Error> {
    for code in err.codes() {
        let mapped = match code {
            "SkuNotAvailable"
            | "AllocationFailed"
            | "ZonalAllocationFailed"
            | "OverconstrainedAllocationRequest"
            | "OverconstrainedZonalAllocationRequest"
            | "AllocationFailedVMSeriesNotSupported" => {
                Some(Error::CapacityUnavailable(text.clone()))
            }
            "OperationNotAllowed" if err.message.to_ascii_lowercase().contains("quota") => {
                Some(Error::QuotaExceeded(text.clone()))
            }
            c if c == "QuotaExceeded" || c.ends_with("QuotaExceeded") => {
                Some(Error::QuotaExceeded(text.clone()))
            }
            "LocationNotAvailableForResourceType"
            | "LocationNotAvailableForResourceGroup"
            | "DisallowedLocation"
            | "NoRegisteredProviderFound" => Some(Error::RegionUnavailable(text.clone())),
            "AuthorizationFailed"
            | "AuthenticationFailed"
            | "InvalidAuthenticationToken"
            | "InvalidAuthenticationTokenTenant"
            | "ExpiredAuthenticationToken"
            | "LinkedAuthorizationFailed" => Some(Error::Unauthorized(format!(
                "{text} (check [providers.azure.credential] and the identity's role on the subscription)"
            ))),
            "ResourceNotFound" | "ResourceGroupNotFound" | "NotFound" => {
                Some(Error::NotFound(text.clone()))
            }
            "AnotherOperationInProgress"
            | "RetryableError"
            | "OperationPreempted"
            | "ResourceGroupBeingDeleted" => Some(Error::Transient(text.clone())),
            // Still attached to something being deleted: it goes on a later call.
            c if c.contains("InUse") || c.contains("CannotBeDeleted") => {
                Some(Error::Transient(text.clone()))
            }
            _ => None,
        };
        if mapped.is_some() {
            return mapped;
        }
    }
    None
}

/// Map a non-2xx ARM answer. `what` names the operation ("creating VM x").
pub fn from_response(resp: &Response, what: &str) -> Error {
    let Some(err) = ArmError::from_body(&resp.body) else {
        return sdk::from_response(resp, what);
    };
    let text = format!("{what}: HTTP {}: {}", resp.status, err.text());
    if resp.status == 429 {
        // Seconds need no clock; only an HTTP date or reset time does.
        let retry_after_ms = match resp.header("retry-after").map(|v| v.trim().parse::<u64>()) {
            Some(Ok(secs)) => Some(secs.saturating_mul(1000)),
            _ => sdk::retry_after_ms(&resp.headers, provider_sdk::time::now_unix()),
        };
        return Error::RateLimited(RateLimit {
            retry_after_ms,
            message: text,
        });
    }
    if let Some(e) = by_code(&err, text.clone()) {
        return e;
    }
    match resp.status {
        409 => Error::Transient(format!("{text} (a conflicting operation is in flight)")),
        status => sdk::from_status(status, &resp.headers, &err.text(), what),
    }
}

/// Map the error of a failed long-running operation.
pub fn from_operation(err: &ArmError, what: &str) -> Error {
    let text = format!("{what} failed: {}", err.text());
    if let Some(e) = by_code(err, text.clone()) {
        return e;
    }
    match err.code.as_str() {
        "InvalidParameter"
        | "BadRequest"
        | "InvalidRequestContent"
        | "ImageNotFound"
        | "PlatformImageNotFound"
        | "InvalidResourceReference" => Error::InvalidRequest(text),
        "InternalServerError" | "InternalOperationError" | "ServerTimeout" => {
            Error::Transient(text)
        }
        _ => Error::Other(text),
    }
}

/// The same error with `note` added to its message.
pub fn with_note(e: Error, note: &str) -> Error {
    let text = format!("{} ({note})", sdk::message(&e));
    match e {
        Error::Unauthorized(_) => Error::Unauthorized(text),
        Error::NotFound(_) => Error::NotFound(text),
        Error::InvalidRequest(_) => Error::InvalidRequest(text),
        Error::CapacityUnavailable(_) => Error::CapacityUnavailable(text),
        Error::QuotaExceeded(_) => Error::QuotaExceeded(text),
        Error::RegionUnavailable(_) => Error::RegionUnavailable(text),
        Error::RateLimited(mut r) => {
            r.message = text;
            Error::RateLimited(r)
        }
        Error::Unsupported(_) => Error::Unsupported(text),
        Error::Denied(_) => Error::Denied(text),
        Error::Transient(_) => Error::Transient(text),
        Error::Other(_) => Error::Other(text),
    }
}

/// True for errors after which a create is retried as it is (nothing is
/// cleaned up: the retry resumes where this attempt stopped).
pub fn is_retryable(e: &Error) -> bool {
    matches!(e, Error::Transient(_) | Error::RateLimited(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn err(status: u16, code: &str, message: &str) -> Error {
        let body = serde_json::json!({"error": {"code": code, "message": message}}).to_string();
        from_response(&resp(status, &body, &[]), "creating VM v")
    }

    #[test]
    fn capacity_codes_are_capacity_unavailable_whatever_the_status() {
        assert!(matches!(
            err(409, "SkuNotAvailable", "The requested VM size is not available"),
            Error::CapacityUnavailable(m) if m.contains("SkuNotAvailable")
        ));
        assert!(matches!(
            err(200, "AllocationFailed", "no capacity"),
            Error::CapacityUnavailable(_)
        ));
        assert!(matches!(
            err(409, "ZonalAllocationFailed", "zone full"),
            Error::CapacityUnavailable(_)
        ));
    }

    #[test]
    fn operation_not_allowed_is_quota_only_when_it_is_about_a_quota() {
        assert!(matches!(
            err(
                409,
                "OperationNotAllowed",
                "Operation could not be completed as it results in exceeding approved standardDSv3Family Cores quota."
            ),
            Error::QuotaExceeded(_)
        ));
        assert!(matches!(
            err(409, "OperationNotAllowed", "The VM is being deallocated."),
            Error::Transient(_)
        ));
        assert!(matches!(
            err(400, "OperationNotAllowed", "The VM is being deallocated."),
            Error::InvalidRequest(_)
        ));
    }

    #[test]
    fn statuses_decide_for_unknown_codes() {
        assert!(matches!(err(401, "Whatever", "x"), Error::Unauthorized(_)));
        assert!(matches!(
            err(403, "AuthorizationFailed", "no role"),
            Error::Unauthorized(_)
        ));
        assert!(matches!(err(404, "Whatever", "x"), Error::NotFound(_)));
        assert!(matches!(err(409, "Conflict", "x"), Error::Transient(_)));
        assert!(matches!(
            err(400, "InvalidParameter", "x"),
            Error::InvalidRequest(_)
        ));
        assert!(matches!(
            err(503, "ServiceUnavailable", "x"),
            Error::Transient(_)
        ));
        assert!(matches!(
            err(400, "InUseSubnetCannotBeDeleted", "x"),
            Error::Transient(_)
        ));
    }

    #[test]
    fn throttling_carries_retry_after() {
        let body = r#"{"error":{"code":"TooManyRequests","message":"throttled"}}"#;
        match from_response(&resp(429, body, &[("retry-after", "17")]), "listing VMs") {
            Error::RateLimited(r) => {
                assert_eq!(r.retry_after_ms, Some(17_000));
                assert!(r.message.contains("TooManyRequests"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_nested_detail_code_is_used_when_the_outer_one_is_generic() {
        let e = ArmError {
            code: "DeploymentFailed".into(),
            message: "At least one resource deployment operation failed.".into(),
            details: vec![ArmError {
                code: "SkuNotAvailable".into(),
                message: "not here".into(),
                details: vec![],
            }],
        };
        assert!(matches!(
            from_operation(&e, "creating VM v"),
            Error::CapacityUnavailable(m) if m.contains("SkuNotAvailable")
        ));
    }
}
