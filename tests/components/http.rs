// A minimal blocking HTTP GET over `wasi:http/outgoing-handler`, shared by the
// test components that make outbound calls (`well-behaved`, `hostile-net`).
// Included by their `src/lib.rs` with `mod http { include!("../../http.rs"); }`.
// Deliberately tiny: no URL crate, no redirects, no body cap (the host caps
// response bodies, which is one of the things the tests check).

use crate::blueprint::provider::types::Error;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingRequest, Scheme, http_error_code,
};
use wasip2::io::streams::StreamError;

/// A response read to the end.
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The body, decoded as UTF-8 with replacement characters.
    pub body: String,
}

/// Sends `GET url` with `headers` and reads the whole response.
///
/// `url` must be `http://authority/path` or `https://authority/path`. Errors from
/// the host arrive as `wasi:http` error codes and are mapped by [`map_error_code`].
pub fn get(url: &str, headers: Fields) -> Result<Response, Error> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(Error::InvalidRequest(format!(
            "url `{url}` must start with http:// or https://"
        )));
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };

    let request = OutgoingRequest::new(headers);
    let refused = |what: &str| Error::InvalidRequest(format!("{what} of `{url}` refused"));
    request
        .set_method(&Method::Get)
        .map_err(|()| refused("method"))?;
    request
        .set_scheme(Some(&scheme))
        .map_err(|()| refused("scheme"))?;
    request
        .set_authority(Some(authority))
        .map_err(|()| refused("authority"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| refused("path"))?;

    // A GET has no body: never opening it sends an empty one.
    let pending = outgoing_handler::handle(request, None).map_err(map_error_code)?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(map_error_code(code)),
        Some(Err(())) => return Err(Error::Other("response was already taken".into())),
        None => return Err(Error::Other("response not ready after block".into())),
    };

    let status = response.status();
    let body = response
        .consume()
        .map_err(|()| Error::Other("response body was already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|()| Error::Other("response body stream was already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(match http_error_code(&error) {
                    Some(code) => map_error_code(code),
                    None => Error::Other(format!(
                        "reading the body of `{url}`: {}",
                        error.to_debug_string()
                    )),
                });
            }
        }
    }
    // The stream is a child of the body: drop it before finishing the body.
    drop(stream);
    drop(IncomingBody::finish(body));

    Ok(Response {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Maps a `wasi:http` error code onto our error: a request the host's policy
/// refused is `denied`; anything else is `other` with the code's debug text,
/// so a test can see exactly what the host answered.
pub fn map_error_code(code: ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::Denied(format!("{code:?}")),
        other => Error::Other(format!("{other:?}")),
    }
}
