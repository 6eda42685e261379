//! Placing a workload on a host (container or verified native binary) and
//! removing everything it installed; and the compute calls built on them.

use provider_sdk::types::*;
use provider_sdk::{log, settings};

use crate::capacity::find_host;
use crate::files;
use crate::meta::{LABEL, Meta, check_id, dep_dir, read_meta, write_meta};
use crate::observe::{locate, observe};
use crate::remote::{self, sh, sh_ok, text, upload};

pub(crate) fn create(spec: &InstanceSpec) -> Result<Instance, Error> {
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

/// The deployment `target` points at, observed now.
pub(crate) fn get(target: InstanceRef) -> Result<Instance, Error> {
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

/// Remove what deployment `target` installed (already gone counts as deleted).
pub(crate) fn delete(target: InstanceRef) -> Result<DeleteStatus, Error> {
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

fn with_note(e: Error, note: &str) -> Error {
    match e {
        Error::InvalidRequest(m) => Error::InvalidRequest(m + note),
        Error::Transient(m) => Error::Transient(m + note),
        Error::Unauthorized(m) => Error::Unauthorized(m + note),
        e => Error::Other(format!("{}{note}", provider_sdk::errors::message(&e))),
    }
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
