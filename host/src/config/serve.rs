//! The `[serve]` section: how `bpr serve` listens, authenticates and stops.
//!
//! ```toml
//! [serve]
//! listen = "127.0.0.1:8765"        # loopback only unless you say otherwise
//! token_file = "/etc/bpr/api-token" # bearer token; mode 0600 or 0400, owned by the service
//! max_body_kib = 1024               # request bodies larger than this are refused (413)
//! max_in_flight = 512               # deployments and terminations running at once (429 past it)
//! max_event_streams = 64            # concurrent /v1/events subscribers (503 past it)
//! drain_secs = 10                   # on SIGTERM: time in-flight work may finish on its own
//! supervisor_interval_secs = 30     # TTL, recovery, health and cleanup pass
//! open_probes = false               # true: /healthz and /readyz answer without the token
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Error;

/// `bpr serve`'s settings. Every field's default is the one shown in the
/// module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeSettings {
    /// Address and port to listen on. Default `127.0.0.1:8765`.
    pub listen: SocketAddr,
    /// File holding the API's bearer token. Default: none (`bpr serve
    /// --token-file` must then name one).
    pub token_file: Option<PathBuf>,
    /// Largest request body accepted. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Deployments and terminations the service runs at once. Default 512.
    pub max_in_flight: usize,
    /// Concurrent event-stream subscribers. Default 64.
    pub max_event_streams: usize,
    /// On SIGTERM/SIGINT, how long in-flight work may run on before it is
    /// stopped between two provider calls. Default 10 s.
    pub drain: Duration,
    /// Time between two supervisor passes. Default 30 s.
    pub supervisor_interval: Duration,
    /// `/healthz` and `/readyz` answer without the bearer token (Kubernetes
    /// probes carry none); every other path still needs it. Default false.
    pub open_probes: bool,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8765)),
            token_file: None,
            max_body_bytes: 1 << 20,
            max_in_flight: 512,
            max_event_streams: 64,
            drain: Duration::from_secs(10),
            supervisor_interval: Duration::from_secs(30),
            open_probes: false,
        }
    }
}

/// The TOML shape of `[serve]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ServeToml {
    listen: Option<String>,
    token_file: Option<PathBuf>,
    max_body_kib: Option<usize>,
    max_in_flight: Option<usize>,
    max_event_streams: Option<usize>,
    drain_secs: Option<u64>,
    supervisor_interval_secs: Option<u64>,
    open_probes: Option<bool>,
}

impl ServeToml {
    /// Checked settings; relative paths resolved by `resolve`.
    pub(super) fn into_settings(
        self,
        origin: &str,
        resolve: &dyn Fn(PathBuf) -> PathBuf,
    ) -> Result<ServeSettings, Error> {
        let invalid = |key: &str, message: String| Error::InvalidValue {
            path: origin.to_string(),
            key: format!("serve.{key}"),
            message,
        };
        let d = ServeSettings::default();
        let listen = match self.listen {
            None => d.listen,
            Some(s) => s.parse().map_err(|_| {
                invalid(
                    "listen",
                    format!("{s:?} is not an address and port like \"127.0.0.1:8765\""),
                )
            })?,
        };
        let positive = |key: &str, v: Option<usize>, default: usize| match v {
            Some(0) => Err(invalid(key, "must be at least 1".into())),
            Some(v) => Ok(v),
            None => Ok(default),
        };
        let max_body_kib = positive("max_body_kib", self.max_body_kib, d.max_body_bytes >> 10)?;
        if max_body_kib > 64 << 10 {
            return Err(invalid(
                "max_body_kib",
                format!("{max_body_kib} KiB is more than the 64 MiB the API ever needs"),
            ));
        }
        let interval = match self.supervisor_interval_secs {
            Some(0) => {
                return Err(invalid(
                    "supervisor_interval_secs",
                    "must be at least 1".into(),
                ));
            }
            Some(s) => Duration::from_secs(s),
            None => d.supervisor_interval,
        };
        Ok(ServeSettings {
            listen,
            token_file: self.token_file.map(resolve),
            max_body_bytes: max_body_kib << 10,
            max_in_flight: positive("max_in_flight", self.max_in_flight, d.max_in_flight)?,
            max_event_streams: positive(
                "max_event_streams",
                self.max_event_streams,
                d.max_event_streams,
            )?,
            drain: self.drain_secs.map(Duration::from_secs).unwrap_or(d.drain),
            supervisor_interval: interval,
            open_probes: self.open_probes.unwrap_or(d.open_probes),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn parse(text: &str) -> Result<ServeSettings, Error> {
        let dto: ServeToml = toml::from_str(text).unwrap();
        dto.into_settings("test.toml", &|p| Path::new("/base").join(p))
    }

    #[test]
    fn an_empty_section_gives_the_documented_defaults() {
        assert_eq!(parse("").unwrap(), ServeSettings::default());
        assert!(ServeSettings::default().listen.ip().is_loopback());
    }

    #[test]
    fn a_bad_value_names_the_key() {
        let e = parse("listen = \"localhost\"").unwrap_err().to_string();
        assert!(e.contains("serve.listen") && e.contains("test.toml"), "{e}");
        let e = parse("max_in_flight = 0").unwrap_err().to_string();
        assert!(e.contains("serve.max_in_flight"), "{e}");
    }

    #[test]
    fn a_relative_token_file_is_resolved_against_the_config_file() {
        let s = parse("token_file = \"token\"").unwrap();
        assert_eq!(s.token_file.as_deref(), Some(Path::new("/base/token")));
    }
}
