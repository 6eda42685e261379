//! The firewall group of a create: inbound openings for exactly the requested
//! ports, nothing else (a Vultr group drops every inbound packet no rule
//! accepts; outbound is not filtered). It is made before the instance and
//! attached in the create request, so the machine is never reachable on
//! another port.
//!
//! Groups carry no tags: the group's description is the create's
//! deterministic name ([`crate::model::side_name`]), which is how a retry
//! finds it. Bare metal cannot join firewall groups.

use std::net::IpAddr;

use provider_sdk::types::{Error, PortRule, Protocol};
use serde_json::json;

use crate::api::Api;
use crate::model::{FirewallGroup, FirewallGroupEnvelope, FirewallGroupsPage, FirewallRulesPage};

/// One inbound opening of a group.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// `v4` or `v6`.
    pub ip_type: &'static str,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    /// `22` or `8000:9000`.
    pub port: String,
    /// Network address.
    pub subnet: String,
    /// Prefix length.
    pub subnet_size: u8,
}

/// Resource kind of a firewall group made for a create.
pub const KIND: &str = "firewall-group";
/// Vultr's limit on rules per group.
pub const MAX_RULES: usize = 50;

/// One `ip_type`/`subnet`/`subnet_size` from a CIDR (`a.b.c.d/n`, `x::/n`, or a
/// bare address for one host).
pub fn parse_cidr(cidr: &str) -> Result<(&'static str, String, u8), Error> {
    let bad = || {
        Error::InvalidRequest(format!(
            "source `{cidr}` of a port rule is not an IPv4 or IPv6 CIDR (e.g. 198.51.100.0/24)"
        ))
    };
    let (addr, size) = match cidr.trim().split_once('/') {
        Some((a, n)) => (a, Some(n.parse::<u8>().map_err(|_| bad())?)),
        None => (cidr.trim(), None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad())?;
    let (kind, max) = match ip {
        IpAddr::V4(_) => ("v4", 32),
        IpAddr::V6(_) => ("v6", 128),
    };
    let size = size.unwrap_or(max);
    if size > max {
        return Err(bad());
    }
    Ok((kind, ip.to_string(), size))
}

/// The rules the openings need: one per (port range, source); no source
/// means anywhere, IPv4 and IPv6. Port ranges use Vultr's colon (`8000:9000`).
pub fn wanted_rules(ports: &[PortRule]) -> Result<Vec<Rule>, Error> {
    let mut out: Vec<Rule> = Vec::new();
    for rule in ports {
        let port = match rule.end_port {
            Some(end) if end < rule.port => {
                return Err(Error::InvalidRequest(format!(
                    "port range {}-{end} ends before it starts",
                    rule.port
                )));
            }
            Some(end) if end != rule.port => format!("{}:{end}", rule.port),
            _ => rule.port.to_string(),
        };
        let protocol = match rule.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        let anywhere = ["0.0.0.0/0".to_string(), "::/0".to_string()];
        let sources = if rule.source_cidrs.is_empty() {
            &anywhere[..]
        } else {
            &rule.source_cidrs[..]
        };
        for cidr in sources {
            let (ip_type, subnet, subnet_size) = parse_cidr(cidr)?;
            let r = Rule {
                ip_type,
                protocol,
                port: port.clone(),
                subnet,
                subnet_size,
            };
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    if out.len() > MAX_RULES {
        return Err(Error::InvalidRequest(format!(
            "the open ports need {} firewall rules; a Vultr firewall group holds at most {MAX_RULES}: merge ranges or sources",
            out.len()
        )));
    }
    Ok(out)
}

fn same_rule(have: &crate::model::FirewallRule, want: &Rule) -> bool {
    have.ip_type().eq_ignore_ascii_case(want.ip_type)
        && have.protocol.eq_ignore_ascii_case(want.protocol)
        && have.port == want.port
        && have.subnet == want.subnet
        && have.subnet_size == want.subnet_size
}

/// Every firewall group.
pub fn list(api: &Api) -> Result<Vec<FirewallGroup>, Error> {
    api.all_pages(
        "/firewalls",
        "listing firewall groups",
        |p: FirewallGroupsPage| (p.firewall_groups, p.meta),
    )
}

/// The group named `name` with (at least) `rules`: found among `groups`
/// (every group of the account) or made; the rules it lacks are added. A
/// group this call made is deleted again when adding its rules fails for
/// good.
pub fn ensure(
    api: &Api,
    groups: &[FirewallGroup],
    name: &str,
    rules: &[Rule],
) -> Result<String, Error> {
    let existing = groups.iter().find(|g| g.description == name);
    let (id, made) = match existing {
        Some(g) => (g.id.clone(), false),
        None => {
            let env: FirewallGroupEnvelope = api.post_json(
                "/firewalls",
                &json!({ "description": name }),
                &format!("creating firewall group `{name}`"),
            )?;
            (env.firewall_group.id, true)
        }
    };
    let result = add_missing_rules(api, &id, rules);
    if let Err(e) = result {
        if made
            && crate::errors::is_final(&e)
            && let Err(cleanup) =
                api.delete(&format!("/firewalls/{id}"), "deleting a firewall group")
        {
            provider_sdk::log::warn(&format!(
                "firewall group {id} made for a failed create could not be deleted: {}",
                provider_sdk::errors::message(&cleanup)
            ));
        }
        return Err(e);
    }
    Ok(id)
}

fn add_missing_rules(api: &Api, id: &str, rules: &[Rule]) -> Result<(), Error> {
    let path = format!("/firewalls/{id}/rules");
    let have = api.all_pages(&path, "listing firewall rules", |p: FirewallRulesPage| {
        (p.firewall_rules, p.meta)
    })?;
    for r in rules
        .iter()
        .filter(|r| !have.iter().any(|h| same_rule(h, r)))
    {
        let _: serde_json::Value = api.post_json(
            &path,
            &json!({
                "ip_type": r.ip_type,
                "protocol": r.protocol,
                "subnet": r.subnet,
                "subnet_size": r.subnet_size,
                "port": r.port,
                "notes": "opened by bpr",
            }),
            &format!(
                "opening {} {} from {}/{}",
                r.protocol, r.port, r.subnet, r.subnet_size
            ),
        )?;
    }
    Ok(())
}

/// What deleting a group did.
#[derive(Debug, PartialEq)]
pub enum Deleted {
    /// Gone (or already gone).
    Gone,
    /// Vultr refused: the group is still attached to a machine that is being
    /// destroyed. Try again later.
    StillAttached,
}

/// Delete group `id`.
pub fn delete(api: &Api, id: &str) -> Result<Deleted, Error> {
    let id = crate::api::path_segment(id, "firewall group id")?;
    match api.delete(
        &format!("/firewalls/{id}"),
        &format!("deleting firewall group {id}"),
    ) {
        Ok(_) => Ok(Deleted::Gone),
        Err(Error::InvalidRequest(_)) => Ok(Deleted::StillAttached),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(port: u16, end: Option<u16>, protocol: Protocol, from: &[&str]) -> PortRule {
        PortRule {
            port,
            end_port: end,
            protocol,
            source_cidrs: from.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn openings_become_one_rule_per_source_with_colon_ranges() {
        let rules = wanted_rules(&[
            rule(22, None, Protocol::Tcp, &["198.51.100.0/24"]),
            rule(9000, Some(9001), Protocol::Udp, &[]),
        ])
        .unwrap();
        let got: Vec<(&str, &str, &str, &str, u8)> = rules
            .iter()
            .map(|r| {
                (
                    r.ip_type,
                    r.protocol,
                    r.port.as_str(),
                    r.subnet.as_str(),
                    r.subnet_size,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("v4", "tcp", "22", "198.51.100.0", 24),
                ("v4", "udp", "9000:9001", "0.0.0.0", 0),
                ("v6", "udp", "9000:9001", "::", 0),
            ]
        );
    }

    #[test]
    fn bare_addresses_are_single_hosts_and_bad_sources_are_invalid() {
        assert_eq!(
            parse_cidr("2001:db8::1").unwrap(),
            ("v6", "2001:db8::1".to_string(), 128)
        );
        for bad in ["10.0.0.0/33", "example.com", "10.0.0/8"] {
            assert!(
                matches!(parse_cidr(bad), Err(Error::InvalidRequest(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn more_rules_than_a_group_holds_is_an_invalid_request() {
        let many: Vec<PortRule> = (0..30)
            .map(|p| rule(1000 + p, None, Protocol::Tcp, &[]))
            .collect();
        assert!(matches!(
            wanted_rules(&many),
            Err(Error::InvalidRequest(m)) if m.contains("at most 50")
        ));
    }
}
