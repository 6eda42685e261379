//! Signed providers: a provider file may come with a detached minisign
//! signature (`<name>.wasm.minisig`, Ed25519, as `minisign -Sm <name>.wasm`
//! writes it), and the operator lists the public keys it trusts, for every
//! provider (`[host] trusted_keys`) or for one (`[providers.<name>]
//! trusted_keys`). With `integrity = "signed"` a file loads only with a valid
//! signature by a key trusted for it; in the other modes the signature is
//! still checked and shown (`bpr providers inspect`).
//!
//! The signature covers the very bytes the loader hashed and compiles, and
//! its trusted comment (signed too) is shown as the signer wrote it.
//! Verification is `minisign-verify` (the minisign author's own verifier).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use minisign_verify::{PublicKey, Signature};

/// Largest signature file read; a real one is about 300 bytes.
const MAX_SIGNATURE_BYTES: u64 = 16 << 10;

/// A trusted key could not be read (each says which and why).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The text is not a minisign public key.
    #[error("{key:?} is not a minisign public key: {source}")]
    NotAKey {
        /// The key as written.
        key: String,
        /// What the verifier said.
        #[source]
        source: minisign_verify::Error,
    },
    /// The text is not base64.
    #[error("{key:?} is not base64: {source}")]
    NotBase64 {
        /// The key as written.
        key: String,
        /// What the decoder said.
        #[source]
        source: base64::DecodeError,
    },
    /// The decoded key is too short to carry a key id.
    #[error("{key:?} is too short for a minisign public key")]
    TooShort {
        /// The key as written.
        key: String,
    },
    /// The key file could not be read.
    #[error("cannot read public key file {path}: {source}")]
    ReadFailed {
        /// The key file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file has no key line.
    #[error("{path} holds no public key")]
    NoKey {
        /// The key file.
        path: String,
    },
    /// The key in a key file is not usable.
    #[error("{path}: {source}")]
    BadKeyInFile {
        /// The key file.
        path: String,
        /// Why.
        #[source]
        source: Box<KeyError>,
    },
}

/// A provider's signature file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SignatureFileError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    ReadFailed {
        /// The signature file.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Larger than any minisign signature.
    #[error("{path} is larger than {MAX_SIGNATURE_BYTES} bytes; it is not a minisign signature")]
    TooLarge {
        /// The signature file.
        path: String,
    },
}

/// A public key the operator trusts to sign provider files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The operator's name for the key (its owner), if given.
    pub name: Option<String>,
    /// minisign's key id, as minisign prints it (16 hex digits).
    pub key_id: String,
    key: PublicKey,
}

impl TrustedKey {
    /// A key from its base64 form (the second line of a minisign `.pub`
    /// file, `RW...`).
    pub fn from_base64(name: Option<String>, base64: &str) -> Result<Self, KeyError> {
        let base64 = base64.trim();
        let key = PublicKey::from_base64(base64).map_err(|source| KeyError::NotAKey {
            key: base64.into(),
            source,
        })?;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(base64)
            .map_err(|source| KeyError::NotBase64 {
                key: base64.into(),
                source,
            })?;
        Ok(Self {
            name,
            key_id: key_id_of(&raw).ok_or_else(|| KeyError::TooShort { key: base64.into() })?,
            key,
        })
    }

    /// A key from a minisign `.pub` file.
    pub fn from_file(name: Option<String>, path: &Path) -> Result<Self, KeyError> {
        let shown = || path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::ReadFailed {
            path: shown(),
            source,
        })?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .ok_or_else(|| KeyError::NoKey { path: shown() })?;
        Self::from_base64(name, line).map_err(|e| KeyError::BadKeyInFile {
            path: shown(),
            source: Box::new(e),
        })
    }

    /// `NAME (key ID)` or `key ID`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} (key {})", self.key_id),
            None => format!("key {}", self.key_id),
        }
    }
}

/// minisign's key id of a decoded key or signature: bytes 2..10, shown as the
/// little-endian u64 in upper-case hex.
fn key_id_of(raw: &[u8]) -> Option<String> {
    let id: [u8; 8] = raw.get(2..10)?.try_into().ok()?;
    Some(format!("{:016X}", u64::from_le_bytes(id)))
}

/// What the signature of a provider file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// There is no `<file>.minisig`.
    Unsigned,
    /// A valid signature by a trusted key.
    Trusted {
        /// The key, with the operator's name for it.
        signer: String,
        /// The signer's trusted comment (signed; e.g. `timestamp:... file:...`).
        comment: String,
    },
    /// A signature that does not vouch for the file: unreadable, by a key not
    /// trusted for this provider, or not matching the file.
    Invalid(String),
}

impl SignatureStatus {
    /// One line for `bpr providers inspect` and `list --json`.
    pub fn describe(&self) -> String {
        match self {
            Self::Unsigned => "none".into(),
            Self::Trusted { signer, comment } => {
                format!("signed by {signer}; trusted comment: {comment}")
            }
            Self::Invalid(why) => format!("INVALID: {why}"),
        }
    }
}

/// Where the detached signature of `file` is: `<file>.minisig`.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    PathBuf::from(name)
}

/// The provider file a path in the providers directory belongs to: itself
/// for `<name>.wasm`, `<name>.wasm` for its `<name>.wasm.minisig`.
pub fn provider_file(path: &Path) -> PathBuf {
    match path.to_str().and_then(|p| p.strip_suffix(".minisig")) {
        Some(file) if file.ends_with(".wasm") => PathBuf::from(file),
        _ => path.to_path_buf(),
    }
}

/// The signature file's bytes, read once (bounded); `None` when there is
/// none.
pub fn read_signature(file: &Path) -> Result<Option<Vec<u8>>, SignatureFileError> {
    use std::io::Read as _;
    let path = signature_path(file);
    let failed = |source| SignatureFileError::ReadFailed {
        path: path.display().to_string(),
        source,
    };
    let f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e)),
    };
    let mut bytes = Vec::new();
    f.take(MAX_SIGNATURE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(SignatureFileError::TooLarge {
            path: path.display().to_string(),
        });
    }
    Ok(Some(bytes))
}

/// Check the signature `sig` (the bytes of `<file>.minisig`, `None` when
/// absent) of `bytes` (the file `file` of provider `provider`) against `keys`.
pub fn check(
    file: &Path,
    provider: &str,
    bytes: &[u8],
    sig: Option<&[u8]>,
    keys: &[TrustedKey],
) -> SignatureStatus {
    let Some(sig) = sig else {
        return SignatureStatus::Unsigned;
    };
    let sig_path = signature_path(file);
    let invalid = |why: String| SignatureStatus::Invalid(format!("{}: {why}", sig_path.display()));
    let Ok(text) = std::str::from_utf8(sig) else {
        return invalid("not a minisign signature (not text)".into());
    };
    let signature = match Signature::decode(text) {
        Ok(s) => s,
        Err(e) => return invalid(format!("not a minisign signature: {e}")),
    };
    let signed_by = text
        .lines()
        .nth(1)
        .and_then(|l| {
            base64::engine::general_purpose::STANDARD
                .decode(l.trim())
                .ok()
        })
        .and_then(|raw| key_id_of(&raw))
        .unwrap_or_else(|| "?".into());
    let Some(key) = keys.iter().find(|k| k.key_id == signed_by) else {
        return invalid(format!(
            "signed by key {signed_by}, which is not trusted for provider {provider} ({})",
            trusted_list(provider, keys)
        ));
    };
    // Legacy (non-prehashed) signatures are accepted too: minisign verifies them.
    match key.key.verify(bytes, &signature, true) {
        Ok(()) => SignatureStatus::Trusted {
            signer: key.label(),
            comment: signature.trusted_comment().to_string(),
        },
        Err(e) => invalid(format!(
            "the signature by {} does not match {} ({e}): the file or its signature was altered",
            key.label(),
            file.display()
        )),
    }
}

/// The keys trusted for `provider`, in words, saying where to add one.
fn trusted_list(provider: &str, keys: &[TrustedKey]) -> String {
    if keys.is_empty() {
        return format!(
            "no key is: list the signer's public key in [host] trusted_keys or [providers.{provider}] trusted_keys"
        );
    }
    format!(
        "trusted: {}",
        keys.iter()
            .map(TrustedKey::label)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Why an unsigned file is refused in signed mode, and how to sign it.
pub fn unsigned_refusal(file: &Path, provider: &str, keys: &[TrustedKey]) -> String {
    format!(
        "integrity = \"signed\" needs a signature of this file, and {} does not exist; the author signs it with `minisign -Sm {}` using a key trusted for it ({})",
        signature_path(file).display(),
        file.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        trusted_list(provider, keys)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The prehashed test vector of minisign-verify: its public key (id
    /// E7620F1842B4E81F) and a signature of the text `test`.
    const PUBLIC: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";
    const SIGNATURE: &str = "untrusted comment: signature from minisign secret key\nRUQf6LRCGA9i559r3g7V1qNyJDApGip8MfqcadIgT9CuhV3EMhHoN1mGTkUidF/z7SrlQgXdy8ofjb7bNJJylDOocrCo8KLzZwo=\ntrusted comment: timestamp:1556193335\tfile:test\ny/rUw2y8/hOUYjZU71eHp/Wo1KZ40fGy2VJEDl34XMJM+TX48Ss/17u3IvIfbVR1FkZZSNCisQbuQY+bHwhEBg==\n";

    fn key(name: &str) -> TrustedKey {
        TrustedKey::from_base64(Some(name.into()), PUBLIC).unwrap()
    }

    #[test]
    fn a_valid_signature_by_a_trusted_key_names_the_signer_and_comment() {
        let s = check(
            Path::new("/p/test.wasm"),
            "test",
            b"test",
            Some(SIGNATURE.as_bytes()),
            &[key("Jedi")],
        );
        match s {
            SignatureStatus::Trusted { signer, comment } => {
                assert_eq!(signer, "Jedi (key E7620F1842B4E81F)");
                assert!(comment.contains("file:test"), "{comment}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_bytes_another_key_or_garbage_do_not_verify() {
        let f = Path::new("/p/test.wasm");
        let altered = check(f, "test", b"tesT", Some(SIGNATURE.as_bytes()), &[key("J")]);
        assert!(altered.describe().contains("does not match"), "{altered:?}");
        let untrusted = check(f, "test", b"test", Some(SIGNATURE.as_bytes()), &[]);
        assert!(
            untrusted.describe().contains("not trusted"),
            "{untrusted:?}"
        );
        let garbage = check(f, "test", b"test", Some(b"hello\nworld\n"), &[key("J")]);
        assert!(
            garbage.describe().contains("not a minisign signature"),
            "{garbage:?}"
        );
        assert_eq!(
            check(f, "test", b"test", None, &[]),
            SignatureStatus::Unsigned
        );
    }

    #[test]
    fn a_bad_key_is_refused_with_its_text() {
        let e = TrustedKey::from_base64(None, "RWQnotakey").unwrap_err();
        assert!(e.to_string().contains("RWQnotakey"), "{e}");
    }

    #[test]
    fn the_signature_path_and_its_provider_file_map_both_ways() {
        let f = Path::new("/p/aws.wasm");
        assert_eq!(signature_path(f), Path::new("/p/aws.wasm.minisig"));
        assert_eq!(provider_file(&signature_path(f)), f);
        assert_eq!(provider_file(f), f);
        assert_eq!(
            provider_file(Path::new("/p/x.minisig")),
            Path::new("/p/x.minisig")
        );
    }
}
