//! Operator settings (`blueprint:provider/settings`), non-secret strings.

use crate::bindings::blueprint::provider::settings as wit;

/// The value of `key`, trimmed; `None` when unset or blank.
pub fn get(key: &str) -> Option<String> {
    wit::get(key)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The value of `key`, or `default` when unset or blank.
pub fn get_or(key: &str, default: &str) -> String {
    get(key).unwrap_or_else(|| default.to_string())
}

/// A comma-separated list (`"a, b,c"` -> `["a","b","c"]`); empty when unset.
pub fn list(key: &str) -> Vec<String> {
    get(key).map(|v| split_list(&v)).unwrap_or_default()
}

/// Split a comma-separated list, trimming and dropping empty items.
pub fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A boolean (`true/yes/1/on` or `false/no/0/off`); `default` when unset or
/// not understood.
pub fn get_bool(key: &str, default: bool) -> bool {
    match get(key).map(|v| v.to_ascii_lowercase()).as_deref() {
        Some("true" | "yes" | "1" | "on") => true,
        Some("false" | "no" | "0" | "off") => false,
        _ => default,
    }
}

/// An endpoint base URL from setting `key` without a trailing `/`, or `default`.
pub fn endpoint(key: &str, default: &str) -> String {
    get_or(key, default).trim_end_matches('/').to_string()
}
