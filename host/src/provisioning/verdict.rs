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
