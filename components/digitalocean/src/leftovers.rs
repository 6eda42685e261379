//! What a deployment's creates make next to its droplets, found by the
//! deployment alone: one cloud firewall whose only tag is the deployment's
//! label tag (`bpr:bpr-deployment:<id>`, so it applies to exactly that
//! deployment's droplets), and the SSH keys it registered, named after that
//! same tag. Both get their tag or name in the call that creates them, before
//! any droplet exists, so a crash at any point leaves nothing that cannot be
//! found again. Firewalls and keys are account-wide: they go once no droplet
//! of the deployment is left in any region.

use provider_sdk::types::{
    DeleteStatus, Error, Instance, InstanceQuery, InstanceState, Label, ResourceRef,
};
use serde_json::json;

use crate::api::{Api, PER_PAGE};
use crate::droplets::path_segment;
use crate::firewalls::{Firewall, FirewallsPage};
use crate::keys::{SshKey, SshKeysPage};
use crate::model::{self, Droplet, DropletsPage};
use crate::{KIND_FIREWALL, KIND_SSH_KEY};

/// The label every resource of a deployment carries.
pub const DEPLOYMENT_LABEL: &str = "bpr-deployment";

/// The deployment named by `labels`, if any.
pub fn deployment_of(labels: &[Label]) -> Option<&str> {
    labels
        .iter()
        .find(|(k, _)| k == DEPLOYMENT_LABEL)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The tag of `deployment`'s droplets and firewall.
pub fn deployment_tag(deployment: &str) -> Result<String, Error> {
    model::label_tag(DEPLOYMENT_LABEL, deployment)
}

/// The name of the `i`-th (0-based) of `n` SSH keys a deployment registers.
pub fn key_name(tag: &str, i: usize, n: usize) -> String {
    if n > 1 {
        format!("{tag} key {}", i + 1)
    } else {
        tag.to_string()
    }
}

/// True when `name` is one of the keys [`key_name`] gives for `tag`.
fn is_key_of(name: &str, tag: &str) -> bool {
    name == tag
        || name
            .strip_prefix(&format!("{tag} key "))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The deployment a key name or firewall tag belongs to.
fn deployment_of_tag(tag: &str) -> Option<String> {
    let prefix = format!("{}{DEPLOYMENT_LABEL}:", model::LABEL_TAG_PREFIX);
    let encoded = tag.strip_prefix(&prefix)?;
    let encoded = encoded.split(' ').next()?;
    model::decode_tag_value(encoded).filter(|d| !d.is_empty())
}

/// Create `tag` (a firewall can only name tags that exist).
pub fn ensure_tag(api: &Api, tag: &str) -> Result<(), Error> {
    let created: Result<serde_json::Value, Error> = api.post_json(
        "/v2/tags",
        &json!({ "name": tag }),
        &format!("creating tag {tag}"),
    );
    match created {
        Ok(_) => Ok(()),
        Err(Error::InvalidRequest(m)) if m.contains("already") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Every droplet carrying `tag`, in every region.
pub fn droplets_of(api: &Api, tag: &str) -> Result<Vec<Droplet>, Error> {
    api.all_pages(
        &format!(
            "/v2/droplets?per_page={PER_PAGE}&tag_name={}",
            provider_sdk::http::percent_encode(tag)
        ),
        "listing a deployment's droplets",
        |p: DropletsPage| (p.droplets, p.links),
    )
}

/// The firewalls tagged `tag` and the keys named after it.
pub fn shared_of(api: &Api, tag: &str) -> Result<Vec<ResourceRef>, Error> {
    let mut out: Vec<ResourceRef> = firewalls(api)?
        .into_iter()
        .filter(|f| f.tags.as_ref().is_some_and(|t| t.iter().any(|x| x == tag)))
        .map(|f| ResourceRef {
            kind: KIND_FIREWALL.into(),
            id: f.id,
        })
        .collect();
    out.extend(
        keys(api)?
            .into_iter()
            .filter(|k| is_key_of(&k.name, tag))
            .map(|k| ResourceRef {
                kind: KIND_SSH_KEY.into(),
                id: k.id.to_string(),
            }),
    );
    Ok(out)
}

fn firewalls(api: &Api) -> Result<Vec<Firewall>, Error> {
    api.all_pages(
        &format!("/v2/firewalls?per_page={PER_PAGE}"),
        "listing firewalls",
        |p: FirewallsPage| (p.firewalls, p.links),
    )
}

fn keys(api: &Api) -> Result<Vec<SshKey>, Error> {
    api.all_pages(
        &format!("/v2/account/keys?per_page={PER_PAGE}"),
        "listing SSH keys",
        |p: SshKeysPage| (p.ssh_keys, p.links),
    )
}

/// Delete firewalls and keys (already gone counts as deleted).
pub fn delete_refs(api: &Api, refs: &[ResourceRef]) -> Result<(), Error> {
    for r in refs {
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
    Ok(())
}

/// `delete-instance` with an empty id: `deployment`'s droplets in `region`,
/// then its firewall and keys once it has no droplet anywhere.
pub fn delete_all(api: &Api, region: &str, deployment: &str) -> Result<DeleteStatus, Error> {
    let tag = deployment_tag(deployment)?;
    let mut elsewhere = false;
    for d in droplets_of(api, &tag)? {
        let here = d.region.as_ref().is_none_or(|r| r.slug == region);
        if !here {
            elsewhere = true;
            continue;
        }
        api.delete(
            &format!("/v2/droplets/{}", d.id),
            &format!("deleting droplet {}", d.id),
        )?;
    }
    if !elsewhere {
        delete_refs(api, &shared_of(api, &tag)?)?;
    }
    Ok(DeleteStatus::Deleted)
}

/// Delete the firewall and keys of `deployment` if no droplet of it is left.
pub fn delete_if_unused(api: &Api, deployment: &str) -> Result<(), Error> {
    let tag = deployment_tag(deployment)?;
    if droplets_of(api, &tag)?.is_empty() {
        delete_refs(api, &shared_of(api, &tag)?)?;
    }
    Ok(())
}

/// For `list-instances`: one entry (empty id, `terminated`) per deployment
/// whose firewall or keys exist without any droplet. Firewalls and keys
/// carry no labels but the deployment's, so entries are given only for
/// queries that name nothing else than the deployment and `bpr-managed`;
/// they are listed once, in the first region asked.
pub fn orphaned(
    api: &Api,
    query: &InstanceQuery,
    listed: &[Instance],
) -> Result<Vec<Instance>, Error> {
    let mut wanted: Option<&str> = None;
    for (k, v) in &query.labels {
        match k.as_str() {
            DEPLOYMENT_LABEL => wanted = Some(v.as_str()),
            "bpr-managed" if v == "true" => {}
            _ => return Ok(vec![]),
        }
    }
    let region = query.regions.first().cloned().unwrap_or_default();
    let mut deployments: Vec<String> = match wanted {
        Some(d) => vec![d.to_string()],
        None => {
            let mut all: Vec<String> = firewalls(api)?
                .into_iter()
                .flat_map(|f| f.tags.unwrap_or_default())
                .chain(keys(api)?.into_iter().map(|k| k.name))
                .filter_map(|t| deployment_of_tag(&t))
                .collect();
            all.sort();
            all.dedup();
            all
        }
    };
    deployments.retain(|d| !listed.iter().any(|i| deployment_of(&i.labels) == Some(d)));
    let mut out = Vec::new();
    for dep in deployments {
        let tag = deployment_tag(&dep)?;
        if !droplets_of(api, &tag)?.is_empty() {
            continue;
        }
        let resources = shared_of(api, &tag)?;
        if resources.is_empty() {
            continue;
        }
        out.push(Instance {
            id: String::new(),
            region: region.clone(),
            zone: None,
            instance_type: String::new(),
            state: InstanceState::Terminated,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: false,
            labels: vec![
                (DEPLOYMENT_LABEL.into(), dep.clone()),
                ("bpr-managed".into(), "true".into()),
            ],
            resources,
            created_at: None,
            detail: Some("firewall or SSH keys left without a droplet".into()),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_belong_to_exactly_one_deployment() {
        let tag = deployment_tag("dep-1").unwrap();
        let other = deployment_tag("dep-1-2").unwrap();
        assert!(is_key_of(&key_name(&tag, 0, 1), &tag));
        assert!(is_key_of(&key_name(&tag, 1, 3), &tag));
        assert!(!is_key_of(&key_name(&other, 0, 1), &tag));
        assert!(!is_key_of(&format!("{tag} key x"), &tag));
        assert_eq!(
            deployment_of_tag(&key_name(&tag, 2, 3)).as_deref(),
            Some("dep-1")
        );
        assert_eq!(deployment_of_tag(&other).as_deref(), Some("dep-1-2"));
        assert_eq!(deployment_of_tag("bpr:team:a"), None);
    }
}
