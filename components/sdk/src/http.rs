//! HTTP over `wasi:http/outgoing-handler`.
//!
//! Build a [`Request`], [`Request::send`] it and get a [`Response`] with the
//! whole body (capped, default 16 MiB), or [`Request::send_streaming`] for
//! large bodies read incrementally through [`std::io::Read`]. Transport
//! failures become the WIT `error`: a host policy refusal is `denied`,
//! connection and timeout problems are `transient`, a request body over the
//! host's cap is `invalid-request` naming both sizes.
//!
//! A request body is written in large writes and finished before
//! `outgoing-handler.handle`, so the host sends the request at once, on the
//! task that runs the call; response bodies are read in large reads.

use std::io::Read;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::{InputStream, StreamError};

use crate::Error;

/// Default cap on a response body read by [`Request::send`]: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;

/// An outgoing HTTP request. Cheap to build; consumed by `send`.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    max_body: usize,
    timeout_ms: Option<u64>,
}

impl Request {
    /// A request with any method (`GET`, `POST`, `DELETE`, `PATCH`...).
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            timeout_ms: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new("PUT", url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new("DELETE", url)
    }

    /// Add a header (appended; repeated names are kept).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// Set the body bytes.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Set a JSON body and `content-type: application/json`.
    pub fn json<T: serde::Serialize + ?Sized>(self, value: &T) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::Other(format!("could not encode the request body as JSON: {e}")))?;
        Ok(self.header("content-type", "application/json").body(bytes))
    }

    /// Set an `application/x-www-form-urlencoded` body from pairs (AWS Query
    /// API style). Values are percent-encoded.
    pub fn form(self, pairs: &[(String, String)]) -> Self {
        let body = encode_form(pairs);
        self.header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body(body)
    }

    /// Cap the response body for [`Request::send`] (and the stream of
    /// [`Request::send_streaming`]); a longer body is an error.
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_body = max;
        self
    }

    /// Ask for connect, first-byte and between-bytes timeouts (milliseconds).
    /// Hosts that do not support them ignore this.
    pub fn timeout_ms(mut self, ms: u64) -> Self {
        self.timeout_ms = Some(ms);
        self
    }

    /// The URL this request goes to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Send the request and read the whole response body (up to the cap).
    pub fn send(self) -> Result<Response, Error> {
        let what = format!("{} {}", self.method, redact(&self.url));
        let mut streaming = self.send_streaming()?;
        let body = streaming
            .body
            .read_all()
            .map_err(|e| body_error(&what, e))?;
        Ok(Response {
            status: streaming.status,
            headers: std::mem::take(&mut streaming.headers),
            body,
        })
    }

    /// Send the request and return status and headers at once, with a body
    /// reader for large answers (it enforces the size cap too).
    pub fn send_streaming(self) -> Result<StreamingResponse, Error> {
        let what = format!("{} {}", self.method, redact(&self.url));
        let parts = split_url(&self.url)?;
        let header_list: Vec<(String, Vec<u8>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
            .collect();
        let fields = Fields::from_list(&header_list).map_err(|e| {
            let why = match e {
                wasip2::http::types::HeaderError::InvalidSyntax => "its name or value is not valid",
                wasip2::http::types::HeaderError::Forbidden => "the host forbids setting it",
                wasip2::http::types::HeaderError::Immutable => "the headers are immutable",
            };
            Error::InvalidRequest(format!("{what}: a request header was refused: {why}"))
        })?;
        let req = OutgoingRequest::new(fields);
        let method = match self.method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "PATCH" => Method::Patch,
            "HEAD" => Method::Head,
            "OPTIONS" => Method::Options,
            other => Method::Other(other.to_string()),
        };
        let bad = |part: &str| Error::InvalidRequest(format!("{what}: invalid {part}"));
        req.set_method(&method).map_err(|_| bad("method"))?;
        req.set_scheme(Some(&parts.scheme))
            .map_err(|_| bad("scheme"))?;
        req.set_authority(Some(&parts.authority))
            .map_err(|_| bad("host"))?;
        req.set_path_with_query(Some(&parts.path_and_query))
            .map_err(|_| bad("path"))?;

        let options = self.timeout_ms.map(|ms| {
            let o = RequestOptions::new();
            let ns = ms.saturating_mul(1_000_000);
            // Hosts may refuse options they do not support; that is fine.
            let _ = o.set_connect_timeout(Some(ns));
            let _ = o.set_first_byte_timeout(Some(ns));
            let _ = o.set_between_bytes_timeout(Some(ns));
            o
        });
        let future = if self.body.is_empty() {
            // No body: never opening it sends an empty one.
            outgoing_handler::handle(req, options).map_err(|e| self.send_error(&what, e))?
        } else {
            self.send_with_body(&what, req, options)?
        };
        let resp = loop {
            match future.get() {
                Some(Ok(Ok(resp))) => break resp,
                Some(Ok(Err(code))) => return Err(self.send_error(&what, code)),
                Some(Err(())) => {
                    return Err(Error::Other(format!("{what}: response already taken")));
                }
                None => future.subscribe().block(),
            }
        };

        let status = resp.status();
        let headers = resp
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let body = resp
            .consume()
            .map_err(|_| Error::Other(format!("{what}: response body unavailable")))?;
        let stream = body
            .stream()
            .map_err(|_| Error::Other(format!("{what}: response body stream unavailable")))?;
        Ok(StreamingResponse {
            status,
            headers,
            body: BodyReader {
                stream: Some(stream),
                body: Some(body),
                _response: resp,
                read: 0,
                max: self.max_body,
                what,
            },
        })
    }
}

impl Request {
    /// Write the body, then hand the request over. A body the host can hold
    /// at once (any body up to its cap) is written in as few, large writes
    /// as the host allows and finished before `handle`: the host then sends
    /// it at once, on the calling task. A larger body fills the host's
    /// buffer; the request is then handed over first, so the host reads (and
    /// refuses it, past its cap) while the rest is written.
    fn send_with_body(
        &self,
        what: &str,
        req: OutgoingRequest,
        options: Option<RequestOptions>,
    ) -> Result<FutureIncomingResponse, Error> {
        let out_body = req
            .body()
            .map_err(|_| Error::Other(format!("{what}: request body unavailable")))?;
        let stream = out_body
            .write()
            .map_err(|_| Error::Other(format!("{what}: request body stream unavailable")))?;
        let write_failed = |e: StreamError| {
            Error::Transient(format!(
                "{what}: writing the body failed: {}",
                stream_error(e)
            ))
        };
        let mut rest: &[u8] = &self.body;
        while !rest.is_empty() {
            let room = stream.check_write().map_err(write_failed)? as usize;
            if room == 0 {
                break;
            }
            let n = room.min(rest.len());
            stream.write(&rest[..n]).map_err(write_failed)?;
            rest = &rest[n..];
        }
        if rest.is_empty() {
            drop(stream);
            OutgoingBody::finish(out_body, None).map_err(|e| self.send_error(what, e))?;
            return outgoing_handler::handle(req, options).map_err(|e| self.send_error(what, e));
        }
        let future =
            outgoing_handler::handle(req, options).map_err(|e| self.send_error(what, e))?;
        let mut written = Ok(());
        for chunk in rest.chunks(64 * 1024) {
            if let Err(e) = stream.blocking_write_and_flush(chunk) {
                written = Err(write_failed(e));
                break;
            }
        }
        drop(stream);
        let finished = OutgoingBody::finish(out_body, None);
        if written.is_err() || finished.is_err() {
            // What the host answered (e.g. the body is over its cap) says
            // more than a closed stream.
            future.subscribe().block();
            if let Some(Ok(Err(code))) = future.get() {
                return Err(self.send_error(what, code));
            }
            written?;
            finished.map_err(|e| self.send_error(what, e))?;
        }
        Ok(future)
    }

    /// A transport error of this request; a body over the host's cap is
    /// named with both sizes.
    fn send_error(&self, what: &str, code: ErrorCode) -> Error {
        match code {
            ErrorCode::HttpRequestBodySize(Some(max)) if self.body.len() as u64 > max => {
                Error::InvalidRequest(format!(
                    "{what}: the request body is {} bytes, more than the host accepts ({max} bytes; the operator's `max_request_body_kib`)",
                    self.body.len()
                ))
            }
            other => map_error_code(what, other),
        }
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Headers, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A response whose body is read on demand.
pub struct StreamingResponse {
    /// HTTP status code.
    pub status: u16,
    /// Headers, names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body; implements [`std::io::Read`] and stops with an error past the cap.
    pub body: BodyReader,
}

impl StreamingResponse {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Reader over a response body. Keeps the wasi resources alive in the order
/// wasi requires (stream, then body, then response are dropped).
pub struct BodyReader {
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    _response: IncomingResponse,
    read: usize,
    max: usize,
    what: String,
}

impl BodyReader {
    /// Read the rest of the body into one buffer, in large reads (no small
    /// probe reads, one copy out of the host's buffers).
    pub fn read_all(&mut self) -> std::io::Result<Vec<u8>> {
        let mut all = Vec::new();
        loop {
            let Some(stream) = self.stream.as_ref() else {
                return Ok(all);
            };
            match stream.blocking_read(1 << 20) {
                Ok(chunk) => {
                    self.read += chunk.len();
                    if self.read > self.max {
                        return Err(std::io::Error::other(format!(
                            "{}: response body larger than {} bytes",
                            self.what, self.max
                        )));
                    }
                    if all.is_empty() {
                        all = chunk;
                    } else {
                        all.extend_from_slice(&chunk);
                    }
                }
                Err(StreamError::Closed) => {
                    self.stream = None;
                    if let Some(body) = self.body.take() {
                        drop(IncomingBody::finish(body));
                    }
                    return Ok(all);
                }
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(std::io::Error::other(format!(
                        "{}: reading the response failed: {}",
                        self.what,
                        io_error_text(&e)
                    )));
                }
            }
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(stream) = self.stream.as_ref() else {
            return Ok(0);
        };
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(64 * 1024) as u64;
        match stream.blocking_read(want) {
            Ok(chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                self.read += n;
                if self.read > self.max {
                    return Err(std::io::Error::other(format!(
                        "{}: response body larger than {} bytes",
                        self.what, self.max
                    )));
                }
                Ok(n)
            }
            Err(StreamError::Closed) => {
                self.stream = None;
                if let Some(body) = self.body.take() {
                    drop(IncomingBody::finish(body));
                }
                Ok(0)
            }
            Err(StreamError::LastOperationFailed(e)) => Err(std::io::Error::other(format!(
                "{}: reading the response failed: {}",
                self.what,
                io_error_text(&e)
            ))),
        }
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        // Child resources must go before their parents.
        self.stream.take();
        self.body.take();
    }
}

/// First value of header `name` in a lower-cased header list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Map a wasi:http transport error onto the WIT `error`. `what` names the
/// request (method and URL).
pub fn map_error_code(what: &str, code: ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::Denied(format!(
            "{what}: the host refused this request; add its scheme://host[:port] to the provider's `allow` list in the operator config"
        )),
        ErrorCode::ConnectionLimitReached => Error::Transient(format!(
            "{what}: the host's cap on this provider's outbound requests was reached (requests per call, in flight at once, or open connections; see the host log)"
        )),
        // A name that does not resolve: the request never left, so nothing was
        // created; it is no temporary failure either (no network here, or a
        // wrong endpoint), so the orchestrator moves on instead of retrying.
        ErrorCode::DnsTimeout | ErrorCode::DnsError(_) | ErrorCode::DestinationNotFound => {
            Error::RegionUnavailable(format!(
                "{what}: the host name does not resolve ({}); check the network and the provider's endpoint",
                describe_error_code(&code)
            ))
        }
        ErrorCode::DestinationUnavailable
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseIncomplete
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::HttpProtocolError
        | ErrorCode::TlsAlertReceived(_)
        | ErrorCode::TlsProtocolError => Error::Transient(format!(
            "{what}: {}; it may succeed on retry if the service comes back",
            describe_error_code(&code)
        )),
        ErrorCode::HttpRequestUriInvalid
        | ErrorCode::HttpRequestUriTooLong
        | ErrorCode::HttpRequestMethodInvalid => Error::InvalidRequest(format!(
            "{what}: invalid request: {}",
            describe_error_code(&code)
        )),
        other => Error::Other(format!("{what}: {}", describe_error_code(&other))),
    }
}

/// A wasi:http transport error as a short sentence a person reads (no Debug
/// text): `the DNS lookup failed: Name or service not known`,
/// `the connection was refused`.
pub fn describe_error_code(code: &ErrorCode) -> String {
    fn size<T: std::fmt::Display>(what: &str, limit: &Option<T>, unit: &str) -> String {
        match limit {
            Some(n) => format!("{what} is over the limit of {n} {unit}"),
            None => format!("{what} is too large"),
        }
    }
    fn field(what: &str, f: &Option<wasip2::http::types::FieldSizePayload>) -> String {
        match f {
            Some(f) => field_size(what, f),
            None => format!("{what} is too large"),
        }
    }
    fn field_size(what: &str, f: &wasip2::http::types::FieldSizePayload) -> String {
        let name = f.field_name.as_deref().unwrap_or("a field");
        match f.field_size {
            Some(n) => format!("{what} `{name}` is too large ({n} bytes)"),
            None => format!("{what} `{name}` is too large"),
        }
    }
    fn coding(what: &str, c: &Option<String>) -> String {
        match c {
            Some(c) => format!("the response's {what} `{c}` is not supported"),
            None => format!("the response's {what} is not supported"),
        }
    }
    match code {
        ErrorCode::DnsTimeout => "the DNS lookup timed out".into(),
        ErrorCode::DnsError(p) => match (&p.rcode, p.info_code) {
            (Some(rcode), _) => {
                // The host's resolver message, e.g. "failed to lookup address
                // information: Name or service not known": keep its reason.
                let reason = rcode.rsplit(": ").next().unwrap_or(rcode);
                format!("the DNS lookup failed: {reason}")
            }
            (None, Some(info)) => format!("the DNS lookup failed (info code {info})"),
            (None, None) => "the DNS lookup failed".into(),
        },
        ErrorCode::DestinationNotFound => "the host name was not found".into(),
        ErrorCode::DestinationUnavailable => "the destination is unavailable".into(),
        ErrorCode::DestinationIpProhibited => {
            "the host refused the destination address (not a public address)".into()
        }
        ErrorCode::DestinationIpUnroutable => "the destination address is unroutable".into(),
        ErrorCode::ConnectionRefused => "the connection was refused".into(),
        ErrorCode::ConnectionTerminated => "the connection was closed early".into(),
        ErrorCode::ConnectionTimeout => "connecting timed out".into(),
        ErrorCode::ConnectionReadTimeout => "reading from the connection timed out".into(),
        ErrorCode::ConnectionWriteTimeout => "writing to the connection timed out".into(),
        ErrorCode::ConnectionLimitReached => {
            "the host's cap on this provider's outbound requests or connections was reached".into()
        }
        ErrorCode::TlsProtocolError => "the TLS handshake failed".into(),
        ErrorCode::TlsCertificateError => "the server's TLS certificate was refused".into(),
        ErrorCode::TlsAlertReceived(p) => match &p.alert_message {
            Some(m) => format!("the server sent a TLS alert: {m}"),
            None => match p.alert_id {
                Some(id) => format!("the server sent TLS alert {id}"),
                None => "the server sent a TLS alert".into(),
            },
        },
        ErrorCode::HttpRequestDenied => "the host refused this request".into(),
        ErrorCode::HttpRequestLengthRequired => "the request needs a content-length".into(),
        ErrorCode::HttpRequestBodySize(n) => size("the request body", n, "bytes"),
        ErrorCode::HttpRequestMethodInvalid => "the request method is not allowed".into(),
        ErrorCode::HttpRequestUriInvalid => "the request URL is invalid".into(),
        ErrorCode::HttpRequestUriTooLong => "the request URL is too long".into(),
        ErrorCode::HttpRequestHeaderSectionSize(n) => size("the request's headers", n, "bytes"),
        ErrorCode::HttpRequestHeaderSize(f) => field("the request header", f),
        ErrorCode::HttpRequestTrailerSectionSize(n) => size("the request's trailers", n, "bytes"),
        ErrorCode::HttpRequestTrailerSize(f) => field_size("the request trailer", f),
        ErrorCode::HttpResponseIncomplete => "the response ended before it was complete".into(),
        ErrorCode::HttpResponseHeaderSectionSize(n) => size("the response's headers", n, "bytes"),
        ErrorCode::HttpResponseHeaderSize(f) => field_size("the response header", f),
        ErrorCode::HttpResponseBodySize(n) => size("the response body", n, "bytes"),
        ErrorCode::HttpResponseTrailerSectionSize(n) => size("the response's trailers", n, "bytes"),
        ErrorCode::HttpResponseTrailerSize(f) => field_size("the response trailer", f),
        ErrorCode::HttpResponseTransferCoding(c) => coding("transfer coding", c),
        ErrorCode::HttpResponseContentCoding(c) => coding("content coding", c),
        ErrorCode::HttpResponseTimeout => "the response did not arrive in time".into(),
        ErrorCode::HttpUpgradeFailed => "the HTTP upgrade failed".into(),
        ErrorCode::HttpProtocolError => "the server broke the HTTP protocol".into(),
        ErrorCode::LoopDetected => "a request loop was detected".into(),
        ErrorCode::ConfigurationError => "the host's HTTP configuration is wrong".into(),
        ErrorCode::InternalError(Some(m)) => format!("the host failed: {m}"),
        ErrorCode::InternalError(None) => "the host failed".into(),
    }
}

/// A stream error as a sentence: the wasi:http error behind it when there is
/// one, else the host's own text.
fn io_error_text(e: &wasip2::io::error::Error) -> String {
    match wasip2::http::types::http_error_code(e) {
        Some(code) => describe_error_code(&code),
        None => e.to_debug_string(),
    }
}

fn body_error(what: &str, e: std::io::Error) -> Error {
    let msg = e.to_string();
    if msg.contains("larger than") {
        Error::Other(msg)
    } else {
        Error::Transient(format!("{what}: {msg}"))
    }
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "stream closed".to_string(),
        StreamError::LastOperationFailed(e) => io_error_text(&e),
    }
}

struct UrlParts {
    scheme: Scheme,
    authority: String,
    path_and_query: String,
}

fn split_url(url: &str) -> Result<UrlParts, Error> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        Error::InvalidRequest(format!(
            "URL `{}` has no scheme (http:// or https://)",
            redact(url)
        ))
    })?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "URL `{}` has no host",
            redact(url)
        )));
    }
    let path_and_query = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok(UrlParts {
        scheme,
        authority: authority.to_string(),
        path_and_query,
    })
}

/// The URL without its query string (query strings may carry tokens).
pub fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Percent-encode a string for a URL query or form value (RFC 3986
/// unreserved characters are kept, everything else is `%XX`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encode pairs as an `application/x-www-form-urlencoded` body: like
/// [`percent_encode`] but a space becomes `+` (what AWS SDKs send, and what
/// stand-ins that re-encode the form to check signatures expect).
pub fn encode_form(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| percent_encode(s).replace("%20", "+");
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasip2::http::types::DnsErrorPayload;

    #[test]
    fn a_dns_failure_reads_as_a_sentence_without_debug_text() {
        let code = ErrorCode::DnsError(DnsErrorPayload {
            rcode: Some("failed to lookup address information: Name or service not known".into()),
            info_code: None,
        });
        let err = map_error_code("GET https://api.vultr.com/v2/plans", code);
        let text = format!("{err:?}");
        assert!(
            text.contains("the DNS lookup failed: Name or service not known"),
            "{text}"
        );
        assert!(!text.contains("ErrorCode"), "{text}");
        assert!(!text.contains("Payload"), "{text}");
    }

    #[test]
    fn transport_errors_name_what_happened_in_words() {
        for (code, words) in [
            (ErrorCode::ConnectionRefused, "the connection was refused"),
            (ErrorCode::ConnectionTimeout, "connecting timed out"),
            (
                ErrorCode::HttpResponseBodySize(Some(16)),
                "the response body is over the limit of 16 bytes",
            ),
            (
                ErrorCode::InternalError(Some("deadline".into())),
                "the host failed: deadline",
            ),
        ] {
            let text = format!("{:?}", map_error_code("GET http://x/", code));
            assert!(text.contains(words), "{text}");
            assert!(!text.contains("ErrorCode"), "{text}");
        }
    }
}
