//! Generic HTTP status -> WIT `error` mapping.
//!
//! | status | error |
//! |---|---|
//! | 401, 403 | `unauthorized` |
//! | 404 | `not-found` |
//! | 400, 422 (and other 4xx except 408) | `invalid-request` |
//! | 429 | `rate-limited`, `retry-after-ms` from `Retry-After` or a reset header |
//! | 408, 5xx | `transient` |
//!
//! Providers with their own error codes (AWS, capacity messages) check those
//! first and fall back to this.

use crate::Error;
use crate::http::{Response, header};
use crate::types::RateLimit;

/// Map a non-2xx response. `what` names the operation ("creating droplet
/// web-1"); the provider's message from the body is appended.
pub fn from_response(resp: &Response, what: &str) -> Error {
    from_status(resp.status, &resp.headers, &body_message(&resp.body), what)
}

/// Map a status code, headers and provider message onto the WIT `error`.
pub fn from_status(status: u16, headers: &[(String, String)], message: &str, what: &str) -> Error {
    let text = if message.is_empty() {
        format!("{what}: HTTP {status}")
    } else {
        format!("{what}: HTTP {status}: {message}")
    };
    match status {
        401 | 403 => Error::Unauthorized(format!(
            "{text} (check the provider's credential in the operator config)"
        )),
        404 => Error::NotFound(text),
        429 => Error::RateLimited(RateLimit {
            retry_after_ms: retry_after_ms(headers, crate::time::now_unix()),
            message: text,
        }),
        408 | 500..=599 => Error::Transient(text),
        400..=499 => Error::InvalidRequest(text),
        _ => Error::Other(text),
    }
}

/// How long to wait, from `Retry-After` (seconds or HTTP-date) or a
/// `RateLimit-Reset` / `X-RateLimit-Reset` header (epoch seconds, or seconds
/// from now when the value is small). `now` is the current Unix time.
pub fn retry_after_ms(headers: &[(String, String)], now: u64) -> Option<u64> {
    if let Some(v) = header(headers, "retry-after") {
        let v = v.trim();
        if let Ok(secs) = v.parse::<u64>() {
            return Some(secs.saturating_mul(1000));
        }
        if let Some(at) = crate::time::parse_http_date(v) {
            return Some(at.saturating_sub(now).saturating_mul(1000));
        }
    }
    for name in ["ratelimit-reset", "x-ratelimit-reset"] {
        let Some(n) = header(headers, name).and_then(|v| v.trim().parse::<f64>().ok()) else {
            continue;
        };
        if !n.is_finite() || n < 0.0 {
            continue;
        }
        let n = n as u64;
        // Large values are absolute epoch seconds, small ones a delay.
        let secs = if n > 1_000_000_000 {
            n.saturating_sub(now)
        } else {
            n
        };
        return Some(secs.saturating_mul(1000));
    }
    None
}

/// The provider's message from an error body: the `message`, `error_message`,
/// `error_description` or `error` string of a JSON object, else the first 300
/// characters of the text.
pub fn body_message(body: &[u8]) -> String {
    if let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(body) {
        for key in [
            "message",
            "error_message",
            "error_description",
            "error",
            "Message",
        ] {
            match map.get(key) {
                Some(serde_json::Value::String(s)) => return s.clone(),
                Some(serde_json::Value::Object(inner)) => {
                    if let Some(serde_json::Value::String(s)) = inner.get("message") {
                        return s.clone();
                    }
                }
                _ => {}
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// The message carried by any error case (for logs and wrapping).
pub fn message(err: &Error) -> &str {
    match err {
        Error::Unauthorized(m)
        | Error::NotFound(m)
        | Error::InvalidRequest(m)
        | Error::CapacityUnavailable(m)
        | Error::QuotaExceeded(m)
        | Error::RegionUnavailable(m)
        | Error::Unsupported(m)
        | Error::Denied(m)
        | Error::Transient(m)
        | Error::Other(m) => m,
        Error::RateLimited(r) => &r.message,
    }
}

/// The `unsupported` error for a function a provider does not offer.
pub fn unsupported(what: &str) -> Error {
    Error::Unsupported(format!("{what} is not supported by this provider"))
}
