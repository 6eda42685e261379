//! [`ApiError`]: every way a request fails, its HTTP status, and the JSON body
//! a client reads (`{"error": {"status", "code", "message", "field"}}`).
//!
//! Handlers return `Result<_, ApiError>`; library errors convert with `From`.
//! An internal failure is logged once here with its cause and answered with a
//! sentence that does not leak the host's internals.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::provisioning::DeployError;
use crate::tracking::TrackError;

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No token, a wrong one, or a malformed `Authorization` header (401).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    /// The body is not JSON of the expected shape (400); `field` is the path
    /// of the offending value when there is one.
    #[error("{message}")]
    BadBody {
        /// Path of the value (`workload.source.image`), when known.
        field: Option<String>,
        /// What the parser said.
        message: String,
    },
    /// The body is not `application/json` (415).
    #[error("the request body must be JSON (Content-Type: application/json)")]
    NotJson,
    /// The body is larger than `[serve] max_body_kib` (413).
    #[error("the request body is larger than the {limit_kib} KiB this service accepts")]
    BodyTooLarge {
        /// The limit.
        limit_kib: usize,
    },
    /// A well-formed value that cannot be used (422).
    #[error("{field}: {message}")]
    InvalidField {
        /// Path of the value.
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// No place to deploy could be planned (422).
    #[error("{0}")]
    Unplaceable(String),
    /// The operator's budget does not allow it; nothing was recorded (422).
    #[error("{0}")]
    OverBudget(String),
    /// Nothing has this id (404).
    #[error("{0}")]
    NotFound(String),
    /// It conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Too much work in flight (429).
    #[error(
        "{in_flight} deployments and terminations are in flight, the most this service runs at once; retry later"
    )]
    TooBusy {
        /// The limit reached.
        in_flight: usize,
    },
    /// The service is shutting down and takes no new work (503).
    #[error("the service is shutting down and takes no new work; retry on the next instance")]
    ShuttingDown,
    /// Something the request needs is not available now (503).
    #[error("{0}")]
    Unavailable(String),
    /// A provider or cluster failed while serving the request (502).
    #[error("{0}")]
    Upstream(String),
    /// A failure of the service itself (500); the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The JSON body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What failed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    pub status: u16,
    /// A stable machine-readable code (`unauthorized`, `invalid-field`,
    /// `not-found`...).
    pub code: String,
    /// A sentence saying what is wrong and what to do.
    pub message: String,
    /// The request field at fault (`ttl_secs`, `workload.source.image`), when
    /// one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::BadBody { .. } => StatusCode::BAD_REQUEST,
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::InvalidField { .. } | Self::Unplaceable(_) | Self::OverBudget(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooBusy { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::ShuttingDown | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::BadBody { .. } => "bad-body",
            Self::NotJson => "not-json",
            Self::BodyTooLarge { .. } => "body-too-large",
            Self::InvalidField { .. } => "invalid-field",
            Self::Unplaceable(_) => "no-placement",
            Self::OverBudget(_) => "over-budget",
            Self::NotFound(_) => "not-found",
            Self::Conflict(_) => "conflict",
            Self::TooBusy { .. } => "too-busy",
            Self::ShuttingDown => "shutting-down",
            Self::Unavailable(_) => "unavailable",
            Self::Upstream(_) => "upstream-failed",
            Self::Internal(_) => "internal",
        }
    }

    /// The body sent.
    pub fn body(&self) -> ErrorBody {
        let (message, field) = match self {
            Self::Internal(_) => (
                "the service failed to handle this request; its log says why".to_string(),
                None,
            ),
            Self::InvalidField { field, message } => (message.clone(), Some(field.clone())),
            Self::BadBody { field, .. } => (self.to_string(), field.clone()),
            other => (other.to_string(), None),
        };
        ErrorBody {
            error: ErrorDetail {
                status: self.status().as_u16(),
                code: self.code().to_string(),
                message,
                field,
            },
        }
    }

    /// A value `field` that cannot be used.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            tracing::error!(target: "bpr::serve", "internal error: {cause}");
        }
        let mut resp = (self.status(), Json(self.body())).into_response();
        let headers = resp.headers_mut();
        match self {
            Self::Unauthorized(_) => {
                headers.insert(
                    http::header::WWW_AUTHENTICATE,
                    http::HeaderValue::from_static("Bearer"),
                );
            }
            Self::TooBusy { .. } | Self::ShuttingDown => {
                headers.insert(
                    http::header::RETRY_AFTER,
                    http::HeaderValue::from_static("5"),
                );
            }
            _ => {}
        }
        resp
    }
}

impl From<TrackError> for ApiError {
    fn from(e: TrackError) -> Self {
        match e {
            TrackError::NotFound(id) => Self::NotFound(format!("no deployment {id:?}")),
            TrackError::AlreadyExists(_) | TrackError::ServiceKeyTaken { .. } => {
                Self::Conflict(e.to_string())
            }
            TrackError::TransitionNotAllowed { .. } => Self::Conflict(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::InvalidRequest(r) => Self::InvalidField {
                field: r.field,
                message: r.message,
            },
            DeployError::Plan(p) => Self::Unplaceable(p.to_string()),
            DeployError::BudgetExceeded(_) => Self::OverBudget(e.to_string()),
            DeployError::NoCandidates => {
                Self::field("candidates", DeployError::NoCandidates.to_string())
            }
            DeployError::Busy(_) | DeployError::NotKubernetes(_) => Self::Conflict(e.to_string()),
            DeployError::Track(t) => t.into(),
            other => Self::Upstream(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_field_is_a_422_naming_the_field() {
        let e = ApiError::field("ttl_secs", "must be at least 1");
        let b = e.body();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(b.error.field.as_deref(), Some("ttl_secs"));
        assert_eq!(b.error.code, "invalid-field");
    }

    #[test]
    fn an_internal_error_does_not_send_its_cause() {
        let e = ApiError::Internal("disk I/O error at /var/lib/bpr/state/bpr.sqlite3".into());
        assert!(!e.body().error.message.contains("/var/lib"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_budget_refusal_is_a_422_saying_which_limit() {
        let e: ApiError = DeployError::BudgetExceeded(crate::costs::budget::BudgetRefusal {
            limit: crate::costs::budget::Limit::Hourly,
            limit_usd: 0.05,
            used_usd: 0.04,
            adds_usd: 0.0208,
            placement: "aws/us-east-1/t3.small".into(),
        })
        .into();
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let b = e.body();
        assert_eq!(b.error.code, "over-budget");
        assert!(
            b.error.message.contains("max_cost_per_hour"),
            "{}",
            b.error.message
        );
    }

    #[test]
    fn an_unknown_deployment_is_a_404() {
        let e: ApiError = TrackError::NotFound("dep-x".into()).into();
        assert_eq!(e.status(), StatusCode::NOT_FOUND);
    }
}
