//! Compute Engine instances: create (with its firewall rules), read, delete
//! (instance, boot disk and rules), list by label across zones.
//!
//! Everything a create makes is findable from the instance alone: the instance
//! is named after the idempotency key and labelled with the deployment; its boot
//! disk is deleted with it (`autoDelete`) and labelled too; its firewall rules are
//! named `<instance>-fw<i>` and record the instance and labels in their
//! description. A retried create sends the same `requestId` (Compute Engine
//! answers with the first attempt's operation) and, if that has expired, meets
//! the existing instance as a 409 and adopts it after checking its
//! idempotency label.

use provider_sdk::types::{
    DeleteStatus, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState, ResourceRef,
};
use provider_sdk::{Error, errors, log, settings};
use serde_json::{Value, json};

use crate::api::{self, Api, Outcome, query};
use crate::firewall::{self, Plan};
use crate::machine::{self, MachineSpec};
use crate::model::{
    AggregatedList, Firewall, FirewallList, GceInstance, Region, ZoneInstances, ZoneMachineTypes,
    region_of, split_id, to_instance,
};
use crate::names::{self, LABEL_IDEMPOTENCY};
use crate::operations::{self, Budget, Operation, Scope};

/// Resource kind of an insert operation still running when create returned.
pub const KIND_OPERATION: &str = "operation";
/// Instance names leave room for the `-fw<i>` of their rules.
const MAX_INSTANCE_NAME: usize = 58;
/// Default boot disk size (GiB) when the spec asks for 0.
const DEFAULT_DISK_GIB: u32 = 20;
/// Compute Engine's metadata limits.
const MAX_METADATA_VALUE: usize = 256 * 1024;
const MAX_METADATA_TOTAL: usize = 512 * 1024;
/// Pages read from one list (500 items each).
const MAX_PAGES: usize = 200;

/// Instance settings (see the component's `describe`).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Boot image override (`image` setting).
    pub image: Option<String>,
    /// Login user for `ssh-keys` (`ssh_user`, default `ubuntu`).
    pub ssh_user: String,
    /// VPC network (`network`, default `default`).
    pub network: String,
    /// Subnetwork in the instance's region (`subnetwork`).
    pub subnetwork: Option<String>,
    /// An external IPv4 address (`external_ip`, default true).
    pub external_ip: bool,
    /// Boot disk size when the spec says 0 (`disk_gib`, default 20).
    pub disk_gib: u32,
    /// Boot disk type (`disk_type`, default `pd-balanced`).
    pub disk_type: String,
}

impl Options {
    /// From the settings.
    pub fn from_settings() -> Self {
        Options {
            image: settings::get("image"),
            ssh_user: settings::get_or("ssh_user", "ubuntu"),
            network: settings::get_or("network", "default"),
            subnetwork: settings::get("subnetwork"),
            external_ip: settings::get_bool("external_ip", true),
            disk_gib: settings::get("disk_gib")
                .and_then(|v| v.parse().ok())
                .unwrap_or(DEFAULT_DISK_GIB),
            disk_type: settings::get_or("disk_type", "pd-balanced"),
        }
    }
}

/// The boot image: the spec's, else the `image` setting, else Ubuntu 24.04 LTS
/// for the machine's architecture (the `-amd64`/`-arm64` family: the bare
/// `ubuntu-2404-lts` family does not exist).
pub fn image_for(spec_image: Option<&str>, opts: &Options, machine_type: &str) -> String {
    spec_image
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .or_else(|| opts.image.clone())
        .unwrap_or_else(|| {
            let arch = if machine::is_arm(machine_type) {
                "arm64"
            } else {
                "amd64"
            };
            format!("projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-{arch}")
        })
}

/// The `ssh-keys` metadata value: one `user:key` line per key.
pub fn ssh_keys_value(user: &str, keys: &[String]) -> Result<String, Error> {
    let user_ok = !user.is_empty()
        && user.len() <= 32
        && user
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !user_ok {
        return Err(Error::InvalidRequest(format!(
            "setting `ssh_user` = `{user}` is not a Linux user name"
        )));
    }
    let mut lines = Vec::new();
    for key in keys {
        let key = key.trim();
        let fields: Vec<&str> = key.split_whitespace().collect();
        let known = fields.first().is_some_and(|t| {
            t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
        });
        if key.contains(['\n', '\r']) || fields.len() < 2 || !known {
            return Err(Error::InvalidRequest(format!(
                "SSH public key `{}` is not one OpenSSH public key line (`ssh-ed25519 AAAA... comment`)",
                key.chars().take(40).collect::<String>()
            )));
        }
        lines.push(format!("{user}:{key}"));
    }
    Ok(lines.join("\n"))
}

/// The `instances.insert` body for `spec` in `zone`. Pure: every rule Compute
/// Engine checks that can be checked here is checked here.
pub fn insert_body(
    spec: &InstanceSpec,
    machine: &MachineSpec,
    zone: &str,
    name: &str,
    project: &str,
    opts: &Options,
) -> Result<Value, Error> {
    let labels = names::encode_labels(&spec.labels, &spec.deployment_id, &spec.idempotency_key)?;
    let mut exact: std::collections::BTreeMap<&str, &str> = spec
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    exact
        .entry(names::LABEL_DEPLOYMENT)
        .or_insert(&spec.deployment_id);
    let mut metadata = vec![(names::METADATA_LABELS, json!(exact).to_string())];
    if !spec.ssh_public_keys.is_empty() {
        metadata.push((
            "ssh-keys",
            ssh_keys_value(&opts.ssh_user, &spec.ssh_public_keys)?,
        ));
    }
    if let Some(ud) = &spec.user_data {
        metadata.push(("user-data", ud.clone()));
    }
    let mut total = 0;
    for (k, v) in &metadata {
        if v.len() > MAX_METADATA_VALUE {
            return Err(Error::InvalidRequest(format!(
                "metadata `{k}` is {} bytes; Compute Engine takes at most {MAX_METADATA_VALUE} per value",
                v.len()
            )));
        }
        total += v.len();
    }
    if total >= MAX_METADATA_TOTAL {
        return Err(Error::InvalidRequest(format!(
            "the instance metadata (user data, SSH keys, labels) is {total} bytes; Compute Engine takes less than {MAX_METADATA_TOTAL}"
        )));
    }
    let disk_gib = match spec.disk_gib {
        0 => opts.disk_gib,
        n => n,
    }
    .max(10);
    let mut nic = json!({ "network": format!("global/networks/{}", opts.network) });
    if let Some(sub) = &opts.subnetwork {
        nic["subnetwork"] = json!(format!("regions/{}/subnetworks/{sub}", region_of(zone)));
    }
    if opts.external_ip {
        nic["accessConfigs"] = json!([{ "type": "ONE_TO_ONE_NAT", "name": "External NAT" }]);
    }
    let mut body = json!({
        "name": name,
        "description": format!("bpr deployment {}", spec.deployment_id),
        "machineType": format!("zones/{zone}/machineTypes/{}", machine.machine_type),
        "disks": [{
            "boot": true,
            "autoDelete": true,
            "initializeParams": {
                "sourceImage": image_for(spec.image.as_deref(), opts, &machine.machine_type),
                "diskSizeGb": disk_gib.to_string(),
                "diskType": format!("zones/{zone}/diskTypes/{}", opts.disk_type),
                "labels": labels,
            },
        }],
        "networkInterfaces": [nic],
        "metadata": {
            "items": metadata.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
        },
        "labels": labels,
        "tags": { "items": [name] },
    });
    let gpus = machine.gpus().is_some();
    if spec.spot {
        // A preempted Spot VM is deleted, not left stopped with a billed disk.
        body["scheduling"] = json!({
            "provisioningModel": "SPOT",
            "instanceTerminationAction": "DELETE",
            "onHostMaintenance": "TERMINATE",
            "automaticRestart": false,
        });
    } else if gpus {
        // GPU VMs cannot live-migrate.
        body["scheduling"] = json!({
            "provisioningModel": "STANDARD",
            "onHostMaintenance": "TERMINATE",
            "automaticRestart": true,
        });
    }
    if let Some((gpu, n)) = machine.attached {
        body["guestAccelerators"] = json!([{
            "acceleratorType": format!("projects/{project}/zones/{zone}/acceleratorTypes/{}", gpu.accelerator),
            "acceleratorCount": n,
        }]);
    }
    Ok(body)
}

/// `compute.create-instance`.
pub fn create(spec: &InstanceSpec) -> Result<Instance, Error> {
    let api = Api::from_settings();
    let project = api.project()?.to_string();
    if spec.deployment_id.trim().is_empty() || spec.idempotency_key.trim().is_empty() {
        return Err(Error::InvalidRequest(
            "an instance needs a deployment id and an idempotency key".into(),
        ));
    }
    if spec.workload.is_some() {
        log::debug("instance-spec.workload is ignored: the workload arrives as user-data");
    }
    let machine = MachineSpec::parse(&spec.instance_type)?;
    let opts = Options::from_settings();
    let name = names::resource_name(&spec.idempotency_key, MAX_INSTANCE_NAME);
    // Everything that can be refused is refused before anything exists.
    let rules = firewall::plan(&name, &spec.open_ports)?;
    let zone = match spec.zone.as_deref().filter(|z| !z.is_empty()) {
        Some(z) => {
            api::check_segment(z, "zone")?;
            if region_of(z) != spec.region {
                return Err(Error::InvalidRequest(format!(
                    "zone `{z}` is not in region `{}`",
                    spec.region
                )));
            }
            z.to_string()
        }
        None => choose_zone(&api, &spec.region, &machine.machine_type)?,
    };
    let body = insert_body(spec, &machine, &zone, &name, &project, &opts)?;
    let what = format!(
        "creating instance {name} ({} in {zone})",
        spec.instance_type
    );
    let url = format!(
        "{}{}",
        api.compute(&format!("zones/{zone}/instances"))?,
        query(&[(
            "requestId",
            &names::request_id(&format!("{}/insert/{zone}", spec.idempotency_key)),
        )])
    );
    let budget = Budget::from_settings();
    let mut resources = Vec::new();
    match api.post::<Operation>(&url, &body, &what)? {
        Outcome::Ok(op) => {
            let scope = Scope::Zone(zone.clone());
            match operations::wait(&api, &scope, op.clone(), &budget, &what) {
                Ok(Some(_)) => {}
                Ok(None) => resources.push(ResourceRef {
                    kind: KIND_OPERATION.into(),
                    id: format!("zones/{zone}/operations/{}", op.name),
                }),
                // Reported by the operation instead of a 409: never delete it.
                Err(e) if errors::message(&e).contains("RESOURCE_ALREADY_EXISTS") => {
                    adopt(&api, &zone, &name, &spec.idempotency_key, &what)?;
                }
                Err(e) => {
                    remove_failed_insert(&api, &zone, &name, &spec.idempotency_key);
                    return Err(e);
                }
            }
        }
        // An earlier attempt created it (and its requestId has expired).
        Outcome::Failed(f) if f.already_exists() => {
            adopt(&api, &zone, &name, &spec.idempotency_key, &what)?;
        }
        Outcome::Failed(f) => return Err(f.into_error()),
    }

    let instance_id = crate::model::instance_id(&zone, &name);
    let description = firewall::description(&instance_id, &spec.labels);
    for rule in &rules {
        if let Err(e) = ensure_rule(
            &api,
            rule,
            &name,
            &opts.network,
            &description,
            &spec.idempotency_key,
            &budget,
        ) {
            // A transient failure leaves the instance for the retry (same key,
            // same names); anything else must not leave it running unprotected.
            if matches!(e, Error::Transient(_) | Error::RateLimited(_)) {
                return Err(e);
            }
            let target = InstanceRef {
                id: instance_id.clone(),
                region: spec.region.clone(),
                zone: Some(zone.clone()),
                resources: vec![],
                labels: spec.labels.clone(),
            };
            let note = match delete(&target) {
                Ok(_) => "the instance is being deleted again".to_string(),
                Err(c) => format!(
                    "deleting instance {instance_id} failed too ({}); delete it by hand",
                    errors::message(&c)
                ),
            };
            return Err(with_note(
                e,
                &format!("creating firewall rule {} failed; {note}", rule.name),
            ));
        }
        resources.push(ResourceRef {
            kind: firewall::KIND.into(),
            id: rule.name.clone(),
        });
    }
    match get_gce(&api, &zone, &name)? {
        Some(g) => Ok(to_instance(&g, resources)),
        // Accepted but not visible yet: the host polls get-instance.
        None => Ok(Instance {
            id: instance_id,
            region: spec.region.clone(),
            zone: Some(zone),
            instance_type: machine.name(),
            state: InstanceState::Pending,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: spec.spot,
            labels: spec.labels.clone(),
            resources,
            created_at: None,
            detail: Some("insert accepted".into()),
        }),
    }
}

fn with_note(e: Error, note: &str) -> Error {
    let m = format!("{note}: {}", errors::message(&e));
    match e {
        Error::Unauthorized(_) => Error::Unauthorized(m),
        Error::NotFound(_) => Error::InvalidRequest(m),
        Error::QuotaExceeded(_) => Error::QuotaExceeded(m),
        Error::InvalidRequest(_) => Error::InvalidRequest(m),
        _ => Error::Other(m),
    }
}

/// Accept the existing instance `name` as this create's result when it carries
/// this create's idempotency label.
fn adopt(api: &Api, zone: &str, name: &str, key: &str, what: &str) -> Result<(), Error> {
    let existing = get_gce(api, zone, name)?.ok_or_else(|| {
        Error::Transient(format!(
            "{what}: instance {name} exists but cannot be read yet; retry"
        ))
    })?;
    if existing.labels.get(LABEL_IDEMPOTENCY) != Some(&names::idempotency_label(key)) {
        return Err(Error::InvalidRequest(format!(
            "{what}: the name {name} is taken by an instance this request did not create"
        )));
    }
    log::info(&format!(
        "{what}: the instance exists from an earlier attempt; adopting it"
    ));
    Ok(())
}

/// After an insert operation failed: the instance should not exist; if Compute
/// Engine kept one of ours anyway, delete it (best effort, logged).
fn remove_failed_insert(api: &Api, zone: &str, name: &str, key: &str) {
    if let Ok(Some(g)) = get_gce(api, zone, name)
        && g.labels.get(LABEL_IDEMPOTENCY) == Some(&names::idempotency_label(key))
    {
        let url = match api.compute(&format!("zones/{zone}/instances/{name}")) {
            Ok(u) => u,
            Err(_) => return,
        };
        if let Err(e) = api
            .delete::<Operation>(
                &url,
                &format!("deleting instance {name} after a failed insert"),
            )
            .and_then(|o| o.found())
        {
            log::warn(&format!(
                "instance {zone}/{name} survived its failed insert and could not be deleted: {}",
                errors::message(&e)
            ));
        }
    }
}

/// The zone to create `machine_type` in: the first zone of `region` (sorted)
/// that offers it.
fn choose_zone(api: &Api, region: &str, machine_type: &str) -> Result<String, Error> {
    api::check_segment(region, "region")?;
    let filter = format!("name = \"{machine_type}\"");
    let mut zones: Vec<String> = provider_sdk::paginate::collect(MAX_PAGES, |token| {
        let url = format!(
            "{}{}",
            api.compute("aggregated/machineTypes")?,
            query(&[
                ("filter", &filter),
                ("maxResults", "500"),
                ("pageToken", token.unwrap_or("")),
            ])
        );
        let page: AggregatedList<ZoneMachineTypes> = api
            .get(
                &url,
                &format!("finding the zones that offer {machine_type}"),
            )?
            .ok()?;
        let zones = page
            .items
            .into_iter()
            .filter(|(_, v)| v.machine_types.iter().any(|m| m.name == machine_type))
            .filter_map(|(k, _)| k.strip_prefix("zones/").map(str::to_string))
            .collect();
        Ok((zones, page.next_page_token))
    })?;
    if zones.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "machine type `{machine_type}` does not exist in any zone of this project"
        )));
    }
    zones.retain(|z| region_of(z) == region);
    zones.sort();
    if let Some(z) = zones.into_iter().next() {
        return Ok(z);
    }
    let url = api.compute(&format!("regions/{region}"))?;
    match api
        .get::<Region>(&url, &format!("reading region {region}"))?
        .found()?
    {
        None => Err(Error::RegionUnavailable(format!(
            "region `{region}` does not exist or is not enabled for this project"
        ))),
        Some(_) => Err(Error::CapacityUnavailable(format!(
            "machine type `{machine_type}` is not offered in any zone of {region}"
        ))),
    }
}

/// Create firewall rule `rule` (or accept the one an earlier attempt made).
fn ensure_rule(
    api: &Api,
    rule: &Plan,
    instance: &str,
    network: &str,
    description: &str,
    key: &str,
    budget: &Budget,
) -> Result<(), Error> {
    let what = format!("creating firewall rule {}", rule.name);
    let url = format!(
        "{}{}",
        api.compute("global/firewalls")?,
        query(&[(
            "requestId",
            &names::request_id(&format!("{key}/{}", rule.name)),
        )])
    );
    let body = firewall::body(rule, instance, network, description);
    match api.post::<Operation>(&url, &body, &what)? {
        Outcome::Ok(op) => {
            operations::wait(api, &Scope::Global, op, budget, &what)?;
            Ok(())
        }
        Outcome::Failed(f) if f.already_exists() => {
            let url = api.compute(&format!("global/firewalls/{}", rule.name))?;
            let fw: Option<Firewall> = api.get(&url, &format!("reading {}", rule.name))?.found()?;
            match fw {
                Some(fw) if fw.target_tags == [instance] => Ok(()),
                Some(_) => Err(Error::InvalidRequest(format!(
                    "{what}: the name is taken by a rule that does not target {instance}"
                ))),
                // Being created by the earlier attempt: its operation finishes it.
                None => Ok(()),
            }
        }
        Outcome::Failed(f) => Err(f.into_error()),
    }
}

/// The instance `name` in `zone`, `None` when Compute Engine does not know it.
fn get_gce(api: &Api, zone: &str, name: &str) -> Result<Option<GceInstance>, Error> {
    let url = api.compute(&format!("zones/{zone}/instances/{name}"))?;
    api.get(&url, &format!("reading instance {zone}/{name}"))?
        .found()
}

/// `compute.get-instance`.
pub fn get(target: &InstanceRef) -> Result<Instance, Error> {
    let api = Api::from_settings();
    let (zone, name) = split_id(&target.id)?;
    if let Some(g) = get_gce(&api, zone, name)? {
        return Ok(to_instance(&g, target.resources.clone()));
    }
    // Not there: an insert that has not finished, or one that failed.
    let prefix = format!("zones/{zone}/operations/");
    if let Some(op_path) = target
        .resources
        .iter()
        .filter(|r| r.kind == KIND_OPERATION)
        .map(|r| r.id.as_str())
        .find(|id| {
            id.strip_prefix(&prefix)
                .is_some_and(|n| api::check_segment(n, "operation").is_ok())
        })
    {
        let op: Option<Operation> = api
            .get(
                &api.compute(op_path)?,
                &format!("reading the insert of {}", target.id),
            )?
            .found()?;
        let pending = |state, detail: String| Instance {
            id: target.id.clone(),
            region: region_of(zone).to_string(),
            zone: Some(zone.to_string()),
            instance_type: String::new(),
            state,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: false,
            labels: target.labels.clone(),
            resources: target.resources.clone(),
            created_at: None,
            detail: Some(detail),
        };
        match op {
            Some(op) if !op.done() => {
                return Ok(pending(
                    InstanceState::Pending,
                    format!("insert {}", op.status),
                ));
            }
            Some(op) => {
                if let Some(e) = op.failure(&format!("creating {}", target.id)) {
                    return Ok(pending(
                        InstanceState::Failed,
                        errors::message(&e).to_string(),
                    ));
                }
            }
            None => {}
        }
    }
    Err(Error::NotFound(format!(
        "instance {} does not exist",
        target.id
    )))
}

/// The names of `instance`'s firewall rules that exist.
fn rules_of(api: &Api, instance: &str) -> Result<Vec<String>, Error> {
    let filter = format!("name eq {}", firewall::name_pattern(instance));
    list_firewalls(api, &filter).map(|fws| {
        fws.into_iter()
            .map(|f| f.name)
            .filter(|n| firewall::is_rule_of(n, instance))
            .collect()
    })
}

fn list_firewalls(api: &Api, filter: &str) -> Result<Vec<Firewall>, Error> {
    provider_sdk::paginate::collect(MAX_PAGES, |token| {
        let url = format!(
            "{}{}",
            api.compute("global/firewalls")?,
            query(&[
                ("filter", filter),
                ("maxResults", "500"),
                ("pageToken", token.unwrap_or("")),
            ])
        );
        let page: FirewallList = api.get(&url, "listing firewall rules")?.ok()?;
        Ok((page.items, page.next_page_token))
    })
}

/// Delete firewall rule `rule` (a global operation), waiting for it.
/// `key` makes the request id, so a retried delete is the same request.
fn delete_rule(api: &Api, rule: &str, key: &str, budget: &Budget) -> Result<(), Error> {
    let what = format!("deleting firewall rule {rule}");
    let url = format!(
        "{}{}",
        api.compute(&format!("global/firewalls/{rule}"))?,
        query(&[(
            "requestId",
            &names::request_id(&format!("{key}/delete/{rule}")),
        )])
    );
    if let Some(op) = api.delete::<Operation>(&url, &what)?.found()? {
        operations::wait(api, &Scope::Global, op, budget, &what)?;
    }
    Ok(())
}

/// `compute.delete-instance`: the firewall rules first (a crash in between
/// leaves an instance, which is found by its label), then the instance and its
/// boot disk. `deleted` once neither exists. An empty id deletes what the
/// deployment named by the `bpr-deployment` label left in `target.region`
/// (see [`delete_deployment`]).
pub fn delete(target: &InstanceRef) -> Result<DeleteStatus, Error> {
    if target.id.is_empty() {
        return delete_deployment(target);
    }
    let api = Api::from_settings();
    let (zone, name) = split_id(&target.id)?;
    let mut rules = rules_of(&api, name)?;
    for r in &target.resources {
        if r.kind == firewall::KIND && firewall::is_rule_of(&r.id, name) && !rules.contains(&r.id) {
            rules.push(r.id.clone());
        }
    }
    let budget = Budget::from_settings();
    for rule in &rules {
        delete_rule(&api, rule, &target.id, &budget)?;
    }
    if get_gce(&api, zone, name)?.is_some() {
        let what = format!("deleting instance {}", target.id);
        let url = format!(
            "{}{}",
            api.compute(&format!("zones/{zone}/instances/{name}"))?,
            query(&[(
                "requestId",
                &names::request_id(&format!("{}/delete", target.id)),
            )])
        );
        if let Some(op) = api.delete::<Operation>(&url, &what)?.found()? {
            operations::wait(&api, &Scope::Zone(zone.to_string()), op, &budget, &what)?;
        }
    }
    let gone = get_gce(&api, zone, name)?.is_none() && rules_of(&api, name)?.is_empty();
    Ok(if gone {
        DeleteStatus::Deleted
    } else {
        DeleteStatus::InProgress
    })
}

/// `compute.delete-instance` with an empty id: every instance of the
/// deployment named by the `bpr-deployment` label in `target.region`, then
/// the firewall rules its instances left. `in-progress` until none is left.
fn delete_deployment(target: &InstanceRef) -> Result<DeleteStatus, Error> {
    let deployment = target
        .labels
        .iter()
        .find(|(k, v)| k == names::LABEL_DEPLOYMENT && !v.is_empty())
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            Error::InvalidRequest(
                "delete-instance with an empty id needs the bpr-deployment label naming the deployment whose leftovers to delete".into(),
            )
        })?;
    let query_ = InstanceQuery {
        regions: vec![target.region.clone()],
        labels: vec![(names::LABEL_DEPLOYMENT.to_string(), deployment.clone())],
    };
    let api = Api::from_settings();
    let budget = Budget::from_settings();
    let mut status = DeleteStatus::Deleted;
    for found in list(&query_)? {
        if found.id.is_empty() {
            for r in found.resources.iter().filter(|r| r.kind == firewall::KIND) {
                delete_rule(&api, &r.id, &deployment, &budget)?;
            }
            continue;
        }
        let r = InstanceRef {
            id: found.id.clone(),
            region: found.region.clone(),
            zone: found.zone.clone(),
            resources: found.resources.clone(),
            labels: found.labels.clone(),
        };
        if delete(&r)? == DeleteStatus::InProgress {
            status = DeleteStatus::InProgress;
        }
    }
    if status == DeleteStatus::Deleted && !list(&query_)?.is_empty() {
        status = DeleteStatus::InProgress;
    }
    Ok(status)
}

/// `compute.list-instances`: every instance carrying all the labels, in the
/// regions asked (all when none), from the aggregated list; plus, per
/// deployment and region, one entry with an empty id and state `terminated`
/// for firewall rules whose instance no longer exists (wit/provider.wit:
/// delete-instance with an empty id removes them).
pub fn list(query_: &InstanceQuery) -> Result<Vec<Instance>, Error> {
    let api = Api::from_settings();
    let regions = if query_.regions.is_empty() {
        settings::list("regions")
    } else {
        query_.regions.clone()
    };
    let in_regions =
        |zone: &str| regions.is_empty() || regions.iter().any(|r| r == region_of(zone));
    let filter = names::label_filter(&query_.labels)?;
    let mut found: Vec<Instance> = provider_sdk::paginate::collect(MAX_PAGES, |token| {
        let url = format!(
            "{}{}",
            api.compute("aggregated/instances")?,
            query(&[
                ("filter", &filter),
                ("maxResults", "500"),
                ("pageToken", token.unwrap_or("")),
            ])
        );
        let page: AggregatedList<ZoneInstances> = api.get(&url, "listing instances")?.ok()?;
        let items = page
            .items
            .into_iter()
            .filter(|(scope, _)| scope.strip_prefix("zones/").is_some_and(in_regions))
            .flat_map(|(_, v)| v.instances)
            .map(|g| to_instance(&g, vec![]))
            .collect();
        Ok((items, page.next_page_token))
    })?;
    // (deployment, region) -> (labels, rules)
    type Left = (Vec<(String, String)>, Vec<ResourceRef>);
    let mut left: std::collections::BTreeMap<(String, String), Left> = Default::default();
    for fw in list_firewalls(&api, "name eq bpr-.*-fw[0-9]+")? {
        let Some((iid, labels)) = fw
            .description
            .as_deref()
            .and_then(firewall::parse_description)
        else {
            continue;
        };
        let Ok((zone, name)) = split_id(&iid) else {
            continue;
        };
        let wanted = query_.labels.iter().all(|(k, v)| labels.get(k) == Some(v));
        let known = found.iter().any(|i| i.id == iid);
        if !wanted || known || !in_regions(zone) || !firewall::is_rule_of(&fw.name, name) {
            continue;
        }
        let deployment = labels
            .get(names::LABEL_DEPLOYMENT)
            .cloned()
            .unwrap_or_default();
        let entry = left
            .entry((deployment, region_of(zone).to_string()))
            .or_insert_with(|| (labels.into_iter().collect(), Vec::new()));
        entry.1.push(ResourceRef {
            kind: firewall::KIND.into(),
            id: fw.name.clone(),
        });
    }
    for ((deployment, region), (labels, resources)) in left {
        let names: Vec<&str> = resources.iter().map(|r| r.id.as_str()).collect();
        found.push(Instance {
            id: String::new(),
            region,
            zone: None,
            instance_type: String::new(),
            state: InstanceState::Terminated,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: false,
            labels,
            detail: Some(format!(
                "firewall rule(s) {} of deployment {deployment} left without their instance; delete-instance with an empty id removes them",
                names.join(", ")
            )),
            resources,
            created_at: None,
        });
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_sdk::types::{PortRule, Protocol};

    fn opts() -> Options {
        Options {
            image: None,
            ssh_user: "ubuntu".into(),
            network: "default".into(),
            subnetwork: None,
            external_ip: true,
            disk_gib: 20,
            disk_type: "pd-balanced".into(),
        }
    }

    fn spec(instance_type: &str, spot: bool) -> InstanceSpec {
        InstanceSpec {
            deployment_id: "dep-1".into(),
            idempotency_key: "dep-1-c1".into(),
            region: "us-central1".into(),
            zone: None,
            instance_type: instance_type.into(),
            spot,
            image: None,
            disk_gib: 0,
            ssh_public_keys: vec!["ssh-ed25519 AAAAC3Nza test@bpr".into()],
            user_data: Some("#cloud-config\n".into()),
            open_ports: vec![PortRule {
                port: 22,
                end_port: None,
                protocol: Protocol::Tcp,
                source_cidrs: vec![],
            }],
            labels: vec![("bpr-deployment".into(), "dep-1".into())],
            workload: None,
        }
    }

    fn body(instance_type: &str, spot: bool) -> Value {
        let s = spec(instance_type, spot);
        let m = MachineSpec::parse(instance_type).unwrap();
        insert_body(&s, &m, "us-central1-a", "bpr-dep-1-c1", "p", &opts()).unwrap()
    }

    fn metadata(b: &Value, key: &str) -> Option<String> {
        b["metadata"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["key"] == key)
            .map(|i| i["value"].as_str().unwrap().to_string())
    }

    #[test]
    fn the_insert_body_has_the_key_user_data_labels_tag_and_a_disk_deleted_with_it() {
        let b = body("e2-medium", false);
        assert_eq!(
            b["machineType"],
            "zones/us-central1-a/machineTypes/e2-medium"
        );
        assert_eq!(
            metadata(&b, "ssh-keys").as_deref(),
            Some("ubuntu:ssh-ed25519 AAAAC3Nza test@bpr")
        );
        assert_eq!(
            metadata(&b, "user-data").as_deref(),
            Some("#cloud-config\n")
        );
        let disk = &b["disks"][0];
        assert_eq!(disk["autoDelete"], true);
        assert_eq!(disk["boot"], true);
        assert_eq!(disk["initializeParams"]["diskSizeGb"], "20");
        assert_eq!(
            disk["initializeParams"]["sourceImage"],
            "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64"
        );
        assert_eq!(b["labels"]["bpr-deployment"], "dep-1");
        assert_eq!(b["tags"]["items"], json!(["bpr-dep-1-c1"]));
        assert!(b.get("scheduling").is_none() && b.get("guestAccelerators").is_none());
    }

    #[test]
    fn spot_asks_for_spot_deleted_on_preemption() {
        let b = body("n2-standard-2", true);
        assert_eq!(
            b["scheduling"],
            json!({"provisioningModel": "SPOT", "instanceTerminationAction": "DELETE",
                   "onHostMaintenance": "TERMINATE", "automaticRestart": false})
        );
    }

    #[test]
    fn n1_with_a_t4_attaches_it_and_a2_brings_its_own() {
        let n1 = body("n1-standard-4+1xnvidia-tesla-t4", false);
        assert_eq!(
            n1["machineType"],
            "zones/us-central1-a/machineTypes/n1-standard-4"
        );
        assert_eq!(
            n1["guestAccelerators"],
            json!([{"acceleratorType": "projects/p/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4", "acceleratorCount": 1}])
        );
        assert_eq!(n1["scheduling"]["onHostMaintenance"], "TERMINATE");
        let a2 = body("a2-highgpu-1g", false);
        assert!(a2.get("guestAccelerators").is_none());
        assert_eq!(a2["scheduling"]["onHostMaintenance"], "TERMINATE");
    }

    #[test]
    fn an_arm_type_boots_the_arm_image_and_settings_override_it() {
        assert!(
            body("t2a-standard-1", false)["disks"][0]["initializeParams"]["sourceImage"]
                .as_str()
                .unwrap()
                .ends_with("-arm64")
        );
        let mut o = opts();
        o.image = Some("projects/debian-cloud/global/images/family/debian-12".into());
        assert_eq!(
            image_for(None, &o, "e2-medium"),
            "projects/debian-cloud/global/images/family/debian-12"
        );
        assert_eq!(image_for(Some("img"), &o, "e2-medium"), "img");
    }

    #[test]
    fn bad_keys_and_oversized_metadata_are_invalid_requests() {
        assert!(ssh_keys_value("ubuntu", &["not a key\nroot:evil".into()]).is_err());
        assert!(ssh_keys_value("ubuntu", &["AAAA".into()]).is_err());
        assert!(ssh_keys_value("Root!", &["ssh-ed25519 AAAA".into()]).is_err());
        let mut s = spec("e2-medium", false);
        s.user_data = Some("x".repeat(300 * 1024));
        let m = MachineSpec::parse("e2-medium").unwrap();
        assert!(matches!(
            insert_body(&s, &m, "us-central1-a", "n", "p", &opts()),
            Err(Error::InvalidRequest(m)) if m.contains("user-data")
        ));
    }
}
