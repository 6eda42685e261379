//! Encodings the component needs: base64 (`user_data`, kubeconfigs), the
//! OpenSSH SHA256 fingerprint of a public key (how a registered key is
//! recognised), and reading the few fields we need out of a kubeconfig.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};

/// Standard base64 with padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard alphabet, padding optional when decoding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decode standard base64 (padding optional, whitespace ignored); `None` when
/// it is not base64.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    LENIENT.decode(clean).ok()
}

/// An OpenSSH public key line (`type base64 [comment]`) reduced to what
/// identifies the key: its type and blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `ssh-ed25519`, `ssh-rsa`...
    pub kind: String,
    /// The decoded key blob.
    pub blob: Vec<u8>,
}

impl PublicKey {
    /// Parse a key line; `None` when it is not `type base64 [comment]` with a
    /// blob that starts with its own type (as every OpenSSH key blob does).
    pub fn parse(line: &str) -> Option<Self> {
        let mut fields = line.split_whitespace();
        let kind = fields.next()?.to_string();
        let blob = base64_decode(fields.next()?)?;
        let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
        if blob.get(4..4 + len)? != kind.as_bytes() {
            return None;
        }
        Some(PublicKey { kind, blob })
    }

    /// `SHA256:<base64 without padding>`, as `ssh-keygen -lf` prints it.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }
}

/// The fields of a kubeconfig we hand over (first cluster, first user).
#[derive(Debug, Default, PartialEq)]
pub struct KubeconfigFields {
    /// `clusters[0].cluster.server`.
    pub server: Option<String>,
    /// `certificate-authority-data` (base64 PEM).
    pub certificate_authority_data: Option<String>,
    /// `client-certificate-data` (base64 PEM).
    pub client_certificate_data: Option<String>,
    /// `client-key-data` (base64 PEM).
    pub client_key_data: Option<String>,
    /// `token`.
    pub token: Option<String>,
}

/// Read `key: value` lines of a block-style kubeconfig (what Vultr returns);
/// the first occurrence of each key wins. Values may be quoted.
pub fn kubeconfig_fields(yaml: &str) -> KubeconfigFields {
    let mut out = KubeconfigFields::default();
    for line in yaml.lines() {
        let line = line.trim_start().trim_start_matches("- ").trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        if value.is_empty() {
            continue;
        }
        let slot = match key.trim() {
            "server" => &mut out.server,
            "certificate-authority-data" => &mut out.certificate_authority_data,
            "client-certificate-data" => &mut out.client_certificate_data,
            "client-key-data" => &mut out.client_key_data,
            "token" => &mut out.token,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.to_string());
        }
    }
    out
}

/// Decode base64 PEM text (kubeconfig `*-data`); `None` unless it decodes to
/// UTF-8 with a PEM header.
pub fn pem_from_base64(data: &str) -> Option<String> {
    base64_decode(data)
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|pem| pem.contains("-----BEGIN "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq0d6pZ8fWzMZb2y1q8e0x6Hn2W0e3Y9v2bX7t1m4kR test@bpr";

    #[test]
    fn base64_round_trips_with_or_without_padding() {
        assert_eq!(base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(base64_decode("aGVsbG8=").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("aGVs\nbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(base64_decode("a*b"), None);
    }

    #[test]
    fn fingerprint_is_the_openssh_sha256_of_the_blob() {
        let key = PublicKey::parse(KEY).expect("an OpenSSH key line");
        assert_eq!(key.kind, "ssh-ed25519");
        // `ssh-keygen -lf` of this key line prints the same value.
        assert_eq!(
            key.fingerprint(),
            "SHA256:dnMuN/ju6vEz4sff7fLcyifAKHr8Eco9/vqCcZLohTI"
        );
        // The comment does not change the key.
        let other = PublicKey::parse(&KEY.replace("test@bpr", "someone@else")).unwrap();
        assert_eq!(key, other);
    }

    #[test]
    fn lines_that_are_not_keys_are_refused() {
        assert_eq!(PublicKey::parse("not-a-key"), None);
        assert_eq!(
            PublicKey::parse("ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGq0d6pZ8fW"),
            None
        );
    }

    #[test]
    fn kubeconfig_fields_are_read_from_block_yaml() {
        let yaml = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://x.vultr-k8s.com:6443\n  name: vke\nusers:\n- name: admin\n  user:\n    client-certificate-data: \"Q0VSVA==\"\n    client-key-data: S0VZ\n";
        assert_eq!(
            kubeconfig_fields(yaml),
            KubeconfigFields {
                server: Some("https://x.vultr-k8s.com:6443".into()),
                certificate_authority_data: Some("Q0E=".into()),
                client_certificate_data: Some("Q0VSVA==".into()),
                client_key_data: Some("S0VZ".into()),
                token: None,
            }
        );
    }
}
