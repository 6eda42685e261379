//! Request bodies of the network a VM gets (clouds.md §4.2): a virtual
//! network with one subnet, a network security group opening exactly the
//! requested ports, a Standard static public IP and a NIC joining them. Pure
//! functions: no HTTP here.

use serde_json::{Map, Value, json};

use provider_sdk::Error;
use provider_sdk::types::{PortRule, Protocol};

/// Resource kinds (ARM types) and the name suffix of each part of an instance.
pub const VNET: &str = "Microsoft.Network/virtualNetworks";
/// Network security group.
pub const NSG: &str = "Microsoft.Network/networkSecurityGroups";
/// Public IP address.
pub const PIP: &str = "Microsoft.Network/publicIPAddresses";
/// Network interface.
pub const NIC: &str = "Microsoft.Network/networkInterfaces";
/// Managed disk.
pub const DISK: &str = "Microsoft.Compute/disks";
/// Virtual machine.
pub const VM: &str = "Microsoft.Compute/virtualMachines";

/// The name of `base`'s part of kind `kind`.
pub fn part_name(base: &str, kind: &str) -> String {
    let suffix = match kind {
        VNET => "-vnet",
        NSG => "-nsg",
        PIP => "-ip",
        NIC => "-nic",
        DISK => "-osdisk",
        _ => "",
    };
    format!("{base}{suffix}")
}

/// The subnet's name inside the vnet.
pub const SUBNET: &str = "default";

/// The first /24 of a /16 (or wider) IPv4 prefix: the subnet of `prefix`.
pub fn subnet_of(prefix: &str) -> Result<String, Error> {
    let bad = || {
        Error::InvalidRequest(format!(
            "vnet_prefix `{prefix}` is not an IPv4 prefix of /24 or wider (e.g. 10.0.0.0/16)"
        ))
    };
    let (addr, len) = prefix.split_once('/').ok_or_else(bad)?;
    let len: u8 = len.parse().map_err(|_| bad())?;
    let octets: Vec<u8> = addr
        .split('.')
        .map(|o| o.parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if octets.len() != 4 || !(8..=24).contains(&len) {
        return Err(bad());
    }
    Ok(format!("{}.{}.{}.0/24", octets[0], octets[1], octets[2]))
}

/// `PUT virtualNetworks/{name}`: the address space and its one subnet (a PUT
/// carries the whole state, so the subnet is always in it).
pub fn vnet_body(location: &str, tags: &Map<String, Value>, prefix: &str) -> Result<Value, Error> {
    Ok(json!({
        "location": location,
        "tags": tags,
        "properties": {
            "addressSpace": { "addressPrefixes": [prefix] },
            "subnets": [{ "name": SUBNET, "properties": { "addressPrefix": subnet_of(prefix)? } }],
        },
    }))
}

/// One inbound Allow rule per opening, priorities 100, 110, ... Everything
/// else stays closed by the NSG's default rules.
pub fn security_rules(ports: &[PortRule]) -> Result<Vec<Value>, Error> {
    if ports.len() > 390 {
        return Err(Error::InvalidRequest(format!(
            "{} port openings: an Azure NSG holds at most 390 rules in priorities 100-4000",
            ports.len()
        )));
    }
    ports
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let end = rule.end_port.unwrap_or(rule.port);
            if end < rule.port {
                return Err(Error::InvalidRequest(format!(
                    "port range {}-{end} ends before it starts",
                    rule.port
                )));
            }
            if rule.port == 0 {
                return Err(Error::InvalidRequest("port 0 cannot be opened".into()));
            }
            let range = if end == rule.port {
                rule.port.to_string()
            } else {
                format!("{}-{end}", rule.port)
            };
            let mut props = json!({
                "priority": 100 + 10 * i,
                "direction": "Inbound",
                "access": "Allow",
                "protocol": match rule.protocol { Protocol::Tcp => "Tcp", Protocol::Udp => "Udp" },
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": range,
            });
            match rule.source_cidrs.as_slice() {
                [] => props["sourceAddressPrefix"] = json!("*"),
                [one] => props["sourceAddressPrefix"] = json!(one),
                many => props["sourceAddressPrefixes"] = json!(many),
            }
            Ok(json!({ "name": format!("bpr-in-{i}"), "properties": props }))
        })
        .collect()
}

/// `PUT networkSecurityGroups/{name}`.
pub fn nsg_body(
    location: &str,
    tags: &Map<String, Value>,
    ports: &[PortRule],
) -> Result<Value, Error> {
    Ok(json!({
        "location": location,
        "tags": tags,
        "properties": { "securityRules": security_rules(ports)? },
    }))
}

/// `PUT publicIPAddresses/{name}`: Standard SKU (closed to inbound traffic
/// unless the NSG opens it), static, deleted together with its VM.
pub fn pip_body(location: &str, tags: &Map<String, Value>, zone: Option<&str>) -> Value {
    let mut body = json!({
        "location": location,
        "tags": tags,
        "sku": { "name": "Standard" },
        "properties": {
            "publicIPAllocationMethod": "Static",
            "publicIPAddressVersion": "IPv4",
            "deleteOption": "Delete",
        },
    });
    if let Some(z) = zone {
        body["zones"] = json!([z]);
    }
    body
}

/// `PUT networkInterfaces/{name}`: one IP configuration in the subnet with
/// the public IP, and the NSG.
pub fn nic_body(
    location: &str,
    tags: &Map<String, Value>,
    subnet_id: &str,
    pip_id: &str,
    nsg_id: &str,
) -> Value {
    json!({
        "location": location,
        "tags": tags,
        "properties": {
            "ipConfigurations": [{
                "name": "ipconfig1",
                "properties": {
                    "subnet": { "id": subnet_id },
                    "publicIPAddress": { "id": pip_id, "properties": { "deleteOption": "Delete" } },
                    "privateIPAllocationMethod": "Dynamic",
                    "primary": true,
                },
            }],
            "networkSecurityGroup": { "id": nsg_id },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(port: u16, end: Option<u16>, protocol: Protocol, cidrs: &[&str]) -> PortRule {
        PortRule {
            port,
            end_port: end,
            protocol,
            source_cidrs: cidrs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn security_rules_open_exactly_the_requested_ports() {
        let rules = security_rules(&[
            rule(22, None, Protocol::Tcp, &["198.51.100.0/24"]),
            rule(9000, Some(9001), Protocol::Udp, &[]),
            rule(443, None, Protocol::Tcp, &["10.0.0.0/8", "2001:db8::/32"]),
        ])
        .unwrap();
        assert_eq!(rules.len(), 3);
        let p: Vec<&Value> = rules.iter().map(|r| &r["properties"]).collect();
        assert_eq!(p[0]["destinationPortRange"], "22");
        assert_eq!(p[0]["sourceAddressPrefix"], "198.51.100.0/24");
        assert_eq!(p[0]["priority"], 100);
        assert_eq!(p[1]["protocol"], "Udp");
        assert_eq!(p[1]["destinationPortRange"], "9000-9001");
        assert_eq!(p[1]["sourceAddressPrefix"], "*");
        assert_eq!(
            p[2]["sourceAddressPrefixes"],
            json!(["10.0.0.0/8", "2001:db8::/32"])
        );
        assert!(
            p.iter()
                .all(|r| r["access"] == "Allow" && r["direction"] == "Inbound")
        );
        assert!(security_rules(&[rule(10, Some(5), Protocol::Tcp, &[])]).is_err());
    }

    #[test]
    fn the_subnet_is_the_first_slash_24_of_the_prefix() {
        assert_eq!(subnet_of("10.0.0.0/16").unwrap(), "10.0.0.0/24");
        assert_eq!(subnet_of("172.20.5.0/24").unwrap(), "172.20.5.0/24");
        assert!(subnet_of("10.0.0.0/28").is_err());
        assert!(subnet_of("ten/16").is_err());
    }
}
