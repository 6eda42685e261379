//! What a component may import, and the host side of each import:
//! outbound HTTP (policy + credentials + shared client), log, settings, ssh.

pub mod credentials;
pub mod guest_log;
mod host_imports;
pub mod http_client;
pub mod http_policy;
pub mod oauth;
pub mod outbound;
pub mod secret;
pub mod ssh_bridge;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use ssh_bridge::SshBackend;

/// Per-provider environment the host imports read: the provider's name, its
/// settings and (for `ssh-provider` components) the SSH backend.
pub struct ProviderEnv {
    /// Provider name.
    pub name: String,
    /// Non-secret settings from the operator config.
    pub settings: BTreeMap<String, String>,
    /// SSH backend, when the operator allowed this provider `ssh`.
    pub ssh: Option<Arc<dyn SshBackend>>,
    /// How many records a call may log.
    pub log: guest_log::LogLimits,
}

impl std::fmt::Debug for ProviderEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderEnv")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("ssh", &self.ssh.is_some())
            .field("log", &self.log)
            .finish()
    }
}
