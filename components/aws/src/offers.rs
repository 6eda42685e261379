//! `compute.list-offers`: the ec2instances.info / instances.vantage.sh
//! `instances.json` catalogue, read as a stream (see [`crate::catalogue`]),
//! with an embedded dated snapshot as fallback.

use provider_sdk::http::Request;
use provider_sdk::types::{Offer, OfferQuery};
use provider_sdk::{Error, log, settings, time};

use crate::catalogue::{Source, read_offers};

/// Default catalogue URL (keyless, public).
pub const DEFAULT_CATALOG_URL: &str = "https://instances.vantage.sh/instances.json";

/// The embedded snapshot (see `snapshot/README.md`).
const SNAPSHOT: &[u8] = include_bytes!("../snapshot/instances.snapshot.json");
/// `price-source.source` of snapshot offers.
pub const SNAPSHOT_SOURCE: &str = "snapshot:aws-libcloud-2025-03-02";
/// When the snapshot's prices were published: apache-libcloud's
/// `pricing.json` says `"updated": 1740936978` (2025-03-02T17:36:18Z).
pub const SNAPSHOT_OBSERVED_AT: u64 = 1_740_936_978;

/// The live catalogue is ~100 MB; it is read as a stream, never held whole.
const MAX_CATALOG_BYTES: usize = 1024 * 1024 * 1024;

/// The live catalogue, or the snapshot when it cannot be read.
pub fn list_offers(query: &OfferQuery) -> Result<Vec<Offer>, Error> {
    let regions = wanted_regions(query);
    let url = settings::get_or("catalog_url", DEFAULT_CATALOG_URL);
    match fetch_live(&url, &regions) {
        Ok(offers) => Ok(offers),
        Err(e) => {
            log::log(
                log::Level::Warn,
                "live AWS catalogue unreadable; using the embedded snapshot",
                &[
                    ("url", provider_sdk::http::redact(&url)),
                    ("reason", provider_sdk::errors::message(&e)),
                ],
            );
            snapshot_offers(&regions)
        }
    }
}

/// The regions asked for: the query's, else the `regions` setting, else all
/// (empty = no filter).
fn wanted_regions(query: &OfferQuery) -> Vec<String> {
    if !query.regions.is_empty() {
        query.regions.clone()
    } else {
        settings::list("regions")
    }
}

fn fetch_live(url: &str, regions: &[String]) -> Result<Vec<Offer>, Error> {
    let resp = Request::get(url)
        .header("accept", "application/json")
        .max_response_bytes(MAX_CATALOG_BYTES)
        .send_streaming()?;
    if !resp.is_success() {
        return Err(provider_sdk::errors::from_status(
            resp.status,
            &resp.headers,
            "",
            "reading the AWS instance catalogue",
        ));
    }
    let source = Source {
        source: url.to_string(),
        observed_at: published_at(resp.header("last-modified"), time::now_unix()),
        from_snapshot: false,
    };
    read_offers(resp.body, regions, &source, "the AWS instance catalogue")
}

/// When the served catalogue was published: its `Last-Modified` (the file's
/// date on instances.vantage.sh, or of a recording served as a file), else
/// `now` (the server does not say, so the prices are as of the fetch).
pub fn published_at(last_modified: Option<&str>, now: u64) -> u64 {
    last_modified
        .and_then(time::parse_http_date)
        .filter(|t| *t <= now)
        .unwrap_or(now)
}

/// The embedded snapshot's offers in `regions` (all when empty).
pub fn snapshot_offers(regions: &[String]) -> Result<Vec<Offer>, Error> {
    let source = Source {
        source: SNAPSHOT_SOURCE.to_string(),
        observed_at: SNAPSHOT_OBSERVED_AT,
        from_snapshot: true,
    };
    read_offers(
        SNAPSHOT,
        regions,
        &source,
        "the embedded AWS catalogue snapshot",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_is_read_whole_with_its_date_and_source() {
        let offers = snapshot_offers(&[]).expect("the snapshot parses");
        // Counted by build_snapshot.py (see snapshot/README.md).
        assert_eq!(offers.len(), 11_168);
        assert!(offers.iter().all(|o| o.source.from_snapshot
            && o.source.source == SNAPSHOT_SOURCE
            && o.source.observed_at == SNAPSHOT_OBSERVED_AT));
        let find = |t: &str, r: &str| {
            offers
                .iter()
                .find(|o| o.instance_type == t && o.region == r)
        };
        assert_eq!(
            find("m5.large", "us-east-1").map(|o| o.hourly_usd),
            Some(0.096)
        );
        // libcloud has no us-east-1 price for t3.medium (a scrape gap): absent.
        assert!(find("t3.medium", "us-east-1").is_none());
        let p4de = find("p4de.24xlarge", "us-east-1").unwrap();
        assert_eq!(p4de.gpu_model.as_deref(), Some("NVIDIA A100"));
        assert_eq!(p4de.gpu_memory_gib, Some(80.0));
        let graviton = find("m7g.large", "us-east-1").unwrap();
        assert_eq!(graviton.arch, provider_sdk::types::Arch::Arm64);
        let east = snapshot_offers(&["us-east-1".into()]).unwrap();
        assert!(!east.is_empty() && east.iter().all(|o| o.region == "us-east-1"));
    }

    #[test]
    fn a_last_modified_date_is_when_the_prices_were_published() {
        let now = 1_800_000_000;
        assert_eq!(
            published_at(Some("Sun, 06 Aug 2023 00:00:00 GMT"), now),
            1_691_280_000
        );
        assert_eq!(published_at(None, now), now);
        assert_eq!(published_at(Some("yesterday"), now), now);
        // A date in the future is a wrong clock somewhere, not a publication.
        assert_eq!(
            published_at(Some("Fri, 01 Jan 2100 00:00:00 GMT"), now),
            now
        );
    }
}
