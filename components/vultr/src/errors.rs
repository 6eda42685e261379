//! Vultr's error answers onto the WIT `error`.
//!
//! Vultr answers `{"error": "Invalid plan chosen.", "status": 400}` with 400,
//! 401, 403, 404, 429 or 500. The status decides (sdk mapping: 401/403
//! `unauthorized`, 404 `not-found`, 5xx `transient`), except that:
//! - a 400 whose text names a quota or an unavailable plan, location or region
//!   is `quota-exceeded`, `capacity-unavailable` or `region-unavailable`
//!   ([`classify`]); the ambiguous `Invalid plan chosen.` is settled by the
//!   create path against the public plan list ([`crate::instances`]);
//! - a 429 without `Retry-After` still carries a delay: Vultr limits each
//!   address to 30 requests per second, so one second is always enough.

use provider_sdk::errors as sdk;
use provider_sdk::http::Response;
use provider_sdk::types::{Error, RateLimit};

/// Wait suggested for a 429 that names no delay (Vultr's limit is per second).
pub const DEFAULT_RETRY_AFTER_MS: u64 = 1_000;

/// Map a non-2xx answer; `what` names the operation.
pub fn from_response(resp: &Response, what: &str) -> Error {
    let message = sdk::body_message(&resp.body);
    let text = format!("{what}: HTTP {}: {message}", resp.status);
    match resp.status {
        429 => Error::RateLimited(RateLimit {
            retry_after_ms: Some(
                sdk::retry_after_ms(&resp.headers, provider_sdk::time::now_unix())
                    .unwrap_or(DEFAULT_RETRY_AFTER_MS),
            ),
            message: text,
        }),
        400 | 422 => match classify(&message) {
            Some(make) => make(text),
            None => Error::InvalidRequest(text),
        },
        _ => sdk::from_status(resp.status, &resp.headers, &message, what),
    }
}

/// The error case a 400 message stands for beyond "invalid request", if any.
pub fn classify(message: &str) -> Option<fn(String) -> Error> {
    let m = message.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&[
        "quota",
        "limit reached",
        "limit exceeded",
        "maximum number of",
    ]) || (m.contains("limit") && has(&["exceed", "reached"]))
    {
        return Some(Error::QuotaExceeded);
    }
    let unavailable = has(&[
        "not available",
        "unavailable",
        "sold out",
        "out of stock",
        "no capacity",
        "insufficient capacity",
    ]);
    if m.contains("region") && (unavailable || m.contains("invalid region")) {
        return Some(Error::RegionUnavailable);
    }
    if unavailable && has(&["plan", "location", "capacity", "stock", "sold out"]) {
        return Some(Error::CapacityUnavailable);
    }
    None
}

/// True when a failed create certainly created nothing and the orchestrator
/// will not repeat it as is: what was made before it (key, firewall) goes.
/// After a transient failure or a rate limit the host repeats the create with
/// the same key, which finds them again.
pub fn is_final(e: &Error) -> bool {
    !matches!(
        e,
        Error::Transient(_) | Error::Other(_) | Error::RateLimited(_)
    )
}

/// `e` with `note` appended to its message, same case.
pub fn with_message(e: Error, note: &str) -> Error {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(message: &str) -> Option<Error> {
        classify(message).map(|f| f(String::new()))
    }

    #[test]
    fn sold_out_and_unavailable_plans_are_capacity() {
        for m in [
            "This plan is currently sold out in this location.",
            "Plan is not available in the selected location.",
            "Insufficient capacity for the requested plan.",
        ] {
            assert!(
                matches!(kind(m), Some(Error::CapacityUnavailable(_))),
                "{m}"
            );
        }
    }

    #[test]
    fn limits_are_quota_and_regions_are_region_unavailable() {
        assert!(matches!(
            kind("You have reached the maximum number of instances for your account."),
            Some(Error::QuotaExceeded(_))
        ));
        assert!(matches!(
            kind("Monthly fee limit exceeded."),
            Some(Error::QuotaExceeded(_))
        ));
        assert!(matches!(
            kind("Invalid region chosen."),
            Some(Error::RegionUnavailable(_))
        ));
        assert!(matches!(
            kind("The region is not available for your account."),
            Some(Error::RegionUnavailable(_))
        ));
    }

    #[test]
    fn other_400_messages_stay_invalid_requests() {
        assert!(kind("Invalid plan chosen.").is_none());
        assert!(kind("Invalid operating system.").is_none());
        assert!(kind("user_data must be base64 encoded.").is_none());
    }

    #[test]
    fn only_failures_that_cannot_have_created_anything_are_final() {
        assert!(is_final(&Error::InvalidRequest(String::new())));
        assert!(is_final(&Error::CapacityUnavailable(String::new())));
        assert!(!is_final(&Error::Transient(String::new())));
        assert!(!is_final(&Error::RateLimited(RateLimit {
            retry_after_ms: None,
            message: String::new()
        })));
    }
}
