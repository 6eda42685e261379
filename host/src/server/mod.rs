//! `bpr serve`: the host as a long-running service with an HTTP+JSON API.
//!
//! [`serve`] starts everything a long-lived host runs — the providers
//! directory watched and hot-reloaded, the supervisor (TTL, recovery, health,
//! cleanup), the background price refresher — and serves the API until
//! SIGTERM or SIGINT, then stops as described in `shutdown.rs`.
//!
//! # The rooms
//!
//! - `state.rs`: [`AppState`], what every handler reaches (the [`crate::Host`],
//!   the work in flight, the event hub, the metrics);
//! - `auth.rs`: the bearer token file and the middleware that checks it on
//!   every request;
//! - `error.rs`: [`ApiError`], one enum whose cases map to HTTP statuses and a
//!   JSON body naming the field at fault;
//! - `json.rs`: the JSON body extractor (bounded, path of the bad field in the
//!   message);
//! - `api/`: the handlers, one file per area, each with its `#[utoipa::path]`;
//! - `events.rs`: the event hub behind the server-sent event stream;
//! - `metrics.rs`: the Prometheus registry behind `/metrics` and the
//!   `Collector`s read at scrape time;
//! - `work.rs`: deployments and terminations running in the background, and how
//!   they are stopped between two provider calls;
//! - `router.rs`: routes, OpenAPI and the middleware stack, put together;
//! - `shutdown.rs`: the signal handling and the drain.
//!
//! # Adding an endpoint
//!
//! Write the handler in the area's file under `api/` with a
//! `#[utoipa::path(...)]` attribute (its responses listing [`ApiError`] for the
//! 4xx/5xx it returns), and add it to that area's `router()` with
//! `routes!(handler)`. The OpenAPI description at `/openapi.json` then lists it,
//! and the auth, body limit, drain and request metrics apply to it. Request and
//! response types derive `utoipa::ToSchema`. A value read at scrape time
//! (a gauge of the database, say) is a `metrics::Collector` registered in
//! [`AppState::new`]; an event counted where it happens uses the [`::metrics`]
//! macros directly.

mod api;
mod auth;
mod error;
mod events;
mod json;
mod metrics;
mod router;
mod run;
mod shutdown;
mod state;
mod work;

pub use auth::{ApiToken, TokenError};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use router::{openapi, router};
pub use run::{ServeError, serve};
pub use state::AppState;
