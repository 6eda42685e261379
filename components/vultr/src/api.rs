//! The Vultr REST client: base URL from a setting, JSON requests through the
//! sdk, Vultr's `{"error": ...}` answers mapped onto the WIT `error`
//! ([`crate::errors`]), and cursor paging (`meta.links.next` passed back as
//! `cursor`, `""` on the last page). The host adds the bearer key; the public
//! endpoints (`/plans`, `/plans-metal`, `/os`, `/kubernetes/versions`) need none.

use provider_sdk::http::{Request, Response, percent_encode};
use provider_sdk::types::Error;
use provider_sdk::{json, paginate, settings};
use serde::de::DeserializeOwned;

use crate::errors;
use crate::model::Meta;

/// Default API base URL (paths such as `/instances` are appended).
pub const DEFAULT_ENDPOINT: &str = "https://api.vultr.com/v2";
/// Items per page we ask for (Vultr's maximum is 500).
pub const PER_PAGE: u32 = 500;
/// Stop following cursors after this many pages.
const MAX_PAGES: usize = 200;
/// Per-request timeout.
const TIMEOUT_MS: u64 = 30_000;

/// A client bound to one base URL.
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

    /// A client for the price catalogue: the `plans_endpoint` setting, else the
    /// `endpoint` setting, else [`DEFAULT_ENDPOINT`].
    pub fn for_plans() -> Self {
        let api = Self::from_settings();
        Api {
            base: settings::endpoint("plans_endpoint", &api.base),
        }
    }

    /// Absolute URL of an API path (`/instances?...`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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
        Err(errors::from_response(&resp, what))
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

    /// Every item of a cursor-paged listing. `path` is the path and query of
    /// the first page (`per_page` is added); `split` takes a parsed page apart
    /// into its items and its `meta`.
    pub fn all_pages<P, T>(
        &self,
        path: &str,
        what: &str,
        split: impl Fn(P) -> (Vec<T>, Option<Meta>),
    ) -> Result<Vec<T>, Error>
    where
        P: DeserializeOwned,
    {
        let sep = if path.contains('?') { '&' } else { '?' };
        let first = format!("{path}{sep}per_page={PER_PAGE}");
        paginate::collect(MAX_PAGES, |cursor| {
            let url = match cursor {
                None => self.url(&first),
                Some(c) => self.url(&format!("{first}&cursor={}", percent_encode(c))),
            };
            let resp = self.send(Request::get(url), what)?;
            let page: P = json::parse(&resp.body, what)?;
            let (items, meta) = split(page);
            Ok((items, meta.and_then(|m| m.next())))
        })
    }
}

/// `id` if it is safe as one URL path segment (Vultr ids are UUIDs).
pub fn path_segment<'a>(id: &'a str, what: &str) -> Result<&'a str, Error> {
    if !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(id)
    } else {
        Err(Error::InvalidRequest(format!(
            "`{id}` is not a valid Vultr {what}"
        )))
    }
}
