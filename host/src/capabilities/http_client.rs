//! The one pooled HTTPS client every provider's outbound requests go through:
//! OS trust store, HTTP/1.1 and HTTP/2, explicit connect / first-byte / total
//! timeouts, and a resolver that only hands out addresses the policy vetted
//! (so a name cannot be re-resolved to a private address between the policy
//! check and the connect).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

/// Timeouts of the shared client. Defaults suit cloud control-plane APIs.
#[derive(Debug, Clone, Copy)]
pub struct HttpClientConfig {
    /// TCP (and TLS) connect timeout. Default: 10 s.
    pub connect_timeout: Duration,
    /// Time from sending the request to the response head. Default: 30 s.
    pub first_byte_timeout: Duration,
    /// Whole request including reading the body. Default: 120 s.
    pub total_timeout: Duration,
    /// Idle pooled connections are closed after this. Default: 90 s.
    pub pool_idle_timeout: Duration,
}

impl Default for HttpClientConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// How long a vetted resolution may be used for a new connection.
const VETTED_TTL: Duration = Duration::from_secs(60);

/// Checked addresses of one name, and when they were checked.
type Vetted = (Vec<IpAddr>, Instant);

/// Names the policy has resolved and checked, with their addresses.
#[derive(Clone, Default)]
pub struct VettedNames {
    inner: Arc<Mutex<HashMap<String, Vetted>>>,
}

impl VettedNames {
    /// Record the checked addresses of `host`.
    pub fn insert(&self, host: &str, addrs: Vec<IpAddr>) {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 4096 {
            map.retain(|_, (_, at)| at.elapsed() < VETTED_TTL);
        }
        map.insert(host.to_string(), (addrs, Instant::now()));
    }

    fn get(&self, host: &str) -> Option<Vec<IpAddr>> {
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.get(host)
            .filter(|(_, at)| at.elapsed() < VETTED_TTL)
            .map(|(a, _)| a.clone())
    }
}

/// Resolver for the connector: only vetted names resolve.
#[derive(Clone)]
pub struct VettedResolver(VettedNames);

impl tower_service::Service<Name> for VettedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let found = self.0.get(name.as_str());
        let host = name.as_str().to_string();
        Box::pin(async move {
            match found {
                // The connector fills in the port.
                Some(addrs) => Ok(addrs
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter()),
                None => Err(std::io::Error::other(format!(
                    "{host} was not resolved by the outbound policy"
                ))),
            }
        })
    }
}

/// The shared client.
#[derive(Clone)]
pub struct SharedHttpClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector<VettedResolver>>, Full<Bytes>>,
    vetted: VettedNames,
    config: HttpClientConfig,
}

impl std::fmt::Debug for SharedHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedHttpClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SharedHttpClient {
    /// Build the client with the OS trust store.
    pub fn new(config: HttpClientConfig) -> std::io::Result<Self> {
        let vetted = VettedNames::default();
        let mut http = HttpConnector::new_with_resolver(VettedResolver(vetted.clone()));
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.connect_timeout));
        http.set_nodelay(true);
        let _ = rustls::crypto::ring::default_provider().install_default();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(32)
            .build(https);
        Ok(Self {
            client,
            vetted,
            config,
        })
    }

    /// The client's timeouts.
    pub fn config(&self) -> HttpClientConfig {
        self.config
    }

    /// The vetted-name table the policy writes into.
    pub fn vetted(&self) -> &VettedNames {
        &self.vetted
    }

    /// Send a request; returns the response head and a body still to read.
    pub async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(req).await
    }
}
