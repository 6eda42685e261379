//! Virtual machines: create (resource group, vnet + subnet, NSG, public IP,
//! NIC, then the VM with `deleteOption: Delete` on its OS disk, NIC and public
//! IP), read (power state from the instance view, addresses from NIC and public
//! IP), delete (the whole resource group when this component created it, else
//! every part in dependency order), and list by tags, leftovers included.
//!
//! Idempotency: every name derives from the create's idempotency key
//! ([`crate::names`]), so a retried create finds the VM (or the parts) an
//! earlier attempt made instead of making a second one.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use provider_sdk::types::{
    DeleteStatus, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState, ResourceRef,
};
use provider_sdk::{Error, log, settings as s};

use crate::arm::{
    self, Arm, COMPUTE_API, DISKS_API, NETWORK_API, Operation, Outcome, RESOURCES_API,
};
use crate::errors;
use crate::names::{self, OWNER, Place, ResourceId, TAG_INSTANCE, TAG_OWNER};
use crate::network::{self, DISK, NIC, NSG, PIP, VM, VNET, part_name};
use crate::settings::{self, DEFAULT_OPERATION_WAIT_MS, DEFAULT_VM_WAIT_MS};

/// Largest `customData` Azure takes (decoded bytes).
const MAX_CUSTOM_DATA: usize = 65_535;

/// `compute.create-instance`.
pub fn create(spec: &InstanceSpec) -> Result<Instance, Error> {
    names::check_region(&spec.region)?;
    check_size(&spec.instance_type)?;
    if spec.deployment_id.trim().is_empty() {
        return Err(Error::InvalidRequest("the deployment id is empty".into()));
    }
    let keys = ssh_keys(&spec.ssh_public_keys)?;
    if spec
        .user_data
        .as_ref()
        .is_some_and(|u| u.len() > MAX_CUSTOM_DATA)
    {
        return Err(Error::InvalidRequest(format!(
            "the cloud-init user data is {} bytes; Azure's customData holds at most {MAX_CUSTOM_DATA}",
            spec.user_data.as_ref().map(String::len).unwrap_or(0)
        )));
    }
    let image = image_reference(spec.image.as_deref())?;
    let base = names::base_name(&spec.deployment_id, &spec.idempotency_key);
    let place = Place::new(
        settings::subscription_id()?,
        settings::resource_group(),
        base,
    );
    let arm = Arm::from_settings();

    // A retried create returns what the first attempt made.
    if let Some(existing) = read(&arm, &place)? {
        log::info(&format!("create retried: VM {} already exists", place.base));
        return Ok(existing);
    }

    names::check_operator_group(&arm, &place)?;
    let deadline = arm::deadline("operation_wait_ms", DEFAULT_OPERATION_WAIT_MS);
    let tags = names::tags(
        &spec.labels,
        &spec.deployment_id,
        (TAG_INSTANCE, &place.base),
        false,
    )?;
    let made = build(&arm, spec, &place, &tags, &keys, &image, deadline);
    match made {
        Ok(instance) => Ok(instance),
        // The retry (same key) resumes where this attempt stopped.
        Err(e) if errors::is_retryable(&e) => Err(e),
        Err(e) => {
            let cleanup_deadline = arm::deadline("operation_wait_ms", DEFAULT_OPERATION_WAIT_MS);
            let note = match remove(&arm, &place, cleanup_deadline) {
                Ok(DeleteStatus::Deleted) => "everything it created was deleted again".to_string(),
                Ok(DeleteStatus::InProgress) => format!(
                    "what it created is being deleted (resource group {}, resources named {}-*)",
                    place.group, place.base
                ),
                Err(c) => format!(
                    "cleaning up failed ({}); delete resource group {} or the resources named {}-* by hand",
                    provider_sdk::errors::message(&c),
                    place.group,
                    place.base
                ),
            };
            Err(errors::with_note(e, &note))
        }
    }
}

/// What one resource needs before the next step can use it.
enum Pending {
    Done,
    Operation(Operation),
    /// Started by an earlier attempt: follow its `provisioningState`.
    Resource,
}

/// Creates (or finds) the resource at `path`: a resource that exists and
/// succeeded is kept as it is; a failed or missing one is PUT.
fn ensure(arm: &Arm, path: &str, api: &str, body: &Value, what: &str) -> Result<Pending, Error> {
    if let Some(doc) = arm.get(path, api, what)? {
        match arm::provisioning_state(&doc) {
            None | Some("Succeeded") => return Ok(Pending::Done),
            state if arm::in_progress(state) => return Ok(Pending::Resource),
            _ => {}
        }
    }
    let (doc, op) = arm.put(path, api, body, what)?;
    Ok(if !op.is_empty() {
        Pending::Operation(op)
    } else if arm::in_progress(arm::provisioning_state(&doc)) {
        Pending::Resource
    } else {
        Pending::Done
    })
}

/// Waits until `pending` succeeded; a failure is the operation's error, a
/// deadline is `transient` (the host's retry resumes).
fn finish(
    arm: &Arm,
    pending: Pending,
    path: &str,
    api: &str,
    deadline: u64,
    what: &str,
) -> Result<(), Error> {
    let still = || {
        Error::Transient(format!(
            "{what}: still provisioning when this call's wait ended (setting operation_wait_ms); a retry of the same create resumes it"
        ))
    };
    match pending {
        Pending::Done => Ok(()),
        Pending::Operation(op) => match arm.wait(&op, deadline, what)? {
            Outcome::Succeeded => Ok(()),
            Outcome::Failed(err) => Err(errors::from_operation(&err, what)),
            Outcome::Running => Err(still()),
        },
        Pending::Resource => match arm.wait_resource(path, api, deadline, what)? {
            None => Err(Error::Transient(format!(
                "{what}: the resource disappeared while provisioning"
            ))),
            Some(doc) => match arm::provisioning_state(&doc) {
                None | Some("Succeeded") => Ok(()),
                state if arm::in_progress(state) => Err(still()),
                Some(other) => Err(Error::Other(format!("{what}: provisioningState {other}"))),
            },
        },
    }
}

#[allow(clippy::too_many_arguments, reason = "one private step of create")]
fn build(
    arm: &Arm,
    spec: &InstanceSpec,
    place: &Place,
    tags: &Map<String, Value>,
    keys: &[String],
    image: &Value,
    deadline: u64,
) -> Result<Instance, Error> {
    let region = spec.region.as_str();
    let base = place.base.as_str();
    if place.owned_group {
        let mut group_tags = tags.clone();
        group_tags.insert(TAG_OWNER.into(), Value::String(OWNER.into()));
        let what = format!("creating resource group {}", place.group);
        let path = place.group_id();
        let (_, op) = arm.put(
            &path,
            RESOURCES_API,
            &json!({ "location": region, "tags": group_tags }),
            &what,
        )?;
        finish(
            arm,
            Pending::Operation(op),
            &path,
            RESOURCES_API,
            deadline,
            &what,
        )?;
    }
    let zone = zone_of(spec.zone.as_deref());
    let prefix = s::get_or("vnet_prefix", settings::DEFAULT_VNET_PREFIX);
    let parts = [
        (VNET, network::vnet_body(region, tags, &prefix)?),
        (NSG, network::nsg_body(region, tags, &spec.open_ports)?),
        (PIP, network::pip_body(region, tags, zone.as_deref())),
    ];
    // The three are independent: start them all, then wait for all.
    let mut started = Vec::new();
    for (kind, body) in &parts {
        let path = place.resource_id(kind, &part_name(base, kind));
        let what = format!("creating {} {}", short(kind), part_name(base, kind));
        let pending = ensure(arm, &path, NETWORK_API, body, &what)?;
        started.push((pending, path, what));
    }
    for (pending, path, what) in started {
        finish(arm, pending, &path, NETWORK_API, deadline, &what)?;
    }
    let vnet_id = place.resource_id(VNET, &part_name(base, VNET));
    let nic_path = place.resource_id(NIC, &part_name(base, NIC));
    let nic = network::nic_body(
        region,
        tags,
        &format!("{vnet_id}/subnets/{}", network::SUBNET),
        &place.resource_id(PIP, &part_name(base, PIP)),
        &place.resource_id(NSG, &part_name(base, NSG)),
    );
    let what = format!("creating network interface {}", part_name(base, NIC));
    let pending = ensure(arm, &nic_path, NETWORK_API, &nic, &what)?;
    finish(arm, pending, &nic_path, NETWORK_API, deadline, &what)?;

    let vm_path = place.resource_id(VM, base);
    let body = vm_body(spec, place, tags, keys, image, zone.as_deref())?;
    let what = format!(
        "creating VM {base} ({} in {region}{})",
        spec.instance_type,
        if spec.spot { ", spot" } else { "" }
    );
    let (_, op) = arm.put(&vm_path, COMPUTE_API, &body, &what)?;
    // Allocation fails within seconds when it fails: wait a little, so that
    // AllocationFailed comes back as capacity-unavailable from this call.
    let vm_deadline = deadline.min(arm::deadline("vm_wait_ms", DEFAULT_VM_WAIT_MS));
    if let Outcome::Failed(err) = arm.wait(&op, vm_deadline, &what)? {
        return Err(errors::from_operation(&err, &what));
    }
    read(arm, place)?.ok_or_else(|| {
        Error::Transient(format!(
            "VM {base} was accepted but cannot be read yet; a retry of the same create returns it"
        ))
    })
}

/// The body of `PUT virtualMachines/{name}`.
fn vm_body(
    spec: &InstanceSpec,
    place: &Place,
    tags: &Map<String, Value>,
    keys: &[String],
    image: &Value,
    zone: Option<&str>,
) -> Result<Value, Error> {
    let base = place.base.as_str();
    let admin = s::get_or("admin_username", settings::DEFAULT_ADMIN);
    let public_keys: Vec<Value> = keys
        .iter()
        .map(|k| json!({ "path": format!("/home/{admin}/.ssh/authorized_keys"), "keyData": k }))
        .collect();
    let mut os_disk = json!({
        "name": part_name(base, DISK),
        "createOption": "FromImage",
        "managedDisk": { "storageAccountType": s::get_or("os_disk_type", settings::DEFAULT_OS_DISK_TYPE) },
        "deleteOption": "Delete",
    });
    if spec.disk_gib > 0 {
        os_disk["diskSizeGB"] = json!(spec.disk_gib);
    }
    let mut os_profile = json!({
        "computerName": base,
        "adminUsername": admin,
        "linuxConfiguration": {
            "disablePasswordAuthentication": true,
            "ssh": { "publicKeys": public_keys },
        },
    });
    if let Some(ud) = &spec.user_data {
        os_profile["customData"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ud.as_bytes()));
    }
    let mut properties = json!({
        "hardwareProfile": { "vmSize": spec.instance_type },
        "storageProfile": { "imageReference": image, "osDisk": os_disk },
        "osProfile": os_profile,
        "networkProfile": {
            "networkInterfaces": [{
                "id": place.resource_id(NIC, &part_name(base, NIC)),
                "properties": { "primary": true, "deleteOption": "Delete" },
            }],
        },
    });
    if spec.spot {
        // -1: pay up to the on-demand price, never evicted for price.
        properties["priority"] = json!("Spot");
        properties["evictionPolicy"] = json!("Delete");
        properties["billingProfile"] = json!({ "maxPrice": -1 });
    }
    let mut body = json!({ "location": spec.region, "tags": tags, "properties": properties });
    if let Some(z) = zone {
        body["zones"] = json!([z]);
    }
    Ok(body)
}

/// `compute.get-instance`.
pub fn get(target: &InstanceRef) -> Result<Instance, Error> {
    let id = ResourceId::parse(&target.id, VM, "VM")?;
    let arm = Arm::from_settings();
    read(&arm, &id.place())?.ok_or_else(|| {
        Error::NotFound(format!(
            "VM {} not found in resource group {}",
            id.name, id.group
        ))
    })
}

/// The VM of `place` with its state and addresses; `None` when it does not exist.
fn read(arm: &Arm, place: &Place) -> Result<Option<Instance>, Error> {
    let path = format!(
        "{}?$expand=instanceView",
        place.resource_id(VM, &place.base)
    );
    let what = format!("reading VM {}", place.base);
    let Some(doc) = arm.get(&path, COMPUTE_API, &what)? else {
        return Ok(None);
    };
    let mut instance = instance_from_vm(&doc, place);
    let (private, public) = addresses(arm, &doc)?;
    instance.private_ipv4 = private;
    instance.public_ipv4 = public;
    Ok(Some(instance))
}

/// Private and public IPv4 of the VM's primary NIC (either may be unassigned yet).
fn addresses(arm: &Arm, vm: &Value) -> Result<(Option<String>, Option<String>), Error> {
    let Some(nic_id) = vm
        .pointer("/properties/networkProfile/networkInterfaces/0/id")
        .and_then(Value::as_str)
    else {
        return Ok((None, None));
    };
    let nic_id = ResourceId::parse(nic_id, NIC, "network interface")?;
    let path = nic_id.place().resource_id(NIC, &nic_id.name);
    let Some(nic) = arm.get(&path, NETWORK_API, "reading the VM's network interface")? else {
        return Ok((None, None));
    };
    let config = nic.pointer("/properties/ipConfigurations/0/properties");
    let private = config
        .and_then(|c| c.get("privateIPAddress"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let Some(pip_id) = config
        .and_then(|c| c.pointer("/publicIPAddress/id"))
        .and_then(Value::as_str)
    else {
        return Ok((private, None));
    };
    let pip_id = ResourceId::parse(pip_id, PIP, "public IP address")?;
    let path = pip_id.place().resource_id(PIP, &pip_id.name);
    let public = arm
        .get(&path, NETWORK_API, "reading the VM's public IP address")?
        .and_then(|p| {
            p.pointer("/properties/ipAddress")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    Ok((private, public))
}

/// The WIT instance of a VM document (addresses filled in by the caller).
pub fn instance_from_vm(doc: &Value, place: &Place) -> Instance {
    let (state, detail) = state_of(doc);
    let props = doc.get("properties");
    Instance {
        id: place.resource_id(VM, &place.base),
        region: doc
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        zone: doc
            .pointer("/zones/0")
            .and_then(Value::as_str)
            .map(str::to_string),
        instance_type: doc
            .pointer("/properties/hardwareProfile/vmSize")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        state,
        public_ipv4: None,
        private_ipv4: None,
        public_ipv6: None,
        spot: props
            .and_then(|p| p.get("priority"))
            .and_then(Value::as_str)
            .is_some_and(|p| p.eq_ignore_ascii_case("spot") || p.eq_ignore_ascii_case("low")),
        labels: names::labels_from_tags(doc.get("tags")),
        resources: parts_of(place),
        created_at: props
            .and_then(|p| p.get("timeCreated"))
            .and_then(Value::as_str)
            .and_then(provider_sdk::time::parse_rfc3339),
        detail,
    }
}

/// Lifecycle state from `provisioningState` and the instance view's
/// `PowerState/*` status, with a detail for failures.
pub fn state_of(doc: &Value) -> (InstanceState, Option<String>) {
    let provisioning = arm::provisioning_state(doc);
    let statuses: Vec<&Value> = doc
        .pointer("/properties/instanceView/statuses")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    fn code<'a>(s: &&'a Value) -> &'a str {
        s.get("code").and_then(Value::as_str).unwrap_or_default()
    }
    let power = statuses
        .iter()
        .find_map(|s| code(s).strip_prefix("PowerState/"));
    match provisioning {
        Some("Failed") => {
            let detail = statuses
                .iter()
                .find(|s| code(s).starts_with("ProvisioningState/failed"))
                .map(|s| {
                    let c = code(s).trim_start_matches("ProvisioningState/failed/");
                    let msg = s
                        .get("message")
                        .or_else(|| s.get("displayStatus"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    format!("{c}: {msg}")
                })
                .unwrap_or_else(|| "provisioning failed".into());
            return (InstanceState::Failed, Some(detail));
        }
        Some("Deleting") => return (InstanceState::Terminating, None),
        Some("Creating") => return (InstanceState::Pending, None),
        _ => {}
    }
    let state = match power {
        Some("running") => InstanceState::Running,
        Some("starting") => InstanceState::Pending,
        Some("stopping" | "deallocating") => InstanceState::Stopping,
        Some("stopped" | "deallocated") => InstanceState::Stopped,
        Some(_) => InstanceState::Unknown,
        None if arm::in_progress(provisioning) => InstanceState::Pending,
        None => InstanceState::Unknown,
    };
    (state, power.map(|p| format!("PowerState/{p}")))
}

/// The resources an instance consists of, by their deterministic ids.
fn parts_of(place: &Place) -> Vec<ResourceRef> {
    let mut out = Vec::new();
    if place.owned_group {
        out.push(ResourceRef {
            kind: "resource-group".into(),
            id: place.group_id(),
        });
    }
    for (kind, label) in [
        (VNET, "virtual-network"),
        (NSG, "network-security-group"),
        (PIP, "public-ip"),
        (NIC, "network-interface"),
        (DISK, "disk"),
    ] {
        out.push(ResourceRef {
            kind: label.into(),
            id: place.resource_id(kind, &part_name(&place.base, kind)),
        });
    }
    out
}

/// `compute.delete-instance`.
/// An empty id deletes every create of the deployment named by the
/// `bpr-deployment` label in `target.region`, VM or leftovers (wit/provider.wit).
pub fn delete(target: &InstanceRef) -> Result<DeleteStatus, Error> {
    let arm = Arm::from_settings();
    let deadline = arm::deadline("operation_wait_ms", DEFAULT_OPERATION_WAIT_MS);
    if target.id.is_empty() {
        return delete_deployment(&arm, target, deadline);
    }
    let id = ResourceId::parse(&target.id, VM, "VM")?;
    remove(&arm, &id.place(), deadline)
}

/// `delete-instance` with an empty id: [`remove`] for every create of the
/// deployment in `target.region`; `in-progress` until none is left.
fn delete_deployment(
    arm: &Arm,
    target: &InstanceRef,
    deadline: u64,
) -> Result<DeleteStatus, Error> {
    let deployment = target
        .labels
        .iter()
        .find(|(k, v)| k == names::TAG_DEPLOYMENT && !v.is_empty())
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            Error::InvalidRequest(
                "delete-instance with an empty id needs the bpr-deployment label naming the deployment whose leftovers to delete".into(),
            )
        })?;
    let query = InstanceQuery {
        regions: vec![target.region.clone()],
        labels: vec![(names::TAG_DEPLOYMENT.to_string(), deployment)],
    };
    let mut status = DeleteStatus::Deleted;
    for (place, _, _, _) in places(arm, &query)? {
        if remove(arm, &place, deadline)? == DeleteStatus::InProgress {
            status = DeleteStatus::InProgress;
        }
    }
    if status == DeleteStatus::Deleted && !places(arm, &query)?.is_empty() {
        status = DeleteStatus::InProgress;
    }
    Ok(status)
}

/// Delete everything of `place`: its own resource group when this component
/// created it for this instance, else each part in dependency order.
fn remove(arm: &Arm, place: &Place, deadline: u64) -> Result<DeleteStatus, Error> {
    let what = format!("reading resource group {}", place.group);
    let Some(group) = arm.get(&place.group_id(), RESOURCES_API, &what)? else {
        // No group, nothing in it.
        return Ok(DeleteStatus::Deleted);
    };
    let tags = group.get("tags");
    let ours = names::tag(tags, TAG_OWNER) == Some(OWNER)
        && names::tag(tags, TAG_INSTANCE) == Some(place.base.as_str());
    if ours {
        delete_group(arm, place, &group, deadline)
    } else {
        delete_parts(arm, place, deadline)
    }
}

/// Delete a resource group this component created (Azure deletes what is in it).
pub fn delete_group(
    arm: &Arm,
    place: &Place,
    group: &Value,
    deadline: u64,
) -> Result<DeleteStatus, Error> {
    if arm::provisioning_state(group) == Some("Deleting") {
        return Ok(DeleteStatus::InProgress);
    }
    let what = format!("deleting resource group {}", place.group);
    let Some(op) = arm.delete(&place.group_id(), RESOURCES_API, &what)? else {
        return Ok(DeleteStatus::Deleted);
    };
    match arm.wait(&op, deadline, &what)? {
        Outcome::Succeeded => {
            let gone = arm.get(&place.group_id(), RESOURCES_API, &what)?.is_none();
            Ok(if gone {
                DeleteStatus::Deleted
            } else {
                DeleteStatus::InProgress
            })
        }
        Outcome::Running => Ok(DeleteStatus::InProgress),
        Outcome::Failed(err) => Err(errors::from_operation(&err, &what)),
    }
}

/// The API version of a part's resource provider.
fn api_of(kind: &str) -> &'static str {
    match kind {
        DISK => DISKS_API,
        VM => COMPUTE_API,
        _ => NETWORK_API,
    }
}

/// A short name of a resource kind for messages.
fn short(kind: &str) -> &'static str {
    match kind {
        VNET => "virtual network",
        NSG => "network security group",
        PIP => "public IP address",
        NIC => "network interface",
        DISK => "disk",
        _ => "VM",
    }
}

/// Delete the VM, then whatever its `deleteOption`s left, in dependency order
/// (NIC before its public IP, NSG and subnet). `in-progress` while a part is
/// still being deleted or still in use.
fn delete_parts(arm: &Arm, place: &Place, deadline: u64) -> Result<DeleteStatus, Error> {
    let base = place.base.as_str();
    let vm_path = place.resource_id(VM, base);
    let what = format!("deleting VM {base}");
    if let Some(vm) = arm.get(&vm_path, COMPUTE_API, &what)? {
        if arm::provisioning_state(&vm) == Some("Deleting") {
            return Ok(DeleteStatus::InProgress);
        }
        let path = format!("{vm_path}?forceDeletion=false");
        if let Some(op) = arm.delete(&path, COMPUTE_API, &what)? {
            match arm.wait(&op, deadline, &what)? {
                Outcome::Succeeded => {}
                Outcome::Running => return Ok(DeleteStatus::InProgress),
                Outcome::Failed(err) => return Err(errors::from_operation(&err, &what)),
            }
        }
    }
    for kind in [NIC, PIP, DISK, NSG, VNET] {
        let name = part_name(base, kind);
        let what = format!("deleting {} {name}", short(kind));
        let path = place.resource_id(kind, &name);
        let op = match arm.delete(&path, api_of(kind), &what) {
            Ok(None) => continue,
            Ok(Some(op)) => op,
            // Still attached to something being deleted: next call.
            Err(Error::Transient(m)) => {
                log::debug(&m);
                return Ok(DeleteStatus::InProgress);
            }
            Err(e) => return Err(e),
        };
        match arm.wait(&op, deadline, &what)? {
            Outcome::Succeeded => {}
            Outcome::Running => return Ok(DeleteStatus::InProgress),
            Outcome::Failed(err) => return Err(errors::from_operation(&err, &what)),
        }
    }
    Ok(DeleteStatus::Deleted)
}

/// `compute.list-instances`: every instance whose resources carry all
/// `query.labels`, from the resource groups this component created and the
/// operator's `resource_group`. A create that stopped before its VM existed,
/// or whose VM is gone while parts stayed, is listed too, as the leftovers
/// convention of wit/provider.wit says: an empty id, state `terminated`, the
/// deployment's labels and the parts (delete-instance with an empty id
/// removes them).
pub fn list(query: &InstanceQuery) -> Result<Vec<Instance>, Error> {
    let arm = Arm::from_settings();
    let mut out = Vec::new();
    for (place, location, deleting, labels) in places(&arm, query)? {
        match read(&arm, &place)? {
            Some(i) => out.push(i),
            None => out.push(leftover(&place, &location, deleting, &labels)),
        }
    }
    Ok(out)
}

/// A create found by [`places`]: its place, location, whether its own group
/// is being deleted, and the labels its tags carry.
type Found = (Place, String, bool, Vec<(String, String)>);

/// Every create whose resources carry all `query.labels`, in its regions (all
/// configured when none).
fn places(arm: &Arm, query: &InstanceQuery) -> Result<Vec<Found>, Error> {
    let subscription = settings::subscription_id()?;
    let regions: Vec<String> = if query.regions.is_empty() {
        s::list("regions")
    } else {
        query.regions.clone()
    };
    // (group, instance name, location, group being deleted, labels)
    type Entry = (String, String, String, bool, Vec<(String, String)>);
    let mut found: Vec<Entry> = Vec::new();
    // Azure filters groups by one tag; the rest is checked here.
    let groups: Vec<Value> = arm.list(
        &format!(
            "/subscriptions/{subscription}/resourcegroups?$filter={}",
            provider_sdk::http::percent_encode(&format!(
                "tagName eq '{TAG_OWNER}' and tagValue eq '{OWNER}'"
            ))
        ),
        RESOURCES_API,
        "listing resource groups",
    )?;
    for g in &groups {
        let tags = g.get("tags");
        if names::tag(tags, TAG_OWNER) != Some(OWNER) || !names::has_labels(tags, &query.labels) {
            continue;
        }
        let (Some(name), Some(instance)) = (
            g.get("name").and_then(Value::as_str),
            names::tag(tags, TAG_INSTANCE),
        ) else {
            continue;
        };
        found.push((
            name.to_string(),
            instance.to_string(),
            g.get("location")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            arm::provisioning_state(g) == Some("Deleting"),
            names::labels_from_tags(tags),
        ));
    }
    if let Some(group) = settings::resource_group() {
        if !names::is_safe_segment(&group) {
            return Err(Error::InvalidRequest(format!(
                "resource_group {group:?} is not a resource group name"
            )));
        }
        let resources: Vec<Value> = arm.list(
            &format!("/subscriptions/{subscription}/resourceGroups/{group}/resources"),
            RESOURCES_API,
            &format!("listing the resources of resource group {group}"),
        )?;
        for r in &resources {
            let tags = r.get("tags");
            let Some(instance) = names::tag(tags, TAG_INSTANCE) else {
                continue;
            };
            if !names::has_labels(tags, &query.labels)
                || found
                    .iter()
                    .any(|(g, i, _, _, _)| g == &group && i == instance)
            {
                continue;
            }
            found.push((
                group.clone(),
                instance.to_string(),
                r.get("location")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                false,
                names::labels_from_tags(tags),
            ));
        }
    }
    let mut out = Vec::new();
    for (group, instance, location, deleting, labels) in found {
        if !regions.is_empty() && !regions.iter().any(|r| r.eq_ignore_ascii_case(&location)) {
            continue;
        }
        if !names::is_safe_segment(&group) || !names::is_safe_segment(&instance) {
            continue;
        }
        let place = Place {
            subscription: subscription.clone(),
            owned_group: group == instance,
            group,
            base: instance,
        };
        out.push((place, location, deleting, labels));
    }
    Ok(out)
}

/// The stand-in instance of a create that left parts but no VM.
fn leftover(
    place: &Place,
    location: &str,
    deleting: bool,
    labels: &[(String, String)],
) -> Instance {
    Instance {
        id: String::new(),
        region: location.to_string(),
        zone: None,
        instance_type: String::new(),
        state: InstanceState::Terminated,
        public_ipv4: None,
        private_ipv4: None,
        public_ipv6: None,
        spot: false,
        labels: labels.to_vec(),
        resources: parts_of(place),
        created_at: None,
        detail: Some(format!(
            "no VM: parts of a create that did not finish or outlived its VM (resource group {}, names {}-*{}); delete-instance with an empty id removes them",
            place.group,
            place.base,
            if deleting { ", being deleted" } else { "" }
        )),
    }
}

/// A VM size name (`Standard_D2s_v5`).
fn check_size(size: &str) -> Result<(), Error> {
    if !size.is_empty()
        && size.len() <= 64
        && size.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "`{size}` is not an Azure VM size (e.g. Standard_D2s_v5)"
        )))
    }
}

/// The zone number of an offer's zone (`1`, or `eastus-1`).
fn zone_of(zone: Option<&str>) -> Option<String> {
    let z = zone?.trim();
    let digits = z.rsplit(['-', '_']).next().unwrap_or(z);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.to_string())
}

/// The SSH keys to install: the deployment's and the operator's
/// (`ssh_public_key`), each an OpenSSH public key line, without duplicates.
fn ssh_keys(from_spec: &[String]) -> Result<Vec<String>, Error> {
    let mut keys: Vec<String> = Vec::new();
    let operator = s::get("ssh_public_key");
    for (i, line) in from_spec.iter().chain(operator.iter()).enumerate() {
        let line = line.trim().to_string();
        let mut fields = line.split_whitespace();
        let kind = fields.next().unwrap_or_default();
        let blob = fields.next().unwrap_or_default();
        let known = kind == "ssh-rsa"
            || kind == "ssh-ed25519"
            || kind.starts_with("ecdsa-sha2-")
            || kind.starts_with("sk-");
        let decodes = base64::engine::general_purpose::STANDARD
            .decode(blob)
            .is_ok_and(|b| b.len() > 4);
        if !known || !decodes {
            return Err(Error::InvalidRequest(format!(
                "SSH public key #{} is not an OpenSSH public key line (`ssh-ed25519 AAAA... comment`)",
                i + 1
            )));
        }
        if !keys.contains(&line) {
            keys.push(line);
        }
    }
    if keys.is_empty() {
        return Err(Error::InvalidRequest(
            "an Azure Linux VM needs an SSH public key (password login is disabled): pass one with the deployment or set ssh_public_key in [providers.azure.settings]"
                .into(),
        ));
    }
    Ok(keys)
}

/// `imageReference` of `publisher:offer:sku:version`, or `{id}` of an image
/// resource id; the spec's image, else the `image` setting, else Ubuntu 24.04.
fn image_reference(requested: Option<&str>) -> Result<Value, Error> {
    let image = requested
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .or_else(|| s::get("image"))
        .unwrap_or_else(|| settings::DEFAULT_IMAGE.to_string());
    if image.starts_with("/subscriptions/") {
        return Ok(json!({ "id": image }));
    }
    let parts: Vec<&str> = image.split(':').collect();
    if parts.len() == 4 && parts.iter().all(|p| !p.is_empty()) {
        return Ok(json!({
            "publisher": parts[0], "offer": parts[1], "sku": parts[2], "version": parts[3],
        }));
    }
    Err(Error::InvalidRequest(format!(
        "image `{image}` is neither publisher:offer:sku:version (e.g. {}) nor an image resource id",
        settings::DEFAULT_IMAGE
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(provisioning: &str, statuses: Value) -> Value {
        json!({
            "location": "eastus",
            "tags": { "bpr-deployment": "d1", "bpr-instance": "bpr-d1-00000001" },
            "properties": {
                "provisioningState": provisioning,
                "hardwareProfile": { "vmSize": "Standard_B1s" },
                "priority": "Spot",
                "instanceView": { "statuses": statuses },
            }
        })
    }

    #[test]
    fn power_state_comes_from_the_instance_view() {
        let running = vm(
            "Succeeded",
            json!([{"code": "ProvisioningState/succeeded"}, {"code": "PowerState/running"}]),
        );
        assert_eq!(state_of(&running).0, InstanceState::Running);
        let dealloc = vm("Succeeded", json!([{"code": "PowerState/deallocated"}]));
        assert_eq!(state_of(&dealloc).0, InstanceState::Stopped);
        let creating = vm("Creating", json!([{"code": "PowerState/running"}]));
        assert_eq!(state_of(&creating).0, InstanceState::Pending);
        let deleting = vm("Deleting", json!([]));
        assert_eq!(state_of(&deleting).0, InstanceState::Terminating);
    }

    #[test]
    fn a_failed_allocation_is_failed_with_its_code_in_the_detail() {
        let failed = vm(
            "Failed",
            json!([{
                "code": "ProvisioningState/failed/AllocationFailed",
                "level": "Error",
                "displayStatus": "Provisioning failed",
                "message": "Allocation failed. We do not have sufficient capacity."
            }]),
        );
        let (state, detail) = state_of(&failed);
        assert_eq!(state, InstanceState::Failed);
        assert!(
            detail
                .unwrap()
                .starts_with("AllocationFailed: Allocation failed.")
        );
    }

    #[test]
    fn the_instance_names_every_part_and_reads_labels_back() {
        let place = Place::new("sub".into(), None, "bpr-d1-00000001".into());
        let i = instance_from_vm(&vm("Succeeded", json!([])), &place);
        assert_eq!(
            i.id,
            "/subscriptions/sub/resourceGroups/bpr-d1-00000001/providers/Microsoft.Compute/virtualMachines/bpr-d1-00000001"
        );
        assert!(i.spot);
        assert_eq!(
            i.labels,
            vec![("bpr-deployment".to_string(), "d1".to_string())]
        );
        let kinds: Vec<&str> = i.resources.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "resource-group",
                "virtual-network",
                "network-security-group",
                "public-ip",
                "network-interface",
                "disk"
            ]
        );
    }

    #[test]
    fn zones_and_images_are_read_in_their_usual_spellings() {
        assert_eq!(zone_of(Some("2")).as_deref(), Some("2"));
        assert_eq!(zone_of(Some("eastus-3")).as_deref(), Some("3"));
        assert_eq!(zone_of(Some("eastus")), None);
        assert_eq!(zone_of(None), None);
        assert_eq!(
            image_reference(Some("Canonical:ubuntu-24_04-lts:server:latest")).unwrap()["offer"],
            "ubuntu-24_04-lts"
        );
        assert_eq!(
            image_reference(Some(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/i"
            ))
            .unwrap()["id"],
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/images/i"
        );
        assert!(image_reference(Some("ubuntu")).is_err());
    }

    #[test]
    fn vm_sizes_are_checked_before_any_request() {
        assert!(check_size("Standard_D2s_v5").is_ok());
        assert!(check_size("Standard_D2s_v5/../x").is_err());
        assert!(check_size("").is_err());
    }
}
