//! `[coordination]`: how replicas sharing one database elect the supervisor's
//! leader (see [`crate::coordination::LeaderSettings`] for the defaults).
//!
//! ```toml
//! [coordination]
//! lease_secs = 15    # a leader that stops renewing hands over after this
//! renew_secs = 5     # how often every replica renews or tries to take it
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{Error, Result};
use crate::coordination::LeaderSettings;

/// The `[coordination]` section as written. Milliseconds keys exist for
/// tests, which keep leases short.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CoordinationToml {
    lease_secs: Option<u64>,
    renew_secs: Option<u64>,
    lease_ms: Option<u64>,
    renew_ms: Option<u64>,
}

impl CoordinationToml {
    /// The settings, checked; `origin` names the file in errors.
    pub(super) fn settings(self, origin: &str) -> Result<LeaderSettings> {
        let invalid = |key: &str, message: String| Error::InvalidValue {
            path: origin.to_string(),
            key: format!("coordination.{key}"),
            message,
        };
        let d = LeaderSettings::default();
        let pick =
            |secs: Option<u64>, ms: Option<u64>, name: &str, default: Duration| match (secs, ms) {
                (Some(_), Some(_)) => Err(invalid(
                    &format!("{name}_ms"),
                    format!("give {name}_secs or {name}_ms, not both"),
                )),
                (Some(s), None) => Ok(Duration::from_secs(s)),
                (None, Some(ms)) => Ok(Duration::from_millis(ms)),
                (None, None) => Ok(default),
            };
        let lease = pick(self.lease_secs, self.lease_ms, "lease", d.lease)?;
        let renew = pick(self.renew_secs, self.renew_ms, "renew", d.renew)?;
        if renew.is_zero() {
            return Err(invalid("renew_secs", "must be more than 0".into()));
        }
        // Two renewals fit in a lease: one slow round does not lose it.
        if lease < renew * 2 {
            return Err(invalid(
                "lease_secs",
                format!(
                    "{} ms is less than twice renew ({} ms): a leader would lose its lease between two renewals",
                    lease.as_millis(),
                    renew.as_millis()
                ),
            ));
        }
        Ok(LeaderSettings { lease, renew })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LeaderSettings> {
        let dto: CoordinationToml = toml::from_str(text).unwrap();
        dto.settings("test.toml")
    }

    #[test]
    fn an_empty_section_gives_the_documented_defaults() {
        assert_eq!(parse("").unwrap(), LeaderSettings::default());
    }

    #[test]
    fn short_test_leases_are_given_in_milliseconds() {
        let s = parse("lease_ms = 1500\nrenew_ms = 300").unwrap();
        assert_eq!(s.lease, Duration::from_millis(1500));
        assert_eq!(s.renew, Duration::from_millis(300));
    }

    #[test]
    fn a_lease_shorter_than_two_renewals_is_refused_naming_the_key() {
        let e = parse("lease_secs = 5\nrenew_secs = 5")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("coordination.lease_secs") && e.contains("test.toml"),
            "{e}"
        );
        assert!(parse("renew_ms = 0").is_err());
        assert!(parse("lease_secs = 10\nlease_ms = 10").is_err());
    }
}
