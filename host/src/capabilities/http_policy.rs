//! The outbound HTTP allowlist: which scheme, host and port a provider may
//! reach, and whether a resolved address may be private.
//!
//! Rules are written `scheme://host[:port]`, where `host` is exact or
//! `*.domain` (any subdomain, not the bare domain) and `port` is a number or
//! `*`; without a port the scheme's default port is meant. Loopback, private,
//! link-local and other non-public addresses are refused after DNS unless the
//! request matched a rule with an exact host and an explicit numeric port:
//! the operator must name such an address exactly (tests allow
//! `http://127.0.0.1:PORT`).

use std::net::IpAddr;

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    scheme: String,
    host: HostPattern,
    port: PortPattern,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.domain`: stored as `.domain`.
    Suffix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Explicit(u16),
    SchemeDefault,
    Any,
}

/// Why an allowlist rule was refused (each names the rule as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRule {
    /// The rule has no `scheme://`.
    #[error("{rule:?}: expected scheme://host[:port]")]
    NoScheme {
        /// The rule.
        rule: String,
    },
    /// The scheme is neither `http` nor `https`.
    #[error("{rule:?}: scheme must be http or https")]
    UnsupportedScheme {
        /// The rule.
        rule: String,
    },
    /// The rule has a path, query or userinfo.
    #[error("{rule:?}: a rule names scheme, host and port only (no path, query or user)")]
    NotJustHost {
        /// The rule.
        rule: String,
    },
    /// The port is neither a number nor `*`.
    #[error("{rule:?}: bad port {port:?}")]
    BadPort {
        /// The rule.
        rule: String,
        /// The port as written.
        port: String,
        /// Why it is not a port number.
        #[source]
        source: std::num::ParseIntError,
    },
    /// The host is empty.
    #[error("{rule:?}: empty host")]
    EmptyHost {
        /// The rule.
        rule: String,
    },
    /// A `*` anywhere but as the whole first label.
    #[error("{rule:?}: wildcard must be \"*.domain\"")]
    BadWildcard {
        /// The rule.
        rule: String,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No rule matches scheme, host and port.
    #[error("{scheme}://{host}:{port} is not on this provider's allowlist")]
    NotAllowed {
        /// Scheme of the request.
        scheme: String,
        /// Host of the request.
        host: String,
        /// Port of the request.
        port: u16,
    },
    /// The host resolved to a non-public address and no exact rule allows it.
    #[error(
        "{host}:{port} resolves to non-public address {addr}; allow exactly \"{scheme}://{host}:{port}\" to permit it"
    )]
    PrivateAddress {
        /// Scheme of the request.
        scheme: String,
        /// Host of the request.
        host: String,
        /// Port of the request.
        port: u16,
        /// The offending address.
        addr: IpAddr,
    },
    /// The URI has no host or an unsupported scheme.
    #[error("malformed outbound URI: {0}")]
    Malformed(String),
    /// The authority carries userinfo (`name@host`): the request would go to
    /// `host` while naming something else; never sent.
    #[error("the authority of a request to {host} carries userinfo (`…@{host}`); refused")]
    Userinfo {
        /// The host after the `@`.
        host: String,
    },
    /// The provider may not use this method.
    #[error("method {method} is not one this provider may use (`methods` in its config)")]
    MethodNotAllowed {
        /// The method.
        method: String,
    },
}

impl AllowRule {
    /// Parse `scheme://host[:port]`.
    pub fn parse(text: &str) -> Result<Self, BadRule> {
        let rule = || text.to_string();
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| BadRule::NoScheme { rule: rule() })?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(BadRule::UnsupportedScheme { rule: rule() });
        }
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') || rest.contains('@') {
            return Err(BadRule::NotJustHost { rule: rule() });
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, "*")) => (h, PortPattern::Any),
            Some((h, p)) if !h.ends_with(']') || p.chars().all(|c| c.is_ascii_digit()) => {
                let port: u16 = p.parse().map_err(|source| BadRule::BadPort {
                    rule: rule(),
                    port: p.to_string(),
                    source,
                })?;
                (h, PortPattern::Explicit(port))
            }
            _ => (rest, PortPattern::SchemeDefault),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if host.is_empty() {
            return Err(BadRule::EmptyHost { rule: rule() });
        }
        let host = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => {
                HostPattern::Suffix(format!(".{domain}"))
            }
            Some(_) => return Err(BadRule::BadWildcard { rule: rule() }),
            None if host.contains('*') => {
                return Err(BadRule::BadWildcard { rule: rule() });
            }
            None => HostPattern::Exact(host),
        };
        Ok(Self {
            scheme,
            host,
            port,
            text: text.to_string(),
        })
    }

    /// The rule as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme {
            return false;
        }
        let host_ok = match &self.host {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host.ends_with(s.as_str()) && host.len() > s.len(),
        };
        let port_ok = match self.port {
            PortPattern::Explicit(p) => p == port,
            PortPattern::SchemeDefault => port == default_port(scheme),
            PortPattern::Any => true,
        };
        host_ok && port_ok
    }

    /// Whether this rule names exactly this host and port, which is what
    /// permits a non-public address.
    fn is_exact_for(&self, host: &str, port: u16) -> bool {
        matches!(&self.host, HostPattern::Exact(h) if h == host)
            && self.port == PortPattern::Explicit(port)
    }
}

impl std::fmt::Display for AllowRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

/// A request target, normalised for policy checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host, IPv6 without brackets.
    pub host: String,
    /// Port (explicit or the scheme default).
    pub port: u16,
}

impl Target {
    /// Extract the target of a URI. An authority with userinfo is refused.
    pub fn of(uri: &http::Uri) -> Result<Self, Denied> {
        if let Some(authority) = uri.authority()
            && let Some((_, host)) = authority.as_str().rsplit_once('@')
        {
            return Err(Denied::Userinfo {
                host: host.to_string(),
            });
        }
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| Denied::Malformed(format!("{uri}: no scheme")))?
            .to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(Denied::Malformed(format!(
                "{uri}: scheme {scheme} not supported"
            )));
        }
        let host = uri
            .host()
            .ok_or_else(|| Denied::Malformed(format!("{uri}: no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or_else(|| default_port(&scheme));
        Ok(Self { scheme, host, port })
    }
}

/// A provider's allowlist.
#[derive(Debug, Clone, Default)]
pub struct HttpPolicy {
    rules: Vec<AllowRule>,
}

impl HttpPolicy {
    /// A policy from the operator's rules. No rules = deny everything.
    pub fn new(rules: Vec<AllowRule>) -> Self {
        Self { rules }
    }

    /// The rules, for display.
    pub fn rules(&self) -> &[AllowRule] {
        &self.rules
    }

    /// First check, before DNS: does any rule allow this target?
    pub fn check_target(&self, t: &Target) -> Result<(), Denied> {
        if self
            .rules
            .iter()
            .any(|r| r.matches(&t.scheme, &t.host, t.port))
        {
            Ok(())
        } else {
            Err(Denied::NotAllowed {
                scheme: t.scheme.clone(),
                host: t.host.clone(),
                port: t.port,
            })
        }
    }

    /// Second check, after DNS: every resolved address must be public unless
    /// an exact rule names this host and port.
    pub fn check_addresses(&self, t: &Target, addrs: &[IpAddr]) -> Result<(), Denied> {
        if self
            .rules
            .iter()
            .any(|r| r.scheme == t.scheme && r.is_exact_for(&t.host, t.port))
        {
            return Ok(());
        }
        match addrs.iter().find(|a| !is_public(a)) {
            Some(addr) => Err(Denied::PrivateAddress {
                scheme: t.scheme.clone(),
                host: t.host.clone(),
                port: t.port,
                addr: *addr,
            }),
            None => Ok(()),
        }
    }
}

/// Whether an address is globally routable (not loopback, private,
/// link-local, unspecified, shared, documentation, multicast...).
pub fn is_public(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_documentation()
                || a.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64/10 shared address space
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0/24 protocol assignments
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18/15 benchmarking
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            // Forms that carry or translate an IPv4 address are judged by it:
            // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT),
            // 64:ff9b::a.b.c.d (NAT64), 2002:AABB:CCDD:: (6to4).
            let embedded = |hi: u16, lo: u16| {
                is_public(&IpAddr::V4(std::net::Ipv4Addr::new(
                    (hi >> 8) as u8,
                    hi as u8,
                    (lo >> 8) as u8,
                    lo as u8,
                )))
            };
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(&IpAddr::V4(v4));
            }
            if s[..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0 {
                return embedded(s[6], s[7]);
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return embedded(s[6], s[7]);
            }
            if s[0] == 0x2002 {
                return embedded(s[1], s[2]);
            }
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || s[..6] == [0, 0, 0, 0, 0, 0] // ::a.b.c.d, IPv4-compatible (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // 64:ff9b:1::/48 local-use NAT64
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // 100::/64 discard-only
                || (s[0] == 0x2001 && s[1] == 0) // 2001::/32 Teredo (tunnels IPv4)
                || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010) // 2001:10::/28 ORCHID
                || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // 2001:2::/48 benchmarking
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] & 0xfff0) == 0x3ff0) // 3fff::/20 documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(uri: &str) -> Target {
        Target::of(&uri.parse().unwrap()).unwrap()
    }

    #[test]
    fn allowed_host_is_allowed() {
        let p = HttpPolicy::new(vec![
            AllowRule::parse("https://api.digitalocean.com").unwrap(),
        ]);
        assert!(
            p.check_target(&target("https://api.digitalocean.com/v2/sizes"))
                .is_ok()
        );
    }

    #[test]
    fn disallowed_host_fails() {
        let p = HttpPolicy::new(vec![
            AllowRule::parse("https://api.digitalocean.com").unwrap(),
        ]);
        assert!(
            p.check_target(&target("https://evil.example.com/"))
                .is_err()
        );
        assert!(
            p.check_target(&target("http://api.digitalocean.com/"))
                .is_err(),
            "scheme differs"
        );
        assert!(
            p.check_target(&target("https://api.digitalocean.com:8443/"))
                .is_err(),
            "port differs"
        );
    }

    #[test]
    fn wildcard_matches_subdomains_but_not_the_bare_domain() {
        let p = HttpPolicy::new(vec![AllowRule::parse("https://*.amazonaws.com").unwrap()]);
        assert!(
            p.check_target(&target("https://ec2.us-east-1.amazonaws.com/"))
                .is_ok()
        );
        assert!(p.check_target(&target("https://amazonaws.com/")).is_err());
        assert!(
            p.check_target(&target("https://evilamazonaws.com/"))
                .is_err()
        );
    }

    #[test]
    fn empty_policy_denies_everything() {
        assert!(
            HttpPolicy::default()
                .check_target(&target("https://example.com/"))
                .is_err()
        );
    }

    #[test]
    fn private_address_needs_an_exact_rule_with_port() {
        let exact = HttpPolicy::new(vec![AllowRule::parse("http://127.0.0.1:5000").unwrap()]);
        let t = target("http://127.0.0.1:5000/");
        assert!(
            exact
                .check_addresses(&t, &["127.0.0.1".parse().unwrap()])
                .is_ok()
        );

        let any_port = HttpPolicy::new(vec![AllowRule::parse("http://localhost:*").unwrap()]);
        let t = target("http://localhost:5000/");
        assert!(any_port.check_target(&t).is_ok());
        assert!(
            any_port
                .check_addresses(&t, &["127.0.0.1".parse().unwrap()])
                .is_err()
        );

        let wildcard = HttpPolicy::new(vec![AllowRule::parse("https://*.corp.example").unwrap()]);
        let t = target("https://db.corp.example/");
        assert!(
            wildcard
                .check_addresses(&t, &["10.1.2.3".parse().unwrap()])
                .is_err()
        );
        assert!(
            wildcard
                .check_addresses(&t, &["93.184.216.34".parse().unwrap()])
                .is_ok()
        );
    }

    #[test]
    fn non_public_ranges_are_recognised() {
        for a in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(&a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(&a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn ipv6_forms_that_carry_or_translate_a_private_ipv4_are_not_public() {
        for a in [
            "::127.0.0.1",        // IPv4-compatible
            "::10.0.0.1",         // IPv4-compatible
            "::8.8.8.8",          // IPv4-compatible: deprecated, never public
            "::ffff:0:127.0.0.1", // SIIT
            "64:ff9b::127.0.0.1", // NAT64 of loopback
            "64:ff9b::a9fe:a9fe", // NAT64 of 169.254.169.254 (metadata)
            "64:ff9b:1::1",       // local-use NAT64
            "2002:7f00:1::",      // 6to4 of 127.0.0.1
            "2002:c0a8:101::1",   // 6to4 of 192.168.1.1
            "2002:a9fe:a9fe::",   // 6to4 of 169.254.169.254
            "fec0::1",            // site-local
            "feff::1",            // site-local
            "2001::1",            // Teredo
            "2001:10::1",         // ORCHID
            "100::1",             // discard-only
            "3fff::1",            // documentation
        ] {
            assert!(!is_public(&a.parse().unwrap()), "{a}");
        }
        // Translations of a public IPv4 are as public as it is (DNS64 hosts).
        for a in ["64:ff9b::808:808", "2002:808:808::1"] {
            assert!(is_public(&a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn an_authority_with_userinfo_is_refused() {
        let uri: http::Uri = "http://allowed.example@127.0.0.1:8080/x".parse().unwrap();
        assert_eq!(
            Target::of(&uri),
            Err(Denied::Userinfo {
                host: "127.0.0.1:8080".into()
            })
        );
    }

    #[test]
    fn malformed_rules_are_refused() {
        for r in [
            "ftp://x",
            "x.com",
            "https://",
            "https://a.com/path",
            "https://*",
            "https://a.*.com",
            "https://a.com:99999",
        ] {
            assert!(AllowRule::parse(r).is_err(), "{r}");
        }
    }
}
