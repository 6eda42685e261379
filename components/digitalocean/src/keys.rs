//! SSH keys: each public key of a create found by fingerprint or registered,
//! and removed again with the droplet when this create registered it.

use provider_sdk::types::{Error, ResourceRef};
use provider_sdk::{errors, log};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::KIND_SSH_KEY;
use crate::api::Api;
use crate::{codec, model};

/// An SSH key the droplet gets; `resource` is `ssh-key` when this create
/// registered it (so delete removes it) and `ssh-key-existing` otherwise.
pub(crate) struct KeyUse {
    pub(crate) id: u64,
    pub(crate) resource: ResourceRef,
}

pub(crate) fn keys_for_droplet(keys: &[KeyUse]) -> Vec<Value> {
    keys.iter().map(|k| json!(k.id)).collect()
}

#[derive(Deserialize)]
pub(crate) struct SshKey {
    pub(crate) id: u64,
    #[serde(default)]
    pub(crate) name: String,
}

#[derive(Deserialize)]
struct SshKeyEnvelope {
    pub(crate) ssh_key: SshKey,
}

/// Find each public key by fingerprint, registering it when unknown.
pub(crate) fn ensure_keys(
    api: &Api,
    public_keys: &[String],
    name: &str,
) -> Result<Vec<KeyUse>, Error> {
    let mut out: Vec<KeyUse> = Vec::new();
    for (i, line) in public_keys.iter().enumerate() {
        let line = line.trim();
        let fp = codec::ssh_fingerprint(line).ok_or_else(|| {
            Error::InvalidRequest(format!(
                "SSH public key #{} is not an OpenSSH public key line (`type base64 [comment]`)",
                i + 1
            ))
        })?;
        let key_name = crate::leftovers::key_name(name, i, public_keys.len());
        let found = match api.get_json::<SshKeyEnvelope>(
            &format!("/v2/account/keys/{fp}"),
            &format!("looking up SSH key {fp}"),
        ) {
            Ok(env) => Some(env.ssh_key),
            Err(Error::NotFound(_)) => None,
            Err(e) => {
                cleanup_keys(api, &out);
                return Err(e);
            }
        };
        let (key, ours) = match found {
            // A key with our name was registered by an earlier attempt of this create.
            Some(k) => {
                let ours = k.name == key_name;
                (k, ours)
            }
            None => {
                let created: Result<SshKeyEnvelope, Error> = api.post_json(
                    "/v2/account/keys",
                    &json!({ "name": key_name, "public_key": line }),
                    &format!("registering SSH key {fp}"),
                );
                match created {
                    Ok(env) => (env.ssh_key, true),
                    Err(e) => {
                        cleanup_keys(api, &out);
                        return Err(e);
                    }
                }
            }
        };
        out.push(KeyUse {
            id: key.id,
            resource: ResourceRef {
                kind: if ours {
                    KIND_SSH_KEY
                } else {
                    "ssh-key-existing"
                }
                .into(),
                id: key.id.to_string(),
            },
        });
    }
    Ok(out)
}

pub(crate) fn cleanup_keys(api: &Api, keys: &[KeyUse]) {
    for k in keys.iter().filter(|k| k.resource.kind == KIND_SSH_KEY) {
        if let Err(e) = api.delete(&format!("/v2/account/keys/{}", k.id), "deleting an SSH key") {
            log::warn(&format!(
                "SSH key {} registered for a failed create could not be deleted: {}",
                k.id,
                errors::message(&e)
            ));
        }
    }
}

#[derive(Deserialize)]
pub(crate) struct SshKeysPage {
    pub(crate) ssh_keys: Vec<SshKey>,
    #[serde(default)]
    pub(crate) links: model::Links,
}
