//! The DigitalOcean REST client: base URL from the `endpoint` setting, JSON
//! requests through the sdk, DigitalOcean's error bodies mapped onto the WIT
//! `error`, and `links.pages.next` paging. The host adds the bearer token.

use provider_sdk::http::{Request, Response};
use provider_sdk::types::Error;
use provider_sdk::{errors, json, paginate, settings};
use serde::de::DeserializeOwned;

use crate::model::{self, Links};

/// Default API base URL.
pub const DEFAULT_ENDPOINT: &str = "https://api.digitalocean.com";
/// Items per page we ask for (DigitalOcean's maximum is 200).
pub const PER_PAGE: u32 = 200;
/// Stop following page links after this many pages.
const MAX_PAGES: usize = 500;
/// Per-request timeout.
const TIMEOUT_MS: u64 = 30_000;

/// A client bound to the configured endpoint.
pub struct Api {
    base: String,
}

impl Api {
    /// A client for the `endpoint` setting (default [`DEFAULT_ENDPOINT`]).
    pub fn from_settings() -> Self {
        Api {
            base: settings::endpoint("endpoint", DEFAULT_ENDPOINT),
        }
    }

    /// Absolute URL of an API path (`/v2/...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A page link from the API, rebased onto the configured endpoint so that
    /// paging keeps going through the same (allowed) origin even when the
    /// server writes another host into its links.
    pub fn rebase(&self, link: &str) -> String {
        if link.starts_with(&self.base) {
            return link.to_string();
        }
        let path = match link.split_once("://") {
            Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
            None => link,
        };
        self.url(path)
    }

    /// Send `req`; a non-2xx answer becomes the matching WIT `error`.
    pub fn send(&self, req: Request, what: &str) -> Result<Response, Error> {
        let resp = req
            .header("accept", "application/json")
            .timeout_ms(TIMEOUT_MS)
            .send()?;
        if resp.is_success() {
            return Ok(resp);
        }
        Err(map_error(&resp, what))
    }

    /// GET a path and parse the JSON answer.
    pub fn get_json<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<T, Error> {
        let resp = self.send(Request::get(self.url(path)), what)?;
        json::parse(&resp.body, what)
    }

    /// POST a JSON body to a path and parse the JSON answer.
    pub fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        what: &str,
    ) -> Result<T, Error> {
        let resp = self.send(Request::post(self.url(path)).json(body)?, what)?;
        json::parse(&resp.body, what)
    }

    /// DELETE a path. `Ok(false)` when it was already gone (404).
    pub fn delete(&self, path: &str, what: &str) -> Result<bool, Error> {
        match self.send(Request::delete(self.url(path)), what) {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every item of a paged listing. `first` is the path and query of the
    /// first page; `split` takes a parsed page apart into items and links.
    pub fn all_pages<P, T>(
        &self,
        first: &str,
        what: &str,
        split: impl Fn(P) -> (Vec<T>, Links),
    ) -> Result<Vec<T>, Error>
    where
        P: DeserializeOwned,
    {
        paginate::collect(MAX_PAGES, |cursor| {
            let url = match cursor {
                None => self.url(first),
                Some(link) => self.rebase(link),
            };
            let resp = self.send(Request::get(url), what)?;
            let page: P = json::parse(&resp.body, what)?;
            let (items, links) = split(page);
            Ok((items, links.next()))
        })
    }
}

/// Map a DigitalOcean error answer: capacity and quota messages first, then
/// the generic status mapping (401/403, 404, 422, 429 with `ratelimit-reset`,
/// 5xx).
pub fn map_error(resp: &Response, what: &str) -> Error {
    let message = errors::body_message(&resp.body);
    if matches!(resp.status, 400 | 422)
        && let Some(make) = model::classify_message(&message)
    {
        return make(format!("{what}: HTTP {}: {message}", resp.status));
    }
    errors::from_response(resp, what)
}
