//! Droplets: created with their SSH keys, cloud-init and firewall (found
//! again by the create's tag on a retry), read, listed by label, deleted with
//! what their create made.

use provider_sdk::types::{
    DeleteStatus, Error, Instance, InstanceQuery, InstanceRef, InstanceSpec, ResourceRef,
};
use provider_sdk::{errors, log, settings};
use serde_json::{Value, json};

use crate::api::{Api, PER_PAGE};
use crate::firewalls::{FirewallsPage, ensure_firewall};
use crate::keys::{SshKeysPage, cleanup_keys, ensure_keys, keys_for_droplet};
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
    let firewall_name = model::safe_name("bpr-", &spec.idempotency_key, 200);
    let key_name = model::safe_name("bpr-", &spec.idempotency_key, 200);

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

    let (droplet, mut resources) = match existing.into_iter().next() {
        Some(d) => {
            log::info(&format!(
                "droplet {} already exists for this create; reusing it",
                d.id
            ));
            let keys = ensure_keys(api, &spec.ssh_public_keys, &key_name)?;
            (d, keys.into_iter().map(|k| k.resource).collect::<Vec<_>>())
        }
        None => {
            let keys = ensure_keys(api, &spec.ssh_public_keys, &key_name)?;
            let key_ids: Vec<Value> = keys_for_droplet(&keys);
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
                "ssh_keys": key_ids,
                "tags": tags,
                "monitoring": true,
                "ipv6": false,
            });
            if let Some(ud) = &spec.user_data {
                body["user_data"] = json!(ud);
            }
            let created: Result<DropletEnvelope, Error> = api.post_json(
                "/v2/droplets",
                &body,
                &format!(
                    "creating droplet {name} ({} in {})",
                    spec.instance_type, spec.region
                ),
            );
            match created {
                Ok(env) => (env.droplet, keys.into_iter().map(|k| k.resource).collect()),
                Err(e) => {
                    // After a transport failure the droplet may exist with these
                    // keys; a retry finds both (by tag and by key name).
                    if !matches!(e, Error::Transient(_) | Error::Other(_)) {
                        cleanup_keys(api, &keys);
                    }
                    return Err(e);
                }
            }
        }
    };

    match ensure_firewall(api, &firewall_name, &idem_tag, &spec.open_ports) {
        Ok(fw) => resources.push(ResourceRef {
            kind: KIND_FIREWALL.into(),
            id: fw,
        }),
        Err(e) => {
            // Leave nothing running without its firewall.
            let cleanup = api.delete(
                &format!("/v2/droplets/{}", droplet.id),
                &format!("deleting droplet {} after the firewall failed", droplet.id),
            );
            for r in resources.iter().filter(|r| r.kind == KIND_SSH_KEY) {
                let _ = api.delete(&format!("/v2/account/keys/{}", r.id), "deleting an SSH key");
            }
            let note = match cleanup {
                Ok(_) => "the droplet was deleted again".to_string(),
                Err(c) => format!(
                    "droplet {} could not be deleted ({}); delete it by hand",
                    droplet.id,
                    errors::message(&c)
                ),
            };
            return Err(with_message(
                e,
                &format!("creating the firewall failed; {note}"),
            ));
        }
    }
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
    Ok(droplets
        .iter()
        .filter(|d| wanted.iter().all(|t| d.tags.contains(t)))
        .filter(|d| {
            query.regions.is_empty()
                || d.region
                    .as_ref()
                    .is_some_and(|r| query.regions.contains(&r.slug))
        })
        .map(|d| model::instance_from_droplet(d, vec![]))
        .collect())
}

pub(crate) fn delete_instance(api: &Api, target: InstanceRef) -> Result<DeleteStatus, Error> {
    let id = droplet_id(&target.id)?;
    let mut resources = target.resources.clone();
    if !resources.iter().any(|r| r.kind == KIND_FIREWALL) {
        // Crash recovery passes what list-instances found, without resources:
        // find what this droplet's create made from its idempotency tag.
        resources.extend(discover_resources(api, id)?);
    }
    api.delete(
        &format!("/v2/droplets/{id}"),
        &format!("deleting droplet {id}"),
    )?;
    for r in &resources {
        match r.kind.as_str() {
            KIND_FIREWALL => {
                let fw = path_segment(&r.id, "firewall id")?;
                api.delete(
                    &format!("/v2/firewalls/{fw}"),
                    &format!("deleting firewall {fw}"),
                )?;
            }
            KIND_SSH_KEY => {
                let key = path_segment(&r.id, "SSH key id")?;
                api.delete(
                    &format!("/v2/account/keys/{key}"),
                    &format!("deleting SSH key {key}"),
                )?;
            }
            _ => {}
        }
    }
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

fn with_message(e: Error, note: &str) -> Error {
    let text = format!("{} ({note})", errors::message(&e));
    match e {
        Error::Unauthorized(_) => Error::Unauthorized(text),
        Error::NotFound(_) => Error::NotFound(text),
        Error::InvalidRequest(_) => Error::InvalidRequest(text),
        Error::CapacityUnavailable(_) => Error::CapacityUnavailable(text),
        Error::QuotaExceeded(_) => Error::QuotaExceeded(text),
        Error::RegionUnavailable(_) => Error::RegionUnavailable(text),
        Error::RateLimited(mut r) => {
            r.message = text;
            Error::RateLimited(r)
        }
        Error::Unsupported(_) => Error::Unsupported(text),
        Error::Denied(_) => Error::Denied(text),
        Error::Transient(_) => Error::Transient(text),
        Error::Other(_) => Error::Other(text),
    }
}
