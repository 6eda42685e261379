//! The Compute Engine and GKE REST endpoints: base URLs from the settings, JSON
//! calls whose failures are mapped by [`crate::errors`]. The host adds the
//! OAuth token (`gcp-oauth`); this module never sets `Authorization`.

use provider_sdk::http::{Request, Response, percent_encode};
use provider_sdk::{Error, json, settings};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::errors;

/// Default Compute Engine v1 base URL.
pub const DEFAULT_COMPUTE: &str = "https://compute.googleapis.com/compute/v1";
/// Default GKE base URL.
pub const DEFAULT_CONTAINER: &str = "https://container.googleapis.com";
/// Largest API answer read (an aggregated list page of 500 instances fits).
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// Where the APIs are and which project they act on.
#[derive(Debug, Clone)]
pub struct Api {
    compute: String,
    container: String,
    project: Option<String>,
}

/// An API answer that is not 2xx, kept whole so callers can look at it
/// (a 409 on a retried insert is expected) before mapping it.
#[derive(Debug)]
pub struct Failed {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
    /// `Retry-After` in milliseconds, when the answer had one.
    pub retry_after_ms: Option<u64>,
    /// What the call was, for messages.
    pub what: String,
}

impl Failed {
    /// The WIT error of this answer.
    pub fn into_error(self) -> Error {
        errors::from_http(self.status, &self.body, self.retry_after_ms, &self.what)
    }

    /// True for a 409 saying the resource already exists.
    pub fn already_exists(&self) -> bool {
        errors::is_already_exists(self.status, &self.body)
    }
}

/// A call's outcome: the parsed answer, a Google error answer, or a transport
/// failure (already a WIT error).
pub enum Outcome<T> {
    /// 2xx, parsed.
    Ok(T),
    /// A non-2xx answer.
    Failed(Failed),
}

impl<T> Outcome<T> {
    /// The answer, or the mapped error.
    pub fn ok(self) -> Result<T, Error> {
        match self {
            Outcome::Ok(v) => Ok(v),
            Outcome::Failed(f) => Err(f.into_error()),
        }
    }

    /// `Ok(None)` for a 404, else like [`Outcome::ok`].
    pub fn found(self) -> Result<Option<T>, Error> {
        match self {
            Outcome::Ok(v) => Ok(Some(v)),
            Outcome::Failed(f) if f.status == 404 => Ok(None),
            Outcome::Failed(f) => Err(f.into_error()),
        }
    }
}

impl Api {
    /// From the `compute_endpoint`, `container_endpoint` and `project` settings.
    pub fn from_settings() -> Self {
        Api {
            compute: settings::endpoint("compute_endpoint", DEFAULT_COMPUTE),
            container: settings::endpoint("container_endpoint", DEFAULT_CONTAINER),
            project: settings::get("project"),
        }
    }

    /// The project, or an error saying to configure it.
    pub fn project(&self) -> Result<&str, Error> {
        let p = self.project.as_deref().ok_or_else(|| {
            Error::InvalidRequest(
                "setting `project` is not set: give the Google Cloud project id in [providers.gcp.settings]"
                    .into(),
            )
        })?;
        let ok = p.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b':' || b == b'.'
        });
        if p.is_empty() || !ok {
            return Err(Error::InvalidRequest(format!(
                "setting `project` = `{p}` is not a Google Cloud project id"
            )));
        }
        Ok(p)
    }

    /// `<compute>/projects/<project>/<path>`.
    pub fn compute(&self, path: &str) -> Result<String, Error> {
        Ok(format!(
            "{}/projects/{}/{path}",
            self.compute,
            self.project()?
        ))
    }

    /// `<container>/v1/projects/<project>/locations/<location>/<path>`.
    pub fn container(&self, location: &str, path: &str) -> Result<String, Error> {
        Ok(format!(
            "{}/v1/projects/{}/locations/{location}/{path}",
            self.container,
            self.project()?
        ))
    }

    /// GET `url` and parse the answer.
    pub fn get<T: DeserializeOwned>(&self, url: &str, what: &str) -> Result<Outcome<T>, Error> {
        self.call(Request::get(url), what)
    }

    /// POST `body` as JSON to `url`.
    pub fn post<T: DeserializeOwned>(
        &self,
        url: &str,
        body: &Value,
        what: &str,
    ) -> Result<Outcome<T>, Error> {
        self.call(Request::post(url).json(body)?, what)
    }

    /// DELETE `url`.
    pub fn delete<T: DeserializeOwned>(&self, url: &str, what: &str) -> Result<Outcome<T>, Error> {
        self.call(Request::delete(url), what)
    }

    /// Send `req` with the common headers and read the answer.
    pub fn call<T: DeserializeOwned>(&self, req: Request, what: &str) -> Result<Outcome<T>, Error> {
        let resp = req
            .header("accept", "application/json")
            .max_response_bytes(MAX_ANSWER)
            .send()?;
        decode(resp, what)
    }
}

/// Parse a 2xx answer as `T`, or keep a failure for the caller.
pub fn decode<T: DeserializeOwned>(resp: Response, what: &str) -> Result<Outcome<T>, Error> {
    if resp.is_success() {
        return json::parse(&resp.body, &format!("the answer to {what}")).map(Outcome::Ok);
    }
    let retry_after_ms =
        provider_sdk::errors::retry_after_ms(&resp.headers, provider_sdk::time::now_unix());
    Ok(Outcome::Failed(Failed {
        status: resp.status,
        body: resp.body,
        retry_after_ms,
        what: what.to_string(),
    }))
}

/// `?key=value&...` with values percent-encoded; empty when there are none.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// `url` with `pairs` appended to its query string (which it may already have).
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let q = query(pairs);
    match (url.contains('?'), q.strip_prefix('?')) {
        (true, Some(rest)) => format!("{url}&{rest}"),
        _ => format!("{url}{q}"),
    }
}

/// The last segment of a resource URL (`.../machineTypes/n2-standard-2` -> `n2-standard-2`).
pub fn last_segment(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// True when `s` may be used as one path segment (no `/`, `?`, `#`, `..`).
pub fn check_segment(s: &str, what: &str) -> Result<(), Error> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "{what} `{s}` is not a valid Google Cloud name"
        )))
    }
}
