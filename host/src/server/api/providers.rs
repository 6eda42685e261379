//! `GET /v1/providers`: each provider component, whether it serves, and why
//! not.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::providers::{ProviderState, ProviderStatus};
use crate::runtime::bindings::wit::Capability;
use crate::server::AppState;

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_providers))
}

/// One provider component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderView {
    /// Provider name (the `.wasm` file stem).
    pub name: String,
    /// `loaded`, `serving-previous` (its newest file was refused) or `refused`.
    pub state: String,
    /// Why the newest file was refused, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_because: Option<String>,
    /// The serving version's own version string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// sha256 of the serving file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What it can do (`offers`, `instances`, `managed-kubernetes`...).
    pub capabilities: Vec<String>,
    /// Hosts it may call (`[providers.<name>] allow`).
    pub allowed_hosts: Vec<String>,
    /// When the serving version was loaded (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loaded_at: Option<i64>,
    /// When its stored price catalogue was fetched (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prices_fetched_at: Option<u64>,
}

/// Provider statuses.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProviderList {
    /// By name.
    pub providers: Vec<ProviderView>,
}

fn capability_name(c: &Capability) -> &'static str {
    match c {
        Capability::Offers => "offers",
        Capability::Instances => "instances",
        Capability::Spot => "spot",
        Capability::ManagedKubernetes => "managed-kubernetes",
        Capability::Gpus => "gpus",
        Capability::ConfidentialCompute => "confidential-compute",
        Capability::Workloads => "workloads",
    }
}

/// The view of one status.
pub fn view(s: &ProviderStatus, prices_fetched_at: Option<u64>) -> ProviderView {
    let (state, refused_because) = match &s.state {
        ProviderState::Loaded => ("loaded", None),
        ProviderState::ServingPrevious(r) => ("serving-previous", Some(r.clone())),
        ProviderState::Refused(r) => ("refused", Some(r.clone())),
    };
    let current = s.current.as_ref();
    ProviderView {
        name: s.name.clone(),
        state: state.into(),
        refused_because,
        version: current.map(|p| p.info.version.clone()),
        sha256: current.map(|p| p.sha256.clone()),
        capabilities: current
            .map(|p| {
                p.info
                    .capabilities
                    .iter()
                    .map(capability_name)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        allowed_hosts: current
            .map(|p| {
                p.config
                    .allow
                    .iter()
                    .map(|r| r.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default(),
        loaded_at: current.and_then(|p| {
            p.loaded_at
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| d.as_secs() as i64)
        }),
        prices_fetched_at,
    }
}

/// Every provider component seen in the providers directory: loaded, serving
/// an older version because the newest file was refused, or refused.
#[utoipa::path(get, path = "/v1/providers", tag = "providers",
    responses((status = 200, body = ProviderList), (status = 401, body = crate::server::error::ErrorBody)))]
pub async fn list_providers(State(state): State<AppState>) -> Json<ProviderList> {
    let host = state.host();
    let providers = host
        .statuses()
        .iter()
        .map(|s| view(s, host.pricing().catalogue_fetched_at(&s.name)))
        .collect();
    Json(ProviderList { providers })
}
