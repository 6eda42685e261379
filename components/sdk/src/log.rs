//! Logging into the host's `tracing` output. Never log secrets.

use crate::bindings::blueprint::provider::log as wit;

pub use wit::Level;

/// Log `message` with extra `fields` at `level`.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    wit::log(level, message, &fields);
}

/// Debug record.
pub fn debug(message: &str) {
    log(Level::Debug, message, &[]);
}

/// Info record.
pub fn info(message: &str) {
    log(Level::Info, message, &[]);
}

/// Warning record.
pub fn warn(message: &str) {
    log(Level::Warn, message, &[]);
}

/// Error record.
pub fn error(message: &str) {
    log(Level::Error, message, &[]);
}
