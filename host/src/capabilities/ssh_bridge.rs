//! The seam between the WIT `ssh` import and the native SSH implementation.

use std::future::Future;
use std::pin::Pin;

use crate::runtime::bindings::wit::{ExecOutput, ExecRequest, HostEntry, SshError};

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
