//! Issues 18 and 19: the wasi:http boundary under attack and at scale. The
//! host's own `outgoing-handler.handle` keeps every check of the crate's;
//! request bodies of every size get through (the sdk finishes them before
//! `handle`); host memory a call makes the host hold is budgeted; requests
//! per call and at once are capped; abandoned requests are audited; methods,
//! userinfo, IPv6 forms and content-length are checked. Each test that
//! stands for a hole found in issue 19 failed before its fix.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blueprint_remote_providers::wit::{InstanceQuery, OfferQuery, ProviderError};
use blueprint_remote_providers::{CallError, Host};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::support::{TestEnv, TestServer, component_path};

fn any_instances() -> InstanceQuery {
    InstanceQuery {
        regions: vec![],
        labels: vec![],
    }
}

/// What the echo server saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    host: String,
    auth: String,
    len: usize,
}

/// A local server that reads each request's body and answers
/// `method=<m> host=<h> len=<body bytes> auth=<a>`, recording what it saw.
struct EchoServer {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EchoServer {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn echo_server() -> (EchoServer, Arc<Mutex<Vec<Seen>>>) {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let s = s.clone();
                        async move {
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .map(|v| v.to_str().unwrap_or("?").to_string())
                                    .unwrap_or_default()
                            };
                            let (method, host, auth) = (
                                req.method().to_string(),
                                header("host"),
                                header("authorization"),
                            );
                            let len = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes().len())
                                .unwrap_or(usize::MAX);
                            let text = format!("method={method} host={host} len={len} auth={auth}");
                            s.lock().unwrap().push(Seen {
                                method,
                                host,
                                auth,
                                len,
                            });
                            Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                                Bytes::from(text),
                            )))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (EchoServer { addr, task }, seen)
}

/// Start a host with `hostile_request` (and `well_behaved`) allowed to reach
/// `addr` exactly, a bearer token for it, and these settings.
async fn request_host(
    env: &TestEnv,
    addr: std::net::SocketAddr,
    url: &str,
    settings: &str,
) -> Host {
    env.add("hostile_request").add("well_behaved");
    let token = env.dir.path().join("token");
    std::fs::write(&token, "boundary-s3cret").unwrap();
    env.start(&format!(
        "[providers.hostile_request]\nallow = [\"http://{addr}\"]\ncall_timeout_ms = 10000\n\
         [providers.hostile_request.credential]\nkind = \"bearer\"\ntoken_file = {token:?}\n\
         [providers.hostile_request.settings]\nurl = {url:?}\n{settings}\n"
    ))
    .await
}

/// The `detail` of `hostile_request`'s report, or its error.
async fn run_request(host: &Host) -> Result<String, CallError> {
    host.provider("hostile_request")
        .unwrap()
        .list_instances(any_instances())
        .await
        .map(|found| found[0].detail.clone().unwrap_or_default())
}

fn provider_message(err: &CallError) -> String {
    match err.provider_error() {
        Some(ProviderError::Other(m) | ProviderError::Denied(m)) => m.clone(),
        Some(other) => format!("{other:?}"),
        None => err.to_string(),
    }
}

async fn assert_well_behaved_works(host: &Host) {
    let offers = host
        .provider("well_behaved")
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap();
    assert_eq!(offers.len(), 2);
}

#[test]
fn the_boundary_test_components_are_built() {
    for c in [
        "hostile_request",
        "hostile_memory",
        "hostile_flood",
        "hostile_abandon",
        "sdk_client",
    ] {
        assert!(component_path(c).exists());
    }
}

// ---- issue 18 item 1: the host's own `handle` keeps the crate's checks ----

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_up_to_the_cap_go_through_finished_before_or_after_handle() {
    let (server, _) = echo_server().await;
    for finish in ["before", "after"] {
        for len in [0usize, 4097, 64 * 1024, 1 << 20] {
            let env = TestEnv::new();
            let settings =
                format!("method = \"POST\"\nbody_len = \"{len}\"\nfinish = \"{finish}\"\n");
            let host = request_host(&env, server.addr, &server.url("/body"), &settings).await;
            let detail = run_request(&host)
                .await
                .unwrap_or_else(|e| panic!("{len} bytes, finished {finish} handle: {e}"));
            assert!(
                detail.contains(&format!("len={len} ")),
                "{len} bytes, finished {finish}: {detail}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_one_byte_over_the_cap_is_refused_naming_the_cap() {
    let (server, seen) = echo_server().await;
    for finish in ["before", "after"] {
        let env = TestEnv::new();
        let settings = format!(
            "method = \"POST\"\nbody_len = \"{}\"\nfinish = \"{finish}\"\n",
            (1 << 20) + 1
        );
        let host = request_host(&env, server.addr, &server.url("/big"), &settings).await;
        let err = run_request(&host).await.unwrap_err();
        let msg = provider_message(&err);
        assert!(
            msg.contains("HttpRequestBodySize(Some(1048576))"),
            "finished {finish}: {msg}"
        );
    }
    assert!(seen.lock().unwrap().is_empty(), "nothing may be sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_header_is_the_authority_and_the_bearer_token_is_added() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let host = request_host(&env, server.addr, &server.url("/h"), "").await;
    let detail = run_request(&host).await.unwrap();
    assert!(
        detail.contains(&format!("host={} ", server.addr)),
        "{detail}"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].auth, "Bearer boundary-s3cret");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].host, server.addr.to_string());
    assert_eq!(seen[0].len, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn forbidden_headers_are_refused_when_the_guest_sets_them() {
    let (server, seen) = echo_server().await;
    for header in [
        "host=evil.example",
        "connection=close",
        "authorization=Bearer x",
        "transfer-encoding=chunked",
    ] {
        let env = TestEnv::new();
        let host = request_host(
            &env,
            server.addr,
            &server.url("/f"),
            &format!("header = {header:?}\n"),
        )
        .await;
        let err = run_request(&host).await.unwrap_err();
        let msg = provider_message(&err);
        assert!(
            msg.contains("header refused") && msg.contains("Forbidden"),
            "{header}: {msg}"
        );
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheme_other_than_http_or_https_is_a_protocol_error() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let host = request_host(&env, server.addr, &server.url("/s"), "scheme = \"ftp\"\n").await;
    let err = run_request(&host).await.unwrap_err();
    assert!(
        provider_message(&err).contains("HttpProtocolError"),
        "{err}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_without_an_authority_is_refused() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let host = request_host(
        &env,
        server.addr,
        &server.url("/a"),
        "authority = \"none\"\n",
    )
    .await;
    let err = run_request(&host).await.unwrap_err();
    assert!(
        provider_message(&err).contains("HttpRequestUriInvalid"),
        "{err}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn content_length_on_a_request_without_a_body_is_refused() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let host = request_host(
        &env,
        server.addr,
        &server.url("/cl"),
        "method = \"POST\"\ncontent_length = \"10\"\n",
    )
    .await;
    let err = run_request(&host).await.unwrap_err();
    assert!(
        provider_message(&err).contains("HttpRequestBodySize(Some(0))"),
        "{err}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

// ---- issue 19 item 7: methods, userinfo, IPv6 forms, content-length ----

#[tokio::test(flavor = "multi_thread")]
async fn trace_is_never_forwarded_with_the_bearer_token() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let host = request_host(&env, server.addr, &server.url("/t"), "method = \"TRACE\"\n").await;
    let err = run_request(&host).await.unwrap_err();
    assert!(
        provider_message(&err).contains("HttpRequestMethodInvalid"),
        "{err}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "TRACE reached the server: {:?}",
        seen.lock().unwrap()
    );
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_extension_method_needs_the_operators_consent() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let host = request_host(
        &env,
        server.addr,
        &server.url("/p"),
        "method = \"PROPFIND\"\n",
    )
    .await;
    let err = run_request(&host).await.unwrap_err();
    assert!(
        provider_message(&err).contains("HttpRequestMethodInvalid"),
        "{err}"
    );
    assert!(seen.lock().unwrap().is_empty());

    let env = TestEnv::new();
    env.add("hostile_request");
    let host = env
        .start(&format!(
            "[providers.hostile_request]\nallow = [\"http://{}\"]\nmethods = [\"GET\", \"PROPFIND\"]\n\
             [providers.hostile_request.settings]\nurl = {:?}\nmethod = \"PROPFIND\"\n",
            server.addr,
            server.url("/p")
        ))
        .await;
    let detail = run_request(&host).await.unwrap();
    assert!(detail.contains("method=PROPFIND"), "{detail}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_authority_with_userinfo_is_refused_and_nothing_is_sent() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let authority = format!("allowed-host@{}", server.addr);
    let host = request_host(
        &env,
        server.addr,
        &server.url("/u"),
        &format!("authority = {authority:?}\n"),
    )
    .await;
    let err = run_request(&host).await.unwrap_err();
    assert!(
        provider_message(&err).contains("HttpRequestUriInvalid"),
        "{err}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "sent: {:?}",
        seen.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_forms_that_carry_a_private_ipv4_fail_the_non_public_check() {
    let (server, seen) = echo_server().await;
    let port = server.addr.port();
    for literal in [
        "::7f00:1",        // ::127.0.0.1, IPv4-compatible
        "64:ff9b::7f00:1", // NAT64 of 127.0.0.1
        "2002:7f00:1::1",  // 6to4 of 127.0.0.1
        "fec0::1",         // site-local
    ] {
        let env = TestEnv::new();
        env.add("hostile_request");
        // A port wildcard is not an exact rule: the address must be public.
        let host = env
            .start(&format!(
                "[providers.hostile_request]\nallow = [\"http://[{literal}]:*\"]\ncall_timeout_ms = 20000\n\
                 [providers.hostile_request.settings]\nurl = \"http://[{literal}]:{port}/v6\"\n"
            ))
            .await;
        let err = run_request(&host).await.unwrap_err();
        assert!(
            matches!(err.provider_error(), Some(ProviderError::Denied(_))),
            "{literal}: {err}"
        );
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_content_length_mismatch_is_reported_with_the_bytes_written() {
    let (server, seen) = echo_server().await;
    for (declared, written) in [(10, 5), (5, 10)] {
        for finish in ["before", "after"] {
            let env = TestEnv::new();
            let settings = format!(
                "method = \"POST\"\ncontent_length = \"{declared}\"\nbody_len = \"{written}\"\nfinish = \"{finish}\"\n"
            );
            let host = request_host(&env, server.addr, &server.url("/m"), &settings).await;
            let err = run_request(&host).await.unwrap_err();
            let msg = provider_message(&err);
            assert!(
                msg.contains("HttpRequestBodySize(Some(") && !msg.contains("1048576"),
                "content-length {declared}, {written} written, finished {finish}: {msg}"
            );
        }
    }
    assert!(seen.lock().unwrap().is_empty());
}

// ---- issue 18 item 2: the sdk finishes the body before `handle` ----

async fn sdk_host(env: &TestEnv, server: &EchoServer, len: usize) -> Host {
    env.add("sdk_client");
    env.start(&format!(
        "[providers.sdk_client]\nallow = [\"http://{}\"]\ncall_timeout_ms = 5000\n\
         [providers.sdk_client.settings]\nurl = {:?}\nbody_len = \"{len}\"\n",
        server.addr,
        server.url("/sdk")
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_sends_request_bodies_of_any_size_up_to_the_cap() {
    let (server, _) = echo_server().await;
    for len in [0usize, 4097, 64 * 1024, 1 << 20] {
        let env = TestEnv::new();
        let host = sdk_host(&env, &server, len).await;
        let found = host
            .provider("sdk_client")
            .unwrap()
            .list_instances(any_instances())
            .await
            .unwrap_or_else(|e| panic!("{len} bytes: {e}"));
        let detail = found[0].detail.clone().unwrap();
        assert!(detail.contains(&format!("len={len} ")), "{len}: {detail}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_reports_a_body_over_the_cap_clearly() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let host = sdk_host(&env, &server, (1 << 20) + 1).await;
    let err = host
        .provider("sdk_client")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    match err.provider_error() {
        Some(ProviderError::InvalidRequest(m)) => {
            assert!(m.contains("1048577") && m.contains("1048576"), "{m}")
        }
        other => panic!("expected invalid-request naming both sizes, got {other:?} ({err})"),
    }
    assert!(seen.lock().unwrap().is_empty());
}

// ---- issue 19 item 1: host memory outside the memory cap ----

fn rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .unwrap_or(0)
        * 1024
}

/// The highest RSS seen while `f` runs (sampled every 5 ms).
async fn peak_rss_during<T>(f: impl std::future::Future<Output = T>) -> (T, usize) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(rss_bytes()));
    let (s, p) = (stop.clone(), peak.clone());
    let sampler = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            p.fetch_max(rss_bytes(), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let out = f.await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    (out, peak.load(Ordering::Relaxed))
}

fn is_host_memory_error(err: &CallError) -> bool {
    err.to_string().contains("host memory")
}

#[tokio::test(flavor = "multi_thread")]
async fn fields_a_guest_never_drops_count_against_its_host_memory_budget() {
    let env = TestEnv::new();
    env.add("hostile_memory").add("well_behaved");
    let host = env
        .start("[providers.hostile_memory]\nmemory_mib = 16\n[providers.hostile_memory.settings]\nmode = \"fields\"\n")
        .await;
    let before = rss_bytes();
    let (result, peak) = peak_rss_during(
        host.provider("hostile_memory")
            .unwrap()
            .list_instances(any_instances()),
    )
    .await;
    let err = result.expect_err("30,000 fields of 64 KiB must not fit in a 16 MiB budget");
    assert!(is_host_memory_error(&err), "{err}");
    let grew = peak.saturating_sub(before);
    assert!(grew < 256 << 20, "host RSS grew by {} MiB", grew >> 20);
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_a_guest_never_sends_count_against_its_budget() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    env.add("hostile_memory").add("well_behaved");
    let host = env
        .start(&format!(
            "[providers.hostile_memory]\nmemory_mib = 16\nallow = [\"http://{}\"]\n\
             [providers.hostile_memory.settings]\nmode = \"queued\"\nurl = {:?}\n",
            server.addr,
            server.url("/q")
        ))
        .await;
    let err = host
        .provider("hostile_memory")
        .unwrap()
        .list_instances(any_instances())
        .await
        .expect_err("64 queued bodies of 1 MiB must not fit in a 16 MiB budget");
    assert!(is_host_memory_error(&err), "{err}");
    assert!(seen.lock().unwrap().is_empty());
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sixty_unread_sixteen_mib_responses_do_not_pile_up_in_the_host() {
    let big = Bytes::from(vec![b'r'; 16 << 20]);
    let server = TestServer::start(move |_| Response::new(Full::new(big.clone()))).await;
    let env = TestEnv::new();
    env.add("hostile_memory").add("well_behaved");
    let host = env
        .start(&format!(
            "[providers.hostile_memory]\nmemory_mib = 16\nallow = [\"http://{}\"]\ncall_timeout_ms = 20000\n\
             [providers.hostile_memory.settings]\nmode = \"responses\"\nurl = {:?}\n",
            server.addr,
            server.url("/r")
        ))
        .await;
    let before = rss_bytes();
    let (result, peak) = peak_rss_during(
        host.provider("hostile_memory")
            .unwrap()
            .list_instances(any_instances()),
    )
    .await;
    // Whether the call ends in an error or a report, the host held little.
    if let Err(e) = &result {
        assert!(is_host_memory_error(e), "{e}");
    }
    let grew = peak.saturating_sub(before);
    assert!(
        grew < 256 << 20,
        "host RSS grew by {} MiB for 60 unread responses ({result:?})",
        grew >> 20
    );
    assert_well_behaved_works(&host).await;
}

// ---- issue 19 item 3: caps on requests ----

/// A server that accepts connections and never answers; counts how many it
/// holds at once.
struct HoldingServer {
    addr: std::net::SocketAddr,
    open: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HoldingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HoldingServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, accepted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (o, a) = (open.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let o = o.clone();
                held.push(tokio::spawn(async move {
                    // Read until the client gives up; never answer.
                    let mut buf = [0u8; 4096];
                    loop {
                        stream.readable().await.ok();
                        match stream.try_read(&mut buf) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                            Err(_) => break,
                        }
                    }
                    o.fetch_sub(1, Ordering::SeqCst);
                }));
            }
        });
        Self {
            addr,
            open,
            accepted,
            task,
        }
    }

    /// Connections open now.
    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// The most connections `server` had open at once while calls hold them:
/// sampled between `from` and `to` after now (when a call ends, its
/// connections close while other calls open theirs, so only the window in
/// which every call is holding says what the caps allow).
async fn open_during(server: &HoldingServer, from: Duration, to: Duration) -> usize {
    tokio::time::sleep(from).await;
    let mut most = 0;
    let end = Instant::now() + (to - from);
    while Instant::now() < end {
        most = most.max(server.open());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    most
}

async fn flood_host(
    env: &TestEnv,
    addr: std::net::SocketAddr,
    extra: &str,
    settings: &str,
) -> Host {
    env.add("hostile_flood").add("well_behaved");
    env.start(&format!(
        "[providers.hostile_flood]\nallow = [\"http://{addr}\"]\ncall_timeout_ms = 30000\n{extra}\n\
         [providers.hostile_flood.settings]\nurl = \"http://{addr}/hold\"\n{settings}\n"
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn one_call_cannot_hold_two_thousand_connections_and_others_still_get_theirs() {
    let holding = HoldingServer::start().await;
    let (other, _) = echo_server().await;
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = {
        env.add("hostile_flood");
        env.start(&format!(
            "[providers.hostile_flood]\nallow = [\"http://{a}\"]\ncall_timeout_ms = 30000\n\
             [providers.hostile_flood.settings]\nurl = \"http://{a}/hold\"\nhold_ms = \"3000\"\n\
             [providers.well_behaved]\nallow = [\"http://{b}\"]\n[providers.well_behaved.settings]\nurl = {u:?}\n",
            a = holding.addr,
            b = other.addr,
            u = other.url("/fine")
        ))
        .await
    };
    let flood = {
        let p = host.provider("hostile_flood").unwrap();
        tokio::spawn(async move { p.list_instances(any_instances()).await })
    };
    // Meanwhile a well-behaved provider's request goes through.
    let max_open = open_during(
        &holding,
        Duration::from_millis(1000),
        Duration::from_millis(2000),
    )
    .await;
    let fine = host
        .provider("well_behaved")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap();
    assert!(fine[0].detail.as_deref().unwrap().contains("method=GET"));
    let report = flood.await.unwrap().unwrap()[0].detail.clone().unwrap();
    assert!(
        max_open <= 16,
        "one call held {max_open} connections at once ({report})"
    );
    assert!(report.contains("refused="), "{report}");
    assert!(!report.contains("refused=0 "), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_providers_calls_together_stay_under_its_cap() {
    let holding = HoldingServer::start().await;
    let env = TestEnv::new();
    let host = flood_host(
        &env,
        holding.addr,
        "",
        "count = \"40\"\nhold_ms = \"3000\"\n",
    )
    .await;
    let mut calls = Vec::new();
    for _ in 0..8 {
        let p = host.provider("hostile_flood").unwrap();
        calls.push(tokio::spawn(async move {
            p.list_instances(any_instances()).await
        }));
    }
    let max_open = open_during(
        &holding,
        Duration::from_millis(1000),
        Duration::from_millis(2500),
    )
    .await;
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert!(
        max_open <= 64,
        "the provider held {max_open} connections at once"
    );
    assert!(holding.accepted.load(Ordering::SeqCst) > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_providers_open_connections_are_capped_by_the_operator() {
    let holding = HoldingServer::start().await;
    let env = TestEnv::new();
    let host = flood_host(
        &env,
        holding.addr,
        "max_connections = 4",
        "count = \"10\"\nhold_ms = \"3000\"\n",
    )
    .await;
    let call = {
        let p = host.provider("hostile_flood").unwrap();
        tokio::spawn(async move { p.list_instances(any_instances()).await })
    };
    let max_open = open_during(
        &holding,
        Duration::from_millis(1000),
        Duration::from_millis(2500),
    )
    .await;
    let report = call.await.unwrap().unwrap()[0].detail.clone().unwrap();
    assert!(max_open <= 4, "{max_open} connections open ({report})");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_call_cannot_send_five_thousand_requests() {
    let (server, seen) = echo_server().await;
    let env = TestEnv::new();
    let host = flood_host(&env, server.addr, "", "mode = \"many\"\n").await;
    let report = host
        .provider("hostile_flood")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap()[0]
        .detail
        .clone()
        .unwrap();
    let sent = seen.lock().unwrap().len();
    assert!(
        sent <= 1000,
        "{sent} requests reached the server ({report})"
    );
    assert!(report.contains("ConnectionLimitReached"), "{report}");
}

// ---- issue 19 item 5: abandoned requests are audited ----

/// A server that answers after `delay`; counts requests.
async fn slow_server(
    delay: Duration,
) -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let h = h.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    h.fetch_add(1, Ordering::SeqCst);
                    async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"late"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, hits, task)
}

fn audit_lines(path: &str, provider: &str) -> Vec<String> {
    crate::support::captured_logs()
        .lines()
        .filter(|l| {
            l.contains("bpr::audit::http")
                && l.contains(path)
                && l.contains(&format!("provider={provider}"))
        })
        .map(str::to_string)
        .collect()
}

/// The audit lines once `n` of them say `abandoned` (or after 5 s).
async fn wait_for_audit(path: &str, provider: &str, n: usize) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let lines = audit_lines(path, provider);
        let abandoned = lines
            .iter()
            .filter(|l| l.contains("outcome=\"abandoned\""))
            .count();
        if abandoned >= n || Instant::now() > end {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_the_guest_fires_and_abandons_are_audited() {
    crate::support::install_log_capture();
    let (addr, hits, task) = slow_server(Duration::from_secs(10)).await;
    let path = format!("/abandon-{}", std::process::id());
    let env = TestEnv::new();
    env.add("hostile_abandon");
    let host = env
        .start(&format!(
            "[providers.hostile_abandon]\nallow = [\"http://{addr}\"]\n\
             [providers.hostile_abandon.settings]\nurl = \"http://{addr}{path}\"\ncount = \"3\"\nwait_ms = \"500\"\n"
        ))
        .await;
    host.provider("hostile_abandon")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        3,
        "the POSTs reached the server"
    );
    // The last one is dropped as the call ends; its task ends just after.
    let lines = wait_for_audit(&path, "hostile_abandon", 3).await;
    let abandoned = lines
        .iter()
        .filter(|l| l.contains("outcome=\"abandoned\""))
        .count();
    assert_eq!(abandoned, 3, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.contains("method=POST")),
        "{lines:#?}"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_cut_by_the_deadline_is_audited() {
    crate::support::install_log_capture();
    let (addr, hits, task) = slow_server(Duration::from_secs(30)).await;
    let path = format!("/deadline-{}", std::process::id());
    let env = TestEnv::new();
    env.add("hostile_abandon");
    let host = env
        .start(&format!(
            "[providers.hostile_abandon]\nallow = [\"http://{addr}\"]\ncall_timeout_ms = 700\n\
             [providers.hostile_abandon.settings]\nurl = \"http://{addr}{path}\"\nmode = \"deadline\"\n"
        ))
        .await;
    let started = Instant::now();
    let err = host
        .provider("hostile_abandon")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::DeadlineExceeded { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let lines = wait_for_audit(&path, "hostile_abandon", 1).await;
    assert!(
        lines.iter().any(|l| l.contains("outcome=\"abandoned\"")),
        "{lines:#?}"
    );
    task.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_that_holds_too_many_handles_fails_with_a_typed_error() {
    let env = TestEnv::new();
    env.add("hostile_memory").add("well_behaved");
    let host = env
        .start(
            "[providers.hostile_memory.settings]\nmode = \"fields\"\ncount = \"9000\"\nsize = \"1\"\n",
        )
        .await;
    let err = host
        .provider("hostile_memory")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::TooManyHandles { max: 8192, .. }),
        "{err}"
    );
    assert_well_behaved_works(&host).await;
}

#[test]
fn outbound_limits_come_from_the_provider_section_and_bad_ones_are_refused() {
    use blueprint_remote_providers::Config;
    let cfg = Config::from_toml_str(
        "[providers.p]\nmethods = [\"get\", \"PATCH\"]\nmax_requests_per_call = 5\n\
         max_concurrent_requests_per_call = 2\nmax_concurrent_requests = 3\nmax_connections = 4\nhost_memory_mib = 8\n",
        "t.toml",
    )
    .unwrap();
    let o = cfg.provider("p").outbound;
    assert_eq!(o.methods, vec![http::Method::GET, http::Method::PATCH]);
    assert_eq!(
        (
            o.max_requests_per_call,
            o.max_concurrent_requests_per_call,
            o.max_concurrent_requests,
            o.max_connections,
            o.host_memory
        ),
        (5, 2, 3, 4, Some(8 << 20))
    );
    for (bad, key) in [
        ("methods = [\"TRACE\"]", "providers.p.methods"),
        ("methods = [\"G T\"]", "providers.p.methods"),
        ("max_connections = 0", "providers.p.max_connections"),
        (
            "max_requests_per_call = 0",
            "providers.p.max_requests_per_call",
        ),
        ("host_memory_mib = 0", "providers.p.host_memory_mib"),
    ] {
        let err = Config::from_toml_str(&format!("[providers.p]\n{bad}\n"), "t.toml").unwrap_err();
        assert!(err.to_string().contains(key), "{bad}: {err}");
    }
}
