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

use serde::{Deserialize, Serialize};

use super::error::Result;
use super::record::ResourceRefRecord;
use super::store::Tracker;
use crate::clock::unix_now as now;
use crate::db::{DbError, Row, Tx, params};

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

fn read_period(r: &Row) -> Result<UsagePeriod, DbError> {
    let resources: String = r.get(9)?;
    Ok(UsagePeriod {
        seq: r.get(0)?,
        deployment_id: r.get(1)?,
        instance_id: r.get(2)?,
        provider: r.get(3)?,
        region: r.get(4)?,
        zone: r.get(5)?,
        instance_type: r.get(6)?,
        spot: r.get(7)?,
        hourly_usd: r.get(8)?,
        // A ledger row is written only by this module; an unreadable list is
        // treated as empty rather than hiding the period from the accounts.
        resources: serde_json::from_str(&resources).unwrap_or_default(),
        started_at: r.get(10)?,
        ended_at: r.get(11)?,
        end_reason: r.get(12)?,
    })
}

fn read_periods(rows: Vec<Row>) -> Result<Vec<UsagePeriod>> {
    Ok(rows
        .iter()
        .map(read_period)
        .collect::<Result<_, DbError>>()?)
}

/// Opens a period for the record's current instance at its current placement
/// and price, unless one is already open for that instance (whose resources
/// are then brought up to date). Nothing when the record names no instance.
pub(super) fn open_for_record(tx: &mut Tx<'_>, id: &str, at: i64) -> Result<(), DbError> {
    let row = tx.query_opt(
        "SELECT instance_id, resources_json FROM deployments WHERE id = ?1",
        params![id],
    )?;
    let Some(row) = row else {
        return Ok(());
    };
    let Some(instance) = row.get::<Option<String>>(0)? else {
        return Ok(());
    };
    let resources: String = row.get(1)?;
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
               zone, COALESCE(instance_type, ''), spot, hourly_usd, resources_json, CAST(?2 AS BIGINT)
             FROM deployments WHERE id = ?1",
            params![id, at],
        )?;
    }
    Ok(())
}

/// Closes every open period of `id` at `at`.
pub(super) fn close_all(
    tx: &mut Tx<'_>,
    id: &str,
    at: i64,
    reason: &str,
) -> Result<usize, DbError> {
    tx.execute(
        "UPDATE usage_periods SET ended_at = CASE WHEN started_at > ?2 THEN started_at ELSE ?2 END,
           end_reason = ?3
         WHERE deployment_id = ?1 AND ended_at IS NULL",
        params![id, at, reason],
    )
}

impl Tracker {
    /// Every period of deployment `id`, in order.
    pub fn usage_of(&self, id: &str) -> Result<Vec<UsagePeriod>> {
        read_periods(self.database().query(
            &format!("SELECT {COLUMNS} FROM usage_periods WHERE deployment_id = ?1 ORDER BY seq"),
            params![id],
        )?)
    }

    /// Every period that overlaps `[since, now]` (every period without
    /// `since`), in order.
    pub fn usage_since(&self, since: Option<i64>) -> Result<Vec<UsagePeriod>> {
        read_periods(self.database().query(
            &format!(
                "SELECT {COLUMNS} FROM usage_periods WHERE ended_at IS NULL OR ended_at >= ?1 ORDER BY seq"
            ),
            params![since.unwrap_or(i64::MIN)],
        )?)
    }

    /// Every open period of every deployment, in order.
    pub fn open_periods(&self) -> Result<Vec<UsagePeriod>> {
        read_periods(self.database().query(
            &format!("SELECT {COLUMNS} FROM usage_periods WHERE ended_at IS NULL ORDER BY seq"),
            params![],
        )?)
    }

    /// Opens a period for an instance the record does not name yet (a heal's
    /// replacement), right after the provider created it. Returns its `seq`.
    pub fn open_period(&self, id: &str, p: &NewPeriod<'_>) -> Result<i64> {
        let resources = serde_json::to_string(p.resources).unwrap_or_else(|_| "[]".into());
        let row = self.write_fenced(id, |tx| {
            Ok(tx.query_opt(
            "INSERT INTO usage_periods (deployment_id, instance_id, provider, region, zone, instance_type,
               spot, hourly_usd, resources_json, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING seq",
            params![
                id,
                p.instance_id,
                p.provider,
                p.region,
                p.zone,
                p.instance_type,
                p.spot,
                p.hourly_usd,
                resources,
                now()
            ],
        )?)
        })?;
        Ok(match row {
            Some(r) => r.get(0)?,
            None => 0,
        })
    }

    /// Closes period `seq` now (its resource was deleted or stopped).
    pub fn close_period(&self, seq: i64, reason: &str) -> Result<()> {
        let Some(owner) = self.database().query_opt(
            "SELECT deployment_id FROM usage_periods WHERE seq = ?1",
            params![seq],
        )?
        else {
            return Ok(());
        };
        let id: String = owner.get(0)?;
        self.write_fenced(&id, |tx| {
            Ok(tx.execute(
                "UPDATE usage_periods SET ended_at = CASE WHEN started_at > ?2 THEN started_at ELSE ?2 END,
                   end_reason = ?3
                 WHERE seq = ?1 AND ended_at IS NULL",
                params![seq, now(), reason],
            )?)
        })?;
        Ok(())
    }

    /// Closes every open period of `id` now (suspended: stopped or scaled to zero).
    pub fn close_usage(&self, id: &str, reason: &str) -> Result<()> {
        self.write_fenced(id, |tx| Ok(close_all(tx, id, now(), reason).map(|_| ())?))?;
        Ok(())
    }

    /// Opens a period for the record's current instance now (resumed), unless
    /// one is open.
    pub fn reopen_usage(&self, id: &str) -> Result<()> {
        self.write_fenced(id, |tx| Ok(open_for_record(tx, id, now())?))?;
        Ok(())
    }

    /// Brings the ledger in line with the records, for a crash between a step
    /// and its ledger write: a record holding resources and not suspended has
    /// an open period for its instance (opened now); a suspended one has none
    /// for its instance (closed now). Returns how many periods changed.
    pub fn reconcile_usage(&self) -> Result<usize> {
        let now = now();
        Ok(self.database().write(|tx| {
            let closed = tx.execute(
                "UPDATE usage_periods SET ended_at = CASE WHEN started_at > ?1 THEN started_at ELSE ?1 END,
                   end_reason = 'suspended'
                 WHERE ended_at IS NULL AND EXISTS (SELECT 1 FROM deployments d
                   WHERE d.id = usage_periods.deployment_id AND d.status = 'suspended'
                     AND d.instance_id = usage_periods.instance_id)",
                params![now],
            )?;
            let opened = tx.execute(
                "INSERT INTO usage_periods (deployment_id, instance_id, provider, region, zone, instance_type,
                   spot, hourly_usd, resources_json, started_at)
                 SELECT d.id, d.instance_id, COALESCE(d.provider, 'kubernetes'), COALESCE(d.region, COALESCE(d.cluster, '')),
                   d.zone, COALESCE(d.instance_type, ''), d.spot, d.hourly_usd, d.resources_json, CAST(?1 AS BIGINT)
                 FROM deployments d
                 WHERE d.instance_id IS NOT NULL AND d.released_at IS NULL
                   AND d.status NOT IN ('suspended', 'terminated')
                   AND NOT EXISTS (SELECT 1 FROM usage_periods u
                     WHERE u.deployment_id = d.id AND u.instance_id = d.instance_id AND u.ended_at IS NULL)",
                params![now],
            )?;
            Ok::<_, DbError>(closed + opened)
        })?)
    }
}
