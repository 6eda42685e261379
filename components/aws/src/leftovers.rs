//! What a deployment's creates made next to its instances (key pairs,
//! security groups), found by the deployment alone: the `bpr-deployment` tag
//! they carry from the moment they exist (`TagSpecification` on the create
//! call); their names are derived from it too (`bpr-<deployment>`,
//! `bpr-<deployment>-<8 hex>`). This is how `delete-instance` removes them
//! when the instance is unknown, already gone, or was never made, and how
//! `list-instances` reports them when no instance is left.

use std::collections::{BTreeMap, BTreeSet};

use provider_sdk::Error;
use provider_sdk::types::{DeleteStatus, Instance, InstanceState, Label, ResourceRef};

use crate::ec2::{self, Node, Params, items, text};
use crate::instances::{self, KIND_KEY, KIND_SG};

/// The label every resource of a deployment carries.
pub const DEPLOYMENT_LABEL: &str = "bpr-deployment";

/// One side resource and the labels it carries.
struct Side {
    resource: ResourceRef,
    labels: Vec<Label>,
}

/// The deployment named by `labels`, if any.
pub fn deployment_of(labels: &[Label]) -> Option<&str> {
    labels
        .iter()
        .find(|(k, _)| k == DEPLOYMENT_LABEL)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The name of the key pair a create imports: `bpr-<deployment>-<8 hex>`.
pub fn key_name(deployment: &str, hash: u32) -> String {
    format!("bpr-{deployment}-{hash:08x}")
}

/// The name of the deployment's security group.
pub fn group_name(deployment: &str) -> String {
    format!("bpr-{deployment}")
}

/// User tags of a `tagSet` (the bookkeeping ones dropped).
fn tags_of(node: Node<'_, '_>) -> Vec<Label> {
    items(node, "tagSet")
        .into_iter()
        .filter_map(|t| Some((text(t, "key")?, text(t, "value").unwrap_or_default())))
        .filter(|(k, _)| k != "Name" && !k.starts_with("aws:") && k != instances::IDEMPOTENCY_TAG)
        .collect()
}

/// `Filter.N` for each label (tag filters), starting at `n`.
fn tag_filters(p: &mut Params, labels: &[Label]) {
    for (i, (k, v)) in labels.iter().enumerate() {
        p.filter(i + 1, &format!("tag:{k}"), &[v.as_str()]);
    }
}

/// Security groups and key pairs in `region` carrying every label in `labels`.
fn find_tagged(region: &str, labels: &[Label]) -> Result<Vec<Side>, Error> {
    let mut out = Vec::new();
    let mut p = Params::default();
    tag_filters(&mut p, labels);
    let xml = ec2::call(region, "DescribeSecurityGroups", &p.0)?;
    let doc = ec2::parse(&xml, "DescribeSecurityGroups")?;
    for g in items(doc.root_element(), "securityGroupInfo") {
        if let Some(id) = text(g, "groupId") {
            out.push(Side {
                resource: ResourceRef {
                    kind: KIND_SG.into(),
                    id,
                },
                labels: tags_of(g),
            });
        }
    }
    let xml = ec2::call(region, "DescribeKeyPairs", &p.0)?;
    let doc = ec2::parse(&xml, "DescribeKeyPairs")?;
    for k in items(doc.root_element(), "keySet") {
        if let Some(name) = text(k, "keyName") {
            out.push(Side {
                resource: ResourceRef {
                    kind: KIND_KEY.into(),
                    id: name,
                },
                labels: tags_of(k),
            });
        }
    }
    Ok(out)
}

/// Everything `deployment` made next to its instances in `region`. The
/// `bpr-deployment` tag is given by the very call that creates a key pair or
/// a group (`TagSpecification`), so the tag alone finds all of them.
fn find_of(region: &str, deployment: &str) -> Result<Vec<ResourceRef>, Error> {
    let label = [(DEPLOYMENT_LABEL.to_string(), deployment.to_string())];
    Ok(find_tagged(region, &label)?
        .into_iter()
        .map(|s| s.resource)
        .collect())
}

/// Delete what `deployment` left in `region`. Its live instances are
/// terminated first when `with_instances` (a delete with an empty id);
/// otherwise they are kept, and so is every resource one of them still uses.
/// `in-progress` while an instance is still shutting down or a group is
/// still attached.
pub fn delete(region: &str, deployment: &str, with_instances: bool) -> Result<DeleteStatus, Error> {
    let live = instances::live_of(region, deployment)?;
    if with_instances && !live.is_empty() {
        let running: Vec<&Instance> = live
            .iter()
            .filter(|i| i.state != InstanceState::Terminating)
            .collect();
        if !running.is_empty() {
            let mut p = Params::default();
            for (n, i) in running.iter().enumerate() {
                p.add(format!("InstanceId.{}", n + 1), i.id.as_str());
            }
            match ec2::call(region, "TerminateInstances", &p.0) {
                Ok(_) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // Groups and keys go once nothing can use them any more.
        return Ok(DeleteStatus::InProgress);
    }
    let all_gone = delete_unused(&live, region, &find_of(region, deployment)?)?;
    Ok(if all_gone {
        DeleteStatus::Deleted
    } else {
        DeleteStatus::InProgress
    })
}

/// Delete each of `resources` that none of `live` (instances of the same
/// deployment) uses. True when all of those are gone now.
pub fn delete_unused(
    live: &[Instance],
    region: &str,
    resources: &[ResourceRef],
) -> Result<bool, Error> {
    let in_use: BTreeSet<(&str, &str)> = live
        .iter()
        .flat_map(|i| i.resources.iter())
        .map(|r| (r.kind.as_str(), r.id.as_str()))
        .collect();
    let mut all_gone = true;
    for r in resources {
        if in_use.contains(&(r.kind.as_str(), r.id.as_str())) {
            continue;
        }
        all_gone &= delete_resource(region, r)?;
    }
    Ok(all_gone)
}

/// Delete one created resource. `Ok(false)` when it must wait (still attached).
pub fn delete_resource(region: &str, r: &ResourceRef) -> Result<bool, Error> {
    let (action, key) = match r.kind.as_str() {
        KIND_SG => ("DeleteSecurityGroup", "GroupId"),
        KIND_KEY => ("DeleteKeyPair", "KeyName"),
        _ => return Ok(true),
    };
    let params = vec![(key.to_string(), r.id.clone())];
    match ec2::call(region, action, &params) {
        Ok(_) | Err(Error::NotFound(_)) => Ok(true),
        // DependencyViolation: the group is still attached to a terminating instance.
        Err(Error::Other(m)) if m.contains("DependencyViolation") => Ok(false),
        Err(Error::InvalidRequest(m)) if m.contains("InvalidGroup.InUse") => Ok(false),
        Err(e) => Err(e),
    }
}

/// For `list-instances`: one entry per deployment whose side resources carry
/// every label in `labels` but which has no instance in `listed` (its
/// instances are gone, or were never made). The entry has an empty `id`, state
/// `terminated`, the resources' labels and the resources themselves; the
/// host deletes them with `delete-instance` and that empty id.
pub fn orphaned(
    region: &str,
    labels: &[Label],
    listed: &[Instance],
) -> Result<Vec<Instance>, Error> {
    let with_instances: BTreeSet<&str> = listed
        .iter()
        .filter_map(|i| deployment_of(&i.labels))
        .collect();
    let mut by_deployment: BTreeMap<String, (Vec<Label>, Vec<ResourceRef>)> = BTreeMap::new();
    for side in find_tagged(region, labels)? {
        let Some(dep) = deployment_of(&side.labels).map(str::to_string) else {
            continue;
        };
        if with_instances.contains(dep.as_str()) {
            continue;
        }
        let entry = by_deployment
            .entry(dep)
            .or_insert_with(|| (side.labels.clone(), Vec::new()));
        entry.1.push(side.resource);
    }
    Ok(by_deployment
        .into_values()
        .map(|(labels, resources)| Instance {
            id: String::new(),
            region: region.to_string(),
            zone: None,
            instance_type: String::new(),
            state: InstanceState::Terminated,
            public_ipv4: None,
            private_ipv4: None,
            public_ipv6: None,
            spot: false,
            labels,
            resources,
            created_at: None,
            detail: Some("resources left without an instance".into()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_derived_from_the_deployment() {
        assert_eq!(key_name("dep-1", 0xdeadbeef), "bpr-dep-1-deadbeef");
        assert_eq!(group_name("dep-1"), "bpr-dep-1");
    }

    #[test]
    fn the_deployment_label_is_found_and_an_empty_one_is_none() {
        let l = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            deployment_of(&[l("team", "a"), l(DEPLOYMENT_LABEL, "dep-9")]),
            Some("dep-9")
        );
        assert_eq!(deployment_of(&[l(DEPLOYMENT_LABEL, "")]), None);
        assert_eq!(deployment_of(&[]), None);
    }
}
