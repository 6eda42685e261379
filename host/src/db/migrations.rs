//! Ordered schema migrations. Append only: never edit a landed entry.
//!
//! Several `bpr` processes may open the same file at once: the version is
//! read again under the write lock before anything runs, so exactly one of
//! them migrates, after a backup of what it is about to change.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, TransactionBehavior};

use super::{DbError, Result};

/// (name, SQL) in order; `PRAGMA user_version` records how many ran.
pub(super) const ALL: &[(&str, &str)] = &[(
    "0001_price_catalogues",
    "CREATE TABLE price_catalogues (
        provider    TEXT PRIMARY KEY,
        fetched_at  INTEGER NOT NULL,     -- unix seconds of the successful fetch
        offers_json TEXT NOT NULL         -- the provider's offers, as fetched
    );",
),
(
    "0002_deployments",
    "CREATE TABLE deployments (
        id              TEXT PRIMARY KEY,          -- dep-<uuid>
        blueprint_id    TEXT NOT NULL,
        service_id      TEXT NOT NULL,
        deployment_type TEXT NOT NULL,             -- vm | kubernetes | ssh
        status          TEXT NOT NULL,             -- see tracking::DeploymentStatus
        provider        TEXT,                      -- of the current attempt
        region          TEXT,
        zone            TEXT,
        instance_type   TEXT,
        spot            INTEGER NOT NULL DEFAULT 0,
        hourly_usd      REAL,
        instance_id     TEXT,                      -- set right after create-instance
        resources_json  TEXT NOT NULL DEFAULT '[]',-- WIT resource-refs, for delete-instance
        address         TEXT,                      -- public (else private) IPv4 once known
        released_at     INTEGER,                   -- when instance_id was confirmed deleted
        labels_json     TEXT NOT NULL DEFAULT '{}',
        request_json    TEXT NOT NULL,             -- the DeployRequest, for audit and retry
        cleanup_webhook TEXT,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        ttl_secs        INTEGER,
        expires_at      INTEGER
    );
    CREATE INDEX deployments_status ON deployments(status);
    CREATE INDEX deployments_expires ON deployments(expires_at);
    CREATE TABLE deployment_history (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id TEXT NOT NULL REFERENCES deployments(id),
        at            INTEGER NOT NULL,
        from_status   TEXT,                        -- NULL for the first row (planned)
        to_status     TEXT NOT NULL,
        reason        TEXT NOT NULL
    );
    CREATE INDEX deployment_history_id ON deployment_history(deployment_id, seq);
    CREATE TABLE deployment_attempts (
        deployment_id   TEXT NOT NULL REFERENCES deployments(id),
        n               INTEGER NOT NULL,          -- 1-based, in order tried
        provider        TEXT NOT NULL,
        region          TEXT NOT NULL,
        zone            TEXT,
        instance_type   TEXT NOT NULL,
        spot            INTEGER NOT NULL,
        hourly_usd      REAL,
        idempotency_key TEXT NOT NULL,
        started_at      INTEGER NOT NULL,
        finished_at     INTEGER,
        outcome         TEXT NOT NULL,             -- pending | created | failover | stopped | failed | used
        detail          TEXT,
        instance_id     TEXT,
        PRIMARY KEY (deployment_id, n)
    );",
),
(
    "0003_ssh_capacity",
    "CREATE TABLE ssh_capacity (
        alias       TEXT PRIMARY KEY,       -- host alias from [[ssh.hosts]]
        vcpus       REAL NOT NULL,
        memory_gib  REAL NOT NULL,
        storage_gib REAL NOT NULL,
        gpus        REAL NOT NULL,
        gpu_model   TEXT,
        probed_at   INTEGER NOT NULL        -- unix seconds
    );",
),
(
    "0004_kubernetes_targets",
    "ALTER TABLE deployments ADD COLUMN cluster TEXT;          -- kubernetes: the cluster's name
    ALTER TABLE deployments ADD COLUMN k8s_target_json TEXT;  -- kubernetes: namespace, name, workload kind",
),
(
    "0005_orch_service_keys",
    "ALTER TABLE deployments ADD COLUMN service_key TEXT;     -- embedding API: <blueprint>/<service>
    -- At most one live deployment per service key: a replayed service event finds it.
    CREATE UNIQUE INDEX deployments_live_service_key ON deployments(service_key)
        WHERE service_key IS NOT NULL AND status NOT IN ('terminated', 'failed');",
),
(
    "0006_reliability_host_identity_and_unresolved",
    "CREATE TABLE host_identity (
        only INTEGER PRIMARY KEY CHECK (only = 1),
        id   TEXT NOT NULL                -- value of the bpr-host label on this host's cloud resources
    );
    INSERT INTO host_identity (only, id) VALUES (1, lower(hex(randomblob(8))));
    -- 1 while a provider may hold something made for the deployment that no
    -- listing by its label has confirmed deleted (a create whose answer was lost).
    ALTER TABLE deployments ADD COLUMN unresolved INTEGER NOT NULL DEFAULT 0;
    -- Records an older bpr gave up on while its listing failed (issue 20).
    UPDATE deployments SET unresolved = 1
        WHERE status = 'failed' AND instance_id IS NULL AND last_error LIKE '%(unknown: listing failed)%';",
),
(
    // The price store of pricing/store: provenance once per catalogue, the
    // offers as fixed-size rows per region (the JSON blobs of 0001 go).
    "0007_price_rows",
    "DROP TABLE price_catalogues;
    CREATE TABLE price_catalogue (
        provider     TEXT PRIMARY KEY,
        format       INTEGER NOT NULL,  -- encoding of shapes and rows (pricing/store/format.rs)
        fetched_at   INTEGER NOT NULL,  -- unix seconds of the successful fetch
        sources_json TEXT NOT NULL,     -- [{source, observed_at, from_snapshot}]: provenance, once
        listed       INTEGER NOT NULL,  -- offers the provider listed
        offers       INTEGER NOT NULL,  -- offers kept by normalisation
        dropped_json TEXT NOT NULL,     -- {count, first: [[offer, reason]]}: what normalisation dropped
        normalized   TEXT NOT NULL,     -- the sanity bounds normalisation ran with
        shapes       BLOB NOT NULL      -- strings and distinct machines
    );
    CREATE TABLE price_rows (
        provider TEXT NOT NULL,
        region   TEXT NOT NULL,
        offers   INTEGER NOT NULL,
        rows     BLOB NOT NULL,         -- one fixed-size record per offer in the region
        PRIMARY KEY (provider, region)
    );",
),
(
    "0008_serve_ops_cluster_names",
    "-- Managed clusters (deployment_type 'cluster', `bpr k8s create`) are named in
    -- `cluster`; the name is `k8s:<name>`, so at most one live record has it.
    CREATE UNIQUE INDEX deployments_live_cluster_name ON deployments(cluster)
        WHERE deployment_type = 'cluster' AND status NOT IN ('terminated', 'failed');",
),
(
    "0009_serve_life_usage",
    "-- Every priced resource a deployment held and for how long: cost accounting,
    -- and (while open) what a heal replacement must not lose.
    CREATE TABLE usage_periods (
        seq            INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id  TEXT NOT NULL REFERENCES deployments(id),
        instance_id    TEXT NOT NULL,             -- provider instance id, or Kubernetes namespace/name
        provider       TEXT NOT NULL,             -- or 'kubernetes'
        region         TEXT NOT NULL,             -- or the cluster
        zone           TEXT,
        instance_type  TEXT NOT NULL,             -- or the payment tier
        spot           INTEGER NOT NULL DEFAULT 0,
        hourly_usd     REAL,                      -- NULL: no known price
        resources_json TEXT NOT NULL DEFAULT '[]',-- WIT resource-refs, to delete it
        started_at     INTEGER NOT NULL,          -- unix seconds
        ended_at       INTEGER,                   -- NULL while it is held (and billed)
        end_reason     TEXT
    );
    CREATE INDEX usage_periods_deployment ON usage_periods(deployment_id, seq);
    CREATE INDEX usage_periods_open ON usage_periods(ended_at) WHERE ended_at IS NULL;
    -- What earlier versions recorded: one period per instance, from the record's creation.
    INSERT INTO usage_periods (deployment_id, instance_id, provider, region, zone, instance_type, spot,
        hourly_usd, resources_json, started_at, ended_at, end_reason)
    SELECT id, instance_id, COALESCE(provider, 'kubernetes'), COALESCE(region, COALESCE(cluster, '')), zone,
        COALESCE(instance_type, ''), spot, hourly_usd, resources_json, created_at, released_at,
        CASE WHEN released_at IS NULL THEN NULL ELSE 'deleted' END
    FROM deployments WHERE instance_id IS NOT NULL;",
),
(
    "0010_replicas_leases",
    "-- Leases between replicas sharing the database (see coordination/): the
    -- supervisor's leader, by name. The token strictly increases each time the
    -- lease changes hands; a holder checks it is still current before acting.
    CREATE TABLE leases (
        name          TEXT PRIMARY KEY,
        owner         TEXT NOT NULL,
        token         INTEGER NOT NULL,
        expires_at_ms INTEGER NOT NULL   -- ms since 1970; 0 once released
    );",
),
(
    "0011_list_page_indexes",
    "-- The deployment list (`GET /v1/deployments`, `bpr list`) pages by
    -- (created_at, id) after filters on status or Blueprint: without these a
    -- page of 50 scanned and sorted every matching row (23 ms at 100,000).
    CREATE INDEX deployments_created ON deployments(created_at, id);
    CREATE INDEX deployments_status_created ON deployments(status, created_at, id);
    CREATE INDEX deployments_blueprint_created ON deployments(blueprint_id, created_at, id);",
)];

/// The schema version of the open database.
fn version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| v.max(0) as usize)
}

/// Bring the database at `path` (open as `conn`) to the current schema.
/// `fresh` is true only for a file this process just created: a version-0
/// file found on disk has no bpr schema and is refused ([`DbError::Refused`]).
/// Returns the backup taken, when a migration ran on existing data.
pub(super) fn run(conn: &mut Connection, path: &Path, fresh: bool) -> Result<Option<PathBuf>> {
    let display = path.display().to_string();
    let check = |current: usize| -> Result<bool> {
        if current > ALL.len() {
            return Err(DbError::TooNew {
                path: display.clone(),
                found: current,
                known: ALL.len(),
            });
        }
        if current == 0 && !fresh {
            return Err(DbError::Refused {
                path: display.clone(),
                problem: "is a SQLite file without bpr's schema".into(),
                kind: "foreign",
            });
        }
        Ok(current < ALL.len())
    };
    let unreadable = |source| DbError::Corrupt {
        path: display.clone(),
        source,
    };
    // Fast path, without the write lock: nothing to do.
    if !check(version(conn).map_err(unreadable)?)? {
        return Ok(None);
    }
    // Under the write lock, look again: another process may have migrated it
    // meanwhile (it would have run the same statements, and ours would fail).
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|source| DbError::OpenFailed {
            path: display.clone(),
            source,
        })?;
    let current = version(&tx).map_err(unreadable)?;
    if !check(current)? {
        return Ok(None);
    }
    let backup = if current > 0 {
        Some(super::backup::take(path, current)?)
    } else {
        None
    };
    for (name, sql) in ALL.iter().skip(current) {
        tx.execute_batch(sql)
            .map_err(|source| DbError::MigrationFailed {
                path: display.clone(),
                name,
                source,
            })?;
    }
    let last = ALL.last().map(|(n, _)| *n).unwrap_or_default();
    let fail = |source| DbError::MigrationFailed {
        path: display.clone(),
        name: last,
        source,
    };
    tx.pragma_update(None, "user_version", ALL.len() as i64)
        .map_err(fail)?;
    tx.commit().map_err(fail)?;
    if let Some(b) = &backup {
        tracing::info!(
            "database {}: migrated from schema {current} to {}; the previous state is kept in {}",
            path.display(),
            ALL.len(),
            b.display()
        );
    }
    Ok(backup)
}

#[cfg(test)]
mod tests {
    use super::super::{Database, DatabaseSettings, DbError};
    use super::ALL;

    fn version_of(db: &Database) -> usize {
        db.sqlite()
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap() as usize
    }

    #[test]
    fn migrations_run_once_and_reopen_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        Database::open(&path).unwrap();
        let db = Database::open(&path).unwrap();
        assert_eq!(version_of(&db), ALL.len());
        let mode: String = db
            .sqlite()
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_database_from_a_newer_bpr_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        Database::open(&path)
            .unwrap()
            .sqlite()
            .unwrap()
            .pragma_update(None, "user_version", 999)
            .unwrap();
        let err = Database::open(&path).unwrap_err();
        assert!(err.to_string().contains("999"), "{err}");
    }

    #[test]
    fn many_first_opens_at_once_all_succeed_on_one_complete_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Database::open(&path).map(|db| version_of(&db)))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().expect("open succeeds"), ALL.len());
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.contains(".new-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    /// A database at schema `v`, as an older bpr left it.
    fn database_at_version(path: &std::path::Path, v: usize) {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        for (_, sql) in &ALL[..v] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", v as i64).unwrap();
        // A row of its own, so the backup check does not depend on which
        // tables schema `v` has (0007 drops price_catalogues).
        conn.execute_batch("CREATE TABLE old_rows (x INTEGER); INSERT INTO old_rows VALUES (1);")
            .unwrap();
    }

    #[test]
    fn concurrent_opens_of_an_old_database_migrate_it_once_after_one_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        database_at_version(&path, ALL.len() - 1);
        let threads: Vec<_> = (0..12)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Database::open(&path).map(|db| version_of(&db)))
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().expect("open succeeds"), ALL.len());
        }
        let backups: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".bak"))
            .collect();
        assert_eq!(backups.len(), 1, "{backups:?}");
        let name = backups[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert!(
            name.starts_with(&format!("bpr.sqlite3.v{}-", ALL.len() - 1)),
            "{name}"
        );
        // The backup is the database as it was before: old schema, same rows.
        let old = rusqlite::Connection::open(&backups[0]).unwrap();
        let v: i64 = old
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, ALL.len() - 1);
        let rows: i64 = old
            .query_row("SELECT COUNT(*) FROM old_rows", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn records_an_older_bpr_gave_up_on_while_listing_failed_become_unresolved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        database_at_version(&path, 4);
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (id, status, err) in [
            (
                "lost",
                "failed",
                "transient: x; deleting instance (unknown: listing failed) failed: y",
            ),
            (
                "plain",
                "failed",
                "stopped at aws/us-east-1/t3.micro: invalid request",
            ),
            ("fine", "terminated", "(unknown: listing failed)"),
        ] {
            conn.execute(
                "INSERT INTO deployments (id, blueprint_id, service_id, deployment_type, status, request_json,
                   last_error, created_at, updated_at) VALUES (?1, '7', '42', 'vm', ?2, '{}', ?3, 0, 0)",
                [id, status, err],
            )
            .unwrap();
        }
        drop(conn);
        let db = Database::open(&path).unwrap();
        let unresolved: Vec<String> = db
            .sqlite()
            .unwrap()
            .prepare("SELECT id FROM deployments WHERE unresolved = 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(unresolved, ["lost"]);
    }

    #[test]
    fn a_sqlite_file_without_our_schema_is_refused_unless_initialising() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE someone_elses(x)")
            .unwrap();
        let err = Database::open(&path).unwrap_err();
        assert!(matches!(err, DbError::Refused { .. }), "{err}");
        assert!(err.to_string().contains("without bpr's schema"), "{err}");
        let init = DatabaseSettings {
            initialize: true,
            ..DatabaseSettings::default()
        };
        let db = Database::open_with(&path, &init).unwrap();
        assert_eq!(version_of(&db), ALL.len());
    }
}
