//! Runtime benchmarks for issue 2. Run with
//! `RUST_BACKTRACE=0 cargo bench -p blueprint-remote-providers --bench runtime`.
//!
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
//!   the hook without a guest, inline and spawned, one spawn round trip).

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use blueprint_remote_providers::capabilities::http_client::{HttpClientConfig, SharedHttpClient};
use blueprint_remote_providers::runtime::cache::ArtifactCache;
use blueprint_remote_providers::wit::{InstanceQuery, InstanceRef};
use blueprint_remote_providers::{Config, Host};
use criterion::{Criterion, criterion_group, criterion_main};
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
            "[providers.well_behaved]\nallow = [\"http://{addr}\"]\n[providers.well_behaved.settings]\nurl = {url:?}\n"
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
                        let r = p.blueprint_provider_compute();
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
                        let r = p.blueprint_provider_compute();
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

criterion_group!(benches, load, call, get, get_current_thread, breakdown);
criterion_main!(benches);
