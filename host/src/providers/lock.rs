//! `providers.lock`: binds each provider name to the sha256 of its `.wasm`
//! and to the outbound hosts the operator approved for it.
//!
//! ```toml
//! [providers.aws]
//! sha256 = "9f2c…"
//! allowed_hosts = ["https://*.amazonaws.com", "https://instances.vantage.sh"]
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::capabilities::AllowRule;

/// The lock file cannot be read, or does not approve a provider file; each
/// says what to run.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The file exists but could not be read.
    #[error("cannot read lock file {path}: {source}")]
    ReadFailed {
        /// The lock file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a lock file.
    #[error("lock file {path}: {source}")]
    ParseFailed {
        /// The lock file.
        path: String,
        /// What the parser said.
        #[source]
        source: toml::de::Error,
    },
    /// The provider is not in the lock file.
    #[error(
        "provider {name:?} is not in providers.lock; review it and run `bpr providers lock` to approve it"
    )]
    NotApproved {
        /// The provider.
        name: String,
    },
    /// The file's digest is not the approved one.
    #[error(
        "file changed: sha256 {sha256} but providers.lock approved {approved}; run `bpr providers lock` to approve the new file"
    )]
    FileChanged {
        /// The file's digest.
        sha256: String,
        /// The approved digest.
        approved: String,
    },
    /// Allowlist rules the lock file did not approve.
    #[error(
        "allowlist entries {unapproved:?} are not approved in providers.lock; run `bpr providers lock`"
    )]
    HostsNotApproved {
        /// The rules, as written.
        unapproved: Vec<String>,
    },
}

/// The lock file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    /// Approved providers.
    #[serde(default)]
    pub providers: BTreeMap<String, LockedProvider>,
    /// SSH host keys learned by trust-on-first-use, by host alias.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ssh_host_keys: BTreeMap<String, String>,
}

/// One approved provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedProvider {
    /// Lower-case hex sha256 of the approved `.wasm`.
    pub sha256: String,
    /// Allowlist rules approved for it.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl LockFile {
    /// Read `path`; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<Self, LockError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|source| LockError::ParseFailed {
                path: path.display().to_string(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(LockError::ReadFailed {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Write `path` atomically.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = format!(
            "# Written by `bpr providers lock`: the provider files and outbound hosts the operator approved.\n{}",
            toml::to_string_pretty(self).map_err(std::io::Error::other)?
        );
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".providers.lock.{}", std::process::id()));
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }

    /// Whether `name` with digest `sha256` and allowlist `allow` is approved;
    /// `Err` says why not and what to run.
    pub fn check(&self, name: &str, sha256: &str, allow: &[AllowRule]) -> Result<(), LockError> {
        let Some(locked) = self.providers.get(name) else {
            return Err(LockError::NotApproved { name: name.into() });
        };
        if locked.sha256 != sha256 {
            return Err(LockError::FileChanged {
                sha256: sha256.into(),
                approved: locked.sha256.clone(),
            });
        }
        let unapproved: Vec<String> = allow
            .iter()
            .map(AllowRule::as_str)
            .filter(|r| !locked.allowed_hosts.iter().any(|a| a == r))
            .map(String::from)
            .collect();
        if !unapproved.is_empty() {
            return Err(LockError::HostsNotApproved { unapproved });
        }
        Ok(())
    }
}
