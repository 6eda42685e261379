//! SSH provider component: the operator's own machines as offers, and
//! workloads (containers or native binaries) placed on them over the host's
//! `ssh` capability. The component never sees an address or a key: it names
//! hosts by alias and sends argv lists that the host quotes.
//!
//! # What a deployment installs on a host
//! Everything lives under `$HOME/.bpr/deployments/<deployment-id>/`:
//! `meta.json` (what was installed, read back by get/list/delete), `env`
//! (0600) and, for native binaries, `bin`, `log`, and either a systemd unit
//! (`/etc/systemd/system/bpr-<id>.service` as root, else
//! `~/.config/systemd/user/bpr-<id>.service`) when systemd is PID 1, or
//! `supervise.sh` with `pid`/`supervisor.pid` files otherwise. Containers run
//! as `bpr-<id>` with label `bpr-deployment=<id>`. Delete removes all of it.
//!
//! # Settings
//! - `native_supervisor`: `auto` (default; systemd when `/run/systemd/system`
//!   exists), `systemd` or `process`.
//! - `container_engine`: `auto` (default; docker, else podman), `docker`, `podman`.
//! - `container_read_only`: read-only root filesystem with tmpfs `/tmp`
//!   (default `true`).
//! - `arch`: `x86-64` (default) or `arm64`, reported in offers.
//!
//! # Capacity in offers
//! An offer is the host's probed capacity minus what its deployments take.
//! The host's tracker does not record ssh deployments, so `list-offers` reads
//! every `meta.json` on the host (one command per host) and sums the
//! workloads' CPU limits (cores) and memory limits (MiB, as GiB). A workload
//! without a limit counts as 0 for that resource: nothing bounds what it uses,
//! so any other figure would be a guess. The host-reported `in-use` is still
//! honoured, as the larger of the two per resource rather than their sum,
//! because the same deployment may be counted by both and must not be
//! subtracted twice. An unreachable host keeps its offer with the
//! host-reported `in-use` only, and a warning is logged.

#[allow(missing_docs, clippy::all, unsafe_code)]
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "blueprint:provider/ssh-provider",
        with: {
            "blueprint:provider/types@0.1.0": provider_sdk::bindings::blueprint::provider::types,
            "blueprint:provider/log@0.1.0": provider_sdk::bindings::blueprint::provider::log,
            "blueprint:provider/settings@0.1.0": provider_sdk::bindings::blueprint::provider::settings,
            "wasi:http/types@0.2.12": wasip2::http::types,
            "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
            "wasi:io/error@0.2.12": wasip2::io::error,
            "wasi:io/poll@0.2.12": wasip2::io::poll,
            "wasi:io/streams@0.2.12": wasip2::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
        },
    });
}

mod files;
mod remote;

use bindings::blueprint::provider::ssh;
use bindings::exports::blueprint::provider::{compute, describe, kubernetes};
use provider_sdk::errors::unsupported;
use provider_sdk::types::*;
use provider_sdk::{log, settings};
use remote::{sh, sh_ok, text, upload};
use serde::{Deserialize, Serialize};

struct Component;

/// What a deployment installed, stored as `meta.json` in its directory.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct Meta {
    deployment_id: String,
    idempotency_key: String,
    host: String,
    region: String,
    /// `container`, `systemd` or `process`.
    kind: String,
    /// Container name or unit name.
    name: String,
    engine: Option<String>,
    unit_path: Option<String>,
    user_unit: bool,
    labels: Vec<(String, String)>,
    created_at: u64,
    health_port: Option<u16>,
    health_path: Option<String>,
    /// CPU limit of the workload in cores, counted against the host's
    /// capacity by `list-offers`. Absent in files written before limits were
    /// recorded, which therefore count as 0.
    #[serde(default)]
    cpu_limit: Option<f32>,
    /// Memory limit of the workload in MiB, counted like `cpu_limit`.
    #[serde(default)]
    memory_limit_mib: Option<u32>,
}

const LABEL: &str = "bpr-deployment";

/// Deployment ids become file and unit names: keep them to `[a-z0-9_-]`.
fn check_id(id: &str) -> Result<(), Error> {
    let ok = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "deployment id `{id}` must be 1-63 characters of [a-z0-9_-]"
        )))
    }
}

fn dep_dir(home: &str, id: &str) -> String {
    format!("{home}/.bpr/deployments/{id}")
}

fn read_meta(host: &str, id: &str) -> Result<Option<Meta>, Error> {
    let out = sh(
        host,
        "cat \"$HOME/.bpr/deployments/$1/meta.json\" 2>/dev/null || exit 3",
        &[id],
    )?;
    match out.exit_code {
        Some(0) => serde_json::from_slice(&out.stdout).map(Some).map_err(|e| {
            Error::Other(format!(
                "meta.json of deployment `{id}` on `{host}` is unreadable: {e}"
            ))
        }),
        Some(3) => Ok(None),
        c => Err(Error::Other(format!(
            "reading deployment `{id}` on `{host}` failed (exit {c:?}): {}",
            text(&out.stderr)
        ))),
    }
}

fn write_meta(host: &str, home: &str, m: &Meta) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(m)
        .map_err(|e| Error::Other(format!("encoding meta.json: {e}")))?;
    upload(
        host,
        &format!("{}/meta.json", dep_dir(home, &m.deployment_id)),
        &json,
        0o600,
    )
}

fn find_host(alias: &str) -> Result<ssh::HostEntry, Error> {
    ssh::hosts()
        .into_iter()
        .find(|h| h.alias == alias)
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "instance type `{alias}` is not a configured ssh host alias"
            ))
        })
}

fn engine(host: &str) -> Result<String, Error> {
    let want = settings::get_or("container_engine", "auto");
    if want == "docker" || want == "podman" {
        return Ok(want);
    }
    let out = sh(
        host,
        "if command -v docker >/dev/null 2>&1; then echo docker; elif command -v podman >/dev/null 2>&1; then echo podman; fi",
        &[],
    )?;
    let e = text(&out.stdout);
    if e.is_empty() {
        return Err(Error::CapacityUnavailable(format!(
            "ssh host `{host}` has neither docker nor podman for a container workload"
        )));
    }
    Ok(e)
}

fn instance_of(m: &Meta, state: InstanceState, detail: Option<String>) -> Instance {
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
fn observe(m: &Meta) -> Result<Instance, Error> {
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
fn locate(target: &InstanceRef) -> Result<(String, String), Error> {
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

fn create(spec: &InstanceSpec) -> Result<Instance, Error> {
    check_id(&spec.deployment_id)?;
    let id = spec.deployment_id.as_str();
    let entry = find_host(&spec.instance_type)?;
    let host = entry.alias.as_str();
    let workload = spec.workload.as_ref().ok_or_else(|| {
        Error::InvalidRequest(
            "the ssh provider runs workloads: instance-spec.workload is required".into(),
        )
    })?;
    if let Some(m) = read_meta(host, id)? {
        // A retry of the same create: answer with what exists.
        return observe(&m);
    }
    let home = remote::home(host)?;
    let dir = dep_dir(&home, id);
    let mut labels: Vec<(String, String)> = spec
        .labels
        .iter()
        .filter(|(k, _)| k != LABEL)
        .cloned()
        .collect();
    labels.push((LABEL.into(), id.into()));
    labels.sort();
    let mut meta = Meta {
        deployment_id: id.into(),
        idempotency_key: spec.idempotency_key.clone(),
        host: host.into(),
        region: entry.region.clone(),
        kind: String::new(),
        name: format!("bpr-{id}"),
        engine: None,
        unit_path: None,
        user_unit: false,
        labels,
        created_at: provider_sdk::time::now_unix(),
        health_port: workload.health_port,
        health_path: workload.health_path.clone(),
        cpu_limit: workload.cpu_limit,
        memory_limit_mib: workload.memory_limit_mib,
    };
    sh_ok(
        host,
        "creating the deployment directory",
        "mkdir -p \"$1\" && chmod 700 \"$1\"",
        &[&dir],
    )?;
    let result = match &workload.source {
        WorkloadSource::Container(c) => create_container(&mut meta, &home, &dir, workload, c),
        WorkloadSource::Native(n) => create_native(&mut meta, &home, &dir, workload, n),
    };
    match result {
        Ok(()) => observe(&meta),
        Err(e) => {
            // Leave nothing behind; report a cleanup failure next to the cause.
            if let Err(c) = remove(&meta, &dir) {
                return Err(with_note(
                    e,
                    &format!(
                        "; cleanup also failed: {}",
                        provider_sdk::errors::message(&c)
                    ),
                ));
            }
            Err(e)
        }
    }
}

fn with_note(e: Error, note: &str) -> Error {
    match e {
        Error::InvalidRequest(m) => Error::InvalidRequest(m + note),
        Error::Transient(m) => Error::Transient(m + note),
        Error::Unauthorized(m) => Error::Unauthorized(m + note),
        e => Error::Other(format!("{}{note}", provider_sdk::errors::message(&e))),
    }
}

fn create_container(
    meta: &mut Meta,
    home: &str,
    dir: &str,
    w: &Workload,
    c: &ContainerWorkload,
) -> Result<(), Error> {
    let host = meta.host.clone();
    let eng = engine(&host)?;
    meta.kind = "container".into();
    meta.engine = Some(eng.clone());
    write_meta(&host, home, meta)?;
    let env_file = format!("{dir}/env");
    upload(
        &host,
        &env_file,
        files::container_env_file(&c.env)?.as_bytes(),
        0o600,
    )?;
    let argv = files::container_run_argv(
        &files::ContainerOpts {
            engine: &eng,
            name: &meta.name,
            env_file: &env_file,
            labels: &meta.labels,
            cpu_limit: w.cpu_limit,
            memory_limit_mib: w.memory_limit_mib,
            read_only: settings::get_bool("container_read_only", true),
        },
        c,
    )?;
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    // Pulling an image can take minutes.
    let out = remote::run(&host, &argv, None, Some(600_000))?;
    if out.exit_code != Some(0) {
        let err = text(&out.stderr);
        let msg = format!(
            "`{eng} run` of {} on `{host}` failed (exit {:?}): {err}",
            c.image, out.exit_code
        );
        let bad_image = [
            "No such image",
            "pull access denied",
            "manifest unknown",
            "invalid reference format",
            "not found",
        ]
        .iter()
        .any(|p| err.contains(p));
        return Err(if bad_image {
            Error::InvalidRequest(msg)
        } else {
            Error::Other(msg)
        });
    }
    log::info(&format!("container {} started on {host}", meta.name));
    Ok(())
}

fn create_native(
    meta: &mut Meta,
    home: &str,
    dir: &str,
    w: &Workload,
    n: &NativeWorkload,
) -> Result<(), Error> {
    let host = meta.host.clone();
    let sha_ok = n.sha256.len() == 64
        && n.sha256
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !sha_ok {
        return Err(Error::InvalidRequest(format!(
            "sha256 `{}` is not 64 lower-case hex digits",
            n.sha256
        )));
    }
    if !(n.url.starts_with("http://") || n.url.starts_with("https://")) {
        return Err(Error::InvalidRequest(format!(
            "binary url `{}` must be http(s)",
            n.url
        )));
    }
    let mode = settings::get_or("native_supervisor", "auto");
    let systemd = match mode.as_str() {
        "systemd" => true,
        "process" => false,
        _ => sh(&host, "test -d /run/systemd/system", &[])?.exit_code == Some(0),
    };
    let root = text(&sh_ok(&host, "reading the user id", "id -u", &[])?.into_bytes()) == "0";
    meta.kind = if systemd { "systemd" } else { "process" }.into();
    if systemd {
        meta.name = format!("bpr-{}.service", meta.deployment_id);
        meta.user_unit = !root;
        meta.unit_path = Some(if root {
            format!("/etc/systemd/system/{}", meta.name)
        } else {
            format!("{home}/.config/systemd/user/{}", meta.name)
        });
    }
    write_meta(&host, home, meta)?;

    // Download into staging, verify, and only then make it executable.
    let out = sh(
        &host,
        r#"st="$1/staging"; rm -rf "$st"; mkdir -p "$st" || exit 20
if command -v curl >/dev/null 2>&1; then curl -fsSL --max-time 300 -o "$st/bin" "$2" || { rm -rf "$st"; exit 21; }
elif command -v wget >/dev/null 2>&1; then wget -q -T 300 -O "$st/bin" "$2" || { rm -rf "$st"; exit 21; }
else rm -rf "$st"; exit 22; fi
got=$(sha256sum "$st/bin" | cut -d' ' -f1)
if [ "$got" != "$3" ]; then rm -rf "$st"; printf %s "$got"; exit 23; fi
chmod 755 "$st/bin" && mv -f "$st/bin" "$1/bin" && rm -rf "$st""#,
        &[dir, &n.url, &n.sha256],
    )?;
    match out.exit_code {
        Some(0) => {}
        Some(21) => {
            return Err(Error::Transient(format!(
                "download of {} on `{host}` failed: {}",
                n.url,
                text(&out.stderr)
            )));
        }
        Some(22) => {
            return Err(Error::CapacityUnavailable(format!(
                "ssh host `{host}` has neither curl nor wget"
            )));
        }
        Some(23) => {
            return Err(Error::InvalidRequest(format!(
                "sha256 of {} is {}, not the required {}; nothing was run",
                n.url,
                text(&out.stdout),
                n.sha256
            )));
        }
        c => {
            return Err(Error::Other(format!(
                "installing {} on `{host}` failed (exit {c:?}): {}",
                n.url,
                text(&out.stderr)
            )));
        }
    }
    upload(
        &host,
        &format!("{dir}/env"),
        files::native_env_file(&n.env)?.as_bytes(),
        0o600,
    )?;
    let layout = files::NativeLayout {
        deployment_id: &meta.deployment_id,
        dir,
        args: &n.args,
        cpu_limit: w.cpu_limit,
        memory_limit_mib: w.memory_limit_mib,
        system: root,
    };
    if systemd {
        let unit_path = meta.unit_path.clone().unwrap_or_default();
        let parent = unit_path.rsplit_once('/').map(|(p, _)| p).unwrap_or("/");
        sh_ok(
            &host,
            "creating the unit directory",
            "mkdir -p \"$1\"",
            &[parent],
        )?;
        upload(
            &host,
            &unit_path,
            files::systemd_unit(&layout).as_bytes(),
            0o644,
        )?;
        sh_ok(
            &host,
            "starting the systemd unit",
            "if [ \"$1\" = user ]; then c=\"systemctl --user\"; else c=systemctl; fi; $c daemon-reload && $c enable --now \"$2\"",
            &[if root { "system" } else { "user" }, &meta.name],
        )?;
    } else {
        upload(
            &host,
            &format!("{dir}/supervise.sh"),
            files::supervisor_script(&layout).as_bytes(),
            0o700,
        )?;
        sh_ok(
            &host,
            "starting the supervisor",
            "cd \"$1\" || exit 1; rm -f stop; setsid nohup sh \"$1/supervise.sh\" </dev/null >/dev/null 2>&1 & i=0; while [ ! -s \"$1/pid\" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; test -s \"$1/pid\"",
            &[dir],
        )?;
    }
    log::info(&format!(
        "native deployment {} started on {host} ({})",
        meta.deployment_id, meta.kind
    ));
    Ok(())
}

/// Removes everything a deployment installed. Tolerates what is gone.
fn remove(m: &Meta, dir: &str) -> Result<(), Error> {
    let host = m.host.as_str();
    match m.kind.as_str() {
        "container" => {
            let eng = m.engine.as_deref().unwrap_or("docker");
            let out = remote::run(host, &[eng, "rm", "-f", &m.name], None, Some(120_000))?;
            let err = text(&out.stderr);
            if out.exit_code != Some(0) && !err.contains("No such container") {
                return Err(Error::Transient(format!(
                    "`{eng} rm -f {}` on `{host}` failed: {err}",
                    m.name
                )));
            }
        }
        "systemd" => {
            sh_ok(
                host,
                "removing the systemd unit",
                "u=\"$2\"; f=\"$3\"; if [ \"$1\" = user ]; then c=\"systemctl --user\"; else c=systemctl; fi; $c disable --now \"$u\" >/dev/null 2>&1; rm -f \"$f\"; $c daemon-reload; $c reset-failed \"$u\" >/dev/null 2>&1; true",
                &[
                    if m.user_unit { "user" } else { "system" },
                    &m.name,
                    m.unit_path.as_deref().unwrap_or(""),
                ],
            )?;
        }
        "process" => {
            // Stop the supervisor (its trap stops the binary), then make sure.
            sh_ok(
                host,
                "stopping the supervised process",
                r#"d="$1"; [ -d "$d" ] || exit 0; touch "$d/stop"
s=$(cat "$d/supervisor.pid" 2>/dev/null); p=$(cat "$d/pid" 2>/dev/null)
[ -n "$s" ] && kill "$s" 2>/dev/null; [ -n "$p" ] && kill "$p" 2>/dev/null
i=0; while [ $i -lt 50 ]; do a=; for x in $s $p; do kill -0 "$x" 2>/dev/null && a=1; done; [ -z "$a" ] && exit 0; sleep 0.1; i=$((i+1)); done
for x in $s $p; do kill -9 "$x" 2>/dev/null; done; true"#,
                &[dir],
            )?;
        }
        _ => {}
    }
    sh_ok(
        host,
        "removing the deployment directory",
        "rm -rf \"$1\"",
        &[dir],
    )?;
    Ok(())
}

impl describe::Guest for Component {
    fn info() -> describe::ProviderInfo {
        let s = |k: &str, d: &str, v: Option<&str>| describe::SettingInfo {
            key: k.into(),
            description: d.into(),
            default_value: v.map(String::from),
        };
        describe::ProviderInfo {
            name: "ssh".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            capabilities: vec![
                describe::Capability::Offers,
                describe::Capability::Instances,
                describe::Capability::Workloads,
                describe::Capability::Gpus,
            ],
            credential: describe::CredentialKind::None,
            expected_hosts: vec![],
            regions: vec![],
            settings: vec![
                s(
                    "native_supervisor",
                    "auto | systemd | process: how native binaries are kept running",
                    Some("auto"),
                ),
                s("container_engine", "auto | docker | podman", Some("auto")),
                s(
                    "container_read_only",
                    "run containers with a read-only root filesystem and tmpfs /tmp",
                    Some("true"),
                ),
                s("arch", "x86-64 | arm64, reported in offers", Some("x86-64")),
            ],
        }
    }
}

/// Script printing every deployment's `meta.json` on a host, each followed
/// by a record separator (`\x1e`) line.
const ALL_META: &str = "for f in \"$HOME\"/.bpr/deployments/*/meta.json; do [ -f \"$f\" ] && { cat \"$f\"; printf '\\n\\036\\n'; }; done; true";

/// Parses the output of [`ALL_META`], warning about (and skipping) files
/// that are not a readable `meta.json`.
fn parse_all_meta(alias: &str, stdout: &[u8]) -> Vec<Meta> {
    let mut metas = Vec::new();
    for doc in String::from_utf8_lossy(stdout).split('\u{1e}') {
        if doc.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(doc) {
            Ok(m) => metas.push(m),
            Err(e) => log::warn(&format!(
                "skipping an unreadable meta.json on `{alias}`: {e}"
            )),
        }
    }
    metas
}

/// Sum of the recorded limits of `metas`: (cores, GiB). A workload without a
/// limit adds 0 (see the module docs).
fn limits_sum(metas: &[Meta]) -> (f32, f32) {
    metas.iter().fold((0.0, 0.0), |(c, m), d| {
        (
            c + d.cpu_limit.unwrap_or(0.0).max(0.0),
            m + d.memory_limit_mib.map_or(0.0, |x| x as f32 / 1024.0),
        )
    })
}

/// Capacity taken on `alias`: per resource the larger of the host-reported
/// `in-use` and the limits of the deployments recorded on the host (the
/// same deployment may be counted by both, so they are not added). When the
/// host cannot be read, the host-reported figure alone, with a warning.
fn taken(alias: &str, reported: &Resources) -> Resources {
    let mut u = reported.clone();
    let out = match sh(alias, ALL_META, &[]) {
        Ok(out) if out.exit_code == Some(0) => out,
        Ok(out) => {
            log::warn(&format!(
                "reading the deployments on ssh host `{alias}` failed (exit {:?}): {}; its offer subtracts only the host-reported in-use",
                out.exit_code,
                text(&out.stderr)
            ));
            return u;
        }
        Err(e) => {
            log::warn(&format!(
                "ssh host `{alias}` is unreachable ({}); its offer subtracts only the host-reported in-use",
                provider_sdk::errors::message(&e)
            ));
            return u;
        }
    };
    let (cores, gib) = limits_sum(&parse_all_meta(alias, &out.stdout));
    u.vcpus = u.vcpus.max(cores);
    u.memory_gib = u.memory_gib.max(gib);
    u
}

impl compute::Guest for Component {
    fn list_offers(q: OfferQuery) -> Result<Vec<Offer>, Error> {
        let arch = if settings::get_or("arch", "x86-64") == "arm64" {
            Arch::Arm64
        } else {
            Arch::X8664
        };
        let now = provider_sdk::time::now_unix();
        let mut offers = Vec::new();
        for h in ssh::hosts() {
            if !q.regions.is_empty() && !q.regions.contains(&h.region) {
                continue;
            }
            let Some(cap) = h.capacity else {
                log::warn(&format!(
                    "ssh host `{}` has no probed capacity; run `bpr hosts probe`",
                    h.alias
                ));
                continue;
            };
            let u = taken(&h.alias, &h.in_use);
            let gpus = (cap.gpus - u.gpus).max(0.0);
            offers.push(Offer {
                instance_type: h.alias.clone(),
                region: h.region.clone(),
                zone: None,
                vcpus: (cap.vcpus - u.vcpus).max(0.0),
                memory_gib: (cap.memory_gib - u.memory_gib).max(0.0),
                storage_gib: Some((cap.storage_gib - u.storage_gib).max(0.0)),
                gpus,
                gpu_model: if gpus > 0.0 {
                    cap.gpu_model.clone()
                } else {
                    None
                },
                gpu_memory_gib: None,
                arch,
                hourly_usd: h.hourly_usd,
                spot_hourly_usd: None,
                shared_cpu: false,
                confidential: false,
                promotional: false,
                source: PriceSource {
                    source: "operator-config".into(),
                    observed_at: now,
                    from_snapshot: false,
                },
            });
        }
        Ok(offers)
    }

    fn create_instance(spec: InstanceSpec) -> Result<Instance, Error> {
        create(&spec)
    }

    fn get_instance(target: InstanceRef) -> Result<Instance, Error> {
        let (host, id) = locate(&target)?;
        check_id(&id)?;
        find_host(&host)?;
        match read_meta(&host, &id)? {
            Some(m) => observe(&m),
            None => Err(Error::NotFound(format!(
                "deployment `{id}` is not on ssh host `{host}`"
            ))),
        }
    }

    fn delete_instance(target: InstanceRef) -> Result<DeleteStatus, Error> {
        let (host, id) = locate(&target)?;
        check_id(&id)?;
        find_host(&host)?;
        let Some(m) = read_meta(&host, &id)? else {
            return Ok(DeleteStatus::Deleted);
        };
        let home = remote::home(&host)?;
        remove(&m, &dep_dir(&home, &id))?;
        log::info(&format!("deployment {id} removed from {host}"));
        Ok(DeleteStatus::Deleted)
    }

    fn list_instances(q: InstanceQuery) -> Result<Vec<Instance>, Error> {
        let mut found = Vec::new();
        for h in ssh::hosts() {
            if !q.regions.is_empty() && !q.regions.contains(&h.region) {
                continue;
            }
            let out = sh(&h.alias, ALL_META, &[])?;
            for m in parse_all_meta(&h.alias, &out.stdout) {
                if q.labels.iter().all(|l| m.labels.contains(l)) {
                    found.push(observe(&m)?);
                }
            }
        }
        Ok(found)
    }
}

impl kubernetes::Guest for Component {
    fn create_cluster(_s: ClusterSpec) -> Result<Cluster, Error> {
        Err(unsupported("managed Kubernetes"))
    }
    fn get_cluster(_s: ClusterRef) -> Result<Cluster, Error> {
        Err(unsupported("managed Kubernetes"))
    }
    fn delete_cluster(_s: ClusterRef) -> Result<DeleteStatus, Error> {
        Err(unsupported("managed Kubernetes"))
    }
    fn get_credentials(_s: ClusterRef) -> Result<ClusterCredentials, Error> {
        Err(unsupported("managed Kubernetes"))
    }
}

// The generated export glue is `unsafe` FFI; the workspace denies unsafe code
// everywhere else.
#[allow(unsafe_code)]
mod export {
    use super::Component;
    crate::bindings::export!(Component with_types_in crate::bindings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_limits_are_summed_and_a_meta_json_without_limits_counts_as_zero() {
        // The shape written before limits were recorded: no limit fields.
        let old = r#"{"deployment_id":"a","idempotency_key":"k","host":"h","region":"r",
            "kind":"process","name":"bpr-a","engine":null,"unit_path":null,"user_unit":false,
            "labels":[],"created_at":1,"health_port":null,"health_path":null}"#;
        let mut new: serde_json::Value = serde_json::from_str(old).unwrap();
        new["deployment_id"] = "b".into();
        new["cpu_limit"] = 1.5.into();
        new["memory_limit_mib"] = 512.into();
        // (An unreadable document would log through the host import, which
        // does not exist in a native test.)
        let out = format!("{old}\n\u{1e}\n{new}\n\u{1e}\n");
        let metas = parse_all_meta("h", out.as_bytes());
        assert_eq!(metas.len(), 2);
        assert_eq!(limits_sum(&metas), (1.5, 0.5));
    }
}
