//! Host implementations of the `blueprint:provider` imports: `types` (no
//! functions), `log`, `settings` and `ssh`. Each returns
//! `wasmtime::Result<...>`: an `Err` is a host bug and traps; expected
//! failures reach the guest as WIT values.

use super::ProviderImports;
use crate::bindings::blueprint::provider::{log, settings, ssh, types};
use crate::bindings::wit::{ExecOutput, ExecRequest, HostEntry, LogLevel, SshError};

/// Longest log message kept.
const MAX_LOG_MESSAGE: usize = 4096;

impl types::Host for ProviderImports {}

impl log::Host for ProviderImports {
    fn log(
        &mut self,
        level: LogLevel,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        let mut message = message;
        if message.len() > MAX_LOG_MESSAGE {
            let mut cut = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let fields = fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let provider = self.env.name.as_str();
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
