//! Host implementations of the `blueprint:provider` imports: `types` (no
//! functions), `log`, `settings` and `ssh`. Each returns
//! `wasmtime::Result<...>`: an `Err` is a host bug and traps; expected
//! failures reach the guest as WIT values.

use super::{ProviderImports, guest_log};
use crate::bindings::blueprint::provider::{log, settings, ssh, types};
use crate::bindings::wit::{ExecOutput, ExecRequest, HostEntry, LogLevel, SshError};

impl types::Host for ProviderImports {}

impl log::Host for ProviderImports {
    /// Logs one record under target `bpr::provider`, escaped and capped
    /// ([`crate::capabilities::guest_log`]); past the call's rate limit the
    /// record is dropped and counted.
    fn log(
        &mut self,
        level: LogLevel,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        if !self.log.admit() {
            return Ok(());
        }
        let record = guest_log::render(&message, &fields);
        let (provider, message, fields) = (self.env.name.as_str(), record.message, record.fields);
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "bpr::provider", provider, %fields, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "bpr::provider", provider, %fields, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "bpr::provider", provider, %fields, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "bpr::provider", provider, %fields, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "bpr::provider", provider, %fields, "{message}")
            }
        }
        Ok(())
    }
}

impl settings::Host for ProviderImports {
    fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.env.settings.get(&key).cloned())
    }

    fn all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self
            .env
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl ssh::Host for ProviderImports {
    async fn hosts(&mut self) -> wasmtime::Result<Vec<HostEntry>> {
        Ok(match &self.env.ssh {
            Some(b) => b.hosts().await,
            None => Vec::new(),
        })
    }

    async fn exec(
        &mut self,
        request: ExecRequest,
    ) -> wasmtime::Result<Result<ExecOutput, SshError>> {
        Ok(match &self.env.ssh {
            Some(b) => b.exec(request).await,
            None => Err(SshError::UnknownHost(format!(
                "{}: no SSH hosts are configured for provider {}",
                request.host, self.env.name
            ))),
        })
    }

    async fn upload(
        &mut self,
        host: String,
        path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> wasmtime::Result<Result<(), SshError>> {
        Ok(match &self.env.ssh {
            Some(b) => b.upload(host, path, contents, mode).await,
            None => Err(SshError::UnknownHost(format!(
                "{host}: no SSH hosts are configured for provider {}",
                self.env.name
            ))),
        })
    }
}
