//! Hot reload: watch the providers directory and reload a provider when its
//! `.wasm` appears, changes or goes (and every provider when the lock file
//! changes). Events are debounced so a file being copied in is loaded once,
//! after the writer is done.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

use super::loader::Loader;
use super::registry::Registry;
use crate::config::Config;

/// Quiet time after the last event before reloading.
const DEBOUNCE: Duration = Duration::from_millis(250);

/// A running watch; stops when dropped.
pub struct DirWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Start watching `config.host.providers_dir`.
pub fn spawn(
    config: Arc<Config>,
    loader: Arc<Loader>,
    registry: Arc<Registry>,
) -> notify::Result<DirWatch> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            // Opening or reading a file is no change (the reload itself reads
            // the file: counting it would reload forever); a write is.
            if let notify::EventKind::Access(kind) = event.kind
                && kind != notify::event::AccessKind::Close(notify::event::AccessMode::Write)
            {
                return;
            }
            for p in event.paths {
                let _ = tx.send(p);
            }
        }
    })?;
    let dir = config.host.providers_dir.clone();
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    // The lock file may live elsewhere.
    if let Some(lock_dir) = config.host.lock_file.parent()
        && lock_dir != dir
        && lock_dir.is_dir()
    {
        let _ = watcher.watch(lock_dir, RecursiveMode::NonRecursive);
    }
    let task = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = BTreeSet::from([first]);
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(p)) => {
                        batch.insert(p);
                    }
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            let lock_changed = batch.iter().any(|p| p == &config.host.lock_file);
            let paths: BTreeSet<PathBuf> = if lock_changed {
                wasm_files(&dir).into_iter().collect()
            } else {
                // A changed signature reloads the file it signs.
                batch
                    .into_iter()
                    .filter(|p| p.parent() == Some(dir.as_path()))
                    .map(|p| super::signature::provider_file(&p))
                    .collect()
            };
            for path in paths {
                reload(&config, &loader, &registry, &path).await;
            }
        }
    });
    Ok(DirWatch {
        _watcher: watcher,
        task,
    })
}

/// The `.wasm` files of `dir`, sorted.
pub fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| super::loader::provider_name(p).is_some())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Load (or remove) the provider of `path` (a `.wasm`, or its `.minisig`)
/// and update the registry. A file that fails to load leaves the previous
/// version serving.
pub async fn reload(config: &Config, loader: &Arc<Loader>, registry: &Registry, path: &Path) {
    // A signature file stands for the provider file it signs.
    let path = &super::signature::provider_file(path);
    let Some(name) = super::loader::provider_name(path) else {
        return;
    };
    if !config.provider(&name).enabled {
        return;
    }
    if !path.exists() {
        if registry.remove(&name).is_some() {
            tracing::info!(provider = %name, "provider file removed; unloaded");
        }
        return;
    }
    if let Some(current) = registry.get(&name)
        && let Ok(bytes) = std::fs::read(path)
        && hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)) == current.sha256
        && let Ok(sig) = super::signature::read_signature(path)
        && sig.map(|s| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&s)))
            == current.signature_sha256
    {
        return; // unchanged (e.g. a touch, or a lock change that does not concern it)
    }
    match loader.load(path, config).await {
        Ok(p) => {
            let (version, sha) = (p.info.version.clone(), p.sha256.clone());
            let old = registry.install(p);
            tracing::info!(
                provider = %name,
                version = %version,
                sha256 = %sha,
                replaced = old.as_ref().map(|o| o.info.version.as_str()).unwrap_or("-"),
                "provider loaded"
            );
        }
        Err(e) => {
            // The shipped ssh provider in a config that does not grant it `ssh` is the
            // operator's choice, not a fault: say so once, quietly.
            let not_granted = matches!(
                &e,
                crate::runtime::LoadError::ImportRefused { import, .. }
                    if import.starts_with("blueprint:provider/ssh@")
            );
            if not_granted {
                tracing::info!(provider = %name, "provider not loaded: {e}");
            } else {
                tracing::error!(provider = %name, "provider refused: {e}");
            }
            registry.refuse(
                &name,
                super::registry::Refusal {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                    at: std::time::SystemTime::now(),
                },
            );
        }
    }
}
