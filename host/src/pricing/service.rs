//! The pricing service: the catalogues of the providers asked for, fetched
//! concurrently (each under its own deadline) when the store has none,
//! normalised and stored once per fetch, and read back as a plan needs them.
//! One failing provider never hides the others: it is reported and its last
//! good catalogue is used with its age.
//!
//! It depends on the narrow parts it uses: the loaded [`Providers`] (to call
//! `list-offers`), the [`Database`] (the store) and its [`PricingConfig`];
//! not on `Host`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::convert::from_wit;
use super::error::PricingError;
use super::normalize::{
    GpuNames, NormalizeConfig, NormalizeError, NormalizeReport, OfferId, SanityBounds,
    normalize_listed_with,
};
use super::select::{Selection, Source, select};
use super::store::{CatalogueMeta, CatalogueStore, Drops, Encoder, Loaded};
use crate::clock::unix_now_u64;
use crate::config::Config;
use crate::db::Database;
use crate::placement::{Offer, Policy, Ranking, Request, rank_offers};
use crate::providers::Providers;
use crate::runtime::bindings::wit::{self, Capability, OfferQuery};

/// Where a provider's catalogue came from in this report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CatalogueSource {
    /// Fetched live just now.
    Fresh,
    /// From the store, younger than the refresh interval.
    Cached,
    /// From the store, older than the refresh interval; a background refresh
    /// was started.
    Stale,
    /// The live source was unreachable; the component's embedded snapshot.
    Snapshot,
    /// The fetch failed; the last good catalogue is used.
    LastGood {
        /// Why the fetch failed.
        error: String,
    },
    /// The fetch failed and nothing is stored: no offers from this provider.
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
    /// When its prices were published, as the source says (the oldest, when
    /// its offers say different things), unix seconds.
    pub observed_at: Option<u64>,
    /// Offers in the catalogue (after normalisation).
    pub offers: usize,
    /// Offers normalisation dropped when the catalogue was fetched.
    pub dropped: usize,
}

/// Offers read for a selection, normalised, with how each catalogue was
/// obtained.
#[derive(Debug, Clone)]
pub struct PriceReport {
    /// The selected offers of every provider read (prices after discount).
    pub offers: Vec<Offer>,
    /// Per provider read, sorted by name.
    pub catalogues: Vec<CatalogueStatus>,
    /// What normalisation dropped and changed in the catalogues fetched now
    /// (a stored catalogue keeps only its count of drops, see
    /// [`CatalogueStatus::dropped`]), and the offers discounted.
    pub normalize: NormalizeReport,
    /// Offers in all the catalogues read, selected or not.
    pub total_offers: usize,
    /// Every region with offers in the catalogues read, selected or not;
    /// sorted.
    pub regions: Vec<String>,
    /// For a request's selection: offers satisfying every rule.
    pub satisfying: Option<usize>,
}

impl PriceReport {
    /// True when every offer comes from an embedded snapshot (offline).
    pub fn all_from_snapshots(&self) -> bool {
        let read: Vec<_> = self
            .catalogues
            .iter()
            .filter(|c| c.offers > 0 && !matches!(c.source, CatalogueSource::Failed { .. }))
            .collect();
        !read.is_empty() && read.iter().all(|c| c.source == CatalogueSource::Snapshot)
    }

    /// Offers dropped by normalisation, over every catalogue read.
    pub fn dropped(&self) -> usize {
        self.catalogues.iter().map(|c| c.dropped).sum()
    }
}

/// A ranking and the prices it was made from.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The catalogues and the offers read.
    pub report: PriceReport,
    /// The ranking over every offer of the catalogues read.
    pub ranking: Ranking,
}

/// Options of [`PricingService::plan`].
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only these providers (empty: every provider with offers). Only these
    /// are fetched.
    pub providers: Vec<String>,
    /// Fetch live even when the stored catalogue is fresh.
    pub refresh: bool,
    /// Keep every offer in the ranking, so it explains every family.
    pub explain: bool,
}

/// The settings of the pricing service (from `[operator.deployment]` and the
/// providers' `price_multiplier`).
#[derive(Debug, Clone)]
pub struct PricingConfig {
    /// Sanity bounds and per-provider discounts.
    pub normalize: NormalizeConfig,
    /// A stored catalogue older than this is refreshed in the background
    /// (served meanwhile). Default 6 h (`price_refresh_secs`).
    pub refresh_after: Duration,
    /// Deadline of one provider's `list-offers`. Default 20 s
    /// (`price_fetch_timeout_secs`).
    pub fetch_timeout: Duration,
}

impl PricingConfig {
    /// The settings `config` gives.
    pub fn from_config(config: &Config) -> Result<PricingConfig, NormalizeError> {
        let discounts: BTreeMap<String, f64> = config
            .providers
            .iter()
            .filter(|(_, p)| p.price_multiplier != 1.0)
            .map(|(n, p)| (n.clone(), p.price_multiplier))
            .collect();
        let d = &config.operator.deployment;
        Ok(PricingConfig {
            normalize: NormalizeConfig::new(SanityBounds::default(), discounts)?,
            refresh_after: Duration::from_secs(d.price_refresh_secs),
            fetch_timeout: Duration::from_secs(d.price_fetch_timeout_secs),
        })
    }
}

/// Gathers, stores and refreshes catalogues.
pub struct PricingService {
    providers: Providers,
    pub(super) store: CatalogueStore,
    config: PricingConfig,
    /// The sanity bounds as stored with each catalogue.
    normalized_with: String,
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for PricingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PricingService")
            .field("refresh_after", &self.config.refresh_after)
            .finish_non_exhaustive()
    }
}

/// A catalogue obtained for a report: its status and, when there is one, the
/// catalogue itself.
struct Obtained {
    status: CatalogueStatus,
    loaded: Option<Loaded>,
    /// Drops and adjustments of a catalogue fetched now.
    report: NormalizeReport,
}

impl PricingService {
    /// A service over `providers` and the price store in `db`, with the
    /// operator's refresh interval, fetch deadline and per-provider price
    /// multipliers from `config`.
    pub fn new(
        providers: Providers,
        db: Database,
        config: &Config,
    ) -> Result<Arc<Self>, NormalizeError> {
        Ok(Self::with_config(
            providers,
            db,
            PricingConfig::from_config(config)?,
        ))
    }

    /// A service over `providers` and the price store in `db`, with `config`.
    pub fn with_config(providers: Providers, db: Database, config: PricingConfig) -> Arc<Self> {
        let normalized_with = serde_json::to_string(config.normalize.bounds())
            .unwrap_or_else(|_| String::from("default"));
        Arc::new(Self {
            providers,
            store: CatalogueStore::new(db),
            config,
            normalized_with,
            background: Mutex::new(Vec::new()),
        })
    }

    /// Names of the providers that announce `offers`, sorted.
    pub fn providers(&self) -> Vec<String> {
        self.providers
            .all()
            .into_iter()
            .filter(|p| {
                p.current()
                    .is_ok_and(|c| c.info.capabilities.contains(&Capability::Offers))
            })
            .map(|p| p.name().to_string())
            .collect()
    }

    /// Every offer of every provider (see [`PricingService::select`]).
    pub async fn gather(
        self: &Arc<Self>,
        force: bool,
        progress: &(dyn Fn(&CatalogueStatus) + Sync),
    ) -> PriceReport {
        let everything = Selection::everything();
        let obtained = self.obtain(&everything, force, progress).await;
        self.report(&everything, &obtained)
    }

    /// The offers `selection` asks for, from every provider it names (every
    /// provider announcing `offers` when it names none). `force` fetches live
    /// even when the store is fresh. `progress` is told each provider's
    /// outcome as it arrives.
    pub async fn select(
        self: &Arc<Self>,
        selection: &Selection,
        force: bool,
        progress: &(dyn Fn(&CatalogueStatus) + Sync),
    ) -> Result<PriceReport, PricingError> {
        self.check_providers(selection)?;
        let obtained = self.obtain(selection, force, progress).await;
        Ok(self.report(selection, &obtained))
    }

    /// Ranks the offers of the providers in `options` for `request` under
    /// `policy`, reading only what can be a candidate (see
    /// [`Selection::for_request`]); with `options.explain`, every offer.
    pub async fn plan(
        self: &Arc<Self>,
        request: &Request,
        policy: &Policy,
        options: &PlanOptions,
        progress: &(dyn Fn(&CatalogueStatus) + Sync),
    ) -> Result<Plan, PricingError> {
        // The providers named by the options, else by the request: only
        // these are fetched.
        let providers = if options.providers.is_empty() {
            &request.providers
        } else {
            &options.providers
        };
        let selection = if options.explain {
            Selection::everything()
        } else {
            Selection::for_request(request, policy)
        }
        .only_providers(providers);
        self.check_providers(&selection)?;
        let started = Instant::now();
        let mut obtained = self.obtain(&selection, options.refresh, progress).await;
        let read = started.elapsed();
        let report = self.report(&selection, &obtained);
        let selected = started.elapsed();
        let mut ranking = rank_offers(report.offers.clone(), request, policy)?;
        tracing::debug!(
            target: "bpr::pricing",
            read_us = read.as_micros() as u64,
            select_us = (selected - read).as_micros() as u64,
            rank_us = (started.elapsed() - selected).as_micros() as u64,
            offers = report.total_offers,
            selected = report.offers.len(),
            "plan"
        );
        let (report, mut ranking) = match report.satisfying {
            Some(satisfying) if ranking.offers_satisfying == report.offers.len() => {
                ranking.offers_satisfying = satisfying;
                (report, ranking)
            }
            Some(_) => {
                // The selection let through an offer placement refuses: its
                // rules and placement's differ. Rank every offer instead.
                tracing::warn!(
                    selected = report.offers.len(),
                    satisfying = ranking.offers_satisfying,
                    "price selection and placement disagree; ranking every offer"
                );
                let everything = Selection::everything().only_providers(providers);
                for o in &mut obtained {
                    if o.loaded.as_ref().is_some_and(|l| !l.complete) {
                        o.loaded = self.load(&o.status.provider, &everything)?;
                    }
                }
                let report = self.report(&everything, &obtained);
                ranking = rank_offers(report.offers.clone(), request, policy)?;
                (report, ranking)
            }
            None => (report, ranking),
        };
        ranking.offers_considered = report.total_offers;
        Ok(Plan { report, ranking })
    }

    /// Every provider `selection` names lists offers.
    fn check_providers(&self, selection: &Selection) -> Result<(), PricingError> {
        let known = self.providers();
        match selection.providers().iter().find(|n| !known.contains(n)) {
            Some(name) => Err(PricingError::UnknownProvider {
                name: name.clone(),
                known: known.join(", "),
            }),
            None => Ok(()),
        }
    }

    /// The catalogues `selection` needs: stored, or fetched (and stored).
    async fn obtain(
        self: &Arc<Self>,
        selection: &Selection,
        force: bool,
        progress: &(dyn Fn(&CatalogueStatus) + Sync),
    ) -> Vec<Obtained> {
        let jobs = self
            .providers()
            .into_iter()
            .filter(|p| selection.includes_provider(p))
            .map(|name| {
                let this = self.clone();
                async move {
                    let obtained = this.catalogue(&name, selection, force).await;
                    progress(&obtained.status);
                    obtained
                }
            });
        let mut obtained = futures::future::join_all(jobs).await;
        obtained.sort_by(|a, b| a.status.provider.cmp(&b.status.provider));
        obtained
    }

    /// The report of `selection` over `obtained`.
    fn report(&self, selection: &Selection, obtained: &[Obtained]) -> PriceReport {
        let sources: Vec<Source<'_>> = obtained
            .iter()
            .filter_map(|o| o.loaded.as_ref())
            .map(|loaded| Source {
                multiplier: self.config.normalize.discount(&loaded.provider),
                loaded,
            })
            .collect();
        let selected = select(selection, &sources);
        let mut normalize = NormalizeReport::default();
        for o in obtained {
            normalize.dropped.extend(o.report.dropped.iter().cloned());
            normalize.adjusted.extend(o.report.adjusted.iter().cloned());
        }
        normalize.discounted = selected.discounted;
        let mut regions: Vec<String> = obtained
            .iter()
            .filter_map(|o| o.loaded.as_ref())
            .flat_map(|l| l.all_regions.iter().cloned())
            .collect();
        regions.sort_unstable();
        regions.dedup();
        if tracing::enabled!(tracing::Level::WARN) {
            for o in obtained {
                if let Some(l) = &o.loaded
                    && o.status.source != CatalogueSource::Fresh
                {
                    for (offer, reason) in &l.meta.drops.first {
                        tracing::warn!(%offer, "offer dropped when its catalogue was fetched: {reason}");
                    }
                }
            }
        }
        PriceReport {
            offers: selected.offers,
            catalogues: obtained.iter().map(|o| o.status.clone()).collect(),
            normalize,
            total_offers: obtained.iter().map(|o| o.status.offers).sum(),
            satisfying: selected.satisfying,
            regions,
        }
    }

    /// The stored catalogue of `provider`, with the rows `selection` can use.
    fn load(&self, provider: &str, selection: &Selection) -> Result<Option<Loaded>, PricingError> {
        let reads = selection.reads_offers_of(provider);
        Ok(self
            .store
            .load(provider, |region| reads && selection.wants_region(region))?)
    }

    async fn catalogue(
        self: &Arc<Self>,
        provider: &str,
        selection: &Selection,
        force: bool,
    ) -> Obtained {
        let stored = match self.store.meta(provider) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(provider, "price store unreadable: {e}");
                None
            }
        };
        let status = |source, meta: &CatalogueMeta| CatalogueStatus {
            provider: provider.into(),
            source,
            fetched_at: Some(meta.fetched_at),
            observed_at: meta.observed_at(),
            offers: meta.offers,
            dropped: meta.drops.count,
        };
        if let Some(meta) = &stored
            && !force
        {
            let stale = unix_now_u64().saturating_sub(meta.fetched_at)
                >= self.config.refresh_after.as_secs()
                || meta.normalized_with != self.normalized_with;
            match self.load(provider, selection) {
                Ok(Some(loaded)) => {
                    if stale {
                        self.spawn_refresh(provider.to_string());
                    }
                    let source = if stale {
                        CatalogueSource::Stale
                    } else {
                        CatalogueSource::Cached
                    };
                    return Obtained {
                        status: status(source, &loaded.meta),
                        loaded: Some(loaded),
                        report: NormalizeReport::default(),
                    };
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(provider, "price store unreadable: {e}"),
            }
        }
        match self.fetch(provider).await {
            Ok(fetched) if fetched.meta.from_snapshot() => {
                // A snapshot is a fallback, not a catalogue worth storing:
                // prefer a stored live one, and try live again next time.
                if stored.is_some()
                    && let Ok(Some(loaded)) = self.load(provider, selection)
                {
                    let source = CatalogueSource::LastGood {
                        error: "live source unreachable".into(),
                    };
                    return Obtained {
                        status: status(source, &loaded.meta),
                        loaded: Some(loaded),
                        report: NormalizeReport::default(),
                    };
                }
                let mut s = status(CatalogueSource::Snapshot, &fetched.meta);
                s.fetched_at = fetched.meta.observed_at();
                Obtained {
                    status: s,
                    loaded: fetched.loaded,
                    report: fetched.report,
                }
            }
            Ok(fetched) => {
                if let Err(e) = fetched.stored {
                    tracing::warn!(provider, "cannot store prices: {e}");
                }
                Obtained {
                    status: status(CatalogueSource::Fresh, &fetched.meta),
                    loaded: fetched.loaded,
                    report: fetched.report,
                }
            }
            Err(error) => {
                let error = error.to_string();
                tracing::warn!(provider, "price fetch failed: {error}");
                match self.load(provider, selection) {
                    Ok(Some(loaded)) => Obtained {
                        status: status(CatalogueSource::LastGood { error }, &loaded.meta),
                        loaded: Some(loaded),
                        report: NormalizeReport::default(),
                    },
                    _ => Obtained {
                        status: CatalogueStatus {
                            provider: provider.into(),
                            source: CatalogueSource::Failed { error },
                            fetched_at: None,
                            observed_at: None,
                            offers: 0,
                            dropped: 0,
                        },
                        loaded: None,
                        report: NormalizeReport::default(),
                    },
                }
            }
        }
    }

    /// Calls `list-offers` of `provider` under the fetch deadline, normalises
    /// and encodes the answer, and stores it unless it is a snapshot.
    async fn fetch(&self, provider: &str) -> Result<Fetched, PricingError> {
        let handle = self
            .providers
            .get(provider)
            .map_err(|source| PricingError::CallFailed {
                provider: provider.into(),
                source: Box::new(source),
            })?;
        let owned = handle
            .current()
            .is_ok_and(|c| c.info.capabilities.contains(&Capability::Workloads));
        let call = handle.list_offers(OfferQuery {
            regions: Vec::new(),
        });
        let started = Instant::now();
        let offers = match tokio::time::timeout(self.config.fetch_timeout, call).await {
            Ok(Ok(offers)) => offers,
            Ok(Err(source)) => {
                return Err(PricingError::CallFailed {
                    provider: provider.into(),
                    source: Box::new(source),
                });
            }
            Err(_) => {
                return Err(PricingError::TimedOut {
                    provider: provider.into(),
                    secs: self.config.fetch_timeout.as_secs(),
                });
            }
        };
        let store = self.store.clone();
        let bounds = self.config.normalize.bounds().clone();
        let normalized_with = self.normalized_with.clone();
        let provider = provider.to_string();
        // Normalising and encoding a large catalogue is CPU work, and storing
        // it a blocking write: off the async workers.
        let call = started.elapsed();
        let fetched = tokio::task::spawn_blocking(move || {
            encode_and_store(&store, &provider, owned, offers, &bounds, &normalized_with)
        })
        .await
        .map_err(|e| PricingError::Internal(format!("encoding prices panicked: {e}")))?;
        tracing::debug!(
            target: "bpr::pricing",
            provider = %fetched.provider,
            listed = fetched.meta.listed,
            kept = fetched.meta.offers,
            call_us = call.as_micros() as u64,
            encode_us = fetched.encode.as_micros() as u64,
            store_us = fetched.store.as_micros() as u64,
            "catalogue fetched"
        );
        Ok(fetched)
    }

    /// Refresh `provider` now and store the result; the number of offers.
    pub async fn refresh(&self, provider: &str) -> Result<usize, PricingError> {
        let fetched = self.fetch(provider).await?;
        if fetched.meta.from_snapshot() {
            return Err(PricingError::SnapshotOnly {
                provider: provider.into(),
            });
        }
        fetched.stored?;
        Ok(fetched.meta.offers)
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
            for name in self.providers() {
                let due = match self.store.meta(&name) {
                    Ok(Some(meta)) => {
                        unix_now_u64().saturating_sub(meta.fetched_at)
                            >= self.config.refresh_after.as_secs()
                    }
                    _ => true,
                };
                if due && let Err(e) = self.refresh(&name).await {
                    tracing::warn!(provider = name, "price refresh failed: {e}");
                }
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

/// A catalogue just fetched.
struct Fetched {
    provider: String,
    meta: CatalogueMeta,
    /// Time spent normalising and encoding it, and storing it.
    encode: Duration,
    store: Duration,
    loaded: Option<Loaded>,
    report: NormalizeReport,
    /// Whether storing it worked (not attempted for a snapshot).
    stored: Result<(), PricingError>,
}

/// Normalises (at list price) and encodes `offers`, and stores them unless
/// they all come from a snapshot.
fn encode_and_store(
    store: &CatalogueStore,
    provider: &str,
    operator_owned: bool,
    offers: Vec<wit::Offer>,
    bounds: &SanityBounds,
    normalized_with: &str,
) -> Fetched {
    let started = Instant::now();
    let listed = offers.len();
    let mut encoder = Encoder::new();
    let mut report = NormalizeReport::default();
    let mut drops = Drops::default();
    let mut gpu_names = GpuNames::default();
    for offer in offers {
        let offer = from_wit(provider, operator_owned, offer);
        match normalize_listed_with(offer, bounds, &mut report.adjusted, &mut gpu_names) {
            Ok(offer) => encoder.push(&offer),
            Err(dropped) => {
                let (id, reason): (OfferId, _) = *dropped;
                tracing::warn!(offer = %id, "offer dropped: {reason}");
                drops.push(id.to_string(), reason.to_string());
                if report.dropped.len() < super::store::MAX_DROPS_KEPT {
                    report.dropped.push((id, reason));
                }
            }
        }
    }
    let encoded = encoder.finish();
    let encode = started.elapsed();
    let fetched_at = unix_now_u64();
    let meta = CatalogueMeta {
        fetched_at,
        sources: encoded.sources().to_vec(),
        listed,
        offers: encoded.offers(),
        drops: drops.clone(),
        normalized_with: normalized_with.to_string(),
    };
    let stored = if meta.from_snapshot() {
        Ok(())
    } else {
        store
            .put(
                provider,
                fetched_at,
                listed,
                &drops,
                normalized_with,
                &encoded,
            )
            .map_err(PricingError::from)
    };
    let store_time = started.elapsed() - encode;
    let loaded = encoded.into_loaded(provider, meta.clone());
    Fetched {
        provider: provider.to_string(),
        meta,
        encode,
        store: store_time,
        loaded,
        report,
        stored,
    }
}
