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
}

/// Result of the configuration layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
