//! `GET /v1/events`: server-sent events of deployment state changes.
//!
//! Each event is one `event:` (its kind: `accepted`, `provisioning`,
//! `running`, `unhealthy`, `expired`, `terminated`, `failed`, `rejected`), one
//! `id:` (its number in the stream) and one `data:` line of JSON
//! ([`HubEvent`]). A client that reconnects with `Last-Event-ID` gets the
//! events it missed, or a `lagged` event saying how many are gone. Filters:
//! `deployment`, `blueprint_id`, `service_id`. The stream ends when the
//! service shuts down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::query::ApiQuery;
use crate::server::events::{HubEvent, Numbered};
use crate::server::{ApiError, AppState};

/// The routes of this area.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Which events a subscriber wants (all given must match).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only this deployment.
    pub deployment: Option<String>,
    /// Only this Blueprint.
    pub blueprint_id: Option<String>,
    /// Only this service.
    pub service_id: Option<String>,
}

impl EventFilter {
    fn matches(&self, e: &HubEvent) -> bool {
        let (d, b, s) = e.subject();
        self.deployment.as_deref().is_none_or(|x| x == d)
            && self.blueprint_id.as_deref().is_none_or(|x| x == b)
            && self.service_id.as_deref().is_none_or(|x| x == s)
    }
}

fn sse(e: &Numbered) -> Event {
    Event::default()
        .event(e.event.name())
        .id(e.seq.to_string())
        .json_data(&e.event)
        .unwrap_or_else(|_| Event::default().comment("unserializable event"))
}

fn lagged(missed: u64) -> Event {
    Event::default()
        .event("lagged")
        .data(format!("{{\"missed\":{missed}}}"))
}

/// The event stream (`text/event-stream`). At most `[serve]
/// max_event_streams` at once (503 past it).
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventFilter,
        ("Last-Event-ID" = Option<u64>, Header, description = "The id of the last event received: the stream resumes after it.")),
    responses(
        (status = 200, description = "Server-sent events; each data line is a HubEvent", content_type = "text/event-stream", body = HubEvent),
        (status = 401, body = crate::server::error::ErrorBody),
        (status = 503, body = crate::server::error::ErrorBody, description = "Too many subscribers, or shutting down")))]
pub async fn events(
    State(state): State<AppState>,
    ApiQuery(filter): ApiQuery<EventFilter>,
    headers: http::HeaderMap,
) -> Result<Response, ApiError> {
    if state.draining() {
        return Err(ApiError::ShuttingDown);
    }
    let last_seen = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::field(
                        "Last-Event-ID",
                        "must be the number of an event (its id: line)",
                    )
                })?,
        ),
    };
    let permit = state.stream_permits().clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable(format!(
            "{} event streams are open, the most this service serves ([serve] max_event_streams)",
            state.settings().max_event_streams
        ))
    })?;
    let sub = state.events().subscribe(last_seen);
    let stop = state.work().stop_token();
    let stream = stream(sub, filter, permit);
    let stream = futures::StreamExt::take_until(stream, async move { stop.cancelled().await });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn stream(
    sub: crate::server::events::Subscription,
    filter: EventFilter,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream(sub, filter, permit)
}

/// The backlog, then live events, filtered; a gap becomes a `lagged` event.
fn async_stream(
    sub: crate::server::events::Subscription,
    filter: EventFilter,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct St {
        backlog: std::vec::IntoIter<Arc<Numbered>>,
        missed: u64,
        live: tokio::sync::broadcast::Receiver<Arc<Numbered>>,
        last: u64,
        filter: EventFilter,
        _permit: tokio::sync::OwnedSemaphorePermit,
    }
    let st = St {
        last: sub.backlog.last().map(|e| e.seq).unwrap_or(0),
        backlog: sub.backlog.into_iter(),
        missed: sub.missed,
        live: sub.live,
        filter,
        _permit: permit,
    };
    futures::stream::unfold(st, |mut st| async move {
        if st.missed > 0 {
            let n = std::mem::take(&mut st.missed);
            return Some((Ok(lagged(n)), st));
        }
        for e in st.backlog.by_ref() {
            if st.filter.matches(&e.event) {
                return Some((Ok(sse(&e)), st));
            }
        }
        loop {
            match st.live.recv().await {
                // Already sent from the backlog.
                Ok(e) if e.seq <= st.last => continue,
                Ok(e) => {
                    st.last = e.seq;
                    if st.filter.matches(&e.event) {
                        return Some((Ok(sse(&e)), st));
                    }
                }
                Err(RecvError::Lagged(n)) => return Some((Ok(lagged(n)), st)),
                Err(RecvError::Closed) => return None,
            }
        }
    })
}
