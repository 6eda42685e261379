//! Shared test helpers: component paths, a temporary host environment, and a
//! small local HTTP server.

#![allow(dead_code, reason = "not every test module uses every helper")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use blueprint_remote_providers::{Config, Host};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use tempfile::TempDir;

/// Built `.wasm` of a component (shipped or test), by file stem.
pub fn component_path(stem: &str) -> PathBuf {
    let p = Path::new(env!("BPR_TEST_GUEST_DIR")).join(format!("{stem}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: the host build script builds it",
        p.display()
    );
    p
}

/// The second build of `well_behaved` (reports version 2).
pub fn well_behaved_v2() -> PathBuf {
    Path::new(env!("BPR_TEST_GUEST_V2_DIR")).join("well_behaved.wasm")
}

/// Artifact cache shared by all tests, so each component compiles once.
pub fn shared_artifacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("bpr-artifacts")
}

/// The key vouching for [`shared_artifacts`] (outside that directory), so
/// tests with different state directories still share compiled artifacts.
pub fn shared_artifact_key() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("bpr-artifacts.key")
}

/// A temporary host environment: a providers dir, a state dir, a config.
pub struct TestEnv {
    pub dir: TempDir,
    pub providers: PathBuf,
    pub state: PathBuf,
}

impl TestEnv {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let providers = dir.path().join("providers");
        let state = dir.path().join("state");
        std::fs::create_dir_all(&providers).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        Self {
            dir,
            providers,
            state,
        }
    }

    /// Copy component `stem` into the providers dir (as `<stem>.wasm`).
    pub fn add(&self, stem: &str) -> &Self {
        std::fs::copy(
            component_path(stem),
            self.providers.join(format!("{stem}.wasm")),
        )
        .unwrap();
        self
    }

    /// The `[host]` section for this env; `integrity` is "warn" or "enforce".
    pub fn host_section(&self, integrity: &str, watch: bool) -> String {
        format!(
            "[host]\nproviders_dir = {:?}\nstate_dir = {:?}\nartifact_dir = {:?}\nartifact_key_file = {:?}\nlock_file = {:?}\nintegrity = {integrity:?}\nwatch = {watch}\n",
            self.providers,
            self.state,
            shared_artifacts(),
            shared_artifact_key(),
            self.dir.path().join("providers.lock"),
        )
    }

    /// Parse `[host]` (warn mode, no watch) + `rest` and start a host.
    pub async fn start(&self, rest: &str) -> Host {
        self.start_with(&self.host_section("warn", false), rest)
            .await
    }

    pub async fn start_with(&self, host_section: &str, rest: &str) -> Host {
        let text = format!("{host_section}\n{rest}");
        let cfg = Config::from_toml_str(&text, "test.toml").expect("test config parses");
        Host::start(cfg).await.expect("host starts")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.path().join("providers.lock")
    }
}

/// A local HTTP server answering every request with `handler`.
pub struct TestServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start<F>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let handler = handler.clone();
                        async move { Ok::<_, Infallible>(handler(req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, task }
    }

    /// A server answering 200 with a fixed body.
    pub async fn fixed(body: &'static str) -> Self {
        Self::start(move |_| Response::new(Full::new(Bytes::from_static(body.as_bytes())))).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Everything the host logged in this test binary (all tests share it; filter
/// by something unique to your test).
pub fn captured_logs() -> String {
    install_log_capture();
    String::from_utf8_lossy(&LOGS.lock().unwrap()).to_string()
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());
static LOG_INIT: std::sync::Once = std::sync::Once::new();

struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install a global subscriber that records `info` and above into memory.
pub fn install_log_capture() {
    LOG_INIT.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_ansi(false)
            .with_writer(|| LogWriter)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Serialises every test that uses moto: its SigV4 checking is one switch for
/// the whole moto process. The guard also switches checking off; a test that
/// needs it on turns it on while it holds the guard.
pub async fn moto_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    let guard = LOCK
        .get_or_init(|| tokio::sync::Mutex::new(()))
        .lock()
        .await;
    if let Ok(url) = std::env::var("BPR_TEST_MOTO_URL") {
        let _ = reqwest::Client::new()
            .post(format!("{url}/moto-api/reset-auth"))
            .body("inf")
            .send()
            .await;
    }
    guard
}

/// The `hosts = [...]` line of an `aws-sigv4` credential that signs for the
/// stand-in at `endpoint` (a stand-in is signed for only when listed).
pub fn sigv4_hosts_line(endpoint: &str) -> String {
    let host = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest)
        .trim_end_matches('/');
    format!("hosts = [{host:?}]\n")
}
