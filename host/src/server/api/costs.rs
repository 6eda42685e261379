//! Costs: `GET /v1/costs`, the accrued spend `bpr costs` prints, with the
//! operator's budgets and how far they are used; and the scrape-time
//! collector of the same figures behind `/metrics`.
//!
//! Figures come from the usage ledger (see [`crate::costs`]): to the second,
//! across suspensions, renewals and heal replacements.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::query::ApiQuery;
use crate::Host;
use crate::costs::budget::Spend;
use crate::costs::{CostReport, GroupBy};
use crate::server::error::ErrorBody;
use crate::server::metrics::{Collector, Family, Kind};
use crate::server::{ApiError, AppState};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(costs))
}

/// Grouping and window of `GET /v1/costs`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CostParams {
    /// `deployment` (default), `blueprint`, `provider` or `day` (UTC).
    pub by: Option<GroupBy>,
    /// Only spend from this moment on (unix seconds); everything without.
    pub since: Option<i64>,
}

/// The operator's budgets and what uses them now.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BudgetView {
    /// `[operator.budget] max_cost_per_hour` (USD per hour), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cost_per_hour: Option<f64>,
    /// `[operator.budget] monthly_usd`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
    /// Share of a budget at which a `budget-alert` event is published.
    pub alert_fraction: f64,
    /// Spent this month and committed now.
    pub spend: Spend,
}

/// Accrued spend, grouped, and the budgets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CostsView {
    /// The spend over the window.
    pub report: CostReport,
    /// The budgets.
    pub budget: BudgetView,
}

/// Accrued spend per deployment, Blueprint, provider or UTC day (what
/// `bpr costs --json` prints), and the operator's budgets with what is spent
/// this month and committed now.
#[utoipa::path(get, path = "/v1/costs", tag = "costs", params(CostParams),
    responses((status = 200, body = CostsView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn costs(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<CostParams>,
) -> Result<Json<CostsView>, ApiError> {
    let host = state.host().clone();
    let by = p.by.unwrap_or_default();
    let view = tokio::task::spawn_blocking(move || -> Result<CostsView, ApiError> {
        let report = host.costs(p.since, by)?;
        let b = &host.config().operator.budget;
        Ok(CostsView {
            report,
            budget: BudgetView {
                max_cost_per_hour: b.max_cost_per_hour,
                monthly_usd: b.monthly_usd,
                alert_fraction: b.alert_fraction,
                spend: host.spend()?,
            },
        })
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the cost report task failed: {e}")))??;
    Ok(Json(view))
}

/// Accrued cost and run rate by provider, and how far each budget is used.
#[derive(Debug, Default)]
pub struct CostsCollector;

impl Collector for CostsCollector {
    fn collect(&self, host: &Host, out: &mut Vec<Family>) {
        let report = match host.costs(None, GroupBy::Provider) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(target: "bpr::serve", "metrics: cannot read the usage ledger: {e}");
                return;
            }
        };
        let mut accrued = Family::new(
            "bpr_accrued_cost_usd_total",
            "USD accrued by deployments since they were first recorded, by provider (kubernetes: the tiers' share of the clusters).",
            Kind::Counter,
        );
        let mut rate = Family::new(
            "bpr_cost_per_hour_usd",
            "USD per hour of the resources held now, by provider.",
            Kind::Gauge,
        );
        for l in &report.lines {
            accrued.sample(vec![("provider", l.key.clone())], l.usd);
            rate.sample(vec![("provider", l.key.clone())], l.hourly_usd_now);
        }
        out.push(accrued);
        out.push(rate);
        let b = &host.config().operator.budget;
        if b.max_cost_per_hour.is_none() && b.monthly_usd.is_none() {
            return;
        }
        let Ok(s) = host.spend() else { return };
        let mut used = Family::new(
            "bpr_budget_used_ratio",
            "Share of each operator budget used: hourly (run rate) and monthly (accrued plus committed).",
            Kind::Gauge,
        );
        for (limit, cap, now) in [
            ("hourly", b.max_cost_per_hour, s.hourly_now),
            ("monthly", b.monthly_usd, s.month_projected()),
        ] {
            if let Some(cap) = cap.filter(|c| *c > 0.0) {
                used.sample(vec![("limit", limit.into())], now / cap);
            }
        }
        out.push(used);
    }
}
