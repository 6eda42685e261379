//! The tracker's SQL: every statement over the `deployments`,
//! `deployment_history` and `deployment_attempts` tables lives here, so another
//! backend (PostgreSQL, issue 17) can implement the same [`Tracker`] methods.
//!
//! The statements are written once for both backends (see [`crate::db`]).
//! Many `bpr` processes (or `bpr serve` replicas on PostgreSQL) share the
//! database: every transaction that reads, then writes goes through
//! [`Database::write`], which holds the write lock from its first statement
//! (on SQLite a deferred transaction that upgrades fails at once with
//! "database is locked" when another process wrote in between).

use std::path::{Path, PathBuf};

use crate::db::{DbError, Dialect, Row, Tx, Value, params};

use super::error::{Result, TrackError};
use super::leases::Leases;
use super::lock::DeploymentLock;
use super::record::{
    Attempt, AttemptIntent, AttemptOutcome, DeploymentRecord, NewDeployment, ResourceRefRecord,
    Transition,
};
use super::status::{DeploymentStatus, UnknownDeploymentType, UnknownStatus};
use crate::clock::unix_now as now;
use crate::coordination::{LeaderSettings, LeaseStore};
use crate::db::Database;
use crate::kubernetes::WorkloadRef;

/// Which records [`Tracker::query`] returns: every filter given must match;
/// records come oldest first, after `after` (the `(created_at, id)` of the
/// last record of the previous page), at most `limit` of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentQuery {
    /// Only this status.
    pub status: Option<DeploymentStatus>,
    /// Only this Blueprint id.
    pub blueprint_id: Option<String>,
    /// Only this service id.
    pub service_id: Option<String>,
    /// Only this provider (of the current attempt).
    pub provider: Option<String>,
    /// Keyset cursor: records after this `(created_at, id)`.
    pub after: Option<(i64, String)>,
    /// Page size.
    pub limit: usize,
}

/// The label carrying the host's id (see [`Database::host_id`]) on every
/// resource a deployment creates.
pub const HOST_LABEL: &str = "bpr-host";

/// The deployment tracker over the host's database.
#[derive(Debug, Clone)]
pub struct Tracker {
    db: Database,
    lock_dir: PathBuf,
    leases: Leases,
}

const SELECT: &str = "SELECT id, blueprint_id, service_id, deployment_type, status, provider, region, zone,
    instance_type, spot, hourly_usd, instance_id, resources_json, address, released_at, labels_json,
    cleanup_webhook, last_error, created_at, updated_at, ttl_secs, expires_at, request_json, cluster,
    k8s_target_json, unresolved, service_key FROM deployments";

/// The records' `SELECT`, for tests of query plans.
#[cfg(test)]
pub(super) const SELECT_FOR_PLANS: &str = SELECT;

/// Statuses of deployments that are over: a service key is free again.
const LIVE: &str = "status NOT IN ('terminated', 'failed')";

fn read_record(row: &Row) -> Result<DeploymentRecord> {
    let id: String = row.get(0)?;
    let corrupt = |m: String| TrackError::Corrupt {
        id: id.clone(),
        message: m,
    };
    let status: String = row.get(4)?;
    let ttl: Option<i64> = row.get(20)?;
    let dtype: String = row.get(3)?;
    let resources: String = row.get(12)?;
    let labels: String = row.get(15)?;
    let k8s_target: Option<String> = row.get(24)?;
    (|| {
        Ok(DeploymentRecord {
            id: id.clone(),
            blueprint_id: row.get(1).map_err(|e| corrupt(e.to_string()))?,
            service_id: row.get(2).map_err(|e| corrupt(e.to_string()))?,
            deployment_type: dtype
                .parse()
                .map_err(|e: UnknownDeploymentType| corrupt(e.to_string()))?,
            status: status
                .parse()
                .map_err(|e: UnknownStatus| corrupt(e.to_string()))?,
            provider: row.get(5).map_err(|e| corrupt(e.to_string()))?,
            region: row.get(6).map_err(|e| corrupt(e.to_string()))?,
            zone: row.get(7).map_err(|e| corrupt(e.to_string()))?,
            instance_type: row.get(8).map_err(|e| corrupt(e.to_string()))?,
            spot: row.get::<i64>(9).map_err(|e| corrupt(e.to_string()))? != 0,
            hourly_usd: row.get(10).map_err(|e| corrupt(e.to_string()))?,
            instance_id: row.get(11).map_err(|e| corrupt(e.to_string()))?,
            resources: serde_json::from_str(&resources)
                .map_err(|e| corrupt(format!("resources_json: {e}")))?,
            address: row.get(13).map_err(|e| corrupt(e.to_string()))?,
            released_at: row.get(14).map_err(|e| corrupt(e.to_string()))?,
            labels: serde_json::from_str(&labels)
                .map_err(|e| corrupt(format!("labels_json: {e}")))?,
            cleanup_webhook: row.get(16).map_err(|e| corrupt(e.to_string()))?,
            last_error: row.get(17).map_err(|e| corrupt(e.to_string()))?,
            created_at: row.get(18).map_err(|e| corrupt(e.to_string()))?,
            updated_at: row.get(19).map_err(|e| corrupt(e.to_string()))?,
            ttl_secs: ttl.map(|t| t.max(0) as u64),
            expires_at: row.get(21).map_err(|e| corrupt(e.to_string()))?,
            request_json: row.get(22).map_err(|e| corrupt(e.to_string()))?,
            cluster: row.get(23).map_err(|e| corrupt(e.to_string()))?,
            kubernetes: k8s_target
                .map(|t| serde_json::from_str(&t))
                .transpose()
                .map_err(|e| corrupt(format!("k8s_target_json: {e}")))?,
            unresolved: row.get::<i64>(25).map_err(|e| corrupt(e.to_string()))? != 0,
            service_key: row.get(26).map_err(|e| corrupt(e.to_string()))?,
        })
    })()
}

/// The `WHERE … ORDER BY … LIMIT` of [`Tracker::query`] and its parameters.
pub(super) fn query_clause(q: &DeploymentQuery) -> (String, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    let status = q.status.map(DeploymentStatus::as_str);
    let filters: [(&str, Option<&str>); 4] = [
        ("status", status),
        ("blueprint_id", q.blueprint_id.as_deref()),
        ("service_id", q.service_id.as_deref()),
        ("provider", q.provider.as_deref()),
    ];
    for (column, value) in filters {
        if let Some(v) = value {
            args.push(Value::Text(v.to_string()));
            clauses.push(format!("{column} = ?{}", args.len()));
        }
    }
    if let Some((at, id)) = &q.after {
        args.push(Value::Int(*at));
        args.push(Value::Text(id.clone()));
        let n = args.len();
        // A row-value comparison (both backends) is one index range; the
        // equivalent OR was a scan.
        clauses.push(format!("(created_at, id) > (?{}, ?{n})", n - 1));
    }
    args.push(Value::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    let where_ = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (
        format!("{where_} ORDER BY created_at, id LIMIT ?{}", args.len()),
        args,
    )
}

impl Tracker {
    /// A tracker over `db`; per-deployment lock files live in `lock_dir`.
    pub fn new(db: Database, lock_dir: &Path) -> Self {
        // Intent must survive a power loss too, not only a process crash.
        db.require_full_durability();
        let leases = Leases::new(
            LeaseStore::new(db.clone()),
            lock_dir,
            LeaderSettings::default(),
            db.dialect() == Dialect::Postgres,
        );
        Self {
            db,
            lock_dir: lock_dir.to_path_buf(),
            leases,
        }
    }

    /// The same tracker with deployment leases (PostgreSQL only) lasting `settings.lease`,
    /// renewed every `settings.renew` (`[coordination]`, shared with the
    /// supervisor's lease). Call before cloning.
    pub fn with_lease_settings(mut self, settings: LeaderSettings) -> Self {
        let enabled = self.leases.enabled();
        self.leases = Leases::new(
            LeaseStore::new(self.db.clone()),
            &self.lock_dir,
            settings,
            enabled,
        );
        self
    }

    /// The same tracker with leases taken on either backend, timed by
    /// `store`'s clock (unit tests: two "hosts" on one SQLite file too).
    #[cfg(test)]
    pub(super) fn with_lease_store(mut self, store: LeaseStore, settings: LeaderSettings) -> Self {
        self.leases = Leases::new(store, &self.lock_dir, settings, true);
        self
    }

    /// The deployment leases (unit tests).
    #[cfg(test)]
    pub(super) fn leases(&self) -> &Leases {
        &self.leases
    }

    /// One write transaction on deployment `id`, fenced: it starts by
    /// checking this process's lease on `id` when it holds one
    /// ([`TrackError::Fenced`] and nothing written otherwise).
    pub(super) fn write_fenced<T>(
        &self,
        id: &str,
        job: impl FnOnce(&mut Tx<'_>) -> Result<T>,
    ) -> Result<T> {
        self.db.write(|tx| {
            self.leases.fence(tx, id)?;
            job(tx)
        })
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Claim `id`, failing fast: `Ok(None)` when another process (or task)
    /// holds it.
    pub fn try_lock(&self, id: &str) -> Result<Option<DeploymentLock>> {
        super::lock::try_lock(&self.lock_dir, &self.leases, id)
    }

    /// `Ok` unless this process holds `id`'s lease and can no longer trust
    /// it ([`DeploymentLock::check`], in memory): what code running under a
    /// deployment's lock calls before each cloud side effect.
    pub fn check_lease(&self, id: &str) -> Result<()> {
        self.leases.check(id)
    }

    /// Insert a new record in `planned`, with its first history row.
    pub fn create(&self, new: &NewDeployment) -> Result<DeploymentRecord> {
        let now = now();
        let mut labels = new.labels.clone();
        labels.insert("bpr-deployment".into(), new.id.clone());
        labels.insert("bpr-managed".into(), "true".into());
        // Whose it is: the sweep deletes only what carries this host's id.
        labels.insert(HOST_LABEL.into(), self.db.host_id()?);
        let labels_json = serde_json::to_string(&labels).unwrap_or_else(|_| "{}".into());
        let expires = new
            .ttl_secs
            .map(|t| now.saturating_add(t.min(i64::MAX as u64) as i64));
        self.write_fenced(&new.id, |tx| {
            let exists = tx
                .query_opt("SELECT 1 FROM deployments WHERE id = ?1", params![new.id])?
                .is_some();
            if exists {
                return Err(TrackError::AlreadyExists(new.id.clone()));
            }
            if let Some(key) = &new.service_key {
                let existing = tx.query_opt(
                    &format!("SELECT id FROM deployments WHERE service_key = ?1 AND {LIVE}"),
                    params![key],
                )?;
                if let Some(existing) = existing {
                    return Err(TrackError::ServiceKeyTaken {
                        key: key.clone(),
                        existing: existing.get(0)?,
                    });
                }
            }
            let inserted = tx.execute(
                "INSERT INTO deployments (id, blueprint_id, service_id, deployment_type, status, labels_json,
                   request_json, cleanup_webhook, created_at, updated_at, ttl_secs, expires_at, service_key)
                 VALUES (?1, ?2, ?3, ?4, 'planned', ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11)",
                params![
                    new.id,
                    new.blueprint_id,
                    new.service_id,
                    new.deployment_type.as_str(),
                    labels_json,
                    new.request_json,
                    new.cleanup_webhook,
                    now,
                    new.ttl_secs.map(|t| t.min(i64::MAX as u64) as i64),
                    expires,
                    new.service_key,
                ],
            );
            match inserted {
                // Another process created a live deployment for the key meanwhile
                // (the partial unique index): it wins.
                Err(e) if e.is_constraint_violation() && new.service_key.is_some() => {
                    return Err(TrackError::ServiceKeyTaken {
                        key: new.service_key.clone().unwrap_or_default(),
                        existing: String::new(),
                    });
                }
                other => other?,
            };
            tx.execute(
                "INSERT INTO deployment_history (deployment_id, at, from_status, to_status, reason)
                 VALUES (?1, ?2, NULL, 'planned', 'request recorded')",
                params![new.id, now],
            )?;
            Ok(())
        })?;
        self.get(&new.id)
    }

    /// The live deployment (neither terminated nor failed) with `service_key`.
    pub fn live_by_service_key(&self, service_key: &str) -> Result<Option<DeploymentRecord>> {
        Ok(self
            .list_where(
                &format!("WHERE service_key = ?1 AND {LIVE}"),
                params![service_key],
            )?
            .into_iter()
            .next())
    }

    /// Every live deployment that has a service key, oldest first.
    pub fn live_keyed(&self) -> Result<Vec<DeploymentRecord>> {
        self.list_where(
            &format!("WHERE service_key IS NOT NULL AND {LIVE} ORDER BY created_at, id"),
            params![],
        )
    }

    /// One record.
    pub fn get(&self, id: &str) -> Result<DeploymentRecord> {
        match self
            .db
            .query_opt(&format!("{SELECT} WHERE id = ?1"), params![id])?
        {
            Some(r) => read_record(&r),
            None => Err(TrackError::NotFound(id.to_string())),
        }
    }

    fn list_where(&self, clause: &str, p: &[Value]) -> Result<Vec<DeploymentRecord>> {
        self.db
            .query(&format!("{SELECT} {clause}"), p)?
            .iter()
            .map(read_record)
            .collect()
    }

    /// Every record, oldest first.
    pub fn list(&self) -> Result<Vec<DeploymentRecord>> {
        self.list_where("ORDER BY created_at, id", params![])
    }

    /// Records in one of the in-flight states (see [`DeploymentStatus::is_in_flight`]).
    pub fn in_flight(&self) -> Result<Vec<DeploymentRecord>> {
        self.list_where(
            "WHERE status IN ('planned','provisioning','provisioned','deploying','terminating') ORDER BY created_at, id",
            params![],
        )
    }

    /// Every provider a deployment of this host ever tried (where the sweep
    /// looks for what no record owns).
    pub fn providers_used(&self) -> Result<Vec<String>> {
        let rows = self.db.query(
            "SELECT provider FROM deployment_attempts UNION SELECT provider FROM deployments
               WHERE provider IS NOT NULL ORDER BY 1",
            params![],
        )?;
        Ok(rows
            .iter()
            .map(|r| r.get(0))
            .collect::<Result<_, DbError>>()?)
    }

    /// Records with status `status`.
    pub fn with_status(&self, status: DeploymentStatus) -> Result<Vec<DeploymentRecord>> {
        self.list_where(
            "WHERE status = ?1 ORDER BY created_at, id",
            params![status.as_str()],
        )
    }

    /// One page of records matching `q`, oldest first (`bpr serve`'s list).
    pub fn query(&self, q: &DeploymentQuery) -> Result<Vec<DeploymentRecord>> {
        let (clause, args) = query_clause(q);
        self.list_where(&clause, &args)
    }

    /// Records per (status, provider of the current attempt): the metrics'
    /// deployment counts, in one pass over the table.
    pub fn count_by_status(&self) -> Result<Vec<(DeploymentStatus, Option<String>, u64)>> {
        let rows = self.db.query(
            "SELECT status, provider, COUNT(*) FROM deployments GROUP BY status, provider",
            params![],
        )?;
        let mut out = Vec::new();
        for row in rows {
            let status: String = row.get(0)?;
            let provider: Option<String> = row.get(1)?;
            let n: i64 = row.get(2)?;
            // A status this build does not know is left out, not an error.
            if let Ok(s) = status.parse::<DeploymentStatus>() {
                out.push((s, provider, n.max(0) as u64));
            }
        }
        Ok(out)
    }

    /// Records whose `expires_at <= at` and that still need terminating:
    /// not terminated, and not failed without resources.
    pub fn expired(&self, at: i64) -> Result<Vec<DeploymentRecord>> {
        Ok(self
            .list_where(
                "WHERE expires_at IS NOT NULL AND expires_at <= ?1 AND status <> 'terminated' ORDER BY expires_at, id",
                params![at],
            )?
            .into_iter()
            .filter(|r| r.status != DeploymentStatus::Failed || r.holds_resources())
            .collect())
    }

    /// Move `id` to `to`, with `reason` in the history. Checked against the
    /// state machine inside one transaction.
    pub fn transition(
        &self,
        id: &str,
        to: DeploymentStatus,
        reason: &str,
    ) -> Result<DeploymentRecord> {
        self.write_fenced(id, |tx| {
            let row = tx.query_opt(
                "SELECT status, instance_id, released_at, unresolved FROM deployments WHERE id = ?1",
                params![id],
            )?;
            let Some(row) = row else {
                return Err(TrackError::NotFound(id.to_string()));
            };
            let from: String = row.get(0)?;
            let instance: Option<String> = row.get(1)?;
            let released: Option<i64> = row.get(2)?;
            let unresolved: bool = row.get(3)?;
            let from: DeploymentStatus =
                from.parse()
                    .map_err(|e: UnknownStatus| TrackError::Corrupt {
                        id: id.to_string(),
                        message: e.to_string(),
                    })?;
            let holds = (instance.is_some() && released.is_none()) || unresolved;
            if !from.can_become(to, holds) {
                return Err(TrackError::TransitionNotAllowed {
                    id: id.to_string(),
                    from,
                    to,
                    holds_resources: holds,
                });
            }
            let now = now();
            let err = (to == DeploymentStatus::Failed).then_some(reason);
            tx.execute(
                "UPDATE deployments SET status = ?2, updated_at = ?3, last_error = COALESCE(?4, last_error) WHERE id = ?1",
                params![id, to.as_str(), now, err],
            )?;
            tx.execute(
                "INSERT INTO deployment_history (deployment_id, at, from_status, to_status, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, now, from.as_str(), to.as_str(), reason],
            )?;
            Ok(())
        })?;
        self.get(id)
    }

    /// Record the intent to try a candidate, BEFORE calling the provider:
    /// a pending attempt row, and the record now names that candidate.
    /// Returns the attempt number.
    pub fn begin_attempt(&self, id: &str, a: &AttemptIntent<'_>) -> Result<u32> {
        self.write_fenced(id, |tx| {
            let n = next_attempt(tx, id)?;
            let now = now();
            let changed = tx.execute(
                "UPDATE deployments SET provider = ?2, region = ?3, zone = ?4, instance_type = ?5, spot = ?6,
                   hourly_usd = ?7, updated_at = ?8 WHERE id = ?1",
                params![id, a.provider, a.region, a.zone, a.instance_type, a.spot, a.hourly_usd, now],
            )?;
            if changed == 0 {
                return Err(TrackError::NotFound(id.to_string()));
            }
            tx.execute(
                "INSERT INTO deployment_attempts (deployment_id, n, provider, region, zone, instance_type, spot,
                   hourly_usd, idempotency_key, started_at, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending')",
                params![id, n, a.provider, a.region, a.zone, a.instance_type, a.spot, a.hourly_usd, a.idempotency_key, now],
            )?;
            Ok(n)
        })
    }

    /// Record the instance a provider returned, right AFTER create-instance
    /// (or when recovery adopts one). Also stores its resources and address.
    pub fn record_instance(
        &self,
        id: &str,
        attempt: Option<u32>,
        instance_id: &str,
        resources: &[ResourceRefRecord],
        address: Option<&str>,
    ) -> Result<()> {
        let res = serde_json::to_string(resources).unwrap_or_else(|_| "[]".into());
        self.write_fenced(id, |tx| {
            let changed = tx.execute(
                "UPDATE deployments SET instance_id = ?2, resources_json = ?3, address = COALESCE(?4, address),
                   released_at = NULL, updated_at = ?5 WHERE id = ?1",
                params![id, instance_id, res, address, now()],
            )?;
            if changed == 0 {
                return Err(TrackError::NotFound(id.to_string()));
            }
            if let Some(n) = attempt {
                tx.execute(
                    "UPDATE deployment_attempts SET instance_id = ?3, outcome = 'created' WHERE deployment_id = ?1 AND n = ?2",
                    params![id, n, instance_id],
                )?;
            }
            super::usage::open_for_record(tx, id, now())?;
            Ok(())
        })
    }

    /// Record where a Kubernetes deployment's objects go, BEFORE the first is applied
    /// (the names are deterministic, so a crash mid-apply leaves a record that knows
    /// what to delete). Counts as holding resources until [`Tracker::record_released`].
    pub fn record_kubernetes(
        &self,
        id: &str,
        attempt: u32,
        cluster: &str,
        target: &WorkloadRef,
    ) -> Result<()> {
        let json = serde_json::to_string(target).map_err(|e| TrackError::Corrupt {
            id: id.to_string(),
            message: format!("cannot encode the Kubernetes target: {e}"),
        })?;
        let object = target.object();
        self.write_fenced(id, |tx| {
            let changed = tx.execute(
                "UPDATE deployments SET cluster = ?2, k8s_target_json = ?3, instance_id = ?4, released_at = NULL,
                   updated_at = ?5 WHERE id = ?1",
                params![id, cluster, json, object, now()],
            )?;
            if changed == 0 {
                return Err(TrackError::NotFound(id.to_string()));
            }
            tx.execute(
                "UPDATE deployment_attempts SET instance_id = ?3, outcome = 'created' WHERE deployment_id = ?1 AND n = ?2",
                params![id, attempt, object],
            )?;
            super::usage::open_for_record(tx, id, now())?;
            Ok(())
        })
    }

    /// Something happened that does not change the status (a Kubernetes update,
    /// scale to zero, resume): a history row with `from == to`, and the request the
    /// cluster now runs.
    pub fn record_event(&self, id: &str, reason: &str, request_json: &str) -> Result<()> {
        self.write_fenced(id, |tx| {
            let Some(row) =
                tx.query_opt("SELECT status FROM deployments WHERE id = ?1", params![id])?
            else {
                return Err(TrackError::NotFound(id.to_string()));
            };
            let status: String = row.get(0)?;
            let now = now();
            tx.execute(
                "UPDATE deployments SET request_json = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, request_json, now],
            )?;
            tx.execute(
                "INSERT INTO deployment_history (deployment_id, at, from_status, to_status, reason) VALUES (?1, ?2, ?3, ?3, ?4)",
                params![id, now, status, reason],
            )?;
            Ok(())
        })
    }

    /// Set a new time to live from now (a renewed payment); `None` removes the limit.
    pub fn set_ttl(&self, id: &str, ttl_secs: Option<u64>) -> Result<DeploymentRecord> {
        let now = now();
        let ttl = ttl_secs.map(|t| t.min(i64::MAX as u64) as i64);
        let changed = self.write_fenced(id, |tx| {
            Ok(tx.execute(
            "UPDATE deployments SET ttl_secs = ?2, expires_at = ?3, updated_at = ?4 WHERE id = ?1",
            params![id, ttl, ttl.map(|t| now.saturating_add(t)), now],
        )?)
        })?;
        if changed == 0 {
            return Err(TrackError::NotFound(id.to_string()));
        }
        self.get(id)
    }

    /// Update the address (once the instance has one).
    pub fn record_address(&self, id: &str, address: &str) -> Result<()> {
        self.write_fenced(id, |tx| {
            Ok(tx.execute(
                "UPDATE deployments SET address = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, address, now()],
            )?)
        })?;
        Ok(())
    }

    /// The instance was confirmed deleted.
    pub fn record_released(&self, id: &str) -> Result<()> {
        self.write_fenced(id, |tx| {
            let now = now();
            tx.execute(
                "UPDATE deployments SET released_at = ?2, updated_at = ?2 WHERE id = ?1 AND instance_id IS NOT NULL",
                params![id, now],
            )?;
            super::usage::close_all(tx, id, now, "deleted")?;
            Ok(())
        })
    }

    /// Listings by its label answered in every place it tried, and all they
    /// found was deleted: it holds nothing any more (instance released,
    /// no longer unresolved).
    pub fn record_cleared(&self, id: &str) -> Result<()> {
        self.write_fenced(id, |tx| {
            let now = now();
            tx.execute(
                "UPDATE deployments SET released_at = CASE WHEN instance_id IS NULL THEN released_at ELSE ?2 END,
                   unresolved = 0, updated_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
            // Nothing of it is left: nothing is billed any more.
            super::usage::close_all(tx, id, now, "deleted")?;
            Ok(())
        })
    }

    /// A provider may hold something made for `id` that no listing by its
    /// label has confirmed deleted (a create whose answer was lost while
    /// nothing answered): it counts as holding resources until
    /// [`Tracker::record_cleared`], so cleanup and terminate keep at it.
    pub fn mark_unresolved(&self, id: &str, why: &str) -> Result<()> {
        let changed = self.write_fenced(id, |tx| {
            Ok(tx.execute(
            "UPDATE deployments SET unresolved = 1, last_error = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, why, now()],
        )?)
        })?;
        if changed == 0 {
            return Err(TrackError::NotFound(id.to_string()));
        }
        Ok(())
    }

    /// Close attempt `n` with its outcome.
    pub fn finish_attempt(
        &self,
        id: &str,
        n: u32,
        outcome: AttemptOutcome,
        detail: &str,
    ) -> Result<()> {
        self.write_fenced(id, |tx| {
            Ok(tx.execute(
            "UPDATE deployment_attempts SET outcome = ?3, detail = ?4, finished_at = ?5 WHERE deployment_id = ?1 AND n = ?2",
            params![id, n, outcome.as_str(), detail, now()],
        )?)
        })?;
        Ok(())
    }

    /// Set `last_error` without a transition (e.g. a cleanup retry failed).
    pub fn note_error(&self, id: &str, error: &str) -> Result<()> {
        self.write_fenced(id, |tx| {
            Ok(tx.execute(
                "UPDATE deployments SET last_error = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, error, now()],
            )?)
        })?;
        Ok(())
    }

    /// Every transition of `id`, oldest first.
    pub fn history(&self, id: &str) -> Result<Vec<Transition>> {
        self.get(id)?;
        let rows = self.db.query(
            "SELECT at, from_status, to_status, reason FROM deployment_history WHERE deployment_id = ?1 ORDER BY seq",
            params![id],
        )?;
        let parse = |s: &str| {
            s.parse::<DeploymentStatus>()
                .map_err(|e| TrackError::Corrupt {
                    id: id.to_string(),
                    message: e.to_string(),
                })
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let from: Option<String> = row.get(1)?;
            let to: String = row.get(2)?;
            out.push(Transition {
                at: row.get(0)?,
                from: from.as_deref().map(parse).transpose()?,
                to: parse(&to)?,
                reason: row.get(3)?,
            });
        }
        Ok(out)
    }

    /// Every attempt of `id`, in order.
    pub fn attempts(&self, id: &str) -> Result<Vec<Attempt>> {
        let rows = self.db.query(
            "SELECT n, provider, region, zone, instance_type, spot, hourly_usd, idempotency_key, started_at,
               finished_at, outcome, detail, instance_id FROM deployment_attempts WHERE deployment_id = ?1 ORDER BY n",
            params![id],
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let outcome: String = r.get(10)?;
            out.push(Attempt {
                n: r.get(0)?,
                provider: r.get(1)?,
                region: r.get(2)?,
                zone: r.get(3)?,
                instance_type: r.get(4)?,
                spot: r.get(5)?,
                hourly_usd: r.get(6)?,
                idempotency_key: r.get(7)?,
                started_at: r.get(8)?,
                finished_at: r.get(9)?,
                outcome: AttemptOutcome::parse(&outcome).ok_or_else(|| TrackError::Corrupt {
                    id: id.to_string(),
                    message: format!("unknown attempt outcome {outcome:?}"),
                })?,
                detail: r.get(11)?,
                instance_id: r.get(12)?,
            });
        }
        Ok(out)
    }
}

/// The number of the next attempt of `id`.
pub(super) fn next_attempt(tx: &mut Tx<'_>, id: &str) -> Result<u32> {
    let row = tx.query_opt(
        "SELECT COALESCE(MAX(n), 0) + 1 FROM deployment_attempts WHERE deployment_id = ?1",
        params![id],
    )?;
    Ok(match row {
        Some(r) => r.get(0)?,
        None => 1,
    })
}

// --- Managed clusters (`bpr k8s create`) -------------------------------------

/// Live managed-cluster records: the ones that hold (or may still get) a cluster.
const LIVE_CLUSTER: &str = "deployment_type = 'cluster' AND status NOT IN ('terminated', 'failed')";

impl Tracker {
    /// Insert a managed cluster's record in `planned`, its `cluster` column set to
    /// `name`, with its first history row. At most one live cluster record has a
    /// name: a second is [`TrackError::ClusterNameTaken`] and writes nothing.
    pub fn create_cluster(&self, new: &NewDeployment, name: &str) -> Result<DeploymentRecord> {
        let now = now();
        let mut labels = new.labels.clone();
        labels.insert("bpr-deployment".into(), new.id.clone());
        labels.insert("bpr-managed".into(), "true".into());
        let labels_json = serde_json::to_string(&labels).unwrap_or_else(|_| "{}".into());
        let ttl = new.ttl_secs.map(|t| t.min(i64::MAX as u64) as i64);
        // One write job: the name check and the insert see the same database.
        self.write_fenced(&new.id, |tx| {
            let exists = tx
                .query_opt("SELECT 1 FROM deployments WHERE id = ?1", params![new.id])?
                .is_some();
            if exists {
                return Err(TrackError::AlreadyExists(new.id.clone()));
            }
            let existing = tx.query_opt(
                &format!("SELECT id FROM deployments WHERE cluster = ?1 AND {LIVE_CLUSTER}"),
                params![name],
            )?;
            if let Some(existing) = existing {
                return Err(TrackError::ClusterNameTaken {
                    name: name.to_string(),
                    existing: existing.get(0)?,
                });
            }
            let inserted = tx.execute(
                "INSERT INTO deployments (id, blueprint_id, service_id, deployment_type, status, labels_json,
                   request_json, cleanup_webhook, created_at, updated_at, ttl_secs, expires_at, cluster)
                 VALUES (?1, ?2, ?3, 'cluster', 'planned', ?4, ?5, ?6, ?7, ?7, ?8, ?9, ?10)",
                params![
                    new.id,
                    new.blueprint_id,
                    new.service_id,
                    labels_json,
                    new.request_json,
                    new.cleanup_webhook,
                    now,
                    ttl,
                    ttl.map(|t| now.saturating_add(t)),
                    name,
                ],
            );
            match inserted {
                // Another process took the name meanwhile (the partial unique index).
                Err(e) if e.is_constraint_violation() => {
                    return Err(TrackError::ClusterNameTaken {
                        name: name.to_string(),
                        existing: String::new(),
                    });
                }
                other => other?,
            };
            tx.execute(
                "INSERT INTO deployment_history (deployment_id, at, from_status, to_status, reason)
                 VALUES (?1, ?2, NULL, 'planned', ?3)",
                params![new.id, now, format!("cluster {name} requested")],
            )?;
            Ok(())
        })?;
        self.get(&new.id)
    }

    /// The live managed-cluster record named `name` (see [`Tracker::create_cluster`]).
    pub fn live_cluster(&self, name: &str) -> Result<Option<DeploymentRecord>> {
        Ok(self
            .list_where(
                &format!("WHERE cluster = ?1 AND {LIVE_CLUSTER}"),
                params![name],
            )?
            .into_iter()
            .next())
    }

    /// Every managed-cluster record, oldest first.
    pub fn clusters(&self) -> Result<Vec<DeploymentRecord>> {
        self.list_where(
            "WHERE deployment_type = 'cluster' ORDER BY created_at, id",
            params![],
        )
    }

    /// The live Kubernetes deployments whose objects are on cluster `name`.
    pub fn live_on_cluster(&self, name: &str) -> Result<Vec<DeploymentRecord>> {
        self.list_where(
            &format!(
                "WHERE deployment_type = 'kubernetes' AND cluster = ?1 AND {LIVE} ORDER BY created_at, id"
            ),
            params![name],
        )
    }
}
