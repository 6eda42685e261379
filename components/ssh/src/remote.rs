//! Thin helpers over the host `ssh` import: run argv lists and small shell
//! scripts (values always passed as positional arguments, never pasted into
//! script text), map SSH failures onto the provider `error`.

use crate::bindings::blueprint::provider::ssh::{self, ExecOutput, ExecRequest, SshError};
use provider_sdk::types::Error;

/// Runs `argv` on `host`; a non-zero exit is returned, not an error.
pub fn run(
    host: &str,
    argv: &[&str],
    stdin: Option<&[u8]>,
    timeout_ms: Option<u32>,
) -> Result<ExecOutput, Error> {
    ssh::exec(&ExecRequest {
        host: host.to_string(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        stdin: stdin.map(<[u8]>::to_vec),
        timeout_ms,
    })
    .map_err(|e| ssh_error(host, e))
}

/// Runs `sh -c script bpr args...`: inside the script the values are `$1`...
pub fn sh(host: &str, script: &str, args: &[&str]) -> Result<ExecOutput, Error> {
    let mut argv = vec!["sh", "-c", script, "bpr"];
    argv.extend_from_slice(args);
    run(host, &argv, None, None)
}

/// Like [`sh`] but a non-zero exit is an `other` error naming `what`.
pub fn sh_ok(host: &str, what: &str, script: &str, args: &[&str]) -> Result<String, Error> {
    let out = sh(host, script, args)?;
    if out.exit_code != Some(0) {
        return Err(Error::Other(format!(
            "{what} on ssh host `{host}` failed (exit {:?}): {}",
            out.exit_code,
            text(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes a file through the host's atomic upload.
pub fn upload(host: &str, path: &str, contents: &[u8], mode: u32) -> Result<(), Error> {
    ssh::upload(host, path, contents, mode).map_err(|e| ssh_error(host, e))
}

/// Trimmed lossy text of command output, for messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Maps the capability's error onto the provider error an orchestrator acts on.
pub fn ssh_error(host: &str, e: SshError) -> Error {
    match e {
        SshError::UnknownHost(m) => Error::InvalidRequest(format!(
            "instance type `{host}` is not a configured ssh host: {m}"
        )),
        SshError::HostKeyRejected(m) | SshError::Unauthorized(m) => Error::Unauthorized(m),
        // Nothing ran on a host that cannot be reached: its capacity is not
        // available now, and the orchestrator moves on to the next candidate.
        SshError::ConnectionFailed(m) => {
            Error::CapacityUnavailable(format!("ssh host `{host}` cannot be reached: {m}"))
        }
        SshError::Timeout(m) => Error::Transient(m),
        SshError::Invalid(m) => Error::InvalidRequest(m),
        SshError::Other(m) => Error::Other(m),
    }
}

/// The login user's home directory on `host` (absolute).
pub fn home(host: &str) -> Result<String, Error> {
    let h = sh_ok(host, "reading $HOME", "printf %s \"$HOME\"", &[])?;
    if !h.starts_with('/') {
        return Err(Error::Other(format!(
            "ssh host `{host}`: $HOME is `{h}`, not an absolute path"
        )));
    }
    Ok(h.trim_end_matches('/').to_string())
}

/// POSIX single-quote quoting (for scripts the component writes to files).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
