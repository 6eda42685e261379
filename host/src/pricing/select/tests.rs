//! The selection is exact: ranking what it selects gives the candidates,
//! the satisfying count and the high-availability outcome of ranking every
//! offer, for random catalogues, requests and policies.

use proptest::prelude::*;

use super::*;
use crate::placement::{Arch, Geography, Ranking, Tier, rank_offers};
use crate::pricing::normalize::apply_discount;
use crate::pricing::store::{CatalogueMeta, Drops, Encoder};

const PROVIDERS: [(&str, f64); 3] = [("aws", 1.0), ("gcp", 0.8), ("azure", 1.0)];
const REGIONS: [&str; 6] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "ap-south-1",
    "nyc3",
    "nowhere-9",
];
const TYPES: [&str; 6] = [
    "m5.large",
    "c5.xlarge",
    "g5.xlarge",
    "t3.micro",
    "n2-standard-4",
    "Standard_D2s_v3",
];
const GPUS: [Option<&str>; 4] = [
    None,
    Some("NVIDIA A100"),
    Some("NVIDIA A100 80GB"),
    Some("NVIDIA T4"),
];
/// Few prices, so that ties are common.
const PRICES: [f64; 6] = [0.05, 0.1, 0.1, 0.4, 1.0, 3.0];

fn offer_strategy() -> impl Strategy<Value = Offer> {
    (
        (
            0..PROVIDERS.len(),
            0..REGIONS.len(),
            0..TYPES.len(),
            0..3usize,
        ),
        (
            prop::sample::select(vec![1.0f32, 2.0, 4.0, 8.0]),
            prop::sample::select(vec![1.0f32, 4.0, 8.0, 32.0]),
            prop::sample::select(vec![0.0f32, 0.0, 0.5, 1.0, 4.0]),
            0..GPUS.len(),
            prop::option::of(prop::sample::select(vec![50.0f32, 500.0])),
        ),
        (0..PRICES.len(), prop::option::of(0..PRICES.len())),
        prop::collection::vec(any::<bool>(), 6),
    )
        .prop_map(
            |((p, r, t, zone), (vcpus, memory, gpus, gpu, storage), (price, spot), flags)| {
                let hourly = PRICES[price];
                Offer {
                    provider: PROVIDERS[p].0.into(),
                    instance_type: TYPES[t].into(),
                    region: REGIONS[r].into(),
                    zone: match zone {
                        0 => None,
                        z => Some(format!("{}{}", REGIONS[r], ["", "a", "b"][z])),
                    },
                    vcpus,
                    memory_gib: memory,
                    storage_gib: storage,
                    gpus,
                    gpu_model: if gpus > 0.0 {
                        GPUS[gpu].map(str::to_string)
                    } else {
                        None
                    },
                    gpu_memory_gib: None,
                    arch: if flags[0] { Arch::Arm64 } else { Arch::X86_64 },
                    hourly_usd: hourly,
                    spot_hourly_usd: spot.map(|s| PRICES[s].min(hourly) / 2.0),
                    shared_cpu: flags[1],
                    confidential: flags[2],
                    promotional: flags[3] && flags[4],
                    fractional_gpu: flags[5] && gpus > 0.0,
                    operator_owned: false,
                    source: format!("https://{}.example/prices", PROVIDERS[p].0),
                    observed_at: 1_700_000_000,
                    from_snapshot: false,
                }
            },
        )
}

fn request_strategy() -> impl Strategy<Value = Request> {
    (
        (
            prop::sample::select(vec![0.0f32, 2.0, 4.0]),
            prop::sample::select(vec![0.0f32, 4.0, 8.0]),
            prop::sample::select(vec![0.0f32, 100.0]),
            prop::sample::select(vec![0.0f32, 0.0, 1.0]),
            prop::sample::select(vec![
                None,
                Some("NVIDIA A100"),
                Some("A100"),
                Some("NVIDIA T4"),
            ]),
        ),
        (
            prop::sample::subsequence(REGIONS.to_vec(), 0..3),
            prop::sample::select(vec![None, Some(Geography::Us), Some(Geography::Europe)]),
            prop::sample::select(vec![None, Some(Arch::X86_64), Some(Arch::Arm64)]),
            prop::sample::select(vec![None, Some(Tier::Basic), Some(Tier::Premium)]),
            prop::sample::subsequence(vec!["aws", "gcp", "azure"], 0..3),
        ),
        prop::collection::vec(any::<bool>(), 4),
    )
        .prop_map(
            |(
                (cpu, mem, storage, gpus, model),
                (regions, geography, arch, tier, providers),
                flags,
            )| Request {
                min_vcpus: cpu,
                min_memory_gib: mem,
                min_storage_gib: storage,
                min_gpus: gpus,
                gpu_model: model.map(str::to_string),
                confidential: flags[0] && flags[1],
                arch,
                dedicated_cpu: flags[1],
                regions: regions.into_iter().map(str::to_string).collect(),
                geography,
                high_availability: flags[2],
                tier,
                allow_spot: flags[3],
                providers: providers.into_iter().map(str::to_string).collect(),
            },
        )
}

fn policy_strategy() -> impl Strategy<Value = Policy> {
    (
        prop::sample::select(vec![Mode::AutoCheapest, Mode::Preferred]),
        prop::sample::subsequence(vec!["gcp", "azure", "aws"], 0..3),
        prop::sample::subsequence(vec!["azure", "aws"], 0..2),
        prop::sample::select(vec![None, Some(0.2), Some(1.0)]),
        prop::sample::subsequence(REGIONS.to_vec(), 0..2),
        prop::collection::vec(any::<bool>(), 3),
        prop::sample::select(vec![1usize, 2, 3, 20]),
    )
        .prop_map(
            |(mode, preferred, excluded, cap, defaults, flags, k)| Policy {
                mode,
                preferred_providers: preferred.into_iter().map(str::to_string).collect(),
                excluded_providers: excluded.into_iter().map(str::to_string).collect(),
                max_cost_per_hour: cap,
                allow_spot_instances: flags[0],
                default_regions: defaults.into_iter().map(str::to_string).collect(),
                allow_fractional_gpus: flags[1],
                allow_promotional: flags[2],
                max_candidates: k,
            },
        )
}

/// Each provider's offers as a stored catalogue reads them back.
fn catalogues(offers: &[Offer]) -> Vec<(Loaded, f64)> {
    PROVIDERS
        .iter()
        .filter_map(|&(name, multiplier)| {
            let mut encoder = Encoder::new();
            let mine: Vec<&Offer> = offers.iter().filter(|o| o.provider == name).collect();
            if mine.is_empty() {
                return None;
            }
            for o in &mine {
                encoder.push(o);
            }
            let encoded = encoder.finish();
            let meta = CatalogueMeta {
                fetched_at: 0,
                sources: encoded.sources().to_vec(),
                listed: mine.len(),
                offers: encoded.offers(),
                drops: Drops::default(),
                normalized_with: String::new(),
            };
            Some((encoded.into_loaded(name, meta).unwrap(), multiplier))
        })
        .collect()
}

/// Ranking every offer, discounted as the service does.
fn rank_all(offers: &[Offer], request: &Request, policy: &Policy) -> Ranking {
    let discounted = offers
        .iter()
        .cloned()
        .map(|mut o| {
            let m = PROVIDERS.iter().find(|p| p.0 == o.provider).unwrap().1;
            apply_discount(&mut o, m);
            o
        })
        .collect();
    rank_offers(discounted, request, policy).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn ranking_the_selection_gives_the_ranking_of_every_offer(
        offers in prop::collection::vec(offer_strategy(), 0..120),
        request in request_strategy(),
        policy in policy_strategy(),
    ) {
        let loaded = catalogues(&offers);
        let sources: Vec<Source<'_>> = loaded
            .iter()
            .map(|(l, m)| Source { loaded: l, multiplier: *m })
            .collect();
        let selected = select(&Selection::for_request(&request, &policy), &sources);
        let all = rank_all(&offers, &request, &policy);
        let some = rank_offers(selected.offers.clone(), &request, &policy).unwrap();

        // Every selected offer satisfies every rule (what `plan` checks).
        prop_assert_eq!(some.offers_satisfying, selected.offers.len());
        prop_assert_eq!(selected.satisfying, Some(all.offers_satisfying));
        prop_assert_eq!(&some.candidates, &all.candidates);
        prop_assert_eq!(&some.high_availability, &all.high_availability);
        prop_assert!(selected.offers.len() <= all.offers_satisfying);
    }

    #[test]
    fn selecting_everything_reads_every_offer_discounted(
        offers in prop::collection::vec(offer_strategy(), 0..60),
    ) {
        let loaded = catalogues(&offers);
        let sources: Vec<Source<'_>> = loaded
            .iter()
            .map(|(l, m)| Source { loaded: l, multiplier: *m })
            .collect();
        let selected = select(&Selection::everything(), &sources);
        prop_assert_eq!(selected.offers.len(), offers.len());
        prop_assert_eq!(selected.satisfying, None);
        let gcp = offers.iter().filter(|o| o.provider == "gcp").count();
        prop_assert_eq!(selected.discounted, gcp);
        let mut expected: Vec<Offer> = offers
            .iter()
            .cloned()
            .map(|mut o| {
                let m = PROVIDERS.iter().find(|p| p.0 == o.provider).unwrap().1;
                apply_discount(&mut o, m);
                o
            })
            .collect();
        let mut got = selected.offers.clone();
        expected.sort_by(crate::placement::identity_cmp);
        got.sort_by(crate::placement::identity_cmp);
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn only_the_cheapest_candidates_are_built_when_many_offers_satisfy() {
    // 1,000 satisfying offers, all different prices: the k = 5 cheapest are
    // built, not the thousand.
    let offers: Vec<Offer> = (0..1000)
        .map(|i| Offer {
            provider: "aws".into(),
            instance_type: format!("m{i}.large"),
            region: "us-east-1".into(),
            zone: None,
            vcpus: 2.0,
            memory_gib: 8.0,
            storage_gib: None,
            gpus: 0.0,
            gpu_model: None,
            gpu_memory_gib: None,
            arch: Arch::X86_64,
            hourly_usd: 0.1 + f64::from(i) / 1000.0,
            spot_hourly_usd: None,
            shared_cpu: false,
            confidential: false,
            promotional: false,
            fractional_gpu: false,
            operator_owned: false,
            source: "s".into(),
            observed_at: 0,
            from_snapshot: false,
        })
        .collect();
    let loaded = catalogues(&offers);
    let sources: Vec<Source<'_>> = loaded
        .iter()
        .map(|(l, m)| Source {
            loaded: l,
            multiplier: *m,
        })
        .collect();
    let policy = Policy {
        max_candidates: 5,
        ..Policy::default()
    };
    let selected = select(
        &Selection::for_request(&Request::default(), &policy),
        &sources,
    );
    assert_eq!(selected.satisfying, Some(1000));
    assert_eq!(selected.offers.len(), 5);
    assert_eq!(selected.offers[0].instance_type, "m0.large");
}

#[test]
fn regions_a_request_cannot_use_are_not_wanted() {
    let request = Request {
        geography: Some(Geography::Europe),
        ..Request::default()
    };
    let s = Selection::for_request(&request, &Policy::default());
    assert!(s.wants_region("eu-west-1"));
    assert!(!s.wants_region("us-east-1"));
    let policy = Policy {
        default_regions: vec!["us-east-1".into()],
        excluded_providers: vec!["azure".into()],
        ..Policy::default()
    };
    let s = Selection::for_request(&Request::default(), &policy);
    assert!(s.wants_region("us-east-1") && !s.wants_region("us-west-2"));
    assert!(s.reads_offers_of("aws") && !s.reads_offers_of("azure"));
    assert!(Selection::everything().wants_region("anywhere"));
    let only = Selection::everything().only_providers(&["aws".into()]);
    assert!(only.includes_provider("aws") && !only.includes_provider("gcp"));
}
