//! The payment tiers: the one table of what a customer's payment buys per
//! replica. Placement reads it as a VM floor and to pick the tier that fits a
//! Kubernetes request; the Kubernetes renderer reads it for replicas, requests,
//! limits, autoscaling and GPUs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A payment tier (the seed table in `design/architecture.md`).
///
/// For VMs only the per-replica CPU and memory are used, as a floor
/// ([`Tier::vm_floor`]): an instance hosting one replica must give it what the
/// customer paid for. The tier's GPU is *not* a VM floor: whether a blueprint
/// needs a GPU is a hard requirement of the blueprint, and forcing one on every
/// premium CPU workload would multiply its cost for nothing. Replica counts are
/// not a VM concern either; high availability is its own preference.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// 1 replica, 100m CPU, 128Mi, no autoscaling. The default.
    #[default]
    Basic,
    /// 2 replicas, 500m CPU, 512Mi, autoscaling up to 5.
    Standard,
    /// 3 replicas, 2000m CPU, 4Gi, autoscaling up to 20, 1 GPU.
    Premium,
}

/// The resources and scaling a tier buys, per replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierProfile {
    /// Replicas when not autoscaled, and the autoscaler's minimum.
    pub replicas: u32,
    /// CPU request and limit, in millicores.
    pub cpu_millis: u32,
    /// Memory request and limit, in MiB.
    pub memory_mib: u32,
    /// Whether a HorizontalPodAutoscaler is created.
    pub autoscale: bool,
    /// The autoscaler's maximum.
    pub max_replicas: u32,
    /// `nvidia.com/gpu` per replica.
    pub gpus: u32,
}

impl TierProfile {
    /// vCPUs per replica.
    pub fn vcpus(&self) -> f32 {
        self.cpu_millis as f32 / 1000.0
    }

    /// Memory per replica in GiB.
    pub fn memory_gib(&self) -> f32 {
        self.memory_mib as f32 / 1024.0
    }

    /// The CPU as a Kubernetes quantity (`500m`).
    pub fn cpu_quantity(&self) -> String {
        format!("{}m", self.cpu_millis)
    }

    /// The memory as a Kubernetes quantity (`512Mi`, `4Gi`).
    pub fn memory_quantity(&self) -> String {
        if self.memory_mib.is_multiple_of(1024) {
            format!("{}Gi", self.memory_mib / 1024)
        } else {
            format!("{}Mi", self.memory_mib)
        }
    }
}

impl Tier {
    /// All tiers, cheapest first.
    pub const ALL: [Tier; 3] = [Tier::Basic, Tier::Standard, Tier::Premium];

    /// The table row of this tier.
    pub fn profile(self) -> TierProfile {
        match self {
            Tier::Basic => TierProfile {
                replicas: 1,
                cpu_millis: 100,
                memory_mib: 128,
                autoscale: false,
                max_replicas: 1,
                gpus: 0,
            },
            Tier::Standard => TierProfile {
                replicas: 2,
                cpu_millis: 500,
                memory_mib: 512,
                autoscale: true,
                max_replicas: 5,
                gpus: 0,
            },
            Tier::Premium => TierProfile {
                replicas: 3,
                cpu_millis: 2000,
                memory_mib: 4096,
                autoscale: true,
                max_replicas: 20,
                gpus: 1,
            },
        }
    }

    /// The per-instance `(vCPUs, memory GiB)` floor this tier puts on a VM.
    pub fn vm_floor(self) -> (f32, f32) {
        let p = self.profile();
        (p.vcpus(), p.memory_gib())
    }

    /// The lower-case name used in config, requests and on the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Basic => "basic",
            Tier::Standard => "standard",
            Tier::Premium => "premium",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier name that is not basic, standard or premium.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tier is `{0}`; expected basic, standard or premium")]
pub struct UnknownTier(pub String);

impl FromStr for Tier {
    type Err = UnknownTier;

    fn from_str(s: &str) -> Result<Self, UnknownTier> {
        Tier::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownTier(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_read_as_the_seed_table_writes_them() {
        let q = |t: Tier| (t.profile().cpu_quantity(), t.profile().memory_quantity());
        assert_eq!(q(Tier::Basic), ("100m".into(), "128Mi".into()));
        assert_eq!(q(Tier::Standard), ("500m".into(), "512Mi".into()));
        assert_eq!(q(Tier::Premium), ("2000m".into(), "4Gi".into()));
    }

    #[test]
    fn the_vm_floor_is_one_replica_of_the_table() {
        assert_eq!(Tier::Basic.vm_floor(), (0.1, 0.125));
        assert_eq!(Tier::Standard.vm_floor(), (0.5, 0.5));
        assert_eq!(Tier::Premium.vm_floor(), (2.0, 4.0));
    }

    #[test]
    fn tier_names_round_trip_and_an_unknown_one_says_what_is_expected() {
        for t in Tier::ALL {
            assert_eq!(t.as_str().parse::<Tier>(), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        let e = "gold".parse::<Tier>().unwrap_err().to_string();
        assert!(
            e.contains("gold") && e.contains("basic, standard or premium"),
            "{e}"
        );
    }
}
