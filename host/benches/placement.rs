//! Placement ranking over 250,000 synthetic offers (issue 5 target: <= 10 ms
//! median on the project machine).
//!
//! Run with `cargo bench --bench placement`. The offers are a deterministic,
//! realistic mix: five providers with their real region codes (zones for AWS
//! and GCP), CPU families in several sizes, ~10% GPU types (some fractional),
//! spot prices where the provider has them, a few shared-core and
//! promotional SKUs.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::hint::black_box;

use blueprint_remote_providers::placement::{
    Arch, Catalog, Geography, Mode, Offer, Policy, Request, Tier, rank,
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const OFFERS: usize = 250_000;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct ProviderShape {
    name: &'static str,
    regions: &'static [&'static str],
    zones: bool,
    spot: bool,
    /// (family, separator before the size, shared core)
    families: &'static [(&'static str, &'static str, bool)],
}

const PROVIDERS: &[ProviderShape] = &[
    ProviderShape {
        name: "aws",
        regions: &[
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
            "ca-central-1",
            "eu-west-1",
            "eu-west-2",
            "eu-central-1",
            "eu-north-1",
            "ap-south-1",
            "ap-northeast-1",
            "ap-southeast-1",
            "ap-southeast-2",
            "sa-east-1",
        ],
        zones: true,
        spot: true,
        families: &[
            ("m5", ".", false),
            ("m6i", ".", false),
            ("m7g", ".", false),
            ("c5", ".", false),
            ("c6i", ".", false),
            ("c7g", ".", false),
            ("r5", ".", false),
            ("r6i", ".", false),
            ("t3", ".", true),
            ("t4g", ".", true),
        ],
    },
    ProviderShape {
        name: "gcp",
        regions: &[
            "us-central1",
            "us-east1",
            "us-east4",
            "us-west1",
            "us-west2",
            "europe-west1",
            "europe-west4",
            "asia-northeast1",
            "asia-southeast1",
            "australia-southeast1",
        ],
        zones: true,
        spot: true,
        families: &[
            ("n2-standard", "-", false),
            ("n2-highmem", "-", false),
            ("n2d-standard", "-", false),
            ("c2-standard", "-", false),
            ("e2-standard", "-", false),
        ],
    },
    ProviderShape {
        name: "azure",
        regions: &[
            "eastus",
            "eastus2",
            "westus2",
            "westus3",
            "centralus",
            "northeurope",
            "westeurope",
            "uksouth",
            "japaneast",
            "southeastasia",
            "australiaeast",
        ],
        zones: false,
        spot: true,
        families: &[
            ("Standard_D", "_v5", false),
            ("Standard_E", "_v5", false),
            ("Standard_F", "_v2", false),
            ("Standard_B", "_v2", true),
        ],
    },
    ProviderShape {
        name: "digitalocean",
        regions: &[
            "nyc1", "nyc3", "sfo3", "tor1", "ams3", "lon1", "fra1", "sgp1", "blr1", "syd1",
        ],
        zones: false,
        spot: false,
        families: &[
            ("s", "-", true),
            ("c", "-", false),
            ("g", "-", false),
            ("m", "-", false),
        ],
    },
    ProviderShape {
        name: "vultr",
        regions: &[
            "ewr", "ord", "dfw", "lax", "yto", "ams", "fra", "lhr", "nrt", "sgp", "syd",
        ],
        zones: false,
        spot: false,
        families: &[("vc2", "-", true), ("vhf", "-", true), ("vdc", "-", false)],
    },
];

const SIZES: &[(f32, &str)] = &[
    (2.0, "large"),
    (4.0, "xlarge"),
    (8.0, "2xlarge"),
    (16.0, "4xlarge"),
    (32.0, "8xlarge"),
    (64.0, "16xlarge"),
];

const GPUS: &[(&str, f32, f64)] = &[
    ("NVIDIA T4", 16.0, 0.35),
    ("NVIDIA A10G", 24.0, 1.0),
    ("NVIDIA L4", 24.0, 0.7),
    ("NVIDIA A100", 40.0, 3.0),
    ("NVIDIA A100 80GB", 80.0, 3.7),
    ("NVIDIA H100", 80.0, 9.0),
];

/// One synthetic offer; `i` makes instance types unique enough that families
/// and tie-breaks behave as in real catalogues.
fn synthetic_offer(rng: &mut Rng, i: usize) -> Offer {
    let shape = &PROVIDERS[rng.below(PROVIDERS.len())];
    let region = shape.regions[rng.below(shape.regions.len())];
    let zone = shape
        .zones
        .then(|| format!("{region}{}", ["a", "b", "c"][rng.below(3)]));
    let gpu_type = rng.below(10) == 0;
    let (size_vcpus, size_name) = SIZES[rng.below(SIZES.len())];
    let (instance_type, vcpus, memory, gpus, gpu_model, gpu_mem, shared, mut hourly) = if gpu_type {
        let (model, mem, per_gpu) = GPUS[rng.below(GPUS.len())];
        let count = [0.5f32, 1.0, 1.0, 2.0, 4.0, 8.0][rng.below(6)];
        let vcpus = (count * 8.0).max(4.0);
        let price = per_gpu * f64::from(count) + f64::from(vcpus) * 0.03;
        (
            format!("gpu{}.{}x{}", i % 7, model.len(), count),
            vcpus,
            vcpus * 8.0,
            count,
            Some(model.to_owned()),
            Some(mem * count.min(1.0)),
            false,
            price,
        )
    } else {
        let (family, sep, shared) = shape.families[rng.below(shape.families.len())];
        let memory_ratio = [2.0f32, 4.0, 8.0][rng.below(3)];
        let name = if shape.name == "azure" {
            // Azure sizes carry the vCPU count: `Standard_D4s_v5`.
            format!("{family}{size_vcpus}{}{sep}", ["s", "ds", "as"][i % 3])
        } else {
            format!("{family}{sep}{size_name}{}", i % 13)
        };
        let price =
            f64::from(size_vcpus) * (0.02 + 0.03 * rng.unit()) * f64::from(memory_ratio) / 4.0;
        (
            name,
            size_vcpus,
            size_vcpus * memory_ratio,
            0.0,
            None,
            None,
            shared,
            price,
        )
    };
    hourly = (hourly * 10_000.0).round() / 10_000.0 + 0.0001;
    let spot = (shape.spot && rng.below(10) < 7).then(|| hourly * (0.3 + 0.4 * rng.unit()));
    Offer {
        provider: shape.name.to_owned(),
        instance_type,
        region: region.to_owned(),
        zone,
        vcpus,
        memory_gib: memory,
        storage_gib: (!shape.zones).then_some(vcpus * 20.0),
        gpus,
        gpu_model,
        gpu_memory_gib: gpu_mem,
        arch: if rng.below(5) == 0 {
            Arch::Arm64
        } else {
            Arch::X86_64
        },
        hourly_usd: hourly,
        spot_hourly_usd: spot,
        shared_cpu: shared,
        confidential: rng.below(8) == 0,
        promotional: rng.below(100) == 0,
        fractional_gpu: gpus > 0.0 && gpus < 1.0,
        operator_owned: false,
        source: format!("https://pricing.example/{}", shape.name),
        observed_at: 1_750_000_000,
        from_snapshot: false,
    }
}

/// `n` synthetic offers, the same on every run.
pub fn synthetic_offers(n: usize) -> Vec<Offer> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    (0..n).map(|i| synthetic_offer(&mut rng, i)).collect()
}

/// The benchmarked questions: `(name, request, policy)`.
pub fn requests() -> Vec<(&'static str, Request, Policy)> {
    let cpu = Request {
        min_vcpus: 4.0,
        min_memory_gib: 16.0,
        geography: Some(Geography::Us),
        tier: Some(Tier::Standard),
        allow_spot: true,
        ..Request::default()
    };
    let operator = Policy {
        preferred_providers: vec!["aws".into(), "gcp".into()],
        max_cost_per_hour: Some(1.0),
        allow_spot_instances: true,
        ..Policy::default()
    };
    let gpu = Request {
        min_vcpus: 8.0,
        min_memory_gib: 32.0,
        min_gpus: 1.0,
        gpu_model: Some("NVIDIA A100".into()),
        high_availability: true,
        ..Request::default()
    };
    let gpu_policy = Policy {
        max_cost_per_hour: Some(40.0),
        mode: Mode::Preferred,
        preferred_providers: vec!["gcp".into()],
        ..Policy::default()
    };
    // Worst case: almost every offer survives and competes for the top k.
    let permissive = Policy {
        allow_spot_instances: true,
        allow_promotional: true,
        ..Policy::default()
    };
    let anything = Request {
        allow_spot: true,
        ..Request::default()
    };
    vec![
        ("rank_250k_cpu_us_spot", cpu, operator),
        ("rank_250k_gpu_a100_ha", gpu, gpu_policy),
        ("rank_250k_everything_survives", anything, permissive),
    ]
}

fn bench_rank(c: &mut Criterion) {
    let catalog = Catalog::new(synthetic_offers(OFFERS));
    let mut group = c.benchmark_group("placement");
    group.sample_size(50);
    for (name, request, policy) in requests() {
        // Sanity: a benchmark that ranks nothing measures nothing.
        let ranking = rank(&catalog, &request, &policy).expect("valid request");
        assert!(!ranking.candidates.is_empty(), "{name} found no candidate");
        group.bench_function(name, |b| {
            b.iter(|| rank(black_box(&catalog), black_box(&request), black_box(&policy)))
        });
    }
    group.finish();
}

fn bench_catalog(c: &mut Criterion) {
    let offers = synthetic_offers(OFFERS);
    let mut group = c.benchmark_group("placement");
    group.sample_size(10);
    group.bench_function("catalog_build_250k", |b| {
        // The clone is setup, not measured.
        b.iter_batched(|| offers.clone(), Catalog::new, BatchSize::LargeInput)
    });
    group.finish();
}

criterion_group!(benches, bench_rank, bench_catalog);
criterion_main!(benches);
