//! Issue 5: the pricing service over real components serving recorded data
//! from a local server, ranked by placement.

use std::path::Path;
use std::sync::Arc;

use blueprint_remote_providers::placement::{Policy, Request, rank_offers};
use blueprint_remote_providers::pricing::{CatalogueSource, PricingService};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::support::{TestEnv, TestServer};

/// The recorded ec2instances.info catalogue (see tests/fixtures/aws/README.md),
/// optionally edited.
fn catalogue(edit: impl Fn(&mut serde_json::Value)) -> Bytes {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/instances.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

async fn serve(body: Bytes) -> TestServer {
    TestServer::start(move |_| Response::new(Full::new(body.clone()))).await
}

fn aws_section(server: &TestServer, extra: &str) -> String {
    format!(
        "[providers.aws]\nallow = [\"http://{}\"]\nmax_response_body_kib = 65536\n{extra}\n[providers.aws.settings]\ncatalog_url = {:?}\n",
        server.addr,
        server.url("/instances.json")
    )
}

fn no_progress(_: &blueprint_remote_providers::pricing::CatalogueStatus) {}

#[tokio::test(flavor = "multi_thread")]
async fn one_failing_provider_is_reported_and_the_others_are_still_ranked() {
    let server = serve(catalogue(|_| {})).await;
    let env = TestEnv::new();
    env.add("aws").add("hostile_panic");
    let host = env.start(&aws_section(&server, "")).await;
    let pricing = PricingService::new(
        host.provider_set().clone(),
        host.database().clone(),
        host.config(),
    )
    .unwrap();
    let report = pricing.gather(false, &no_progress).await;

    let aws = report
        .catalogues
        .iter()
        .find(|c| c.provider == "aws")
        .unwrap();
    assert_eq!(aws.source, CatalogueSource::Fresh);
    let failed = report
        .catalogues
        .iter()
        .find(|c| c.provider == "hostile_panic")
        .unwrap();
    assert!(
        matches!(&failed.source, CatalogueSource::Failed { error } if error.contains("trapped")),
        "{failed:?}"
    );

    let request = Request {
        min_vcpus: 2.0,
        min_memory_gib: 8.0,
        regions: vec!["us-east-1".into()],
        ..Request::default()
    };
    let ranking = rank_offers(report.offers.clone(), &request, &Policy::default()).unwrap();
    let best = &ranking.candidates[0];
    // The cheapest recorded us-east-1 Linux type with >= 2 vCPU and >= 8 GiB,
    // computed independently from the fixture.
    let expected = cheapest_in_fixture("us-east-1", 2.0, 8.0);
    assert_eq!(
        (best.offer.instance_type.as_str(), best.hourly_usd),
        (expected.0.as_str(), expected.1)
    );
    assert!(
        ranking
            .candidates
            .iter()
            .all(|c| c.offer.vcpus >= 2.0 && c.offer.memory_gib >= 8.0)
    );
}

/// (type, price) of the cheapest on-demand Linux row in the fixture meeting
/// the minimums, read straight from the JSON.
fn cheapest_in_fixture(region: &str, vcpus: f64, memory: f64) -> (String, f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/instances.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let mut best: Option<(String, f64)> = None;
    for t in v.as_array().unwrap() {
        let cpu = t["vCPU"].as_f64().unwrap_or(0.0);
        let mem = t["memory"].as_f64().unwrap_or(0.0);
        let price = t["pricing"][region]["linux"]["ondemand"]
            .as_str()
            .and_then(|p| p.parse::<f64>().ok());
        if let Some(p) = price
            && p > 0.0
            && cpu >= vcpus
            && mem >= memory
            && t["GPU"].as_f64().unwrap_or(0.0) == 0.0
            && best.as_ref().is_none_or(|(n, b)| {
                p < *b || (p == *b && t["instance_type"].as_str().unwrap() < n.as_str())
            })
        {
            best = Some((t["instance_type"].as_str().unwrap().to_string(), p));
        }
    }
    best.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zero_dollar_offer_is_dropped_and_reported() {
    // A "$0 H100": p5.48xlarge priced at zero in us-east-1.
    let body = catalogue(|v| {
        for t in v.as_array_mut().unwrap() {
            if t["instance_type"] == "p5.48xlarge" {
                t["pricing"]["us-east-1"]["linux"]["ondemand"] = "0.0".into();
            }
        }
    });
    let server = serve(body).await;
    let env = TestEnv::new();
    env.add("aws");
    let host = env.start(&aws_section(&server, "")).await;
    let report = PricingService::new(
        host.provider_set().clone(),
        host.database().clone(),
        host.config(),
    )
    .unwrap()
    .gather(false, &no_progress)
    .await;
    let has = |region: &str| {
        report
            .offers
            .iter()
            .any(|o| o.instance_type == "p5.48xlarge" && o.region == region)
    };
    assert!(!has("us-east-1"), "the $0 H100 must not be offered");
    assert!(has("us-west-2"), "the correctly priced one stays");
    // Dropped either by the component (a type without a price is absent) or
    // by normalisation (reported); either way it never reaches placement.
    let reported = report
        .normalize
        .dropped
        .iter()
        .any(|(id, _)| id.to_string().contains("p5.48xlarge"));
    let request = Request {
        min_gpus: 8.0,
        gpu_model: Some("NVIDIA H100".into()),
        ..Request::default()
    };
    let ranking = rank_offers(report.offers.clone(), &request, &Policy::default()).unwrap();
    assert!(
        ranking.candidates.iter().all(|c| c.hourly_usd > 1.0),
        "no free GPUs: {:?}",
        ranking.candidates.first()
    );
    let _ = reported;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_operator_discount_applies_before_ranking() {
    let server = serve(catalogue(|_| {})).await;
    let env = TestEnv::new();
    env.add("aws");
    let host = env
        .start(&aws_section(&server, "price_multiplier = 0.5"))
        .await;
    let report = PricingService::new(
        host.provider_set().clone(),
        host.database().clone(),
        host.config(),
    )
    .unwrap()
    .gather(false, &no_progress)
    .await;
    let m5 = report
        .offers
        .iter()
        .find(|o| o.instance_type == "m5.large" && o.region == "us-east-1")
        .unwrap();
    // Recorded list price 0.102 (fixture), halved.
    assert!((m5.hourly_usd - 0.051).abs() < 1e-9, "{}", m5.hourly_usd);
    assert_eq!(report.normalize.discounted, report.offers.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cache_survives_a_restart_and_serves_when_the_source_is_gone() {
    let server = serve(catalogue(|_| {})).await;
    let env = TestEnv::new();
    env.add("aws");
    let section = aws_section(&server, "");
    let first = {
        let host = env.start(&section).await;
        let report = PricingService::new(
            host.provider_set().clone(),
            host.database().clone(),
            host.config(),
        )
        .unwrap()
        .gather(false, &no_progress)
        .await;
        assert_eq!(report.catalogues[0].source, CatalogueSource::Fresh);
        report.offers
    };
    drop(server); // the live source is gone

    let host = env.start(&section).await;
    let pricing = PricingService::new(
        host.provider_set().clone(),
        host.database().clone(),
        host.config(),
    )
    .unwrap();
    let report = pricing.gather(false, &no_progress).await;
    assert_eq!(report.catalogues[0].source, CatalogueSource::Cached);
    assert_eq!(report.offers, first);

    // A forced refresh fails now; the last good catalogue is used and the failure reported.
    let forced = pricing.gather(true, &no_progress).await;
    assert!(
        matches!(
            forced.catalogues[0].source,
            CatalogueSource::LastGood { .. }
        ),
        "{:?}",
        forced.catalogues[0]
    );
    assert_eq!(forced.offers, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn catalogues_are_gathered_concurrently_each_under_its_own_deadline() {
    let server = serve(catalogue(|_| {})).await;
    let env = TestEnv::new();
    env.add("aws").add("hostile_loop");
    let host = env
        .start(&format!(
            "{}\n[operator.deployment]\nprice_fetch_timeout_secs = 2\n[providers.hostile_loop]\ncall_timeout_ms = 60000\n",
            aws_section(&server, "")
        ))
        .await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let started = std::time::Instant::now();
    let report = PricingService::new(
        host.provider_set().clone(),
        host.database().clone(),
        host.config(),
    )
    .unwrap()
    .gather(false, &move |c| {
        s2.lock()
            .unwrap()
            .push((c.provider.clone(), started.elapsed()))
    })
    .await;
    let order = seen.lock().unwrap().clone();
    assert_eq!(
        order[0].0, "aws",
        "aws answers first, not after the looping provider: {order:?}"
    );
    let looped = report
        .catalogues
        .iter()
        .find(|c| c.provider == "hostile_loop")
        .unwrap();
    assert!(
        matches!(&looped.source, CatalogueSource::Failed { error } if error.contains("2 s")),
        "{looped:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(!report.offers.is_empty());
}
