//! Operator configuration: one TOML file with the seed's `[operator.*]`
//! sections, a `[host]` section and one `[providers.<name>]` section per
//! provider.
//!
//! Parsing goes through private `*Toml` structs with `deny_unknown_fields`, so
//! a misspelt key is an error naming the file and the key. With no file at all
//! the embedded defaults (`defaults.toml`) are used; they find the in-tree
//! components that the build script compiled.
//!
//! ```toml
//! [host]
//! providers_dir = "providers"     # default: the in-tree components built with the host
//! state_dir = "~/.local/state/bpr"  # sqlite database, artifact cache
//! lock_file = "providers.lock"   # default: <providers_dir>/providers.lock
//! artifact_dir = "artifacts"     # default: <state_dir>/artifacts
//! artifact_key_file = "k"        # default: <state_dir>/artifact-cache.key (outside artifact_dir)
//! database = "bpr.sqlite3"       # default: <state_dir>/bpr.sqlite3; or "postgres://user@host:port/db"
//! integrity = "enforce"          # or "warn", or "signed" (a trusted minisign signature instead of the lock)
//! trusted_keys = [{ name = "Acme", key = "RWQ..." }]  # minisign public keys trusted for every provider
//! watch = true                   # hot reload on file changes
//! max_concurrent_calls = 256     # pre-reserved instance slots
//!
//! [database]
//! busy_timeout_ms = 30000        # how long a write waits for another bpr process
//! initialize = false             # true: start empty over an unusable file (kept aside)
//! password_file = "/run/secrets/bpr-db"  # PostgreSQL: the password (or password_env = "VAR")
//! max_connections = 4            # PostgreSQL: connections of this process
//!
//! [providers.digitalocean]
//! allow = ["https://api.digitalocean.com"]
//! call_timeout_ms = 30000
//! memory_mib = 256
//! max_request_body_kib = 1024
//! max_response_body_kib = 16384
//! price_multiplier = 1.0         # negotiated discount, applied before ranking
//! allow_ssh = false
//! methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
//! max_requests_per_call = 1000
//! max_concurrent_requests_per_call = 16
//! max_concurrent_requests = 64   # all calls of the provider
//! max_connections = 128          # open, in use or idle
//! host_memory_mib = 256          # per call; default: memory_mib
//! log_records_burst = 200        # records one call may log at once...
//! log_records_per_sec = 20       # ...and per second after that
//! max_returned_offers = 200000   # caps on what the component returns
//! max_returned_instances = 10000
//! max_returned_list_items = 1000 # labels, resources... of one record
//! max_returned_string_kib = 64   # any one string
//! max_returned_mib = 64          # all strings of one answer
//! trusted_keys = ["RWQ..."]      # keys trusted to sign this provider only
//! [providers.digitalocean.settings]
//! image = "ubuntu-24-04-x64"
//! [providers.digitalocean.credential]
//! kind = "bearer"
//! token_env = "DIGITALOCEAN_TOKEN"
//! ```

mod coordination;
mod database;
mod error;
mod lifecycle;
mod operator;
mod serve;
mod toml_dto;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use error::{Error, Result, ValueError};
pub use lifecycle::{BudgetSettings, ClusterCost, CostSettings, HealthSettings, PaymentSettings};
pub use operator::{
    DeploymentDefaults, KubernetesCluster, KubernetesConfig, ManagedKubernetesCluster,
    OperatorConfig, WebhookSettings,
};
pub use serve::ServeSettings;

use crate::capabilities::AllowRule;
use crate::capabilities::CredentialConfig;
use crate::capabilities::LogLimits;
use crate::capabilities::OutboundLimits;
use crate::providers::ReturnLimits;
use crate::providers::TrustedKey;

/// The embedded defaults used when no config file is given.
pub const DEFAULTS_TOML: &str = include_str!("defaults.toml");

/// Directory where the build script put the in-tree components.
pub const BUILTIN_PROVIDERS_DIR: &str = env!("BPR_GUEST_DIR");

/// The whole operator configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (a path, or `<embedded defaults>`), for messages.
    pub origin: String,
    /// Host settings.
    pub host: HostSettings,
    /// The seed's `[operator.*]` sections.
    pub operator: OperatorConfig,
    /// Per-provider sections, by provider name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[ssh]`: the operator's own machines.
    pub ssh: SshSettings,
    /// `[serve]`: how `bpr serve` listens, authenticates and stops.
    pub serve: ServeSettings,
    /// `[database]`: how the embedded database is opened.
    pub database: crate::db::DatabaseSettings,
    /// `[coordination]`: the supervisor's leader election between replicas.
    pub coordination: crate::coordination::LeaderSettings,
}

/// `[ssh]` and its `[[ssh.hosts]]`: the machines the `ssh` provider may use.
///
/// ```toml
/// [ssh]
/// default_timeout_ms = 30000     # per command, when the component gives none
/// max_timeout_ms = 600000
/// [[ssh.hosts]]
/// alias = "rack1"
/// address = "10.0.0.5"
/// port = 22
/// user = "deploy"
/// private_key_file = "/etc/bpr/keys/rack1_ed25519"
/// host_key_fingerprint = "SHA256:..."   # `ssh-keygen -lf <host key>.pub`
/// trust_on_first_use = false            # learned keys go to providers.lock
/// hourly_usd = 0.0
/// region = "local"
/// max_concurrency = 4
/// ```
#[derive(Debug, Clone, Default)]
pub struct SshSettings {
    /// Limits shared by every host.
    pub limits: crate::ssh::SshLimits,
    /// The hosts. Default: none.
    pub hosts: Vec<crate::ssh::SshHostConfig>,
}

/// Whether the lock file is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrityMode {
    /// An unknown or changed `.wasm` file is refused (the default).
    Enforce,
    /// An unknown or changed file is loaded with a warning.
    Warn,
    /// A file loads only with a valid minisign signature (`<file>.minisig`)
    /// by a key trusted for it (`trusted_keys`); `providers.lock` is not
    /// consulted, so a newly signed release is picked up by hot reload.
    Signed,
}

/// The `[host]` section.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// Directory of provider `.wasm` files. Default: the in-tree build.
    pub providers_dir: PathBuf,
    /// Directory for the database and the artifact cache.
    /// Default: `$XDG_STATE_HOME/bpr` or `~/.local/state/bpr`.
    pub state_dir: PathBuf,
    /// The lock file. Default: `<providers_dir>/providers.lock`.
    pub lock_file: PathBuf,
    /// Precompiled-artifact cache. Default: `<state_dir>/artifacts`.
    pub artifact_dir: PathBuf,
    /// The key whose HMAC vouches that a cached artifact was compiled by this
    /// host from the approved file; made on first use, mode 0600. Must lie
    /// outside `artifact_dir`. Default: `<state_dir>/artifact-cache.key`.
    pub artifact_key_file: PathBuf,
    /// The SQLite database (price cache, deployment tracker). Default:
    /// `<state_dir>/bpr.sqlite3`. Unused when [`HostSettings::postgres`] is set.
    pub database: PathBuf,
    /// `[host] database = "postgres://user@host:port/db"`: the store is this
    /// PostgreSQL database instead of the SQLite file (its password from
    /// `[database] password_file` / `password_env`).
    pub postgres: Option<crate::db::PostgresTarget>,
    /// Lock enforcement. Default: enforce.
    pub integrity: IntegrityMode,
    /// Watch `providers_dir` and hot-reload. Default: true.
    pub watch: bool,
    /// Public keys trusted to sign every provider file (`trusted_keys`: a
    /// minisign public key `"RW..."`, or `{ name = "...", key = "RW..." }`
    /// or `{ name = "...", key_file = "x.pub" }`). Default: none.
    pub trusted_keys: Vec<TrustedKey>,
    /// Calls that may run at once across all providers (pre-reserved
    /// instance slots); a call beyond it fails with a trap. Default: 256.
    pub max_concurrent_calls: u32,
}

/// One `[providers.<name>]` section.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// False to skip loading this provider. Default: true.
    pub enabled: bool,
    /// Outbound allowlist. Default: empty (every request denied).
    pub allow: Vec<AllowRule>,
    /// Per-call deadline. Default: 30 s.
    pub call_timeout: Duration,
    /// Guest memory cap in bytes. Default: 256 MiB.
    pub memory_bytes: usize,
    /// Cap on one outbound request body. Default: 1 MiB.
    pub max_request_body: usize,
    /// Cap on one inbound response body. Default: 16 MiB.
    pub max_response_body: usize,
    /// Multiplier applied to this provider's prices before ranking. Default: 1.0.
    pub price_multiplier: f64,
    /// Whether the component may import the host `ssh` interface. Default: false.
    pub allow_ssh: bool,
    /// Non-secret settings passed to the component.
    pub settings: BTreeMap<String, String>,
    /// Credential the host applies to outbound requests. Default: none.
    pub credential: CredentialConfig,
    /// Methods, request and connection caps, host-memory budget of a call.
    /// Defaults: see [`OutboundLimits`].
    pub outbound: OutboundLimits,
    /// Records one call may log (`log_records_burst`, `log_records_per_sec`).
    /// Default: 200 at once, then 20 per second.
    pub log: LogLimits,
    /// Caps on what the component returns (`max_returned_*`); see
    /// [`ReturnLimits`] for each default.
    pub returned: ReturnLimits,
    /// Public keys trusted to sign this provider's file, besides `[host]
    /// trusted_keys` (same forms). Default: none.
    pub trusted_keys: Vec<TrustedKey>,
}

impl ProviderConfig {
    /// Defaults for a provider the config does not mention: nothing allowed.
    pub fn unconfigured() -> Self {
        Self {
            enabled: true,
            allow: Vec::new(),
            call_timeout: Duration::from_secs(30),
            memory_bytes: 256 << 20,
            max_request_body: 1 << 20,
            max_response_body: 16 << 20,
            price_multiplier: 1.0,
            allow_ssh: false,
            settings: BTreeMap::new(),
            credential: CredentialConfig::None,
            outbound: OutboundLimits::default(),
            log: LogLimits::default(),
            returned: ReturnLimits::default(),
            trusted_keys: Vec::new(),
        }
    }
}

impl Config {
    /// Load `path`, or the embedded defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFailed {
                    path: path.display().to_string(),
                    source,
                })?;
                let base = path.parent().unwrap_or(Path::new("."));
                toml_dto::parse(&text, &path.display().to_string(), base)
            }
            None => Self::embedded_defaults(),
        }
    }

    /// The embedded defaults.
    pub fn embedded_defaults() -> Result<Self> {
        toml_dto::parse(DEFAULTS_TOML, "<embedded defaults>", Path::new("."))
    }

    /// Parse config text; `origin` names it in errors. Relative paths are
    /// resolved against the current directory.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self> {
        toml_dto::parse(text, origin, Path::new("."))
    }

    /// The section for `name`, or the deny-everything default.
    pub fn provider(&self, name: &str) -> ProviderConfig {
        self.providers
            .get(name)
            .cloned()
            .unwrap_or_else(ProviderConfig::unconfigured)
    }

    /// Path of the SQLite database shared by the price cache and the tracker
    /// (where it would be when the store is PostgreSQL: see
    /// [`Config::database_location`]).
    pub fn database_path(&self) -> PathBuf {
        self.host.database.clone()
    }

    /// Where the store is: the SQLite file or the PostgreSQL database.
    pub fn database_location(&self) -> crate::db::Location {
        match &self.host.postgres {
            Some(t) => crate::db::Location::Postgres(t.clone()),
            None => crate::db::Location::Sqlite(self.host.database.clone()),
        }
    }

    /// Opens (and migrates) the store this configuration names.
    pub fn open_database(&self) -> crate::db::Result<crate::db::Database> {
        crate::db::Database::open_location(&self.database_location(), &self.database)
    }
}

/// The default state directory: `$XDG_STATE_HOME/bpr` or `~/.local/state/bpr`.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir).join("bpr");
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/state/bpr"),
        None => PathBuf::from(".bpr-state"),
    }
}
