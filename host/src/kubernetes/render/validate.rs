//! The checks a request passes before anything is rendered: names, ports,
//! quantities, paths. Errors name the request field and what is accepted.

use crate::kubernetes::error::{Error, Result};
use crate::kubernetes::spec::{DeploymentRequest, ServicePort};

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

fn is_quantity(s: &str) -> bool {
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    !number.is_empty()
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit())
        && [
            "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E",
        ]
        .contains(&suffix)
}

pub(super) fn validate(request: &DeploymentRequest) -> Result<()> {
    if !is_label_value(&request.deployment_id) {
        return Err(Error::invalid(
            "deployment_id",
            format!(
                "`{}` is not a Kubernetes label value (1-63 of [A-Za-z0-9._-], alphanumeric at both ends)",
                request.deployment_id
            ),
        ));
    }
    if request.image.is_empty() || request.image.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            "image",
            format!(
                "`{}` is not an image reference (non-empty, no spaces)",
                request.image
            ),
        ));
    }
    for name in request.env.keys() {
        let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(Error::invalid(
                format!("env.{name}"),
                "is not a valid variable name ([A-Za-z_][A-Za-z0-9_.-]*)",
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, port) in request.ports.iter().enumerate() {
        if port.port == 0 {
            return Err(Error::invalid(format!("ports[{i}].port"), "is 0"));
        }
        let name = port_name(port);
        if !is_dns_label(&name, 15) || !name.chars().any(|c| c.is_ascii_lowercase()) {
            return Err(Error::invalid(
                format!("ports[{i}].name"),
                format!(
                    "`{name}` is not a port name (1-15 of [a-z0-9-], at least one letter, no leading/trailing -)"
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(Error::invalid(
                format!("ports[{i}].name"),
                format!("`{name}` is used twice"),
            ));
        }
    }
    if let Some(health) = &request.health {
        if health.port == 0 {
            return Err(Error::invalid("health.port", "is 0"));
        }
        if let Some(path) = &health.path
            && !path.starts_with('/')
        {
            return Err(Error::invalid(
                "health.path",
                format!("`{path}` must start with /"),
            ));
        }
    }
    if let Some(storage) = &request.storage {
        if !is_quantity(&storage.size) {
            return Err(Error::invalid(
                "storage.size",
                format!(
                    "`{}` is not a Kubernetes quantity such as 10Gi",
                    storage.size
                ),
            ));
        }
        if !storage.mount_path.starts_with('/') || storage.mount_path == "/tmp" {
            return Err(Error::invalid(
                "storage.mount_path",
                format!(
                    "`{}` must be an absolute path other than /tmp",
                    storage.mount_path
                ),
            ));
        }
    }
    if let Some(class) = &request.runtime_class_name
        && !is_dns_label(class, 63)
    {
        return Err(Error::invalid(
            "runtime_class_name",
            format!("`{class}` is not a DNS label"),
        ));
    }
    if let Some(ns) = &request.namespace
        && !is_dns_label(ns, 63)
    {
        return Err(Error::invalid(
            "namespace",
            format!("`{ns}` is not a DNS label"),
        ));
    }
    if let Some(uid) = request.run_as_user
        && uid <= 0
    {
        return Err(Error::invalid(
            "run_as_user",
            format!("is {uid}; must be a non-root UID (> 0)"),
        ));
    }
    Ok(())
}

pub(super) fn port_name(port: &ServicePort) -> String {
    if port.name.is_empty() {
        format!("p{}", port.port)
    } else {
        port.name.clone()
    }
}
