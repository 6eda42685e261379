//! Size and character limits of a deploy request. A request is stored in the
//! tracker, listed by `bpr status` and copied into every provider call:
//! without limits, one request with a 10 MB id made `status` use 149 MB
//! (issue 20). The limits are far above any real use.

use super::{DeployRequest, RequestError, bad};

/// Longest Blueprint or service id (on chain they are numbers).
pub const MAX_ID: usize = 128;
/// Most labels a request may carry (the host adds its own next to them).
pub const MAX_LABELS: usize = 32;
/// Longest label value.
pub const MAX_LABEL_VALUE: usize = 255;
/// Most SSH keys per request, and the longest key line.
pub const MAX_SSH_KEYS: usize = 16;
/// Longest SSH public key line (an 16384-bit RSA key is about 2.8 KiB).
pub const MAX_SSH_KEY: usize = 16 * 1024;
/// Most firewall openings.
pub const MAX_OPEN_PORTS: usize = 64;
/// Longest image reference, cleanup webhook URL.
pub const MAX_SHORT_TEXT: usize = 2048;
/// Largest request as stored (JSON), workload included.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Check `req` against the limits; errors name the field and the limit.
pub(super) fn check(req: &DeployRequest) -> Result<(), RequestError> {
    for (field, v) in [
        ("blueprint_id", &req.blueprint_id),
        ("service_id", &req.service_id),
    ] {
        id(field, v)?;
    }
    if req.labels.len() > MAX_LABELS {
        return Err(bad(
            "labels",
            format!("{} labels; at most {MAX_LABELS}", req.labels.len()),
        ));
    }
    for (k, v) in &req.labels {
        text(&format!("labels.{}", short(k)), v, MAX_LABEL_VALUE)?;
    }
    if req.ssh_public_keys.len() > MAX_SSH_KEYS {
        return Err(bad(
            "ssh_public_keys",
            format!("{} keys; at most {MAX_SSH_KEYS}", req.ssh_public_keys.len()),
        ));
    }
    for (i, k) in req.ssh_public_keys.iter().enumerate() {
        text(&format!("ssh_public_keys[{i}]"), k, MAX_SSH_KEY)?;
    }
    if req.open_ports.len() > MAX_OPEN_PORTS {
        return Err(bad(
            "open_ports",
            format!(
                "{} openings; at most {MAX_OPEN_PORTS}",
                req.open_ports.len()
            ),
        ));
    }
    if let Some(image) = &req.image {
        text("image", image, MAX_SHORT_TEXT)?;
    }
    if let Some(url) = &req.cleanup_webhook {
        text("cleanup_webhook", url, MAX_SHORT_TEXT)?;
    }
    let size = serde_json::to_vec(req)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_REQUEST_BYTES {
        return Err(bad(
            "request",
            format!(
                "is {size} bytes as stored; at most {MAX_REQUEST_BYTES} (a large workload belongs in its image)"
            ),
        ));
    }
    Ok(())
}

/// A Blueprint or service id: 1 to [`MAX_ID`] characters of `[A-Za-z0-9._:-]`.
fn id(field: &str, v: &str) -> Result<(), RequestError> {
    if v.is_empty() || v.trim().is_empty() {
        return Err(bad(field, "must not be empty"));
    }
    if v.len() > MAX_ID {
        return Err(bad(
            field,
            format!("is {} characters long; at most {MAX_ID}", v.len()),
        ));
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(bad(
            field,
            format!(
                "{:?} contains {c:?}; use letters, digits, '.', '_', ':' or '-'",
                short(v)
            ),
        ));
    }
    Ok(())
}

/// Free text: at most `max` bytes, no control characters.
fn text(field: &str, v: &str, max: usize) -> Result<(), RequestError> {
    if v.len() > max {
        return Err(bad(
            field,
            format!("is {} bytes long; at most {max}", v.len()),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(bad(field, "contains a control character"));
    }
    Ok(())
}

/// The start of a long value, for messages that must stay short themselves.
fn short(v: &str) -> String {
    const SHOWN: usize = 40;
    match v.char_indices().nth(SHOWN) {
        Some((i, _)) => format!("{}...", &v[..i]),
        None => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> DeployRequest {
        DeployRequest::new("7", "42")
    }

    #[test]
    fn ordinary_requests_pass() {
        let mut r = DeployRequest::new("bp-test", "svc.test:1_a");
        r.labels.insert("team".into(), "a b/c".into());
        r.ssh_public_keys = vec!["ssh-ed25519 AAAA test".into()];
        check(&r).unwrap();
    }

    #[test]
    fn a_ten_megabyte_id_is_refused_with_a_short_message() {
        let mut r = req();
        r.blueprint_id = "7".repeat(10 << 20);
        let e = check(&r).unwrap_err();
        assert_eq!(e.field, "blueprint_id");
        assert!(e.message.contains("at most 128"), "{}", e.message);
        assert!(e.message.len() < 200, "{}", e.message.len());
    }

    #[test]
    fn ids_with_spaces_or_control_characters_are_refused() {
        for bad_id in ["a b", "a\nb", "x/y", "ü"] {
            let mut r = req();
            r.service_id = bad_id.into();
            assert_eq!(check(&r).unwrap_err().field, "service_id", "{bad_id:?}");
        }
    }

    #[test]
    fn too_many_or_too_long_labels_keys_and_ports_are_refused() {
        let mut r = req();
        for i in 0..=MAX_LABELS {
            r.labels.insert(format!("l{i}"), "v".into());
        }
        assert_eq!(check(&r).unwrap_err().field, "labels");
        let mut r = req();
        r.labels.insert("k".into(), "v".repeat(MAX_LABEL_VALUE + 1));
        assert_eq!(check(&r).unwrap_err().field, "labels.k");
        let mut r = req();
        r.ssh_public_keys = vec!["k".into(); MAX_SSH_KEYS + 1];
        assert_eq!(check(&r).unwrap_err().field, "ssh_public_keys");
        let mut r = req();
        r.image = Some("i".repeat(MAX_SHORT_TEXT + 1));
        assert_eq!(check(&r).unwrap_err().field, "image");
    }
}
