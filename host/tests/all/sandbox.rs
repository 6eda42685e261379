//! Issue 2: the sandbox contains hostile components, the host survives, and a
//! following well-behaved call succeeds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use blueprint_remote_providers::providers::ProviderState;
use blueprint_remote_providers::wit::{InstanceQuery, InstanceRef, OfferQuery, ProviderError};
use blueprint_remote_providers::{CallError, Host};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::support::{TestEnv, TestServer, component_path, well_behaved_v2};

fn any_instances() -> InstanceQuery {
    InstanceQuery {
        regions: vec![],
        labels: vec![],
    }
}

fn version_ref() -> InstanceRef {
    InstanceRef {
        id: "version".into(),
        region: "test-1".into(),
        zone: None,
        resources: vec![],
        labels: vec![],
    }
}

/// A server that counts requests and whether any carried `Authorization`.
async fn counting_server() -> (TestServer, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let with_auth = Arc::new(AtomicUsize::new(0));
    let (h, a) = (hits.clone(), with_auth.clone());
    let server = TestServer::start(move |req| {
        h.fetch_add(1, Ordering::SeqCst);
        let auth = req
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or("").to_string());
        if auth.is_some() {
            a.fetch_add(1, Ordering::SeqCst);
        }
        Response::new(Full::new(Bytes::from(format!(
            "hello; auth={}",
            auth.unwrap_or_default()
        ))))
    })
    .await;
    (server, hits, with_auth)
}

/// A well-behaved call still works on this host.
async fn assert_well_behaved_works(host: &Host) {
    let offers = host
        .provider("well_behaved")
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap();
    assert_eq!(offers.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn well_behaved_provider_loads_and_answers() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env.start("").await;
    let p = host.provider("well_behaved").unwrap();
    let info = p.info().await.unwrap();
    assert_eq!(info.name, "well_behaved");
    assert_well_behaved_works(&host).await;
    let created = p
        .create_instance(blueprint_remote_providers::wit::InstanceSpec {
            deployment_id: "dep-1".into(),
            idempotency_key: "key-1".into(),
            region: "test-1".into(),
            zone: None,
            instance_type: "wb.small".into(),
            spot: false,
            image: None,
            disk_gib: 0,
            ssh_public_keys: vec![],
            user_data: None,
            open_ports: vec![],
            labels: vec![("bpr-deployment".into(), "dep-1".into())],
            workload: None,
        })
        .await
        .unwrap();
    assert_eq!(created.id, "key-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn disallowed_host_fails_and_nothing_is_sent() {
    let (server, hits, _) = counting_server().await;
    let env = TestEnv::new();
    env.add("hostile_net").add("well_behaved");
    let host = env
        .start(&format!(
            "[providers.hostile_net.settings]\nurl = {:?}\n",
            server.url("/x")
        ))
        .await;
    let err = host
        .provider("hostile_net")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    assert!(
        matches!(err.provider_error(), Some(ProviderError::Denied(_))),
        "{err:?}"
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a denied request must not reach the server"
    );
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_by_ip_is_refused_without_an_exact_rule() {
    let (server, hits, _) = counting_server().await;
    let env = TestEnv::new();
    env.add("hostile_net");
    let host = env
        .start(&format!(
            "[providers.hostile_net]\nallow = [\"http://127.0.0.1:*\"]\n[providers.hostile_net.settings]\nurl = {:?}\n",
            server.url("/x")
        ))
        .await;
    let err = host
        .provider("hostile_net")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    assert!(
        matches!(err.provider_error(), Some(ProviderError::Denied(_))),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_by_a_name_that_resolves_to_it_is_refused() {
    let (server, hits, _) = counting_server().await;
    let env = TestEnv::new();
    env.add("hostile_net");
    let url = format!("http://localhost:{}/x", server.addr.port());
    let host = env
        .start(&format!(
            "[providers.hostile_net]\nallow = [\"http://localhost:*\"]\n[providers.hostile_net.settings]\nurl = {url:?}\n"
        ))
        .await;
    let err = host
        .provider("hostile_net")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    assert!(
        matches!(err.provider_error(), Some(ProviderError::Denied(_))),
        "{err:?}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exact_loopback_rule_lets_the_request_through() {
    let (server, hits, _) = counting_server().await;
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start(&format!(
            "[providers.well_behaved]\nallow = [\"http://{}\"]\n[providers.well_behaved.settings]\nurl = {:?}\n",
            server.addr,
            server.url("/x")
        ))
        .await;
    let found = host
        .provider("well_behaved")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap();
    assert_eq!(found[0].detail.as_deref(), Some("hello; auth="));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_cannot_set_authorization_but_the_host_applies_the_bearer_token() {
    let (server, hits, with_auth) = counting_server().await;
    let env = TestEnv::new();
    env.add("hostile_net").add("well_behaved");
    let token = env.dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let host = env
        .start(&format!(
            "[providers.hostile_net]\nallow = [\"http://{addr}\"]\n[providers.hostile_net.settings]\nurl = {url:?}\nmode = \"auth\"\n\
             [providers.well_behaved]\nallow = [\"http://{addr}\"]\n[providers.well_behaved.settings]\nurl = {url:?}\n\
             [providers.well_behaved.credential]\nkind = \"bearer\"\ntoken_file = {token:?}\n",
            addr = server.addr,
            url = server.url("/x"),
        ))
        .await;
    let err = host
        .provider("hostile_net")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    match err.provider_error() {
        Some(ProviderError::Other(m)) => assert!(m.contains("forbidden"), "{m}"),
        other => panic!("expected the forbidden-header error, got {other:?} ({err})"),
    }
    assert_eq!(
        with_auth.load(Ordering::SeqCst),
        0,
        "the guest's Authorization must never be sent"
    );

    let found = host
        .provider("well_behaved")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap();
    assert_eq!(
        found[0].detail.as_deref(),
        Some("hello; auth=Bearer s3cret")
    );
    assert_eq!(with_auth.load(Ordering::SeqCst), 1);
    assert!(hits.load(Ordering::SeqCst) >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_is_stopped_at_the_deadline_and_the_provider_still_answers() {
    let env = TestEnv::new();
    env.add("hostile_loop").add("well_behaved");
    let host = env
        .start("[providers.hostile_loop]\ncall_timeout_ms = 300\n")
        .await;
    let p = host.provider("hostile_loop").unwrap();
    let started = Instant::now();
    let err = p
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::DeadlineExceeded { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // The same provider answers its next (non-looping) call.
    let next = p.list_instances(any_instances()).await;
    assert!(
        matches!(next, Ok(_) | Err(CallError::Provider(_))),
        "{next:?}"
    );
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_gib_allocation_hits_the_memory_cap() {
    let env = TestEnv::new();
    env.add("hostile_alloc").add("well_behaved");
    let host = env
        .start("[providers.hostile_alloc]\nmemory_mib = 64\n")
        .await;
    let p = host.provider("hostile_alloc").unwrap();
    let err = p
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::MemoryExceeded { cap_mib: 64, .. }),
        "{err:?}"
    );
    let next = p.list_instances(any_instances()).await;
    assert!(
        matches!(next, Ok(_) | Err(CallError::Provider(_))),
        "{next:?}"
    );
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_a_trapped_call_carrying_the_panic_message() {
    let env = TestEnv::new();
    env.add("hostile_panic").add("well_behaved");
    let host = env.start("").await;
    let p = host.provider("hostile_panic").unwrap();
    let err = p
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap_err();
    match &err {
        CallError::Trapped { message, .. } => assert!(message.contains("panicked"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    let next = p.list_instances(any_instances()).await;
    assert!(
        matches!(next, Ok(_) | Err(CallError::Provider(_))),
        "{next:?}"
    );
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_response_is_contained_by_the_memory_cap() {
    let env = TestEnv::new();
    env.add("hostile_huge").add("well_behaved");
    let host = env
        .start("[providers.hostile_huge]\nmemory_mib = 64\n")
        .await;
    let p = host.provider("hostile_huge").unwrap();
    let err = p
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::MemoryExceeded { .. } | CallError::Trapped { .. }
        ),
        "{err:?}"
    );
    let next = p.list_instances(any_instances()).await;
    assert!(
        matches!(next, Ok(_) | Err(CallError::Provider(_))),
        "{next:?}"
    );
    assert_well_behaved_works(&host).await;
}

fn refusal(host: &Host, name: &str) -> String {
    let status = host
        .statuses()
        .into_iter()
        .find(|s| s.name == name)
        .expect("provider was seen");
    match status.state {
        ProviderState::Refused(r) => r,
        other => panic!("{name}: expected refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_filesystem_import_is_refused_at_load_naming_file_and_import() {
    let env = TestEnv::new();
    env.add("hostile_fs").add("well_behaved");
    let host = env.start("").await;
    let reason = refusal(&host, "hostile_fs");
    assert!(reason.contains("hostile_fs.wasm"), "{reason}");
    assert!(reason.contains("wasi:filesystem"), "{reason}");
    assert!(host.provider("hostile_fs").is_err());
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_of_another_major_is_refused_naming_both_versions() {
    let env = TestEnv::new();
    env.add("wrong_major");
    let host = env.start("").await;
    let reason = refusal(&host, "wrong_major");
    assert!(
        reason.contains("0.2.0") && reason.contains("0.1.0"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_lacking_an_export_is_refused() {
    let env = TestEnv::new();
    env.add("missing_export");
    let host = env.start("").await;
    let reason = refusal(&host, "missing_export");
    assert!(reason.contains("blueprint:provider/kubernetes"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_call_reaches_every_exported_interface_loaded_only_when_asked_for() {
    // A call's exports are loaded per interface when it first asks for one
    // (not all at instantiation): each of the three must still answer, in
    // any order, from the same instance.
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env.start("").await;
    let lp = host.provider("well_behaved").unwrap().current().unwrap();
    let target = InstanceRef {
        id: "version".into(),
        region: "r".into(),
        zone: None,
        resources: vec![],
        labels: vec![],
    };
    let cluster = blueprint_remote_providers::wit::ClusterRef {
        id: "c".into(),
        name: "c".into(),
        region: "r".into(),
        resources: vec![],
    };
    let (kubernetes, instance, info) = lp
        .call("three-interfaces", async |p, s| {
            let kubernetes = p
                .blueprint_provider_kubernetes(s)?
                .call_get_cluster(&mut *s, &cluster)
                .await?;
            let instance = p
                .blueprint_provider_compute(s)?
                .call_get_instance(&mut *s, &target)
                .await?;
            let info = p.blueprint_provider_describe(s)?.call_info(&mut *s).await?;
            Ok(Ok((kubernetes, instance, info)))
        })
        .await
        .unwrap();
    assert!(
        matches!(kubernetes, Err(ProviderError::Unsupported(_))),
        "{kubernetes:?}"
    );
    assert_eq!(instance.unwrap().id, "version");
    assert_eq!(info.name, lp.info.name);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ssh_import_is_refused_unless_the_operator_allows_it() {
    let env = TestEnv::new();
    env.add("ssh");
    let host = env.start("").await;
    let reason = refusal(&host, "ssh");
    assert!(reason.contains("blueprint:provider/ssh"), "{reason}");
}

fn write_lock(env: &TestEnv, name: &str, bytes: &[u8]) {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    std::fs::write(
        env.lock_path(),
        format!("[providers.{name}]\nsha256 = \"{sha}\"\nallowed_hosts = []\n"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_wasm_is_refused_in_enforce_mode() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let path = env.providers.join("well_behaved.wasm");
    let good = std::fs::read(&path).unwrap();
    write_lock(&env, "well_behaved", &good);
    let host = env
        .start_with(&env.host_section("enforce", false), "")
        .await;
    assert_well_behaved_works(&host).await;

    // Same size, one byte flipped inside the component.
    let mut bad = good.clone();
    let i = bad.len() / 2;
    bad[i] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();
    let fresh = env
        .start_with(&env.host_section("enforce", false), "")
        .await;
    let reason = refusal(&fresh, "well_behaved");
    assert!(reason.contains("file changed"), "{reason}");

    // On the running host, the reload is refused and the old version keeps serving.
    host.reload(&path).await;
    let status = host
        .statuses()
        .into_iter()
        .find(|s| s.name == "well_behaved")
        .unwrap();
    assert!(
        matches!(status.state, ProviderState::ServingPrevious(_)),
        "{:?}",
        status.state
    );
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_provider_is_refused_in_enforce_mode() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start_with(&env.host_section("enforce", false), "")
        .await;
    let reason = refusal(&host, "well_behaved");
    assert!(reason.contains("not in providers.lock"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowlist_the_lock_did_not_approve_is_refused_in_enforce_mode() {
    let env = TestEnv::new();
    env.add("well_behaved");
    write_lock(
        &env,
        "well_behaved",
        &std::fs::read(env.providers.join("well_behaved.wasm")).unwrap(),
    );
    let host = env
        .start_with(
            &env.host_section("enforce", false),
            "[providers.well_behaved]\nallow = [\"https://example.com\"]\n",
        )
        .await;
    let reason = refusal(&host, "well_behaved");
    assert!(reason.contains("https://example.com"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_loads_the_cached_artifact_instead_of_compiling() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let artifacts = env.dir.path().join("own-artifacts");
    let host_section = format!(
        "[host]\nproviders_dir = {:?}\nstate_dir = {:?}\nartifact_dir = {:?}\nintegrity = \"warn\"\nwatch = false\n",
        env.providers, env.state, artifacts
    );
    let first = env.start_with(&host_section, "").await;
    assert!(
        !first
            .provider("well_behaved")
            .unwrap()
            .current()
            .unwrap()
            .compile
            .from_cache
    );
    let second = env.start_with(&host_section, "").await;
    assert!(
        second
            .provider("well_behaved")
            .unwrap()
            .current()
            .unwrap()
            .compile
            .from_cache
    );
    assert_well_behaved_works(&second).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_new_file_leaves_the_previous_version_serving() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env.start("").await;
    let path = env.providers.join("well_behaved.wasm");
    std::fs::write(&path, b"\0asm garbage").unwrap();
    host.reload(&path).await;
    let status = host
        .statuses()
        .into_iter()
        .find(|s| s.name == "well_behaved")
        .unwrap();
    match status.state {
        ProviderState::ServingPrevious(r) => assert!(r.contains("well_behaved.wasm"), "{r}"),
        other => panic!("{other:?}"),
    }
    assert_well_behaved_works(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_removed_file_unloads_the_provider() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env.start("").await;
    let path = env.providers.join("well_behaved.wasm");
    std::fs::remove_file(&path).unwrap();
    host.reload(&path).await;
    assert!(matches!(
        host.provider("well_behaved"),
        Err(CallError::NotLoaded(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hot_swap_under_fifty_calls_in_flight_fails_none_and_later_calls_see_the_new_version() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env.start_with(&env.host_section("warn", true), "").await;
    let p = host.provider("well_behaved").unwrap();
    assert_eq!(
        p.get_instance(version_ref())
            .await
            .unwrap()
            .detail
            .as_deref(),
        Some("1")
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..64 {
        let (p, stop, calls, failures) = (p.clone(), stop.clone(), calls.clone(), failures.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                match p.get_instance(version_ref()).await {
                    Ok(_) => calls.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        eprintln!("call failed during swap: {e}");
                        failures.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        }));
    }
    // Let the load build up, then swap atomically (write aside, rename over).
    while calls.load(Ordering::SeqCst) < 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let tmp = env.providers.join(".well_behaved.wasm.new");
    std::fs::copy(well_behaved_v2(), &tmp).unwrap();
    std::fs::rename(&tmp, env.providers.join("well_behaved.wasm")).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = p.get_instance(version_ref()).await.unwrap().detail.unwrap();
        if v == "2" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new version was never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after_swap = calls.load(Ordering::SeqCst);
    while calls.load(Ordering::SeqCst) < after_swap + 200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "calls failed during the swap"
    );
    assert!(calls.load(Ordering::SeqCst) >= 400);
    for _ in 0..5 {
        assert_eq!(
            p.get_instance(version_ref())
                .await
                .unwrap()
                .detail
                .as_deref(),
            Some("2")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_over_the_body_cap_reaches_the_guest_as_an_error() {
    let big = "x".repeat(2 << 20);
    let server =
        TestServer::start(move |_| Response::new(Full::new(Bytes::from(big.clone())))).await;
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start(&format!(
            "[providers.well_behaved]\nallow = [\"http://{}\"]\nmax_response_body_kib = 1024\n[providers.well_behaved.settings]\nurl = {:?}\n",
            server.addr,
            server.url("/big")
        ))
        .await;
    let err = host
        .provider("well_behaved")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Provider(_)), "{err:?}");
    assert_well_behaved_works(&host).await;
}

#[test]
fn component_paths_exist() {
    for c in [
        "well_behaved",
        "hostile_net",
        "hostile_loop",
        "hostile_alloc",
        "hostile_panic",
        "hostile_fs",
        "hostile_huge",
        "wrong_major",
        "missing_export",
    ] {
        assert!(component_path(c).exists());
    }
    assert!(well_behaved_v2().exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_outbound_request_is_audited_without_credentials() {
    crate::support::install_log_capture();
    let (server, _, _) = counting_server().await;
    let env = TestEnv::new();
    env.add("well_behaved").add("hostile_net");
    let token = env.dir.path().join("token");
    std::fs::write(&token, "audit-s3cret-token").unwrap();
    let path = format!("/audit-{}", std::process::id());
    let host = env
        .start(&format!(
            "[providers.well_behaved]\nallow = [\"http://{addr}\"]\n[providers.well_behaved.settings]\nurl = {url:?}\n\
             [providers.well_behaved.credential]\nkind = \"bearer\"\ntoken_file = {token:?}\n\
             [providers.hostile_net.settings]\nurl = {url:?}\n",
            addr = server.addr,
            url = server.url(&path),
        ))
        .await;
    host.provider("well_behaved")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap();
    host.provider("hostile_net")
        .unwrap()
        .list_instances(any_instances())
        .await
        .unwrap_err();
    let logs = crate::support::captured_logs();
    let ours: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains(&path) && l.contains("bpr::audit::http"))
        .collect();
    let sent = ours
        .iter()
        .find(|l| l.contains("provider=well_behaved"))
        .expect("the allowed request is audited");
    for field in [
        "method=GET",
        "host=\"127.0.0.1\"",
        "status=200",
        "outcome=\"sent\"",
        "duration_ms=",
    ] {
        assert!(sent.contains(field), "{field} missing in {sent}");
    }
    let denied = ours
        .iter()
        .find(|l| l.contains("provider=hostile_net"))
        .expect("the denied request is audited");
    assert!(denied.contains("outcome=\"denied\""), "{denied}");
    assert!(
        !logs.contains("audit-s3cret-token"),
        "a credential reached the logs"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oauth_credential_is_minted_by_the_host_and_sent_as_a_bearer_token() {
    let (server, _, with_auth) = counting_server().await;
    // An Entra ID token endpoint: checks the client secret, answers a token.
    let mints = Arc::new(AtomicUsize::new(0));
    let m = mints.clone();
    let authority = TestServer::start(move |req| {
        m.fetch_add(1, Ordering::SeqCst);
        assert_eq!(req.uri().path(), "/tenant-1/oauth2/v2.0/token");
        Response::new(Full::new(Bytes::from_static(
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"minted-by-host"}"#,
        )))
    })
    .await;
    let env = TestEnv::new();
    env.add("well_behaved");
    let secret = env.dir.path().join("client-secret");
    std::fs::write(&secret, "s3cret").unwrap();
    let host = env
        .start(&format!(
            "[providers.well_behaved]\nallow = [\"http://{addr}\"]\n[providers.well_behaved.settings]\nurl = {url:?}\n\
             [providers.well_behaved.credential]\nkind = \"azure-client-credentials\"\ntenant_id = \"tenant-1\"\n\
             client_id = \"app-1\"\nclient_secret_file = {secret:?}\nauthority = {authority:?}\n",
            addr = server.addr,
            url = server.url("/x"),
            authority = authority.url(""),
        ))
        .await;
    let p = host.provider("well_behaved").unwrap();
    for _ in 0..3 {
        let found = p.list_instances(any_instances()).await.unwrap();
        assert_eq!(
            found[0].detail.as_deref(),
            Some("hello; auth=Bearer minted-by-host")
        );
    }
    assert_eq!(with_auth.load(Ordering::SeqCst), 3);
    assert_eq!(mints.load(Ordering::SeqCst), 1, "the token is cached");
}
