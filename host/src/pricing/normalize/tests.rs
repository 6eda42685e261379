//! Normalisation tests. The GPU strings are copied exactly from the recorded
//! catalogues in `shared/pricing/` (file named on each line).

use std::collections::BTreeMap;

use super::*;
use crate::placement::Arch;

fn offer(provider: &str, instance_type: &str) -> Offer {
    Offer {
        provider: provider.into(),
        instance_type: instance_type.into(),
        region: "us-east-1".into(),
        zone: None,
        vcpus: 4.0,
        memory_gib: 16.0,
        storage_gib: None,
        gpus: 0.0,
        gpu_model: None,
        gpu_memory_gib: None,
        arch: Arch::X86_64,
        hourly_usd: 0.2,
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

fn gpu(model: &str, gpus: f32, hourly: f64) -> Offer {
    Offer {
        gpus,
        gpu_model: Some(model.into()),
        hourly_usd: hourly,
        ..offer("aws", "g4dn.xlarge")
    }
}

fn run(offers: Vec<Offer>) -> (Vec<Offer>, NormalizeReport) {
    normalize(offers, &NormalizeConfig::default())
}

#[test]
fn every_gpu_string_in_the_recorded_catalogues_maps_to_the_vocabulary() {
    #[rustfmt::skip]
    let cases: &[(&str, Option<f32>, &str)] = &[
        // aws/instances.json GPU_model (ec2instances.info)
        ("NVIDIA T4 Tensor Core", None, "NVIDIA T4"),
        ("NVIDIA T4G Tensor Core", None, "NVIDIA T4G"),
        ("NVIDIA A10G", None, "NVIDIA A10G"),
        ("NVIDIA A100", None, "NVIDIA A100"),
        ("NVIDIA H100", None, "NVIDIA H100"),
        ("NVIDIA Tesla V100", None, "NVIDIA V100"),
        ("AMD Radeon Pro V520", None, "AMD Radeon Pro V520"),
        // skypilot/*.csv and azure/vm_sizes.from_skypilot.csv AcceleratorName
        ("T4", None, "NVIDIA T4"),
        ("A10", None, "NVIDIA A10"),
        ("A100", None, "NVIDIA A100"),
        ("A100-80GB", None, "NVIDIA A100 80GB"),
        ("H100", None, "NVIDIA H100"),
        ("K80", None, "NVIDIA K80"),
        ("M60", None, "NVIDIA M60"),
        ("Radeon MI25", None, "AMD MI25"),
        ("V100", None, "NVIDIA V100"),
        ("V100-32GB", None, "NVIDIA V100 32GB"),
        ("tpu-v6e-1", None, "Google TPU v6e"),
        // skypilot/do_vms_v6.csv GpuInfo name
        ("h100", None, "NVIDIA H100"),
        // digitalocean/*.json gpu_info.model and slugs
        ("nvidia_h100", None, "NVIDIA H100"),
        ("amd_mi300x", None, "AMD MI300X"),
        ("gpu-h100x8-640gb", None, "NVIDIA H100"),
        // vultr/plans_gpu.gpuhunt_fixture.json gpu_type (+ gpu_vram_gb)
        ("NVIDIA_A100", Some(80.0), "NVIDIA A100 80GB"),
        ("NVIDIA_A100", Some(40.0), "NVIDIA A100"),
        ("NVIDIA_A100", Some(4.0), "NVIDIA A100"),
        // vultr plan ids carrying the model (vdm/vbm plans have no gpu_type)
        ("vcg-a40-24c-120g-48vram", None, "NVIDIA A40"),
        ("vcg-mi325x-252c-2872g-1536vram", None, "AMD MI325X"),
        ("vbm-256c-2048gb-8-mi300x-gpu", None, "AMD MI300X"),
        ("vbm-112c-2048gb-8-h100-gpu", None, "NVIDIA H100"),
        // gcp SKU description (skus.compute_engine.*.json)
        ("Nvidia Tesla A100 GPU running in Americas", None, "NVIDIA A100"),
        // Spellings of the brief and GCP accelerator types
        ("Tesla T4", None, "NVIDIA T4"),
        ("nvidia-tesla-t4", None, "NVIDIA T4"),
        ("nvidia-a100-80gb", None, "NVIDIA A100 80GB"),
        ("nvidia-h100-mega-80gb", None, "NVIDIA H100"),
        ("nvidia-h200-141gb", None, "NVIDIA H200"),
        ("nvidia-l4", None, "NVIDIA L4"),
        ("NVIDIA L40S", None, "NVIDIA L40S"),
        ("nvidia-tesla-p100", None, "NVIDIA P100"),
        ("nvidia-tesla-p4", None, "NVIDIA P4"),
        ("AWS Inferentia2", None, "AWS Inferentia2"),
        ("Trainium", None, "AWS Trainium"),
    ];
    for &(raw, memory, expected) in cases {
        assert_eq!(
            canonical_gpu_model(raw, memory),
            Some(expected),
            "raw {raw:?} memory {memory:?}"
        );
    }
}

#[test]
fn a_total_memory_hint_does_not_pick_the_large_variant() {
    // ec2instances.info GPU_memory is the total of all GPUs: p4d has 8 x 40.
    assert_eq!(
        canonical_gpu_model("NVIDIA A100", Some(320.0)),
        Some("NVIDIA A100")
    );
}

#[test]
fn strings_naming_no_known_gpu_are_not_guessed() {
    for raw in ["", "GPU", "NVIDIA", "Tesla", "rtx-9999", "tpu", "tpu-v99"] {
        assert_eq!(canonical_gpu_model(raw, None), None, "raw {raw:?}");
    }
}

#[test]
fn fractional_gpus_are_marked_by_count_or_by_a_small_memory_slice() {
    assert!(is_fractional_gpu(0.125, Some("NVIDIA L4"), None));
    assert!(is_fractional_gpu(1.5, Some("NVIDIA T4"), None));
    // Vultr sells a 4 GB slice of an A100 as "1 GPU".
    assert!(is_fractional_gpu(1.0, Some("NVIDIA A100"), Some(4.0)));
    assert!(!is_fractional_gpu(1.0, Some("NVIDIA A100"), Some(40.0)));
    assert!(!is_fractional_gpu(8.0, Some("NVIDIA A100"), Some(320.0)));
    assert!(!is_fractional_gpu(0.0, None, None));
    assert!(!is_fractional_gpu(1.0, Some("an unknown model"), Some(1.0)));
}

#[test]
fn shared_core_families_are_marked_per_provider() {
    let shared = [
        ("aws", "t3.micro"),
        ("aws", "t4g.nano"),
        ("aws", "t2.large"),
        ("gcp", "e2-micro"),
        ("gcp", "f1-micro"),
        ("azure", "Standard_B1s"),
        ("azure", "Standard_B2pts_v2"),
        ("azure", "Basic_A0"),
        ("digitalocean", "s-1vcpu-1gb"),
        ("digitalocean", "2gb"),
        ("vultr", "vc2-1c-1gb"),
        ("vultr", "vhf-2c-4gb"),
    ];
    for (provider, instance_type) in shared {
        assert!(
            is_shared_core(provider, instance_type),
            "{provider} {instance_type}"
        );
    }
    let dedicated = [
        ("aws", "m5.large"),
        ("aws", "trn1.2xlarge"),
        ("gcp", "e2-standard-4"),
        ("azure", "Standard_D2s_v3"),
        ("digitalocean", "c-2"),
        ("digitalocean", "gpu-h100x1-80gb"),
        ("vultr", "vdc-4vcpu-16gb"),
        ("someone", "t3.micro"),
    ];
    for (provider, instance_type) in dedicated {
        assert!(
            !is_shared_core(provider, instance_type),
            "{provider} {instance_type}"
        );
    }
}

#[test]
fn normalize_names_the_gpu_and_marks_fractional_shared_and_promotional() {
    let offers = vec![
        gpu("NVIDIA T4 Tensor Core", 1.0, 0.526),
        gpu("NVIDIA L4", 0.125, 0.2),
        offer("aws", "t3.medium"),
        offer("azure", "Standard_A1_Promo"),
    ];
    let (kept, report) = run(offers);
    assert_eq!(kept.len(), 4, "{report:?}");
    assert_eq!(kept[0].gpu_model.as_deref(), Some("NVIDIA T4"));
    assert!(!kept[0].fractional_gpu);
    assert!(kept[1].fractional_gpu);
    assert!(kept[2].shared_cpu);
    assert!(kept[3].promotional);
    assert!(report.dropped.is_empty() && report.adjusted.is_empty());
}

#[test]
fn zero_and_negative_and_nan_prices_are_dropped_and_reported() {
    let offers = vec![
        Offer {
            hourly_usd: 0.0,
            ..offer("aws", "m5.large")
        },
        Offer {
            hourly_usd: -1.0,
            ..offer("aws", "m5.xlarge")
        },
        Offer {
            hourly_usd: f64::NAN,
            ..offer("aws", "m5.2xlarge")
        },
        // The $0 H100 that lets SkyPilot users down.
        gpu("NVIDIA H100", 8.0, 0.0),
    ];
    let (kept, report) = run(offers);
    assert!(kept.is_empty());
    let reasons: Vec<_> = report
        .dropped
        .iter()
        .map(|(id, reason)| (id.instance_type.as_str(), reason.clone()))
        .collect();
    assert_eq!(
        reasons,
        [
            ("m5.large", DropReason::NonPositivePrice(0.0)),
            ("m5.xlarge", DropReason::NonPositivePrice(-1.0)),
            ("m5.2xlarge", DropReason::NonFinitePrice),
            ("g4dn.xlarge", DropReason::NonPositivePrice(0.0)),
        ]
    );
}

#[test]
fn impossible_hardware_is_dropped_with_the_field_named() {
    let (kept, report) = run(vec![
        Offer {
            vcpus: 0.0,
            ..offer("aws", "m5.large")
        },
        Offer {
            memory_gib: f32::INFINITY,
            ..offer("aws", "m5.large")
        },
        Offer {
            gpus: -1.0,
            ..offer("aws", "m5.large")
        },
    ]);
    assert!(kept.is_empty());
    let fields: Vec<_> = report
        .dropped
        .iter()
        .map(|(_, reason)| match reason {
            DropReason::InvalidHardware { field, .. } => *field,
            other => panic!("unexpected reason {other:?}"),
        })
        .collect();
    assert_eq!(fields, ["vcpus", "memory_gib", "gpus"]);
}

#[test]
fn prices_absurd_for_their_family_are_dropped() {
    let offers = vec![
        // 4 vCPU at $10/h = $2.50 per vCPU-hour (max 1.0).
        Offer {
            hourly_usd: 10.0,
            ..offer("aws", "m5.xlarge")
        },
        // 4 vCPU at $0.0001/h (min 0.0005 per vCPU-hour).
        Offer {
            hourly_usd: 0.0001,
            ..offer("aws", "m5.xlarge")
        },
        // SkyPilot's GCP TPU "no price" sentinel of 700.
        Offer {
            provider: "gcp".into(),
            ..gpu("tpu-v6e-1", 1.0, 700.0)
        },
        // A whole H100 for five cents is a scraping error.
        gpu("NVIDIA H100", 1.0, 0.05),
        // Real recorded extremes stay: x2iedn.32xlarge and p5.48xlarge.
        Offer {
            vcpus: 128.0,
            memory_gib: 4096.0,
            hourly_usd: 52.02,
            ..offer("aws", "x2iedn.32xlarge")
        },
        gpu("NVIDIA H100", 8.0, 98.32),
    ];
    let (kept, report) = run(offers);
    let kept: Vec<_> = kept.iter().map(|o| o.instance_type.as_str()).collect();
    assert_eq!(kept, ["x2iedn.32xlarge", "g4dn.xlarge"]);
    let units: Vec<_> = report
        .dropped
        .iter()
        .map(|(_, reason)| match reason {
            DropReason::PriceOutOfBounds { unit, .. } => *unit,
            other => panic!("unexpected reason {other:?}"),
        })
        .collect();
    assert_eq!(
        units,
        [
            PriceUnit::PerVcpuHour,
            PriceUnit::PerVcpuHour,
            PriceUnit::PerGpuHour,
            PriceUnit::PerFlagshipGpuHour
        ]
    );
    assert!(report.dropped[0].1.to_string().contains("per vCPU-hour"));
}

#[test]
fn a_bad_spot_price_loses_only_the_spot_price() {
    let offers = vec![
        // SkyPilot southamerica-west1: on-demand 2.7, spot sentinel 700.
        Offer {
            spot_hourly_usd: Some(700.0),
            provider: "gcp".into(),
            ..gpu("tpu-v6e-1", 1.0, 2.7)
        },
        Offer {
            spot_hourly_usd: Some(0.0),
            ..offer("aws", "m5.large")
        },
        // Azure NC40ads_H100_v5: spot equal to on-demand is kept.
        Offer {
            spot_hourly_usd: Some(6.98),
            ..gpu("H100", 1.0, 6.98)
        },
    ];
    let (kept, report) = run(offers);
    assert_eq!(kept.len(), 3);
    assert_eq!(kept[0].spot_hourly_usd, None);
    assert_eq!(kept[1].spot_hourly_usd, None);
    assert_eq!(kept[2].spot_hourly_usd, Some(6.98));
    let whys: Vec<_> = report
        .adjusted
        .iter()
        .map(|(_, a)| match a {
            Adjustment::SpotPriceRemoved { why, .. } => *why,
            other => panic!("unexpected adjustment {other:?}"),
        })
        .collect();
    assert_eq!(whys, ["above on-demand", "not positive"]);
}

#[test]
fn discounts_apply_per_provider_after_the_bounds() {
    let config = NormalizeConfig::new(
        SanityBounds::default(),
        BTreeMap::from([("aws".to_owned(), 0.5)]),
    )
    .expect("valid config");
    let offers = vec![
        // $4/h for 4 vCPU is the 1.0 per vCPU-hour maximum: kept, because
        // bounds are checked on the list price, then halved.
        Offer {
            hourly_usd: 4.0,
            spot_hourly_usd: Some(1.0),
            ..offer("aws", "m5.xlarge")
        },
        Offer {
            provider: "gcp".into(),
            ..offer("gcp", "n2-standard-4")
        },
    ];
    let (kept, report) = normalize(offers, &config);
    assert_eq!(kept[0].hourly_usd, 2.0);
    assert_eq!(kept[0].spot_hourly_usd, Some(0.5));
    assert_eq!(kept[1].hourly_usd, 0.2);
    assert_eq!(report.discounted, 1);
}

#[test]
fn invalid_discounts_and_bounds_are_refused_with_what_to_do() {
    for multiplier in [0.0, -0.5, f64::NAN, 11.0] {
        let err = NormalizeConfig::new(
            SanityBounds::default(),
            BTreeMap::from([("aws".to_owned(), multiplier)]),
        )
        .expect_err("bad multiplier");
        let text = err.to_string();
        assert!(text.contains("`aws`") && text.contains("0.8"), "{text}");
    }
    let bounds = SanityBounds {
        min_usd_per_vcpu_hour: 2.0,
        ..SanityBounds::default()
    };
    let err = NormalizeConfig::new(bounds, BTreeMap::new()).expect_err("min above max");
    assert!(matches!(
        err,
        NormalizeError::InvalidBounds {
            name: "usd_per_vcpu_hour",
            ..
        }
    ));
}

#[test]
fn unknown_gpu_models_are_kept_and_reported_and_models_without_gpus_removed() {
    let offers = vec![
        gpu("  Quantum Widget 9000 ", 1.0, 1.0),
        Offer {
            gpu_model: Some("NVIDIA T4".into()),
            ..offer("aws", "m5.large")
        },
    ];
    let (kept, report) = run(offers);
    assert_eq!(kept[0].gpu_model.as_deref(), Some("Quantum Widget 9000"));
    assert_eq!(kept[1].gpu_model, None);
    let adjustments: Vec<_> = report.adjusted.into_iter().map(|(_, a)| a).collect();
    assert_eq!(
        adjustments,
        [
            Adjustment::UnknownGpuModel("Quantum Widget 9000".into()),
            Adjustment::GpuModelWithoutGpus("NVIDIA T4".into()),
        ]
    );
}
