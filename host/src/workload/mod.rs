//! The workload on a VM: cloud-init user data built by the host from the
//! blueprint source. Cloud-init runs a user-data document that starts with
//! `#!` as a shell script on first boot; every value from the request is
//! shell-quoted (and, inside the systemd unit, systemd-quoted), and values
//! that cannot be quoted safely (newlines, NUL) are refused.

use serde::{Deserialize, Serialize};

/// A port the workload listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// Port inside the container, or that the binary listens on.
    pub container_port: u16,
    /// Port on the VM; default: the same as `container_port`.
    #[serde(default)]
    pub host_port: Option<u16>,
    /// Publish on all interfaces (true, default) or on 127.0.0.1 only.
    #[serde(default = "yes")]
    pub public: bool,
}

fn yes() -> bool {
    true
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum WorkloadSource {
    /// An OCI container image.
    Container {
        /// Image reference (`ghcr.io/org/app:1.2`, optionally `@sha256:...`).
        image: String,
        /// Arguments to the entrypoint.
        #[serde(default)]
        args: Vec<String>,
        /// Environment.
        #[serde(default)]
        env: std::collections::BTreeMap<String, String>,
        /// Published ports.
        #[serde(default)]
        ports: Vec<PortSpec>,
    },
    /// A native executable, downloaded and verified before it runs.
    Native {
        /// HTTP(S) URL of the executable.
        url: String,
        /// Required lower-case hex sha256 of the downloaded bytes.
        sha256: String,
        /// Arguments.
        #[serde(default)]
        args: Vec<String>,
        /// Environment.
        #[serde(default)]
        env: std::collections::BTreeMap<String, String>,
        /// Ports it listens on (for the firewall and the health check).
        #[serde(default)]
        ports: Vec<PortSpec>,
    },
    /// A native executable inside a release archive (`.tar.gz`, `.tgz`,
    /// `.tar.xz` or `.tar`), as Blueprint's `GithubBinary` artifact names it.
    ///
    /// The archive is downloaded and its sha256 checked *before* anything is
    /// unpacked; then exactly one member whose file name is `binary` (at any
    /// depth, relative, without `..`) is extracted to standard output (so no
    /// path from the archive is ever written) and installed like a native
    /// executable. Runs on VMs (cloud-init); the operator's SSH hosts take
    /// plain executables only.
    Archive {
        /// HTTP(S) URL of the archive.
        url: String,
        /// Required lower-case hex sha256 of the archive's bytes.
        sha256: String,
        /// File name of the executable inside the archive.
        binary: String,
        /// Arguments.
        #[serde(default)]
        args: Vec<String>,
        /// Environment.
        #[serde(default)]
        env: std::collections::BTreeMap<String, String>,
        /// Ports it listens on (for the firewall and the health check).
        #[serde(default)]
        ports: Vec<PortSpec>,
    },
}

/// A workload with its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// What to run.
    pub source: WorkloadSource,
    /// CPU limit in cores.
    #[serde(default)]
    pub cpu_limit: Option<f32>,
    /// Memory limit in MiB.
    #[serde(default)]
    pub memory_limit_mib: Option<u32>,
}

impl WorkloadSpec {
    /// The ports the workload publishes.
    pub fn ports(&self) -> &[PortSpec] {
        match &self.source {
            WorkloadSource::Container { ports, .. }
            | WorkloadSource::Native { ports, .. }
            | WorkloadSource::Archive { ports, .. } => ports,
        }
    }
}

/// A workload that cannot be turned into user data. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workload.{field}: {message}")]
pub struct WorkloadError {
    /// The offending field (`source.image`, `source.env[2]`...).
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> WorkloadError {
    WorkloadError {
        field: field.into(),
        message: message.into(),
    }
}

/// Quote `s` for a POSIX shell: one single-quoted word, byte-exact.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Quote `s` as one word of a systemd `ExecStart=`/`Environment=` line:
/// double quotes with C escapes, `%` and `$` doubled so systemd expands nothing.
pub fn systemd_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn check_text(field: &str, v: &str) -> Result<(), WorkloadError> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(bad(
            field,
            "must be one line (no newline, carriage return or NUL)",
        ));
    }
    Ok(())
}

fn check_env(
    field: &str,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<(), WorkloadError> {
    for (i, (k, v)) in env.iter().enumerate() {
        let name_ok = !k.is_empty()
            && !k.starts_with(|c: char| c.is_ascii_digit())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name_ok {
            return Err(bad(
                format!("{field}[{i}]"),
                format!("{k:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"),
            ));
        }
        check_text(&format!("{field}[{i}]"), v)?;
    }
    Ok(())
}

fn check_common(w: &WorkloadSpec, name: &str) -> Result<(), WorkloadError> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(bad(
            "name",
            format!("{name:?} must be [a-z0-9-] (it names the unit and the container)"),
        ));
    }
    if let Some(c) = w.cpu_limit
        && !(c.is_finite() && c > 0.0 && c <= 1024.0)
    {
        return Err(bad(
            "cpu_limit",
            format!("{c} is not a CPU count in (0, 1024]"),
        ));
    }
    if w.memory_limit_mib == Some(0) {
        return Err(bad("memory_limit_mib", "must be at least 1 MiB"));
    }
    for (i, p) in w.ports().iter().enumerate() {
        if p.container_port == 0 || p.host_port == Some(0) {
            return Err(bad(format!("source.ports[{i}]"), "port 0 is not a port"));
        }
    }
    Ok(())
}

/// Check a workload without building anything (for request validation).
pub fn validate(w: &WorkloadSpec) -> Result<(), WorkloadError> {
    cloud_init(w, "check").map(|_| ())
}

/// The cloud-init user data (a shell script) that runs `w` on a fresh VM
/// under the unit/container name `bpr-<name>`.
pub fn cloud_init(w: &WorkloadSpec, name: &str) -> Result<String, WorkloadError> {
    check_common(w, name)?;
    let unit = format!("bpr-{name}");
    let mut s = String::new();
    s.push_str("#!/bin/bash\n");
    s.push_str(&format!(
        "# Blueprint workload {unit}, generated by bpr. Every request value is quoted.\n"
    ));
    s.push_str("set -euo pipefail\n");
    match &w.source {
        WorkloadSource::Container {
            image,
            args,
            env,
            ports,
        } => {
            let image_ok = !image.trim().is_empty()
                && !image.starts_with('-')
                && !image.contains(char::is_whitespace);
            if !image_ok {
                return Err(bad(
                    "source.image",
                    format!("{image:?} is not an image reference (e.g. ghcr.io/org/app:1.2)"),
                ));
            }
            for (i, a) in args.iter().enumerate() {
                check_text(&format!("source.args[{i}]"), a)?;
            }
            check_env("source.env", env)?;
            s.push_str(CONTAINER_RUNTIME);
            s.push_str(&format!("docker pull {}\n", shell_quote(image)));
            s.push_str(&format!(
                "docker rm -f {} >/dev/null 2>&1 || true\n",
                shell_quote(&unit)
            ));
            let mut run = vec![
                "docker run -d".to_string(),
                format!("--name {}", shell_quote(&unit)),
                "--restart always".into(),
                "--cap-drop ALL".into(),
                "--security-opt no-new-privileges".into(),
                "--read-only".into(),
                "--tmpfs /tmp".into(),
            ];
            if let Some(c) = w.cpu_limit {
                run.push(format!("--cpus {}", shell_quote(&format!("{c}"))));
            }
            if let Some(m) = w.memory_limit_mib {
                run.push(format!("--memory {}", shell_quote(&format!("{m}m"))));
            }
            for p in ports {
                let bind = if p.public { "0.0.0.0" } else { "127.0.0.1" };
                let host = p.host_port.unwrap_or(p.container_port);
                run.push(format!(
                    "-p {}",
                    shell_quote(&format!("{bind}:{host}:{}", p.container_port))
                ));
            }
            for (k, v) in env {
                run.push(format!("-e {}", shell_quote(&format!("{k}={v}"))));
            }
            run.push("--".into());
            run.push(shell_quote(image));
            run.extend(args.iter().map(|a| shell_quote(a)));
            s.push_str(&run.join(" \\\n  "));
            s.push('\n');
        }
        WorkloadSource::Native {
            url,
            sha256,
            args,
            env,
            ports: _,
        } => {
            check_download(url, sha256)?;
            let bin = format!("/opt/bpr/{unit}");
            download_verified(&mut s, url, sha256);
            s.push_str(&format!("install -m 0755 \"$tmp\" {}\n", shell_quote(&bin)));
            native_unit(&mut s, w, &unit, &bin, args, env)?;
        }
        WorkloadSource::Archive {
            url,
            sha256,
            binary,
            args,
            env,
            ports: _,
        } => {
            check_download(url, sha256)?;
            let archive_ok = [".tar.gz", ".tgz", ".tar.xz", ".tar"]
                .iter()
                .any(|ext| url.split(['?', '#']).next().unwrap_or("").ends_with(ext));
            if !archive_ok {
                return Err(bad(
                    "source.url",
                    format!("{url:?} must name a .tar.gz, .tgz, .tar.xz or .tar archive"),
                ));
            }
            let binary_ok = !binary.is_empty()
                && binary != "."
                && binary != ".."
                && binary
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !binary_ok {
                return Err(bad(
                    "source.binary",
                    format!("{binary:?} must be a file name of [A-Za-z0-9._-]"),
                ));
            }
            let bin = format!("/opt/bpr/{unit}");
            download_verified(&mut s, url, sha256);
            s.push_str(
                "# Exactly one member named like the binary, at a relative path without `..`;\n",
            );
            s.push_str("# extracted to stdout, so no path from the archive is ever written.\n");
            s.push_str(&format!(
                "member=\"$(tar -tf \"$tmp\" | awk -F/ -v b={b} '$NF == b')\"\n",
                b = shell_quote(binary)
            ));
            s.push_str(&format!(
                "n=\"$(printf '%s\\n' \"$member\" | grep -c . || true)\"\n\
                 if [ \"$n\" != 1 ]; then echo \"bpr: the archive must hold exactly one file named \"{b}\", found $n\" >&2; exit 1; fi\n",
                b = shell_quote(binary)
            ));
            s.push_str(
                "case \"$member\" in /*|../*|*/../*) echo \"bpr: unsafe path in the archive: $member\" >&2; exit 1;; esac\n",
            );
            s.push_str("tar -xOf \"$tmp\" -- \"$member\" > \"$tmp.bin\"\n");
            s.push_str("trap 'rm -f \"$tmp\" \"$tmp.bin\"' EXIT\n");
            s.push_str(&format!(
                "install -m 0755 \"$tmp.bin\" {}\n",
                shell_quote(&bin)
            ));
            native_unit(&mut s, w, &unit, &bin, args, env)?;
        }
    }
    Ok(s)
}

/// A download URL and the sha256 it must have.
fn check_download(url: &str, sha256: &str) -> Result<(), WorkloadError> {
    let url_ok =
        (url.starts_with("https://") || url.starts_with("http://")) && url::Url::parse(url).is_ok();
    if !url_ok {
        return Err(bad("source.url", format!("{url:?} is not an http(s) URL")));
    }
    check_text("source.url", url)?;
    if sha256.len() != 64
        || !sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad(
            "source.sha256",
            "must be 64 lower-case hex digits (the sha256 of the download)",
        ));
    }
    Ok(())
}

/// Downloads `url` into `$tmp` and stops the script unless its sha256 is `sha256`.
fn download_verified(s: &mut String, url: &str, sha256: &str) {
    s.push_str("install -d -m 0755 /opt/bpr\n");
    s.push_str("tmp=\"$(mktemp /opt/bpr/.download.XXXXXX)\"\n");
    s.push_str("trap 'rm -f \"$tmp\"' EXIT\n");
    s.push_str(&format!(
        "curl -fsSL --retry 5 --proto '=https,http' -o \"$tmp\" {u} || wget -q -O \"$tmp\" {u}\n",
        u = shell_quote(url)
    ));
    s.push_str("# Verified before it is unpacked, installed or run: a mismatch stops here.\n");
    s.push_str("actual=\"$(sha256sum \"$tmp\" | cut -d' ' -f1)\"\n");
    s.push_str(&format!(
        "if [ \"$actual\" != {want} ]; then echo \"bpr: sha256 mismatch: got $actual, want \"{want} >&2; exit 1; fi\n",
        want = shell_quote(sha256)
    ));
}

/// The systemd unit that runs the installed executable `bin`, hardened.
fn native_unit(
    s: &mut String,
    w: &WorkloadSpec,
    unit: &str,
    bin: &str,
    args: &[String],
    env: &std::collections::BTreeMap<String, String>,
) -> Result<(), WorkloadError> {
    for (i, a) in args.iter().enumerate() {
        check_text(&format!("source.args[{i}]"), a)?;
    }
    check_env("source.env", env)?;
    let mut exec = vec![systemd_quote(bin)];
    exec.extend(args.iter().map(|a| systemd_quote(a)));
    let mut unit_text = format!(
        "[Unit]\nDescription=Blueprint workload {unit}\nAfter=network-online.target\nWants=network-online.target\n\n\
         [Service]\nExecStart={}\nRestart=always\nRestartSec=2\nDynamicUser=yes\nNoNewPrivileges=yes\n\
         ProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\nCapabilityBoundingSet=\n",
        exec.join(" ")
    );
    if let Some(c) = w.cpu_limit {
        unit_text.push_str(&format!("CPUQuota={}%\n", (c * 100.0).round() as u64));
    }
    if let Some(m) = w.memory_limit_mib {
        unit_text.push_str(&format!("MemoryMax={m}M\n"));
    }
    for (k, v) in env {
        unit_text.push_str(&format!(
            "Environment={}\n",
            systemd_quote(&format!("{k}={v}"))
        ));
    }
    unit_text.push_str("\n[Install]\nWantedBy=multi-user.target\n");
    // Quoted delimiter: the shell expands nothing inside; values have no newlines.
    s.push_str(&format!(
        "cat > {} <<'BPR_UNIT_EOF'\n{unit_text}BPR_UNIT_EOF\n",
        shell_quote(&format!("/etc/systemd/system/{unit}.service"))
    ));
    s.push_str("systemctl daemon-reload\n");
    s.push_str(&format!(
        "systemctl enable --now {}\n",
        shell_quote(&format!("{unit}.service"))
    ));
    Ok(())
}

/// Installs Docker when no container runtime is present.
const CONTAINER_RUNTIME: &str = r#"if ! command -v docker >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    apt-get update -y && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io
  elif command -v dnf >/dev/null 2>&1; then
    dnf install -y docker
  elif command -v yum >/dev/null 2>&1; then
    yum install -y docker
  else
    echo "bpr: no container runtime and no known package manager" >&2; exit 1
  fi
fi
systemctl enable --now docker 2>/dev/null || service docker start
"#;

#[cfg(test)]
mod tests;
