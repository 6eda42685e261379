//! Managed clusters a provider created (EKS, DOKS, ...): a `kube::Client` from the WIT
//! `cluster` record (endpoint + CA PEM) and credentials the host holds or fetched.
//!
//! How the host authenticates follows the record's `auth`:
//! - `aws-iam(name)`: a bearer token minted by the host from its own AWS credentials
//!   ([`eks_token`]). EKS accepts such a token for 15 minutes, so a client built from it
//!   must not be kept longer; [`ManagedCluster::cluster`] re-mints (builds a new client)
//!   once the current one is [`EKS_TOKEN_REFRESH`] old, which leaves 10 minutes for the
//!   operation in progress (the default rollout deadline is 5).
//! - `fetched`: the [`ClusterCredentials`] the provider's `get-credentials` returned:
//!   bearer token, client certificate, or a whole kubeconfig. A provider-written
//!   kubeconfig may not run commands or read host files (`exec`, `auth-provider`,
//!   `tokenFile`, certificate paths are refused): the provider is sandboxed, its output
//!   must not escape the sandbox through the host's kubeconfig loader.
//! - `provider-oauth(scope)`: GKE / AKS: an OAuth access token for `scope` the host mints
//!   with the provider's `gcp-service-account` or `azure-client-credentials` identity
//!   ([`crate::capabilities::oauth`]); renewed like the EKS token.
//!
//! Building a client does no network I/O, except minting an OAuth token (the token
//! endpoint; cached).

use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;
use tokio::sync::Mutex;

use super::cluster::Cluster;
pub use super::error::ManagedError;
use crate::capabilities::{AwsCredentialSource, eks_token};
use crate::clock::unix_now_u64;
use crate::wit::{self, ClusterAuth, ClusterCredentials};

/// Age at which a client holding a host-minted token is rebuilt (EKS tokens live 15
/// minutes; OAuth tokens are handed out with more than 10 minutes left).
pub const EKS_TOKEN_REFRESH: Duration = Duration::from_secs(5 * 60);

/// A fetched bearer token this close to its `expires-at` counts as expired.
const EXPIRY_MARGIN_SECS: u64 = 60;

/// The credentials the host holds for managed clusters; which one is used follows the
/// cluster's `auth`.
#[derive(Debug, Clone, Default)]
pub struct HostCredentials {
    /// The AWS credentials of the provider that created the cluster (`aws-iam`).
    pub aws: Option<AwsCredentialSource>,
    /// What the provider's `get-credentials` returned (`fetched`).
    pub fetched: Option<ClusterCredentials>,
    /// The OAuth identity of the provider that created the cluster (`provider-oauth`).
    pub oauth: Option<std::sync::Arc<crate::capabilities::OAuthSource>>,
}

fn auth_name(auth: &ClusterAuth) -> String {
    match auth {
        ClusterAuth::AwsIam(name) => format!("aws-iam({name})"),
        ClusterAuth::ProviderOauth(scope) => format!("provider-oauth({scope})"),
        ClusterAuth::Fetched => "fetched".to_owned(),
    }
}

fn endpoint_of(cluster: &wit::Cluster) -> Result<&str, ManagedError> {
    let endpoint = cluster
        .endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ManagedError::NoEndpoint {
            cluster: cluster.name.clone(),
            state: format!("{:?}", cluster.state).to_lowercase(),
        })?;
    // Plain http only to this machine (local stand-ins): the host sends credentials it
    // minted or holds to this endpoint, so a provider must not be able to name a
    // cleartext one elsewhere.
    let uri = endpoint.parse::<http::Uri>().ok();
    let host = uri.as_ref().and_then(|u| u.host()).unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let ok = uri.is_some()
        && !host.is_empty()
        && (endpoint.starts_with("https://") || (endpoint.starts_with("http://") && loopback));
    if !ok {
        return Err(ManagedError::BadEndpoint {
            cluster: cluster.name.clone(),
            endpoint: endpoint.to_owned(),
        });
    }
    if let Some(ca) = cluster
        .ca_certificate_pem
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        && !ca.contains("-----BEGIN CERTIFICATE-----")
    {
        return Err(ManagedError::BadCaCertificate {
            cluster: cluster.name.clone(),
        });
    }
    Ok(endpoint)
}

/// A one-context kubeconfig over the endpoint and CA, with `user` as its user entry.
fn synthetic_kubeconfig(
    cluster: &wit::Cluster,
    endpoint: &str,
    user: serde_json::Value,
) -> serde_json::Value {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut cluster_entry = json!({ "server": endpoint });
    // Without TLS there is nothing for a CA to verify.
    if let Some(ca) = cluster
        .ca_certificate_pem
        .as_deref()
        .filter(|c| !c.trim().is_empty() && endpoint.starts_with("https://"))
    {
        cluster_entry["certificate-authority-data"] = json!(b64(ca));
    }
    let name = "managed";
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": name, "cluster": cluster_entry }],
        "users": [{ "name": name, "user": user }],
        "contexts": [{ "name": name, "context": { "cluster": name, "user": name } }],
        "current-context": name,
    })
}

/// Refuses what would let a provider-written kubeconfig run commands or read host files.
fn check_safe(cluster: &str, kubeconfig: &Kubeconfig) -> Result<(), ManagedError> {
    let refuse = |field: String| {
        Err(ManagedError::UnsafeKubeconfig {
            cluster: cluster.to_owned(),
            field,
        })
    };
    for (i, user) in kubeconfig.auth_infos.iter().enumerate() {
        let Some(auth) = &user.auth_info else {
            continue;
        };
        let fields = [
            ("exec", auth.exec.is_some()),
            ("auth-provider", auth.auth_provider.is_some()),
            ("tokenFile", auth.token_file.is_some()),
            ("client-certificate", auth.client_certificate.is_some()),
            ("client-key", auth.client_key.is_some()),
        ];
        if let Some((field, _)) = fields.iter().find(|(_, set)| *set) {
            return refuse(format!("users[{i}].user.{field}"));
        }
    }
    for (i, c) in kubeconfig.clusters.iter().enumerate() {
        if c.cluster
            .as_ref()
            .is_some_and(|c| c.certificate_authority.is_some())
        {
            return refuse(format!("clusters[{i}].cluster.certificate-authority"));
        }
    }
    Ok(())
}

/// The client configuration for a managed cluster; mints an EKS token for `aws-iam` and
/// an OAuth token for `provider-oauth`.
/// Does no network I/O.
pub async fn client_config(
    cluster: &wit::Cluster,
    credentials: &HostCredentials,
) -> Result<kube::Config, ManagedError> {
    let name = cluster.name.clone();
    let kubeconfig = match &cluster.auth {
        ClusterAuth::ProviderOauth(scope) => {
            let endpoint = endpoint_of(cluster)?;
            let source = credentials.oauth.as_ref().ok_or_else(|| {
                ManagedError::MissingOAuthCredentials {
                    cluster: name.clone(),
                    auth: auth_name(&cluster.auth),
                }
            })?;
            let token = source
                .token(scope)
                .await
                .map_err(|source| ManagedError::TokenMint {
                    cluster: name.clone(),
                    source,
                })?;
            synthetic_kubeconfig(cluster, endpoint, json!({ "token": token }))
        }
        ClusterAuth::AwsIam(eks_name) => {
            let endpoint = endpoint_of(cluster)?;
            let source =
                credentials
                    .aws
                    .as_ref()
                    .ok_or_else(|| ManagedError::MissingAwsCredentials {
                        cluster: name.clone(),
                    })?;
            let token = eks_token(source, eks_name, &cluster.region).map_err(|source| {
                ManagedError::TokenMint {
                    cluster: name.clone(),
                    source,
                }
            })?;
            synthetic_kubeconfig(cluster, endpoint, json!({ "token": token }))
        }
        ClusterAuth::Fetched => {
            let fetched = credentials.fetched.as_ref().ok_or_else(|| {
                ManagedError::MissingFetchedCredentials {
                    cluster: name.clone(),
                }
            })?;
            match fetched {
                ClusterCredentials::BearerToken(bearer) => {
                    if let Some(expires_at) = bearer.expires_at
                        && expires_at <= unix_now_u64() + EXPIRY_MARGIN_SECS
                    {
                        return Err(ManagedError::CredentialsExpired {
                            cluster: name,
                            expires_at,
                        });
                    }
                    let endpoint = endpoint_of(cluster)?;
                    synthetic_kubeconfig(cluster, endpoint, json!({ "token": bearer.token }))
                }
                ClusterCredentials::ClientCertificate(cert) => {
                    let endpoint = endpoint_of(cluster)?;
                    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
                    synthetic_kubeconfig(
                        cluster,
                        endpoint,
                        json!({
                            "client-certificate-data": b64(&cert.certificate_pem),
                            "client-key-data": b64(&cert.key_pem),
                        }),
                    )
                }
                ClusterCredentials::Kubeconfig(yaml) => {
                    let kubeconfig = Kubeconfig::from_yaml(yaml).map_err(|source| {
                        ManagedError::ConfigInvalid {
                            cluster: name.clone(),
                            what: "the kubeconfig its provider returned",
                            source,
                        }
                    })?;
                    check_safe(&name, &kubeconfig)?;
                    return kube::Config::from_custom_kubeconfig(
                        kubeconfig,
                        &KubeConfigOptions::default(),
                    )
                    .await
                    .map_err(|source| ManagedError::ConfigInvalid {
                        cluster: name,
                        what: "the kubeconfig its provider returned",
                        source,
                    });
                }
            }
        }
    };
    // JSON is YAML: kube's own parser reads the document we built, so a bad CA PEM or
    // client certificate is reported the same way as in a kubeconfig file.
    let kubeconfig = Kubeconfig::from_yaml(&kubeconfig.to_string()).map_err(|source| {
        ManagedError::ConfigInvalid {
            cluster: name.clone(),
            what: "the endpoint, CA certificate and credentials",
            source,
        }
    })?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| ManagedError::ConfigInvalid {
            cluster: name,
            what: "the endpoint, CA certificate and credentials",
            source,
        })
}

/// Connects a managed cluster: [`client_config`] then a client. The [`Cluster`] is named
/// after the WIT cluster's `name`. With `aws-iam`, the client's token lasts 15 minutes:
/// prefer [`ManagedCluster`], which rebuilds it in time.
pub async fn connect(
    cluster: &wit::Cluster,
    credentials: &HostCredentials,
) -> Result<Cluster, ManagedError> {
    let config = client_config(cluster, credentials).await?;
    let client =
        kube::Client::try_from(config).map_err(|source| ManagedError::ClientBuildFailed {
            cluster: cluster.name.clone(),
            source,
        })?;
    Ok(Cluster::from_client(cluster.name.clone(), client))
}

/// A managed cluster whose client is rebuilt when its host-minted token gets old.
///
/// Call [`ManagedCluster::cluster`] before each operation rather than keeping the
/// returned [`Cluster`]: for `aws-iam` and `provider-oauth` it re-mints the token every
/// [`EKS_TOKEN_REFRESH`]; for `fetched` credentials it keeps one client until they are
/// replaced with [`ManagedCluster::set_fetched`] (an expired fetched token is reported as
/// [`ManagedError::CredentialsExpired`]).
#[derive(Debug)]
pub struct ManagedCluster {
    cluster: wit::Cluster,
    credentials: Mutex<HostCredentials>,
    current: Mutex<Option<(Cluster, Instant)>>,
}

impl ManagedCluster {
    /// Wraps a cluster record and the host's credentials; builds nothing yet.
    pub fn new(cluster: wit::Cluster, credentials: HostCredentials) -> Self {
        ManagedCluster {
            cluster,
            credentials: Mutex::new(credentials),
            current: Mutex::new(None),
        }
    }

    /// The WIT record.
    pub fn record(&self) -> &wit::Cluster {
        &self.cluster
    }

    /// Replaces the fetched credentials (after a new `get-credentials`); the next
    /// [`ManagedCluster::cluster`] builds a new client.
    pub async fn set_fetched(&self, fetched: ClusterCredentials) {
        self.credentials.lock().await.fetched = Some(fetched);
        *self.current.lock().await = None;
    }

    /// A connected cluster with credentials valid for at least 10 more minutes
    /// (`aws-iam`), building a new client when needed.
    pub async fn cluster(&self) -> Result<Cluster, ManagedError> {
        let mut current = self.current.lock().await;
        let refresh = matches!(
            self.cluster.auth,
            ClusterAuth::AwsIam(_) | ClusterAuth::ProviderOauth(_)
        );
        if let Some((cluster, built)) = current.as_ref()
            && !(refresh && built.elapsed() >= EKS_TOKEN_REFRESH)
        {
            if let ClusterAuth::Fetched = self.cluster.auth
                && let Some(ClusterCredentials::BearerToken(b)) =
                    &self.credentials.lock().await.fetched
                && let Some(expires_at) = b.expires_at
                && expires_at <= unix_now_u64() + EXPIRY_MARGIN_SECS
            {
                return Err(ManagedError::CredentialsExpired {
                    cluster: self.cluster.name.clone(),
                    expires_at,
                });
            }
            return Ok(cluster.clone());
        }
        let credentials = self.credentials.lock().await.clone();
        let cluster = connect(&self.cluster, &credentials).await?;
        *current = Some((cluster.clone(), Instant::now()));
        Ok(cluster)
    }
}
