//! Offer normalisation: the pure step between the providers' catalogues and
//! placement. No I/O.
//!
//! `normalize` takes the offers of every provider and, per offer:
//! 1. drops it when a price is not positive and finite or the hardware
//!    numbers are nonsensical ([`DropReason`]);
//! 2. names its GPU in one vocabulary ([`canonical_gpu_model`]:
//!    `NVIDIA T4 Tensor Core`, `Tesla T4`, `nvidia-tesla-t4` -> `NVIDIA T4`);
//! 3. marks fractional GPUs, shared-core vCPUs and promotional SKUs that the
//!    provider did not mark ([`is_fractional_gpu`], [`is_shared_core`],
//!    [`is_promotional_sku`]);
//! 4. drops it when its list price is absurd for its price family
//!    ([`SanityBounds`]); a bad spot price only removes the spot price;
//! 5. applies the operator's discount multiplier for its provider.
//!
//! Steps 1-4 depend only on the offer and the sanity bounds
//! (`normalize_listed`): the price store runs them once when a catalogue
//! is fetched and keeps the result. Step 5 depends on the operator's config
//! ([`apply_discount`]) and runs whenever offers are read.
//!
//! Everything dropped or changed is reported ([`NormalizeReport`]) so the
//! operator sees it.

use crate::placement::Offer;

mod bounds;
mod config;
mod gpu;
mod marks;
mod report;

pub use bounds::{PriceUnit, SanityBounds};
pub use config::{NormalizeConfig, NormalizeError};
pub use gpu::{GpuNames, canonical_gpu_model, is_fractional_gpu};
pub use marks::{is_promotional_sku, is_shared_core};
pub use report::{Adjustment, DropReason, NormalizeReport, OfferId};

use bounds::{bounds_min_for_spot, price_family};

/// Normalises every offer (see the module docs); returns the kept offers in
/// input order and the report. The whole-list form, for the tests: the price
/// store normalises offer by offer (`normalize_listed_with`) and discounts
/// when offers are read.
#[cfg(test)]
pub fn normalize(offers: Vec<Offer>, config: &NormalizeConfig) -> (Vec<Offer>, NormalizeReport) {
    let mut report = NormalizeReport::default();
    let mut kept = Vec::with_capacity(offers.len());
    for offer in offers {
        match normalize_offer(offer, config, &mut report.adjusted) {
            Ok((offer, discounted)) => {
                report.discounted += usize::from(discounted);
                kept.push(offer);
            }
            Err(dropped) => report.dropped.push(*dropped),
        }
    }
    (kept, report)
}

/// Normalises one offer. `Ok((offer, discounted))` when kept (changes worth
/// reporting are pushed to `adjusted`), `Err` with the reason when dropped.
#[cfg(test)]
pub fn normalize_offer(
    offer: Offer,
    config: &NormalizeConfig,
    adjusted: &mut Vec<(OfferId, Adjustment)>,
) -> Result<(Offer, bool), Box<(OfferId, DropReason)>> {
    let mut offer = normalize_listed(offer, config.bounds(), adjusted)?;
    let multiplier = config.discount(&offer.provider);
    let discounted = apply_discount(&mut offer, multiplier);
    Ok((offer, discounted))
}

/// Steps 1-4 (see the module docs): everything but the discount. `Ok` with
/// the offer at its list price when kept (changes worth reporting are pushed
/// to `adjusted`), `Err` with the reason when dropped.
#[cfg(test)]
pub fn normalize_listed(
    offer: Offer,
    bounds: &SanityBounds,
    adjusted: &mut Vec<(OfferId, Adjustment)>,
) -> Result<Offer, Box<(OfferId, DropReason)>> {
    normalize_listed_with(offer, bounds, adjusted, &mut GpuNames::default())
}

/// Steps 1-4 (everything but the discount), with GPU names remembered
/// across the offers of a catalogue.
pub fn normalize_listed_with(
    mut offer: Offer,
    bounds: &SanityBounds,
    adjusted: &mut Vec<(OfferId, Adjustment)>,
    gpu_names: &mut GpuNames,
) -> Result<Offer, Box<(OfferId, DropReason)>> {
    if let Err(reason) = check_numbers(&offer) {
        return Err(Box::new((OfferId::of(&offer), reason)));
    }

    // GPU model and marks.
    if offer.gpus == 0.0 {
        if let Some(model) = offer.gpu_model.take() {
            adjusted.push((OfferId::of(&offer), Adjustment::GpuModelWithoutGpus(model)));
        }
    } else if let Some(raw) = offer.gpu_model.take() {
        match gpu_names.canonical(&raw, offer.gpu_memory_gib) {
            Some(name) => offer.gpu_model = Some(name.to_owned()),
            None => {
                let trimmed = raw.trim().to_owned();
                adjusted.push((
                    OfferId::of(&offer),
                    Adjustment::UnknownGpuModel(trimmed.clone()),
                ));
                offer.gpu_model = Some(trimmed);
            }
        }
    }
    offer.fractional_gpu |=
        is_fractional_gpu(offer.gpus, offer.gpu_model.as_deref(), offer.gpu_memory_gib);
    offer.shared_cpu |= is_shared_core(&offer.provider, &offer.instance_type);
    offer.promotional |= is_promotional_sku(&offer.provider, &offer.instance_type);

    // Bounds on list prices.
    let (unit, per_unit, min, max) = price_family(&offer, bounds);
    let value = offer.hourly_usd / per_unit;
    if !offer.operator_owned && !(min..=max).contains(&value) {
        let reason = DropReason::PriceOutOfBounds {
            unit,
            value,
            min,
            max,
        };
        return Err(Box::new((OfferId::of(&offer), reason)));
    }
    if let Some(spot) = offer.spot_hourly_usd {
        let why = if !spot.is_finite() {
            Some("not finite")
        } else if spot <= 0.0 {
            Some("not positive")
        } else if spot > offer.hourly_usd {
            Some("above on-demand")
        } else if spot / per_unit < bounds_min_for_spot(unit, bounds) {
            Some("below bound")
        } else {
            None
        };
        if let Some(why) = why {
            offer.spot_hourly_usd = None;
            adjusted.push((
                OfferId::of(&offer),
                Adjustment::SpotPriceRemoved { spot, why },
            ));
        }
    }
    Ok(offer)
}

/// Step 5: the operator's discount `multiplier` on both prices. True when it
/// changed them (a multiplier other than 1).
pub fn apply_discount(offer: &mut Offer, multiplier: f64) -> bool {
    if multiplier == 1.0 {
        return false;
    }
    offer.hourly_usd *= multiplier;
    offer.spot_hourly_usd = offer.spot_hourly_usd.map(|s| s * multiplier);
    true
}

fn check_numbers(offer: &Offer) -> Result<(), DropReason> {
    if !offer.hourly_usd.is_finite() {
        return Err(DropReason::NonFinitePrice);
    }
    // The operator's own machines may cost nothing; nothing else may.
    if offer.hourly_usd < 0.0 || (offer.hourly_usd == 0.0 && !offer.operator_owned) {
        return Err(DropReason::NonPositivePrice(offer.hourly_usd));
    }
    let positive = [("vcpus", offer.vcpus), ("memory_gib", offer.memory_gib)];
    for (field, value) in positive {
        if !(value.is_finite() && value > 0.0) {
            return Err(DropReason::InvalidHardware {
                field,
                value: f64::from(value),
            });
        }
    }
    let non_negative = [
        ("gpus", Some(offer.gpus)),
        ("storage_gib", offer.storage_gib),
        ("gpu_memory_gib", offer.gpu_memory_gib),
    ];
    for (field, value) in non_negative {
        if let Some(value) = value
            && !(value.is_finite() && value >= 0.0)
        {
            return Err(DropReason::InvalidHardware {
                field,
                value: f64::from(value),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
