//! The shapes Blueprint Manager already uses, owned here and serde-compatible
//! with upstream's field names (tangle-network/blueprint at 4c85bd16:
//! `crates/blueprint-remote-providers/src/core/resources.rs` and
//! `crates/manager/src/executor/remote_provider_integration.rs`), without
//! depending on any `blueprint-*` crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One Blueprint service instance: what a service event names, and what at
/// most one live deployment is kept for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub struct ServiceKey {
    /// The Blueprint id (on chain).
    pub blueprint_id: u64,
    /// The service instance id (on chain).
    pub service_id: u64,
}

impl ServiceKey {
    /// The key of `(blueprint_id, service_id)`.
    pub fn new(blueprint_id: u64, service_id: u64) -> Self {
        Self {
            blueprint_id,
            service_id,
        }
    }
}

impl fmt::Display for ServiceKey {
    /// `<blueprint>/<service>`, as the tracker stores it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.blueprint_id, self.service_id)
    }
}

/// A stored service key that is not `<blueprint>/<service>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("service key {0:?} is not <blueprint id>/<service id>")]
pub struct BadServiceKey(pub String);

impl FromStr for ServiceKey {
    type Err = BadServiceKey;

    fn from_str(s: &str) -> Result<Self, BadServiceKey> {
        let bad = || BadServiceKey(s.to_string());
        let (b, sv) = s.split_once('/').ok_or_else(bad)?;
        Ok(Self {
            blueprint_id: b.parse().map_err(|_| bad())?,
            service_id: sv.parse().map_err(|_| bad())?,
        })
    }
}

/// What a service needs (upstream's `ResourceSpec`). Memory and storage are in
/// GB as upstream names them; the host reads them as GiB, the unit every cloud
/// catalogue prices in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResourceSpec {
    /// CPU cores (fractional allowed).
    pub cpu: f32,
    /// Memory in GB.
    pub memory_gb: f32,
    /// Storage in GB.
    pub storage_gb: f32,
    /// GPUs, when any.
    pub gpu_count: Option<u32>,
    /// Spot / preemptible capacity may be used (if the operator allows it).
    pub allow_spot: bool,
    /// Pricing parameters; not a placement input (kept for compatibility).
    #[serde(default)]
    pub qos: QosParameters,
}

impl Default for ResourceSpec {
    /// Upstream's `basic()`: 2 CPU, 4 GB, 20 GB, no GPU, no spot. What the
    /// manager passes when the chain says nothing.
    fn default() -> Self {
        Self {
            cpu: 2.0,
            memory_gb: 4.0,
            storage_gb: 20.0,
            gpu_count: None,
            allow_spot: false,
            qos: QosParameters::default(),
        }
    }
}

/// Upstream's `QosParameters` (used by its pricing engine).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QosParameters {
    /// Priority.
    pub priority: f32,
    /// SLA target.
    pub sla_target: f32,
    /// Reliability multiplier.
    pub reliability_multiplier: f32,
}

/// What to run (upstream's `DeployArtifact`, owned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum DeployArtifact {
    /// An OCI image reference.
    ContainerImage(String),
    /// A release archive holding the service's executable.
    ///
    /// The host checks `sha256_hex` against the archive's bytes before
    /// anything is unpacked, then extracts exactly one member named
    /// `binary_name` (see [`crate::workload::WorkloadSource::Archive`]).
    /// Archives run on cloud VMs: the operator's own SSH hosts take plain
    /// executables only, so placement leaves them out for an archive.
    GithubBinary {
        /// HTTP(S) URL of the `.tar.gz`, `.tgz`, `.tar.xz` or `.tar` archive.
        archive_url: String,
        /// Lower-case hex sha256 of the archive.
        sha256_hex: String,
        /// File name of the executable inside the archive.
        binary_name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_spec_reads_the_json_upstream_writes() {
        // Field names as upstream's serde derive writes them; `qos` may be absent.
        let spec: ResourceSpec = serde_json::from_str(
            r#"{"cpu":2.0,"memory_gb":4.0,"storage_gb":20.0,"gpu_count":null,"allow_spot":false}"#,
        )
        .unwrap();
        assert_eq!(spec, ResourceSpec::default());
        let with_qos = serde_json::json!({
            "cpu": 8.0, "memory_gb": 32.0, "storage_gb": 500.0, "gpu_count": 1, "allow_spot": true,
            "qos": {"priority": 1.0, "sla_target": 0.5, "reliability_multiplier": 1.5}
        });
        let spec: ResourceSpec = serde_json::from_value(with_qos.clone()).unwrap();
        assert_eq!(spec.gpu_count, Some(1));
        assert_eq!(serde_json::to_value(&spec).unwrap(), with_qos);
    }

    #[test]
    fn an_artifact_keeps_upstreams_variant_and_field_names() {
        let a = DeployArtifact::GithubBinary {
            archive_url: "https://github.com/o/r/releases/download/v1/svc.tar.gz".into(),
            sha256_hex: "ab".repeat(32),
            binary_name: "svc".into(),
        };
        let v = serde_json::to_value(&a).unwrap();
        assert!(v["GithubBinary"]["archive_url"].is_string(), "{v}");
        assert_eq!(
            serde_json::to_value(DeployArtifact::ContainerImage("ghcr.io/o/s:1".into())).unwrap(),
            serde_json::json!({"ContainerImage": "ghcr.io/o/s:1"})
        );
    }

    #[test]
    fn service_keys_round_trip_through_their_stored_form() {
        let k = ServiceKey::new(7, 42);
        assert_eq!(k.to_string(), "7/42");
        assert_eq!("7/42".parse::<ServiceKey>(), Ok(k));
        assert!("7-42".parse::<ServiceKey>().is_err());
    }
}
