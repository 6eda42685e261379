//! Offers: `/v2/sizes` priced live, or the embedded snapshot when the API
//! cannot be reached.

use provider_sdk::types::{Error, Offer, OfferQuery, PriceSource};
use provider_sdk::{errors, log};
use serde::Deserialize;

use crate::api::{Api, PER_PAGE};
use crate::model::{self, SizesPage};

/// The embedded price snapshot (see `snapshot/README.md`).
const SNAPSHOT: &str = include_str!("../snapshot/sizes.json");
/// Name of the snapshot in `price-source.source`.
const SNAPSHOT_SOURCE: &str = "snapshot:digitalocean-2026-11-26";

/// Every size of the account's catalogue as offers, live when it answers.
pub(crate) fn list(query: OfferQuery) -> Result<Vec<Offer>, Error> {
    let api = Api::from_settings();
    match live_sizes(&api) {
        Ok(sizes) => {
            let source = PriceSource {
                source: api.url("/v2/sizes"),
                observed_at: provider_sdk::time::now_unix(),
                from_snapshot: false,
            };
            Ok(model::offers_from_sizes(&sizes, &query.regions, &source))
        }
        Err(e) => {
            log::warn(&format!(
                "reading /v2/sizes failed, answering from the embedded snapshot {SNAPSHOT_SOURCE}: {}",
                errors::message(&e)
            ));
            snapshot_offers(&query.regions)
        }
    }
}

fn live_sizes(api: &Api) -> Result<Vec<model::Size>, Error> {
    api.all_pages(
        &format!("/v2/sizes?per_page={PER_PAGE}"),
        "listing sizes",
        |p: SizesPage| (p.sizes, p.links),
    )
}

#[derive(Deserialize)]
struct Snapshot {
    recorded: String,
    sizes: Vec<model::Size>,
}

fn snapshot_offers(regions: &[String]) -> Result<Vec<Offer>, Error> {
    let snap: Snapshot =
        provider_sdk::json::parse(SNAPSHOT.as_bytes(), "the embedded price snapshot")?;
    let source = PriceSource {
        source: SNAPSHOT_SOURCE.into(),
        observed_at: provider_sdk::time::parse_rfc3339(&snap.recorded).unwrap_or(0),
        from_snapshot: true,
    };
    Ok(model::offers_from_sizes(&snap.sizes, regions, &source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_snapshot_parses_into_positive_priced_offers() {
        let snap: Snapshot = serde_json::from_str(SNAPSHOT).expect("snapshot is valid JSON");
        assert_eq!(snap.recorded, "2026-11-26");
        let source = PriceSource {
            source: SNAPSHOT_SOURCE.into(),
            observed_at: 0,
            from_snapshot: true,
        };
        let offers = model::offers_from_sizes(&snap.sizes, &[], &source);
        assert!(offers.len() >= 40, "{} offers", offers.len());
        assert!(offers.iter().all(|o| o.hourly_usd > 0.0 && o.vcpus > 0.0));
    }
}
