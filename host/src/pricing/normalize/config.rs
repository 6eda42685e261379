//! The settings of normalisation: sanity bounds and the operator's
//! per-provider discounts, validated.

use std::collections::BTreeMap;

use super::bounds::SanityBounds;

/// A normalisation setting the operator must fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormalizeError {
    /// A discount multiplier is not a finite number in (0, 10].
    #[error(
        "discount multiplier for provider `{provider}` is {multiplier}; use a number in (0, 10], e.g. 0.8 for 20% off"
    )]
    InvalidDiscount {
        /// Provider the multiplier was given for.
        provider: String,
        /// The value given.
        multiplier: f64,
    },
    /// A sanity bound is not positive and finite, or its minimum exceeds its
    /// maximum.
    #[error("sanity bound `{name}` is invalid ({min}..{max}); use positive numbers with min < max")]
    InvalidBounds {
        /// Which bound.
        name: &'static str,
        /// Its minimum.
        min: f64,
        /// Its maximum.
        max: f64,
    },
}

/// The settings of `normalize`. Build with [`NormalizeConfig::new`] to
/// validate them; `default()` has the default bounds and no discounts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NormalizeConfig {
    bounds: SanityBounds,
    discounts: BTreeMap<String, f64>,
}

impl NormalizeConfig {
    /// Validates `bounds` and the per-provider discount `multipliers`
    /// (`0.8` = 20% off the list price, applied to on-demand and spot).
    pub fn new(
        bounds: SanityBounds,
        discounts: BTreeMap<String, f64>,
    ) -> Result<NormalizeConfig, NormalizeError> {
        let ranges = [
            (
                "usd_per_vcpu_hour",
                bounds.min_usd_per_vcpu_hour,
                bounds.max_usd_per_vcpu_hour,
            ),
            (
                "usd_per_gpu_hour",
                bounds.min_usd_per_gpu_hour,
                bounds.max_usd_per_gpu_hour,
            ),
            (
                "min_usd_per_flagship_gpu_hour",
                bounds.min_usd_per_flagship_gpu_hour,
                bounds.max_usd_per_gpu_hour,
            ),
        ];
        for (name, min, max) in ranges {
            if !(min.is_finite() && max.is_finite() && min > 0.0 && min < max) {
                return Err(NormalizeError::InvalidBounds { name, min, max });
            }
        }
        for (provider, &multiplier) in &discounts {
            if !(multiplier.is_finite() && multiplier > 0.0 && multiplier <= 10.0) {
                return Err(NormalizeError::InvalidDiscount {
                    provider: provider.clone(),
                    multiplier,
                });
            }
        }
        Ok(NormalizeConfig { bounds, discounts })
    }

    /// The sanity bounds.
    pub fn bounds(&self) -> &SanityBounds {
        &self.bounds
    }

    /// The discount multiplier of `provider` (1.0 when none is set).
    pub fn discount(&self, provider: &str) -> f64 {
        self.discounts.get(provider).copied().unwrap_or(1.0)
    }
}
