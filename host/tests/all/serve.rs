//! Issue 13 (`bpr serve`): the real binary over real HTTP, the real `aws`
//! component under wasmtime against moto (`scripts/standins/moto.sh start`).
//! Each test starts its own `bpr serve` on an ephemeral port with its own
//! state directory and token file, and reads the port from its log.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::deploy::{Moto, aws_section, unique_id, write_creds};
use crate::support::TestEnv;

pub(crate) const TOKEN: &str = "serve-test-token-0123456789abcdef0123456789";

/// A running `bpr serve`, killed on drop.
pub(crate) struct Serve {
    child: Child,
    pub url: String,
    log: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the token file (mode 0600) and the config: `[host]` (watch on),
/// `[serve]` (ephemeral port, 1 s supervisor passes), the aws section for
/// `moto`, and `extra`.
pub(crate) fn write_config(env: &TestEnv, moto: &str, integrity: &str, extra: &str) -> PathBuf {
    env.add("aws");
    let creds = write_creds(env);
    let token = env.dir.path().join("api-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = env.dir.path().join("bpr.toml");
    std::fs::write(
        &path,
        format!(
            "{}\n[serve]\nlisten = \"127.0.0.1:0\"\ntoken_file = {token:?}\nsupervisor_interval_secs = 1\n{extra}\n{}",
            env.host_section(integrity, true),
            aws_section(moto, &creds),
        ),
    )
    .unwrap();
    path
}

impl Serve {
    /// Starts `bpr serve --config config` and waits until it listens.
    pub(crate) fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bpr"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("RUST_LOG", "info,bpr::provider=warn,bpr::audit::http=warn")
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bpr runs");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // "serving http://127.0.0.1:PORT: N provider(s) loaded..."
                if let Some(i) = line.find("serving http://") {
                    let rest = &line[i + "serving ".len()..];
                    let _ = tx.send(rest.split(": ").next().unwrap_or(rest).to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(u) => u,
            Err(_) => {
                let _ = child.kill();
                panic!("bpr serve did not start listening: {}", log.lock().unwrap());
            }
        };
        Self {
            child,
            url,
            log,
            http: reqwest::Client::new(),
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(120))
    }

    /// (status, JSON body) of an authenticated request.
    pub(crate) async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.req(method, path);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("bpr serve answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Waits until `/readyz` says ready.
    pub(crate) async fn ready(&self) {
        let t0 = Instant::now();
        loop {
            if self.get("/readyz").await.0 == 200 {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "never ready: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The record of `id` once `done(status)` holds.
    pub(crate) async fn wait_status(&self, id: &str, done: &dyn Fn(&str) -> bool) -> Value {
        let t0 = Instant::now();
        loop {
            let (code, v) = self.get(&format!("/v1/deployments/{id}")).await;
            assert_eq!(code, 200, "{v}");
            if done(v["status"].as_str().unwrap_or("")) {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "{id} stuck at {v}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit; its exit code.
    pub(crate) fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let t0 = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(
                t0.elapsed() < within,
                "bpr serve still running after {within:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// An event stream, read in the background into a list.
    pub(crate) async fn events(&self, query: &str) -> EventReader {
        let resp = self
            .http
            .get(format!("{}/v1/events{query}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let got: Arc<Mutex<Vec<(String, u64, Value)>>> = Default::default();
        let sink = got.clone();
        let task = tokio::spawn(async move {
            let mut stream = resp.bytes_stream();
            let mut buf = String::new();
            while let Some(Ok(chunk)) = stream.next().await {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let block: String = buf.drain(..end + 2).collect();
                    let (mut event, mut id, mut data) = (String::new(), 0u64, String::new());
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event:") {
                            event = v.trim().to_string();
                        } else if let Some(v) = line.strip_prefix("id:") {
                            id = v.trim().parse().unwrap_or(0);
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim());
                        }
                    }
                    if !event.is_empty() {
                        let v = serde_json::from_str(&data).unwrap_or(Value::String(data));
                        sink.lock().unwrap().push((event, id, v));
                    }
                }
            }
        });
        EventReader { got, task }
    }
}

/// Events received so far: (event name, id, data).
pub(crate) struct EventReader {
    got: Arc<Mutex<Vec<(String, u64, Value)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EventReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EventReader {
    pub(crate) fn all(&self) -> Vec<(String, u64, Value)> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until an event named `name` arrived for `id`.
    pub(crate) async fn wait_for(&self, id: &str, name: &str) {
        let t0 = Instant::now();
        while !self
            .all()
            .iter()
            .any(|(e, _, v)| e == name && v["deployment_id"] == id)
        {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "no {name} event for {id}: {:?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Event names for `id`, in the order received.
    pub(crate) fn names_for(&self, id: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|(_, _, v)| v["deployment_id"] == id)
            .map(|(e, _, _)| e)
            .collect()
    }
}

/// A deploy request on moto's t3.micro with a container workload.
pub(crate) fn deploy_body(id: &str) -> Value {
    json!({
        "deployment_id": id,
        "blueprint_id": "7",
        "service_id": id.rsplit('-').next().unwrap_or("1"),
        "ttl_secs": 3600,
        "workload": {"source": {"kind": "container", "image": "ghcr.io/example/app:1.2",
            "ports": [{"container_port": 80, "host_port": 8080}]}},
        "candidates": [{"provider": "aws", "region": "us-east-1", "instance_type": "t3.micro", "hourly_usd": 0.0104}]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_the_token_or_with_a_wrong_one_are_401_and_logged_without_it() {
    let env = TestEnv::new();
    let config = write_config(&env, "http://127.0.0.1:9", "warn", "");
    let serve = Serve::start(&config);
    let http = reqwest::Client::new();
    let wrong = "wrong-token-that-must-not-appear-in-the-log";
    for (path, auth) in [
        ("/v1/deployments", None),
        ("/v1/deployments", Some(format!("Bearer {wrong}"))),
        ("/healthz", Some(format!("Basic {wrong}"))),
        ("/no/such/path", None),
        ("/metrics", Some(format!("Bearer {TOKEN}x"))),
    ] {
        let mut r = http.get(format!("{}{path}", serve.url));
        if let Some(a) = &auth {
            r = r.header("authorization", a);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path} {auth:?}");
        assert_eq!(
            resp.headers().get("www-authenticate").unwrap(),
            "Bearer",
            "{path}"
        );
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    }
    // The right token works, everywhere.
    assert_eq!(serve.get("/healthz").await.0, 200);
    assert_eq!(serve.get("/v1/deployments").await.0, 200);
    let log = serve.log();
    assert!(
        log.contains("request refused: wrong token") && log.contains("no Authorization header"),
        "refusals are logged: {log}"
    );
    assert!(
        !log.contains(wrong) && !log.contains(TOKEN),
        "a token appeared in the log: {log}"
    );
}

#[test]
fn a_token_file_others_can_read_stops_the_service_before_it_starts() {
    let env = TestEnv::new();
    let config = write_config(&env, "http://127.0.0.1:9", "warn", "");
    let token = env.dir.path().join("api-token");
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bpr"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("readable by others") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_4xx_naming_the_field_and_nothing_is_recorded() {
    let env = TestEnv::new();
    let config = write_config(&env, "http://127.0.0.1:9", "warn", "max_body_kib = 4");
    let serve = Serve::start(&config);
    let mut ok = deploy_body("dep-bad-1");
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            {
                ok["ttl_secs"] = json!(0);
                ok.clone()
            },
            422,
            "ttl_secs",
        ),
        (
            json!({"blueprint_id": "7", "service_id": "1", "health": {"port": "eighty"}}),
            400,
            "health.port",
        ),
        (
            json!({"blueprint_id": "7", "service_id": "1", "regoin": "us"}),
            400,
            "regoin",
        ),
        (
            json!({"blueprint_id": "7", "service_id": "1", "labels": {"bpr-x": "y"}}),
            422,
            "labels.bpr-x",
        ),
        (
            json!({"blueprint_id": "7", "service_id": "1", "candidates": [{"provider": "aws", "region": "", "instance_type": "t3.micro"}]}),
            422,
            "candidates[0].region",
        ),
    ];
    for (body, status, field) in cases {
        let (code, v) = serve.post("/v1/deployments", body.clone()).await;
        assert_eq!(code, status, "{body} -> {v}");
        let text = v.to_string();
        assert!(text.contains(field), "{body}: error must name {field}: {v}");
    }
    // Too large, not JSON, unknown endpoint, bad id, bad query.
    let big = json!({"blueprint_id": "7", "service_id": "1", "labels": {"a": "x".repeat(8000)}});
    assert_eq!(serve.post("/v1/deployments", big).await.0, 413);
    let resp = serve
        .req(reqwest::Method::POST, "/v1/deployments")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let (code, v) = serve.get("/v1/nothing").await;
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (404, Some("not-found"))
    );
    let (code, v) = serve.get("/v1/deployments/Bad%20Id").await;
    assert_eq!((code, v["error"]["field"].as_str()), (422, Some("id")));
    let (code, v) = serve.get("/v1/deployments?limit=0").await;
    assert_eq!((code, v["error"]["field"].as_str()), (422, Some("limit")));
    let (code, v) = serve.get("/v1/deployments?status=nope").await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (400, Some("status")),
        "{v}"
    );
    let (code, v) = serve.get("/v1/deployments/dep-none").await;
    assert_eq!(code, 404, "{v}");
    let (_, v) = serve.get("/v1/deployments").await;
    assert_eq!(v["deployments"], json!([]), "nothing was recorded");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_description_is_served_and_names_every_endpoint() {
    let env = TestEnv::new();
    let config = write_config(&env, "http://127.0.0.1:9", "warn", "");
    let serve = Serve::start(&config);
    let (code, doc) = serve.get("/openapi.json").await;
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/v1/deployments",
        "/v1/deployments/{id}",
        "/v1/events",
        "/metrics",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing");
    }
    assert!(doc["components"]["schemas"]["DeployRequest"].is_object());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_through_the_api_reaches_active_with_its_events_in_order_then_terminates() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let config = write_config(&env, &moto.url, "warn", "");
    let serve = Serve::start(&config);
    serve.ready().await;
    let events = serve.events("").await;
    let id = unique_id("dep-api");

    let (code, v) = serve.post("/v1/deployments", deploy_body(&id)).await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["candidates"], json!(["aws/us-east-1/t3.micro"]));
    // Accepted again with the same id: refused, not a second deployment.
    let (code, _) = serve.post("/v1/deployments", deploy_body(&id)).await;
    assert_eq!(code, 409);

    let rec = serve
        .wait_status(&id, &|s| s == "active" || s == "failed")
        .await;
    assert_eq!(rec["status"], "active", "{rec}\n{}", serve.log());
    assert_eq!(rec["provider"], "aws");
    let instance = rec["instance_id"].as_str().unwrap().to_string();
    assert_eq!(moto.live_instances_of(&id).await, vec![instance.clone()]);
    events.wait_for(&id, "running").await;
    assert_eq!(
        events.names_for(&id),
        vec!["accepted", "provisioning", "running"],
        "{:?}",
        events.all()
    );
    let ids: Vec<u64> = events.all().iter().map(|(_, n, _)| *n).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");

    let (code, h) = serve.get(&format!("/v1/deployments/{id}/history")).await;
    assert_eq!(code, 200);
    let path: Vec<&str> = h["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        path,
        [
            "planned",
            "provisioning",
            "provisioned",
            "deploying",
            "active"
        ]
    );
    assert_eq!(h["attempts"][0]["outcome"], "used");

    let (code, v) = serve
        .get("/v1/deployments?status=active&blueprint_id=7")
        .await;
    assert_eq!(code, 200);
    assert!(
        v["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str())
    );

    let (code, v) = serve
        .post(
            &format!("/v1/deployments/{id}/renew"),
            json!({"ttl_secs": 7200}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["ttl_secs"], 7200);

    // A client that reconnects after the first event gets the rest again.
    let first = events.all().first().map(|(_, n, _)| *n).unwrap();
    let replay = serve
        .http
        .get(format!("{}/v1/events?deployment={id}", serve.url))
        .bearer_auth(TOKEN)
        .header("last-event-id", first.to_string())
        .send()
        .await
        .unwrap();
    let mut stream = replay.bytes_stream();
    let mut text = String::new();
    while !text.contains("event: running") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("replayed events")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains("event: provisioning") && !text.contains("event: accepted"),
        "{text}"
    );

    let (code, v) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(code, 202, "{v}");
    events.wait_for(&id, "terminated").await;
    let rec = serve.wait_status(&id, &|s| s == "terminated").await;
    assert!(rec["released_at"].is_i64(), "{rec}");
    assert!(moto.live_instances_of(&id).await.is_empty());
    // Terminating again is answered with the record.
    let (code, _) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_that_cannot_be_placed_is_refused_at_once_and_one_that_fails_later_says_why() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let config = write_config(&env, &moto.url, "warn", "");
    let serve = Serve::start(&config);
    serve.ready().await;
    // A candidate of a provider that is not loaded: refused now, naming it.
    let mut body = deploy_body(&unique_id("dep-nope"));
    body["candidates"][0]["provider"] = json!("nosuch");
    let (code, v) = serve.post("/v1/deployments", body).await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (422, Some("candidates[0].provider")),
        "{v}"
    );
    // Requirements no offer meets: refused now, saying so.
    let (code, v) = serve
        .post(
            "/v1/deployments",
            json!({"blueprint_id": "7", "service_id": "1",
                   "requirements": {"min_vcpus": 100000.0, "regions": ["us-east-1"]}}),
        )
        .await;
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (422, Some("no-placement")),
        "{v}"
    );
    // An instance type moto does not know: the provider refuses it.
    let id = unique_id("dep-badtype");
    let mut body = deploy_body(&id);
    body["candidates"][0]["instance_type"] = json!("z9.nonexistent");
    let (code, v) = serve.post("/v1/deployments", body).await;
    assert_eq!(code, 202, "{v}");
    let rec = serve.wait_status(&id, &|s| s == "failed").await;
    assert!(
        !rec["last_error"].as_str().unwrap_or("").is_empty(),
        "{rec}"
    );
    assert!(moto.live_instances_of(&id).await.is_empty());
}

/// `aws.wasm` with a custom section appended: a different file (sha256) that
/// behaves the same.
fn aws_variant(tag: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(crate::support::component_path("aws")).unwrap();
    let name = b"bpr-test-variant";
    let payload = tag.as_bytes();
    let size = 1 + name.len() + payload.len();
    assert!(size < 128 && name.len() < 128, "one-byte LEB128 lengths");
    bytes.push(0); // custom section id
    bytes.push(size as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(payload);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// providers.lock approving aws with digest `sha` and moto as its host.
fn approve(env: &TestEnv, sha: &str, moto: &str) {
    let text = format!("[providers.aws]\nsha256 = {sha:?}\nallowed_hosts = [{moto:?}]\n");
    let tmp = env.dir.path().join(".lock.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(tmp, env.lock_path()).unwrap();
}

/// Replaces `providers/aws.wasm` atomically (as an operator's `mv` does).
fn drop_in(env: &TestEnv, bytes: &[u8]) {
    let tmp = env.dir.path().join("aws.wasm.new");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(tmp, env.providers.join("aws.wasm")).unwrap();
}

async fn serving_sha(serve: &Serve) -> (String, String) {
    let (_, v) = serve.get("/v1/providers").await;
    let aws = v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "aws")
        .cloned()
        .unwrap();
    (
        aws["sha256"].as_str().unwrap_or("").to_string(),
        aws["state"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_wasm_swapped_while_api_deploys_are_in_flight_fails_none_of_them() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let config = write_config(&env, &moto.url, "enforce", "");
    let v1 = std::fs::read(env.providers.join("aws.wasm")).unwrap();
    approve(&env, &sha256_hex(&v1), &moto.url);
    let serve = Serve::start(&config);
    serve.ready().await;
    assert_eq!(
        serving_sha(&serve).await,
        (sha256_hex(&v1), "loaded".into())
    );

    let run = unique_id("dep-swap");
    let ids: Vec<String> = (0..16).map(|i| format!("{run}-{i}")).collect();
    let v2 = aws_variant("v2");
    let v3 = aws_variant("v3-not-approved");
    let wait_serving = async |sha: &str, state: &str| {
        let t0 = Instant::now();
        loop {
            let now = serving_sha(&serve).await;
            if now == (sha.to_string(), state.to_string()) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "serving {now:?}, not {sha} ({state}); log: {}",
                serve.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    for (i, id) in ids.iter().enumerate() {
        let (code, v) = serve.post("/v1/deployments", deploy_body(id)).await;
        assert_eq!(code, 202, "{v}");
        match i {
            // An approved new version, while the first deploys are in flight.
            4 => {
                let (_, r) = serve.get("/readyz").await;
                assert!(r["work_in_flight"].as_u64().unwrap() > 0, "{r}");
                approve(&env, &sha256_hex(&v2), &moto.url);
                drop_in(&env, &v2);
                wait_serving(&sha256_hex(&v2), "loaded").await;
            }
            // A file nobody approved: refused, v2 keeps serving.
            10 => {
                drop_in(&env, &v3);
                wait_serving(&sha256_hex(&v2), "serving-previous").await;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    for id in &ids {
        let rec = serve
            .wait_status(id, &|s| s == "active" || s == "failed")
            .await;
        assert_eq!(rec["status"], "active", "{id}: {rec}\n{}", serve.log());
    }
    // The refused file is not retried over and over (the watch ignores reads).
    let refusals = |log: &str| log.matches("provider refused").count();
    let before = refusals(&serve.log());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(refusals(&serve.log()), before, "{}", serve.log());
    assert_eq!(before, 1, "{}", serve.log());
    let (_, v) = serve.get("/v1/providers").await;
    let refused = v["providers"][0]["refused_because"].as_str().unwrap_or("");
    assert!(refused.contains("providers.lock"), "{v}");
    // Every one ran on exactly one instance, and terminates cleanly.
    for id in &ids {
        assert_eq!(moto.live_instances_of(id).await.len(), 1, "{id}");
        let (code, _) = serve
            .call(
                reqwest::Method::DELETE,
                &format!("/v1/deployments/{id}"),
                None,
            )
            .await;
        assert_eq!(code, 202);
    }
    for id in &ids {
        serve.wait_status(id, &|s| s == "terminated").await;
        assert!(moto.live_instances_of(id).await.is_empty(), "{id}");
    }
}

const IN_FLIGHT: [&str; 5] = [
    "planned",
    "provisioning",
    "provisioned",
    "deploying",
    "terminating",
];

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_ten_deploys_exits_zero_and_a_restart_leaves_no_leak_and_no_stuck_record() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let config = write_config(&env, &moto.url, "warn", "drain_secs = 30");
    let mut serve = Serve::start(&config);
    serve.ready().await;
    let run = unique_id("dep-term");
    let ids: Vec<String> = (0..10).map(|i| format!("{run}-{i}")).collect();
    for id in &ids {
        let (code, v) = serve.post("/v1/deployments", deploy_body(id)).await;
        assert_eq!(code, 202, "{v}");
    }
    // Some are mid-flight now: the first has an instance.
    let t0 = Instant::now();
    while serve.get(&format!("/v1/deployments/{}", ids[0])).await.1["instance_id"].is_null()
        && t0.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    serve.signal("TERM");
    let t0 = Instant::now();
    while serve.get("/readyz").await.0 != 503 {
        assert!(t0.elapsed() < Duration::from_secs(10), "never draining");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // No new work while draining; reads still answer.
    let (code, v) = serve
        .post("/v1/deployments", deploy_body(&format!("{run}-late")))
        .await;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["error"]["code"], "shutting-down");
    assert_eq!(
        serve.get(&format!("/v1/deployments/{}", ids[0])).await.0,
        200
    );
    // A second signal: stop the rest between provider calls now.
    serve.signal("TERM");
    let code = tokio::task::block_in_place(|| serve.wait_exit(Duration::from_secs(90)));
    assert_eq!(code, Some(0), "{}", serve.log());
    let log = serve.log();
    assert!(log.contains("SIGTERM: stopping"), "{log}");
    drop(serve);

    // The next start's recovery resolves what the stop left.
    let serve = Serve::start(&config);
    serve.ready().await;
    let t0 = Instant::now();
    let records = loop {
        let (_, v) = serve.get("/v1/deployments?limit=1000").await;
        let mine: Vec<Value> = v["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["id"].as_str().unwrap().starts_with(&run))
            .cloned()
            .collect();
        if mine
            .iter()
            .all(|r| !IN_FLIGHT.contains(&r["status"].as_str().unwrap()))
        {
            break mine;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "records stuck in flight: {mine:?}\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for id in &ids {
        let live = moto.live_instances_of(id).await;
        match records.iter().find(|r| r["id"] == id.as_str()) {
            Some(r) if r["status"] == "active" => {
                assert_eq!(
                    live,
                    vec![r["instance_id"].as_str().unwrap().to_string()],
                    "{r}"
                )
            }
            Some(r) => assert!(live.is_empty(), "{id} is {} but {live:?} run", r["status"]),
            None => assert!(live.is_empty(), "{id} has no record but {live:?} run"),
        }
    }
    assert!(
        records.iter().any(|r| r["status"] == "active"),
        "some deploys got through: {records:?}"
    );
    // Clean up through the API; nothing stays behind.
    for r in records.iter().filter(|r| r["status"] == "active") {
        let id = r["id"].as_str().unwrap();
        let (code, _) = serve
            .call(
                reqwest::Method::DELETE,
                &format!("/v1/deployments/{id}"),
                None,
            )
            .await;
        assert_eq!(code, 202);
        serve.wait_status(id, &|s| s == "terminated").await;
    }
    for id in &ids {
        assert!(moto.live_instances_of(id).await.is_empty(), "{id} leaked");
    }
}

/// `(name, labels)` of every sample of a scrape.
fn samples(text: &str) -> Vec<(String, std::collections::BTreeMap<String, String>, f64)> {
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses");
    scrape
        .samples
        .into_iter()
        .map(|s| {
            let v = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => 0.0,
            };
            (
                s.metric,
                s.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                v,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_pass_a_prometheus_parser_and_count_calls_traps_deadlines_and_requests() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    env.add("hostile_loop").add("hostile_panic");
    let config = write_config(
        &env,
        &moto.url,
        "warn",
        "\n[providers.hostile_loop]\ncall_timeout_ms = 300\n",
    );
    let serve = Serve::start(&config);
    serve.ready().await;
    let id = unique_id("dep-metrics");
    let (code, _) = serve.post("/v1/deployments", deploy_body(&id)).await;
    assert_eq!(code, 202);
    serve.wait_status(&id, &|s| s == "active").await;
    // A ranked plan asks every provider for offers: one loops, one panics.
    let (code, v) = serve
        .post(
            "/v1/plan",
            json!({"blueprint_id": "7", "service_id": "1",
                   "requirements": {"min_vcpus": 1.0, "min_memory_gib": 1.0, "regions": ["us-east-1"]}}),
        )
        .await;
    assert!(code == 200 || code == 422, "{v}");

    let resp = serve
        .req(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = resp.text().await.unwrap();
    let all = samples(&text);
    let has = |name: &str, labels: &[(&str, &str)]| {
        all.iter().any(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
    };
    for (name, labels) in [
        (
            "bpr_provider_call_duration_seconds",
            vec![
                ("provider", "aws"),
                ("export", "create-instance"),
                ("outcome", "ok"),
            ],
        ),
        (
            "bpr_provider_call_duration_seconds",
            vec![
                ("provider", "aws"),
                ("export", "list-offers"),
                ("outcome", "ok"),
            ],
        ),
        (
            "bpr_provider_call_duration_seconds",
            vec![
                ("provider", "hostile_loop"),
                ("export", "list-offers"),
                ("outcome", "deadline"),
            ],
        ),
        (
            "bpr_sandbox_deadline_hits_total",
            vec![("provider", "hostile_loop")],
        ),
        (
            "bpr_sandbox_traps_total",
            vec![("provider", "hostile_panic"), ("kind", "trap")],
        ),
        (
            "bpr_outbound_requests_total",
            vec![("provider", "aws"), ("status", "200")],
        ),
        // The live price list's host is not on the allowlist here.
        (
            "bpr_outbound_requests_total",
            vec![("provider", "aws"), ("status", "denied")],
        ),
        (
            "bpr_deployments",
            vec![("state", "active"), ("provider", "aws")],
        ),
        ("bpr_deployments", vec![("state", "failed")]),
        ("bpr_provider_loaded", vec![("provider", "hostile_panic")]),
        (
            "bpr_api_requests_total",
            vec![("route", "/v1/deployments"), ("status", "202")],
        ),
        (
            "bpr_api_request_duration_seconds",
            vec![("route", "/v1/deployments/:id")],
        ),
        ("bpr_build_info", vec![]),
    ] {
        assert!(
            has(name, &labels),
            "{name} {labels:?} missing from:\n{text}"
        );
    }
    assert!(text.contains("# TYPE bpr_provider_call_duration_seconds histogram"));
    assert!(text.contains("# TYPE bpr_price_catalogue_age_seconds gauge"));
    // And Prometheus's own checker (from Debian's prometheus package).
    let promtool = std::env::var("BPR_TEST_PROMTOOL").expect(
        "BPR_TEST_PROMTOOL is not set: run `scripts/standins/promtool.sh start` and export what it prints",
    );
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, _) = serve
        .call(
            reqwest::Method::DELETE,
            &format!("/v1/deployments/{id}"),
            None,
        )
        .await;
    assert_eq!(code, 202);
    serve.wait_status(&id, &|s| s == "terminated").await;
}

/// A service id unique to this run (moto keeps instances between runs).
pub(crate) fn unique_service() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
        % 1_000_000_000
}

#[tokio::test(flavor = "multi_thread")]
async fn service_events_give_one_deployment_per_service_which_renews_terminates_and_reconciles() {
    let _serial = crate::support::moto_lock().await;
    let moto = Moto::new();
    let env = TestEnv::new();
    let config = write_config(&env, &moto.url, "warn", "");
    let serve = Serve::start(&config);
    serve.ready().await;
    let s = unique_service();
    let path = format!("/v1/services/7/{s}");
    let body = json!({
        "resource_requirements": {"cpu": 1.0, "memory_gb": 1.0, "storage_gb": 8.0, "gpu_count": null, "allow_spot": false},
        "artifact": {"ContainerImage": "ghcr.io/example/app:1.2"},
        "extra_env": {"MODE": "test"},
        "ttl_secs": 3600
    });
    // Checked before anything runs.
    let mut bad = body.clone();
    bad["artifact"] = json!({"GithubBinary": {"archive_url": "https://x/y.tgz", "sha256_hex": "nope", "binary_name": "svc"}});
    let (code, v) = serve.post(&format!("{path}/initiated"), bad).await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (422, Some("artifact.GithubBinary.sha256_hex")),
        "{v}"
    );
    let (code, v) = serve.post("/v1/services/x/1/initiated", body.clone()).await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (422, Some("blueprint_id")),
        "{v}"
    );

    let events = serve
        .events(&format!("?blueprint_id=7&service_id={s}"))
        .await;
    let (code, v) = serve.post(&format!("{path}/initiated"), body.clone()).await;
    assert_eq!(code, 202, "{v}");
    // A second delivery while the first runs: accepted again, not a second deploy.
    let (code, v) = serve.post(&format!("{path}/initiated"), body.clone()).await;
    assert!(code == 202 || code == 200, "{v}");
    let t0 = Instant::now();
    let rec = loop {
        let (code, v) = serve.get(&path).await;
        if code == 200 && v["status"] == "active" {
            break v["deployment"].clone();
        }
        assert!(
            v["status"] != "rejected" && t0.elapsed() < Duration::from_secs(120),
            "{v}\n{}",
            serve.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = rec["id"].as_str().unwrap().to_string();
    assert_eq!(rec["service_key"], format!("7/{s}"));
    // A replay after it runs: the same deployment, one machine.
    let (code, v) = serve.post(&format!("{path}/initiated"), body.clone()).await;
    assert_eq!(
        (code, v["deployment"]["id"].as_str()),
        (200, Some(id.as_str())),
        "{v}"
    );
    assert_eq!(moto.live_instances_of(&id).await.len(), 1);
    events.wait_for(&id, "running").await;
    let names: Vec<String> = events.all().into_iter().map(|(e, _, _)| e).collect();
    assert_eq!(
        names.first().map(String::as_str),
        Some("accepted"),
        "{names:?}"
    );

    let (code, v) = serve
        .post(&format!("{path}/renew"), json!({"ttl_secs": 86400}))
        .await;
    assert_eq!((code, v["ttl_secs"].as_u64()), (200, Some(86400)), "{v}");

    let (code, v) = serve.post(&format!("{path}/terminated"), json!({})).await;
    assert_eq!(code, 202, "{v}");
    events.wait_for(&id, "terminated").await;
    let t0 = Instant::now();
    while serve.get(&path).await.0 != 404 {
        assert!(t0.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moto.live_instances_of(&id).await.is_empty());
    // Terminated again: nothing to do, said at once.
    let (code, _) = serve.post(&format!("{path}/terminated"), json!({})).await;
    assert_eq!(code, 200);

    // After a manager restart: a service the chain no longer has is torn down.
    let other = format!("/v1/services/7/{}", s + 1);
    let (code, _) = serve
        .post(&format!("{other}/initiated"), body.clone())
        .await;
    assert_eq!(code, 202);
    let t0 = Instant::now();
    let other_id = loop {
        let (_, v) = serve.get(&other).await;
        if v["status"] == "active" {
            break v["deployment"]["id"].as_str().unwrap().to_string();
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (code, v) = serve
        .post(
            "/v1/services/reconcile",
            json!({"active": [{"blueprint_id": 7, "service_id": s + 2}]}),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert!(
        v["terminated"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[1] == other_id.as_str()),
        "{v}"
    );
    assert_eq!(v["missing"], json!([format!("7/{}", s + 2)]));
    assert!(moto.live_instances_of(&other_id).await.is_empty());
}

#[test]
fn the_shipped_systemd_unit_passes_systemd_analyze_verify_with_a_low_exposure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/systemd");
    let text = std::fs::read_to_string(root.join("bpr.service")).unwrap();
    for hardening in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=bpr",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "LoadCredential=api-token:",
        "--token-file %d/api-token",
    ] {
        assert!(text.contains(hardening), "{hardening} missing");
    }
    // verify checks that ExecStart's program exists: point it at the one built.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("bpr.service");
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/bpr", env!("CARGO_BIN_EXE_bpr")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze is installed (Debian package `systemd`)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // systemd's own score of the sandbox, offline: 2.0 or better ("OK").
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--threshold=20"])
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // The example configuration it reads parses, and listens on loopback.
    let config =
        blueprint_remote_providers::Config::load(Some(&root.join("bpr.toml"))).expect("bpr.toml");
    assert!(config.serve.listen.ip().is_loopback());
}
