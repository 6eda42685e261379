//! `[database]`: how the embedded SQLite database is opened (see
//! [`crate::db::DatabaseSettings`] for the defaults).
//!
//! ```toml
//! [database]
//! busy_timeout_ms = 30000   # how long a write waits for another bpr process
//! initialize = false        # true: start empty over an unusable file (kept aside)
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::{Error, Result};
use crate::db::DatabaseSettings;

/// The `[database]` section as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DatabaseToml {
    busy_timeout_ms: Option<u64>,
    initialize: Option<bool>,
}

impl DatabaseToml {
    /// The settings, checked; `origin` names the file in errors.
    pub(super) fn settings(self, origin: &str) -> Result<DatabaseSettings> {
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
        Ok(DatabaseSettings {
            busy_timeout,
            initialize: self.initialize.unwrap_or(defaults.initialize),
        })
    }
}
