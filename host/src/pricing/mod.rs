//! Prices: offers from the providers' catalogues, normalised once when
//! fetched, stored in the embedded database so that a plan reads only what
//! it needs, refreshed in the background and served stale while refreshing.
//!
//! - `service.rs`: [`PricingService`]: gather, store, refresh; [`PricingService::plan`]
//!   ranks a request over the offers that can be candidates;
//! - `select.rs`: [`Selection`]: which stored offers a plan reads;
//! - `store/`: [`CatalogueStore`]: the catalogue's binary form in the database;
//! - `normalize/`: the pure normalisation of offers (GPU vocabulary, marks,
//!   sanity bounds, discounts);
//! - `convert.rs`: a WIT offer as the host's [`Offer`](crate::placement::Offer).

mod age;
mod convert;
mod error;
mod normalize;
mod select;
mod service;
mod store;

pub use convert::from_wit;
pub use error::{PricingError, Result};
pub use normalize::{
    Adjustment, DropReason, GpuNames, NormalizeConfig, NormalizeError, NormalizeReport, OfferId,
    PriceUnit, SanityBounds, canonical_gpu_model,
};
pub use select::Selection;
pub use service::{
    CatalogueSource, CatalogueStatus, Plan, PlanOptions, PriceReport, PricingConfig, PricingService,
};
pub use store::{
    CatalogueMeta, CatalogueStore, Drops, Encoded, Encoder, Loaded, Provenance, RowRef,
};
