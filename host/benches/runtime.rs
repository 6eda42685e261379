//! Runtime benchmarks (issues 2, 18, 19). Run with
//! `RUST_BACKTRACE=0 cargo bench -p blueprint-remote-providers --bench runtime`
//! (a name filter after `--` runs only the matching criterion groups; the
//! reports below always run first unless `BPR_BENCH_REPORTS=0`).
//!
//! Reports printed before the criterion groups:
//! - `latency`: the time the sandbox adds to one GET over native reqwest
//!   (keep-alive, same local server), p50 and p99 of interleaved runs, from
//!   the main thread (`block_on`) and from inside a runtime task;
//! - `memory`: peak host RSS while a ~100 MB catalogue streams through a
//!   component (bound: memory cap + 64 MB), and while hostile components try
//!   to make the host hold memory for them (fields, unread responses,
//!   handles).
//!
//! Criterion groups:
//! - `load/cold_compile` vs `load/cached`: a component compiled by Cranelift
//!   vs taken from the artifact cache (target: cached ≥ 100× faster);
//! - `call/instantiate_and_call`: fresh store + instantiate + one small call
//!   (target: ≤ 50 µs median);
//! - `get/sandboxed` vs `get/native_reqwest`: one GET to the same local server
//!   through a component (instantiate, policy, hook, body buffering) vs
//!   reqwest, both with keep-alive (target: ≤ 1.3×); `*_from_task` runs the
//!   same loop inside a runtime task, `get_current_thread` everything on one
//!   thread (extra rows, not the target's);
//! - `breakdown/*`: where those times go (instantiate only, warm instance,
//!   the exchange without a guest, inline and spawned, one spawn round trip);
//! - `stream/*`: a ~100 MB AWS-format catalogue parsed as a stream inside a
//!   component (`sdk_client`, fetched from a local server) vs the same bytes
//!   parsed natively with serde_json (target: sandbox ≥ 0.5× native).

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use blueprint_remote_providers::capabilities::HttpClientConfig;
use blueprint_remote_providers::testing::{ArtifactCache, SharedHttpClient};
use blueprint_remote_providers::wit::OfferQuery;
use blueprint_remote_providers::wit::{InstanceQuery, InstanceRef};
use blueprint_remote_providers::{Config, Host};
use bytes::Bytes;
use criterion::Criterion;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::{WasiBody, WasiHttpHooks};

const BODY: &str = "{\"ok\":true}";

fn component(stem: &str) -> std::path::PathBuf {
    Path::new(env!("BPR_TEST_GUEST_DIR")).join(format!("{stem}.wasm"))
}

fn load(c: &mut Criterion) {
    let engine = wasmtime::Engine::new(wasmtime::Config::new().epoch_interruption(true)).unwrap();
    let mut g = c.benchmark_group("load");
    for stem in ["aws", "well_behaved"] {
        let path = component(stem);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let sha = format!("{stem}-bench");
        g.sample_size(10).measurement_time(Duration::from_secs(20));
        g.bench_function(format!("cold_compile/{stem}"), |b| {
            b.iter(|| {
                let dir = tempfile::tempdir().unwrap();
                ArtifactCache::new(dir.path().to_path_buf(), &engine)
                    .load(&engine, &bytes, &sha, stem)
                    .unwrap()
            })
        });
        let warm = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::new(warm.path().to_path_buf(), &engine);
        cache.load(&engine, &bytes, &sha, stem).unwrap();
        g.sample_size(100).measurement_time(Duration::from_secs(5));
        g.bench_function(format!("cached/{stem}"), |b| {
            b.iter(|| {
                let (_, stats) = cache.load(&engine, &bytes, &sha, stem).unwrap();
                assert!(stats.from_cache);
            })
        });
    }
    g.finish();
}

fn start_host(rt: &tokio::runtime::Runtime, dir: &Path, extra: &str) -> Host {
    let providers = dir.join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::copy(
        component("well_behaved"),
        providers.join("well_behaved.wasm"),
    )
    .unwrap();
    let text = format!(
        "[host]\nproviders_dir = {providers:?}\nstate_dir = {:?}\nintegrity = \"warn\"\nwatch = false\n{extra}",
        dir.join("state")
    );
    rt.block_on(Host::start(
        Config::from_toml_str(&text, "bench.toml").unwrap(),
    ))
    .unwrap()
}

fn call(c: &mut Criterion) {
    let rt = multi_thread();
    let dir = tempfile::tempdir().unwrap();
    let host = start_host(&rt, dir.path(), "");
    let p = host.provider("well_behaved").unwrap();
    let target = InstanceRef {
        id: "version".into(),
        region: "r".into(),
        zone: None,
        resources: vec![],
        labels: vec![],
    };
    c.bench_function("call/instantiate_and_call", |b| {
        b.to_async(&rt)
            .iter(|| async { p.get_instance(target.clone()).await.unwrap() })
    });
}

/// A local hyper HTTP/1 server answering every request with [`BODY`]; counts
/// accepted connections (so a bench can show keep-alive is really used).
fn start_server(rt: &tokio::runtime::Runtime) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(BODY.as_bytes())),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// A host whose `well_behaved` provider may GET `url` from `addr`.
fn start_get_host(rt: &tokio::runtime::Runtime, dir: &Path, addr: std::net::SocketAddr) -> Host {
    let url = format!("http://{addr}/prices");
    start_host(
        rt,
        dir,
        &format!(
            // The warm rows send every GET of a sample through one call.
            "[providers.well_behaved]\nallow = [\"http://{addr}\"]\nmax_requests_per_call = 4000000000\n\
             [providers.well_behaved.settings]\nurl = {url:?}\n"
        ),
    )
}

fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn get(c: &mut Criterion) {
    get_on(c, "get", multi_thread());
}

/// The same comparison with everything (server, client, component) on one
/// thread: no cross-thread wake-ups, so it shows the CPU cost of each side.
fn get_current_thread(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    get_on(c, "get_current_thread", rt);
}

fn get_on(c: &mut Criterion, group: &str, rt: tokio::runtime::Runtime) {
    let (addr, accepted) = start_server(&rt);
    let url = format!("http://{addr}/prices");
    let dir = tempfile::tempdir().unwrap();
    let host = start_get_host(&rt, dir.path(), addr);
    let p = host.provider("well_behaved").unwrap();
    let query = InstanceQuery {
        regions: vec![],
        labels: vec![],
    };
    let native = reqwest::Client::builder().build().unwrap();

    let mut g = c.benchmark_group(group);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("sandboxed", |b| {
        b.to_async(&rt).iter(|| async {
            let found = p.list_instances(query.clone()).await.unwrap();
            assert_eq!(found[0].detail.as_deref(), Some(BODY));
        })
    });
    g.bench_function("native_reqwest", |b| {
        b.to_async(&rt).iter(|| async {
            let body = native.get(&url).send().await.unwrap().text().await.unwrap();
            assert_eq!(body, BODY);
        })
    });
    // The same two, each run in a loop inside one runtime task, the way the
    // host's own callers (API handlers, refresh jobs) call providers: the
    // guest's spawned request task then starts on the caller's worker.
    let native = Arc::new(native);
    let p = Arc::new(p);
    g.bench_function("sandboxed_from_task", |b| {
        b.to_async(&rt).iter_custom(|n| {
            let (p, query) = (p.clone(), query.clone());
            async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..n {
                        let found = p.list_instances(query.clone()).await.unwrap();
                        assert_eq!(found[0].detail.as_deref(), Some(BODY));
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            }
        })
    });
    g.bench_function("native_reqwest_from_task", |b| {
        b.to_async(&rt).iter_custom(|n| {
            let (native, url) = (native.clone(), url.clone());
            async move {
                tokio::spawn(async move {
                    let start = Instant::now();
                    for _ in 0..n {
                        let body = native.get(&url).send().await.unwrap().text().await.unwrap();
                        assert_eq!(body, BODY);
                    }
                    start.elapsed()
                })
                .await
                .unwrap()
            }
        })
    });
    g.finish();
    eprintln!(
        "{group}: server accepted {} connections",
        accepted.load(Ordering::Relaxed)
    );
}

/// Where the time of `call/instantiate_and_call` and `get/sandboxed` goes.
fn breakdown(c: &mut Criterion) {
    let rt = multi_thread();
    let (addr, accepted) = start_server(&rt);
    let url = format!("http://{addr}/prices");
    let dir = tempfile::tempdir().unwrap();
    let host = start_get_host(&rt, dir.path(), addr);
    let lp = host.provider("well_behaved").unwrap().current().unwrap();
    let target = InstanceRef {
        id: "version".into(),
        region: "r".into(),
        zone: None,
        resources: vec![],
        labels: vec![],
    };
    let query = InstanceQuery {
        regions: vec![],
        labels: vec![],
    };

    let mut g = c.benchmark_group("breakdown");
    g.measurement_time(Duration::from_secs(5));
    // One cross-thread round trip: the caller (criterion's `block_on`
    // thread) wakes a worker and is woken by it.
    g.bench_function("spawn_round_trip", |b| {
        b.to_async(&rt)
            .iter(|| async { tokio::spawn(async {}).await.unwrap() })
    });
    // Store + HostState + instantiate, no guest export called.
    g.bench_function("instantiate_only", |b| {
        b.to_async(&rt)
            .iter(|| async { lp.call("noop", async |_, _| Ok(Ok(()))).await.unwrap() })
    });
    // `get-instance` again and again on one warm instance.
    g.bench_function("warm_get_instance", |b| {
        b.to_async(&rt).iter_custom(|n| {
            let (lp, target) = (lp.clone(), target.clone());
            async move {
                lp.call("bench", async |p, s| {
                    let start = Instant::now();
                    for _ in 0..n {
                        let r = p.blueprint_provider_compute(&mut *s)?;
                        r.call_get_instance(&mut *s, &target).await?.unwrap();
                    }
                    Ok(Ok(start.elapsed()))
                })
                .await
                .unwrap()
            }
        })
    });
    // The GET through the guest, on one warm instance.
    g.bench_function("warm_get", |b| {
        b.to_async(&rt).iter_custom(|n| {
            let (lp, query) = (lp.clone(), query.clone());
            async move {
                lp.call("bench", async |p, s| {
                    let start = Instant::now();
                    for _ in 0..n {
                        let r = p.blueprint_provider_compute(&mut *s)?;
                        let found = r.call_list_instances(&mut *s, &query).await?.unwrap();
                        assert_eq!(found[0].detail.as_deref(), Some(BODY));
                    }
                    Ok(Ok(start.elapsed()))
                })
                .await
                .unwrap()
            }
        })
    });
    // The host hook alone (policy, pooled client, body buffering), awaited
    // inline, and spawned the way wasi-http p2 runs it.
    let mut hooks = lp.outbound_hooks();
    g.bench_function("hook_inline", |b| {
        b.to_async(&rt).iter(|| {
            let fut = Pin::from(hooks.send_request(get_request(&url), None, no_io()));
            async move {
                let (resp, _io) = fut.await.unwrap();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, BODY.as_bytes());
            }
        })
    });
    g.bench_function("hook_spawned", |b| {
        b.to_async(&rt).iter(|| {
            let fut = Pin::from(hooks.send_request(get_request(&url), None, no_io()));
            async move {
                let (resp, io) = tokio::spawn(fut).await.unwrap().unwrap();
                tokio::spawn(Pin::from(io));
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body, BODY.as_bytes());
            }
        })
    });
    // The host's pooled client without the policy, same server.
    let client = SharedHttpClient::new(HttpClientConfig::default()).unwrap();
    g.bench_function("native_shared_client", |b| {
        b.to_async(&rt).iter(|| async {
            let req = http::Request::get(&url)
                .body(Full::new(bytes::Bytes::new()))
                .unwrap();
            let resp = client.send(req).await.unwrap();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, BODY.as_bytes());
        })
    });
    g.finish();
    eprintln!(
        "breakdown: server accepted {} connections",
        accepted.load(Ordering::Relaxed)
    );
}

fn get_request(url: &str) -> http::Request<WasiBody> {
    let body: WasiBody = http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    http::Request::get(url).body(body).unwrap()
}

fn no_io() -> Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> {
    Box::new(async { Ok(()) })
}

// ---- issue 18 item 3: big catalogues through the sandbox ----

/// The catalogue types, parsed the same way the component parses them.
#[allow(dead_code, reason = "the test component's module, included whole")]
mod catalog {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/components/sdk-client/src/catalog.rs"
    ));
}

/// A ~100 MB catalogue in the AWS `instances.json` format: the recorded
/// 243-type catalogue (tests/fixtures/aws) repeated under new type names.
fn big_catalogue() -> Bytes {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws/instances.json");
    let types: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(fixture).unwrap()).unwrap();
    let mut out = Vec::with_capacity(110 << 20);
    out.push(b'[');
    let mut first = true;
    let mut copy = 0;
    while out.len() < 100 << 20 {
        for t in &types {
            let mut t = t.clone();
            let name = t["instance_type"].as_str().unwrap_or("x").to_string();
            t["instance_type"] = serde_json::Value::String(format!("{name}-{copy}"));
            if !first {
                out.extend_from_slice(b",\n");
            }
            first = false;
            serde_json::to_writer_pretty(&mut out, &t).unwrap();
        }
        copy += 1;
    }
    out.push(b']');
    Bytes::from(out)
}

/// A keep-alive HTTP/1 server answering every request with `body`.
fn serve(rt: &tokio::runtime::Runtime, body: Bytes) -> std::net::SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(body)))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// A host with `sdk_client` reading its catalogue from `addr`; `parse` is
/// its `catalog_parse` setting (`reader`, `slice` or `none`).
fn catalogue_host(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    addr: std::net::SocketAddr,
    parse: &str,
) -> Host {
    let providers = dir.join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::copy(component("sdk_client"), providers.join("sdk_client.wasm")).unwrap();
    let text = format!(
        "[host]\nproviders_dir = {providers:?}\nstate_dir = {:?}\nintegrity = \"warn\"\nwatch = false\n\
         [providers.sdk_client]\nallow = [\"http://{addr}\"]\ncall_timeout_ms = 300000\nmax_response_body_kib = 1048576\n\
         [providers.sdk_client.settings]\ncatalog_url = \"http://{addr}/instances.json\"\ncatalog_parse = {parse:?}\n",
        dir.join("state")
    );
    rt.block_on(Host::start(
        Config::from_toml_str(&text, "bench.toml").unwrap(),
    ))
    .unwrap()
}

fn stream(c: &mut Criterion) {
    let rt = multi_thread();
    let body = big_catalogue();
    let expected: catalog::Summary = serde_json::from_slice(&body).unwrap();
    let addr = serve(&rt, body.clone());
    let dir = tempfile::tempdir().unwrap();
    let host = catalogue_host(&rt, dir.path(), addr, "reader");
    let p = host.provider("sdk_client").unwrap();
    let slice_dir = tempfile::tempdir().unwrap();
    let slice_host = catalogue_host(&rt, slice_dir.path(), addr, "slice");
    let slice = slice_host.provider("sdk_client").unwrap();
    let drain_dir = tempfile::tempdir().unwrap();
    let drain_host = catalogue_host(&rt, drain_dir.path(), addr, "none");
    let drain = drain_host.provider("sdk_client").unwrap();
    let label = format!("types={} prices={}", expected.types, expected.prices);
    let bytes_label = format!("bytes={}", body.len());
    let url = format!("http://{addr}/instances.json");
    let native = reqwest::Client::builder().build().unwrap();

    let mut g = c.benchmark_group("stream");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(30))
        .throughput(criterion::Throughput::Bytes(body.len() as u64));
    g.bench_function("sandboxed_component", |b| {
        b.to_async(&rt).iter(|| async {
            let offers = p.list_offers(OfferQuery { regions: vec![] }).await.unwrap();
            assert_eq!(offers[0].instance_type, label);
        })
    });
    // Where the sandboxed time goes: the same bytes read whole then parsed
    // in the guest, and only read through the boundary (no parse).
    g.bench_function("sandboxed_component_read_whole_then_parse", |b| {
        b.to_async(&rt).iter(|| async {
            let offers = slice
                .list_offers(OfferQuery { regions: vec![] })
                .await
                .unwrap();
            assert_eq!(offers[0].instance_type, label);
        })
    });
    g.bench_function("sandboxed_component_read_only", |b| {
        b.to_async(&rt).iter(|| async {
            let offers = drain
                .list_offers(OfferQuery { regions: vec![] })
                .await
                .unwrap();
            assert_eq!(offers[0].instance_type, bytes_label);
        })
    });
    g.bench_function("native_serde_json_from_slice", |b| {
        b.iter(|| {
            let s: catalog::Summary = serde_json::from_slice(&body).unwrap();
            assert_eq!(s.prices, expected.prices);
        })
    });
    g.bench_function("native_serde_json_from_reader", |b| {
        b.iter(|| {
            let s: catalog::Summary =
                serde_json::from_reader(std::io::BufReader::with_capacity(64 << 10, &body[..]))
                    .unwrap();
            assert_eq!(s.prices, expected.prices);
        })
    });
    g.bench_function("native_reqwest_then_from_slice", |b| {
        b.to_async(&rt).iter(|| async {
            let bytes = native
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let s: catalog::Summary = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(s.prices, expected.prices);
        })
    });
    g.finish();
}

// ---- reports: latency percentiles, memory ----

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Interleaved sandboxed and native GETs: the added latency's p50 and p99.
fn latency_report() {
    const N: usize = 4000;
    let rt = multi_thread();
    let (addr, _) = start_server(&rt);
    let url = format!("http://{addr}/prices");
    let dir = tempfile::tempdir().unwrap();
    let host = start_get_host(&rt, dir.path(), addr);
    let p = Arc::new(host.provider("well_behaved").unwrap());
    let native = reqwest::Client::builder().build().unwrap();
    let query = InstanceQuery {
        regions: vec![],
        labels: vec![],
    };
    let one_sandboxed = {
        let (p, query) = (p.clone(), query.clone());
        move || {
            let (p, query) = (p.clone(), query.clone());
            async move {
                let t = Instant::now();
                let found = p.list_instances(query).await.unwrap();
                assert_eq!(found[0].detail.as_deref(), Some(BODY));
                t.elapsed()
            }
        }
    };
    let one_native = {
        let (native, url) = (native.clone(), url.clone());
        move || {
            let (native, url) = (native.clone(), url.clone());
            async move {
                let t = Instant::now();
                let body = native.get(&url).send().await.unwrap().text().await.unwrap();
                assert_eq!(body, BODY);
                t.elapsed()
            }
        }
    };
    let summarise = |label: &str, mut s: Vec<Duration>, mut n: Vec<Duration>| {
        s.sort();
        n.sort();
        let (s50, s99, n50, n99) = (
            percentile(&s, 0.5),
            percentile(&s, 0.99),
            percentile(&n, 0.5),
            percentile(&n, 0.99),
        );
        eprintln!(
            "latency/{label}: sandboxed p50 {:.1} us p99 {:.1} us | native reqwest p50 {:.1} us p99 {:.1} us | added p50 {:.1} us, p99 {:.1} us ({} GETs each, interleaved)",
            us(s50),
            us(s99),
            us(n50),
            us(n99),
            us(s50) - us(n50),
            us(s99) - us(n99),
            s.len()
        );
    };

    // From the main thread: each GET is its own `block_on`.
    for _ in 0..500 {
        rt.block_on(one_sandboxed());
        rt.block_on(one_native());
    }
    let (mut s, mut n) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for _ in 0..N {
        s.push(rt.block_on(one_sandboxed()));
        n.push(rt.block_on(one_native()));
    }
    summarise("main_thread", s, n);

    // From inside one runtime task, the way the host's own callers run.
    let (s, n) = rt.block_on(async move {
        tokio::spawn(async move {
            for _ in 0..500 {
                one_sandboxed().await;
                one_native().await;
            }
            let (mut s, mut n) = (Vec::with_capacity(N), Vec::with_capacity(N));
            for _ in 0..N {
                s.push(one_sandboxed().await);
                n.push(one_native().await);
            }
            (s, n)
        })
        .await
        .unwrap()
    });
    summarise("from_task", s, n);
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (ns).
fn thread_cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        s.split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    )
}

/// CPU per GET with server, client and component on one thread: what the
/// sandbox costs whatever the machine's load (no wake-ups, no waiting).
fn cpu_report() {
    const N: u32 = 4000;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (addr, _) = start_server(&rt);
    let url = format!("http://{addr}/prices");
    let dir = tempfile::tempdir().unwrap();
    let host = start_get_host(&rt, dir.path(), addr);
    let p = host.provider("well_behaved").unwrap();
    let lp = p.current().unwrap();
    let native = reqwest::Client::builder().build().unwrap();
    let query = InstanceQuery {
        regions: vec![],
        labels: vec![],
    };
    let per = |cpu: Duration| us(cpu) / f64::from(N);
    let (sandboxed, native_cpu, instantiate) = rt.block_on(async {
        for _ in 0..500 {
            p.list_instances(query.clone()).await.unwrap();
            native.get(&url).send().await.unwrap().text().await.unwrap();
        }
        let t = thread_cpu();
        for _ in 0..N {
            p.list_instances(query.clone()).await.unwrap();
        }
        let sandboxed = thread_cpu() - t;
        let t = thread_cpu();
        for _ in 0..N {
            native.get(&url).send().await.unwrap().text().await.unwrap();
        }
        let native_cpu = thread_cpu() - t;
        let t = thread_cpu();
        for _ in 0..N {
            lp.call("noop", async |_, _| Ok(Ok(()))).await.unwrap();
        }
        (sandboxed, native_cpu, thread_cpu() - t)
    });
    eprintln!(
        "cpu/one_thread: CPU per GET (server + client + component on one thread): sandboxed {:.1} us, native reqwest {:.1} us, added {:.1} us, of which a fresh store + instantiate + drop {:.1} us",
        per(sandboxed),
        per(native_cpu),
        per(sandboxed) - per(native_cpu),
        per(instantiate)
    );
}

fn status_kib(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Peak RSS while `f` runs, over the RSS before it (MiB): the kernel's
/// high-water mark, reset first (`/proc/self/clear_refs` 5).
fn peak_rss_mib<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_kib("VmRSS:");
    let out = f();
    let peak = status_kib("VmHWM:");
    (out, peak.saturating_sub(before) as f64 / 1024.0)
}

fn memory_report() {
    let rt = multi_thread();

    // A ~100 MB catalogue streamed through a component (cap 256 MiB).
    let body = big_catalogue();
    let mb = body.len() as f64 / 1e6;
    let addr = serve(&rt, body.clone());
    let dir = tempfile::tempdir().unwrap();
    let host = catalogue_host(&rt, dir.path(), addr, "reader");
    let p = host.provider("sdk_client").unwrap();
    // Once to warm the pool slot and the connection.
    rt.block_on(p.list_offers(OfferQuery { regions: vec![] }))
        .unwrap();
    let ((), grew) = peak_rss_mib(|| {
        rt.block_on(p.list_offers(OfferQuery { regions: vec![] }))
            .unwrap();
    });
    eprintln!(
        "memory/stream: {mb:.0} MB catalogue through sdk_client (memory cap 256 MiB): peak host RSS +{grew:.1} MiB (bound: cap + 64 MB)"
    );
    drop(host);

    // Hostile components (memory_mib = 16: a 16 MiB host budget per call).
    let big = serve(&rt, Bytes::from(vec![b'r'; 16 << 20]));
    for (mode, extra) in [
        ("fields", ""),
        ("responses", "count = \"60\"\nhold_ms = \"1000\"\n"),
        ("queued", "count = \"64\"\n"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let providers = dir.path().join("providers");
        std::fs::create_dir_all(&providers).unwrap();
        std::fs::copy(
            component("hostile_memory"),
            providers.join("hostile_memory.wasm"),
        )
        .unwrap();
        let text = format!(
            "[host]\nproviders_dir = {providers:?}\nstate_dir = {:?}\nintegrity = \"warn\"\nwatch = false\n\
             [providers.hostile_memory]\nmemory_mib = 16\nallow = [\"http://{big}\"]\ncall_timeout_ms = 60000\n\
             [providers.hostile_memory.settings]\nmode = \"{mode}\"\nurl = \"http://{big}/r\"\n{extra}",
            dir.path().join("state")
        );
        let host = rt
            .block_on(Host::start(
                Config::from_toml_str(&text, "bench.toml").unwrap(),
            ))
            .unwrap();
        let p = host.provider("hostile_memory").unwrap();
        let (outcome, grew) = peak_rss_mib(|| {
            rt.block_on(p.list_instances(InstanceQuery {
                regions: vec![],
                labels: vec![],
            }))
        });
        let outcome = match outcome {
            Ok(found) => {
                let d = found[0].detail.clone().unwrap_or_default();
                let limited = d.matches("ConnectionLimitReached").count();
                let head = d.split("; errors").next().unwrap_or("").to_string();
                format!("{head}; {limited} refused with connection-limit-reached")
            }
            Err(e) => e.to_string(),
        };
        eprintln!("memory/hostile_{mode}: peak host RSS +{grew:.1} MiB; outcome: {outcome}");
    }

    // What one handle costs: 8,000 empty-ish fields, budget not in the way.
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers");
    std::fs::create_dir_all(&providers).unwrap();
    std::fs::copy(
        component("hostile_memory"),
        providers.join("hostile_memory.wasm"),
    )
    .unwrap();
    let text = format!(
        "[host]\nproviders_dir = {providers:?}\nstate_dir = {:?}\nintegrity = \"warn\"\nwatch = false\n\
         [providers.hostile_memory.settings]\nmode = \"fields\"\ncount = \"8000\"\nsize = \"1\"\n",
        dir.path().join("state")
    );
    let host = rt
        .block_on(Host::start(
            Config::from_toml_str(&text, "bench.toml").unwrap(),
        ))
        .unwrap();
    let p = host.provider("hostile_memory").unwrap();
    let query = InstanceQuery {
        regions: vec![],
        labels: vec![],
    };
    let (_, grew) = peak_rss_mib(|| rt.block_on(p.list_instances(query.clone())).unwrap());
    eprintln!(
        "memory/handles: 8,000 fields of 1 byte held at once: peak host RSS +{grew:.1} MiB ({:.0} bytes per handle, guest memory included)",
        grew * 1048576.0 / 8000.0
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    if std::env::var("BPR_BENCH_REPORTS").as_deref() != Ok("0") {
        eprintln!("load average before the reports: {}", load_average());
        latency_report();
        cpu_report();
        memory_report();
        eprintln!("load average after the reports: {}", load_average());
    }
    let mut c = Criterion::default().configure_from_args();
    load(&mut c);
    call(&mut c);
    get(&mut c);
    get_current_thread(&mut c);
    breakdown(&mut c);
    stream(&mut c);
    c.final_summary();
}
