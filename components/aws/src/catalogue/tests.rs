use serde_json::{Value, json};

use super::*;

/// The project's recorded catalogue (243 types; see host/tests/fixtures/aws/README.md).
const RECORDED: &[u8] = include_bytes!("../../../../host/tests/fixtures/aws/instances.json");

fn live() -> Source {
    Source {
        source: "http://127.0.0.1:1/instances.json".into(),
        observed_at: 1_691_280_000,
        from_snapshot: false,
    }
}

fn read(doc: &Value, regions: &[&str]) -> Vec<Offer> {
    let regions: Vec<String> = regions.iter().map(|r| r.to_string()).collect();
    let bytes = serde_json::to_vec(doc).unwrap();
    read_offers(bytes.as_slice(), &regions, &live(), "the test catalogue").unwrap()
}

fn one<'a>(offers: &'a [Offer], instance_type: &str, region: &str) -> &'a Offer {
    offers
        .iter()
        .find(|o| o.instance_type == instance_type && o.region == region)
        .unwrap_or_else(|| panic!("no offer {instance_type} in {region}"))
}

#[test]
fn the_recorded_catalogue_gives_one_offer_per_type_and_priced_region() {
    let offers = read_offers(RECORDED, &[], &live(), "the recorded catalogue").unwrap();
    // Counted independently: every (type, region) with a positive Linux
    // on-demand price and the hardware numbers.
    let doc: Value = serde_json::from_slice(RECORDED).unwrap();
    let mut expected = 0;
    for t in doc.as_array().unwrap() {
        for (_, p) in t["pricing"].as_object().unwrap() {
            let price = p["linux"]["ondemand"]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok());
            if price.is_some_and(|p| p > 0.0) && t["vCPU"].is_number() {
                expected += 1;
            }
        }
    }
    assert_eq!(offers.len(), expected);
    let m5 = one(&offers, "m5.large", "us-east-1");
    assert_eq!((m5.vcpus, m5.memory_gib, m5.hourly_usd), (2.0, 8.0, 0.102));
    assert_eq!(m5.source.source, "http://127.0.0.1:1/instances.json");
    assert_eq!(m5.source.observed_at, 1_691_280_000);
    assert!(!m5.source.from_snapshot);
    assert!(one(&offers, "t3.micro", "us-east-1").shared_cpu);
    let graviton = one(&offers, "a1.2xlarge", "ap-northeast-1");
    assert_eq!(graviton.arch, Arch::Arm64);
    assert_eq!(graviton.spot_hourly_usd, Some(0.2568));
}

#[test]
fn gpu_memory_is_per_gpu_so_the_a100_variants_can_be_told_apart() {
    // ec2instances.info gives the instance's total: 320 for p4d (8 x A100
    // 40GB), 640 for p4de (8 x A100 80GB).
    let offers = read_offers(RECORDED, &["us-east-1".into()], &live(), "x").unwrap();
    let p4d = one(&offers, "p4d.24xlarge", "us-east-1");
    assert_eq!(
        (p4d.gpus, p4d.gpu_memory_gib, p4d.gpu_model.as_deref()),
        (8.0, Some(40.0), Some("NVIDIA A100"))
    );
    let doc = json!([{
        "instance_type": "p4de.24xlarge", "vCPU": 96, "memory": 1152, "GPU": 8,
        "GPU_model": "NVIDIA A100", "GPU_memory": 640, "arch": ["x86_64"],
        "pricing": {"us-east-1": {"linux": {"ondemand": "40.96"}}}
    }]);
    assert_eq!(read(&doc, &[])[0].gpu_memory_gib, Some(80.0));
}

#[test]
fn a_gpu_slice_keeps_its_fractional_count_and_the_memory_of_its_slice() {
    let doc = json!([{
        "instance_type": "g6f.large", "vCPU": 2, "memory": 8, "GPU": 0.125,
        "GPU_model": "NVIDIA L4", "GPU_memory": 3, "arch": ["x86_64"],
        "pricing": {"us-east-1": {"linux": {"ondemand": "0.2"}}}
    }]);
    let o = &read(&doc, &[])[0];
    assert_eq!((o.gpus, o.gpu_memory_gib), (0.125, Some(3.0)));
}

#[test]
fn other_systems_regions_and_fields_are_skipped() {
    let doc = json!([{
        "GPU": 0, "GPU_model": null, "GPU_memory": 0, "arch": "arm64",
        "availability_zones": {"us-east-1": ["use1-az1"]},
        "storage": {"devices": 2, "size": 1900, "nvme_ssd": true},
        "pricing": {
            "eu-west-1": {"linux": {"ondemand": "1.5"}},
            "us-east-1": {
                "mswin": {"ondemand": "9.0"},
                "linux": {"ondemand": "1.0", "spot_min": "0.3", "spot_max": "0.5",
                          "reserved": {"yrTerm1Standard.noUpfront": "0.6"}, "pct_interrupt": "<5%"},
                "rhel": {"ondemand": "1.2"}
            },
            "us-west-2": {"mswin": {"ondemand": "2.0"}},
            "ap-south-1": {"linux": {"ondemand": "0"}}
        },
        "instance_type": "x9.huge", "vCPU": 64, "memory": 512.5,
        "regions": {"us-east-1": "US East (N. Virginia)"}
    }]);
    let all = read(&doc, &[]);
    assert_eq!(all.len(), 2, "{all:?}");
    let o = one(&all, "x9.huge", "us-east-1");
    assert_eq!(o.hourly_usd, 1.0);
    assert_eq!(o.spot_hourly_usd, Some(0.5), "no average: the maximum");
    assert_eq!(o.arch, Arch::Arm64);
    assert_eq!(o.memory_gib, 512.5);
    let disk = o.storage_gib.unwrap();
    assert!((disk - 3539.0).abs() < 1.0, "2 x 1900 GB = {disk} GiB");
    assert_eq!(o.gpus, 0.0);
    assert_eq!(o.gpu_model, None);
    assert_eq!(o.gpu_memory_gib, None);

    let east = read(&doc, &["us-east-1"]);
    assert_eq!(east.len(), 1);
}

#[test]
fn a_type_without_hardware_numbers_gives_no_offers() {
    let doc = json!([
        {"instance_type": "weird.one", "pricing": {"us-east-1": {"linux": {"ondemand": "1"}}}},
        {"instance_type": "m5.large", "vCPU": 2, "memory": 8,
         "pricing": {"us-east-1": {"linux": {"ondemand": "0.096"}}}}
    ]);
    let offers = read(&doc, &[]);
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0].instance_type, "m5.large");
}

#[test]
fn escaped_strings_are_read_like_plain_ones() {
    let doc = br#"[{"instance_type": "m5\u002elarge", "vCPU": "2", "memory": 8,
        "pricing": {"us-east-\u0031": {"linux": {"ondemand": "0.096"}}}}]"#;
    let offers = read_offers(&doc[..], &["us-east-1".into()], &live(), "x").unwrap();
    assert_eq!(offers[0].instance_type, "m5.large");
    assert_eq!(offers[0].region, "us-east-1");
    assert_eq!(offers[0].vcpus, 2.0);
}

#[test]
fn strings_in_offers_are_allocated_to_their_exact_length() {
    let offers = read_offers(RECORDED, &[], &live(), "x").unwrap();
    for o in offers.iter().take(500) {
        assert_eq!(o.instance_type.capacity(), o.instance_type.len());
        assert_eq!(o.region.capacity(), o.region.len());
        assert_eq!(o.source.source.capacity(), o.source.source.len());
    }
}

#[test]
fn a_malformed_catalogue_is_an_error_naming_the_document() {
    let cases: &[&[u8]] = &[
        b"{\"not\": \"an array\"}",
        b"[{\"instance_type\": \"m5.large\", \"vCPU\": 2,",
        b"[{\"vCPU\": 2, \"memory\": 4}]",
        b"[{\"instance_type\": 5}]",
        b"[42]",
    ];
    for doc in cases {
        let err = read_offers(*doc, &[], &live(), "the test catalogue").unwrap_err();
        let text = provider_sdk::errors::message(&err);
        assert!(
            text.contains("the test catalogue") && matches!(err, Error::Other(_)),
            "{}: {text}",
            String::from_utf8_lossy(doc)
        );
    }
}

#[test]
fn a_failing_transport_is_a_transient_error() {
    struct Broken;
    impl std::io::Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("connection reset"))
        }
    }
    let err = read_offers(Broken, &[], &live(), "the live catalogue").unwrap_err();
    assert!(
        matches!(err, Error::Transient(ref m) if m.contains("connection reset")),
        "{err:?}"
    );
}
