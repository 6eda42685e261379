//! The errors of the pricing layer.

use crate::db::DbError;
use crate::placement::PlacementError;
use crate::runtime::CallError;

/// Prices could not be had or ranked.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// A provider was asked for by name that is not loaded or lists no offers.
    #[error(
        "no loaded provider named `{name}` lists offers (those that do: {known}); check --provider"
    )]
    UnknownProvider {
        /// The name asked for.
        name: String,
        /// The providers that list offers.
        known: String,
    },
    /// The provider's `list-offers` failed.
    #[error("{source}")]
    CallFailed {
        /// Provider.
        provider: String,
        /// What the call said (boxed: a call error is large).
        #[source]
        source: Box<CallError>,
    },
    /// The provider did not answer within the fetch deadline.
    #[error("no answer within {secs} s (price_fetch_timeout_secs)")]
    TimedOut {
        /// Provider.
        provider: String,
        /// The deadline.
        secs: u64,
    },
    /// The provider could only give its embedded snapshot, which is not
    /// stored.
    #[error("live source unreachable (the {provider} component fell back to its snapshot)")]
    SnapshotOnly {
        /// Provider.
        provider: String,
    },
    /// The price store failed.
    #[error("price store: {0}")]
    StoreFailed(Box<DbError>),
    /// The request or policy cannot be ranked.
    #[error(transparent)]
    PlacementFailed(#[from] PlacementError),
    /// A host bug (a task panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DbError> for PricingError {
    fn from(e: DbError) -> Self {
        PricingError::StoreFailed(Box::new(e))
    }
}

/// Result of the pricing layer.
pub type Result<T, E = PricingError> = std::result::Result<T, E>;
