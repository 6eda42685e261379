//! Table-driven tests of every rule and of the rules together, and property
//! tests of the ranking against a naive reference.

use proptest::prelude::*;

use super::*;

/// A plain, valid offer: 2 vCPU, 8 GiB, no GPU, $0.10/h in us-east-1a.
fn offer(provider: &str, instance_type: &str, region: &str) -> Offer {
    Offer {
        provider: provider.into(),
        instance_type: instance_type.into(),
        region: region.into(),
        zone: None,
        vcpus: 2.0,
        memory_gib: 8.0,
        storage_gib: None,
        gpus: 0.0,
        gpu_model: None,
        gpu_memory_gib: None,
        arch: Arch::X86_64,
        hourly_usd: 0.10,
        spot_hourly_usd: None,
        shared_cpu: false,
        confidential: false,
        promotional: false,
        fractional_gpu: false,
        operator_owned: false,
        source: "test".into(),
        observed_at: 0,
        from_snapshot: false,
    }
}

fn base() -> Offer {
    offer("aws", "m5.large", "us-east-1")
}

fn gpu_offer(model: &str, gpus: f32) -> Offer {
    Offer {
        gpus,
        gpu_model: Some(model.into()),
        fractional_gpu: gpus.fract() != 0.0,
        operator_owned: false,
        hourly_usd: 3.0,
        ..offer("aws", "p4d.24xlarge", "us-east-1")
    }
}

/// The first rule that excludes `offer`, or `None` when it is a candidate.
fn first_rule(offer: Offer, request: &Request, policy: &Policy) -> Option<Rule> {
    let ranking = rank_offers(vec![offer], request, policy).expect("valid request");
    match ranking.excluded.first() {
        Some(family) => Some(family.reasons[0].rule),
        None => {
            assert_eq!(
                ranking.candidates.len().min(1),
                1,
                "neither kept nor excluded"
            );
            None
        }
    }
}

#[test]
fn each_rule_excludes_exactly_what_it_describes() {
    let p = Policy::default;
    let r = Request::default;
    #[rustfmt::skip]
    let cases: Vec<(&str, Offer, Request, Policy, Option<Rule>)> = vec![
        ("plain offer, empty request", base(), r(), p(), None),
        ("zero price", Offer { hourly_usd: 0.0, ..base() }, r(), p(), Some(Rule::InvalidOffer)),
        ("NaN memory", Offer { memory_gib: f32::NAN, ..base() }, r(), p(), Some(Rule::InvalidOffer)),
        ("too few vCPUs", base(), Request { min_vcpus: 4.0, ..r() }, p(), Some(Rule::Vcpus)),
        ("exactly enough vCPUs", base(), Request { min_vcpus: 2.0, ..r() }, p(), None),
        ("too little memory", base(), Request { min_memory_gib: 16.0, ..r() }, p(), Some(Rule::Memory)),
        ("fixed disk too small", Offer { storage_gib: Some(25.0), ..base() }, Request { min_storage_gib: 50.0, ..r() }, p(), Some(Rule::Storage)),
        ("disk sized at creation meets any storage", base(), Request { min_storage_gib: 500.0, ..r() }, p(), None),
        ("no GPU", base(), Request { min_gpus: 1.0, ..r() }, p(), Some(Rule::GpuCount)),
        ("wrong GPU model", gpu_offer("NVIDIA T4", 1.0), Request { min_gpus: 1.0, gpu_model: Some("NVIDIA A100".into()), ..r() }, p(), Some(Rule::GpuModel)),
        ("80GB variant satisfies the base model", gpu_offer("NVIDIA A100 80GB", 1.0), Request { gpu_model: Some("NVIDIA A100".into()), ..r() }, p(), None),
        ("base model does not satisfy the 80GB variant", gpu_offer("NVIDIA A100", 1.0), Request { gpu_model: Some("A100 80GB".into()), ..r() }, p(), Some(Rule::GpuModel)),
        ("a required model excludes offers without GPU", base(), Request { gpu_model: Some("NVIDIA T4".into()), ..r() }, p(), Some(Rule::GpuModel)),
        ("no confidential computing", base(), Request { confidential: true, ..r() }, p(), Some(Rule::Confidential)),
        ("confidential offer", Offer { confidential: true, ..base() }, Request { confidential: true, ..r() }, p(), None),
        ("wrong arch", base(), Request { arch: Some(Arch::Arm64), ..r() }, p(), Some(Rule::Arch)),
        ("right arch", base(), Request { arch: Some(Arch::X86_64), ..r() }, p(), None),
        ("shared core refused", Offer { shared_cpu: true, ..base() }, Request { dedicated_cpu: true, ..r() }, p(), Some(Rule::SharedCpu)),
        ("shared core allowed by default", Offer { shared_cpu: true, ..base() }, r(), p(), None),
        ("region not requested", base(), Request { regions: vec!["eu-west-1".into()], ..r() }, p(), Some(Rule::Region)),
        ("region requested", base(), Request { regions: vec!["us-east-1".into()], ..r() }, p(), None),
        ("other geography", base(), Request { geography: Some(Geography::Europe), ..r() }, p(), Some(Rule::Geography)),
        ("unknown geography", offer("aws", "m5.large", "moon-1"), Request { geography: Some(Geography::Us), ..r() }, p(), Some(Rule::Geography)),
        ("same geography", base(), Request { geography: Some(Geography::Us), ..r() }, p(), None),
        ("below premium tier floor", Offer { vcpus: 1.0, ..base() }, Request { tier: Some(Tier::Premium), ..r() }, p(), Some(Rule::TierFloor)),
        ("meets standard tier floor", base(), Request { tier: Some(Tier::Standard), ..r() }, p(), None),
        ("excluded provider", base(), r(), Policy { excluded_providers: vec!["aws".into()], ..p() }, Some(Rule::ExcludedProvider)),
        ("promotional refused by default", Offer { promotional: true, ..base() }, r(), p(), Some(Rule::Promotional)),
        ("promotional allowed", Offer { promotional: true, ..base() }, r(), Policy { allow_promotional: true, ..p() }, None),
        ("fractional GPU towards a GPU need", gpu_offer("NVIDIA L4", 0.5), Request { min_gpus: 0.5, ..r() }, p(), Some(Rule::FractionalGpu)),
        ("fractional GPU allowed", gpu_offer("NVIDIA L4", 0.5), Request { min_gpus: 0.5, ..r() }, Policy { allow_fractional_gpus: true, ..p() }, None),
        ("fractional GPU machine for a CPU workload", gpu_offer("NVIDIA L4", 0.5), r(), p(), None),
        ("outside default regions", base(), r(), Policy { default_regions: vec!["eu-west-1".into()], ..p() }, Some(Rule::DefaultRegion)),
        ("customer regions override default regions", base(), Request { regions: vec!["us-east-1".into()], ..r() }, Policy { default_regions: vec!["eu-west-1".into()], ..p() }, None),
        ("customer geography overrides default regions", base(), Request { geography: Some(Geography::Us), ..r() }, Policy { default_regions: vec!["eu-west-1".into()], ..p() }, None),
        ("above the cost cap", Offer { hourly_usd: 2.0, ..base() }, r(), Policy { max_cost_per_hour: Some(1.0), ..p() }, Some(Rule::MaxCost)),
        ("at the cost cap", Offer { hourly_usd: 1.0, ..base() }, r(), Policy { max_cost_per_hour: Some(1.0), ..p() }, None),
        ("spot under the cap, spot allowed", Offer { hourly_usd: 2.0, spot_hourly_usd: Some(0.5), ..base() }, Request { allow_spot: true, ..r() }, Policy { max_cost_per_hour: Some(1.0), allow_spot_instances: true, ..p() }, None),
        ("spot under the cap, request refuses spot", Offer { hourly_usd: 2.0, spot_hourly_usd: Some(0.5), ..base() }, r(), Policy { max_cost_per_hour: Some(1.0), allow_spot_instances: true, ..p() }, Some(Rule::MaxCost)),
        ("spot under the cap, operator refuses spot", Offer { hourly_usd: 2.0, spot_hourly_usd: Some(0.5), ..base() }, Request { allow_spot: true, ..r() }, Policy { max_cost_per_hour: Some(1.0), ..p() }, Some(Rule::MaxCost)),
    ];
    for (name, offer, request, policy, expected) in cases {
        assert_eq!(
            first_rule(offer, &request, &policy),
            expected,
            "case: {name}"
        );
    }
}

#[test]
fn an_offer_is_reported_under_the_first_rule_of_the_hierarchy_it_fails() {
    // Fails a blueprint rule (vCPU), a customer rule (region) and an operator
    // rule (excluded provider): the blueprint rule is the one reported.
    let request = Request {
        min_vcpus: 8.0,
        regions: vec!["eu-west-1".into()],
        ..Request::default()
    };
    let policy = Policy {
        excluded_providers: vec!["aws".into()],
        ..Policy::default()
    };
    assert_eq!(first_rule(base(), &request, &policy), Some(Rule::Vcpus));
    let request = Request {
        min_vcpus: 0.0,
        ..request
    };
    assert_eq!(first_rule(base(), &request, &policy), Some(Rule::Region));
}

#[test]
fn regions_and_geography_both_apply_when_both_are_given() {
    let request = Request {
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        geography: Some(Geography::Europe),
        ..Request::default()
    };
    let ranking = rank_offers(
        vec![base(), offer("aws", "m5.large", "eu-west-1")],
        &request,
        &Policy::default(),
    )
    .expect("valid");
    let regions: Vec<_> = ranking
        .candidates
        .iter()
        .map(|c| c.offer.region.as_str())
        .collect();
    assert_eq!(regions, ["eu-west-1"]);
}

#[test]
fn cheapest_first_and_ties_broken_by_provider_region_type_zone() {
    let offers = vec![
        Offer {
            hourly_usd: 0.2,
            ..offer("gcp", "n2-standard-2", "us-east1")
        },
        offer("vultr", "vc2-2c-8gb", "ewr"),
        offer("aws", "m5.large", "us-west-2"),
        offer("aws", "m5.large", "us-east-1"),
        offer("aws", "m4.large", "us-east-1"),
        Offer {
            zone: Some("us-east-1b".into()),
            ..offer("aws", "m4.large", "us-east-1")
        },
        Offer {
            zone: Some("us-east-1a".into()),
            ..offer("aws", "m4.large", "us-east-1")
        },
    ];
    let ranking = rank_offers(offers, &Request::default(), &Policy::default()).expect("valid");
    let order: Vec<String> = ranking
        .candidates
        .iter()
        .map(|c| {
            let o = &c.offer;
            format!(
                "{}/{}/{}/{}",
                o.provider,
                o.region,
                o.instance_type,
                o.zone.as_deref().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            "aws/us-east-1/m4.large/-",
            "aws/us-east-1/m4.large/us-east-1a",
            "aws/us-east-1/m4.large/us-east-1b",
            "aws/us-east-1/m5.large/-",
            "aws/us-west-2/m5.large/-",
            "vultr/ewr/vc2-2c-8gb/-",
            "gcp/us-east1/n2-standard-2/-",
        ]
    );
}

#[test]
fn auto_cheapest_uses_preferred_providers_only_to_break_price_ties() {
    let offers = vec![
        Offer {
            hourly_usd: 0.09,
            ..offer("vultr", "vc2-2c-8gb", "ewr")
        },
        offer("aws", "m5.large", "us-east-1"),
        offer("gcp", "n2-standard-2", "us-east1"),
    ];
    let policy = Policy {
        preferred_providers: vec!["gcp".into(), "aws".into()],
        ..Policy::default()
    };
    let ranking = rank_offers(offers, &Request::default(), &policy).expect("valid");
    let providers: Vec<_> = ranking
        .candidates
        .iter()
        .map(|c| c.offer.provider.as_str())
        .collect();
    // Vultr is cheapest; at equal price gcp (listed first) beats aws.
    assert_eq!(providers, ["vultr", "gcp", "aws"]);
    assert!(!ranking.candidates[0].preferred);
    assert!(ranking.candidates[1].preferred);
}

#[test]
fn preferred_mode_ranks_every_preferred_provider_before_the_others() {
    let offers = vec![
        Offer {
            hourly_usd: 0.01,
            ..offer("vultr", "vc2-2c-8gb", "ewr")
        },
        Offer {
            hourly_usd: 0.30,
            ..offer("aws", "m5.large", "us-east-1")
        },
        Offer {
            hourly_usd: 0.20,
            ..offer("gcp", "n2-standard-2", "us-east1")
        },
    ];
    let policy = Policy {
        mode: Mode::Preferred,
        preferred_providers: vec!["aws".into(), "gcp".into()],
        ..Policy::default()
    };
    let ranking = rank_offers(offers, &Request::default(), &policy).expect("valid");
    let providers: Vec<_> = ranking
        .candidates
        .iter()
        .map(|c| c.offer.provider.as_str())
        .collect();
    // Within the preferred group: cheapest first, not list order.
    assert_eq!(providers, ["gcp", "aws", "vultr"]);
}

#[test]
fn an_excluded_provider_stays_excluded_even_when_preferred() {
    let policy = Policy {
        mode: Mode::Preferred,
        preferred_providers: vec!["aws".into()],
        excluded_providers: vec!["aws".into()],
        ..Policy::default()
    };
    assert_eq!(
        first_rule(base(), &Request::default(), &policy),
        Some(Rule::ExcludedProvider)
    );
}

#[test]
fn spot_yields_a_spot_candidate_and_an_on_demand_fallback() {
    let offers = vec![Offer {
        spot_hourly_usd: Some(0.03),
        ..base()
    }];
    let request = Request {
        allow_spot: true,
        ..Request::default()
    };
    let policy = Policy {
        allow_spot_instances: true,
        ..Policy::default()
    };
    let ranking = rank_offers(offers, &request, &policy).expect("valid");
    let got: Vec<_> = ranking
        .candidates
        .iter()
        .map(|c| (c.spot, c.hourly_usd))
        .collect();
    assert_eq!(got, [(true, 0.03), (false, 0.10)]);
}

#[test]
fn the_cost_cap_keeps_the_spot_candidate_and_drops_the_on_demand_one() {
    let offers = vec![Offer {
        hourly_usd: 2.0,
        spot_hourly_usd: Some(0.6),
        ..base()
    }];
    let request = Request {
        allow_spot: true,
        ..Request::default()
    };
    let policy = Policy {
        allow_spot_instances: true,
        max_cost_per_hour: Some(1.0),
        ..Policy::default()
    };
    let ranking = rank_offers(offers, &request, &policy).expect("valid");
    let got: Vec<_> = ranking
        .candidates
        .iter()
        .map(|c| (c.spot, c.hourly_usd))
        .collect();
    assert_eq!(got, [(true, 0.6)]);
}

#[test]
fn max_candidates_truncates_to_the_cheapest() {
    let offers: Vec<Offer> = (0..50)
        .map(|i| Offer {
            hourly_usd: 1.0 + f64::from(i),
            ..offer("aws", &format!("m5.t{i}"), "us-east-1")
        })
        .collect();
    let policy = Policy {
        max_candidates: 3,
        ..Policy::default()
    };
    let ranking = rank_offers(offers, &Request::default(), &policy).expect("valid");
    let prices: Vec<_> = ranking.candidates.iter().map(|c| c.hourly_usd).collect();
    assert_eq!(prices, [1.0, 2.0, 3.0]);
    assert_eq!(ranking.offers_satisfying, 50);
}

#[test]
fn high_availability_is_unsatisfiable_within_one_failure_domain() {
    let offers = vec![base(), offer("aws", "m5.xlarge", "us-east-1")];
    let request = Request {
        high_availability: true,
        ..Request::default()
    };
    let ranking = rank_offers(offers, &request, &Policy::default()).expect("valid");
    assert!(ranking.candidates.is_empty());
    assert!(matches!(
        ranking.high_availability,
        Some(HaOutcome::Unsatisfiable { .. })
    ));
}

#[test]
fn high_availability_counts_two_known_zones_but_not_an_unknown_zone() {
    let zoned = |zone: &str| Offer {
        zone: Some(zone.into()),
        ..base()
    };
    let request = Request {
        high_availability: true,
        ..Request::default()
    };
    let policy = Policy::default();

    let ranking = rank_offers(
        vec![zoned("us-east-1a"), zoned("us-east-1b")],
        &request,
        &policy,
    )
    .expect("valid");
    assert_eq!(
        ranking.high_availability,
        Some(HaOutcome::Met {
            primary: 0,
            secondary: 1
        })
    );

    // A missing zone may be any zone of the region, so it is not distinct.
    let ranking = rank_offers(vec![zoned("us-east-1a"), base()], &request, &policy).expect("valid");
    assert!(ranking.candidates.is_empty());
}

#[test]
fn high_availability_brings_in_a_second_domain_beyond_max_candidates() {
    let mut offers: Vec<Offer> = (0..10)
        .map(|i| Offer {
            hourly_usd: 0.1 + f64::from(i) * 0.01,
            ..offer("aws", &format!("m5.t{i}"), "us-east-1")
        })
        .collect();
    offers.push(Offer {
        hourly_usd: 5.0,
        ..offer("gcp", "n2-standard-2", "us-east1")
    });
    let request = Request {
        high_availability: true,
        ..Request::default()
    };
    for max_candidates in [1, 3] {
        let policy = Policy {
            max_candidates,
            ..Policy::default()
        };
        let ranking = rank_offers(offers.clone(), &request, &policy).expect("valid");
        let last = ranking.candidates.last().expect("candidates");
        assert_eq!(
            last.offer.provider, "gcp",
            "max_candidates {max_candidates}"
        );
        assert_eq!(ranking.candidates.len(), max_candidates.max(2));
        assert_eq!(
            ranking.high_availability,
            Some(HaOutcome::Met {
                primary: 0,
                secondary: ranking.candidates.len() - 1
            })
        );
        assert!(
            ranking.candidates[0]
                .failure_domain()
                .is_distinct_from(&last.failure_domain())
        );
    }
}

#[test]
fn explanation_counts_each_family_under_its_first_failed_rule() {
    let offers = vec![
        Offer {
            vcpus: 1.0,
            ..offer("aws", "m5.small", "us-east-1")
        },
        Offer {
            vcpus: 1.0,
            ..offer("aws", "m5.small", "us-west-2")
        },
        offer("aws", "m5.large", "eu-west-1"),
        offer("aws", "m5.large", "us-east-1"),
        offer("azure", "Standard_D2s_v3", "westeurope"),
        offer("azure", "Standard_D4s_v3", "westeurope"),
    ];
    let request = Request {
        min_vcpus: 2.0,
        geography: Some(Geography::Us),
        ..Request::default()
    };
    let ranking = rank_offers(offers, &request, &Policy::default()).expect("valid");
    assert_eq!(ranking.candidates.len(), 1);
    assert_eq!(ranking.excluded.len(), 2);

    let aws = &ranking.excluded[0];
    assert_eq!((aws.provider.as_str(), aws.family.as_str()), ("aws", "m5"));
    assert_eq!((aws.offers_excluded, aws.offers_kept), (3, 1));
    let reasons: Vec<_> = aws.reasons.iter().map(|r| (r.rule, r.offers)).collect();
    assert_eq!(reasons, [(Rule::Vcpus, 2), (Rule::Geography, 1)]);
    // The example is the first offer in tie-break order, with its numbers.
    assert_eq!(
        aws.reasons[0].example,
        "m5.small in us-east-1: 1 vCPU, needs 2"
    );

    let azure = &ranking.excluded[1];
    assert_eq!(azure.family, "Standard_Ds_v3");
    assert_eq!(azure.reasons[0].rule, Rule::Geography);
    assert_eq!(
        ranking.excluded_by_rule(),
        [(Rule::Vcpus, 2), (Rule::Geography, 3)]
    );
}

#[test]
fn instance_families_follow_each_providers_naming() {
    let cases = [
        ("m5.large", "m5"),
        ("x2iedn.32xlarge", "x2iedn"),
        ("n2-standard-4", "n2"),
        ("e2-micro", "e2"),
        ("s-2vcpu-4gb", "s"),
        ("gpu-h100x8-640gb", "gpu"),
        ("vc2-1c-1gb", "vc2"),
        ("Standard_D2s_v3", "Standard_Ds_v3"),
        ("Standard_NC40ads_H100_v5", "Standard_NCads_H100_v5"),
        ("Standard_M64-16ms", "Standard_Mms"),
        ("Basic_A0", "Basic_A"),
        ("hostalias", "hostalias"),
    ];
    for (instance_type, family) in cases {
        assert_eq!(instance_family(instance_type), family, "{instance_type}");
    }
}

#[test]
fn invalid_requests_are_refused_with_the_field_named() {
    let offers = || vec![base()];
    let err = rank_offers(
        offers(),
        &Request {
            min_vcpus: -1.0,
            ..Request::default()
        },
        &Policy::default(),
    )
    .expect_err("negative vCPU");
    assert!(err.to_string().contains("request.min_vcpus"), "{err}");
    let err = rank_offers(
        offers(),
        &Request {
            min_memory_gib: f32::NAN,
            ..Request::default()
        },
        &Policy::default(),
    )
    .expect_err("NaN memory");
    assert!(err.to_string().contains("request.min_memory_gib"), "{err}");
    let err = rank_offers(
        offers(),
        &Request::default(),
        &Policy {
            max_cost_per_hour: Some(0.0),
            ..Policy::default()
        },
    )
    .expect_err("zero cap");
    assert_eq!(err, PlacementError::InvalidCostCap(0.0));
    let err = rank_offers(
        offers(),
        &Request::default(),
        &Policy {
            max_candidates: 0,
            ..Policy::default()
        },
    )
    .expect_err("no candidates");
    assert_eq!(err, PlacementError::NoCandidatesAllowed);
}

#[test]
fn gpu_model_matching_is_by_whole_words_ignoring_case() {
    assert!(gpu_model_matches("NVIDIA A100", "NVIDIA A100 80GB"));
    assert!(gpu_model_matches("a100", "NVIDIA A100"));
    assert!(gpu_model_matches("A100 80GB", "NVIDIA A100 80GB"));
    assert!(!gpu_model_matches("A100 80GB", "NVIDIA A100"));
    assert!(!gpu_model_matches("T4", "NVIDIA T4G"));
    assert!(!gpu_model_matches("NVIDIA H100", "NVIDIA H200"));
}

#[test]
fn snapshot_prices_are_flagged_in_the_reason() {
    let ranking = rank_offers(
        vec![Offer {
            from_snapshot: true,
            ..base()
        }],
        &Request::default(),
        &Policy::default(),
    )
    .expect("valid");
    assert!(
        ranking.candidates[0].why.contains("snapshot"),
        "{}",
        ranking.candidates[0].why
    );
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Naive reference: the usable `(price, spot)` pairs of `offer`, straight
/// from the documented rules, without the catalog.
fn naive_prices(offer: &Offer, request: &Request, policy: &Policy) -> Vec<(f64, bool)> {
    let hard = offer.hourly_usd > 0.0
        && offer.vcpus >= request.min_vcpus
        && offer.memory_gib >= request.min_memory_gib
        && offer
            .storage_gib
            .is_none_or(|s| s >= request.min_storage_gib)
        && offer.gpus >= request.min_gpus
        && request.gpu_model.as_ref().is_none_or(|m| {
            offer
                .gpu_model
                .as_ref()
                .is_some_and(|o| gpu_model_matches(m, o))
        })
        && (!request.confidential || offer.confidential)
        && request.arch.is_none_or(|a| a == offer.arch)
        && !(request.dedicated_cpu && offer.shared_cpu);
    let customer = (request.regions.is_empty() || request.regions.contains(&offer.region))
        && request
            .geography
            .is_none_or(|g| geography_of(&offer.region) == Some(g))
        && request.tier.is_none_or(|t| {
            let (cpu, mem) = t.vm_floor();
            offer.vcpus >= cpu && offer.memory_gib >= mem
        });
    let uses_defaults = request.regions.is_empty() && request.geography.is_none();
    let operator = !policy.excluded_providers.contains(&offer.provider)
        && (policy.allow_promotional || !offer.promotional)
        && (!offer.fractional_gpu || request.min_gpus == 0.0 || policy.allow_fractional_gpus)
        && (!uses_defaults
            || policy.default_regions.is_empty()
            || policy.default_regions.contains(&offer.region));
    if !(hard && customer && operator) {
        return vec![];
    }
    let cap = policy.max_cost_per_hour.unwrap_or(f64::INFINITY);
    let mut prices = vec![];
    if offer.hourly_usd <= cap {
        prices.push((offer.hourly_usd, false));
    }
    if let Some(spot) = offer.spot_hourly_usd
        && policy.allow_spot_instances
        && request.allow_spot
        && spot <= cap
    {
        prices.push((spot, true));
    }
    prices
}

fn arb_offer() -> impl Strategy<Value = Offer> {
    let ident = (
        prop::sample::select(vec!["aws", "gcp", "vultr"]),
        prop::sample::select(vec!["m5.large", "m5.xlarge", "c6i.large", "g5.xlarge"]),
        prop::sample::select(vec!["us-east-1", "eu-west-1", "ewr", "asia-east1"]),
        prop::option::of(prop::sample::select(vec!["a", "b"])),
    );
    let hardware = (
        prop::sample::select(vec![1.0f32, 2.0, 4.0, 8.0]),
        prop::sample::select(vec![1.0f32, 4.0, 16.0]),
        prop::option::of(prop::sample::select(vec![10.0f32, 100.0])),
        prop::sample::select(vec![0.0f32, 0.5, 1.0, 4.0]),
        prop::sample::select(vec!["NVIDIA T4", "NVIDIA A100", "NVIDIA A100 80GB"]),
    );
    // Prices on a coarse grid so that exact ties happen.
    let price = (1u32..40).prop_map(|cents| f64::from(cents) / 100.0);
    let spot = prop::option::of((1u32..40).prop_map(|cents| f64::from(cents) / 100.0));
    let flags = prop::array::uniform5(prop::bool::weighted(0.2));
    (ident, hardware, price, spot, flags, any::<bool>()).prop_map(
        |(
            (provider, kind, region, zone),
            (vcpus, memory, storage, gpus, model),
            hourly,
            spot,
            f,
            arm,
        )| Offer {
            zone: zone.map(|z| format!("{region}{z}")),
            vcpus,
            memory_gib: memory,
            storage_gib: storage,
            gpus,
            gpu_model: (gpus > 0.0).then(|| model.to_owned()),
            fractional_gpu: gpus > 0.0 && gpus < 1.0,
            operator_owned: false,
            arch: if arm { Arch::Arm64 } else { Arch::X86_64 },
            hourly_usd: hourly,
            spot_hourly_usd: spot,
            shared_cpu: f[0],
            confidential: f[1],
            promotional: f[2],
            ..offer(provider, kind, region)
        },
    )
}

fn arb_request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(vec![0.0f32, 2.0, 4.0]),
        prop::sample::select(vec![0.0f32, 4.0]),
        prop::sample::select(vec![0.0f32, 50.0]),
        prop::sample::select(vec![0.0f32, 0.0, 0.5, 1.0]),
        prop::option::weighted(
            0.2,
            prop::sample::select(vec!["NVIDIA A100", "A100 80GB", "NVIDIA T4"]),
        ),
        (
            prop::bool::weighted(0.15),
            prop::bool::weighted(0.15),
            any::<bool>(),
            any::<bool>(),
        ),
        prop::option::weighted(
            0.3,
            prop::sample::select(vec![Geography::Us, Geography::Europe]),
        ),
        prop::sample::subsequence(vec!["us-east-1", "eu-west-1", "ewr"], 0..=2),
        prop::option::weighted(0.3, prop::sample::select(vec![Tier::Basic, Tier::Premium])),
    )
        .prop_map(
            |(cpu, mem, disk, gpus, model, (conf, dedicated, spot, ha), geo, regions, tier)| {
                Request {
                    min_vcpus: cpu,
                    min_memory_gib: mem,
                    min_storage_gib: disk,
                    min_gpus: gpus,
                    gpu_model: model.map(str::to_owned),
                    confidential: conf,
                    dedicated_cpu: dedicated,
                    allow_spot: spot,
                    high_availability: ha,
                    geography: geo,
                    regions: regions.into_iter().map(str::to_owned).collect(),
                    tier,
                    arch: None,
                    providers: vec![],
                }
            },
        )
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        prop::sample::subsequence(vec!["aws", "gcp", "vultr"], 0..=2),
        prop::sample::subsequence(vec!["aws", "gcp", "vultr"], 0..=1),
        prop::option::of(prop::sample::select(vec![0.1, 0.25, 1.0])),
        any::<(bool, bool, bool)>(),
        prop::sample::subsequence(vec!["us-east-1", "asia-east1"], 0..=1),
        1usize..6,
    )
        .prop_map(
            |(preferred, excluded, cap, (spot, fractional, promo), defaults, k)| Policy {
                mode: Mode::AutoCheapest,
                preferred_providers: preferred.into_iter().map(str::to_owned).collect(),
                excluded_providers: excluded.into_iter().map(str::to_owned).collect(),
                max_cost_per_hour: cap,
                allow_spot_instances: spot,
                default_regions: defaults.into_iter().map(str::to_owned).collect(),
                allow_fractional_gpus: fractional,
                allow_promotional: promo,
                max_candidates: k,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_candidate_satisfies_every_rule_and_is_priced_as_claimed(
        offers in prop::collection::vec(arb_offer(), 0..40),
        request in arb_request(),
        policy in arb_policy(),
    ) {
        let ranking = rank_offers(offers, &request, &policy).expect("valid");
        for candidate in &ranking.candidates {
            let usable = naive_prices(&candidate.offer, &request, &policy);
            prop_assert!(
                usable.contains(&(candidate.hourly_usd, candidate.spot)),
                "candidate {:?} not allowed by the reference ({:?})", candidate, usable
            );
        }
    }

    #[test]
    fn no_cheaper_satisfying_offer_exists(
        offers in prop::collection::vec(arb_offer(), 0..40),
        request in arb_request(),
        policy in arb_policy(),
    ) {
        let cheapest = offers
            .iter()
            .flat_map(|o| naive_prices(o, &request, &policy))
            .map(|(price, _)| price)
            .min_by(f64::total_cmp);
        let satisfying = offers.iter().filter(|o| !naive_prices(o, &request, &policy).is_empty()).count();
        let usable: Vec<(FailureDomain, f64)> = offers
            .iter()
            .flat_map(|o| {
                let domain = FailureDomain {
                    provider: o.provider.clone(),
                    region: o.region.clone(),
                    zone: o.zone.clone(),
                };
                naive_prices(o, &request, &policy).into_iter().map(move |(p, _)| (domain.clone(), p))
            })
            .collect();
        let ranking = rank_offers(offers, &request, &policy).expect("valid");
        prop_assert_eq!(ranking.offers_satisfying, satisfying);
        // In preferred mode a dearer preferred provider may win; the price
        // properties are about auto-cheapest (or no preferred provider).
        let by_price = policy.mode == Mode::AutoCheapest || policy.preferred_providers.is_empty();
        match (ranking.candidates.first(), cheapest) {
            (Some(winner), Some(cheapest)) if by_price => prop_assert_eq!(winner.hourly_usd, cheapest),
            (Some(_), Some(_)) => {}
            (None, Some(_)) => prop_assert!(
                matches!(ranking.high_availability, Some(HaOutcome::Unsatisfiable { .. })),
                "satisfying offers exist but no candidate and HA was met"
            ),
            (Some(winner), None) => prop_assert!(false, "winner {:?} satisfies nothing", winner),
            (None, None) => {}
        }
        let prices: Vec<f64> = ranking.candidates.iter().map(|c| c.hourly_usd).collect();
        // HA may append a dearer secondary, which is still in price order.
        if by_price {
            prop_assert!(prices.windows(2).all(|w| w[0] <= w[1]), "not sorted: {:?}", prices);
        }
        prop_assert!(ranking.candidates.len() <= policy.max_candidates.max(2));
        match &ranking.high_availability {
            Some(HaOutcome::Met { primary, secondary }) => {
                let a = ranking.candidates[*primary].failure_domain();
                let b = ranking.candidates[*secondary].failure_domain();
                prop_assert!(a.is_distinct_from(&b));
                if by_price {
                    let cheapest_distinct = usable
                        .iter()
                        .filter(|(d, _)| d.is_distinct_from(&a))
                        .map(|&(_, p)| p)
                        .min_by(f64::total_cmp);
                    prop_assert_eq!(Some(ranking.candidates[*secondary].hourly_usd), cheapest_distinct);
                }
            }
            Some(HaOutcome::Unsatisfiable { domain }) => {
                prop_assert!(usable.iter().all(|(d, _)| !d.is_distinct_from(domain)));
            }
            None => prop_assert!(!request.high_availability || usable.is_empty()),
        }
    }

    #[test]
    fn the_ranking_does_not_depend_on_input_order(
        offers in prop::collection::vec(arb_offer(), 0..40),
        request in arb_request(),
        policy in arb_policy(),
        seed in any::<u64>(),
    ) {
        let mut shuffled = offers.clone();
        // Fisher-Yates with a xorshift, so the permutation is part of the case.
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let a = rank_offers(offers, &request, &policy).expect("valid");
        let b = rank_offers(shuffled, &request, &policy).expect("valid");
        prop_assert_eq!(a, b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Hundreds of survivors and a small `max_candidates` exercise the
    /// bounded top-k (its buffer is shrunk many times during the pass).
    #[test]
    fn the_candidates_are_the_cheapest_prices_even_with_many_survivors(
        offers in prop::collection::vec(arb_offer(), 300..700),
        max_candidates in 1usize..8,
        spot in any::<bool>(),
    ) {
        let request = Request { allow_spot: spot, ..Request::default() };
        let policy = Policy {
            allow_spot_instances: true,
            allow_promotional: true,
            max_candidates,
            ..Policy::default()
        };
        let mut expected: Vec<f64> = offers
            .iter()
            .flat_map(|o| naive_prices(o, &request, &policy))
            .map(|(price, _)| price)
            .collect();
        expected.sort_by(f64::total_cmp);
        expected.truncate(max_candidates);
        let ranking = rank_offers(offers, &request, &policy).expect("valid");
        let got: Vec<f64> = ranking.candidates.iter().map(|c| c.hourly_usd).collect();
        prop_assert_eq!(got, expected);
    }
}
