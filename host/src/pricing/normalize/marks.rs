//! Marks a provider may not set itself: shared-core vCPUs and promotional
//! SKUs, by the providers' published family rules.

/// True when the machine type has shared-core or burstable vCPUs, by the
/// providers' published family rules:
/// AWS `t1`/`t2`/`t3`/`t3a`/`t4g`; GCP `e2-micro`/`e2-small`/`e2-medium`,
/// `f1-micro`, `g1-small`; Azure B-series and A0; DigitalOcean Basic (`s-`)
/// and legacy `<n>gb` slugs; Vultr `vc2`/`vhf`/`vhp`.
pub fn is_shared_core(provider: &str, instance_type: &str) -> bool {
    match provider {
        "aws" => {
            let family = instance_type.split('.').next().unwrap_or_default();
            matches!(family, "t1" | "t2" | "t3" | "t3a" | "t4g")
        }
        "gcp" | "google" => matches!(
            instance_type,
            "e2-micro" | "e2-small" | "e2-medium" | "f1-micro" | "g1-small"
        ),
        "azure" => {
            instance_type.starts_with("Standard_B")
                || instance_type == "Standard_A0"
                || instance_type == "Basic_A0"
        }
        "digitalocean" | "do" => {
            instance_type.starts_with("s-")
                || instance_type
                    .strip_suffix("gb")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                || instance_type == "512mb"
        }
        "vultr" => ["vc2-", "vhf-", "vhp-"]
            .iter()
            .any(|p| instance_type.starts_with(p)),
        _ => false,
    }
}

/// True for SKUs whose price is not a list price: Azure's legacy `_Promo`
/// sizes (very cheap in the recorded data).
pub fn is_promotional_sku(provider: &str, instance_type: &str) -> bool {
    provider == "azure" && instance_type.ends_with("_Promo")
}
