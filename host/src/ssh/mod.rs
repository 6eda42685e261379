//! The host `ssh` capability: run commands and upload files on the operator's
//! own machines, named by alias, over SSH (russh, ring backend).
//!
//! This module is plain async Rust with no wasmtime types; the runtime wires
//! [`SshPool`] to the `blueprint:provider/ssh` WIT import.
//!
//! # Safety properties
//! - **Host keys are always checked.** Each host has a pinned SHA-256
//!   fingerprint (`SHA256:...`, as `ssh-keygen -lf` prints it). Without a pin,
//!   the key is refused unless the operator set `trust_on_first_use`; then the
//!   first key seen is accepted, pinned for the life of the pool, and handed to
//!   [`HostKeyStore::record`] so the caller can persist it (providers.lock).
//! - **Commands are argv lists.** The host quotes every argument with POSIX
//!   single quotes ([`quote_argv`]), so arguments reach the program byte-exact
//!   whatever they contain. The remote login shell must be POSIX (sh, bash,
//!   dash, zsh, ksh), which is what every Linux distribution sets by default.
//! - **Every call is bounded:** a deadline (default 30 s, capped at the
//!   configured maximum) that kills the remote command, stdout/stderr caps with
//!   truncation flags, and a per-host concurrency limit.
//! - **Every command is audited** with `target: "bpr::audit"`: alias,
//!   `argv[0]`, exit code, duration and outcome. The other arguments and stdin
//!   are never logged, because they may carry secrets (environment values,
//!   tokens passed to `docker run -e`...).
//!
//! # Wiring
//! Build one [`SshPool`] from the operator config ([`SshHostConfig`] per host,
//! one [`SshLimits`]) and a [`HostKeyStore`]; share it (`Arc`) between calls.
//! Map [`SshError`] one-to-one onto the WIT `ssh-error` cases.

mod config;
mod error;
pub(crate) mod inventory;
mod pool;
mod probe;
mod quote;

pub use config::{SshHostConfig, SshLimits};
pub use error::SshError;
pub use inventory::store_capacity;
pub use pool::{
    ExecOutput, HostEntry, HostKeyStore, HostKeyStoreError, MemoryHostKeyStore, Resources, SshPool,
};
pub use probe::{ProbeParseError, parse_probe_output};
pub use quote::{quote_arg, quote_argv};
