//! Issue 3: the `aws` component under wasmtime, against moto (EC2 with SigV4
//! checking on, EKS), a local server with the recorded catalogue, and a local
//! server answering recorded EC2 error XML.
//!
//! moto is started by `scripts/standins/moto.sh start`, which prints
//! `BPR_TEST_MOTO_URL`. moto's auth switch is global, so every moto test holds
//! [`moto_lock`] and sets the mode it needs; ids are unique per test run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blueprint_remote_providers::wit::{
    Arch, ClusterAuth, ClusterRef, ClusterSpec, ClusterState, DeleteStatus, Instance,
    InstanceQuery, InstanceRef, InstanceSpec, InstanceState, NodePoolSpec, Offer, OfferQuery,
    PortRule, Protocol, ProviderError,
};
use blueprint_remote_providers::{CallError, Host, ProviderHandle};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Response, StatusCode};

use crate::support::{TestEnv, TestServer};

/// A real ed25519 public key (generated for these tests; no private key kept).
const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJQN3IyjiZ1UaSfgEqyCSz3TItV+q8giYup9DDglod1H bpr-test";
/// A moto built-in Amazon Linux 2 image name pattern (moto ships no al2023).
const MOTO_IMAGE_FILTER: &str = "amzn2-ami-hvm-*-x86_64-gp2";

fn moto_url() -> String {
    std::env::var("BPR_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "BPR_TEST_MOTO_URL is not set. Start moto with `scripts/standins/moto.sh start` \
             (from /work/main) and export BPR_TEST_MOTO_URL=http://127.0.0.1:5000 \
             (CI's .ci/run does both)"
        )
    })
}

use crate::support::moto_lock;

/// A unique suffix for names in this run.
fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        % 1_000_000_000_000;
    format!("{prefix}-{nanos:x}{}", N.fetch_add(1, Ordering::SeqCst))
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Every text of `<tag>...</tag>` in `xml` (enough for checking moto answers).
fn xml_texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

/// Direct access to moto for setup and for checking what the component did.
/// Raw calls carry an unsigned Authorization header only so that moto routes
/// them to the right service: they need moto's auth switched off.
struct Moto {
    url: String,
    http: reqwest::Client,
}

impl Moto {
    fn new() -> Self {
        Self {
            url: moto_url(),
            http: reqwest::Client::new(),
        }
    }

    async fn post(
        &self,
        path: &str,
        service: &str,
        content_type: &str,
        body: String,
    ) -> (u16, String) {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
        );
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .header("authorization", auth)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto at {} does not answer ({e}); start it with scripts/standins/moto.sh start", self.url));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    async fn query(
        &self,
        service: &str,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> String {
        let mut all = vec![("Action", action), ("Version", version)];
        all.extend_from_slice(params);
        let (status, body) = self
            .post(
                "/",
                service,
                "application/x-www-form-urlencoded",
                form_encode(&all),
            )
            .await;
        assert!(
            status < 300,
            "moto {service} {action} failed with {status}: {body}"
        );
        body
    }

    async fn ec2(&self, action: &str, params: &[(&str, &str)]) -> String {
        self.query("ec2", "2016-11-15", action, params).await
    }

    async fn eks_get(&self, path: &str) -> (u16, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/eks/aws4_request, SignedHeaders=host, Signature=00",
            )
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// Switch moto's SigV4 + IAM checking on (every later call is checked) or off.
    async fn set_auth(&self, on: bool) {
        let resp = self
            .http
            .post(format!("{}/moto-api/reset-auth", self.url))
            .body(if on { "0" } else { "inf" })
            .send()
            .await
            .expect("moto reset-auth answers");
        assert!(
            resp.status().is_success(),
            "moto reset-auth failed: {}",
            resp.status()
        );
    }

    /// A new IAM user with an allow-all policy and an access key, created
    /// inside moto (auth must be off). Returns (key id, secret).
    async fn create_access_key(&self) -> (String, String) {
        let user = unique("bpr-test-user");
        let v = "2010-05-08";
        self.query("iam", v, "CreateUser", &[("UserName", &user)])
            .await;
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        self.query(
            "iam",
            v,
            "PutUserPolicy",
            &[
                ("UserName", &user),
                ("PolicyName", "all"),
                ("PolicyDocument", policy),
            ],
        )
        .await;
        let xml = self
            .query("iam", v, "CreateAccessKey", &[("UserName", &user)])
            .await;
        let id = xml_texts(&xml, "AccessKeyId")
            .pop()
            .expect("moto returned an access key id");
        let secret = xml_texts(&xml, "SecretAccessKey")
            .pop()
            .expect("moto returned a secret");
        (id, secret)
    }
}

fn write_credentials(env: &TestEnv, key_id: &str, secret: &str) -> PathBuf {
    let path = env.dir.path().join("aws-credentials");
    std::fs::write(
        &path,
        format!("[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"),
    )
    .unwrap();
    path
}

/// The `[providers.aws]` section: allow `allow`, settings `endpoint` etc. plus
/// `extra_settings` lines, credential from `creds`.
fn aws_section(allow: &str, creds: &Path, extra_settings: &str) -> String {
    // The credential signs for the endpoint the tests point the component at.
    let signed_host = allow
        .split_once("://")
        .map_or(allow, |(_, rest)| rest)
        .trim_end_matches('/');
    format!(
        "[providers.aws]\nallow = [{allow:?}]\ncall_timeout_ms = 60000\n\
         [providers.aws.settings]\nregions = \"us-east-1\"\n{extra_settings}\n\
         [providers.aws.credential]\nkind = \"aws-sigv4\"\nshared_credentials_file = {creds:?}\nprofile = \"default\"\n\
         hosts = [{signed_host:?}]\n"
    )
}

fn moto_settings(moto: &str) -> String {
    format!(
        "endpoint = {moto:?}\nimage_owner = \"amazon\"\nimage_name_filter = {MOTO_IMAGE_FILTER:?}\n\
         eks_role_arn = \"arn:aws:iam::123456789012:role/bpr-eks\"\n\
         eks_node_role_arn = \"arn:aws:iam::123456789012:role/bpr-eks-nodes\"\n"
    )
}

/// A host with the aws component pointed at moto, with credentials `key`.
async fn moto_host(env: &TestEnv, moto: &Moto, key: (&str, &str)) -> Host {
    env.add("aws");
    let creds = write_credentials(env, key.0, key.1);
    env.start(&aws_section(&moto.url, &creds, &moto_settings(&moto.url)))
        .await
}

fn spec(deployment: &str, instance_type: &str) -> InstanceSpec {
    InstanceSpec {
        deployment_id: deployment.into(),
        idempotency_key: format!("{deployment}-create-1"),
        region: "us-east-1".into(),
        zone: None,
        instance_type: instance_type.into(),
        spot: false,
        image: None,
        disk_gib: 0,
        ssh_public_keys: vec![SSH_KEY.into()],
        user_data: Some("#cloud-config\nruncmd:\n  - echo hello\n".into()),
        open_ports: vec![
            PortRule {
                port: 22,
                end_port: None,
                protocol: Protocol::Tcp,
                source_cidrs: vec![],
            },
            PortRule {
                port: 8080,
                end_port: Some(8090),
                protocol: Protocol::Tcp,
                source_cidrs: vec!["10.0.0.0/8".into()],
            },
        ],
        labels: vec![
            ("bpr-deployment".into(), deployment.into()),
            ("bpr-managed".into(), "true".into()),
        ],
        workload: None,
    }
}

fn to_ref(i: &Instance, labels: &[(String, String)]) -> InstanceRef {
    InstanceRef {
        id: i.id.clone(),
        region: i.region.clone(),
        zone: i.zone.clone(),
        resources: i.resources.clone(),
        labels: labels.to_vec(),
    }
}

fn provider_error(r: Result<impl std::fmt::Debug, CallError>) -> ProviderError {
    match r {
        Err(CallError::Provider(e)) => e,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

/// Delete until `deleted` (the host's retry loop in small).
async fn delete_until_gone(aws: &ProviderHandle, r: &InstanceRef) {
    for _ in 0..40 {
        match aws
            .delete_instance(r.clone())
            .await
            .expect("delete-instance succeeds")
        {
            DeleteStatus::Deleted => return,
            DeleteStatus::InProgress => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    panic!("instance {} was not fully deleted after 40 calls", r.id);
}

/// Live (not terminated) instances tagged with `deployment`, straight from moto.
async fn live_instances_in_moto(moto: &Moto, deployment: &str) -> Vec<String> {
    let xml = moto
        .ec2(
            "DescribeInstances",
            &[
                ("Filter.1.Name", "tag:bpr-deployment"),
                ("Filter.1.Value.1", deployment),
                ("Filter.2.Name", "instance-state-name"),
                ("Filter.2.Value.1", "pending"),
                ("Filter.2.Value.2", "running"),
                ("Filter.2.Value.3", "stopping"),
                ("Filter.2.Value.4", "stopped"),
            ],
        )
        .await;
    xml_texts(&xml, "instanceId")
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_lifecycle_runs_lists_and_deletes_everything_it_created() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    moto.set_auth(false).await;
    let key = moto.create_access_key().await;
    let env = TestEnv::new();
    let host = moto_host(&env, &moto, (&key.0, &key.1)).await;
    let aws = host.provider("aws").unwrap();
    let dep = unique("dep-life");
    let s = spec(&dep, "t3.micro");

    moto.set_auth(true).await; // every component request below is SigV4-checked
    let created = aws
        .create_instance(s.clone())
        .await
        .expect("create-instance succeeds against moto");
    assert_eq!(created.instance_type, "t3.micro");
    assert_eq!(created.region, "us-east-1");
    let sg = created
        .resources
        .iter()
        .find(|r| r.kind == "security-group")
        .expect("security group returned")
        .id
        .clone();
    let key_pair = created
        .resources
        .iter()
        .find(|r| r.kind == "key-pair")
        .expect("key pair returned")
        .id
        .clone();

    // The host polls get-instance until running with an address.
    let r = to_ref(&created, &s.labels);
    let mut running = None;
    for _ in 0..40 {
        let i = aws
            .get_instance(r.clone())
            .await
            .expect("get-instance succeeds");
        if i.state == InstanceState::Running && i.public_ipv4.is_some() {
            running = Some(i);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let running = running.expect("instance reached running with a public address");
    assert!(running.private_ipv4.is_some());
    assert!(
        running
            .labels
            .contains(&("bpr-deployment".to_string(), dep.clone()))
    );
    assert!(
        running
            .labels
            .contains(&("bpr-managed".to_string(), "true".to_string()))
    );

    // Crash recovery finds it by label alone.
    let listed = aws
        .list_instances(InstanceQuery {
            regions: vec![],
            labels: vec![("bpr-deployment".into(), dep.clone())],
        })
        .await
        .expect("list-instances succeeds");
    assert_eq!(
        listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![created.id.as_str()]
    );
    assert!(
        listed[0]
            .resources
            .iter()
            .any(|x| x.kind == "security-group" && x.id == sg)
    );

    // What moto holds: the group is attached and opens exactly the requested ports,
    // the key pair and the user data are on the instance.
    moto.set_auth(false).await;
    let inst_xml = moto
        .ec2("DescribeInstances", &[("InstanceId.1", &created.id)])
        .await;
    assert!(
        xml_texts(&inst_xml, "groupId").contains(&sg),
        "security group not attached: {inst_xml}"
    );
    assert_eq!(xml_texts(&inst_xml, "keyName"), vec![key_pair.clone()]);
    assert_eq!(xml_texts(&inst_xml, "imageId").len(), 1);
    let ud = moto
        .ec2(
            "DescribeInstanceAttribute",
            &[("InstanceId", &created.id), ("Attribute", "userData")],
        )
        .await;
    use base64::Engine as _;
    let ud_b64 = xml_texts(&ud, "value").pop().expect("user data set");
    let ud_text = base64::engine::general_purpose::STANDARD
        .decode(ud_b64.trim())
        .expect("user data is base64");
    assert_eq!(
        String::from_utf8(ud_text).unwrap(),
        s.user_data.clone().unwrap()
    );
    let sg_xml = moto
        .ec2("DescribeSecurityGroups", &[("GroupId.1", &sg)])
        .await;
    let from: Vec<String> = xml_texts(&sg_xml, "fromPort");
    let to: Vec<String> = xml_texts(&sg_xml, "toPort");
    assert!(
        from.contains(&"22".to_string()) && to.contains(&"22".to_string()),
        "{sg_xml}"
    );
    assert!(
        from.contains(&"8080".to_string()) && to.contains(&"8090".to_string()),
        "{sg_xml}"
    );
    assert!(
        xml_texts(&sg_xml, "cidrIp").contains(&"10.0.0.0/8".to_string()),
        "{sg_xml}"
    );
    assert_eq!(from.len(), 2, "only the two requested openings: {sg_xml}");

    moto.set_auth(true).await;
    delete_until_gone(&aws, &r).await;
    match aws.get_instance(r.clone()).await {
        Ok(i) => assert_eq!(i.state, InstanceState::Terminated),
        Err(e) => assert!(
            matches!(e.provider_error(), Some(ProviderError::NotFound(_))),
            "{e:?}"
        ),
    }

    // Nothing left behind.
    moto.set_auth(false).await;
    assert!(live_instances_in_moto(&moto, &dep).await.is_empty());
    let groups = moto.ec2("DescribeSecurityGroups", &[]).await;
    assert!(
        !xml_texts(&groups, "groupId").contains(&sg),
        "security group {sg} left behind"
    );
    let keys = moto.ec2("DescribeKeyPairs", &[]).await;
    assert!(
        !xml_texts(&keys, "keyName").contains(&key_pair),
        "key pair {key_pair} left behind"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn same_idempotency_key_twice_gives_one_instance() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    moto.set_auth(false).await;
    let key = moto.create_access_key().await;
    let env = TestEnv::new();
    let host = moto_host(&env, &moto, (&key.0, &key.1)).await;
    let aws = host.provider("aws").unwrap();
    let dep = unique("dep-idem");
    let s = spec(&dep, "t3.micro");

    moto.set_auth(true).await;
    let first = aws
        .create_instance(s.clone())
        .await
        .expect("first create succeeds");
    let second = aws
        .create_instance(s.clone())
        .await
        .expect("retried create succeeds");
    assert_eq!(
        first.id, second.id,
        "a retry with the same key must return the same instance"
    );

    moto.set_auth(false).await;
    assert_eq!(
        live_instances_in_moto(&moto, &dep).await,
        vec![first.id.clone()]
    );
    moto.set_auth(true).await;
    delete_until_gone(&aws, &to_ref(&second, &s.labels)).await;
    moto.set_auth(false).await;
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_instance_type_is_invalid_request() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    moto.set_auth(false).await;
    let key = moto.create_access_key().await;
    let env = TestEnv::new();
    let host = moto_host(&env, &moto, (&key.0, &key.1)).await;
    let aws = host.provider("aws").unwrap();
    let dep = unique("dep-type");

    moto.set_auth(true).await;
    let err = provider_error(aws.create_instance(spec(&dep, "zz9.mega")).await);
    moto.set_auth(false).await;
    assert!(
        matches!(&err, ProviderError::InvalidRequest(m) if m.contains("InvalidInstanceType")),
        "{err:?}"
    );
    assert!(live_instances_in_moto(&moto, &dep).await.is_empty());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_ami_is_invalid_request() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    moto.set_auth(false).await;
    let key = moto.create_access_key().await;
    let env = TestEnv::new();
    let host = moto_host(&env, &moto, (&key.0, &key.1)).await;
    let aws = host.provider("aws").unwrap();
    let dep = unique("dep-ami");
    let mut s = spec(&dep, "t3.micro");
    s.image = Some("ami-0123456789abcdef0".into());

    moto.set_auth(true).await;
    let err = provider_error(aws.create_instance(s).await);
    moto.set_auth(false).await;
    assert!(
        matches!(&err, ProviderError::InvalidRequest(m) if m.contains("InvalidAMIID")),
        "{err:?}"
    );
    assert!(live_instances_in_moto(&moto, &dep).await.is_empty());
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_secret_is_unauthorized() {
    let _serial = moto_lock().await;
    let moto = Moto::new();
    moto.set_auth(false).await;
    let (key_id, secret) = moto.create_access_key().await;
    let query = InstanceQuery {
        regions: vec![],
        labels: vec![("bpr-deployment".into(), unique("dep-auth"))],
    };

    moto.set_auth(true).await;
    // The right secret is accepted, so the refusal below is about the signature.
    let good_env = TestEnv::new();
    let good = moto_host(&good_env, &moto, (&key_id, &secret)).await;
    let listed = good
        .provider("aws")
        .unwrap()
        .list_instances(query.clone())
        .await;
    let bad_env = TestEnv::new();
    let bad = moto_host(&bad_env, &moto, (&key_id, "not-the-secret")).await;
    let refused = bad.provider("aws").unwrap().list_instances(query).await;
    moto.set_auth(false).await;

    assert!(listed.expect("the right secret is accepted").is_empty());
    let err = provider_error(refused);
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("AuthFailure")),
        "{err:?}"
    );
    good.shutdown().await;
    bad.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn eks_cluster_with_node_group_is_created_described_and_deleted() {
    // moto rejects even correct signatures for REST-JSON EKS (stand-ins.md §1),
    // so this test runs with moto's auth off.
    let _serial = moto_lock().await;
    let moto = Moto::new();
    moto.set_auth(false).await;
    let env = TestEnv::new();
    let host = moto_host(&env, &moto, ("AKIDEKSTEST", "eks-secret")).await;
    let aws = host.provider("aws").unwrap();
    let name = unique("bpr-eks");
    let dep = unique("dep-eks");
    let spec = ClusterSpec {
        name: name.clone(),
        deployment_id: dep.clone(),
        idempotency_key: format!("{dep}-cluster"),
        region: "us-east-1".into(),
        kubernetes_version: Some("1.31".into()),
        node_pools: vec![NodePoolSpec {
            name: "pool-a".into(),
            instance_type: "t3.medium".into(),
            count: 2,
            min_count: Some(1),
            max_count: Some(3),
            spot: false,
            disk_gib: Some(40),
        }],
        labels: vec![("bpr-deployment".into(), dep.clone())],
    };

    let created = aws
        .create_cluster(spec.clone())
        .await
        .expect("create-cluster succeeds");
    assert_eq!(created.name, name);
    let again = aws
        .create_cluster(spec.clone())
        .await
        .expect("a retried create-cluster succeeds");
    assert_eq!(again.id, created.id);

    let r = ClusterRef {
        id: created.id.clone(),
        name: name.clone(),
        region: "us-east-1".into(),
        resources: created.resources.clone(),
    };
    let got = aws
        .get_cluster(r.clone())
        .await
        .expect("get-cluster succeeds");
    assert_eq!(got.state, ClusterState::Running);
    assert!(
        got.endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("https://")),
        "{:?}",
        got.endpoint
    );
    assert!(
        got.ca_certificate_pem
            .as_deref()
            .is_some_and(|c| c.starts_with("-----BEGIN CERTIFICATE-----"))
    );
    assert!(matches!(&got.auth, ClusterAuth::AwsIam(n) if n == &name));
    assert_eq!(got.kubernetes_version.as_deref(), Some("1.31"));
    assert!(
        got.labels
            .contains(&("bpr-deployment".to_string(), dep.clone()))
    );
    assert!(
        got.resources
            .iter()
            .any(|x| x.kind == "node-group" && x.id == "pool-a")
    );

    // The node group is exactly what was asked.
    let (status, ng) = moto
        .eks_get(&format!("/clusters/{name}/node-groups/pool-a"))
        .await;
    assert_eq!(status, 200, "{ng}");
    let ng: serde_json::Value = serde_json::from_str(&ng).unwrap();
    assert_eq!(
        ng["nodegroup"]["instanceTypes"],
        serde_json::json!(["t3.medium"])
    );
    assert_eq!(
        ng["nodegroup"]["scalingConfig"],
        serde_json::json!({"minSize": 1, "maxSize": 3, "desiredSize": 2})
    );
    assert_eq!(ng["nodegroup"]["capacityType"], "ON_DEMAND");
    assert_eq!(ng["nodegroup"]["diskSize"], 40);

    let mut deleted = false;
    for _ in 0..20 {
        if aws
            .delete_cluster(r.clone())
            .await
            .expect("delete-cluster succeeds")
            == DeleteStatus::Deleted
        {
            deleted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(deleted, "cluster {name} not deleted after 20 calls");
    let err = provider_error(aws.get_cluster(r).await);
    assert!(matches!(err, ProviderError::NotFound(_)), "{err:?}");
    let (status, _) = moto.eks_get(&format!("/clusters/{name}")).await;
    assert_eq!(status, 404);
    host.shutdown().await;
}

// ---- offers -------------------------------------------------------------

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aws")
        .join(rel)
}

/// A host whose aws component reads its catalogue from `catalog_url`.
async fn offers_host(env: &TestEnv, allow: &str, catalog_url: &str) -> Host {
    env.add("aws");
    let creds = write_credentials(env, "AKIDOFFERS", "offers-secret");
    let settings = format!("catalog_url = {catalog_url:?}\n");
    let mut section = aws_section(allow, &creds, &settings);
    // Every region of the catalogue, not just us-east-1.
    section = section.replace("regions = \"us-east-1\"\n", "");
    env.start(&section).await
}

fn find<'a>(offers: &'a [Offer], ty: &str, region: &str) -> Option<&'a Offer> {
    offers
        .iter()
        .find(|o| o.instance_type == ty && o.region == region)
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_are_read_from_the_recorded_catalogue_with_exact_rows() {
    let body = Bytes::from(std::fs::read(fixture("instances.json")).unwrap());
    let server = TestServer::start(move |_| {
        Response::builder()
            .header("content-type", "application/json")
            .header("last-modified", "Wed, 01 Oct 2025 00:00:00 GMT")
            .body(Full::new(body.clone()))
            .unwrap()
    })
    .await;
    let env = TestEnv::new();
    let url = server.url("/instances.json");
    let host = offers_host(&env, &server.url(""), &url).await;
    let offers = host
        .provider("aws")
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("list-offers succeeds");

    for o in &offers {
        assert_eq!(o.source.source, url);
        assert!(!o.source.from_snapshot);
        assert_eq!(
            o.source.observed_at, 1_759_276_800,
            "Last-Modified is the observation time"
        );
        assert!(o.hourly_usd > 0.0);
    }
    // Rows checked by hand in instances.json:
    // m5.large us-east-1: vCPU 2, memory 8, linux ondemand "0.102", no spot.
    let m5 = find(&offers, "m5.large", "us-east-1").expect("m5.large in us-east-1");
    assert_eq!(
        (m5.vcpus, m5.memory_gib, m5.gpus, m5.hourly_usd),
        (2.0, 8.0, 0.0, 0.102)
    );
    assert_eq!(m5.spot_hourly_usd, None);
    assert_eq!(m5.arch, Arch::X8664);
    assert!(!m5.shared_cpu);
    // m7g.medium us-east-1: arm64, ondemand "0.0408", spot_avg "0.017840".
    let m7g = find(&offers, "m7g.medium", "us-east-1").expect("m7g.medium in us-east-1");
    assert_eq!(
        (m7g.vcpus, m7g.memory_gib, m7g.hourly_usd),
        (1.0, 4.0, 0.0408)
    );
    assert_eq!(m7g.spot_hourly_usd, Some(0.01784));
    assert_eq!(m7g.arch, Arch::Arm64);
    // g4dn.xlarge us-east-1: 1 x "NVIDIA T4 Tensor Core" with 16 GiB, ondemand "0.558".
    let g4 = find(&offers, "g4dn.xlarge", "us-east-1").expect("g4dn.xlarge in us-east-1");
    assert_eq!(
        (g4.vcpus, g4.memory_gib, g4.gpus, g4.hourly_usd),
        (4.0, 16.0, 1.0, 0.558)
    );
    assert_eq!(g4.gpu_model.as_deref(), Some("NVIDIA T4 Tensor Core"));
    assert_eq!(g4.gpu_memory_gib, Some(16.0));
    // p4d.24xlarge: `GPU_memory` 320 is the total over 8 GPUs (A100 40GB).
    let p4d = find(&offers, "p4d.24xlarge", "us-east-1").expect("p4d.24xlarge in us-east-1");
    assert_eq!((p4d.gpus, p4d.gpu_memory_gib), (8.0, Some(40.0)));
    // x2iedn.32xlarge (the real record) us-east-1: ondemand "26.676", spot_avg "6.669000".
    let x2 = find(&offers, "x2iedn.32xlarge", "us-east-1").expect("x2iedn.32xlarge in us-east-1");
    assert_eq!(
        (x2.vcpus, x2.memory_gib, x2.hourly_usd, x2.spot_hourly_usd),
        (128.0, 4096.0, 26.676, Some(6.669))
    );
    // t3.medium: burstable, priced in us-west-2 ("0.0441") but absent from us-east-1 in the data.
    let t3 = find(&offers, "t3.medium", "us-west-2").expect("t3.medium in us-west-2");
    assert_eq!(t3.hourly_usd, 0.0441);
    assert!(t3.shared_cpu);
    assert!(find(&offers, "t3.medium", "us-east-1").is_none());
    // One offer per (type, region) with a Linux price: 243 types, none duplicated.
    let mut keys: Vec<(&str, &str)> = offers
        .iter()
        .map(|o| (o.instance_type.as_str(), o.region.as_str()))
        .collect();
    let n = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn offer_query_regions_limit_the_offers() {
    let body = Bytes::from(std::fs::read(fixture("instances.json")).unwrap());
    let server = TestServer::start(move |_| Response::new(Full::new(body.clone()))).await;
    let env = TestEnv::new();
    let host = offers_host(&env, &server.url(""), &server.url("/instances.json")).await;
    let offers = host
        .provider("aws")
        .unwrap()
        .list_offers(OfferQuery {
            regions: vec!["eu-west-1".into()],
        })
        .await
        .expect("list-offers succeeds");
    assert!(!offers.is_empty());
    assert!(offers.iter().all(|o| o.region == "eu-west-1"));
    // m6i.large eu-west-1: ondemand "0.1177".
    assert_eq!(
        find(&offers, "m6i.large", "eu-west-1").map(|o| o.hourly_usd),
        Some(0.1177)
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_catalogue_falls_back_to_the_dated_snapshot() {
    // A port nothing listens on: the connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let env = TestEnv::new();
    let base = format!("http://{addr}");
    let host = offers_host(&env, &base, &format!("{base}/instances.json")).await;
    let offers = host
        .provider("aws")
        .unwrap()
        .list_offers(OfferQuery { regions: vec![] })
        .await
        .expect("list-offers falls back");
    assert!(!offers.is_empty());
    for o in &offers {
        assert!(o.source.from_snapshot);
        assert_eq!(o.source.source, "snapshot:aws-libcloud-2025-03-02");
        // apache-libcloud 3.9.1's price list, `updated` 2025-03-02T17:36:18Z.
        assert_eq!(o.source.observed_at, 1_740_936_978);
    }
    // components/aws/snapshot/instances.snapshot.json: m5.large us-east-1 "0.096";
    // p4de.24xlarge: 8 x A100 with 640 GB in all, so 80 per GPU.
    let m5 = find(&offers, "m5.large", "us-east-1").expect("m5.large in the snapshot");
    assert_eq!(m5.hourly_usd, 0.096);
    let p4de = find(&offers, "p4de.24xlarge", "us-east-1").expect("p4de in the snapshot");
    assert_eq!((p4de.gpus, p4de.gpu_memory_gib), (8.0, Some(80.0)));
    host.shutdown().await;
}

// ---- error mapping through recorded EC2 error XML ----------------------

/// A fake EC2 endpoint: enough successful answers to reach RunInstances,
/// which answers `status` with the fixture `errors/<code>.xml`. Records the
/// actions it saw and the Authorization headers.
async fn ec2_error_server(
    code: &'static str,
    status: u16,
) -> (TestServer, Arc<Mutex<Vec<String>>>, Arc<Mutex<Vec<String>>>) {
    let error_xml = Bytes::from(std::fs::read(fixture(&format!("errors/{code}.xml"))).unwrap());
    let actions = Arc::new(Mutex::new(Vec::new()));
    let auths = Arc::new(Mutex::new(Vec::new()));
    let (a, h) = (actions.clone(), auths.clone());
    let server = TestServer::start(move |req| {
        if let Some(v) = req.headers().get("authorization") {
            h.lock().unwrap().push(v.to_str().unwrap_or("").to_string());
        }
        assert!(req.headers().get("x-bpr-aws-scope").is_none(), "the host must strip the scope header");
        // The handler is synchronous: read the (small) form body on this thread.
        let body = futures_body(req);
        let action = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or("")
            .to_string();
        a.lock().unwrap().push(action.clone());
        let ok = |xml: &str| {
            Response::builder().header("content-type", "text/xml").body(Full::new(Bytes::from(xml.to_string()))).unwrap()
        };
        match action.as_str() {
            "DescribeInstances" => ok("<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>"),
            "DescribeInstanceTypes" => ok("<DescribeInstanceTypesResponse><instanceTypeSet><item><instanceType>t3.micro</instanceType><processorInfo><supportedArchitectures><item>x86_64</item></supportedArchitectures></processorInfo></item></instanceTypeSet></DescribeInstanceTypesResponse>"),
            "DescribeImages" => ok("<DescribeImagesResponse><imagesSet><item><imageId>ami-0fake</imageId><name>al2023-ami-2023.1-x86_64</name><creationDate>2025-01-01T00:00:00.000Z</creationDate><rootDeviceName>/dev/xvda</rootDeviceName></item></imagesSet></DescribeImagesResponse>"),
            "ImportKeyPair" => ok("<ImportKeyPairResponse><keyName>k</keyName></ImportKeyPairResponse>"),
            "CreateSecurityGroup" => ok("<CreateSecurityGroupResponse><groupId>sg-0fake</groupId></CreateSecurityGroupResponse>"),
            "AuthorizeSecurityGroupIngress" => ok("<AuthorizeSecurityGroupIngressResponse><return>true</return></AuthorizeSecurityGroupIngressResponse>"),
            "DeleteSecurityGroup" | "DeleteKeyPair" => ok("<R><return>true</return></R>"),
            _ => Response::builder()
                .status(StatusCode::from_u16(status).unwrap())
                .header("content-type", "text/xml")
                .body(Full::new(error_xml.clone()))
                .unwrap(),
        }
    })
    .await;
    (server, actions, auths)
}

/// Read a request body inside the synchronous handler of [`TestServer`].
fn futures_body(req: hyper::Request<hyper::body::Incoming>) -> String {
    let handle = tokio::runtime::Handle::current();
    let bytes = tokio::task::block_in_place(|| handle.block_on(req.into_body().collect()))
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Create an instance against a server answering RunInstances with `code`.
async fn create_against_error(
    code: &'static str,
    status: u16,
) -> (ProviderError, Vec<String>, Vec<String>) {
    let (server, actions, auths) = ec2_error_server(code, status).await;
    let env = TestEnv::new();
    env.add("aws");
    let creds = write_credentials(&env, "AKIDERRORS", "errors-secret");
    let settings = format!("endpoint = {:?}\n", server.url(""));
    let host = env
        .start(&aws_section(&server.url(""), &creds, &settings))
        .await;
    let err = provider_error(
        host.provider("aws")
            .unwrap()
            .create_instance(spec(&unique("dep-err"), "t3.micro"))
            .await,
    );
    host.shutdown().await;
    let actions = actions.lock().unwrap().clone();
    let auths = auths.lock().unwrap().clone();
    (err, actions, auths)
}

#[tokio::test(flavor = "multi_thread")]
async fn insufficient_instance_capacity_is_capacity_unavailable_and_cleans_up() {
    let (err, actions, auths) = create_against_error("InsufficientInstanceCapacity", 500).await;
    assert!(
        matches!(&err, ProviderError::CapacityUnavailable(m) if m.contains("Insufficient capacity.")),
        "{err:?}"
    );
    // What the failed create made is removed again.
    let run = actions
        .iter()
        .position(|a| a == "RunInstances")
        .expect("RunInstances was sent");
    assert!(
        actions[run..].contains(&"DeleteSecurityGroup".to_string()),
        "{actions:?}"
    );
    assert!(
        actions[run..].contains(&"DeleteKeyPair".to_string()),
        "{actions:?}"
    );
    // Every request was signed by the host for ec2 in us-east-1.
    assert!(!auths.is_empty());
    assert!(
        auths
            .iter()
            .all(|a| a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDERRORS/")
                && a.contains("/us-east-1/ec2/aws4_request")),
        "{auths:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_limit_exceeded_is_rate_limited() {
    let (err, _, _) = create_against_error("RequestLimitExceeded", 503).await;
    assert!(
        matches!(&err, ProviderError::RateLimited(r) if r.message.contains("Request limit exceeded.")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_limit_exceeded_is_quota_exceeded() {
    let (err, _, _) = create_against_error("InstanceLimitExceeded", 400).await;
    assert!(
        matches!(&err, ProviderError::QuotaExceeded(m) if m.contains("InstanceLimitExceeded")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_in_zone_is_capacity_unavailable() {
    let (err, _, _) = create_against_error("Unsupported", 400).await;
    assert!(
        matches!(&err, ProviderError::CapacityUnavailable(m) if m.contains("Unsupported")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_failure_is_unauthorized() {
    let (err, _, _) = create_against_error("AuthFailure", 401).await;
    assert!(
        matches!(&err, ProviderError::Unauthorized(m) if m.contains("AuthFailure")),
        "{err:?}"
    );
}

// ---- describe ------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn info_names_aws_with_its_capabilities_and_sigv4() {
    use blueprint_remote_providers::wit::{Capability, CredentialKind};
    let env = TestEnv::new();
    env.add("aws");
    let creds = write_credentials(&env, "AKIDINFO", "info-secret");
    // A fresh artifact dir, so the first start compiles (cold) and the second
    // reuses the compiled artifact (cached). Timings are printed, not asserted.
    let artifacts = env.dir.path().join("artifacts");
    let host_section = env.host_section("warn", false).replace(
        &format!("artifact_dir = {:?}", crate::support::shared_artifacts()),
        &format!("artifact_dir = {artifacts:?}"),
    );
    let rest = aws_section("https://ec2.us-east-1.amazonaws.com", &creds, "");
    let t0 = std::time::Instant::now();
    let cold = env.start_with(&host_section, &rest).await;
    let cold_ms = t0.elapsed().as_millis();
    let info = cold
        .provider("aws")
        .unwrap()
        .info()
        .await
        .expect("info answers");
    cold.shutdown().await;
    let t1 = std::time::Instant::now();
    let cached = env.start_with(&host_section, &rest).await;
    let cached_ms = t1.elapsed().as_millis();
    cached.shutdown().await;
    let size = std::fs::metadata(crate::support::component_path("aws"))
        .unwrap()
        .len();
    eprintln!(
        "aws.wasm: {size} bytes; host start with cold compile {cold_ms} ms, cached {cached_ms} ms"
    );

    assert_eq!(info.name, "aws");
    assert!(matches!(info.credential, CredentialKind::AwsSigv4));
    for cap in [
        Capability::Offers,
        Capability::Instances,
        Capability::Spot,
        Capability::ManagedKubernetes,
        Capability::Gpus,
    ] {
        assert!(info.capabilities.contains(&cap), "missing {cap:?}");
    }
    assert!(info.settings.iter().any(|s| s.key == "endpoint"));
    assert!(info.settings.iter().any(|s| s.key == "catalog_url"));
}
