//! What a new machine boots. Vultr wants exactly one of `os_id`,
//! `snapshot_id`, `app_id` or `image_id`; the instance spec's `image` (else the
//! `image` setting, else [`DEFAULT_OS`]) names it:
//!
//! | value | sent |
//! |---|---|
//! | `Ubuntu 24.04 LTS x64` (an OS name) | `os_id` of the OS with exactly that name in the public `GET /os` |
//! | `os:2284` or `2284` | `os_id: 2284` |
//! | `snapshot:<id>` | `snapshot_id` |
//! | `app:<id>` | `app_id` (one-click application) |
//! | `marketplace:<image id>` | `image_id` (marketplace application image) |
//!
//! OS ids are never hard-coded: they differ between OS releases and Vultr
//! adds new ones.

use provider_sdk::settings;
use provider_sdk::types::Error;
use serde_json::{Value, json};

use crate::api::Api;
use crate::model::OsPage;

/// The OS booted when neither the spec nor the settings name an image.
pub const DEFAULT_OS: &str = "Ubuntu 24.04 LTS x64";

/// A boot source, as the create request field it becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Boot {
    /// `os_id`.
    Os(i64),
    /// `snapshot_id`.
    Snapshot(String),
    /// `app_id`.
    App(i64),
    /// `image_id`.
    Image(String),
}

impl Boot {
    /// The request field and its value.
    pub fn field(&self) -> (&'static str, Value) {
        match self {
            Boot::Os(id) => ("os_id", json!(id)),
            Boot::Snapshot(id) => ("snapshot_id", json!(id)),
            Boot::App(id) => ("app_id", json!(id)),
            Boot::Image(id) => ("image_id", json!(id)),
        }
    }
}

/// A parsed choice: a boot source, or an OS name still to look up.
#[derive(Debug, PartialEq)]
pub enum Choice {
    /// Known without a lookup.
    Boot(Boot),
    /// An OS name for `GET /os`.
    OsName(String),
}

/// Parse an image value (see the module table). Pure.
pub fn parse(value: &str) -> Result<Choice, Error> {
    let value = value.trim();
    let bad = |what: &str| {
        Error::InvalidRequest(format!(
            "image `{value}`: {what}; use an OS name such as `{DEFAULT_OS}`, `os:<id>`, `snapshot:<id>`, `app:<id>` or `marketplace:<image id>`"
        ))
    };
    let number = |n: &str| n.trim().parse::<i64>().ok().filter(|n| *n > 0);
    if value.is_empty() {
        return Err(bad("empty"));
    }
    if let Some(id) = number(value) {
        return Ok(Choice::Boot(Boot::Os(id)));
    }
    match value.split_once(':') {
        Some(("os", id)) => number(id)
            .map(|id| Choice::Boot(Boot::Os(id)))
            .ok_or_else(|| bad("`os:` takes a positive number")),
        Some(("app", id)) => number(id)
            .map(|id| Choice::Boot(Boot::App(id)))
            .ok_or_else(|| bad("`app:` takes a positive number")),
        Some(("snapshot", id)) if !id.trim().is_empty() => {
            Ok(Choice::Boot(Boot::Snapshot(id.trim().to_string())))
        }
        Some(("marketplace", id)) if !id.trim().is_empty() => {
            Ok(Choice::Boot(Boot::Image(id.trim().to_string())))
        }
        _ => Ok(Choice::OsName(value.to_string())),
    }
}

/// The boot source for an instance spec's `image` (see the module doc).
pub fn resolve(api: &Api, image: Option<&str>) -> Result<Boot, Error> {
    let value = image
        .map(str::to_string)
        .or_else(|| settings::get("image"))
        .unwrap_or_else(|| DEFAULT_OS.to_string());
    match parse(&value)? {
        Choice::Boot(boot) => Ok(boot),
        Choice::OsName(name) => {
            let all = api.all_pages("/os", "listing Vultr operating systems", |p: OsPage| {
                (p.os, p.meta)
            })?;
            all.iter()
                .find(|o| o.name == name)
                .map(|o| Boot::Os(o.id))
                .ok_or_else(|| {
                    let ubuntu: Vec<&str> = all
                        .iter()
                        .filter(|o| o.name.starts_with("Ubuntu"))
                        .map(|o| o.name.as_str())
                        .take(4)
                        .collect();
                    Error::InvalidRequest(format!(
                        "Vultr has no operating system named `{name}` (GET /os); set the `image` setting or the spec's image to an exact name such as {ubuntu:?}, or `os:<id>`"
                    ))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_values_choose_the_boot_field() {
        assert_eq!(parse("2284").unwrap(), Choice::Boot(Boot::Os(2284)));
        assert_eq!(parse("os:1743").unwrap(), Choice::Boot(Boot::Os(1743)));
        assert_eq!(
            parse("snapshot:abc-1").unwrap(),
            Choice::Boot(Boot::Snapshot("abc-1".into()))
        );
        assert_eq!(parse("app:2").unwrap(), Choice::Boot(Boot::App(2)));
        assert_eq!(
            parse("marketplace:docker").unwrap(),
            Choice::Boot(Boot::Image("docker".into()))
        );
        assert_eq!(
            parse(" Ubuntu 24.04 LTS x64 ").unwrap(),
            Choice::OsName("Ubuntu 24.04 LTS x64".into())
        );
        assert_eq!(Boot::Os(7).field(), ("os_id", json!(7)));
    }

    #[test]
    fn malformed_image_values_are_invalid_requests_naming_the_forms() {
        for v in ["", "os:x", "app:-1"] {
            match parse(v) {
                Err(Error::InvalidRequest(m)) => assert!(m.contains("os:<id>"), "{m}"),
                other => panic!("{v}: {other:?}"),
            }
        }
    }
}
