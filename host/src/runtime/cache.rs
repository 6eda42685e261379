//! The precompiled-artifact cache: one `.cwasm` per (source sha256, engine
//! compatibility hash), so a restart or a reload of an unchanged file does
//! not recompile.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::error::LoadError;

/// How a component was obtained.
#[derive(Debug, Clone, Copy)]
pub struct CompileStats {
    /// True when the artifact came from the cache.
    pub from_cache: bool,
    /// Time spent compiling or deserialising.
    pub duration: Duration,
}

/// The cache directory.
#[derive(Debug, Clone)]
pub struct ArtifactCache {
    dir: PathBuf,
    engine_key: String,
}

impl ArtifactCache {
    /// A cache in `dir` for artifacts of `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    fn path_for(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_key))
    }

    /// The component for `bytes` (whose digest is `sha256`): from the cache
    /// when present, else compiled and stored.
    pub fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha256: &str,
        file: &str,
    ) -> Result<(Component, CompileStats), LoadError> {
        let path = self.path_for(sha256);
        let started = Instant::now();
        if path.exists() {
            match deserialize(engine, &path) {
                Ok(c) => {
                    return Ok((
                        c,
                        CompileStats {
                            from_cache: true,
                            duration: started.elapsed(),
                        },
                    ));
                }
                // A stale or corrupt artifact is recompiled, not fatal.
                Err(e) => {
                    tracing::warn!(artifact = %path.display(), "discarding unusable cached artifact: {e}")
                }
            }
        }
        let compiled =
            engine
                .precompile_component(bytes)
                .map_err(|e| LoadError::CompileFailed {
                    file: file.to_string(),
                    message: format!("{e:#}"),
                })?;
        if let Err(e) = write_atomically(&self.dir, &path, &compiled) {
            tracing::warn!(dir = %self.dir.display(), "cannot write artifact cache: {e}");
            let c = Component::new(engine, bytes).map_err(|e| LoadError::CompileFailed {
                file: file.to_string(),
                message: format!("{e:#}"),
            })?;
            return Ok((
                c,
                CompileStats {
                    from_cache: false,
                    duration: started.elapsed(),
                },
            ));
        }
        let c = deserialize(engine, &path).map_err(|e| LoadError::CompileFailed {
            file: file.to_string(),
            message: format!("{e:#}"),
        })?;
        Ok((
            c,
            CompileStats {
                from_cache: false,
                duration: started.elapsed(),
            },
        ))
    }
}

#[allow(unsafe_code, reason = "deserialising our own artifact; see SAFETY")]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the file was written by `precompile_component` of an engine
    // with the same compatibility hash (it is in the name), into the
    // operator's private state directory, via an atomic rename.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
