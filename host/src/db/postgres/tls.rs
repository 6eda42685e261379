//! TLS to the PostgreSQL server (`[database] tls`, `ca_file`), over rustls:
//! the same TLS stack (and `ring` provider) as every other connection the
//! host makes, so no OpenSSL is linked for the store.
//!
//! Modes, as libpq names them (`sslmode`):
//! - `verify-full`: encrypted; the server's certificate must chain to
//!   `ca_file` (or the system's roots without one) and name the host of the
//!   URL. The default for every host that is not loopback: a managed
//!   database across a network is reached this way or not at all.
//! - `require`: encrypted, the certificate not checked (a server with a
//!   self-signed certificate and nothing better to check it against). A
//!   server that does not offer TLS is refused, never used in clear.
//! - `disable`: plain TCP. The default for `localhost`, `127.0.0.0/8` and
//!   `::1`, where nothing crosses a network.
//!
//! SCRAM channel binding (`tls-server-end-point`) is not offered: the login
//! is SCRAM without it, as libpq's default `channel_binding=prefer` falls
//! back to when the client cannot bind.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use postgres::Socket;
use postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::super::DbError;
use super::target::PostgresTarget;

/// How the connection to the server is protected (`[database] tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain TCP.
    Disable,
    /// Encrypted; the certificate is not checked.
    Require,
    /// Encrypted; the certificate chains to the trusted roots and names the host.
    VerifyFull,
}

impl TlsMode {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull => "verify-full",
        }
    }

    /// The mode used when `[database] tls` is not given: `disable` on
    /// loopback, `verify-full` everywhere else.
    pub fn default_for(host: &str) -> Self {
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback());
        if loopback {
            Self::Disable
        } else {
            Self::VerifyFull
        }
    }
}

impl std::str::FromStr for TlsMode {
    type Err = DbError;

    fn from_str(s: &str) -> Result<Self, DbError> {
        match s {
            "disable" => Ok(Self::Disable),
            "require" => Ok(Self::Require),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(DbError::BadTls {
                database: "(any)".into(),
                message: format!(
                    "[database] tls = {other:?} is not a mode; write \"verify-full\" (the default \
                     off loopback), \"require\" or \"disable\""
                ),
            }),
        }
    }
}

/// The TLS settings of `[database]`: the mode (`None`: by the host, see
/// [`TlsMode::default_for`]) and the roots to check the server against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// `[database] tls`.
    pub mode: Option<TlsMode>,
    /// `[database] ca_file`: PEM certificates the server's must chain to
    /// (`verify-full`); without it, the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl TlsSettings {
    /// The mode for `target`.
    pub fn mode_for(&self, target: &PostgresTarget) -> TlsMode {
        self.mode
            .unwrap_or_else(|| TlsMode::default_for(target.host()))
    }
}

/// What a connection to `target` is made with: plain TCP, or rustls with the
/// settings' roots (read once, here: a missing or empty `ca_file` is an error
/// at startup, not at the first statement).
pub(crate) fn connector(
    target: &PostgresTarget,
    settings: &TlsSettings,
) -> Result<Option<RustlsConnect>, DbError> {
    let bad = |message: String| DbError::BadTls {
        database: target.to_string(),
        message,
    };
    let mode = settings.mode_for(target);
    if mode == TlsMode::Disable {
        if settings.ca_file.is_some() {
            return Err(bad(
                "[database] ca_file is set but TLS is off (tls = \"disable\", or the default on \
                 loopback); set tls = \"verify-full\" to use it, or remove ca_file"
                    .into(),
            ));
        }
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("no TLS protocol version available: {e}")))?;
    let config = match mode {
        TlsMode::VerifyFull => {
            let roots = match &settings.ca_file {
                Some(path) => roots_from_file(path).map_err(bad)?,
                None => system_roots().map_err(bad)?,
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified { provider }))
            .with_no_client_auth(),
    };
    Ok(Some(RustlsConnect {
        config: Arc::new(config),
    }))
}

fn roots_from_file(path: &Path) -> Result<RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    let shown = path.display();
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read [database] ca_file {shown}: {e}"))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| format!("[database] ca_file {shown} is not PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("[database] ca_file {shown} holds a bad certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "[database] ca_file {shown} holds no certificate (expected PEM \
             \"-----BEGIN CERTIFICATE-----\" blocks)"
        ));
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(
            "tls = \"verify-full\" without ca_file uses the system's trusted roots, and none were \
             found; give the server's CA in [database] ca_file"
                .into(),
        );
    }
    Ok(roots)
}

/// `require`: any certificate is accepted, but the handshake's signatures are
/// still checked (the session is encrypted to whoever holds the key).
#[derive(Debug)]
struct Unverified {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client's TLS connector for `postgres::Config::connect`.
#[derive(Clone)]
pub(crate) struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
}

impl MakeTlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnector;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<RustlsConnector> {
        let name = ServerName::try_from(domain.to_string()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{domain:?} is not a name TLS can check: {e}"),
            )
        })?;
        Ok(RustlsConnector {
            name,
            connector: tokio_rustls::TlsConnector::from(self.config.clone()),
        })
    }
}

/// One connection's handshake.
pub(crate) struct RustlsConnector {
    name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl TlsConnect<Socket> for RustlsConnector {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(|s| RustlsStream(Box::new(s)))
        })
    }
}

/// A TLS session over the server's socket.
pub(crate) struct RustlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl TlsStream for RustlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::testing::{Scratch, postgres_available};
    use crate::db::{Database, DatabaseSettings};

    /// Whether the connection `db` holds to the server is TLS, and its version,
    /// as the server sees it.
    fn tls_seen_by_server(db: &Database) -> (bool, String) {
        let row = db
            .query_opt(
                "SELECT CASE WHEN ssl THEN 1 ELSE 0 END, COALESCE(version, '') FROM pg_stat_ssl
                 WHERE pid = pg_backend_pid()",
                &[],
            )
            .unwrap()
            .expect("the server lists our connection");
        (row.get::<i64>(0).unwrap() == 1, row.get(1).unwrap())
    }

    fn stand_in_ca() -> PathBuf {
        PathBuf::from(std::env::var("BPR_TEST_PG_CA_FILE").expect(
            "BPR_TEST_PG_CA_FILE is not set: start PostgreSQL with scripts/standins/postgres.sh start",
        ))
    }

    fn open(
        scratch: &Scratch,
        mode: TlsMode,
        ca_file: Option<PathBuf>,
    ) -> crate::db::Result<Database> {
        let (target, settings) = scratch.settings();
        Database::connect(
            &target,
            &DatabaseSettings {
                tls: TlsSettings {
                    mode: Some(mode),
                    ca_file,
                },
                max_connections: 1,
                ..settings
            },
        )
    }

    #[test]
    fn verify_full_against_the_servers_ca_connects_over_tls_and_the_store_works_on_it() {
        if !postgres_available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let scratch = Scratch::create(dir.path());
        let db = open(&scratch, TlsMode::VerifyFull, Some(stand_in_ca())).unwrap();
        let (tls, version) = tls_seen_by_server(&db);
        assert!(tls, "the server sees a plain connection");
        assert!(version.starts_with("TLS"), "{version}");
        // Migrated and writable over it.
        assert!(db.host_id().is_ok());
        // `require` needs no roots; `disable` is plain even to a TLS server.
        let db = open(&scratch, TlsMode::Require, None).unwrap();
        assert!(tls_seen_by_server(&db).0);
        let db = open(&scratch, TlsMode::Disable, None).unwrap();
        assert!(!tls_seen_by_server(&db).0);
    }

    #[test]
    fn verify_full_refuses_a_server_whose_certificate_another_ca_signed() {
        if !postgres_available() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("other-ca.pem");
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args([
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=not the server's CA",
                "-keyout",
            ])
            .arg(dir.path().join("other-ca.key"))
            .arg("-out")
            .arg(&other)
            .output()
            .expect("openssl runs");
        assert!(made.status.success(), "{made:?}");
        let scratch = Scratch::create(dir.path());
        let err = open(&scratch, TlsMode::VerifyFull, Some(other))
            .expect_err("connected to a server it cannot trust")
            .to_string();
        assert!(err.contains("certificate"), "{err}");
        assert!(
            err.contains(scratch.settings().0.to_string().as_str()),
            "{err}"
        );
    }

    #[test]
    fn require_refuses_a_server_without_tls_and_never_falls_back_to_clear_text() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // A server that answers the SSLRequest with 'N' (no TLS), then records
        // anything else the client sends (a start-up packet in clear text).
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut request = [0u8; 8];
            sock.read_exact(&mut request).unwrap();
            sock.write_all(b"N").unwrap();
            sock.set_read_timeout(Some(std::time::Duration::from_millis(500)))
                .unwrap();
            let mut rest = Vec::new();
            let _ = sock.read_to_end(&mut rest);
            (request, rest)
        });
        let target =
            PostgresTarget::parse(&format!("postgres://bpr@127.0.0.1:{port}/bpr")).unwrap();
        let err = Database::connect(
            &target,
            &DatabaseSettings {
                tls: TlsSettings {
                    mode: Some(TlsMode::Require),
                    ca_file: None,
                },
                max_connections: 1,
                ..DatabaseSettings::default()
            },
        )
        .expect_err("connected without TLS")
        .to_string();
        let (request, rest) = server.join().unwrap();
        // Length 8, code 80877103: the SSLRequest.
        assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47]);
        assert!(
            rest.is_empty(),
            "the client went on in clear text: {rest:?}"
        );
        assert!(err.contains("TLS"), "{err}");
    }

    #[test]
    fn tls_is_off_by_default_on_loopback_and_verified_everywhere_else() {
        for host in ["localhost", "127.0.0.1", "127.3.2.1", "::1", "LOCALHOST"] {
            assert_eq!(TlsMode::default_for(host), TlsMode::Disable, "{host}");
        }
        for host in [
            "db.internal",
            "10.0.0.5",
            "postgres.bpr.svc.cluster.local",
            "::2",
        ] {
            assert_eq!(TlsMode::default_for(host), TlsMode::VerifyFull, "{host}");
        }
        let remote = PostgresTarget::parse("postgres://bpr@db.internal/bpr").unwrap();
        let forced = TlsSettings {
            mode: Some(TlsMode::Disable),
            ca_file: None,
        };
        assert_eq!(forced.mode_for(&remote), TlsMode::Disable);
    }

    #[test]
    fn an_unknown_mode_is_refused_naming_the_modes_there_are() {
        let err = "prefer".parse::<TlsMode>().unwrap_err().to_string();
        assert!(
            err.contains("\"prefer\"") && err.contains("verify-full") && err.contains("disable"),
            "{err}"
        );
        for m in [TlsMode::Disable, TlsMode::Require, TlsMode::VerifyFull] {
            assert_eq!(m.as_str().parse::<TlsMode>().unwrap(), m);
        }
    }

    #[test]
    fn a_missing_empty_or_unused_ca_file_is_refused_at_startup_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let remote = PostgresTarget::parse("postgres://bpr@db.internal/bpr").unwrap();
        let with = |ca: &Path, mode| TlsSettings {
            mode,
            ca_file: Some(ca.to_path_buf()),
        };
        let missing = dir.path().join("nope.pem");
        let err = connector(&remote, &with(&missing, None))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("nope.pem") && err.contains("ca_file"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = connector(&remote, &with(&empty, None))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("holds no certificate"), "{err}");
        let err = connector(&remote, &with(&empty, Some(TlsMode::Disable)))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("TLS is off"), "{err}");
        assert!(
            connector(
                &remote,
                &TlsSettings {
                    mode: Some(TlsMode::Require),
                    ca_file: None
                }
            )
            .unwrap()
            .is_some()
        );
    }
}
