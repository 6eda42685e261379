//! Compute Engine's JSON (the fields this component reads) and its mapping to
//! the WIT `instance`.
//!
//! An instance's WIT id is `<zone>/<name>`: Compute Engine addresses instances by
//! zone and name, and the host keeps only the id (its record may have no zone
//! when the offer named none), so the id carries both.

use std::collections::BTreeMap;

use provider_sdk::Error;
use provider_sdk::types::{Instance, InstanceState, ResourceRef};
use serde::Deserialize;

use crate::api::last_segment;
use crate::machine;
use crate::names;

/// A Compute Engine instance.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GceInstance {
    /// Name.
    pub name: String,
    /// Machine type URL.
    #[serde(default)]
    pub machine_type: String,
    /// `PROVISIONING`, `STAGING`, `RUNNING`, `STOPPING`, `TERMINATED`...
    #[serde(default)]
    pub status: String,
    /// Why it is in that state, when Google says.
    #[serde(default)]
    pub status_message: Option<String>,
    /// Zone URL.
    #[serde(default)]
    pub zone: String,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub creation_timestamp: Option<String>,
    /// Network interfaces; the first one carries the addresses.
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
    /// Labels as stored.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Metadata (`bpr-labels` holds the exact labels).
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Scheduling (Spot or not).
    #[serde(default)]
    pub scheduling: Option<Scheduling>,
    /// Attached GPUs (N1).
    #[serde(default)]
    pub guest_accelerators: Vec<AcceleratorConfig>,
}

/// A network interface.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    /// Internal IPv4 address.
    #[serde(rename = "networkIP", default)]
    pub network_ip: Option<String>,
    /// External IPv4 (`ONE_TO_ONE_NAT`) configs.
    #[serde(default)]
    pub access_configs: Vec<AccessConfig>,
    /// External IPv6 configs.
    #[serde(default)]
    pub ipv6_access_configs: Vec<Ipv6AccessConfig>,
}

/// An external IPv4 config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessConfig {
    /// The external address, once assigned.
    #[serde(rename = "natIP", default)]
    pub nat_ip: Option<String>,
}

/// An external IPv6 config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ipv6AccessConfig {
    /// The external IPv6 address.
    #[serde(default)]
    pub external_ipv6: Option<String>,
}

/// Instance metadata.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    /// Key/value items.
    #[serde(default)]
    pub items: Vec<MetadataItem>,
}

/// One metadata item.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MetadataItem {
    /// Key.
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: Option<String>,
}

/// Scheduling options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scheduling {
    /// `STANDARD` or `SPOT` (or others).
    #[serde(default)]
    pub provisioning_model: Option<String>,
    /// Legacy preemptible flag.
    #[serde(default)]
    pub preemptible: Option<bool>,
}

/// GPUs attached to an instance.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceleratorConfig {
    /// Accelerator type URL.
    #[serde(default)]
    pub accelerator_type: String,
    /// How many.
    #[serde(default)]
    pub accelerator_count: u32,
}

/// A page of an aggregated list: `items` keyed by `zones/<zone>`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AggregatedList<T> {
    /// Per scope.
    #[serde(default = "BTreeMap::new")]
    pub items: BTreeMap<String, T>,
    /// Next page, when there is one.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// The instances of one zone in an aggregated list.
#[derive(Debug, Default, Deserialize)]
pub struct ZoneInstances {
    /// Instances (absent when the zone has none on this page).
    #[serde(default)]
    pub instances: Vec<GceInstance>,
}

/// The machine types of one zone in an aggregated list.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ZoneMachineTypes {
    /// Machine types (absent when the zone has none on this page).
    #[serde(default)]
    pub machine_types: Vec<MachineType>,
}

/// A machine type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineType {
    /// Name.
    pub name: String,
    /// vCPUs.
    #[serde(default)]
    pub guest_cpus: f64,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mb: f64,
    /// Shared-core type.
    #[serde(default)]
    pub is_shared_cpu: bool,
    /// Built-in GPUs.
    #[serde(default)]
    pub accelerators: Vec<MachineAccelerator>,
    /// `X86_64` or `ARM64`.
    #[serde(default)]
    pub architecture: Option<String>,
    /// Zone (name or URL).
    #[serde(default)]
    pub zone: String,
}

/// A GPU built into a machine type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MachineAccelerator {
    /// Accelerator type name.
    pub guest_accelerator_type: String,
    /// How many.
    pub guest_accelerator_count: u32,
}

/// A firewall rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Firewall {
    /// Name.
    pub name: String,
    /// Description (ours records the instance and its labels).
    #[serde(default)]
    pub description: Option<String>,
    /// Network tags the rule applies to.
    #[serde(default)]
    pub target_tags: Vec<String>,
}

/// A page of firewalls.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirewallList {
    /// Firewalls on this page.
    #[serde(default)]
    pub items: Vec<Firewall>,
    /// Next page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

/// A region (its zones).
#[derive(Debug, Default, Deserialize)]
pub struct Region {
    /// Zone URLs.
    #[serde(default)]
    pub zones: Vec<String>,
}

/// The WIT id of instance `name` in `zone`.
pub fn instance_id(zone: &str, name: &str) -> String {
    format!("{zone}/{name}")
}

/// `(zone, name)` of a WIT instance id.
pub fn split_id(id: &str) -> Result<(&str, &str), Error> {
    let bad = || {
        Error::InvalidRequest(format!(
            "instance id `{id}` is not `<zone>/<name>` as the gcp provider returns it"
        ))
    };
    let (zone, name) = id.split_once('/').ok_or_else(bad)?;
    if !names::valid_name(name, 63) || !zone_name_ok(zone) {
        return Err(bad());
    }
    Ok((zone, name))
}

fn zone_name_ok(zone: &str) -> bool {
    zone.matches('-').count() >= 2
        && zone
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The region of a zone (`us-central1-a` -> `us-central1`).
pub fn region_of(zone: &str) -> &str {
    zone.rsplit_once('-').map(|(r, _)| r).unwrap_or(zone)
}

/// WIT state of a Compute Engine status. `TERMINATED` is a *stopped* instance
/// (its disks are still billed); a deleted instance answers 404 instead.
pub fn state(status: &str) -> InstanceState {
    match status {
        "PROVISIONING" | "STAGING" | "PENDING" | "REPAIRING" => InstanceState::Pending,
        "RUNNING" => InstanceState::Running,
        "STOPPING" | "SUSPENDING" | "PENDING_STOP" => InstanceState::Stopping,
        "TERMINATED" | "STOPPED" | "SUSPENDED" => InstanceState::Stopped,
        "DEPROVISIONING" => InstanceState::Terminating,
        _ => InstanceState::Unknown,
    }
}

/// The WIT instance of `g`, with `resources` (what was created with it).
pub fn to_instance(g: &GceInstance, resources: Vec<ResourceRef>) -> Instance {
    let zone = last_segment(&g.zone).to_string();
    let machine = last_segment(&g.machine_type).to_string();
    let instance_type = match g.guest_accelerators.first() {
        Some(a) => match machine::by_accelerator(last_segment(&a.accelerator_type)) {
            Some(gpu) => machine::attached_name(&machine, gpu, a.accelerator_count),
            None => machine,
        },
        None => machine,
    };
    let nic = g.network_interfaces.first();
    let exact = g.metadata.as_ref().and_then(|m| {
        m.items
            .iter()
            .find(|i| i.key == names::METADATA_LABELS)
            .and_then(|i| i.value.as_deref())
    });
    let spot = g.scheduling.as_ref().is_some_and(|s| {
        s.provisioning_model.as_deref() == Some("SPOT") || s.preemptible == Some(true)
    });
    let detail = match (&g.status_message, g.status.as_str()) {
        (Some(m), _) if !m.is_empty() => Some(format!("{}: {m}", g.status)),
        (_, "TERMINATED") => Some("TERMINATED: stopped; its disks are still billed".into()),
        _ => None,
    };
    Instance {
        id: instance_id(&zone, &g.name),
        region: region_of(&zone).to_string(),
        zone: Some(zone),
        instance_type,
        state: state(&g.status),
        public_ipv4: nic
            .and_then(|n| n.access_configs.iter().find_map(|a| a.nat_ip.clone()))
            .filter(|ip| !ip.is_empty()),
        private_ipv4: nic.and_then(|n| n.network_ip.clone()),
        public_ipv6: nic.and_then(|n| {
            n.ipv6_access_configs
                .iter()
                .find_map(|a| a.external_ipv6.clone())
        }),
        spot,
        labels: names::decode_labels(&g.labels, exact),
        resources,
        created_at: g
            .creation_timestamp
            .as_deref()
            .and_then(provider_sdk::time::parse_rfc3339),
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminated_is_stopped_not_gone() {
        assert_eq!(state("TERMINATED"), InstanceState::Stopped);
        assert_eq!(state("RUNNING"), InstanceState::Running);
        assert_eq!(state("STAGING"), InstanceState::Pending);
        assert_eq!(state("STOPPING"), InstanceState::Stopping);
        assert_eq!(state("SUSPENDED"), InstanceState::Stopped);
        assert_eq!(state("DEPROVISIONING"), InstanceState::Terminating);
        assert_eq!(state("SOMETHING_NEW"), InstanceState::Unknown);
    }

    #[test]
    fn an_instance_maps_with_addresses_labels_spot_and_its_gpu_type() {
        let g: GceInstance = serde_json::from_value(serde_json::json!({
            "id": "123", "name": "bpr-x", "status": "RUNNING",
            "zone": "https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a",
            "machineType": "https://compute.googleapis.com/compute/v1/projects/p/zones/us-central1-a/machineTypes/n1-standard-4",
            "creationTimestamp": "2024-05-01T12:00:00.000-07:00",
            "networkInterfaces": [{"networkIP": "10.0.0.2", "accessConfigs": [{"natIP": "203.0.113.9"}]}],
            "labels": {"bpr-deployment": "dep-1", "bpr-idem": "abc", "team": "a__b_2fc"},
            "scheduling": {"provisioningModel": "SPOT"},
            "guestAccelerators": [{"acceleratorType": "projects/p/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4", "acceleratorCount": 1}]
        }))
        .unwrap();
        let i = to_instance(&g, vec![]);
        assert_eq!(i.id, "us-central1-a/bpr-x");
        assert_eq!(i.region, "us-central1");
        assert_eq!(i.instance_type, "n1-standard-4+1xnvidia-tesla-t4");
        assert_eq!(i.state, InstanceState::Running);
        assert_eq!(i.public_ipv4.as_deref(), Some("203.0.113.9"));
        assert_eq!(i.private_ipv4.as_deref(), Some("10.0.0.2"));
        assert!(i.spot);
        assert_eq!(i.created_at, Some(1_714_590_000));
        assert!(i.labels.contains(&("team".into(), "a_b/c".into())));
        assert!(!i.labels.iter().any(|(k, _)| k == "bpr-idem"));
    }

    #[test]
    fn instance_ids_carry_zone_and_name_and_refuse_anything_else() {
        assert_eq!(
            split_id("us-central1-a/bpr-x").unwrap(),
            ("us-central1-a", "bpr-x")
        );
        for bad in [
            "bpr-x",
            "us-central1-a/../x",
            "us-central1-a/BPR",
            "zone/x",
            "us-central1-a/x/y",
        ] {
            assert!(split_id(bad).is_err(), "{bad}");
        }
    }
}
