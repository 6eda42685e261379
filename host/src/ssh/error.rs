//! Errors of the `ssh` capability. The cases mirror the WIT `ssh-error`
//! variant one-to-one, so the runtime maps them without losing meaning.

/// Why an SSH operation failed. A non-zero exit status is not an error: it is
/// in [`crate::ssh::ExecOutput::exit_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshError {
    /// The alias is not in the operator config.
    #[error("unknown ssh host: {0}")]
    UnknownHost(String),
    /// The host key did not match the pin, or was unknown and
    /// trust-on-first-use is off.
    #[error("ssh host key rejected: {0}")]
    HostKeyRejected(String),
    /// The host refused our key.
    #[error("ssh unauthorized: {0}")]
    Unauthorized(String),
    /// The deadline passed; the command was killed.
    #[error("ssh timeout: {0}")]
    Timeout(String),
    /// The connection could not be made or was lost.
    #[error("ssh connection failed: {0}")]
    ConnectionFailed(String),
    /// The request was malformed (empty argv, NUL byte, relative path...).
    #[error("invalid ssh request: {0}")]
    Invalid(String),
    /// Anything else (a configuration problem, an upload the remote refused).
    #[error("ssh error: {0}")]
    Other(String),
}

impl SshError {
    /// Short kind name, used in audit records.
    pub fn kind(&self) -> &'static str {
        match self {
            SshError::UnknownHost(_) => "unknown-host",
            SshError::HostKeyRejected(_) => "host-key-rejected",
            SshError::Unauthorized(_) => "unauthorized",
            SshError::Timeout(_) => "timeout",
            SshError::ConnectionFailed(_) => "connection-failed",
            SshError::Invalid(_) => "invalid",
            SshError::Other(_) => "other",
        }
    }
}
