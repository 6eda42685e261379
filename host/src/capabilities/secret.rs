//! Secrets the host reads for a credential, and the error of a credential that
//! cannot be used. Both [`super::credentials`] and [`super::oauth`] build on
//! this module, which depends on neither (no import circle between them).

use std::path::PathBuf;

/// Where a secret is read from. Read at use, so rotation needs no restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the host process.
    Env(String),
    /// A file (its content, trimmed).
    File(PathBuf),
}

/// A credential could not be applied. The request is not sent.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// The secret's env var or file is missing or empty.
    #[error("credential unavailable: {0}")]
    Unavailable(String),
    /// An `aws-sigv4` request lacked or garbled the scope header.
    #[error("aws-sigv4 request needs header x-bpr-aws-scope: <service>/<region>, got {0:?}")]
    MissingScope(Option<String>),
    /// An `aws-sigv4` request asked for a signature the credential does not
    /// give: a host it is not restricted to, or a service or region that is
    /// not the host's. The request is not sent.
    #[error("aws-sigv4: not signing a request to {target} for {scope}: {source}")]
    SigningRefused {
        /// The request's `scheme://host:port`.
        target: String,
        /// The `service/region` the request asked a signature for.
        scope: String,
        /// Why not.
        #[source]
        source: Box<super::credentials::NotSignable>,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    SigningFailed(String),
}

impl SecretSource {
    pub(crate) fn read(&self) -> Result<String, CredentialError> {
        let value = match self {
            Self::Env(name) => std::env::var(name).map_err(|_| {
                CredentialError::Unavailable(format!("environment variable {name} is not set"))
            })?,
            Self::File(path) => std::fs::read_to_string(path).map_err(|e| {
                CredentialError::Unavailable(format!(
                    "cannot read token file {}: {e}",
                    path.display()
                ))
            })?,
        };
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(CredentialError::Unavailable(format!("{self:?} is empty")));
        }
        Ok(value)
    }
}
