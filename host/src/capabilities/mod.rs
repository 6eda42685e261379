//! What a component may import, and the host side of each import:
//! outbound HTTP (policy + credentials + shared client), log, settings, ssh.
//! The files are private; what the operator configures and an embedder
//! passes in is re-exported below.
//!
//! Outbound HTTP, the wasi:http boundary:
//! - `http_types.rs`: `wasi:http/types` (the crate's) with host memory charged;
//! - `http_handle.rs`: the host's own async `outgoing-handler.handle`;
//! - `outbound.rs`: the exchange every request goes through (the policy);
//! - `http_policy.rs`: the allowlist ([`AllowRule`]) and the non-public
//!   address check;
//! - `http_limits.rs`: methods, request and connection caps, memory budget
//!   ([`OutboundLimits`]);
//! - `http_call.rs`, `host_memory.rs`: what one call holds and may hold;
//! - `http_body.rs`: bodies crossing the boundary (charged, streamed);
//! - `http_audit.rs`: the `bpr::audit::http` lines;
//! - `fence.rs`: a deployment lease's check on the requests of the calls
//!   made under it;
//! - `http_client.rs`: the pooled client, one pool per provider
//!   ([`HttpClientConfig`]).
//!
//! Credentials (`credentials.rs`, `oauth.rs`, `secret.rs`): what a provider's
//! requests are signed or authorised with ([`CredentialConfig`]).

mod credentials;
mod fence;
mod guest_log;
mod host_imports;
mod host_memory;
mod http_audit;
mod http_body;
mod http_call;
mod http_client;
mod http_handle;
mod http_limits;
mod http_policy;
pub(crate) mod http_types;
mod oauth;
mod outbound;
mod secret;
mod ssh_bridge;

use std::collections::BTreeMap;
use std::sync::Arc;

// What the operator configures (the types of [`crate::Config`]'s fields) and
// what an embedder passes to [`crate::Host`].
pub use credentials::{AwsCredentialSource, CredentialConfig, NotSignable};
pub use guest_log::LogLimits;
pub use http_client::HttpClientConfig;
pub use http_limits::{BadMethod, OutboundLimits};
pub use http_policy::{AllowRule, BadRule};
pub use oauth::OAuthConfig;
pub use secret::{CredentialError, SecretSource};
pub use ssh_bridge::SshBackend;
// The pooled client, for the crate's benchmarks (`crate::testing`).
#[doc(hidden)]
pub use http_client::SharedHttpClient;

// The sandbox's plumbing, for the runtime, the loader, Kubernetes and the
// orchestrator.
pub(crate) use credentials::eks_token;
pub(crate) use fence::{CallFence, FenceRegistration, register_fence};
pub(crate) use http_call::HttpCall;
pub(crate) use http_limits::MAX_HANDLES;
pub(crate) use http_policy::{Denied, HttpPolicy, Target};
pub(crate) use oauth::OAuthSource;
#[cfg(test)]
pub(crate) use oauth::{AKS_SERVER, tests as oauth_tests};
pub(crate) use outbound::{OutboundConfig, OutboundContext, OutboundHttp};

/// Per-provider environment the host imports read: the provider's name, its
/// settings and (for `ssh-provider` components) the SSH backend.
pub(crate) struct ProviderEnv {
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
pub(crate) struct ProviderImports {
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
