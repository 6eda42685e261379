//! `[database]`: how the store is opened (see
//! [`crate::db::DatabaseSettings`] for the defaults).
//!
//! ```toml
//! [database]
//! busy_timeout_ms = 30000   # how long a write waits for another bpr process
//! initialize = false        # true: start empty over an unusable file (kept aside)
//! password_file = "/run/secrets/bpr-db"   # PostgreSQL: the password, from a file...
//! password_env = "BPR_DATABASE_PASSWORD"  # ...or from the environment (one of the two)
//! max_connections = 4       # PostgreSQL: connections of this process
//! tls = "verify-full"       # PostgreSQL: "verify-full" (default off loopback) | "require" | "disable"
//! ca_file = "/etc/bpr/db-ca.pem"          # PostgreSQL: PEM roots for verify-full (else the system's)
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{Error, Result};
use crate::db::{DatabaseSettings, PasswordSource, TlsMode, TlsSettings};

/// The `[database]` section as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DatabaseToml {
    busy_timeout_ms: Option<u64>,
    initialize: Option<bool>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    max_connections: Option<usize>,
    tls: Option<String>,
    ca_file: Option<PathBuf>,
}

impl DatabaseToml {
    /// The settings, checked; `origin` names the file in errors.
    pub(super) fn settings(
        self,
        origin: &str,
        resolve: &dyn Fn(PathBuf) -> PathBuf,
    ) -> Result<DatabaseSettings> {
        let invalid = |key: &str, message: &str| Error::InvalidValue {
            path: origin.to_string(),
            key: key.into(),
            message: message.into(),
        };
        let defaults = DatabaseSettings::default();
        let busy_timeout = match self.busy_timeout_ms {
            None => defaults.busy_timeout,
            Some(0) => {
                return Err(Error::InvalidValue {
                    path: origin.to_string(),
                    key: "database.busy_timeout_ms".into(),
                    message:
                        "must be at least 1 (0 would fail every write another process overlaps)"
                            .into(),
                });
            }
            Some(ms) => Duration::from_millis(ms),
        };
        let password = match (self.password_file, self.password_env) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "database.password_env",
                    "give the password in password_file or password_env, not both",
                ));
            }
            (Some(f), None) => Some(PasswordSource::File(resolve(f))),
            (None, Some(v)) if v.is_empty() => {
                return Err(invalid("database.password_env", "names no variable"));
            }
            (None, Some(v)) => Some(PasswordSource::Env(v)),
            (None, None) => None,
        };
        let max_connections = match self.max_connections {
            Some(0) => {
                return Err(invalid("database.max_connections", "must be at least 1"));
            }
            Some(n) => n,
            None => defaults.max_connections,
        };
        let mode = match self.tls.as_deref().map(str::parse::<TlsMode>) {
            None => None,
            Some(Ok(m)) => Some(m),
            Some(Err(_)) => {
                return Err(invalid(
                    "database.tls",
                    "is not a mode; write \"verify-full\" (the default off loopback: the \
                     server's certificate is checked), \"require\" (encrypted, not checked) or \
                     \"disable\" (plain TCP)",
                ));
            }
        };
        if self.ca_file.is_some() && mode.is_some_and(|m| m != TlsMode::VerifyFull) {
            return Err(invalid(
                "database.ca_file",
                "is only used with tls = \"verify-full\"; set that, or remove ca_file",
            ));
        }
        Ok(DatabaseSettings {
            tls: TlsSettings {
                mode,
                ca_file: self.ca_file.map(resolve),
            },
            busy_timeout,
            initialize: self.initialize.unwrap_or(defaults.initialize),
            password,
            max_connections,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;
    use crate::db::{Location, PasswordSource};

    #[test]
    fn tls_and_ca_file_are_read_and_a_bad_mode_or_an_unused_ca_file_is_refused() {
        use crate::db::TlsMode;
        let c = Config::from_toml_str(
            "[host]\ndatabase = \"postgres://bpr@db.internal:6543/fleet\"\n\
             [database]\ntls = \"verify-full\"\nca_file = \"/etc/bpr/db-ca.pem\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.database.tls.mode, Some(TlsMode::VerifyFull));
        assert_eq!(
            c.database.tls.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/bpr/db-ca.pem"))
        );
        let default = Config::from_toml_str(
            "[host]\ndatabase = \"postgres://bpr@db.internal/fleet\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(default.database.tls.mode, None);
        for (section, key) in [
            ("tls = \"prefer\"\n", "database.tls"),
            (
                "tls = \"require\"\nca_file = \"/etc/ca.pem\"\n",
                "database.ca_file",
            ),
        ] {
            let err = Config::from_toml_str(
                &format!(
                    "[host]\ndatabase = \"postgres://bpr@db.internal/fleet\"\n[database]\n{section}"
                ),
                "t.toml",
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(key), "{section}: {err}");
        }
    }

    #[test]
    fn a_postgres_url_selects_the_postgres_store_with_its_password_file() {
        let c = Config::from_toml_str(
            "[host]\ndatabase = \"postgres://bpr@db.internal:6543/fleet\"\n\
             [database]\npassword_file = \"/run/secrets/bpr-db\"\nmax_connections = 8\n",
            "t.toml",
        )
        .unwrap();
        match c.database_location() {
            Location::Postgres(t) => {
                assert_eq!(t.to_string(), "postgres://bpr@db.internal:6543/fleet");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.database.password,
            Some(PasswordSource::File("/run/secrets/bpr-db".into()))
        );
        assert_eq!(c.database.max_connections, 8);
        let sqlite =
            Config::from_toml_str("[host]\ndatabase = \"/var/lib/bpr/x.sqlite3\"\n", "t").unwrap();
        assert_eq!(
            sqlite.database_location(),
            Location::Sqlite("/var/lib/bpr/x.sqlite3".into())
        );
    }

    #[test]
    fn a_password_in_the_url_or_two_password_sources_are_refused_naming_the_key() {
        let err = Config::from_toml_str(
            "[host]\ndatabase = \"postgresql://bpr:s3cr3t-in-url@h/bpr\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("host.database") && err.contains("password_file"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t-in-url"), "{err}");
        let err = Config::from_toml_str(
            "[host]\ndatabase = \"postgres://bpr@h/bpr\"\n\
             [database]\npassword_file = \"p\"\npassword_env = \"P\"\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not both"), "{err}");
    }
}
