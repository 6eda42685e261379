//! Vultr API shapes (the fields we read), the tags that carry host labels, and
//! instances / bare metals as WIT instances. Pure: no HTTP here.

use provider_sdk::types::{Error, Instance, InstanceState, Label, ResourceRef};
use serde::{Deserialize, Deserializer};

/// Prefix of the tags that carry host labels: `bpr:<key>:<encoded value>`.
pub const LABEL_TAG_PREFIX: &str = "bpr:";
/// Prefix of the tag that carries the idempotency key of a create.
pub const IDEMPOTENCY_TAG_PREFIX: &str = "bpr-idem:";
/// Longest tag we write (Vultr documents no limit; DigitalOcean's 255 is kept).
const MAX_TAG_LEN: usize = 255;

/// A JSON `null` read as the type's default (Vultr sends `null` for some
/// empty lists and strings).
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `meta` of a paged answer.
#[derive(Debug, Default, Deserialize)]
pub struct Meta {
    /// Cursors.
    #[serde(default)]
    pub links: Option<Links>,
}

/// `meta.links`.
#[derive(Debug, Default, Deserialize)]
pub struct Links {
    /// Cursor of the next page; `""` on the last page.
    #[serde(default)]
    pub next: Option<String>,
}

impl Meta {
    /// The next page's cursor, if any.
    pub fn next(&self) -> Option<String> {
        self.links
            .as_ref()
            .and_then(|l| l.next.clone())
            .filter(|n| !n.is_empty())
    }
}

// ---- instances and bare metals ---------------------------------------------

/// An instance (`/instances`) or a bare-metal machine (`/bare-metals`): the
/// fields both share that we read.
#[derive(Debug, Deserialize)]
pub struct Server {
    /// Id (UUID).
    pub id: String,
    /// Region id (`ewr`).
    #[serde(default, deserialize_with = "null_default")]
    pub region: String,
    /// Plan id.
    #[serde(default, deserialize_with = "null_default")]
    pub plan: String,
    /// `pending`, `active`, `suspended`, `resizing`.
    #[serde(default, deserialize_with = "null_default")]
    pub status: String,
    /// `running`, `stopped` (instances only).
    #[serde(default)]
    pub power_status: Option<String>,
    /// `none`, `locked`, `installingbooting`, `ok` (instances only).
    #[serde(default)]
    pub server_status: Option<String>,
    /// Public IPv4; `0.0.0.0` or empty until assigned.
    #[serde(default)]
    pub main_ip: Option<String>,
    /// Private IPv4 (with a VPC).
    #[serde(default)]
    pub internal_ip: Option<String>,
    /// Main IPv6 address (live API; not in the 2023 spec).
    #[serde(default)]
    pub v6_main_ip: Option<String>,
    /// IPv6 networks (spec).
    #[serde(default, deserialize_with = "null_default")]
    pub v6_networks: Vec<V6Network>,
    /// The label we set.
    #[serde(default, deserialize_with = "null_default")]
    pub label: String,
    /// Tags.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Vec<String>,
    /// Creation time (`2021-09-14T13:22:20+00:00`).
    #[serde(default)]
    pub date_created: Option<String>,
}

/// One IPv6 network of an instance.
#[derive(Debug, Deserialize)]
pub struct V6Network {
    /// Main address in the network.
    #[serde(default)]
    pub main_ip: Option<String>,
}

/// `{instance: ...}`.
#[derive(Debug, Deserialize)]
pub struct InstanceEnvelope {
    /// The instance.
    pub instance: Server,
}

/// `{bare_metal: ...}` (the spec's schema says `baremetal`, its examples and
/// the live API `bare_metal`).
#[derive(Debug, Deserialize)]
pub struct BareMetalEnvelope {
    /// The machine.
    #[serde(alias = "baremetal")]
    pub bare_metal: Server,
}

/// One page of `GET /instances`.
#[derive(Debug, Deserialize)]
pub struct InstancesPage {
    /// Instances on this page.
    #[serde(default, deserialize_with = "null_default")]
    pub instances: Vec<Server>,
    /// Cursors.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// One page of `GET /bare-metals`.
#[derive(Debug, Deserialize)]
pub struct BareMetalsPage {
    /// Machines on this page.
    #[serde(default, deserialize_with = "null_default")]
    pub bare_metals: Vec<Server>,
    /// Cursors.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// Vultr instance state -> WIT state. Ready means `active`, `running` and
/// `ok` (the server has finished installing and booting); an active machine
/// still installing is `pending`. Bare metal reports neither power nor server
/// status: `active` is running.
pub fn instance_state(s: &Server) -> InstanceState {
    let power = s.power_status.as_deref().unwrap_or("running");
    let server = s.server_status.as_deref().unwrap_or("ok");
    match (s.status.as_str(), power, server) {
        ("pending", _, _) | ("resizing", _, _) => InstanceState::Pending,
        ("active", "running", "ok") => InstanceState::Running,
        ("active", "running", _) => InstanceState::Pending,
        ("active", "stopped", _) | ("suspended", _, _) => InstanceState::Stopped,
        _ => InstanceState::Unknown,
    }
}

/// An address as Vultr reports it, or `None` for "not assigned yet".
fn assigned(ip: Option<&str>) -> Option<String> {
    ip.map(str::trim)
        .filter(|ip| !ip.is_empty() && *ip != "0.0.0.0" && *ip != "::")
        .map(str::to_string)
}

/// A Vultr machine as a WIT instance; `resources` are the ones the host passed
/// back (or those just created).
pub fn instance_from_server(s: &Server, resources: Vec<ResourceRef>) -> Instance {
    let ipv6 = assigned(s.v6_main_ip.as_deref()).or_else(|| {
        s.v6_networks
            .iter()
            .find_map(|n| assigned(n.main_ip.as_deref()))
    });
    Instance {
        id: s.id.clone(),
        region: s.region.clone(),
        zone: None,
        instance_type: s.plan.clone(),
        state: instance_state(s),
        public_ipv4: assigned(s.main_ip.as_deref()),
        private_ipv4: assigned(s.internal_ip.as_deref()),
        public_ipv6: ipv6,
        spot: false,
        labels: labels_from_tags(&s.tags),
        resources,
        created_at: s
            .date_created
            .as_deref()
            .and_then(provider_sdk::time::parse_rfc3339),
        detail: Some(format!(
            "{} is {}{}{}",
            if s.label.is_empty() { &s.id } else { &s.label },
            s.status,
            s.power_status
                .as_deref()
                .map(|p| format!(", power {p}"))
                .unwrap_or_default(),
            s.server_status
                .as_deref()
                .map(|p| format!(", server {p}"))
                .unwrap_or_default(),
        )),
    }
}

// ---- SSH keys, firewalls, operating systems ---------------------------------

/// A registered SSH key.
#[derive(Debug, Deserialize)]
pub struct SshKey {
    /// Id.
    pub id: String,
    /// Name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// The OpenSSH public key line.
    #[serde(default, deserialize_with = "null_default")]
    pub ssh_key: String,
}

/// `{ssh_key: ...}`.
#[derive(Debug, Deserialize)]
pub struct SshKeyEnvelope {
    /// The key.
    pub ssh_key: SshKey,
}

/// One page of `GET /ssh-keys`.
#[derive(Debug, Deserialize)]
pub struct SshKeysPage {
    /// Keys on this page.
    #[serde(default, deserialize_with = "null_default")]
    pub ssh_keys: Vec<SshKey>,
    /// Cursors.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// A firewall group.
#[derive(Debug, Deserialize)]
pub struct FirewallGroup {
    /// Id.
    pub id: String,
    /// The description we set (our deterministic name).
    #[serde(default, deserialize_with = "null_default")]
    pub description: String,
}

/// `{firewall_group: ...}`.
#[derive(Debug, Deserialize)]
pub struct FirewallGroupEnvelope {
    /// The group.
    pub firewall_group: FirewallGroup,
}

/// One page of `GET /firewalls`.
#[derive(Debug, Deserialize)]
pub struct FirewallGroupsPage {
    /// Groups on this page.
    #[serde(default, deserialize_with = "null_default")]
    pub firewall_groups: Vec<FirewallGroup>,
    /// Cursors.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// A rule of a firewall group, as Vultr answers it.
#[derive(Debug, Clone, Deserialize)]
pub struct FirewallRule {
    /// `v4` or `v6`.
    #[serde(default)]
    pub ip_type: Option<String>,
    /// The same, under its deprecated name (older answers carry only this;
    /// current ones both).
    #[serde(default, rename = "type")]
    pub legacy_type: Option<String>,
    /// `tcp`, `udp`, ... (case varies between answers).
    #[serde(default, deserialize_with = "null_default")]
    pub protocol: String,
    /// `22` or `8000:9000`.
    #[serde(default, deserialize_with = "null_default")]
    pub port: String,
    /// Network address.
    #[serde(default, deserialize_with = "null_default")]
    pub subnet: String,
    /// Prefix length.
    #[serde(default)]
    pub subnet_size: u8,
}

impl FirewallRule {
    /// `v4` or `v6`, from whichever field the answer has.
    pub fn ip_type(&self) -> &str {
        self.ip_type
            .as_deref()
            .or(self.legacy_type.as_deref())
            .unwrap_or_default()
    }
}

/// One page of `GET /firewalls/{id}/rules`.
#[derive(Debug, Deserialize)]
pub struct FirewallRulesPage {
    /// Rules on this page.
    #[serde(default, deserialize_with = "null_default")]
    pub firewall_rules: Vec<FirewallRule>,
    /// Cursors.
    #[serde(default)]
    pub meta: Option<Meta>,
}

/// An operating system of `GET /os`.
#[derive(Debug, Deserialize)]
pub struct OsEntry {
    /// Id passed as `os_id`.
    pub id: i64,
    /// Name (`Ubuntu 24.04 LTS x64`).
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
}

/// One page of `GET /os`.
#[derive(Debug, Deserialize)]
pub struct OsPage {
    /// Systems on this page.
    #[serde(default, deserialize_with = "null_default")]
    pub os: Vec<OsEntry>,
    /// Cursors.
    #[serde(default)]
    pub meta: Option<Meta>,
}

// ---- labels as tags ---------------------------------------------------------

/// Encode a label value into tag characters (`[a-zA-Z0-9_:-]`) reversibly:
/// letters, digits and `-` stay, `_` becomes `__`, any other byte `_XX` (hex).
pub fn encode_tag_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => out.push(b as char),
            b'_' => out.push_str("__"),
            other => out.push_str(&format!("_{other:02x}")),
        }
    }
    out
}

/// Reverse of [`encode_tag_value`]; `None` when the text was not produced by it.
pub fn decode_tag_value(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            if bytes.get(i + 1) == Some(&b'_') {
                out.push(b'_');
                i += 2;
            } else {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The tag storing one label: `bpr:<key>:<encoded value>`.
pub fn label_tag(key: &str, value: &str) -> Result<String, Error> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(Error::InvalidRequest(format!(
            "label key `{key}` must be lower-case [a-z0-9_-] to be stored as a Vultr tag"
        )));
    }
    let tag = format!("{LABEL_TAG_PREFIX}{key}:{}", encode_tag_value(value));
    check_tag_len(&tag, &format!("label `{key}`"))?;
    Ok(tag)
}

/// The tag marking the machine created for one idempotency key.
pub fn idempotency_tag(key: &str) -> Result<String, Error> {
    if key.is_empty() {
        return Err(Error::InvalidRequest(
            "the idempotency key is empty; the host must pass one".into(),
        ));
    }
    let tag = format!("{IDEMPOTENCY_TAG_PREFIX}{}", encode_tag_value(key));
    check_tag_len(&tag, "the idempotency key")?;
    Ok(tag)
}

/// The idempotency key stored in `tags`, if any.
pub fn idempotency_key_of(tags: &[String]) -> Option<String> {
    tags.iter()
        .find_map(|t| t.strip_prefix(IDEMPOTENCY_TAG_PREFIX))
        .and_then(decode_tag_value)
}

fn check_tag_len(tag: &str, what: &str) -> Result<(), Error> {
    if tag.len() > MAX_TAG_LEN {
        return Err(Error::InvalidRequest(format!(
            "{what} is too long for a Vultr tag ({} > {MAX_TAG_LEN} characters once encoded); shorten it",
            tag.len()
        )));
    }
    Ok(())
}

/// Labels read back from tags written by [`label_tag`]; other tags are ignored.
pub fn labels_from_tags(tags: &[String]) -> Vec<Label> {
    tags.iter()
        .filter_map(|t| {
            let rest = t.strip_prefix(LABEL_TAG_PREFIX)?;
            let (key, value) = rest.split_once(':')?;
            Some((key.to_string(), decode_tag_value(value)?))
        })
        .collect()
}

/// The deterministic name of what a create makes next to its machine (the
/// SSH key's `name`, the firewall group's `description`): it carries the
/// idempotency key (a retry finds them) and the deployment id (recovery that
/// knows only the deployment finds them).
pub fn side_name(idempotency_key: &str, deployment_id: &str) -> String {
    format!(
        "{IDEMPOTENCY_TAG_PREFIX}{} bpr-deployment:{}",
        encode_tag_value(idempotency_key),
        encode_tag_value(deployment_id)
    )
}

/// `(idempotency key, deployment id)` of a name made by [`side_name`] (an SSH
/// key's name may carry a ` key <n>` suffix); `None` for other names.
pub fn parse_side_name(name: &str) -> Option<(String, String)> {
    let rest = name.strip_prefix(IDEMPOTENCY_TAG_PREFIX)?;
    let (key, rest) = rest.split_once(" bpr-deployment:")?;
    let deployment = rest.split(' ').next()?;
    Some((decode_tag_value(key)?, decode_tag_value(deployment)?))
}

/// A hostname-safe name (`[a-zA-Z0-9.-]`, starts and ends alphanumeric, at
/// most `max` characters) made from `prefix` and `raw`.
pub fn safe_name(prefix: &str, raw: &str, max: usize) -> String {
    let mut name: String = format!("{prefix}{raw}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(max);
    let trimmed = name.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.is_empty() {
        "bpr".to_string()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: &str, power: Option<&str>, server_status: Option<&str>) -> Server {
        serde_json::from_value(serde_json::json!({
            "id": "i-1", "status": status, "power_status": power, "server_status": server_status,
            "main_ip": "0.0.0.0", "tags": null,
        }))
        .expect("valid test JSON")
    }

    #[test]
    fn ready_needs_active_running_and_ok() {
        let state = |st, p, s| instance_state(&server(st, p, s));
        assert_eq!(
            state("active", Some("running"), Some("ok")),
            InstanceState::Running
        );
        assert_eq!(
            state("active", Some("running"), Some("installingbooting")),
            InstanceState::Pending
        );
        assert_eq!(
            state("pending", Some("running"), Some("none")),
            InstanceState::Pending
        );
        assert_eq!(
            state("active", Some("stopped"), Some("ok")),
            InstanceState::Stopped
        );
        assert_eq!(state("suspended", None, None), InstanceState::Stopped);
        // Bare metal reports neither power nor server status.
        assert_eq!(state("active", None, None), InstanceState::Running);
        assert_eq!(state("weird", None, None), InstanceState::Unknown);
    }

    #[test]
    fn unassigned_addresses_are_absent_and_null_tags_are_empty() {
        let i = instance_from_server(&server("pending", None, None), vec![]);
        assert_eq!(i.public_ipv4, None);
        assert!(i.labels.is_empty());
        let live: Server = serde_json::from_value(serde_json::json!({
            "id": "i-2", "main_ip": "192.0.2.7", "v6_main_ip": "2001:db8::1",
            "internal_ip": "", "date_created": "2021-09-14T13:22:20+00:00",
        }))
        .expect("valid test JSON");
        let i = instance_from_server(&live, vec![]);
        assert_eq!(i.public_ipv4.as_deref(), Some("192.0.2.7"));
        assert_eq!(i.public_ipv6.as_deref(), Some("2001:db8::1"));
        assert_eq!(i.private_ipv4, None);
        assert_eq!(i.created_at, Some(1631625740));
    }

    #[test]
    fn label_tags_round_trip_any_value() {
        let tag = label_tag("bpr-deployment", "dep_1/ä b").expect("valid key");
        assert!(
            tag.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_:-".contains(&b)),
            "{tag}"
        );
        let idem = idempotency_tag("dep_1-c1").expect("valid key");
        let tags = vec![tag, "other".into(), idem];
        assert_eq!(
            labels_from_tags(&tags),
            vec![("bpr-deployment".to_string(), "dep_1/ä b".to_string())]
        );
        assert_eq!(idempotency_key_of(&tags).as_deref(), Some("dep_1-c1"));
    }

    #[test]
    fn upper_case_label_keys_and_empty_idempotency_keys_are_invalid() {
        assert!(matches!(
            label_tag("Bad", "x"),
            Err(Error::InvalidRequest(_))
        ));
        assert!(matches!(idempotency_tag(""), Err(Error::InvalidRequest(_))));
    }

    #[test]
    fn side_names_carry_the_create_and_the_deployment() {
        let name = side_name("dep_1-c2", "dep_1");
        assert_eq!(name, "bpr-idem:dep__1-c2 bpr-deployment:dep__1");
        let both = Some(("dep_1-c2".to_string(), "dep_1".to_string()));
        assert_eq!(parse_side_name(&name), both);
        assert_eq!(parse_side_name(&format!("{name} key 2")), both);
        assert_eq!(parse_side_name("operator laptop"), None);
    }

    #[test]
    fn safe_names_are_hostnames() {
        assert_eq!(safe_name("bpr-", "dep_1/x", 63), "bpr-dep-1-x");
        assert_eq!(safe_name("", "__", 63), "bpr");
    }

    #[test]
    fn firewall_rules_with_both_type_fields_parse() {
        let r: FirewallRule = serde_json::from_str(
            r#"{"id":1,"type":"v4","ip_type":"v4","action":"accept","protocol":"tcp","port":"80","subnet":"192.0.2.0","subnet_size":24,"source":"","notes":""}"#,
        )
        .expect("a rule as Vultr answers it");
        assert_eq!(r.ip_type(), "v4");
        let old: FirewallRule =
            serde_json::from_str(r#"{"type":"v6","protocol":"udp","subnet":"::","subnet_size":0}"#)
                .unwrap();
        assert_eq!(old.ip_type(), "v6");
    }

    #[test]
    fn empty_next_cursor_means_last_page() {
        let meta: Meta =
            serde_json::from_str(r#"{"total":3,"links":{"next":"","prev":"x"}}"#).unwrap();
        assert_eq!(meta.next(), None);
        let meta: Meta = serde_json::from_str(r#"{"links":{"next":"bmV4dA=="}}"#).unwrap();
        assert_eq!(meta.next().as_deref(), Some("bmV4dA=="));
    }
}
