//! What a failed provider call means for the deployment: fail over, stop, or
//! find out (the outcome is unknown).

use crate::runtime::CallError;
use crate::runtime::bindings::wit::ProviderError;

/// What to do after a failed provider call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Try the next candidate.
    Failover,
    /// Stop the deployment.
    Stop,
    /// The outcome is unknown (retries exhausted, trap, other): sweep, then fail over.
    Unknown,
}

pub(super) fn verdict(e: &CallError) -> Verdict {
    match e {
        CallError::Provider(p) => match p {
            ProviderError::CapacityUnavailable(_)
            | ProviderError::QuotaExceeded(_)
            | ProviderError::RegionUnavailable(_)
            | ProviderError::Unsupported(_) => Verdict::Failover,
            ProviderError::Unauthorized(_)
            | ProviderError::InvalidRequest(_)
            | ProviderError::Denied(_) => Verdict::Stop,
            ProviderError::NotFound(_) => Verdict::Stop,
            ProviderError::RateLimited(_)
            | ProviderError::Transient(_)
            | ProviderError::Other(_) => Verdict::Unknown,
        },
        CallError::NotLoaded(_) | CallError::Unsupported { .. } => Verdict::Failover,
        _ => Verdict::Unknown,
    }
}

/// A short, human text for a call error.
pub fn describe_error(e: &CallError) -> String {
    match e {
        CallError::Provider(p) => match p {
            ProviderError::Unauthorized(m) => format!("unauthorized: {m}"),
            ProviderError::NotFound(m) => format!("not found: {m}"),
            ProviderError::InvalidRequest(m) => format!("invalid request: {m}"),
            ProviderError::CapacityUnavailable(m) => format!("capacity unavailable: {m}"),
            ProviderError::QuotaExceeded(m) => format!("quota exceeded: {m}"),
            ProviderError::RegionUnavailable(m) => format!("region unavailable: {m}"),
            ProviderError::RateLimited(r) => format!("rate limited: {}", r.message),
            ProviderError::Unsupported(m) => format!("unsupported: {m}"),
            ProviderError::Denied(m) => format!("denied by network policy: {m}"),
            ProviderError::Transient(m) => format!("transient: {m}"),
            ProviderError::Other(m) => format!("error: {m}"),
        },
        other => other.to_string(),
    }
}
