//! What normalisation dropped and changed, for the operator.

use serde::{Deserialize, Serialize};

use super::bounds::PriceUnit;
use crate::placement::Offer;

/// Why an offer was dropped.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropReason {
    /// On-demand price is zero or negative.
    NonPositivePrice(f64),
    /// On-demand price is NaN or infinite.
    NonFinitePrice,
    /// A hardware number is impossible (`vcpus` or `memory_gib` not > 0,
    /// `gpus` or `storage_gib` negative, anything not finite).
    InvalidHardware {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// The list price is outside its price family's bounds.
    PriceOutOfBounds {
        /// Which bound.
        unit: PriceUnit,
        /// The offer's price in that unit.
        value: f64,
        /// Lowest believable.
        min: f64,
        /// Highest believable.
        max: f64,
    },
}

impl std::fmt::Display for DropReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropReason::NonPositivePrice(p) => write!(f, "price {p} $/h is not positive"),
            DropReason::NonFinitePrice => f.write_str("price is not a finite number"),
            DropReason::InvalidHardware { field, value } => {
                write!(f, "{field} is {value}, which is impossible")
            }
            DropReason::PriceOutOfBounds {
                unit,
                value,
                min,
                max,
            } => write!(
                f,
                "{value:.5} $ {} is outside the believable {min}..{max}",
                match unit {
                    PriceUnit::PerVcpuHour => "per vCPU-hour",
                    PriceUnit::PerGpuHour => "per GPU-hour",
                    PriceUnit::PerFlagshipGpuHour => "per flagship GPU-hour",
                }
            ),
        }
    }
}

/// A change made to an offer that was kept, worth telling the operator.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Adjustment {
    /// The spot price was removed; the on-demand price stays.
    SpotPriceRemoved {
        /// The spot price given.
        spot: f64,
        /// Why: `not positive`, `not finite`, `above on-demand`, `below bound`.
        why: &'static str,
    },
    /// The GPU model is not in the vocabulary; kept as given (trimmed).
    UnknownGpuModel(String),
    /// A GPU model was given with 0 GPUs; the model was removed.
    GpuModelWithoutGpus(String),
}

/// Which offer a report entry is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferId {
    /// Provider name.
    pub provider: String,
    /// Machine type.
    pub instance_type: String,
    /// Region code.
    pub region: String,
    /// Zone, when the offer had one.
    pub zone: Option<String>,
}

impl OfferId {
    pub(crate) fn of(offer: &Offer) -> OfferId {
        OfferId {
            provider: offer.provider.clone(),
            instance_type: offer.instance_type.clone(),
            region: offer.region.clone(),
            zone: offer.zone.clone(),
        }
    }
}

impl std::fmt::Display for OfferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} in {}",
            self.provider, self.instance_type, self.region
        )?;
        if let Some(zone) = &self.zone {
            write!(f, " ({zone})")?;
        }
        Ok(())
    }
}

/// What `normalize` dropped and changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NormalizeReport {
    /// Dropped offers, in input order.
    pub dropped: Vec<(OfferId, DropReason)>,
    /// Kept offers that were changed, in input order.
    pub adjusted: Vec<(OfferId, Adjustment)>,
    /// Offers whose prices a discount multiplier changed.
    pub discounted: usize,
}
