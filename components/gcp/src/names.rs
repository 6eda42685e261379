//! Names, request ids and labels within Google Cloud's rules.
//!
//! - Resource names (instances, firewalls, GKE clusters) match
//!   `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`; ours are derived from the create's
//!   idempotency key, so a retry names the same resource.
//! - `requestId` is a UUID derived from the key and the step, so a retried insert
//!   or delete is recognised by Compute Engine.
//! - Label keys start with a lower-case letter; keys and values use only
//!   `[a-z0-9_-]`, at most 63 characters, at most 64 labels. Host labels are
//!   stored reversibly (see [`encode_value`]); the exact values also go into the
//!   instance metadata `bpr-labels`, read back first.

use std::collections::BTreeMap;

use provider_sdk::Error;

/// The label every resource of a deployment carries.
pub const LABEL_DEPLOYMENT: &str = "bpr-deployment";
/// Internal label: a hash of the idempotency key, to recognise our own resource
/// behind a name conflict. Never reported back.
pub const LABEL_IDEMPOTENCY: &str = "bpr-idem";
/// Instance metadata key holding the labels exactly as the host gave them (JSON).
pub const METADATA_LABELS: &str = "bpr-labels";
/// Prefix marking an encoded label key (one that does not start with a letter).
const KEY_ESCAPE: &str = "bpr-k-";
/// Google's limits.
const MAX_NAME: usize = 63;
const MAX_LABEL: usize = 63;
const MAX_LABELS: usize = 64;

/// 64-bit FNV-1a with a seed byte: stable names and request ids, not security.
pub fn fnv1a(data: &[u8], seed: u8) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed as u64;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// 16 hex digits of the hash of `s`.
pub fn hash_hex(s: &str) -> String {
    format!("{:016x}", fnv1a(s.as_bytes(), 0))
}

/// A `requestId` for `seed`: a well-formed UUID (version 8, "custom"), never the
/// all-zero one Compute Engine refuses.
pub fn request_id(seed: &str) -> String {
    let hi = fnv1a(seed.as_bytes(), 1);
    let lo = fnv1a(seed.as_bytes(), 2);
    let hi = (hi & !0xf000) | 0x8000; // version nibble
    let lo = (lo & !(0xc000 << 48)) | (0x8000 << 48); // RFC 4122 variant
    let h = format!("{hi:016x}{lo:016x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// True when `s` is a valid Compute Engine resource name of at most `max` characters.
pub fn valid_name(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max.min(MAX_NAME)
        && b[0].is_ascii_lowercase()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[b.len() - 1] != b'-'
}

/// A resource name `bpr-<key>` of at most `max` characters: the key itself when
/// it already fits the rules, else a readable prefix of it plus a hash of the
/// whole key (so different keys never share a name).
pub fn resource_name(key: &str, max: usize) -> String {
    let plain = format!("bpr-{key}");
    if valid_name(&plain, max) {
        return plain;
    }
    let mut cleaned = String::new();
    for c in key.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            cleaned.push(c);
        } else if !cleaned.ends_with('-') {
            cleaned.push('-');
        }
    }
    let hash = &hash_hex(key)[..8];
    let room = max
        .min(MAX_NAME)
        .saturating_sub("bpr-".len() + 1 + hash.len());
    let head: String = cleaned.trim_matches('-').chars().take(room).collect();
    let head = head.trim_end_matches('-');
    if head.is_empty() {
        format!("bpr-{hash}")
    } else {
        format!("bpr-{head}-{hash}")
    }
}

/// The label key stored for host key `k`: itself when it starts with a letter,
/// else `bpr-k-<k>` (also for keys that already start with `bpr-k-`, so that
/// decoding is exact).
pub fn encode_key(k: &str) -> Result<String, Error> {
    let valid_chars = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid_chars {
        return Err(Error::InvalidRequest(format!(
            "label key `{k}` must use only [a-z0-9_-]"
        )));
    }
    let out = if k.as_bytes()[0].is_ascii_lowercase() && !k.starts_with(KEY_ESCAPE) {
        k.to_string()
    } else {
        format!("{KEY_ESCAPE}{k}")
    };
    if out.len() > MAX_LABEL {
        return Err(Error::InvalidRequest(format!(
            "label key `{k}` is too long to store on Google Cloud (at most {MAX_LABEL} characters, {} with a leading digit or `-`/`_`)",
            MAX_LABEL - KEY_ESCAPE.len()
        )));
    }
    Ok(out)
}

/// The host key of stored label key `k` (inverse of [`encode_key`]).
pub fn decode_key(k: &str) -> String {
    k.strip_prefix(KEY_ESCAPE).unwrap_or(k).to_string()
}

/// The label value stored for `v`: `[a-z0-9-]` are kept, `_` becomes `__` and
/// every other byte `_<two hex digits>`, so any text maps to a valid value and
/// back. A value whose encoding is longer than 63 characters is stored as
/// `_h<hash>` (the exact text stays in the instance metadata).
pub fn encode_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' {
            out.push(b as char);
        } else if b == b'_' {
            out.push_str("__");
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    if out.len() > MAX_LABEL {
        format!("_h{}", hash_hex(v))
    } else {
        out
    }
}

/// The text of stored value `v`; `None` for a hashed value or one that is not
/// our encoding.
pub fn decode_value(v: &str) -> Option<String> {
    if v.starts_with("_h") {
        return None;
    }
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            if b.get(i + 1) == Some(&b'_') {
                out.push(b'_');
                i += 2;
            } else {
                let hex = v.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The stored labels of a resource: the host's labels (with `bpr-deployment`
/// ensured) plus the internal idempotency label.
pub fn encode_labels(
    labels: &[(String, String)],
    deployment_id: &str,
    idempotency_key: &str,
) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    for (k, v) in labels {
        if k == LABEL_IDEMPOTENCY {
            return Err(Error::InvalidRequest(format!(
                "label key `{LABEL_IDEMPOTENCY}` is reserved by the gcp provider"
            )));
        }
        out.insert(encode_key(k)?, encode_value(v));
    }
    out.entry(LABEL_DEPLOYMENT.to_string())
        .or_insert_with(|| encode_value(deployment_id));
    out.insert(LABEL_IDEMPOTENCY.into(), idempotency_label(idempotency_key));
    if out.len() > MAX_LABELS {
        return Err(Error::InvalidRequest(format!(
            "{} labels: Google Cloud allows at most {MAX_LABELS} per resource (one is used by the provider)",
            out.len() - 1
        )));
    }
    Ok(out)
}

/// The value of the internal idempotency label for `key`.
pub fn idempotency_label(key: &str) -> String {
    hash_hex(key)
}

/// The host's labels from stored labels, preferring the exact values of the
/// `bpr-labels` metadata JSON when there is one.
pub fn decode_labels(
    stored: &BTreeMap<String, String>,
    exact: Option<&str>,
) -> Vec<(String, String)> {
    if let Some(map) = exact.and_then(|j| serde_json::from_str::<BTreeMap<String, String>>(j).ok())
    {
        return map.into_iter().collect();
    }
    stored
        .iter()
        .filter(|(k, _)| k.as_str() != LABEL_IDEMPOTENCY)
        .map(|(k, v)| (decode_key(k), decode_value(v).unwrap_or_else(|| v.clone())))
        .collect()
}

/// The `filter` expression matching resources that carry every label: one
/// parenthesised comparison per label, which Compute Engine's list calls AND.
pub fn label_filter(labels: &[(String, String)]) -> Result<String, Error> {
    let mut terms = Vec::new();
    for (k, v) in labels {
        terms.push(format!(
            "(labels.{} = \"{}\")",
            encode_key(k)?,
            encode_value(v)
        ));
    }
    Ok(terms.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_stable_uuids_that_differ_per_seed() {
        let a = request_id("dep-1-c1/insert");
        assert_eq!(a, request_id("dep-1-c1/insert"));
        assert_ne!(a, request_id("dep-1-c2/insert"));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('8'), "version 8: {a}");
        assert!(
            matches!(&parts[3][..1], "8" | "9" | "a" | "b"),
            "variant: {a}"
        );
        assert_ne!(a, "00000000-0000-0000-0000-000000000000");
    }

    #[test]
    fn a_valid_key_names_the_resource_directly_and_others_get_a_hash() {
        assert_eq!(
            resource_name("dep-a026e02f-3ac9-4948-99bf-e1931959fbb7-c1", 58),
            "bpr-dep-a026e02f-3ac9-4948-99bf-e1931959fbb7-c1"
        );
        let odd = resource_name("Dep_ONE/two", 58);
        assert!(valid_name(&odd, 58), "{odd}");
        assert!(odd.starts_with("bpr-dep-one-two-"), "{odd}");
        assert_ne!(odd, resource_name("dep_one/two", 58));
        let long = resource_name(&"x".repeat(200), 40);
        assert!(valid_name(&long, 40) && long.len() <= 40, "{long}");
        assert!(valid_name(&resource_name("---", 58), 58));
    }

    #[test]
    fn label_values_round_trip_through_the_encoding() {
        for v in [
            "dep-1",
            "a_b/c",
            "Upper Case",
            "ünïcødé",
            "",
            "__",
            "_41",
            "x".repeat(63).as_str(),
        ] {
            let e = encode_value(v);
            assert!(
                e.len() <= 63
                    && e.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b == b'-'
                        || b == b'_'),
                "{v:?} -> {e:?}"
            );
            assert_eq!(decode_value(&e).as_deref(), Some(v), "{v:?} -> {e:?}");
        }
        assert_eq!(encode_value("a_b/c"), "a__b_2fc");
        let long = encode_value(&"Z".repeat(40));
        assert!(long.starts_with("_h") && decode_value(&long).is_none());
    }

    #[test]
    fn label_keys_that_do_not_start_with_a_letter_are_escaped_reversibly() {
        for k in ["bpr-deployment", "team", "1st", "_x", "-y", "bpr-k-z"] {
            let e = encode_key(k).unwrap();
            assert!(e.as_bytes()[0].is_ascii_lowercase(), "{k} -> {e}");
            assert_eq!(decode_key(&e), k);
        }
        assert!(matches!(encode_key("Upper"), Err(Error::InvalidRequest(_))));
        assert!(matches!(
            encode_key(&"1".repeat(60)),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn stored_labels_carry_the_deployment_and_the_idempotency_hash_but_report_neither_twice() {
        let labels = vec![
            ("bpr-managed".to_string(), "true".to_string()),
            ("team".to_string(), "a_b/c".to_string()),
        ];
        let stored = encode_labels(&labels, "dep-7", "dep-7-c1").unwrap();
        assert_eq!(stored["bpr-deployment"], "dep-7");
        assert_eq!(stored[LABEL_IDEMPOTENCY], idempotency_label("dep-7-c1"));
        let back = decode_labels(&stored, None);
        assert!(back.contains(&("team".into(), "a_b/c".into())));
        assert!(back.contains(&("bpr-deployment".into(), "dep-7".into())));
        assert!(!back.iter().any(|(k, _)| k == LABEL_IDEMPOTENCY));
        let exact =
            r#"{"team":"A very long value that does not fit in a Google label at all, really"}"#;
        assert_eq!(
            decode_labels(&stored, Some(exact))[0].1,
            "A very long value that does not fit in a Google label at all, really"
        );
        let too_many: Vec<(String, String)> =
            (0..64).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(matches!(
            encode_labels(&too_many, "d", "k"),
            Err(Error::InvalidRequest(_))
        ));
    }

    #[test]
    fn the_label_filter_is_a_conjunction_of_encoded_labels() {
        let f = label_filter(&[
            ("bpr-deployment".into(), "dep-1".into()),
            ("team".into(), "A".into()),
        ])
        .unwrap();
        assert_eq!(
            f,
            "(labels.bpr-deployment = \"dep-1\") (labels.team = \"_41\")"
        );
    }
}
