//! Offers from the SkyPilot v8 `gcp/vms.csv` catalogue (keyless; also the format
//! of the embedded snapshot).
//!
//! Columns (found by name): `InstanceType, vCPUs, MemoryGiB, AcceleratorName,
//! AcceleratorCount, GpuInfo, Region, AvailabilityZone, Price, SpotPrice`, one row
//! per zone, USD per hour. The traps the rows hold:
//! - accelerator rows have an empty `InstanceType` and price only the GPUs (or a
//!   TPU) of that count;
//! - `a2-*`/`a3-*` rows price the host only: their built-in GPUs are added from the
//!   accelerator rows of the same region, and a type whose GPUs have no price
//!   there is left out (never offered at the host price);
//! - TPU rows use `700.0` where no price exists, and TPUs are not VMs: skipped;
//! - `SpotPrice` may be empty.
//!
//! One offer per (machine type, region): zones of a region share a price, and
//! the highest zone price is used if they ever differ (the zone is chosen at
//! create time). N1 machines with attached GPUs (T4, V100, P100, P4) are offered
//! as `n1-standard-N+<count>x<accelerator>` for every `n1-standard` type whose
//! vCPUs that GPU count allows, priced host + GPUs.

use std::collections::BTreeMap;

use provider_sdk::types::{Arch, Offer, PriceSource};

use super::csv::{Header, rows};
use crate::machine::{self, Gpu};

/// SkyPilot's "no price" sentinel.
const SENTINEL: f64 = 700.0;

/// A price: finite, positive, not the sentinel.
fn price(s: &str) -> Option<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p > 0.0 && *p != SENTINEL)
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// A VM row folded over its region's zones.
#[derive(Debug, Clone)]
struct Vm {
    vcpus: f64,
    memory: f64,
    gpu: Option<(&'static Gpu, u32)>,
    price: f64,
    spot: Option<f64>,
}

/// What a catalogue gave, and what it left out.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The offers.
    pub offers: Vec<Offer>,
    /// `type/region` of host-only rows left out for lack of a GPU price.
    pub unpriced: Vec<String>,
}

/// Offers from the CSV `text`, in `regions` (all when empty).
pub fn offers(text: &str, regions: &[String], source: &PriceSource) -> Result<Parsed, String> {
    let mut all = rows(text).into_iter();
    let header = Header::new(&all.next().ok_or("the catalogue is empty")?);
    let col = |name: &str| {
        header
            .index(name)
            .ok_or_else(|| format!("the catalogue has no `{name}` column"))
    };
    let (c_type, c_cpu, c_mem) = (col("InstanceType")?, col("vCPUs")?, col("MemoryGiB")?);
    let (c_acc, c_count) = (col("AcceleratorName")?, col("AcceleratorCount")?);
    let (c_region, c_price, c_spot) = (col("Region")?, col("Price")?, col("SpotPrice")?);
    let wanted = |r: &str| regions.is_empty() || regions.iter().any(|w| w == r);

    let mut vms: BTreeMap<(String, String), Vm> = BTreeMap::new();
    // (accelerator, count, region) -> (price, spot)
    let mut accels: BTreeMap<(&'static str, u32, String), (f64, Option<f64>)> = BTreeMap::new();
    for row in all {
        let get = |i: usize| row.get(i).map(|s| s.trim()).unwrap_or("");
        let region = get(c_region);
        if region.is_empty() || !wanted(region) {
            continue;
        }
        let Some(p) = price(get(c_price)) else {
            continue;
        };
        let spot = price(get(c_spot));
        let acc_name = get(c_acc);
        let acc_count = get(c_count).parse::<f64>().ok().filter(|n| *n >= 1.0);
        let ty = get(c_type);
        if ty.is_empty() {
            // Accelerator row; TPUs and unknown accelerators are not VM offers.
            if let (Some(gpu), Some(n)) = (machine::by_skypilot(acc_name), acc_count) {
                let e = accels
                    .entry((gpu.accelerator, n as u32, region.to_string()))
                    .or_insert((p, spot));
                e.0 = e.0.max(p);
                e.1 = max_opt(e.1, spot);
            }
            continue;
        }
        let (Some(vcpus), Some(memory)) = (
            get(c_cpu).parse::<f64>().ok().filter(|v| *v > 0.0),
            get(c_mem).parse::<f64>().ok().filter(|v| *v > 0.0),
        ) else {
            continue;
        };
        let gpu = match (machine::by_skypilot(acc_name), acc_count) {
            (Some(g), Some(n)) => Some((g, n as u32)),
            _ => machine::built_in_gpus(ty),
        };
        let e = vms
            .entry((ty.to_string(), region.to_string()))
            .or_insert(Vm {
                vcpus,
                memory,
                gpu,
                price: p,
                spot,
            });
        e.price = e.price.max(p);
        e.spot = max_opt(e.spot, spot);
    }

    let gpu_price = |gpu: &Gpu, n: u32, region: &str| -> Option<(f64, Option<f64>)> {
        accels
            .get(&(gpu.accelerator, n, region.to_string()))
            .copied()
            .or_else(|| {
                accels
                    .get(&(gpu.accelerator, 1, region.to_string()))
                    .map(|(p, s)| (p * n as f64, s.map(|s| s * n as f64)))
            })
    };
    let mut out = Parsed::default();
    for ((ty, region), vm) in &vms {
        let mut vm = vm.clone();
        if machine::skypilot_host_only(ty) {
            let Some((gpu, n)) = vm.gpu else {
                out.unpriced.push(format!("{ty}/{region}"));
                continue;
            };
            let Some((gp, gs)) = gpu_price(gpu, n, region) else {
                out.unpriced.push(format!("{ty}/{region}"));
                continue;
            };
            vm.price += gp;
            vm.spot = match (vm.spot, gs) {
                (Some(h), Some(g)) => Some(h + g),
                _ => None,
            };
        }
        out.offers.push(offer(ty, region, &vm, source));
    }
    // N1 with attached GPUs.
    for ((accel, n, region), (gp, gs)) in &accels {
        let Some(gpu) = machine::by_accelerator(accel) else {
            continue;
        };
        let Some(max_vcpus) = machine::n1_max_vcpus(gpu, *n) else {
            continue;
        };
        for ((ty, r), host) in &vms {
            if r != region || !ty.starts_with("n1-standard-") || host.vcpus > max_vcpus as f64 {
                continue;
            }
            let vm = Vm {
                vcpus: host.vcpus,
                memory: host.memory,
                gpu: Some((gpu, *n)),
                price: host.price + gp,
                spot: match (host.spot, gs) {
                    (Some(h), Some(g)) => Some(h + g),
                    _ => None,
                },
            };
            out.offers.push(offer(
                &machine::attached_name(ty, gpu, *n),
                region,
                &vm,
                source,
            ));
        }
    }
    Ok(out)
}

fn offer(ty: &str, region: &str, vm: &Vm, source: &PriceSource) -> Offer {
    let base = ty.split('+').next().unwrap_or(ty);
    Offer {
        instance_type: ty.to_string(),
        region: region.to_string(),
        zone: None,
        vcpus: vm.vcpus as f32,
        memory_gib: vm.memory as f32,
        storage_gib: None,
        gpus: vm.gpu.map(|(_, n)| n as f32).unwrap_or(0.0),
        gpu_model: vm.gpu.map(|(g, _)| g.accelerator.to_string()),
        gpu_memory_gib: vm.gpu.map(|(g, _)| g.memory_gib),
        arch: if machine::is_arm(base) {
            Arch::Arm64
        } else {
            Arch::X8664
        },
        hourly_usd: vm.price,
        spot_hourly_usd: vm.spot,
        shared_cpu: machine::is_shared_core(base),
        confidential: machine::is_confidential(base),
        promotional: false,
        source: source.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice\n";

    fn src() -> PriceSource {
        PriceSource {
            source: "test".into(),
            observed_at: 0,
            from_snapshot: false,
        }
    }

    fn find<'a>(p: &'a Parsed, ty: &str, region: &str) -> Option<&'a Offer> {
        p.offers
            .iter()
            .find(|o| o.instance_type == ty && o.region == region)
    }

    #[test]
    fn an_a2_host_row_gets_its_a100_added_and_is_dropped_without_one() {
        let csv = format!(
            "{HEADER}a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-a,0.73948,0.36975\n\
             a2-highgpu-1g,12.0,85.0,,,,us-central1,us-central1-b,0.73948,0.36975\n\
             a2-highgpu-1g,12.0,85.0,,,,asia-east1,asia-east1-a,0.9,0.4\n\
             ,,,A100,1,,us-central1,us-central1-a,2.933908,\n"
        );
        let p = offers(&csv, &[], &src()).unwrap();
        let a2 = find(&p, "a2-highgpu-1g", "us-central1").unwrap();
        assert!((a2.hourly_usd - 3.673388).abs() < 1e-9, "{}", a2.hourly_usd);
        assert_eq!(a2.spot_hourly_usd, None, "the A100 has no spot price here");
        assert_eq!(
            (a2.gpus, a2.gpu_model.as_deref()),
            (1.0, Some("nvidia-tesla-a100"))
        );
        assert!(find(&p, "a2-highgpu-1g", "asia-east1").is_none());
        assert_eq!(p.unpriced, ["a2-highgpu-1g/asia-east1"]);
    }

    #[test]
    fn tpu_rows_sentinels_and_empty_spot_prices_are_handled() {
        let csv = format!(
            "{HEADER},,,tpu-v6e-1,1,tpu-v6e-1,us-central1,us-central1-a,2.7,0.54421\n\
             n1-highmem-8,8.0,52.0,,,,us-central2,us-central2-b,0.47321,0.09962\n\
             e2-medium,2.0,4.0,,,,us-central1,us-central1-a,0.033505,\n\
             e2-small,2.0,2.0,,,,us-central1,us-central1-a,700.0,700.0\n"
        );
        let p = offers(&csv, &[], &src()).unwrap();
        assert_eq!(p.offers.len(), 2, "{:?}", p.offers);
        let n1 = find(&p, "n1-highmem-8", "us-central2").unwrap();
        assert_eq!(
            (n1.hourly_usd, n1.spot_hourly_usd),
            (0.47321, Some(0.09962))
        );
        let e2 = find(&p, "e2-medium", "us-central1").unwrap();
        assert!(e2.shared_cpu && e2.spot_hourly_usd.is_none() && e2.gpus == 0.0);
    }

    #[test]
    fn n1_types_are_offered_with_the_gpu_counts_their_vcpus_allow() {
        let csv = format!(
            "{HEADER}n1-standard-4,4.0,15.0,,,,us-central1,us-central1-a,0.19,0.04\n\
             n1-standard-16,16.0,60.0,,,,us-central1,us-central1-a,0.76,0.16\n\
             ,,,V100,1,,us-central1,us-central1-a,2.48,0.74\n\
             ,,,T4,1,,us-central1,us-central1-a,0.35,0.069\n"
        );
        let p = offers(&csv, &["us-central1".into()], &src()).unwrap();
        let t4 = find(&p, "n1-standard-4+1xnvidia-tesla-t4", "us-central1").unwrap();
        assert!((t4.hourly_usd - 0.54).abs() < 1e-9);
        assert!((t4.spot_hourly_usd.unwrap() - 0.109).abs() < 1e-9);
        assert_eq!(t4.gpus, 1.0);
        assert!(find(&p, "n1-standard-16+1xnvidia-tesla-t4", "us-central1").is_some());
        // One V100 allows at most 12 vCPUs.
        assert!(find(&p, "n1-standard-4+1xnvidia-tesla-v100", "us-central1").is_some());
        assert!(find(&p, "n1-standard-16+1xnvidia-tesla-v100", "us-central1").is_none());
    }

    #[test]
    fn regions_filter_and_a_missing_column_is_an_error() {
        let csv = format!("{HEADER}e2-medium,2.0,4.0,,,,us-east1,us-east1-b,0.03,\n");
        assert!(
            offers(&csv, &["us-central1".into()], &src())
                .unwrap()
                .offers
                .is_empty()
        );
        assert!(offers("a,b\n1,2\n", &[], &src()).is_err());
    }
}
