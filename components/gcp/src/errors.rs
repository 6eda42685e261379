//! Google API errors -> the WIT `error` the orchestrator acts on.
//!
//! Two places carry errors:
//! - the HTTP answer: `{"error": {"code", "message", "status", "errors": [{"reason",
//!   "domain", "message"}]}}` (Compute Engine fills `errors[].reason`, GKE only
//!   `status`);
//! - a finished Compute Engine `Operation`: HTTP 200 everywhere, and
//!   `error.errors[] {code, message}` plus `httpErrorStatusCode` on the operation
//!   itself (a stockout or a quota hit is reported there, after the insert was
//!   accepted).
//!
//! | where | what | WIT error |
//! |---|---|---|
//! | operation | `ZONE_RESOURCE_POOL_EXHAUSTED`, `..._WITH_DETAILS`, `RESOURCE_POOL_EXHAUSTED`, `ZONE_RESOURCE_POOL_EXHAUSTED_*` | `capacity-unavailable` |
//! | operation | `QUOTA_EXCEEDED` | `quota-exceeded` |
//! | operation | `RATE_LIMIT_EXCEEDED` | `rate-limited` |
//! | operation | `RESOURCE_NOT_FOUND`, `INVALID_*`, `BAD_REQUEST`, `UNSUPPORTED_OPERATION` | `invalid-request` |
//! | HTTP | reason `rateLimitExceeded` / `userRateLimitExceeded` (403 or 429), status 429 | `rate-limited` (`Retry-After` honoured) |
//! | HTTP | reason `quotaExceeded` | `quota-exceeded` |
//! | HTTP | reason `resourceExhausted`, `ZONE_RESOURCE_POOL_EXHAUSTED` in the message | `capacity-unavailable` |
//! | HTTP | reason `resourceNotReady` (busy with another operation) | `transient` |
//! | HTTP | 401, other 403 | `unauthorized` |
//! | HTTP | 404 | `not-found` |
//! | HTTP | 409 `alreadyExists` | `invalid-request` (callers that expect it on a retry check [`is_already_exists`] first) |
//! | HTTP | 400 and other 4xx | `invalid-request` |
//! | HTTP | 408, 5xx | `transient` |

use provider_sdk::Error;
use provider_sdk::types::RateLimit;
use serde::Deserialize;

/// The `error` object of a Google JSON error answer.
#[derive(Debug, Default, Deserialize)]
pub struct GoogleError {
    /// Human message.
    #[serde(default)]
    pub message: String,
    /// Canonical status (`NOT_FOUND`, `ALREADY_EXISTS`, `RESOURCE_EXHAUSTED`...).
    #[serde(default)]
    pub status: String,
    /// Compute Engine's details.
    #[serde(default)]
    pub errors: Vec<GoogleErrorItem>,
}

/// One `errors[]` entry of a Compute Engine error answer.
#[derive(Debug, Default, Deserialize)]
pub struct GoogleErrorItem {
    /// `notFound`, `alreadyExists`, `rateLimitExceeded`, `quotaExceeded`...
    #[serde(default)]
    pub reason: String,
}

#[derive(Deserialize)]
struct Envelope {
    error: GoogleError,
}

/// The error object of a Google answer body, when it is one.
pub fn parse(body: &[u8]) -> Option<GoogleError> {
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .map(|e| e.error)
}

/// True when a create answer says the resource exists (HTTP 409 `alreadyExists` /
/// `ALREADY_EXISTS`), i.e. an earlier attempt made it.
pub fn is_already_exists(status: u16, body: &[u8]) -> bool {
    status == 409
        && parse(body).is_none_or(|e| {
            e.status == "ALREADY_EXISTS"
                || e.errors.iter().any(|i| i.reason == "alreadyExists")
                || e.status.is_empty() && e.errors.is_empty()
        })
}

/// Map an HTTP error answer. `what` names the call ("creating instance x in
/// us-central1-a"); `retry_after_ms` comes from the answer's headers.
pub fn from_http(status: u16, body: &[u8], retry_after_ms: Option<u64>, what: &str) -> Error {
    let err = parse(body).unwrap_or_default();
    let message = if err.message.is_empty() {
        provider_sdk::errors::body_message(body)
    } else {
        err.message.clone()
    };
    let text = if message.is_empty() {
        format!("{what}: HTTP {status}")
    } else {
        format!("{what}: HTTP {status}: {message}")
    };
    let reasons: Vec<&str> = err.errors.iter().map(|e| e.reason.as_str()).collect();
    let has = |r: &str| reasons.contains(&r);
    if has("rateLimitExceeded") || has("userRateLimitExceeded") || status == 429 {
        return Error::RateLimited(RateLimit {
            retry_after_ms,
            message: text,
        });
    }
    if has("quotaExceeded") || message.contains("QUOTA_EXCEEDED") {
        return Error::QuotaExceeded(text);
    }
    if has("resourceExhausted") || message.contains("RESOURCE_POOL_EXHAUSTED") {
        return Error::CapacityUnavailable(text);
    }
    // The resource is busy with another operation (e.g. a delete while its insert
    // still runs): it will succeed later.
    if has("resourceNotReady") {
        return Error::Transient(text);
    }
    match status {
        401 | 403 => Error::Unauthorized(format!(
            "{text} (check the gcp provider's service account key and its roles)"
        )),
        404 => Error::NotFound(text),
        408 | 500..=599 => Error::Transient(text),
        400..=499 => Error::InvalidRequest(text),
        _ => Error::Other(text),
    }
}

/// A finished operation's error (`error.errors[]`, `httpErrorStatusCode`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OperationErrors {
    /// The errors, most relevant first.
    #[serde(default)]
    pub errors: Vec<OperationError>,
}

/// One error of a failed operation.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OperationError {
    /// `ZONE_RESOURCE_POOL_EXHAUSTED`, `QUOTA_EXCEEDED`...
    #[serde(default)]
    pub code: String,
    /// Human message.
    #[serde(default)]
    pub message: String,
}

/// Map a failed operation. `http` is its `httpErrorStatusCode`, if any.
pub fn from_operation(errors: &OperationErrors, http: Option<u16>, what: &str) -> Error {
    let detail: Vec<String> = errors
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.code, e.message))
        .collect();
    let text = format!("{what} failed: {}", detail.join("; "));
    let codes: Vec<&str> = errors.errors.iter().map(|e| e.code.as_str()).collect();
    let any = |f: &dyn Fn(&str) -> bool| codes.iter().any(|c| f(c));
    if any(&|c| c.contains("RESOURCE_POOL_EXHAUSTED") || c == "ZONE_RESOURCE_POOL_EXHAUSTED") {
        return Error::CapacityUnavailable(text);
    }
    if any(&|c| c == "QUOTA_EXCEEDED" || c.ends_with("_QUOTA_EXCEEDED")) {
        return Error::QuotaExceeded(text);
    }
    if any(&|c| c == "RATE_LIMIT_EXCEEDED") {
        return Error::RateLimited(RateLimit {
            retry_after_ms: None,
            message: text,
        });
    }
    if any(&|c| {
        c == "RESOURCE_NOT_FOUND"
            || c == "BAD_REQUEST"
            || c == "UNSUPPORTED_OPERATION"
            || c.starts_with("INVALID")
            || c == "CONDITION_NOT_MET"
    }) {
        return Error::InvalidRequest(text);
    }
    match http {
        Some(401 | 403) => Error::Unauthorized(text),
        Some(404) => Error::NotFound(text),
        Some(429) => Error::RateLimited(RateLimit {
            retry_after_ms: None,
            message: text,
        }),
        Some(400..=499) => Error::InvalidRequest(text),
        Some(500..=599) => Error::Transient(text),
        _ => Error::Other(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn google(code: u16, reason: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "message": message, "errors": [{"reason": reason, "domain": "global", "message": message}]}})
            .to_string()
            .into_bytes()
    }

    fn op(code: &str) -> OperationErrors {
        OperationErrors {
            errors: vec![OperationError {
                code: code.into(),
                message: "m".into(),
            }],
        }
    }

    #[test]
    fn a_stockout_reported_by_the_operation_is_capacity_unavailable() {
        for code in [
            "ZONE_RESOURCE_POOL_EXHAUSTED",
            "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
        ] {
            assert!(
                matches!(
                    from_operation(&op(code), Some(503), "insert"),
                    Error::CapacityUnavailable(_)
                ),
                "{code}"
            );
        }
    }

    #[test]
    fn operation_quota_rate_and_invalid_codes_map_to_their_cases() {
        assert!(matches!(
            from_operation(&op("QUOTA_EXCEEDED"), Some(403), "x"),
            Error::QuotaExceeded(_)
        ));
        assert!(matches!(
            from_operation(&op("RATE_LIMIT_EXCEEDED"), None, "x"),
            Error::RateLimited(_)
        ));
        assert!(matches!(
            from_operation(&op("RESOURCE_NOT_FOUND"), Some(404), "x"),
            Error::InvalidRequest(_)
        ));
        assert!(matches!(
            from_operation(&op("SOMETHING_NEW"), Some(503), "x"),
            Error::Transient(_)
        ));
        let text =
            provider_sdk::errors::message(&from_operation(&op("X"), None, "insert")).to_string();
        assert!(text.contains("insert failed: X: m"), "{text}");
    }

    #[test]
    fn rate_limit_reasons_are_rate_limited_even_as_403() {
        let e = from_http(
            403,
            &google(403, "rateLimitExceeded", "Rate Limit Exceeded"),
            Some(3000),
            "x",
        );
        match e {
            Error::RateLimited(r) => assert_eq!(r.retry_after_ms, Some(3000)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_http(429, b"{}", None, "x"),
            Error::RateLimited(_)
        ));
    }

    #[test]
    fn http_statuses_map_to_their_cases() {
        assert!(matches!(
            from_http(
                403,
                &google(403, "quotaExceeded", "Quota 'CPUS' exceeded"),
                None,
                "x"
            ),
            Error::QuotaExceeded(_)
        ));
        assert!(matches!(
            from_http(
                403,
                &google(
                    403,
                    "forbidden",
                    "Required 'compute.instances.create' permission"
                ),
                None,
                "x"
            ),
            Error::Unauthorized(_)
        ));
        assert!(matches!(
            from_http(401, b"{}", None, "x"),
            Error::Unauthorized(_)
        ));
        assert!(matches!(
            from_http(404, &google(404, "notFound", "gone"), None, "x"),
            Error::NotFound(_)
        ));
        assert!(matches!(
            from_http(400, &google(400, "invalid", "bad"), None, "x"),
            Error::InvalidRequest(_)
        ));
        assert!(matches!(
            from_http(503, b"", None, "x"),
            Error::Transient(_)
        ));
        assert!(matches!(
            from_http(
                400,
                &google(400, "resourceNotReady", "The resource is not ready"),
                None,
                "x"
            ),
            Error::Transient(_)
        ));
        assert!(matches!(
            from_http(
                503,
                &google(503, "resourceExhausted", "ZONE_RESOURCE_POOL_EXHAUSTED"),
                None,
                "x"
            ),
            Error::CapacityUnavailable(_)
        ));
    }

    #[test]
    fn already_exists_is_recognised_in_both_shapes() {
        assert!(is_already_exists(
            409,
            &google(409, "alreadyExists", "The resource 'x' already exists")
        ));
        let gke = br#"{"error":{"code":409,"message":"Already exists: projects/p/locations/l/clusters/c.","status":"ALREADY_EXISTS"}}"#;
        assert!(is_already_exists(409, gke));
        assert!(!is_already_exists(404, gke));
        assert!(!is_already_exists(
            409,
            &google(409, "resourceInUseByAnotherResource", "in use")
        ));
    }
}
