//! The one choke point for a provider's outbound HTTP: [`OutboundContext::exchange`],
//! which every request goes through, whether `outgoing-handler.handle`
//! awaits it inline or on a spawned task (see [`super::http_handle`]).
//!
//! Order, for every request: read the body fully (bounded; also when the
//! request is then denied, so guests see the policy's answer rather than a
//! reset) and charge it to the call's host memory; count it against the
//! call's request cap and take an in-flight slot of the call and of the
//! provider; check method, scheme/host/port against the allowlist, resolve
//! and check the addresses; audit the dispatch; strip the host-only headers,
//! apply the credential, send through the provider's pooled client; hand the
//! response back with its body streamed (size cap, deadlines, charges), and
//! audit again when that body ends or is dropped.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderName;
use http_body_util::Full;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use wasmtime_wasi_http::{ForbiddenHeaderFilter, RequestOptions, WasiBody, WasiHttpHooks};

use super::credentials::{AWS_SCOPE_HEADER, CredentialConfig, CredentialError};
use super::host_memory::Charge;
use super::http_audit::{AuditRecord, Outcome};
use super::http_body::{self, InFlight, ResponseBody, ResponseLimits};
use super::http_call::{CallShared, HttpCall};
use super::http_client::{ConnectionCapReached, SharedHttpClient};
use super::http_limits::OutboundLimits;
use super::http_policy::{Denied, HttpPolicy, Target};

type HttpError = wasmtime_wasi_http::Error;

/// What [`OutboundContext::new`] is built from: a provider's outbound
/// settings.
#[derive(Debug)]
pub struct OutboundConfig {
    /// Provider name, for audit records.
    pub provider: String,
    /// The operator's allowlist.
    pub policy: HttpPolicy,
    /// The credential applied to allowed requests.
    pub credential: CredentialConfig,
    /// The host's shared client; the provider gets a pool of its own from it.
    pub client: SharedHttpClient,
    /// Cap on a request body.
    pub max_request_body: usize,
    /// Cap on a response body.
    pub max_response_body: usize,
    /// Mints and caches the provider's OAuth tokens (OAuth credentials only).
    pub oauth: Option<Arc<super::oauth::OAuthSource>>,
    /// Methods, request and connection caps, host-memory budget.
    pub limits: OutboundLimits,
    /// The provider's guest memory cap: the host-memory budget of a call
    /// unless `limits.host_memory` says otherwise.
    pub memory_cap: usize,
}

/// Everything a provider's requests need; shared by all its calls.
#[derive(Debug)]
pub struct OutboundContext {
    /// Provider name, for audit records.
    pub provider: String,
    /// The operator's allowlist.
    pub policy: HttpPolicy,
    /// The credential applied to allowed requests.
    pub credential: CredentialConfig,
    /// The provider's own pooled client (capped connections).
    pub client: SharedHttpClient,
    /// Cap on a request body.
    pub max_request_body: usize,
    /// Cap on a response body.
    pub max_response_body: usize,
    /// Mints and caches the provider's OAuth tokens (OAuth credentials only).
    pub oauth: Option<Arc<super::oauth::OAuthSource>>,
    /// Methods and caps.
    pub limits: OutboundLimits,
    /// Host-memory budget of one call, in bytes.
    pub host_memory: usize,
    /// In-flight slots of the provider, across its calls.
    slots: Arc<Semaphore>,
}

impl OutboundContext {
    /// The context of one provider.
    pub fn new(c: OutboundConfig) -> Self {
        Self {
            client: c.client.for_provider(c.limits.max_connections),
            slots: Arc::new(Semaphore::new(c.limits.max_concurrent_requests as usize)),
            host_memory: c.limits.host_memory.unwrap_or(c.memory_cap),
            provider: c.provider,
            policy: c.policy,
            credential: c.credential,
            max_request_body: c.max_request_body,
            max_response_body: c.max_response_body,
            oauth: c.oauth,
            limits: c.limits,
        }
    }
}

/// A request body as the guest handed it over.
pub enum RequestBody {
    /// Finished before `handle`: the bytes.
    Complete(Bytes),
    /// Still being written: read it (bounded) before anything else.
    Open(WasiBody),
}

/// A request ready for [`OutboundContext::exchange`].
pub struct Outgoing {
    /// Method, URI (absolute), headers.
    pub head: http::request::Parts,
    /// The body.
    pub body: RequestBody,
    /// The guest's `content-length`, checked against the body.
    pub content_length: Option<u64>,
    /// The guest's timeouts (each capped by the host's).
    pub options: Option<RequestOptions>,
    /// Its audit record (made when the guest handed it over).
    pub audit: AuditRecord,
}

/// The `WasiHttpHooks` of one store: the forbidden-header filter and the
/// body-buffer sizes the crate's `types` use. (`send_request` runs the same
/// exchange as `handle`; the host's own `handle` does not go through it.)
pub struct OutboundHttp {
    ctx: Arc<OutboundContext>,
    shared: Arc<CallShared>,
}

impl OutboundHttp {
    /// Hooks for a new store (call) of this provider.
    pub fn new(ctx: Arc<OutboundContext>) -> Self {
        let shared = CallShared::new(&ctx);
        Self { ctx, shared }
    }

    /// The store's bookkeeping of what the call holds, sharing this call's
    /// ledger and caps.
    pub fn call(&self) -> HttpCall {
        HttpCall::new(self.ctx.clone(), self.shared.clone())
    }
}

/// Headers a guest may not set: the defaults of wasi-http plus credentials.
pub fn forbidden(name: &HeaderName) -> bool {
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

    /// Writes a body of up to the cap (and one byte more, to see it is over)
    /// take one `write`: the guest can finish the body before `handle`.
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        self.ctx.max_request_body.saturating_add(1)
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        drop(fut);
        let (ctx, shared) = (self.ctx.clone(), self.shared.clone());
        Box::new(async move {
            let (head, body) = request.into_parts();
            let audit = AuditRecord::new(
                &ctx.provider,
                head.method.as_str(),
                head.uri.host().unwrap_or(""),
                head.uri.port_u16().unwrap_or(0),
                head.uri.path(),
            );
            let out = Outgoing {
                head,
                body: RequestBody::Open(body),
                content_length: None,
                options,
                audit,
            };
            let resp = ctx.exchange(&shared, out).await?;
            let io: Box<dyn Future<Output = Result<(), HttpError>> + Send> =
                Box::new(async { Ok(()) });
            Ok((resp, io))
        })
    }
}

impl OutboundContext {
    /// Run one request of a call through the whole policy and return its
    /// response, whose body streams to the guest.
    pub async fn exchange(
        &self,
        call: &Arc<CallShared>,
        out: Outgoing,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let Outgoing {
            mut head,
            body,
            content_length,
            options,
            mut audit,
        } = out;
        let cfg = self.client.config();
        let started = Instant::now();
        let deadline = started + cfg.total_timeout;

        // The body first, also for a request about to be denied.
        let body = match body {
            RequestBody::Complete(b) => b,
            RequestBody::Open(b) => {
                match tokio::time::timeout_at(
                    deadline,
                    http_body::collect(b, self.max_request_body, content_length),
                )
                .await
                {
                    Ok(Ok(b)) => b,
                    Ok(Err(refused)) => {
                        audit.finish(Outcome::Failed, Some(&refused.reason));
                        return Err(refused.error);
                    }
                    Err(_) => {
                        audit.finish(
                            Outcome::Failed,
                            Some("the request body was not finished in time"),
                        );
                        return Err(HttpError::HttpRequestBodySize(None));
                    }
                }
            }
        };
        let _body_charge = match Charge::new(&call.memory, body.len()) {
            Ok(c) => c,
            Err(e) => {
                audit.finish(Outcome::Failed, Some(&e.to_string()));
                return Err(HttpError::InternalError(Some(e.to_string())));
            }
        };

        // Caps, before the policy: a refused request costs the host nothing.
        if !call.count_request(self.limits.max_requests_per_call) {
            let why = format!(
                "the call has made its {} requests (max_requests_per_call)",
                self.limits.max_requests_per_call
            );
            return Err(self.limited(&mut audit, &why));
        }
        let Some(call_slot) = call.try_slot() else {
            let why = format!(
                "the call already has {} requests in flight (max_concurrent_requests_per_call)",
                self.limits.max_concurrent_requests_per_call
            );
            return Err(self.limited(&mut audit, &why));
        };
        let provider_slot = match tokio::time::timeout(
            cfg.connect_timeout,
            self.slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(p)) => p,
            _ => {
                let why = format!(
                    "the provider's calls already have {} requests in flight (max_concurrent_requests)",
                    self.limits.max_concurrent_requests
                );
                return Err(self.limited(&mut audit, &why));
            }
        };

        if !self.limits.allows(&head.method) {
            let why = Denied::MethodNotAllowed {
                method: head.method.to_string(),
            };
            return Err(self.deny(&mut audit, why, HttpError::HttpRequestMethodInvalid));
        }
        let target = match Target::of(&head.uri) {
            Ok(t) => t,
            Err(why @ Denied::Userinfo { .. }) => {
                return Err(self.deny(&mut audit, why, HttpError::HttpRequestUriInvalid));
            }
            Err(why) => return Err(self.deny(&mut audit, why, HttpError::HttpRequestDenied)),
        };
        if let Err(why) = self.policy.check_target(&target) {
            return Err(self.deny(&mut audit, why, HttpError::HttpRequestDenied));
        }
        let addrs = match self.resolve(&target).await {
            Ok(a) => a,
            Err(e) => {
                audit.finish(Outcome::Failed, Some(&e.to_string()));
                return Err(e);
            }
        };
        if let Err(why) = self.policy.check_addresses(&target, &addrs) {
            return Err(self.deny(&mut audit, why, HttpError::HttpRequestDenied));
        }
        if target.host.parse::<IpAddr>().is_err() {
            self.client.vetted().insert(&target.host, addrs);
        }

        let scope = head
            .headers
            .remove(AWS_SCOPE_HEADER)
            .and_then(|v| v.to_str().ok().map(str::to_string));
        let token = match (self.credential.oauth_for(&target), &self.oauth) {
            (Some(identity), Some(source)) => match source.token(identity.default_scope()).await {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!(provider = %self.provider, "{e}");
                    audit.finish(Outcome::Failed, Some(&e.to_string()));
                    return Err(HttpError::InternalError(Some(e.to_string())));
                }
            },
            _ => None,
        };
        let body_len = body.len();
        let mut req = http::Request::from_parts(head, body);
        if let Err(e) = self
            .credential
            .apply(&mut req, &target, scope, token.as_deref())
        {
            return Err(match e {
                // A signature the credential does not give is a policy refusal.
                e @ CredentialError::SigningRefused { .. } => {
                    let why = e.to_string();
                    tracing::warn!(target: "bpr::audit::http", provider = %self.provider, "request denied: {why}");
                    audit.finish(Outcome::Denied, Some(why.as_str()));
                    HttpError::HttpRequestDenied
                }
                e => {
                    tracing::warn!(provider = %self.provider, "{e}");
                    audit.finish(Outcome::Failed, Some(&e.to_string()));
                    HttpError::InternalError(Some(e.to_string()))
                }
            });
        }
        // The last check before anything leaves: a call made under a
        // deployment's lease sends nothing once that lease cannot be trusted
        // (the process was paused past it; another replica may own it now).
        if let Err(why) = call.fence.check() {
            let why = format!("the deployment's lease no longer holds ({why}): not sent");
            tracing::warn!(target: "bpr::audit::http", provider = %self.provider, "request denied: {why}");
            audit.finish(Outcome::Denied, Some(why.as_str()));
            return Err(HttpError::HttpRequestDenied);
        }
        // Nothing leaves before this line: the dispatch is audited here.
        audit.dispatched(body_len);
        let req = req.map(Full::new);

        let mut first_byte = cfg.first_byte_timeout;
        let mut between_bytes = cfg.first_byte_timeout;
        if let Some(o) = options {
            if let Some(t) = o.first_byte_timeout {
                first_byte = first_byte.min(t);
            }
            if let Some(t) = o.between_bytes_timeout {
                between_bytes = between_bytes.min(t);
            }
        }
        let head_by = deadline.min(Instant::now() + first_byte);
        let resp = match tokio::time::timeout_at(head_by, self.client.send(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                let code = self.client_error(&e);
                audit.finish(Outcome::Failed, Some(&format!("{code}")));
                return Err(code);
            }
            Err(_) => {
                audit.finish(
                    Outcome::Failed,
                    Some("no response head within the first-byte timeout"),
                );
                return Err(HttpError::ConnectionReadTimeout);
            }
        };
        let (head, incoming) = resp.into_parts();
        audit.responded(head.status.as_u16());
        let limits = ResponseLimits {
            max_bytes: self.max_response_body as u64,
            deadline,
            between_bytes: between_bytes.max(Duration::from_millis(1)),
        };
        let in_flight = InFlight {
            audit,
            slots: vec![call_slot, provider_slot],
        };
        let body = ResponseBody::stream(incoming, limits, call.memory.clone(), in_flight);
        Ok(http::Response::from_parts(head, body))
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

    fn deny(&self, audit: &mut AuditRecord, why: Denied, code: HttpError) -> HttpError {
        tracing::warn!(
            target: "bpr::audit::http",
            provider = %self.provider,
            request_id = audit.id(),
            "request denied: {why}"
        );
        audit.finish(Outcome::Denied, Some(&why.to_string()));
        code
    }

    fn limited(&self, audit: &mut AuditRecord, why: &str) -> HttpError {
        tracing::warn!(
            target: "bpr::audit::http",
            provider = %self.provider,
            request_id = audit.id(),
            "request refused: {why}"
        );
        audit.finish(Outcome::Limited, Some(why));
        HttpError::ConnectionLimitReached
    }

    /// Map a client error onto the wasi-http error the guest sees.
    fn client_error(&self, e: &hyper_util::client::legacy::Error) -> HttpError {
        use std::error::Error as _;
        let mut source = e.source();
        while let Some(s) = source {
            if let Some(cap) = s.downcast_ref::<ConnectionCapReached>() {
                tracing::warn!(provider = %self.provider, "{cap}");
                return HttpError::ConnectionLimitReached;
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                if let Some(cap) = io
                    .get_ref()
                    .and_then(|i| i.downcast_ref::<ConnectionCapReached>())
                {
                    tracing::warn!(provider = %self.provider, "{cap}");
                    return HttpError::ConnectionLimitReached;
                }
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
}
