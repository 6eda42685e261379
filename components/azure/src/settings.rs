//! Every setting the component reads (`[providers.azure.settings]`), with its
//! default, in one place: `describe.info` lists them from here.

use provider_sdk::Error;
use provider_sdk::settings as s;

use crate::bindings::exports::blueprint::provider::describe::SettingInfo;

/// Azure Resource Manager base URL.
pub const DEFAULT_ENDPOINT: &str = "https://management.azure.com";
/// Retail Prices API base URL (keyless).
pub const DEFAULT_PRICE_ENDPOINT: &str = "https://prices.azure.com";
/// Regions priced and searched when neither the query nor `regions` names any.
pub const DEFAULT_REGIONS: &str = "eastus,eastus2,westus2,westeurope,northeurope,southeastasia";
/// Ubuntu 24.04 LTS (Gen2), as `publisher:offer:sku:version`.
pub const DEFAULT_IMAGE: &str = "Canonical:ubuntu-24_04-lts:server:latest";
/// The login user (Azure refuses admin, root, user, test...).
pub const DEFAULT_ADMIN: &str = "azureuser";
/// Managed disk type of the OS disk.
pub const DEFAULT_OS_DISK_TYPE: &str = "StandardSSD_LRS";
/// Address space of the per-instance virtual network; the subnet is its first /24.
pub const DEFAULT_VNET_PREFIX: &str = "10.0.0.0/16";
/// How long one call waits for long-running operations, in ms.
pub const DEFAULT_OPERATION_WAIT_MS: u64 = 60_000;
/// How long a create waits for the VM's own operation (allocation), in ms.
pub const DEFAULT_VM_WAIT_MS: u64 = 15_000;
/// How long `list-offers` reads live prices before using the snapshot, in ms.
pub const DEFAULT_PRICE_BUDGET_MS: u64 = 15_000;

fn setting(key: &str, description: &str, default: Option<&str>) -> SettingInfo {
    SettingInfo {
        key: key.into(),
        description: description.into(),
        default_value: default.map(str::to_string),
    }
}

/// The settings, for `describe.info`.
pub fn described() -> Vec<SettingInfo> {
    vec![
        setting(
            "subscription_id",
            "Azure subscription id; required for instances and clusters (offers need none)",
            None,
        ),
        setting(
            "endpoint",
            "Azure Resource Manager base URL (tests point it at a stand-in)",
            Some(DEFAULT_ENDPOINT),
        ),
        setting(
            "price_endpoint",
            "Retail Prices API base URL (keyless)",
            Some(DEFAULT_PRICE_ENDPOINT),
        ),
        setting(
            "regions",
            "Comma list of regions to price and to search for instances",
            Some(DEFAULT_REGIONS),
        ),
        setting(
            "resource_group",
            "An existing resource group to create everything in; unset = one resource group per instance or cluster, created and deleted by this component",
            None,
        ),
        setting(
            "image",
            "VM image as publisher:offer:sku:version, or an image resource id",
            Some(DEFAULT_IMAGE),
        ),
        setting(
            "admin_username",
            "Login user of the VMs",
            Some(DEFAULT_ADMIN),
        ),
        setting(
            "ssh_public_key",
            "The operator's OpenSSH public key, installed on every VM besides the deployment's keys",
            None,
        ),
        setting(
            "os_disk_type",
            "Managed disk type of the OS disk",
            Some(DEFAULT_OS_DISK_TYPE),
        ),
        setting(
            "vnet_prefix",
            "Address space of each instance's virtual network (its subnet is the first /24)",
            Some(DEFAULT_VNET_PREFIX),
        ),
        setting(
            "kubernetes_version",
            "AKS version when the cluster spec names none; unset = Azure's default",
            None,
        ),
        setting(
            "aks_admin_group_object_ids",
            "Comma list of Entra ID group object ids made cluster admins of new AKS clusters; unset = Azure RBAC (grant the host's identity `Azure Kubernetes Service RBAC Cluster Admin`)",
            None,
        ),
        setting(
            "operation_wait_ms",
            "How long one call waits for Azure's long-running operations; a create still running then is resumed by the host's retry",
            Some("60000"),
        ),
        setting(
            "vm_wait_ms",
            "How long a create waits for the VM's allocation, so that AllocationFailed is reported as capacity-unavailable",
            Some("15000"),
        ),
        setting(
            "price_budget_ms",
            "How long list-offers reads live prices; regions not read by then come from the snapshot",
            Some("15000"),
        ),
    ]
}

/// The subscription id, or an error saying how to set it.
pub fn subscription_id() -> Result<String, Error> {
    let id = s::get("subscription_id").ok_or_else(|| {
        Error::InvalidRequest(
            "the azure provider needs its subscription: set subscription_id in [providers.azure.settings]"
                .into(),
        )
    })?;
    if crate::names::is_safe_segment(&id) {
        Ok(id)
    } else {
        Err(Error::InvalidRequest(format!(
            "subscription_id {id:?} is not a subscription id (a GUID)"
        )))
    }
}

/// A number of milliseconds from setting `key`, or `default`.
pub fn millis(key: &str, default: u64) -> u64 {
    s::get(key)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default)
}

/// The regions asked for: `asked` when not empty, else `regions`, else the default list.
pub fn regions(asked: &[String]) -> Vec<String> {
    if !asked.is_empty() {
        return asked.to_vec();
    }
    let configured = s::list("regions");
    if configured.is_empty() {
        s::split_list(DEFAULT_REGIONS)
    } else {
        configured
    }
}

/// The operator's resource group, when set.
pub fn resource_group() -> Option<String> {
    s::get("resource_group")
}
