//! `GET /v1/deployments/{id}/logs`: what a deployment's workload printed, as
//! newline-delimited JSON ([`LogLine`] per line), read through
//! [`crate::logs`]. With `follow=true` the response stays open and lines come
//! as the workload prints them, until the client goes, the deployment ends or
//! the service shuts down; such streams count against `[serve]
//! max_event_streams` with the event streams. A failure after the response
//! started is one last line `{"error": "..."}`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::check_id;
use super::query::ApiQuery;
use crate::logs::{DEFAULT_TAIL, LogError, LogLine, LogOptions, Logs};
use crate::server::error::ErrorBody;
use crate::server::{ApiError, AppState};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(logs))
}

/// What to read.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogParams {
    /// The last this many lines of each pod or source, 1-5000. Default 100.
    pub tail: Option<u32>,
    /// Keep the response open and send lines as they are printed.
    pub follow: Option<bool>,
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::Track(t) => t.into(),
            LogError::NotAvailable { .. } | LogError::NoWorkload { .. } => {
                Self::Conflict(e.to_string())
            }
            LogError::InvalidOption { field, message } => Self::field(field, message),
            LogError::NoSshHost { .. } | LogError::Corrupt { .. } => {
                Self::Unavailable(e.to_string())
            }
            LogError::Cluster { .. }
            | LogError::Kube { .. }
            | LogError::Ssh { .. }
            | LogError::Remote { .. } => Self::Upstream(e.to_string()),
        }
    }
}

/// A deployment's logs: pods of a Kubernetes deployment, the container or
/// unit on an SSH host. A VM or a managed cluster is a 409 saying what is
/// available instead.
#[utoipa::path(get, path = "/v1/deployments/{id}/logs", tag = "deployments",
    params(("id" = String, Path, description = "Deployment id"), LogParams),
    responses(
        (status = 200, description = "One JSON LogLine per line", content_type = "application/x-ndjson", body = LogLine),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A VM or a cluster (the message says what is available), or a deployment with no running workload"),
        (status = 422, body = ErrorBody), (status = 502, body = ErrorBody, description = "The cluster or SSH host failed"),
        (status = 503, body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<LogParams>,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    let follow = p.follow.unwrap_or(false);
    let permit = if follow {
        if state.draining() {
            return Err(ApiError::ShuttingDown);
        }
        Some(state.stream_permits().clone().try_acquire_owned().map_err(|_| {
            ApiError::Unavailable(format!(
                "{} streams are open, the most this service serves ([serve] max_event_streams)",
                state.settings().max_event_streams
            ))
        })?)
    } else {
        None
    };
    let opts = LogOptions {
        tail: p.tail.unwrap_or(DEFAULT_TAIL),
        follow,
        ..LogOptions::default()
    };
    let logs = state.host().logs(&id, &opts).await?;
    let stop = state.work().stop_token();
    let stream = futures::stream::unfold((logs, permit), |(mut logs, permit)| async move {
        let item = logs.next().await?;
        Some((
            Ok::<_, std::convert::Infallible>(ndjson(item)),
            (logs, permit),
        ))
    });
    let stream = futures::StreamExt::take_until(stream, async move { stop.cancelled().await });
    Ok((
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

fn ndjson(item: Result<LogLine, LogError>) -> Bytes {
    let mut v = match item {
        Ok(l) => serde_json::to_vec(&l),
        Err(e) => serde_json::to_vec(&serde_json::json!({ "error": e.to_string() })),
    }
    .unwrap_or_else(|_| b"{\"error\":\"unserializable line\"}".to_vec());
    v.push(b'\n');
    Bytes::from(v)
}

// `Logs` is moved into the response stream; keep it `Send`.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<Logs>();
};
