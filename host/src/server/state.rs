//! [`AppState`]: what every handler reaches. Cheap to clone (one `Arc`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use super::auth::ApiToken;
use super::events::EventHub;
use super::metrics::{
    BuildCollector, Collector, DeploymentsCollector, Family, Kind, Metrics, ProvidersCollector,
};
use super::work::Work;
use crate::config::ServeSettings;
use crate::coordination::Leadership;
use crate::provisioning::DeployOptions;
use crate::{Host, SupervisorOptions};

/// The service's shared state.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    host: Host,
    token: ApiToken,
    settings: ServeSettings,
    deploy: DeployOptions,
    work: Work,
    events: EventHub,
    streams: Arc<Semaphore>,
    metrics: Metrics,
    draining: AtomicBool,
    leadership: Arc<OnceLock<Leadership>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.inner.settings)
            .field("draining", &self.draining())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state of a service over `host`, its requests checked against
    /// `token`. Deploys and terminations run with `deploy`'s timing. The
    /// scrape-time metrics are registered here: add a collector with one more
    /// `.with_collector(...)`.
    pub fn new(
        host: Host,
        token: ApiToken,
        settings: ServeSettings,
        deploy: DeployOptions,
    ) -> Self {
        let work = Work::new(settings.max_in_flight);
        let leadership = Arc::new(OnceLock::new());
        let metrics = Metrics::new()
            .with_collector(LeaderCollector(leadership.clone()))
            .with_collector(BuildCollector)
            .with_collector(DeploymentsCollector)
            .with_collector(ProvidersCollector)
            .with_collector(WorkCollector(work.clone()))
            .with_collector(super::api::costs::CostsCollector);
        Self {
            inner: Arc::new(Inner {
                streams: Arc::new(Semaphore::new(settings.max_event_streams)),
                host,
                token,
                settings,
                deploy,
                work,
                events: EventHub::default(),
                metrics,
                draining: AtomicBool::new(false),
                leadership,
            }),
        }
    }

    /// The host.
    pub fn host(&self) -> &Host {
        &self.inner.host
    }

    /// The API token.
    pub fn token(&self) -> &ApiToken {
        &self.inner.token
    }

    /// `[serve]` settings in force.
    pub fn settings(&self) -> &ServeSettings {
        &self.inner.settings
    }

    /// Timing of deploys and terminations the API starts.
    pub fn deploy_options(&self) -> &DeployOptions {
        &self.inner.deploy
    }

    /// Supervisor options: the configured interval, the API's deploy timing,
    /// the election (when one was set).
    pub fn supervisor_options(&self) -> SupervisorOptions {
        SupervisorOptions {
            interval: self.inner.settings.supervisor_interval,
            deploy: self.inner.deploy.clone(),
            leader: self.leadership().cloned(),
            ..SupervisorOptions::default()
        }
    }

    /// Take part in `leadership`'s election: the supervisor runs only while
    /// this replica leads, and `/readyz` and `/metrics` say whether it does.
    /// Set once, before the supervisor starts; a second call is ignored.
    pub fn set_leadership(&self, leadership: Leadership) {
        let _ = self.inner.leadership.set(leadership);
    }

    /// The election this replica takes part in, if any.
    pub fn leadership(&self) -> Option<&Leadership> {
        self.inner.leadership.get()
    }

    /// Work in the background.
    pub(crate) fn work(&self) -> &Work {
        &self.inner.work
    }

    /// The event hub.
    pub(crate) fn events(&self) -> &EventHub {
        &self.inner.events
    }

    /// Permits for event-stream subscribers (`[serve] max_event_streams`).
    pub(crate) fn stream_permits(&self) -> &Arc<Semaphore> {
        &self.inner.streams
    }

    /// The metrics registry.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// True once shutdown began: no new work is taken.
    pub fn draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Stop taking work (`/readyz` and work-taking requests answer 503).
    pub fn begin_drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
        self.inner.work.close();
    }
}

/// Work in flight and event streams open.
struct WorkCollector(Work);

impl Collector for WorkCollector {
    fn collect(&self, _host: &Host, out: &mut Vec<Family>) {
        let mut f = Family::new(
            "bpr_api_work_in_flight",
            "Deploys, terminations and renewals accepted and still running.",
            Kind::Gauge,
        );
        f.sample(vec![], self.0.in_flight() as f64);
        out.push(f);
    }
}

/// Whether this replica leads the supervisor, and in which term.
struct LeaderCollector(Arc<OnceLock<Leadership>>);

impl Collector for LeaderCollector {
    fn collect(&self, _host: &Host, out: &mut Vec<Family>) {
        let Some(l) = self.0.get() else {
            return;
        };
        let term = l.term();
        let mut f = Family::new(
            "bpr_supervisor_leader",
            "1 while this replica leads the supervisor (TTL cleanup, recovery, health, payment, price refresh), else 0.",
            Kind::Gauge,
        );
        f.sample(
            vec![("replica", l.owner().to_string())],
            if term.is_some() { 1.0 } else { 0.0 },
        );
        out.push(f);
        let mut f = Family::new(
            "bpr_supervisor_term",
            "The supervisor lease's fencing token this replica leads with (0 when it does not lead).",
            Kind::Gauge,
        );
        f.sample(vec![], term.unwrap_or(0) as f64);
        out.push(f);
    }
}
