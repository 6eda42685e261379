//! The pooled HTTPS client outbound requests go through: OS trust store,
//! HTTP/1.1 and HTTP/2, explicit connect / first-byte / total timeouts, and a
//! resolver that only hands out addresses the policy vetted (so a name cannot
//! be re-resolved to a private address between the policy check and the
//! connect).
//!
//! Each provider gets its own pool ([`SharedHttpClient::for_provider`]) with
//! a cap on the connections it holds open, in use or idle: every connection
//! is a file descriptor of the host process, and one provider must not use
//! up the descriptors the others (and the host) need.

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
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioExecutor;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

type Https = hyper_rustls::HttpsConnector<HttpConnector<VettedResolver>>;

/// A pooled client: the host's shared one, or a provider's own.
#[derive(Clone)]
pub struct SharedHttpClient {
    client: Client<LimitedConnector<Https>, Full<Bytes>>,
    https: Https,
    vetted: VettedNames,
    config: HttpClientConfig,
    connections: Option<Arc<Semaphore>>,
    max_connections: usize,
}

impl std::fmt::Debug for SharedHttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedHttpClient")
            .field("config", &self.config)
            .field(
                "max_connections",
                &self.connections.as_ref().map(|_| self.max_connections),
            )
            .finish_non_exhaustive()
    }
}

impl SharedHttpClient {
    /// Build the client with the OS trust store (no connection cap: the
    /// host's own client; providers get [`Self::for_provider`]).
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
        Ok(Self::pool(https, vetted, config, None, 32))
    }

    fn pool(
        https: Https,
        vetted: VettedNames,
        config: HttpClientConfig,
        connections: Option<Arc<Semaphore>>,
        max_idle_per_host: usize,
    ) -> Self {
        let max_connections = connections
            .as_ref()
            .map(|c| c.available_permits())
            .unwrap_or(0);
        let connector = LimitedConnector {
            inner: https.clone(),
            connections: connections.clone().map(|c| (c, max_connections)),
            wait: config.connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(max_idle_per_host)
            .build(connector);
        Self {
            client,
            https,
            vetted,
            config,
            connections,
            max_connections,
        }
    }

    /// A client of its own for one provider: same trust store, resolver and
    /// timeouts, its own pool, and at most `max_connections` connections
    /// open at once (in use or idle). A connection past the cap waits for
    /// one to close, up to the connect timeout, then fails.
    pub fn for_provider(&self, max_connections: u32) -> Self {
        let max = max_connections.max(1) as usize;
        Self::pool(
            self.https.clone(),
            self.vetted.clone(),
            self.config,
            Some(Arc::new(Semaphore::new(max))),
            max.min(32),
        )
    }

    /// Connections this client holds open now (0 for the uncapped one).
    pub fn open_connections(&self) -> usize {
        self.connections
            .as_ref()
            .map(|c| self.max_connections - c.available_permits())
            .unwrap_or(0)
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

/// Why a connection was not opened: the provider's connections are all in
/// use or idle in its pool.
#[derive(Debug, thiserror::Error)]
#[error("all {max} connections this provider may hold open are in use or idle (max_connections)")]
pub struct ConnectionCapReached {
    /// The cap.
    pub max: usize,
}

/// A connector that holds one permit per open connection.
#[derive(Clone)]
pub struct LimitedConnector<C> {
    inner: C,
    /// The permits and how many there are.
    connections: Option<(Arc<Semaphore>, usize)>,
    wait: Duration,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<C> tower_service::Service<http::Uri> for LimitedConnector<C>
where
    C: tower_service::Service<http::Uri> + Clone + Send + 'static,
    C::Response: Send,
    C::Future: Send,
    C::Error: Into<BoxError>,
{
    type Response = Permitted<C::Response>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        // The clone that was polled ready makes the call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (connections, wait) = (self.connections.clone(), self.wait);
        Box::pin(async move {
            let permit = match connections {
                None => None,
                Some((sem, max)) => match tokio::time::timeout(wait, sem.acquire_owned()).await {
                    Ok(Ok(p)) => Some(p),
                    _ => {
                        return Err(
                            Box::new(std::io::Error::other(ConnectionCapReached { max }))
                                as BoxError,
                        );
                    }
                },
            };
            let io = inner.call(uri).await.map_err(Into::into)?;
            Ok(Permitted {
                io,
                _permit: permit,
            })
        })
    }
}

/// A connection and the permit it holds until it closes.
pub struct Permitted<T> {
    io: T,
    _permit: Option<OwnedSemaphorePermit>,
}

impl<T: Connection> Connection for Permitted<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Permitted<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Permitted<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
