//! Prices: offers gathered from every loaded provider, normalised, cached in
//! the embedded database with their fetch time, refreshed in the background
//! and served stale while refreshing.

mod age;
mod convert;
pub mod normalize;
mod service;
mod store;

pub use convert::from_wit;
pub use service::{CatalogueSource, CatalogueStatus, PriceReport, PricingService};
pub use store::CatalogueStore;
