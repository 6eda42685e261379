//! The host's own `wasi:http/outgoing-handler.handle`, an async host function.
//!
//! wasmtime-wasi-http's `handle` is synchronous and always spawns the
//! request onto another task (plus one for its body I/O): a cross-thread
//! round trip per request that native code never pays. Here, when the guest
//! has already finished the request body (the sdk always does), the exchange
//! is awaited inline, on the task that runs the call, and the guest gets a
//! ready response; the response body then streams on that same task. When
//! the guest is still writing its body (it may finish it only after
//! `handle`, as wstd does), awaiting inline would deadlock, so the exchange
//! runs on a spawned task as in the crate.
//!
//! Every check the crate's `handle` makes is kept, in the same order and
//! with the same error codes: `content-length` parsed (one value, digits
//! only) and not claimed for a request without a body; the method a valid
//! token; the scheme http or https (default https); the URI built from
//! authority and path; the `Host` header set to the authority. Headers the
//! host forbids (checked when the guest set them) are checked again here.
//! The policy proper (methods, userinfo, allowlist, addresses, caps) is
//! [`OutboundContext::exchange`](super::outbound::OutboundContext::exchange).

use http::header::{CONTENT_LENGTH, HOST};
use wasmtime::component::Resource;
use wasmtime_wasi_http::p2::bindings::http::types::{self as t, ErrorCode, Scheme};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::http_audit::{AuditRecord, Outcome};
use super::http_body::{self, Drained, error_code};
use super::http_types::HttpView;
use super::outbound::{Outgoing, RequestBody, forbidden};
use crate::bindings::wasi::http::outgoing_handler;

/// A request that passed the crate's checks.
struct Built {
    head: http::request::Parts,
    body: Option<WasiBody>,
    content_length: Option<u64>,
    audit: AuditRecord,
}

impl outgoing_handler::Host for HttpView<'_> {
    async fn handle(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<t::RequestOptions>>,
    ) -> wasmtime::Result<Result<Resource<HostFutureIncomingResponse>, ErrorCode>> {
        let options: Option<RequestOptions> =
            options.and_then(|o| self.http.table.get(&o).ok()).cloned();
        let rep = request.rep();
        let req = self.http.table.delete(request)?;
        self.call.release(rep);
        let built = match build(&self.call.ctx.provider, req, self.http.hooks) {
            Ok(b) => b,
            Err(code) => return Ok(Err(code)),
        };
        let Built {
            head,
            body,
            content_length,
            mut audit,
        } = built;
        let ctx = self.call.ctx.clone();
        let shared = self.call.shared.clone();
        let body = match body {
            None => RequestBody::Complete(bytes::Bytes::new()),
            Some(body) => match http_body::drain(body, ctx.max_request_body, content_length) {
                Drained::Complete(bytes) => RequestBody::Complete(bytes),
                Drained::Open(body) => RequestBody::Open(body),
                Drained::Refused(refused) => {
                    audit.finish(Outcome::Failed, Some(&refused.reason));
                    return Ok(Err(error_code(&refused.error)));
                }
            },
        };
        let out = Outgoing {
            head,
            body,
            content_length,
            options,
            audit,
        };
        match out.body {
            RequestBody::Complete(_) => {
                // Inline: the guest waits in this host call, on this task.
                let outcome = ctx.exchange(&shared, out).await;
                let id = self.http.table.push(HostFutureIncomingResponse::Consumed)?;
                self.call.put_ready(id.rep(), outcome);
                Ok(Ok(id))
            }
            RequestBody::Open(_) => {
                let task = wasmtime_wasi::runtime::spawn(async move {
                    let resp = ctx.exchange(&shared, out).await?;
                    Ok((resp, wasmtime_wasi::runtime::spawn(async {})))
                });
                Ok(Ok(self
                    .http
                    .table
                    .push(HostFutureIncomingResponse::Pending(task))?))
            }
        }
    }
}

/// The crate's request checks, and the request they accept.
fn build(
    provider: &str,
    req: HostOutgoingRequest,
    hooks: &mut dyn WasiHttpHooks,
) -> Result<Built, ErrorCode> {
    let authority = req.authority.clone().unwrap_or_default();
    let path = req.path_with_query.clone().unwrap_or_default();
    // For the audit line: never the userinfo part of an authority.
    let shown_host = authority
        .rsplit_once('@')
        .map_or(authority.as_str(), |(_, h)| h);
    let method_name = match &req.method {
        t::Method::Other(m) => m.clone(),
        m => format!("{m:?}").to_ascii_uppercase(),
    };
    let refuse = |code: ErrorCode, reason: &str| {
        let mut audit = AuditRecord::new(provider, &method_name, shown_host, 0, &path);
        audit.finish(Outcome::Failed, Some(reason));
        code
    };

    let content_length = match content_length(&req.headers) {
        Ok(n) => n,
        Err(e) => {
            let msg = e.to_string();
            return Err(refuse(ErrorCode::InternalError(Some(msg.clone())), &msg));
        }
    };
    if req.body.is_none() && content_length.is_some_and(|n| n != 0) {
        return Err(refuse(
            ErrorCode::HttpRequestBodySize(Some(0)),
            "content-length set but the request has no body",
        ));
    }
    let method = match &req.method {
        t::Method::Get => http::Method::GET,
        t::Method::Head => http::Method::HEAD,
        t::Method::Post => http::Method::POST,
        t::Method::Put => http::Method::PUT,
        t::Method::Delete => http::Method::DELETE,
        t::Method::Connect => http::Method::CONNECT,
        t::Method::Options => http::Method::OPTIONS,
        t::Method::Trace => http::Method::TRACE,
        t::Method::Patch => http::Method::PATCH,
        t::Method::Other(m) => match http::Method::from_bytes(m.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                return Err(refuse(
                    ErrorCode::HttpRequestMethodInvalid,
                    "invalid method",
                ));
            }
        },
    };
    let scheme = match &req.scheme {
        Some(s) => {
            let scheme = match s {
                Scheme::Http => http::uri::Scheme::HTTP,
                Scheme::Https => http::uri::Scheme::HTTPS,
                Scheme::Other(s) => match http::uri::Scheme::try_from(s.as_str()) {
                    Ok(s) => s,
                    Err(_) => {
                        return Err(refuse(ErrorCode::HttpProtocolError, "invalid scheme"));
                    }
                },
            };
            if !hooks.is_supported_scheme(&scheme) {
                return Err(refuse(
                    ErrorCode::HttpProtocolError,
                    &format!("scheme {scheme} is not supported"),
                ));
            }
            scheme
        }
        None => match hooks.default_scheme() {
            Some(s) => s,
            None => return Err(refuse(ErrorCode::HttpProtocolError, "no scheme")),
        },
    };
    let mut uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority.as_str());
    if let Some(p) = &req.path_with_query {
        uri = uri.path_and_query(p.as_str());
    }
    let uri = match uri.build() {
        Ok(u) => u,
        Err(e) => {
            let reason = format!("invalid URI: {e}");
            return Err(refuse(
                wasmtime_wasi_http::p2::http_request_error(e),
                &reason,
            ));
        }
    };
    if let Some(name) = req.headers.keys().find(|k| forbidden(k)) {
        return Err(refuse(
            ErrorCode::HttpRequestDenied,
            &format!("forbidden header {name}"),
        ));
    }
    let mut builder = http::Request::builder().method(method).uri(uri.clone());
    if hooks.set_host_header() {
        builder = builder.header(HOST, authority.as_str());
    }
    for (k, v) in req.headers.iter() {
        builder = builder.header(k, v);
    }
    let head = match builder.body(()) {
        Ok(r) => r.into_parts().0,
        Err(e) => {
            let msg = e.to_string();
            return Err(refuse(ErrorCode::InternalError(Some(msg.clone())), &msg));
        }
    };
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    let audit = AuditRecord::new(
        provider,
        head.method.as_str(),
        uri.host().unwrap_or(""),
        port,
        uri.path(),
    );
    Ok(Built {
        head,
        body: req.body,
        content_length,
        audit,
    })
}

/// A request's `content-length` the host does not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum BadContentLength {
    /// The header appears more than once.
    #[error("multiple `content-length` header values")]
    Multiple,
    /// The value is not visible ASCII.
    #[error("invalid `content-length` header value")]
    NotText,
    /// The value is not a decimal number that fits in 64 bits.
    #[error("invalid `content-length` header value: {0:?}")]
    NotANumber(String),
}

/// The request's `content-length`, as the crate reads it: absent, or exactly
/// one value of decimal digits (RFC 9110 `1*DIGIT`).
fn content_length(headers: &http::HeaderMap) -> Result<Option<u64>, BadContentLength> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(BadContentLength::Multiple);
    }
    let v = v.to_str().map_err(|_| BadContentLength::NotText)?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadContentLength::NotANumber(v.into()));
    }
    v.parse()
        .map(Some)
        .map_err(|_| BadContentLength::NotANumber(v.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for v in values {
            map.append(CONTENT_LENGTH, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn content_length_is_one_run_of_decimal_digits() {
        assert_eq!(content_length(&headers(&[])), Ok(None));
        assert_eq!(content_length(&headers(&["0"])), Ok(Some(0)));
        assert_eq!(content_length(&headers(&["1234"])), Ok(Some(1234)));
        for bad in ["+5", "-5", " 5", "", "5x"] {
            assert!(content_length(&headers(&[bad])).is_err(), "{bad:?}");
        }
        assert!(content_length(&headers(&["5", "5"])).is_err());
    }
}
