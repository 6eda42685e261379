//! Where the PostgreSQL database is: `[host] database = "postgres://user@host:port/db"`,
//! parsed and checked, and where its password comes from.
//!
//! The password is never part of the URL: one there would be shown by every
//! log line, error and `ps` listing that prints the setting. A URL with one
//! is refused; the password comes from `[database] password_file` or
//! `password_env`, is read at connect time and is held only by the
//! connection settings, whose `Debug` does not show it.

use std::path::PathBuf;

use super::super::DbError;

/// A PostgreSQL database to connect to, without its password. Displays as
/// `postgres://user@host:port/db`.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    user: String,
    host: String,
    port: u16,
    dbname: String,
}

/// Where the password is read from (`[database] password_file` /
/// `password_env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file holding the password (a trailing newline is not part of it).
    File(PathBuf),
    /// An environment variable holding it.
    Env(String),
}

impl PostgresTarget {
    /// True when `s` names a PostgreSQL database rather than a SQLite file.
    pub fn is_url(s: &str) -> bool {
        let lower = s.trim_start().to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    }

    /// Parses `postgres://user@host[:port]/db` (also `postgresql://`).
    pub fn parse(url: &str) -> Result<Self, DbError> {
        let bad = |shown: String, message: &str| DbError::BadUrl {
            url: shown,
            message: message.to_string(),
        };
        let parsed = url::Url::parse(url.trim()).map_err(|e| {
            bad(
                "(the [host] database URL)".into(),
                &format!("is not a URL ({e}); write postgres://user@host:port/database"),
            )
        })?;
        let mut shown = parsed.clone();
        let _ = shown.set_password(None);
        let shown = shown.to_string();
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(bad(shown, "is not a postgres:// URL"));
        }
        if parsed.password().is_some() {
            return Err(bad(
                shown,
                "has a password in it; remove it and give it in [database] password_file or \
                 password_env instead (a password in the URL would show in logs, errors and `ps`)",
            ));
        }
        let decode =
            |s: &str| percent_decode(s).ok_or_else(|| bad(shown.clone(), "has invalid %-escapes"));
        let user = decode(parsed.username())?;
        if user.is_empty() {
            return Err(bad(
                shown,
                "names no user; write postgres://user@host:port/database",
            ));
        }
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            None => return Err(bad(shown, "names no host")),
        };
        let dbname = decode(parsed.path().trim_start_matches('/'))?;
        if dbname.is_empty() || dbname.contains('/') {
            return Err(bad(
                shown,
                "names no database; write postgres://user@host:port/database",
            ));
        }
        if let Some(q) = parsed.query().filter(|q| !q.is_empty()) {
            return Err(bad(
                shown.clone(),
                &format!(
                    "has parameters ({q}) that bpr does not read: TLS is set by [database] tls \
                     and ca_file (not sslmode), other settings are the server's"
                ),
            ));
        }
        Ok(Self {
            user,
            host,
            port: parsed.port().unwrap_or(5432),
            dbname,
        })
    }

    /// The same server and user, another database.
    pub fn with_database(&self, dbname: &str) -> Self {
        Self {
            dbname: dbname.to_string(),
            ..self.clone()
        }
    }

    /// The user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The client's connection settings, with the password read from
    /// `password` (if any).
    pub(super) fn client_config(
        &self,
        password: Option<&PasswordSource>,
    ) -> Result<postgres::Config, DbError> {
        let mut c = postgres::Config::new();
        c.user(&self.user)
            .host(&self.host)
            .port(self.port)
            .dbname(&self.dbname)
            .application_name("bpr")
            .connect_timeout(std::time::Duration::from_secs(10))
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(30));
        if let Some(source) = password {
            c.password(read_password(source, self)?);
        }
        Ok(c)
    }
}

fn read_password(source: &PasswordSource, target: &PostgresTarget) -> Result<String, DbError> {
    let bad = |message: String| DbError::BadUrl {
        url: target.to_string(),
        message,
    };
    let raw = match source {
        PasswordSource::File(path) => std::fs::read_to_string(path).map_err(|e| {
            bad(format!(
                "cannot read the password file {} ([database] password_file): {e}",
                path.display()
            ))
        })?,
        PasswordSource::Env(name) => std::env::var(name).map_err(|_| {
            bad(format!(
                "the environment variable {name} ([database] password_env) is not set or not UTF-8"
            ))
        })?,
    };
    let password = raw.strip_suffix('\n').unwrap_or(&raw);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(bad(match source {
            PasswordSource::File(p) => format!("the password file {} is empty", p.display()),
            PasswordSource::Env(n) => format!("the environment variable {n} is empty"),
        }));
    }
    Ok(password.to_string())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl std::fmt::Display for PostgresTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            self.user, self.port, self.dbname
        )
    }
}

impl std::fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresTarget({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_parses_into_user_host_port_and_database_and_displays_without_secrets() {
        let t = PostgresTarget::parse("postgresql://bpr@db.internal:6543/fleet").unwrap();
        assert_eq!(
            (t.user(), t.host(), t.port(), t.dbname()),
            ("bpr", "db.internal", 6543, "fleet")
        );
        assert_eq!(t.to_string(), "postgres://bpr@db.internal:6543/fleet");
        let d = PostgresTarget::parse("postgres://u@127.0.0.1/x").unwrap();
        assert_eq!(d.port(), 5432);
        assert!(PostgresTarget::is_url("postgres://u@h/d"));
        assert!(PostgresTarget::is_url("PostgreSQL://u@h/d"));
        assert!(!PostgresTarget::is_url("/var/lib/bpr/bpr.sqlite3"));
    }

    #[test]
    fn a_url_with_a_password_is_refused_without_repeating_the_password() {
        let err = PostgresTarget::parse("postgres://bpr:hunter2secret@127.0.0.1:5433/bpr")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2secret"), "{err}");
        assert!(err.contains("password_file"), "{err}");
        assert!(err.contains("password_env"), "{err}");
        assert!(err.contains("postgres://bpr@127.0.0.1:5433/bpr"), "{err}");
    }

    #[test]
    fn a_url_without_user_or_database_or_with_parameters_is_refused_saying_what_to_write() {
        for (url, want) in [
            ("postgres://127.0.0.1/bpr", "names no user"),
            ("postgres://bpr@127.0.0.1", "names no database"),
            ("postgres://bpr@127.0.0.1/bpr?sslmode=require", "sslmode"),
            ("mysql://bpr@127.0.0.1/bpr", "not a postgres:// URL"),
        ] {
            let err = PostgresTarget::parse(url).unwrap_err().to_string();
            assert!(err.contains(want), "{url}: {err}");
        }
    }

    #[test]
    fn the_password_is_read_from_a_file_without_its_newline_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let t = PostgresTarget::parse("postgres://bpr@127.0.0.1/bpr").unwrap();
        assert_eq!(
            read_password(&PasswordSource::File(file.clone()), &t).unwrap(),
            "s3cret"
        );
        let missing = dir.path().join("nope");
        let err = read_password(&PasswordSource::File(missing), &t)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope") && err.contains("password_file"),
            "{err}"
        );
        let err = read_password(
            &PasswordSource::Env("BPR_TEST_SURELY_UNSET_PASSWORD_VAR".into()),
            &t,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("BPR_TEST_SURELY_UNSET_PASSWORD_VAR"), "{err}");
        // The settings the client gets do not print it.
        let config = t.client_config(Some(&PasswordSource::File(file))).unwrap();
        assert!(!format!("{config:?}").contains("s3cret"));
    }
}
