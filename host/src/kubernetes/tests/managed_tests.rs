//! Managed clusters: kube configuration from a WIT `cluster` record and host-held
//! credentials, the header the client actually sends, and a deploy through the
//! Deployer against kmock with `fetched` bearer credentials.

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::managed::{self, HostCredentials, ManagedCluster, ManagedError};
use super::*;
use crate::capabilities::AwsCredentialSource;
use crate::clock::unix_now_u64 as now;
use crate::wit::{self, BearerCredential, ClientCertificate, ClusterAuth, ClusterCredentials};

/// A self-signed P-256 test certificate and its key, generated for these tests with
/// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes`.
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBhDCCASmgAwIBAgIUKRoey6ZYLUX2yLamlQufZmYOv60wCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLYnByLXRlc3QtY2EwIBcNMjYxMTI2MjEwMjE3WhgPMjEyNjEx
MDIyMTAyMTdaMBYxFDASBgNVBAMMC2Jwci10ZXN0LWNhMFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEizAFpsWy9tNdpah8LgpiB6uN+SfJcR9T300p4noXomxJ9wFT
YEMjeF9vVqiEgzPXl1wTA+uC9ZuMF7/7cbNpvqNTMFEwHQYDVR0OBBYEFDL9ppID
6FkYpFdrCtdDUtdE8S8/MB8GA1UdIwQYMBaAFDL9ppID6FkYpFdrCtdDUtdE8S8/
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAK79qQwdGeZ3je82
EpTR5R64eJMlb8ISlinEE1uZS34zAiEA3ovWe22UH6Al4Pl7Zb0Zan6/OU08KcSd
ahg+uj3RnjM=
-----END CERTIFICATE-----
";
const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgurhM107JKeYEu1m/
OcJZm+sCnZYDflLSZFRknqZsARyhRANCAASLMAWmxbL2012lqHwuCmIHq435J8lx
H1PfTSnieheibEn3AVNgQyN4X29WqISDM9eXXBMD64L1m4wXv/txs2m+
-----END PRIVATE KEY-----
";

/// The DER bytes inside [`CA_PEM`].
fn ca_der() -> Vec<u8> {
    let body: String = CA_PEM.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("test PEM is base64")
}

fn record(endpoint: Option<&str>, ca: Option<&str>, auth: ClusterAuth) -> wit::Cluster {
    wit::Cluster {
        id: "c-1".into(),
        name: "prod-eks".into(),
        region: "us-west-2".into(),
        state: wit::ClusterState::Running,
        endpoint: endpoint.map(str::to_owned),
        ca_certificate_pem: ca.map(str::to_owned),
        auth,
        kubernetes_version: Some("1.30".into()),
        labels: Vec::new(),
        resources: Vec::new(),
        detail: None,
    }
}

fn bearer(token: &str, expires_at: Option<u64>) -> HostCredentials {
    HostCredentials {
        oauth: None,
        aws: None,
        fetched: Some(ClusterCredentials::BearerToken(BearerCredential {
            token: token.into(),
            expires_at,
        })),
    }
}

/// Serves one HTTP request on 127.0.0.1 with a `/version` answer and returns the
/// request's `Authorization` header: what the client really sends.
async fn authorization_sent_by(build: impl AsyncFnOnce(String) -> Cluster) -> Option<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"major":"1","minor":"30","gitVersion":"v1.30.0","gitCommit":"","gitTreeState":"","buildDate":"","goVersion":"","compiler":"","platform":""}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(response.as_bytes()).await.expect("write");
        String::from_utf8_lossy(&head).lines().find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.trim().to_owned())
        })
    });
    let cluster = build(url).await;
    let version = cluster
        .client()
        .apiserver_version()
        .await
        .expect("version answered");
    assert_eq!(version.git_version, "v1.30.0");
    server.await.expect("server task")
}

#[tokio::test]
async fn fetched_bearer_config_has_the_server_url_the_ca_and_a_token() {
    let cluster = record(
        Some("https://abc.gr7.us-west-2.eks.amazonaws.com"),
        Some(CA_PEM),
        ClusterAuth::Fetched,
    );
    let config = managed::client_config(&cluster, &bearer("tok-123", None))
        .await
        .expect("config");
    assert_eq!(
        config.cluster_url.to_string(),
        "https://abc.gr7.us-west-2.eks.amazonaws.com/"
    );
    assert_eq!(config.root_cert, Some(vec![ca_der()]));
    assert!(config.auth_info.token.is_some(), "bearer token set");
    // A TLS client builds from it (CA parsed by rustls) without any network I/O.
    managed::connect(&cluster, &bearer("tok-123", None))
        .await
        .expect("client");
}

#[tokio::test]
async fn fetched_bearer_token_is_sent_as_the_authorization_header() {
    let sent = authorization_sent_by(async |url: String| {
        let cluster = record(Some(&url), None, ClusterAuth::Fetched);
        managed::connect(&cluster, &bearer("tok-123", Some(now() + 3600)))
            .await
            .expect("client")
    })
    .await;
    assert_eq!(sent.as_deref(), Some("Bearer tok-123"));
}

#[tokio::test]
async fn aws_iam_sends_an_eks_token_minted_by_the_host_for_the_cluster_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        "[default]\naws_access_key_id = AKIDTEST\naws_secret_access_key = secret\n",
    )
    .expect("write credentials");
    let credentials = HostCredentials {
        oauth: None,
        aws: Some(AwsCredentialSource {
            shared_credentials_file: Some(file),
            profile: None,
        }),
        fetched: None,
    };
    let sent = authorization_sent_by(async |url: String| {
        let cluster = record(Some(&url), None, ClusterAuth::AwsIam("prod-eks".into()));
        managed::connect(&cluster, &credentials)
            .await
            .expect("client")
    })
    .await
    .expect("an Authorization header");
    let token = sent
        .strip_prefix("Bearer k8s-aws-v1.")
        .unwrap_or_else(|| panic!("not an EKS token: {sent}"));
    let presigned = String::from_utf8(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .expect("base64url"),
    )
    .expect("utf-8");
    // Presigned STS GetCallerIdentity in the cluster's region, signed with the host's
    // key, with the cluster name header among the signed ones.
    assert!(
        presigned.starts_with("https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity"),
        "{presigned}"
    );
    assert!(presigned.contains("AKIDTEST"), "{presigned}");
    assert!(presigned.contains("x-k8s-aws-id"), "{presigned}");
}

#[tokio::test]
async fn aws_iam_without_aws_credentials_says_what_to_configure() {
    let cluster = record(
        Some("https://x.example"),
        None,
        ClusterAuth::AwsIam("prod".into()),
    );
    let err = managed::client_config(&cluster, &HostCredentials::default())
        .await
        .expect_err("no credentials");
    assert!(
        matches!(err, ManagedError::MissingAwsCredentials { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("prod-eks"), "{err}");
}

#[tokio::test]
async fn client_certificate_credentials_configure_cert_and_key() {
    let cluster = record(
        Some("https://10.0.0.1:6443"),
        Some(CA_PEM),
        ClusterAuth::Fetched,
    );
    let credentials = HostCredentials {
        oauth: None,
        aws: None,
        fetched: Some(ClusterCredentials::ClientCertificate(ClientCertificate {
            certificate_pem: CA_PEM.into(),
            key_pem: KEY_PEM.into(),
        })),
    };
    let config = managed::client_config(&cluster, &credentials)
        .await
        .expect("config");
    assert!(config.auth_info.client_certificate_data.is_some());
    assert!(config.auth_info.client_key_data.is_some());
    assert!(config.auth_info.token.is_none());
    // rustls accepts the identity.
    managed::connect(&cluster, &credentials)
        .await
        .expect("client");
}

#[tokio::test]
async fn fetched_kubeconfig_is_used_as_returned() {
    let yaml = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://doks.example:443\nusers:\n- name: u\n  user:\n    token: abc\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n";
    let cluster = record(None, None, ClusterAuth::Fetched);
    let credentials = HostCredentials {
        oauth: None,
        aws: None,
        fetched: Some(ClusterCredentials::Kubeconfig(yaml.into())),
    };
    let config = managed::client_config(&cluster, &credentials)
        .await
        .expect("config");
    assert_eq!(config.cluster_url.to_string(), "https://doks.example:443/");
    assert!(config.auth_info.token.is_some());
}

#[tokio::test]
async fn fetched_kubeconfig_with_an_exec_plugin_is_refused() {
    let yaml = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://eks.example\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: /bin/sh\n      args: [\"-c\", \"echo pwned\"]\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n";
    let cluster = record(None, None, ClusterAuth::Fetched);
    let credentials = HostCredentials {
        oauth: None,
        aws: None,
        fetched: Some(ClusterCredentials::Kubeconfig(yaml.into())),
    };
    let err = managed::client_config(&cluster, &credentials)
        .await
        .expect_err("exec refused");
    match &err {
        ManagedError::UnsafeKubeconfig { field, .. } => assert_eq!(field, "users[0].user.exec"),
        other => panic!("expected UnsafeKubeconfig, got {other:?}"),
    }
}

#[tokio::test]
async fn provider_oauth_without_an_oauth_identity_says_what_to_configure() {
    let cluster = record(
        Some("https://gke.example"),
        Some(CA_PEM),
        ClusterAuth::ProviderOauth("https://www.googleapis.com/auth/cloud-platform".into()),
    );
    let err = managed::client_config(&cluster, &HostCredentials::default())
        .await
        .expect_err("no identity");
    assert!(
        matches!(err, ManagedError::MissingOAuthCredentials { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    for needle in [
        "prod-eks",
        "GKE",
        "AKS",
        "provider-oauth(",
        "gcp-service-account",
    ] {
        assert!(message.contains(needle), "{needle} missing in: {message}");
    }
}

#[tokio::test]
async fn provider_oauth_sends_a_token_the_host_minted_for_the_clusters_scope() {
    use crate::capabilities::SecretSource;
    use crate::capabilities::{AKS_SERVER, OAuthConfig, OAuthSource};
    let ep = crate::capabilities::oauth_tests::endpoint(|path, form| {
        assert_eq!(path, "/tenant-1/oauth2/v2.0/token");
        let scope = form.get("scope").cloned().unwrap_or_default();
        (
            200,
            serde_json::json!({"access_token": format!("aks-token-for-{scope}"), "expires_in": 3599}),
        )
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret").expect("write");
    let credentials = HostCredentials {
        oauth: Some(std::sync::Arc::new(OAuthSource::new(
            OAuthConfig::AzureClientCredentials {
                tenant_id: "tenant-1".into(),
                client_id: "app-1".into(),
                client_secret: SecretSource::File(secret),
                authority: ep.url.clone(),
            },
        ))),
        ..HostCredentials::default()
    };
    let sent = authorization_sent_by(async |url| {
        let cluster = record(
            Some(&url),
            None,
            ClusterAuth::ProviderOauth(AKS_SERVER.into()),
        );
        managed::connect(&cluster, &credentials)
            .await
            .expect("client")
    })
    .await;
    assert_eq!(
        sent.as_deref(),
        Some(format!("Bearer aks-token-for-{AKS_SERVER}").as_str())
    );
}

#[tokio::test]
async fn a_cluster_without_endpoint_reports_its_state() {
    let mut cluster = record(None, None, ClusterAuth::Fetched);
    cluster.state = wit::ClusterState::Provisioning;
    let err = managed::client_config(&cluster, &bearer("t", None))
        .await
        .expect_err("no endpoint");
    assert!(matches!(err, ManagedError::NoEndpoint { .. }), "{err:?}");
    assert!(err.to_string().contains("provisioning"), "{err}");
}

#[tokio::test]
async fn a_cleartext_endpoint_is_refused_unless_it_is_loopback() {
    for endpoint in [
        "http://10.0.0.5:6443",
        "http://evil.example",
        "ftp://x.example",
        "https://",
    ] {
        let cluster = record(Some(endpoint), None, ClusterAuth::Fetched);
        let err = managed::client_config(&cluster, &bearer("t", None))
            .await
            .expect_err(endpoint);
        assert!(
            matches!(err, ManagedError::BadEndpoint { .. }),
            "{endpoint}: {err:?}"
        );
    }
    for endpoint in [
        "http://127.0.0.1:6443",
        "http://localhost:6443",
        "http://[::1]:6443",
    ] {
        let cluster = record(Some(endpoint), None, ClusterAuth::Fetched);
        managed::client_config(&cluster, &bearer("t", None))
            .await
            .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
    }
}

#[tokio::test]
async fn a_ca_that_is_not_pem_is_refused_naming_the_cluster() {
    let cluster = record(
        Some("https://x.example"),
        Some("not a certificate"),
        ClusterAuth::Fetched,
    );
    let err = managed::client_config(&cluster, &bearer("t", None))
        .await
        .expect_err("bad CA");
    assert!(
        matches!(err, ManagedError::BadCaCertificate { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("prod-eks"), "{err}");
}

#[tokio::test]
async fn an_expired_fetched_token_asks_for_new_credentials() {
    let cluster = record(Some("https://x.example"), None, ClusterAuth::Fetched);
    let err = managed::client_config(&cluster, &bearer("t", Some(now() - 10)))
        .await
        .expect_err("expired");
    assert!(
        matches!(err, ManagedError::CredentialsExpired { .. }),
        "{err:?}"
    );
    // A managed cluster recovers once new credentials are set.
    let managed = ManagedCluster::new(cluster, bearer("t", Some(now() - 10)));
    assert!(managed.cluster().await.is_err());
    managed
        .set_fetched(ClusterCredentials::BearerToken(BearerCredential {
            token: "fresh".into(),
            expires_at: Some(now() + 3600),
        }))
        .await;
    let got = managed.cluster().await.expect("fresh credentials");
    assert_eq!(got.name(), "prod-eks");
}

#[tokio::test]
async fn kmock_fetched_bearer_cluster_deploys_and_deletes_through_the_deployer() {
    let url = std::env::var("BPR_TEST_KMOCK_URL").unwrap_or_else(|_| {
        panic!(
            "BPR_TEST_KMOCK_URL is not set: start the stand-in with `scripts/standins/kmock.sh start` \
             and export BPR_TEST_KMOCK_URL=http://127.0.0.1:6443 (CI does both)"
        )
    });
    let cluster = managed::connect(
        &record(Some(&url), None, ClusterAuth::Fetched),
        &bearer("kmock-token", Some(now() + 3600)),
    )
    .await
    .expect("managed cluster");
    assert_eq!(cluster.name(), "prod-eks");
    let service_id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
        % 1_000_000_000_000;
    let mut request = DeploymentRequest::new(
        format!("dep-managed-{service_id}"),
        9,
        u64::try_from(service_id).expect("fits"),
        "ghcr.io/tangle/svc:1.0",
        Tier::Basic,
    );
    request.ports = vec![ServicePort::tcp("http", 8080)];
    let target = request.target();
    let ctl =
        super::kmock_tests::fake_controller(cluster.client().clone(), target.namespace.clone());
    let deployer = cluster.deployer().with_rollout(RolloutOptions {
        deadline: std::time::Duration::from_secs(10),
        poll_interval: std::time::Duration::from_millis(50),
    });
    let status = deployer.deploy(&request).await.expect("deploy");
    ctl.abort();
    assert_eq!((status.desired, status.ready), (1, 1));
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(cluster.client().clone(), &target.namespace);
    assert!(
        deployments
            .get_opt(&target.name)
            .await
            .expect("read")
            .is_some()
    );
    deployer.delete(&target).await.expect("delete");
    assert!(
        deployments
            .get_opt(&target.name)
            .await
            .expect("read")
            .is_none(),
        "deleted"
    );
}
