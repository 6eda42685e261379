//! The seam between the WIT `ssh` import and the native SSH implementation.

use std::future::Future;
use std::pin::Pin;

use crate::bindings::wit::{ExecOutput, ExecRequest, HostEntry, SshError};

/// A boxed future, as the bridge returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the `ssh` import needs from the native SSH layer.
pub trait SshBackend: Send + Sync {
    /// Configured hosts with capacity and usage.
    fn hosts(&self) -> BoxFuture<'_, Vec<HostEntry>>;
    /// Run a command.
    fn exec(&self, request: ExecRequest) -> BoxFuture<'_, Result<ExecOutput, SshError>>;
    /// Write a file atomically.
    fn upload(
        &self,
        host: String,
        path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> BoxFuture<'_, Result<(), SshError>>;
}

fn wit_resources(r: crate::ssh::Resources) -> crate::bindings::wit::Resources {
    crate::bindings::wit::Resources {
        vcpus: r.vcpus,
        memory_gib: r.memory_gib,
        storage_gib: r.storage_gib,
        gpus: r.gpus,
        gpu_model: r.gpu_model,
    }
}

fn wit_error(e: crate::ssh::SshError) -> SshError {
    use crate::ssh::SshError as N;
    match e {
        N::UnknownHost(m) => SshError::UnknownHost(m),
        N::HostKeyRejected(m) => SshError::HostKeyRejected(m),
        N::Unauthorized(m) => SshError::Unauthorized(m),
        N::Timeout(m) => SshError::Timeout(m),
        N::ConnectionFailed(m) => SshError::ConnectionFailed(m),
        N::Invalid(m) => SshError::Invalid(m),
        N::Other(m) => SshError::Other(m),
    }
}

impl SshBackend for crate::ssh::SshPool {
    fn hosts(&self) -> BoxFuture<'_, Vec<HostEntry>> {
        Box::pin(async move {
            crate::ssh::SshPool::hosts(self)
                .into_iter()
                .map(|h| HostEntry {
                    alias: h.alias,
                    region: h.region,
                    hourly_usd: h.hourly_usd,
                    capacity: h.capacity.map(wit_resources),
                    in_use: wit_resources(h.in_use),
                })
                .collect()
        })
    }

    fn exec(&self, r: ExecRequest) -> BoxFuture<'_, Result<ExecOutput, SshError>> {
        Box::pin(async move {
            let timeout = r
                .timeout_ms
                .map(|ms| std::time::Duration::from_millis(u64::from(ms)));
            let o = crate::ssh::SshPool::exec(self, &r.host, &r.argv, r.stdin.as_deref(), timeout)
                .await
                .map_err(wit_error)?;
            Ok(ExecOutput {
                exit_code: o.exit_code,
                stdout: o.stdout,
                stderr: o.stderr,
                stdout_truncated: o.stdout_truncated,
                stderr_truncated: o.stderr_truncated,
                duration_ms: o.duration_ms,
            })
        })
    }

    fn upload(
        &self,
        host: String,
        path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> BoxFuture<'_, Result<(), SshError>> {
        Box::pin(async move {
            crate::ssh::SshPool::upload(self, &host, &path, &contents, mode)
                .await
                .map_err(wit_error)
        })
    }
}
