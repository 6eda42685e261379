//! The operator's own machines: building the SSH pool from `[[ssh.hosts]]`,
//! pinning host keys learned by trust-on-first-use in `providers.lock`, and
//! the probed capacity of each host (stored by `bpr hosts probe`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::db::{Database, Result as DbResult, params};
use crate::providers::lock::LockFile;
use crate::ssh::{HostKeyStore, HostKeyStoreError, Resources, SshError, SshPool};

/// Host keys learned by trust-on-first-use, kept in the lock file's
/// `[ssh_host_keys]` table so the next start pins them.
pub struct LockFileHostKeys {
    path: PathBuf,
    write: Mutex<()>,
}

impl LockFileHostKeys {
    /// Keys in the lock file at `path`.
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            write: Mutex::new(()),
        }
    }
}

impl HostKeyStore for LockFileHostKeys {
    fn learned(&self, alias: &str) -> Option<String> {
        LockFile::read(&self.path)
            .ok()?
            .ssh_host_keys
            .get(alias)
            .cloned()
    }

    fn record(&self, alias: &str, fingerprint: &str) -> Result<(), HostKeyStoreError> {
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| HostKeyStoreError {
            alias: alias.to_string(),
            source,
        };
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut lock = LockFile::read(&self.path).map_err(|e| failed(e.into()))?;
        lock.ssh_host_keys
            .insert(alias.to_string(), fingerprint.to_string());
        lock.write(&self.path)
            .map_err(|e| failed(format!("cannot write {}: {e}", self.path.display()).into()))?;
        tracing::warn!(alias, fingerprint, lock = %self.path.display(), "trust on first use: host key recorded");
        Ok(())
    }
}

/// Build the pool for `config`'s hosts (`None` when there are none), with
/// stored capacities applied.
pub fn build_pool(config: &Config, db: &Database) -> Result<Option<Arc<SshPool>>, SshError> {
    if config.ssh.hosts.is_empty() {
        return Ok(None);
    }
    let keys = Arc::new(LockFileHostKeys::new(config.host.lock_file.clone()));
    let pool = SshPool::new(config.ssh.hosts.clone(), config.ssh.limits.clone(), keys)?;
    for host in &config.ssh.hosts {
        match load_capacity(db, &host.alias) {
            Ok(Some(r)) => pool.set_capacity(&host.alias, Some(r))?,
            Ok(None) => {}
            Err(e) => tracing::warn!(alias = %host.alias, "cannot read stored capacity: {e}"),
        }
    }
    Ok(Some(Arc::new(pool)))
}

/// Store the probed capacity of `alias`.
pub fn store_capacity(db: &Database, alias: &str, r: &Resources) -> DbResult<()> {
    let now = crate::clock::unix_now_u64();
    db.execute(
        "INSERT INTO ssh_capacity (alias, vcpus, memory_gib, storage_gib, gpus, gpu_model, probed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(alias) DO UPDATE SET vcpus = excluded.vcpus, memory_gib = excluded.memory_gib,
           storage_gib = excluded.storage_gib, gpus = excluded.gpus, gpu_model = excluded.gpu_model,
           probed_at = excluded.probed_at",
        params![alias, r.vcpus, r.memory_gib, r.storage_gib, r.gpus, r.gpu_model, now],
    )?;
    Ok(())
}

/// The stored capacity of `alias`.
pub fn load_capacity(db: &Database, alias: &str) -> DbResult<Option<Resources>> {
    let Some(r) = db.query_opt(
        "SELECT vcpus, memory_gib, storage_gib, gpus, gpu_model FROM ssh_capacity WHERE alias = ?1",
        params![alias],
    )?
    else {
        return Ok(None);
    };
    Ok(Some(Resources {
        vcpus: r.get::<f64>(0)? as f32,
        memory_gib: r.get::<f64>(1)? as f32,
        storage_gib: r.get::<f64>(2)? as f32,
        gpus: r.get::<f64>(3)? as f32,
        gpu_model: r.get(4)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{TestDb, on_both_backends};

    on_both_backends! {
        fn a_probed_capacity_is_stored_read_back_and_replaced_by_the_next_probe(backend) {
            let tdb = TestDb::new(backend);
            let db = tdb.db();
            assert_eq!(load_capacity(&db, "rack1").unwrap(), None);
            let first = Resources {
                vcpus: 16.0,
                memory_gib: 62.5,
                storage_gib: 900.0,
                gpus: 1.0,
                gpu_model: Some("L4".into()),
            };
            store_capacity(&db, "rack1", &first).unwrap();
            assert_eq!(load_capacity(&db, "rack1").unwrap(), Some(first));
            let second = Resources {
                vcpus: 8.0,
                memory_gib: 31.0,
                storage_gib: 400.0,
                gpus: 0.0,
                gpu_model: None,
            };
            store_capacity(&db, "rack1", &second).unwrap();
            assert_eq!(load_capacity(&db, "rack1").unwrap(), Some(second));
            assert_eq!(load_capacity(&db, "rack2").unwrap(), None);
        }
    }

    #[test]
    fn a_key_learned_on_first_use_is_recorded_in_the_lock_file_and_pinned_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("providers.lock");
        // An existing lock keeps its provider approvals.
        std::fs::write(
            &path,
            "[providers.aws]\nsha256 = \"abc\"\nallowed_hosts = []\n",
        )
        .unwrap();
        let store = LockFileHostKeys::new(path.clone());
        assert_eq!(store.learned("rack1"), None);
        store.record("rack1", "SHA256:AAAA").unwrap();

        let reread = LockFileHostKeys::new(path.clone());
        assert_eq!(reread.learned("rack1").as_deref(), Some("SHA256:AAAA"));
        let lock = LockFile::read(&path).unwrap();
        assert_eq!(lock.providers["aws"].sha256, "abc");
        assert_eq!(lock.ssh_host_keys["rack1"], "SHA256:AAAA");
    }
}
