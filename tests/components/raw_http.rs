// Raw wasi:http pieces for the components that probe the host's wasi:http
// boundary (`hostile-request`, `hostile-memory`, `hostile-flood`,
// `hostile-abandon`). Included by their `src/lib.rs` with
// `mod raw { include!("../../raw_http.rs"); }`. Unlike `http.rs`, nothing
// here hides what the guest does: each step (fields, request, body writes,
// finish, handle, polling) is a separate call, so a component can do them in
// any order, or not at all.

use crate::blueprint::provider::settings;
use crate::blueprint::provider::types::{Error, Instance, InstanceState};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingRequest, Scheme, http_error_code,
};
use wasip2::io::streams::{OutputStream, StreamError};

/// A URL split into what `outgoing-request` takes.
pub struct Url {
    /// `http` or `https` (anything else is passed as `other`).
    pub scheme: Scheme,
    /// `host[:port]`, possibly with userinfo.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path: String,
}

/// Split `scheme://authority/path`.
pub fn parse_url(url: &str) -> Result<Url, Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| Error::InvalidRequest(format!("url `{url}` has no scheme")))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    Ok(Url {
        scheme,
        authority: authority.to_string(),
        path: path.to_string(),
    })
}

/// A setting, required.
pub fn setting(key: &str) -> Result<String, Error> {
    settings::get(key)
        .ok_or_else(|| Error::InvalidRequest(format!("set `{key}` in the provider's settings")))
}

/// A numeric setting with a default.
pub fn number(key: &str, default: u64) -> u64 {
    settings::get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The method named `name` (upper case), `other` for anything unknown.
pub fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "CONNECT" => Method::Connect,
        "OPTIONS" => Method::Options,
        "TRACE" => Method::Trace,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// An outgoing request to `url` with `method` and `headers`.
pub fn request(method: &Method, url: &Url, headers: Fields) -> Result<OutgoingRequest, Error> {
    let request = OutgoingRequest::new(headers);
    let refused = |what: &str| Error::Other(format!("the host refused the {what}"));
    request.set_method(method).map_err(|()| refused("method"))?;
    request
        .set_scheme(Some(&url.scheme))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(Some(&url.authority))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(Some(&url.path))
        .map_err(|()| refused("path"))?;
    Ok(request)
}

/// Write `bytes` in as few writes as the host allows. Without `block`, stop
/// (with an error) when the host's buffer for the body is full instead of
/// waiting for it to drain: before `handle`, nothing drains it.
pub fn write_all(stream: &OutputStream, mut bytes: &[u8], block: bool) -> Result<(), Error> {
    while !bytes.is_empty() {
        let room = stream.check_write().map_err(stream_error)? as usize;
        if room == 0 {
            if !block {
                return Err(Error::Other(format!(
                    "the host's body buffer is full with {} bytes left to write",
                    bytes.len()
                )));
            }
            stream.subscribe().block();
            continue;
        }
        let n = room.min(bytes.len());
        stream.write(&bytes[..n]).map_err(stream_error)?;
        bytes = &bytes[n..];
    }
    Ok(())
}

fn stream_error(e: StreamError) -> Error {
    match e {
        StreamError::Closed => Error::Other("body stream closed".into()),
        StreamError::LastOperationFailed(e) => match http_error_code(&e) {
            Some(code) => Error::Other(format!("{code:?}")),
            None => Error::Other(e.to_debug_string()),
        },
    }
}

/// Send `request` (its body already dealt with) and wait for the head.
pub fn send(request: OutgoingRequest) -> Result<IncomingResponse, Error> {
    let future = outgoing_handler::handle(request, None).map_err(code)?;
    wait(&future)
}

/// Wait for a response future.
pub fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, Error> {
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            Some(Ok(Err(c))) => return Err(code(c)),
            Some(Err(())) => return Err(Error::Other("response already taken".into())),
            None => future.subscribe().block(),
        }
    }
}

/// Read a response to its end: status and body.
pub fn read(response: IncomingResponse) -> Result<(u16, Vec<u8>), Error> {
    let status = response.status();
    let body = response
        .consume()
        .map_err(|()| Error::Other("response body already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|()| Error::Other("response body stream already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(256 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_error(e)),
        }
    }
    drop(stream);
    drop(IncomingBody::finish(body));
    Ok((status, bytes))
}

/// A host error code as our error: `denied` for a policy refusal, `other`
/// with the code's debug text otherwise (tests match on it).
pub fn code(c: ErrorCode) -> Error {
    match c {
        ErrorCode::HttpRequestDenied => Error::Denied(format!("{c:?}")),
        other => Error::Other(format!("{other:?}")),
    }
}

/// One instance carrying a report in `detail` (and a status label).
pub fn report(detail: String, status: u16) -> Instance {
    Instance {
        id: "report".to_string(),
        region: "test-1".to_string(),
        zone: None,
        instance_type: "none".to_string(),
        state: InstanceState::Unknown,
        public_ipv4: None,
        private_ipv4: None,
        public_ipv6: None,
        spot: false,
        labels: vec![("http-status".to_string(), status.to_string())],
        resources: Vec::new(),
        created_at: None,
        detail: Some(detail),
    }
}

/// Implements `compute` with `list-instances` delegating to
/// `<$component>::run()` and everything else `unsupported`.
macro_rules! compute_instances_only {
    ($component:ty) => {
        const _: () = {
            use crate::blueprint::provider::types as t;
            use crate::common::unsupported;

            impl crate::exports::blueprint::provider::compute::Guest for $component {
                fn list_offers(_query: t::OfferQuery) -> Result<Vec<t::Offer>, t::Error> {
                    unsupported("compute.list-offers")
                }
                fn create_instance(_spec: t::InstanceSpec) -> Result<t::Instance, t::Error> {
                    unsupported("compute.create-instance")
                }
                fn get_instance(_target: t::InstanceRef) -> Result<t::Instance, t::Error> {
                    unsupported("compute.get-instance")
                }
                fn delete_instance(_target: t::InstanceRef) -> Result<t::DeleteStatus, t::Error> {
                    unsupported("compute.delete-instance")
                }
                fn list_instances(_query: t::InstanceQuery) -> Result<Vec<t::Instance>, t::Error> {
                    <$component>::run().map(|i| vec![i])
                }
            }
        };
    };
}
pub(crate) use compute_instances_only;
