//! A running deployment's instance replaced by another (a heal): the new
//! candidate's attempt recorded without moving the record off the instance
//! that still serves, and the switch to the new instance in one transaction
//! once it is healthy.
//!
//! Between the two, the new instance is held only through its usage period
//! (see [`super::usage`]): if the process dies there, the supervisor deletes
//! it, because its period is open and the record does not name it.

use super::error::{Result, TrackError};
use super::record::{AttemptIntent, DeploymentRecord, ResourceRefRecord};
use super::store::Tracker;
use crate::clock::unix_now as now;
use crate::db::{DbError, params};

/// The instance a deployment moves to.
#[derive(Debug, Clone)]
pub struct Replacement<'a> {
    /// The attempt that created it (from [`Tracker::begin_replacement`]).
    pub attempt: u32,
    /// Where it runs.
    pub intent: AttemptIntent<'a>,
    /// Its id.
    pub instance_id: &'a str,
    /// What the provider created next to it.
    pub resources: &'a [ResourceRefRecord],
    /// Its address, when known.
    pub address: Option<&'a str>,
}

impl Tracker {
    /// Records the intent to try a replacement candidate, BEFORE calling the
    /// provider: a pending attempt row. Unlike [`Tracker::begin_attempt`] the
    /// record keeps naming the instance that serves now. Returns the attempt
    /// number.
    pub fn begin_replacement(&self, id: &str, a: &AttemptIntent<'_>) -> Result<u32> {
        self.write_fenced(id, |tx| {
            let exists = tx
                .query_opt("SELECT 1 FROM deployments WHERE id = ?1", params![id])?
                .is_some();
            if !exists {
                return Err(TrackError::NotFound(id.to_string()));
            }
            let n = super::store::next_attempt(tx, id)?;
            tx.execute(
                "INSERT INTO deployment_attempts (deployment_id, n, provider, region, zone, instance_type, spot,
                   hourly_usd, idempotency_key, started_at, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'pending')",
                params![id, n, a.provider, a.region, a.zone, a.instance_type, a.spot,
                        a.hourly_usd, a.idempotency_key, now()],
            )?;
            Ok(n)
        })
    }

    /// Records the instance a replacement attempt created (outcome `created`).
    pub fn record_replacement_created(&self, id: &str, n: u32, instance_id: &str) -> Result<()> {
        self.write_fenced(id, |tx| {
            Ok(tx.execute(
            "UPDATE deployment_attempts SET instance_id = ?3, outcome = 'created' WHERE deployment_id = ?1 AND n = ?2",
            params![id, n, instance_id],
        )?)
        })?;
        Ok(())
    }

    /// Moves deployment `id` onto the replacement's instance, in one
    /// transaction: placement, price, instance, resources and address, the
    /// attempt marked `used`, and a history row (`from == to`) saying `reason`.
    pub fn swap_instance(
        &self,
        id: &str,
        r: &Replacement<'_>,
        reason: &str,
    ) -> Result<DeploymentRecord> {
        let resources = serde_json::to_string(r.resources).unwrap_or_else(|_| "[]".into());
        self.write_fenced(id, |tx| {
            let now = now();
            let a = &r.intent;
            let changed = tx.execute(
                "UPDATE deployments SET provider = ?2, region = ?3, zone = ?4, instance_type = ?5, spot = ?6,
                   hourly_usd = ?7, instance_id = ?8, resources_json = ?9, address = ?10, released_at = NULL,
                   updated_at = ?11 WHERE id = ?1",
                params![id, a.provider, a.region, a.zone, a.instance_type, a.spot, a.hourly_usd,
                        r.instance_id, resources, r.address, now],
            )?;
            if changed == 0 {
                return Err(TrackError::NotFound(id.to_string()));
            }
            tx.execute(
                "UPDATE deployment_attempts SET outcome = 'used', detail = ?3, finished_at = ?4
                 WHERE deployment_id = ?1 AND n = ?2",
                params![id, r.attempt, reason, now],
            )?;
            tx.execute(
                "INSERT INTO deployment_history (deployment_id, at, from_status, to_status, reason)
                 SELECT id, CAST(?2 AS BIGINT), status, status, CAST(?3 AS TEXT) FROM deployments WHERE id = ?1",
                params![id, now, reason],
            )?;
            Ok(())
        })?;
        self.get(id)
    }

    /// A history row (`from == to`) saying `reason`, for something that
    /// changes no status: a failed health check streak, a heal, a budget
    /// alert.
    pub fn note_history(&self, id: &str, reason: &str) -> Result<()> {
        let changed = self.write_fenced(id, |tx| {
            Ok(tx.execute(
            "INSERT INTO deployment_history (deployment_id, at, from_status, to_status, reason)
             SELECT id, CAST(?2 AS BIGINT), status, status, CAST(?3 AS TEXT) FROM deployments WHERE id = ?1",
            params![id, now(), reason],
        )?)
        })?;
        if changed == 0 {
            return Err(TrackError::NotFound(id.to_string()));
        }
        Ok(())
    }

    /// `(deployment, attempt)` of every replacement attempt a heal began and
    /// did not finish (outcome `pending` or `created`; their idempotency keys
    /// carry `-heal-`).
    pub fn unfinished_replacements(&self) -> Result<Vec<(String, u32)>> {
        let rows = self.database().query(
            "SELECT deployment_id, n FROM deployment_attempts
             WHERE outcome IN ('pending', 'created') AND idempotency_key LIKE '%-heal-%' ORDER BY deployment_id, n",
            params![],
        )?;
        Ok(rows
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .collect::<Result<_, DbError>>()?)
    }
}
