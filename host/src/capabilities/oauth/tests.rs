//! Token minting against a local token endpoint that checks what a real one checks:
//! the grant, the form fields and (Google) the RS256 signature of the assertion with
//! the service account's public key.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};

use super::*;

/// What the endpoint saw and answers with.
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) mints: Arc<AtomicUsize>,
}

/// A token endpoint: `check` gets (path, form) and returns the status and JSON body.
pub(crate) async fn endpoint(
    check: impl Fn(&str, &HashMap<String, String>) -> (u16, serde_json::Value) + Send + Sync + 'static,
) -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mints = Arc::new(AtomicUsize::new(0));
    let check = Arc::new(check);
    let counter = mints.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (check, counter) = (check.clone(), counter.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (check, counter) = (check.clone(), counter.clone());
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let form: HashMap<String, String> =
                            url::form_urlencoded::parse(&body).into_owned().collect();
                        counter.fetch_add(1, Ordering::SeqCst);
                        let (status, json) = check(&path, &form);
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(json.to_string())))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Endpoint { url, mints }
}

/// An RSA key pair made by openssl: (PKCS#8 PEM private key, PKCS#1 DER public key).
fn rsa_key(dir: &std::path::Path) -> (String, Vec<u8>) {
    let key = dir.join("sa.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success());
    let public = std::process::Command::new("openssl")
        .args(["rsa", "-RSAPublicKey_out", "-outform", "DER", "-in"])
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    assert!(public.status.success());
    (std::fs::read_to_string(&key).unwrap(), public.stdout)
}

fn b64url_decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

#[tokio::test]
async fn a_service_account_assertion_is_signed_with_its_key_and_the_token_is_cached_per_scope() {
    let dir = tempfile::tempdir().unwrap();
    let (private_pem, public_der) = rsa_key(dir.path());
    let ep = endpoint(move |path, form| {
        assert_eq!(path, "/token");
        assert_eq!(
            form.get("grant_type").map(String::as_str),
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        );
        let jwt = form.get("assertion").expect("assertion");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA256,
            &public_der,
        );
        if public
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &b64url_decode(parts[2]),
            )
            .is_err()
        {
            return (400, serde_json::json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}));
        }
        let header: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "key-1");
        let claims: serde_json::Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
        assert_eq!(claims["iss"], "bpr@project.iam.gserviceaccount.com");
        assert!(claims["aud"].as_str().unwrap().ends_with("/token"));
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            3600
        );
        let scope = claims["scope"].as_str().unwrap().to_string();
        (200, serde_json::json!({"access_token": format!("ya29.{scope}"), "expires_in": 3599, "token_type": "Bearer"}))
    })
    .await;
    let key_file = dir.path().join("sa.json");
    std::fs::write(
        &key_file,
        serde_json::json!({
            "type": "service_account",
            "project_id": "project",
            "private_key_id": "key-1",
            "private_key": private_pem,
            "client_email": "bpr@project.iam.gserviceaccount.com",
            "token_uri": format!("{}/token", ep.url),
        })
        .to_string(),
    )
    .unwrap();
    let source = OAuthSource::new(OAuthConfig::GcpServiceAccount { key_file });
    let token = source.token(GCP_CLOUD_PLATFORM).await.expect("minted");
    assert_eq!(token, format!("ya29.{GCP_CLOUD_PLATFORM}"));
    assert_eq!(source.token(GCP_CLOUD_PLATFORM).await.unwrap(), token);
    assert_eq!(ep.mints.load(Ordering::SeqCst), 1, "cached");
    source.token("https://example/other").await.unwrap();
    assert_eq!(ep.mints.load(Ordering::SeqCst), 2, "one per scope");
}

#[tokio::test]
async fn a_key_file_that_is_not_a_service_account_key_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("user.json");
    std::fs::write(
        &key_file,
        r#"{"type": "authorized_user", "client_email": "x", "private_key": "", "token_uri": "http://127.0.0.1:9"}"#,
    )
    .unwrap();
    let err = OAuthSource::new(OAuthConfig::GcpServiceAccount {
        key_file: key_file.clone(),
    })
    .token(GCP_CLOUD_PLATFORM)
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("user.json") && err.contains("service_account"),
        "{err}"
    );
}

#[tokio::test]
async fn client_credentials_post_the_secret_and_scope_to_the_tenant_endpoint() {
    let ep = endpoint(|path, form| {
        assert_eq!(path, "/tenant-1/oauth2/v2.0/token");
        assert_eq!(form.get("grant_type").map(String::as_str), Some("client_credentials"));
        assert_eq!(form.get("client_id").map(String::as_str), Some("app-1"));
        if form.get("client_secret").map(String::as_str) != Some("s3cret") {
            return (401, serde_json::json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}));
        }
        let scope = form.get("scope").cloned().unwrap_or_default();
        (200, serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": format!("eyJ.{scope}")}))
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let config = |file: PathBuf| OAuthConfig::AzureClientCredentials {
        tenant_id: "tenant-1".into(),
        client_id: "app-1".into(),
        client_secret: SecretSource::File(file),
        authority: format!("{}/", ep.url),
    };
    let source = OAuthSource::new(config(secret));
    assert_eq!(
        source.token(AKS_SERVER).await.unwrap(),
        format!("eyJ.{AKS_SERVER}")
    );

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "nope").unwrap();
    let err = OAuthSource::new(config(wrong))
        .token(AZURE_MANAGEMENT)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("invalid_client") && err.contains("401") && !err.contains("nope"),
        "{err}"
    );
}

#[tokio::test]
async fn a_token_close_to_expiry_is_renewed() {
    let ep = endpoint(|_, _| {
        (
            200,
            serde_json::json!({"access_token": "short", "expires_in": 60}),
        )
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s").unwrap();
    let source = OAuthSource::new(OAuthConfig::AzureClientCredentials {
        tenant_id: "t".into(),
        client_id: "c".into(),
        client_secret: SecretSource::File(secret),
        authority: ep.url.clone(),
    });
    source.token(AZURE_MANAGEMENT).await.unwrap();
    source.token(AZURE_MANAGEMENT).await.unwrap();
    assert_eq!(
        ep.mints.load(Ordering::SeqCst),
        2,
        "a token with less than RENEW_BEFORE left is not reused"
    );
}
