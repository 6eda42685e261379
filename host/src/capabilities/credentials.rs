//! Credentials the host applies to a provider's outbound requests. The guest
//! never sees them: it may not set `Authorization` (a forbidden header), and
//! the host adds the credential after the allowlist check.
//!
//! Kinds: static bearer token (from an env var or a file), AWS SigV4 signing
//! (credentials from the standard AWS env vars or a shared credentials file and
//! profile), and OAuth access tokens the host mints (Google service account,
//! Entra ID client credentials; see [`super::oauth`]), sent as a bearer token.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use base64::Engine as _;
use bytes::Bytes;
use http::HeaderValue;

use super::http_policy::Target;
use super::oauth::OAuthConfig;
pub use super::secret::{CredentialError, SecretSource};

/// Header in which an `aws-sigv4` component states `<service>/<region>` of a
/// request. The host strips it before signing and sending.
pub const AWS_SCOPE_HEADER: &str = "x-bpr-aws-scope";

/// Where AWS credentials come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsCredentialSource {
    /// A shared credentials file; `None` = the `AWS_*` env vars, then
    /// `AWS_SHARED_CREDENTIALS_FILE` or `~/.aws/credentials`.
    pub shared_credentials_file: Option<PathBuf>,
    /// Profile in that file; `None` = `AWS_PROFILE` or `default`.
    pub profile: Option<String>,
}

/// The `credential` of a provider section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CredentialConfig {
    /// No credential.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Where the token is.
        token: SecretSource,
        /// Hosts the token is sent to; empty = every allowed host.
        hosts: Vec<String>,
    },
    /// AWS Signature Version 4, applied only to requests for its `hosts`.
    AwsSigV4 {
        /// Where the keys are.
        source: AwsCredentialSource,
        /// Hosts the credential signs for: `host`, `host:port` or `*.domain`.
        /// Empty = `AWS_DEFAULT_HOSTS`. On an AWS endpoint name (any entry
        /// under the AWS domains) the scope's service and region must be the
        /// ones the name carries; a host listed by name or address that is not
        /// under the AWS domains (a stand-in such as moto) is signed for with
        /// any scope.
        hosts: Vec<String>,
    },
    /// An OAuth access token the host mints (`super::oauth`), for the kind's
    /// default scope (GCP `cloud-platform`, Azure Resource Manager).
    OAuth {
        /// The identity and how to mint with it.
        source: OAuthConfig,
        /// Hosts the token is sent to; empty = every allowed host.
        hosts: Vec<String>,
    },
}

impl CredentialConfig {
    /// The kind name used in config and `bpr providers list`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Bearer { .. } => "bearer",
            Self::AwsSigV4 { .. } => "aws-sigv4",
            Self::OAuth {
                source: OAuthConfig::GcpServiceAccount { .. },
                ..
            } => "gcp-service-account",
            Self::OAuth {
                source: OAuthConfig::AzureClientCredentials { .. },
                ..
            } => "azure-client-credentials",
        }
    }
}

/// AWS access key material.
#[derive(Clone)]
pub struct AwsKeys {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl std::fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl AwsCredentialSource {
    /// Resolve the keys now.
    pub(crate) fn keys(&self) -> Result<AwsKeys, CredentialError> {
        if self.shared_credentials_file.is_none()
            && let (Ok(id), Ok(secret)) = (
                std::env::var("AWS_ACCESS_KEY_ID"),
                std::env::var("AWS_SECRET_ACCESS_KEY"),
            )
            && !id.is_empty()
            && !secret.is_empty()
        {
            return Ok(AwsKeys {
                access_key_id: id,
                secret_access_key: secret,
                session_token: std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty()),
            });
        }
        let file = match &self.shared_credentials_file {
            Some(f) => f.clone(),
            None => match std::env::var_os("AWS_SHARED_CREDENTIALS_FILE") {
                Some(f) => PathBuf::from(f),
                None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                    .join(".aws/credentials"),
            },
        };
        let profile = self
            .profile
            .clone()
            .or_else(|| std::env::var("AWS_PROFILE").ok())
            .unwrap_or_else(|| "default".into());
        let text = std::fs::read_to_string(&file).map_err(|e| {
            CredentialError::Unavailable(format!(
                "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and {} cannot be read ({e})",
                file.display()
            ))
        })?;
        let section = ini_section(&text, &profile).ok_or_else(|| {
            CredentialError::Unavailable(format!(
                "profile [{profile}] not found in {}",
                file.display()
            ))
        })?;
        let get = |k: &str| {
            section
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Ok(AwsKeys {
                access_key_id: id,
                secret_access_key: secret,
                session_token: get("aws_session_token"),
            }),
            _ => Err(CredentialError::Unavailable(format!(
                "profile [{profile}] in {} lacks aws_access_key_id or aws_secret_access_key",
                file.display()
            ))),
        }
    }
}

/// The key/value pairs of `[section]` in an INI file.
fn ini_section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut current: Option<bool> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(head) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let head = head.trim();
            let head = head.strip_prefix("profile ").unwrap_or(head).trim();
            if current == Some(true) {
                break;
            }
            current = Some(head == name);
            continue;
        }
        if current == Some(true)
            && let Some((k, v)) = line.split_once('=')
        {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (current == Some(true) || !out.is_empty()).then_some(out)
}

/// Credentials that could not be read, each reported once until it can be
/// read again.
static UNRESOLVED: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A credential that cannot be read (variable unset, file missing) does not
/// stop the request: it goes out without it, so public endpoints (price lists)
/// still answer and the API itself refuses the rest, which the component maps
/// to `unauthorized`. Deploys are refused up front by the orchestrator.
fn unresolved(what: &str, e: &CredentialError) {
    let mut seen = UNRESOLVED.lock().unwrap_or_else(|p| p.into_inner());
    if seen.insert(what.to_string()) {
        tracing::warn!(
            "{e}; requests go out without this credential until it can be read (public endpoints still answer, the API refuses the rest)"
        );
    }
}

/// The credential `what` was read: a later failure is reported again.
fn resolved(what: &str) {
    let mut seen = UNRESOLVED.lock().unwrap_or_else(|p| p.into_inner());
    if seen.remove(what) {
        tracing::info!("credential {what} can be read again");
    }
}

fn host_listed(hosts: &[String], target: &Target) -> bool {
    hosts.is_empty() || hosts.iter().any(|h| h.eq_ignore_ascii_case(&target.host))
}

fn set_bearer(req: &mut http::Request<Bytes>, token: &str) -> Result<(), CredentialError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| CredentialError::Unavailable("token has invalid characters".into()))?;
    value.set_sensitive(true);
    req.headers_mut().insert(http::header::AUTHORIZATION, value);
    Ok(())
}

impl CredentialConfig {
    /// A token source for an OAuth credential (one per loaded provider, so its
    /// cache is shared by all the provider's calls).
    pub fn oauth_source(&self) -> Option<std::sync::Arc<super::oauth::OAuthSource>> {
        match self {
            Self::OAuth { source, .. } => Some(std::sync::Arc::new(
                super::oauth::OAuthSource::new(source.clone()),
            )),
            _ => None,
        }
    }

    /// The OAuth identity whose token a request to `target` needs, if any: mint it
    /// (async, cached; `super::oauth::OAuthSource::token`) and pass it to
    /// [`CredentialConfig::apply`].
    pub fn oauth_for(&self, target: &Target) -> Option<&OAuthConfig> {
        match self {
            Self::OAuth { source, hosts } if host_listed(hosts, target) => Some(source),
            _ => None,
        }
    }

    /// Apply the credential to a fully buffered outgoing request for
    /// `target`. `aws_scope` is the stripped value of `AWS_SCOPE_HEADER`;
    /// `oauth_token` the token minted for [`CredentialConfig::oauth_for`].
    pub fn apply(
        &self,
        req: &mut http::Request<Bytes>,
        target: &Target,
        aws_scope: Option<String>,
        oauth_token: Option<&str>,
    ) -> Result<(), CredentialError> {
        match self {
            Self::None => Ok(()),
            Self::Bearer { token, hosts } => {
                if !host_listed(hosts, target) {
                    return Ok(()); // not a host this token belongs to
                }
                match token.read() {
                    Ok(value) => {
                        resolved(&format!("{token:?}"));
                        set_bearer(req, &value)
                    }
                    Err(e) => {
                        unresolved(&format!("{token:?}"), &e);
                        Ok(())
                    }
                }
            }
            Self::OAuth { hosts, .. } => {
                if !host_listed(hosts, target) {
                    return Ok(());
                }
                let token = oauth_token.ok_or_else(|| {
                    CredentialError::Unavailable(
                        "no OAuth token was minted for this request".into(),
                    )
                })?;
                set_bearer(req, token)
            }
            Self::AwsSigV4 { source, hosts } => {
                // Requests without a scope (public catalogues) go unsigned.
                let Some(scope) = aws_scope else {
                    return Ok(());
                };
                let (service, region) = scope
                    .split_once('/')
                    .filter(|(s, r)| is_scope_part(s) && is_scope_part(r))
                    .ok_or_else(|| CredentialError::MissingScope(Some(scope.clone())))?;
                sigv4_may_sign(hosts, target, service, region).map_err(|source| {
                    CredentialError::SigningRefused {
                        target: format!("{}://{}:{}", target.scheme, target.host, target.port),
                        scope: format!("{service}/{region}"),
                        source: Box::new(source),
                    }
                })?;
                let what = format!("aws-sigv4 {source:?}");
                match source.keys() {
                    Ok(keys) => {
                        resolved(&what);
                        sign_request(req, &keys, service, region, SystemTime::now())
                    }
                    Err(e) => {
                        unresolved(&what, &e);
                        Ok(())
                    }
                }
            }
        }
    }
}

/// Hosts an `aws-sigv4` credential signs for when the operator lists none:
/// the AWS endpoint domains (commercial, China, dual-stack).
pub const AWS_DEFAULT_HOSTS: &[&str] = &["*.amazonaws.com", "*.amazonaws.com.cn", "*.api.aws"];

/// AWS endpoint domains; their names carry the service and region.
const AWS_DOMAINS: &[&str] = &["amazonaws.com.cn", "amazonaws.com", "api.aws"];

/// A service or region of a scope: `[a-z0-9-]`, 1 to 64 characters.
fn is_scope_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Why an `aws-sigv4` credential does not sign a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotSignable {
    /// The host is not one the credential is restricted to.
    #[error(
        "{host} is not one of the hosts this credential signs for ({hosts}); list a stand-in in the credential's `hosts`"
    )]
    HostNotListed {
        /// The request's host.
        host: String,
        /// The credential's hosts, comma-separated.
        hosts: String,
    },
    /// An AWS host whose name carries no service and region.
    #[error("{host} does not name a service and region the signature could be checked against")]
    NoScopeInHost {
        /// The request's host.
        host: String,
    },
    /// The host is an endpoint of another service.
    #[error("{host} is an endpoint of {expected}, not of {service}")]
    OtherService {
        /// The request's host.
        host: String,
        /// The host's service.
        expected: String,
        /// The service asked for.
        service: String,
    },
    /// The host is in another region.
    #[error("{host} is in region {expected}, not {region}")]
    OtherRegion {
        /// The request's host.
        host: String,
        /// The host's region.
        expected: String,
        /// The region asked for.
        region: String,
    },
}

/// Whether an `aws-sigv4` credential restricted to `hosts` (empty = the AWS
/// endpoints) may sign a request for `service`/`region` to `target`; `Err`
/// says why not.
pub fn sigv4_may_sign(
    hosts: &[String],
    target: &Target,
    service: &str,
    region: &str,
) -> Result<(), NotSignable> {
    let defaults: Vec<String>;
    let hosts = if hosts.is_empty() {
        defaults = AWS_DEFAULT_HOSTS.iter().map(|h| h.to_string()).collect();
        &defaults
    } else {
        hosts
    };
    let host = target.host.to_ascii_lowercase();
    let listed = hosts.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        if let Some(domain) = entry.strip_prefix("*.") {
            // Wildcards name AWS endpoints: only over TLS.
            return target.scheme == "https"
                && host
                    .strip_suffix(domain)
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.'));
        }
        match entry
            .rsplit_once(':')
            .filter(|(_, p)| p.parse::<u16>().is_ok())
        {
            Some((h, p)) => {
                h.trim_start_matches('[').trim_end_matches(']') == host
                    && p.parse::<u16>() == Ok(target.port)
            }
            None => entry.trim_start_matches('[').trim_end_matches(']') == host,
        }
    });
    if !listed {
        return Err(NotSignable::HostNotListed {
            host,
            hosts: hosts.join(", "),
        });
    }
    match aws_endpoint_scope(&host) {
        // A host outside the AWS domains that the operator listed: a stand-in.
        None if !AWS_DOMAINS.iter().any(|d| host.ends_with(&format!(".{d}"))) => Ok(()),
        None => Err(NotSignable::NoScopeInHost { host: host.clone() }),
        Some((expected_service, expected_region)) => {
            if expected_service != service {
                return Err(NotSignable::OtherService {
                    host: host.clone(),
                    expected: expected_service.into(),
                    service: service.into(),
                });
            }
            if expected_region != region {
                return Err(NotSignable::OtherRegion {
                    host: host.clone(),
                    expected: expected_region.into(),
                    region: region.into(),
                });
            }
            Ok(())
        }
    }
}

/// The service (the label before the region, without `-fips`) and the region
/// an AWS endpoint name carries: `ec2.us-east-1.amazonaws.com` -> (`ec2`,
/// `us-east-1`); `s3.dualstack.eu-west-1.amazonaws.com` -> (`s3`,
/// `eu-west-1`); a global endpoint `iam.amazonaws.com` -> (`iam`,
/// `us-east-1`), in China `cn-north-1`. `None` outside the AWS domains.
fn aws_endpoint_scope(host: &str) -> Option<(&str, &str)> {
    let (prefix, domain) = AWS_DOMAINS
        .iter()
        .find_map(|d| host.strip_suffix(&format!(".{d}")).map(|p| (p, *d)))?;
    let labels: Vec<&str> = prefix.split('.').collect();
    let (service, region) = match labels.iter().rposition(|l| is_region(l)) {
        Some(at) => {
            let service = labels[..at]
                .iter()
                .rev()
                .find(|l| !matches!(**l, "dualstack" | "fips"))?;
            (*service, labels[at])
        }
        None if domain == "amazonaws.com.cn" => (*labels.last()?, "cn-north-1"),
        None => (*labels.last()?, "us-east-1"),
    };
    Some((service.strip_suffix("-fips").unwrap_or(service), region))
}

/// An AWS region code: `us-east-1`, `eu-central-2`, `us-gov-west-1`...
fn is_region(label: &str) -> bool {
    let parts: Vec<&str> = label.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn sign_request(
    req: &mut http::Request<Bytes>,
    keys: &AwsKeys,
    service: &str,
    region: &str,
    time: SystemTime,
) -> Result<(), CredentialError> {
    let identity = Credentials::new(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.clone(),
        None,
        "bpr",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| CredentialError::SigningFailed(e.to_string()))?
        .into();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect();
    let uri = req.uri().to_string();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(req.body()),
    )
    .map_err(|e| CredentialError::SigningFailed(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| CredentialError::SigningFailed(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

/// An EKS bearer token (`k8s-aws-v1.<base64url presigned STS URL>`), made by
/// the host from its own AWS credentials. Valid for 15 minutes; the presigned
/// URL itself expires after 60 s as `aws-iam-authenticator` does.
pub fn eks_token(
    source: &AwsCredentialSource,
    cluster: &str,
    region: &str,
) -> Result<String, CredentialError> {
    let keys = source.keys()?;
    let uri =
        format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15");
    let identity = Credentials::new(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.clone(),
        None,
        "bpr",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| CredentialError::SigningFailed(e.to_string()))?
        .into();
    let host = format!("sts.{region}.amazonaws.com");
    let headers = [("host", host.as_str()), ("x-k8s-aws-id", cluster)];
    let signable = SignableRequest::new(
        "GET",
        uri.clone(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| CredentialError::SigningFailed(e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| CredentialError::SigningFailed(e.to_string()))?
        .into_parts();
    let mut req = http::Request::builder()
        .uri(&uri)
        .header("x-k8s-aws-id", cluster)
        .body(())
        .map_err(|e| CredentialError::SigningFailed(e.to_string()))?;
    instructions.apply_to_request_http1x(&mut req);
    let url = req.uri().to_string();
    Ok(format!(
        "k8s-aws-v1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_credentials_file_profile_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n[ops]\naws_access_key_id=AKIDOPS\naws_secret_access_key=s2\n",
        )
        .unwrap();
        let src = AwsCredentialSource {
            shared_credentials_file: Some(f.clone()),
            profile: Some("ops".into()),
        };
        assert_eq!(src.keys().unwrap().access_key_id, "AKIDOPS");
        let missing = AwsCredentialSource {
            shared_credentials_file: Some(f),
            profile: Some("nope".into()),
        };
        assert!(missing.keys().unwrap_err().to_string().contains("[nope]"));
    }

    #[test]
    fn sigv4_signing_adds_authorization_and_date() {
        let keys = AwsKeys {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        let mut req = http::Request::builder()
            .method("POST")
            .uri("https://ec2.us-east-1.amazonaws.com/")
            .header("host", "ec2.us-east-1.amazonaws.com")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::from_static(
                b"Action=DescribeRegions&Version=2016-11-15",
            ))
            .unwrap();
        sign_request(
            &mut req,
            &keys,
            "ec2",
            "us-east-1",
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/us-east-1/ec2/aws4_request"
            ),
            "{auth}"
        );
        assert!(req.headers().contains_key("x-amz-date"));
    }

    #[test]
    fn bearer_is_only_sent_to_its_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "tok\n").unwrap();
        let c = CredentialConfig::Bearer {
            token: SecretSource::File(f),
            hosts: vec!["api.example.com".into()],
        };
        let mut req = http::Request::new(Bytes::new());
        let other = Target {
            scheme: "https".into(),
            host: "cdn.example.com".into(),
            port: 443,
        };
        c.apply(&mut req, &other, None, None).unwrap();
        assert!(!req.headers().contains_key("authorization"));
        let api = Target {
            scheme: "https".into(),
            host: "api.example.com".into(),
            port: 443,
        };
        c.apply(&mut req, &api, None, None).unwrap();
        assert_eq!(req.headers()["authorization"], "Bearer tok");
    }

    fn https(host: &str) -> Target {
        Target {
            scheme: "https".into(),
            host: host.into(),
            port: 443,
        }
    }

    #[test]
    fn sigv4_signs_an_aws_endpoint_only_for_its_own_service_and_region() {
        let ok = |h: &str, s: &str, r: &str| sigv4_may_sign(&[], &https(h), s, r);
        assert!(ok("ec2.us-east-1.amazonaws.com", "ec2", "us-east-1").is_ok());
        assert!(ok("eks.eu-west-1.amazonaws.com", "eks", "eu-west-1").is_ok());
        assert!(
            ok(
                "ec2-fips.us-gov-west-1.amazonaws.com",
                "ec2",
                "us-gov-west-1"
            )
            .is_ok()
        );
        assert!(ok("s3.dualstack.eu-west-1.amazonaws.com", "s3", "eu-west-1").is_ok());
        assert!(ok("bucket.s3.us-east-1.amazonaws.com", "s3", "us-east-1").is_ok());
        assert!(
            ok(
                "api.pricing.us-east-1.amazonaws.com",
                "pricing",
                "us-east-1"
            )
            .is_ok()
        );
        assert!(ok("iam.amazonaws.com", "iam", "us-east-1").is_ok());
        assert!(ok("ec2.cn-north-1.amazonaws.com.cn", "ec2", "cn-north-1").is_ok());
        assert!(ok("ec2.us-east-1.api.aws", "ec2", "us-east-1").is_ok());

        let why = ok("ec2.us-east-1.amazonaws.com", "iam", "us-east-1").unwrap_err();
        assert!(why.to_string().contains("not of iam"), "{why}");
        let why = ok("ec2.us-east-1.amazonaws.com", "ec2", "eu-west-1").unwrap_err();
        assert!(why.to_string().contains("not eu-west-1"), "{why}");
        assert!(ok("iam.amazonaws.com", "iam", "eu-west-1").is_err());
        assert!(ok("sts.amazonaws.com", "iam", "us-east-1").is_err());
    }

    #[test]
    fn sigv4_by_default_signs_for_no_host_outside_the_aws_domains() {
        for host in [
            "instances.vantage.sh",
            "127.0.0.1",
            "ec2.us-east-1.amazonaws.com.evil.example",
            "amazonaws.com",
            "evilamazonaws.com",
        ] {
            let why = sigv4_may_sign(&[], &https(host), "ec2", "us-east-1").unwrap_err();
            assert!(
                why.to_string().contains("not one of the hosts"),
                "{host}: {why}"
            );
        }
        // Nor over cleartext HTTP, even to a real endpoint name.
        let http = Target {
            scheme: "http".into(),
            host: "ec2.us-east-1.amazonaws.com".into(),
            port: 80,
        };
        assert!(sigv4_may_sign(&[], &http, "ec2", "us-east-1").is_err());
    }

    #[test]
    fn sigv4_signs_for_a_listed_stand_in_with_any_scope_and_only_on_its_port() {
        let moto = Target {
            scheme: "http".into(),
            host: "127.0.0.1".into(),
            port: 23000,
        };
        let hosts = vec!["127.0.0.1:23000".to_string()];
        assert!(sigv4_may_sign(&hosts, &moto, "ec2", "us-east-1").is_ok());
        assert!(sigv4_may_sign(&hosts, &moto, "eks", "eu-west-1").is_ok());
        let other = Target {
            port: 23001,
            ..moto.clone()
        };
        assert!(sigv4_may_sign(&hosts, &other, "ec2", "us-east-1").is_err());
        // Listing a stand-in replaces the defaults.
        assert!(
            sigv4_may_sign(
                &hosts,
                &https("ec2.us-east-1.amazonaws.com"),
                "ec2",
                "us-east-1"
            )
            .is_err()
        );
        // A listed AWS name still has to match the scope.
        let named = vec!["ec2.us-east-1.amazonaws.com".to_string()];
        assert!(
            sigv4_may_sign(
                &named,
                &https("ec2.us-east-1.amazonaws.com"),
                "ec2",
                "us-east-1"
            )
            .is_ok()
        );
        assert!(
            sigv4_may_sign(
                &named,
                &https("ec2.us-east-1.amazonaws.com"),
                "sts",
                "us-east-1"
            )
            .is_err()
        );
    }

    #[test]
    fn a_refused_scope_adds_no_signature_or_token() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "[default]\naws_access_key_id=AKID\naws_secret_access_key=s\naws_session_token=TOKEN\n",
        )
        .unwrap();
        let c = CredentialConfig::AwsSigV4 {
            source: AwsCredentialSource {
                shared_credentials_file: Some(f),
                profile: None,
            },
            hosts: vec![],
        };
        let mut req = http::Request::new(Bytes::new());
        let err = c
            .apply(
                &mut req,
                &https("echo.example.com"),
                Some("iam/us-east-1".into()),
                None,
            )
            .unwrap_err();
        assert!(
            matches!(err, CredentialError::SigningRefused { .. }),
            "{err}"
        );
        assert!(req.headers().is_empty(), "{:?}", req.headers());
        let garbled = c.apply(
            &mut req,
            &https("ec2.us-east-1.amazonaws.com"),
            Some("EC2/us east".into()),
            None,
        );
        assert!(matches!(garbled, Err(CredentialError::MissingScope(_))));
    }

    #[test]
    fn a_credential_that_cannot_be_read_lets_the_request_go_out_without_it() {
        let mut req = http::Request::new(Bytes::new());
        let bearer = CredentialConfig::Bearer {
            token: SecretSource::Env("BPR_TEST_SURELY_UNSET_TOKEN_VARIABLE".into()),
            hosts: vec![],
        };
        bearer
            .apply(&mut req, &https("api.example.com"), None, None)
            .unwrap();
        assert!(req.headers().is_empty());
        let dir = tempfile::tempdir().unwrap();
        let sigv4 = CredentialConfig::AwsSigV4 {
            source: AwsCredentialSource {
                shared_credentials_file: Some(dir.path().join("missing")),
                profile: None,
            },
            hosts: vec![],
        };
        sigv4
            .apply(
                &mut req,
                &https("ec2.us-east-1.amazonaws.com"),
                Some("ec2/us-east-1".into()),
                None,
            )
            .unwrap();
        assert!(req.headers().is_empty(), "{:?}", req.headers());
    }

    #[test]
    fn eks_token_is_a_presigned_sts_url() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(
            &f,
            "[default]\naws_access_key_id=AKID\naws_secret_access_key=s\n",
        )
        .unwrap();
        let src = AwsCredentialSource {
            shared_credentials_file: Some(f),
            profile: None,
        };
        let token = eks_token(&src, "prod", "eu-west-1").unwrap();
        let b64 = token.strip_prefix("k8s-aws-v1.").unwrap();
        let url = String::from_utf8(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .unwrap(),
        )
        .unwrap();
        assert!(
            url.starts_with("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Signature="), "{url}");
        assert!(url.contains("x-k8s-aws-id"), "{url}");
    }
}
