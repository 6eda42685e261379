//! Deterministic names and ARM ids, and the tags every resource carries.
//!
//! A create is keyed by its idempotency key: every resource it makes is named
//! `<base>-<suffix>` with `base = bpr-<deployment>-<hash of the key>`, so a
//! retried create finds what an earlier attempt made, and a delete (or the
//! host's crash recovery, which only has the VM id) finds every part from the
//! VM's name alone. Every resource is also tagged, as it is created, with the
//! host's labels (at least `bpr-deployment`) and `bpr-instance = <base>`.
//!
//! Without the `resource_group` setting each create gets its own resource
//! group named `<base>` and tagged `bpr-owner = bpr`: deleting that group
//! deletes everything the create made, whatever state it is in.

use serde_json::{Map, Value};

use provider_sdk::Error;
use provider_sdk::types::Label;

/// Tag naming the instance a resource belongs to (its VM's name).
pub const TAG_INSTANCE: &str = "bpr-instance";
/// Tag naming the AKS cluster a resource group was created for.
pub const TAG_CLUSTER: &str = "bpr-cluster";
/// Tag on a resource group this component created and may delete.
pub const TAG_OWNER: &str = "bpr-owner";
/// Value of [`TAG_OWNER`].
pub const OWNER: &str = "bpr";
/// The host's deployment label.
pub const TAG_DEPLOYMENT: &str = "bpr-deployment";
/// Azure's limit on tags per resource.
const MAX_TAGS: usize = 50;
/// Azure's limit on a tag value.
const MAX_TAG_VALUE: usize = 256;
/// Characters kept from the deployment id in names (the whole base stays
/// within every Azure name limit: VM names 64, vnets 64, RGs 90).
const DEPLOYMENT_CHARS: usize = 40;

/// 64-bit FNV-1a (names only, not security).
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Lower-case `[a-z0-9-]` of `s`, other characters as `-`, at most `max` chars,
/// without leading or trailing `-`.
pub fn sanitize(s: &str, max: usize) -> String {
    let mapped: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .take(max)
        .collect();
    mapped.trim_matches('-').to_string()
}

/// `bpr-<deployment>-<8 hex of the key>`: the base name of a create.
pub fn base_name(deployment_id: &str, idempotency_key: &str) -> String {
    let dep = sanitize(deployment_id, DEPLOYMENT_CHARS);
    let hash = fnv1a(idempotency_key.as_bytes()) as u32;
    if dep.is_empty() {
        format!("bpr-{hash:08x}")
    } else {
        format!("bpr-{dep}-{hash:08x}")
    }
}

/// True when `s` is safe as one ARM path segment (names, ids, GUIDs).
pub fn is_safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'(' | b')'))
}

/// A region code as ARM writes it (`eastus`), safe in a path and a filter.
pub fn check_region(region: &str) -> Result<(), Error> {
    if !region.is_empty()
        && region.len() <= 40
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "`{region}` is not an Azure region name (lower-case letters and digits, e.g. eastus)"
        )))
    }
}

/// Where the resources of one instance or cluster live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub group: String,
    /// Base name (the VM's or the cluster's own name for instances).
    pub base: String,
    /// True when the group is this create's own (named `base`).
    pub owned_group: bool,
}

impl Place {
    /// The place of a new create: the operator's group, or one named `base`.
    pub fn new(subscription: String, operator_group: Option<String>, base: String) -> Self {
        match operator_group {
            Some(group) => Place {
                subscription,
                group,
                base,
                owned_group: false,
            },
            None => Place {
                subscription,
                group: base.clone(),
                base,
                owned_group: true,
            },
        }
    }

    /// `/subscriptions/{s}/resourceGroups/{g}`.
    pub fn group_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription, self.group
        )
    }

    /// The id of a resource of `kind` (`Microsoft.Network/virtualNetworks`) named `name`.
    pub fn resource_id(&self, kind: &str, name: &str) -> String {
        format!("{}/providers/{kind}/{name}", self.group_id())
    }
}

/// The operator's resource group must exist: the component never creates or
/// deletes it. `Ok` when `place` is a create's own group.
pub fn check_operator_group(arm: &crate::arm::Arm, place: &Place) -> Result<(), Error> {
    if place.owned_group {
        return Ok(());
    }
    let what = format!("reading resource group {}", place.group);
    match arm.get(&place.group_id(), crate::arm::RESOURCES_API, &what)? {
        Some(_) => Ok(()),
        None => Err(Error::InvalidRequest(format!(
            "resource group `{}` (setting resource_group) does not exist in subscription {}; create it, or unset the setting to let the provider make one per instance",
            place.group, place.subscription
        ))),
    }
}

/// A parsed resource id `/subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{type}/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub group: String,
    /// `Microsoft.Compute/virtualMachines`...
    pub kind: String,
    /// Resource name.
    pub name: String,
}

impl ResourceId {
    /// Parse an id of a resource of `kind` (case-insensitive, as ARM treats
    /// it); every segment must be a safe path segment. `what` names the id in
    /// the error.
    pub fn parse(id: &str, kind: &str, what: &str) -> Result<Self, Error> {
        let bad = || {
            Error::InvalidRequest(format!(
                "`{id}` is not the id of an Azure {what} (/subscriptions/<id>/resourceGroups/<group>/providers/{kind}/<name>)"
            ))
        };
        let parts: Vec<&str> = id.trim_start_matches('/').split('/').collect();
        let kind_parts: Vec<&str> = kind.split('/').collect();
        if parts.len() != 5 + kind_parts.len() + 1 {
            return Err(bad());
        }
        let ok = parts[0].eq_ignore_ascii_case("subscriptions")
            && parts[2].eq_ignore_ascii_case("resourceGroups")
            && parts[4].eq_ignore_ascii_case("providers")
            && parts[5..5 + kind_parts.len()]
                .iter()
                .zip(&kind_parts)
                .all(|(a, b)| a.eq_ignore_ascii_case(b));
        let name = parts[parts.len() - 1];
        if !ok
            || ![parts[1], parts[3], name]
                .iter()
                .all(|s| is_safe_segment(s))
        {
            return Err(bad());
        }
        Ok(ResourceId {
            subscription: parts[1].to_string(),
            group: parts[3].to_string(),
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }

    /// The place of this resource, assuming (until checked) the group is not owned.
    pub fn place(&self) -> Place {
        Place {
            subscription: self.subscription.clone(),
            group: self.group.clone(),
            base: self.name.clone(),
            owned_group: self.group.eq_ignore_ascii_case(&self.name),
        }
    }
}

/// The tags of a new resource: the labels (with `bpr-deployment`), and the
/// role tag (`bpr-instance = <VM name>` or `bpr-cluster = <cluster name>`);
/// `owner` adds `bpr-owner` (resource groups this component creates).
pub fn tags(
    labels: &[Label],
    deployment_id: &str,
    role: (&str, &str),
    owner: bool,
) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    out.insert(TAG_DEPLOYMENT.into(), Value::String(deployment_id.into()));
    for (k, v) in labels {
        if is_ours(k) {
            return Err(Error::InvalidRequest(format!(
                "label `{k}` is reserved by the azure provider"
            )));
        }
        if k.is_empty() || k.chars().any(|c| "<>%&\\?/".contains(c)) {
            return Err(Error::InvalidRequest(format!(
                "label key `{k}` cannot be an Azure tag name"
            )));
        }
        if v.len() > MAX_TAG_VALUE {
            return Err(Error::InvalidRequest(format!(
                "label `{k}`: Azure tag values are at most {MAX_TAG_VALUE} characters"
            )));
        }
        out.insert(k.clone(), Value::String(v.clone()));
    }
    out.insert(role.0.into(), Value::String(role.1.into()));
    if owner {
        out.insert(TAG_OWNER.into(), Value::String(OWNER.into()));
    }
    if out.len() > MAX_TAGS {
        return Err(Error::InvalidRequest(format!(
            "{} labels: Azure allows at most {MAX_TAGS} tags per resource (2 are the provider's)",
            labels.len()
        )));
    }
    Ok(out)
}

/// The host's labels read back from a resource's tags (the provider's own
/// tags are left out).
pub fn labels_from_tags(tags: Option<&Value>) -> Vec<Label> {
    let Some(Value::Object(map)) = tags else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| !is_ours(k))
        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
        .collect()
}

/// True for the tags this component sets for itself (not labels).
fn is_ours(key: &str) -> bool {
    key == TAG_INSTANCE || key == TAG_CLUSTER || key == TAG_OWNER
}

/// The value of tag `key`.
pub fn tag<'a>(tags: Option<&'a Value>, key: &str) -> Option<&'a str> {
    tags?.get(key)?.as_str()
}

/// True when `tags` carry every label of `wanted`.
pub fn has_labels(tags: Option<&Value>, wanted: &[Label]) -> bool {
    wanted.iter().all(|(k, v)| tag(tags, k) == Some(v.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_fit_every_azure_limit_and_differ_per_key() {
        let dep = "dep-a026e02f-3ac9-4948-99bf-e1931959fbb7-and-a-very-long-tail";
        let a = base_name(dep, "key-1");
        let b = base_name(dep, "key-2");
        assert_ne!(a, b);
        assert!(a.starts_with("bpr-dep-a026e02f-3ac9-4948-99bf-"), "{a}");
        assert!(a.len() + "-osdisk".len() <= 64, "{a}");
        assert_eq!(base_name(dep, "key-1"), a, "stable");
        assert!(
            base_name("Dep_ÄÖ 1", "k")
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
    }

    #[test]
    fn resource_ids_parse_case_insensitively_and_refuse_path_tricks() {
        let id = "/subscriptions/sub-1/resourcegroups/rg-1/providers/microsoft.compute/virtualMachines/vm-1";
        let r = ResourceId::parse(id, "Microsoft.Compute/virtualMachines", "VM").unwrap();
        assert_eq!((r.group.as_str(), r.name.as_str()), ("rg-1", "vm-1"));
        for bad in [
            "/subscriptions/s/resourceGroups/../providers/Microsoft.Compute/virtualMachines/v",
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v?x=1",
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v",
            "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v/extra",
            "vm-1",
        ] {
            assert!(
                ResourceId::parse(bad, "Microsoft.Compute/virtualMachines", "VM").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn tags_carry_labels_and_the_instance_and_read_back_without_ours() {
        let labels = vec![
            ("bpr-deployment".to_string(), "d1".to_string()),
            ("team".to_string(), "a_b/c".to_string()),
        ];
        let t = Value::Object(tags(&labels, "d1", (TAG_INSTANCE, "bpr-d1-0000"), true).unwrap());
        assert_eq!(tag(Some(&t), TAG_OWNER), Some(OWNER));
        assert_eq!(tag(Some(&t), TAG_INSTANCE), Some("bpr-d1-0000"));
        let mut back = labels_from_tags(Some(&t));
        back.sort();
        assert_eq!(back, labels);
        assert!(has_labels(Some(&t), &labels[1..]));
        assert!(!has_labels(
            Some(&t),
            &[("team".to_string(), "x".to_string())]
        ));
        assert!(
            tags(
                &[("bpr-owner".into(), "x".into())],
                "d",
                (TAG_INSTANCE, "b"),
                false
            )
            .is_err()
        );
    }
}
