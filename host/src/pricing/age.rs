//! How old each stored catalogue is, for `bpr serve`'s metrics.

use super::service::PricingService;

impl PricingService {
    /// When `provider`'s stored catalogue was fetched (unix seconds); `None`
    /// when nothing is stored (never fetched, or only its embedded snapshot).
    pub fn catalogue_fetched_at(&self, provider: &str) -> Option<u64> {
        // The catalogue's metadata row only, not its offers.
        self.store
            .meta(provider)
            .ok()
            .flatten()
            .map(|m| m.fetched_at)
    }
}
