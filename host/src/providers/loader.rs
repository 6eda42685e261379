//! Turning a `.wasm` file into a [`LoadedProvider`]: read, hash, check the
//! lock, compile (or take the cached artifact), check imports and exports,
//! pre-instantiate, and ask the component to describe itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Store, UpdateDeadline};

use crate::capabilities::HttpPolicy;
use crate::capabilities::SharedHttpClient;
use crate::capabilities::{OutboundConfig, OutboundContext, OutboundHttp};
use crate::capabilities::{ProviderEnv, SshBackend};
use crate::config::{Config, IntegrityMode, ProviderConfig};
use crate::providers::exports::{ExportIndices, Exports};
use crate::providers::lock::LockFile;
use crate::providers::signature::{self, SignatureStatus, TrustedKey};
use crate::runtime::bindings::power::{PowerExport, PowerExportPre};
use crate::runtime::bindings::wit::ProviderInfo;
use crate::runtime::cache::{ArtifactCache, CompileStats};
use crate::runtime::engine::EngineHandle;
use crate::runtime::inspect::{self, Surface};
use crate::runtime::state::HostState;
use crate::runtime::{CallError, LoadError};

/// Deadline of the `describe.info` call made at load time.
const INFO_DEADLINE: Duration = Duration::from_secs(5);

/// One loaded version of a provider. Calls in flight keep their version alive
/// through an `Arc` while a reload swaps in the next.
pub struct LoadedProvider {
    /// Provider name (the file stem).
    pub name: String,
    /// The file it came from.
    pub path: PathBuf,
    /// sha256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// What `describe.info` returned.
    pub info: ProviderInfo,
    /// Imports, exports and WIT version.
    pub surface: Surface,
    /// The operator's section for this provider.
    pub config: ProviderConfig,
    /// Whether the artifact was cached, and how long loading took.
    pub compile: CompileStats,
    /// When this version was loaded.
    pub loaded_at: SystemTime,
    /// Lock verdict in warn mode (`Some(reason)` when not approved).
    pub integrity_warning: Option<String>,
    /// What the file's detached signature says (checked in every mode).
    pub signature: SignatureStatus,
    /// sha256 of the signature file, when there is one (a change reloads).
    pub signature_sha256: Option<String>,
    engine: wasmtime::Engine,
    pre: InstancePre<HostState>,
    exports: ExportIndices,
    /// The optional `power` export, when the component has it.
    power: Option<PowerExportPre<HostState>>,
    env: Arc<ProviderEnv>,
    outbound: Arc<OutboundContext>,
}

impl std::fmt::Debug for LoadedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedProvider")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("version", &self.info.version)
            .finish_non_exhaustive()
    }
}

/// Turns files into providers. Shared by start-up and hot reload.
pub struct Loader {
    engine: Arc<EngineHandle>,
    linker: Linker<HostState>,
    cache: ArtifactCache,
    client: SharedHttpClient,
    ssh: Option<Arc<dyn SshBackend>>,
}

impl Loader {
    /// A loader caching artifacts in `cache`.
    pub fn new(
        engine: Arc<EngineHandle>,
        cache: ArtifactCache,
        client: SharedHttpClient,
        ssh: Option<Arc<dyn SshBackend>>,
    ) -> wasmtime::Result<Self> {
        let linker = crate::runtime::linker::build(engine.engine())?;
        Ok(Self {
            engine,
            linker,
            cache,
            client,
            ssh,
        })
    }

    /// Load `path` under `config`.
    pub async fn load(
        self: &Arc<Self>,
        path: &Path,
        config: &Config,
    ) -> Result<LoadedProvider, LoadError> {
        let file = path.display().to_string();
        let name = provider_name(path).ok_or_else(|| LoadError::InstantiateFailed {
            file: file.clone(),
            message: "file name must be <provider>.wasm with [a-z0-9_-] in the name".into(),
        })?;
        let pconfig = config.provider(&name);

        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::ReadFailed {
                file: file.clone(),
                source,
            })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));

        // Integrity before any compilation: an unapproved file is not even parsed.
        // The signature is checked against the bytes just read, in every mode.
        let signature_bytes = signature::read_signature(path);
        let signature_sha256 = signature_bytes
            .as_ref()
            .ok()
            .and_then(|s| s.as_ref().map(|s| hex::encode(Sha256::digest(s))));
        let keys: Vec<TrustedKey> = config
            .host
            .trusted_keys
            .iter()
            .chain(&pconfig.trusted_keys)
            .cloned()
            .collect();
        let signature = match &signature_bytes {
            Ok(sig) => signature::check(path, &name, &bytes, sig.as_deref(), &keys),
            Err(e) => SignatureStatus::Invalid(e.to_string()),
        };
        let mut integrity_warning = None;
        match config.host.integrity {
            IntegrityMode::Signed => match &signature {
                SignatureStatus::Trusted { .. } => {}
                SignatureStatus::Unsigned => {
                    return Err(LoadError::IntegrityRefused {
                        reason: signature::unsigned_refusal(path, &name, &keys),
                        file,
                    });
                }
                SignatureStatus::Invalid(why) => {
                    return Err(LoadError::IntegrityRefused {
                        reason: format!("integrity = \"signed\": {why}"),
                        file,
                    });
                }
            },
            IntegrityMode::Enforce | IntegrityMode::Warn => {
                let lock = LockFile::read(&config.host.lock_file);
                let verdict = lock.and_then(|l| l.check(&name, &sha256, &pconfig.allow));
                if let Err(source) = verdict {
                    if config.host.integrity == IntegrityMode::Enforce {
                        return Err(LoadError::NotApproved {
                            file,
                            source: Box::new(source),
                        });
                    }
                    tracing::warn!(provider = %name, file = %file, "integrity (warn mode): {source}");
                    integrity_warning = Some(source.to_string());
                }
                if let SignatureStatus::Invalid(why) = &signature {
                    tracing::warn!(provider = %name, file = %file, "signature does not vouch for the file: {why}");
                }
            }
        }

        let this = self.clone();
        let (file2, sha2, allow_ssh) = (file.clone(), sha256.clone(), pconfig.allow_ssh);
        let (component, compile, surface, (pre, exports, power)) =
            tokio::task::spawn_blocking(move || {
                let engine = this.engine.engine();
                let (component, stats) = this.cache.load(engine, &bytes, &sha2, &file2)?;
                let surface = inspect::check(engine, &component, &file2, allow_ssh)?;
                let pre = this.linker.instantiate_pre(&component).map_err(|e| {
                    LoadError::InstantiateFailed {
                        file: file2.clone(),
                        message: format!("{e:#}"),
                    }
                })?;
                // Detected, not required: only components that export `power` have it.
                let power = PowerExportPre::new(pre.clone()).ok();
                let exports =
                    ExportIndices::new(&pre).map_err(|e| LoadError::InstantiateFailed {
                        file: file2.clone(),
                        message: format!("{e:#}"),
                    })?;
                Ok::<_, LoadError>((component, stats, surface, (pre, exports, power)))
            })
            .await
            .map_err(|e| LoadError::InstantiateFailed {
                file: file.clone(),
                message: format!("loader task failed: {e}"),
            })??;
        drop(component);

        let env = Arc::new(ProviderEnv {
            name: name.clone(),
            settings: pconfig.settings.clone(),
            ssh: if surface.uses_ssh {
                self.ssh.clone()
            } else {
                None
            },
            log: pconfig.log,
        });
        let outbound = Arc::new(OutboundContext::new(OutboundConfig {
            provider: name.clone(),
            policy: HttpPolicy::new(pconfig.allow.clone()),
            credential: pconfig.credential.clone(),
            client: self.client.clone(),
            max_request_body: pconfig.max_request_body,
            max_response_body: pconfig.max_response_body,
            oauth: pconfig.credential.oauth_source(),
            limits: pconfig.outbound.clone(),
            memory_cap: pconfig.memory_bytes,
        }));
        let size_bytes = tokio::fs::metadata(path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let mut loaded = LoadedProvider {
            name: name.clone(),
            path: path.to_path_buf(),
            sha256,
            size_bytes,
            // Replaced right below by what `describe.info` answers.
            info: info_before_describe(&name),
            surface,
            config: pconfig,
            compile,
            loaded_at: SystemTime::now(),
            integrity_warning,
            signature,
            signature_sha256,
            engine: self.engine.engine().clone(),
            pre,
            exports,
            power,
            env,
            outbound,
        };
        let info = loaded
            .call_with_deadline("describe.info", INFO_DEADLINE, async |p, store| {
                Ok(Ok(p
                    .blueprint_provider_describe(store)?
                    .call_info(store)
                    .await?))
            })
            .await
            .map_err(|e| LoadError::InstantiateFailed {
                file: file.clone(),
                message: format!("describe.info failed: {e}"),
            })?;
        if let Err(e) = loaded.config.returned.check_info(&info) {
            return Err(LoadError::InstantiateFailed {
                file,
                message: format!(
                    "describe.info returned too much data: {} (cap: {}; setting `providers.{name}.{}`)",
                    e.what, e.cap, e.setting
                ),
            });
        }
        // Settings are checked against what the component declares: a typo
        // is an error, as unknown keys are everywhere else in the config.
        let unknown: Vec<String> = loaded
            .config
            .settings
            .keys()
            .filter(|k| !info.settings.iter().any(|s| &s.key == *k))
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(LoadError::UnknownSetting {
                file,
                provider: name,
                unknown,
                accepted: info.settings.iter().map(|s| s.key.clone()).collect(),
            });
        }
        if info.name != name {
            return Err(LoadError::NameMismatch {
                file,
                reported: info.name,
            });
        }
        loaded.info = info;
        Ok(loaded)
    }
}

/// `aws` for `/dir/aws.wasm`; `None` for anything else.
pub fn provider_name(path: &Path) -> Option<String> {
    if path.extension()? != "wasm" {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    let ok = !stem.is_empty()
        && stem.len() <= 64
        && stem
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    ok.then(|| stem.to_string())
}

/// The provider's info until its own `describe.info` has answered.
fn info_before_describe(name: &str) -> ProviderInfo {
    ProviderInfo {
        name: name.to_string(),
        version: String::new(),
        capabilities: Vec::new(),
        credential: crate::runtime::bindings::wit::CredentialKind::None,
        expected_hosts: Vec::new(),
        regions: Vec::new(),
        settings: Vec::new(),
    }
}

impl LoadedProvider {
    /// Run one call in a fresh store under the provider's deadline.
    pub async fn call<R>(
        &self,
        op: &'static str,
        f: impl AsyncFnOnce(
            &Exports<'_>,
            &mut Store<HostState>,
        )
            -> wasmtime::Result<Result<R, crate::runtime::bindings::wit::ProviderError>>,
    ) -> Result<R, CallError> {
        self.call_with_deadline(op, self.config.call_timeout, f)
            .await
    }

    /// Whether the component exports the optional `power` interface.
    pub fn has_power(&self) -> bool {
        self.power.is_some()
    }

    /// Run one call of the optional `power` export in a fresh store under the
    /// provider's deadline; `None` when the component does not export it.
    pub async fn call_power<R>(
        &self,
        op: &'static str,
        f: impl AsyncFnOnce(
            &PowerExport,
            &mut Store<HostState>,
        )
            -> wasmtime::Result<Result<R, crate::runtime::bindings::wit::ProviderError>>,
    ) -> Option<Result<R, CallError>> {
        let pre = self.power.as_ref()?;
        Some(
            self.run_call(
                op,
                self.config.call_timeout,
                async |store: &mut Store<HostState>| pre.instantiate_async(store).await,
                f,
            )
            .await,
        )
    }

    /// Check an answer of `op` against the operator's caps on returned data
    /// (`super::returned`).
    pub fn check_returned(
        &self,
        op: &'static str,
        check: impl FnOnce(&super::returned::ReturnLimits) -> Result<(), super::returned::Excess>,
    ) -> Result<(), CallError> {
        check(&self.config.returned).map_err(|e| {
            tracing::warn!(provider = %self.name, op, "answer refused: {} (cap: {})", e.what, e.cap);
            CallError::ReturnedTooMuch {
                provider: self.name.clone(),
                op,
                what: e.what,
                cap: e.cap,
                setting: e.setting,
            }
        })
    }

    /// The outbound hooks a call's store gets, for benchmarks that drive
    /// the hook without a guest.
    #[doc(hidden)]
    pub fn outbound_hooks(&self) -> OutboundHttp {
        OutboundHttp::new(self.outbound.clone())
    }

    /// A call of the `provider` export under `deadline`.
    async fn call_with_deadline<R>(
        &self,
        op: &'static str,
        deadline: Duration,
        f: impl AsyncFnOnce(
            &Exports<'_>,
            &mut Store<HostState>,
        )
            -> wasmtime::Result<Result<R, crate::runtime::bindings::wit::ProviderError>>,
    ) -> Result<R, CallError> {
        let (pre, exports) = (&self.pre, &self.exports);
        self.run_call(
            op,
            deadline,
            async |store: &mut Store<HostState>| {
                let instance = pre.instantiate_async(store).await?;
                Ok(Exports::new(instance, exports))
            },
            f,
        )
        .await
    }

    /// [`LoadedProvider::run_sandboxed`], measured (see [`crate::telemetry`]).
    async fn run_call<B, R>(
        &self,
        op: &'static str,
        deadline: Duration,
        instantiate: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<B>,
        f: impl AsyncFnOnce(
            &B,
            &mut Store<HostState>,
        )
            -> wasmtime::Result<Result<R, crate::runtime::bindings::wit::ProviderError>>,
    ) -> Result<R, CallError> {
        let scope = crate::telemetry::CallScope::start(&self.name, op);
        let result = self.run_sandboxed(op, deadline, instantiate, f).await;
        scope.finish(&result);
        result
    }

    /// One call in a fresh store: `instantiate` makes the bindings `f` calls.
    async fn run_sandboxed<B, R>(
        &self,
        op: &'static str,
        deadline: Duration,
        instantiate: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<B>,
        f: impl AsyncFnOnce(
            &B,
            &mut Store<HostState>,
        )
            -> wasmtime::Result<Result<R, crate::runtime::bindings::wit::ProviderError>>,
    ) -> Result<R, CallError> {
        let state = HostState::new(
            self.env.clone(),
            OutboundHttp::new(self.outbound.clone()),
            self.config.memory_bytes,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let end = Instant::now() + deadline;
        store.set_epoch_deadline(1);
        // Yield to the executor every tick; interrupt once the wall clock passes the deadline.
        store.epoch_deadline_callback(move |_| {
            Ok(if Instant::now() >= end {
                UpdateDeadline::Interrupt
            } else {
                UpdateDeadline::Yield(1)
            })
        });
        let work = async {
            let instance = instantiate(&mut store).await?;
            f(&instance, &mut store).await
        };
        // The epoch stops guest code; the timeout stops a guest parked in a host call.
        let outcome = tokio::time::timeout(deadline + Duration::from_millis(50), work).await;
        let deadline_err = || CallError::DeadlineExceeded {
            provider: self.name.clone(),
            op,
            deadline_ms: deadline.as_millis() as u64,
        };
        let state = store.data();
        if state.host_memory_exceeded() {
            return Err(CallError::HostMemoryExceeded {
                provider: self.name.clone(),
                op,
                budget_mib: state.host_memory().0 >> 20,
            });
        }
        if is_table_full(&outcome) {
            return Err(CallError::TooManyHandles {
                provider: self.name.clone(),
                op,
                max: crate::capabilities::MAX_HANDLES,
            });
        }
        match outcome {
            Err(_) => Err(deadline_err()),
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(e))) => Err(CallError::Provider(e)),
            Ok(Err(trap)) => {
                let state = store.data();
                if state.limiter.exceeded() {
                    return Err(CallError::MemoryExceeded {
                        provider: self.name.clone(),
                        op,
                        cap_mib: state.limiter.max_bytes() >> 20,
                    });
                }
                if trap.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
                    return Err(deadline_err());
                }
                let stderr = state.stderr_text();
                let mut message = format!("{trap:#}");
                if !stderr.is_empty() {
                    message.push_str(&format!("; guest stderr: {stderr}"));
                }
                tracing::warn!(provider = %self.name, op, "call trapped: {message}");
                Err(CallError::Trapped {
                    provider: self.name.clone(),
                    op,
                    message,
                })
            }
        }
    }
}

/// Whether a call trapped because its resource table was full: it held as
/// many wasi handles as a call may.
fn is_table_full<T>(outcome: &Result<wasmtime::Result<T>, tokio::time::error::Elapsed>) -> bool {
    match outcome {
        Ok(Err(trap)) => trap.chain().any(|e| {
            matches!(
                e.downcast_ref::<wasmtime::component::ResourceTableError>(),
                Some(wasmtime::component::ResourceTableError::Full)
            )
        }),
        _ => false,
    }
}
