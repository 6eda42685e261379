//! Planning: where a deployment request will be tried, decided by the library.
//!
//! A request either names its candidates (kept as given) or its cluster (a
//! Kubernetes request), or gives requirements; then the pricing service
//! gathers every provider's offers and placement ranks them with the
//! operator's `[operator.deployment]` policy:
//!
//! - `auto-cheapest`: cheapest first;
//! - `preferred`: the preferred providers' candidates first, then the rest;
//! - `local`: only the operator's own capacity: its SSH hosts (offers of
//!   providers with the `workloads` capability) and, for a container workload
//!   when no host fits, the first configured Kubernetes cluster whose tier
//!   fits. Nothing fitting is an error that says why for each.
//!
//! Before anything is recorded, every candidate's provider must be able to
//! resolve its credential: ranked candidates of a provider that cannot are
//! left out (and reported); an explicit candidate that cannot stops the plan,
//! naming the variable or file to set.

use serde::Serialize;

use super::orchestrator::Orchestrator;
use super::request::{DeployRequest, InstanceTarget};
use crate::capabilities::OAuthConfig;
use crate::capabilities::{CredentialConfig, CredentialError};
use crate::config::Config;
use crate::placement::{
    Mode, NoTierFits, PlacementError, Policy, Ranking, Request, Tier, kubernetes_tier,
};
use crate::pricing::{CatalogueStatus, PlanOptions, PricingError};
use crate::tracking::DeploymentType;
use crate::workload::WorkloadSource;

/// How many ranked candidates a deployment tries when the request does not say.
pub const DEFAULT_FAILOVER: usize = 5;

/// Where a request will be tried, and how that was decided.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Plan {
    /// The placement mode it was made under.
    pub mode: Mode,
    /// VM candidates in the order they will be tried (empty for Kubernetes).
    pub candidates: Vec<InstanceTarget>,
    /// The cluster and tier, for a Kubernetes deployment.
    pub kubernetes: Option<KubernetesPlacement>,
    /// Every configured cluster and the tier the request needs on it.
    pub clusters: Vec<ClusterFit>,
    /// The ranking the candidates came from (`None` when they were given).
    #[schema(value_type = Option<Object>)]
    pub ranking: Option<Ranking>,
    /// How each provider's catalogue was obtained (empty when not ranked).
    #[schema(value_type = Vec<Object>)]
    pub catalogues: Vec<CatalogueStatus>,
    /// Every price came from a component's embedded snapshot.
    pub offline: bool,
    /// Offers dropped by the sanity checks of normalisation.
    pub offers_dropped: usize,
    /// Providers left out (credential cannot be resolved, or the workload
    /// cannot run there).
    pub skipped: Vec<SkippedProvider>,
    /// Why there is no place to try, when there is none (see
    /// [`Orchestrator::plan_all`]).
    pub unmet: Option<String>,
}

/// A Kubernetes deployment's target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KubernetesPlacement {
    /// Cluster name (`k8s:<cluster>`).
    pub cluster: String,
    /// Payment tier.
    pub tier: Tier,
}

/// A configured cluster and the tier a request needs there.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ClusterFit {
    /// Cluster name.
    pub cluster: String,
    /// The cheapest tier that gives each replica what is asked, when one does.
    pub tier: Option<Tier>,
    /// Why none does.
    pub reason: Option<String>,
}

/// A provider left out of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SkippedProvider {
    /// Provider name.
    pub provider: String,
    /// Why, naming what to set.
    pub reason: String,
}

/// No plan could be made; nothing was recorded and no provider was called to
/// create anything.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The requirements or the policy cannot be ranked with.
    #[error("invalid placement request: {0}")]
    Placement(#[from] PlacementError),
    /// Prices could not be read: a provider named that lists no offers, or
    /// the price store failing.
    #[error(transparent)]
    Pricing(Box<PricingError>),
    /// Neither candidates, a cluster nor requirements were given.
    #[error(
        "nothing to plan: give requirements (cpu, memory...) for the host to rank offers, candidates, or a Kubernetes cluster"
    )]
    NothingToPlan,
    /// A requested region is offered by no loaded provider.
    #[error(
        "region `{region}` is not offered by any loaded provider; known regions include {known}"
    )]
    UnknownRegion {
        /// The region asked for.
        region: String,
        /// Some regions that are offered.
        known: String,
    },
    /// Offers exist but none meets the request.
    #[error(
        "no offer meets the request ({excluded}); `bpr plan ... --explain` shows each exclusion"
    )]
    NoOfferFits {
        /// The rules that excluded the most offers.
        excluded: String,
    },
    /// `mode = "local"` and neither an SSH host nor a cluster fits.
    #[error("mode = \"local\": none of the operator's own machines or clusters fits: {reasons}")]
    NothingLocalFits {
        /// Why, for the hosts and each cluster.
        reasons: String,
    },
    /// An explicit candidate's provider cannot resolve its credential.
    #[error("provider `{provider}` cannot be used: {source}")]
    CredentialUnavailable {
        /// Provider name.
        provider: String,
        /// What is missing, naming the variable or file.
        #[source]
        source: CredentialError,
    },
    /// Every ranked candidate's provider lacks a credential.
    #[error("no candidate is usable: {}", skipped_text(skipped))]
    NoUsableProvider {
        /// The providers left out and why.
        skipped: Vec<SkippedProvider>,
    },
}

/// Checks that `credential` can be resolved now, without any network call:
/// the variable is set, the file readable.
pub fn check_credential(credential: &CredentialConfig) -> Result<(), CredentialError> {
    match credential {
        CredentialConfig::None => Ok(()),
        CredentialConfig::Bearer { token, .. } => token.read().map(drop),
        CredentialConfig::AwsSigV4 { source, .. } => source.keys().map(drop),
        CredentialConfig::OAuth { source, .. } => match source {
            OAuthConfig::GcpServiceAccount { key_file } => std::fs::metadata(key_file)
                .map(drop)
                .map_err(|e| {
                    CredentialError::Unavailable(format!(
                        "cannot read the service account key {}: {e}; set key_file in the provider's credential",
                        key_file.display()
                    ))
                }),
            OAuthConfig::AzureClientCredentials { client_secret, .. } => {
                client_secret.read().map(drop)
            }
        },
    }
}

/// The clusters of the operator's config and the tier `request` needs on each.
pub fn cluster_fits(config: &Config, request: &Request) -> Vec<ClusterFit> {
    let k8s = &config.operator.kubernetes;
    let tier = kubernetes_tier(request);
    k8s.clusters
        .iter()
        .map(|c| c.name.clone())
        .chain(k8s.managed.iter().map(|m| m.name.clone()))
        .map(|cluster| match &tier {
            Ok(t) => ClusterFit {
                cluster,
                tier: Some(*t),
                reason: None,
            },
            Err(NoTierFits(why)) => ClusterFit {
                cluster,
                tier: None,
                reason: Some(why.clone()),
            },
        })
        .collect()
}

impl Plan {
    fn given(mode: Mode, candidates: Vec<InstanceTarget>) -> Self {
        Self {
            mode,
            candidates,
            kubernetes: None,
            clusters: Vec::new(),
            ranking: None,
            catalogues: Vec::new(),
            offline: false,
            offers_dropped: 0,
            skipped: Vec::new(),
            unmet: None,
        }
    }
}

impl Orchestrator {
    /// Where `req` will be tried (see the module docs). Gathers prices (cached
    /// ones when fresh) for a ranked request; records nothing. A plan with no
    /// place to try is an error saying why.
    pub async fn plan(&self, req: &DeployRequest) -> Result<Plan, super::DeployError> {
        let plan = self.plan_all(req).await?;
        match self.unmet(req, &plan) {
            Some(e) => Err(e.into()),
            None => Ok(plan),
        }
    }

    /// [`Orchestrator::plan`], but a plan with no place to try is returned too
    /// (with `unmet` saying why), for showing what was considered.
    pub async fn plan_all(&self, req: &DeployRequest) -> Result<Plan, super::DeployError> {
        self.plan_all_with(req, false, &|_| {}).await
    }

    /// [`Orchestrator::plan_all`], fetching live prices even when the cache is
    /// fresh when `refresh`, telling `progress` each provider's catalogue as it
    /// arrives.
    pub async fn plan_all_with(
        &self,
        req: &DeployRequest,
        refresh: bool,
        progress: &(dyn Fn(&CatalogueStatus) + Sync),
    ) -> Result<Plan, super::DeployError> {
        let options = PlanOptions {
            refresh,
            ..PlanOptions::default()
        };
        self.plan_all_with_options(req, &options, progress).await
    }

    /// [`Orchestrator::plan_all_with`] with the price options: `explain`
    /// reads and ranks every offer so the ranking explains every exclusion
    /// (otherwise only offers that can be candidates are read). Only the
    /// request's providers are fetched when it names some.
    pub async fn plan_all_with_options(
        &self,
        req: &DeployRequest,
        options: &PlanOptions,
        progress: &(dyn Fn(&CatalogueStatus) + Sync),
    ) -> Result<Plan, super::DeployError> {
        req.validate()?;
        let policy = &self.config.operator.deployment.policy;
        if req.deployment_type == DeploymentType::Kubernetes {
            let k = req.kubernetes.as_ref().ok_or(PlanError::NothingToPlan)?;
            let mut plan = Plan::given(policy.mode, Vec::new());
            plan.kubernetes = Some(KubernetesPlacement {
                cluster: k.cluster.clone(),
                tier: k.tier,
            });
            return Ok(plan);
        }
        if !req.candidates.is_empty() {
            for (i, c) in req.candidates.iter().enumerate() {
                c.validate(i)?;
                let credential = &self.config.provider(&c.provider).credential;
                check_credential(credential).map_err(|source| {
                    PlanError::CredentialUnavailable {
                        provider: c.provider.clone(),
                        source,
                    }
                })?;
            }
            return Ok(Plan::given(policy.mode, req.candidates.clone()));
        }
        let Some(requirements) = &req.requirements else {
            return Err(PlanError::NothingToPlan.into());
        };
        let mut plan = self
            .rank(req, requirements, policy, options, progress)
            .await?;
        plan.unmet = self.unmet(req, &plan).map(|e| e.to_string());
        Ok(plan)
    }

    async fn rank(
        &self,
        req: &DeployRequest,
        requirements: &Request,
        policy: &Policy,
        options: &PlanOptions,
        progress: &(dyn Fn(&CatalogueStatus) + Sync),
    ) -> Result<Plan, PlanError> {
        let depth = req.failover.unwrap_or(DEFAULT_FAILOVER).max(1);
        let mut policy = policy.clone();
        policy.max_candidates = policy.max_candidates.max(depth);
        let mut options = options.clone();
        if options.providers.is_empty() {
            options.providers = requirements.providers.clone();
        }
        // Only what can be a candidate is read from the price store (see
        // `PricingService::plan`), not every offer of every catalogue.
        let priced = self
            .pricing
            .plan(requirements, &policy, &options, progress)
            .await?;
        let (report, ranking) = (priced.report, priced.ranking);
        for region in &requirements.regions {
            if !report.regions.iter().any(|r| r == region) {
                let shown = report
                    .regions
                    .iter()
                    .take(12)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(PlanError::UnknownRegion {
                    region: region.clone(),
                    known: if shown.is_empty() {
                        "none (no provider offered anything)".into()
                    } else {
                        shown
                    },
                });
            }
        }
        let clusters = cluster_fits(&self.config, requirements);
        // An archive is unpacked by cloud-init; the operator's own machines take
        // plain executables (WIT `native-workload`).
        let archive = matches!(
            req.workload.as_ref().map(|w| &w.source),
            Some(WorkloadSource::Archive { .. })
        );

        let mut skipped: Vec<SkippedProvider> = Vec::new();
        let mut candidates = Vec::new();
        for c in &ranking.candidates {
            if candidates.len() >= depth {
                break;
            }
            let provider = &c.offer.provider;
            if skipped.iter().any(|s| &s.provider == provider) {
                continue;
            }
            if c.offer.operator_owned && (archive || req.workload.is_none()) {
                skipped.push(SkippedProvider {
                    provider: provider.clone(),
                    reason: if archive {
                        "the operator's own machines run plain executables, not archives".into()
                    } else {
                        "the operator's own machines run workloads; the request gives none".into()
                    },
                });
                continue;
            }
            if let Err(e) = check_credential(&self.config.provider(provider).credential) {
                skipped.push(SkippedProvider {
                    provider: provider.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
            candidates.push(InstanceTarget {
                provider: provider.clone(),
                region: c.offer.region.clone(),
                zone: c.offer.zone.clone(),
                instance_type: c.offer.instance_type.clone(),
                spot: c.spot,
                hourly_usd: Some(c.hourly_usd),
            });
        }
        let mut plan = Plan {
            mode: policy.mode,
            candidates,
            kubernetes: None,
            clusters,
            offline: report.all_from_snapshots(),
            offers_dropped: report.dropped(),
            catalogues: report.catalogues,
            ranking: Some(ranking),
            skipped,
            unmet: None,
        };
        if plan.candidates.is_empty() && policy.mode == Mode::Local && container_workload(req) {
            // No SSH host fits: the first of the operator's clusters whose tier does.
            if let Some(fit) = plan.clusters.iter().find(|c| c.tier.is_some()) {
                plan.kubernetes = Some(KubernetesPlacement {
                    cluster: fit.cluster.clone(),
                    tier: fit.tier.unwrap_or_default(),
                });
            }
        }
        Ok(plan)
    }

    /// Why `plan` has no place to try, if it has none.
    fn unmet(&self, req: &DeployRequest, plan: &Plan) -> Option<PlanError> {
        if !plan.candidates.is_empty() || plan.kubernetes.is_some() {
            return None;
        }
        let ranking = plan.ranking.as_ref()?;
        if plan.mode == Mode::Local {
            let mut reasons = vec![if plan.skipped.is_empty() {
                "no SSH host ([[ssh.hosts]], probed with `bpr hosts probe`) has the capacity asked for"
                    .to_string()
            } else {
                format!(
                    "the SSH hosts cannot be used ({})",
                    skipped_text(&plan.skipped)
                )
            }];
            if plan.clusters.is_empty() {
                reasons.push("no Kubernetes cluster is configured ([operator.kubernetes])".into());
            } else if !container_workload(req) {
                reasons
                    .push("the configured Kubernetes clusters run container workloads only".into());
            } else {
                for c in &plan.clusters {
                    reasons.push(format!(
                        "cluster {}: {}",
                        c.cluster,
                        c.reason.as_deref().unwrap_or("no tier fits")
                    ));
                }
            }
            return Some(PlanError::NothingLocalFits {
                reasons: reasons.join("; "),
            });
        }
        if !plan.skipped.is_empty() {
            return Some(PlanError::NoUsableProvider {
                skipped: plan.skipped.clone(),
            });
        }
        Some(PlanError::NoOfferFits {
            excluded: if ranking.offers_considered == 0 {
                "no provider offered anything".into()
            } else {
                ranking
                    .excluded_by_rule()
                    .iter()
                    .take(3)
                    .map(|(rule, n)| format!("{n} offer(s) by {rule}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
    }
}

impl From<PricingError> for PlanError {
    fn from(e: PricingError) -> Self {
        match e {
            PricingError::PlacementFailed(e) => PlanError::Placement(e),
            other => PlanError::Pricing(Box::new(other)),
        }
    }
}

/// True for a container workload (clusters run containers only).
fn container_workload(req: &DeployRequest) -> bool {
    matches!(
        req.workload.as_ref().map(|w| &w.source),
        Some(WorkloadSource::Container { .. })
    )
}

fn skipped_text(skipped: &[SkippedProvider]) -> String {
    skipped
        .iter()
        .map(|s| format!("{}: {}", s.provider, s.reason))
        .collect::<Vec<_>>()
        .join("; ")
}
