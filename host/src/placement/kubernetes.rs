//! Kubernetes clusters as placement targets: which payment tier gives every replica
//! what the request needs. Pure; the clusters themselves come from the operator's
//! config, and a cluster's price is the operator's own (no catalogue prices it).

use serde::Serialize;

use super::request::Request;
use super::tier::Tier;

/// One replica's `(vCPUs, memory GiB, GPUs)` in a tier, from the tier table
/// (the numbers the Kubernetes renderer requests and limits).
pub fn tier_resources(tier: Tier) -> (f32, f32, u32) {
    let p = tier.profile();
    (p.vcpus(), p.memory_gib(), p.gpus)
}

/// Why no tier fits a request on Kubernetes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{0}")]
pub struct NoTierFits(pub String);

/// The cheapest tier whose per-replica CPU, memory and GPUs cover the request and
/// which is at least the customer's paid tier (`request.tier`).
///
/// Requirements a tier cannot express are refused rather than ignored: a GPU model,
/// confidential computing, dedicated CPUs, an architecture (a cluster may mix
/// nodes), and more than a premium replica gets.
pub fn kubernetes_tier(request: &Request) -> Result<Tier, NoTierFits> {
    let refuse = |what: &str| {
        Err(NoTierFits(format!(
            "Kubernetes tiers do not express {what}; deploy on a VM (bpr plan without a cluster target)"
        )))
    };
    if request.gpu_model.is_some() {
        return refuse("a GPU model");
    }
    if request.confidential {
        return refuse("confidential computing");
    }
    if request.dedicated_cpu {
        return refuse("dedicated CPUs");
    }
    if request.arch.is_some() {
        return refuse("a CPU architecture");
    }
    let floor = request.tier.unwrap_or_default();
    Tier::ALL
        .into_iter()
        .filter(|t| *t >= floor)
        .find(|t| {
            let (cpu, mem, gpus) = tier_resources(*t);
            cpu >= request.min_vcpus && mem >= request.min_memory_gib && gpus as f32 >= request.min_gpus
        })
        .ok_or_else(|| {
            NoTierFits(format!(
                "{} vCPU, {} GiB, {} GPU per replica is more than the premium tier gives (2 vCPU, 4 GiB, 1 GPU); deploy on a VM",
                request.min_vcpus, request.min_memory_gib, request.min_gpus
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cpu: f32, mem: f32, gpus: f32) -> Request {
        Request {
            min_vcpus: cpu,
            min_memory_gib: mem,
            min_gpus: gpus,
            ..Request::default()
        }
    }

    #[test]
    fn the_cheapest_tier_that_covers_each_replica_is_chosen() {
        assert_eq!(kubernetes_tier(&req(0.0, 0.0, 0.0)), Ok(Tier::Basic));
        assert_eq!(kubernetes_tier(&req(0.1, 0.125, 0.0)), Ok(Tier::Basic));
        assert_eq!(kubernetes_tier(&req(0.2, 0.1, 0.0)), Ok(Tier::Standard));
        assert_eq!(kubernetes_tier(&req(0.5, 0.5, 0.0)), Ok(Tier::Standard));
        assert_eq!(kubernetes_tier(&req(1.0, 1.0, 0.0)), Ok(Tier::Premium));
        assert_eq!(kubernetes_tier(&req(0.1, 0.1, 1.0)), Ok(Tier::Premium));
    }

    #[test]
    fn the_paid_tier_is_a_floor() {
        let mut r = req(0.1, 0.1, 0.0);
        r.tier = Some(Tier::Standard);
        assert_eq!(kubernetes_tier(&r), Ok(Tier::Standard));
    }

    #[test]
    fn more_than_premium_or_an_inexpressible_requirement_is_refused_with_the_reason() {
        let e = kubernetes_tier(&req(4.0, 8.0, 0.0)).unwrap_err();
        assert!(e.0.contains("premium") && e.0.contains("VM"), "{e}");
        let e = kubernetes_tier(&req(0.0, 0.0, 2.0)).unwrap_err();
        assert!(e.0.contains("premium"), "{e}");
        let mut r = req(1.0, 1.0, 0.0);
        r.confidential = true;
        assert!(kubernetes_tier(&r).unwrap_err().0.contains("confidential"));
        let mut r = req(1.0, 1.0, 1.0);
        r.gpu_model = Some("NVIDIA A100".into());
        assert!(kubernetes_tier(&r).unwrap_err().0.contains("GPU model"));
    }
}
