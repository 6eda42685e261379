//! Issue 19 (integrity side) and issue 20's settings check: what a hostile
//! component may return or log is bounded, credentials are applied only where
//! they belong, the artifact cache cannot smuggle code past the lock, signed
//! providers, and settings the component does not declare.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use blueprint_remote_providers::wit::{ClusterRef, InstanceQuery, OfferQuery, ProviderError};
use blueprint_remote_providers::{CallError, Host};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;

use crate::support::{TestEnv, TestServer};

/// A marker unique to one test, so it finds its own lines in the shared log.
fn marker(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

async fn list_offers(host: &Host, name: &str) -> usize {
    host.provider(name)
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap()
        .len()
}

/// Lines of the captured log that mention `marker`.
fn lines_with(marker: &str) -> Vec<String> {
    crate::support::captured_logs()
        .lines()
        .filter(|l| l.contains(marker))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_guest_log_record_cannot_forge_an_audit_line_or_any_other_line() {
    crate::support::install_log_capture();
    let m = marker("forge");
    let env = TestEnv::new();
    env.add("hostile_log");
    let host = env
        .start(&format!(
            "[providers.hostile_log.settings]\nmode = \"forge\"\nmarker = {m:?}\n"
        ))
        .await;
    assert_eq!(list_offers(&host, "hostile_log").await, 1);
    let lines = lines_with(&m);
    assert!(!lines.is_empty(), "the record was not logged at all");
    for line in &lines {
        // Every line carrying guest text is the provider's own record.
        assert!(
            line.contains(" bpr::provider: "),
            "a guest forged a line: {line}"
        );
        assert!(
            !line.chars().any(|c| c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}')),
            "a control or line-breaking character reached the log: {line:?}"
        );
    }
    assert!(
        !crate::support::captured_logs()
            .lines()
            .any(|l| l.contains(&format!("{m}-forged")) && !l.contains(" bpr::provider: ")),
        "a forged audit line reached the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_flood_is_rate_limited_per_call_and_the_drop_is_logged() {
    crate::support::install_log_capture();
    let m = marker("flood");
    let env = TestEnv::new();
    env.add("hostile_log");
    let host = env
        .start(&format!(
            "[providers.hostile_log.settings]\nmode = \"flood\"\ncount = \"20000\"\nmarker = {m:?}\n"
        ))
        .await;
    assert_eq!(list_offers(&host, "hostile_log").await, 1);
    let lines = lines_with(&m);
    let records = lines.iter().filter(|l| l.contains("flood record")).count();
    assert!(
        (1..=300).contains(&records),
        "{records} of 20000 records were logged"
    );
    let logs = crate::support::captured_logs();
    let dropped = logs
        .lines()
        .find(|l| l.contains("hostile_log") && l.contains("log records dropped"))
        .expect("the drop is logged");
    assert!(
        dropped.contains(&format!("{}", 20000 - records)),
        "the drop line gives the count: {dropped}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_log_record_with_huge_fields_is_cut_to_its_caps() {
    crate::support::install_log_capture();
    let m = marker("wide");
    let env = TestEnv::new();
    env.add("hostile_log");
    let host = env
        .start(&format!(
            "[providers.hostile_log]\nmemory_mib = 128\n[providers.hostile_log.settings]\nmode = \"wide\"\ncount = \"200\"\nsize = \"65536\"\nmarker = {m:?}\n"
        ))
        .await;
    assert_eq!(list_offers(&host, "hostile_log").await, 1);
    let lines = lines_with(&m);
    let record = lines
        .iter()
        .find(|l| l.contains("wide record"))
        .expect("the record is logged");
    assert!(
        record.len() <= 10 << 10,
        "a {} byte log line from one record",
        record.len()
    );
}

fn no_instances() -> InstanceQuery {
    InstanceQuery {
        regions: vec![],
        labels: vec![],
    }
}

fn a_cluster() -> ClusterRef {
    ClusterRef {
        id: "c-1".into(),
        name: "c-1".into(),
        region: "test-1".into(),
        resources: vec![],
    }
}

/// Start `hostile_huge` (and `well_behaved`) with these settings and section lines.
async fn huge_host(env: &TestEnv, section: &str, settings: &str) -> Host {
    env.add("hostile_huge").add("well_behaved");
    env.start(&format!(
        "[providers.hostile_huge]\n{section}\n[providers.hostile_huge.settings]\n{settings}\n"
    ))
    .await
}

/// The refusal names the provider, the call, and the setting that raises the cap.
fn assert_refused(err: &CallError, op: &str, setting: &str) {
    let text = err.to_string();
    assert!(
        matches!(err, CallError::ReturnedTooMuch { .. }),
        "expected a returned-data refusal, got {err:?}"
    );
    eprintln!("refused as expected: {text}");
    for part in ["hostile_huge", op, "returned too much data", setting] {
        assert!(text.contains(part), "{part:?} missing in: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_offers_with_ten_mib_names_are_refused_by_the_string_cap() {
    let env = TestEnv::new();
    let host = huge_host(&env, "", "shape = \"strings\"").await;
    let p = host.provider("hostile_huge").unwrap();
    let err = p
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap_err();
    assert_refused(&err, "list-offers", "max_returned_string_kib");
    // The provider and the host go on.
    assert!(matches!(
        p.list_instances(no_instances()).await,
        Err(CallError::Provider(_))
    ));
    assert_eq!(list_offers(&host, "well_behaved").await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_offer_count_over_the_operators_cap_is_refused_and_one_at_the_cap_is_not() {
    let env = TestEnv::new();
    let host = huge_host(
        &env,
        "max_returned_offers = 1000",
        "shape = \"offers\"\nsize = \"1001\"",
    )
    .await;
    let err = host
        .provider("hostile_huge")
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap_err();
    assert_refused(&err, "list-offers", "max_returned_offers");
    assert!(err.to_string().contains("1001"), "{err}");

    let env = TestEnv::new();
    let host = huge_host(
        &env,
        "max_returned_offers = 1000",
        "shape = \"offers\"\nsize = \"1000\"",
    )
    .await;
    assert_eq!(list_offers(&host, "hostile_huge").await, 1000);
}

#[tokio::test(flavor = "multi_thread")]
async fn four_hundred_thousand_offers_are_refused_by_the_default_cap() {
    let env = TestEnv::new();
    let host = huge_host(&env, "", "shape = \"offers\"\nsize = \"400000\"").await;
    let err = host
        .provider("hostile_huge")
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .unwrap_err();
    assert_refused(&err, "list-offers", "max_returned_offers");
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_records_with_oversized_strings_or_lists_are_refused() {
    for (settings, setting) in [
        ("shape = \"detail\"", "max_returned_string_kib"),
        (
            "shape = \"labels\"\ncount = \"5000\"",
            "max_returned_list_items",
        ),
        (
            "shape = \"instances\"\ncount = \"20000\"",
            "max_returned_instances",
        ),
    ] {
        let env = TestEnv::new();
        let host = huge_host(&env, "", settings).await;
        let err = host
            .provider("hostile_huge")
            .unwrap()
            .list_instances(no_instances())
            .await
            .unwrap_err();
        assert_refused(&err, "list-instances", setting);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_records_and_credentials_with_oversized_strings_or_lists_are_refused() {
    let env = TestEnv::new();
    let host = huge_host(&env, "", "").await;
    let p = host.provider("hostile_huge").unwrap();
    let err = p.get_cluster(a_cluster()).await.unwrap_err();
    assert_refused(&err, "get-cluster", "max_returned_string_kib");
    let err = p.get_credentials(a_cluster()).await.unwrap_err();
    assert_refused(&err, "get-credentials", "max_returned_string_kib");

    let env = TestEnv::new();
    let host = huge_host(&env, "", "size = \"10\"\ncount = \"5000\"").await;
    let err = host
        .provider("hostile_huge")
        .unwrap()
        .get_cluster(a_cluster())
        .await
        .unwrap_err();
    assert_refused(&err, "get-cluster", "max_returned_list_items");
}

/// A server answering with what it received: `auth=<Authorization> token=<x-amz-security-token>`,
/// counting requests that carried either.
async fn echo_server() -> (TestServer, Arc<AtomicUsize>) {
    let leaked = Arc::new(AtomicUsize::new(0));
    let l = leaked.clone();
    let server = TestServer::start(move |req| {
        let get = |name: &str| {
            req.headers()
                .get(name)
                .map(|v| v.to_str().unwrap_or("").to_string())
        };
        let (auth, token) = (get("authorization"), get("x-amz-security-token"));
        if auth.is_some() || token.is_some() {
            l.fetch_add(1, Ordering::SeqCst);
        }
        Response::new(Full::new(Bytes::from(format!(
            "auth={} token={}",
            auth.unwrap_or_default(),
            token.unwrap_or_default()
        ))))
    })
    .await;
    (server, leaked)
}

/// An AWS shared credentials file with a session token.
fn session_credentials(env: &TestEnv) -> std::path::PathBuf {
    let path = env.dir.path().join("aws-credentials");
    std::fs::write(
        &path,
        "[default]\naws_access_key_id = AKIDSIGV4TEST\naws_secret_access_key = sigv4-secret\naws_session_token = SESSION-TOKEN-SECRET\n",
    )
    .unwrap();
    path
}

/// `hostile_sigv4` asking for `scope` on the echo server, allowed by an exact
/// rule; `hosts` is the credential's `hosts` line (or empty for the default).
async fn sigv4_host(env: &TestEnv, server: &TestServer, scope: &str, hosts: &str) -> Host {
    env.add("hostile_sigv4");
    let creds = session_credentials(env);
    env.start(&format!(
        "[providers.hostile_sigv4]\nallow = [\"http://{addr}\"]\n\
         [providers.hostile_sigv4.settings]\nurl = {url:?}\nscope = {scope:?}\n\
         [providers.hostile_sigv4.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {creds:?}\n{hosts}\n",
        addr = server.addr,
        url = server.url("/echo"),
    ))
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn sigv4_never_signs_for_a_host_that_is_not_an_aws_endpoint() {
    for scope in ["iam/us-east-1", "ec2/us-east-1", "sts/eu-west-1"] {
        let (server, leaked) = echo_server().await;
        let env = TestEnv::new();
        let host = sigv4_host(&env, &server, scope, "").await;
        let result = host
            .provider("hostile_sigv4")
            .unwrap()
            .list_instances(no_instances())
            .await;
        assert_eq!(
            leaked.load(Ordering::SeqCst),
            0,
            "{scope}: the echo server received a signature or the session token: {result:?}"
        );
        assert!(
            matches!(
                result.as_ref().map_err(CallError::provider_error),
                Err(Some(ProviderError::Denied(_)))
            ),
            "{scope}: expected a denied request, got {result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigv4_signs_for_a_stand_in_the_operator_lists_in_the_credentials_hosts() {
    let (server, leaked) = echo_server().await;
    let env = TestEnv::new();
    let hosts = format!("hosts = [\"127.0.0.1:{}\"]", server.addr.port());
    let host = sigv4_host(&env, &server, "ec2/us-east-1", &hosts).await;
    let found = host
        .provider("hostile_sigv4")
        .unwrap()
        .list_instances(no_instances())
        .await
        .unwrap();
    let echoed = found[0].detail.clone().unwrap_or_default();
    assert!(
        echoed.contains("Credential=AKIDSIGV4TEST/") && echoed.contains("/us-east-1/ec2/"),
        "{echoed}"
    );
    assert!(echoed.contains("token=SESSION-TOKEN-SECRET"), "{echoed}");
    assert_eq!(leaked.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigv4_does_not_sign_for_a_stand_in_on_another_port() {
    let (server, leaked) = echo_server().await;
    let env = TestEnv::new();
    let hosts = format!("hosts = [\"127.0.0.1:{}\"]", server.addr.port() ^ 1);
    let host = sigv4_host(&env, &server, "ec2/us-east-1", &hosts).await;
    let result = host
        .provider("hostile_sigv4")
        .unwrap()
        .list_instances(no_instances())
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(leaked.load(Ordering::SeqCst), 0);
}

/// A `[host]` section with an artifact cache of this env's own (not the
/// shared one), so a test can tamper with it.
fn own_cache_section(env: &TestEnv, integrity: &str) -> String {
    format!(
        "[host]\nproviders_dir = {:?}\nstate_dir = {:?}\nartifact_dir = {:?}\nlock_file = {:?}\nintegrity = {integrity:?}\nwatch = false\n",
        env.providers,
        env.state,
        env.state.join("artifacts"),
        env.lock_path(),
    )
}

fn cwasm_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    files.sort();
    files
}

fn version_ref() -> blueprint_remote_providers::wit::InstanceRef {
    blueprint_remote_providers::wit::InstanceRef {
        id: "version".into(),
        region: "test-1".into(),
        zone: None,
        resources: vec![],
        labels: vec![],
    }
}

async fn served_version(host: &Host) -> String {
    host.provider("well_behaved")
        .unwrap()
        .get_instance(version_ref())
        .await
        .unwrap()
        .detail
        .unwrap()
}

fn approve(env: &TestEnv, file: &std::path::Path) {
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(std::fs::read(file).unwrap()));
    std::fs::write(
        env.lock_path(),
        format!("[providers.well_behaved]\nsha256 = \"{sha}\"\nallowed_hosts = []\n"),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_artifact_does_not_run_under_the_approved_file() {
    crate::support::install_log_capture();
    let env = TestEnv::new();
    env.add("well_behaved");
    let wasm = env.providers.join("well_behaved.wasm");
    approve(&env, &wasm);
    let artifacts = env.state.join("artifacts");
    let first = env
        .start_with(&own_cache_section(&env, "enforce"), "")
        .await;
    assert_eq!(served_version(&first).await, "1");
    let approved = cwasm_files(&artifacts);
    assert_eq!(approved.len(), 1, "{approved:?}");

    // The same host compiles the other version (approved too, for a moment),
    // which leaves its artifact beside the first.
    let v1 = std::fs::read(&wasm).unwrap();
    std::fs::copy(crate::support::well_behaved_v2(), &wasm).unwrap();
    approve(&env, &wasm);
    let second = env
        .start_with(&own_cache_section(&env, "enforce"), "")
        .await;
    assert_eq!(served_version(&second).await, "2");
    let other = cwasm_files(&artifacts)
        .into_iter()
        .find(|p| !approved.contains(p))
        .expect("v2's artifact");

    // The attacker puts v2's artifact where v1's belongs; v1 is approved again.
    std::fs::copy(&other, &approved[0]).unwrap();
    std::fs::write(&wasm, &v1).unwrap();
    approve(&env, &wasm);
    let third = env
        .start_with(&own_cache_section(&env, "enforce"), "")
        .await;
    assert_eq!(
        served_version(&third).await,
        "1",
        "the host ran another file's code under the approved sha256"
    );
    let loaded = third.provider("well_behaved").unwrap().current().unwrap();
    assert!(!loaded.compile.from_cache, "the swapped artifact was used");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupted_artifact_is_recompiled_and_the_provider_works() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let artifacts = env.state.join("artifacts");
    env.start_with(&own_cache_section(&env, "warn"), "").await;
    let file = cwasm_files(&artifacts).pop().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let i = bytes.len() - 100;
    bytes[i] ^= 0x5a;
    std::fs::write(&file, &bytes).unwrap();
    let host = env.start_with(&own_cache_section(&env, "warn"), "").await;
    let loaded = host.provider("well_behaved").unwrap().current().unwrap();
    assert!(!loaded.compile.from_cache);
    assert_eq!(served_version(&host).await, "1");
}

#[cfg(unix)]
async fn start_refused(env: &TestEnv) -> String {
    let text = format!("{}\n", own_cache_section(env, "warn"));
    let cfg = blueprint_remote_providers::Config::from_toml_str(&text, "test.toml").unwrap();
    match Host::start(cfg).await {
        Ok(_) => panic!("the host started"),
        Err(e) => e.to_string(),
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn a_state_directory_others_can_write_is_refused_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.add("well_behaved");
    std::fs::set_permissions(&env.state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let reason = start_refused(&env).await;
    assert!(
        reason.contains(&env.state.display().to_string()),
        "{reason}"
    );
    assert!(reason.contains("writable"), "{reason}");
    assert!(reason.contains("chmod"), "{reason}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_directory_others_can_write_is_refused_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.add("well_behaved");
    let artifacts = env.state.join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::set_permissions(&artifacts, std::fs::Permissions::from_mode(0o775)).unwrap();
    let reason = start_refused(&env).await;
    assert!(
        reason.contains(&artifacts.display().to_string()),
        "{reason}"
    );
    assert!(reason.contains("writable"), "{reason}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn an_artifact_key_other_users_can_read_is_refused_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.add("well_behaved");
    // First start makes the key (0600) in the state directory.
    env.start_with(&own_cache_section(&env, "warn"), "").await;
    let key = env.state.join("artifact-cache.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let reason = start_refused(&env).await;
    assert!(reason.contains(&key.display().to_string()), "{reason}");
    assert!(reason.contains("chmod 600"), "{reason}");
}

/// Why `name` was refused (it must have been).
fn refusal(host: &Host, name: &str) -> String {
    use blueprint_remote_providers::providers::ProviderState;
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
async fn a_setting_the_component_does_not_declare_is_refused_naming_file_provider_and_key() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start("[providers.well_behaved.settings]\nurll = \"http://127.0.0.1:9/x\"\n")
        .await;
    let reason = refusal(&host, "well_behaved");
    for part in [
        "well_behaved.wasm",
        "providers.well_behaved.settings",
        "urll",
        "`url`",
    ] {
        assert!(reason.contains(part), "{part:?} missing in: {reason}");
    }
    assert!(host.provider("well_behaved").is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn every_setting_a_component_declares_is_accepted() {
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start("[providers.well_behaved.settings]\nurl = \"http://127.0.0.1:9/x\"\naddress = \"127.0.0.1\"\n")
        .await;
    assert_eq!(list_offers(&host, "well_behaved").await, 2);
}

// ---- signed providers -----------------------------------------------------

/// A minisign key pair made for this test.
fn keypair() -> minisign::KeyPair {
    minisign::KeyPair::generate_unencrypted_keypair().expect("a key pair")
}

/// Write `<file>.minisig`: a detached minisign signature of `file` by `kp`.
fn sign(kp: &minisign::KeyPair, file: &std::path::Path) {
    let sig = minisign::sign(
        Some(&kp.pk),
        &kp.sk,
        std::fs::File::open(file).unwrap(),
        Some(&format!(
            "file:{}",
            file.file_name().unwrap().to_string_lossy()
        )),
        None,
    )
    .expect("signing works");
    std::fs::write(format!("{}.minisig", file.display()), sig.into_string()).unwrap();
}

/// minisign's key id of `kp`, as minisign prints it.
fn key_id(kp: &minisign::KeyPair) -> String {
    let mut id = [0u8; 8];
    id.copy_from_slice(kp.pk.keynum());
    format!("{:016X}", u64::from_le_bytes(id))
}

/// A `[host]` section in signed mode trusting `keys` (TOML array items).
fn signed_section(env: &TestEnv, keys: &str, watch: bool) -> String {
    format!(
        "{}trusted_keys = [{keys}]\n",
        env.host_section("signed", watch)
    )
}

fn named_key(name: &str, kp: &minisign::KeyPair) -> String {
    format!("{{ name = {name:?}, key = {:?} }}", kp.pk.to_base64())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_signed_by_a_trusted_key_loads_in_signed_mode() {
    let kp = keypair();
    let env = TestEnv::new();
    env.add("well_behaved");
    sign(&kp, &env.providers.join("well_behaved.wasm"));
    let host = env
        .start_with(
            &signed_section(&env, &named_key("Acme test key", &kp), false),
            "",
        )
        .await;
    assert_eq!(served_version(&host).await, "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unsigned_file_is_refused_in_signed_mode_saying_how_to_sign_it() {
    let kp = keypair();
    let env = TestEnv::new();
    env.add("well_behaved");
    let host = env
        .start_with(
            &signed_section(&env, &named_key("Acme test key", &kp), false),
            "",
        )
        .await;
    let reason = refusal(&host, "well_behaved");
    for part in [
        "well_behaved.wasm",
        "well_behaved.wasm.minisig",
        "minisign -Sm",
    ] {
        assert!(reason.contains(part), "{part:?} missing in: {reason}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_signed_by_an_untrusted_key_is_refused_naming_the_key() {
    let (trusted, stranger) = (keypair(), keypair());
    let env = TestEnv::new();
    env.add("well_behaved");
    sign(&stranger, &env.providers.join("well_behaved.wasm"));
    let host = env
        .start_with(
            &signed_section(&env, &named_key("Acme test key", &trusted), false),
            "",
        )
        .await;
    let reason = refusal(&host, "well_behaved");
    assert!(reason.contains(&key_id(&stranger)), "{reason}");
    assert!(reason.contains("not trusted"), "{reason}");
    assert!(
        reason.contains("Acme test key"),
        "the trusted keys are listed: {reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_changed_after_signing_is_refused() {
    let kp = keypair();
    let env = TestEnv::new();
    env.add("well_behaved");
    let wasm = env.providers.join("well_behaved.wasm");
    sign(&kp, &wasm);
    let mut bytes = std::fs::read(&wasm).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0xff;
    std::fs::write(&wasm, &bytes).unwrap();
    let host = env
        .start_with(
            &signed_section(&env, &named_key("Acme test key", &kp), false),
            "",
        )
        .await;
    let reason = refusal(&host, "well_behaved");
    assert!(reason.contains("does not match"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_trusted_for_one_provider_does_not_vouch_for_another() {
    let kp = keypair();
    let env = TestEnv::new();
    env.add("well_behaved");
    sign(&kp, &env.providers.join("well_behaved.wasm"));
    let host = env
        .start_with(
            &signed_section(&env, "", false),
            &format!(
                "[providers.other]\ntrusted_keys = [{}]\n",
                named_key("Other's key", &kp)
            ),
        )
        .await;
    let reason = refusal(&host, "well_behaved");
    assert!(reason.contains("trusted_keys"), "{reason}");

    let env2 = TestEnv::new();
    env2.add("well_behaved");
    sign(&kp, &env2.providers.join("well_behaved.wasm"));
    let host = env2
        .start_with(
            &signed_section(&env2, "", false),
            &format!(
                "[providers.well_behaved]\ntrusted_keys = [{:?}]\n",
                kp.pk.to_base64()
            ),
        )
        .await;
    assert_eq!(served_version(&host).await, "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn hot_reload_checks_the_signature_before_swapping() {
    let (trusted, stranger) = (keypair(), keypair());
    let env = TestEnv::new();
    env.add("well_behaved");
    let wasm = env.providers.join("well_behaved.wasm");
    sign(&trusted, &wasm);
    let host = env
        .start_with(
            &signed_section(&env, &named_key("Acme test key", &trusted), true),
            "",
        )
        .await;
    assert_eq!(served_version(&host).await, "1");

    // A new version signed by a stranger: refused, the old one keeps serving.
    let staged = env.dir.path().join("staged.wasm");
    std::fs::copy(crate::support::well_behaved_v2(), &staged).unwrap();
    sign(&stranger, &staged);
    std::fs::rename(
        format!("{}.minisig", staged.display()),
        format!("{}.minisig", wasm.display()),
    )
    .unwrap();
    std::fs::rename(&staged, &wasm).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = host
            .statuses()
            .into_iter()
            .find(|s| s.name == "well_behaved")
            .unwrap();
        if let blueprint_remote_providers::providers::ProviderState::ServingPrevious(r) =
            status.state
        {
            assert!(r.contains(&key_id(&stranger)), "{r}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bad signature was never noticed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(served_version(&host).await, "1");

    // The trusted author's signature arrives: the new version is swapped in.
    sign(&trusted, &wasm);
    loop {
        if served_version(&host).await == "2" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the signed version was never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[test]
fn providers_inspect_shows_who_signed_the_file() {
    let kp = keypair();
    let env = TestEnv::new();
    env.add("well_behaved");
    sign(&kp, &env.providers.join("well_behaved.wasm"));
    let config = env.dir.path().join("bpr.toml");
    std::fs::write(
        &config,
        signed_section(&env, &named_key("Acme test key", &kp), false),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpr"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "providers",
            "inspect",
            "well_behaved",
        ])
        .env("RUST_LOG", "error")
        .output()
        .expect("bpr runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("signature"))
        .unwrap_or_else(|| panic!("no signature line:\n{stdout}"));
    for part in ["Acme test key", &key_id(&kp), "file:well_behaved.wasm"] {
        assert!(line.contains(part), "{part:?} missing in: {line}");
    }
}
