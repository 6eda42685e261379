//! The router: every area's routes, `/openapi.json`, and the middleware every
//! request goes through, outermost first:
//!
//! 1. request metrics and the access log (route template, status, time);
//! 2. the bearer token ([`super::auth::require_token`]): 401 before anything
//!    else runs, unknown paths included;
//! 3. the body limit (`[serve] max_body_kib`, 413).
//!
//! An unknown path is a JSON 404; a known path with another method a 405.

use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

use super::metrics::{API_DURATION, API_REQUESTS};
use super::{ApiError, AppState, api, auth};

/// The document's fixed parts; paths and schemas come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "bpr serve",
        description = "Blueprint Remote Providers as a service: plan, deploy and track Blueprint services on cloud providers run as sandboxed WebAssembly components. Every request needs `Authorization: Bearer <token>`.",
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "deployments", description = "Plan, deploy, follow and terminate deployments"),
        (name = "services", description = "Blueprint Manager's service events by service key: initiated, terminated, renew, reconcile"),
        (name = "events", description = "Server-sent events of deployment state changes"),
        (name = "clusters", description = "Managed Kubernetes clusters, tracked like deployments"),
        (name = "providers", description = "Provider components"),
        (name = "costs", description = "Accrued spend and the operator's budgets"),
        (name = "operations", description = "Health, readiness, metrics"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

fn parts() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(api::router())
        .split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    (router, doc)
}

/// The OpenAPI description of the API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// The whole service: routes, `/openapi.json`, middleware.
pub fn router(state: AppState) -> Router {
    let (routes, doc) = parts();
    let doc = std::sync::Arc::new(doc);
    let limit = state.settings().max_body_bytes;
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    let path: String = req.uri().path().chars().take(200).collect();
    ApiError::NotFound(format!(
        "no such endpoint: {} {path:?} (see /openapi.json)",
        req.method()
    ))
}

async fn method_not_allowed(req: Request) -> Response {
    let mut r = ApiError::NotFound(format!(
        "{} is not allowed on this endpoint (see /openapi.json)",
        req.method()
    ))
    .into_response();
    *r.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
    r
}

/// The route template as a metric label: `/v1/deployments/:id` (braces in a
/// label value are valid, but trip up some parsers).
fn route_label(template: &str) -> String {
    template.replace('{', ":").replace('}', "")
}

/// Counts and times every request by route template, and logs it.
async fn observe(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| route_label(m.as_str()))
        .unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    let status = resp.status().as_u16();
    let method_label = match method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    ::metrics::counter!(API_REQUESTS, "method" => method_label, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    ::metrics::histogram!(API_DURATION, "method" => method_label, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::debug!(target: "bpr::serve::access", method = method_label, route, status, micros = elapsed.as_micros() as u64, "request");
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_description_lists_every_endpoint_and_the_bearer_scheme() {
        let doc = openapi();
        let paths: Vec<&String> = doc.paths.paths.keys().collect();
        for p in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/v1/plan",
            "/v1/deployments",
            "/v1/deployments/{id}",
            "/v1/deployments/{id}/history",
            "/v1/deployments/{id}/renew",
            "/v1/events",
            "/v1/providers",
            "/v1/services/{blueprint_id}/{service_id}",
            "/v1/services/{blueprint_id}/{service_id}/initiated",
            "/v1/services/{blueprint_id}/{service_id}/terminated",
            "/v1/services/{blueprint_id}/{service_id}/renew",
            "/v1/services/reconcile",
            "/v1/deployments/{id}/logs",
            "/v1/clusters",
            "/v1/clusters/{name}",
        ] {
            assert!(
                paths.iter().any(|x| x.as_str() == p),
                "{p} missing from {paths:?}"
            );
        }
        let json = serde_json::to_value(&doc).unwrap();
        assert!(json["components"]["securitySchemes"]["bearer"].is_object());
        for schema in [
            "DeployRequest",
            "DeploymentRecord",
            "ErrorBody",
            "HubEvent",
            "Plan",
        ] {
            assert!(
                json["components"]["schemas"][schema].is_object(),
                "schema {schema} missing"
            );
        }
    }
}
