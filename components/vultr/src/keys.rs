//! The operator's SSH keys: registered once and found again by fingerprint.
//!
//! Vultr installs keys by id (`sshkey_id`, not the `ssh_keys` upstream sent).
//! A key already registered (same fingerprint, whatever its name) is used as
//! is and never deleted by us; a key we register for a create is named after
//! it ([`crate::model::side_name`]), so a retry of that create finds it and
//! `delete-instance` removes it.

use provider_sdk::types::{Error, ResourceRef};
use provider_sdk::{errors, log};
use serde_json::json;

use crate::api::Api;
use crate::codec::PublicKey;
use crate::model::{SshKey, SshKeyEnvelope, SshKeysPage};

/// Resource kind of a key registered for a create.
pub const KIND: &str = "ssh-key";

/// A key a machine gets.
#[derive(Debug, Clone)]
pub struct KeyUse {
    /// Vultr key id.
    pub id: String,
    /// True when this create registered it (and its delete removes it).
    pub ours: bool,
}

impl KeyUse {
    /// The resource to return for a key we registered.
    pub fn resource(&self) -> Option<ResourceRef> {
        self.ours.then(|| ResourceRef {
            kind: KIND.into(),
            id: self.id.clone(),
        })
    }
}

/// Name of the `i`-th of `n` keys registered for a create named `name`.
pub fn key_name(name: &str, i: usize, n: usize) -> String {
    if n > 1 {
        format!("{name} key {}", i + 1)
    } else {
        name.to_string()
    }
}

/// Every registered key.
pub fn list(api: &Api) -> Result<Vec<SshKey>, Error> {
    api.all_pages("/ssh-keys", "listing SSH keys", |p: SshKeysPage| {
        (p.ssh_keys, p.meta)
    })
}

/// Parse the spec's key lines, naming the bad one.
pub fn parse_all(lines: &[String]) -> Result<Vec<PublicKey>, Error> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            PublicKey::parse(line).ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "SSH public key #{} is not an OpenSSH public key line (`type base64 [comment]`)",
                    i + 1
                ))
            })
        })
        .collect()
}

/// Ids to install for `keys`: the key among `registered` (every key of the
/// account) with the same fingerprint, else a new registration named after
/// the create. On failure, keys this call registered are deleted again.
pub fn ensure(
    api: &Api,
    mut registered: Vec<SshKey>,
    keys: &[PublicKey],
    lines: &[String],
    name: &str,
) -> Result<Vec<KeyUse>, Error> {
    if keys.is_empty() {
        return Ok(vec![]);
    }
    let mut out: Vec<KeyUse> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let wanted_name = key_name(name, i, keys.len());
        let same = |k: &SshKey| PublicKey::parse(&k.ssh_key).as_ref() == Some(key);
        // Prefer our own registration from an earlier attempt of this create.
        let found = registered
            .iter()
            .find(|k| k.name == wanted_name && same(k))
            .or_else(|| registered.iter().find(|k| same(k)));
        if let Some(k) = found {
            if k.name != wanted_name {
                log::debug(&format!(
                    "SSH key {} is already registered as `{}`; using it",
                    key.fingerprint(),
                    k.name
                ));
            }
            out.push(KeyUse {
                id: k.id.clone(),
                ours: k.name == wanted_name,
            });
            continue;
        }
        let created: Result<SshKeyEnvelope, Error> = api.post_json(
            "/ssh-keys",
            &json!({ "name": wanted_name, "ssh_key": lines[i].trim() }),
            &format!("registering SSH key {}", key.fingerprint()),
        );
        match created {
            Ok(env) => {
                registered.push(SshKey {
                    id: env.ssh_key.id.clone(),
                    name: wanted_name,
                    ssh_key: lines[i].trim().to_string(),
                });
                out.push(KeyUse {
                    id: env.ssh_key.id,
                    ours: true,
                });
            }
            Err(e) => {
                cleanup(api, &out);
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Delete the keys of `keys` that were registered for this create.
pub fn cleanup(api: &Api, keys: &[KeyUse]) {
    for k in keys.iter().filter(|k| k.ours) {
        if let Err(e) = api.delete(&format!("/ssh-keys/{}", k.id), "deleting an SSH key") {
            log::warn(&format!(
                "SSH key {} registered for a failed create could not be deleted: {}",
                k.id,
                errors::message(&e)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_keys_get_numbered_names() {
        assert_eq!(key_name("n", 0, 1), "n");
        assert_eq!(key_name("n", 1, 3), "n key 2");
    }

    #[test]
    fn a_bad_key_line_is_named_by_position() {
        let lines = vec![
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0d6pZ8fWzMZb2y1q8e0x6Hn2W0e3Y9v2bX7t1m4kR a"
                .to_string(),
            "garbage".to_string(),
        ];
        match parse_all(&lines) {
            Err(Error::InvalidRequest(m)) => assert!(m.contains("#2"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
