//! Runtime benchmarks for issue 2. Run with
//! `RUST_BACKTRACE=0 cargo bench -p blueprint-remote-providers --bench runtime`.
//!
//! - `load/cold_compile` vs `load/cached`: a component compiled by Cranelift
//!   vs taken from the artifact cache (target: cached ≥ 100× faster);
//! - `call/instantiate_and_call`: fresh store + instantiate + one small call
//!   (target: ≤ 50 µs median);
//! - `get/sandboxed` vs `get/native_reqwest`: one GET to the same local server
//!   through a component (instantiate, policy, hook, body buffering) vs
//!   reqwest, both with keep-alive (target: ≤ 1.3×).

use std::path::Path;
use std::time::Duration;

use blueprint_remote_providers::runtime::cache::ArtifactCache;
use blueprint_remote_providers::wit::{InstanceQuery, InstanceRef};
use blueprint_remote_providers::{Config, Host};
use criterion::{Criterion, criterion_group, criterion_main};

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
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
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

fn get(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
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
    let url = format!("http://{addr}/prices");
    let dir = tempfile::tempdir().unwrap();
    let host = start_host(
        &rt,
        dir.path(),
        &format!(
            "[providers.well_behaved]\nallow = [\"http://{addr}\"]\n[providers.well_behaved.settings]\nurl = {url:?}\n"
        ),
    );
    let p = host.provider("well_behaved").unwrap();
    let query = InstanceQuery {
        regions: vec![],
        labels: vec![],
    };
    let native = reqwest::Client::builder().build().unwrap();

    let mut g = c.benchmark_group("get");
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
    g.finish();
}

criterion_group!(benches, load, call, get);
criterion_main!(benches);
