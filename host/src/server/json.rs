//! [`ApiJson`]: the JSON body extractor every handler uses. The body is
//! bounded by `[serve] max_body_kib` (the router's limit layer); a body that is
//! not JSON of the expected shape is a 400 naming the path of the bad value
//! (`workload.source.image: invalid type...`), never axum's generic text.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::state::AppState;

/// A JSON request body of type `T`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::NotJson);
        }
        let limit_kib = state.settings().max_body_bytes >> 10;
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::BodyTooLarge { limit_kib }
            } else {
                ApiError::BadBody {
                    field: None,
                    message: format!("cannot read the request body: {}", e.body_text()),
                }
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses `bytes` as a `T`, naming the path of the first bad value.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::BadBody {
            field: (path != ".").then(|| path.clone()),
            message: if path == "." {
                format!("invalid JSON body: {}", e.inner())
            } else {
                format!("invalid JSON body at {path}: {}", e.inner())
            },
        }
    })?;
    de.end().map_err(|e| ApiError::BadBody {
        field: None,
        message: format!("invalid JSON body: {e}"),
    })?;
    Ok(value)
}

fn is_json(headers: &http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 5
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json")
            && essence.to_ascii_lowercase().starts_with("application/"))
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::DeployRequest;

    #[test]
    fn a_wrong_type_deep_in_the_body_names_its_path() {
        let e = parse::<DeployRequest>(
            br#"{"blueprint_id":"1","service_id":"2","health":{"port":"eighty"}}"#,
        )
        .unwrap_err();
        match e {
            ApiError::BadBody { field, message } => {
                assert_eq!(field.as_deref(), Some("health.port"));
                assert!(message.contains("health.port"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_unknown_key_and_trailing_bytes_are_refused() {
        let e = parse::<DeployRequest>(br#"{"blueprint_id":"1","service_id":"2","regoin":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("regoin"), "{e}");
        assert!(parse::<DeployRequest>(br#"{"blueprint_id":"1","service_id":"2"} x"#).is_err());
    }

    #[test]
    fn only_json_content_types_are_json() {
        let h = |v: &str| {
            let mut m = http::HeaderMap::new();
            m.insert(http::header::CONTENT_TYPE, v.parse().unwrap());
            m
        };
        assert!(is_json(&h("application/json")));
        assert!(is_json(&h("application/json; charset=utf-8")));
        assert!(is_json(&h("application/merge-patch+json")));
        assert!(!is_json(&h("text/plain")));
        assert!(!is_json(&http::HeaderMap::new()));
    }
}
