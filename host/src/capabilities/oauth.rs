//! OAuth 2.0 access tokens the host mints for itself, never shown to a guest:
//!
//! - Google service accounts: the JWT bearer grant (RFC 7523) signed with the
//!   account's RS256 key from its JSON key file, posted to the file's `token_uri`;
//! - Microsoft Entra ID client credentials: `client_id` + secret posted to
//!   `<authority>/<tenant>/oauth2/v2.0/token`.
//!
//! They serve GKE and AKS API servers (WIT `cluster-auth::provider-oauth(scope)`), and
//! GCP / Azure providers' own requests as a bearer credential. Tokens are cached per
//! scope and renewed [`RENEW_BEFORE`] before they expire.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;

use serde::Deserialize;
use tokio::sync::Mutex;

use super::secret::{CredentialError, SecretSource};

/// A cached token is renewed when it has less than this left.
pub const RENEW_BEFORE: Duration = Duration::from_secs(10 * 60);

/// Google's OAuth scope for every Cloud API (and GKE API servers).
pub const GCP_CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// Entra ID scope of Azure Resource Manager.
pub const AZURE_MANAGEMENT: &str = "https://management.azure.com/.default";

/// Entra ID scope of AKS API servers (the fixed AKS server application);
/// a managed cluster's provider names it, the tests use it.
#[cfg(test)]
pub const AKS_SERVER: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";

/// How the token endpoint may take at most.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest token endpoint answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Where the host's OAuth identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthConfig {
    /// A Google service account JSON key file (`type: service_account`).
    GcpServiceAccount {
        /// The key file, read at each mint (rotation needs no restart).
        key_file: PathBuf,
    },
    /// An Entra ID application with a client secret.
    AzureClientCredentials {
        /// Directory (tenant) id.
        tenant_id: String,
        /// Application (client) id.
        client_id: String,
        /// The client secret.
        client_secret: SecretSource,
        /// Token authority; default `https://login.microsoftonline.com`.
        authority: String,
    },
}

impl OAuthConfig {
    /// The scope a provider's own requests get by default.
    pub fn default_scope(&self) -> &'static str {
        match self {
            Self::GcpServiceAccount { .. } => GCP_CLOUD_PLATFORM,
            Self::AzureClientCredentials { .. } => AZURE_MANAGEMENT,
        }
    }
}

/// The fields of a service account key the grant needs.
#[derive(Deserialize)]
struct ServiceAccountKey {
    #[serde(rename = "type")]
    kind: String,
    client_email: String,
    private_key: String,
    private_key_id: Option<String>,
    token_uri: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Mints and caches tokens for one [`OAuthConfig`].
pub struct OAuthSource {
    config: OAuthConfig,
    cache: Mutex<HashMap<String, (String, Instant)>>,
}

impl std::fmt::Debug for OAuthSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSource")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn unavailable(message: String) -> CredentialError {
    CredentialError::Unavailable(message)
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The DER body of the first PEM block labelled `label`.
fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// A signed RS256 JWT asserting the service account for `scope` (RFC 7523 §2.1).
fn service_account_assertion(
    key: &ServiceAccountKey,
    scope: &str,
    now: u64,
) -> Result<String, CredentialError> {
    let der = pem_der(&key.private_key, "PRIVATE KEY").ok_or_else(|| {
        unavailable(format!(
            "the private_key of service account {} is not a PKCS#8 PEM key",
            key.client_email
        ))
    })?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|e| {
        unavailable(format!(
            "the private_key of service account {} is not an RSA key: {e}",
            key.client_email
        ))
    })?;
    let mut header = serde_json::json!({ "alg": "RS256", "typ": "JWT" });
    if let Some(kid) = &key.private_key_id {
        header["kid"] = serde_json::json!(kid);
    }
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": scope,
        "aud": key.token_uri,
        "iat": now,
        "exp": now + 3600,
    });
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| CredentialError::SigningFailed("RS256 signing failed".into()))?;
    Ok(format!("{signing_input}.{}", b64url(&signature)))
}

impl OAuthSource {
    /// A source for `config`; mints nothing yet.
    pub fn new(config: OAuthConfig) -> Self {
        Self {
            config,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &OAuthConfig {
        &self.config
    }

    /// An access token for `scope`: the cached one while it has more than
    /// [`RENEW_BEFORE`] left, else a new one from the token endpoint.
    pub async fn token(&self, scope: &str) -> Result<String, CredentialError> {
        let mut cache = self.cache.lock().await;
        if let Some((token, expires)) = cache.get(scope)
            && expires.saturating_duration_since(Instant::now()) > RENEW_BEFORE
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.mint(scope).await?;
        cache.insert(
            scope.to_string(),
            (token.clone(), Instant::now() + lifetime),
        );
        Ok(token)
    }

    async fn mint(&self, scope: &str) -> Result<(String, Duration), CredentialError> {
        let (url, form) = match &self.config {
            OAuthConfig::GcpServiceAccount { key_file } => {
                let text = std::fs::read_to_string(key_file).map_err(|e| {
                    unavailable(format!(
                        "cannot read service account key {}: {e}",
                        key_file.display()
                    ))
                })?;
                let key: ServiceAccountKey = serde_json::from_str(&text).map_err(|e| {
                    unavailable(format!(
                        "{} is not a service account JSON key: {e}",
                        key_file.display()
                    ))
                })?;
                if key.kind != "service_account" {
                    return Err(unavailable(format!(
                        "{} has type {:?}; a service account key has \"service_account\"",
                        key_file.display(),
                        key.kind
                    )));
                }
                let assertion =
                    service_account_assertion(&key, scope, crate::clock::unix_now_u64())?;
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
                    .append_pair("assertion", &assertion)
                    .finish();
                (key.token_uri, form)
            }
            OAuthConfig::AzureClientCredentials {
                tenant_id,
                client_id,
                client_secret,
                authority,
            } => {
                let secret = client_secret.read()?;
                let form = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("client_id", client_id)
                    .append_pair("client_secret", &secret)
                    .append_pair("scope", scope)
                    .append_pair("grant_type", "client_credentials")
                    .finish();
                (
                    format!(
                        "{}/{tenant_id}/oauth2/v2.0/token",
                        authority.trim_end_matches('/')
                    ),
                    form,
                )
            }
        };
        post_form(&url, form).await
    }
}

/// POSTs the form and reads `{access_token, expires_in}` or the OAuth error,
/// through the host's one outbound client ([`crate::host_http`]).
async fn post_form(url: &str, form: String) -> Result<(String, Duration), CredentialError> {
    let answer = crate::host_http::post(
        url,
        "application/x-www-form-urlencoded",
        form.into_bytes(),
        TOKEN_TIMEOUT,
        MAX_ANSWER,
    )
    .await
    .map_err(|e| unavailable(format!("token endpoint {e}")))?;
    let (status, body) = (
        hyper::StatusCode::from_u16(answer.status).unwrap_or(hyper::StatusCode::BAD_GATEWAY),
        answer.body,
    );
    let answer: TokenAnswer = serde_json::from_slice(&body).map_err(|_| {
        unavailable(format!(
            "token endpoint {url} answered {status} without a JSON token"
        ))
    })?;
    match answer {
        TokenAnswer {
            access_token: Some(token),
            expires_in,
            ..
        } if status.is_success() && !token.is_empty() => {
            Ok((token, Duration::from_secs(expires_in.unwrap_or(3600))))
        }
        TokenAnswer {
            error,
            error_description,
            ..
        } => Err(unavailable(format!(
            "token endpoint {url} refused ({status}): {}{}",
            error.as_deref().unwrap_or("no error code"),
            error_description
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests;
