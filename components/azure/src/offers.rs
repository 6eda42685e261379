//! Priced offers from the keyless Azure Retail Prices API
//! (`GET <price_endpoint>/api/retail/prices`), one query per region, every
//! `NextPageLink` followed, with the embedded dated snapshot for regions that
//! cannot be read in time.
//!
//! Which price items count (clouds.md §4.5):
//! - `type == "Consumption"`, `unitOfMeasure == "1 Hour"`, `serviceName ==
//!   "Virtual Machines"`, a positive `retailPrice` and an `armSkuName`;
//! - `productName` without `Windows` (Linux prices only);
//! - `skuName` / `meterName` with `Low Priority` dropped (retired);
//! - `skuName` / `meterName` ending in ` Spot` are the spot price.
//!
//! **Duplicates.** The same `(armSkuName, region)` can carry several Linux
//! prices (another meter or product line for the same size, an old and a new
//! price). One wins, by this rule, in order: the latest `effectiveStartDate`
//! (the price in force), then `isPrimaryMeterRegion`, then the higher price
//! (a cost is never under-estimated).
//!
//! `*_Promo` sizes are real offers marked `promotional` (the host excludes
//! them unless the operator allows them); sizes missing from the size table
//! are skipped, since their hardware is unknown.

use std::collections::BTreeMap;

use provider_sdk::http::{Request, percent_encode};
use provider_sdk::types::{Offer, OfferQuery, PriceSource};
use provider_sdk::{Error, errors, json, log, paginate, settings as s};
use serde::Deserialize;

use crate::arm::now_ms;
use crate::settings::{self, DEFAULT_PRICE_BUDGET_MS, DEFAULT_PRICE_ENDPOINT};
use crate::sizes::{self, Size};

/// Path of the Retail Prices API.
pub const PRICES_PATH: &str = "/api/retail/prices";
/// Its api-version (filter values are case-sensitive from this version on).
pub const PRICES_API: &str = "2023-01-01-preview";
/// The embedded snapshot: `armSkuName,armRegionName,retailPrice,spotPrice`.
const SNAPSHOT: &str = include_str!("../snapshot/prices.csv");
/// `price-source.source` of snapshot offers: named by the date of its
/// prices, not of its assembly.
pub const SNAPSHOT_SOURCE: &str = "snapshot:azure-skypilot-v6-2024-08-18";
/// When the snapshot's prices were read from the Retail Prices API:
/// 2024-08-18T00:00:00Z, the Azure fetch of skypilot-catalog (see
/// `snapshot/README.md` for how the date was established). The snapshot was
/// assembled on 2026-12-06; that is not its prices' date.
pub const SNAPSHOT_OBSERVED_AT: u64 = 1_723_939_200;
/// Pages per region before giving up (a region has fewer than 20).
const MAX_PAGES: usize = 100;
/// Cap on one page (about 0.6 MB for 1000 items).
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// One page of the Retail Prices API.
#[derive(Debug, Deserialize)]
pub struct RetailPage {
    /// Price items.
    #[serde(rename = "Items", default)]
    pub items: Vec<RetailItem>,
    /// Absolute URL of the next page; null on the last.
    #[serde(rename = "NextPageLink", default)]
    pub next_page_link: Option<String>,
}

/// One price item (the fields read).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetailItem {
    /// `Standard_D2s_v5`.
    pub arm_sku_name: String,
    /// `eastus`.
    pub arm_region_name: String,
    /// USD per `unitOfMeasure`.
    pub retail_price: f64,
    /// `1 Hour` for VMs.
    pub unit_of_measure: String,
    /// `Consumption`, `DevTestConsumption`, `Reservation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `Virtual Machines DSv3 Series [Windows]`.
    pub product_name: String,
    /// `D2s v3`, `D2s v3 Spot`, `D2s v3 Low Priority`.
    pub sku_name: String,
    /// Usually the same as `skuName`.
    pub meter_name: String,
    /// `Virtual Machines`.
    pub service_name: String,
    /// Whether the meter's home region is this one.
    pub is_primary_meter_region: bool,
    /// When the price took effect (RFC 3339).
    pub effective_start_date: String,
}

/// A Linux price of one size in one region, on-demand or spot.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// `armSkuName`.
    pub sku: String,
    /// `armRegionName`.
    pub region: String,
    /// True for a ` Spot` meter.
    pub spot: bool,
    /// USD per hour.
    pub usd: f64,
    /// `effectiveStartDate` in Unix seconds (0 when absent).
    pub effective: u64,
    /// `isPrimaryMeterRegion`.
    pub primary: bool,
}

/// The Linux pay-as-you-go price an item is, if it is one.
pub fn price_of(item: &RetailItem) -> Option<Price> {
    let names = [item.sku_name.as_str(), item.meter_name.as_str()];
    let keep = item.kind == "Consumption"
        && item.unit_of_measure == "1 Hour"
        && (item.service_name.is_empty() || item.service_name == "Virtual Machines")
        && !item.product_name.contains("Windows")
        && !names.iter().any(|n| n.contains("Low Priority"))
        && !item.arm_sku_name.is_empty()
        && !item.arm_region_name.is_empty()
        && item.retail_price.is_finite()
        && item.retail_price > 0.0;
    keep.then(|| Price {
        sku: item.arm_sku_name.clone(),
        region: item.arm_region_name.clone(),
        spot: names.iter().any(|n| n.ends_with(" Spot")),
        usd: item.retail_price,
        effective: provider_sdk::time::parse_rfc3339(&item.effective_start_date).unwrap_or(0),
        primary: item.is_primary_meter_region,
    })
}

/// The duplicate rule: true when `a` wins over `b` (latest effective date,
/// then primary meter region, then the higher price).
pub fn wins(a: &Price, b: &Price) -> bool {
    (a.effective, a.primary, a.usd) > (b.effective, b.primary, b.usd)
}

/// One size in one region with its prices.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `armSkuName`.
    pub sku: String,
    /// `armRegionName`.
    pub region: String,
    /// On-demand USD per hour.
    pub hourly: f64,
    /// Spot USD per hour, when there is a spot meter.
    pub spot: Option<f64>,
}

/// Rows from prices, duplicates resolved; sizes without an on-demand price
/// are dropped (a spot price alone is no offer). Sorted by (size, region).
pub fn rows(prices: impl IntoIterator<Item = Price>) -> Vec<Row> {
    let mut best: BTreeMap<(String, String, bool), Price> = BTreeMap::new();
    for p in prices {
        let key = (p.sku.clone(), p.region.clone(), p.spot);
        match best.get(&key) {
            Some(cur) if !wins(&p, cur) => {}
            _ => {
                best.insert(key, p);
            }
        }
    }
    let mut out = Vec::new();
    for ((sku, region, spot), p) in &best {
        if *spot {
            continue;
        }
        out.push(Row {
            sku: sku.clone(),
            region: region.clone(),
            hourly: p.usd,
            spot: best
                .get(&(sku.clone(), region.clone(), true))
                .map(|s| s.usd),
        });
    }
    out
}

/// Offers of `rows` whose size is in `table`.
pub fn offers(rows: &[Row], table: &BTreeMap<String, Size>, source: &PriceSource) -> Vec<Offer> {
    let mut unknown = 0;
    let mut out = Vec::new();
    for r in rows {
        let Some(size) = table.get(&r.sku) else {
            unknown += 1;
            continue;
        };
        out.push(Offer {
            instance_type: r.sku.clone(),
            region: r.region.clone(),
            zone: None,
            vcpus: size.vcpus,
            memory_gib: size.memory_gib,
            storage_gib: None,
            gpus: size.gpus,
            gpu_model: size.gpu_model.clone(),
            gpu_memory_gib: size.gpu_model.as_deref().and_then(sizes::gpu_memory_gib),
            arch: sizes::arch(&r.sku),
            hourly_usd: r.hourly,
            spot_hourly_usd: r.spot,
            shared_cpu: sizes::is_burstable(&r.sku),
            confidential: sizes::is_confidential(&r.sku),
            promotional: sizes::is_promotional(&r.sku),
            source: source.clone(),
        });
    }
    if unknown > 0 {
        log::info(&format!(
            "{unknown} priced (size, region) rows skipped: their size is not in the component's recorded size table (snapshot/sizes.csv)"
        ));
    }
    out
}

/// The snapshot's rows.
pub fn snapshot_rows() -> Vec<Row> {
    parse_rows(SNAPSHOT)
}

fn parse_rows(text: &str) -> Vec<Row> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let c: Vec<&str> = line.split(',').map(str::trim).collect();
            if c.len() != 4 {
                return None;
            }
            Some(Row {
                sku: c[0].to_string(),
                region: c[1].to_string(),
                hourly: c[2].parse().ok().filter(|p: &f64| *p > 0.0)?,
                spot: c[3].parse().ok().filter(|p: &f64| *p > 0.0),
            })
        })
        .collect()
}

/// Rows as the snapshot stores them (header included); the snapshot test writes it.
#[cfg(test)]
fn format_rows(rows: &[Row]) -> String {
    let mut out = String::from("armSkuName,armRegionName,retailPrice,spotPrice\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{}\n",
            r.sku,
            r.region,
            r.hourly,
            r.spot.map(|s| s.to_string()).unwrap_or_default()
        ));
    }
    out
}

/// The price query of one region.
pub fn region_url(base: &str, region: &str) -> String {
    let filter = format!(
        "serviceName eq 'Virtual Machines' and priceType eq 'Consumption' and armRegionName eq '{region}'"
    );
    format!(
        "{base}{PRICES_PATH}?api-version={PRICES_API}&$filter={}",
        percent_encode(&filter)
    )
}

/// A `NextPageLink` rebased onto the configured endpoint (the live API writes
/// `https://prices.azure.com:443/...`).
fn rebase(base: &str, link: &str) -> String {
    if link.starts_with(base) {
        return link.to_string();
    }
    let path = match link.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => link,
    };
    format!("{base}{path}")
}

/// Every Linux price of `region`, reading pages until the last or `deadline`.
fn fetch_region(base: &str, region: &str, deadline: u64) -> Result<Vec<Price>, Error> {
    crate::names::check_region(region)?;
    let what = format!("reading Azure retail prices of {region}");
    let items = paginate::collect(MAX_PAGES, |cursor| {
        // A page may take no longer than what is left of the budget, so that
        // the snapshot can still answer within the host's deadline.
        let left = deadline.saturating_sub(now_ms());
        if left == 0 {
            return Err(Error::Transient(format!(
                "{what}: out of time (setting price_budget_ms)"
            )));
        }
        let url = match cursor {
            None => region_url(base, region),
            Some(link) => rebase(base, link),
        };
        let resp = Request::get(url)
            .header("accept", "application/json")
            .max_response_bytes(MAX_PAGE_BYTES)
            .timeout_ms(left.clamp(1_000, 20_000))
            .send()?;
        if !resp.is_success() {
            return Err(errors::from_response(&resp, &what));
        }
        let page: RetailPage = json::parse(&resp.body, &what)?;
        let prices: Vec<Price> = page
            .items
            .iter()
            .filter_map(price_of)
            .filter(|p| p.region == region)
            .collect();
        Ok((prices, page.next_page_link))
    })?;
    Ok(items)
}

/// `compute.list-offers`: live prices per region; a region that cannot be
/// read in time comes from the snapshot (offers marked `from-snapshot`).
pub fn list_offers(query: &OfferQuery) -> Result<Vec<Offer>, Error> {
    // Regions named by the query or the operator restrict the snapshot too;
    // the default list does not (offline, every snapshot region is offered).
    let explicit: Option<Vec<String>> = if !query.regions.is_empty() {
        Some(query.regions.clone())
    } else {
        let configured = s::list("regions");
        (!configured.is_empty()).then_some(configured)
    };
    let regions = settings::regions(&query.regions);
    let base = s::endpoint("price_endpoint", DEFAULT_PRICE_ENDPOINT);
    let deadline =
        now_ms().saturating_add(settings::millis("price_budget_ms", DEFAULT_PRICE_BUDGET_MS));
    let table = sizes::table();
    let live_source = PriceSource {
        source: format!("{base}{PRICES_PATH}"),
        observed_at: provider_sdk::time::now_unix(),
        from_snapshot: false,
    };
    let snapshot_source = PriceSource {
        source: SNAPSHOT_SOURCE.into(),
        observed_at: SNAPSHOT_OBSERVED_AT,
        from_snapshot: true,
    };
    let mut out = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for region in &regions {
        match fetch_region(&base, region, deadline) {
            Ok(prices) => out.extend(offers(&rows(prices), &table, &live_source)),
            Err(e) => {
                log::log(
                    log::Level::Warn,
                    "Azure retail prices unreadable; this region comes from the embedded snapshot",
                    &[("region", region), ("reason", errors::message(&e))],
                );
                failed.push(region.clone());
            }
        }
    }
    let from_snapshot: Vec<Row> = snapshot_rows()
        .into_iter()
        .filter(|r| {
            if failed.len() == regions.len() {
                explicit.as_ref().is_none_or(|e| e.contains(&r.region))
            } else {
                failed.contains(&r.region)
            }
        })
        .collect();
    out.extend(offers(&from_snapshot, &table, &snapshot_source));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, region: &str, price: f64, meter: &str, product: &str) -> RetailItem {
        RetailItem {
            arm_sku_name: sku.into(),
            arm_region_name: region.into(),
            retail_price: price,
            unit_of_measure: "1 Hour".into(),
            kind: "Consumption".into(),
            product_name: product.into(),
            sku_name: meter.into(),
            meter_name: meter.into(),
            service_name: "Virtual Machines".into(),
            is_primary_meter_region: true,
            effective_start_date: "2024-01-01T00:00:00Z".into(),
        }
    }

    /// The recorded price pages (tests/standins/azure/prices, see its README).
    fn recorded_items() -> Vec<RetailItem> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/standins/azure/prices");
        let mut items = Vec::new();
        for name in [
            "retail_prices.vm_us.page1.constructed.json",
            "retail_prices.vm_us.page2.constructed.json",
            "retail_prices.vm_us.page3.constructed.json",
            "retail_prices.eastus_Standard_D2s_v3.nofilter.real.json",
            "retail_prices.westus2_Standard_B1s.real.json",
        ] {
            let text = std::fs::read_to_string(dir.join(name)).expect("recorded page");
            let page: RetailPage = serde_json::from_str(&text).expect("a Retail Prices page");
            items.extend(page.items);
        }
        items
    }

    #[test]
    fn windows_low_priority_devtest_and_non_hourly_items_are_dropped() {
        assert!(
            price_of(&item(
                "Standard_B1s",
                "eastus",
                0.01,
                "B1s",
                "Virtual Machines BS Series"
            ))
            .is_some()
        );
        assert!(
            price_of(&item(
                "Standard_B1s",
                "eastus",
                0.01,
                "B1s",
                "Virtual Machines BS Series Windows"
            ))
            .is_none()
        );
        assert!(
            price_of(&item(
                "Standard_B1s",
                "eastus",
                0.01,
                "B1s Low Priority",
                "Virtual Machines BS Series"
            ))
            .is_none()
        );
        let mut devtest = item(
            "Standard_B1s",
            "eastus",
            0.01,
            "B1s",
            "Virtual Machines BS Series",
        );
        devtest.kind = "DevTestConsumption".into();
        assert!(price_of(&devtest).is_none());
        let mut monthly = item(
            "Standard_B1s",
            "eastus",
            7.0,
            "B1s",
            "Virtual Machines BS Series",
        );
        monthly.unit_of_measure = "1/Month".into();
        assert!(price_of(&monthly).is_none());
        assert!(
            price_of(&item(
                "Standard_B1s",
                "eastus",
                0.0,
                "B1s",
                "Virtual Machines BS Series"
            ))
            .is_none()
        );
        let spot = price_of(&item(
            "Standard_B1s",
            "eastus",
            0.004,
            "B1s Spot",
            "Virtual Machines BS Series",
        ))
        .unwrap();
        assert!(spot.spot);
    }

    #[test]
    fn the_duplicate_rule_takes_the_latest_then_the_primary_then_the_higher_price() {
        let p = |usd: f64, effective: u64, primary: bool| Price {
            sku: "S".into(),
            region: "r".into(),
            spot: false,
            usd,
            effective,
            primary,
        };
        assert!(wins(&p(0.1, 2, false), &p(0.2, 1, true)));
        assert!(wins(&p(0.1, 1, true), &p(0.2, 1, false)));
        assert!(wins(&p(0.2, 1, true), &p(0.1, 1, true)));
        let r = rows(vec![p(0.1, 1, true), p(0.3, 2, false), p(0.2, 1, true)]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].hourly, 0.3);
    }

    #[test]
    fn the_real_eastus_recording_gives_one_linux_price_and_its_spot() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/standins/azure/prices");
        let text = std::fs::read_to_string(
            dir.join("retail_prices.eastus_Standard_D2s_v3.nofilter.real.json"),
        )
        .unwrap();
        let page: RetailPage = serde_json::from_str(&text).unwrap();
        assert_eq!(page.items.len(), 9);
        let r = rows(page.items.iter().filter_map(price_of));
        // Of 9 items: Linux Consumption "D2s v3" 0.096 and "D2s v3 Spot" 0.018816.
        assert_eq!(
            r,
            vec![Row {
                sku: "Standard_D2s_v3".into(),
                region: "eastus".into(),
                hourly: 0.096,
                spot: Some(0.018816),
            }]
        );
    }

    #[test]
    fn the_embedded_snapshot_is_what_the_pipeline_makes_of_the_recorded_pages() {
        let made = rows(recorded_items().iter().filter_map(price_of));
        if std::env::var_os("BPR_WRITE_AZURE_SNAPSHOT").is_some() {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshot/prices.csv");
            std::fs::write(path, format_rows(&made)).unwrap();
        }
        assert!(
            format_rows(&made) == SNAPSHOT,
            "snapshot/prices.csv is stale: regenerate with BPR_WRITE_AZURE_SNAPSHOT=1 cargo test -p provider-azure"
        );
        assert_eq!(parse_rows(SNAPSHOT), made);
    }

    #[test]
    fn snapshot_offers_cover_the_recorded_regions_with_hardware() {
        let source = PriceSource {
            source: SNAPSHOT_SOURCE.into(),
            observed_at: SNAPSHOT_OBSERVED_AT,
            from_snapshot: true,
        };
        let o = offers(&snapshot_rows(), &sizes::table(), &source);
        let regions: std::collections::BTreeSet<&str> =
            o.iter().map(|o| o.region.as_str()).collect();
        assert_eq!(regions.len(), 9, "{regions:?}");
        assert!(o.iter().all(|o| o.hourly_usd > 0.0 && o.vcpus > 0.0));
        let d2 = o
            .iter()
            .find(|o| o.instance_type == "Standard_D2s_v3" && o.region == "eastus")
            .unwrap();
        // The real recording (2026-06-01) beats the constructed spot row (0.01056).
        assert_eq!((d2.hourly_usd, d2.spot_hourly_usd), (0.096, Some(0.018816)));
        assert!(o.iter().any(|o| o.promotional));
        assert!(o.iter().any(|o| o.gpus > 0.0));
    }

    #[test]
    fn the_snapshot_is_dated_by_its_prices_not_by_its_assembly() {
        // Assembled 2026-12-06T00:00:00Z; its prices are skypilot-catalog's
        // Azure fetch of 2024-08-18 (snapshot/README.md).
        const ASSEMBLED: u64 = 1_796_515_200;
        const { assert!(SNAPSHOT_OBSERVED_AT < ASSEMBLED) };
        let named = SNAPSHOT_SOURCE.rsplit_once("-v6-").map(|(_, date)| date);
        assert_eq!(
            named.and_then(provider_sdk::time::parse_rfc3339),
            Some(SNAPSHOT_OBSERVED_AT),
            "the source's name carries the date of its prices"
        );
        // A spot price of that fetch, kept to the last digit (spot prices
        // move daily, so it dates the rows).
        let rows = snapshot_rows();
        let a100 = rows
            .iter()
            .find(|r| r.sku == "Standard_NC96ads_A100_v4" && r.region == "westus")
            .expect("recorded row");
        assert_eq!(a100.spot, Some(2.59187));
    }

    #[test]
    fn the_region_query_is_encoded_and_links_are_rebased() {
        let url = region_url("http://127.0.0.1:1", "eastus");
        assert_eq!(
            url,
            "http://127.0.0.1:1/api/retail/prices?api-version=2023-01-01-preview&$filter=serviceName%20eq%20%27Virtual%20Machines%27%20and%20priceType%20eq%20%27Consumption%27%20and%20armRegionName%20eq%20%27eastus%27"
        );
        assert_eq!(
            rebase(
                "http://127.0.0.1:1",
                "https://prices.azure.com:443/api/retail/prices?$skip=1000"
            ),
            "http://127.0.0.1:1/api/retail/prices?$skip=1000"
        );
    }
}
