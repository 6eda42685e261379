//! The one choke point for a provider's outbound HTTP: the
//! `WasiHttpHooks::send_request` implementation.
//!
//! Order, for every request: read the body fully (bounded; also when the
//! request is then denied, so guests see the policy's answer rather than a
//! reset), check scheme/host/port against the allowlist, resolve and check the
//! addresses, strip the host-only headers, apply the credential, send through
//! the shared client, read the response body fully (bounded), audit.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderName;
use http_body_util::{BodyExt, Full, Limited};
use wasmtime_wasi_http::{ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks};

use super::credentials::{AWS_SCOPE_HEADER, CredentialConfig, CredentialError};
use super::http_client::SharedHttpClient;
use super::http_policy::{Denied, HttpPolicy, Target};

type HttpError = wasmtime_wasi_http::Error;

/// Everything the hook needs for one provider; shared by all its calls.
#[derive(Debug)]
pub struct OutboundContext {
    /// Provider name, for audit records.
    pub provider: String,
    /// The operator's allowlist.
    pub policy: HttpPolicy,
    /// The credential applied to allowed requests.
    pub credential: CredentialConfig,
    /// The shared pooled client.
    pub client: SharedHttpClient,
    /// Cap on a request body.
    pub max_request_body: usize,
    /// Cap on a response body.
    pub max_response_body: usize,
    /// Mints and caches the provider's OAuth tokens (OAuth credentials only).
    pub oauth: Option<Arc<super::oauth::OAuthSource>>,
}

/// The `WasiHttpHooks` of one store.
pub struct OutboundHttp {
    ctx: Arc<OutboundContext>,
}

impl OutboundHttp {
    /// Hooks for a store of this provider.
    pub fn new(ctx: Arc<OutboundContext>) -> Self {
        Self { ctx }
    }
}

/// Headers a guest may not set: the defaults of wasi-http plus credentials.
fn forbidden(name: &HeaderName) -> bool {
    wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)
        || name == http::header::AUTHORIZATION
        || name == http::header::PROXY_AUTHORIZATION
        || name.as_str() == "x-amz-security-token"
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
)>;

impl WasiHttpHooks for OutboundHttp {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(forbidden)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let ctx = self.ctx.clone();
        Box::new(async move {
            let started = Instant::now();
            let method = request.method().clone();
            let uri = request.uri().clone();
            let result = ctx.send(request, options).await;
            let (status, outcome) = match &result {
                Ok((resp, _)) => (Some(resp.status().as_u16()), "sent"),
                Err(HttpError::HttpRequestDenied) => (None, "denied"),
                Err(_) => (None, "failed"),
            };
            tracing::info!(
                target: "bpr::audit::http",
                provider = %ctx.provider,
                method = %method,
                host = uri.host().unwrap_or(""),
                path = uri.path(),
                status = status.unwrap_or(0),
                outcome,
                duration_ms = started.elapsed().as_millis() as u64,
                "outbound request"
            );
            crate::telemetry::outbound_request(&ctx.provider, status, outcome);
            result.map(|(resp, _body_len)| {
                let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                    Box::new(async { Ok(()) });
                (resp, io)
            })
        })
    }
}

impl OutboundContext {
    async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, usize), HttpError> {
        let cfg = self.client.config();
        let total = cfg.total_timeout;
        match tokio::time::timeout(total, self.send_inner(request, options)).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::HttpResponseTimeout),
        }
    }

    async fn send_inner(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, usize), HttpError> {
        let (mut parts, body) = request.into_parts();
        // Read the whole body first, also for a request about to be denied.
        let body = match Limited::new(body, self.max_request_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return Err(HttpError::HttpRequestBodySize(Some(
                    self.max_request_body as u64,
                )));
            }
        };

        let target = Target::of(&parts.uri).map_err(|e| self.deny(e))?;
        self.policy
            .check_target(&target)
            .map_err(|e| self.deny(e))?;
        let addrs = self.resolve(&target).await?;
        self.policy
            .check_addresses(&target, &addrs)
            .map_err(|e| self.deny(e))?;
        if target.host.parse::<IpAddr>().is_err() {
            self.client.vetted().insert(&target.host, addrs);
        }

        let scope = parts
            .headers
            .remove(AWS_SCOPE_HEADER)
            .and_then(|v| v.to_str().ok().map(str::to_string));
        let token = match (self.credential.oauth_for(&target), &self.oauth) {
            (Some(identity), Some(source)) => {
                Some(source.token(identity.default_scope()).await.map_err(|e| {
                    tracing::warn!(provider = %self.provider, "{e}");
                    HttpError::InternalError(Some(e.to_string()))
                })?)
            }
            _ => None,
        };
        let mut req = http::Request::from_parts(parts, body);
        self.credential
            .apply(&mut req, &target, scope, token.as_deref())
            .map_err(|e| match e {
                // A signature the credential does not give is a policy refusal.
                CredentialError::SigningRefused(why) => {
                    tracing::warn!(target: "bpr::audit::http", provider = %self.provider, "request denied: {why}");
                    HttpError::HttpRequestDenied
                }
                e => {
                    tracing::warn!(provider = %self.provider, "{e}");
                    HttpError::InternalError(Some(e.to_string()))
                }
            })?;
        let req = req.map(Full::new);

        let mut first_byte = self.client.config().first_byte_timeout;
        if let Some(o) = options.and_then(|o| o.first_byte_timeout) {
            first_byte = first_byte.min(o);
        }
        let resp = match tokio::time::timeout(first_byte, self.client.send(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(client_error(&e)),
            Err(_) => return Err(HttpError::ConnectionReadTimeout),
        };
        let (head, body) = resp.into_parts();
        let bytes = match Limited::new(body, self.max_response_body).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(HttpError::HttpResponseBodySize(Some(
                    self.max_response_body as u64,
                )));
            }
            Err(_) => return Err(HttpError::HttpResponseIncomplete),
        };
        let len = bytes.len();
        let body: WasiBody = Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync();
        Ok((http::Response::from_parts(head, body), len))
    }

    async fn resolve(&self, t: &Target) -> Result<Vec<IpAddr>, HttpError> {
        if let Ok(ip) = t.host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let lookup = tokio::net::lookup_host((t.host.as_str(), t.port));
        match tokio::time::timeout(Duration::from_secs(10), lookup).await {
            Ok(Ok(addrs)) => {
                let addrs: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                if addrs.is_empty() {
                    Err(HttpError::DestinationNotFound)
                } else {
                    Ok(addrs)
                }
            }
            Ok(Err(e)) => Err(HttpError::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            }),
            Err(_) => Err(HttpError::DnsTimeout),
        }
    }

    fn deny(&self, why: Denied) -> HttpError {
        tracing::warn!(target: "bpr::audit::http", provider = %self.provider, "request denied: {why}");
        HttpError::HttpRequestDenied
    }
}

/// Map a client error onto the wasi-http error the guest sees.
fn client_error(e: &hyper_util::client::legacy::Error) -> HttpError {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::TimedOut => HttpError::ConnectionTimeout,
                std::io::ErrorKind::ConnectionRefused => HttpError::ConnectionRefused,
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                    HttpError::ConnectionTerminated
                }
                _ if io.get_ref().is_some_and(|i| i.is::<rustls::Error>()) => {
                    HttpError::TlsProtocolError
                }
                _ => HttpError::InternalError(Some(io.to_string())),
            };
        }
        source = s.source();
    }
    if e.is_connect() {
        HttpError::ConnectionRefused
    } else {
        HttpError::HttpProtocolError
    }
}
