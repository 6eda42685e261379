//! Ordered schema migrations. Append only: never edit a landed entry.

use rusqlite::Connection;

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
    "0006_serve_life_usage",
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
)];

pub(super) fn run(conn: &mut Connection, path: &str) -> Result<()> {
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > ALL.len() {
        return Err(DbError::TooNew {
            path: path.to_string(),
            found: current,
            known: ALL.len(),
        });
    }
    for (i, (name, sql)) in ALL.iter().enumerate().skip(current) {
        let fail = |source| DbError::MigrationFailed {
            path: path.to_string(),
            name,
            source,
        };
        let tx = conn.transaction().map_err(fail)?;
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Database;

    #[test]
    fn migrations_run_once_and_reopen_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bpr.sqlite3");
        Database::open(&path).unwrap();
        let db = Database::open(&path).unwrap();
        let v: i64 = db
            .lock()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, super::ALL.len());
        let mode: String = db
            .lock()
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
            .lock()
            .pragma_update(None, "user_version", 999)
            .unwrap();
        let err = Database::open(&path).unwrap_err();
        assert!(err.to_string().contains("999"), "{err}");
    }
}
