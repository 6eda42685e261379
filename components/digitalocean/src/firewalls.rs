//! Cloud firewalls: one per deployment, tagged (and so bound) with the
//! deployment's label tag only, inbound only the requested ports.

use provider_sdk::types::{Error, PortRule, Protocol};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{Api, PER_PAGE};
use crate::model;

#[derive(Deserialize)]
pub(crate) struct Firewall {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) tags: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct FirewallEnvelope {
    pub(crate) firewall: Firewall,
}

#[derive(Deserialize)]
pub(crate) struct FirewallsPage {
    pub(crate) firewalls: Vec<Firewall>,
    #[serde(default)]
    pub(crate) links: model::Links,
}

/// The firewall applied to `tag` (the deployment's), if one exists.
pub(crate) fn find_firewall(api: &Api, tag: &str) -> Result<Option<String>, Error> {
    let all = api.all_pages(
        &format!("/v2/firewalls?per_page={PER_PAGE}"),
        "listing firewalls",
        |p: FirewallsPage| (p.firewalls, p.links),
    )?;
    Ok(all
        .into_iter()
        .find(|f| f.tags.as_ref().is_some_and(|t| t.iter().any(|x| x == tag)))
        .map(|f| f.id))
}

/// The deployment's firewall (found by its tag, else created): inbound only
/// the requested ports, outbound everything, applied to droplets with `tag`.
pub(crate) fn ensure_firewall(
    api: &Api,
    name: &str,
    tag: &str,
    ports: &[PortRule],
) -> Result<String, Error> {
    if let Some(id) = find_firewall(api, tag)? {
        return Ok(id);
    }
    let inbound: Vec<Value> = ports.iter().map(inbound_rule).collect();
    let anywhere = json!({ "addresses": ["0.0.0.0/0", "::/0"] });
    let outbound = json!([
        // "0" is DigitalOcean's "all ports" (and the only value for ICMP).
        { "protocol": "tcp", "ports": "0", "destinations": anywhere },
        { "protocol": "udp", "ports": "0", "destinations": anywhere },
        { "protocol": "icmp", "ports": "0", "destinations": anywhere },
    ]);
    let env: FirewallEnvelope = api.post_json(
        "/v2/firewalls",
        &json!({
            "name": name,
            "tags": [tag],
            "inbound_rules": inbound,
            "outbound_rules": outbound,
        }),
        &format!("creating firewall {name}"),
    )?;
    Ok(env.firewall.id)
}

pub(crate) fn inbound_rule(rule: &PortRule) -> Value {
    let ports = match rule.end_port {
        Some(end) if end != rule.port => format!("{}-{end}", rule.port),
        _ => rule.port.to_string(),
    };
    let addresses: Vec<String> = if rule.source_cidrs.is_empty() {
        vec!["0.0.0.0/0".into(), "::/0".into()]
    } else {
        rule.source_cidrs.clone()
    };
    json!({
        "protocol": match rule.protocol { Protocol::Tcp => "tcp", Protocol::Udp => "udp" },
        "ports": ports,
        "sources": { "addresses": addresses },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_rules_name_only_the_requested_ports() {
        let rule = inbound_rule(&PortRule {
            port: 8000,
            end_port: Some(8010),
            protocol: Protocol::Tcp,
            source_cidrs: vec![],
        });
        assert_eq!(rule["ports"], "8000-8010");
        assert_eq!(rule["sources"]["addresses"], json!(["0.0.0.0/0", "::/0"]));
    }
}
