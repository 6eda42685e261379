//! Every request carries `Authorization: Bearer <token>`, the token being the
//! first line of a file the operator controls ([`ApiToken::load`]).
//!
//! The file must be private to the service (no group or other permission
//! bits: with systemd, `LoadCredential=` gives exactly that); a file others
//! may read is refused at start, since anyone who reads it can deploy
//! machines. The presented token is compared in constant time (both sides are
//! hashed first, so not even the length leaks), and a refused request is
//! logged without the token.

use std::path::{Path, PathBuf};

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::state::AppState;

/// Shortest token accepted: 32 characters (`openssl rand -hex 32` gives 64).
pub const MIN_TOKEN_LEN: usize = 32;

/// The API token could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Neither `[serve] token_file` nor `--token-file` names one.
    #[error(
        "no API token file: set [serve] token_file or pass --token-file (create one with `umask 077; openssl rand -hex 32 > /etc/bpr/api-token`)"
    )]
    NotConfigured,
    /// The file cannot be read.
    #[error("API token file {path}: cannot read it: {source}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// It is a directory, socket or the like.
    #[error("API token file {path} is not a regular file")]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// Its group or others may read or write it.
    #[error(
        "API token file {path} is readable by others (mode {mode:04o}): anyone who can read it can deploy machines; run `chmod 600 {path}` (owned by the user bpr serve runs as)"
    )]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Too short to resist guessing, or not a token.
    #[error(
        "API token file {path}: the token must be one line of at least {MIN_TOKEN_LEN} visible ASCII characters without spaces (found {found})"
    )]
    Weak {
        /// The file.
        path: PathBuf,
        /// What was found (a length or a description, never the token).
        found: String,
    },
}

/// The API's bearer token, kept only as its SHA-256.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl ApiToken {
    /// Reads and checks the token file: a regular file, no group/other
    /// permission bits, one line of at least `MIN_TOKEN_LEN` visible ASCII
    /// characters (a trailing newline is fine).
    pub fn load(path: Option<&Path>) -> Result<Self, TokenError> {
        use std::os::unix::fs::PermissionsExt;
        let path = path.ok_or(TokenError::NotConfigured)?;
        let unreadable = |source| TokenError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(unreadable)?;
        if !meta.is_file() {
            return Err(TokenError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(TokenError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
        // Bounded read: a token file is one short line.
        let bytes = std::fs::read(path).map_err(unreadable)?;
        let weak = |found: String| TokenError::Weak {
            path: path.to_path_buf(),
            found,
        };
        if bytes.len() > 4096 {
            return Err(weak(format!("a file of {} bytes", bytes.len())));
        }
        let text =
            std::str::from_utf8(&bytes).map_err(|_| weak("bytes that are not text".into()))?;
        let token = text.strip_suffix('\n').unwrap_or(text);
        let token = token.strip_suffix('\r').unwrap_or(token);
        if token.contains('\n') {
            return Err(weak("several lines".into()));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(weak("spaces or control characters".into()));
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(weak(format!("{} characters", token.len())));
        }
        Ok(Self::from_secret(token))
    }

    /// A token from its text (tests, embedders that keep it elsewhere).
    pub fn from_secret(token: &str) -> Self {
        Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// Whether `presented` is the token, in time independent of both.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let d: [u8; 32] = Sha256::digest(presented).into();
        self.digest.ct_eq(&d).into()
    }

    /// Checks a request's `Authorization` headers; the error says why, without
    /// the token.
    pub fn check(&self, headers: &http::HeaderMap) -> Result<(), &'static str> {
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let value = values.next().ok_or("no Authorization header")?;
        if values.next().is_some() {
            return Err("several Authorization headers");
        }
        let bytes = value.as_bytes();
        let scheme = b"bearer ";
        if bytes.len() <= scheme.len() || !bytes[..scheme.len()].eq_ignore_ascii_case(scheme) {
            return Err("Authorization is not a Bearer token");
        }
        if self.matches(&bytes[scheme.len()..]) {
            Ok(())
        } else {
            Err("wrong token")
        }
    }
}

/// Middleware: every request must carry the token; a refused one is 401 and
/// audited (method, path, peer, why; never the token).
/// With `[serve] open_probes`, `GET /healthz` and `GET /readyz` pass without
/// one: the kubelet's probes carry no token, and those two say nothing a
/// deploy could use.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.settings().open_probes
        && req.method() == http::Method::GET
        && matches!(req.uri().path(), "/healthz" | "/readyz")
    {
        return next.run(req).await;
    }
    match state.token().check(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(why) => {
            let peer = req
                .extensions()
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.to_string())
                .unwrap_or_else(|| "-".into());
            let path: String = req.uri().path().chars().take(200).collect();
            tracing::warn!(
                target: "bpr::audit::api",
                method = %req.method(),
                path = %path.escape_debug(),
                peer,
                "request refused: {why}"
            );
            ::metrics::counter!(super::metrics::API_UNAUTHORIZED).increment(1);
            ApiError::Unauthorized(why).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn file(mode: u32, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        (dir, path)
    }

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn a_private_token_file_is_loaded_and_its_token_accepted() {
        let (_d, path) = file(0o600, &format!("{TOKEN}\n"));
        let t = ApiToken::load(Some(&path)).unwrap();
        assert_eq!(t.check(&headers(&format!("Bearer {TOKEN}"))), Ok(()));
        assert_eq!(t.check(&headers(&format!("bearer {TOKEN}"))), Ok(()));
    }

    #[test]
    fn a_token_file_others_can_read_is_refused_with_what_to_do() {
        let (_d, path) = file(0o644, TOKEN);
        let e = ApiToken::load(Some(&path)).unwrap_err().to_string();
        assert!(
            e.contains("readable by others") && e.contains("chmod 600"),
            "{e}"
        );
        let (_d, path) = file(0o640, TOKEN);
        assert!(matches!(
            ApiToken::load(Some(&path)),
            Err(TokenError::TooOpen { mode: 0o640, .. })
        ));
    }

    #[test]
    fn a_short_or_multi_line_token_is_refused_without_showing_it() {
        let (_d, path) = file(0o600, "short");
        let e = ApiToken::load(Some(&path)).unwrap_err().to_string();
        assert!(e.contains("5 characters") && !e.contains("short"), "{e}");
        let (_d, path) = file(0o400, &format!("{TOKEN}\n{TOKEN}\n"));
        assert!(matches!(
            ApiToken::load(Some(&path)),
            Err(TokenError::Weak { .. })
        ));
        assert!(matches!(
            ApiToken::load(None),
            Err(TokenError::NotConfigured)
        ));
    }

    #[test]
    fn missing_wrong_and_malformed_credentials_are_told_apart() {
        let t = ApiToken::from_secret(TOKEN);
        assert_eq!(
            t.check(&http::HeaderMap::new()),
            Err("no Authorization header")
        );
        assert_eq!(t.check(&headers("Bearer nope")), Err("wrong token"));
        assert_eq!(
            t.check(&headers(&format!("Basic {TOKEN}"))),
            Err("Authorization is not a Bearer token")
        );
        let mut two = headers(&format!("Bearer {TOKEN}"));
        two.append(AUTHORIZATION, format!("Bearer {TOKEN}").parse().unwrap());
        assert_eq!(t.check(&two), Err("several Authorization headers"));
    }
}
