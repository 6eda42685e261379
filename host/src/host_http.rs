//! The host's own outbound HTTP: health checks of new deployments, cleanup
//! webhooks and OAuth token requests, through one pooled client (OS trust
//! store, HTTP/1.1, a deadline on every request, a cap on every answer).
//!
//! Provider components never use it: their requests go through the sandbox's
//! policy hook (`capabilities::outbound`). Who may be called here is decided
//! by the caller: a health check goes to the instance the host created, a
//! webhook only to the operator's allowlist (`[operator.webhooks]`), a token
//! request to the identity's configured endpoint.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Largest answer body read by default: health checks and webhooks only need the
/// status, token answers are small.
pub const DEFAULT_MAX_ANSWER: usize = 64 << 10;

/// A request of the host's own could not be made or answered.
#[derive(Debug, thiserror::Error)]
pub enum HostHttpError {
    /// The URL is not an absolute `http` or `https` URL.
    #[error("{url} is not an http(s) URL")]
    BadUrl {
        /// The URL.
        url: String,
    },
    /// The OS trust store could not be loaded.
    #[error("no TLS trust store: {0}")]
    NoTrustStore(#[source] Arc<std::io::Error>),
    /// Connecting or exchanging the request failed.
    #[error("{url}: {}", chain(source))]
    Failed {
        /// The URL.
        url: String,
        /// What the client reported.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// No complete answer before the deadline.
    #[error("{url}: no answer within {ms} ms")]
    TimedOut {
        /// The URL.
        url: String,
        /// The deadline.
        ms: u128,
    },
    /// The answer body was larger than allowed, or broke off.
    #[error("{url}: reading the answer failed: {source}")]
    Body {
        /// The URL.
        url: String,
        /// What went wrong (size limit, connection lost).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `e` and its causes, `: `-separated (the client's own text is terse).
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body (at most the cap asked for).
    pub body: Bytes,
}

impl Answer {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn client() -> Result<&'static HttpsClient, HostHttpError> {
    // The error is shared: the client is built once, every caller sees the same outcome.
    static CLIENT: OnceLock<Result<HttpsClient, Arc<std::io::Error>>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(Arc::new)?
                .https_or_http()
                .enable_http1()
                .build();
            Ok(Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https))
        })
        .as_ref()
        .map_err(|e| HostHttpError::NoTrustStore(Arc::clone(e)))
}

/// Sends one request and reads the answer (at most `max_answer` bytes), all
/// within `timeout`.
pub async fn send(
    request: http::Request<Full<Bytes>>,
    timeout: Duration,
    max_answer: usize,
) -> Result<Answer, HostHttpError> {
    let url = request.uri().to_string();
    let client = client()?;
    let exchange = async {
        let resp = client
            .request(request)
            .await
            .map_err(|source| HostHttpError::Failed {
                url: url.clone(),
                source,
            })?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), max_answer)
            .collect()
            .await
            .map_err(|source| HostHttpError::Body {
                url: url.clone(),
                source,
            })?
            .to_bytes();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HostHttpError::TimedOut {
            url: url.clone(),
            ms: timeout.as_millis(),
        })?
}

fn parse(url: &str) -> Result<http::Uri, HostHttpError> {
    let bad = || HostHttpError::BadUrl {
        url: url.to_string(),
    };
    let uri: http::Uri = url.parse().map_err(|_| bad())?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some() => Ok(uri),
        _ => Err(bad()),
    }
}

/// `GET url`; the body is discarded past [`DEFAULT_MAX_ANSWER`].
pub async fn get(url: &str, timeout: Duration) -> Result<Answer, HostHttpError> {
    let request = http::Request::get(parse(url)?)
        .body(Full::new(Bytes::new()))
        .map_err(|_| HostHttpError::BadUrl {
            url: url.to_string(),
        })?;
    send(request, timeout, DEFAULT_MAX_ANSWER).await
}

/// `POST url` with a JSON body.
pub async fn post_json(
    url: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<Answer, HostHttpError> {
    post(url, "application/json", body, timeout, DEFAULT_MAX_ANSWER).await
}

/// `POST url` with a body of `content_type`, reading at most `max_answer`
/// bytes of the answer.
pub async fn post(
    url: &str,
    content_type: &str,
    body: Vec<u8>,
    timeout: Duration,
    max_answer: usize,
) -> Result<Answer, HostHttpError> {
    let request = http::Request::post(parse(url)?)
        .header("content-type", content_type)
        .header("accept", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| HostHttpError::BadUrl {
            url: url.to_string(),
        })?;
    send(request, timeout, max_answer).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_url_that_is_not_http_is_refused_before_any_connection() {
        for url in ["file:///etc/passwd", "ftp://x/y", "not a url", "http://"] {
            let e = get(url, Duration::from_secs(1)).await.unwrap_err();
            assert!(matches!(e, HostHttpError::BadUrl { .. }), "{url}: {e}");
        }
    }

    #[tokio::test]
    async fn a_closed_port_is_one_sentence_naming_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let url = format!("http://127.0.0.1:{port}/health");
        let e = get(&url, Duration::from_secs(5)).await.unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with(&url), "{text}");
        assert!(!text.contains("Error {"), "no Debug text: {text}");
    }
}
