//! `/metrics`: the Prometheus text format (version 0.0.4).
//!
//! Two kinds of metric end up there:
//!
//! - **events counted where they happen**, through the [`::metrics`] facade:
//!   the sandbox's (see [`crate::telemetry`]: provider call latency by export
//!   and outcome, traps, deadline hits, outbound requests by status) and the
//!   API's own (requests by route and status, latency). [`Metrics::new`]
//!   installs the process's Prometheus recorder once;
//! - **values read at scrape time** by [`Collector`]s: deployments by state
//!   and provider, the age of each price catalogue, providers loaded or
//!   refused, work in flight. Another module adds one with
//!   [`Metrics::with_collector`] (see [`AppState::new`](super::AppState::new)).
//!
//! Every label value is bounded: provider names are file stems, exports and
//! outcomes are fixed sets, HTTP statuses are folded to 100..=599, routes are
//! the router's templates (`/v1/deployments/{id}`), never raw paths.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::Host;
use crate::telemetry;

/// Counter: API requests, labels `method`, `route`, `status`.
pub const API_REQUESTS: &str = "bpr_api_requests_total";
/// Histogram: API request seconds (to the response head), labels `method`, `route`.
pub const API_DURATION: &str = "bpr_api_request_duration_seconds";
/// Counter: requests refused for a missing or wrong token.
pub const API_UNAUTHORIZED: &str = "bpr_api_unauthorized_total";

/// Buckets of the provider-call histogram (seconds): a describe is
/// microseconds, a create against a real cloud seconds, the deadline 30 s.
const CALL_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];
/// Buckets of the API histogram (seconds).
const API_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Whether a family counts up or goes up and down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only increases (name ends in `_total`).
    Counter,
    /// Any value.
    Gauge,
}

/// One metric family read at scrape time.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// Metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Label sets and values.
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    /// An empty family.
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Self {
        Self {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample.
    pub fn sample(&mut self, labels: Vec<(&'static str, String)>, value: f64) -> &mut Self {
        self.samples.push((labels, value));
        self
    }

    /// Appends the family in the text format to `out`.
    pub fn render(&self, out: &mut String) {
        let kind = match self.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
        for (labels, value) in &self.samples {
            out.push_str(self.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", format_value(*value));
        }
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

/// Reads values at scrape time. Must be quick: it runs on every scrape.
pub trait Collector: Send + Sync + 'static {
    /// Appends this collector's families.
    fn collect(&self, host: &Host, out: &mut Vec<Family>);
}

/// The registry behind `/metrics`. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    collectors: Vec<Arc<dyn Collector>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("collectors", &self.collectors.len())
            .finish_non_exhaustive()
    }
}

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` when
/// another recorder was installed first (an embedder's): the event metrics
/// then go there, and `/metrics` shows only the scrape-time ones.
fn recorder() -> Option<PrometheusHandle> {
    if let Some(h) = RECORDER.get() {
        return Some(h.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(telemetry::CALL_DURATION.into()), CALL_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(API_DURATION.into()), API_BUCKETS))
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    match metrics::set_global_recorder(recorder) {
        Ok(()) => {
            describe();
            Some(RECORDER.get_or_init(|| handle).clone())
        }
        Err(_) => {
            tracing::warn!(target: "bpr::serve", "another metrics recorder is installed; /metrics shows only scrape-time values");
            None
        }
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        telemetry::CALL_DURATION,
        Unit::Seconds,
        "Provider component calls by export and outcome (ok, error, deadline, memory-cap, trap, too-large, unavailable)."
    );
    describe_gauge!(
        telemetry::CALLS_IN_FLIGHT,
        "Provider component calls running now."
    );
    describe_counter!(
        telemetry::SANDBOX_TRAPS,
        "Provider calls stopped by a trap (kind trap or memory-cap)."
    );
    describe_counter!(
        telemetry::DEADLINE_HITS,
        "Provider calls stopped at their deadline."
    );
    describe_counter!(
        telemetry::OUTBOUND_REQUESTS,
        "Outbound HTTP requests of provider components by status (HTTP code, denied, failed)."
    );
    describe_counter!(API_REQUESTS, "API requests by method, route and status.");
    describe_histogram!(
        API_DURATION,
        Unit::Seconds,
        "API request latency by method and route."
    );
    describe_counter!(
        API_UNAUTHORIZED,
        "API requests refused for a missing or wrong bearer token."
    );
}

impl Metrics {
    /// The registry, with the process's recorder installed and no collector.
    pub fn new() -> Self {
        Self {
            handle: recorder()
                .unwrap_or_else(|| PrometheusBuilder::new().build_recorder().handle()),
            collectors: Vec::new(),
        }
    }

    /// Adds a scrape-time collector.
    pub fn with_collector(mut self, c: impl Collector) -> Self {
        self.collectors.push(Arc::new(c));
        self
    }

    /// Drains histogram buffers into their buckets; run it every few seconds
    /// so memory stays bounded between scrapes.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The whole exposition.
    pub fn render(&self, host: &Host) -> String {
        let mut out = self.handle.render();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        let mut families = Vec::new();
        for c in &self.collectors {
            c.collect(host, &mut families);
        }
        for f in &families {
            f.render(&mut out);
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Deployments by state and provider (`bpr_deployments`), every state
/// present (zero when none).
#[derive(Debug, Default)]
pub struct DeploymentsCollector;

impl Collector for DeploymentsCollector {
    fn collect(&self, host: &Host, out: &mut Vec<Family>) {
        use crate::tracking::DeploymentStatus;
        let mut f = Family::new(
            "bpr_deployments",
            "Deployment records by state and provider (provider \"-\" before one was tried).",
            Kind::Gauge,
        );
        match host.tracker().count_by_status() {
            Ok(rows) => {
                for status in DeploymentStatus::ALL {
                    let mut any = false;
                    for (s, provider, n) in &rows {
                        if *s == status {
                            any = true;
                            f.sample(
                                vec![
                                    ("state", status.as_str().to_string()),
                                    ("provider", provider.clone().unwrap_or_else(|| "-".into())),
                                ],
                                *n as f64,
                            );
                        }
                    }
                    if !any {
                        f.sample(
                            vec![
                                ("state", status.as_str().to_string()),
                                ("provider", "-".into()),
                            ],
                            0.0,
                        );
                    }
                }
            }
            Err(e) => {
                tracing::warn!(target: "bpr::serve", "metrics: cannot count deployments: {e}")
            }
        }
        out.push(f);
    }
}

/// Providers by state and the age of their price catalogues.
#[derive(Debug, Default)]
pub struct ProvidersCollector;

impl Collector for ProvidersCollector {
    fn collect(&self, host: &Host, out: &mut Vec<Family>) {
        let mut loaded = Family::new(
            "bpr_provider_loaded",
            "1 when the provider's component serves calls, 0 when it was refused.",
            Kind::Gauge,
        );
        let mut age = Family::new(
            "bpr_price_catalogue_age_seconds",
            "Seconds since the provider's stored price catalogue was fetched.",
            Kind::Gauge,
        );
        let now = crate::clock::unix_now();
        for s in host.statuses() {
            let serving = matches!(s.state, crate::providers::ProviderState::Loaded);
            loaded.sample(
                vec![("provider", s.name.clone())],
                f64::from(u8::from(serving)),
            );
            if let Some(at) = host.pricing().catalogue_fetched_at(&s.name) {
                age.sample(
                    vec![("provider", s.name.clone())],
                    now.saturating_sub(at as i64).max(0) as f64,
                );
            }
        }
        out.push(loaded);
        out.push(age);
    }
}

/// Identifies the build (`bpr_build_info{version}` = 1).
#[derive(Debug, Default)]
pub struct BuildCollector;

impl Collector for BuildCollector {
    fn collect(&self, _host: &Host, out: &mut Vec<Family>) {
        let mut f = Family::new(
            "bpr_build_info",
            "The running bpr's version (value always 1).",
            Kind::Gauge,
        );
        f.sample(
            vec![("version", env!("CARGO_PKG_VERSION").to_string())],
            1.0,
        );
        out.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_renders_help_type_and_escaped_labels() {
        let mut f = Family::new("bpr_x", "A help\nline.", Kind::Gauge);
        f.sample(vec![("provider", "a\"b\\c".into())], 2.0)
            .sample(vec![], f64::INFINITY);
        let mut out = String::new();
        f.render(&mut out);
        assert_eq!(
            out,
            "# HELP bpr_x A help\\nline.\n# TYPE bpr_x gauge\nbpr_x{provider=\"a\\\"b\\\\c\"} 2\nbpr_x +Inf\n"
        );
    }
}
