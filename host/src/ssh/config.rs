//! Configuration of the `ssh` capability: one [`SshHostConfig`] per host and
//! one set of [`SshLimits`].
//!
//! Suggested operator TOML (parsed by the host's config module):
//! ```toml
//! [ssh]
//! default_timeout_ms = 30000     # default 30000
//! max_timeout_ms = 600000        # default 600000
//! stdout_cap_bytes = 1048576     # default 1 MiB
//! stderr_cap_bytes = 262144      # default 256 KiB
//! connect_timeout_ms = 10000     # default 10000
//!
//! [[ssh.hosts]]
//! alias = "rack1"
//! address = "10.0.0.5"           # host name or IP
//! port = 22                      # default 22
//! user = "deploy"
//! private_key_file = "/etc/bpr/keys/rack1_ed25519"
//! host_key_fingerprint = "SHA256:abc..."   # `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`
//! trust_on_first_use = false     # default false
//! hourly_usd = 0.0               # default 0
//! region = "local"               # default "local"
//! max_concurrency = 4            # default 4, at most 10 (sshd MaxSessions)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use super::SshError;

/// Largest per-host concurrency: OpenSSH's default `MaxSessions` is 10 and
/// all of a host's commands share one connection.
pub(crate) const MAX_CONCURRENCY_LIMIT: usize = 10;

/// One host the operator lets the `ssh` provider use.
#[derive(Debug, Clone, PartialEq)]
pub struct SshHostConfig {
    /// Name the component uses; `[a-z0-9_-]`, at most 63 characters.
    pub alias: String,
    /// Host name or IP address to connect to.
    pub address: String,
    /// TCP port. Default 22.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// OpenSSH private key file (unencrypted ed25519 or ECDSA).
    pub private_key_file: PathBuf,
    /// Pinned host key fingerprint, `SHA256:<base64>` exactly as
    /// `ssh-keygen -lf` prints it. Default none.
    pub host_key_fingerprint: Option<String>,
    /// Accept an unpinned host key the first time and report it through
    /// [`crate::ssh::HostKeyStore::record`]. Default false. Never overrides a pin.
    pub trust_on_first_use: bool,
    /// Operator's hourly cost of the host, USD. Default 0.
    pub hourly_usd: f64,
    /// Operator's region label. Default `local`.
    pub region: String,
    /// Commands run at once on this host; more wait for a slot. Default 4,
    /// between 1 and 10.
    pub max_concurrency: usize,
}

impl SshHostConfig {
    /// A host with every optional field at its default.
    pub fn new(
        alias: impl Into<String>,
        address: impl Into<String>,
        user: impl Into<String>,
        private_key_file: impl Into<PathBuf>,
    ) -> Self {
        Self {
            alias: alias.into(),
            address: address.into(),
            port: 22,
            user: user.into(),
            private_key_file: private_key_file.into(),
            host_key_fingerprint: None,
            trust_on_first_use: false,
            hourly_usd: 0.0,
            region: "local".to_string(),
            max_concurrency: 4,
        }
    }

    /// Checks the fields that do not need I/O; the error names the field and
    /// the fix.
    pub(crate) fn validate(&self) -> Result<(), SshError> {
        let a = &self.alias;
        if a.is_empty()
            || a.len() > 63
            || !a
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(SshError::Other(format!(
                "ssh host alias `{a}` is invalid: use 1-63 characters of [a-z0-9_-]"
            )));
        }
        if self.address.is_empty() {
            return Err(SshError::Other(format!(
                "ssh host `{a}`: `address` is empty"
            )));
        }
        if self.user.is_empty() {
            return Err(SshError::Other(format!("ssh host `{a}`: `user` is empty")));
        }
        if let Some(fp) = &self.host_key_fingerprint {
            let ok = fp.strip_prefix("SHA256:").is_some_and(|b| {
                b.len() == 43
                    && b.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
            });
            if !ok {
                return Err(SshError::Other(format!(
                    "ssh host `{a}`: host_key_fingerprint `{fp}` is not of the form `SHA256:<43 base64 characters>`; copy it from `ssh-keygen -lf <host key>.pub`"
                )));
            }
        }
        if !(1..=MAX_CONCURRENCY_LIMIT).contains(&self.max_concurrency) {
            return Err(SshError::Other(format!(
                "ssh host `{a}`: max_concurrency {} is out of range 1..={MAX_CONCURRENCY_LIMIT}",
                self.max_concurrency
            )));
        }
        if !self.hourly_usd.is_finite() || self.hourly_usd < 0.0 {
            return Err(SshError::Other(format!(
                "ssh host `{a}`: hourly_usd must be a number >= 0"
            )));
        }
        Ok(())
    }
}

/// Limits shared by every host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshLimits {
    /// Deadline of a command when the caller gives none. Default 30 s.
    pub default_timeout: Duration,
    /// Largest deadline a caller may ask for; longer ones are cut to it.
    /// Default 600 s.
    pub max_timeout: Duration,
    /// Bytes of stdout kept per command; the rest is read and dropped and
    /// `stdout_truncated` is set. Default 1 MiB.
    pub stdout_cap: usize,
    /// Bytes of stderr kept per command. Default 256 KiB.
    pub stderr_cap: usize,
    /// Deadline for TCP connect, key exchange and authentication. Default 10 s.
    pub connect_timeout: Duration,
}

impl Default for SshLimits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(600),
            stdout_cap: 1 << 20,
            stderr_cap: 256 << 10,
            connect_timeout: Duration::from_secs(10),
        }
    }
}
