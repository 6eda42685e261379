//! The firewall rules of one instance: ingress rules whose `targetTags` name only
//! that instance (its network tag is its own name) and that open only the
//! requested ports, from only the requested sources.
//!
//! A Compute Engine rule has one source list, and may not mix IPv4 and IPv6
//! ranges, so the requested openings are grouped by (source list, IP version);
//! each group is one rule named `<instance>-fw<i>`. The names are derived from
//! the instance name, so a delete (or a crash recovery that only knows the
//! instance) finds them by listing `<instance>-fw[0-9]+`. The description records
//! the instance and its labels, so a rule whose instance never came up is still
//! found by its deployment label.

use std::collections::BTreeMap;

use provider_sdk::Error;
use provider_sdk::types::{PortRule, Protocol};
use serde_json::{Value, json};

/// Resource kind of a firewall rule in `resources`.
pub const KIND: &str = "firewall";
/// Prefix of our descriptions.
const DESCRIPTION_PREFIX: &str = "bpr:";
/// Google's limit on a description.
const MAX_DESCRIPTION: usize = 2048;

/// One rule to create.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Rule name.
    pub name: String,
    /// Source ranges (all IPv4 or all IPv6).
    pub sources: Vec<String>,
    /// Protocol -> port specs (`"22"`, `"9000-9001"`).
    pub allowed: Allowed,
}

/// Protocol -> port specs of one rule.
type Allowed = BTreeMap<&'static str, Vec<String>>;

/// The name of rule `i` of instance `instance`.
pub fn rule_name(instance: &str, i: usize) -> String {
    format!("{instance}-fw{i}")
}

/// The regular expression (Compute Engine `eq` filter form) matching the rules of `instance`.
pub fn name_pattern(instance: &str) -> String {
    format!("{instance}-fw[0-9]+")
}

/// True when `name` is one of `instance`'s rules.
pub fn is_rule_of(name: &str, instance: &str) -> bool {
    name.strip_prefix(instance)
        .and_then(|r| r.strip_prefix("-fw"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn check_cidr(c: &str) -> Result<bool, Error> {
    let bad = || {
        Error::InvalidRequest(format!(
            "source `{c}` is not a CIDR (`203.0.113.0/24`, `2001:db8::/32`)"
        ))
    };
    let (addr, len) = c.split_once('/').ok_or_else(bad)?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    if addr.contains(':') {
        let ok = len <= 128
            && addr
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if ok { Ok(true) } else { Err(bad()) }
    } else {
        let parts: Vec<&str> = addr.split('.').collect();
        let ok = len <= 32 && parts.len() == 4 && parts.iter().all(|p| p.parse::<u8>().is_ok());
        if ok { Ok(false) } else { Err(bad()) }
    }
}

/// The rules for `open` on `instance` (empty when nothing is to be opened).
pub fn plan(instance: &str, open: &[PortRule]) -> Result<Vec<Plan>, Error> {
    // (sources, ipv6) -> protocol -> ports
    let mut groups: BTreeMap<(Vec<String>, bool), Allowed> = BTreeMap::new();
    for rule in open {
        let end = rule.end_port.unwrap_or(rule.port);
        if end < rule.port {
            return Err(Error::InvalidRequest(format!(
                "port range {}-{end} ends before it starts",
                rule.port
            )));
        }
        let ports = if end == rule.port {
            rule.port.to_string()
        } else {
            format!("{}-{end}", rule.port)
        };
        let proto = match rule.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let sources: Vec<String> = if rule.source_cidrs.is_empty() {
            vec!["0.0.0.0/0".into()]
        } else {
            rule.source_cidrs
                .iter()
                .map(|s| s.trim().to_string())
                .collect()
        };
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for s in sources {
            if check_cidr(&s)? {
                v6.push(s)
            } else {
                v4.push(s)
            }
        }
        for (mut list, is_v6) in [(v4, false), (v6, true)] {
            if list.is_empty() {
                continue;
            }
            list.sort();
            list.dedup();
            let ports_of = groups
                .entry((list, is_v6))
                .or_default()
                .entry(proto)
                .or_default();
            if !ports_of.contains(&ports) {
                ports_of.push(ports.clone());
            }
        }
    }
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(i, ((sources, _), allowed))| Plan {
            name: rule_name(instance, i),
            sources,
            allowed,
        })
        .collect())
}

/// The description recording `instance_id` and its labels (the labels are
/// dropped if they do not fit).
pub fn description(instance_id: &str, labels: &[(String, String)]) -> String {
    let full = json!({ "instance": instance_id, "labels": labels_map(labels) });
    let text = format!("{DESCRIPTION_PREFIX}{full}");
    if text.len() <= MAX_DESCRIPTION {
        return text;
    }
    let deployment: Vec<(String, String)> = labels
        .iter()
        .filter(|(k, _)| k == crate::names::LABEL_DEPLOYMENT)
        .cloned()
        .collect();
    format!(
        "{DESCRIPTION_PREFIX}{}",
        json!({ "instance": instance_id, "labels": labels_map(&deployment) })
    )
}

fn labels_map(labels: &[(String, String)]) -> BTreeMap<&str, &str> {
    labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// The instance id and labels a description of ours records.
pub fn parse_description(d: &str) -> Option<(String, BTreeMap<String, String>)> {
    let v: Value = serde_json::from_str(d.strip_prefix(DESCRIPTION_PREFIX)?).ok()?;
    let instance = v.get("instance")?.as_str()?.to_string();
    let labels = serde_json::from_value(v.get("labels")?.clone()).ok()?;
    Some((instance, labels))
}

/// The insert body of `plan`, for `instance` (its network tag) on `network`.
pub fn body(plan: &Plan, instance: &str, network: &str, description: &str) -> Value {
    let allowed: Vec<Value> = plan
        .allowed
        .iter()
        .map(|(proto, ports)| json!({ "IPProtocol": proto, "ports": ports }))
        .collect();
    json!({
        "name": plan.name,
        "description": description,
        "network": format!("global/networks/{network}"),
        "direction": "INGRESS",
        "priority": 1000,
        "sourceRanges": plan.sources,
        "targetTags": [instance],
        "allowed": allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(port: u16, end: Option<u16>, proto: Protocol, src: &[&str]) -> PortRule {
        PortRule {
            port,
            end_port: end,
            protocol: proto,
            source_cidrs: src.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn rules_are_grouped_by_sources_and_open_only_the_requested_ports() {
        let plans = plan(
            "bpr-x",
            &[
                rule(22, None, Protocol::Tcp, &["198.51.100.0/24"]),
                rule(8080, None, Protocol::Tcp, &[]),
                rule(9000, Some(9001), Protocol::Udp, &[]),
                rule(
                    443,
                    None,
                    Protocol::Tcp,
                    &["2001:db8::/32", "198.51.100.0/24"],
                ),
            ],
        )
        .unwrap();
        assert_eq!(plans.len(), 3, "{plans:?}");
        let world = plans
            .iter()
            .find(|p| p.sources == ["0.0.0.0/0"])
            .expect("anywhere group");
        assert_eq!(world.allowed["tcp"], ["8080"]);
        assert_eq!(world.allowed["udp"], ["9000-9001"]);
        let office = plans
            .iter()
            .find(|p| p.sources == ["198.51.100.0/24"])
            .unwrap();
        assert_eq!(office.allowed["tcp"], ["22", "443"]);
        let v6 = plans
            .iter()
            .find(|p| p.sources == ["2001:db8::/32"])
            .unwrap();
        assert_eq!(v6.allowed["tcp"], ["443"]);
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bpr-x-fw0", "bpr-x-fw1", "bpr-x-fw2"]);
        assert!(plans.iter().all(|p| is_rule_of(&p.name, "bpr-x")));
        assert!(!is_rule_of("bpr-x2-fw0", "bpr-x") && !is_rule_of("bpr-x-fw", "bpr-x"));
    }

    #[test]
    fn the_body_targets_only_the_instance_tag() {
        let p = &plan("bpr-x", &[rule(22, None, Protocol::Tcp, &[])]).unwrap()[0];
        let b = body(p, "bpr-x", "default", "d");
        assert_eq!(b["targetTags"], json!(["bpr-x"]));
        assert_eq!(
            b["allowed"],
            json!([{"IPProtocol": "tcp", "ports": ["22"]}])
        );
        assert_eq!(b["sourceRanges"], json!(["0.0.0.0/0"]));
        assert_eq!(b["direction"], "INGRESS");
    }

    #[test]
    fn bad_ranges_and_sources_are_invalid_requests() {
        assert!(plan("x", &[rule(10, Some(5), Protocol::Tcp, &[])]).is_err());
        assert!(plan("x", &[rule(10, None, Protocol::Tcp, &["10.0.0.0"])]).is_err());
        assert!(plan("x", &[rule(10, None, Protocol::Tcp, &["300.0.0.0/8"])]).is_err());
        assert!(plan("x", &[]).unwrap().is_empty());
    }

    #[test]
    fn the_description_round_trips_the_instance_and_labels() {
        let labels = vec![("bpr-deployment".to_string(), "dep-1".to_string())];
        let d = description("us-central1-a/bpr-x", &labels);
        let (inst, back) = parse_description(&d).unwrap();
        assert_eq!(inst, "us-central1-a/bpr-x");
        assert_eq!(back["bpr-deployment"], "dep-1");
        let many: Vec<(String, String)> = (0..60)
            .map(|i| (format!("k{i}"), "v".repeat(60)))
            .chain(labels.clone())
            .collect();
        let short = description("z/x", &many);
        assert!(short.len() <= 2048);
        assert_eq!(parse_description(&short).unwrap().1.len(), 1);
        assert!(parse_description("someone else's rule").is_none());
    }
}
