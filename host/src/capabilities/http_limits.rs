//! What one provider may do over HTTP besides reaching its allowlist: which
//! methods, how many requests per call and at once, how many connections,
//! and how much host memory a call may hold. Set per provider in
//! `[providers.<name>]`; every default is safe for an untrusted component.
//!
//! ```toml
//! [providers.aws]
//! methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
//! max_requests_per_call = 1000
//! max_concurrent_requests_per_call = 16
//! max_concurrent_requests = 64        # all calls of the provider together
//! max_connections = 128               # open connections, in use or idle
//! host_memory_mib = 256               # default: the provider's memory_mib
//! ```

use http::Method;

/// Methods a provider may use unless the operator says otherwise: what the
/// cloud control-plane APIs need. `TRACE` and `CONNECT` are never needed and
/// are refused (a `TRACE` would echo the host's credential back to the guest).
pub const DEFAULT_METHODS: [Method; 6] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
];

/// Resource-table entries (wasi handles: fields, requests, bodies, streams,
/// pollables) one call may hold at once. A provider needs a few dozen; each
/// costs the host well under 1 KiB beyond what the memory budget counts.
pub const MAX_HANDLES: usize = 8192;

/// The outbound limits of one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundLimits {
    /// Methods the provider may send. Default: `DEFAULT_METHODS`.
    pub methods: Vec<Method>,
    /// Requests one call may send in total. Default: 1,000.
    pub max_requests_per_call: u32,
    /// Requests one call may have in flight at once. Default: 16.
    pub max_concurrent_requests_per_call: u32,
    /// Requests all calls of the provider together may have in flight at
    /// once; a request over it waits for a slot (up to the connect timeout).
    /// Default: 64.
    pub max_concurrent_requests: u32,
    /// Connections the provider may hold open, in use or idle in its pool;
    /// each is a file descriptor of the host process. Default: 128.
    pub max_connections: u32,
    /// Host memory one call may hold for wasi:http (header fields, request
    /// and response bodies buffered on the host, strings of requests), in
    /// bytes. `None` (the default) means the provider's guest memory cap.
    pub host_memory: Option<usize>,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        Self {
            methods: DEFAULT_METHODS.to_vec(),
            max_requests_per_call: 1000,
            max_concurrent_requests_per_call: 16,
            max_concurrent_requests: 64,
            max_connections: 128,
            host_memory: None,
        }
    }
}

/// A method the operator listed cannot be allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadMethod {
    /// Not an HTTP method token.
    #[error("{name:?} is not an HTTP method")]
    NotAMethod {
        /// The method as written.
        name: String,
    },
    /// `TRACE` or `CONNECT`.
    #[error("{method} may not be allowed: it would reflect or tunnel the host's credentials")]
    Forbidden {
        /// The method, upper-case.
        method: String,
    },
}

impl OutboundLimits {
    /// Whether `method` is allowed.
    pub fn allows(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// Parse an operator's method list (`["GET", "POST"]`): upper-case HTTP
    /// tokens; `TRACE` and `CONNECT` are refused outright.
    pub fn parse_methods(names: &[String]) -> Result<Vec<Method>, BadMethod> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let upper = name.to_ascii_uppercase();
            let method = Method::from_bytes(upper.as_bytes())
                .map_err(|_| BadMethod::NotAMethod { name: name.clone() })?;
            if method == Method::TRACE || method == Method::CONNECT {
                return Err(BadMethod::Forbidden { method: upper });
            }
            if !out.contains(&method) {
                out.push(method);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_methods_exclude_trace_and_connect() {
        let l = OutboundLimits::default();
        assert!(l.allows(&Method::GET) && l.allows(&Method::DELETE));
        assert!(!l.allows(&Method::TRACE));
        assert!(!l.allows(&Method::CONNECT));
        assert!(!l.allows(&Method::OPTIONS));
    }

    #[test]
    fn an_operator_cannot_allow_trace() {
        let err = OutboundLimits::parse_methods(&["get".into(), "TRACE".into()]).unwrap_err();
        assert!(err.to_string().contains("TRACE"), "{err}");
        assert_eq!(
            OutboundLimits::parse_methods(&["get".into(), "OPTIONS".into(), "GET".into()]).unwrap(),
            vec![Method::GET, Method::OPTIONS]
        );
        assert!(OutboundLimits::parse_methods(&["G T".into()]).is_err());
    }
}
