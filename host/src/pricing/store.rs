//! The last good catalogue of each provider, in the `price_catalogues` table.

use crate::db::{Database, Result};
use crate::placement::Offer;

/// Read and write cached catalogues.
#[derive(Debug, Clone)]
pub struct CatalogueStore {
    db: Database,
}

impl CatalogueStore {
    /// A store over `db`.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The cached catalogue of `provider`: (fetched_at unix seconds, offers).
    /// A row that no longer parses is treated as absent.
    pub fn get(&self, provider: &str) -> Result<Option<(u64, Vec<Offer>)>> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT fetched_at, offers_json FROM price_catalogues WHERE provider = ?1",
        )?;
        let row = stmt.query_row([provider], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        });
        match row {
            Ok((at, json)) => Ok(serde_json::from_str(&json)
                .ok()
                .map(|offers| (at as u64, offers))),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Replace the catalogue of `provider` (one transaction).
    pub fn put(&self, provider: &str, fetched_at: u64, offers: &[Offer]) -> Result<()> {
        let json = serde_json::to_string(offers)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        self.db.lock().execute(
            "INSERT INTO price_catalogues (provider, fetched_at, offers_json) VALUES (?1, ?2, ?3)
             ON CONFLICT(provider) DO UPDATE SET fetched_at = excluded.fetched_at, offers_json = excluded.offers_json",
            rusqlite::params![provider, fetched_at as i64, json],
        )?;
        Ok(())
    }
}
