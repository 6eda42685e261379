//! [`SshPool`]: one cached SSH connection per host, commands run as channels
//! on it, bounded by a per-host semaphore and a per-call deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{ChannelMsg, Sig};
use tokio::sync::Semaphore;
use tokio::time::Instant as TokioInstant;

use super::SshError;
use super::config::{SshHostConfig, SshLimits};
use super::probe::{PROBE_SCRIPT, parse_probe_output, probe_error};
use super::quote::quote_argv;

/// Hardware resources (mirrors the WIT `resources` record).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Virtual CPUs.
    pub vcpus: f32,
    /// Memory, GiB.
    pub memory_gib: f32,
    /// Disk, GiB.
    pub storage_gib: f32,
    /// GPU count.
    pub gpus: f32,
    /// GPU model, when there are GPUs.
    pub gpu_model: Option<String>,
}

/// One configured host as the component sees it (mirrors WIT `host-entry`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostEntry {
    /// Alias from the operator config.
    pub alias: String,
    /// Region label.
    pub region: String,
    /// Operator's hourly cost.
    pub hourly_usd: f64,
    /// Probed capacity, once known ([`SshPool::probe`] or
    /// [`SshPool::set_capacity`]).
    pub capacity: Option<Resources>,
    /// Capacity taken by active deployments ([`SshPool::set_in_use`]).
    pub in_use: Resources,
}

/// What a command did (mirrors WIT `exec-output`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status; `None` when the command was killed by a signal.
    pub exit_code: Option<i32>,
    /// Standard output, at most [`SshLimits::stdout_cap`] bytes.
    pub stdout: Vec<u8>,
    /// Standard error, at most [`SshLimits::stderr_cap`] bytes.
    pub stderr: Vec<u8>,
    /// True when stdout was cut at the cap.
    pub stdout_truncated: bool,
    /// True when stderr was cut at the cap.
    pub stderr_truncated: bool,
    /// Wall time in milliseconds, including the wait for a slot.
    pub duration_ms: u64,
}

/// Where host keys learned by trust-on-first-use go, and where they come from
/// on the next start. The host implements it over providers.lock.
pub trait HostKeyStore: Send + Sync + 'static {
    /// A fingerprint learned earlier for `alias`, if any. Used as the pin when
    /// the config has none.
    fn learned(&self, alias: &str) -> Option<String>;
    /// Called once when trust-on-first-use accepted `fingerprint`
    /// (`SHA256:...`) for `alias`. An error is logged; the connection goes on,
    /// and the key stays pinned in memory for the life of the pool.
    fn record(&self, alias: &str, fingerprint: &str) -> Result<(), HostKeyStoreError>;
}

/// A learned host key could not be stored (the lock file could not be read or
/// written); the cause is kept.
#[derive(Debug, thiserror::Error)]
#[error("cannot record the host key of `{alias}`: {source}")]
pub struct HostKeyStoreError {
    /// The host.
    pub alias: String,
    /// Why.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A [`HostKeyStore`] that keeps learned fingerprints in memory only (tests,
/// or when the caller reads them back with [`MemoryHostKeyStore::get`]).
#[derive(Debug, Default)]
pub struct MemoryHostKeyStore {
    keys: Mutex<BTreeMap<String, String>>,
}

impl MemoryHostKeyStore {
    /// The fingerprint recorded for `alias`.
    pub fn get(&self, alias: &str) -> Option<String> {
        lock(&self.keys).get(alias).cloned()
    }
}

impl HostKeyStore for MemoryHostKeyStore {
    fn learned(&self, alias: &str) -> Option<String> {
        self.get(alias)
    }
    fn record(&self, alias: &str, fingerprint: &str) -> Result<(), HostKeyStoreError> {
        lock(&self.keys).insert(alias.to_string(), fingerprint.to_string());
        Ok(())
    }
}

/// Locks a std mutex, recovering from poisoning (the data are plain values
/// that a panic cannot leave half-written).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// russh handler that checks the server key against the pin.
struct KeyCheck {
    pinned: Option<String>,
    tofu: bool,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for KeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // Host certificates are not configured anywhere; refuse them rather
        // than trusting a CA implicitly.
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Ok(false);
        };
        let fp = key.fingerprint(HashAlg::Sha256).to_string();
        *lock(&self.seen) = Some(fp.clone());
        Ok(match &self.pinned {
            Some(pin) => *pin == fp,
            None => self.tofu,
        })
    }
}

struct PooledHost {
    cfg: SshHostConfig,
    key: Arc<PrivateKey>,
    slots: Arc<Semaphore>,
    conn: tokio::sync::Mutex<Option<Arc<Handle<KeyCheck>>>>,
    /// Fingerprint accepted by TOFU during this pool's life.
    learned: Mutex<Option<String>>,
    capacity: Mutex<Option<Resources>>,
    in_use: Mutex<Resources>,
}

/// The `ssh` capability: the operator's hosts by alias, with their keys,
/// connections and limits. Cheap to share behind an `Arc`.
pub struct SshPool {
    hosts: BTreeMap<String, PooledHost>,
    limits: SshLimits,
    store: Arc<dyn HostKeyStore>,
}

impl std::fmt::Debug for SshPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshPool")
            .field("hosts", &self.hosts.keys().collect::<Vec<_>>())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SshPool {
    /// Validates the config and loads every private key. Connects to nothing.
    /// Errors are [`SshError::Other`] naming the host and field to fix.
    pub fn new(
        hosts: Vec<SshHostConfig>,
        limits: SshLimits,
        store: Arc<dyn HostKeyStore>,
    ) -> Result<Self, SshError> {
        if limits.default_timeout > limits.max_timeout {
            return Err(SshError::Other(
                "ssh default_timeout is larger than max_timeout".to_string(),
            ));
        }
        let mut map = BTreeMap::new();
        for cfg in hosts {
            cfg.validate()?;
            let key = russh::keys::load_secret_key(&cfg.private_key_file, None).map_err(|e| {
                SshError::Other(format!(
                    "ssh host `{}`: cannot load private key {}: {e} (an unencrypted OpenSSH ed25519 or ECDSA key is needed)",
                    cfg.alias,
                    cfg.private_key_file.display()
                ))
            })?;
            let alias = cfg.alias.clone();
            let state = PooledHost {
                slots: Arc::new(Semaphore::new(cfg.max_concurrency)),
                cfg,
                key: Arc::new(key),
                conn: tokio::sync::Mutex::new(None),
                learned: Mutex::new(None),
                capacity: Mutex::new(None),
                in_use: Mutex::new(Resources::default()),
            };
            if map.insert(alias.clone(), state).is_some() {
                return Err(SshError::Other(format!(
                    "ssh host alias `{alias}` is configured twice"
                )));
            }
        }
        Ok(Self {
            hosts: map,
            limits,
            store,
        })
    }

    /// The configured hosts, sorted by alias, with capacity and usage.
    pub fn hosts(&self) -> Vec<HostEntry> {
        self.hosts
            .values()
            .map(|h| HostEntry {
                alias: h.cfg.alias.clone(),
                region: h.cfg.region.clone(),
                hourly_usd: h.cfg.hourly_usd,
                capacity: lock(&h.capacity).clone(),
                in_use: lock(&h.in_use).clone(),
            })
            .collect()
    }

    /// Sets a host's capacity (e.g. from a stored `bpr hosts probe` result).
    pub fn set_capacity(&self, alias: &str, capacity: Option<Resources>) -> Result<(), SshError> {
        *lock(&self.host(alias)?.capacity) = capacity;
        Ok(())
    }

    /// Sets the capacity taken by active deployments on a host (the tracker
    /// knows it).
    pub fn set_in_use(&self, alias: &str, in_use: Resources) -> Result<(), SshError> {
        *lock(&self.host(alias)?.in_use) = in_use;
        Ok(())
    }

    fn host(&self, alias: &str) -> Result<&PooledHost, SshError> {
        self.hosts.get(alias).ok_or_else(|| {
            SshError::UnknownHost(format!(
                "`{alias}` is not a configured ssh host (configured: {})",
                self.hosts.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Runs `argv` on host `alias` and waits for it or for the deadline
    /// (`timeout`, default [`SshLimits::default_timeout`], capped at
    /// [`SshLimits::max_timeout`]). At the deadline the remote command gets
    /// SIGKILL, the channel is closed and [`SshError::Timeout`] returned.
    pub async fn exec(
        &self,
        alias: &str,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<ExecOutput, SshError> {
        let start = Instant::now();
        let argv0 = argv.first().map(String::as_str).unwrap_or("");
        let result = self.exec_inner(alias, argv, stdin, timeout, start).await;
        let duration_ms = start.elapsed().as_millis() as u64;
        match &result {
            Ok(out) => tracing::info!(
                target: "bpr::audit",
                alias,
                argv0,
                exit_code = ?out.exit_code,
                duration_ms,
                stdin_bytes = stdin.map_or(0, <[u8]>::len),
                outcome = "ok",
                "ssh exec"
            ),
            Err(e) => tracing::info!(
                target: "bpr::audit",
                alias,
                argv0,
                exit_code = ?Option::<i32>::None,
                duration_ms,
                stdin_bytes = stdin.map_or(0, <[u8]>::len),
                outcome = e.kind(),
                "ssh exec"
            ),
        }
        result
    }

    async fn exec_inner(
        &self,
        alias: &str,
        argv: &[String],
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
        start: Instant,
    ) -> Result<ExecOutput, SshError> {
        let host = self.host(alias)?;
        let command = quote_argv(argv)?;
        let timeout = match timeout {
            Some(t) if t.is_zero() => {
                return Err(SshError::Invalid(
                    "timeout must be more than 0 ms".to_string(),
                ));
            }
            Some(t) => t.min(self.limits.max_timeout),
            None => self.limits.default_timeout,
        };
        let deadline = TokioInstant::from_std(start) + timeout;
        let timed_out = || {
            SshError::Timeout(format!(
                "`{}` on ssh host `{alias}` did not finish within {} ms and was killed",
                argv[0],
                timeout.as_millis()
            ))
        };

        let _permit = tokio::time::timeout_at(deadline, host.slots.clone().acquire_owned())
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| SshError::Other("ssh host slots were closed".to_string()))?;

        // A cached connection may have died (sshd restart, network): one retry
        // on a fresh connection.
        let mut channel = None;
        for attempt in 0..2 {
            let handle = tokio::time::timeout_at(deadline, self.connection(host, attempt > 0))
                .await
                .map_err(|_| timed_out())??;
            match tokio::time::timeout_at(deadline, handle.channel_open_session()).await {
                Err(_) => return Err(timed_out()),
                Ok(Ok(ch)) => {
                    channel = Some(ch);
                    break;
                }
                Ok(Err(e)) if attempt > 0 => {
                    return Err(SshError::ConnectionFailed(format!(
                        "cannot open a session on ssh host `{alias}`: {e}"
                    )));
                }
                Ok(Err(_)) => continue,
            }
        }
        let Some(channel) = channel else {
            return Err(SshError::ConnectionFailed(format!(
                "cannot open a session on ssh host `{alias}`"
            )));
        };
        let (mut rx, tx) = channel.split();
        tx.exec(true, command.into_bytes()).await.map_err(|e| {
            SshError::ConnectionFailed(format!("exec request to ssh host `{alias}` failed: {e}"))
        })?;

        let writer = async {
            if let Some(bytes) = stdin {
                // Errors here mean the command exited without reading all of
                // stdin; its exit status tells the story.
                if tx.data_bytes(bytes.to_vec()).await.is_ok() {
                    let _ = tx.eof().await;
                }
            } else {
                let _ = tx.eof().await;
            }
            std::future::pending::<()>().await
        };
        let (out_cap, err_cap) = (self.limits.stdout_cap, self.limits.stderr_cap);
        let reader = async {
            let mut out = ExecOutput {
                exit_code: None,
                stdout: Vec::new(),
                stderr: Vec::new(),
                stdout_truncated: false,
                stderr_truncated: false,
                duration_ms: 0,
            };
            let mut finished = false;
            while let Some(msg) = rx.wait().await {
                match msg {
                    ChannelMsg::Data { data } => {
                        append_capped(&mut out.stdout, &data, out_cap, &mut out.stdout_truncated)
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        append_capped(&mut out.stderr, &data, err_cap, &mut out.stderr_truncated)
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        out.exit_code = Some(exit_status as i32);
                        finished = true;
                    }
                    ChannelMsg::ExitSignal { .. } => finished = true,
                    _ => {}
                }
            }
            (out, finished)
        };
        let outcome = tokio::select! {
            r = reader => Some(r),
            _ = writer => None,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        match outcome {
            Some((mut out, finished)) => {
                if !finished && handle_closed(host).await {
                    return Err(SshError::ConnectionFailed(format!(
                        "connection to ssh host `{alias}` was lost while `{}` ran",
                        argv[0]
                    )));
                }
                out.duration_ms = start.elapsed().as_millis() as u64;
                Ok(out)
            }
            None => {
                // sshd delivers the signal to the session's process (the
                // login shell, which execs a simple command); closing the
                // channel also closes the command's pipes.
                let _ = tx.signal(Sig::KILL).await;
                let _ = tx.close().await;
                Err(timed_out())
            }
        }
    }

    /// Returns the cached connection of `host`, or makes one (also when
    /// `fresh` is set). Host key and auth failures are never cached.
    async fn connection(
        &self,
        host: &PooledHost,
        fresh: bool,
    ) -> Result<Arc<Handle<KeyCheck>>, SshError> {
        let mut slot = host.conn.lock().await;
        if let Some(h) = slot.as_ref()
            && !fresh
            && !h.is_closed()
        {
            return Ok(h.clone());
        }
        *slot = None;
        let h = Arc::new(self.connect(host).await?);
        *slot = Some(h.clone());
        Ok(h)
    }

    async fn connect(&self, host: &PooledHost) -> Result<Handle<KeyCheck>, SshError> {
        let cfg = &host.cfg;
        let alias = &cfg.alias;
        let pinned = cfg
            .host_key_fingerprint
            .clone()
            .or_else(|| lock(&host.learned).clone())
            .or_else(|| self.store.learned(alias));
        let seen = Arc::new(Mutex::new(None));
        let check = KeyCheck {
            pinned: pinned.clone(),
            tofu: cfg.trust_on_first_use,
            seen: seen.clone(),
        };
        let config = Arc::new(client::Config {
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            ..Default::default()
        });
        let target = format!("{}:{}", cfg.address, cfg.port);
        let connect = client::connect(config, (cfg.address.as_str(), cfg.port), check);
        let mut handle = match tokio::time::timeout(self.limits.connect_timeout, connect).await {
            Err(_) => {
                return Err(SshError::ConnectionFailed(format!(
                    "ssh host `{alias}` ({target}) did not complete the handshake within {} ms",
                    self.limits.connect_timeout.as_millis()
                )));
            }
            Ok(Err(russh::Error::UnknownKey)) => {
                let got = lock(&seen)
                    .clone()
                    .unwrap_or_else(|| "a host certificate".to_string());
                return Err(SshError::HostKeyRejected(match pinned {
                    Some(pin) => format!(
                        "ssh host `{alias}` ({target}) presented {got}, not the pinned {pin}; if the host was re-keyed, check the new key out of band and update host_key_fingerprint"
                    ),
                    None => format!(
                        "ssh host `{alias}` ({target}) presented {got}, which is not pinned and trust_on_first_use is off; check it out of band (`ssh-keygen -lf` on the host's key) and set host_key_fingerprint = \"{got}\""
                    ),
                }));
            }
            Ok(Err(e)) => {
                return Err(SshError::ConnectionFailed(format!(
                    "cannot connect to ssh host `{alias}` ({target}): {e}"
                )));
            }
            Ok(Ok(h)) => h,
        };
        let auth = handle
            .authenticate_publickey(
                cfg.user.clone(),
                PrivateKeyWithHashAlg::new(host.key.clone(), None),
            )
            .await
            .map_err(|e| {
                SshError::ConnectionFailed(format!(
                    "authentication exchange with ssh host `{alias}` ({target}) failed: {e}"
                ))
            })?;
        if !auth.success() {
            return Err(SshError::Unauthorized(format!(
                "ssh host `{alias}` ({target}) refused key {} for user `{}`; add its public key to that user's ~/.ssh/authorized_keys",
                cfg.private_key_file.display(),
                cfg.user
            )));
        }
        if pinned.is_none()
            && let Some(fp) = lock(&seen).clone()
        {
            tracing::warn!(
                target: "bpr::audit",
                alias = alias.as_str(),
                fingerprint = fp.as_str(),
                "ssh host key trusted on first use"
            );
            *lock(&host.learned) = Some(fp.clone());
            if let Err(e) = self.store.record(alias, &fp) {
                tracing::error!(
                    alias = alias.as_str(),
                    error = %e,
                    "cannot record learned ssh host key"
                );
            }
        }
        Ok(handle)
    }

    /// Writes `contents` to the absolute `path` on host `alias` with mode
    /// `mode`, atomically: into a temporary file in the same directory, then
    /// `chmod` and `mv` over the target. The temporary file is removed when a
    /// step fails. The parent directory must exist.
    pub async fn upload(
        &self,
        alias: &str,
        path: &str,
        contents: &[u8],
        mode: u32,
    ) -> Result<(), SshError> {
        self.host(alias)?;
        if !path.starts_with('/') || path.ends_with('/') || path.contains('\0') {
            return Err(SshError::Invalid(format!(
                "upload path `{path}` must be an absolute file path"
            )));
        }
        if mode > 0o7777 {
            return Err(SshError::Invalid(format!(
                "upload mode {mode:o} is not a permission mode"
            )));
        }
        // umask 077 keeps the temporary file private until chmod.
        let script = r#"t="$1.bpr-tmp.$$"; umask 077; if cat > "$t" && chmod "$2" "$t" && mv -f "$t" "$1"; then exit 0; else rc=$?; rm -f "$t"; exit $rc; fi"#;
        let argv: Vec<String> = ["sh", "-c", script, "bpr-upload", path, &format!("{mode:o}")]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = self.exec(alias, &argv, Some(contents), None).await?;
        tracing::info!(target: "bpr::audit", alias, path, bytes = contents.len(), mode = format!("{mode:o}"), ok = out.exit_code == Some(0), "ssh upload");
        if out.exit_code == Some(0) {
            Ok(())
        } else {
            Err(SshError::Other(format!(
                "upload of {path} to ssh host `{alias}` failed (exit {:?}): {}",
                out.exit_code,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// Probes a host's capacity (`nproc`, `/proc/meminfo`, `df -Pk /`,
    /// `nvidia-smi -L` when installed), stores it for [`SshPool::hosts`] and
    /// returns it.
    pub async fn probe(&self, alias: &str) -> Result<Resources, SshError> {
        let argv = vec!["sh".to_string(), "-c".to_string(), PROBE_SCRIPT.to_string()];
        let out = self.exec(alias, &argv, None, None).await?;
        if out.exit_code != Some(0) {
            return Err(probe_error(
                alias,
                format!(
                    "exit {:?}: {}",
                    out.exit_code,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        let r = parse_probe_output(&String::from_utf8_lossy(&out.stdout))
            .map_err(|e| probe_error(alias, e))?;
        self.set_capacity(alias, Some(r.clone()))?;
        Ok(r)
    }
}

/// True when the host's cached connection is gone.
async fn handle_closed(host: &PooledHost) -> bool {
    host.conn
        .lock()
        .await
        .as_ref()
        .is_none_or(|h| h.is_closed())
}

fn append_capped(buf: &mut Vec<u8>, data: &[u8], cap: usize, truncated: &mut bool) {
    let room = cap.saturating_sub(buf.len());
    if data.len() > room {
        *truncated = true;
    }
    buf.extend_from_slice(&data[..data.len().min(room)]);
}
