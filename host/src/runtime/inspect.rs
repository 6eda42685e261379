//! Load-time checks of a component's imports and exports against what the
//! sandbox provides, done before linking so the refusal names the reason.

use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::LoadError;

/// Our WIT package and the version this host implements.
pub const PACKAGE: &str = "blueprint:provider";
/// Version of [`PACKAGE`] this host implements.
pub const PACKAGE_VERSION: &str = "0.1.0";

/// WASI interfaces a provider may import (any 0.2.x).
const ALLOWED_WASI: &[&str] = &[
    "wasi:http/outgoing-handler",
    "wasi:http/types",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
];

/// Our interfaces every provider may import.
const ALLOWED_OWN: &[&str] = &["types", "log", "settings"];
/// Our interfaces a provider must export.
const REQUIRED_EXPORTS: &[&str] = &["describe", "compute", "kubernetes"];

/// What the checks learned about a component.
#[derive(Debug, Clone)]
pub struct Surface {
    /// Import names, as the component spells them.
    pub imports: Vec<String>,
    /// Export names.
    pub exports: Vec<String>,
    /// The `blueprint:provider` version the component was built against.
    pub wit_version: String,
    /// Whether it imports the host `ssh` interface.
    pub uses_ssh: bool,
}

/// `ns:pkg/iface@version` split into (`ns:pkg`, `iface`, `version`).
fn split(name: &str) -> (&str, &str, Option<&str>) {
    let (path, version) = match name.split_once('@') {
        Some((p, v)) => (p, Some(v)),
        None => (name, None),
    };
    match path.split_once('/') {
        Some((pkg, iface)) => (pkg, iface, version),
        None => (path, "", version),
    }
}

/// `major.minor` for 0.x versions, `major` otherwise: the semver
/// compatibility key.
fn compat_key(version: &str) -> String {
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or("");
    if major == "0" {
        format!("0.{}", parts.next().unwrap_or(""))
    } else {
        major.to_string()
    }
}

/// Check imports and exports; `file` names the component in errors.
pub fn check(
    engine: &Engine,
    component: &Component,
    file: &str,
    allow_ssh: bool,
) -> Result<Surface, LoadError> {
    let ty = component.component_type();
    let imports: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let ours = compat_key(PACKAGE_VERSION);

    // Version first, so a component of another major gets that message.
    let mut wit_version = None;
    for name in imports.iter().chain(exports.iter()) {
        let (pkg, _, version) = split(name);
        if pkg == PACKAGE {
            let v = version.unwrap_or("");
            if compat_key(v) != ours {
                return Err(LoadError::WrongMajor {
                    file: file.to_string(),
                    found: v.to_string(),
                    supported: PACKAGE_VERSION.to_string(),
                });
            }
            wit_version.get_or_insert_with(|| v.to_string());
        }
    }

    let mut uses_ssh = false;
    for name in &imports {
        let (pkg, iface, version) = split(name);
        let allowed = if pkg == PACKAGE {
            if iface == "ssh" {
                uses_ssh = true;
                if !allow_ssh {
                    return Err(LoadError::ImportRefused {
                        file: file.to_string(),
                        import: name.clone(),
                        reason: "the host `ssh` capability is only for providers with `allow_ssh = true`".into(),
                    });
                }
                true
            } else {
                ALLOWED_OWN.contains(&iface)
            }
        } else {
            let key = format!("{pkg}/{iface}");
            ALLOWED_WASI.contains(&key.as_str()) && version.is_some_and(|v| compat_key(v) == "0.2")
        };
        if !allowed {
            return Err(LoadError::ImportRefused {
                file: file.to_string(),
                import: name.clone(),
                reason: "not in the sandbox's allowed set (wasi:http outgoing-handler, wasi:cli, clocks, random, io 0.2.x, and blueprint:provider types/log/settings)".into(),
            });
        }
    }

    for required in REQUIRED_EXPORTS {
        let found = exports.iter().any(|e| {
            let (pkg, iface, _) = split(e);
            pkg == PACKAGE && iface == *required
        });
        if !found {
            return Err(LoadError::MissingExport {
                file: file.to_string(),
                export: format!("{PACKAGE}/{required}@{PACKAGE_VERSION}"),
            });
        }
    }

    Ok(Surface {
        imports,
        exports,
        wit_version: wit_version.unwrap_or_else(|| PACKAGE_VERSION.to_string()),
        uses_ssh,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_key_treats_0_minor_as_major() {
        assert_eq!(compat_key("0.1.0"), "0.1");
        assert_eq!(compat_key("0.1.7"), "0.1");
        assert_eq!(compat_key("0.2.12"), "0.2");
        assert_eq!(compat_key("1.4.0"), "1");
    }

    #[test]
    fn names_split_into_package_interface_version() {
        assert_eq!(
            split("wasi:http/types@0.2.12"),
            ("wasi:http", "types", Some("0.2.12"))
        );
        assert_eq!(
            split("blueprint:provider/ssh@0.1.0"),
            ("blueprint:provider", "ssh", Some("0.1.0"))
        );
    }
}
