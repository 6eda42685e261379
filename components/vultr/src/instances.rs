//! Instances (`/instances`) and bare-metal machines (`/bare-metals`, for the
//! `vbm-*` plans): create, get, delete, list.
//!
//! Create makes, in order, what the machine needs, each findable again by a
//! retry of the same create:
//! 1. the machine itself, if an earlier attempt made it: Vultr has no
//!    idempotency token, so the instance's `label` is `bpr-<idempotency key>`
//!    and `GET /instances?label=` finds it (the `tag` filter is deprecated in
//!    Vultr's spec);
//! 2. the SSH keys ([`crate::keys`]), the firewall group ([`crate::firewall`]);
//! 3. the machine, with the plan and region asked, the boot image
//!    ([`crate::images`]), `sshkey_id`, base64 `user_data`, backups off, the
//!    firewall group, and tags: one per host label (`bpr:<key>:<value>`) plus
//!    `bpr-idem:<key>`.
//!
//! When the create fails for good, the key and group made for it are deleted
//! again; after a transient failure they stay for the retry to find. Delete
//! removes the machine, the group and the keys this component registered;
//! when the host passes no resources (crash recovery), it finds them from the
//! machine's tags.

use provider_sdk::types::{
    DeleteStatus, Error, Instance, InstanceQuery, InstanceRef, InstanceSpec, InstanceState,
    ResourceRef,
};
use provider_sdk::{errors as sdk_errors, http::percent_encode, log};
use serde_json::json;

use crate::api::{Api, path_segment};
use crate::errors::{is_final, with_message};
use crate::model::{
    self, BareMetalEnvelope, BareMetalsPage, InstanceEnvelope, InstancesPage, Server,
};
use crate::{codec, firewall, images, keys, offers};

/// Resource kind marking a bare-metal machine (its id is the machine's).
pub const KIND_BARE_METAL: &str = "bare-metal";

/// Which API a machine lives in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Family {
    Instance,
    BareMetal,
}

impl Family {
    fn of_plan(plan: &str) -> Self {
        if plan.starts_with("vbm-") {
            Family::BareMetal
        } else {
            Family::Instance
        }
    }

    fn path(self) -> &'static str {
        match self {
            Family::Instance => "/instances",
            Family::BareMetal => "/bare-metals",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Family::Instance => "instance",
            Family::BareMetal => "bare-metal machine",
        }
    }
}

/// The label (and lookup key) of the machine made for one create.
fn machine_label(idempotency_key: &str) -> String {
    model::safe_name("bpr-", idempotency_key, 255)
}

/// `compute.create-instance`.
pub fn create(spec: &InstanceSpec) -> Result<Instance, Error> {
    let api = Api::from_settings();
    if spec.spot {
        return Err(Error::Unsupported(
            "Vultr's API creates no spot or preemptible machines; ask for an on-demand instance"
                .into(),
        ));
    }
    if spec.instance_type.is_empty() || spec.region.is_empty() {
        return Err(Error::InvalidRequest(
            "a Vultr instance needs a plan (instance-type) and a region".into(),
        ));
    }
    let family = Family::of_plan(&spec.instance_type);
    let mut labels = spec.labels.clone();
    if !labels.iter().any(|(k, _)| k == "bpr-deployment") {
        labels.push(("bpr-deployment".into(), spec.deployment_id.clone()));
    }
    let mut tags: Vec<String> = labels
        .iter()
        .map(|(k, v)| model::label_tag(k, v))
        .collect::<Result<_, _>>()?;
    tags.push(model::idempotency_tag(&spec.idempotency_key)?);
    let public_keys = keys::parse_all(&spec.ssh_public_keys)?;
    let rules = firewall::wanted_rules(&spec.open_ports)?;
    if spec.disk_gib > 0 {
        log::debug("disk-gib is ignored: a Vultr plan comes with a fixed disk");
    }
    let label = machine_label(&spec.idempotency_key);
    let side = model::side_name(&spec.idempotency_key, &spec.deployment_id);

    if let Some(found) = find_by_label(&api, family, &label)? {
        log::info(&format!(
            "{} {} already exists for this create; reusing it",
            family.noun(),
            found.id
        ));
        let resources = resources_of(&found, family, &SideResources::load(&api)?);
        return Ok(model::instance_from_server(&found, resources));
    }

    let boot = images::resolve(&api, spec.image.as_deref())?;
    let mut existing = SideResources::load(&api)?;
    // Before our key is looked up by fingerprint: an abandoned attempt's key
    // must not be reused and then deleted under us.
    existing.remove_abandoned(&api, &spec.deployment_id, &spec.idempotency_key);
    let key_uses = keys::ensure(
        &api,
        existing.keys,
        &public_keys,
        &spec.ssh_public_keys,
        &side,
    )?;
    let group = match family {
        Family::Instance => match firewall::ensure(&api, &existing.groups, &side, &rules) {
            Ok(id) => Some(id),
            Err(e) => {
                if is_final(&e) {
                    keys::cleanup(&api, &key_uses);
                }
                return Err(e);
            }
        },
        Family::BareMetal => {
            if !rules.is_empty() {
                log::warn(
                    "Vultr firewall groups do not apply to bare metal: the machine's own firewall (user data) must close the other ports",
                );
            }
            None
        }
    };

    let (field, value) = boot.field();
    let mut body = json!({
        "region": spec.region,
        "plan": spec.instance_type,
        "label": label,
        "hostname": model::safe_name("bpr-", &spec.deployment_id, 63),
        "tags": tags,
        "sshkey_id": key_uses.iter().map(|k| k.id.clone()).collect::<Vec<_>>(),
        "enable_ipv6": false,
        field: value,
    });
    if family == Family::Instance {
        body["backups"] = json!("disabled");
    }
    if let Some(group) = &group {
        body["firewall_group_id"] = json!(group);
    }
    if let Some(ud) = &spec.user_data {
        body["user_data"] = json!(codec::base64_encode(ud.as_bytes()));
    }
    let what = format!(
        "creating {} {label} ({} in {})",
        family.noun(),
        spec.instance_type,
        spec.region
    );
    let created = match family {
        Family::Instance => api
            .post_json::<_, InstanceEnvelope>(family.path(), &body, &what)
            .map(|e| e.instance),
        Family::BareMetal => api
            .post_json::<_, BareMetalEnvelope>(family.path(), &body, &what)
            .map(|e| e.bare_metal),
    };
    let server = match created {
        Ok(s) => s,
        Err(e) => {
            let e = settle_plan_error(e, &spec.instance_type, &spec.region);
            if is_final(&e) {
                if let Some(group) = &group
                    && let Err(cleanup) = firewall::delete(&api, group)
                {
                    log::warn(&format!(
                        "firewall group {group} made for a failed create could not be deleted: {}",
                        sdk_errors::message(&cleanup)
                    ));
                }
                keys::cleanup(&api, &key_uses);
            }
            return Err(e);
        }
    };
    let mut resources: Vec<ResourceRef> = key_uses.iter().filter_map(|k| k.resource()).collect();
    if let Some(group) = group {
        resources.push(ResourceRef {
            kind: firewall::KIND.into(),
            id: group,
        });
    }
    if family == Family::BareMetal {
        resources.push(ResourceRef {
            kind: KIND_BARE_METAL.into(),
            id: server.id.clone(),
        });
    }
    Ok(model::instance_from_server(&server, resources))
}

/// Vultr answers `Invalid plan chosen.` both for a plan that does not exist
/// and for one not offered in the region now. The public plan list tells them
/// apart: the second is a capacity problem the orchestrator fails over from.
fn settle_plan_error(e: Error, plan: &str, region: &str) -> Error {
    let Error::InvalidRequest(message) = &e else {
        return e;
    };
    if !message.to_ascii_lowercase().contains("invalid plan") {
        return e;
    }
    let cat = match offers::live_catalogue(&Api::for_plans()) {
        Ok(cat) => cat,
        Err(lookup) => {
            log::warn(&format!(
                "could not read the plan list to explain `{message}`: {}",
                sdk_errors::message(&lookup)
            ));
            return e;
        }
    };
    match offers::plan_locations(&cat, plan) {
        None => with_message(e, &format!("Vultr has no plan `{plan}`")),
        Some(locations) if !locations.iter().any(|l| l == region) => {
            Error::CapacityUnavailable(format!(
                "{message} (plan {plan} is not offered in {region} now; it is in {})",
                if locations.is_empty() {
                    "no region".to_string()
                } else {
                    locations.join(", ")
                }
            ))
        }
        Some(_) => e,
    }
}

/// The machine an earlier attempt of a create made, by its label.
fn find_by_label(api: &Api, family: Family, label: &str) -> Result<Option<Server>, Error> {
    match family {
        Family::Instance => Ok(api
            .all_pages(
                &format!("/instances?label={}", percent_encode(label)),
                "looking for an instance from an earlier attempt",
                |p: InstancesPage| (p.instances, p.meta),
            )?
            .into_iter()
            .find(|s| s.label == label)),
        Family::BareMetal => Ok(all_bare_metals(api)?.into_iter().find(|s| s.label == label)),
    }
}

fn all_bare_metals(api: &Api) -> Result<Vec<Server>, Error> {
    api.all_pages(
        "/bare-metals",
        "listing bare-metal machines",
        |p: BareMetalsPage| (p.bare_metals, p.meta),
    )
}

/// What creates made next to their machines: every registered key and
/// firewall group, read once and matched by name.
struct SideResources {
    keys: Vec<model::SshKey>,
    groups: Vec<model::FirewallGroup>,
}

impl SideResources {
    fn load(api: &Api) -> Result<Self, Error> {
        Ok(SideResources {
            keys: keys::list(api)?,
            groups: firewall::list(api)?,
        })
    }

    /// Delete what other creates of `deployment` (not `except`, an
    /// idempotency key) made and left without a machine: an attempt the
    /// orchestrator abandoned after transient failures, before or while its
    /// machine was being made. Best effort: a failure is logged, and what is
    /// left is found again next time (its name carries the deployment).
    fn remove_abandoned(&mut self, api: &Api, deployment: &str, except: &str) {
        let mut attempts: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.name.as_str())
            .chain(self.groups.iter().map(|g| g.description.as_str()))
            .filter_map(model::parse_side_name)
            .filter(|(key, dep)| dep == deployment && key != except)
            .map(|(key, _)| key)
            .collect();
        attempts.sort();
        attempts.dedup();
        for key in attempts {
            let label = machine_label(&key);
            let machine =
                find_by_label(api, Family::Instance, &label).and_then(|found| match found {
                    Some(m) => Ok(Some(m)),
                    None => find_by_label(api, Family::BareMetal, &label),
                });
            match machine {
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => {
                    log::warn(&format!(
                        "could not check attempt {key} of deployment {deployment} for leftovers: {}",
                        sdk_errors::message(&e)
                    ));
                    continue;
                }
            }
            for r in self.of(&model::side_name(&key, deployment)) {
                let gone = match r.kind.as_str() {
                    firewall::KIND => {
                        firewall::delete(api, &r.id).map(|d| d == firewall::Deleted::Gone)
                    }
                    _ => api
                        .delete(&format!("/ssh-keys/{}", r.id), "deleting an SSH key")
                        .map(|_| true),
                };
                match gone {
                    Ok(true) => {
                        log::info(&format!(
                            "deleted {} {} left by abandoned attempt {key} of deployment {deployment}",
                            r.kind, r.id
                        ));
                        self.keys.retain(|k| k.id != r.id);
                        self.groups.retain(|g| g.id != r.id);
                    }
                    Ok(false) => {}
                    Err(e) => log::warn(&format!(
                        "{} {} left by attempt {key} could not be deleted: {}",
                        r.kind,
                        r.id,
                        sdk_errors::message(&e)
                    )),
                }
            }
        }
    }

    /// The keys and group made for the create named `side`.
    fn of(&self, side: &str) -> Vec<ResourceRef> {
        let ours = |name: &str| {
            name == side
                || name
                    .strip_prefix(side)
                    .is_some_and(|rest| rest.starts_with(" key "))
        };
        self.keys
            .iter()
            .filter(|k| ours(&k.name))
            .map(|k| ResourceRef {
                kind: keys::KIND.into(),
                id: k.id.clone(),
            })
            .chain(
                self.groups
                    .iter()
                    .filter(|g| g.description == side)
                    .map(|g| ResourceRef {
                        kind: firewall::KIND.into(),
                        id: g.id.clone(),
                    }),
            )
            .collect()
    }
}

/// The name of what `server`'s create made next to it, from its tags.
fn side_of(server: &Server) -> Option<String> {
    let key = model::idempotency_key_of(&server.tags)?;
    let deployment = model::labels_from_tags(&server.tags)
        .into_iter()
        .find(|(k, _)| k == "bpr-deployment")
        .map(|(_, v)| v)
        .unwrap_or_default();
    Some(model::side_name(&key, &deployment))
}

/// The resources a listed or found machine is returned with: its bare-metal
/// marker and what its create made.
fn resources_of(server: &Server, family: Family, side: &SideResources) -> Vec<ResourceRef> {
    let mut out = side_of(server).map(|s| side.of(&s)).unwrap_or_default();
    if family == Family::BareMetal {
        out.push(ResourceRef {
            kind: KIND_BARE_METAL.into(),
            id: server.id.clone(),
        });
    }
    out
}

/// Read a machine: the bare-metal API when the resources say so, else the
/// instance API and then, on 404, the bare-metal API.
fn read(api: &Api, target: &InstanceRef) -> Result<(Family, Server), Error> {
    let id = path_segment(&target.id, "instance id")?;
    let metal = target.resources.iter().any(|r| r.kind == KIND_BARE_METAL);
    if !metal {
        match api.get_json::<InstanceEnvelope>(
            &format!("/instances/{id}"),
            &format!("reading instance {id}"),
        ) {
            Ok(env) => return Ok((Family::Instance, env.instance)),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let env: BareMetalEnvelope = api
        .get_json(
            &format!("/bare-metals/{id}"),
            &format!("reading bare-metal machine {id}"),
        )
        .map_err(|e| match e {
            Error::NotFound(_) => {
                Error::NotFound(format!("Vultr has no instance or bare-metal machine {id}"))
            }
            e => e,
        })?;
    Ok((Family::BareMetal, env.bare_metal))
}

/// `compute.get-instance`.
pub fn get(target: &InstanceRef) -> Result<Instance, Error> {
    let api = Api::from_settings();
    let (_, server) = read(&api, target)?;
    Ok(model::instance_from_server(
        &server,
        target.resources.clone(),
    ))
}

/// `compute.delete-instance`. An empty id deletes what the deployment named
/// by the `bpr-deployment` label left (see [`delete_deployment`]).
pub fn delete(target: &InstanceRef) -> Result<DeleteStatus, Error> {
    if target.id.is_empty() {
        return delete_deployment(target);
    }
    let api = Api::from_settings();
    let id = path_segment(&target.id, "instance id")?.to_string();
    let mut resources = target.resources.clone();
    let machine = match read(&api, target) {
        Ok(found) => Some(found),
        Err(Error::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let family = match &machine {
        Some((family, _)) => *family,
        None if resources.iter().any(|r| r.kind == KIND_BARE_METAL) => Family::BareMetal,
        None => Family::Instance,
    };
    if resources.iter().all(|r| r.kind == KIND_BARE_METAL)
        && let Some((family, server)) = &machine
    {
        // Called without what the create made (crash recovery of a host that
        // lost its record): find it from the machine's tags.
        resources = resources_of(server, *family, &SideResources::load(&api)?);
    }
    if machine.is_some() {
        api.delete(
            &format!("{}/{id}", family.path()),
            &format!("deleting {} {id}", family.noun()),
        )?;
    }
    let mut status = DeleteStatus::Deleted;
    for r in &resources {
        match r.kind.as_str() {
            firewall::KIND => {
                let outcome = firewall::delete(&api, &r.id)?;
                if outcome == firewall::Deleted::StillAttached {
                    log::debug(&format!(
                        "firewall group {} is still attached to the machine being destroyed; will retry",
                        r.id
                    ));
                    status = DeleteStatus::InProgress;
                }
            }
            keys::KIND => {
                let key = path_segment(&r.id, "SSH key id")?;
                api.delete(
                    &format!("/ssh-keys/{key}"),
                    &format!("deleting SSH key {key}"),
                )?;
            }
            _ => {}
        }
    }
    // The deployment's attempts that left a key or group but no machine go
    // with it.
    let tags = machine.as_ref().map(|(_, s)| &s.tags[..]).unwrap_or(&[]);
    let deployment = target
        .labels
        .iter()
        .chain(model::labels_from_tags(tags).iter())
        .find(|(k, _)| k == "bpr-deployment")
        .map(|(_, v)| v.clone());
    if let Some(deployment) = deployment {
        let own = model::idempotency_key_of(tags).unwrap_or_default();
        SideResources::load(&api)?.remove_abandoned(&api, &deployment, &own);
    }
    Ok(status)
}

/// The deployment named by the `bpr-deployment` label of an empty-id delete.
fn deployment_of(labels: &[(String, String)]) -> Result<String, Error> {
    labels
        .iter()
        .find(|(k, v)| k == "bpr-deployment" && !v.is_empty())
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            Error::InvalidRequest(
                "delete-instance with an empty id needs the bpr-deployment label naming the deployment whose leftovers to delete".into(),
            )
        })
}

/// `compute.delete-instance` with an empty id (wit/provider.wit): the
/// deployment's machines in `target.region` (every region when empty) first,
/// `in-progress` while there are any; then the keys and firewall groups its
/// creates made whose machine no longer exists (Vultr's keys and groups are
/// not regional: a live machine of the deployment elsewhere keeps its own).
fn delete_deployment(target: &InstanceRef) -> Result<DeleteStatus, Error> {
    let deployment = deployment_of(&target.labels)?;
    let query = InstanceQuery {
        regions: if target.region.is_empty() {
            Vec::new()
        } else {
            vec![target.region.clone()]
        },
        labels: vec![("bpr-deployment".into(), deployment.clone())],
    };
    let machines: Vec<Instance> = list(&query)?
        .into_iter()
        .filter(|i| !i.id.is_empty())
        .collect();
    if !machines.is_empty() {
        for m in &machines {
            delete(&InstanceRef {
                id: m.id.clone(),
                region: m.region.clone(),
                zone: None,
                resources: m.resources.clone(),
                labels: m.labels.clone(),
            })?;
        }
        return Ok(DeleteStatus::InProgress);
    }
    let api = Api::from_settings();
    SideResources::load(&api)?.remove_abandoned(&api, &deployment, "");
    let left = leftovers(&api, &SideResources::load(&api)?)?;
    Ok(if left.iter().any(|(d, _)| *d == deployment) {
        DeleteStatus::InProgress
    } else {
        DeleteStatus::Deleted
    })
}

/// What creates left without their machine, per deployment: keys and
/// firewall groups named after an attempt whose machine (looked up by its
/// label in every region) does not exist.
fn leftovers(api: &Api, side: &SideResources) -> Result<Vec<(String, Vec<ResourceRef>)>, Error> {
    let mut attempts: Vec<(String, String)> = side
        .keys
        .iter()
        .map(|k| k.name.as_str())
        .chain(side.groups.iter().map(|g| g.description.as_str()))
        .filter_map(model::parse_side_name)
        .collect();
    attempts.sort();
    attempts.dedup();
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let mut labels: Vec<String> = api
        .all_pages("/instances", "listing instances", |p: InstancesPage| {
            (p.instances, p.meta)
        })?
        .into_iter()
        .chain(all_bare_metals(api)?)
        .map(|s| s.label)
        .collect();
    labels.sort();
    let mut out: Vec<(String, Vec<ResourceRef>)> = Vec::new();
    for (key, deployment) in attempts {
        if labels.binary_search(&machine_label(&key)).is_ok() {
            continue;
        }
        let what = side.of(&model::side_name(&key, &deployment));
        match out.iter_mut().find(|(d, _)| *d == deployment) {
            Some((_, all)) => all.extend(what),
            None => out.push((deployment, what)),
        }
    }
    Ok(out)
}

/// `compute.list-instances`: every instance and bare-metal machine carrying
/// all the query's labels, in its regions (all when empty). Vultr's spec
/// deprecates the `tag` filter, so every page is read and the tags are
/// checked here.
pub fn list(query: &InstanceQuery) -> Result<Vec<Instance>, Error> {
    let api = Api::from_settings();
    let wanted: Vec<String> = query
        .labels
        .iter()
        .map(|(k, v)| model::label_tag(k, v))
        .collect::<Result<_, _>>()?;
    let region_query = match query.regions.as_slice() {
        [one] => format!("?region={}", percent_encode(one)),
        _ => String::new(),
    };
    let mut servers: Vec<(Family, Server)> = api
        .all_pages(
            &format!("/instances{region_query}"),
            "listing instances",
            |p: InstancesPage| (p.instances, p.meta),
        )?
        .into_iter()
        .map(|s| (Family::Instance, s))
        .collect();
    servers.extend(
        all_bare_metals(&api)?
            .into_iter()
            .map(|s| (Family::BareMetal, s)),
    );
    servers.retain(|(_, s)| {
        wanted.iter().all(|t| s.tags.contains(t))
            && (query.regions.is_empty() || query.regions.contains(&s.region))
    });
    // Leftovers carry only the deployment (in their names): a query for
    // other labels cannot match them.
    let deployment_only = query.labels.iter().all(|(k, _)| k == "bpr-deployment");
    if servers.is_empty() && !deployment_only {
        return Ok(vec![]);
    }
    // With what each create made, so that deleting a listed machine (crash
    // recovery) removes its key and firewall group too, even when the delete
    // has to be repeated after the machine is gone.
    let side = SideResources::load(&api)?;
    let mut out: Vec<Instance> = servers
        .iter()
        .map(|(family, s)| model::instance_from_server(s, resources_of(s, *family, &side)))
        .collect();
    if deployment_only {
        for (deployment, resources) in leftovers(&api, &side)? {
            if !query.labels.iter().all(|(_, v)| *v == deployment) {
                continue;
            }
            out.push(leftover_entry(
                &deployment,
                query.regions.first().cloned().unwrap_or_default(),
                resources,
            ));
        }
    }
    Ok(out)
}

/// The leftovers convention of wit/provider.wit: an entry with an empty id,
/// state `terminated`, the deployment's label and what is left. Vultr's keys
/// and firewall groups are not regional: the region is the one asked about.
fn leftover_entry(deployment: &str, region: String, resources: Vec<ResourceRef>) -> Instance {
    let what: Vec<String> = resources
        .iter()
        .map(|r| format!("{} {}", r.kind, r.id))
        .collect();
    Instance {
        id: String::new(),
        region,
        zone: None,
        instance_type: String::new(),
        state: InstanceState::Terminated,
        public_ipv4: None,
        private_ipv4: None,
        public_ipv6: None,
        spot: false,
        labels: vec![("bpr-deployment".into(), deployment.to_string())],
        detail: Some(format!(
            "{} of deployment {deployment} left without a machine; delete-instance with an empty id removes them",
            what.join(", ")
        )),
        resources,
        created_at: None,
    }
}
