//! `compute.list-offers`: the catalogue the `catalog` setting names, or the
//! embedded dated snapshot when it cannot be read.
//!
//! - `catalog = "skypilot"` (default): the keyless SkyPilot v8 `gcp/vms.csv`
//!   at `catalog_url` ([`skypilot`]);
//! - `catalog = "billing"`: the Cloud Billing Catalog SKUs at `billing_url`
//!   (authorised with the host's OAuth token) combined with the project's
//!   machine types from Compute Engine ([`billing`]).

mod billing;
mod csv;
mod skypilot;

use provider_sdk::http::Request;
use provider_sdk::types::{Offer, OfferQuery, PriceSource};
use provider_sdk::{Error, errors, log, settings, time};

use crate::api::{Api, query, with_query};
use crate::model::{AggregatedList, MachineType, ZoneMachineTypes};

/// Default SkyPilot catalogue URL (public, keyless).
pub const DEFAULT_CATALOG_URL: &str = "https://raw.githubusercontent.com/skypilot-org/skypilot-catalog/master/catalogs/v8/gcp/vms.csv";
/// Default Cloud Billing Catalog URL (Compute Engine's SKUs).
pub const DEFAULT_BILLING_URL: &str =
    "https://cloudbilling.googleapis.com/v1/services/6F81-5844-456A/skus";
/// The embedded snapshot (see `snapshot/README.md`).
const SNAPSHOT: &str = include_str!("../../snapshot/vms.snapshot.csv");
/// `price-source.source` of snapshot offers.
pub const SNAPSHOT_SOURCE: &str = "snapshot:gcp-2023-08-06";
/// Snapshot date, 2023-08-06T00:00:00Z (the Cloud Billing prices it is built from).
pub const SNAPSHOT_OBSERVED_AT: u64 = 1_691_280_000;

/// The catalogue (~2.5 MB upstream) is read whole, under this cap.
const MAX_CATALOG_BYTES: usize = 32 * 1024 * 1024;
/// SKUs per Cloud Billing page (Google allows 5000; 1000 keeps pages ~1.5 MB).
const SKU_PAGE_SIZE: &str = "1000";
const MAX_PAGES: usize = 400;

/// `compute.list-offers`.
pub fn list_offers(q: &OfferQuery) -> Result<Vec<Offer>, Error> {
    let regions = if q.regions.is_empty() {
        settings::list("regions")
    } else {
        q.regions.clone()
    };
    let (live, url) = match settings::get_or("catalog", "skypilot").as_str() {
        "skypilot" => {
            let url = settings::get_or("catalog_url", DEFAULT_CATALOG_URL);
            (skypilot_live(&url, &regions), url)
        }
        "billing" => {
            let url = settings::get_or("billing_url", DEFAULT_BILLING_URL);
            (billing_live(&url, &regions), url)
        }
        other => {
            return Err(Error::InvalidRequest(format!(
                "setting `catalog` = `{other}`: use `skypilot` or `billing`"
            )));
        }
    };
    match live {
        Ok(offers) => Ok(offers),
        Err(e) => {
            log::log(
                log::Level::Warn,
                "live GCP price catalogue unreadable; using the embedded snapshot",
                &[
                    ("url", provider_sdk::http::redact(&url)),
                    ("reason", errors::message(&e)),
                ],
            );
            snapshot(&regions)
        }
    }
}

/// Offers from the embedded snapshot.
pub fn snapshot(regions: &[String]) -> Result<Vec<Offer>, Error> {
    let source = PriceSource {
        source: SNAPSHOT_SOURCE.into(),
        observed_at: SNAPSHOT_OBSERVED_AT,
        from_snapshot: true,
    };
    skypilot::offers(SNAPSHOT, regions, &source)
        .map(|p| p.offers)
        .map_err(|e| Error::Other(format!("the embedded GCP snapshot is unreadable: {e}")))
}

fn skypilot_live(url: &str, regions: &[String]) -> Result<Vec<Offer>, Error> {
    let resp = Request::get(url)
        .header("accept", "text/csv")
        .max_response_bytes(MAX_CATALOG_BYTES)
        .send()?;
    if !resp.is_success() {
        return Err(errors::from_response(
            &resp,
            "reading the SkyPilot GCP catalogue",
        ));
    }
    let observed_at = resp
        .header("last-modified")
        .and_then(time::parse_http_date)
        .unwrap_or_else(time::now_unix);
    let text = String::from_utf8(resp.body)
        .map_err(|_| Error::Other("the SkyPilot GCP catalogue is not UTF-8".into()))?;
    let source = PriceSource {
        source: url.to_string(),
        observed_at,
        from_snapshot: false,
    };
    let parsed = skypilot::offers(&text, regions, &source)
        .map_err(|e| Error::Other(format!("the SkyPilot GCP catalogue at {url}: {e}")))?;
    if !parsed.unpriced.is_empty() {
        log::info(&format!(
            "{} GPU machine type(s) left out: the catalogue prices their host but not their GPUs there (e.g. {})",
            parsed.unpriced.len(),
            parsed.unpriced[0]
        ));
    }
    if parsed.offers.is_empty() && regions.is_empty() {
        return Err(Error::Other(format!(
            "the SkyPilot GCP catalogue at {url} has no priced machine type"
        )));
    }
    Ok(parsed.offers)
}

fn billing_live(url: &str, regions: &[String]) -> Result<Vec<Offer>, Error> {
    let api = Api::from_settings();
    let mut rates = billing::Rates::default();
    provider_sdk::paginate::collect(MAX_PAGES, |token| {
        let page_url = with_query(
            url,
            &[
                ("pageSize", SKU_PAGE_SIZE),
                ("pageToken", token.unwrap_or("")),
            ],
        );
        let page: billing::SkuPage = api
            .get(
                &page_url,
                "reading the Cloud Billing SKUs of Compute Engine",
            )?
            .ok()?;
        rates.add(&page.skus);
        Ok((Vec::<()>::new(), page.next_page_token))
    })?;
    let machine_types: Vec<MachineType> = provider_sdk::paginate::collect(MAX_PAGES, |token| {
        let page_url = format!(
            "{}{}",
            api.compute("aggregated/machineTypes")?,
            query(&[("maxResults", "500"), ("pageToken", token.unwrap_or(""))])
        );
        let page: AggregatedList<ZoneMachineTypes> = api
            .get(&page_url, "listing the project's machine types")?
            .ok()?;
        let items = page
            .items
            .into_iter()
            .flat_map(|(scope, v)| {
                let zone = scope.strip_prefix("zones/").unwrap_or(&scope).to_string();
                v.machine_types.into_iter().map(move |mut m| {
                    if m.zone.is_empty() {
                        m.zone = zone.clone();
                    }
                    m
                })
            })
            .collect();
        Ok((items, page.next_page_token))
    })?;
    let source = PriceSource {
        source: url.to_string(),
        observed_at: rates.newest.unwrap_or_else(time::now_unix),
        from_snapshot: false,
    };
    let offers = billing::offers(&rates, &machine_types, regions, &source);
    if offers.is_empty() && regions.is_empty() {
        return Err(Error::Other(format!(
            "no machine type of the project could be priced from the SKUs at {url}"
        )));
    }
    Ok(offers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_parses_and_prices_e2_medium_and_a2_with_its_gpu() {
        let offers = snapshot(&["us-central1".to_string()]).expect("snapshot parses");
        assert!(
            offers
                .iter()
                .all(|o| o.region == "us-central1" && o.source.from_snapshot)
        );
        let find = |t: &str| offers.iter().find(|o| o.instance_type == t);
        let e2 = find("e2-medium").expect("e2-medium in the snapshot");
        assert!(
            (e2.hourly_usd - 0.03350571).abs() < 1e-6,
            "{}",
            e2.hourly_usd
        );
        let a2 = find("a2-highgpu-1g").expect("a2-highgpu-1g in the snapshot");
        assert!((a2.hourly_usd - 3.673388).abs() < 1e-6, "{}", a2.hourly_usd);
        assert_eq!(a2.gpus, 1.0);
    }
}
