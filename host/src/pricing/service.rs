//! The pricing service: offers from every loaded provider, gathered
//! concurrently, each under its own deadline. One failing provider never
//! hides the others: it is reported and its last good catalogue is used with
//! its age.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::normalize::{NormalizeConfig, NormalizeError, NormalizeReport, SanityBounds, normalize};
use super::store::CatalogueStore;
use crate::config::Config;
use crate::db::Database;
use crate::placement::Offer;
use crate::providers::Providers;
use crate::runtime::bindings::wit::{Capability, OfferQuery};

/// Where a provider's catalogue came from in this report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CatalogueSource {
    /// Fetched live just now.
    Fresh,
    /// From the cache, younger than the refresh interval.
    Cached,
    /// From the cache, older than the refresh interval; a background refresh
    /// was started.
    Stale,
    /// The live source was unreachable; the component's embedded snapshot.
    Snapshot,
    /// The fetch failed; the last good catalogue is used.
    LastGood {
        /// Why the fetch failed.
        error: String,
    },
    /// The fetch failed and nothing is cached: no offers from this provider.
    Failed {
        /// Why.
        error: String,
    },
}

/// One provider's part of a report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CatalogueStatus {
    /// Provider.
    pub provider: String,
    /// Where the offers came from.
    pub source: CatalogueSource,
    /// When the catalogue was fetched (unix seconds), when known.
    pub fetched_at: Option<u64>,
    /// Offers contributed (before normalisation).
    pub offers: usize,
}

/// All offers, normalised, with how each catalogue was obtained.
#[derive(Debug, Clone)]
pub struct PriceReport {
    /// Normalised offers of every provider.
    pub offers: Vec<Offer>,
    /// Per provider, sorted by name.
    pub catalogues: Vec<CatalogueStatus>,
    /// What normalisation dropped and changed.
    pub normalize: NormalizeReport,
}

impl PriceReport {
    /// True when every offer comes from an embedded snapshot (offline).
    pub fn all_from_snapshots(&self) -> bool {
        !self.offers.is_empty() && self.offers.iter().all(|o| o.from_snapshot)
    }
}

/// Gathers, caches and refreshes catalogues.
pub struct PricingService {
    providers: Providers,
    pub(super) store: CatalogueStore,
    normalize: NormalizeConfig,
    refresh_after: Duration,
    fetch_timeout: Duration,
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for PricingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PricingService")
            .field("refresh_after", &self.refresh_after)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl PricingService {
    /// A service over `providers` and the price cache in `db`, with the
    /// operator's refresh interval, fetch deadline and per-provider price
    /// multipliers from `cfg`.
    pub fn new(
        providers: Providers,
        db: Database,
        cfg: &Config,
    ) -> Result<Arc<Self>, NormalizeError> {
        let discounts: BTreeMap<String, f64> = cfg
            .providers
            .iter()
            .filter(|(_, p)| p.price_multiplier != 1.0)
            .map(|(n, p)| (n.clone(), p.price_multiplier))
            .collect();
        let normalize = NormalizeConfig::new(SanityBounds::default(), discounts)?;
        let d = &cfg.operator.deployment;
        Ok(Arc::new(Self {
            store: CatalogueStore::new(db),
            refresh_after: Duration::from_secs(d.price_refresh_secs),
            fetch_timeout: Duration::from_secs(d.price_fetch_timeout_secs),
            normalize,
            providers,
            background: Mutex::new(Vec::new()),
        }))
    }

    /// Offers of every provider that announces `offers`. `force` fetches
    /// live even when the cache is fresh. `progress` is told each provider's
    /// outcome as it arrives.
    pub async fn gather(
        self: &Arc<Self>,
        force: bool,
        progress: &(dyn Fn(&CatalogueStatus) + Sync),
    ) -> PriceReport {
        let providers: Vec<String> = self
            .providers
            .all()
            .into_iter()
            .filter(|p| {
                p.current()
                    .is_ok_and(|c| c.info.capabilities.contains(&Capability::Offers))
            })
            .map(|p| p.name().to_string())
            .collect();
        let jobs = providers.into_iter().map(|name| {
            let this = self.clone();
            async move {
                let (status, offers) = this.catalogue(&name, force).await;
                progress(&status);
                (status, offers)
            }
        });
        let results = futures::future::join_all(jobs).await;
        let mut all = Vec::new();
        let mut catalogues = Vec::new();
        for (status, offers) in results {
            all.extend(offers);
            catalogues.push(status);
        }
        catalogues.sort_by(|a, b| a.provider.cmp(&b.provider));
        let (offers, normalize) = normalize(all, &self.normalize);
        for (id, reason) in &normalize.dropped {
            tracing::warn!(offer = %id, "offer dropped: {reason:?}");
        }
        PriceReport {
            offers,
            catalogues,
            normalize,
        }
    }

    async fn catalogue(
        self: &Arc<Self>,
        provider: &str,
        force: bool,
    ) -> (CatalogueStatus, Vec<Offer>) {
        let cached = match self.store.get(provider) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(provider, "price cache unreadable: {e}");
                None
            }
        };
        if let Some((at, offers)) = &cached
            && !force
        {
            let stale = now().saturating_sub(*at) >= self.refresh_after.as_secs();
            if stale {
                self.spawn_refresh(provider.to_string());
            }
            let source = if stale {
                CatalogueSource::Stale
            } else {
                CatalogueSource::Cached
            };
            let status = CatalogueStatus {
                provider: provider.into(),
                source,
                fetched_at: Some(*at),
                offers: offers.len(),
            };
            return (status, offers.clone());
        }
        match self.fetch(provider).await {
            Ok(offers) if !offers.is_empty() && offers.iter().all(|o| o.from_snapshot) => {
                // A snapshot is a fallback, not a catalogue worth caching:
                // prefer a cached live one, and try live again next time.
                if let Some((at, cached)) = cached {
                    let status = CatalogueStatus {
                        provider: provider.into(),
                        source: CatalogueSource::LastGood {
                            error: "live source unreachable".into(),
                        },
                        fetched_at: Some(at),
                        offers: cached.len(),
                    };
                    return (status, cached);
                }
                let status = CatalogueStatus {
                    provider: provider.into(),
                    source: CatalogueSource::Snapshot,
                    fetched_at: offers.iter().map(|o| o.observed_at).max(),
                    offers: offers.len(),
                };
                (status, offers)
            }
            Ok(offers) => {
                let at = now();
                if let Err(e) = self.store.put(provider, at, &offers) {
                    tracing::warn!(provider, "cannot cache prices: {e}");
                }
                let status = CatalogueStatus {
                    provider: provider.into(),
                    source: CatalogueSource::Fresh,
                    fetched_at: Some(at),
                    offers: offers.len(),
                };
                (status, offers)
            }
            Err(error) => {
                tracing::warn!(provider, "price fetch failed: {error}");
                match cached {
                    Some((at, offers)) => {
                        let status = CatalogueStatus {
                            provider: provider.into(),
                            source: CatalogueSource::LastGood { error },
                            fetched_at: Some(at),
                            offers: offers.len(),
                        };
                        (status, offers)
                    }
                    None => {
                        let status = CatalogueStatus {
                            provider: provider.into(),
                            source: CatalogueSource::Failed { error },
                            fetched_at: None,
                            offers: 0,
                        };
                        (status, Vec::new())
                    }
                }
            }
        }
    }

    async fn fetch(&self, provider: &str) -> Result<Vec<Offer>, String> {
        let handle = self.providers.get(provider).map_err(|e| e.to_string())?;
        let owned = handle
            .current()
            .is_ok_and(|c| c.info.capabilities.contains(&Capability::Workloads));
        let call = handle.list_offers(OfferQuery {
            regions: Vec::new(),
        });
        match tokio::time::timeout(self.fetch_timeout, call).await {
            Ok(Ok(offers)) => Ok(offers
                .into_iter()
                .map(|o| super::from_wit(provider, owned, o))
                .collect()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} s",
                self.fetch_timeout.as_secs()
            )),
        }
    }

    /// Refresh `provider` now and cache the result.
    pub async fn refresh(&self, provider: &str) -> Result<usize, String> {
        let offers = self.fetch(provider).await?;
        if offers.iter().all(|o| o.from_snapshot) {
            return Err("live source unreachable (component fell back to its snapshot)".into());
        }
        self.store
            .put(provider, now(), &offers)
            .map_err(|e| e.to_string())?;
        Ok(offers.len())
    }

    fn spawn_refresh(self: &Arc<Self>, provider: String) {
        let this = self.clone();
        let task = tokio::spawn(async move {
            match this.refresh(&provider).await {
                Ok(n) => tracing::info!(provider, offers = n, "price catalogue refreshed"),
                Err(e) => tracing::warn!(provider, "background price refresh failed: {e}"),
            }
        });
        self.background
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    /// Wait for background refreshes started so far (a one-shot CLI calls
    /// this after printing, so the next run finds fresh prices).
    pub async fn wait_for_refreshes(&self) {
        let tasks: Vec<_> =
            std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Run forever: refresh every provider whose catalogue is older than the
    /// refresh interval, checking once a minute.
    pub async fn run_refresher(self: Arc<Self>) {
        loop {
            for p in self.providers.all() {
                let due = match self.store.get(p.name()) {
                    Ok(Some((at, _))) => now().saturating_sub(at) >= self.refresh_after.as_secs(),
                    _ => true,
                };
                let offers = p
                    .current()
                    .is_ok_and(|c| c.info.capabilities.contains(&Capability::Offers));
                if due && offers {
                    let _ = self.refresh(p.name()).await;
                }
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}
