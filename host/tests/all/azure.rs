//! Issue 15: the `azure` component under wasmtime against the project's stateful
//! fake of Azure Resource Manager and the Retail Prices API, whose router sends
//! every Compute-VM and AKS request through Prism in proxy mode with the
//! official specs. The host mints the ARM token itself
//! (`azure-client-credentials` against a local token endpoint); the fake
//! refuses any other token. Every test also checks that Prism reported no
//! violation for the requests it made.
//!
//! Needs `scripts/standins/azure.sh start` and its exports: `BPR_TEST_AZURE_URL`
//! (the router) and optionally `BPR_TEST_AZURE_PRISM_LOG` (default:
//! `.standins/azure/prism.log` in the workspace).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blueprint_remote_providers::wit::{
    Arch, ClusterAuth, ClusterRef, ClusterSpec, ClusterState, DeleteStatus, Instance,
    InstanceQuery, InstanceRef, InstanceSpec, InstanceState, NodePoolSpec, Offer, OfferQuery,
    PortRule, Protocol, ProviderError,
};
use blueprint_remote_providers::{CallError, Host, ProviderHandle};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Response;
use serde_json::{Value, json};

use crate::support::{TestEnv, TestServer};

/// The fake keeps one global state, so Azure tests run one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJQN3IyjiZ1UaSfgEqyCSz3TItV+q8giYup9DDglod1H bpr-test";
const SUBSCRIPTION: &str = "00000000-0000-4000-8000-000000000015";
/// What the local token endpoint answers for the Resource Manager scope; the
/// fake accepts no other token.
const ARM_TOKEN: &str = "arm-token-minted-by-the-host";
/// What it answers for the AKS server scope.
const AKS_TOKEN: &str = "aks-token-minted-by-the-host";
const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";

/// Where the stand-in runs.
struct Stand {
    url: String,
    prism_log: PathBuf,
    http: reqwest::Client,
}

impl Stand {
    fn from_env() -> Self {
        let url = std::env::var("BPR_TEST_AZURE_URL").unwrap_or_else(|_| {
            panic!(
                "BPR_TEST_AZURE_URL is not set: run `scripts/standins/azure.sh start` and export \
                 the variables it prints (the fake Azure API behind Prism)"
            )
        });
        let prism_log = std::env::var("BPR_TEST_AZURE_PRISM_LOG")
            .map(PathBuf::from)
            .unwrap_or_else(|_| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.standins/azure/prism.log")
            });
        assert!(
            prism_log.exists(),
            "Prism's log {} is missing; set BPR_TEST_AZURE_PRISM_LOG to the log of the running Prism",
            prism_log.display()
        );
        Stand {
            url: url.trim_end_matches('/').to_string(),
            prism_log,
            http: reqwest::Client::new(),
        }
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("the fake Azure API at {} does not answer: {e}", self.url));
        assert!(
            resp.status().is_success(),
            "fake control {path}: {}",
            resp.status()
        );
        serde_json::from_str(&resp.text().await.unwrap()).unwrap()
    }

    async fn fetch(&self, path: &str) -> Value {
        let text = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    async fn config(&self, body: Value) {
        self.control("/_fake/config", body).await;
    }

    /// Queue one injected fault (see `fake_azure.py`).
    async fn inject(&self, fault: Value) {
        self.control("/_fake/next-error", fault).await;
    }

    /// Resource groups and resources the fake holds.
    async fn state(&self) -> Value {
        self.fetch("/_fake/state").await
    }

    /// `(type, name)` of every resource, sorted.
    async fn resources(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self.state().await["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["type"].as_str().unwrap().to_string(),
                    r["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort();
        out
    }

    async fn groups(&self) -> Vec<String> {
        self.state().await["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// The resource of `kind` (ARM type) from the fake's state.
    async fn resource(&self, kind: &str) -> Value {
        let state = self.state().await;
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == kind)
            .cloned()
            .unwrap_or_else(|| panic!("no {kind} in {state}"))
    }

    /// The last PUT body the fake received for the resource of `kind`.
    async fn body_of(&self, kind: &str) -> Value {
        let bodies = self.fetch("/_fake/bodies").await;
        let suffix = format!("/providers/{}/", kind.to_ascii_lowercase());
        bodies
            .as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| k.contains(&suffix))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no PUT body for {kind}: {bodies}"))
    }

    /// `(method, path, status)` of every API request the fake served.
    async fn requests(&self) -> Vec<(String, String, u16)> {
        self.fetch("/_fake/log").await["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["method"].as_str().unwrap().to_string(),
                    r["path"].as_str().unwrap().to_string(),
                    r["status"].as_u64().unwrap() as u16,
                )
            })
            .collect()
    }

    /// Create a resource group directly (the operator's, which the component never makes).
    async fn put_group(&self, name: &str) {
        let resp = self
            .http
            .put(format!(
                "{}/subscriptions/{SUBSCRIPTION}/resourcegroups/{name}?api-version=2021-04-01",
                self.url
            ))
            .bearer_auth(ARM_TOKEN)
            .header("content-type", "application/json")
            .body(json!({"location": "eastus", "tags": {"owner": "operator"}}).to_string())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }

    fn log_len(&self) -> usize {
        std::fs::read(&self.prism_log).map(|b| b.len()).unwrap_or(0)
    }

    /// Prism's violations since `from`. The 2019 Compute spec documents no error
    /// answers, so its warning that a 404/409 status is undocumented is expected;
    /// any other verdict is a violation.
    async fn violations_since(&self, from: usize) -> Vec<String> {
        let (mut last, mut quiet) = (self.log_len(), 0);
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.log_len();
            quiet = if now == last { quiet + 1 } else { 0 };
            last = now;
            if quiet >= 6 {
                break;
            }
        }
        let bytes = std::fs::read(&self.prism_log).expect("read Prism's log");
        String::from_utf8_lossy(&bytes[from.min(bytes.len())..])
            .lines()
            .filter(|l| {
                l.contains("prism/errors#")
                    || (l.contains("[VALIDATOR]")
                        && !l.contains("Unable to match the returned status code"))
            })
            .map(str::to_string)
            .collect()
    }
}

/// A local Entra ID token endpoint: answers a token per scope and records the scopes.
struct TokenEndpoint {
    server: TestServer,
    scopes: Arc<Mutex<Vec<String>>>,
}

impl TokenEndpoint {
    async fn start() -> Self {
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let seen = scopes.clone();
        let server = TestServer::start(move |req| {
            assert_eq!(req.uri().path(), "/tenant-bpr/oauth2/v2.0/token");
            let form = read_body(req);
            let field = |name: &str| {
                form.split('&')
                    .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
                    .map(url_decode)
                    .unwrap_or_default()
            };
            assert_eq!(field("client_id"), "app-bpr");
            assert_eq!(field("client_secret"), "s3cret");
            assert_eq!(field("grant_type"), "client_credentials");
            let scope = field("scope");
            seen.lock().unwrap().push(scope.clone());
            let token = if scope == AKS_SCOPE {
                AKS_TOKEN
            } else {
                ARM_TOKEN
            };
            Response::new(Full::new(Bytes::from(
                json!({"token_type": "Bearer", "expires_in": 3599, "access_token": token})
                    .to_string(),
            )))
        })
        .await;
        TokenEndpoint { server, scopes }
    }

    fn scopes(&self) -> Vec<String> {
        self.scopes.lock().unwrap().clone()
    }
}

fn url_decode(v: &str) -> String {
    let v = v.replace('+', " ");
    let mut out = Vec::new();
    let mut rest = v.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                rest = &tail[2..];
            }
            _ => {
                out.push(b);
                rest = tail;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Read a request body inside the synchronous handler of [`TestServer`].
fn read_body(req: hyper::Request<hyper::body::Incoming>) -> String {
    let handle = tokio::runtime::Handle::current();
    let bytes = tokio::task::block_in_place(|| handle.block_on(req.into_body().collect()))
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A host with only the Azure component, pointed at the stand-in.
struct Fixture {
    stand: Stand,
    tokens: TokenEndpoint,
    env: TestEnv,
    /// The `[providers.azure]` sections the host runs with.
    section: String,
    host: Host,
    azure: ProviderHandle,
    log_from: usize,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_settings("").await
    }

    /// `settings` are extra lines of `[providers.azure.settings]`.
    async fn with_settings(settings: &str) -> Self {
        let serial = SERIAL.lock().await;
        let stand = Stand::from_env();
        stand.control("/_fake/reset", json!({})).await;
        stand.config(json!({ "expect_token": ARM_TOKEN })).await;
        let tokens = TokenEndpoint::start().await;
        let env = TestEnv::new();
        env.add("azure");
        let section = azure_section(&env, &stand.url, &tokens.server.url(""), settings);
        let host = env.start(&section).await;
        let azure = host.provider("azure").expect("azure.wasm loads");
        let log_from = stand.log_len();
        Fixture {
            stand,
            tokens,
            env,
            section,
            host,
            azure,
            log_from,
            _serial: serial,
        }
    }

    /// Every test ends here: Prism saw no request or answer outside the spec.
    async fn finish(self) {
        let v = self.stand.violations_since(self.log_from).await;
        assert!(v.is_empty(), "Prism reported violations:\n{}", v.join("\n"));
        self.host.shutdown().await;
    }

    /// `delete-instance` until `deleted` (at most 20 calls).
    async fn delete_until_gone(&self, r: &InstanceRef) {
        for _ in 0..20 {
            match self.azure.delete_instance(r.clone()).await.expect("delete") {
                DeleteStatus::Deleted => return,
                DeleteStatus::InProgress => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        panic!("{} not deleted after 20 calls", r.id);
    }
}

/// The `[providers.azure]` section: the stand-in as ARM and price endpoint,
/// and an Entra ID identity whose token endpoint is `authority`.
fn azure_section(env: &TestEnv, url: &str, authority: &str, settings: &str) -> String {
    let secret = env.dir.path().join("client-secret");
    std::fs::write(&secret, "s3cret").unwrap();
    format!(
        "[providers.azure]\nallow = [{url:?}]\ncall_timeout_ms = 60000\n\
         [providers.azure.settings]\nendpoint = {url:?}\nprice_endpoint = {url:?}\n\
         subscription_id = {SUBSCRIPTION:?}\n{settings}\n\
         [providers.azure.credential]\nkind = \"azure-client-credentials\"\ntenant_id = \"tenant-bpr\"\n\
         client_id = \"app-bpr\"\nclient_secret_file = {secret:?}\nauthority = {authority:?}\n"
    )
}

fn spec(deployment: &str, key: &str, size: &str) -> InstanceSpec {
    InstanceSpec {
        deployment_id: deployment.into(),
        idempotency_key: key.into(),
        region: "eastus".into(),
        zone: None,
        instance_type: size.into(),
        spot: false,
        image: None,
        disk_gib: 40,
        ssh_public_keys: vec![SSH_KEY.into()],
        user_data: Some("#cloud-config\nruncmd: [echo hi]\n".into()),
        open_ports: vec![
            PortRule {
                port: 22,
                end_port: None,
                protocol: Protocol::Tcp,
                source_cidrs: vec!["198.51.100.0/24".into()],
            },
            PortRule {
                port: 9000,
                end_port: Some(9001),
                protocol: Protocol::Udp,
                source_cidrs: vec![],
            },
        ],
        labels: vec![
            ("bpr-deployment".into(), deployment.into()),
            ("bpr-managed".into(), "true".into()),
            ("team".into(), "a_b/c".into()),
        ],
        workload: None,
    }
}

fn as_ref(i: &Instance) -> InstanceRef {
    InstanceRef {
        id: i.id.clone(),
        region: i.region.clone(),
        zone: None,
        resources: i.resources.clone(),
        labels: i.labels.clone(),
    }
}

fn provider_error(r: Result<impl std::fmt::Debug, CallError>) -> ProviderError {
    match r {
        Ok(v) => panic!("expected a provider error, got {v:?}"),
        Err(e) => e
            .provider_error()
            .cloned()
            .unwrap_or_else(|| panic!("expected a provider error, got {e}")),
    }
}

const VM: &str = "Microsoft.Compute/virtualMachines";

// ---- VMs ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_vm_in_its_own_resource_group_is_created_as_asked_and_delete_leaves_nothing() {
    let f = Fixture::new().await;
    let created = f
        .azure
        .create_instance(spec("dep-life", "idem-life", "Standard_D2s_v3"))
        .await
        .expect("create");
    assert_eq!(
        (created.instance_type.as_str(), created.region.as_str()),
        ("Standard_D2s_v3", "eastus")
    );
    assert!(
        created
            .id
            .contains("/providers/Microsoft.Compute/virtualMachines/bpr-dep-life-")
    );
    assert!(
        created
            .labels
            .contains(&("team".to_string(), "a_b/c".to_string())),
        "{:?}",
        created.labels
    );

    // One resource group for this create, tagged as ours, and the parts in it.
    let groups = f.stand.groups().await;
    assert_eq!(groups.len(), 1, "{groups:?}");
    let kinds: Vec<String> = f
        .stand
        .resources()
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        kinds,
        [
            "Microsoft.Compute/disks",
            "Microsoft.Compute/virtualMachines",
            "Microsoft.Network/networkInterfaces",
            "Microsoft.Network/networkSecurityGroups",
            "Microsoft.Network/publicIPAddresses",
            "Microsoft.Network/virtualNetworks",
        ]
    );
    let group = &f.stand.state().await["groups"][0];
    assert_eq!(group["tags"]["bpr-owner"], "bpr");
    assert_eq!(group["tags"]["bpr-deployment"], "dep-life");

    // The VM body: size, image, key, cloud-init, and deleteOption Delete on
    // the OS disk and the NIC; the public IP is marked Delete too.
    let vm = f.stand.body_of(VM).await;
    let p = &vm["properties"];
    assert_eq!(p["hardwareProfile"]["vmSize"], "Standard_D2s_v3");
    assert_eq!(
        p["storageProfile"]["imageReference"]["offer"],
        "ubuntu-24_04-lts"
    );
    assert_eq!(p["storageProfile"]["osDisk"]["deleteOption"], "Delete");
    assert_eq!(p["storageProfile"]["osDisk"]["diskSizeGB"], 40);
    assert_eq!(
        p["networkProfile"]["networkInterfaces"][0]["properties"]["deleteOption"],
        "Delete"
    );
    assert_eq!(p["osProfile"]["adminUsername"], "azureuser");
    assert_eq!(
        p["osProfile"]["linuxConfiguration"]["ssh"]["publicKeys"][0]["keyData"],
        SSH_KEY
    );
    assert_eq!(
        p["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"],
        true
    );
    use base64::Engine as _;
    let custom = base64::engine::general_purpose::STANDARD
        .decode(p["osProfile"]["customData"].as_str().unwrap())
        .unwrap();
    assert_eq!(custom, b"#cloud-config\nruncmd: [echo hi]\n");
    assert!(p.get("priority").is_none(), "on-demand: no priority");
    assert_eq!(vm["tags"]["bpr-deployment"], "dep-life");
    assert_eq!(vm["tags"]["team"], "a_b/c");
    let pip = f.stand.body_of("Microsoft.Network/publicIPAddresses").await;
    assert_eq!(pip["sku"]["name"], "Standard");
    assert_eq!(pip["properties"]["publicIPAllocationMethod"], "Static");
    assert_eq!(pip["properties"]["deleteOption"], "Delete");

    // The NSG opens exactly the two requested ports, and the NIC carries it.
    let nsg = f
        .stand
        .resource("Microsoft.Network/networkSecurityGroups")
        .await;
    let rules = nsg["properties"]["securityRules"].as_array().unwrap();
    assert_eq!(rules.len(), 2, "only the requested openings: {rules:?}");
    assert_eq!(rules[0]["properties"]["destinationPortRange"], "22");
    assert_eq!(
        rules[0]["properties"]["sourceAddressPrefix"],
        "198.51.100.0/24"
    );
    assert_eq!(rules[0]["properties"]["protocol"], "Tcp");
    assert_eq!(rules[1]["properties"]["destinationPortRange"], "9000-9001");
    assert_eq!(rules[1]["properties"]["protocol"], "Udp");
    assert_eq!(rules[1]["properties"]["sourceAddressPrefix"], "*");
    let nic = f
        .stand
        .resource("Microsoft.Network/networkInterfaces")
        .await;
    assert_eq!(nic["properties"]["networkSecurityGroup"]["id"], nsg["id"]);

    // get: running, with the private and the public address.
    let mut got = f.azure.get_instance(as_ref(&created)).await.expect("get");
    for _ in 0..5 {
        if got.state == InstanceState::Running {
            break;
        }
        got = f.azure.get_instance(as_ref(&created)).await.expect("get");
    }
    assert_eq!(got.state, InstanceState::Running, "{got:?}");
    assert!(
        got.public_ipv4
            .as_deref()
            .is_some_and(|a| a.starts_with("20.")),
        "{got:?}"
    );
    assert!(
        got.private_ipv4
            .as_deref()
            .is_some_and(|a| a.starts_with("10.0.0.")),
        "{got:?}"
    );

    // list by label finds it (crash recovery).
    let listed = f
        .azure
        .list_instances(InstanceQuery {
            regions: vec![],
            labels: vec![("bpr-deployment".into(), "dep-life".into())],
        })
        .await
        .expect("list");
    assert_eq!(
        listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![created.id.as_str()]
    );
    assert_eq!(listed[0].state, InstanceState::Running);

    // delete removes the resource group and everything in it; a repeat is fine.
    f.delete_until_gone(&as_ref(&created)).await;
    assert!(f.stand.groups().await.is_empty());
    assert!(
        f.stand.resources().await.is_empty(),
        "left: {:?}",
        f.stand.resources().await
    );
    assert_eq!(
        f.azure
            .delete_instance(as_ref(&created))
            .await
            .expect("again"),
        DeleteStatus::Deleted
    );
    assert!(matches!(
        provider_error(f.azure.get_instance(as_ref(&created)).await),
        ProviderError::NotFound(_)
    ));
    // The host minted the Resource Manager token (once, cached) and the fake saw it.
    assert_eq!(
        f.tokens.scopes(),
        vec!["https://management.azure.com/.default"]
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_the_operators_resource_group_the_vm_delete_cascades_and_every_other_part_goes_in_order()
{
    let f = Fixture::with_settings("resource_group = \"ops-rg\"").await;
    // The operator's group exists already (the component never creates or deletes it).
    f.stand.put_group("ops-rg").await;
    let created = f
        .azure
        .create_instance(spec("dep-ops", "idem-ops", "Standard_B2s"))
        .await
        .expect("create");
    assert!(
        created.id.contains("/resourceGroups/ops-rg/"),
        "{}",
        created.id
    );
    assert!(created.resources.iter().all(|r| r.kind != "resource-group"));
    assert_eq!(f.stand.resources().await.len(), 6);

    f.delete_until_gone(&as_ref(&created)).await;
    assert_eq!(
        f.stand.groups().await,
        vec!["ops-rg"],
        "the operator's group stays"
    );
    assert!(
        f.stand.resources().await.is_empty(),
        "left: {:?}",
        f.stand.resources().await
    );
    // deleteOption did its part: when the component came to the NIC, public
    // IP and disk, they were already gone (204); the NSG and vnet it deleted.
    let deletes: Vec<(String, u16)> = f
        .stand
        .requests()
        .await
        .into_iter()
        .filter(|(m, _, _)| m == "DELETE")
        .map(|(_, p, s)| {
            (
                p.split('?')
                    .next()
                    .unwrap()
                    .rsplit('/')
                    .nth(1)
                    .unwrap()
                    .to_string(),
                s,
            )
        })
        .collect();
    for (kind, status) in [
        ("virtualMachines", 202),
        ("networkInterfaces", 204),
        ("publicIPAddresses", 204),
        ("disks", 204),
        ("networkSecurityGroups", 202),
        ("virtualNetworks", 202),
    ] {
        assert!(
            deletes.contains(&(kind.to_string(), status)),
            "DELETE {kind} -> {status} expected in {deletes:?}"
        );
    }
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_retried_after_a_lost_answer_gives_one_vm() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"lost_response": true, "method": "PUT", "contains": "/Microsoft.Compute/virtualMachines/"}))
        .await;
    let first = provider_error(
        f.azure
            .create_instance(spec("dep-lost", "idem-lost", "Standard_D2s_v3"))
            .await,
    );
    assert!(matches!(first, ProviderError::Transient(_)), "{first:?}");
    let vms = |r: &[(String, String)]| r.iter().filter(|(t, _)| t == VM).count();
    assert_eq!(vms(&f.stand.resources().await), 1, "the fake did create it");

    let retried = f
        .azure
        .create_instance(spec("dep-lost", "idem-lost", "Standard_D2s_v3"))
        .await
        .expect("retry");
    assert_eq!(vms(&f.stand.resources().await), 1, "still one VM");
    let puts = f
        .stand
        .requests()
        .await
        .iter()
        .filter(|(m, p, _)| m == "PUT" && p.contains("/virtualMachines/"))
        .count();
    assert_eq!(
        puts, 1,
        "the retry found the VM instead of creating another"
    );
    assert!(
        retried.id.ends_with(
            &f.stand.resource(VM).await["name"]
                .as_str()
                .unwrap()
                .to_string()
        )
    );
    f.delete_until_gone(&as_ref(&retried)).await;
    assert!(f.stand.resources().await.is_empty());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spot_vm_asks_for_spot_with_delete_on_eviction_and_no_price_cap() {
    let f = Fixture::new().await;
    let mut s = spec("dep-spot", "idem-spot", "Standard_D2s_v3");
    s.spot = true;
    let created = f.azure.create_instance(s).await.expect("create");
    assert!(created.spot);
    let p = f.stand.body_of(VM).await["properties"].clone();
    assert_eq!(p["priority"], "Spot");
    assert_eq!(p["evictionPolicy"], "Delete");
    assert_eq!(p["billingProfile"]["maxPrice"], -1);
    f.delete_until_gone(&as_ref(&created)).await;
    assert!(f.stand.resources().await.is_empty());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sku_not_available_is_capacity_unavailable_and_the_attempt_is_cleaned_up() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"sku_not_available": ["Standard_D2_v5"]}))
        .await;
    let err = provider_error(
        f.azure
            .create_instance(spec("dep-sku", "idem-sku", "Standard_D2_v5"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::CapacityUnavailable(m) if m.contains("SkuNotAvailable")),
        "{err:?}"
    );
    assert!(
        f.stand.groups().await.is_empty(),
        "the attempt's group was deleted"
    );
    assert!(f.stand.resources().await.is_empty());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allocation_failed_during_the_create_is_capacity_unavailable_and_cleaned_up() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"allocation_failed": ["Standard_D2_v5"]}))
        .await;
    let err = provider_error(
        f.azure
            .create_instance(spec("dep-alloc", "idem-alloc", "Standard_D2_v5"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::CapacityUnavailable(m) if m.contains("AllocationFailed")),
        "{err:?}"
    );
    assert!(f.stand.resources().await.is_empty());
    assert!(f.stand.groups().await.is_empty());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn allocation_failed_after_the_create_returned_reads_as_a_failed_instance() {
    // vm_wait_ms = 0: create returns as soon as the VM is accepted.
    let f = Fixture::with_settings("vm_wait_ms = \"0\"").await;
    f.stand
        .config(json!({"allocation_failed": ["Standard_D2_v5"]}))
        .await;
    let created = f
        .azure
        .create_instance(spec("dep-late", "idem-late", "Standard_D2_v5"))
        .await
        .expect("accepted");
    assert_eq!(created.state, InstanceState::Pending);
    let mut got = f.azure.get_instance(as_ref(&created)).await.expect("get");
    for _ in 0..5 {
        if got.state == InstanceState::Failed {
            break;
        }
        got = f.azure.get_instance(as_ref(&created)).await.expect("get");
    }
    assert_eq!(got.state, InstanceState::Failed);
    assert!(
        got.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("AllocationFailed")),
        "{got:?}"
    );
    f.delete_until_gone(&as_ref(&created)).await;
    assert!(f.stand.resources().await.is_empty());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exceeding_the_core_quota_is_quota_exceeded() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"quota_exceeded": ["Standard_D16s_v3"]}))
        .await;
    let err = provider_error(
        f.azure
            .create_instance(spec("dep-quota", "idem-quota", "Standard_D16s_v3"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::QuotaExceeded(m) if m.contains("OperationNotAllowed")),
        "{err:?}"
    );
    assert!(f.stand.groups().await.is_empty());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_rate_limited_with_the_retry_after_azure_sent() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"status": 429, "code": "TooManyRequests", "message": "throttled", "retry_after_s": 17, "method": "GET", "contains": "/resourcegroups"}))
        .await;
    let err = provider_error(
        f.azure
            .list_instances(InstanceQuery {
                regions: vec![],
                labels: vec![("bpr-managed".into(), "true".into())],
            })
            .await,
    );
    let ProviderError::RateLimited(rl) = err else {
        panic!("expected rate-limited, got {err:?}")
    };
    assert_eq!(rl.retry_after_ms, Some(17_000));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conflict_is_transient_and_the_retried_create_resumes() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"status": 409, "code": "AnotherOperationInProgress", "message": "Another operation is in progress", "method": "PUT", "contains": "/networkInterfaces/"}))
        .await;
    let err = provider_error(
        f.azure
            .create_instance(spec("dep-409", "idem-409", "Standard_B2s"))
            .await,
    );
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    assert_eq!(
        f.stand.resources().await.len(),
        3,
        "vnet, NSG and IP stay for the retry"
    );
    let created = f
        .azure
        .create_instance(spec("dep-409", "idem-409", "Standard_B2s"))
        .await
        .expect("the retry resumes");
    let puts = f
        .stand
        .requests()
        .await
        .iter()
        .filter(|(m, p, _)| m == "PUT" && p.contains("/virtualNetworks/"))
        .count();
    assert_eq!(puts, 1, "the vnet made by the first attempt was reused");
    f.delete_until_gone(&as_ref(&created)).await;
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_azure_refuses_is_unauthorized() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"expect_token": "some-other-token"}))
        .await;
    let err = provider_error(
        f.azure
            .create_instance(spec("dep-401", "idem-401", "Standard_B2s"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("InvalidAuthenticationToken")),
        "{err:?}"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_authorization_role_is_unauthorized_and_a_missing_vm_not_found() {
    let f = Fixture::new().await;
    f.stand
        .inject(json!({"status": 403, "code": "AuthorizationFailed", "message": "The client does not have authorization to perform action 'Microsoft.Resources/subscriptions/resourcegroups/write'", "method": "PUT"}))
        .await;
    let err = provider_error(
        f.azure
            .create_instance(spec("dep-403", "idem-403", "Standard_B2s"))
            .await,
    );
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("AuthorizationFailed")),
        "{err:?}"
    );
    let missing = InstanceRef {
        id: format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/nope/providers/Microsoft.Compute/virtualMachines/nope"
        ),
        region: "eastus".into(),
        zone: None,
        resources: vec![],
        labels: vec![],
    };
    assert!(matches!(
        provider_error(f.azure.get_instance(missing.clone()).await),
        ProviderError::NotFound(_)
    ));
    assert_eq!(
        f.azure
            .delete_instance(missing)
            .await
            .expect("delete of nothing"),
        DeleteStatus::Deleted
    );
    // An id that is not a VM id never reaches Azure.
    let bad = InstanceRef {
        id: "/subscriptions/s/resourceGroups/../providers/Microsoft.Compute/virtualMachines/x"
            .into(),
        region: "eastus".into(),
        zone: None,
        resources: vec![],
        labels: vec![],
    };
    assert!(matches!(
        provider_error(f.azure.get_instance(bad).await),
        ProviderError::InvalidRequest(_)
    ));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_stopped_before_its_vm_is_a_leftover_the_empty_id_deletes() {
    let f = Fixture::new().await;
    // The NIC fails for good: the create stops before the VM, leaving parts.
    f.stand
        .inject(json!({"status": 400, "code": "InvalidParameter", "message": "bad NIC", "method": "PUT", "contains": "/networkInterfaces/"}))
        .await;
    let err = provider_error(
        f.azure
            .create_instance(spec("dep-half", "idem-half", "Standard_B2s"))
            .await,
    );
    assert!(matches!(err, ProviderError::InvalidRequest(_)), "{err:?}");
    // The failed create cleaned up after itself...
    assert!(f.stand.resources().await.is_empty());
    // ...and a crash in the same place (parts, no VM) is found by the labels.
    let s = spec("dep-half2", "idem-half2", "Standard_B2s");
    f.stand
        .inject(json!({"lost_response": true, "method": "PUT", "contains": "/networkInterfaces/"}))
        .await;
    let _ = f.azure.create_instance(s).await;
    let found = f
        .azure
        .list_instances(InstanceQuery {
            regions: vec!["eastus".into()],
            labels: vec![("bpr-deployment".into(), "dep-half2".into())],
        })
        .await
        .expect("list");
    // The leftovers convention (wit/provider.wit): an empty id, state
    // terminated, the deployment's labels and the parts.
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].id, "");
    assert_eq!(found[0].state, InstanceState::Terminated);
    assert!(found[0].detail.as_deref().unwrap_or("").contains("no VM"));
    assert!(
        found[0]
            .labels
            .contains(&("bpr-deployment".to_string(), "dep-half2".to_string())),
        "{found:?}"
    );
    assert!(!found[0].resources.is_empty(), "{found:?}");
    // What the host does with it: delete-instance with the empty id and the
    // deployment's label.
    f.delete_until_gone(&as_ref(&found[0])).await;
    let again = f
        .azure
        .list_instances(InstanceQuery {
            regions: vec!["eastus".into()],
            labels: vec![("bpr-deployment".into(), "dep-half2".into())],
        })
        .await
        .expect("list");
    assert!(again.is_empty(), "{again:?}");
    assert!(f.stand.groups().await.is_empty());
    assert!(f.stand.resources().await.is_empty());
    f.finish().await;
}

// ---- Prism is live -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_outside_the_schema_is_caught_by_prism() {
    let f = Fixture::new().await;
    let created = f
        .azure
        .create_instance(spec("dep-bad", "idem-bad", "Standard_B2s"))
        .await
        .expect("create");
    f.stand
        .inject(json!({"break_response": true, "method": "GET", "contains": "/virtualMachines/"}))
        .await;
    let err = provider_error(f.azure.get_instance(as_ref(&created)).await);
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
    let v = f.stand.violations_since(f.log_from).await;
    assert!(
        v.iter().any(|l| l.contains("VIOLATIONS")),
        "Prism logged the violation: {v:?}"
    );
    f.delete_until_gone(&as_ref(&created)).await;
    f.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_outside_the_schema_is_rejected_by_prism_before_the_fake() {
    let f = Fixture::new().await;
    let resp = f
        .stand
        .http
        .put(format!(
            "{}/subscriptions/{SUBSCRIPTION}/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/v?api-version=2025-04-01",
            f.stand.url
        ))
        .bearer_auth(ARM_TOKEN)
        .header("content-type", "application/json")
        .body(json!({"properties": {"hardwareProfile": {"vmSize": 12}}}).to_string())
        .send()
        .await
        .expect("Prism answers");
    assert_eq!(resp.status().as_u16(), 422);
    assert!(resp.text().await.unwrap().contains("location"));
    assert!(
        f.stand.requests().await.is_empty(),
        "nothing reached the fake"
    );
    assert!(!f.stand.violations_since(f.log_from).await.is_empty());
    f.host.shutdown().await;
}

// ---- offers --------------------------------------------------------------------

fn find<'a>(offers: &'a [Offer], ty: &str, region: &str) -> &'a Offer {
    offers
        .iter()
        .find(|o| o.instance_type == ty && o.region == region)
        .unwrap_or_else(|| panic!("{ty} in {region} missing"))
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_come_from_every_price_page_with_hand_checked_rows() {
    let f = Fixture::with_settings("regions = \"eastus,westus2,southcentralus\"").await;
    // 100 items a page: eastus alone spans several pages.
    f.stand.config(json!({"price_page_size": 100})).await;
    let offers = f
        .azure
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("offers");
    let source = format!("{}/api/retail/prices", f.stand.url);
    assert!(
        offers
            .iter()
            .all(|o| !o.source.from_snapshot && o.source.source == source)
    );
    let regions: std::collections::BTreeSet<&str> =
        offers.iter().map(|o| o.region.as_str()).collect();
    assert_eq!(regions, ["eastus", "southcentralus", "westus2"].into());

    // Hand-checked against tests/standins/azure/prices:
    // Standard_D2s_v3 eastus is a duplicate: on-demand 0.096 in both files; spot
    // 0.01056 (constructed, 1970-01-01) and 0.018816 (real, 2026-06-01): the
    // latest wins. Windows (0.188), DevTest and Low Priority (0.019) rows are dropped.
    let d2 = find(&offers, "Standard_D2s_v3", "eastus");
    assert_eq!((d2.vcpus, d2.memory_gib, d2.gpus), (2.0, 8.0, 0.0));
    assert_eq!((d2.hourly_usd, d2.spot_hourly_usd), (0.096, Some(0.018816)));
    assert!(!d2.promotional && !d2.shared_cpu && d2.arch == Arch::X8664);
    // Standard_B1s westus2: 0.0104 (real Linux row; the Windows row is 0.0144), no spot meter.
    let b1 = find(&offers, "Standard_B1s", "westus2");
    assert_eq!((b1.hourly_usd, b1.spot_hourly_usd), (0.0104, None));
    assert!(b1.shared_cpu);
    // A promotional GPU size: Standard_NC6_Promo southcentralus 0.216, 1 x K80.
    let promo = find(&offers, "Standard_NC6_Promo", "southcentralus");
    assert!(promo.promotional);
    assert_eq!(
        (promo.hourly_usd, promo.gpus, promo.gpu_model.as_deref()),
        (0.216, 1.0, Some("K80"))
    );
    // A GPU size: Standard_NC24ads_A100_v4 eastus 3.673, spot 0.444433, 1 x A100 80 GB.
    let a100 = find(&offers, "Standard_NC24ads_A100_v4", "eastus");
    assert_eq!(
        (a100.hourly_usd, a100.spot_hourly_usd),
        (3.673, Some(0.444433))
    );
    assert_eq!((a100.vcpus, a100.memory_gib, a100.gpus), (24.0, 220.0, 1.0));
    assert_eq!(
        (a100.gpu_model.as_deref(), a100.gpu_memory_gib),
        (Some("A100-80GB"), Some(80.0))
    );
    // Arm64: Standard_D2ps_v5 eastus 0.077.
    let arm = find(&offers, "Standard_D2ps_v5", "eastus");
    assert_eq!((arm.arch, arm.hourly_usd), (Arch::Arm64, 0.077));
    // One offer per (size, region).
    let mut keys: Vec<(&str, &str)> = offers
        .iter()
        .map(|o| (o.instance_type.as_str(), o.region.as_str()))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);

    // Every page of each region's query was read, through the rebased NextPageLink.
    let pages: Vec<String> = f
        .stand
        .requests()
        .await
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p.starts_with("/api/retail/prices"))
        .map(|(_, p, _)| p)
        .collect();
    let eastus = pages.iter().filter(|p| p.contains("eastus")).count();
    assert!(
        eastus >= 3,
        "eastus spans 291 items in pages of 100: {pages:?}"
    );
    assert!(
        pages
            .iter()
            .any(|p| p.contains("%24skip=200") || p.contains("$skip=200")),
        "{pages:?}"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_price_api_gives_the_dated_snapshot() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let f = Fixture::with_settings("regions = \"eastus\"").await;
    // A second host whose price_endpoint is a closed port.
    let env = TestEnv::new();
    env.add("azure");
    let section = f
        .section
        .replace(
            &format!("price_endpoint = {:?}", f.stand.url),
            &format!("price_endpoint = {base:?}"),
        )
        .replace(
            &format!("allow = [{:?}]", f.stand.url),
            &format!("allow = [{:?}, {base:?}]", f.stand.url),
        );
    let host = env.start(&section).await;
    let offers = host
        .provider("azure")
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("falls back");
    assert!(!offers.is_empty());
    assert!(
        offers.iter().all(|o| o.region == "eastus"),
        "the regions setting restricts the snapshot"
    );
    for o in &offers {
        assert!(o.source.from_snapshot);
        assert_eq!(o.source.source, "snapshot:azure-skypilot-v6-2024-08-18");
        // The date of its prices (2024-08-18), not of its assembly (2026-12-06).
        assert_eq!(o.source.observed_at, 1_723_939_200);
    }
    let d2 = find(&offers, "Standard_D2s_v3", "eastus");
    assert_eq!((d2.hourly_usd, d2.spot_hourly_usd), (0.096, Some(0.018816)));
    host.shutdown().await;
    f.finish().await;
}

// ---- AKS -----------------------------------------------------------------------

fn cluster_spec(name: &str) -> ClusterSpec {
    ClusterSpec {
        name: name.into(),
        deployment_id: format!("dep-{name}"),
        idempotency_key: format!("idem-{name}"),
        region: "eastus".into(),
        kubernetes_version: Some("1.31".into()),
        node_pools: vec![
            NodePoolSpec {
                name: "system-1".into(),
                instance_type: "Standard_D2s_v3".into(),
                count: 2,
                min_count: Some(1),
                max_count: Some(3),
                spot: false,
                disk_gib: Some(64),
            },
            NodePoolSpec {
                name: "spot".into(),
                instance_type: "Standard_D2_v5".into(),
                count: 1,
                min_count: None,
                max_count: None,
                spot: true,
                disk_gib: None,
            },
        ],
        labels: vec![("bpr-deployment".into(), format!("dep-{name}"))],
    }
}

fn cluster_ref(c: &blueprint_remote_providers::wit::Cluster) -> ClusterRef {
    ClusterRef {
        id: c.id.clone(),
        name: c.name.clone(),
        region: c.region.clone(),
        resources: c.resources.clone(),
    }
}

async fn running_cluster(
    azure: &ProviderHandle,
    r: &ClusterRef,
) -> blueprint_remote_providers::wit::Cluster {
    for _ in 0..10 {
        let c = azure.get_cluster(r.clone()).await.expect("get cluster");
        if c.state == ClusterState::Running {
            return c;
        }
    }
    panic!("cluster {} never ran", r.name);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aks_cluster_is_created_with_a_system_pool_read_with_its_endpoint_and_deleted_whole() {
    let f = Fixture::new().await;
    let created = f
        .azure
        .create_cluster(cluster_spec("bpr-k1"))
        .await
        .expect("create");
    assert_eq!(created.state, ClusterState::Provisioning);
    assert!(matches!(&created.auth, ClusterAuth::ProviderOauth(s) if s == AKS_SCOPE));
    let again = f
        .azure
        .create_cluster(cluster_spec("bpr-k1"))
        .await
        .expect("repeat");
    assert_eq!(again.id, created.id, "a repeat returns the same cluster");

    let body = f
        .stand
        .body_of("Microsoft.ContainerService/managedClusters")
        .await;
    let pools = body["properties"]["agentPoolProfiles"].as_array().unwrap();
    assert_eq!(pools.len(), 2);
    assert_eq!(
        (
            pools[0]["name"].as_str(),
            pools[0]["mode"].as_str(),
            pools[0]["vmSize"].as_str(),
            pools[0]["count"].as_u64()
        ),
        (
            Some("system1"),
            Some("System"),
            Some("Standard_D2s_v3"),
            Some(2)
        )
    );
    assert_eq!(
        (pools[0]["minCount"].as_u64(), pools[0]["maxCount"].as_u64()),
        (Some(1), Some(3))
    );
    assert_eq!(pools[0]["osDiskSizeGB"], 64);
    assert_eq!(pools[1]["mode"], "User");
    assert_eq!(pools[1]["scaleSetPriority"], "Spot");
    assert_eq!(pools[1]["spotMaxPrice"], -1);
    assert_eq!(body["identity"]["type"], "SystemAssigned");
    assert_eq!(body["properties"]["aadProfile"]["managed"], true);
    assert_eq!(body["properties"]["kubernetesVersion"], "1.31");
    assert_eq!(body["tags"]["bpr-deployment"], "dep-bpr-k1");

    let r = cluster_ref(&created);
    let got = running_cluster(&f.azure, &r).await;
    let endpoint = got.endpoint.clone().expect("an endpoint once running");
    assert!(
        endpoint.starts_with("https://bpr-k1-") && endpoint.ends_with(".hcp.eastus.azmk8s.io:443"),
        "{endpoint}"
    );
    assert!(
        got.ca_certificate_pem
            .as_deref()
            .is_some_and(|c| c.starts_with("-----BEGIN CERTIFICATE-----"))
    );
    assert_eq!(got.kubernetes_version.as_deref(), Some("1.31"));
    assert!(
        got.resources
            .iter()
            .any(|x| x.kind == "node-resource-group" && x.id.contains("/resourceGroups/MC_")),
        "{:?}",
        got.resources
    );
    // Its node resource group exists while it runs.
    assert!(f.stand.groups().await.iter().any(|g| g.starts_with("MC_")));
    assert!(matches!(
        provider_error(f.azure.get_credentials(r.clone()).await),
        ProviderError::Unsupported(_)
    ));

    let mut done = false;
    for _ in 0..20 {
        if f.azure.delete_cluster(r.clone()).await.expect("delete") == DeleteStatus::Deleted {
            done = true;
            break;
        }
    }
    assert!(done, "cluster not deleted after 20 calls");
    assert!(
        f.stand.groups().await.is_empty(),
        "its group and MC_ group are gone"
    );
    assert!(f.stand.resources().await.is_empty());
    assert!(matches!(
        provider_error(f.azure.get_cluster(r).await),
        ProviderError::NotFound(_)
    ));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aks_cluster_in_the_operators_resource_group_is_deleted_with_its_node_group_only() {
    let f = Fixture::with_settings("resource_group = \"ops-rg\"").await;
    let mut spec = cluster_spec("bpr-k2");
    spec.node_pools.truncate(1);
    // The operator's group must exist: the component says so instead of creating it.
    let err = provider_error(f.azure.create_cluster(spec.clone()).await);
    assert!(
        matches!(&err, ProviderError::InvalidRequest(m) if m.contains("ops-rg") && m.contains("resource_group")),
        "{err:?}"
    );
    f.stand.put_group("ops-rg").await;
    let created = f.azure.create_cluster(spec).await.expect("create");
    assert!(
        created.id.contains("/resourceGroups/ops-rg/"),
        "{}",
        created.id
    );
    let r = cluster_ref(&created);
    running_cluster(&f.azure, &r).await;
    assert_eq!(f.stand.groups().await.len(), 2, "ops-rg and the node group");
    let mut done = false;
    for _ in 0..20 {
        if f.azure.delete_cluster(r.clone()).await.expect("delete") == DeleteStatus::Deleted {
            done = true;
            break;
        }
    }
    assert!(done);
    assert_eq!(
        f.stand.groups().await,
        vec!["ops-rg"],
        "the operator's group stays"
    );
    assert!(f.stand.resources().await.is_empty());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aks_cluster_named_in_the_config_takes_a_deployment_with_a_host_minted_token() {
    let kmock = crate::kubernetes::kmock_url();
    let f = Fixture::new().await;
    // Running clusters report kmock as their API server.
    f.stand.config(json!({ "k8s_endpoint": kmock })).await;
    let mut spec = cluster_spec("bpr-aks-target");
    spec.node_pools.truncate(1);
    let created = f.azure.create_cluster(spec).await.expect("create cluster");
    running_cluster(&f.azure, &cluster_ref(&created)).await;
    let host = f
        .env
        .start(&format!(
            "{}[operator.kubernetes]\nmanaged = [{{ name = \"aks\", provider = \"azure\", region = \"eastus\", id = {:?} }}]\n",
            f.section, created.id
        ))
        .await;
    let cluster = host
        .cluster("aks")
        .await
        .expect("the managed cluster resolves");
    assert_eq!(cluster.name(), "aks");
    let service = crate::kubernetes::unique_service();
    let ctl = crate::kubernetes::controller(cluster.client().clone(), format!("bpr-7-{service}"));
    let rec = host
        .deploy_with(
            crate::kubernetes::request(
                service,
                "aks",
                blueprint_remote_providers::kubernetes::Tier::Basic,
            ),
            vec![],
            &crate::kubernetes::fast(),
        )
        .await
        .expect("deploys to the AKS cluster");
    assert_eq!(rec.cluster.as_deref(), Some("aks"));
    let done = host.terminate(&rec.id).await.expect("terminate");
    ctl.abort();
    assert_eq!(
        done.status,
        blueprint_remote_providers::tracking::DeploymentStatus::Terminated
    );
    // The host minted a token for the AKS server application itself; the component
    // was never asked for credentials.
    assert!(
        f.tokens.scopes().iter().any(|s| s == AKS_SCOPE),
        "{:?}",
        f.tokens.scopes()
    );
    assert!(
        f.stand
            .requests()
            .await
            .iter()
            .any(|(m, p, _)| m == "POST" && p.contains("/listClusterUserCredential")),
        "the endpoint and CA came from the cluster's kubeconfig"
    );
    host.shutdown().await;
    let r = cluster_ref(&created);
    for _ in 0..20 {
        if f.azure.delete_cluster(r.clone()).await.expect("delete") == DeleteStatus::Deleted {
            break;
        }
    }
    assert!(f.stand.groups().await.is_empty());
    f.finish().await;
}

// ---- a tracked deployment through `bpr` ----------------------------------------------

fn bpr(config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpr"));
    c.arg("--config").arg(config).env("RUST_LOG", "error");
    c
}

fn run(mut c: Command) -> (bool, String, String) {
    let out = c.output().expect("bpr runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn allocation_failed_fails_over_to_the_next_candidate_in_a_tracked_bpr_deploy() {
    let f = Fixture::new().await;
    f.stand
        .config(json!({"allocation_failed": ["Standard_D2s_v3"]}))
        .await;
    let config = f.env.dir.path().join("bpr.toml");
    std::fs::write(
        &config,
        format!("{}\n{}", f.env.host_section("warn", false), f.section),
    )
    .unwrap();
    let c = config.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let mut cmd = bpr(&c);
        cmd.args([
            "deploy",
            "--blueprint",
            "7",
            "--service",
            "15",
            "--candidate",
            "azure/eastus/Standard_D2s_v3",
            "--candidate",
            "azure/eastus/Standard_B2s",
            "--ssh-public-key",
            SSH_KEY,
            "--timeout-secs",
            "60",
        ]);
        run(cmd)
    })
    .await
    .unwrap();
    assert!(ok, "bpr deploy failed:\n{stdout}\n{stderr}");
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("deployment "))
        .unwrap_or_else(|| panic!("no deployment id in:\n{stdout}"))
        .trim()
        .to_string();
    let c = config.clone();
    let i = id.clone();
    let (ok, history, stderr) = tokio::task::spawn_blocking(move || {
        let mut cmd = bpr(&c);
        cmd.args(["history", &i, "--json"]);
        run(cmd)
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}");
    let history: Value = serde_json::from_str(&history).unwrap();
    let attempts = history["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{history}");
    assert_eq!(attempts[0]["instance_type"], "Standard_D2s_v3");
    assert_eq!(attempts[0]["outcome"], "failover");
    let why = attempts[0]["detail"].as_str().unwrap_or_default();
    assert!(
        why.contains("capacity unavailable") && why.contains("AllocationFailed"),
        "{why}"
    );
    assert_eq!(attempts[1]["instance_type"], "Standard_B2s");
    assert_eq!(attempts[1]["outcome"], "used");
    // Only the second candidate's VM exists; the first one's group is gone.
    let vms: Vec<(String, String)> = f
        .stand
        .resources()
        .await
        .into_iter()
        .filter(|(t, _)| t == VM)
        .collect();
    assert_eq!(vms.len(), 1, "{vms:?}");
    assert_eq!(f.stand.groups().await.len(), 1);
    assert_eq!(
        f.stand.resource(VM).await["properties"]["hardwareProfile"]["vmSize"],
        "Standard_B2s"
    );

    let c = config.clone();
    let i = id.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let mut cmd = bpr(&c);
        cmd.args(["terminate", &i]);
        run(cmd)
    })
    .await
    .unwrap();
    assert!(ok, "{stdout}\n{stderr}");
    assert!(f.stand.groups().await.is_empty());
    assert!(
        f.stand.resources().await.is_empty(),
        "left: {:?}",
        f.stand.resources().await
    );
    f.finish().await;
}

// ---- bpr providers list / bpr plan ------------------------------------------------

/// `bpr` on a fresh machine: no config, no credentials, no network.
fn bpr_fresh(state: &Path, args: &[&str]) -> (bool, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bpr"));
    c.args(args)
        .env("XDG_STATE_HOME", state)
        .env("HOME", state)
        .env_remove("BPR_CONFIG")
        .env("RUST_LOG", "error");
    run(c)
}

#[test]
fn bpr_providers_list_shows_azure_loaded_on_the_embedded_defaults() {
    let state = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = bpr_fresh(state.path(), &["providers", "list"]);
    assert!(ok, "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("azure"))
        .unwrap_or_else(|| panic!("azure missing:\n{stdout}"));
    assert!(line.ends_with("loaded"), "{line}");
}

#[test]
fn bpr_plan_ranks_azure_offline_from_the_embedded_snapshot() {
    let state = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = bpr_fresh(
        state.path(),
        &[
            "plan",
            "--cpu",
            "2",
            "--memory",
            "8",
            "--region",
            "eastus",
            "--provider",
            "azure",
            "--arch",
            "x86_64",
            "--json",
        ],
    );
    assert!(ok, "{stderr}\n{stdout}");
    let v: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(v["offline"], true, "{v}");
    let first = &v["candidates"][0]["offer"];
    // Hand-checked in components/azure/snapshot/prices.csv and sizes.csv: in eastus,
    // the cheapest x86 size with >= 2 vCPUs and >= 8 GiB that is not promotional
    // (Standard_D11_v2_Promo, 0.037, is refused by default) is the burstable
    // Standard_B2as_v2 (2 vCPUs, 8 GiB) at 0.0752 $/h, spot 0.02068.
    assert_eq!(first["provider"], "azure", "{v}");
    assert_eq!(first["instance_type"], "Standard_B2as_v2", "{v}");
    assert_eq!(first["hourly_usd"], 0.0752, "{v}");
    assert_eq!(first["shared_cpu"], true, "{v}");
    assert_eq!(
        first["source"], "snapshot:azure-skypilot-v6-2024-08-18",
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bpr_plan_ranks_live_azure_prices_read_from_the_price_endpoint() {
    let f = Fixture::with_settings("regions = \"eastus\"").await;
    let config = f.env.dir.path().join("plan.toml");
    std::fs::write(
        &config,
        format!("{}\n{}", f.env.host_section("warn", false), f.section),
    )
    .unwrap();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let mut cmd = bpr(&config);
        cmd.args([
            "plan",
            "--cpu",
            "2",
            "--memory",
            "8",
            "--region",
            "eastus",
            "--provider",
            "azure",
            "--arch",
            "x86_64",
            "--json",
        ]);
        run(cmd)
    })
    .await
    .unwrap();
    assert!(ok, "{stderr}\n{stdout}");
    let v: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(v["offline"], false, "{v}");
    let first = &v["candidates"][0]["offer"];
    // The same row as in the snapshot (the live pages are the recordings it came from).
    assert_eq!(first["instance_type"], "Standard_B2as_v2", "{v}");
    assert_eq!(first["hourly_usd"], 0.0752, "{v}");
    assert_eq!(first["from_snapshot"], false, "{v}");
    assert!(
        f.stand.requests().await.iter().any(|(m, p, _)| m == "GET"
            && p.starts_with("/api/retail/prices")
            && p.contains("eastus")),
        "the live price API was read"
    );
    f.finish().await;
}

#[test]
fn promotional_sizes_win_on_price_and_are_excluded_unless_the_operator_allows_them() {
    let state = tempfile::tempdir().unwrap();
    let args = [
        "plan",
        "--gpus",
        "1",
        "--region",
        "southcentralus",
        "--provider",
        "azure",
        "--json",
        "--explain",
    ];
    let (ok, stdout, stderr) = bpr_fresh(state.path(), &args);
    assert!(ok, "{stderr}\n{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    // Hand-checked (snapshot, southcentralus, >= 1 GPU): Standard_NC6_Promo 0.216 is
    // the cheapest row; without promotional sizes, Standard_NV4as_v4 0.28 leads.
    let first = &v["candidates"][0]["offer"];
    assert_eq!(
        (
            first["instance_type"].as_str(),
            first["hourly_usd"].as_f64()
        ),
        (Some("Standard_NV4as_v4"), Some(0.28)),
        "{v}"
    );
    assert!(
        v["excluded"].to_string().contains("Standard_NC6_Promo")
            || v["excluded"].to_string().contains("promotional"),
        "--explain names the promotional exclusion: {}",
        v["excluded"]
    );
    let cfg = state.path().join("operator.toml");
    // The embedded defaults, with promotional sizes allowed.
    let defaults = include_str!("../../src/config/defaults.toml").replace(
        "[operator.deployment]\n",
        "[operator.deployment]\nallow_promotional = true\n",
    );
    assert!(defaults.contains("allow_promotional = true"));
    std::fs::write(&cfg, defaults).unwrap();
    let mut with = vec!["--config", cfg.to_str().unwrap()];
    with.extend(args);
    let (ok, stdout, stderr) = bpr_fresh(state.path(), &with);
    assert!(ok, "{stderr}\n{stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let first = &v["candidates"][0]["offer"];
    assert_eq!(
        (
            first["instance_type"].as_str(),
            first["hourly_usd"].as_f64()
        ),
        (Some("Standard_NC6_Promo"), Some(0.216)),
        "{v}"
    );
    assert_eq!(first["promotional"], true);
}
