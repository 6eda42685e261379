//! Text of the files a native deployment installs: environment file, systemd
//! unit, supervisor script; and the container `run` argv. Pure functions.

use crate::remote::shell_quote;
use provider_sdk::types::{ContainerWorkload, Error, Label};

/// Checks an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn check_env_key(k: &str) -> Result<(), Error> {
    let ok = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "environment variable name `{k}` is invalid: use [A-Za-z_][A-Za-z0-9_]*"
        )))
    }
}

/// Environment file read both by systemd (`EnvironmentFile=`) and by the
/// supervisor (`. file` in sh): `KEY="value"` with `\ " $ `` ` escaped, which
/// both parsers read back verbatim.
pub fn native_env_file(env: &[(String, String)]) -> Result<String, Error> {
    let mut s = String::new();
    for (k, v) in env {
        check_env_key(k)?;
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            if matches!(c, '\\' | '"' | '$' | '`') {
                s.push('\\');
            }
            s.push(c);
        }
        s.push_str("\"\n");
    }
    Ok(s)
}

/// Docker/podman `--env-file` text: literal `KEY=VALUE` lines, no quoting,
/// so a value cannot hold a newline.
pub fn container_env_file(env: &[(String, String)]) -> Result<String, Error> {
    let mut s = String::new();
    for (k, v) in env {
        check_env_key(k)?;
        if v.contains('\n') || v.contains('\r') {
            return Err(Error::InvalidRequest(format!(
                "environment variable `{k}`: container env values cannot contain line breaks"
            )));
        }
        s.push_str(&format!("{k}={v}\n"));
    }
    Ok(s)
}

/// One argument of a systemd `ExecStart=` line: double-quoted with C escapes,
/// `%` doubled (specifiers) and `$` doubled (variable expansion).
fn systemd_arg(a: &str) -> String {
    let mut s = String::from("\"");
    for c in a.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '%' => s.push_str("%%"),
            '$' => s.push_str("$$"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// A path in a systemd setting that takes the rest of the line (no quoting
/// allowed there): only `%` needs escaping.
fn systemd_path(p: &str) -> String {
    p.replace('%', "%%")
}

/// Limits and paths of a native deployment.
pub struct NativeLayout<'a> {
    /// Deployment id.
    pub deployment_id: &'a str,
    /// Absolute deployment directory.
    pub dir: &'a str,
    /// Program arguments.
    pub args: &'a [String],
    /// CPU limit in cores.
    pub cpu_limit: Option<f32>,
    /// Memory limit in MiB.
    pub memory_limit_mib: Option<u32>,
    /// True for a system unit (root), false for a `--user` unit.
    pub system: bool,
}

/// The systemd unit of a native deployment.
pub fn systemd_unit(l: &NativeLayout<'_>) -> String {
    let mut exec = systemd_arg(&format!("{}/bin", l.dir));
    for a in l.args {
        exec.push(' ');
        exec.push_str(&systemd_arg(a));
    }
    let mut u = format!(
        "# Installed by the bpr ssh provider for deployment {id}; `bpr` removes it.\n[Unit]\nDescription=bpr deployment {id}\n",
        id = l.deployment_id
    );
    if l.system {
        u.push_str("After=network-online.target\nWants=network-online.target\n");
    }
    u.push_str("\n[Service]\nType=simple\n");
    u.push_str(&format!("ExecStart={exec}\n"));
    let dir = systemd_path(l.dir);
    u.push_str(&format!(
        "EnvironmentFile={dir}/env\nWorkingDirectory={dir}\n"
    ));
    u.push_str("Restart=always\nRestartSec=2\nNoNewPrivileges=yes\n");
    if let Some(c) = l.cpu_limit {
        u.push_str(&format!(
            "CPUQuota={}%\n",
            (c * 100.0).round().max(1.0) as u32
        ));
    }
    if let Some(m) = l.memory_limit_mib {
        u.push_str(&format!("MemoryMax={m}M\n"));
    }
    u.push_str(&format!(
        "StandardOutput=append:{dir}/log\nStandardError=append:{dir}/log\n"
    ));
    u.push_str(&format!(
        "\n[Install]\nWantedBy={}\n",
        if l.system {
            "multi-user.target"
        } else {
            "default.target"
        }
    ));
    u
}

/// The supervisor script of a native deployment without systemd: restarts
/// the binary 2 s after it exits, records both pids, stops the binary when
/// it gets SIGTERM. Memory is limited with `ulimit -v` when asked (the CPU
/// limit needs cgroups and is not applied on this path).
pub fn supervisor_script(l: &NativeLayout<'_>) -> String {
    let d = shell_quote(l.dir);
    let mut cmd = String::from("\"$d/bin\"");
    for a in l.args {
        cmd.push(' ');
        cmd.push_str(&shell_quote(a));
    }
    let ulimit = l
        .memory_limit_mib
        .map(|m| format!("ulimit -v {}; ", u64::from(m) * 1024))
        .unwrap_or_default();
    format!(
        "#!/bin/sh\n# bpr supervisor for deployment {id}: restarts the binary when it exits.\nd={d}\necho $$ > \"$d/supervisor.pid\"\nchild=\nstop() {{ [ -n \"$child\" ] && kill \"$child\" 2>/dev/null; rm -f \"$d/pid\"; exit 0; }}\ntrap stop TERM INT HUP\nwhile [ ! -f \"$d/stop\" ]; do\n  ( set -a; . \"$d/env\"; set +a; {ulimit}exec {cmd} ) >>\"$d/log\" 2>&1 </dev/null &\n  child=$!\n  echo \"$child\" > \"$d/pid\"\n  wait \"$child\"\n  sleep 2\ndone\n",
        id = l.deployment_id
    )
}

/// Settings of the container path.
pub struct ContainerOpts<'a> {
    /// `docker` or `podman`.
    pub engine: &'a str,
    /// Container name.
    pub name: &'a str,
    /// Absolute path of the env file (always passed, maybe empty).
    pub env_file: &'a str,
    /// Labels, `bpr-deployment` included.
    pub labels: &'a [Label],
    /// CPU limit in cores.
    pub cpu_limit: Option<f32>,
    /// Memory limit in MiB.
    pub memory_limit_mib: Option<u32>,
    /// Read-only root filesystem with a tmpfs `/tmp`.
    pub read_only: bool,
}

/// The exact argv of `docker run` / `podman run` for a container workload.
pub fn container_run_argv(
    o: &ContainerOpts<'_>,
    w: &ContainerWorkload,
) -> Result<Vec<String>, Error> {
    if w.image.is_empty() || w.image.starts_with('-') || w.image.chars().any(char::is_whitespace) {
        return Err(Error::InvalidRequest(format!(
            "container image `{}` is not an image reference",
            w.image
        )));
    }
    let mut a: Vec<String> = vec![
        o.engine.into(),
        "run".into(),
        "-d".into(),
        "--name".into(),
        o.name.into(),
    ];
    for (k, v) in o.labels {
        a.push("--label".into());
        a.push(format!("{k}={v}"));
    }
    a.extend(
        [
            "--restart",
            "unless-stopped",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ]
        .map(String::from),
    );
    if o.read_only {
        a.extend(["--read-only", "--tmpfs", "/tmp"].map(String::from));
    }
    if let Some(c) = o.cpu_limit {
        a.push("--cpus".into());
        a.push(format!("{c}"));
    }
    if let Some(m) = o.memory_limit_mib {
        a.push("--memory".into());
        a.push(format!("{m}m"));
    }
    a.push("--env-file".into());
    a.push(o.env_file.into());
    for p in &w.ports {
        let bind = if p.public { "0.0.0.0" } else { "127.0.0.1" };
        a.push("-p".into());
        a.push(format!(
            "{bind}:{}:{}",
            p.host_port.unwrap_or(p.container_port),
            p.container_port
        ));
    }
    a.push(w.image.clone());
    a.extend(w.args.iter().cloned());
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_sdk::types::PortMapping;
    use std::process::Command;

    fn layout<'a>(dir: &'a str, args: &'a [String], system: bool) -> NativeLayout<'a> {
        NativeLayout {
            deployment_id: "d1",
            dir,
            args,
            cpu_limit: Some(0.5),
            memory_limit_mib: Some(128),
            system,
        }
    }

    fn tricky_args() -> Vec<String> {
        [
            "--port",
            "8080",
            "a b",
            "it's",
            "$(id)",
            "100%",
            "q\"x",
            "back\\slash",
            "line\nbreak",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn systemd_unit_passes_systemd_analyze_verify() {
        // Needs Debian's `systemd` package (systemd-analyze); CI installs it.
        let tmp = std::env::temp_dir().join(format!("bpr-unit-{}", std::process::id()));
        let dir = tmp.join("dep 1");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy("/bin/true", dir.join("bin")).unwrap();
        std::fs::write(dir.join("env"), "").unwrap();
        let args = tricky_args();
        let unit = systemd_unit(&layout(dir.to_str().unwrap(), &args, true));
        let path = tmp.join("bpr-d1.service");
        std::fs::write(&path, &unit).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .expect("systemd-analyze is installed");
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{unit}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn env_file_reads_back_verbatim_in_sh() {
        let env: Vec<(String, String)> = vec![
            ("A".into(), "plain".into()),
            ("B".into(), "it's \"q\" $HOME `id` \\n \\".into()),
            ("C".into(), "two\nlines".into()),
        ];
        let file = native_env_file(&env).unwrap();
        let out = Command::new("sh")
            .arg("-c")
            .arg("set -a; eval \"$1\"; printf '%s\\0' \"$A\" \"$B\" \"$C\"")
            .arg("sh")
            .arg(&file)
            .output()
            .unwrap();
        let want: Vec<u8> = env.iter().flat_map(|(_, v)| v.bytes().chain([0])).collect();
        assert_eq!(out.stdout, want);
        assert!(native_env_file(&[("1X".into(), "v".into())]).is_err());
    }

    #[test]
    fn supervisor_script_is_valid_sh() {
        let args = tricky_args();
        let s = supervisor_script(&layout("/home/u/.bpr/deployments/d1", &args, false));
        let out = Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&s)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{s}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn container_argv_has_limits_hardening_and_loopback_ports() {
        let w = ContainerWorkload {
            image: "ghcr.io/org/app:1".into(),
            args: vec!["serve".into()],
            env: vec![],
            ports: vec![
                PortMapping {
                    container_port: 80,
                    host_port: Some(8080),
                    public: true,
                },
                PortMapping {
                    container_port: 9615,
                    host_port: None,
                    public: false,
                },
            ],
        };
        let labels = vec![("bpr-deployment".to_string(), "d1".to_string())];
        let o = ContainerOpts {
            engine: "docker",
            name: "bpr-d1",
            env_file: "/h/env",
            labels: &labels,
            cpu_limit: Some(1.5),
            memory_limit_mib: Some(512),
            read_only: true,
        };
        assert_eq!(
            container_run_argv(&o, &w).unwrap().join(" "),
            "docker run -d --name bpr-d1 --label bpr-deployment=d1 --restart unless-stopped --cap-drop ALL --security-opt no-new-privileges --read-only --tmpfs /tmp --cpus 1.5 --memory 512m --env-file /h/env -p 0.0.0.0:8080:80 -p 127.0.0.1:9615:9615 ghcr.io/org/app:1 serve"
        );
        let bad = ContainerWorkload {
            image: "--privileged".into(),
            ..w
        };
        assert!(matches!(
            container_run_argv(&o, &bad),
            Err(Error::InvalidRequest(_))
        ));
    }
}
