//! What a VM size is: vCPUs, memory and GPUs from the recorded size table
//! shipped with the component (the Retail Prices API carries none), and what
//! its name says (Arm64, burstable, confidential, promotional).

use std::collections::BTreeMap;

use provider_sdk::types::Arch;

/// `armSkuName,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount` (see
/// `snapshot/README.md` for its source).
const TABLE: &str = include_str!("../snapshot/sizes.csv");

/// The hardware of one size.
#[derive(Debug, Clone, PartialEq)]
pub struct Size {
    /// Virtual CPUs.
    pub vcpus: f32,
    /// Memory in GiB.
    pub memory_gib: f32,
    /// GPU count (0 without GPUs).
    pub gpus: f32,
    /// GPU model as recorded (`A100-80GB`, `Radeon MI25`...).
    pub gpu_model: Option<String>,
}

/// The size table by `armSkuName`. Rows that do not parse are skipped.
pub fn table() -> BTreeMap<String, Size> {
    parse(TABLE)
}

fn parse(text: &str) -> BTreeMap<String, Size> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if cols.len() < 5 {
            continue;
        }
        let (Ok(vcpus), Ok(memory)) = (cols[1].parse::<f32>(), cols[2].parse::<f32>()) else {
            continue;
        };
        let gpus = cols[4].parse::<f32>().unwrap_or(0.0);
        let model = (gpus > 0.0 && !cols[3].is_empty()).then(|| cols[3].to_string());
        out.insert(
            cols[0].to_string(),
            Size {
                vcpus,
                memory_gib: memory,
                gpus,
                gpu_model: model,
            },
        );
    }
    out
}

/// Memory per GPU when the model says it (`A100-80GB` -> 80).
pub fn gpu_memory_gib(model: &str) -> Option<f32> {
    let tail = model.rsplit('-').next()?;
    tail.strip_suffix("GB")?.parse::<f32>().ok()
}

/// `(family letters, feature letters)` of a size name:
/// `Standard_D2ps_v5` -> (`D`, `ps`), `Standard_NC24ads_A100_v4` -> (`NC`, `ads`).
fn family_and_features(sku: &str) -> (&str, &str) {
    let name = sku
        .strip_prefix("Standard_")
        .or_else(|| sku.strip_prefix("Basic_"))
        .unwrap_or(sku);
    let first = name.split('_').next().unwrap_or(name);
    let digits_at = first
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(first.len());
    let family = &first[..digits_at];
    let rest = &first[digits_at..];
    let features_at = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (family, &rest[features_at..])
}

/// Arm64 sizes carry `p` in their features (Ampere Altra / Cobalt: `D2ps_v5`, `B2pts_v2`).
pub fn arch(sku: &str) -> Arch {
    if family_and_features(sku).1.contains('p') {
        Arch::Arm64
    } else {
        Arch::X8664
    }
}

/// The B series is burstable (CPU credits).
pub fn is_burstable(sku: &str) -> bool {
    family_and_features(sku).0 == "B" && sku.starts_with("Standard_")
}

/// DC and EC series are confidential-computing sizes (SGX, SEV-SNP, TDX).
pub fn is_confidential(sku: &str) -> bool {
    matches!(family_and_features(sku).0, "DC" | "EC")
}

/// Promotional (legacy, discounted) sizes end in `_Promo`.
pub fn is_promotional(sku: &str) -> bool {
    sku.ends_with("_Promo")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_has_every_recorded_size() {
        let t = table();
        assert_eq!(t.len(), 177);
        assert_eq!(
            t["Standard_D2s_v3"],
            Size {
                vcpus: 2.0,
                memory_gib: 8.0,
                gpus: 0.0,
                gpu_model: None
            }
        );
        let a100 = &t["Standard_NC24ads_A100_v4"];
        assert_eq!(
            (a100.gpus, a100.gpu_model.as_deref()),
            (1.0, Some("A100-80GB"))
        );
        assert_eq!(gpu_memory_gib("A100-80GB"), Some(80.0));
        assert_eq!(gpu_memory_gib("T4"), None);
    }

    #[test]
    fn names_say_arch_burstable_confidential_and_promotional() {
        assert_eq!(arch("Standard_D2ps_v5"), Arch::Arm64);
        assert_eq!(arch("Standard_B2pts_v2"), Arch::Arm64);
        assert_eq!(arch("Standard_D2pls_v5"), Arch::Arm64);
        assert_eq!(arch("Standard_D2s_v5"), Arch::X8664);
        assert_eq!(arch("Standard_NP10s"), Arch::X8664);
        assert_eq!(arch("Standard_NC24ads_A100_v4"), Arch::X8664);
        assert!(is_burstable("Standard_B1s"));
        assert!(!is_burstable("Basic_A0"));
        assert!(is_confidential("Standard_DC2as_v5"));
        assert!(!is_confidential("Standard_D2as_v5"));
        assert!(is_promotional("Standard_D11_v2_Promo"));
        assert!(!is_promotional("Standard_D11_v2"));
    }
}
