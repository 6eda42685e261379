//! Issue 5: the pricing service over real components serving recorded data
//! from a local server, ranked by placement.

use std::path::Path;
use std::sync::Arc;

use blueprint_remote_providers::placement::{Policy, Request, rank_offers};
use blueprint_remote_providers::pricing::{CatalogueSource, PlanOptions};
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
    let pricing = host.pricing().clone();
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
    let report = host.pricing().clone().gather(false, &no_progress).await;
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
    let report = host.pricing().clone().gather(false, &no_progress).await;
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
        let report = host.pricing().clone().gather(false, &no_progress).await;
        assert_eq!(report.catalogues[0].source, CatalogueSource::Fresh);
        report.offers
    };
    drop(server); // the live source is gone

    let host = env.start(&section).await;
    let pricing = host.pricing().clone();
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
    let report = host
        .pricing()
        .clone()
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

/// Counts the catalogue requests it serves; `last_modified` is sent when given.
async fn serve_counting(
    body: Bytes,
    last_modified: Option<&'static str>,
) -> (TestServer, Arc<std::sync::atomic::AtomicUsize>) {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let server = TestServer::start(move |_| {
        h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut r = Response::builder().header("content-type", "application/json");
        if let Some(date) = last_modified {
            r = r.header("last-modified", date);
        }
        r.body(Full::new(body.clone())).unwrap()
    })
    .await;
    (server, hits)
}

fn requests() -> Vec<(Request, Policy)> {
    let cheap = Request {
        min_vcpus: 2.0,
        min_memory_gib: 4.0,
        regions: vec!["us-east-1".into()],
        ..Request::default()
    };
    let us_ha = Request {
        min_vcpus: 4.0,
        min_memory_gib: 8.0,
        geography: Some(blueprint_remote_providers::placement::Geography::Us),
        high_availability: true,
        allow_spot: true,
        ..Request::default()
    };
    let gpu = Request {
        min_gpus: 1.0,
        gpu_model: Some("NVIDIA A100".into()),
        ..Request::default()
    };
    let spot_policy = Policy {
        allow_spot_instances: true,
        max_cost_per_hour: Some(2.0),
        max_candidates: 3,
        ..Policy::default()
    };
    vec![
        (cheap.clone(), Policy::default()),
        (us_ha, spot_policy.clone()),
        (gpu, Policy::default()),
        (Request::default(), spot_policy),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_read_from_the_store_ranks_like_every_offer_ranked() {
    let (server, hits) = serve_counting(catalogue(|_| {}), None).await;
    let env = TestEnv::new();
    env.add("aws");
    let section = aws_section(&server, "price_multiplier = 0.9");
    let every = {
        let host = env.start(&section).await;
        host.pricing().clone().gather(false, &no_progress).await
    };
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    // A restart: the plans below read the store only.
    let host = env.start(&section).await;
    let pricing = host.pricing().clone();
    for (request, policy) in requests() {
        let plan = pricing
            .plan(&request, &policy, &PlanOptions::default(), &no_progress)
            .await
            .unwrap();
        let expected = rank_offers(every.offers.clone(), &request, &policy).unwrap();
        assert_eq!(plan.ranking.candidates, expected.candidates, "{request:?}");
        assert_eq!(plan.ranking.high_availability, expected.high_availability);
        assert_eq!(plan.ranking.offers_satisfying, expected.offers_satisfying);
        assert_eq!(plan.ranking.offers_considered, every.offers.len());
        assert_eq!(plan.report.catalogues[0].source, CatalogueSource::Cached);
        assert!(
            plan.report.offers.len() <= expected.offers_satisfying.max(policy.max_candidates),
            "only what can be a candidate is read: {} offers",
            plan.report.offers.len()
        );
        // --explain ranks every offer, so every family is explained.
        let explained = pricing
            .plan(
                &request,
                &policy,
                &PlanOptions {
                    explain: true,
                    ..PlanOptions::default()
                },
                &no_progress,
            )
            .await
            .unwrap();
        assert_eq!(explained.ranking, expected);
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_providers_named_are_fetched() {
    let (server, hits) = serve_counting(catalogue(|_| {}), None).await;
    let env = TestEnv::new();
    env.add("aws").add("hostile_loop");
    let host = env
        .start(&format!(
            "{}\n[operator.deployment]\nprice_fetch_timeout_secs = 30\n",
            aws_section(&server, "")
        ))
        .await;
    let pricing = host.pricing().clone();
    let started = std::time::Instant::now();
    let options = PlanOptions {
        providers: vec!["aws".into()],
        ..PlanOptions::default()
    };
    let (request, policy) = requests().remove(0);
    let plan = pricing
        .plan(&request, &policy, &options, &no_progress)
        .await
        .unwrap();
    // The looping provider was not called: it would have held the plan for
    // its whole 30 s deadline.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let names: Vec<&str> = plan
        .report
        .catalogues
        .iter()
        .map(|c| c.provider.as_str())
        .collect();
    assert_eq!(names, ["aws"]);
    assert!(!plan.ranking.candidates.is_empty());
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    let unknown = PlanOptions {
        providers: vec!["awz".into()],
        ..PlanOptions::default()
    };
    let err = pricing
        .plan(&request, &policy, &unknown, &no_progress)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`awz`") && text.contains("aws") && text.contains("--provider"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_publication_date_the_source_gives_is_kept_and_shown() {
    // The 2023 recording served as a file is: Last-Modified says when.
    let (server, _) =
        serve_counting(catalogue(|_| {}), Some("Sun, 06 Aug 2023 00:00:00 GMT")).await;
    let env = TestEnv::new();
    env.add("aws");
    let section = aws_section(&server, "");
    let host = env.start(&section).await;
    let report = host.pricing().clone().gather(false, &no_progress).await;
    let aws = &report.catalogues[0];
    assert_eq!(aws.source, CatalogueSource::Fresh);
    assert_eq!(aws.observed_at, Some(1_691_280_000));
    assert!(report.offers.iter().all(|o| o.observed_at == 1_691_280_000));
    // The store keeps it once for the catalogue, and gives it back.
    let host = env.start(&section).await;
    let cached = host.pricing().clone().gather(false, &no_progress).await;
    assert_eq!(cached.catalogues[0].observed_at, Some(1_691_280_000));
    assert!(cached.offers.iter().all(|o| o.observed_at == 1_691_280_000));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_hosts_plan_fetches_only_the_requests_providers_and_knows_every_stored_region() {
    use blueprint_remote_providers::provisioning::DeployRequest;
    let (server, hits) = serve_counting(catalogue(|_| {}), None).await;
    let env = TestEnv::new();
    env.add("aws").add("hostile_loop");
    let host = env
        .start(&format!(
            "{}\n[operator.deployment]\nprice_fetch_timeout_secs = 30\n",
            aws_section(&server, "")
        ))
        .await;
    let started = std::time::Instant::now();
    let mut req = DeployRequest::new("plan", "plan");
    req.requirements = Some(Request {
        min_vcpus: 2.0,
        min_memory_gib: 4.0,
        regions: vec!["us-east-1".into()],
        providers: vec!["aws".into()],
        ..Request::default()
    });
    // `plan_all`: the test has no AWS credential, so the ranked offers are
    // not deployment candidates; what was ranked is what is checked.
    let plan = host.orchestrator().plan_all(&req).await.unwrap();
    // The looping provider was not called (its deadline is 30 s).
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let names: Vec<&str> = plan
        .catalogues
        .iter()
        .map(|c| c.provider.as_str())
        .collect();
    assert_eq!(names, ["aws"]);
    let ranked = &plan.ranking.as_ref().unwrap().candidates;
    assert!(!ranked.is_empty());
    assert!(ranked.iter().all(|c| c.offer.region == "us-east-1"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

    // A region no catalogue has is named, with regions the store does have,
    // though only the offers that could be candidates were read.
    req.requirements.as_mut().unwrap().regions = vec!["us-north-9".into()];
    let text = host
        .orchestrator()
        .plan_all(&req)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("`us-north-9`") && text.contains("ca-central-1"),
        "{text}"
    );
}
