//! The precompiled-artifact cache: one `.cwasm` per (source sha256, engine
//! compatibility hash), so a restart or a reload of an unchanged file does
//! not recompile.
//!
//! A `.cwasm` is native code that wasmtime maps and runs without checking, so
//! the cache must never be a way around `providers.lock`: each artifact
//! carries an HMAC-SHA256 of the artifact under a key derived from a key the
//! host keeps outside the artifact directory, the source's sha256 and the
//! engine hash. The
//! file is read once into memory and its tag checked before those very bytes
//! are deserialised; an artifact that does not verify (another file's
//! artifact renamed, one written by another host or key, a flipped byte) is
//! ignored with a warning and the approved source is compiled again.
//!
//! File layout: [`MAGIC`], the 32-byte tag, the artifact.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ring::hmac;
use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::LoadError;
use super::private_dir;
use crate::config::HostSettings;

/// First bytes of every artifact file this host writes.
const MAGIC: &[u8] = b"bpr-cwasm-hmac-sha256-v1\n";
/// Bytes of an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;
/// Bytes of the artifact key.
const KEY_LEN: usize = 32;
/// What the tag covers before the artifact, so a tag cannot be reused for
/// another purpose.
const DOMAIN: &[u8] = b"blueprint-remote-providers artifact v1\0";

/// How a component was obtained.
#[derive(Debug, Clone, Copy)]
pub struct CompileStats {
    /// True when the artifact came from the cache.
    pub from_cache: bool,
    /// Time spent compiling or deserialising.
    pub duration: Duration,
}

/// The cache could not be opened: a directory or the key is not private to
/// this host, or the key cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A directory or the key file is open to other users; the message says
    /// which and what to run.
    #[error(transparent)]
    NotPrivate(#[from] super::private_dir::NotPrivate),
    /// A directory could not be created.
    #[error("cannot create {path}: {source}")]
    CreateFailed {
        /// The directory.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file could not be read, written or linked into place.
    #[error("artifact key {path}: {doing}: {source}")]
    KeyIoFailed {
        /// The key file.
        path: String,
        /// What was being done (`cannot read`, ...).
        doing: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The key file could not be made or used.
    #[error("artifact key {path}: {message}")]
    KeyUnusable {
        /// The key file.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
}

/// The cache directory and the key that vouches for its artifacts.
#[derive(Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
    key: hmac::Key,
}

impl std::fmt::Debug for ArtifactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCache")
            .field("dir", &self.dir)
            .field("engine_key", &self.engine_key)
            .finish_non_exhaustive()
    }
}

impl ArtifactCache {
    /// A cache in `dir` for artifacts of `engine`, vouched for by a fresh key
    /// held only in memory: this process reuses what it compiled, artifacts
    /// of any earlier process are recompiled. For benchmarks and tools; the
    /// host uses [`ArtifactCache::open`].
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let key: [u8; KEY_LEN] = rand::random();
        Self::with_key(dir, engine, &key)
    }

    /// The host's cache: `settings.artifact_dir`, with the key in
    /// `settings.artifact_key_file` (made on first use). Creates missing
    /// directories for this user only, and refuses a state directory, artifact
    /// directory or key directory other users can write, and a key file they
    /// can read or write.
    pub fn open(settings: &HostSettings, engine: &Engine) -> Result<Self, CacheError> {
        let key_dir = settings
            .artifact_key_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        for (dir, what) in [
            (settings.state_dir.as_path(), "state directory"),
            (settings.artifact_dir.as_path(), "artifact directory"),
            (key_dir, "directory of the artifact key"),
        ] {
            private_dir::create(dir).map_err(|source| CacheError::CreateFailed {
                path: dir.display().to_string(),
                source,
            })?;
            private_dir::check_dir(dir, what)?;
        }
        let key = load_or_create_key(&settings.artifact_key_file)?;
        Ok(Self::with_key(settings.artifact_dir.clone(), engine, &key))
    }

    fn with_key(dir: PathBuf, engine: &Engine, key: &[u8]) -> Self {
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The key that tags artifacts of the source `sha256` for this engine:
    /// HMAC(host key, domain, sha256, engine hash). A tag made for one source
    /// or engine therefore never verifies for another.
    fn artifact_key(&self, sha256: &str) -> hmac::Key {
        let mut ctx = hmac::Context::with_key(&self.key);
        for part in [DOMAIN, sha256.as_bytes(), b"\0", self.engine_key.as_bytes()] {
            ctx.update(part);
        }
        hmac::Key::new(hmac::HMAC_SHA256, ctx.sign().as_ref())
    }

    /// The tag of `artifact`, compiled from the source `sha256`.
    fn tag(&self, sha256: &str, artifact: &[u8]) -> hmac::Tag {
        hmac::sign(&self.artifact_key(sha256), artifact)
    }

    /// The artifact inside `file` when its tag is this host's for `sha256`;
    /// `Err` says why not.
    fn verified<'a>(&self, sha256: &str, file: &'a [u8]) -> Result<&'a [u8], &'static str> {
        let rest = file
            .strip_prefix(MAGIC)
            .ok_or("not written by this version of the host (no tag)")?;
        if rest.len() < TAG_LEN {
            return Err("truncated");
        }
        let (tag, artifact) = rest.split_at(TAG_LEN);
        // Constant-time: a mismatch says nothing about where.
        hmac::verify(&self.artifact_key(sha256), artifact, tag).map_err(
            |_| "its tag does not match: it was not compiled by this host from the approved file",
        )?;
        Ok(artifact)
    }

    /// The component for `bytes` (whose digest is `sha256`): from the cache
    /// when a verified artifact is there, else compiled and stored.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
        file: &str,
    ) -> Result<(Component, CompileStats), LoadError> {
        let path = self.path_for(sha256);
        let started = Instant::now();
        match std::fs::read(&path) {
            Ok(stored) => match self.verified(sha256, &stored) {
                Ok(artifact) => match deserialize(engine, artifact) {
                    Ok(c) => {
                        return Ok((
                            c,
                            CompileStats {
                                from_cache: true,
                                duration: started.elapsed(),
                            },
                        ));
                    }
                    // A stale artifact (e.g. another wasmtime build) is
                    // recompiled, not fatal.
                    Err(e) => {
                        tracing::warn!(artifact = %path.display(), file, "discarding unusable cached artifact: {e}; recompiling")
                    }
                },
                Err(why) => {
                    tracing::warn!(artifact = %path.display(), file, "ignoring cached artifact: {why}; recompiling")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(artifact = %path.display(), "cannot read cached artifact: {e}; recompiling")
            }
        }
        let compile_failed = |e: wasmtime::Error| LoadError::CompileFailed {
            file: file.to_string(),
            message: format!("{e:#}"),
        };
        let compiled = engine.precompile_component(bytes).map_err(compile_failed)?;
        let tag = self.tag(sha256, &compiled);
        if let Err(e) = write_atomically(&self.dir, &path, &[MAGIC, tag.as_ref(), &compiled]) {
            tracing::warn!(dir = %self.dir.display(), "cannot write artifact cache: {e}");
        }
        // The bytes compiled just now, not the file: nothing can be swapped in between.
        let c = deserialize(engine, &compiled).map_err(compile_failed)?;
        Ok((
            c,
            CompileStats {
                from_cache: false,
                duration: started.elapsed(),
            },
        ))
    }
}

/// Read the key in `path`, or make one there (readable by this user only).
/// Concurrent first runs agree on one key: it is written aside and linked
/// into place, which fails if another process was first.
fn load_or_create_key(path: &Path) -> Result<Vec<u8>, CacheError> {
    let unusable = |message: String| CacheError::KeyUnusable {
        path: path.display().to_string(),
        message,
    };
    let io_failed = |doing: String, source| CacheError::KeyIoFailed {
        path: path.display().to_string(),
        doing,
        source,
    };
    for _ in 0..2 {
        match std::fs::read(path) {
            Ok(key) => {
                private_dir::check_secret_file(path, "artifact key")?;
                if key.len() != KEY_LEN {
                    return Err(unusable(format!(
                        "is {} bytes, not {KEY_LEN}; delete it to make a new key (cached artifacts are then recompiled)",
                        key.len()
                    )));
                }
                return Ok(key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_failed("cannot read".into(), e)),
        }
        let mut key = [0u8; KEY_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
            .map_err(|_| unusable("the system random source failed".into()))?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".artifact-key-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        private_dir::create_secret_file(&tmp, &key)
            .map_err(|e| io_failed(format!("cannot write {}", tmp.display()), e))?;
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(key.to_vec()),
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_failed("cannot create".into(), e)),
        }
    }
    Err(unusable(
        "appeared and vanished while it was being made; try again".into(),
    ))
}

#[allow(unsafe_code, reason = "deserialising a verified artifact; see SAFETY")]
fn deserialize(engine: &Engine, artifact: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `artifact` is either what `precompile_component` of this very
    // engine produced in this process, or bytes read once into memory whose
    // HMAC under the host's private key binds them to the approved source's
    // sha256 and to this engine's compatibility hash: this host compiled them
    // from that source. They are deserialised from that memory, not from the
    // file, so nothing can change between the check and the use.
    unsafe { Component::deserialize(engine, artifact) }
}

fn write_atomically(dir: &Path, path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    private_dir::create(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    private_dir::create_secret_file(&tmp, &parts.concat())?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: &Path) -> (Engine, ArtifactCache) {
        let engine = Engine::default();
        let cache = ArtifactCache::with_key(dir.to_path_buf(), &engine, &[7u8; KEY_LEN]);
        (engine, cache)
    }

    fn tagged(cache: &ArtifactCache, sha: &str, artifact: &[u8]) -> Vec<u8> {
        [MAGIC, cache.tag(sha, artifact).as_ref(), artifact].concat()
    }

    #[test]
    fn only_this_keys_tag_for_this_source_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, c) = cache(dir.path());
        let file = tagged(&c, "aaa", b"artifact");
        assert_eq!(c.verified("aaa", &file), Ok(&b"artifact"[..]));
        // Another source's artifact under this name.
        assert!(c.verified("bbb", &file).is_err());
        // Another key.
        let other = ArtifactCache::with_key(dir.path().to_path_buf(), &engine, &[8u8; KEY_LEN]);
        assert!(other.verified("aaa", &file).is_err());
        // A flipped byte, a bare wasmtime artifact, a truncated file.
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(c.verified("aaa", &flipped).is_err());
        assert!(c.verified("aaa", b"\x7fELF...").is_err());
        assert!(c.verified("aaa", &file[..MAGIC.len() + 5]).is_err());
    }

    #[test]
    fn concurrent_first_runs_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("artifact-cache.key");
        let keys: Vec<Vec<u8>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| load_or_create_key(&path).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(keys[0].len(), KEY_LEN);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "temporary key files were left behind");
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        private_dir::create_secret_file(&path, b"short").unwrap();
        let err = load_or_create_key(&path).unwrap_err().to_string();
        assert!(err.contains("delete it"), "{err}");
    }
}
