//! Errors of the configuration layer.

/// A configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFailed {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("config file {path}: {message}")]
    ParseFailed {
        /// The file.
        path: String,
        /// What the parser said (names the key and line).
        message: String,
    },
    /// A value is well-formed TOML but not acceptable.
    #[error("config file {path}: key `{key}`: {message}")]
    InvalidValue {
        /// The file.
        path: String,
        /// Dotted key path, e.g. `providers.aws.allow`.
        key: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A value names something that cannot be used: a trusted key, an
    /// allowlist rule, an HTTP method, a credential.
    #[error("config file {path}: key `{key}`: {source}")]
    ValueRefused {
        /// The file.
        path: String,
        /// Dotted key path, e.g. `providers.aws.credential`.
        key: String,
        /// What is wrong and what to do.
        #[source]
        source: ValueError,
    },
}

/// Why a value of the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// A limit of 0 where at least 1 is needed.
    #[error("must be at least 1")]
    Zero,
    /// A limit too large to hold in bytes.
    #[error("{value} is too large")]
    TooLarge {
        /// The value as written.
        value: u64,
    },
    /// A trusted key could not be read.
    #[error(transparent)]
    Key(#[from] crate::providers::KeyError),
    /// A trusted key entry gives both or neither of `key` and `key_file`.
    #[error("give each key as `key = \"RW...\"` or `key_file = \"x.pub\"`, one of them")]
    KeyEntry,
    /// An allowlist rule is malformed.
    #[error(transparent)]
    Rule(#[from] crate::capabilities::BadRule),
    /// An HTTP method cannot be allowed.
    #[error(transparent)]
    Method(#[from] crate::capabilities::BadMethod),
    /// A secret is given both from the environment and from a file.
    #[error("{what}: set either token_env or token_file, not both")]
    TwoSecretSources {
        /// The credential kind.
        what: String,
    },
    /// A secret is given neither from the environment nor from a file.
    #[error("{what}: set token_env or token_file")]
    NoSecretSource {
        /// The credential kind.
        what: String,
    },
    /// A `gcp-service-account` credential without `key_file`.
    #[error("gcp-service-account: set key_file (the service account's JSON key)")]
    NoKeyFile,
    /// An `azure-client-credentials` credential without exactly one secret.
    #[error("azure-client-credentials: set one of client_secret_env or client_secret_file")]
    NoClientSecret,
    /// An `azure-client-credentials` credential without its ids.
    #[error("azure-client-credentials: set tenant_id and client_id")]
    NoClientIds,
    /// An `azure-client-credentials` authority that is not https.
    #[error("azure-client-credentials: authority {authority:?} must be an https URL")]
    InsecureAuthority {
        /// The authority as written.
        authority: String,
    },
    /// A credential kind the host does not know.
    #[error(
        "unknown credential kind {kind:?}; use \"none\", \"bearer\", \"aws-sigv4\", \"gcp-service-account\" or \"azure-client-credentials\""
    )]
    UnknownCredentialKind {
        /// The kind as written.
        kind: String,
    },
}

/// Result of the configuration layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
