//! Droplets: created after their deployment's firewall and SSH keys (found
//! again by the create's tag on a retry), read, listed by label (with what a
//! deployment left without a droplet), deleted with what no other droplet of
//! their deployment uses.

use provider_sdk::types::{
    DeleteStatus, Error, Instance, InstanceQuery, InstanceRef, InstanceSpec, ResourceRef,
};
use provider_sdk::{errors, log, settings};
use serde_json::{Value, json};

use crate::api::{Api, PER_PAGE};
use crate::firewalls::{FirewallsPage, ensure_firewall};
use crate::keys::{SshKeysPage, ensure_keys, keys_for_droplet};
use crate::leftovers;
use crate::model::{self, DropletEnvelope, DropletsPage};
use crate::{DEFAULT_IMAGE, KIND_FIREWALL, KIND_SSH_KEY};

pub(crate) fn create_instance(api: &Api, spec: InstanceSpec) -> Result<Instance, Error> {
    if spec.spot {
        return Err(Error::Unsupported(
            "DigitalOcean has no spot droplets; ask for an on-demand instance".into(),
        ));
    }
    if spec.instance_type.is_empty() || spec.region.is_empty() {
        return Err(Error::InvalidRequest(
            "a droplet needs a size (instance-type) and a region".into(),
        ));
    }
    let idem_tag = model::idempotency_tag(&spec.idempotency_key)?;
    let mut labels = spec.labels.clone();
    if !labels.iter().any(|(k, _)| k == "bpr-deployment") {
        labels.push(("bpr-deployment".into(), spec.deployment_id.clone()));
    }
    let mut tags: Vec<String> = labels
        .iter()
        .map(|(k, v)| model::label_tag(k, v))
        .collect::<Result<_, _>>()?;
    tags.push(idem_tag.clone());
    if spec.disk_gib > 0 {
        log::debug("disk-gib is ignored: a DigitalOcean size comes with a fixed disk");
    }

    let name = model::safe_name("bpr-", &spec.deployment_id, 63);
    let firewall_name = model::safe_name("bpr-", &spec.deployment_id, 200);
    // Keys and the firewall are named and tagged after the deployment when
    // they are created, so whatever a crash leaves is found by it alone.
    let dep_tag = leftovers::deployment_tag(&spec.deployment_id)?;
    let key_name = dep_tag.clone();

    // DigitalOcean has no idempotency token: a droplet already carrying this
    // create's tag is the result of an earlier attempt whose answer was lost.
    let existing = api.all_pages(
        &format!(
            "/v2/droplets?per_page={PER_PAGE}&tag_name={}",
            provider_sdk::http::percent_encode(&idem_tag)
        ),
        "looking for a droplet from an earlier attempt",
        |p: DropletsPage| (p.droplets, p.links),
    )?;

    let made = (|| {
        // The firewall exists before any droplet it protects: a droplet is
        // never reachable on ports the request did not open, not even after a
        // crash.
        leftovers::ensure_tag(api, &dep_tag)?;
        let firewall = ensure_firewall(api, &firewall_name, &dep_tag, &spec.open_ports)?;
        let keys = ensure_keys(api, &spec.ssh_public_keys, &key_name)?;
        let resources: Vec<ResourceRef> = keys.iter().map(|k| k.resource.clone()).collect();
        if let Some(d) = existing.into_iter().next() {
            log::info(&format!(
                "droplet {} already exists for this create; reusing it",
                d.id
            ));
            return Ok((d, resources, firewall));
        }
        let image = spec
            .image
            .clone()
            .or_else(|| settings::get("image"))
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
        let image: Value = match image.parse::<u64>() {
            Ok(id) => json!(id),
            Err(_) => json!(image),
        };
        let mut body = json!({
            "name": name,
            "region": spec.region,
            "size": spec.instance_type,
            "image": image,
            "ssh_keys": keys_for_droplet(&keys),
            "tags": tags,
            "monitoring": true,
            "ipv6": false,
        });
        if let Some(ud) = &spec.user_data {
            body["user_data"] = json!(ud);
        }
        let env: DropletEnvelope = api.post_json(
            "/v2/droplets",
            &body,
            &format!(
                "creating droplet {name} ({} in {})",
                spec.instance_type, spec.region
            ),
        )?;
        Ok((env.droplet, resources, firewall))
    })();
    let (droplet, mut resources, firewall) = match made {
        Ok(m) => m,
        Err(e) => {
            // After a transport failure the droplet may exist with the keys and
            // firewall; a retry finds all three (by tag and by name). Otherwise
            // nothing of this create runs: what no droplet of the deployment
            // uses goes.
            if !matches!(e, Error::Transient(_) | Error::Other(_))
                && let Err(ce) = leftovers::delete_if_unused(api, &spec.deployment_id)
            {
                log::warn(&format!(
                    "the firewall and keys of {} stay until a delete-instance with its label: {}",
                    spec.deployment_id,
                    errors::message(&ce)
                ));
            }
            return Err(e);
        }
    };
    resources.push(ResourceRef {
        kind: KIND_FIREWALL.into(),
        id: firewall,
    });
    resources.retain(|r| r.kind != "ssh-key-existing");
    Ok(model::instance_from_droplet(&droplet, resources))
}

pub(crate) fn get(target: InstanceRef) -> Result<Instance, Error> {
    let api = Api::from_settings();
    let id = droplet_id(&target.id)?;
    let env: DropletEnvelope = api.get_json(
        &format!("/v2/droplets/{id}"),
        &format!("reading droplet {id}"),
    )?;
    Ok(model::instance_from_droplet(&env.droplet, target.resources))
}

pub(crate) fn list(query: InstanceQuery) -> Result<Vec<Instance>, Error> {
    let api = Api::from_settings();
    let wanted: Vec<String> = query
        .labels
        .iter()
        .map(|(k, v)| model::label_tag(k, v))
        .collect::<Result<_, _>>()?;
    // DigitalOcean filters by one tag; the deployment label is the most
    // selective, the others are checked here.
    let by = wanted
        .iter()
        .find(|t| t.starts_with("bpr:bpr-deployment:"))
        .or_else(|| wanted.first());
    let first = match by {
        Some(tag) => format!(
            "/v2/droplets?per_page={PER_PAGE}&tag_name={}",
            provider_sdk::http::percent_encode(tag)
        ),
        None => format!("/v2/droplets?per_page={PER_PAGE}"),
    };
    let droplets = api.all_pages(&first, "listing droplets", |p: DropletsPage| {
        (p.droplets, p.links)
    })?;
    let mut found: Vec<Instance> = droplets
        .iter()
        .filter(|d| wanted.iter().all(|t| d.tags.contains(t)))
        .filter(|d| {
            query.regions.is_empty()
                || d.region
                    .as_ref()
                    .is_some_and(|r| query.regions.contains(&r.slug))
        })
        .map(|d| model::instance_from_droplet(d, vec![]))
        .collect();
    let orphans = leftovers::orphaned(&api, &query, &found)?;
    found.extend(orphans);
    Ok(found)
}

/// Delete a droplet, then what no other droplet of its deployment uses; with
/// an empty id, everything the deployment left (see wit/provider.wit).
pub(crate) fn delete_instance(api: &Api, target: InstanceRef) -> Result<DeleteStatus, Error> {
    let deployment = leftovers::deployment_of(&target.labels);
    if target.id.is_empty() {
        let Some(dep) = deployment else {
            return Err(Error::InvalidRequest(
                "delete-instance needs a droplet id or the bpr-deployment label".into(),
            ));
        };
        return leftovers::delete_all(api, &target.region, dep);
    }
    let id = droplet_id(&target.id)?;
    let mut resources = target.resources.clone();
    if !resources.iter().any(|r| r.kind == KIND_FIREWALL) {
        // Crash recovery passes what list-instances found, without resources:
        // what an older version made per create is found from its tag.
        resources.extend(discover_resources(api, id)?);
    }
    api.delete(
        &format!("/v2/droplets/{id}"),
        &format!("deleting droplet {id}"),
    )?;
    let Some(dep) = deployment else {
        leftovers::delete_refs(api, &resources)?;
        return Ok(DeleteStatus::Deleted);
    };
    // The deployment's firewall and keys serve its other droplets too: they
    // go with the last one.
    let tag = leftovers::deployment_tag(dep)?;
    let shared = leftovers::shared_of(api, &tag)?;
    let is_shared = |r: &ResourceRef| shared.iter().any(|s| s.kind == r.kind && s.id == r.id);
    let mut doomed: Vec<ResourceRef> = resources.into_iter().filter(|r| !is_shared(r)).collect();
    if leftovers::droplets_of(api, &tag)?
        .iter()
        .all(|d| d.id == id)
    {
        doomed.extend(shared);
    }
    leftovers::delete_refs(api, &doomed)?;
    Ok(DeleteStatus::Deleted)
}

/// Firewall and SSH keys made by the create of droplet `id`, found through
/// its idempotency tag (firewall bound to it, keys named after it).
fn discover_resources(api: &Api, id: u64) -> Result<Vec<ResourceRef>, Error> {
    let droplet = match api.get_json::<DropletEnvelope>(
        &format!("/v2/droplets/{id}"),
        &format!("reading droplet {id}"),
    ) {
        Ok(env) => env.droplet,
        Err(Error::NotFound(_)) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    let Some(tag) = droplet
        .tags
        .iter()
        .find(|t| t.starts_with(model::IDEMPOTENCY_TAG_PREFIX))
    else {
        return Ok(vec![]);
    };
    let mut out: Vec<ResourceRef> = api
        .all_pages(
            &format!("/v2/firewalls?per_page={PER_PAGE}"),
            "listing firewalls",
            |p: FirewallsPage| (p.firewalls, p.links),
        )?
        .into_iter()
        .filter(|f| f.tags.as_ref().is_some_and(|t| t.contains(tag)))
        .map(|f| ResourceRef {
            kind: KIND_FIREWALL.into(),
            id: f.id,
        })
        .collect();
    if let Some(key) = model::decode_tag_value(&tag[model::IDEMPOTENCY_TAG_PREFIX.len()..]) {
        let name = model::safe_name("bpr-", &key, 200);
        let keys = api.all_pages(
            &format!("/v2/account/keys?per_page={PER_PAGE}"),
            "listing SSH keys",
            |p: SshKeysPage| (p.ssh_keys, p.links),
        )?;
        out.extend(
            keys.into_iter()
                .filter(|k| k.name == name || k.name.starts_with(&format!("{name} key ")))
                .map(|k| ResourceRef {
                    kind: KIND_SSH_KEY.into(),
                    id: k.id.to_string(),
                }),
        );
    }
    Ok(out)
}

pub(crate) fn droplet_id(id: &str) -> Result<u64, Error> {
    id.parse::<u64>().map_err(|_| {
        Error::InvalidRequest(format!(
            "`{id}` is not a DigitalOcean droplet id (a positive integer)"
        ))
    })
}

/// `id` if it is safe as one URL path segment.
pub(crate) fn path_segment<'a>(id: &'a str, what: &str) -> Result<&'a str, Error> {
    if !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':')
    {
        Ok(id)
    } else {
        Err(Error::InvalidRequest(format!(
            "`{id}` is not a valid {what}"
        )))
    }
}
