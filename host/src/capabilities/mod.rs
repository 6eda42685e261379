//! What a component may import, and the host side of each import:
//! outbound HTTP (policy + credentials + shared client), log, settings, ssh.
//!
//! Outbound HTTP, the wasi:http boundary:
//! - [`http_types`]: `wasi:http/types` (the crate's) with host memory charged;
//! - [`http_handle`]: the host's own async `outgoing-handler.handle`;
//! - [`outbound`]: the exchange every request goes through (the policy);
//! - [`http_policy`]: the allowlist and the non-public address check;
//! - [`http_limits`]: methods, request and connection caps, memory budget;
//! - [`http_call`], [`host_memory`]: what one call holds and may hold;
//! - [`http_body`]: bodies crossing the boundary (charged, streamed);
//! - [`http_audit`]: the `bpr::audit::http` lines;
//! - [`http_client`]: the pooled client, one pool per provider.

pub mod credentials;
pub mod guest_log;
mod host_imports;
pub mod host_memory;
pub mod http_audit;
pub mod http_body;
pub mod http_call;
pub mod http_client;
pub mod http_handle;
pub mod http_limits;
pub mod http_policy;
pub mod http_types;
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

/// The state behind the `log`, `settings` and `ssh` imports of one call
/// (a store's `HostState` holds one; the linker reaches it from there).
#[derive(Debug)]
pub struct ProviderImports {
    /// The provider's environment.
    pub(crate) env: Arc<ProviderEnv>,
    /// The call's log rate limit (token bucket).
    pub(crate) log: guest_log::LogGate,
}

impl ProviderImports {
    /// The imports of one call of the provider with this environment.
    pub fn new(env: Arc<ProviderEnv>) -> Self {
        Self {
            log: guest_log::LogGate::new(env.clone()),
            env,
        }
    }
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
