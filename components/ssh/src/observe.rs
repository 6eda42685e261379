//! What a deployment looks like now: its workload's state read on the host
//! (container, systemd unit or supervised process) and its health check.

use provider_sdk::types::{Error, Instance, InstanceRef, InstanceState, ResourceRef};

use crate::meta::{LABEL, Meta};
use crate::remote::{self, sh, text};

pub(crate) fn instance_of(m: &Meta, state: InstanceState, detail: Option<String>) -> Instance {
    Instance {
        id: format!("{}/{}", m.host, m.deployment_id),
        region: m.region.clone(),
        zone: None,
        instance_type: m.host.clone(),
        state,
        public_ipv4: None,
        private_ipv4: None,
        public_ipv6: None,
        spot: false,
        labels: m.labels.clone(),
        resources: vec![
            ResourceRef {
                kind: "ssh-host".into(),
                id: m.host.clone(),
            },
            ResourceRef {
                kind: m.kind.clone(),
                id: m.name.clone(),
            },
        ],
        created_at: Some(m.created_at),
        detail,
    }
}

/// Reads the workload state and, when it is up and a health port is set, the
/// HTTP check run on the host itself.
pub(crate) fn observe(m: &Meta) -> Result<Instance, Error> {
    let host = m.host.as_str();
    let (state, mut detail) = match m.kind.as_str() {
        "container" => {
            let eng = m.engine.as_deref().unwrap_or("docker");
            let out = remote::run(
                host,
                &[eng, "inspect", "--format", "{{.State.Status}}", &m.name],
                None,
                None,
            )?;
            let s = text(&out.stdout);
            let st = match (out.exit_code, s.as_str()) {
                (Some(0), "running") => InstanceState::Running,
                (Some(0), "created" | "restarting") => InstanceState::Pending,
                (Some(0), "paused" | "exited") => InstanceState::Stopped,
                (Some(0), "removing") => InstanceState::Terminating,
                (Some(0), "dead") => InstanceState::Failed,
                (Some(0), _) => InstanceState::Unknown,
                _ => InstanceState::Failed,
            };
            (
                st,
                format!(
                    "container {}: {}",
                    m.name,
                    if s.is_empty() { text(&out.stderr) } else { s }
                ),
            )
        }
        "systemd" => {
            let mut argv = vec!["systemctl"];
            if m.user_unit {
                argv.push("--user");
            }
            argv.extend(["is-active", m.name.as_str()]);
            let out = remote::run(host, &argv, None, None)?;
            let s = text(&out.stdout);
            let st = match s.as_str() {
                "active" | "reloading" => InstanceState::Running,
                "activating" => InstanceState::Pending,
                "deactivating" => InstanceState::Stopping,
                "inactive" => InstanceState::Stopped,
                "failed" => InstanceState::Failed,
                _ => InstanceState::Unknown,
            };
            (st, format!("unit {}: {s}", m.name))
        }
        _ => {
            let s = text(
                &sh(
                    host,
                    "d=\"$HOME/.bpr/deployments/$1\"; p=$(cat \"$d/pid\" 2>/dev/null); s=$(cat \"$d/supervisor.pid\" 2>/dev/null); if [ -n \"$p\" ] && kill -0 \"$p\" 2>/dev/null; then echo running; elif [ -n \"$s\" ] && kill -0 \"$s\" 2>/dev/null; then echo restarting; else echo dead; fi",
                    &[&m.deployment_id],
                )?
                .stdout,
            );
            let st = match s.as_str() {
                "running" => InstanceState::Running,
                "restarting" => InstanceState::Pending,
                _ => InstanceState::Failed,
            };
            (st, format!("process: {s}"))
        }
    };
    let mut state = state;
    if let (InstanceState::Running, Some(port)) = (state, m.health_port) {
        let path = m.health_path.clone().unwrap_or_else(|| "/".into());
        let path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        let url = format!("http://127.0.0.1:{port}{path}");
        let out = sh(
            host,
            "if command -v curl >/dev/null 2>&1; then curl -fsS -m 5 -o /dev/null \"$1\"; else wget -q -T 5 -O /dev/null \"$1\"; fi",
            &[&url],
        )?;
        if out.exit_code == Some(0) {
            detail.push_str(&format!("; health {url}: ok"));
        } else {
            // Up but not answering yet: the host keeps polling until running.
            state = InstanceState::Pending;
            detail.push_str(&format!("; health {url}: failing: {}", text(&out.stderr)));
        }
    }
    Ok(instance_of(m, state, Some(detail)))
}

/// Where an instance ref points: (host alias, deployment id).
pub(crate) fn locate(target: &InstanceRef) -> Result<(String, String), Error> {
    if let Some((h, d)) = target.id.split_once('/') {
        return Ok((h.to_string(), d.to_string()));
    }
    let host = target
        .resources
        .iter()
        .find(|r| r.kind == "ssh-host")
        .map(|r| r.id.clone());
    let dep = target
        .labels
        .iter()
        .find(|(k, _)| k == LABEL)
        .map(|(_, v)| v.clone());
    match (host, dep) {
        (Some(h), Some(d)) => Ok((h, d)),
        _ => Err(Error::InvalidRequest(format!(
            "instance id `{}` is not `<host>/<deployment-id>` and the ref has no ssh-host resource and {LABEL} label",
            target.id
        ))),
    }
}
