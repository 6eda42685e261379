//! The usage ledger (`usage_periods`): one period per stretch of time a
//! deployment held a priced resource — an instance from its creation until it
//! was deleted or stopped, a Kubernetes workload until it was scaled to zero
//! or deleted — with the hourly price it was placed at.
//!
//! Two readers: cost accounting (`crate::costs`) sums `hourly × seconds`, and
//! a heal replacement relies on it never to lose an instance: while a period
//! is open, what it names is held, so an open period whose instance is not
//! the record's current one (the old instance of a heal, or a new one whose
//! heal a crash interrupted) is deleted by the supervisor and by terminate.
//!
//! Periods are opened and closed inside the tracker's own transactions
//! ([`open_for_record`], [`close_all`]) so that the ledger and the record
//! never disagree.

use rusqlite::{OptionalExtension, Row, Transaction, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::error::Result;
use super::record::ResourceRefRecord;
use super::store::Tracker;
use crate::clock::unix_now as now;

/// One stretch of time a deployment held a priced resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsagePeriod {
    /// Ledger order.
    pub seq: i64,
    /// The deployment.
    pub deployment_id: String,
    /// The provider's instance id (Kubernetes: `namespace/name`).
    pub instance_id: String,
    /// Provider (`kubernetes` for a cluster).
    pub provider: String,
    /// Region (the cluster's name for Kubernetes).
    pub region: String,
    /// Zone, when known.
    pub zone: Option<String>,
    /// Machine type (the payment tier for Kubernetes).
    pub instance_type: String,
    /// Spot.
    pub spot: bool,
    /// Price per hour while held; `None` when no price was known.
    pub hourly_usd: Option<f64>,
    /// What the provider created next to the instance, to delete it.
    pub resources: Vec<ResourceRefRecord>,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; `None` while held.
    pub ended_at: Option<i64>,
    /// Why it ended (`deleted`, `suspended`, `replaced`...).
    pub end_reason: Option<String>,
}

/// A period about to be opened for an instance the record does not (yet) name.
#[derive(Debug, Clone)]
pub struct NewPeriod<'a> {
    /// The instance.
    pub instance_id: &'a str,
    /// Provider.
    pub provider: &'a str,
    /// Region.
    pub region: &'a str,
    /// Zone.
    pub zone: Option<&'a str>,
    /// Machine type.
    pub instance_type: &'a str,
    /// Spot.
    pub spot: bool,
    /// Price per hour.
    pub hourly_usd: Option<f64>,
    /// Resources created next to it.
    pub resources: &'a [ResourceRefRecord],
}

const COLUMNS: &str =
    "seq, deployment_id, instance_id, provider, region, zone, instance_type, spot,
    hourly_usd, resources_json, started_at, ended_at, end_reason";

fn read_period(r: &Row<'_>) -> rusqlite::Result<UsagePeriod> {
    let resources: String = r.get(9)?;
    Ok(UsagePeriod {
        seq: r.get(0)?,
        deployment_id: r.get(1)?,
        instance_id: r.get(2)?,
        provider: r.get(3)?,
        region: r.get(4)?,
        zone: r.get(5)?,
        instance_type: r.get(6)?,
        spot: r.get::<_, i64>(7)? != 0,
        hourly_usd: r.get(8)?,
        // A ledger row is written only by this module; an unreadable list is
        // treated as empty rather than hiding the period from the accounts.
        resources: serde_json::from_str(&resources).unwrap_or_default(),
        started_at: r.get(10)?,
        ended_at: r.get(11)?,
        end_reason: r.get(12)?,
    })
}

/// Opens a period for the record's current instance at its current placement
/// and price, unless one is already open for that instance (whose resources
/// are then brought up to date). Nothing when the record names no instance.
pub(super) fn open_for_record(tx: &Transaction<'_>, id: &str, at: i64) -> rusqlite::Result<()> {
    let row: Option<(Option<String>, String)> = tx
        .query_row(
            "SELECT instance_id, resources_json FROM deployments WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((Some(instance), resources)) = row else {
        return Ok(());
    };
    let updated = tx.execute(
        "UPDATE usage_periods SET resources_json = ?3
         WHERE deployment_id = ?1 AND instance_id = ?2 AND ended_at IS NULL",
        params![id, instance, resources],
    )?;
    if updated == 0 {
        tx.execute(
            "INSERT INTO usage_periods (deployment_id, instance_id, provider, region, zone, instance_type,
               spot, hourly_usd, resources_json, started_at)
             SELECT id, instance_id, COALESCE(provider, 'kubernetes'), COALESCE(region, COALESCE(cluster, '')),
               zone, COALESCE(instance_type, ''), spot, hourly_usd, resources_json, ?2
             FROM deployments WHERE id = ?1",
            params![id, at],
        )?;
    }
    Ok(())
}

/// Closes every open period of `id` at `at`.
pub(super) fn close_all(
    tx: &Transaction<'_>,
    id: &str,
    at: i64,
    reason: &str,
) -> rusqlite::Result<usize> {
    tx.execute(
        "UPDATE usage_periods SET ended_at = MAX(?2, started_at), end_reason = ?3
         WHERE deployment_id = ?1 AND ended_at IS NULL",
        params![id, at, reason],
    )
}

impl Tracker {
    /// Every period of deployment `id`, in order.
    pub fn usage_of(&self, id: &str) -> Result<Vec<UsagePeriod>> {
        let conn = self.database().lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM usage_periods WHERE deployment_id = ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([id], read_period)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every period that overlaps `[since, now]` (every period without
    /// `since`), in order.
    pub fn usage_since(&self, since: Option<i64>) -> Result<Vec<UsagePeriod>> {
        let conn = self.database().lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM usage_periods WHERE ended_at IS NULL OR ended_at >= ?1 ORDER BY seq"
        ))?;
        let rows = stmt.query_map([since.unwrap_or(i64::MIN)], read_period)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every open period of every deployment, in order.
    pub fn open_periods(&self) -> Result<Vec<UsagePeriod>> {
        let conn = self.database().lock();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM usage_periods WHERE ended_at IS NULL ORDER BY seq"
        ))?;
        let rows = stmt.query_map([], read_period)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Opens a period for an instance the record does not name yet (a heal's
    /// replacement), right after the provider created it. Returns its `seq`.
    pub fn open_period(&self, id: &str, p: &NewPeriod<'_>) -> Result<i64> {
        let resources = serde_json::to_string(p.resources).unwrap_or_else(|_| "[]".into());
        let conn = self.database().lock();
        conn.execute(
            "INSERT INTO usage_periods (deployment_id, instance_id, provider, region, zone, instance_type,
               spot, hourly_usd, resources_json, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                id,
                p.instance_id,
                p.provider,
                p.region,
                p.zone,
                p.instance_type,
                p.spot as i64,
                p.hourly_usd,
                resources,
                now()
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Closes period `seq` now (its resource was deleted or stopped).
    pub fn close_period(&self, seq: i64, reason: &str) -> Result<()> {
        self.database().lock().execute(
            "UPDATE usage_periods SET ended_at = MAX(?2, started_at), end_reason = ?3
             WHERE seq = ?1 AND ended_at IS NULL",
            params![seq, now(), reason],
        )?;
        Ok(())
    }

    /// Closes every open period of `id` now (suspended: stopped or scaled to zero).
    pub fn close_usage(&self, id: &str, reason: &str) -> Result<()> {
        let mut conn = self.database().lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        close_all(&tx, id, now(), reason)?;
        tx.commit()?;
        Ok(())
    }

    /// Opens a period for the record's current instance now (resumed), unless
    /// one is open.
    pub fn reopen_usage(&self, id: &str) -> Result<()> {
        let mut conn = self.database().lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        open_for_record(&tx, id, now())?;
        tx.commit()?;
        Ok(())
    }

    /// Brings the ledger in line with the records, for a crash between a step
    /// and its ledger write: a record holding resources and not suspended has
    /// an open period for its instance (opened now); a suspended one has none
    /// for its instance (closed now). Returns how many periods changed.
    pub fn reconcile_usage(&self) -> Result<usize> {
        let mut conn = self.database().lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now();
        let closed = tx.execute(
            "UPDATE usage_periods SET ended_at = MAX(?1, started_at), end_reason = 'suspended'
             WHERE ended_at IS NULL AND EXISTS (SELECT 1 FROM deployments d
               WHERE d.id = usage_periods.deployment_id AND d.status = 'suspended'
                 AND d.instance_id = usage_periods.instance_id)",
            [now],
        )?;
        let opened = tx.execute(
            "INSERT INTO usage_periods (deployment_id, instance_id, provider, region, zone, instance_type,
               spot, hourly_usd, resources_json, started_at)
             SELECT d.id, d.instance_id, COALESCE(d.provider, 'kubernetes'), COALESCE(d.region, COALESCE(d.cluster, '')),
               d.zone, COALESCE(d.instance_type, ''), d.spot, d.hourly_usd, d.resources_json, ?1
             FROM deployments d
             WHERE d.instance_id IS NOT NULL AND d.released_at IS NULL
               AND d.status NOT IN ('suspended', 'terminated')
               AND NOT EXISTS (SELECT 1 FROM usage_periods u
                 WHERE u.deployment_id = d.id AND u.instance_id = d.instance_id AND u.ended_at IS NULL)",
            [now],
        )?;
        tx.commit()?;
        Ok(closed + opened)
    }
}
