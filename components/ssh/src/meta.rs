//! `meta.json`: what a deployment installed on a host, written before anything
//! is started and read back by get, list and delete.

use provider_sdk::log;
use provider_sdk::types::Error;
use serde::{Deserialize, Serialize};

use crate::remote::{sh, text, upload};

/// What a deployment installed, stored as `meta.json` in its directory.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) deployment_id: String,
    pub(crate) idempotency_key: String,
    pub(crate) host: String,
    pub(crate) region: String,
    /// `container`, `systemd` or `process`.
    pub(crate) kind: String,
    /// Container name or unit name.
    pub(crate) name: String,
    pub(crate) engine: Option<String>,
    pub(crate) unit_path: Option<String>,
    pub(crate) user_unit: bool,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) created_at: u64,
    pub(crate) health_port: Option<u16>,
    pub(crate) health_path: Option<String>,
    /// CPU limit of the workload in cores, counted against the host's
    /// capacity by `list-offers`. Absent in files written before limits were
    /// recorded, which therefore count as 0.
    #[serde(default)]
    pub(crate) cpu_limit: Option<f32>,
    /// Memory limit of the workload in MiB, counted like `cpu_limit`.
    #[serde(default)]
    pub(crate) memory_limit_mib: Option<u32>,
}

pub(crate) const LABEL: &str = "bpr-deployment";

/// Deployment ids become file and unit names: keep them to `[a-z0-9_-]`.
pub(crate) fn check_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "deployment id `{id}` must be 1-63 characters of [a-z0-9_-]"
        )))
    }
}

pub(crate) fn dep_dir(home: &str, id: &str) -> String {
    format!("{home}/.bpr/deployments/{id}")
}

pub(crate) fn read_meta(host: &str, id: &str) -> Result<Option<Meta>, Error> {
    let out = sh(
        host,
        "cat \"$HOME/.bpr/deployments/$1/meta.json\" 2>/dev/null || exit 3",
        &[id],
    )?;
    match out.exit_code {
        Some(0) => serde_json::from_slice(&out.stdout).map(Some).map_err(|e| {
            Error::Other(format!(
                "meta.json of deployment `{id}` on `{host}` is unreadable: {e}"
            ))
        }),
        Some(3) => Ok(None),
        c => Err(Error::Other(format!(
            "reading deployment `{id}` on `{host}` failed (exit {c:?}): {}",
            text(&out.stderr)
        ))),
    }
}

pub(crate) fn write_meta(host: &str, home: &str, m: &Meta) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(m)
        .map_err(|e| Error::Other(format!("encoding meta.json: {e}")))?;
    upload(
        host,
        &format!("{}/meta.json", dep_dir(home, &m.deployment_id)),
        &json,
        0o600,
    )
}

/// Script printing every deployment's `meta.json` on a host, each followed
/// by a record separator (`\x1e`) line.
pub(crate) const ALL_META: &str = "for f in \"$HOME\"/.bpr/deployments/*/meta.json; do [ -f \"$f\" ] && { cat \"$f\"; printf '\\n\\036\\n'; }; done; true";

/// Parses the output of [`ALL_META`], warning about (and skipping) files
/// that are not a readable `meta.json`.
pub(crate) fn parse_all_meta(alias: &str, stdout: &[u8]) -> Vec<Meta> {
    let mut metas = Vec::new();
    for doc in String::from_utf8_lossy(stdout).split('\u{1e}') {
        if doc.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(doc) {
            Ok(m) => metas.push(m),
            Err(e) => log::warn(&format!(
                "skipping an unreadable meta.json on `{alias}`: {e}"
            )),
        }
    }
    metas
}
