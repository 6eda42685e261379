//! The sweep: what carries this host's label but no record owns, found by
//! listing every provider this host ever deployed to, and deleted.
//!
//! A record is written before anything is created for it and never removed,
//! so such things exist only when the records are gone: the database was
//! restored from an older copy, or a record says it holds nothing while its
//! provider still shows something of it. The `bpr-host` label (a random id
//! made with the database) keeps another host's resources out of reach even
//! on a shared cloud account.

use std::collections::BTreeMap;

use serde::Serialize;

use super::instances::instance_ref;
use super::options::DeployOptions;
use super::orchestrator::Orchestrator;
use crate::runtime::CallError;
use crate::runtime::bindings::wit::{Instance, InstanceQuery, ProviderError};
use crate::tracking::{HOST_LABEL, TrackError};

/// What a sweep found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepReport {
    /// What was deleted, one line per deployment and place:
    /// `<provider>/<region> <deployment>: <what>`.
    pub deleted: Vec<String>,
    /// Deployments whose leftovers another process is working on (left alone).
    pub busy: Vec<String>,
    /// What could not be listed or deleted now, with why.
    pub errors: Vec<(String, String)>,
}

/// What `DeployRequest::validate` accepts as a deployment id, and the ids
/// the host makes (`dep-<uuid>`): 1-48 of `[a-z0-9-]`, not starting with `-`.
fn is_deployment_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 48
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The `bpr-deployment` label of a listed entry.
fn deployment_of(i: &Instance) -> Option<&str> {
    i.labels
        .iter()
        .find(|(k, _)| k == "bpr-deployment")
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

impl Orchestrator {
    /// List, in every provider this host ever deployed to or is configured
    /// for, what carries its `bpr-host` label, and delete what belongs to no
    /// record, or to a record that says it holds nothing.
    pub async fn sweep_orphans(&self, opts: &DeployOptions) -> SweepReport {
        let mut report = SweepReport::default();
        let tracker = self.tracker.clone();
        let (host_id, providers) = match (tracker.database().host_id(), tracker.providers_used()) {
            (Ok(h), Ok(p)) => (h, p),
            (Err(e), _) => {
                report.errors.push(("sweep".into(), e.to_string()));
                return report;
            }
            (_, Err(e)) => {
                report.errors.push(("sweep".into(), e.to_string()));
                return report;
            }
        };
        // Where it may have deployed: what its records name, and every
        // provider the operator configured (records restored from an older
        // copy may name fewer).
        // "kubernetes" in a record names the operator's clusters, not a
        // provider component: those deployments are recovered by cluster.
        let mut providers: std::collections::BTreeSet<String> = providers
            .into_iter()
            .filter(|p| p != "kubernetes" || self.providers.get(p).is_ok())
            .collect();
        providers.extend(
            self.config
                .providers
                .iter()
                .filter(|(_, c)| c.enabled)
                .map(|(name, _)| name.clone())
                .filter(|name| self.providers.get(name).is_ok()),
        );
        for pname in providers {
            let provider = match self.providers.get(&pname) {
                Ok(p) => p,
                Err(e) => {
                    report.errors.push((pname.clone(), e.to_string()));
                    continue;
                }
            };
            let query = InstanceQuery {
                regions: Vec::new(),
                labels: vec![
                    (HOST_LABEL.to_string(), host_id.clone()),
                    ("bpr-managed".to_string(), "true".to_string()),
                ],
            };
            let listed = match opts
                .retry
                .run(|| provider.list_instances(query.clone()))
                .await
            {
                Ok(v) => v,
                // A provider without instances has nothing to sweep.
                Err(CallError::Unsupported { .. })
                | Err(CallError::Provider(ProviderError::Unsupported(_))) => continue,
                Err(e) => {
                    report
                        .errors
                        .push((pname.clone(), format!("list-instances: {e}")));
                    continue;
                }
            };
            let mut by_deployment: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
            for i in listed {
                if let Some(dep) = deployment_of(&i) {
                    by_deployment.entry(dep.to_string()).or_default().push(i);
                }
            }
            for (dep, entries) in by_deployment {
                // A label value is the provider's word: only a well-formed
                // deployment id names a record (and a lock file).
                if !is_deployment_id(&dep) {
                    report.errors.push((
                        pname.clone(),
                        format!("an entry labelled as this host's names no deployment id: {dep:?}"),
                    ));
                    continue;
                }
                // Whatever a record owns, recovery and terminate take care of.
                match tracker.get(&dep) {
                    Ok(rec) if !rec.status.is_final() || rec.holds_resources() => continue,
                    Ok(_) | Err(TrackError::NotFound(_)) => {}
                    Err(e) => {
                        report.errors.push((dep.clone(), e.to_string()));
                        continue;
                    }
                }
                let _lock = match tracker.try_lock(&dep) {
                    Ok(Some(l)) => l,
                    Ok(None) => {
                        report.busy.push(dep.clone());
                        continue;
                    }
                    Err(e) => {
                        report.errors.push((dep.clone(), e.to_string()));
                        continue;
                    }
                };
                let mut regions: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for i in &entries {
                    let what = regions.entry(i.region.clone()).or_default();
                    if !i.id.is_empty() {
                        what.push(format!("instance {}", i.id));
                    }
                    what.extend(i.resources.iter().map(|r| format!("{} {}", r.kind, r.id)));
                }
                for (region, what) in regions {
                    let labels = entries
                        .iter()
                        .find(|i| i.region == region)
                        .map(|i| i.labels.clone())
                        .unwrap_or_default();
                    let mut result = Ok(());
                    for i in entries
                        .iter()
                        .filter(|i| i.region == region && !i.id.is_empty())
                    {
                        result = self
                            .delete_until_gone(&provider, &instance_ref(i, &labels), opts)
                            .await;
                        if result.is_err() {
                            break;
                        }
                    }
                    if result.is_ok() {
                        result = self
                            .clear_place(&provider, &region, &dep, &labels, opts)
                            .await
                            .map(|_| ());
                    }
                    match result {
                        Ok(()) => report.deleted.push(format!(
                            "{pname}/{region} {dep}: {}",
                            if what.is_empty() {
                                "leftovers".to_string()
                            } else {
                                what.join(", ")
                            }
                        )),
                        Err(e) => report
                            .errors
                            .push((dep.clone(), format!("{pname}/{region}: {e}"))),
                    }
                }
            }
        }
        report
    }
}
